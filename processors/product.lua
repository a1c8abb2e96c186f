-- product: product_view, product_search, product_recommend -> `product_events`.
local NEEDS = {
  product_view = { productId = "string", userId = "string?" },
  product_search = { query = "string", userId = "string?" },
  product_recommend = { productId = "string", userId = "string", score = "number?" },
}

return {
  name = "product",
  routes = { { domain = "product", type = "*" } },
  process = function(ev, ctx)
    local kind = ev.type
    local need = NEEDS[kind]
    if not need then ctx.reject("unknown product event type " .. kind) end
    local p = ev.payload
    ctx.check(p, need)
    ctx.emit("product_events", {
      event_id = ev.eventId, kind = kind, product_id = p.productId,
      user_id = p.userId, query = p.query, score = p.score, event_time = ev.timestamp,
    })
  end,
}
