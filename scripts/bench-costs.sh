#!/usr/bin/env bash
# make bench, per-event costs: the shipped order processor (processors/order.lua) built
# up one step at a time, each step a processor of its own over the same 100,000
# order events, file in and file out, against the throwaway MariaDB that
# scripts/bench.sh started (MYSQL_PORT). A step's cost is its median time an event
# minus the step before it's. The users come from 100 keys, so lookups hit a warm
# cache; one more run with the bench's 5,000 users shows what a cold cache adds
# (every user's first event waits for MariaDB). Rounds alternate the steps.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
EVENTS=${BENCH_COST_EVENTS:-100000}
ROUNDS=${BENCH_ROUNDS:-3}
dir=$(mktemp -d /tmp/eddy-bench-costs.XXXXXX)
: "${MYSQL_PORT:?run from scripts/bench.sh}"
trap 'rm -rf "$dir"' EXIT

# The steps, cumulative: each line is what its step adds to process(ev, ctx).
steps=(empty payload check lookup row money emit)
body[0]=''
body[1]='local p = ev.payload'
body[2]='ctx.check(p, PAYLOAD); if p.amount < 0 then ctx.reject("negative") end'
body[3]='local user = ctx.lookup("user_dim", p.userId)'
body[4]='local row = { event_id = ev.eventId, order_id = p.orderId, user_id = p.userId, amount = p.amount,
  status = STATUS[ev.type], status_time = ev.timestamp, last_event_id = ev.eventId,
  user_level = user and user.level, user_city = user and user.city,
  user_register_time = user and user.register_time }
row[TIME_COLUMN[ev.type]] = ev.timestamp'
body[5]='row.amount = money(ctx, p.amount)'
body[6]='ctx.emit("order_wide", row)'
# Everything above process() in order.lua (tables and money()), then the steps.
head=$(sed '/^return {/,$d' processors/order.lua)
code=''
for i in "${!steps[@]}"; do
  code+="${body[$i]}"$'\n'
  mkdir -p "$dir/${steps[$i]}"
  cat > "$dir/${steps[$i]}/order.lua" <<LUA
$head
return { name = "order", routes = { { domain = "order", type = "*" } },
  process = function(ev, ctx)
$code
  end }
LUA
done
mkdir -p "$dir/full"
cp processors/order.lua "$dir/full/"

# EVENTS order events over USERS users.
events() {
  awk -v n="$EVENTS" -v u="$1" 'BEGIN { srand(5); split("order_create order_pay order_cancel", t, " ")
    for (i = 1; i <= n; i++)
      printf "{\"domain\":\"order\",\"type\":\"%s\",\"timestamp\":%d,\"eventId\":\"ev-%d\",\"payload\":{\"orderId\":\"o-%d\",\"userId\":\"u-%d\",\"amount\":%d.%02d},\"version\":\"1.0\",\"source\":\"bench\"}\n",
             t[i % 3 + 1], 1700000000000 + i, i, int(rand() * 100000), int(rand() * u) + 1,
             int(rand() * 1000), int(rand() * 100) }'
}
events 100 > "$dir/warm.ndjson"
events 5000 > "$dir/cold.ndjson"
conf() {  # conf NAME PROCESSORS INPUT
  bench_conf "$dir/$1.conf" "$dir/$2" "$dir/$3" order_wide lookup.user_dim.table=user_dim \
    lookup.user_dim.key=user_id lookup.user_dim.columns=level,city,register_time
}
runs=("${steps[@]}" full cold)
for s in "${steps[@]}" full; do conf "$s" "$s" warm.ndjson; done
conf cold full cold.ndjson

run() {  # nanoseconds an event of one run (its start-up included, as a whole run's)
  rm -f "$dir/out.ndjson" "$dir/dlq.ndjson"
  local t0 t1
  t0=$(date +%s%N)
  bin/eddy run -c "$dir/$1.conf"
  t1=$(date +%s%N)
  [ ! -s "$dir/dlq.ndjson" ] || { echo "bench: $1 dead-lettered events:" >&2; head -3 "$dir/dlq.ndjson" >&2; exit 1; }
  echo $(( (t1 - t0) / EVENTS ))
}
declare -A ns
for r in $(seq "$ROUNDS"); do
  for s in "${runs[@]}"; do ns[$s]+="$(run "$s") "; done
done
median() { tr ' ' '\n' <<< "$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "Per-event costs: processors/order.lua step by step, $EVENTS order events, file to file,"
echo "median of $ROUNDS rounds (a step's cost is its time less the step before it's):"
prev=0
for s in "${steps[@]}"; do
  m=$(median "${ns[$s]}")
  case $s in
    empty)   what="read, decode, route, call an empty process(), run overhead" ;;
    payload) what="ev.payload: the payload as a Lua table" ;;
    check)   what="ctx.check of 3 fields" ;;
    lookup)  what="ctx.lookup, a warm cache (100 users)" ;;
    row)     what="the 11-field row table" ;;
    money)   what="money(): the amount as exact decimal text" ;;
    emit)    what="ctx.emit: JSON encoding, the file sink" ;;
  esac
  printf "  %-8s %6.2f us  %s\n" "$s" "$(awk -v a="$m" -v b="$prev" 'BEGIN { print (a - b) / 1000 }')" "$what"
  prev=$m
done
full=$(median "${ns[full]}"); cold=$(median "${ns[cold]}")
printf "  %-8s %6.2f us  the shipped order.lua, warm cache (the steps add up to %.2f)\n" total \
  "$(awk -v a="$full" 'BEGIN { print a / 1000 }')" "$(awk -v a="$prev" 'BEGIN { print a / 1000 }')"
printf "  %-8s %6.2f us  the same with 5,000 users, a cold cache: +%.2f us an event\n" cold \
  "$(awk -v a="$cold" 'BEGIN { print a / 1000 }')" "$(awk -v a="$cold" -v b="$full" 'BEGIN { print (a - b) / 1000 }')"
