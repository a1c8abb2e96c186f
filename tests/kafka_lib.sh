# kafka_lib.sh - helpers for the Kafka tests: a mock cluster owned by bin/kafka-mock,
# eddy configs for it, and reading topics back with kcat.

. tests/mysql_lib.sh
KAFKA_MOCK=${UNITS:-bin}/kafka-mock
case $KAFKA_MOCK in /*) ;; *) KAFKA_MOCK=$ROOT/$KAFKA_MOCK ;; esac

# wait_for COND...: poll up to 120 s (a bound, not a timing assertion; the mock
# cluster's rebalance when a member joins can take over a minute).
wait_for() { local i; for i in $(seq 1200); do "$@" && return 0; sleep 0.1; done; return 1; }
# wait_ge N CMD...: wait_for until CMD prints a number >= N. (`wait_for test "$(CMD)"
# -ge N` would expand CMD once, before the first try, and so wait out the whole bound.)
at_least() { local v; v=$("${@:2}"); [ "${v:-0}" -ge "$1" ]; }
wait_ge() { wait_for at_least "$@"; }
lines_of() { if [ -f "$1" ]; then wc -l < "$1"; else echo 0; fi; }

# start_mock DIR BROKERS PARTITIONS TOPICS: sets BOOT; commands go through mock_cmd.
start_mock() {
  mkfifo "$1/mock.in"
  exec 7<>"$1/mock.in"
  "$KAFKA_MOCK" "$2" "$3" "$4" <&7 >"$1/mock.out" 2>&1 &
  MOCK_PID=$!
  wait_for grep -q '^bootstrap' "$1/mock.out"
  BOOT=$(awk '/^bootstrap/ {print $2}' "$1/mock.out")
  MOCK_DIR=$1
}
# mock_cmd COMMAND: returns once the mock has answered it (its effect is in place).
mock_cmd() {
  local n; n=$(answers)
  echo "$1" >&7
  wait_for answered_past "$n"
}
answers() { grep -cE '^(ok|error:)' "$MOCK_DIR/mock.out"; }
answered_past() { [ "$(answers)" -gt "$1" ]; }

# scenario COUNT SEED INVALID% [BROKERS]: a fresh directory $d with a mock cluster
# (topics events, out, dlq, 4 partitions each) and COUNT generated events in
# $d/events.ndjson, with $d/manifest.tsv saying where each must end up.
scenario() {
  d=$(newdir)
  start_mock "$d" "${4:-1}" 4 events,out,dlq
  luajit scripts/gen-events.lua "$1" "$2" "$3" "$d/manifest.tsv" > "$d/events.ndjson"
}
# The mock's stdin is the FIFO opened read-write, so it never sees EOF: end it.
stop_mock() { exec 7>&-; kill "$MOCK_PID" 2>/dev/null; wait "$MOCK_PID" 2>/dev/null; }

# kafka_out_conf DIR GROUP OUT_TOPIC [key=value...]: processors from DIR/processors,
# topic `events` in, records to OUT_TOPIC (sink `out`), dead letters to topic `dlq`,
# admin on a free port.
kafka_out_conf() {
  local d=$1 g=$2 o=$3; shift 3
  {
    echo "processors.dir=$d/processors"
    echo "source.type=kafka"
    echo "source.topics=events"
    echo "kafka.bootstrap.servers=$BOOT"
    echo "kafka.group.id=$g"
    echo "kafka.auto.offset.reset=earliest"
    echo "sink.out.type=kafka"
    echo "sink.out.topic=$o"
    echo "sink.dlq.type=kafka"
    echo "sink.dlq.topic=dlq"
    echo "dlq.sink=dlq"
    echo "admin.listen=127.0.0.1:0"
    for l in "$@"; do echo "$l"; done
  } > "$d/eddy.conf"
}

# kafka_conf DIR GROUP [key=value...]: the shipped processors (their lookups on the
# suite's MariaDB), events -> out, dead letters -> dlq, admin on a free port.
kafka_conf() {
  local d=$1 group=$2; shift 2
  ensure_dims
  {
    echo "mysql.url=mysql://eddy:$MY_PASSWORD@127.0.0.1:$MY_PORT/eddy"
    grep '^lookup\.' conf/eddy.conf
    echo "processors.dir=$ROOT/processors"
    echo "source.type=kafka"
    echo "source.topics=events"
    echo "kafka.bootstrap.servers=$BOOT"
    echo "kafka.group.id=$group"
    echo "kafka.auto.offset.reset=earliest"
    for s in order_wide user_activity product_stats device_locations; do
      echo "sink.$s.type=kafka"
      echo "sink.$s.topic=out"
    done
    echo "sink.order_wide.key=order_id"
    echo "sink.geofence_alerts.type=file"
    echo "sink.geofence_alerts.path=$d/alerts.ndjson"
    echo "sink.product_events.type=file"
    echo "sink.product_events.path=$d/product_events.ndjson"
    echo "sink.dlq.type=kafka"
    echo "sink.dlq.topic=dlq"
    echo "dlq.sink=dlq"
    echo "admin.listen=127.0.0.1:0"
    for l in "$@"; do echo "$l"; done
  } > "$d/eddy.conf"
}

# start_eddy DIR NAME: eddy in the background on DIR/eddy.conf; its pid in EDDY_PID_<NAME>.
start_eddy() {
  "$EDDY" run -c "$1/eddy.conf" >"$1/$2.stdout" 2>"$1/$2.err" &
  eval "EDDY_PID_$2=$!"
}

# stop_eddy NAME [SIGNAL]: signal eddy NAME (default TERM), wait up to 60 s, then
# SIGKILL it. STOP_RC is its exit status, or "hung" when it had to be killed.
stop_eddy() {
  local pid i
  eval "pid=\$EDDY_PID_$1"
  kill -"${2:-TERM}" "$pid" 2>/dev/null
  for i in $(seq 600); do
    if ! kill -0 "$pid" 2>/dev/null; then
      STOP_RC=0; wait "$pid" || STOP_RC=$?
      [ "$STOP_RC" = 0 ] || [ "${2:-TERM}" = KILL ] || tail -15 "$MOCK_DIR/$1.err" | sed 's/^/    eddy: /'
      return
    fi
    sleep 0.1
  done
  kill -KILL "$pid"; wait "$pid" 2>/dev/null; STOP_RC=hung
  tail -5 "$MOCK_DIR/$1.err" | sed 's/^/    eddy: /'
}

topic_count() { kcat -b "$BOOT" -C -t "$1" -e -q -f 'x\n' 2>/dev/null | wc -l; }

# produce FILE: one message per line, keyed by line number so the partitions fill
# evenly (the mock keeps only ~5 MiB per partition; a skewed one drops its oldest).
produce() { awk '{ print NR "\t" $0 }' "$1" | kcat -b "$BOOT" -P -t events -K '\t' 2>>"$1.kcat.err"; }

# metric DIR NAME VALUE...: eddy NAME's metric from its admin endpoint.
metric() {
  local port
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$1/$2.err" 2>/dev/null | cut -d: -f2)
  [ -n "$port" ] && curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
    awk -v m="$3" '$1 == m { print $2 }'
}
# done_reading DIR NAME N: eddy NAME read at least N records and has none in flight.
done_reading() {
  local read inflight
  read=$(metric "$1" "$2" eddy_records_read_total); inflight=$(metric "$1" "$2" eddy_inflight_events)
  [ -n "$read" ] && [ "$read" -ge "$3" ] && [ "$inflight" = 0 ]
}

# The eventIds on `out`, sorted (duplicates kept), and what the manifest expects.
out_ids() { kcat -b "$BOOT" -C -t out -e -q -f '%s\n' | jq -r .event_id | sort; }
want_ids() { awk -F'\t' '$3 !~ /^dlq:/ { print $2 }' "$1" | sort; }

# "reason<TAB>original line" of each dead letter / as the manifest expects them.
dlq_pairs() {
  kcat -b "$BOOT" -C -t dlq -e -q -f '%h\t%s\n' |
    sed -E 's/^.*eddy\.reason=([^,]*),.*\t/\1\t/' | sort
}
want_dlq_pairs() {
  awk -F'\t' 'NR == FNR { if ($3 ~ /^dlq:/) want[$1] = substr($3, 5); next }
              (FNR in want) { print want[FNR] "\t" $0 }' "$1" "$2" | sort
}

# produce_keyed FILE: lines "KEY<tab>JSON", each keyed by its KEY.
produce_keyed() { kcat -b "$BOOT" -P -t events -K '\t' < "$1" 2>>"$1.kcat.err"; }

# produce_paced FILE CHUNKS PAUSE [PRODUCER]: the file in CHUNKS parts, PAUSE seconds
# apart, so that faults land mid-stream, by PRODUCER (default produce: keyed by line).
# Runs in the background; its pid in PRODUCER_PID.
produce_paced() {
  local n per by=${4:-produce}
  n=$(wc -l < "$1"); per=$(( (n + $2 - 1) / $2 ))
  split -l "$per" -d "$1" "$1.part."
  ( for f in "$1".part.*; do "$by" "$f"; sleep "$3"; done ) &
  PRODUCER_PID=$!
}

# missing_ids MANIFEST: the valid eventIds of the manifest not on the output topic.
missing_ids() { comm -23 <(want_ids "$1" | sort -u) <(out_ids | sort -u); }
# covered MANIFEST: every valid eventId of the manifest is on the output topic.
covered() { [ -z "$(missing_ids "$1" | head -1)" ]; }
# covered_now MANIFEST: covered, and when not, say where the missing ones are.
covered_now() { covered "$1" || { why_missing "$1"; return 1; }; }
# wait_covered MANIFEST: poll once a second, up to 90 s (re-reading the topic is slow);
# when something is still missing, say where it is.
wait_covered() {
  local i; for i in $(seq 90); do covered "$1" && return 0; sleep 1; done
  why_missing "$1"; return 1
}
# why_missing MANIFEST: the eventIds not on `out`: how many, where they are on the input
# topic (and what kcat said producing it) and on `dlq`, and what each eddy of $MOCK_DIR
# reports (records read, unfinished, paused partitions, lag) and last logged as an
# error. A failure in CI is not re-run by hand, so it says all it can here.
why_missing() {
  local m=$MOCK_DIR/missing
  missing_ids "$1" > "$m"
  echo "$(wc -l < "$m") eventIds missing, e.g. $(head -3 "$m" | tr '\n' ' ')"
  kcat -b "$BOOT" -C -t events -e -q -f '%p %o %s\n' 2>/dev/null |
    LC_ALL=C awk 'NR == FNR { want["\"eventId\":\"" $1 "\""] = 1; next }
         match($0, /"eventId":"[^"]*"/) && (substr($0, RSTART, RLENGTH) in want) {
           n[$1]++; if (!($1 in lo)) lo[$1] = $2; hi[$1] = $2 }
         END { for (p in n) printf "  on events[%s]: %d, offsets %d to %d\n", p, n[p], lo[p], hi[p]
               if (length(n) == 0) print "  on events: none" }' "$m" -
  cat "$MOCK_DIR"/*.kcat.err 2>/dev/null | grep -v '^$' | tail -5 | sed 's/^/  kcat: /'
  echo "  on dlq: $(kcat -b "$BOOT" -C -t dlq -e -q -f '%s\n' 2>/dev/null | grep -cFf <(sed 's/.*/"&"/' "$m"))"
  eddies_report "$MOCK_DIR"
}
# eddies_report DIR: what each eddy of DIR reports (records read, unfinished, paused
# partitions, pauses and rebalances, lag and records in by partition) and last logged
# as an error or a warning.
eddies_report() {
  local f port
  for f in "$1"/*.err; do
    case $f in *.kcat.err) continue ;; esac
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$f" | cut -d: -f2)
    [ -n "$port" ] && curl -fsS "http://127.0.0.1:$port/metrics" 2>/dev/null |
      grep -E '^eddy_(records_read_total|inflight_events|kafka_(paused_partitions|pauses_total|rebalances_total|consumer_lag|records_in_total))' |
      sed "s|^|  $(basename "$f" .err): |"
    grep -E ' (error|warn) ' "$f" | grep -v 'dead letter\|is kept in input partitions' | tail -5 | cut -c1-240 | sed 's/^/  log: /'
  done
}
# wait_read DIR NAME N: wait_for done_reading; when eddy NAME does not get there, say
# what the eddies of DIR report (a partition never read shows in its records in).
wait_read() { wait_for done_reading "$@" || { eddies_report "$1"; return 1; }; }
duplicates() { out_ids > "$1.ids"; echo $(( $(wc -l < "$1.ids") - $(sort -u "$1.ids" | wc -l) )); }

# kill_restart LABEL: in the scenario of $d, eddy is SIGKILLed while events are in
# flight and restarted in the same group: nothing may be missing, and the duplicates
# stay within what was finished since the last commit (100 ms: at most one produced
# chunk, 2,000) plus what was in flight (at most 2,000, source.max.inflight=1000 and a
# poll batch past it). linger.ms holds outputs back 200 ms, so that the kill finds
# events in flight; with the default bound (10,000) a kill could find 10,000.
kill_restart() {
  kafka_conf "$d" killed kafka.auto.commit.interval.ms=100 kafka.linger.ms=200 \
    source.max.inflight=1000
  start_eddy "$d" a
  produce_paced "$d/events.ndjson" 10 0.4
  wait_for grep -q "partitions assigned" "$d/a.err"
  sleep 1
  inflight_now() { [ "$(metric "$d" a eddy_inflight_events)" -gt 0 ] 2>/dev/null; }
  check "$1: eddy has events in flight" wait_for inflight_now
  stop_eddy a KILL
  start_eddy "$d" b
  wait "$PRODUCER_PID"
  check "$1: SIGKILL mid-stream and restart: no eventId missing" wait_covered "$d/manifest.tsv"
  local dups; dups=$(duplicates "$d/out")
  check "$1: duplicates after SIGKILL are few ($dups, at least once)" test "$dups" -le 4000
  stop_eddy b; expect_eq "$1: the restarted eddy stops cleanly" 0 "$STOP_RC"
}
