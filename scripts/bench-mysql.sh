#!/usr/bin/env bash
# make bench, MySQL sink part: rows/s that eddy upserts (file -> Lua -> mysql sink)
# against a plain bulk load of the same rows by the mariadb client (multi-row
# INSERT ... ON DUPLICATE KEY UPDATE, 1000 rows a statement, prepared in advance),
# into the same table of the MariaDB scripts/bench.sh started. Rounds alternate the two;
# medians and their ratio are printed. eddy's time includes parsing, Lua and start-up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${BENCH_MYSQL_ROWS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
db=${BENCH_DB_DIR:?run from scripts/bench.sh}
dir=$(mktemp -d /tmp/eddy-bench-mysql.XXXXXX)
trap 'rm -rf "$dir"' EXIT
sql() { scripts/mariadb-local.sh sql "$db" -N -B eddy "$@"; }
sql -e "DROP TABLE IF EXISTS bench_wide;
  CREATE TABLE bench_wide (id VARCHAR(32) NOT NULL PRIMARY KEY, k VARCHAR(32) NOT NULL,
    amount DOUBLE, level INT, ts BIGINT NOT NULL) ENGINE=InnoDB COLLATE=utf8mb4_bin"
UPSERT=' ON DUPLICATE KEY UPDATE k = COALESCE(VALUES(k), k), amount = COALESCE(VALUES(amount), amount), level = COALESCE(VALUES(level), level), ts = COALESCE(VALUES(ts), ts)'

awk -v n="$ROWS" 'BEGIN { for (i = 1; i <= n; i++)
  printf "{\"domain\":\"b\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k-%d\",\"amount\":%d.5}}\n", 1700000000000 + i, i, i % 1000, i % 977 }' \
  > "$dir/events.ndjson"
# The loader's input: the rows eddy writes, as SQL.
awk -v n="$ROWS" -v up="$UPSERT" 'BEGIN { for (i = 1; i <= n; i++) {
  if (i % 1000 == 1) printf "INSERT INTO bench_wide (id, k, amount, level, ts) VALUES "
  k = "k-" (i % 1000)
  printf "(\x27e%d\x27,\x27%s\x27,%d.5,%d,%d)", i, k, i % 977, length(k), 1700000000000 + i
  if (i % 1000 == 0 || i == n) printf "%s;\n", up; else printf "," } }' > "$dir/load.sql"

mkdir -p "$dir/processors"
cat > "$dir/processors/p.lua" <<'LUA'
return { routes = { { domain = "b", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.emit("wide", { id = ev.eventId, k = p.k, amount = p.amount, level = #p.k,
                       ts = ev.timestamp })
  end }
LUA
cat > "$dir/eddy.conf" <<CONF
processors.dir=$dir/processors
source.file.path=$dir/events.ndjson
mysql.url=mysql://eddy:$MYSQL_PASSWORD@127.0.0.1:$MYSQL_PORT/eddy
sink.wide.type=mysql
sink.wide.table=bench_wide
sink.wide.columns=id,k,amount,level,ts
sink.wide.key=id
sink.wide.batch.rows=1000
sink.dlq.type=file
sink.dlq.path=$dir/dlq.ndjson
dlq.sink=dlq
admin.listen=
log.level=warn
CONF

timed() {  # rows/s of one run of the command, into an emptied table
  sql -e 'TRUNCATE bench_wide'
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  [ "$(sql -e 'SELECT COUNT(*) FROM bench_wide')" -eq "$ROWS" ] || { echo "bench: rows missing" >&2; exit 1; }
  echo "$t0 $t1" | awk -v n="$ROWS" '{ printf "%.0f\n", n / ($2 - $1) }'
}
loader() { scripts/mariadb-local.sh sql "$db" eddy < "$dir/load.sql"; }
declare -A res
for r in $(seq "$ROUNDS"); do
  e=$(timed bin/eddy run -c "$dir/eddy.conf"); l=$(timed loader)
  res[eddy]+="$e "; res[loader]+="$l "
  echo "round $r: eddy $e rows/s, mariadb client bulk load $l rows/s"
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
e=$(median "${res[eddy]}"); l=$(median "${res[loader]}")
echo
echo "mysql sink, $ROWS rows, medians of $ROUNDS rounds:"
printf '  %-40s %8d rows/s\n' "eddy (events -> Lua -> mysql sink)" "$e"
printf '  %-40s %8d rows/s\n' "mariadb client, 1000-row upserts" "$l"
printf '  eddy / bulk load: %.2f (target >= 0.70)\n' "$(awk -v a="$e" -v b="$l" 'BEGIN { print a / b }')"
