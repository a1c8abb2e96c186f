-- processors/geofence.lua with conf/rules/fences.json: per device a 30 s window sliding
-- every 5 s; an alert when at least 60% of its points are outside the allowed fences
-- of the device's group (or inside a forbidden one), once until resolved, and not again
-- within the 300 s cool-down (event time).
local T0 = 1700000000000                    -- a multiple of the 5 s slide
local DEPOT = { 30.2741, 120.1551 }         -- hz-depot, allowed for fence-1
local AIRPORT = { 30.2295, 120.4344 }       -- hz-airport, forbidden for fence-1
local FAR = { 31.5, 121.5 }                 -- in no fence

local function new()
  return eddy.harness{ lookups = { device_meta = {
    d1 = { name = "van", type = "van", owner = "acme", fence_group = "fence-1" } } } }
end

-- Reports of d1 at `where`, one a second from `from` (ms after T0), `n` of them; the
-- alerts and resolutions (geofence_alerts) the reports fired, in order.
local function reports(h, where, from, n, acc)
  acc = acc or {}
  for i = 0, n - 1 do
    local r = h:send(eddy.event("geofence", "location",
                                { deviceId = "d1", lat = where[1], lon = where[2] },
                                { timestamp = T0 + from + i * 1000 }))
    for _, a in ipairs(r.outputs.geofence_alerts) do acc[#acc + 1] = a end
  end
  return acc
end

local function fire(h, at, acc)
  acc = acc or {}
  for _, a in ipairs(h:advance{ watermark = T0 + at }.outputs.geofence_alerts) do
    acc[#acc + 1] = a
  end
  return acc
end

test("every valid report goes to device_locations", function()
  local h = new()
  local r = h:send(eddy.event("geofence", "location",
                              { deviceId = "d1", lat = DEPOT[1], lon = DEPOT[2], battery = 80 },
                              { eventId = "l1", timestamp = T0 }))
  expect.eq(r.outputs.device_locations, { { event_id = "l1", device_id = "d1", lat = DEPOT[1],
                                            lon = DEPOT[2], battery = 80, event_time = T0 } })
  expect.eq(h:state("geofence", "g|d1"), nil, "the device's group is not kept in state")
end)

test("a device inside its allowed fence raises nothing", function()
  local h = new()
  local alerts = reports(h, DEPOT, 0, 10)
  fire(h, 60000, alerts)
  expect.eq(alerts, {}, "alerts")
end)

test("outside its fences: one alert, then resolved once back, with ids from the window end", function()
  local h = new()
  local alerts = reports(h, FAR, 0, 5)              -- T0 .. T0+4 s
  fire(h, 30000, alerts)
  expect.eq(#alerts, 1, "alerts while outside (one, though 6 windows saw the points)")
  expect.has(alerts[1], { status = "alert", type = "outside", fence = "fence-1",
                          device_id = "d1", share = 1, points = 5, window_end = T0 + 5000,
                          id = ("d1|fence-1|outside|%d|alert"):format(T0 + 5000) })
  expect.has(h:state("geofence", "a|d1|fence-1|outside"), { active = true, last = T0 + 5000 })
  local back = reports(h, DEPOT, 40000, 5)          -- T0+40 s .. T0+44 s
  fire(h, 80000, back)
  expect.eq(#back, 1, "records once back")
  expect.has(back[1], { status = "resolved", share = 0, window_end = T0 + 45000 })
  expect.has(h:state("geofence", "a|d1|fence-1|outside"), { active = false })
end)

test("the cool-down holds a second alert back, and lets it through after 300 s", function()
  local h = new()
  local alerts = reports(h, FAR, 0, 5)
  reports(h, DEPOT, 40000, 5, alerts)
  reports(h, FAR, 80000, 5, alerts)                 -- 75 s after the first alert
  fire(h, 120000, alerts)
  expect.eq(#alerts, 2, "alert and resolution only")
  expect.has(alerts[2], { status = "resolved" })
  reports(h, DEPOT, 130000, 5, alerts)              -- back again: nothing was raised
  reports(h, FAR, 400000, 5, alerts)                -- past the cool-down
  fire(h, 440000, alerts)
  expect.eq(#alerts, 3, "a new alert after the cool-down")
  expect.has(alerts[3], { status = "alert", window_end = T0 + 405000 })
end)

test("inside a forbidden fence: a forbidden alert naming the fence (and outside the allowed ones)", function()
  local h = new()
  local alerts = reports(h, AIRPORT, 0, 3)
  fire(h, 30000, alerts)
  local by = {}
  for _, a in ipairs(alerts) do by[a.type] = a end
  expect.has(by.forbidden, { status = "alert", fence = "hz-airport", share = 1 })
  expect.has(by.outside, { status = "alert", fence = "fence-1" })
  expect.eq(#alerts, 2, "alerts")
end)

test("a report outside the valid ranges is rejected; it counts in no window", function()
  local h = new()
  local r = h:send(eddy.event("geofence", "location", { deviceId = "d1", lat = 91, lon = 0 }))
  expect.has(r.dead[1], { reason = "rejected", processor = "geofence" })
  assert(r.dead[1].detail:find("payload.lat=91", 1, true), r.dead[1].detail)
  expect.eq(#h:finish().outputs.geofence_alerts, 0, "alerts")
end)
