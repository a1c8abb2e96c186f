-- processors/order.lua: one order_wide row per order event, joined with user_dim.
local h = eddy.harness{
  lookups = { user_dim = { u1 = { level = "gold", city = "Lyon", register_time = "2024-03-01" } } },
}

local function order(type, payload, t)
  return eddy.event("order", type, payload, { timestamp = t, eventId = type .. "-" .. t })
end

test("a created order is one row with the user's dimensions", function()
  local r = h:send(order("order_create", { orderId = "o1", userId = "u1", amount = 12.5 }, 1000))
  expect.eq(#r.outputs.order_wide, 1, "rows")
  expect.eq(r.outputs.order_wide[1], {
    event_id = "order_create-1000", order_id = "o1", user_id = "u1", amount = "12.50",
    status = "created", status_time = 1000, created_time = 1000,
    last_event_id = "order_create-1000",
    user_level = "gold", user_city = "Lyon", user_register_time = "2024-03-01" })
  expect.eq(#r.dead, 0, "dead letters")
end)

test("a user not in user_dim leaves the user columns out", function()
  local r = h:send(order("order_pay", { orderId = "o2", userId = "nobody", amount = 3 }, 2000))
  expect.eq(r.outputs.order_wide[1], {
    event_id = "order_pay-2000", order_id = "o2", user_id = "nobody", amount = "3.00",
    status = "paid", status_time = 2000, paid_time = 2000, last_event_id = "order_pay-2000" })
end)

-- The status never regresses: the sink keeps the row whose status_time (the event's
-- time) is newest (sink.order_wide.sequence.column), so each row must carry its own
-- event's time, whatever the arrival order.
test("a late pay after a cancel carries its own, older, status time", function()
  local c = h:send(order("order_cancel", { orderId = "o3", userId = "u1", amount = 5 }, 9000))
  local p = h:send(order("order_pay", { orderId = "o3", userId = "u1", amount = 5 }, 8000))
  expect.has(c.outputs.order_wide[1], { status = "cancelled", status_time = 9000, cancelled_time = 9000 })
  expect.has(p.outputs.order_wide[1], { status = "paid", status_time = 8000, paid_time = 8000 })
end)

test("a negative amount is dead-lettered as rejected", function()
  local r = h:send(order("order_create", { orderId = "o4", userId = "u1", amount = -1 }, 3000))
  expect.eq(#r.outputs.order_wide, 0, "rows")
  expect.has(r.dead[1], { reason = "rejected", processor = "order" })
  assert(r.dead[1].detail:find("negative"), r.dead[1].detail)
end)

test("amounts leave as exact decimal strings; more than 2 decimals is rejected", function()
  local r = h:send(order("order_pay", { orderId = "o7", userId = "u1", amount = 0.1 + 0.2 }, 6000))
  expect.has(r.outputs.order_wide[1], { amount = "0.30" })
  r = h:send(order("order_pay", { orderId = "o7", userId = "u1", amount = 19.99 }, 6001))
  expect.has(r.outputs.order_wide[1], { amount = "19.99" })
  r = h:send(order("order_pay", { orderId = "o8", userId = "u1", amount = 12.345 }, 6002))
  expect.has(r.dead[1], { reason = "rejected" })
  assert(r.dead[1].detail:find("at most 2 decimals", 1, true), r.dead[1].detail)
end)

test("a payload field of the wrong type is dead-lettered, naming the field", function()
  local r = h:send(order("order_create", { orderId = "o5", userId = "u1", amount = "12" }, 4000))
  expect.has(r.dead[1], { processor = "order" })
  assert(r.dead[1].detail:find("amount"), r.dead[1].detail)
end)

test("an order type with no route is dead-lettered no_route", function()
  local r = h:send(order("order_refund", { orderId = "o6", userId = "u1", amount = 1 }, 5000))
  expect.has(r.dead[1], { reason = "no_route" })
end)
