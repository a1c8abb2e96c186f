# Runaway code in one process (no supervisor): a loop after 100,000 warm-up events
# and a backtracking string.find are stopped at processor.timeout.ms and dead-lettered
# `timeout` once; the admin endpoint answers throughout, on its own thread; eddy's
# pattern functions agree with LuaJIT's; hostile admin clients change nothing.

# runaway_proc DIR [extra table fields]: a processor whose event types misbehave.
runaway_proc() {
  cat > "$1/processors/run.lua" <<LUA
return {
  routes = { { domain = "d", type = "*" } },
  ${2:-}
  process = function(ev, ctx)
    if ev.type == "loop" then while true do end end
    if ev.type == "find" then string.find(string.rep("a", 1e6), ".-.-.-.-.-b") end
    if ev.type == "gsub" then local s = string.rep("a", 1e5); s:gsub("(a*)*b", "") end
    if ev.type == "slow" then local t = ctx.now(); while ctx.now() - t < 5000 do end end
    ctx.emit("out", { id = ev.eventId })
  end,
}
LUA
}
# ev_lines PREFIX FROM TO [TYPE]: events PREFIX<n> of type TYPE (default w).
ev_lines() {
  awk -v p="$1" -v a="$2" -v b="$3" -v t="${4:-w}" 'BEGIN { for (i = a; i <= b; i++)
    printf "{\"domain\":\"d\",\"type\":\"%s\",\"timestamp\":1,\"eventId\":\"%s%d\",\"payload\":{}}\n", t, p, i }'
}
# poll_health PORT FILE: GET /healthz every 50 ms until killed; one line per answer:
# exit code of curl (28: no answer within 100 ms), HTTP status.
poll_health() {
  while :; do
    local code rc=0
    code=$(curl -s -o /dev/null -m 0.1 -w '%{http_code}' "http://127.0.0.1:$1/healthz") || rc=$?
    echo "$rc $code" >> "$2"
    sleep 0.05
  done
}
dead_ids() { jq -r '(.raw|fromjson).eventId + " " + .reason' "$1/dlq.ndjson" 2>/dev/null; }
# runaway_eddy TIMEOUT_MS [table fields] [key=value...]: a fresh $d, eddy reading its
# FIFO (fd 3) with that processor.timeout.ms; sets PID and port.
runaway_eddy() {
  local t=$1 fields=${2:-}; shift; [ $# -gt 0 ] && shift
  d=$(newdir)
  write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "processor.timeout.ms=$t" "$@"
  runaway_proc "$d" "$fields"
  fifo_eddy "$d"
  wait_eval 'test -n "$(admin_port "$d/err")"'
  port=$(admin_port "$d/err")
}

# ---- the held-out scenario: 100,000 events, `while true do end`, 100 more ----
runaway_eddy 500
poll_health "$port" "$d/health" & POLL=$!
ev_lines w 1 100000 >&3
ev_lines L 1 1 loop >&3
ev_lines a 1 100 >&3
wait_eval 'test "$(grep -c "\"a" "$d/out.ndjson")" -ge 100'
sleep 0.3
kill $POLL; wait $POLL 2>/dev/null
exec 3>&-
wait $PID; rc=$?
expect_eq "runaway: eddy ends normally after the input" 0 "$rc"
expect_eq "runaway: the loop's event is dead-lettered timeout, once" "L1 timeout" "$(dead_ids "$d")"
expect_eq "runaway: the 100,000 events before it, each once" 100000 \
  "$(jq -r .id "$d/out.ndjson" | grep '^w' | sort -u | wc -l)"
expect_eq "runaway: the 100 events after it, each once" "100 100" \
  "$(jq -r .id "$d/out.ndjson" | grep -c '^a') $(jq -r .id "$d/out.ndjson" | grep '^a' | sort -u | wc -l)"
expect_eq "runaway: 100,100 outputs in all (nothing twice)" 100100 "$(wc -l < "$d/out.ndjson")"
n=$(wc -l < "$d/health")
check "runaway: /healthz was asked throughout ($n times)" test "$n" -ge 5
expect_eq "runaway: every /healthz answered within 100 ms" 0 "$(awk '$1 != 0' "$d/health" | wc -l)"

# ---- long calls inside C functions: a backtracking find and gsub ----
d=$(newdir)
write_conf "$d" "processor.timeout.ms=300"
runaway_proc "$d"
{ ev_lines F 1 1 find; ev_lines G 1 1 gsub; ev_lines a 1 3; } > "$d/in.ndjson"
s=$(date +%s%N)
run_eddy "$d"
ms=$(( ($(date +%s%N) - s) / 1000000 ))
expect_eq "C runaway: eddy ends normally" 0 "$RC"
expect_eq "C runaway: string.find and gsub are dead-lettered timeout" "F1 timeout G1 timeout" \
  "$(dead_ids "$d" | paste -sd' ')"
expect_eq "C runaway: the events after them are processed" "a1 a2 a3" "$(jq -r .id "$d/out.ndjson" | paste -sd' ')"
# Two calls of 300 ms each; a bound on stopping, not a speed figure.
check "C runaway: each stopped within twice processor.timeout.ms (run took $ms ms)" test "$ms" -lt 2400

# ---- eddy's pattern functions give LuaJIT's results and errors ----
d=$(newdir)
write_conf "$d"
{ echo 'local R = (function()'; cat tests/string-cases.lua; echo 'end)()'
  echo 'return { routes = { { domain = "d", type = "*" } },'
  echo '  process = function(ev, ctx) ctx.emit("out", { r = R }) end }'; } > "$d/processors/cases.lua"
ev_lines c 1 1 > "$d/in.ndjson"
run_eddy "$d"
(cd tests && luajit -e 'io.write(dofile("string-cases.lua"), "\n")') > "$d/want.txt"
jq -r .r "$d/out.ndjson" > "$d/got.txt"
n=$(wc -l < "$d/want.txt")
check "patterns: all $n cases give LuaJIT's results and errors" diff "$d/want.txt" "$d/got.txt"

# ---- the admin endpoint during a 5 s call below the timeout ----
runaway_eddy 10000
ev_lines a 1 1 >&3
wait_eval 'grep -q a1 "$d/out.ndjson"'
ev_lines S 1 1 slow >&3
sleep 0.5
h=$(curl -s -m 0.1 -w ' %{http_code}' "http://127.0.0.1:$port/healthz")
expect_eq "busy: /healthz answers ok within 100 ms during a 5 s call" "ok 200" "$(echo $h)"
curl -s -m 0.1 -D "$d/mh" -o "$d/metrics" "http://127.0.0.1:$port/metrics"; rc=$?
expect_eq "busy: /metrics answers within 100 ms" 0 "$rc"
check "busy: ... with the last figures, marked stale" grep -qi '^X-Eddy-Stale-Ms: [0-9]' "$d/mh"
check "busy: ... which promtool accepts" promtool check metrics < "$d/metrics"
c=$(curl -s -m 0.2 -X POST -w ' %{http_code}' "http://127.0.0.1:$port/-/reload")
expect_eq "busy: POST /-/reload is accepted for later" '{"pending": true, "busy": true} 202' "$(echo $c)"
exec 3>&-
wait $PID; rc=$?
expect_eq "busy: the 5 s call finishes and eddy ends normally" "0 S1" "$rc $(jq -r .id "$d/out.ndjson" | tail -1)"

# ---- a compiled loop (jit = true) cannot be stopped in one process: /healthz says so ----
runaway_eddy 300 "jit = true,"
ev_lines a 1 5 >&3
ev_lines L 1 1 loop >&3
wait_eval 'curl -s -m 0.1 "http://127.0.0.1:$port/healthz" | grep -q stuck'
h=$(curl -s -m 0.1 -w ' %{http_code}' "http://127.0.0.1:$port/healthz")
check "stuck: /healthz is 503 naming the processor and the record" \
  grep -qE "^stuck: processor run has run [0-9]+ ms on $d/fifo:6 \(processor.timeout.ms=300\) 503$" <<<"$(echo $h)"
kill -9 $PID; wait $PID 2>/dev/null; exec 3>&-

# ---- hostile admin clients: half-open connections, a 10 MB request, a reload flood ----
runaway_eddy 1000
# 300 connections that never send a whole request (the suite runs with ulimit -n 1024).
python3 - "$port" > "$d/half" 2>&1 <<'PY' &
import socket, sys, time
socks = []
for i in range(300):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    socks.append(s)
print("open", len(socks), flush=True)
time.sleep(4)
PY
HALF=$!
wait_eval 'grep -q open "$d/half"'
h=$(curl -s -m 0.1 -w ' %{http_code}' "http://127.0.0.1:$port/healthz")
expect_eq "hostile: /healthz answers beside 300 half-open connections" "ok 200" "$(echo $h)"
head -c 10000000 /dev/zero | tr '\0' a > "$d/big"
c=$(curl -s -m 5 -o /dev/null -w '%{http_code}' -X POST --data-binary @"$d/big" "http://127.0.0.1:$port/-/reload")
check "hostile: a 10 MB request is refused ($c)" test "$c" = 413 -o "$c" = 400 -o "$c" = 000
s=$(date +%s%N)
for i in $(seq 200); do curl -s -o /dev/null -m 2 -X POST "http://127.0.0.1:$port/-/reload" & done
ev_lines a 1 1000 >&3
wait_eval 'test "$(wc -l < "$d/out.ndjson")" -ge 1000'
h=$(curl -s -m 0.1 -w ' %{http_code}' "http://127.0.0.1:$port/healthz")
expect_eq "hostile: /healthz answers during a flood of 200 POST /-/reload" "ok 200" "$(echo $h)"
# The curls still running, if any: a bare `wait` would wait for eddy too.
flood=$(jobs -p | grep -v "^$PID$" | grep -v "^$HALF$")
[ -z "$flood" ] || wait $flood 2>/dev/null
expect_eq "hostile: the pipeline went on (1000 events out)" 1000 "$(wc -l < "$d/out.ndjson")"
kill $HALF 2>/dev/null; wait $HALF 2>/dev/null
exec 3>&-
wait $PID; rc=$?
expect_eq "hostile: eddy ends normally" 0 "$rc"

# ---- descriptors run out: no spinning, no log flood, back once the clients go ----
# prlimit's soft:hard. With the hard limit at 64, 300 connections exhaust eddy's
# descriptors; with it at 4096, eddy raises its soft limit and holds them all.
hold_conns() {    # PORT N SECONDS: open N connections that send half a request, hold them
  python3 - "$@" <<'PY'
import socket, sys, time
socks = []
for i in range(int(sys.argv[2])):
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.5)
        s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    except OSError:
        pass
print("open", len(socks), flush=True)
time.sleep(float(sys.argv[3]))
PY
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for lim in 64:64 64:4096; do
  d=$(newdir)
  write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0"
  write_echo_processor "$d" echo t
  mkfifo "$d/fifo"; exec 3<>"$d/fifo"
  prlimit --nofile=$lim "$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err" 3>&- & PID=$!
  wait_eval 'test -n "$(admin_port "$d/err")"'
  port=$(admin_port "$d/err")
  hold_conns "$port" 300 4 > "$d/held" & HOLD=$!
  wait_eval 'grep -q open "$d/held"'
  t0=$(cpu_ticks $PID); sleep 2; t1=$(cpu_ticks $PID)
  h=$(curl -s -m 1 -w ' %{http_code}' "http://127.0.0.1:$port/healthz")
  if [ $lim = 64:4096 ]; then
    expect_eq "fds: with room to raise the limit, /healthz answers beside 300 connections" "ok 200" "$(echo $h)"
  fi
  check "fds $lim: eddy does not spin while clients hold its descriptors ($((t1 - t0)) ticks in 2 s)" \
    test $((t1 - t0)) -lt 50
  wait $HOLD
  wait_eval 'curl -s -m 1 "http://127.0.0.1:$port/healthz" | grep -q ok'
  expect_eq "fds $lim: /healthz answers once the clients have gone" "ok 200" \
    "$(echo $(curl -s -m 1 -w ' %{http_code}' "http://127.0.0.1:$port/healthz"))"
  check "fds $lim: at most one accept warning per 10 s ($(grep -c 'accept failed' "$d/err"))" \
    test "$(grep -c 'accept failed' "$d/err")" -le 1
  check "fds $lim: libevent's own accept warnings are gone" bash -c "! grep -q 'Error from accept' '$d/err'"
  event t a 1 >&3
  exec 3>&-
  wait $PID; rc=$?
  expect_eq "fds $lim: the pipeline went on and ended normally" "1 0" "$(wc -l < "$d/out.ndjson") $rc"
done
check "fds: with the hard limit at 64 the warning was written" grep -q 'accept failed: Too many open files' "$T"/case.*/err

# ---- the admin endpoint while a rebalance drains a slow sink ----
. tests/kafka_lib.sh
d=$(newdir)
start_mock "$d" 1 4 events,out,dlq
esport=$(free_port)
# An Elasticsearch stand-in that takes 20 s over every _bulk request, one at a time: of
# 80 requests of 50 documents, a few are written when the rebalance comes, so the
# revoked partitions still wait and the drain takes longer than the questions below.
# (The mock cluster's rebalance comes 63 s or 126 s after the second member starts; at
# 5 s a request a clean-clone CI run found the revoked partitions' events all written
# by then.) Each partition gets 1,000 events: produced without a key, the sticky
# partitioner put them all on one or two partitions, and a revoked partition that got
# none had nothing to wait for.
python3 tests/es_slow.py "$esport" 20 7>&- &
SLOW=$!
mkdir -p "$d/processors"
cat > "$d/processors/es.lua" <<'LUA'
return { routes = { { domain = "d", type = "*" } },
  process = function(ev, ctx) ctx.emit("es", { id = ev.eventId }) end }
LUA
kafka_out_conf "$d" slowgroup out sink.es.type=elasticsearch "sink.es.url=http://127.0.0.1:$esport" \
  sink.es.index=slow sink.es.id=id sink.es.batch.ms=10 sink.es.batch.docs=50 \
  "kafka.session.timeout.ms=6000" "kafka.heartbeat.interval.ms=500" "kafka.max.poll.interval.ms=10000" \
  shutdown.timeout.ms=120000    # how long a revocation waits: far past the questions
for p in 0 1 2 3; do
  ev_lines k $((p * 1000 + 1)) $((p * 1000 + 1000)) | kcat -b "$BOOT" -P -t events -p $p
done
start_eddy "$d" first
wait_for admin_up "$d/first.err"
port=$(admin_port "$d/first.err")
wait_for grep -q "partitions assigned" "$d/first.err"
sleep 1
start_eddy "$d" second     # joins the group: the first one's partitions are revoked
# The mock's rebalance comes 63 s or 126 s later. Without it the checks below would
# ask nothing of a revocation.
revoked() { grep -q "partitions revoked; finishing their events" "$d/first.err"; }
for _ in $(seq 3000); do revoked && break; sleep 0.1; done
check "rebalance: the second member's arrival revoked partitions of the first" revoked
: > "$d/health"; : > "$d/metr"
for i in $(seq 10); do
  curl -s -o /dev/null -m 0.1 -w '%{http_code}\n' "http://127.0.0.1:$port/healthz" >> "$d/health"
  # The loop itself answers /metrics: an answer from the endpoint's cache because the
  # loop was busy would carry X-Eddy-Stale-Ms.
  curl -s -D "$d/metr.h" -o /dev/null -m 0.1 -w '%{http_code}\n' "http://127.0.0.1:$port/metrics" >> "$d/metr"
  grep -qi '^X-Eddy-Stale-Ms' "$d/metr.h" && echo stale >> "$d/metr"
  sleep 0.1
done
check "rebalance: the revocation was still waiting for the slow sink while asked" \
  bash -c "! grep -qE 'revoked partitions finished|still in flight after' '$d/first.err'"
if [ "$(grep -c 'partitions assigned' "$d/first.err")" -eq 1 ]; then
  pass "rebalance: the drain was still running while asked (no partitions assigned after it yet)"
else
  fail "rebalance: the drain was still running while asked" "$(grep -E 'partition|sink|revok' "$d/first.err" | head -20)"
fi
expect_eq "rebalance: /healthz answered 200 within 100 ms, 10 of 10" 10 "$(grep -c '^200$' "$d/health")"
expect_eq "rebalance: /metrics answered 200 within 100 ms, 10 of 10" 10 "$(grep -c '^200$' "$d/metr")"
expect_eq "rebalance: /metrics answered by the loop, not from its cache, 10 of 10" 0 \
  "$(grep -c '^stale$' "$d/metr")"
stop_eddy second KILL
stop_eddy first KILL
kill $SLOW; wait $SLOW 2>/dev/null
stop_mock

# ---- runaway code outside process(), compiled (jit = true), under the supervisor ----
# on_window and on_timer: the worker is killed once; the firing is remembered and its
# successor dead-letters it as timeout instead of running it (and being killed) again.
fire_input() { for ts in 100 200 1100 1200 2100 3100 4100; do
  printf '{"domain":"t","type":"a","timestamp":%s,"eventId":"e%s","payload":{}}\n' $ts $ts; done; }
for kind in window timer; do
  d=$(newdir)
  write_conf "$d" "processor.timeout.ms=300" "runtime.supervisor=true" "source.file.path=$d/in.ndjson"
  cat > "$d/processors/w.lua" <<'LUA'
local function spin() local n = 0 while true do n = n + 1 end end
return { jit = true, routes = { { domain = "t", type = "*" } },
  windows = { w = { kind = "tumbling", size_ms = 1000, agg = "count" } },
  on_window = function(win, ctx)
    if KIND == "window" and win.start == 1000 then spin() end
    ctx.emit("out", { start = win.start, n = win.result })
  end,
  on_timer = function(key, tag, ctx)
    if tag == "1000" then spin() end
    ctx.emit("out", { timer = tag })
  end,
  process = function(ev, ctx)
    if KIND == "timer" then
      local at = ev.timestamp - ev.timestamp % 1000
      ctx.timer("k", at + 500, tostring(at))
    end
  end }
LUA
  sed -i "1i local KIND = \"$kind\"" "$d/processors/w.lua"
  fire_input > "$d/in.ndjson"
  RC=0; timeout 60 "$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err" || RC=$?
  expect_eq "outside process ($kind): the supervised run ends normally" 0 "$RC"
  expect_eq "outside process ($kind): the worker was killed once" 1 "$(grep -c 'stuck for .* killed' "$d/err")"
  check "outside process ($kind): the supervisor names the $kind call it killed" \
    grep -q "in processor w on $kind:w[.a-z]*:[0-9]*: killed" "$d/err"
  expect_eq "outside process ($kind): that firing is dead-lettered timeout once" "timeout 1000" \
    "$(jq -r '"\(.reason) \(.raw | fromjson | (.start // .timer))"' "$d/dlq.ndjson" 2>&1)"
  expect_eq "outside process ($kind): the later ones fire" "2000 3000 4000" \
    "$(jq -r "select(.${kind/window/start} != null) | .${kind/window/start} | tonumber | select(. >= 2000)" \
       "$d/out.ndjson" | sort -n | tr '\n' ' ' | sed 's/ $//')"
done

# init (and windows(ctx)) run interpreted even for a jit = true processor, so an endless
# loop there is stopped at processor.timeout.ms: `eddy check` says so, and a reload to
# such a version is refused while the old one goes on, under the supervisor too.
d=$(newdir)
write_conf "$d" "processor.timeout.ms=300" "runtime.supervisor=true" "source.file.path=$d/fifo" \
  "admin.listen=127.0.0.1:0" "reload.watch=false"
write_echo_processor "$d" echo t
cp "$d/processors/echo.lua" "$d/good.lua"
printf 'return { jit = true, routes = {{domain="t", type="*"}},\n  init = function(ctx) local n = 0 while true do n = n + 1 end end,\n  process = function(ev, ctx) ctx.emit("out", { id = "new" }) end }\n' > "$d/loop.lua"
cp "$d/loop.lua" "$d/processors/echo.lua"
RC=0; timeout 20 "$EDDY" check -c "$d/eddy.conf" > "$d/check" 2>&1 || RC=$?
expect_eq "init loop: eddy check stops it and exits 2" 2 "$RC"
check "init loop: eddy check says timeout" grep -q 'echo.lua: timeout: ran longer than processor.timeout.ms=300' "$d/check"
cp "$d/good.lua" "$d/processors/echo.lua"
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
port=$(admin_port "$d/err")
event t a i1 >&3
wait_eval 'test -s "$d/out.ndjson"'
cp "$d/loop.lua" "$d/processors/echo.lua"
curl -s -X POST "http://127.0.0.1:$port/-/reload" > /dev/null
wait_eval 'grep -q "timeout: ran longer than processor.timeout.ms=300" "$d/err"'
check "init loop: the reload is refused with the reason" \
  grep -q 'echo.lua: timeout: ran longer than processor.timeout.ms=300' "$d/err"
event t a i2 >&3
wait_eval 'test "$(wc -l < "$d/out.ndjson")" -ge 2'
expect_eq "init loop: the old version goes on" "i1 i2" "$(jq -r .id "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "init loop: no worker was killed" 0 "$(grep -c 'stuck for' "$d/err")"
exec 3>&-
RC=0; timeout 20 bash -c "while kill -0 $PID 2>/dev/null; do sleep 0.1; done" || RC=$?
expect_eq "init loop: the supervisor ends with its input" 0 "$RC"
wait $PID
