-- iot_enrich: IoT device readings -> data-quality rules -> device metadata from MySQL
-- (lookup device_meta) -> the rich-iot-data sink. The Flink lookup join of the seeds,
-- without a round trip per record: misses of a batch are fetched by one query.
--
-- Rules come from conf/rules/iot_quality.json: required fields and their types, value
-- ranges by rule name, and what to do with a device missing from device_metadata
-- ("keep": emit without metadata, like a LEFT JOIN; "reject": dead-letter it).
-- A failed rule dead-letters the reading as `rejected`, naming the rule.
local rules

return {
  name = "iot_enrich",
  routes = { { domain = "geofence", type = "*" } },

  init = function(ctx)
    rules = ctx.rules("iot_quality")
    assert(type(rules.required) == "table" and type(rules.ranges) == "table",
           "iot_quality.json needs `required` and `ranges`")
  end,

  process = function(ev, ctx)
    local p = ev.payload
    ctx.check(p, rules.required)
    for _, r in ipairs(rules.ranges) do
      local v = p[r.field]
      if v ~= nil and (v < r.min or v > r.max) then
        ctx.reject(("rule %s: payload.%s=%s is outside [%s, %s]"):format(
          r.rule, r.field, tostring(v), tostring(r.min), tostring(r.max)))
      end
    end
    local dev = ctx.lookup("device_meta", p.deviceId)
    if not dev and rules.unknown_device == "reject" then
      ctx.reject(("rule known_device: %s is not in device_metadata"):format(p.deviceId))
    end
    dev = dev or {}
    ctx.emit("rich-iot-data", {
      event_id = ev.eventId, event_time = ev.timestamp, device_id = p.deviceId,
      lat = p.lat, lon = p.lon,
      temperature = p.temperature, humidity = p.humidity, battery = p.battery,
      device_name = dev.name, device_type = dev.type, owner = dev.owner,
      fence_group = dev.fence_group,
    })
  end,
}
