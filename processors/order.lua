-- order: order_create, order_pay, order_cancel -> one normalized row per event in `orders`.
-- Other order types are not routed here, so they are dead-lettered as no_route.
local STATUS = { order_create = "created", order_pay = "paid", order_cancel = "cancelled" }
local PAYLOAD = { orderId = "string", userId = "string", amount = "number" }

return {
  name = "order",
  routes = {
    { domain = "order", type = "order_create" },
    { domain = "order", type = "order_pay" },
    { domain = "order", type = "order_cancel" },
  },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.check(p, PAYLOAD)
    if p.amount < 0 then ctx.reject("payload.amount is negative") end
    ctx.emit("orders", {
      event_id = ev.eventId, order_id = p.orderId, user_id = p.userId,
      amount = p.amount, status = STATUS[ev.type], event_time = ev.timestamp,
    })
  end,
}
