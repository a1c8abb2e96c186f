# clickhouse_lib.sh - a real ClickHouse server for the ClickHouse sink tests and bench:
# one throwaway server per test file (scripts/clickhouse-local.sh), stopped by
# tests/run.sh when the file ends.

CH_DIR=$T/clickhouse
CH_PASSWORD='ch-secret-7f3a'     # never logged

start_clickhouse() {
  if [ -z "${CH_PORT:-}" ]; then
    CH_PORT=$(free_port 2)
    CH_TCP=$((CH_PORT + 1))
  fi
  CLICKHOUSE_PASSWORD=$CH_PASSWORD scripts/clickhouse-local.sh start "$CH_DIR" "$CH_PORT" "$CH_TCP" 4>&-
}
stop_clickhouse() { scripts/clickhouse-local.sh stop "$CH_DIR"; }
# chq QUERY [ARGS]: run a query in database eddy with clickhouse-client; tab-separated
# rows.
chq() { CLICKHOUSE_PASSWORD=$CH_PASSWORD scripts/clickhouse-local.sh sql "$CH_DIR" -d eddy -q "$1" "${@:2}"; }
