-- Wide tables the mysql sinks write (conf/eddy.conf), and the offsets table of
-- exactly-once sinks. Load with  mariadb eddy < conf/sql/wide-tables.sql
-- Every table has the primary key its sink upserts on, so a replay never adds a row.

-- One row per order, filled in by order_create, order_pay and order_cancel in any
-- order: status moves only forward in event time (sink sequence.column=status_time).
CREATE TABLE IF NOT EXISTS order_wide (
  order_id           VARCHAR(64)   NOT NULL PRIMARY KEY,
  user_id            VARCHAR(64)   NULL,
  amount             DECIMAL(12,2) NULL,
  status             VARCHAR(16)   NOT NULL,
  status_time        BIGINT        NOT NULL,   -- event time (epoch ms) of the status
  created_time       BIGINT        NULL,
  paid_time          BIGINT        NULL,
  cancelled_time     BIGINT        NULL,
  user_level         INT           NULL,
  user_city          VARCHAR(64)   NULL,
  user_register_time DATETIME      NULL,
  last_event_id      VARCHAR(64)   NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row per user event, joined with the user's and (if any) the product's dimensions.
CREATE TABLE IF NOT EXISTS user_activity (
  event_id           VARCHAR(64)   NOT NULL PRIMARY KEY,
  user_id            VARCHAR(64)   NOT NULL,
  action             VARCHAR(32)   NOT NULL,
  product_id         VARCHAR(64)   NULL,
  amount             DECIMAL(12,2) NULL,
  page               VARCHAR(64)   NULL,
  event_time         BIGINT        NOT NULL,
  user_level         INT           NULL,
  user_city          VARCHAR(64)   NULL,
  user_register_time DATETIME      NULL,
  product_category   VARCHAR(64)   NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Daily counters per product; each event adds 1 to one counter (sink sum=...).
CREATE TABLE IF NOT EXISTS product_stats (
  product_id  VARCHAR(64)   NOT NULL,
  stat_date   DATE          NOT NULL,
  views       BIGINT        NOT NULL DEFAULT 0,
  searches    BIGINT        NOT NULL DEFAULT 0,
  recommends  BIGINT        NOT NULL DEFAULT 0,
  category    VARCHAR(64)   NULL,
  brand       VARCHAR(64)   NULL,
  price       DECIMAL(10,2) NULL,
  PRIMARY KEY (product_id, stat_date)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Raw IoT readings, written by configuration alone (route.iot.*=sink:iot_metrics).
CREATE TABLE IF NOT EXISTS iot_metrics (
  event_id    VARCHAR(64)  NOT NULL PRIMARY KEY,
  device_id   VARCHAR(64)  NOT NULL,
  event_time  BIGINT       NOT NULL,
  temperature DOUBLE       NULL,
  humidity    DOUBLE       NULL,
  lat         DOUBLE       NULL,
  lon         DOUBLE       NULL,
  battery     INT          NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- Exactly-once sinks: the next offset to read per (group, sink, partition), moved in
-- the same transaction as the rows (sink.<name>.offsets.table).
CREATE TABLE IF NOT EXISTS eddy_offsets (
  consumer_group  VARCHAR(255) NOT NULL,
  sink            VARCHAR(128) NOT NULL,
  topic           VARCHAR(249) NOT NULL,
  kafka_partition INT          NOT NULL,
  next_offset     BIGINT       NOT NULL,
  updated_at      TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (consumer_group, sink, topic, kafka_partition)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
