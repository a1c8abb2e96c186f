# Operator experience: log.format=json, the start-up summary without secrets, dead
# letters summarised instead of one line each, GET /-/config, `eddy check` listing sinks
# and lookups with their settings, and the status line of `eddy run` on a terminal.

bad_lines() { local i; for i in $(seq "$1"); do echo "not json $i"; done; }

# --- dead letters: one full line, then one summary, and every record in the sink ---
d=$(newdir)
write_conf "$d" 'mysql.url=mysql://eddy:hunter2@127.0.0.1:3306/eddy'
write_echo_processor "$d" echo t
{ bad_lines 500; event zzz a e1; event t a e2; } > "$d/in.ndjson"
run_eddy "$d"
expect_eq "dlq log: the run succeeds" 0 "$RC"
expect_eq "dlq log: every bad record is in the dead-letter sink" 501 "$(wc -l < "$d/dlq.ndjson")"
expect_eq "dlq log: the first dead letter gets one full line" 1 \
  "$(grep -c 'dead letter (bad_json) .*in.ndjson:1: ' "$d/err")"
check "dlq log: the rest are one summary line, counted by reason" \
  grep -q 'dead letters: 500 more (bad_json 499, no_route 1); the first of them: bad_json .*in.ndjson:2' "$d/err"
check "dlq log: 501 dead letters make at most 4 log lines in all" \
  test "$(wc -l < "$d/err")" -le 6
check "summary: the end says records, outputs and dead letters by reason" \
  grep -q 'done: 502 records, 1 outputs, 501 dead letters (.*bad_json 500.*) in [0-9.]* s' "$d/err"
check "start-up: one line says what the run reads and writes" \
  grep -q "config $d/eddy.conf: source=file $d/in.ndjson .*sinks: out(file) dlq(file)" "$d/err"
check "start-up: the MySQL URL is shown with its password masked" \
  grep -q 'mysql=mysql://eddy:\*\*\*@127.0.0.1:3306/eddy' "$d/err"
check "start-up: the password itself is never logged" bash -c "! grep -q hunter2 '$d/err'"
check "no terminal: no status line escapes in the log" bash -c "! grep -q $'\e' '$d/err'"

# --- a burst summarised while running: the interval timer logs it, not the end ---
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" 'admin.listen=127.0.0.1:0' \
  'log.dead.letters.interval.ms=200'
write_echo_processor "$d" echo t
fifo_eddy "$d"
bad_lines 3 >&3
check "dlq log: a burst is summarised when its interval ends" \
  wait_eval "grep -q 'dead letters: 2 more (bad_json 2)' '$d/err'"
sleep 0.5                      # a quiet interval: the next one is logged in full again
echo 'not json again' >&3
check "dlq log: after a quiet interval the next dead letter is logged in full" \
  wait_eval "grep -q 'dead letter (bad_json) .*fifo:4' '$d/err'"

# --- GET /-/config: the effective config, where each value came from, secrets masked ---
port=$(admin_port "$d/err")
curl -fsS "http://127.0.0.1:$port/-/config" > "$d/config.json"
check "/-/config: answers JSON" jq -e '.keys | length > 10' "$d/config.json"
expect_eq "/-/config: a set key says its file and line" \
  "200 $d/eddy.conf:$(grep -n '^log.dead' "$d/eddy.conf" | cut -d: -f1)" "$(jq -r '.keys[] | select(.key == "log.dead.letters.interval.ms") | "\(.value) \(.from)"' "$d/config.json")"
expect_eq "/-/config: an unset key shows its default" "1000 default" \
  "$(jq -r '.keys[] | select(.key == "processor.timeout.ms") | "\(.value) \(.from)"' "$d/config.json")"
exec 3>&-
wait "$PID"

d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" 'admin.listen=127.0.0.1:0' \
  'mysql.url=mysql://eddy:p@ss/w0rd@db.example:3306/eddy' 'kafka.sasl.password=hunter2' \
  'sink.es.type=elasticsearch' 'sink.es.url=https://es.example:9200/?api_key=s3cr3t&refresh=wait_for#x' \
  'sink.es.index=i'
write_echo_processor "$d" echo t
fifo_eddy "$d"
wait_eval "test -n \"\$(admin_port '$d/err')\""
curl -fsS "http://127.0.0.1:$(admin_port "$d/err")/-/config" > "$d/config.json"
expect_eq "/-/config: a password in mysql.url is masked, user and host kept" \
  "mysql://eddy:***@db.example:3306/eddy" "$(jq -r '.keys[] | select(.key == "mysql.url") | .value' "$d/config.json")"
expect_eq "/-/config: a secret key is masked" "***" \
  "$(jq -r '.keys[] | select(.key == "kafka.sasl.password") | .value' "$d/config.json")"
expect_eq "/-/config: the query values of a URL are masked, their names kept" \
  "https://es.example:9200/?api_key=***&refresh=***#x" \
  "$(jq -r '.keys[] | select(.key == "sink.es.url") | .value' "$d/config.json")"
check "/-/config: no secret appears anywhere in it" bash -c "! grep -Eq 'hunter2|w0rd|s3cr3t' '$d/config.json'"
check "logs: no secret appears in them" bash -c "! grep -Eq 'hunter2|w0rd|s3cr3t' '$d/err'"
check "check: no secret appears in eddy check" \
  bash -c "'$EDDY' check -c '$d/eddy.conf' 2>&1 | grep -q 'api_key=\*\*\*' && ! '$EDDY' check -c '$d/eddy.conf' 2>&1 | grep -Eq 'hunter2|w0rd|s3cr3t'"
exec 3>&-
wait "$PID"

# --- log.format=json: every line one object, whatever the message holds ---
d=$(newdir)
write_conf "$d" 'log.format=json'
cat > "$d/processors/talk.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    ctx.log("warn", 'quote " backslash \\ tab \t newline \n ctl \1 bad utf8 \255 ok \226\130\172')
  end,
}
LUA
{ echo 'not json'; event t a e1; } > "$d/in.ndjson"
run_eddy "$d"
expect_eq "json log: the run succeeds" 0 "$RC"
check "json log: every line parses and has time, level and msg" \
  jq -s -e --argjson n "$(wc -l < "$d/err")" \
  'length == $n and all(.[]; (.time | test("^[0-9-]{10}T")) and (.level | length > 0) and (.msg | length > 0))' "$d/err"
expect_eq "json log: quotes, control bytes and bad UTF-8 are escaped, good UTF-8 kept" \
  $'processor talk: quote " backslash \\ tab \t newline \n ctl \001 bad utf8 \uFFFD ok \u20AC' \
  "$(jq -r 'select(.msg | startswith("processor talk")) | .msg' "$d/err")"
check "json log: dead letters and the summary are objects too" \
  jq -s -e 'any(.[]; .level == "warn" and (.msg | startswith("dead letter (bad_json)"))) and
            any(.[]; .msg | startswith("done: 2 records"))' "$d/err"

# --- text log: a newline in a domain or in ctx.log text cannot forge a line ---
d=$(newdir)
write_conf "$d"
cat > "$d/processors/talk.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    ctx.log("info", "got\n2026-01-01T00:00:00.000Z error forged\r\1")
    print(string.rep("a", 20000), "b", 3, nil)
  end,
}
LUA
{ event t a e1; printf '{"domain":"x\\n2026-01-01T00:00:00.000Z error forged","type":"a","timestamp":1,"eventId":"e2","payload":{}}\n'; } > "$d/in.ndjson"
run_eddy "$d"
expect_eq "text log: the run succeeds" 0 "$RC"
expect_eq "text log: no line starts with a forged time stamp" 0 "$(grep -c '^2026-01-01T' "$d/err")"
check "text log: ctx.log's newline, CR and control byte are escaped in place" \
  grep -qF 'processor talk: got\n2026-01-01T00:00:00.000Z error forged\r\x01' "$d/err"
check "text log: the dead letter names the domain with its newline escaped" \
  grep -qF 'domain=x\n2026-01-01T00:00:00.000Z error forged' "$d/err"
check "print: a long first argument and more arguments log one line" \
  grep -qE 'processor talk: a{100}' "$d/err"
expect_eq "print: no event dead-lettered" 0 "$(jq -c 'select(.eventId == "e1")' "$d/dlq.ndjson" | wc -l)"

# --- eddy check: routes, each sink and lookup with its settings ---
"$EDDY" check -c conf/eddy.conf --set sink.geofence_alerts.api.key=hunter2 > "$T/check.txt" 2>&1
check "check: lists the route table" grep -q '^order  *order_pay  *order ' "$T/check.txt"
check "check: each sink with its type" grep -qx '  order_wide (mysql)' "$T/check.txt"
check "check: a sink's set keys with file:line" \
  grep -qx '      table=order_wide  \[conf/eddy.conf:[0-9]*\]' "$T/check.txt"
check "check: the defaults that apply to a MySQL sink" \
  grep -qx '      batch.rows=1000  \[default\]' "$T/check.txt"
check "check: a file sink shows no MySQL defaults" \
  bash -c "sed -n '/^  dlq (file)/,/^  [a-z]/p' '$T/check.txt' | grep -vq batch.rows"
check "check: each lookup with its cache mode and settings" \
  bash -c "grep -qx '  user_dim (partial)' '$T/check.txt' && grep -qx '      max.wait.ms=30000  \[default\]' '$T/check.txt'"
check "check: a sink's secret is masked" grep -qx '      api.key=\*\*\*  \[--set:[0-9]*\]' "$T/check.txt"
check "check: the secret never shows" bash -c "! grep -q hunter2 '$T/check.txt'"

# --- a terminal: `eddy run` draws a status line, then the summary ---
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo"
write_echo_processor "$d" echo t
mkfifo "$d/fifo"
exec 3<>"$d/fifo"
# script(1) gives eddy a pseudo-terminal, as an operator's shell would; what eddy writes
# to it lands in $d/tty.
script -qec "'$EDDY' run -c '$d/eddy.conf' > /dev/null" /dev/null < /dev/null > "$d/tty" 3>&- &
spid=$!
{ for i in $(seq 1000); do event t a "e$i"; done; bad_lines 2; } >&3
check "terminal: the status line shows events, events/s, outputs and dead letters" \
  wait_eval "grep -aq $'\r\e\\[Kevents 1002  [0-9]*/s  outputs 1000  dead letters 2' '$d/tty'"
exec 3>&-
wait "$spid"
check "terminal: the summary ends the run, the status line cleared before it" \
  grep -aq $'\e\\[K.*done: 1002 records, 1000 outputs, 2 dead letters' "$d/tty"
