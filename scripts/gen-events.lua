-- gen-events.lua: deterministic BusinessEvent generator for the demo, tests and bench.
--
--   luajit scripts/gen-events.lua COUNT [SEED] [INVALID_PERCENT] [MANIFEST]
--
-- Writes COUNT NDJSON lines to stdout, mixing the four domains. About INVALID_PERCENT
-- of them are broken on purpose. With MANIFEST, writes one line per event there:
-- "<line>\t<eventId or ->\t<expected outcome>", the outcome being the sink a valid
-- event reaches or "dlq:<reason>" for the dead-letter reason the runtime must give.
local count = tonumber(arg[1]) or 1000
local seed = tonumber(arg[2]) or 42
local invalid_pct = tonumber(arg[3]) or 0
local manifest = arg[4] and assert(io.open(arg[4], "w"))
math.randomseed(seed)

local r = math.random
local base_ts = 1700000000000

local function pick(t) return t[r(#t)] end

local function event(domain, type, id, payload)
  return string.format(
    '{"domain":"%s","type":"%s","timestamp":%d,"eventId":"%s","payload":%s,"version":"1.0","source":"gen"}',
    domain, type, base_ts + id * 10, "ev-" .. id, payload)
end

local valid = {
  function(id)
    local t = pick({ "order_create", "order_pay", "order_cancel" })
    return event("order", t, id, string.format(
      '{"orderId":"o-%d","userId":"u-%d","amount":%.2f}', r(100000), r(5000), r(1, 99999) / 100)),
      "order_wide"
  end,
  function(id)
    local t = pick({ "user_login", "user_purchase", "user_view" })
    local p
    if t == "user_purchase" then
      p = string.format('{"userId":"u-%d","productId":"p-%d","amount":%.2f}', r(5000), r(800), r(100, 50000) / 100)
    elseif t == "user_view" then
      p = string.format('{"userId":"u-%d","productId":"p-%d","page":"detail"}', r(5000), r(800))
    else
      p = string.format('{"userId":"u-%d","ip":"10.0.%d.%d"}', r(5000), r(255), r(255))
    end
    return event("user", t, id, p), "user_activity"
  end,
  function(id)
    local t = pick({ "product_view", "product_search", "product_recommend" })
    local p
    if t == "product_search" then
      p = string.format('{"query":"%s","productId":"p-%d","userId":"u-%d"}',
        pick({ "shoes", "phone", "tea" }), r(800), r(5000))
    elseif t == "product_recommend" then
      p = string.format('{"productId":"p-%d","userId":"u-%d","score":%.3f}', r(800), r(5000), r())
    else
      p = string.format('{"productId":"p-%d","userId":"u-%d"}', r(800), r(5000))
    end
    return event("product", t, id, p), "product_stats"
  end,
  function(id)
    return event("geofence", "device_location", id, string.format(
      '{"deviceId":"d-%d","lat":%.5f,"lon":%.5f,"temperature":%.1f,"battery":%d}',
      r(300), r(-9000000, 9000000) / 100000, r(-18000000, 18000000) / 100000,
      r(-200, 400) / 10, r(0, 100))), "device_locations"
  end,
}

-- Each broken kind and the reason the runtime must give for it.
local invalid = {
  function(id) return '{"domain":"order","type":"order_pay"', "dlq:bad_json" end,
  function(id) return event("order", "order_pay", id, '{"orderId":"o-1"}'):gsub('"eventId":"ev%-%d+",', ""), "dlq:missing_field:eventId" end,
  function(id) return event("user", "user_login", id, '{"userId":"u-1"}'):gsub('"timestamp":(%d+)', '"timestamp":"%1"'), "dlq:bad_type:timestamp" end,
  function(id) return event("user", "user_login", id, '[1,2]'), "dlq:bad_type:payload" end,
  function(id) return event("billing", "invoice", id, '{}'), "dlq:no_route" end,
  function(id) return event("order", "order_refund", id, '{"orderId":"o-1"}'), "dlq:no_route" end,
  function(id) return event("order", "order_pay", id, '{"orderId":"o-1","userId":"u-1","amount":-5}'), "dlq:rejected" end,
  function(id) return event("geofence", "device_location", id, '{"deviceId":"d-1","lat":123.0,"lon":1.0}'), "dlq:rejected" end,
  function(id) return event("user", "user_login", id, '{"userId":"\255\254"}'), "dlq:bad_json" end,
}

local out = {}
for i = 1, count do
  local line, outcome
  if r(100) <= invalid_pct then
    line, outcome = pick(invalid)(i)
  else
    line, outcome = pick(valid)(i)
  end
  out[#out + 1] = line
  if manifest then
    local id = outcome:sub(1, 4) == "dlq:" and "-" or ("ev-" .. i)
    manifest:write(i, "\t", id, "\t", outcome, "\n")
  end
  if #out == 1000 then io.write(table.concat(out, "\n"), "\n"); out = {} end
end
if #out > 0 then io.write(table.concat(out, "\n"), "\n") end
if manifest then manifest:close() end
