# Checkpoints: a run killed with SIGKILL and restarted from its checkpoint gives the
# same state, window and timer outputs as a run that was never interrupted (outputs
# replayed after the checkpoint come twice: at least once); without a checkpoint the
# same kill loses the state, which the comparison sees. A damaged checkpoint stops eddy.
. tests/kafka_lib.sh

d=$(newdir)
start_mock "$d" 1 2 events,outA,outB,outC,outD,dlq
mkdir -p "$d/processors"
# Per device: a running count in keyed state (emitted with each event), a tumbling count,
# a sliding sum, the same sum by Lua add and merge (kept per 10 s slice, merged when a
# window fires), and an event-time timer 15 s after its latest event. The loop makes each
# event cost ~0.3 ms (1000 events a loop turn), so the kill lands mid-stream.
cat > "$d/processors/ck.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    tum = { kind = "tumbling", size_ms = 10000, key = "payload.d", agg = "count" },
    sli = { kind = "sliding", size_ms = 20000, slide_ms = 10000, key = "payload.d", agg = "sum:payload.v" },
    lsl = { kind = "sliding", size_ms = 20000, slide_ms = 10000, key = "payload.d",
            add = function(acc, ev) return (acc or 0) + ev.payload.v end,
            merge = function(a, b) return a + b end },
  },
  process = function(ev, ctx)
    local x = 0
    for i = 1, 100000 do x = x + i % 7 end
    local d = ev.payload.d
    local n = (ctx.state.get(d) or 0) + 1
    ctx.state.set(d, n)
    ctx.timer(d, ev.timestamp + 15000, "quiet")
    ctx.emit("out", { kind = "seen", k = d, n = n, id = ev.eventId, x = x > 0 })
  end,
  on_window = function(win, ctx)
    ctx.emit("out", { kind = win.name, k = win.key, s = win.start, r = win.result })
  end,
  on_timer = function(key, tag, ctx)
    ctx.emit("out", { kind = tag, k = key, n = ctx.state.get(key) })
  end,
}
LUA
ck_conf() {  # ck_conf GROUP OUT_TOPIC [key=value...]
  kafka_out_conf "$d" "$1" "$2" "kafka.auto.commit.interval.ms=200" "${@:3}"
}
# 12000 events of 20 devices, 100 ms apart; even devices on partition 0, odd on 1, then
# one event per partition far ahead, which fires every window and timer. Produced in two
# halves, so that B can checkpoint the first and be killed inside the second.
N=12000
awk -v n=$N 'BEGIN { for (i = 0; i < n; i++) { dev = i % 20
  printf "%d\t%d\t{\"domain\":\"iot\",\"type\":\"r\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"d\":\"d%02d\",\"v\":%d}}\n",
    i < n / 2 ? 1 : 2, dev % 2, 1000000 + i * 100, i, dev, i % 13 }
  for (p = 0; p < 2; p++)
    printf "2\t%d\t{\"domain\":\"iot\",\"type\":\"r\",\"timestamp\":9000000000,\"eventId\":\"end%d\",\"payload\":{\"d\":\"end%d\",\"v\":0}}\n", p, p, p }' > "$d/events.tsv"
produce_half() {
  for p in 0 1; do
    awk -F'\t' -v h=$1 -v p=$p '$1 == h && $2 == p { print $3 }' "$d/events.tsv" |
      kcat -b "$BOOT" -P -t events -p $p
  done
}
TOTAL=$((N + 2))
outs() { kcat -b "$BOOT" -C -t "$1" -e -q -f '%s\n' 2>/dev/null | jq -cS . | sort -u; }
ckpts_above() { local v; v=$(metric "$d" "$1" eddy_checkpoints_total); [ -n "$v" ] && [ "$v" -gt "$2" ]; }
has_ckpt() { [ -s "$1/partition-0.ckpt" ] && [ -s "$1/partition-1.ckpt" ]; }
FAST_REJOIN="kafka.session.timeout.ms=6000 kafka.heartbeat.interval.ms=1000"

# B: checkpoints the first half, is killed with SIGKILL inside the second half (well
# before its next checkpoint), and restarts on the same state.dir. Its first run's lsl
# has no merge, so it keeps an accumulator per window; the restart, with merge, goes on
# with those windows' accumulators and adds to slices.
cp "$d/processors/ck.lua" "$d/ck.lua"
grep -v 'merge = function' "$d/ck.lua" | sed 's/add = function(acc, ev) return (acc or 0) + ev.payload.v end,/add = function(acc, ev) return (acc or 0) + ev.payload.v end },/' > "$d/processors/ck.lua"
produce_half 1
ck_conf B outB "state.dir=$d/stB" "checkpoint.interval.ms=3000" $FAST_REJOIN
start_eddy "$d" B
wait_for done_reading "$d" B $((N / 2))
seen=$(metric "$d" B eddy_checkpoints_total)
wait_for ckpts_above B "$seen"
produce_half 2
# Outputs, not the admin endpoint, tell how far it got: a busy loop answers HTTP late.
seen_on() { kcat -b "$BOOT" -C -t "$1" -e -q -f '%s\n' 2>/dev/null | grep -c '"seen"'; }
past() { [ "$(seen_on "$1")" -ge "$2" ]; }
wait_for past outB $((N / 2 + 300))
stop_eddy B KILL
killed_at=$(seen_on outB)
check "checkpoint: the kill landed in the second half ($killed_at of $TOTAL events out)" \
  test "$killed_at" -lt "$TOTAL"
check "checkpoint: the checkpoint files exist when killed" has_ckpt "$d/stB"
cp "$d/B.err" "$d/B1.err"
cp "$d/ck.lua" "$d/processors/ck.lua"
start_eddy "$d" B
wait_for grep -q 'checkpoint: partition 1 restored' "$d/B.err"
wait_for done_reading "$d" B $((TOTAL - N / 2))
check "checkpoint: the restart restored both partitions" \
  test "$(grep -c 'checkpoint: partition [01] restored' "$d/B.err")" = 2
check "checkpoint: and resumed from the checkpoint's offsets" \
  grep -q 'resumes at offset [1-9][0-9]* of its checkpoint' "$d/B.err"
check "checkpoint: the checkpoint metrics are exported" \
  test -n "$(metric "$d" B eddy_checkpoint_duration_seconds)" -a -n "$(metric "$d" B eddy_checkpoint_bytes)"
stop_eddy B
expect_eq "checkpoint: the restarted run exits 0" 0 "$STOP_RC"
raw=$(kcat -b "$BOOT" -C -t outB -e -q -f '%s\n' 2>/dev/null | grep -c '"seen"')
check "checkpoint: events after the checkpoint were processed again ($raw seen records for $TOTAL events)" \
  test "$raw" -gt "$TOTAL"

# A: the same input, never interrupted.
ck_conf A outA "state.dir=$d/stA" "checkpoint.interval.ms=100"
start_eddy "$d" A
wait_for done_reading "$d" A $TOTAL
outs outA > "$d/A.out"
# Its state from outside: 12,000 events of 20 devices, 600 of d04's (partition 0).
aport=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$d/A.err" | head -1 | cut -d: -f2)
live=$(curl -fsS "http://127.0.0.1:$aport/-/state/ck?key=d04")
check "GET /-/state/<processor>?key=: the key's value and partition" \
  jq -e '.processor == "ck" and .state == [{"partition": 0, "key": "d04", "value": 600, "expires_ms": null}]' <<<"$live"
live=$(curl -fsS "http://127.0.0.1:$aport/-/state/ck?key=end1")
check "GET /-/state/<processor>?key=: the key's open windows (the last event's; lsl's are slices)" \
  jq -e '[.windows[] | select(.key == "end1" and (.slice | not)) | .window] | sort ==
         ["sli", "sli", "tum"]' <<<"$live"
check "GET /-/state/<processor>?key=: ... and the one slice holding both of lsl's sums" \
  jq -e '[.windows[] | select(.slice)] == [{"window": "lsl", "partition": 1, "key": "end1",
         "start": 9000000000, "end": 9000010000, "events": 1, "acc": 0, "slice": true}]' <<<"$live"
expect_eq "eddy_window_slices: one slice each for end0 and end1, every other one merged and gone" \
  2 "$(metric "$d" A 'eddy_window_slices{processor="ck"}')"
check "GET /-/state/<processor>?limit=: at most that many entries, marked truncated" \
  jq -e '(.state | length) == 5 and .truncated' <<<"$(curl -fsS "http://127.0.0.1:$aport/-/state/ck?limit=5")"
expect_eq "GET /-/state/<unknown>: 404" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$aport/-/state/nope")"
stop_eddy A
expect_eq "checkpoint: the uninterrupted run exits 0" 0 "$STOP_RC"
# The same offline, from the checkpoint it left.
check "eddy state: a key's value from the checkpoint directory" \
  jq -e '.state == [{"partition": 0, "key": "d04", "value": 600, "expires_ms": null}]' \
  <<<"$("$EDDY" state -c "$d/eddy.conf" ck d04)"
check "eddy state: every key of every partition without a key" \
  jq -e '[.state[].key] | length == 22' <<<"$("$EDDY" state -c "$d/eddy.conf" ck)"
rc=0; "$EDDY" state -c "$d/eddy.conf" nope >/dev/null 2>"$d/state.err" || rc=$?
expect_eq "eddy state: an unknown processor exits 2" 2 "$rc"
check "checkpoint: the uninterrupted run wrote every kind of output" \
  test "$(jq -r .kind "$d/A.out" | sort -u | tr '\n' ' ')" = "lsl quiet seen sli tum "
sums() { jq -r "select(.kind == \"$1\") | [.k, .s, .r] | map(tostring) | join(\" \")" "$d/A.out" | sort; }
check "checkpoint: the sliced Lua sums equal the built-in sliding sums, window by window" \
  test "$(sums lsl)" = "$(sums sli)" -a "$(sums sli | wc -l)" -gt 1000
expect_eq "checkpoint: one 'seen' record per event" "$TOTAL" "$(grep -c '"seen"' "$d/A.out")"
expect_eq "checkpoint: killed and restarted gives the uninterrupted run's outputs" \
  "$(cat "$d/A.out")" "$(outs outB)"

# C: the same kill without state.dir: the state is gone and the outputs differ, so the
# comparison above would have seen a lost checkpoint.
ck_conf C outC $FAST_REJOIN
start_eddy "$d" C
wait_for past outC $((N / 2))
stop_eddy C KILL
start_eddy "$d" C
wait_for done_reading "$d" C $((TOTAL - N / 2))
check "checkpoint: without checkpoints the same kill changes the outputs" \
  test "$(outs outC)" != "$(cat "$d/A.out")"
stop_eddy C

# D: with merge from its first run, so lsl's windows are slices only, checkpointed
# every second, killed midway and restarted: the slices and where their windows had
# fired to come back from the checkpoint.
ck_conf D outD "state.dir=$d/stD" "checkpoint.interval.ms=1000" $FAST_REJOIN
start_eddy "$d" D
wait_for ckpts_above D 0
wait_for past outD $((N / 2))
stop_eddy D KILL
lsl_out() { outs "$1" | grep -c '"lsl"'; }
check "checkpoint: sliced windows killed before their last firing ($(lsl_out outD) of $(grep -c '"lsl"' "$d/A.out") lsl outputs)" \
  test "$(lsl_out outD)" -lt "$(grep -c '"lsl"' "$d/A.out")"
start_eddy "$d" D
wait_for grep -q 'checkpoint: partition 1 restored' "$d/D.err"
wait_ge "$(grep -c '"lsl"' "$d/A.out")" lsl_out outD
wait_for done_reading "$d" D 1
expect_eq "checkpoint: sliced windows restored from their slices give the uninterrupted run's outputs" \
  "$(cat "$d/A.out")" "$(outs outD)"
stop_eddy D

# A damaged checkpoint is refused, naming the file; nothing is read.
printf 'X' | dd of="$d/stA/partition-1.ckpt" bs=1 seek=20 conv=notrunc 2>/dev/null
ck_conf A outA "state.dir=$d/stA"
start_eddy "$d" A
wait_for grep -q 'damaged' "$d/A.err"
for i in $(seq 100); do kill -0 "$EDDY_PID_A" 2>/dev/null || break; sleep 0.1; done
stop_eddy A
expect_eq "checkpoint: a damaged checkpoint stops eddy with exit 1" 1 "$STOP_RC"
check "checkpoint: the error names the file and says damaged" \
  grep -q "stA/partition-1.ckpt: damaged (checksum mismatch)" "$d/A.err"
stop_mock

# A checkpoint waits for its outputs on the loop. Outputs go to a broker that answers
# every request 1.5 s late, and a checkpoint is due every 300 ms, so one is nearly
# always waiting; the loop still answers /metrics itself (an answer from the endpoint's
# cache, because the loop was busy, would carry X-Eddy-Stale-Ms), and the checkpoints
# still complete.
d=$(newdir)
start_mock "$d" 2 2 events,out,dlq
for p in 0 1; do mock_cmd "leader events $p 1"; mock_cmd "leader out $p 2"; mock_cmd "leader dlq $p 1"; done
mock_cmd "coordinator slowck 1"
mkdir -p "$d/processors"
cat > "$d/processors/count.lua" <<'LUA'
return { routes = { { domain = "d", type = "*" } },
  process = function(ev, ctx)
    local n = (ctx.state.get("n") or 0) + 1
    ctx.state.set("n", n)
    ctx.emit("out", { id = ev.eventId, n = n })
  end }
LUA
kafka_out_conf "$d" slowck out "state.dir=$d/st" checkpoint.interval.ms=300
mock_cmd "rtt 2 1500"
start_eddy "$d" A
wait_for admin_up "$d/A.err"
port=$(admin_port "$d/A.err")
wait_for grep -q "partitions assigned" "$d/A.err"
# 20 events every 100 ms for 5 s: outputs are always on their way to the slow broker.
( for c in $(seq 50); do
    for i in $(seq $((c * 20 - 19)) $((c * 20))); do
      printf '%s\t{"domain":"d","type":"t","timestamp":%s,"eventId":"e%s","payload":{}}\n' $i $i $i
    done | kcat -b "$BOOT" -P -t events -K '\t'
    sleep 0.1
  done ) 7>&- &
FEED=$!
sleep 1
: > "$d/metr"
for i in $(seq 10); do
  curl -s -D "$d/metr.h" -o /dev/null -m 0.1 -w '%{http_code}\n' "http://127.0.0.1:$port/metrics" >> "$d/metr"
  grep -qi '^X-Eddy-Stale-Ms' "$d/metr.h" && echo stale >> "$d/metr"
  sleep 0.2
done
expect_eq "checkpoint: /metrics answered 200 within 100 ms while checkpoints wait for a slow broker, 10 of 10" \
  10 "$(grep -c '^200$' "$d/metr")"
expect_eq "checkpoint: answered by the loop, not from its cache, 10 of 10" 0 \
  "$(grep -c '^stale$' "$d/metr")"
wait $FEED
taken() { [ "$(metric "$d" A eddy_checkpoints_total)" -ge 2 ] 2>/dev/null; }
check "checkpoint: checkpoints are still taken with the slow broker" wait_for taken
mock_cmd "rtt 2 0"
stop_eddy A
expect_eq "checkpoint: eddy stops cleanly after checkpoints with a slow broker" 0 "$STOP_RC"

# The periodic checkpoint is written by a forked child. One it cannot write (partition
# 0's temporary file is a directory) is reported by the worker with the child's reason
# and counted; the worker goes on, its other partition's file is written, and the next
# checkpoints are tried again.
mkdir -p "$d/badst/partition-0.ckpt.tmp"
kafka_out_conf "$d" badck out "state.dir=$d/badst" checkpoint.interval.ms=300
start_eddy "$d" B
wait_for grep -q "partitions assigned" "$d/B.err"
for p in 0 1; do
  printf '{"domain":"d","type":"t","timestamp":1,"eventId":"bad%s","payload":{}}\n' $p |
    kcat -b "$BOOT" -P -t events -p $p
done
failed_twice() { [ "$(metric "$d" B eddy_checkpoint_failures_total)" -ge 2 ] 2>/dev/null; }
check "checkpoint: a checkpoint the child cannot write is counted as failed, and tried again" \
  wait_for failed_twice
check "checkpoint: ... the worker logs the child's reason, naming the partition and file" \
  grep -q "error checkpoint of partition 0: .*partition-0.ckpt.tmp: Is a directory" "$d/B.err"
check "checkpoint: ... and the other partition's file is written" test -s "$d/badst/partition-1.ckpt"
check "checkpoint: ... while the loop answers /metrics" test -n "$(metric "$d" B eddy_checkpoint_pause_seconds)"
stop_eddy B
expect_eq "checkpoint: eddy stops cleanly with a checkpoint it cannot write" 0 "$STOP_RC"
stop_mock

# Offsets are committed with the checkpoints, as Flink commits them. Partition 1's events
# are checkpointed before partition 0 has any; partition 0's are then done (the group
# would commit them within kafka.auto.commit.interval.ms) but in no checkpoint when eddy
# is SIGKILLed. The restart must read partition 0 again from its start, not resume at a
# committed offset with its state gone: every key's count then goes on with no gap.
d=$(newdir)
start_mock "$d" 1 2 events,out,dlq
mkdir -p "$d/processors"
cat > "$d/processors/cnt.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  process = function(ev, ctx)
    local d = ev.payload.d
    local n = (ctx.state.get(d) or 0) + 1
    ctx.state.set(d, n)
    ctx.emit("out", { k = d, n = n, id = ev.eventId })
  end,
}
LUA
# produce_part PARTITION FROM COUNT: events FROM.. of devices d<p>0..d<p>9
produce_part() {
  awk -v p=$1 -v from=$2 -v n=$3 'BEGIN { for (i = from; i < from + n; i++)
    printf "{\"domain\":\"iot\",\"type\":\"r\",\"timestamp\":%d,\"eventId\":\"p%d-%d\",\"payload\":{\"d\":\"d%d%d\"}}\n",
      1000000 + i, p, i, p, i % 10 }' | kcat -b "$BOOT" -P -t events -p $1
}
kafka_out_conf "$d" cm out "kafka.auto.commit.interval.ms=200" "state.dir=$d/st" \
  "checkpoint.interval.ms=5000" $FAST_REJOIN
produce_part 1 0 2000
start_eddy "$d" E
wait_for done_reading "$d" E 2000
wait_for ckpts_above E 0
produce_part 0 0 2000
wait_for done_reading "$d" E 4000
sleep 1
expect_eq "commit with checkpoints: partition 0 was done after the only checkpoint" \
  1 "$(metric "$d" E eddy_checkpoints_total)"
stop_eddy E KILL
check "commit with checkpoints: ... and has no checkpoint file when killed" \
  test -s "$d/st/partition-1.ckpt" -a ! -e "$d/st/partition-0.ckpt"
start_eddy "$d" E
wait_for grep -q 'checkpoint: partition 1 restored' "$d/E.err"
produce_part 0 2000 1000
produce_part 1 2000 1000
outs_of() { kcat -b "$BOOT" -C -t out -e -q -f '%s\n' 2>/dev/null | grep -c "\"$1\""; }
last_out() { [ "$(outs_of p0-2999)" -ge 1 ] && [ "$(outs_of p1-2999)" -ge 1 ]; }
wait_for last_out
expect_eq "commit with checkpoints: the restart read partition 0 from its start" \
  4000 "$(metric "$d" E eddy_records_read_total)"
stop_eddy E
expect_eq "commit with checkpoints: the restart exits 0" 0 "$STOP_RC"
kcat -b "$BOOT" -C -t out -e -q -f '%s\n' | jq -r '"\(.id) \(.k) \(.n)"' | sort -u > "$d/pairs"
expect_eq "commit with checkpoints: one count per event, none lost or counted twice" \
  "6000 6000" "$(wc -l < "$d/pairs") $(cut -d' ' -f1 "$d/pairs" | sort -u | wc -l)"
expect_eq "commit with checkpoints: each key's last count is its number of events" \
  "20 300" "$(awk '$3 > m[$2] { m[$2] = $3 } END { for (k in m) print m[k] }' "$d/pairs" |
             sort | uniq -c | awk '{ print $1, $2 }')"
# SIGTERM's checkpoint is committed: the group, without state.dir, has nothing to read.
kafka_out_conf "$d" cm out
start_eddy "$d" F
wait_for grep -q "partitions assigned" "$d/F.err"
sleep 2
expect_eq "commit with checkpoints: the last checkpoint's offsets are the group's" \
  0 "$(metric "$d" F eddy_records_read_total)"
stop_eddy F

# A partition given up in a rebalance is checkpointed then, where its state stands
# (and those offsets committed, which the mock refuses during a rebalance): the member
# that takes it over restores it from the state.dir they share and reads nothing again.
# X (no periodic checkpoint in the test's time) has read both partitions when Y joins
# its group; with eager assignment X gives both up, then gets one back.
kafka_out_conf "$d" rv out "state.dir=$d/shared" "checkpoint.interval.ms=600000" \
  kafka.partition.assignment.strategy=range $FAST_REJOIN
start_eddy "$d" X
wait_for done_reading "$d" X 6000
start_eddy "$d" Y
wait_for grep -q 'checkpoint of 2 revoked partitions written' "$d/X.err"
check "rebalance: the member giving partitions up checkpoints them" has_ckpt "$d/shared"
wait_for grep -q 'checkpoint: partition [01] restored' "$d/Y.err"
sleep 2
expect_eq "rebalance: ... so the member taking one over reads nothing again" \
  0 "$(metric "$d" Y eddy_records_read_total)"
stop_eddy Y
stop_eddy X
stop_mock
