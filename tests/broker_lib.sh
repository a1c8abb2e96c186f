# broker_lib.sh - a real single-node Apache Kafka (scripts/kafka-local.sh) in place of
# the mock cluster, for the tests where a real broker's transactions, rebalances or
# partition sizes matter. Sourced after kafka_lib.sh: its helpers read $BOOT, which
# start_broker sets. tests/run.sh kills the brokers of a file when it ends.

# start_broker DIR TOPICS PARTITIONS: a fresh broker in DIR/kafka with the topics
# (comma list) created; sets BOOT, BROKER_DIR and MOCK_DIR (where stop_eddy looks).
start_broker() {
  BROKER_DIR=$1/kafka
  BROKER_PORT=$(free_port 2)     # and the next one, for the controller
  scripts/kafka-local.sh start "$BROKER_DIR" "$BROKER_PORT" 7>&-
  BOOT=127.0.0.1:$BROKER_PORT
  MOCK_DIR=$1
  local t
  for t in ${2//,/ }; do scripts/kafka-local.sh topic "$BROKER_DIR" "$t" "$3" 7>&-; done
}
stop_broker() { scripts/kafka-local.sh stop "$BROKER_DIR"; }
# restart_broker: stop (a clean shutdown) and start again on the same port and data.
restart_broker() {
  scripts/kafka-local.sh stop "$BROKER_DIR"
  scripts/kafka-local.sh start "$BROKER_DIR" "$BROKER_PORT" 7>&-
}
# restart_mid_stream FILE [PRODUCER]: the first half of FILE produced at once, the broker
# restarted while eddy works through it, then the second half. A producer run while
# the broker is down gives up (kcat: "all brokers down"), so none runs across the
# restart: what is lost there would be the test's, not eddy's.
restart_mid_stream() {
  local half=$(( ($(wc -l < "$1") + 1) / 2 ))
  head -n "$half" "$1" > "$1.first"; tail -n +"$((half + 1))" "$1" > "$1.second"
  "${2:-produce}" "$1.first"
  restart_broker
  "${2:-produce}" "$1.second"
}
# broker_scenario COUNT SEED INVALID%: as kafka_lib.sh's scenario, on a fresh broker.
broker_scenario() {
  d=$(newdir)
  start_broker "$d" events,out,dlq 4
  luajit scripts/gen-events.lua "$1" "$2" "$3" "$d/manifest.tsv" > "$d/events.ndjson"
}
