# The at-least-once Kafka tests against a real Apache Kafka broker (single-node KRaft,
# scripts/kafka-local.sh) instead of the mock cluster: partitions larger than the mock
# keeps, SIGKILL and restart, members leaving, being killed and joining a group (real
# rebalances, eager and cooperative), and the broker restarted mid-stream. Nothing
# may be missing; duplicates only where at least once allows them.
. tests/kafka_lib.sh
. tests/broker_lib.sh

# 200,000 events, about 10 MB a partition (the mock keeps about 5 MiB): all come out.
broker_scenario 200000 31 2
produce "$d/events.ndjson"
check "broker: 200,000 events produced" test "$(topic_count events)" -eq 200000
kafka_conf "$d" big
start_eddy "$d" a
check "broker: every valid event comes out" wait_covered "$d/manifest.tsv"
expect_eq "broker: ... once each (no fault, no duplicate)" 0 "$(duplicates "$d/out")"
expect_eq "broker: every dead letter with its reason and original bytes" \
  "$(want_dlq_pairs "$d/manifest.tsv" "$d/events.ndjson" | md5sum)" "$(dlq_pairs | md5sum)"
stop_eddy a; expect_eq "broker: eddy stops cleanly" 0 "$STOP_RC"
stop_broker

# SIGKILL mid-stream, then a restart in the same group (as t_kafka_faults).
broker_scenario 20000 32 2
kill_restart "broker kill"
stop_broker

# group_case NAME STRATEGY: two members; A leaves cleanly mid-stream, then C joins and
# B is killed: B's partitions move to C after its session times out.
group_case() {
  local name=$1 strategy=$2
  broker_scenario 30000 33 2
  kafka_conf "$d" "$name" "kafka.partition.assignment.strategy=$strategy" \
    kafka.session.timeout.ms=6000 kafka.heartbeat.interval.ms=1000 \
    kafka.auto.commit.interval.ms=100
  start_eddy "$d" a; start_eddy "$d" b
  wait_for grep -q "partitions assigned" "$d/a.err"; wait_for grep -q "partitions assigned" "$d/b.err"
  produce_paced "$d/events.ndjson" 15 0.4
  sleep 1.5
  stop_eddy a; expect_eq "group ($strategy): the member that leaves exits 0" 0 "$STOP_RC"
  sleep 1.5
  start_eddy "$d" c
  wait_for grep -q "partitions assigned" "$d/c.err"
  check "group ($strategy): the member that joins is given partitions" \
    grep -q "partitions assigned" "$d/c.err"
  stop_eddy b KILL
  wait "$PRODUCER_PID"
  check "group ($strategy): leave, join and kill mid-stream: no eventId missing" \
    wait_covered "$d/manifest.tsv"
  pass "group ($strategy): duplicates after the kill: $(duplicates "$d/out")"
  stop_eddy c; expect_eq "group ($strategy): the last member stops cleanly" 0 "$STOP_RC"
  stop_broker
}
group_case coop cooperative-sticky
group_case eager range

# revoke_case NAME STRATEGY: with state.dir, offsets are committed with checkpoints
# (none is due in the test's time), and a partition given up in a rebalance is
# checkpointed and its offsets committed then. The mock refuses commits during a
# rebalance; a real broker takes them: b, with a state.dir of its own (another host's),
# starts its partitions at those offsets and reads nothing again. Without the commit at
# the revocation it would read its partitions from their start.
revoke_case() {
  local name=$1 strategy=$2 read
  broker_scenario 20000 35 2
  produce "$d/events.ndjson"
  kafka_conf "$d" "$name" "kafka.partition.assignment.strategy=$strategy" \
    kafka.session.timeout.ms=6000 kafka.heartbeat.interval.ms=1000 \
    "state.dir=$d/a.state" checkpoint.interval.ms=600000
  start_eddy "$d" a
  wait_read "$d" a 20000
  sed -i "s#^state.dir=.*#state.dir=$d/b.state#" "$d/eddy.conf"
  start_eddy "$d" b
  check "revoke ($strategy): the member giving partitions up checkpoints them" \
    wait_for grep -q 'revoked partitions written' "$d/a.err"
  wait_for grep -q "partitions assigned" "$d/b.err"
  sleep 3
  read=$(metric "$d" b eddy_records_read_total)
  expect_eq "revoke ($strategy): the member taking partitions over reads nothing again" \
    0 "${read:-none}"
  stop_eddy b; expect_eq "revoke ($strategy): b stops cleanly" 0 "$STOP_RC"
  stop_eddy a; expect_eq "revoke ($strategy): a stops cleanly" 0 "$STOP_RC"
  expect_eq "revoke ($strategy): every event came out once" 0 "$(duplicates "$d/out")"
  stop_broker
}
revoke_case revoke-eager range
revoke_case revoke-coop cooperative-sticky

# The broker stopped and started again mid-stream (restart_mid_stream: while eddy
# works through the first half of the input): eddy's producer and consumer reconnect,
# nothing is missing.
broker_scenario 20000 34 2
kafka_conf "$d" restart kafka.auto.commit.interval.ms=100
start_eddy "$d" a
wait_for grep -q "partitions assigned" "$d/a.err"
restart_mid_stream "$d/events.ndjson"
check "broker restart: every event was produced" test "$(topic_count events)" -eq 20000
check "broker restart: no eventId missing" wait_covered "$d/manifest.tsv"
pass "broker restart: duplicates: $(duplicates "$d/out")"
stop_eddy a; expect_eq "broker restart: eddy stops cleanly" 0 "$STOP_RC"
stop_broker
