# Keyed state, event-time windows (tumbling, sliding, session), watermark, allowed
# lateness and the late output, Lua aggregation, ctx.geo. Answers are computed by hand
# in the comments.

# The one-line form of every window result: name key start end result [late].
win_lines() { jq -r '[.w, .k, .s, .e, .r] + (if .late then ["late"] else [] end) | map(tostring) | join(" ")' "$1" | sort; }

# ---- out-of-order input, out.of.orderness 5 ms; watermark = max time - 5 ----
d=$(newdir)
write_conf "$d" window.out.of.orderness.ms=5
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    tum = { kind = "tumbling", size_ms = 10, key = "payload.d", agg = "sum:v" },
    sli = { kind = "sliding", size_ms = 10, slide_ms = 5, key = "payload.d", agg = "count" },
    ses = { kind = "session", gap_ms = 4, key = "payload.d", agg = "max:v" },
  },
  process = function(ev, ctx) end,
  on_window = function(win, ctx)
    ctx.emit("out", { w = win.name, k = win.key, s = win.start, e = win["end"], r = win.result,
                      late = win.late })
  end,
}
LUA
ev() { printf '{"domain":"iot","type":"r","timestamp":%s,"eventId":"%s","payload":{"d":"%s","v":%s}}\n' "$@"; }
{
  ev 1 e1 x 1;  ev 7 e2 x 2;  ev 8 y1 y 100; ev 4 e3 x 3   # sessions [1,5) [7,11) [4,8) merge: [1,11)
  ev 12 e4 x 4  # wm 7: sliding [-5,5) fires (1, 4)
  ev 9 e5 x 5   # session [9,13) joins [1,11) and [12,16): [1,16)
  ev 21 e6 x 6  # wm 16: [0,10) and [5,15) of x and y, session x [1,16) and y [8,12)
  ev 16 e7 x 7  # not late: its windows end at 20 and later
  ev 30 e8 x 8  # wm 25: [10,20) [15,25), sessions [16,20) and [21,25)
  ev 3 e9 x 9   # every window of time 3 ended by wm 25: late
} > "$d/in.ndjson"
check "windows: out-of-order run exits 0" "$EDDY" run -c "$d/eddy.conf"
expect_eq "windows: tumbling, sliding and session results by hand (keyed, out of order)" \
"ses x 1 16 5
ses x 16 20 7
ses x 21 25 6
ses x 30 34 8
ses y 8 12 100
sli x -5 5 2
sli x 0 10 4
sli x 10 20 2
sli x 15 25 2
sli x 20 30 1
sli x 25 35 1
sli x 30 40 1
sli x 5 15 3
sli y 0 10 1
sli y 5 15 1
tum x 0 10 11
tum x 10 20 11
tum x 20 30 6
tum x 30 40 8
tum y 0 10 100" "$(win_lines "$d/out.ndjson")"
expect_eq "windows: fired in watermark order (end time first)" \
  "5 10 10 10 10 12 15 15 16 20 20 20 25 25 30 30 34 35 40 40" \
  "$(jq -r .e "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "windows: the event behind every window goes to the late output" "e9 late" \
  "$(jq -r '"\(.eventId) \(.reason)"' "$d/dlq.ndjson")"

# ---- allowed lateness: re-fire within it, late output beyond it ----
d=$(newdir)
write_conf "$d" window.allowed.lateness.ms=10
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = { tum = { kind = "tumbling", size_ms = 10, agg = "count" } },
  process = function(ev, ctx) end,
  on_window = function(win, ctx)
    ctx.emit("out", { w = win.name, k = win.key, s = win.start, e = win["end"], r = win.result,
                      late = win.late })
  end,
}
LUA
{
  ev 1 a x 0; ev 2 b x 0
  ev 15 c x 0   # wm 15: [0,10) fires with 2
  ev 5 d x 0    # within lateness (wm 15 < 10 + 10): [0,10) fires again with 3
  ev 25 e x 0   # wm 25: [0,10) is cleaned up (20), [10,20) fires with 1
  ev 7 f x 0    # past lateness: late output
} > "$d/in.ndjson"
check "lateness: run exits 0" "$EDDY" run -c "$d/eddy.conf"
expect_eq "lateness: a late event within allowed.lateness re-fires its window" \
"tum  0 10 2
tum  0 10 3 late
tum  10 20 1
tum  20 30 1" "$(jq -r '[.w, .k, .s, .e, .r] + (if .late then ["late"] else [] end) | map(tostring) | join(" ")' "$d/out.ndjson")"
expect_eq "lateness: beyond it the event goes to the late output" "f late" \
  "$(jq -r '"\(.eventId) \(.reason)"' "$d/dlq.ndjson")"

# ---- Lua aggregation (add/result, session merge) and keyed state ----
# out.of.orderness 100 ms: nothing here is late; every window fires at the end.
d=$(newdir)
write_conf "$d" window.out.of.orderness.ms=100
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    ids = { kind = "session", gap_ms = 10, key = "payload.d",
            add = function(acc, ev) acc = acc or {}; acc[#acc + 1] = ev.eventId; return acc end,
            merge = function(a, b) for _, v in ipairs(b) do a[#a + 1] = v end; return a end,
            result = function(acc) table.sort(acc); return table.concat(acc, ",") end },
  },
  process = function(ev, ctx)
    local seen = ctx.state.get(ev.payload.d) or { n = 0, sum = 0 }
    seen.n, seen.sum = seen.n + 1, seen.sum + ev.payload.v
    ctx.state.set(ev.payload.d, seen)
  end,
  on_window = function(win, ctx)
    local seen = ctx.state.get(win.key)
    ctx.emit("out", { w = win.name, k = win.key, s = win.start, e = win["end"], r = win.result,
                      n = seen.n, sum = seen.sum })
  end,
}
LUA
{ ev 1 a x 1; ev 30 b x 2; ev 15 c x 4; ev 5 d y 8; ev 60 e x 16; } > "$d/in.ndjson"
check "lua aggregation: run exits 0" "$EDDY" run -c "$d/eddy.conf"
# Sessions of x: a [1,11) b [30,40) c [15,25): separate until the end; e [60,70).
expect_eq "lua aggregation: add/result per session, merge when sessions join" \
"ids x 1 11 a 4 23
ids x 15 25 c 4 23
ids x 30 40 b 4 23
ids x 60 70 e 4 23
ids y 5 15 d 1 8" "$(jq -r '[.w, .k, .s, .e, .r, .n, .sum] | map(tostring) | join(" ")' "$d/out.ndjson" | sort)"
d2=$(newdir)
write_conf "$d2" window.out.of.orderness.ms=100
cp "$d/processors/w.lua" "$d2/processors/"
{ ev 1 a x 1; ev 25 b x 2; ev 13 c x 4; ev 8 d x 8; } > "$d2/in.ndjson"
"$EDDY" run -c "$d2/eddy.conf" 2>/dev/null
# a [1,11), b [25,35), c [13,23), then d [8,18) joins a and c: [1,23).
expect_eq "lua aggregation: a session joining two others merges their accumulators" \
"ids x 1 23 a,c,d
ids x 25 35 b" "$(jq -r '[.w, .k, .s, .e, .r] | map(tostring) | join(" ")' "$d2/out.ndjson" | sort)"

# ---- add gets process()'s own ev, which is detached once the event is done ----
# process tags the payload and keeps ev; add must see that object with its tag, and the
# next event's process must find the kept one detached (reading it raises).
d=$(newdir)
write_conf "$d" window.out.of.orderness.ms=100
cat > "$d/processors/w.lua" <<'LUA'
local last
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    tum = { kind = "tumbling", size_ms = 10, key = "payload.d",
            add = function(acc, ev)
              acc = acc or {}; acc[#acc + 1] = ev == last and ev.payload.tag or "fresh"
              return acc
            end,
            result = function(acc) return table.concat(acc, ",") end },
  },
  process = function(ev, ctx)
    local readable = last ~= nil and pcall(function() return last.eventId end)
    last = ev
    ev.payload.tag = ev.eventId .. (readable and "+stale" or "")
  end,
  on_window = function(win, ctx)
    ctx.emit("out", { k = win.key, s = win.start, r = win.result })
  end,
}
LUA
{ ev 1 a x 1; ev 2 b x 2; ev 3 c y 3; ev 12 d x 4; } > "$d/in.ndjson"
check "windows: add with process's ev: run exits 0" "$EDDY" run -c "$d/eddy.conf"
expect_eq "windows: add gets process()'s ev (payload as process left it), detached after" \
"x 0 a,b
x 10 d
y 0 c" "$(jq -r '[.k, .s, .r] | map(tostring) | join(" ")' "$d/out.ndjson" | sort)"

# A new version is first run over recent events (reload.verify.events), where no add
# follows; each of those evs must be detached there too. The new version raises when
# it can still read the ev of the event before, which would refuse the reload.
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" reload.watch=false \
  window.out.of.orderness.ms=100
kept_ev_processor() {  # VERSION
  cat > "$d/processors/w.lua" <<LUA
local last
return {
  name = "w",
  routes = { { domain = "iot", type = "*" } },
  windows = { tum = { kind = "tumbling", size_ms = 10, key = "payload.d", agg = "count" } },
  process = function(ev, ctx)
    if "$1" == "v2" and last and pcall(function() return last.eventId end) then
      error("the ev of the event before is still readable")
    end
    last = ev
    ctx.emit("out", { v = "$1", id = ev.eventId })
  end,
  on_window = function(win, ctx) end,
}
LUA
}
kept_ev_processor v1
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
for i in 1 2 3 4; do ev "$i" "a$i" x "$i" >&3; done
wait_eval 'test "$(cat "$d/out.ndjson" 2>/dev/null | wc -l)" -ge 4'
kept_ev_processor v2
body=$(curl -sf -X POST "http://127.0.0.1:$(admin_port "$d/err")/-/reload")
check "windows: a reload run over recent events detaches each one's ev (reload taken)" \
  jq -e '.reloaded | length == 1' <<<"$body"
ev 5 a5 x 5 >&3
wait_eval 'grep -q "\"v2\"" "$d/out.ndjson"'
exec 3>&-
RC=0; wait "$PID" || RC=$?
expect_eq "windows: ... and the new version serves, exit 0" "0 v2 a5" \
  "$RC $(tail -1 "$d/out.ndjson" | jq -r '"\(.v) \(.id)"')"

# ---- a sliding window's add runs once for every window of the event, all or none ----
# Size 10, slide 5: each event joins two windows, so add runs twice for it; for events
# with payload.boom the second run raises. e2 (time 7) must then count in neither
# [0,10) nor [5,15), and e3 (time 12) must leave no [10,20) behind: the window its
# first add opened goes again.
d=$(newdir)
write_conf "$d" window.out.of.orderness.ms=100
cat > "$d/processors/w.lua" <<'LUA'
local runs = {}
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    sli = { kind = "sliding", size_ms = 10, slide_ms = 5,
            add = function(acc, ev)
              runs[ev.eventId] = (runs[ev.eventId] or 0) + 1
              if ev.payload.boom and runs[ev.eventId] == 2 then error("boom on the second window") end
              acc = acc or {}; acc[#acc + 1] = ev.eventId; return acc
            end,
            result = function(acc) return table.concat(acc, ",") end },
  },
  process = function(ev, ctx) end,
  on_window = function(win, ctx)
    ctx.emit("out", { s = win.start, e = win["end"], r = win.result, n = win.count })
  end,
}
LUA
boom() { printf '{"domain":"iot","type":"r","timestamp":%s,"eventId":"%s","payload":{"d":"x","boom":true}}\n' "$@"; }
{ ev 6 e1 x 1; boom 7 e2; boom 12 e3; ev 31 e4 x 1; } > "$d/in.ndjson"
check "lua aggregation: a failing add run exits 0" "$EDDY" run -c "$d/eddy.conf"
expect_eq "lua aggregation: an add failing on one window changes no window of the event" \
"0 10 e1 1
25 35 e4 1
30 40 e4 1
5 15 e1 1" "$(jq -r '[.s, .e, .r, .n] | map(tostring) | join(" ")' "$d/out.ndjson" | sort)"
expect_eq "lua aggregation: ... and the event is dead-lettered with the error" \
"e2 processor_error
e3 processor_error" "$(jq -r '"\(.eventId) \(.reason)"' "$d/dlq.ndjson" | sort)"
# ---- a sliding window with merge keeps one accumulator per slice ----
# The same list-of-ids aggregation twice, with merge (a: kept per 5 ms slice, merged
# when a window fires) and without (b: per window); size 20, slide 5, so an event is
# in 4 windows. p and q are the same pair sliding by 15, which does not divide 20: p's
# slices are 5 ms (the gcd), so no window takes events of a slice past its end. Out of order, allowed lateness 10: g and f come after their first
# windows fired (they fire again, late), and boom events fail in a's add, one in a new
# slice and one in an existing one: neither leaves a trace (a's add fails first, so b's
# never runs for them).
d=$(newdir)
write_conf "$d" window.out.of.orderness.ms=5 window.allowed.lateness.ms=10
cat > "$d/processors/w.lua" <<'LUA'
local runs = { a = 0, b = 0, p = 0, q = 0 }
local function add(name)
  return function(acc, ev)
    runs[name] = runs[name] + 1
    if ev.payload.boom then error("boom") end
    acc = acc or {}; acc[#acc + 1] = ev.eventId; return acc
  end
end
local function result(acc) table.sort(acc); return table.concat(acc, ",") end
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    a = { kind = "sliding", size_ms = 20, slide_ms = 5, add = add("a"), result = result,
          merge = function(x, y) for _, id in ipairs(y) do x[#x + 1] = id end return x end },
    b = { kind = "sliding", size_ms = 20, slide_ms = 5, add = add("b"), result = result },
    p = { kind = "sliding", size_ms = 20, slide_ms = 15, add = add("p"), result = result,
          merge = function(x, y) for _, id in ipairs(y) do x[#x + 1] = id end return x end },
    q = { kind = "sliding", size_ms = 20, slide_ms = 15, add = add("q"), result = result },
  },
  process = function(ev, ctx) end,
  on_window = function(win, ctx)
    ctx.emit("out", { w = win.name, s = win.start, e = win["end"], r = win.result,
                      n = win.count, late = win.late, runs = runs[win.name] })
  end,
}
LUA
boom() { printf '{"domain":"iot","type":"r","timestamp":%s,"eventId":"%s","payload":{"d":"x","boom":true}}\n' "$@"; }
{ ev 1 a x 1; ev 7 b x 1; ev 3 c x 1; ev 12 d x 1; ev 26 e x 1; ev 14 f x 1; ev 2 g x 1
  boom 40 y1; boom 13 y2; ev 50 h x 1; } > "$d/in.ndjson"
check "sliced windows: the run exits 0" "$EDDY" run -c "$d/eddy.conf"
fired() { jq -r "select(.w == \"$1\") | [.s, .e, .r, .n, .late] | map(tostring) | join(\" \")" "$d/out.ndjson" | LC_ALL=C sort; }
expect_eq "sliced windows: every firing (late ones too) equals the per-window aggregation's" \
  "$(fired b)" "$(fired a)"
expect_eq "sliced windows: a slide that does not divide the size gives the per-window firings too" \
  "$(fired q)" "$(fired p)"
check "sliced windows: ... of which there are some" test "$(fired p | wc -l)" -gt 3
expect_eq "sliced windows: ... which is, by hand" \
"-10 10 a,b,c 3 false
-15 5 a,c 2 false
-5 15 a,b,c,d 4 false
-5 15 a,b,c,d,f 5 true
-5 15 a,b,c,d,f,g 6 true
0 20 a,b,c,d 4 false
0 20 a,b,c,d,f 5 true
0 20 a,b,c,d,f,g 6 true
10 30 d,e,f 3 false
15 35 e 1 false
20 40 e 1 false
25 45 e 1 false
35 55 h 1 false
40 60 h 1 false
45 65 h 1 false
5 25 b,d,f 3 false
50 70 h 1 false" "$(fired a)"
# a: the 8 events and the 2 that failed; b: 4 windows an event, but g's first two were
# past their lateness.
expect_eq "sliced windows: add ran once an event with merge, once a window without" \
  "10 30" "$(jq -s -r '[(map(select(.w == "a") | .runs) | max), (map(select(.w == "b") | .runs) | max)] | map(tostring) | join(" ")' "$d/out.ndjson")"
expect_eq "sliced windows: the events whose add failed are dead letters" "y1 y2" \
  "$(jq -r .eventId "$d/dlq.ndjson" | sort | tr '\n' ' ' | sed 's/ $//')"

# Adding merge to a running sliding window would leave its open windows' accumulators
# beside slices the new version never made: a reload is refused, a restart takes it.
d=$(newdir)
mkfifo "$d/in.fifo"
write_conf "$d" "source.file.path=$d/in.fifo" reload.watch=false
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = { s = { kind = "sliding", size_ms = 20, slide_ms = 5,
                    add = function(acc, ev) return (acc or 0) + 1 end } },
  process = function(ev, ctx) end,
  on_window = function(win, ctx) ctx.emit("out", { r = win.result }) end,
}
LUA
"$EDDY" run -c "$d/eddy.conf" 2>"$d/err" & pid=$!
exec 3>"$d/in.fifo"
ev 1 a x 1 >&3
sed -i 's/return (acc or 0) + 1 end/return (acc or 0) + 1 end, merge = function(a, b) return a + b end/' \
  "$d/processors/w.lua"
kill -HUP $pid
wait_until grep -q "refused" "$d/err"
exec 3>&-
wait $pid
check "sliced windows: a reload that adds merge to a sliding window is refused" \
  grep -q "reload of .*w.lua refused: its windows changed (.*merge of a sliding one)" "$d/err"

# ---- merge = "sum": eddy merges the accumulators without calling Lua ----
# One add, three windows: a sliding one merged by a Lua function with the same rule
# (numbers added, tables key by key, anything else the later's), the same merged by
# "sum", and a session window merged by "sum". Out of order, allowed lateness 10.
d=$(newdir)
write_conf "$d" window.out.of.orderness.ms=5 window.allowed.lateness.ms=10
cat > "$d/processors/w.lua" <<'LUA'
local function add(acc, ev)
  acc = acc or { n = 0, v = 0, by = {} }
  acc.n, acc.v, acc.last = acc.n + 1, acc.v + ev.payload.v, ev.eventId
  acc.by[ev.payload.c] = (acc.by[ev.payload.c] or 0) + 1
  return acc
end
local function merge(a, b)
  a.n, a.v, a.last = a.n + b.n, a.v + b.v, b.last
  for c, k in pairs(b.by) do a.by[c] = (a.by[c] or 0) + k end
  return a
end
local function result(acc)
  local by = {}
  for c, k in pairs(acc.by) do by[#by + 1] = c .. "=" .. k end
  table.sort(by)
  return ("n=%d v=%g last=%s %s"):format(acc.n, acc.v, acc.last, table.concat(by, ","))
end
return {
  routes = { { domain = "iot", type = "*" } },
  windows = {
    lua = { kind = "sliding", size_ms = 20, slide_ms = 5, key = "payload.d", add = add,
            merge = merge, result = result },
    sum = { kind = "sliding", size_ms = 20, slide_ms = 5, key = "payload.d", add = add,
            merge = "sum", result = result },
    ses = { kind = "session", gap_ms = 4, key = "payload.d", add = add, merge = "sum",
            result = result },
  },
  process = function(ev, ctx) end,
  on_window = function(win, ctx)
    ctx.emit("out", { w = win.name, k = win.key, s = win.start, e = win["end"],
                      r = win.result, late = win.late })
  end,
}
LUA
evc() { printf '{"domain":"iot","type":"r","timestamp":%s,"eventId":"%s","payload":{"d":"%s","v":%s,"c":"%s"}}\n' "$@"; }
{ evc 1 a x 1 red; evc 7 b x 2.5 blue; evc 3 c x 4 red; evc 12 d x 8 green; evc 8 e y 16 red
  evc 26 f x 32 blue; evc 14 g x 64 red; evc 2 h x 128 blue; evc 50 i x 256 red; } > "$d/in.ndjson"
check "merge sum: the run exits 0" "$EDDY" run -c "$d/eddy.conf"
fired() { jq -r "select(.w == \"$1\") | [.k, .s, .e, .r, .late] | map(tostring) | join(\" \")" "$d/out.ndjson" | LC_ALL=C sort; }
expect_eq "merge sum: every sliding firing (late ones too) equals the Lua merge's" \
  "$(fired lua)" "$(fired sum)"
check "merge sum: ... of which there are some, late ones among them" \
  test "$(fired sum | wc -l)" -gt 10 -a "$(fired sum | grep -c true)" -gt 0
# Sessions of x (gap 4): [1,5) [7,11), then c's [3,7) joins them as [1,11) (c's
# session merged last: last=c). f (wm 21) fires [1,11) and [12,16); g's [14,18) joins
# the fired [12,16), within its lateness: [12,18) fires late. h (2) is past [1,11)'s
# lateness (11 + 10 <= 21): a late dead letter. Then [26,30) and [50,54). y: [8,12).
expect_eq "merge sum: session windows merged by sum, by hand" \
"x 1 11 n=3 v=7.5 last=c blue=1,red=2 false
x 12 16 n=1 v=8 last=d green=1 false
x 12 18 n=2 v=72 last=g green=1,red=1 true
x 26 30 n=1 v=32 last=f blue=1 false
x 50 54 n=1 v=256 last=i red=1 false
y 8 12 n=1 v=16 last=e red=1 false" "$(fired ses)"
sed -i 's/merge = "sum", result/merge = "avg", result/' "$d/processors/w.lua"
RC=0; "$EDDY" check -c "$d/eddy.conf" > "$d/check" 2>&1 || RC=$?
expect_eq "merge sum: another merge string is a load error" 2 "$RC"
check "merge sum: ... which says what merge may be" \
  grep -q 'windows.sum: merge must be a function or "sum"' "$d/check"

# A day sliding by 10 s: one event joins 8,640 windows, more than a Lua stack holds.
d=$(newdir)
write_conf "$d"
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = { day = { kind = "sliding", size_ms = 86400000, slide_ms = 10000,
                      add = function(acc, ev) return (acc or 0) + ev.payload.v end } },
  process = function(ev, ctx) end,
  on_window = function(win, ctx) ctx.emit("out", { r = win.result }) end,
}
LUA
ev 5 d1 x 3 > "$d/in.ndjson"
check "lua aggregation: a day sliding by 10 s runs" "$EDDY" run -c "$d/eddy.conf"
expect_eq "lua aggregation: ... its event is in each of its 8,640 windows" "8640 3" \
  "$(jq -r .r "$d/out.ndjson" | sort | uniq -c | awk '{ print $1, $2 }')"

# ---- state TTL: gone after its time to live ----
d=$(newdir)
mkfifo "$d/in.fifo"
write_conf "$d" "source.file.path=$d/in.fifo"
cat > "$d/processors/s.lua" <<'LUA'
return {
  routes = { { domain = "s", type = "*" } },
  process = function(ev, ctx)
    if ev.type == "set" then ctx.state.set("k", { v = ev.eventId }, 200)
    elseif ev.type == "keep" then ctx.state.set("p", "forever")
      ctx.state.set("h", "huge", 1e300); ctx.state.set("i", "inf", math.huge)
    else
      local v = ctx.state.get("k")
      ctx.emit("out", { id = ev.eventId, k = v and v.v or "gone", p = ctx.state.get("p"),
                        del = ctx.state.del("p"), h = ctx.state.get("h"), i = ctx.state.get("i") })
    end
  end,
}
LUA
sev() { printf '{"domain":"s","type":"%s","timestamp":1,"eventId":"%s","payload":{}}\n' "$@"; }
("$EDDY" run -c "$d/eddy.conf" 2>"$d/err") & pid=$!
{ sev set s1; sev keep k1; sev get g1; sleep 0.5; sev get g2; } > "$d/in.fifo"
wait $pid
expect_eq "state: a value lives until its TTL, del removes a key, a TTL of 1e300 or math.huge never ends" \
"g1 s1 forever true huge inf
g2 gone null false huge inf" "$(jq -r '"\(.id) \(.k) \(.p) \(.del) \(.h) \(.i)"' "$d/out.ndjson")"

# ---- state TTL: values nobody reads again are swept ----
# A dedup processor: one key per event id, with a TTL, never read again unless the id
# comes back. Without the sweep they stayed until a restart.
d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0"
cat > "$d/processors/s.lua" <<'LUA'
return {
  routes = { { domain = "s", type = "*" } },
  process = function(ev, ctx)
    local k = "seen|" .. ev.eventId
    if ctx.state.get(k) then return end
    ctx.state.set(k, true, ev.type == "short" and 300 or 0)
  end,
}
LUA
fifo_eddy "$d"
for i in $(seq 2000); do sev short "s$i"; done >&3
for i in $(seq 5); do sev keep "k$i"; done >&3
wait_eval 'test -n "$(admin_port "$d/err")"'
sm() { curl -sf "http://127.0.0.1:$(admin_port "$d/err")/metrics" | awk -v k="$1{processor=\"s\"}" '$1 == k { print $2 }'; }
wait_eval '[ "$(sm eddy_state_expired_total)" = 2000 ]'
expect_eq "state TTL: 2,000 keys never read again are swept; the 5 without a TTL stay" \
  "2000 5" "$(sm eddy_state_expired_total) $(sm eddy_state_entries)"
exec 3>&-
wait $PID

# ---- bad declarations stop the load with the reason ----
d=$(newdir)
write_conf "$d"
printf 'return { routes = {{domain="a",type="*"}}, process = function() end,\n  windows = { w = { kind = "hopping", size_ms = 5 } }, on_window = function() end }\n' > "$d/processors/w.lua"
"$EDDY" check -c "$d/eddy.conf" > "$d/out" 2>&1
check "windows: an unknown kind is refused at load" grep -q "windows.w: kind must be tumbling, sliding or session" "$d/out"
printf 'return { routes = {{domain="a",type="*"}}, process = function() end,\n  windows = { w = { kind = "tumbling", size_ms = 5 } } }\n' > "$d/processors/w.lua"
"$EDDY" check -c "$d/eddy.conf" > "$d/out" 2>&1
check "windows: windows without on_window are refused at load" grep -q "windows are declared but on_window is missing" "$d/out"
printf 'return { routes = {{domain="a",type="*"}}, process = function() end,\n  windows = { w = { kind = "tumbling", size_ms = 1e300 } }, on_window = function() end }\n' > "$d/processors/w.lua"
"$EDDY" check -c "$d/eddy.conf" > "$d/out" 2>&1
check "windows: a size past 100 years is refused at load" grep -q "windows.w: size_ms must be a whole number of milliseconds above 0, at most" "$d/out"
printf 'return { routes = {{domain="a",type="*"}}, process = function(ev, ctx) ctx.state.set("k", function() end) end }\n' > "$d/processors/w.lua"
echo '{"domain":"a","type":"t","timestamp":1,"eventId":"f1","payload":{}}' > "$d/in.ndjson"
"$EDDY" run -c "$d/eddy.conf" 2>/dev/null
check "state: a function value is refused (dead-lettered with why)" \
  grep -q 'ctx.state.set: a function value cannot be stored' "$d/dlq.ndjson"

# ---- timers: event time (moved by the watermark, one per key and tag), processing time, cancel ----
d=$(newdir)
mkfifo "$d/in.fifo"
write_conf "$d" "source.file.path=$d/in.fifo"
cat > "$d/processors/t.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  process = function(ev, ctx)
    local k = ev.payload.d
    if ev.type == "proc" then
      ctx.timer(k, ctx.now() + 100, "pt", "processing")
    elseif ev.type == "cancel" then
      ctx.timer(k, ev.timestamp + 1, "c")
      ctx.timer(k, nil, "c")
    else
      ctx.timer(k, ev.timestamp + 10, "t")   -- a later event of k moves it
    end
  end,
  on_timer = function(key, tag, ctx)
    ctx.emit("out", { k = key, tag = tag })
  end,
}
LUA
tev() { printf '{"domain":"iot","type":"%s","timestamp":%s,"eventId":"%s","payload":{"d":"%s"}}\n' "$@"; }
("$EDDY" run -c "$d/eddy.conf" 2>"$d/err") & pid=$!
{
  tev r 1 a x; tev r 5 b x; tev r 6 c y; tev cancel 7 c2 w
  tev r 30 e z          # wm 30: x at 15, y at 16 fire; z at 40 waits for the end
  tev proc 30 f p       # processing time: 100 ms from now, while the input is still open
  sleep 1
  jq -r '"\(.k) \(.tag)"' "$d/out.ndjson" > "$d/before-end" 2>/dev/null
} > "$d/in.fifo"
wait $pid
expect_eq "timers: event-time timers fire by the watermark, once per key and tag" \
  "x t y t p pt" "$(tr '\n' ' ' < "$d/before-end" | sed 's/ $//')"
expect_eq "timers: the rest fire at the end of the input; a cancelled one never" \
  "x t y t p pt z t" "$(jq -r '"\(.k) \(.tag)"' "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
printf 'return { routes = {{domain="iot",type="*"}}, process = function(ev, ctx) ctx.timer("k", 1, "t") end }\n' > "$d/processors/t.lua"
tev r 1 g x > "$d/in.ndjson"
write_conf "$d"
"$EDDY" run -c "$d/eddy.conf" 2>/dev/null
check "timers: ctx.timer without on_timer is an error" grep -q 'ctx.timer: the processor has no on_timer' "$d/dlq.ndjson"

# ---- windows declared by a function of ctx: sizes from a rules file ----
d=$(newdir)
mkdir -p "$d/rules"
echo '{"size_ms": 20}' > "$d/rules/win.json"
write_conf "$d" "rules.dir=$d/rules"
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = function(ctx)
    return { w = { kind = "tumbling", size_ms = ctx.rules("win").size_ms, agg = "count" } }
  end,
  process = function(ev, ctx) end,
  on_window = function(win, ctx) ctx.emit("out", { s = win.start, e = win["end"], r = win.result }) end,
}
LUA
{ ev 1 a x 0; ev 15 b x 0; ev 25 c x 0; } > "$d/in.ndjson"
"$EDDY" run -c "$d/eddy.conf" 2>/dev/null
expect_eq "windows: declared by a function of ctx, the size read from a rules file" \
  "0 20 2 20 40 1" "$(jq -r '"\(.s) \(.e) \(.r)"' "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"

# ---- a failing on_window / on_timer is dead-lettered, naming what fired ----
d=$(newdir)
write_conf "$d"
cat > "$d/processors/w.lua" <<'LUA'
return {
  routes = { { domain = "iot", type = "*" } },
  windows = { tum = { kind = "tumbling", size_ms = 10, key = "payload.d", agg = "count" } },
  process = function(ev, ctx) ctx.timer(ev.payload.d, 5, "tick") end,
  on_window = function(win, ctx) error("window broke") end,
  on_timer = function(key, tag, ctx) error("timer broke") end,
}
LUA
printf '%s\n' '{"domain":"iot","type":"r","timestamp":1,"eventId":"a","payload":{"d":"q\"uote"}}' > "$d/in.ndjson"
check "failing calls: run exits 0" "$EDDY" run -c "$d/eddy.conf"
expect_eq "failing calls: on_window and on_timer errors are dead letters naming the window and the timer" \
'processor_error (window) {"window":"tum","key":"q\"uote","start":0,"end":10}
processor_error (timer) {"timer":"tick","key":"q\"uote","at":5}' \
  "$(jq -r '"\(.reason) \(.origin.file) \(.raw | fromjson | tojson)"' "$d/dlq.ndjson" | sort -r)"

# ---- a failing call leaves no state change behind ----
# Counts per key: an event whose process() raises after ctx.state.set/del, or runs out
# of time after it, changes nothing; pcall-caught errors do not undo. Its dead letter,
# replayed once the cause is gone, counts as if it had succeeded the first time; a
# failing on_timer's writes are undone too.
d=$(newdir)
mkfifo "$d/in.fifo"
write_conf "$d" "source.file.path=$d/in.fifo" processor.timeout.ms=200
cat > "$d/processors/c.lua" <<'LUA'
return {
  routes = { { domain = "c", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    local n = (ctx.state.get(p.k) or 0) + 1
    ctx.state.set(p.k, n)
    ctx.state.set("other", "touched by " .. ev.eventId)
    if ev.type == "del" then ctx.state.del(p.k); ctx.state.del("other") end
    if p.fail == "raise" then error("failed after set") end
    if p.fail == "loop" then while true do end end
    if p.fail == "caught" then pcall(error, "caught") end
    if p.timer then ctx.timer(p.k, 5, "t") end
    ctx.emit("out", { id = ev.eventId, n = n, other = ctx.state.get("other") })
  end,
  on_timer = function(key, tag, ctx)
    ctx.state.set(key, 1000)
    error("timer broke")
  end,
}
LUA
cev() { printf '{"domain":"c","type":"%s","timestamp":%s,"eventId":"%s","payload":{"k":"a"%s}}\n' "$@"; }
("$EDDY" run -c "$d/eddy.conf" 2>"$d/err") & pid=$!
{
  cev inc 1 e1 ''; cev inc 1 e2 ',"fail":"raise"'; cev inc 1 e3 ''
  cev del 1 e4 ',"fail":"raise"'; cev inc 1 e5 ',"fail":"loop"'; cev inc 1 e6 ',"fail":"caught"'
  cev inc 1 e7 ',"timer":true'; cev inc 100 e8 ''
  for _ in $(seq 100); do [ "$(cat "$d/dlq.ndjson" 2>/dev/null | wc -l)" -ge 3 ] && break; sleep 0.1; done
  # The dead letter of e2, its cause removed, goes in again.
  jq -c 'select(.eventId == "e2") | .raw | fromjson | del(.payload.fail)' "$d/dlq.ndjson"
  cev inc 100 e9 ''
} > "$d/in.fifo"
wait $pid
expect_eq "state undo: a raise, a timeout and a failed on_timer undo their writes; a caught error does not" \
  "e1 1 e1 e3 2 e3 e6 3 e6 e7 4 e7 e8 5 e8 e2 6 e2 e9 7 e9" \
  "$(jq -r '"\(.id) \(.n) \(.other | sub("touched by "; ""))"' "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
expect_eq "state undo: the failures are dead letters (raise, raise, timeout, on_timer)" \
  "processor_error processor_error timeout processor_error" \
  "$(jq -r .reason "$d/dlq.ndjson" | tr '\n' ' ' | sed 's/ $//')"
