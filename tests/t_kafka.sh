# Kafka source and sink against librdkafka's mock cluster over TCP, kcat as the
# outside client: at-least-once end to end, dead letters with reason headers.
. tests/kafka_lib.sh

scenario 50000 11 3
produce "$d/events.ndjson"
check "kafka: 50,000 events produced with kcat" test "$(topic_count events)" -eq 50000
kafka_conf "$d" e2e
sleep 2     # every record is 2 s old when eddy starts: see the e2e latency below
start_eddy "$d" a
check "kafka: eddy reads all 50,000 and finishes them" wait_read "$d" a 50000
e2e() { metric "$d" a "eddy_record_e2e_latency_seconds$1"; }
expect_eq "kafka: eddy_record_e2e_latency_seconds counts every record, dead letters too" \
  50000 "$(e2e _count)"
expect_eq "kafka: ... from its Kafka timestamp: none of them took 1 s or less" 0 \
  "$(e2e '_bucket{le="1"}')"
expect_eq "kafka: ... and all within 30 s" 50000 "$(e2e '_bucket{le="30"}')"
stage() { metric "$d" a "eddy_record_stage_latency_seconds$1"; }
for s in fetch process deliver; do
  expect_eq "kafka: eddy_record_stage_latency_seconds{stage=\"$s\"} counts every record" \
    50000 "$(stage "_count{stage=\"$s\"}")"
done
expect_eq "kafka: ... the 2 s before eddy started are in the fetch stage (none 1 s or less)" 0 \
  "$(stage '_bucket{stage="fetch",le="1"}')"
expect_eq "kafka: ... and the stages add up to the e2e latency" ok "$(awk -v e="$(e2e _sum)" \
  -v f="$(stage '_sum{stage="fetch"}')" -v p="$(stage '_sum{stage="process"}')" \
  -v l="$(stage '_sum{stage="deliver"}')" \
  'BEGIN { d = f + p + l - e; print (e > 100 && d < 0.01 && d > -0.01) ? "ok" : e " != " f " + " p " + " l }')"
port=$(admin_port "$d/a.err")
check "kafka: its /metrics, latency stages included, passes promtool" \
  bash -c "curl -fsS http://127.0.0.1:$port/metrics | promtool check metrics"
stop_eddy a; expect_eq "kafka: SIGTERM exits 0" 0 "$STOP_RC"
out_ids > "$d/got"; want_ids "$d/manifest.tsv" > "$d/want"
check "kafka: every valid eventId on the output topic, none missing, none twice" diff "$d/want" "$d/got"
dlq_pairs > "$d/got-dlq"; want_dlq_pairs "$d/manifest.tsv" "$d/events.ndjson" > "$d/want-dlq"
check "kafka: every invalid event on the dead-letter topic, original bytes, reason header" \
  diff "$d/want-dlq" "$d/got-dlq"
check "kafka: output messages keyed by order_id" bash -c \
  "kcat -b '$BOOT' -C -t out -e -q -f '%k %s\n' | grep '\"status\"' | head -50 | awk '{ split(substr(\$0, length(\$1) + 2), a, \"\\\"order_id\\\":\\\"\"); split(a[2], b, \"\\\"\"); if (\$1 != b[1]) exit 1 }'"
# Committed at stop: a new member of the same group has nothing to read again.
start_eddy "$d" b
check "kafka: a restarted member gets the partitions" wait_for grep -q "partitions assigned" "$d/b.err"
sleep 1
expect_eq "kafka: offsets were committed at stop: nothing is read twice" 0 \
  "$(metric "$d" b eddy_records_read_total)"
stop_eddy b; expect_eq "kafka: the second member stops too" 0 "$STOP_RC"
stop_mock

# dlq.format=envelope: the dead letter is the JSON envelope, origin as topic/partition/offset.
# Under at least once the dead letters also have an idempotent producer of their own
# (sink_kafka.c: sharing one, librdkafka 2.0.2 held the outputs' batches back now and
# then); librdkafka's debug log names each instance it starts.
d=$(newdir)
start_mock "$d" 1 4 events,out,dlq
printf '{"domain":"order","type":"order_pay"\n' > "$d/events.ndjson"
produce "$d/events.ndjson"
kafka_conf "$d" envelope dlq.format=envelope log.level=debug kafka.debug=generic,conf
start_eddy "$d" a
check "envelope: the bad record is read and finished" wait_read "$d" a 1
expect_eq "envelope: reason, origin and raw in one JSON value" \
  'bad_json events 0 {"domain":"order","type":"order_pay"' \
  "$(kcat -b "$BOOT" -C -t dlq -e -q -f '%s\n' | jq -r '"\(.reason) \(.origin.topic) \(.origin.offset) \(.raw)"')"
stop_eddy a; expect_eq "envelope: eddy stops cleanly" 0 "$STOP_RC"
expect_eq "own dlq producer: two producers, the outputs' and the dead letters'" 2 \
  "$(grep -o 'rdkafka#producer-[0-9]*' "$d/a.err" | sort -u | wc -l)"
expect_eq "idempotence: both producers are idempotent by default" 2 \
  "$(grep -c 'producer-[0-9]*: CONF: .* enable.idempotence = true' "$d/a.err")"
stop_mock

# kafka.enable.idempotence=false under at least once: kept (librdkafka's idempotent
# producer spins while a partition's due batch waits behind the one in flight), with one
# request in flight, so that retries cannot reorder a partition. librdkafka's conf
# debug lists what each producer was given.
scenario 2000 12 3
produce "$d/events.ndjson"
kafka_conf "$d" noidemp kafka.enable.idempotence=false log.level=debug kafka.debug=conf
start_eddy "$d" a
check "no idempotence: eddy reads all 2,000 and finishes them" wait_read "$d" a 2000
stop_eddy a; expect_eq "no idempotence: eddy stops cleanly" 0 "$STOP_RC"
out_ids > "$d/got"; want_ids "$d/manifest.tsv" > "$d/want"
check "no idempotence: every valid eventId on the output topic, once" diff "$d/want" "$d/got"
expect_eq "no idempotence: neither producer idempotent, each with one request in flight" \
  "2 2" "$(grep -c 'producer-[0-9]*: CONF: .* enable.idempotence = false' "$d/a.err") $(
          grep -c 'producer-[0-9]*: CONF: .* max.in.flight.requests.per.connection = 1$' "$d/a.err")"
stop_mock
