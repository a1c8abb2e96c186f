#!/usr/bin/env bash
# make bench, ClickHouse sink part: rows/s that eddy inserts (file -> Lua -> clickhouse
# sink, JSONEachRow over HTTP) against clickhouse-client inserting the same rows from a
# JSONEachRow file in one INSERT, into the same table of a throwaway ClickHouse server
# (scripts/clickhouse-local.sh) started here. Rounds alternate the two; medians and
# their ratio are printed. eddy's time includes parsing, Lua and start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${BENCH_CLICKHOUSE_ROWS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
dir=$(mktemp -d /tmp/eddy-bench-ch.XXXXXX)
export CLICKHOUSE_PASSWORD=bench
trap 'scripts/clickhouse-local.sh stop "$dir/ch"; rm -rf "$dir"' EXIT
http=$(scripts/free-port.sh 2); tcp=$((http + 1))
scripts/clickhouse-local.sh start "$dir/ch" "$http" "$tcp"
chq() { scripts/clickhouse-local.sh sql "$dir/ch" -d eddy "$@"; }

awk -v n="$ROWS" 'BEGIN { for (i = 1; i <= n; i++)
  printf "{\"domain\":\"b\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k-%d\",\"amount\":%d.5}}\n", 1700000000000 + i, i, i % 1000, i % 977 }' \
  > "$dir/events.ndjson"
mkdir -p "$dir/processors"
cat > "$dir/processors/p.lua" <<'LUA'
return { routes = { { domain = "b", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.emit("olap", { id = ev.eventId, k = p.k, amount = p.amount, level = #p.k,
                       ts = ev.timestamp })
  end }
LUA
# Batches of 20,000 rows: ClickHouse parses one while eddy makes the next, so only the
# last one is left when the input ends (with 100,000, half of the rows were: eddy / a
# file 0.92, now 0.9 to 1.0 by run).
cat > "$dir/eddy.conf" <<CONF
processors.dir=$dir/processors
source.file.path=$dir/events.ndjson
sink.olap.type=clickhouse
sink.olap.url=http://127.0.0.1:$http
sink.olap.database=eddy
sink.olap.table=bench_olap
sink.olap.username=eddy
sink.olap.password=$CLICKHOUSE_PASSWORD
sink.olap.batch.rows=20000
sink.olap.batch.bytes=104857600
sink.dlq.type=file
sink.dlq.path=$dir/dlq.ndjson
dlq.sink=dlq
admin.listen=
log.level=warn
CONF
# The client's input: the rows eddy writes, as eddy writes them. The same run, timed,
# is eddy's pipeline to a file sink: what the ClickHouse sink adds is the difference.
t0=$(date +%s.%N)
bin/eddy run -c "$dir/eddy.conf" --set sink.olap.type=file --set "sink.olap.path=$dir/rows.ndjson"
t1=$(date +%s.%N)
[ "$(wc -l < "$dir/rows.ndjson")" -eq "$ROWS" ] || { echo "bench: the rows file is short" >&2; exit 1; }
f=$(echo "$t0 $t1" | awk -v n="$ROWS" '{ printf "%.0f\n", n / ($2 - $1) }')

timed() {  # rows/s of one run of the command, into an emptied table
  chq -q "DROP TABLE IF EXISTS bench_olap"
  chq -q "CREATE TABLE bench_olap (id String, k String, amount Float64, level UInt32, ts UInt64)
          ENGINE = MergeTree ORDER BY id"
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  [ "$(chq -q 'SELECT count() FROM bench_olap')" -eq "$ROWS" ] || { echo "bench: rows missing" >&2; exit 1; }
  echo "$t0 $t1" | awk -v n="$ROWS" '{ printf "%.0f\n", n / ($2 - $1) }'
}
client() { chq -q "INSERT INTO bench_olap FORMAT JSONEachRow" < "$dir/rows.ndjson"; }
declare -A res
for r in $(seq "$ROUNDS"); do
  e=$(timed bin/eddy run -c "$dir/eddy.conf"); l=$(timed client)
  res[eddy]+="$e "; res[client]+="$l "
  echo "round $r: eddy $e rows/s, clickhouse-client $l rows/s"
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
e=$(median "${res[eddy]}"); l=$(median "${res[client]}")
echo
echo "clickhouse sink, $ROWS rows, medians of $ROUNDS rounds (ClickHouse $(chq -q 'SELECT version()')):"
printf '  %-40s %8d rows/s\n' "eddy (events -> Lua -> clickhouse sink)" "$e"
printf '  %-40s %8d rows/s\n' "clickhouse-client, one JSONEachRow INSERT" "$l"
printf '  %-40s %8d rows/s (one run)\n' "eddy, the same pipeline to a file sink" "$f"
printf '  eddy / client: %.2f (target >= 0.70); eddy to ClickHouse / eddy to a file: %.2f\n' \
  "$(awk -v a="$e" -v b="$l" 'BEGIN { print a / b }')" "$(awk -v a="$e" -v b="$f" 'BEGIN { print a / b }')"
