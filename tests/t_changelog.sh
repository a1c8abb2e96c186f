# state.changelog=true against a real Apache Kafka broker: keyed state and windows move
# with their partitions through a compacted changelog topic, so instances with no
# shared disk (each its own state.dir, or none) hand a partition's state to its next
# owner. Each
# output carries its key's count, a per-key sequence number: under exactly_once
# every key's sequence arrives once, 1..n without a gap or a repeat, through members
# killed, added and removed.
. tests/kafka_lib.sh
. tests/broker_lib.sh
. tests/eos_lib.sh

# member NAME [key=value...]: an instance of the group with a directory of its own,
# under the supervisor as in the container: a commit that a rebalance overtakes
# (ILLEGAL_GENERATION) aborts and its worker is restarted from the committed offsets.
member() {
  local m=$1; shift
  mkdir -p "$d/$m"
  [ -e "$d/$m/processors" ] || ln -s "$d/processors" "$d/$m/processors"
  eos_conf "$d/$m" cl kafka.transactional.id="cl-$m" state.changelog=true \
    commit.interval.ms=500 runtime.supervisor=true "$@"
  sed -i "s|^processors.dir=.*|processors.dir=$d/processors|" "$d/$m/eddy.conf"
}
run_member() { "$EDDY" run -c "$d/$1/eddy.conf" >/dev/null 2>"$d/$1.err" & eval "EDDY_PID_$1=$!"; }

# 200,000 events on 12 partitions, three instances, each with a state.dir of its own.
# A is SIGKILLed, D joins, C leaves (SIGTERM), B is SIGKILLed and started again.
eos_case 200000 "" 12
for m in a b c d; do member "$m" "state.dir=$d/$m/state"; done   # no shared disk
MOCK_DIR=$d
run_member a; run_member b; run_member c
for m in a b c; do wait_for grep -q "partitions assigned" "$d/$m.err"; done
check "changelog: the topic was created, compacted, with the input's 12 partitions" \
  grep -q "topic cl-changelog created: 12 partitions, cleanup.policy=compact" "$d/a.err" "$d/b.err" "$d/c.err"
produce_paced "$d/events.ndjson" 40 0.5 produce_keyed
sleep 3; stop_eddy a KILL
sleep 2; run_member d
sleep 3; stop_eddy c; expect_eq "changelog: C leaves cleanly" 0 "$STOP_RC"
sleep 3; stop_eddy b KILL; cp "$d/b.err" "$d/b.err.1"; run_member b
wait "$PRODUCER_PID"
check_exactly_once "changelog" 200000
check "changelog: partitions that moved were restored from the changelog" \
  grep -q "partitions restored from cl-changelog" "$d/d.err" "$d/b.err"
restored=$(metric "$d" d eddy_changelog_restored_records_total)
check "changelog: D read the changelog of its partitions ($restored records)" \
  test "${restored:-0}" -gt 0
expect_eq "changelog: ... and has nothing left to restore (eddy_changelog_restore_lag_records)" 0 \
  "$(metric "$d" d eddy_changelog_restore_lag_records)"
written=$(metric "$d" d eddy_changelog_records_total)
check "changelog: D wrote its changes ($written records)" test "${written:-0}" -gt 0
read=$(metric "$d" d eddy_records_read_total)
check "changelog: ... a key changed by many events of a commit written once ($written records for $read events)" \
  test "${written:-0}" -lt "$(( ${read:-0} / 10 ))"
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$d/d.err" | cut -d: -f2)
curl -fsS "http://127.0.0.1:$port/-/state" > "$d/d-state.json"
check "changelog: GET /-/state lists D's partitions, each restored from the changelog" \
  jq -e '[.workers[].partitions[]] | length > 0 and all(.changelog.restore == "done" and .changelog.topic == "cl-changelog")' "$d/d-state.json"
check "changelog: ... with the state keys they hold" \
  jq -e '[.workers[].partitions[].state_keys] | add > 0' "$d/d-state.json"
stop_eddy b; expect_eq "changelog: B stops cleanly" 0 "$STOP_RC"
stop_eddy d; expect_eq "changelog: D stops cleanly" 0 "$STOP_RC"

# The state a fresh instance restores is the one the group left: one more event per
# key after everyone stopped goes on from each key's last count.
member e
run_member e
for k in 0 1 2; do
  printf 'k%s\t{"domain":"t","type":"x","timestamp":300000000,"eventId":"z%s","payload":{"k":"k%s"}}\n' \
    "$k" "$k" "$k"
done | kcat -b "$BOOT" -P -t events -K '	'
last_out() { [ "$(committed out | grep -c '"id":"z')" -ge 3 ]; }
check "changelog: a new instance processes after everyone left" wait_for last_out
next=$(awk 'BEGIN { for (i = 1; i <= 200000; i++) if (i % 100 && i % 50 < 3) c[i % 50]++
                     printf "z0 k0 %d z1 k1 %d z2 k2 %d", c[0] + 1, c[1] + 1, c[2] + 1 }')
expect_eq "changelog: ... going on from each key's restored count" "$next" \
  "$(committed out | jq -r 'select(.id and (.id | startswith("z"))) | "\(.id) \(.k) \(.c)"' | sort | tr '\n' ' ' | sed 's/ $//')"
stop_eddy e; expect_eq "changelog: E stops cleanly" 0 "$STOP_RC"

# Restore figures: how long E took to read its 12 partitions.
secs=$(grep -o 'partitions restored from cl-changelog: [0-9]* records read, [0-9]* entries, [0-9.]* s' "$d/e.err" | tail -1)
check "changelog: E logged its restore ($secs)" test -n "$secs"
stop_broker

# Windows move too: the only instance is SIGKILLed mid-stream and a new one, with a
# directory of its own, takes its partitions. (Windows fire by the worker's watermark,
# the least of its partitions' event times: a partition that joins an instance already
# further on in event time finds its backlog late. So here the partitions move all
# together; per-partition watermarks would lift that.)
eos_case 40000 windows
member a; member b
MOCK_DIR=$d
produce_paced "$d/events.ndjson" 20 0.5 produce_keyed
run_member a
wait_for grep -q "partitions restored from" "$d/a.err"
sleep 3; stop_eddy a KILL
run_member b
wait "$PRODUCER_PID"
check_exactly_once "changelog windows" 40000 windows
check "changelog windows: B restored A's windows and state" \
  grep -q "partitions restored from cl-changelog: [1-9][0-9]* records read" "$d/b.err"
stop_eddy b; expect_eq "changelog windows: B stops cleanly" 0 "$STOP_RC"
stop_broker

# At least once: the changelog is written before an event's offset is stored, so it is
# never behind the group's offsets. After a SIGKILL the events after them count again
# (their outputs come twice, with the next numbers). Outputs and changelog records are
# separate writes, so where B takes over a key's count may also skip the numbers whose
# change reached the changelog and whose output did not (Kafka Streams' at_least_once
# alike); the old check, no gap at all, failed once in about twenty runs. With the
# outputs keyed by k, each key's counts in its partition's order run on by one but at
# that one place.
eos_case 20000
mkdir -p "$d/a" "$d/b"
for m in a b; do
  ln -s "$d/processors" "$d/$m/processors"
  kafka_out_conf "$d/$m" alos out state.changelog=true kafka.session.timeout.ms=6000 \
    sink.out.key=k
  sed -i "s|^processors.dir=.*|processors.dir=$d/processors|" "$d/$m/eddy.conf"
done
MOCK_DIR=$d
produce_paced "$d/events.ndjson" 10 0.5 produce_keyed
run_member a
wait_for grep -q "partitions restored from" "$d/a.err"
sleep 2; stop_eddy a KILL
run_member b
wait "$PRODUCER_PID"
check "changelog at least once: every output arrives" wait_for outputs_in 19800
sleep 1
# Partition, offset, key, count of every output, in each partition's order; and each
# key's counts.
kcat -b "$BOOT" -C -t out -e -q -J | jq -r '(.payload | fromjson) as $v | select($v.id)
  | [.partition, .offset, $v.k, $v.c] | @tsv' | sort -k1,1n -k2,2n > "$d/order"
awk -F'\t' '{ print $3, $4 }' "$d/order" | sort -u > "$d/seq"
breaks=$(awk '{ if (!($3 in last)) { if ($4 != 1) bad[$3] = 1 }
                else if ($4 != last[$3] + 1) n[$3]++
                last[$3] = $4 }
              END { for (k in n) if (n[k] > 1) bad[k] = 1; for (k in bad) print k }' "$d/order")
check "changelog at least once: each key counts on by one from 1, but where B took over ($(wc -l < "$d/order") outputs)" \
  test -z "$breaks" -a -s "$d/order"
short=$(awk '{ if ($2 > max[$1]) max[$1] = $2 } END { for (k in max) if (max[k] < (k == "k0" ? 200 : 400)) print k }' "$d/seq")
check "changelog at least once: ... and every key counted all its events at least once" \
  test -z "$short" -a "$(cut -d' ' -f1 "$d/seq" | sort -u | wc -l)" = 50
stop_eddy b; expect_eq "changelog at least once: B stops cleanly" 0 "$STOP_RC"
stop_broker

# state.dir beside the changelog is a cache of it (Kafka Streams' checkpoint file): A
# stops cleanly and writes its files; B, with no state.dir, takes the partitions and
# changes three keys; A, back with its old files, reads only the changelog after them
# (B's changes) and goes on from every key's count.
eos_case 20000
member a "state.dir=$d/a/state"; member b
MOCK_DIR=$d
produce_keyed "$d/events.ndjson"
run_member a
check "changelog cache: A processes every event" wait_for outputs_in 19800
stop_eddy a; expect_eq "changelog cache: A stops cleanly" 0 "$STOP_RC"
check "changelog cache: ... writing its files after the last commit" \
  grep -q "checkpoint taken on the way out" "$d/a.err"
cp "$d/a.err" "$d/a.err.1"
run_member b
wait_for grep -q "partitions restored from cl-changelog" "$d/b.err"
full=$(grep -o 'restored from cl-changelog: [0-9]* records read' "$d/b.err" | tail -1 | grep -o '[0-9]* records' | cut -d' ' -f1)
key_events() {  # key_events PREFIX: one event for each of k0, k1, k2
  for k in 0 1 2; do
    printf 'k%s\t{"domain":"t","type":"x","timestamp":300000000,"eventId":"%s%s","payload":{"k":"k%s"}}\n' \
      "$k" "$1" "$k" "$k"
  done | kcat -b "$BOOT" -P -t events -K '	'
}
ids_out() { [ "$(committed out | grep -c "\"id\":\"$1")" -ge 3 ]; }
key_events z
check "changelog cache: B restored all of it from the changelog ($full records) and processes" \
  wait_for ids_out z
stop_eddy b; expect_eq "changelog cache: B stops cleanly" 0 "$STOP_RC"
run_member a
key_events y
check "changelog cache: A, back, processes" wait_for ids_out y
line=$(grep -o 'partitions restored from cl-changelog: [0-9]* records read.*' "$d/a.err" | tail -1)
check "changelog cache: A restored its partitions from its files and the changelog after them ($line)" \
  grep -q "(4 from a state.dir file" <<<"$line"
tail_read=$(grep -o 'cl-changelog: [0-9]* records' <<<"$line" | grep -o '[0-9]*')
check "changelog cache: ... reading $tail_read changelog records (B's) instead of $full" \
  test "${tail_read:-99999}" -le 10 -a "${tail_read:-99999}" -lt "${full:-0}"
want=$(awk 'BEGIN { for (i = 1; i <= 20000; i++) if (i % 100 && i % 50 < 3) c[i % 50]++
                    printf "y0 k0 %d y1 k1 %d y2 k2 %d", c[0] + 2, c[1] + 2, c[2] + 2 }')
expect_eq "changelog cache: ... and every key goes on from its count, B's changes included" "$want" \
  "$(committed out | jq -r 'select(.id and (.id | startswith("y"))) | "\(.id) \(.k) \(.c)"' | sort | tr '\n' ' ' | sed 's/ $//')"
port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$d/a.err" | tail -1 | cut -d: -f2)
check "changelog cache: GET /-/state says which partitions came from state.dir" \
  jq -e '[.workers[].partitions[].changelog.from_state_dir] | length > 0 and all' \
  <<<"$(curl -fsS "http://127.0.0.1:$port/-/state")"
stop_eddy a; expect_eq "changelog cache: A stops cleanly again" 0 "$STOP_RC"
# Files older than state.cache.max.age.ms are not used: the whole changelog is read.
member a "state.dir=$d/a/state" state.cache.max.age.ms=1
run_member a
check "changelog cache: a file older than state.cache.max.age.ms is not used" \
  wait_for grep -q "file of partition [0-3] older than state.cache.max.age.ms" "$d/a.err"
wait_for grep -q "partitions restored from cl-changelog" "$d/a.err"
check "changelog cache: ... the partitions are restored from the whole changelog" \
  grep -q "partitions restored from cl-changelog: [0-9]* records read.*(0 from a state.dir file" "$d/a.err"
stop_eddy a; expect_eq "changelog cache: A stops cleanly a third time" 0 "$STOP_RC"
stop_broker

# The embedded mock cluster (make demo) describes no topic config and compacts
# nothing: the changelog is made there without the policy check, and works.
d=$(newdir); mkdir -p "$d/processors"
write_echo_processor "$d" echo t
printf '%s\n' "processors.dir=$d/processors" source.type=kafka source.topics=events \
  kafka.embedded=true kafka.group.id=emb kafka.auto.offset.reset=earliest \
  sink.out.type=stdout dlq.sink=out state.changelog=true > "$d/emb.conf"
"$EDDY" run -c "$d/emb.conf" >/dev/null 2>"$d/emb.err" & pid=$!
check "changelog on the embedded cluster: its partitions are restored" \
  wait_for grep -q "partitions restored from emb-changelog" "$d/emb.err"
kill -TERM "$pid"; rc=0; wait "$pid" || rc=$?
expect_eq "changelog on the embedded cluster: eddy stops cleanly" 0 "$rc"

# What the changelog cannot be used with is refused at start, naming file and line.
d=$(newdir); mkdir -p "$d/processors"
write_echo_processor "$d" echo t
BOOT=127.0.0.1:9
write_conf "$d" state.changelog=true
out=$("$EDDY" run -c "$d/eddy.conf" 2>&1)
check "changelog refuses a file source" \
  grep -q "state.changelog: needs a Kafka source" <<<"$out"
