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
# once, so that every kill lands mid-stream.
eos_case 30000
eos_conf "$d" killed kafka.transactional.id=eos-killed kafka.group.instance.id=eos-killed-a
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
