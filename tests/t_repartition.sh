# Keyed processing whatever the input's partitioning, against a real Apache Kafka
# broker: a processor that declares `key = "payload.m"` reads input produced with no
# key (spread at random over 8 partitions) through its repartition topic. Its
# per-merchant totals and window counts equal those of a single-partition run (the
# same events from a file), under exactly_once, through a SIGKILL mid-stream. Without
# the declaration the split keys are counted and logged.
. tests/kafka_lib.sh
. tests/broker_lib.sh
. tests/eos_lib.sh

d=$(newdir)
start_broker "$d" events,out,dlq,plainout 8
mkdir -p "$d/processors" "$d/plain/processors" "$d/file/processors"
# merchants.lua [KEY_LINE]: running count and total per merchant, and a count per
# merchant and minute.
merchants() {
  cat <<LUA
return {
  name = "merchants",
  $1
  routes = { { domain = "pay", type = "*" } },
  windows = { per_min = { kind = "tumbling", size_ms = 60000, key = "payload.m", agg = "count" } },
  process = function(ev, ctx)
    local m = ev.payload.m
    if not m then ctx.reject("no merchant") end
    local s = ctx.state.get(m) or { n = 0, total = 0 }
    s.n, s.total = s.n + 1, s.total + ev.payload.a
    ctx.state.set(m, s)
    ctx.emit("out", { id = ev.eventId, m = m, n = s.n, total = s.total })
  end,
  on_window = function(win, ctx)
    ctx.emit("out", { win = win.start, m = win.key, count = win.result })
  end,
}
LUA
}
merchants 'key = "payload.m",' > "$d/processors/merchants.lua"
merchants 'key = "payload.m",' > "$d/file/processors/merchants.lua"
merchants '' > "$d/plain/processors/merchants.lua"
# 20,000 payments of 20 merchants over 200 s of event time, 5 of them without a
# merchant; then (produced last) one far later that closes every window.
awk 'BEGIN { for (i = 1; i <= 20000; i++)
  printf "{\"domain\":\"pay\",\"type\":\"p\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{%s\"a\":%d}}\n",
         1000000 + i * 10, i, (i % 4000 ? sprintf("\"m\":\"m%d\",", (i * 7) % 20) : ""), i % 97 }' \
  > "$d/events.ndjson"
last='{"domain":"pay","type":"p","timestamp":9000000,"eventId":"zz","payload":{"m":"zz","a":1}}'

# The single-partition run: the same events from a file.
write_conf "$d/file" "source.file.path=$d/events.ndjson" "processors.dir=$d/file/processors"
"$EDDY" run -c "$d/file/eddy.conf" >/dev/null 2>"$d/file.err"
expect_eq "repartition: the single-partition run reads the file" 0 "$?"
finals() { jq -r 'select(.id) | "\(.m) \(.n) \(.total)"' | sort -k1,1 -k2,2n |
             awk '{ last[$1] = $0 } END { for (m in last) print last[m] }' | sort; }
windows() { jq -r 'select(.win != null and .m != "zz") | "\(.m) \(.win) \(.count)"' | sort; }
finals < "$d/file/out.ndjson" > "$d/want-finals"
windows < "$d/file/out.ndjson" > "$d/want-windows"
check "repartition: the reference has 20 merchants' totals and their minutes" \
  test "$(wc -l < "$d/want-finals")" = 20 -a "$(wc -l < "$d/want-windows")" -ge 80

# Declared, exactly once, with a changelog: the input produced with no key (the
# producer spreads it over the 8 partitions at random) while A reads it; A is
# SIGKILLed mid-stream and B takes over.
produce_unkeyed() { kcat -b "$BOOT" -P -t events < "$1"; }
produce_paced "$d/events.ndjson" 20 0.5 produce_unkeyed
eos_conf "$d" rp state.changelog=true commit.interval.ms=500 \
  window.out.of.orderness.ms=600000 window.idle.timeout.ms=2000
MOCK_DIR=$d
start_eddy "$d" a
check "repartition: the repartition topic is created with the input's 8 partitions" \
  wait_for grep -q "topic rp-merchants-repartition created: 8 partitions" "$d/a.err"
check "repartition: ... and read with the range assignor" \
  wait_for grep -q "subscribed to events,rp-merchants-repartition (partition.assignment.strategy=range" "$d/a.err"
wait_for grep -q "partitions restored from" "$d/a.err"
sleep 3; stop_eddy a KILL
start_eddy "$d" b
wait "$PRODUCER_PID"
outputs_in() { [ "$(committed out | grep -c '"id"')" -ge "$1" ]; }
check "repartition: every output arrives (read_committed)" wait_for outputs_in 19995
echo "$last" | kcat -b "$BOOT" -P -t events
windows_in() { [ "$(committed out | grep -c '"win"')" -ge "$(wc -l < "$d/want-windows")" ]; }
check "repartition: the late event closes every window" wait_for windows_in
sleep 1
committed out > "$d/got-all"
jq -r 'select(.id and .m != "zz") | "\(.m) \(.n)"' "$d/got-all" | sort > "$d/seq"
bad=$(awk '{ c[$1]++; n[$1 " " $2]++ } END { for (k in n) if (n[k] > 1) print "repeat " k;
             for (m in c) for (i = 1; i <= c[m]; i++) if (!((m " " i) in n)) print "gap " m " " i }' "$d/seq")
check "repartition: each merchant's outputs are numbered 1..n once each" test -z "$bad"
finals < "$d/got-all" | grep -v '^zz ' > "$d/got-finals"
check "repartition: per-merchant totals equal the single-partition run's" \
  same_lines "$d/want-finals" "$d/got-finals"
windows < "$d/got-all" > "$d/got-windows"
check "repartition: per-merchant window counts equal the single-partition run's" \
  same_lines "$d/want-windows" "$d/got-windows"
expect_eq "repartition: the payments without a merchant are dead letters, once" 5 \
  "$(kcat -b "$BOOT" -C -t dlq -e -q -X isolation.level=read_committed -f '%h\n' |
     grep -c 'keyed by payload.m and the event has no')"
n=$(metric "$d" b 'eddy_repartition_records_total{processor="merchants"}')
check "repartition: B counts its repartitioned events ($n)" test "${n:-0}" -gt 0
expect_eq "repartition: no key is split" 0 "$(metric "$d" b 'eddy_state_keys_split_total{processor="merchants"}')"
check "repartition: GET /-/processors shows the processor's key" \
  jq -e '.processors[] | select(.name == "merchants") | .key == "payload.m"' \
  <<<"$(curl -fsS "http://127.0.0.1:$(grep -o 'listening on 127.0.0.1:[0-9]*' "$d/b.err" | cut -d: -f2)/-/processors")"
# The key cannot change by a reload: the running version stays.
cp "$d/processors/merchants.lua" "$d/merchants.lua.kept"
merchants 'key = "payload.a",' > "$d/processors/merchants.lua"
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$d/b.err" | cut -d: -f2)
check "repartition: a reload that changes the key is refused" \
  grep -q "its key changed from payload.m to payload.a" <<<"$(curl -sf -X POST "http://127.0.0.1:$port/-/reload")"
cp "$d/merchants.lua.kept" "$d/processors/merchants.lua"
stop_eddy b; expect_eq "repartition: B stops cleanly" 0 "$STOP_RC"

check "repartition: the unkeyed input was spread over all 8 partitions" \
  test "$(kcat -b "$BOOT" -C -t events -e -q -f '%p\n' | sort -u | wc -l)" = 8

# Without the declaration the per-partition state is split, and eddy says so.
kafka_out_conf "$d/plain" plain plainout
start_eddy "$d/plain" plain
MOCK_DIR=$d/plain
check "repartition: undeclared, the input is read" wait_read "$d/plain" plain 20001
split=$(metric "$d/plain" plain 'eddy_state_keys_split_total{processor="merchants"}')
check "repartition: undeclared, split keys are counted ($split)" test "${split:-0}" -gt 0
check "repartition: ... and logged once, with the way out" \
  test "$(grep -c "processor merchants: key 'm[0-9]*' is kept in input partitions .*(declare the processor's key" "$d/plain/plain.err")" = 1
stop_eddy plain

# Input declared keyed by the key: no hop. An assignment strategy that cannot keep the
# topics co-partitioned is refused at start.
eos_conf "$d" direct source.keyed.by=payload.m
start_eddy "$d" c
check "repartition: source.keyed.by the key reads the input directly" \
  wait_for grep -q "kafka source: subscribed to events (" "$d/c.err"
stop_eddy c
check "repartition: ... with no repartition topic" \
  test -z "$(kcat -b "$BOOT" -L 2>/dev/null | grep direct-merchants-repartition)"
eos_conf "$d" coop kafka.partition.assignment.strategy=cooperative-sticky
"$EDDY" run -c "$d/eddy.conf" >/dev/null 2>"$d/coop.err"
expect_eq "repartition: cooperative-sticky with a repartition is a config error" 2 "$?"
check "repartition: ... naming file, line and key" \
  grep -q "eddy.conf:[0-9]*: kafka.partition.assignment.strategy: processor merchants declares key=payload.m" "$d/coop.err"
stop_broker
