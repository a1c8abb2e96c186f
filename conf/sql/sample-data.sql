-- Sample dimension rows matching the ids scripts/gen-events.lua produces:
-- devices d-1..d-300, users u-1..u-5000, products p-1..p-800. Uses MariaDB's
-- sequence engine (seq_1_to_N). Re-running replaces the rows.
REPLACE INTO device_metadata (device_id, name, type, owner, fence_group)
SELECT CONCAT('d-', seq), CONCAT('sensor ', seq),
       ELT(1 + seq % 3, 'tracker', 'thermometer', 'gateway'),
       CONCAT('owner-', 1 + seq % 17), IF(seq % 10 = 0, NULL, CONCAT('fence-', 1 + seq % 5))
FROM seq_1_to_300;

REPLACE INTO user_dim (user_id, level, city, register_time)
SELECT CONCAT('u-', seq), 1 + seq % 5,
       ELT(1 + seq % 4, 'Hangzhou', 'Berlin', 'Austin', 'Lagos'),
       '2024-01-01 00:00:00' + INTERVAL seq HOUR
FROM seq_1_to_5000;

REPLACE INTO product_dim (product_id, category, brand, price)
SELECT CONCAT('p-', seq), ELT(1 + seq % 4, 'books', 'garden', 'phones', 'toys'),
       CONCAT('brand-', 1 + seq % 9), 1.99 + seq
FROM seq_1_to_800;
