-- order: order_create, order_pay, order_cancel -> one `order_wide` row per order, joined
-- with the user's dimensions (lookup user_dim). Events of one order may arrive in any
-- order: the sink's sequence.column (status_time, the event time) keeps the newest
-- status, and each event fills in its own time column (a NULL never overwrites).
-- Other order types are not routed here, so they are dead-lettered as no_route.
local STATUS = { order_create = "created", order_pay = "paid", order_cancel = "cancelled" }
local TIME_COLUMN = { order_create = "created_time", order_pay = "paid_time",
                      order_cancel = "cancelled_time" }
local PAYLOAD = { orderId = "string", userId = "string", amount = "number" }

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
    local user = ctx.lookup("user_dim", p.userId)
    -- Each ev field read once: a read is a call into eddy.
    local id, kind, at = ev.eventId, ev.type, ev.timestamp
    local row = {
      event_id = id, order_id = p.orderId, user_id = p.userId, amount = money(ctx, p.amount),
      status = STATUS[kind], status_time = at, last_event_id = id,
      user_level = user and user.level, user_city = user and user.city,
      user_register_time = user and user.register_time,
    }
    row[TIME_COLUMN[kind]] = at
    ctx.emit("order_wide", row)
  end,
}
