-- The OLAP table the product processor's `product_events` sink writes, one row per
-- product event (ClickHouse 18.16 or later):
--   clickhouse-client --multiquery < conf/sql/clickhouse/product_events.sql
-- The sink is at least once: a replay inserts rows again, and the ReplacingMergeTree
-- keeps one row per (product_id, event_id) once parts merge; query with FINAL to count
-- each event once before that. (Its own folder: the MariaDB image runs every .sql file
-- of conf/sql/ at its first start.)
CREATE DATABASE IF NOT EXISTS eddy;

CREATE TABLE IF NOT EXISTS eddy.product_events (
  event_id   String,
  event_time UInt64,          -- epoch ms, as in the event
  event_date Date MATERIALIZED toDate(toDateTime(intDiv(event_time, 1000))),
  event_type String,          -- product_view, product_search, product_recommend
  product_id String,
  user_id    String,
  query      String,
  score      Float64,
  category   String,          -- product_dim, as looked up when the event was processed
  brand      String,
  price      Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_date)
ORDER BY (product_id, event_id);
