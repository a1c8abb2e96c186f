# Windows on a Kafka source: the watermark is the minimum over partitions, and an idle
# partition stops holding it back after window.idle.timeout.ms.
. tests/kafka_lib.sh

d=$(newdir)
start_mock "$d" 1 2 events,events2,keyed,unkeyed,out,dlq
mkdir -p "$d/processors"
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = { tum = { kind = "tumbling", size_ms = 10000, key = "payload.d", agg = "count" } },
  process = function(ev, ctx) end,
  on_window = function(win, ctx)
    ctx.emit("out", { k = win.key, s = win.start, e = win["end"], r = win.result })
  end,
}
LUA
idle_conf() {  # idle_conf GROUP IDLE_MS TOPIC
  cat > "$d/eddy.conf" <<CONF
processors.dir=$d/processors
source.type=kafka
source.topics=$3
kafka.bootstrap.servers=$BOOT
kafka.group.id=$1
kafka.auto.offset.reset=earliest
sink.out.type=kafka
sink.out.topic=out
sink.dlq.type=kafka
sink.dlq.topic=dlq
dlq.sink=dlq
admin.listen=127.0.0.1:0
window.idle.timeout.ms=$2
CONF
}
iev() { printf '{"domain":"iot","type":"r","timestamp":%s,"eventId":"%s","payload":{"d":"%s"}}\n' "$@"; }
# Partition 1 gets one event at t=1000 and then nothing; partition 0 moves on to 45 s,
# produced once eddy has read the first three (so b is not late, whatever the order in
# which the partitions are fetched).
first() {
  iev 1000 p1 b | kcat -b "$BOOT" -P -t "$1" -p 1
  { iev 2000 a1 a; iev 3000 a2 a; } | kcat -b "$BOOT" -P -t "$1" -p 0
}
later() { { iev 25000 a3 a; iev 45000 a4 a; } | kcat -b "$BOOT" -P -t "$1" -p 0; }
windows_out() { kcat -b "$BOOT" -C -t out -e -q -f '%s\n' 2>/dev/null | jq -r '"\(.k) \(.s) \(.r)"' | sort; }
windows_count() { windows_out | wc -l; }

# Without idleness partition 1 holds the watermark at 1000: nothing may fire.
idle_conf held 0 events
first events
start_eddy "$d" held
wait_for done_reading "$d" held 3
later events
wait_for done_reading "$d" held 5
sleep 2
expect_eq "idle partition: without idle.timeout the silent partition holds every window back" \
  "" "$(windows_out)"
expect_eq "idle partition: the watermark is partition 1's time" "1" "$(metric "$d" held eddy_watermark_seconds)"
stop_eddy held
expect_eq "idle partition: SIGTERM exits 0 (and fires nothing)" "0 " "$STOP_RC $(windows_out)"

# With idle.timeout 500 ms partition 1 drops out; partition 0's watermark (45000) fires
# [0,10000) for a (2) and b (1), and [20000,30000) for a (1). A new group reads the
# topic from the start: the first three events, then the two later ones.
idle_conf idle 500 events2
first events2
start_eddy "$d" idle
wait_for done_reading "$d" idle 3
later events2
wait_ge 3 windows_count
expect_eq "idle partition: after idle.timeout the other partition's time fires the windows" \
"a 0 2
a 20000 1
b 0 1" "$(windows_out)"
stop_eddy idle
expect_eq "idle partition: exits 0" "0" "$STOP_RC"

# State and windows are per input partition: a key whose events arrive on two partitions
# has its values split, and eddy says so (eddy_state_keys_split_total, one log line).
# Five merchants, eight payments each, keyed by merchant (merchant i on partition i % 2)
# and then round robin (every merchant on both partitions).
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "pay", type = "*" } },
  windows = { per_merchant = { kind = "tumbling", size_ms = 10000, key = "payload.m", agg = "count" } },
  process = function(ev, ctx)
    ctx.state.set("total|" .. ev.payload.m, (ctx.state.get("total|" .. ev.payload.m) or 0) + 1)
  end,
  on_window = function(win, ctx) end,
}
LUA
pay() {  # pay TOPIC keyed|unkeyed
  local i j p
  for j in $(seq 0 7); do for i in $(seq 0 4); do
    p=$((i % 2)); [ "$2" = unkeyed ] && p=$(((j + i) % 2))
    printf '{"domain":"pay","type":"p","timestamp":%d,"eventId":"p%d-%d","payload":{"m":"m%d"}}\n' \
      $((1000 + j)) "$i" "$j" "$i" | kcat -b "$BOOT" -P -t "$1" -p "$p"
  done; done
}
split_of() { metric "$d" "$1" 'eddy_state_keys_split_total{processor="w"}'; }
for input in keyed unkeyed; do
  idle_conf "split-$input" 0 "$input"
  pay "$input" "$input"
  start_eddy "$d" "$input"
  wait_for done_reading "$d" "$input" 40
done
expect_eq "split keys: input keyed by merchant splits no key, and says nothing" "0 0" \
  "$(split_of keyed) $(grep -c 'is kept in input partitions' "$d/keyed.err")"
expect_eq "split keys: round-robin input splits each merchant's state and window key" 10 \
  "$(split_of unkeyed)"
expect_eq "split keys: ... and the log says so once for the state and once for the window, naming a key and both partitions" "1 1" \
  "$(grep -cE "processor w: key 'total\|m[0-4]' is kept in input partitions [01] and [01]" "$d/unkeyed.err") $(grep -cE "window per_merchant: key 'm[0-4]' is kept in input partitions [01] and [01]" "$d/unkeyed.err")"
stop_eddy keyed; stop_eddy unkeyed
stop_mock
