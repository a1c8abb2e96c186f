# processing.guarantee=exactly_once against a real Apache Kafka broker: outputs, dead
# letters and consumed offsets commit in one transaction, so a read_committed consumer
# sees every output and every dead letter exactly once through SIGKILLs, a group whose
# members are killed and added, and a broker restart; and what cannot be part of a
# transaction is refused at start.
. tests/kafka_lib.sh
. tests/broker_lib.sh

# eos_case: a fresh broker and $d/keyed, COUNT events keyed by line number; every
# 100th is rejected by the processor (a dead letter).
eos_case() {
  d=$(newdir)
  start_broker "$d" events,out,dlq 4
  cat > "$d/processors.lua" <<'LUA'
return { routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    if ev.payload.bad then ctx.reject("bad one") end
    ctx.emit("out", { id = ev.eventId, n = ev.payload.n })
  end }
LUA
  mkdir -p "$d/processors"; mv "$d/processors.lua" "$d/processors/p.lua"
  awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++)
    printf "{\"domain\":\"t\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"n\":%d%s}}\n",
           i, i, i, (i % 100 == 0 ? ",\"bad\":true" : "") }' > "$d/events.ndjson"
}
eos_conf() {   # eos_conf DIR GROUP [key=value...]
  local d=$1 g=$2; shift 2
  kafka_out_conf "$d" "$g" out processing.guarantee=exactly_once kafka.session.timeout.ms=6000 \
    kafka.heartbeat.interval.ms=1000 "$@"
}
committed() { kcat -b "$BOOT" -C -t "$1" -e -q -X isolation.level=read_committed -f '%s\n'; }
uncommitted() { kcat -b "$BOOT" -C -t "$1" -e -q -X isolation.level=read_uncommitted -f '%s\n'; }
# exactly_once_seen COUNT: every output once and every dead letter once, read_committed.
outputs_in() { [ "$(committed out | wc -l)" -ge "$1" ]; }
check_exactly_once() {
  local what=$1 n=$2
  check "$what: every output arrives (read_committed)" wait_for outputs_in $((n - n / 100))
  sleep 1
  committed out | jq -r .id | sort > "$d/got"
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) if (i % 100) print "e" i }' | sort > "$d/want"
  check "$what: read_committed sees each output exactly once" diff -q "$d/want" "$d/got"
  committed dlq | jq -r .eventId 2>/dev/null | sort > "$d/got-dlq"
  [ -s "$d/got-dlq" ] || committed dlq | grep -o '"eventId":"e[0-9]*"' | cut -d'"' -f4 | sort > "$d/got-dlq"
  awk -v n="$n" 'BEGIN { for (i = 100; i <= n; i += 100) print "e" i }' | sort > "$d/want-dlq"
  check "$what: ... and each dead letter exactly once" diff -q "$d/want-dlq" "$d/got-dlq"
}

# SIGKILL three times at random points while events arrive, restart each time. Static
# membership (group.instance.id) gives the restarted member its partitions back at
# once, so that every kill lands mid-stream; a commit every second makes it likely to
# find a transaction with outputs in it.
eos_case 30000
eos_conf "$d" killed kafka.transactional.id=eos-killed kafka.group.instance.id=eos-killed-a \
  commit.interval.ms=1000
produce_paced "$d/events.ndjson" 20 0.4
start_eddy "$d" a
for k in 1 2 3; do
  wait_for grep -q "partitions assigned" "$d/a.err"
  sleep "0.$((RANDOM % 9 + 1))"
  stop_eddy a KILL
  start_eddy "$d" a
done
wait "$PRODUCER_PID"
check_exactly_once "eos kill" 30000
check "eos kill: the kills left aborted outputs in the log, which read_committed skips" \
  test "$(uncommitted out | wc -l)" -gt "$(committed out | wc -l)"
tcount=$(metric "$d" a eddy_transactions_committed_total)
check "eos kill: the last run committed transactions ($tcount)" test "${tcount:-0}" -gt 0
stop_eddy a; expect_eq "eos kill: the last run stops cleanly" 0 "$STOP_RC"
stop_broker

# Two instances in one group; A is killed and C joins mid-stream. Partitions move by
# revocations that commit first, and by A's session timing out: its open transaction
# is aborted by the broker (transaction.timeout.ms), so none of its uncommitted
# outputs become visible.
eos_group() {
  local strategy=$1
  eos_case 30000
  for m in a b c; do
    mkdir -p "$d/$m"; ln -s "$d/processors" "$d/$m/processors"
    eos_conf "$d/$m" "group-$strategy" "kafka.transactional.id=eos-$strategy-$m" \
      "kafka.partition.assignment.strategy=$strategy"
    sed -i "s|^processors.dir=.*|processors.dir=$d/processors|" "$d/$m/eddy.conf"
  done
  MOCK_DIR=$d
  "$EDDY" run -c "$d/a/eddy.conf" >/dev/null 2>"$d/a.err" & EDDY_PID_a=$!
  "$EDDY" run -c "$d/b/eddy.conf" >/dev/null 2>"$d/b.err" & EDDY_PID_b=$!
  wait_for grep -q "partitions assigned" "$d/a.err"; wait_for grep -q "partitions assigned" "$d/b.err"
  produce_paced "$d/events.ndjson" 20 0.4
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

# The broker restarted mid-stream. A transaction that fails is aborted and its worker
# stops; the supervisor starts it again from the committed offsets.
eos_case 30000
eos_conf "$d" restart kafka.transactional.id=eos-restart runtime.supervisor=true
start_eddy "$d" a
wait_for grep -q "partitions assigned" "$d/a.err"
produce_paced "$d/events.ndjson" 20 0.4
sleep 2
restart_broker
wait "$PRODUCER_PID"
check_exactly_once "eos broker restart" 30000
stop_eddy a; expect_eq "eos broker restart: eddy stops cleanly" 0 "$STOP_RC"
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
refused "state.dir" "eddy.conf:[0-9]*: state.dir: checkpoints of keyed state cannot be part of a Kafka transaction" \
  "state.dir=$d/state"
write_conf "$d" processing.guarantee=exactly_once
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
check "eos refuses a file source" grep -q "processing.guarantee: exactly_once needs a Kafka source" <<<"$out"
