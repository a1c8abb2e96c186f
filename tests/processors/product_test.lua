-- processors/product.lua: per event, one product_stats row (a counter for the day,
-- summed by the sink) and one product_events row for ClickHouse.
local h = eddy.harness{
  lookups = { product_dim = { p1 = { category = "toys", brand = "Kite", price = 9.99 } } },
}

-- 2024-02-29T23:59:59Z and the next second, 2024-03-01 (UTC).
local LEAP_END, MARCH_1 = 1709251199000, 1709251200000

test("a view counts one view for the product's UTC day", function()
  local r = h:send(eddy.event("product", "product_view", { productId = "p1", userId = "u1" },
                              { eventId = "v1", timestamp = LEAP_END }))
  expect.eq(r.outputs.product_stats, { {
    event_id = "v1", product_id = "p1", stat_date = "2024-02-29", views = 1, searches = 0,
    recommends = 0, category = "toys", brand = "Kite", price = 9.99 } })
  expect.eq(r.outputs.product_events, { {
    event_id = "v1", event_time = LEAP_END, event_type = "product_view", product_id = "p1",
    user_id = "u1", query = "", score = 0, category = "toys", brand = "Kite", price = 9.99 } })
end)

test("the day turns at midnight UTC", function()
  local r = h:send(eddy.event("product", "product_search", { productId = "p1", query = "kite" },
                              { timestamp = MARCH_1 }))
  expect.has(r.outputs.product_stats[1], { stat_date = "2024-03-01", views = 0, searches = 1 })
  expect.has(r.outputs.product_events[1], { event_type = "product_search", query = "kite", user_id = "" })
end)

test("a recommendation keeps its score; an unknown product has empty dimensions", function()
  local r = h:send(eddy.event("product", "product_recommend",
                              { productId = "p404", userId = "u2", score = 0.75 }))
  expect.has(r.outputs.product_stats[1], { recommends = 1, product_id = "p404" })
  expect.eq(r.outputs.product_stats[1].category, nil, "category")
  expect.has(r.outputs.product_events[1], { score = 0.75, category = "", brand = "", price = 0 })
end)

test("an unknown product event type is rejected", function()
  local r = h:send(eddy.event("product", "product_delete", { productId = "p1" }))
  expect.has(r.dead[1], { reason = "rejected", processor = "product" })
  expect.eq(#r.outputs.product_stats + #r.outputs.product_events, 0, "outputs")
end)

test("a search without its query is dead-lettered, naming the field", function()
  local r = h:send(eddy.event("product", "product_search", { productId = "p1" }))
  assert(r.dead[1] and r.dead[1].detail:find("query"), "no dead letter naming query")
end)
