-- geofence: device location reports from IoT devices.
--  * every valid report goes to `device_locations`;
--  * per device, a sliding window (conf/rules/fences.json: 30 s every 5 s) counts the
--    points outside all of the device's allowed fences and inside each forbidden one;
--    when the share reaches `min_share` an alert is raised, once per (device, fence,
--    type) until the device is back (a `resolved` record), and not again within
--    `cooldown_ms` of event time. Alerts and resolutions go to the rules' `sink`; their
--    `id` is deterministic, so a replay rewrites the same documents. They are counted
--    in the metric eddy_geofence_alerts_total{type,status} and summarised in the log
--    at most once a minute (each one is logged at debug level): a fleet raises
--    thousands, and a line each would bury the log and cost the loop its writes.
-- The device's fence group comes from the device lookup in process(), which puts it in
-- the payload: the window's add() gets the same ev (a lookup cannot wait there). Keyed
-- state holds only the alert states.
local PAYLOAD = { deviceId = "string", lat = "number", lon = "number",
                  temperature = "number?", humidity = "number?", battery = "number?" }
local RANGES = {
  lat = { -90, 90 }, lon = { -180, 180 },
  temperature = { -60, 100 }, humidity = { 0, 100 }, battery = { 0, 100 },
}

local R             -- the rules, read in init
local BY_GROUP = {} -- group -> { allowed = {fence...}, forbidden = {fence...} }
local SUMMARY_MS = 60000
local counts, summarised = { alert = 0, resolved = 0, suppressed = 0 }, nil

-- Count an outcome and, at most once every SUMMARY_MS, log what was counted since.
local function tally(ctx, kind, status)
  ctx.metric.inc("alerts_total", 1, { type = kind, status = status })
  counts[status] = counts[status] + 1
  local now = ctx.now()
  summarised = summarised or now
  if now - summarised >= SUMMARY_MS then
    ctx.log("info", ("geofence: %d alerts, %d resolved, %d suppressed by the cool-down in the last %d s")
      :format(counts.alert, counts.resolved, counts.suppressed, math.floor((now - summarised) / 1000)))
    counts, summarised = { alert = 0, resolved = 0, suppressed = 0 }, now
  end
end

local function inside(ctx, f, lat, lon)
  if f.circle then
    return ctx.geo.haversine(lat, lon, f.circle.lat, f.circle.lon) <= f.circle.radius_m
  end
  return ctx.geo.in_polygon(lat, lon, f.polygon)
end

local function load_rules(ctx)
  R = ctx.rules("fences")
  BY_GROUP = {}
  for i, f in ipairs(R.fences) do
    assert(type(f.id) == "string" and type(f.group) == "string",
           ("fences[%d]: id and group must be strings"):format(i))
    assert(f.kind == "allowed" or f.kind == "forbidden",
           ("fence %s: kind must be allowed or forbidden"):format(f.id))
    assert(f.circle or f.polygon, ("fence %s: needs a circle or a polygon"):format(f.id))
    local g = BY_GROUP[f.group] or { group = f.group, allowed = {}, forbidden = {} }
    BY_GROUP[f.group] = g
    table.insert(g[f.kind], f)
  end
end

local function alert_id(device, fence, kind, at, status)
  return ("%s|%s|%s|%d|%s"):format(device, fence, kind, at, status)
end

-- One alert state per (device, fence, type): { active, last } (last: event time of the
-- last alert raised). NO_ALERT stands for the many never alerted, without a table for
-- each window that fires; it is never changed.
local NO_ALERT = { active = false }
local function judge(win, ctx, fence, kind, hits, points)
  local key = "a|" .. win.key .. "|" .. fence .. "|" .. kind     -- one concatenation, no format
  local st = ctx.state.get(key) or NO_ALERT
  local share = points > 0 and hits / points or 0
  if (share >= R.min_share) == st.active then return end   -- most windows: no change
  if st == NO_ALERT then st = { active = false } end
  local rec = { device_id = win.key, fence = fence, type = kind, share = share,
                points = points, window_start = win.start, window_end = win["end"] }
  if share >= R.min_share and not st.active then
    if st.last and win["end"] - st.last < R.cooldown_ms then
      ctx.log("debug", ("geofence: %s %s %s suppressed by the cool-down"):format(win.key, kind, fence))
      tally(ctx, kind, "suppressed")
      return
    end
    rec.status, rec.id = "alert", alert_id(win.key, fence, kind, win["end"], "alert")
    st.active, st.last = true, win["end"]
    ctx.log("debug", ("geofence alert %s: device %s %s %s (%d of %d points)"):format(
      rec.id, win.key, kind == "outside" and "outside the allowed fences of" or "inside", fence,
      hits, points))
  elseif share < R.min_share and st.active then
    rec.status, rec.id = "resolved", alert_id(win.key, fence, kind, win["end"], "resolved")
    st.active = false
    ctx.log("debug", ("geofence resolved %s: device %s back from %s"):format(rec.id, win.key, fence))
  else
    return
  end
  ctx.state.set(key, st)
  tally(ctx, kind, rec.status)
  ctx.emit(R.sink, rec)
end

return {
  name = "geofence",
  -- Compiled: its window `add` runs 6 times an event, and the JIT gives this processor
  -- 6% (make bench's geofence part, JIT on against off). A compiled loop escapes
  -- processor.timeout.ms in one process; the container runs it under the supervisor.
  jit = true,
  metrics = {
    alerts_total = { type = "counter", labels = { "type", "status" },
                     help = "Geofence alerts raised, resolved and suppressed by the cool-down." },
  },
  routes = { { domain = "geofence", type = "*" } },
  init = load_rules,

  windows = function(ctx)
    local rules = ctx.rules("fences")
    return {
      fence = {
        kind = "sliding", size_ms = rules.window.size_ms, slide_ms = rules.window.slide_ms,
        key = "payload.deviceId",
        -- acc = { n = points, out = points outside every allowed fence, g = group,
        --         f = { [forbidden fence id] = points inside } or nil when none }
        -- With merge, eddy keeps one accumulator per 5 s slice and merges a window's 6
        -- when it fires: add runs once an event, not once for each of its 6 windows.
        -- merge = "sum" is that merge done by eddy without Lua: n, out and the counts
        -- of f added, g the later slice's.
        add = function(acc, ev, ctx)
          local p = ev.payload
          local g = BY_GROUP[p.fence_group or false]
          acc = acc or { n = 0, out = 0 }
          if not g then return acc end
          acc.n, acc.g = acc.n + 1, g.group
          if #g.allowed > 0 then
            local ok = false
            for _, f in ipairs(g.allowed) do
              if inside(ctx, f, p.lat, p.lon) then ok = true break end
            end
            if not ok then acc.out = acc.out + 1 end
          end
          for _, f in ipairs(g.forbidden) do
            if inside(ctx, f, p.lat, p.lon) then
              acc.f = acc.f or {}
              acc.f[f.id] = (acc.f[f.id] or 0) + 1
            end
          end
          return acc
        end,
        merge = "sum",
      },
    }
  end,

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
    local dev = ctx.lookup(R.device_lookup, p.deviceId)
    p.fence_group = dev and dev[R.group_column]     -- for the window's add
  end,

  on_window = function(win, ctx)
    local acc = win.result
    if not acc or acc.n == 0 then return end
    local g = BY_GROUP[acc.g]
    if g and #g.allowed > 0 then judge(win, ctx, acc.g, "outside", acc.out, acc.n) end
    for _, f in ipairs(g and g.forbidden or {}) do
      judge(win, ctx, f.id, "forbidden", acc.f and acc.f[f.id] or 0, acc.n)
    end
  end,
}
