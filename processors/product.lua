-- product: product_view, product_search, product_recommend -> `product_stats`, one row
-- per product and day (UTC) whose counters add up in the sink (sink.<name>.sum), with
-- the product's category, brand and price (lookup product_dim); and `product_events`,
-- one row per event for the OLAP store (ClickHouse,
-- conf/sql/clickhouse/product_events.sql), keyed by its event id so that a replay is
-- merged away.
local NEEDS = {
  product_view = { productId = "string", userId = "string?" },
  product_search = { productId = "string", query = "string", userId = "string?" },
  product_recommend = { productId = "string", userId = "string", score = "number?" },
}
local COUNTER = { product_view = "views", product_search = "searches",
                  product_recommend = "recommends" }

-- "YYYY-MM-DD" of an epoch-ms time, UTC (days to civil date, proleptic Gregorian).
-- Events come day after day: the last day's text is kept.
local last_day, last_date
local function utc_date(ms)
  local day = math.floor(ms / 86400000)
  if day == last_day then return last_date end
  local z = day + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
                          - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400 + (m <= 2 and 1 or 0)
  last_day, last_date = day, string.format("%04d-%02d-%02d", y, m, d)
  return last_date
end

return {
  name = "product",
  routes = { { domain = "product", type = "*" } },
  process = function(ev, ctx)
    local kind = ev.type
    local need = NEEDS[kind]
    if not need then ctx.reject("unknown product event type " .. kind) end
    local p = ev.payload
    ctx.check(p, need)
    local product = ctx.lookup("product_dim", p.productId)
    local id, at = ev.eventId, ev.timestamp     -- read once: a read is a call into eddy
    local row = {
      event_id = id, product_id = p.productId, stat_date = utc_date(at),
      views = 0, searches = 0, recommends = 0,
      category = product and product.category, brand = product and product.brand,
      price = product and product.price,
    }
    row[COUNTER[kind]] = 1
    ctx.emit("product_stats", row)
    ctx.emit("product_events", {
      event_id = id, event_time = at, event_type = kind,
      product_id = p.productId, user_id = p.userId or "", query = p.query or "",
      score = p.score or 0, category = product and product.category or "",
      brand = product and product.brand or "", price = product and product.price or 0,
    })
  end,
}
