# Sandbox limits: processor.timeout.ms (the count hook set on a late call, interpreted
# code), processor.memory.mb (the state's allocator), processor.max.emits,
# processor.max.consecutive.errors and quarantine until reload; processors cannot see
# each other's globals.

dlq_reason() { jq -r --arg id "$2" 'select((.raw|fromjson).eventId==$id) | .reason' "$1/dlq.ndjson" 2>/dev/null; }
# run_shimmed SHIM DIR: eddy run on DIR's config under the LD_PRELOAD shim SHIM (made by
# make units, in $UNITS); its exit status. The shim loads before the sanitizer's runtime
# in make asan-test's build.
run_shimmed() {
  local shim=${UNITS:-bin}/$1
  [ "${shim#/}" != "$shim" ] || shim=$ROOT/$shim
  LD_PRELOAD=$shim ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    timeout 60 "$EDDY" run -c "$2/eddy.conf" >"$2/stdout" 2>"$2/err"
}

d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "reload.watch=false" \
  "processor.timeout.ms=300" "processor.memory.mb=32" "processor.max.emits=10" \
  "processor.max.consecutive.errors=3"
cat > "$d/processors/limits.lua" <<'LUA'
local what = {
  -- The JIT is off (processor.jit=false), so the count hook stops every loop;
  -- t_runaway.sh has the bare `while true do end`. (A jit = true loop needs the supervisor.)
  spin = function(ctx) while true do local f = function() end end end,
  -- caught by pcall: the event is still dead-lettered as timeout
  spin_pcall = function(ctx) pcall(function() while true do local f = function() end end end) end,
  -- the hook set on the late call stays until the call ends: caught three times, the
  -- loop after is stopped too
  spin_again = function(ctx)
    for i = 1, 3 do pcall(function() while true do local f = function() end end end) end
    while true do local f = function() end end
  end,
  -- distinct strings: LuaJIT interns strings, one rep() repeated would be one string
  bomb = function() local t = {} while true do t[#t + 1] = ("x"):rep(1e6) .. #t end end,
  emits = function(ctx) for i = 1, 11 do ctx.emit("out", { i = i }) end end,
  fail = function() error("bad record") end,
}
return {
  routes = { { domain = "lim", type = "*" } },
  process = function(ev, ctx)
    local f = what[ev.type]
    if f then f(ctx) end
    ctx.emit("out", { id = ev.eventId })
  end,
}
LUA
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
port=$(admin_port "$d/err")
for t in spin spin_pcall spin_again bomb emits; do
  event lim "$t" "$t" >&3
  event lim ok "after-$t" >&3
done
wait_eval 'grep -q "after-emits" "$d/out.ndjson"'
expect_eq "limits: a runaway interpreted loop is dead-lettered timeout" timeout "$(dlq_reason "$d" spin)"
expect_eq "limits: a timeout caught by pcall still counts" timeout "$(dlq_reason "$d" spin_pcall)"
expect_eq "limits: a loop after three caught timeouts is stopped too" timeout "$(dlq_reason "$d" spin_again)"
expect_eq "limits: a memory bomb is dead-lettered memory" memory "$(dlq_reason "$d" bomb)"
expect_eq "limits: the 11th emit is too_many_emits" too_many_emits "$(dlq_reason "$d" emits)"
expect_eq "limits: the event after each one is processed" "after-spin after-spin_pcall after-spin_again after-bomb after-emits" \
  "$(jq -r 'select(.id) | .id' "$d/out.ndjson" | paste -sd' ')"
check "limits: no partial output of a failed event" test -z "$(jq -r 'select(.i) | .i' "$d/out.ndjson")"
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
# 512 MB leaves room for AddressSanitizer's quarantine; unbounded, the bomb takes GBs.
check "limits: RSS stays bounded after the memory bomb (peak ${hwm} kB < 512 MB)" test "$hwm" -lt 524288
m=$(curl -sf "http://127.0.0.1:$port/metrics")
for l in timeout memory too_many_emits; do
  want=1; [ $l = timeout ] && want=3
  expect_eq "limits: eddy_processor_limit_hits_total{limit=$l}" $want \
    "$(awk -v k="eddy_processor_limit_hits_total{processor=\"limits\",limit=\"$l\"}" '$1 == k { print $2 }' <<<"$m")"
done

# Three errors in a row quarantine the processor; a reload lifts it.
for i in 1 2 3; do event lim fail "f$i" >&3; done
event lim ok q1 >&3
wait_eval 'test "$(dlq_reason "$d" q1)" = quarantined'
expect_eq "quarantine: after processor.max.consecutive.errors the events go to quarantined" \
  quarantined "$(dlq_reason "$d" q1)"
check "quarantine: logged once with the last error" grep -q "processor limits quarantined after 3 errors in a row (last: processor_error: .*bad record)" "$d/err"
check "quarantine: visible in GET /-/processors" \
  jq -e '.processors[0].quarantined' <<<"$(curl -sf "http://127.0.0.1:$port/-/processors")"
expect_eq "quarantine: eddy_processor_quarantined is 1" 1 \
  "$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "eddy_processor_quarantined{processor=\"limits\"}" { print $2 }')"
curl -sf -X POST "http://127.0.0.1:$port/-/reload" > "$d/reload.json"
expect_eq "quarantine: a reload (file unchanged) reloads a quarantined processor" limits \
  "$(jq -r '.reloaded[0]' "$d/reload.json")"
event lim ok q2 >&3
wait_eval 'grep -q "\"q2\"" "$d/out.ndjson"'
check "quarantine: after the reload events are processed again" grep -q '"id":"q2"' "$d/out.ndjson"
exec 3>&-
wait "$PID"
expect_eq "limits: eddy exits 1 after all that: a processor was quarantined" 1 $?
check "limits: ... and says so at the end" grep -q "processor limits was quarantined during the run" "$d/err"

# Two processors, two Lua states: one cannot see the other's globals.
d=$(newdir)
write_conf "$d"
cat > "$d/processors/a.lua" <<'LUA'
return { routes = { { domain = "a", type = "*" } },
         init = function() secret = "a's" end,
         process = function(ev, ctx) ctx.emit("out", { by = "a", seen = tostring(secret) }) end }
LUA
cat > "$d/processors/b.lua" <<'LUA'
return { routes = { { domain = "b", type = "*" } },
         process = function(ev, ctx)
           ctx.emit("out", { by = "b", seen = tostring(rawget(_G, "secret")) .. "/" .. tostring(secret) })
         end }
LUA
{ event a x 1; event b x 2; } > "$d/in.ndjson"
run_eddy "$d"
expect_eq "sandbox: a processor's globals are its own" "a's nil/nil" \
  "$(jq -r .seen "$d/out.ndjson" | paste -sd' ')"

# No watchdog thread (pthread_create refused, as at a container's pids limit): every
# Lua state keeps the count hook, and a runaway call is still stopped, in time.
d=$(newdir)
write_conf "$d" "processor.timeout.ms=300"
cat > "$d/processors/spin.lua" <<'LUA'
return { routes = { { domain = "lim", type = "*" } },
         process = function(ev, ctx)
           if ev.type == "spin" then while true do local f = function() end end end
           ctx.emit("out", { id = ev.eventId })
         end }
LUA
{ event lim spin s1; event lim ok o1; } > "$d/in.ndjson"
run_shimmed no-threads.so "$d"
expect_eq "limits, no watchdog thread: eddy exits 0" 0 $?
check "limits, no watchdog thread: it says the hook runs on every call" \
  grep -q "no watchdog thread could start; processor.timeout.ms is checked by a count hook on every call" "$d/err"
expect_eq "limits, no watchdog thread: the runaway call is dead-lettered timeout" timeout \
  "$(dlq_reason "$d" s1)"
expect_eq "limits, no watchdog thread: the event after it is processed" o1 "$(jq -r .id "$d/out.ndjson")"

# No address range for a Lua state's pool of small blocks (its reservation refused, as
# under a tight ulimit -v): the state allocates from libc alone, says so, and its
# memory limit still holds.
d=$(newdir)
write_conf "$d" "processor.memory.mb=32"
cat > "$d/processors/alloc.lua" <<'LUA'
return { routes = { { domain = "lim", type = "*" } },
         process = function(ev, ctx)
           if ev.type == "bomb" then
             local t = {} while true do t[#t + 1] = ("x"):rep(1e6) .. #t end
           end
           local t = {}
           for i = 1, 2000 do t[i] = { n = i, s = ev.eventId .. i } end
           ctx.emit("out", { id = ev.eventId, n = #t, last = t[#t].s })
         end }
LUA
{ event lim a p1; event lim bomb b1; event lim a p2; } > "$d/in.ndjson"
# The pool's range is half of processor.memory.mb: 16 MB.
NO_MMAP_MIN_MB=16 run_shimmed no-big-mmap.so "$d"
expect_eq "limits, no pool range: eddy exits 0" 0 $?
check "limits, no pool range: it says the state has no range for its pool" \
  grep -q "processor .*alloc.lua: no address range for its allocation pool" "$d/err"
expect_eq "limits, no pool range: the events are processed" "p1 2000 p12000 p2 2000 p22000" \
  "$(jq -r '"\(.id) \(.n) \(.last)"' "$d/out.ndjson" | paste -sd' ')"
expect_eq "limits, no pool range: a memory bomb is dead-lettered memory" memory \
  "$(dlq_reason "$d" b1)"
