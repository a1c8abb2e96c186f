-- user: every user event (user_login, user_purchase, user_view, ...) -> one
-- `user_activity` row, joined with the user's dimensions (lookup user_dim) and, when
-- the event names a product, its category (lookup product_dim).
local NEEDS = {
  user_purchase = { userId = "string", productId = "string", amount = "number" },
  user_view = { userId = "string", productId = "string?", page = "string?" },
}
local DEFAULT = { userId = "string" }

-- Money stays exact: an amount leaves as a decimal string with two places ("12.50")
-- for the DECIMAL column, never a binary float that arithmetic could turn into
-- 12.499999...; an amount with more than two decimals is rejected, not rounded.
local function money(ctx, amount)
  local cents = math.floor(amount * 100 + 0.5)
  if math.abs(amount * 100 - cents) > 1e-6 or math.abs(cents) >= 2^53 then
    ctx.reject(("payload.amount=%s is not an amount of money with at most 2 decimals"):format(amount))
  end
  local a = math.abs(cents)
  return ("%s%d.%02d"):format(cents < 0 and "-" or "", math.floor(a / 100), a % 100)
end

return {
  name = "user",
  routes = { { domain = "user", type = "*" } },
  process = function(ev, ctx)
    local p, action = ev.payload, ev.type
    ctx.check(p, NEEDS[action] or DEFAULT)
    local user = ctx.lookup("user_dim", p.userId)
    local product = p.productId and ctx.lookup("product_dim", p.productId)
    ctx.emit("user_activity", {
      event_id = ev.eventId, user_id = p.userId, action = action,
      product_id = p.productId, amount = p.amount and money(ctx, p.amount), page = p.page,
      event_time = ev.timestamp,
      user_level = user and user.level, user_city = user and user.city,
      user_register_time = user and user.register_time,
      product_category = product and product.category,
    })
  end,
}
