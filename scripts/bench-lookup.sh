#!/usr/bin/env bash
# make bench, lookup part: the same pipeline (file -> Lua -> file) without a lookup and
# with a partial-cache lookup at 99%, 90% and 0% hits (cold start: every event a new
# key), against the throwaway MariaDB that scripts/bench.sh started (BENCH_DB_DIR,
# MYSQL_PORT). Rounds alternate the pipelines so noise hits all alike; medians and
# their ratio to no-lookup are printed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
EVENTS=${BENCH_LOOKUP_EVENTS:-200000}
ROUNDS=${BENCH_ROUNDS:-3}
dir=$(mktemp -d /tmp/eddy-bench-lookup.XXXXXX)
: "${MYSQL_PORT:?run from scripts/bench.sh}"
trap 'rm -rf "$dir"' EXIT
scripts/mariadb-local.sh sql "${BENCH_DB_DIR:?}" eddy -e "
  CREATE TABLE bench_dim (k VARCHAR(32) NOT NULL PRIMARY KEY, name VARCHAR(64), level INT,
                          city VARCHAR(32)) ENGINE=InnoDB COLLATE=utf8mb4_bin;
  INSERT INTO bench_dim SELECT CONCAT('k-', seq), CONCAT('name ', seq), seq % 7, 'Berlin'
  FROM seq_1_to_$EVENTS;"

mkdir -p "$dir/plain" "$dir/lookup"
cat > "$dir/plain/p.lua" <<'LUA'
return { routes = { { domain = "b", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.emit("out", { id = ev.eventId, k = p.k, amount = p.amount })
  end }
LUA
cat > "$dir/lookup/p.lua" <<'LUA'
return { routes = { { domain = "b", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    local row = ctx.lookup("dim", p.k)
    ctx.emit("out", { id = ev.eventId, k = p.k, amount = p.amount,
                      name = row and row.name, level = row and row.level })
  end }
LUA
# events DISTINCT: EVENTS events over DISTINCT keys, each key first seen once in order.
events() {
  awk -v n="$EVENTS" -v d="$1" 'BEGIN { srand(3); for (i = 1; i <= n; i++) {
    k = (i <= d) ? i : int(rand() * d) + 1
    printf "{\"domain\":\"b\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k-%d\",\"amount\":%d}}\n", 1700000000000 + i, i, k, i % 1000 } }'
}
events $((EVENTS / 100)) > "$dir/hit99.ndjson"
events $((EVENTS / 10)) > "$dir/hit90.ndjson"
events "$EVENTS" > "$dir/hit0.ndjson"
conf() {  # conf NAME PROCESSORS INPUT
  bench_conf "$dir/$1.conf" "$dir/$2" "$dir/$3" out lookup.dim.table=bench_dim \
    lookup.dim.key=k lookup.dim.columns=name,level,city "lookup.dim.max.rows=$EVENTS"
}
conf none plain hit99.ndjson
conf hit99 lookup hit99.ndjson
conf hit90 lookup hit90.ndjson
conf hit0 lookup hit0.ndjson

run() {  # events/s of one run
  rm -f "$dir/out.ndjson"
  local t0 t1
  t0=$(date +%s.%N)
  bin/eddy run -c "$dir/$1.conf"
  t1=$(date +%s.%N)
  [ "$(wc -l < "$dir/out.ndjson")" -eq "$EVENTS" ] || { echo "bench: $1 lost events" >&2; exit 1; }
  echo "$t0 $t1" | awk -v n="$EVENTS" '{ printf "%.0f\n", n / ($2 - $1) }'
}
declare -A res
for r in $(seq "$ROUNDS"); do
  line="round $r:"
  for p in none hit99 hit90 hit0; do
    v=$(run $p); res[$p]+="$v "; line+=" $p $v"
  done
  echo "$line events/s"
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
base=$(median "${res[none]}")
echo
echo "lookup pipelines, $EVENTS events, medians of $ROUNDS rounds:"
printf '  %-28s %8d events/s\n' "no lookup" "$base"
declare -A med
for p in hit99 hit90 hit0; do
  m=$(median "${res[$p]}"); med[$p]=$m
  # The ratio falls as the rest of the pipeline gets faster; what a lookup adds an
  # event, in time, is the figure to compare across versions.
  awk -v a="$m" -v b="$base" -v l="lookup, ${p#hit}% hits" 'BEGIN {
    printf "  %-28s %8d events/s  %.2f of no lookup, +%.2f us an event\n", l, a, a / b, 1e6 / a - 1e6 / b }'
done
awk -v r="$(awk -v a="${med[hit99]}" -v b="$base" 'BEGIN { print a / b }')" -v c="${med[hit0]}" 'BEGIN {
  printf "  targets: 99%% hits >= 0.80 of no lookup: %s; 0%% hits (cold, batched misses) >= 20000 events/s: %s\n",
         r >= 0.80 ? "met" : "not met", c >= 20000 ? "met" : "not met" }'
