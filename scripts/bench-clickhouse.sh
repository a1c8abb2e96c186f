#!/usr/bin/env bash
# make bench, ClickHouse sink part: rows/s that eddy inserts (JSONEachRow over HTTP)
# against clickhouse-client inserting the same rows from a JSONEachRow file in one
# INSERT, into the same table of a throwaway ClickHouse server
# (scripts/clickhouse-local.sh) started here, twice:
#  - the events file routed straight to the sink (route.b.*=sink:olap, a column list),
#    against the client inserting that same file with the same column list;
#  - the events through a Lua processor into the sink, against the client inserting
#    the rows that processor makes.
# Rounds alternate eddy and the client; medians and their ratios are printed. eddy's
# time includes reading and checking every event, and its start-up.
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
# The same events routed to the sink with no processor (p.lua stays loaded, unused):
# the envelope's fields land in bench_events, the payload left out by the column list.
sed -e 's/^sink\.olap\.table=.*/sink.olap.table=bench_events/' "$dir/eddy.conf" > "$dir/raw.conf"
printf '%s\n' 'route.b.*=sink:olap' 'sink.olap.columns=domain,type,timestamp,eventId' >> "$dir/raw.conf"
EVENT_COLS="domain String, type String, timestamp UInt64, eventId String"

# The client's input: the rows eddy writes, as eddy writes them. The same run, timed,
# is eddy's pipeline to a file sink: what the ClickHouse sink adds is the difference.
t0=$(date +%s.%N)
bin/eddy run -c "$dir/eddy.conf" --set sink.olap.type=file --set "sink.olap.path=$dir/rows.ndjson"
t1=$(date +%s.%N)
[ "$(wc -l < "$dir/rows.ndjson")" -eq "$ROWS" ] || { echo "bench: the rows file is short" >&2; exit 1; }
f=$(echo "$t0 $t1" | awk -v n="$ROWS" '{ printf "%.0f\n", n / ($2 - $1) }')

timed() {  # rows/s of one run of the command, into an emptied TABLE
  local table=$1 cols=$2; shift 2
  chq -q "DROP TABLE IF EXISTS $table"
  chq -q "CREATE TABLE $table ($cols) ENGINE = MergeTree ORDER BY ${cols%% *}"
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  [ "$(chq -q "SELECT count() FROM $table")" -eq "$ROWS" ] || { echo "bench: rows missing in $table" >&2; exit 1; }
  echo "$t0 $t1" | awk -v n="$ROWS" '{ printf "%.0f\n", n / ($2 - $1) }'
}
ROW_COLS="id String, k String, amount Float64, level UInt32, ts UInt64"
client() { chq -q "INSERT INTO bench_olap FORMAT JSONEachRow" < "$dir/rows.ndjson"; }
client_events() {
  chq -q "INSERT INTO bench_events (domain, type, timestamp, eventId) FORMAT JSONEachRow" \
    --input_format_skip_unknown_fields=1 < "$dir/events.ndjson"
}
declare -A res
for r in $(seq "$ROUNDS"); do
  re=$(timed bench_events "$EVENT_COLS" bin/eddy run -c "$dir/raw.conf")
  rl=$(timed bench_events "$EVENT_COLS" client_events)
  e=$(timed bench_olap "$ROW_COLS" bin/eddy run -c "$dir/eddy.conf")
  l=$(timed bench_olap "$ROW_COLS" client)
  res[raw]+="$re "; res[raw_client]+="$rl "; res[eddy]+="$e "; res[client]+="$l "
  echo "round $r: events routed: eddy $re, clickhouse-client $rl rows/s; through Lua: eddy $e, clickhouse-client $l rows/s"
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
re=$(median "${res[raw]}"); rl=$(median "${res[raw_client]}")
e=$(median "${res[eddy]}"); l=$(median "${res[client]}")
echo
echo "clickhouse sink, $ROWS rows, medians of $ROUNDS rounds (ClickHouse $(chq -q 'SELECT version()')):"
echo "  the events file, its envelope's four fields (route to the sink, no processor):"
printf '    %-44s %8d rows/s\n' "eddy (events -> clickhouse sink)" "$re"
printf '    %-44s %8d rows/s\n' "clickhouse-client, the same file and columns" "$rl"
printf '    eddy / client: %s (target >= 0.70)\n' "$(ratio "$re" "$rl")"
echo "  through a Lua processor (five fields made of each event):"
printf '    %-44s %8d rows/s\n' "eddy (events -> Lua -> clickhouse sink)" "$e"
printf '    %-44s %8d rows/s\n' "clickhouse-client, the rows eddy makes" "$l"
printf '    %-44s %8d rows/s (one run)\n' "eddy, the same pipeline to a file sink" "$f"
printf '    eddy / client: %s; eddy to ClickHouse / eddy to a file: %s\n' \
  "$(ratio "$e" "$l")" "$(ratio "$e" "$f")"
