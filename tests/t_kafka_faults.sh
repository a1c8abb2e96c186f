# Kafka under faults, against the mock cluster: broker down and retriable errors,
# SIGKILL and restart, a member leaving the group, a slow sink. Nothing may be missing.
. tests/kafka_lib.sh

# Broker down for 5 s mid-stream, retriable Produce and Fetch errors, leader changes.
scenario 20000 21 2 3
kafka_conf "$d" faults
start_eddy "$d" a
produce_paced "$d/events.ndjson" 10 0.5
sleep 1.5
mock_cmd "down 2"; sleep 5; mock_cmd "up 2"
mock_cmd "error Produce 5 6"; mock_cmd "error Fetch 5 6"    # 6: NOT_LEADER_OR_FOLLOWER
mock_cmd "leader events 0 3"; mock_cmd "leader out 1 2"     # leaders move mid-stream
wait "$PRODUCER_PID"
check "faults: broker down 5 s, Produce/Fetch errors, leader changes: no eventId missing" \
  wait_covered "$d/manifest.tsv"
pass "faults: duplicates after broker down: $(duplicates "$d/out")"
stop_eddy a; expect_eq "faults: eddy still exits 0 after the outage" 0 "$STOP_RC"
stop_mock

# SIGKILL mid-stream, then a restart in the same group.
scenario 20000 22 2
kill_restart faults
stop_mock

# Two members in one group; one leaves mid-stream, the other takes its partitions.
scenario 20000 23 2
# The mock coordinator rebalances only when a leaver's session expires.
kafka_conf "$d" pair kafka.session.timeout.ms=6000 kafka.heartbeat.interval.ms=1000
start_eddy "$d" a; start_eddy "$d" b
wait_for grep -q "partitions assigned" "$d/a.err"; wait_for grep -q "partitions assigned" "$d/b.err"
check "group: the partitions are split between the two" bash -c \
  "grep -q '2 partitions assigned' '$d/a.err' && grep -q '2 partitions assigned' '$d/b.err'"
produce_paced "$d/events.ndjson" 10 0.4
sleep 1.5
stop_eddy a; expect_eq "group: the member that leaves exits 0" 0 "$STOP_RC"
wait "$PRODUCER_PID"
check "group: the other takes over: no eventId missing" wait_covered "$d/manifest.tsv"
dups=$(duplicates "$d/out")
# The leaver committed all it finished and B kept its own partitions (cooperative).
expect_eq "group: a clean hand-over makes no duplicates" 0 "$dups"
expect_eq "group: the one left holds all 4 partitions" 4 \
  "$(awk '/partitions assigned/ { n += $(NF-2) } /partitions revoked/ { n -= $(NF-5) } END { print n }' "$d/b.err")"
stop_eddy b; expect_eq "group: the other stops cleanly" 0 "$STOP_RC"
stop_mock

# A slow sink: few unfinished events allowed and slow acknowledgements make the source
# pause and resume its partitions, without leaving the group.
scenario 5000 24 2
produce "$d/events.ndjson"
kafka_conf "$d" slow source.max.inflight=20 kafka.linger.ms=50
start_eddy "$d" a
check "backpressure: all 5,000 read and finished" wait_read "$d" a 5000
pauses=$(metric "$d" a eddy_kafka_pauses_total)
check "backpressure: partitions were paused ($pauses times)" test "${pauses:-0}" -gt 0
expect_eq "backpressure: no rebalance beyond the first assignment" 1 \
  "$(metric "$d" a eddy_kafka_rebalances_total)"
check "backpressure: no eventId missing" covered_now "$d/manifest.tsv"
port=$(admin_port "$d/a.err")
expect_eq "backpressure: eddy_kafka_records_in_total: 4 partitions, 5,000 records in all" "4 5000" \
  "$(curl -fsS "http://127.0.0.1:$port/metrics" |
     awk '$1 ~ /^eddy_kafka_records_in_total\{topic="events",partition="[0-3]"\}$/ { n++; s += $2 }
          END { print n + 0, s + 0 }')"
stop_eddy a; expect_eq "backpressure: eddy stops cleanly" 0 "$STOP_RC"
stop_mock

# A record Kafka refuses for good (MESSAGE_TOO_LARGE, not retriable) is dead-lettered
# as sink_error, with the output as value and the input's origin; nothing is lost.
scenario 2000 31 0
produce "$d/events.ndjson"
mock_cmd "error Produce 1 10"
kafka_conf "$d" refused
start_eddy "$d" a
check "refused: all 2,000 read and finished" wait_read "$d" a 2000
refused=$(kcat -b "$BOOT" -C -t dlq -e -q -f '%h\n' | grep -c 'eddy.reason=sink_error,eddy.detail=sink [a-z_]*: Broker: Message size too large,eddy.origin=events/')
check "refused: the refused records are dead-lettered as sink_error ($refused)" test "$refused" -gt 0
{ out_ids; kcat -b "$BOOT" -C -t dlq -e -q -f '%s\n' | jq -r .event_id; } | sort > "$d/all"
check "refused: outputs and dead letters together hold every eventId once" diff <(want_ids "$d/manifest.tsv") "$d/all"
stop_eddy a; expect_eq "refused: eddy stops cleanly" 0 "$STOP_RC"
stop_mock

# SIGTERM soon after start, in a group used before, 20 times, each a little later (0.05
# to 1 s): before, while and after joining. librdkafka 2.0's cooperative-sticky assignor
# aborted about 1 run in 5 here (librdkafka#4312); every run must exit 0.
scenario 300 32 0
produce "$d/events.ndjson"
kafka_conf "$d" early
start_eddy "$d" a
check "early stop: the group's first member reads all 300" wait_read "$d" a 300
stop_eddy a
codes=""
for i in $(seq 20); do
  start_eddy "$d" r$i
  sleep "$(awk -v i=$i 'BEGIN { print i * 0.05 }')"
  stop_eddy r$i
  codes="$codes $STOP_RC"
done
expect_eq "early stop: 20 start-and-SIGTERM runs all exit 0" "$(printf ' 0%.0s' $(seq 20))" "$codes"
check "early stop: no assertion failed" bash -c "! grep -l 'Assertion' '$d'/r*.err"
check "early stop: some runs stopped before their first assignment" \
  bash -c "grep -l 'stopping before the first assignment' '$d'/r*.err"
check "early stop: nothing lost" covered_now "$d/manifest.tsv"
stop_mock

# Oversized records. A 1.2 MB record (past event.max.bytes, 1 MiB, and past the
# producer's message.max.bytes, 1,000,000) is dead-lettered too_large with its first
# dlq.max.raw.bytes and its full size in eddy.raw.truncated; a 1.5 MB output is
# dead-lettered output_too_large; the records after them go on.
big_event() {   # ID BYTES: one event whose payload is about BYTES long
  printf '{"domain":"t","type":"a","timestamp":1,"eventId":"%s","payload":{"s":"%s"}}\n' \
    "$1" "$(head -c "$2" /dev/zero | tr '\0' x)"
}
d=$(newdir)
start_mock "$d" 1 1 events,out,dlq
mkdir -p "$d/processors"
cat > "$d/processors/big.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    ctx.emit("out", { id = ev.eventId, s = ev.payload.grow and string.rep("y", 1500000) or nil })
  end,
}
LUA
{ event t a k1; big_event huge 1200000; event t a k2 '{"grow":true}'; event t a k3; } > "$d/in.ndjson"
kcat -b "$BOOT" -P -t events -X message.max.bytes=2000000 -l "$d/in.ndjson"
kafka_out_conf "$d" big out
start_eddy "$d" a
check "oversized: the records around them come out" \
  wait_for bash -c "[ \"\$(kcat -b '$BOOT' -C -t out -e -q -f '%s\n' | jq -r .id | sort | tr '\n' ' ')\" = 'k1 k3 ' ]"
check "oversized: both dead-lettered" wait_for bash -c "[ \"\$(kcat -b '$BOOT' -C -t dlq -e -q -f 'x\n' | wc -l)\" = 2 ]"
kcat -b "$BOOT" -C -t dlq -e -q -f '%h %S\n' > "$d/dlq.txt"
check "oversized: the input is too_large, cut at 900,000 bytes, its size in a header" \
  grep -qE '^eddy.reason=too_large,.*eddy.raw.truncated=1200[0-9]{3} 900000$' "$d/dlq.txt"
check "oversized: the output is output_too_large, naming the sink" \
  grep -qE "^eddy.reason=output_too_large,eddy.detail=a record of 15000[0-9]+ bytes for sink out, which takes at most 995904,.*eddy.eventId=k2 [0-9]+$" "$d/dlq.txt"
stop_eddy a; expect_eq "oversized: eddy stops cleanly" 0 "$STOP_RC"

# With the cut turned off, the dead-letter producer refuses the record: the pipeline
# stops, /healthz says so, and eddy exits non-zero by itself (an orchestrator restarts
# it; the offset was not committed, so nothing is lost).
# The mock coordinator rebalances only when a leaver's session expires.
kafka_out_conf "$d" big2 out dlq.max.raw.bytes=0 kafka.session.timeout.ms=6000 kafka.heartbeat.interval.ms=1000
start_eddy "$d" b
check "dlq refused: eddy exits by itself" wait_for bash -c "! kill -0 $EDDY_PID_b 2>/dev/null"
rc=0; wait "$EDDY_PID_b" || rc=$?
expect_eq "dlq refused: exit 1" 1 "$rc"
check "dlq refused: the log says why and where" \
  grep -q 'dead-letter write to sink dlq failed (reason too_large, events/0@1)' "$d/b.err"
kafka_out_conf "$d" big2 out kafka.session.timeout.ms=6000 kafka.heartbeat.interval.ms=1000
start_eddy "$d" c
check "dlq refused: restarted with the cut on, the same group reads the record again" \
  wait_for bash -c "[ \"\$(kcat -b '$BOOT' -C -t dlq -e -q -f '%h\n' | grep -c 'eddy.reason=too_large')\" = 2 ]"
stop_eddy c; expect_eq "dlq refused: the restarted eddy stops cleanly" 0 "$STOP_RC"
stop_mock

# The final commit refused with REBALANCE_IN_PROGRESS (27), as when the workers of an
# instance leave the group together: eddy exits 0 and the revocation that follows
# commits the offsets. Auto-commits are off, so only those two commits can store them.
scenario 500 34 0
produce "$d/events.ndjson"
kafka_conf "$d" rebalancing kafka.auto.commit.interval.ms=600000
start_eddy "$d" a
check "final commit refused: all 500 read and finished" wait_read "$d" a 500
mock_cmd "error OffsetCommit 1 27"
stop_eddy a; expect_eq "final commit refused: eddy still exits 0" 0 "$STOP_RC"
check "final commit refused: the log says the revocation commits instead" \
  grep -q "the group is rebalancing; the offsets are committed when the partitions are given up" "$d/a.err"
start_eddy "$d" b
check "final commit refused: a restarted member gets the partitions" \
  wait_for grep -q "partitions assigned" "$d/b.err"
sleep 1
expect_eq "final commit refused: the revocation committed: nothing is read twice" 0 \
  "$(metric "$d" b eddy_records_read_total)"
stop_eddy b; expect_eq "final commit refused: the restarted eddy stops cleanly" 0 "$STOP_RC"
stop_mock
