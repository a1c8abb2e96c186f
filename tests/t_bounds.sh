# Bounds outside the Lua heap (issue: no single record can stop eddy): a line longer
# than event.max.bytes is read only that far and dead-lettered too_large with a cut
# `raw`; emitted records and keyed state are C memory with their own limits
# (processor.max.output.mb, a sink's largest record, state.max.mb). Every input record
# ends as an output or a dead letter, and peak RSS stays far below the inputs' size.

peak_kb() { awk '/Maximum resident set size/ { print $NF }' "$1"; }

# --- a 300 MB line without a newline, then a 200 MB one, on stdin, between good ones ---
d=$(newdir)
write_conf "$d" 'source.file.path=-'
write_echo_processor "$d" echo t
{ event t a g1; head -c 300000000 /dev/zero | tr '\0' x; echo; event t a g2
  printf '{"domain":"t","type":"a","timestamp":1,"eventId":"big","payload":{"s":"'
  head -c 200000000 /dev/zero | tr '\0' y; printf '"}}\n'; event t a g3; } |
  /usr/bin/time -v "$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err"
RC=$?
expect_eq "long lines: the run succeeds" 0 "$RC"
expect_eq "long lines: the good records around them come out" "g1 g2 g3" "$(jq -r .id "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "long lines: both dead-lettered too_large, with their line numbers" "too_large 2 too_large 4" \
  "$(jq -r '"\(.reason) \(.origin.line)"' "$d/dlq.ndjson" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "long lines: raw is cut at dlq.max.raw.bytes and marked" "900000 1048577 900000 1048577" \
  "$(jq -r '"\(.raw | length) \(.raw_truncated)"' "$d/dlq.ndjson" | tr '\n' ' ' | sed 's/ $//')"
kb=$(peak_kb "$d/err")
check "long lines: peak RSS ${kb} KB stays under 100 MB for 500 MB of input" test "${kb:-999999999}" -lt 100000

# --- the same under the supervisor, which relays stdin to its worker: neither holds
# the long lines ---
d=$(newdir)
write_conf "$d" 'source.file.path=-' 'runtime.supervisor=true'
write_echo_processor "$d" echo t
{ event t a g1; head -c 300000000 /dev/zero | tr '\0' x; echo; event t a g2; event t a g3; } |
  /usr/bin/time -v "$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err"
RC=$?
expect_eq "long line, supervised: the run succeeds" 0 "$RC"
expect_eq "long line, supervised: the good records come out" "g1 g2 g3" \
  "$(jq -r .id "$d/out.ndjson" | sort | tr '\n' ' ' | sed 's/ $//')"
expect_eq "long line, supervised: it is dead-lettered too_large as line 2" "too_large 2" \
  "$(jq -r '"\(.reason) \(.origin.line)"' "$d/dlq.ndjson")"
kb=$(peak_kb "$d/err")
check "long line, supervised: peak RSS ${kb} KB stays under 200 MB for a 300 MB line" \
  test "${kb:-999999999}" -lt 200000

# --- emitted records and keyed state: C memory, bounded ---
d=$(newdir)
write_conf "$d" 'processor.memory.mb=128' 'processor.max.output.mb=16' 'state.max.mb=64' \
  'sink.small.type=file' "sink.small.path=$d/small.ndjson"
cat > "$d/processors/hog.lua" <<'LUA'
local big = string.rep("z", 20 * 1024 * 1024)
return {
  routes = { { domain = "h", type = "*" } },
  process = function(ev, ctx)
    if ev.type == "emits" then           -- 150 emits of 20 MB: 3 GB if held
      for i = 1, 150 do ctx.emit("out", { i = i, s = big }) end
    elseif ev.type == "state" then       -- 20 MB more state per event
      ctx.state.set(ev.eventId, big .. ev.eventId)
    elseif ev.type == "caught" then      -- the limit holds even when the error is caught
      pcall(function() for i = 1, 150 do ctx.emit("out", { s = big }) end end)
    end
    ctx.emit("out", { id = ev.eventId })
  end,
}
LUA
{ event h emits e1; for i in $(seq 10); do event h state s$i; done; event h caught c1; event h ok o1; } > "$d/in.ndjson"
/usr/bin/time -v "$EDDY" run -c "$d/eddy.conf" >"$d/stdout" 2>"$d/err" < /dev/null
RC=$?
expect_eq "C memory: the run succeeds" 0 "$RC"
expect_eq "C memory: 150 emits of 20 MB are dead-lettered output_too_large" "output_too_large" \
  "$(jq -r 'select(.eventId == "e1") | .reason' "$d/dlq.ndjson")"
check "C memory: the detail names processor.max.output.mb" \
  grep -q 'records of this call passed processor.max.output.mb=16' "$d/dlq.ndjson"
expect_eq "C memory: a caught limit still dead-letters the event" "output_too_large" \
  "$(jq -r 'select(.eventId == "c1") | .reason' "$d/dlq.ndjson")"
expect_eq "C memory: state past state.max.mb is dead-lettered memory, the first ones kept" \
  "s1 s2 s3 | s4:memory s5:memory s6:memory s7:memory s8:memory s9:memory s10:memory" \
  "$(jq -r 'select(.id | test("^s")) | .id' "$d/out.ndjson" | tr '\n' ' ')| $(jq -r 'select(.eventId | test("^s")) | "\(.eventId):\(.reason)"' "$d/dlq.ndjson" | tr '\n' ' ' | sed 's/ $//')"
check "C memory: the state's detail names state.max.mb" grep -q 'ctx.state would hold more than state.max.mb=64' "$d/dlq.ndjson"
expect_eq "C memory: every input is an output or a dead letter" 13 \
  "$(( $(jq -r .id "$d/out.ndjson" | sort -u | wc -l) + $(jq -r .eventId "$d/dlq.ndjson" | sort -u | wc -l) ))"
kb=$(peak_kb "$d/err")
check "C memory: peak RSS ${kb} KB stays under 1 GB" test "${kb:-999999999}" -lt 1000000
