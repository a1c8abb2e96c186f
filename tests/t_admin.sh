# Admin endpoint, live: /healthz and /metrics (checked by promtool) while eddy reads a
# FIFO; then SIGTERM with half a line written: exit 0, outputs flushed, the partial
# line dead-lettered as truncated. Also stdin input and a sink that fails.

# wait_for COND...: poll up to 10 s for a condition (a bound, not a timing assertion).
wait_for() { local i; for i in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
lines_in() { [ -f "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ]; }

d=$(newdir)
write_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo"
write_echo_processor "$d" echo t
fifo_eddy "$d"
{ event t a e1; event t a e2; echo '{"broken'; event u b e3; } >&3
check "admin: events flow through the FIFO" wait_for lines_in "$d/out.ndjson" 2
check "admin: dead letters are flushed too" wait_for lines_in "$d/dlq.ndjson" 2
port=$(admin_port "$d/err")
expect_eq "admin: /healthz answers ok" "ok" "$(curl -fsS "http://127.0.0.1:$port/healthz")"
curl -fsS "http://127.0.0.1:$port/metrics" > "$d/metrics"
check "admin: promtool accepts /metrics" promtool check metrics < "$d/metrics"
m() { grep -v '^#' "$d/metrics" | grep -F "$1 " | awk '{print $NF}'; }
expect_eq "admin: events in by domain/type" 2 "$(m 'eddy_events_in_total{domain="t",type="a"}')"
expect_eq "admin: records read" 4 "$(m eddy_records_read_total)"
expect_eq "admin: dead letters by reason" "1/1" \
  "$(m 'eddy_dead_letters_total{reason="bad_json"}')/$(m 'eddy_dead_letters_total{reason="no_route"}')"
expect_eq "admin: events out by sink" "2/2" \
  "$(m 'eddy_events_out_total{sink="out"}')/$(m 'eddy_events_out_total{sink="dlq"}')"
expect_eq "admin: processor events and errors" "2/0" \
  "$(m 'eddy_processor_events_total{processor="echo"}')/$(m 'eddy_processor_errors_total{processor="echo"}')"
expect_eq "admin: latency histogram counts every call" 2 \
  "$(m 'eddy_processing_duration_seconds_count{processor="echo"}')"
expect_eq "admin: unknown path is 404" 404 \
  "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/nope")"

printf '{"domain":"t","type":"a","timest' >&3
sleep 0.3
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
exec 3>&-
expect_eq "signal: SIGTERM exits 0" 0 "$rc"
expect_eq "signal: the partial line is dead-lettered as truncated, bytes kept" \
  'truncated|{"domain":"t","type":"a","timest' \
  "$(jq -r 'select(.reason=="truncated") | .reason + "|" + .raw' "$d/dlq.ndjson")"
check "signal: the stop is logged" grep -q "SIGTERM: stopping" "$d/err"

# stdin, the default source.
d=$(newdir)
write_conf "$d" 'source.file.path=-'
write_echo_processor "$d" echo t
{ event t a s1; printf '\n  \n'; event t a s2; } | "$EDDY" run -c "$d/eddy.conf" 2>/dev/null
expect_eq "stdin: records are read, blank lines skipped" "s1 s2" \
  "$(jq -r .id "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"

# A sink that cannot be written is a runtime failure: exit 1, said clearly.
d=$(newdir)
write_conf "$d" "sink.out.path=/dev/full"
write_echo_processor "$d" echo t
event t a f1 > "$d/in.ndjson"
run_eddy "$d"
expect_eq "sink failure: exit 1" 1 "$RC"
check "sink failure: the error names the sink and cause" \
  grep -q "sink out: write failed: No space left on device" "$d/err"

# The disk fills in the middle (a file-size limit stands in for it): exit 1, the file
# ends with a whole record, the summary counts what is in it, and the log says where
# the input stopped.
d=$(newdir)
write_conf "$d"
write_echo_processor "$d" echo t
for i in $(seq 20000); do event t a "f$i"; done > "$d/in.ndjson"
RC=0; prlimit --fsize=1000000 "$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err" || RC=$?
expect_eq "disk full: exit 1" 1 "$RC"
expect_eq "disk full: the file ends with a whole record" 0 "$(tail -c 1 "$d/out.ndjson" | od -An -c | grep -vc '\\n')"
check "disk full: every line of the file is a whole record" bash -c "jq -e . '$d/out.ndjson' > /dev/null"
expect_eq "disk full: the summary counts the records in the file" "$(wc -l < "$d/out.ndjson")" \
  "$(grep -o 'done: [0-9]* records, [0-9]* outputs' "$d/err" | awk '{ print $4 }')"
check "disk full: the sink says what was not written" \
  grep -qE "sink out: write failed: File too large; the output ends with its last whole record, [0-9]+ records were not written" "$d/err"
check "disk full: the log says where the input stopped" \
  grep -qE "stopping: a sink failed with input read up to $d/in.ndjson:[0-9]+" "$d/err"

# admin.token: a POST needs the bearer token (401 without it, or with a wrong one); the
# GETs stay open; the token is never logged. Under the supervisor too.
for mode in single supervised; do
  d=$(newdir)
  extra=(); [ $mode = supervised ] && extra=('runtime.supervisor=true')
  write_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" 'admin.token=t0k3n-s3cr3t' "${extra[@]}"
  write_echo_processor "$d" echo t
  fifo_eddy "$d"
  wait_eval 'test -n "$(admin_port "$d/err")"'
  port=$(admin_port "$d/err")
  u="http://127.0.0.1:$port/-/reload"
  got="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$u")"
  got="$got $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer wrong' "$u")"
  got="$got $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer t0k3n-s3cr3' "$u")"
  got="$got $(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer t0k3n-s3cr3t' "$u")"
  got="$got $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/healthz")"
  got="$got $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/metrics")"
  want="401 401 401 200 200 200"; [ $mode = supervised ] && want="401 401 401 202 200 200"
  expect_eq "token ($mode): POST without, wrong, short, right token; GET /healthz, /metrics" "$want" "$got"
  check "token ($mode): a 401 says what is needed" \
    bash -c "curl -s -X POST '$u' | grep -q 'Authorization: Bearer <admin.token>'"
  s="http://127.0.0.1:$port/-/state/echo"
  got="$(curl -s -o /dev/null -w '%{http_code}' "$s")"
  got="$got $(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer wrong' "$s")"
  got="$got $(curl -fsS -H 'Authorization: Bearer t0k3n-s3cr3t' "$s" | jq -c 'if .workers then .workers[0] else . end | .processor')"
  expect_eq "token ($mode): GET /-/state (data, not counters) needs it too" '401 401 "echo"' "$got"
  check "token ($mode): /-/config masks it" \
    bash -c "curl -s 'http://127.0.0.1:$port/-/config' | jq -e '.keys[] | select(.key == \"admin.token\") | .value == \"***\"'"
  exec 3>&-
  wait "$PID"
  check "token ($mode): never in the log" bash -c "! grep -q t0k3n '$d/err'"
done
