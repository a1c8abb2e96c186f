-- geofence: device location reports from IoT devices -> `device_locations`.
-- Coordinates and sensor readings are range-checked; a bad reading rejects the event.
local PAYLOAD = { deviceId = "string", lat = "number", lon = "number",
                  temperature = "number?", humidity = "number?", battery = "number?" }
local RANGES = {
  lat = { -90, 90 }, lon = { -180, 180 },
  temperature = { -60, 100 }, humidity = { 0, 100 }, battery = { 0, 100 },
}

return {
  name = "geofence",
  routes = { { domain = "geofence", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.check(p, PAYLOAD)
    for field, r in pairs(RANGES) do
      local v = p[field]
      if v and (v < r[1] or v > r[2]) then
        ctx.reject(("payload.%s=%s is outside [%s, %s]"):format(field, v, r[1], r[2]))
      end
    end
    ctx.emit("device_locations", {
      event_id = ev.eventId, device_id = p.deviceId, lat = p.lat, lon = p.lon,
      temperature = p.temperature, humidity = p.humidity, battery = p.battery,
      event_time = ev.timestamp,
    })
  end,
}
