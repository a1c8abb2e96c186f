-- Dimension tables that lookups read (lookup.<name>.table). Load with
--   mariadb eddy < conf/sql/dimensions.sql && mariadb eddy < conf/sql/sample-data.sql

-- IoT devices: joined onto readings by the iot_enrich processor (lookup device_meta).
CREATE TABLE IF NOT EXISTS device_metadata (
  device_id   VARCHAR(64)  NOT NULL PRIMARY KEY,
  name        VARCHAR(128) NOT NULL,
  type        VARCHAR(32)  NOT NULL,
  owner       VARCHAR(64)  NOT NULL,
  fence_group VARCHAR(64)  NULL,
  updated_at  TIMESTAMP    NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Users: level, city and registration time (lookup user_dim).
CREATE TABLE IF NOT EXISTS user_dim (
  user_id       VARCHAR(64) NOT NULL PRIMARY KEY,
  level         INT         NOT NULL,
  city          VARCHAR(64) NOT NULL,
  register_time DATETIME    NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Products: category, brand and price (lookup product_dim).
CREATE TABLE IF NOT EXISTS product_dim (
  product_id VARCHAR(64)   NOT NULL PRIMARY KEY,
  category   VARCHAR(64)   NOT NULL,
  brand      VARCHAR(64)   NOT NULL,
  price      DECIMAL(10,2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
