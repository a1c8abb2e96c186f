-- processors/iot/iot_enrich.lua (conf/iot.conf): IoT readings through the data-quality
-- rules of conf/rules/iot_quality.json, joined with device_meta.
local DEVICES = { d1 = { name = "truck 1", type = "truck", owner = "acme", fence_group = "fence-1" } }
local h = eddy.harness{ config = "conf/iot.conf", lookups = { device_meta = DEVICES } }

local function reading(p, fields) return eddy.event("geofence", "location", p, fields) end

test("a valid reading is enriched with the device's metadata", function()
  local r = h:send(reading({ deviceId = "d1", lat = 30.1, lon = 120.2, temperature = 21.5,
                             humidity = 40, battery = 88 }, { eventId = "r1", timestamp = 1000 }))
  expect.eq(r.outputs["rich-iot-data"], { {
    event_id = "r1", event_time = 1000, device_id = "d1", lat = 30.1, lon = 120.2,
    temperature = 21.5, humidity = 40, battery = 88, device_name = "truck 1",
    device_type = "truck", owner = "acme", fence_group = "fence-1" } })
end)

-- Each range rule, just outside its bound, is dead-lettered naming the rule.
local OUTSIDE = {
  { "lat_range", { lat = 90.5 } }, { "lon_range", { lon = -180.1 } },
  { "temperature_range", { temperature = 85.1 } }, { "temperature_range", { temperature = -40.5 } },
  { "humidity_range", { humidity = 101 } }, { "battery_range", { battery = -1 } },
}
for _, case in ipairs(OUTSIDE) do
  local rule, bad = case[1], case[2]
  local field, value = next(bad)
  test(("rule %s: %s=%s is rejected"):format(rule, field, value), function()
    local p = { deviceId = "d1", lat = 10, lon = 10 }
    p[field] = value
    local r = h:send(reading(p))
    expect.eq(#r.outputs["rich-iot-data"], 0, "outputs")
    expect.has(r.dead[1], { reason = "rejected", processor = "iot_enrich" })
    assert(r.dead[1].detail:find("rule " .. rule, 1, true), r.dead[1].detail)
  end)
end

test("the bounds themselves pass", function()
  local r = h:send(reading({ deviceId = "d1", lat = -90, lon = 180, temperature = -40,
                             humidity = 100, battery = 0 }))
  expect.eq(#r.dead, 0, "dead letters")
  expect.has(r.outputs["rich-iot-data"][1], { lat = -90, lon = 180, battery = 0 })
end)

test("a required field missing or of the wrong type is dead-lettered", function()
  local r = h:send(reading({ deviceId = "d1", lat = "30.1", lon = 120 }))
  assert(r.dead[1] and r.dead[1].detail:find("lat"), "no dead letter naming lat")
  r = h:send(reading({ lat = 1, lon = 2 }))
  assert(r.dead[1] and r.dead[1].detail:find("deviceId"), "no dead letter naming deviceId")
end)

test("unknown_device=keep: a device not in device_metadata is kept without metadata", function()
  local r = h:send(reading({ deviceId = "ghost", lat = 1, lon = 2 }, { eventId = "g1", timestamp = 5 }))
  expect.eq(r.outputs["rich-iot-data"], { { event_id = "g1", event_time = 5, device_id = "ghost",
                                            lat = 1, lon = 2 } })
end)

test("unknown_device=reject (a rules fixture): it is rejected by rule known_device", function()
  local strict = eddy.harness{
    config = "conf/iot.conf", lookups = { device_meta = DEVICES },
    rules = { iot_quality = {
      required = { deviceId = "string", lat = "number", lon = "number" },
      ranges = {}, unknown_device = "reject" } },
  }
  local r = strict:send(reading({ deviceId = "ghost", lat = 1, lon = 2 }))
  expect.has(r.dead[1], { reason = "rejected" })
  assert(r.dead[1].detail:find("rule known_device", 1, true), r.dead[1].detail)
  r = strict:send(reading({ deviceId = "d1", lat = 1, lon = 2 }))
  expect.has(r.outputs["rich-iot-data"][1], { device_id = "d1", owner = "acme" })
  strict:close()
end)
