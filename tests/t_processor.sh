# Processors: error isolation, all-or-nothing outputs, ctx API, payload conversions.

d=$(newdir)
write_conf "$d" 'sink.other.type=file' "sink.other.path=$d/other.ndjson"
cat > "$d/processors/p.lua" <<'LUA'
local seen, SPEC2 = {}, { z = "number", m = "table", a = "boolean?", b = "string" }
local kept
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    if ev.type == "boom" then
      ctx.emit("out", { id = ev.eventId, partial = true })
      error("boom at " .. ev.eventId)
    elseif ev.type == "reject" then
      ctx.reject("not today")
    elseif ev.type == "check" then
      ctx.check(p, { a = "string", b = "number", c = "boolean?" })
    elseif ev.type == "nosink" then
      ctx.emit("no" .. "where", {})   -- a name made at run time: checked when emitted
    elseif ev.type == "keep" then
      kept = ev
    elseif ev.type == "useafter" then
      return kept.type
    elseif ev.type == "badval" then
      ctx.emit("out", { f = function() end })
    elseif ev.type == "nan" then
      ctx.emit("out", { x = 0/0 })
    elseif ev.type == "readonly" then
      ev.domain = "x"
    elseif ev.type == "errobj" then
      error({ code = 1 })
    elseif ev.type == "two" then
      ctx.emit("out", { id = ev.eventId, n = 1 })
      ctx.emit("other", { id = ev.eventId, n = 2 })
    elseif ev.type == "json" then
      local t, err = ctx.json.decode(p.text)
      ctx.emit("out", { id = ev.eventId, ok = t ~= nil, err = err,
                        back = t and ctx.json.encode(t), arr = ctx.json.array(),
                        now_ok = ctx.now() > 1.7e12, meta = { ev.version, ev.source } })
    elseif ev.type == "tables" then
      -- What the encoder makes of each kind of table, and what it refuses.
      local out = { id = ev.eventId }
      local late = { a = 1 }
      late[1] = 2
      local cases = { mixed = { a = 1, [1] = 2 }, late = late, numkey = { [2] = "x" },
                      boolkey = { [true] = 1 }, arr = { 1, 2, 3 }, obj = { a = { b = {} } },
                      empty = {}, marked = ctx.json.array() }
      for k, t in pairs(cases) do
        local ok, r = pcall(ctx.json.encode, t)
        out[k] = ok and r or ("error: " .. r)
      end
      ctx.emit("out", out)
    elseif ev.type == "keys" then
      -- Object keys are kept encoded by where their string lives (lb_json.c): keys made
      -- and dropped by the thousand, so that the collector gives their addresses to
      -- other keys of the same length, must each come out as themselves; a key that
      -- needs escaping comes out the same the first time and the next.
      local bad = 0
      for i = 1, 20000 do
        local k = ("k%05d"):format((i * 7919) % 100000)
        if ctx.json.encode({ [k] = i }) ~= '{"' .. k .. '":' .. i .. '}' then bad = bad + 1 end
      end
      local esc = {}
      for i = 1, 2 do esc[i] = ctx.json.encode({ ['q"b\\n\1\u{e9}'] = i }) end
      ctx.emit("out", { id = ev.eventId, bad = bad, esc = esc })
    elseif ev.type == "check2" then
      ctx.check(p, SPEC2)   -- one spec table for many events: read once, then kept
      ctx.emit("out", { id = ev.eventId })
    elseif ev.type == "badspec" then
      ctx.check(p, { a = "strng" })
    else
      seen[ev.eventId] = true
      ctx.emit("out", { id = ev.eventId, payload = p })
    end
  end,
}
LUA
{
  event t ok e1 '{"n":1}'
  event t boom e2
  event t ok e3 '{"s":"caf\u00e9","list":[1,null,"x"],"empty":[],"obj":{},"nested":{"t":true,"f":false,"z":null}}'
  event t reject e4
  event t check e5 '{"a":"x","b":"not a number"}'
  event t check e6 '{"a":"x","b":1}'
  event t nosink e7
  event t keep e8
  event t useafter e9
  event t badval e10
  event t nan e11
  event t readonly e12
  event t errobj e13
  event t two e14
  printf '{"domain":"t","type":"json","timestamp":1,"eventId":"e15","version":"2.0","source":"svc","payload":{"text":"{\\"k\\":[1,2,{}]}"}}\n'
  event t json e16 '{"text":"{bad"}'
  event t ok e17
  # Strings whose plain run ends (quote, backslash, control, UTF-8) at every offset of a
  # word: the decoder and the encoder copy plain text 8 bytes at a time.
  jq -cn '[range(0; 19) as $n | ["\"", "\\", "\n", "\u0001", "\u007f", "é", "€", "😀"][] as $s
           | ("abcdefghijklmnopqrs"[:$n] + $s + "0123456789"[:($n % 11)])] | to_entries
           | map({ key: ("k" + (.key | tostring)), value }) | from_entries
           | { domain: "t", type: "ok", timestamp: 1, eventId: "e18", payload: . }'
  event t tables e19
  event t keys e20
  event t check2 e21 '{"z":1,"m":{},"b":"x"}'
  event t check2 e22 '{"z":"1","m":1,"b":"x"}'
  event t check2 e23 '{"a":1,"z":1,"m":{},"b":"x"}'
  event t badspec e24
} > "$d/in.ndjson"
run_eddy "$d"
src=$(lua_chunk "$d/processors/p.lua")
expect_eq "processor: run survives failing events, exit 0" 0 "$RC"
expect_eq "processor: good events around failures all come out" "e1 e3 e14 e15 e16 e17 e18 e19 e20 e21" \
  "$(jq -r '.id // empty' "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
check "processor: outputs of a failed event are discarded" bash -c "! grep -q partial '$d/out.ndjson'"
dl() { jq -r --arg id "$1" 'select(.eventId==$id) | .reason + "|" + .detail + "|" + (.processor // "")' "$d/dlq.ndjson"; }
expect_eq "processor: a Lua error is processor_error with file:line" \
  "processor_error|$src:9: boom at e2|p" "$(dl e2)"
expect_eq "processor: ctx.reject gives reason rejected" "rejected|not today|p" "$(dl e4)"
expect_eq "processor: ctx.check names the bad field" "rejected|payload.b: expected number, got string|p" "$(dl e5)"
expect_eq "processor: ctx.check reads fields in name order; a missing optional one passes" \
  "rejected|payload.m: expected table, got number|p" "$(dl e22)"
expect_eq "processor: ctx.check's message quotes the spec's type" \
  "rejected|payload.a: expected boolean?, got number|p" "$(dl e23)"
expect_eq "processor: a bad ctx.check spec is an error" \
  "processor_error|$src:66: ctx.check: spec must map field names to string|number|boolean|table, with ? for optional|p" \
  "$(dl e24)"
expect_eq "processor: emit to an unknown sink is an error" \
  "processor_error|$src:15: ctx.emit: unknown sink 'nowhere'|p" "$(dl e7)"
expect_eq "processor: ev used after process() returned is an error" \
  "processor_error|$src:19: event used after process() returned (copy the fields you keep)|p" "$(dl e9)"
expect_eq "processor: a function cannot be emitted" \
  "processor_error|$src:21: cannot encode a function as JSON|p" "$(dl e10)"
expect_eq "processor: NaN cannot be emitted" \
  "processor_error|$src:23: cannot encode NaN as JSON|p" "$(dl e11)"
expect_eq "processor: ev is read-only" \
  "processor_error|$src:25: ev is read-only (build a new table to emit)|p" "$(dl e12)"
expect_eq "processor: a non-string error object is reported" \
  "processor_error|(error object is a table value)|p" "$(dl e13)"
expect_eq "processor: emits to two sinks" "1/2" \
  "$(jq -r 'select(.id=="e14").n' "$d/out.ndjson")/$(jq -r 'select(.id=="e14").n' "$d/other.ndjson")"
expect_eq "processor: payload converts strings, arrays (null kept), objects, booleans" \
  '{"empty":[],"list":[1,null,"x"],"nested":{"f":false,"t":true},"obj":{},"s":"café"}' \
  "$(jq -cS 'select(.id=="e3").payload' "$d/out.ndjson")"
expect_eq "processor: 152 strings with a special byte at each offset come out as they came in" \
  "$(jq -cS 'select(.eventId=="e18").payload' "$d/in.ndjson")" \
  "$(jq -cS 'select(.id=="e18").payload' "$d/out.ndjson")"
expect_eq "processor: json.decode/encode round trip, json.array, now, version/source" \
  '{"arr":[],"back":"{\"k\":[1,2,{}]}","id":"e15","meta":["2.0","svc"],"now_ok":true,"ok":true}' \
  "$(jq -cS 'select(.id=="e15")' "$d/out.ndjson")"
expect_eq "processor: json.encode of objects, arrays, empty and marked tables; bad keys refused" \
  '{"arr":"[1,2,3]","boolkey":"error: cannot encode a table key of type boolean (object keys are strings)","empty":"{}","id":"e19","late":"error: cannot encode a table with both array and non-array keys","marked":"[]","mixed":"error: cannot encode a table with both array and non-array keys","numkey":"error: cannot encode a table key of type number (object keys are strings)","obj":"{\"a\":{\"b\":{}}}"}' \
  "$(jq -cS 'select(.id=="e19")' "$d/out.ndjson")"
expect_eq "processor: 20,000 keys made and collected each encode as themselves; an escaped key twice alike" \
  '{"bad":0,"esc":["{\"q\\\"b\\\\n\\u0001é\":1}","{\"q\\\"b\\\\n\\u0001é\":2}"]}' \
  "$(jq -cS 'select(.id=="e20") | del(.id)' "$d/out.ndjson")"
expect_eq "processor: json.decode of bad text returns nil, message" \
  "false|column 4: string or '}' expected near 'bad'" \
  "$(jq -r 'select(.id=="e16") | (.ok|tostring) + "|" + .err' "$d/out.ndjson")"
expect_eq "processor: the summary counts records and outputs" "24 records, 11 outputs, 12 dead letters" \
  "$(grep -o '[0-9]* records, [0-9]* outputs, [0-9]* dead letters' "$d/err")"
