# CLI: commands, exit codes, `eddy check` on processors.

check "eddy version prints the version" bash -c "'$EDDY' version | grep -qx 'eddy $(cat VERSION)'"
check "eddy --help prints usage, exit 0" bash -c "'$EDDY' --help | grep -q '^usage: eddy'"
rc=0; "$EDDY" frobnicate >/dev/null 2>&1 || rc=$?
expect_eq "unknown command exits 2" 2 "$rc"
rc=0; "$EDDY" run --bogus >/dev/null 2>&1 || rc=$?
expect_eq "unknown option exits 2" 2 "$rc"
rc=0; "$EDDY" >/dev/null 2>&1 || rc=$?
expect_eq "no command exits 2" 2 "$rc"

check "eddy check accepts the shipped demo config" "$EDDY" check -c conf/demo.conf
check "eddy check accepts the shipped main config" "$EDDY" check -c conf/eddy.conf

d=$(newdir); write_conf "$d"
printf 'return {\n  name = "broken",\n  process = function(ev, ctx)\n    local x = = 1\n  end,\n}\n' \
  > "$d/processors/broken.lua"
rc=0; got=$("$EDDY" check -c "$d/eddy.conf" 2>&1) || rc=$?
expect_eq "check: syntax error exits 2" 2 "$rc"
check "check: syntax error names file and line" grep -q "processors/broken.lua:4: unexpected symbol near '='" <<<"$got"

d=$(newdir); write_conf "$d"
printf 'return {\n  init = function(ctx)\n    error("no rules file")\n  end,\n  process = function() end,\n}\n' \
  > "$d/processors/initfail.lua"
rc=0; got=$("$EDDY" check -c "$d/eddy.conf" 2>&1) || rc=$?
expect_eq "check: failing init exits 2" 2 "$rc"
check "check: failing init names file, line and message" grep -q "initfail.lua:3: no rules file" <<<"$got"

# refused NAME DIR MESSAGE: `eddy check` exits 2 with exactly "eddy: MESSAGE".
refused() {
  local rc=0 got
  got=$("$EDDY" check -c "$2/eddy.conf" 2>&1) || rc=$?
  expect_eq "$1" "eddy: $3/2" "$got/$rc"
}

d=$(newdir); write_conf "$d"
echo 'return { name = "noprocess" }' > "$d/processors/noprocess.lua"
refused "check: a processor without process() is refused" "$d" \
  "$d/processors/noprocess.lua: process must be a function"

d=$(newdir); write_conf "$d"
echo 'return { routes = { { domain = "", type = "x" } }, process = function() end }' > "$d/processors/p.lua"
refused "check: an empty route domain is refused" "$d" \
  "$d/processors/p.lua: routes[1].domain must be a non-empty string"

d=$(newdir); write_conf "$d"
echo 'return { routes = { { domain = "order", type = 7 } }, process = function() end }' > "$d/processors/p.lua"
refused "check: a route type that is not a string is refused" "$d" \
  "$d/processors/p.lua: routes[1].type must be a non-empty string"

d=$(newdir); write_conf "$d"
echo 'return 42' > "$d/processors/num.lua"
refused "check: a processor must return a table" "$d" "$d/processors/num.lua: must return a table (got number)"

d=$(newdir); write_conf "$d"
write_echo_processor "$d" same order; cp "$d/processors/same.lua" "$d/processors/same2.lua"
refused "check: two processors with one name are refused" "$d" \
  "$d/processors/same.lua and $d/processors/same2.lua both name their processor 'same'"

d=$(newdir); write_conf "$d"
echo 'return { name = "k", key = { "payload" }, process = function() end }' > "$d/processors/k.lua"
refused "check: a processor key that is not a record path is refused" "$d" \
  "$d/processors/k.lua: key must be a record path such as \"payload.merchantId\""

# A mistyped key in a processor table or a window declaration stops the load, naming
# file, line and the key it was probably meant to be, instead of passing silently.
d=$(newdir); write_conf "$d"
printf 'return {\n  name = "p",\n  route = { { domain = "order", type = "*" } },\n  process = function() end,\n}\n' > "$d/processors/p.lua"
refused "check: an unknown key in the processor table is refused, with the nearest known one" "$d" \
  "$d/processors/p.lua:3: unknown key 'route' in the processor table; did you mean 'routes'?"

d=$(newdir); write_conf "$d"
printf 'return {\n  name = "lonely",\n  process = function() end,\n}\n' > "$d/processors/lonely.lua"
refused "check: a processor with no route is refused, naming file and the fix" "$d" \
  "$d/processors/lonely.lua: processor 'lonely' has no route, so no event would reach it: declare routes = { { domain = \"...\", type = \"...\" } } or set route.<domain>.<type>=lonely"
write_conf "$d" "route.order.*=lonely"
check "check: ... a route.<domain>.<type> key naming it is one" "$EDDY" check -c "$d/eddy.conf"

# A quarantined processor: eddy run exits 1 and says which, unless told otherwise.
d=$(newdir); write_conf "$d" "processor.max.consecutive.errors=3"
printf 'return {\n  name = "bad",\n  routes = { { domain = "x", type = "*" } },\n  process = function() error("always") end,\n}\n' \
  > "$d/processors/bad.lua"
for i in 1 2 3 4 5; do event x t "q$i"; done > "$d/in.ndjson"
run_eddy "$d"
expect_eq "quarantine: eddy run exits 1 at the end of the input" 1 "$RC"
check "quarantine: ... saying which processor and why" \
  grep -q "processor bad was quarantined during the run (its events went to the dead letters as \`quarantined\`); exit code 1" "$d/err"
expect_eq "quarantine: every event is still a dead letter" 5 "$(wc -l < "$d/dlq.ndjson")"
run_eddy "$d" --set processor.quarantine.fails.run=false
expect_eq "quarantine: processor.quarantine.fails.run=false exits 0" 0 "$RC"
printf 'return {\n  routes = { { domain = "order", type = "*" } },\n  process = function() end,\n  description = "x",\n}\n' > "$d/processors/p.lua"
refused "check: an unknown key far from every known one is refused without a guess" "$d" \
  "$d/processors/p.lua:4: unknown key 'description' in the processor table"
printf 'return {\n  routes = { { domain = "order", type = "*" } },\n  process = function() end,\n  on_window = function() end,\n  windows = { w = { kind = "tumbling", size = 5 } },\n}\n' > "$d/processors/p.lua"
refused "check: an unknown key in a window declaration is refused, with the nearest known one" "$d" \
  "$d/processors/p.lua:5: unknown key 'size' in windows.w; did you mean 'size_ms'?"
printf 'return {\n  routes = { { domain = "order", type = "*" } },\n  process = function() end,\n  on_window = function() end,\n  window = { w = { kind = "tumbling", size_ms = 5 } },\n}\n' > "$d/processors/p.lua"
refused "check: window = for windows = is refused, with the nearest known key" "$d" \
  "$d/processors/p.lua:5: unknown key 'window' in the processor table; did you mean 'windows'?"
printf 'return {\n  routes = { { domain = "order", type = "*" } },\n  process = function() end,\n  on_window = function() end,\n  windows = { w = { kind = "tumbeling", size_ms = 5 } },\n}\n' > "$d/processors/p.lua"
refused "check: a window kind error names the file and line" "$d" \
  "$d/processors/p.lua:5: windows.w: kind must be tumbling, sliding or session"
# ctx.emit to a sink name written in the source that no sink declares: every event
# would fail and the processor be quarantined, so the load is refused. A commented-out
# line does not count.
printf 'return {\n  routes = { { domain = "order", type = "*" } },\n  process = function(ev, ctx)\n    -- ctx.emit("old", {})\n    ctx.emit("out", {})\n    ctx.emit( "payment", { x = 1 })\n  end,\n}\n' > "$d/processors/p.lua"
refused "check: ctx.emit to a sink no sink declares is refused, naming file and line" "$d" \
  "$d/processors/p.lua:6: ctx.emit to sink 'payment', which no sink declares (declare sink.payment.type)"

d=$(newdir); write_conf "$d"
refused "check: an empty processors dir is refused" "$d" \
  "$d/eddy.conf:1: processors.dir: no *.lua processors in $d/processors"
