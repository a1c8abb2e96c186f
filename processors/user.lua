-- user: every user event (user_login, user_purchase, user_view, ...) -> `user_activity`.
local NEEDS = {
  user_purchase = { userId = "string", productId = "string", amount = "number" },
  user_view = { userId = "string", productId = "string?", page = "string?" },
}
local DEFAULT = { userId = "string" }

return {
  name = "user",
  routes = { { domain = "user", type = "*" } },
  process = function(ev, ctx)
    local p, action = ev.payload, ev.type
    ctx.check(p, NEEDS[action] or DEFAULT)
    ctx.emit("user_activity", {
      event_id = ev.eventId, user_id = p.userId, action = action,
      product_id = p.productId, amount = p.amount, page = p.page,
      event_time = ev.timestamp,
    })
  end,
}
