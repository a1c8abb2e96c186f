# Hot reload: a 100,000-event stream with three reloads of its processor in the middle,
# one per trigger (file change seen by inotify, SIGHUP, POST /-/reload); reloads that
# must be refused; a new file and a removed file; rules reloads.

# seq_processor DIR VERSION: tags its outputs with VERSION, counts events per key in
# keyed state (which must survive every reload).
seq_processor() {
  cat > "$1/processors/seq.lua.tmp" <<LUA
local VERSION = "$2"
return {
  name = "seq",
  routes = { { domain = "seq", type = "*" } },
  init = function(ctx) ctx.log("info", "version " .. VERSION .. " ready") end,
  process = function(ev, ctx)
    local k = ev.payload.key
    local n = (ctx.state.get(k) or 0) + 1
    ctx.state.set(k, n)
    ctx.emit("out", { v = VERSION, key = k, seq = ev.payload.seq, n = n })
  end,
}
LUA
  mv "$1/processors/seq.lua.tmp" "$1/processors/seq.lua"   # one atomic change
}

processors_json() { curl -sf "http://127.0.0.1:$(admin_port "$1/err")/-/processors"; }
reloads_of() { processors_json "$1" | jq -r --arg p "$2" '.processors[] | select(.name==$p) | .reloads'; }
out_lines() { [ -f "$1/out.ndjson" ] && wc -l < "$1/out.ndjson" || echo 0; }

# ---- 100,000 events, three reloads while they flow ----
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "reload.delay.ms=100"
seq_processor "$d" v1
mkfifo "$d/fifo"
# 100 chunks of 1,000 events, 8 keys, written over about 10 s.
python3 - "$d/fifo" <<'PY' &
import sys, time
with open(sys.argv[1], "w") as f:
    for chunk in range(100):
        lines = []
        for i in range(chunk * 1000, chunk * 1000 + 1000):
            lines.append('{"domain":"seq","type":"tick","timestamp":1700000000000,'
                         '"eventId":"e%d","payload":{"key":"k%d","seq":%d}}\n' % (i, i % 8, i))
        f.write("".join(lines))
        f.flush()
        time.sleep(0.1)
PY
gen=$!
"$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err" 8>&- &
pid=$!
wait_eval 'test -n "$(admin_port "$d/err")"'
wait_eval 'test "$(out_lines "$d")" -ge 20000'
seq_processor "$d" v2                                   # inotify
wait_eval 'test "$(reloads_of "$d" seq)" = 1'
wait_eval 'test "$(out_lines "$d")" -ge 45000'
seq_processor "$d" v3
kill -HUP "$pid"                                        # SIGHUP (the watch may see it first)
wait_eval 'test "$(reloads_of "$d" seq)" -ge 2'
wait_eval 'test "$(out_lines "$d")" -ge 70000'
seq_processor "$d" v4
post=$(curl -sf -X POST "http://127.0.0.1:$(admin_port "$d/err")/-/reload")  # POST /-/reload
wait_eval 'test "$(reloads_of "$d" seq)" -ge 3'
wait "$gen"
wait "$pid"
cp "$d/err" "$T/reload-stream.err"
expect_eq "reload stream: exits 0" 0 $?
expect_eq "reload stream: 100,000 outputs" 100000 "$(out_lines "$d")"
expect_eq "reload stream: every sequence number exactly once" 100000 \
  "$(jq -r .seq "$d/out.ndjson" | sort -un | wc -l)"
expect_eq "reload stream: no gap (0..99999)" "0 99999" \
  "$(jq -r .seq "$d/out.ndjson" | sort -n | sed -n '1p;$p' | paste -sd' ')"
expect_eq "reload stream: outputs in input order" "" \
  "$(jq -r .seq "$d/out.ndjson" | awk 'NR > 1 && $1 <= prev { print "out of order at " NR; exit } { prev = $1 }')"
expect_eq "reload stream: versions only move forward, and all four served" "v1 v2 v3 v4" \
  "$(jq -r .v "$d/out.ndjson" | uniq | paste -sd' ')"
expect_eq "reload stream: keyed state survived every swap (n counts each key's events)" "" \
  "$(jq -r '"\(.key) \(.n)"' "$d/out.ndjson" | awk '{ c[$1]++; if (c[$1] != $2) { print "key " $1 " n " $2 " after " c[$1]; exit } }')"
expect_eq "reload stream: nothing dead-lettered" 0 "$(wc -l < "$d/dlq.ndjson" 2>/dev/null || echo 0)"
check "reload stream: one log line per reload names the processor and hashes" \
  test "$(grep -c 'processor seq reloaded from .*seq.lua (hash [0-9a-f]\{16\}, was [0-9a-f]\{16\})' "$d/err")" -ge 3
check "reload stream: POST /-/reload answered with what it did" jq -e 'has("reloaded") and has("refused")' <<<"$post"

# ---- refused reloads: the old version keeps serving, the error is visible ----
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "reload.watch=false"
seq_processor "$d" good
write_echo_processor "$d" other other
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
port=$(admin_port "$d/err")
n=0
# refused_case NAME FILE-CONTENT EXPECTED-ERROR-PATTERN
refused_case() {
  printf '%s\n' "$2" > "$d/processors/seq.lua"
  local before; before=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^eddy_processor_reload_failures_total\{processor="seq"\}/ { print $2 }')
  local body; body=$(curl -sf -X POST "http://127.0.0.1:$port/-/reload")
  n=$((n + 1))
  event seq tick "r$n" "{\"key\":\"a\",\"seq\":$n}" >&3
  wait_eval 'test "$(out_lines "$d")" -ge "$n"'
  expect_eq "refused reload ($1): the old version still serves" good "$(tail -1 "$d/out.ndjson" | jq -r .v)"
  check "refused reload ($1): POST /-/reload reports it" jq -e '.refused | length == 1' <<<"$body"
  local err; err=$(processors_json "$d" | jq -r '.processors[] | select(.name=="seq") | .last_reload_error')
  check "refused reload ($1): GET /-/processors shows the error" grep -q -- "$3" <<<"$err"
  local after; after=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^eddy_processor_reload_failures_total\{processor="seq"\}/ { print $2 }')
  expect_eq "refused reload ($1): reload_failures_total incremented" $((before + 1)) "$after"
}
refused_case "syntax error" 'return { process = function(ev, ctx) ctx.emit("out", {} end }' "seq.lua:1:"
refused_case "init raises" 'return { name = "seq", routes = {{domain="seq",type="*"}}, init = function() error("no way") end, process = function() end }' "no way"
refused_case "missing process" 'return { name = "seq", routes = {{domain="seq",type="*"}} }' "process must be a function"
refused_case "route conflict" 'return { name = "seq", routes = {{domain="seq",type="*"},{domain="other",type="*"}}, process = function() end }' "route conflict"
refused_case "renamed processor" 'return { name = "seq2", routes = {{domain="seq",type="*"}}, process = function() end }' "name changed"
# Compiles, init passes, fails on every event: the recent events it is run on first
# (reload.verify.events) refuse it, and no event is dead-lettered because of it.
refused_case "raises on every event" 'return { name = "seq", routes = {{domain="seq",type="*"}}, process = function(ev) error("broken for " .. ev.payload.key) end }' \
  "the new version fails on 5 of the last 5 events the running version processed without error (first: processor_error: .*broken for a); the running version stays"
expect_eq "refused reload (raises on every event): no event was dead-lettered" 0 \
  "$(cat "$d/dlq.ndjson" 2>/dev/null | wc -l)"
# The verification's state writes never show: the count below goes on from 6.
check "refused reload: the log says why and that the running version stays" \
  grep -q "reload of .*seq.lua refused: .*the running version stays" "$d/err"
# SIGHUP (the file watch is off here) takes a fixed version in.
seq_processor "$d" fixed
kill -HUP "$PID"
wait_eval 'test "$(reloads_of "$d" seq)" = 1'
event seq tick f1 '{"key":"a","seq":100}' >&3
wait_eval 'grep -q '\''"fixed"'\'' "$d/out.ndjson"'
expect_eq "SIGHUP: the fixed version serves, state carried over (7th event of key a)" "fixed 7" \
  "$(tail -1 "$d/out.ndjson" | jq -r '"\(.v) \(.n)"')"
check "SIGHUP: it went live after running the 6 recent events (state writes undone)" \
  jq -e '.processors[] | select(.name=="seq") | .verified_events == 6' <<<"$(processors_json "$d")"
check "SIGHUP: the log says it was verified" \
  grep -q "processor seq: the new version ran the last 6 events without error" "$d/err"
check "SIGHUP: the last reload error is cleared from view after a good reload" \
  jq -e '.processors[] | select(.name=="seq") | .last_reload_error == null' <<<"$(processors_json "$d")"

# A new file adds routes; a removed file hands them back (no_route).
cat > "$d/processors/extra.lua" <<'LUA'
return { routes = { { domain = "extra", type = "*" } },
         process = function(ev, ctx) ctx.emit("out", { v = "extra", id = ev.eventId }) end }
LUA
body=$(curl -sf -X POST "http://127.0.0.1:$port/-/reload")
expect_eq "new file: reported as added" extra "$(jq -r '.added[0]' <<<"$body")"
event extra x x1 >&3
wait_eval 'grep -q '\''"extra"'\'' "$d/out.ndjson"'
check "new file: its route receives events" grep -q '"id":"x1"' "$d/out.ndjson"
rm "$d/processors/extra.lua"
body=$(curl -sf -X POST "http://127.0.0.1:$port/-/reload")
expect_eq "removed file: reported as removed" extra "$(jq -r '.removed[0]' <<<"$body")"
event extra x x2 >&3
wait_eval 'test -s "$d/dlq.ndjson"'
expect_eq "removed file: its events are dead-lettered no_route" no_route \
  "$(jq -r 'select((.raw|fromjson).eventId=="x2") | .reason' "$d/dlq.ndjson")"
check "removed file: GET /-/processors marks it removed" \
  jq -e '.processors[] | select(.name=="extra") | .removed' <<<"$(processors_json "$d")"
exec 3>&-
wait "$PID"
expect_eq "refused reloads: eddy exits 0 at the end of input" 0 $?

# ---- rules: a good change reloads the processors that read them; a bad one is refused ----
d=$(newdir)
mkdir -p "$d/rules"
echo '{"limit": 10}' > "$d/rules/th.json"
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "rules.dir=$d/rules" \
  "reload.delay.ms=50"
cat > "$d/processors/th.lua" <<'LUA'
local limit
return {
  routes = { { domain = "m", type = "*" } },
  init = function(ctx) limit = ctx.rules("th").limit end,
  process = function(ev, ctx) ctx.emit("out", { id = ev.eventId, over = ev.payload.x > limit, limit = limit }) end,
}
LUA
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
event m x a1 '{"x":20}' >&3
wait_eval 'test "$(out_lines "$d")" -ge 1'
echo '{"limit": 50}' > "$d/rules/th.json.tmp" && mv "$d/rules/th.json.tmp" "$d/rules/th.json"
wait_eval 'grep -q "rules th reloaded" "$d/err"'
wait_eval 'grep -q "processor th reloaded" "$d/err"'
event m x a2 '{"x":20}' >&3
wait_eval 'test "$(out_lines "$d")" -ge 2'
expect_eq "rules: a changed rules file reaches the processor (limit 10, then 50)" "10 50" \
  "$(jq -r .limit "$d/out.ndjson" | paste -sd' ')"
echo '{"limit": ' > "$d/rules/th.json.tmp" && mv "$d/rules/th.json.tmp" "$d/rules/th.json"
wait_eval 'grep -q "rules th refused" "$d/err"'
check "rules: a bad file is refused naming file and line" grep -q "rules th refused: .*th.json:[0-9]*: " "$d/err"
event m x a3 '{"x":20}' >&3
wait_eval 'test "$(out_lines "$d")" -ge 3'
expect_eq "rules: the old rules stay after a refused change" 50 "$(tail -1 "$d/out.ndjson" | jq -r .limit)"
p=$(admin_port "$d/err")
expect_eq "rules: failures counted in eddy_rules_reload_failures_total" 1 \
  "$(curl -sf "http://127.0.0.1:$p/metrics" | awk '/^eddy_rules_reload_failures_total\{rules="th"\}/ { print $2 }')"
exec 3>&-
wait "$PID"

# ---- reloads give back the old version's memory ----
# 300 reloads of one processor, each a new Lua state and the old one closed: eddy's
# address space may not grow with them. A state made by luaL_newstate and then given
# eddy's allocator left LuaJIT's 128 KB arena behind at every close (38 MB here).
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "reload.watch=false"
seq_processor "$d" r0
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
port=$(admin_port "$d/err")
vm_kb() { awk '/^VmSize/ { print $2 }' "/proc/$PID/status"; }
seq_processor "$d" r1
curl -sf -X POST "http://127.0.0.1:$port/-/reload" > /dev/null
before=$(vm_kb)
for i in $(seq 2 301); do
  seq_processor "$d" "r$i"
  curl -sf -X POST "http://127.0.0.1:$port/-/reload" > /dev/null
done
after=$(vm_kb)
expect_eq "reload memory: 300 more reloads done" 301 "$(reloads_of "$d" seq)"
check "reload memory: the address space grew $((after - before)) kB over 300 reloads (< 8 MB)" \
  test $((after - before)) -lt 8192
exec 3>&-
wait "$PID"
