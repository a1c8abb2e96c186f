# processing.guarantee=exactly_once against a real Apache Kafka broker: outputs, dead
# letters and consumed offsets commit in one transaction, so a read_committed consumer
# sees every output and every dead letter exactly once through SIGKILLs, a group whose
# members are killed and added, and a broker restart; and what cannot be part of a
# transaction is refused at start.
. tests/kafka_lib.sh
. tests/broker_lib.sh
. tests/eos_lib.sh

# 100,000 events, arriving over about 40 s, SIGKILLed three times while they arrive,
# restarted each time. Static membership (group.instance.id) gives the restarted member
# its partitions back at once, so that every kill lands mid-stream; a commit every
# second, and kills 1 to 3 s after the start, once the open transaction holds outputs,
# find one with outputs in it and state committed before it. State and windows are
# checkpointed with each transaction and restored from the one the committed offsets
# stand for.
eos_case 100000 windows
# outputs_pending: the open transaction holds outputs the broker has (two looks 200 ms
# apart: more outputs acknowledged, no transaction committed), so a kill now aborts them.
outputs_pending() {
  local o1 t1 o2 t2 out='eddy_events_out_total{sink="out"}'
  o1=$(metric "$d" a "$out"); t1=$(metric "$d" a eddy_transactions_committed_total)
  sleep 0.2
  o2=$(metric "$d" a "$out"); t2=$(metric "$d" a eddy_transactions_committed_total)
  [ -n "$o1" ] && [ -n "$t1" ] && [ "${o2:-0}" -gt "$o1" ] && [ "$t2" = "$t1" ]
}
eos_conf "$d" killed kafka.transactional.id=eos-killed kafka.group.instance.id=eos-killed-a \
  commit.interval.ms=1000 "state.dir=$d/state"
produce_paced "$d/events.ndjson" 60 0.5 produce_keyed
start_eddy "$d" a
for k in 1 2 3; do
  wait_for grep -q "partitions assigned" "$d/a.err"
  sleep "$((RANDOM % 2 + 1)).$((RANDOM % 10))"
  for _ in $(seq 40); do outputs_pending && break; done    # up to about 15 s
  stop_eddy a KILL
  cp "$d/a.err" "$d/a.err.$k"
  start_eddy "$d" a
done
wait "$PRODUCER_PID"
check_exactly_once "eos kill" 100000 windows
check "eos kill: the kills left aborted outputs in the log, which read_committed skips" \
  test "$(uncommitted out | wc -l)" -gt "$(committed out | wc -l)"
check "eos kill: the restarts restored state from checkpoints" \
  grep -q "checkpoint: partition [0-9]* restored" "$d/a.err.2" "$d/a.err.3" "$d/a.err"
tcount=$(metric "$d" a eddy_transactions_committed_total)
check "eos kill: the last run committed transactions ($tcount)" test "${tcount:-0}" -gt 0
ccount=$(metric "$d" a eddy_checkpoints_total)
check "eos kill: ... each with its checkpoint ($ccount)" test "${ccount:-0}" -ge "${tcount:-1}"
stop_eddy a; expect_eq "eos kill: the last run stops cleanly" 0 "$STOP_RC"
stop_broker

# A checkpoint written for a transaction that never committed: the broker is frozen
# (SIGSTOP) while eddy stops, so its last commit hangs after writing the checkpoint,
# and eddy is SIGKILLed there. The restart finds the group's offsets behind that
# checkpoint and restores the one kept before it: every count still goes on from
# where the committed outputs left it.
eos_case 2000
head -1000 "$d/events.ndjson" > "$d/first"; tail -1000 "$d/events.ndjson" > "$d/second"
eos_conf "$d" frozen kafka.transactional.id=eos-frozen commit.interval.ms=600000 \
  "state.dir=$d/state"
processed() { [ "$(uncommitted out | grep -c '"id"')" -ge "$1" ]; }
# rewritten: every partition's checkpoint differs from the first run's, none half-written
rewritten() {
  local p
  for p in 0 1 2 3; do
    ! cmp -s "$d/state/partition-$p.ckpt" "$d/first-$p.ckpt" &&
      [ ! -e "$d/state/partition-$p.ckpt.tmp" ] || return 1
  done
}
start_eddy "$d" a
produce_keyed "$d/first"
wait_for processed 990
stop_eddy a; expect_eq "eos frozen: the first run stops cleanly, committing" 0 "$STOP_RC"
for p in 0 1 2 3; do cp "$d/state/partition-$p.ckpt" "$d/first-$p.ckpt"; done
start_eddy "$d" a
produce_keyed "$d/second"
wait_for processed 1980
pkill -STOP -f "$BROKER_DIR/server.properties"
kill -TERM "$EDDY_PID_a"
check "eos frozen: the last commit wrote its checkpoints before it hung" wait_for rewritten
sleep 1
stop_eddy a KILL
pkill -CONT -f "$BROKER_DIR/server.properties"
eos_conf "$d" frozen kafka.transactional.id=eos-frozen "state.dir=$d/state"
start_eddy "$d" a
check_exactly_once "eos frozen" 2000
check "eos frozen: the restart restored the checkpoint before the uncommitted one" \
  grep -q "the one before it is restored" "$d/a.err"
stop_eddy a; expect_eq "eos frozen: eddy stops cleanly" 0 "$STOP_RC"
stop_broker

# Two instances in one group sharing state.dir; A is killed and C joins mid-stream.
# Partitions (and their state, through the checkpoints) move by
# revocations that commit first, and by A's session timing out: its open transaction
# is aborted by the broker (transaction.timeout.ms), so none of its uncommitted
# outputs become visible. They run under the supervisor, as the container does: a
# commit that a rebalance overtakes (ILLEGAL_GENERATION) is aborted and its worker
# restarted from the committed offsets, and the instance must still stop cleanly.
eos_group() {
  local strategy=$1
  eos_case 30000
  for m in a b c; do
    mkdir -p "$d/$m"; ln -s "$d/processors" "$d/$m/processors"
    eos_conf "$d/$m" "group-$strategy" "kafka.transactional.id=eos-$strategy-$m" \
      "kafka.partition.assignment.strategy=$strategy" "state.dir=$d/state" \
      runtime.supervisor=true
    sed -i "s|^processors.dir=.*|processors.dir=$d/processors|" "$d/$m/eddy.conf"
  done
  MOCK_DIR=$d
  "$EDDY" run -c "$d/a/eddy.conf" >/dev/null 2>"$d/a.err" & EDDY_PID_a=$!
  "$EDDY" run -c "$d/b/eddy.conf" >/dev/null 2>"$d/b.err" & EDDY_PID_b=$!
  wait_for grep -q "partitions assigned" "$d/a.err"; wait_for grep -q "partitions assigned" "$d/b.err"
  produce_paced "$d/events.ndjson" 20 0.4 produce_keyed
  sleep 2
  stop_eddy a KILL
  sleep 1
  "$EDDY" run -c "$d/c/eddy.conf" >/dev/null 2>"$d/c.err" & EDDY_PID_c=$!
  wait "$PRODUCER_PID"
  check_exactly_once "eos group ($strategy)" 30000
  check "eos group ($strategy): the member that joined took part" grep -q "partitions assigned" "$d/c.err"
  stop_eddy b; expect_eq "eos group ($strategy): B stops cleanly" 0 "$STOP_RC"
  stop_eddy c; expect_eq "eos group ($strategy): C stops cleanly" 0 "$STOP_RC"
  stop_broker
}
eos_group cooperative-sticky
eos_group range

# The broker restarted mid-stream (restart_mid_stream: while eddy works through the
# first half of the input). A transaction that fails is aborted and its worker stops;
# the supervisor starts it again from the committed offsets and their checkpoint.
eos_case 30000
eos_conf "$d" restart kafka.transactional.id=eos-restart runtime.supervisor=true \
  "state.dir=$d/state"
start_eddy "$d" a
wait_for grep -q "partitions assigned" "$d/a.err"
restart_mid_stream "$d/events.ndjson" produce_keyed
check "eos broker restart: every event was produced" test "$(topic_count events)" -eq 30000
check_exactly_once "eos broker restart" 30000
stop_eddy a; expect_eq "eos broker restart: eddy stops cleanly" 0 "$STOP_RC"
stop_broker

# A commit while every event read so far waits for a lookup: the first commits (every
# 100 ms) find no finished event, so they carry no offsets and no group metadata. eddy
# went down at the end of the first of them (make bench found it: the shipped
# processors' cold lookups at the start of the exactly-once run), freeing the absent
# metadata. The lookup here sleeps 1.5 s in MariaDB.
d=$(newdir)
start_broker "$d" events,out,dlq 1
mkdir -p "$d/processors"
cat > "$d/processors/p.lua" <<'LUA'
return { routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local row = ctx.lookup("slow", ev.eventId)
    ctx.emit("out", { id = ev.eventId, slept = row and row.s })
  end }
LUA
ensure_dims
eos_conf "$d" slowlookup kafka.transactional.id=eos-slowlookup \
  "mysql.url=mysql://eddy:$MY_PASSWORD@127.0.0.1:$MY_PORT/eddy" \
  "lookup.slow.query=SELECT SLEEP(1.5) AS s, ? AS k"
for i in 1 2 3; do
  printf 'k\t{"domain":"t","type":"x","timestamp":%s,"eventId":"w%s","payload":{}}\n' "$i" "$i"
done > "$d/slow.ndjson"
start_eddy "$d" a
wait_for grep -q "partitions assigned" "$d/a.err"
kcat -b "$BOOT" -P -t events -K "	" < "$d/slow.ndjson"
slow_out() { [ "$(committed out | grep -c '"id":"w')" -ge 3 ]; }
check "eos lookup wait: outputs arrive after commits that had no finished event (read_committed)" \
  wait_for slow_out
check "eos lookup wait: eddy is still running" kill -0 "$EDDY_PID_a"
expect_eq "eos lookup wait: each output once" "w1 w2 w3" \
  "$(committed out | jq -r .id | sort | tr '\n' ' ' | sed 's/ $//')"
stop_eddy a; expect_eq "eos lookup wait: eddy stops cleanly" 0 "$STOP_RC"
stop_broker

# What cannot be part of a transaction is refused at start, naming file and line.
d=$(newdir); mkdir -p "$d/processors"
write_echo_processor "$d" echo t
refused() {   # refused NAME EXPECTED-PATTERN key=value...
  local name=$1 want=$2; shift 2
  kafka_out_conf "$d" refuse out processing.guarantee=exactly_once "$@"
  local out; out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
  check "eos refuses $name" grep -q "$want" <<<"$out"
}
BOOT=127.0.0.1:9
refused "a file sink" "eddy.conf:[0-9]*: sink.file.type: this file sink cannot be used with processing.guarantee=exactly_once" \
  sink.file.type=file "sink.file.path=$d/x"
refused "an elasticsearch sink without id" "sink.es.type: this elasticsearch sink cannot be used with .*(set sink.<name>.id)" \
  sink.es.type=elasticsearch sink.es.url=http://127.0.0.1:9 sink.es.index=x
refused "producers without idempotence" "eddy.conf:[0-9]*: kafka.enable.idempotence: exactly_once needs idempotent producers" \
  kafka.enable.idempotence=false
write_conf "$d" processing.guarantee=exactly_once
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
check "eos refuses a file source" grep -q "processing.guarantee: exactly_once needs a Kafka source" <<<"$out"
