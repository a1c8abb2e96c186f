-- processors/user.lua: one user_activity row per user event, with the user's
-- dimensions and, when the event names a product, the product's category.
local h = eddy.harness{
  lookups = {
    user_dim = { u1 = { level = "silver", city = "Oslo", register_time = "2023-05-02" } },
    product_dim = { p1 = { category = "books", brand = "Acme", price = 20 } },
  },
}

test("a purchase joins the user and the product", function()
  local r = h:send(eddy.event("user", "user_purchase",
                              { userId = "u1", productId = "p1", amount = 20 },
                              { eventId = "e1", timestamp = 1000 }))
  expect.eq(r.outputs.user_activity, { {
    event_id = "e1", user_id = "u1", action = "user_purchase", product_id = "p1",
    amount = "20.00", event_time = 1000, user_level = "silver", user_city = "Oslo",
    user_register_time = "2023-05-02", product_category = "books" } })
end)

test("any user event type is taken; one without a product has no category", function()
  local r = h:send(eddy.event("user", "user_login", { userId = "u1" }, { eventId = "e2", timestamp = 2000 }))
  expect.eq(r.outputs.user_activity[1], {
    event_id = "e2", user_id = "u1", action = "user_login", event_time = 2000,
    user_level = "silver", user_city = "Oslo", user_register_time = "2023-05-02" })
end)

test("a view keeps its page; unknown user and product leave their columns out", function()
  local r = h:send(eddy.event("user", "user_view", { userId = "u9", productId = "p9", page = "/p/9" },
                              { eventId = "e3", timestamp = 3000 }))
  expect.eq(r.outputs.user_activity[1], {
    event_id = "e3", user_id = "u9", action = "user_view", product_id = "p9", page = "/p/9",
    event_time = 3000 })
end)

test("a purchase without an amount is dead-lettered, naming the field", function()
  local r = h:send(eddy.event("user", "user_purchase", { userId = "u1", productId = "p1" }))
  expect.eq(#r.outputs.user_activity, 0, "rows")
  expect.has(r.dead[1], { processor = "user" })
  assert(r.dead[1].detail:find("amount"), r.dead[1].detail)
end)

test("an event with no userId is dead-lettered", function()
  local r = h:send(eddy.event("user", "user_login", {}))
  assert(r.dead[1] and r.dead[1].detail:find("userId"), "no dead letter naming userId")
end)
