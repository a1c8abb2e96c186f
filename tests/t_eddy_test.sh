# eddy test: the shipped processors' test files pass; a broken copy of each processor
# fails with a diff that names the field; TAP and JUnit output; exit codes; fixtures.

out=$T/shipped.tap
rc=0; "$EDDY" test --junit "$T/shipped.xml" > "$out" 2> "$T/shipped.err" || rc=$?
expect_eq "shipped tests: exit 0" 0 "$rc"
check "shipped tests: every processor has a test file, all pass" bash -c "
  for p in order user product geofence iot_enrich; do
    grep -q \"^ok [0-9]* - tests/processors/\${p}_test.lua: \" '$out' || { echo \"no passing test of \$p\"; exit 1; }
  done
  ! grep -q '^not ok' '$out' && grep -qx '# [0-9]* passed, 0 failed' '$out'"
check "shipped tests: TAP plan matches the results" bash -c "
  n=\$(grep -c '^ok ' '$out'); grep -qx \"1..\$n\" '$out'"
check "shipped tests: JUnit XML parses and counts the same tests, no failure" python3 -c "
import sys, xml.etree.ElementTree as E
r = E.parse('$T/shipped.xml').getroot()
n = sum(1 for _ in r.iter('testcase'))
tap = sum(1 for l in open('$out') if l.startswith('ok '))
sys.exit(0 if n == tap and r.get('failures') == '0' and not list(r.iter('failure')) else 1)"

# broken NAME FILE SED FIELD: the shipped processors with FILE (under processors/)
# changed by SED; its test file exits 1 and a failure says "differs at [...]FIELD".
broken() {
  local d rc=0 got
  d=$(newdir)
  cp -r processors "$d/p"
  sed -i "$3" "$d/p/$2"
  if cmp -s "processors/$2" "$d/p/$2"; then fail "$1" "the sed changed nothing"; return; fi
  got=$("$EDDY" test --set "processors.dir=$(dirname "$d/p/$2")" \
          "tests/processors/$(basename "$2" .lua)_test.lua" 2>&1) || rc=$?
  if [ "$rc" = 1 ] && grep -q "^not ok" <<<"$got" &&
     grep -Eq "differs at (.*[].])?$4\$" <<<"$got"; then
    pass "$1"
  else
    fail "$1" "exit $rc" "$(grep -A3 '^not ok' <<<"$got" | head -8)"
  fi
}
broken "broken order (status fixed): fails naming status" order.lua \
  's/status = STATUS\[kind\]/status = "created"/' status
broken "broken user (no product category): fails naming product_category" user.lua \
  's/product_category = product and product.category,/product_category = nil,/' product_category
broken "broken product (counts 2): fails naming views" product.lua \
  's/row\[COUNTER\[kind\]\] = 1/row[COUNTER[kind]] = 2/' views
broken "broken geofence (window start as end): fails naming window_end" geofence.lua \
  's/window_start = win.start, window_end = win\["end"\]/window_start = win.start, window_end = win.start/' window_end
broken "broken iot_enrich (owner from the name): fails naming owner" iot/iot_enrich.lua \
  's/owner = dev.owner,/owner = dev.name,/' owner

# A test of one's own, next to a processor: fixtures, state, windows, TAP details.
d=$(newdir); write_conf "$d"
cat >> "$d/eddy.conf" <<CONF
lookup.rate.table=rates
lookup.rate.key=currency
CONF
cat > "$d/processors/pay.lua" <<'LUA'
return {
  name = "pay",
  routes = { { domain = "pay", type = "*" } },
  windows = { total = { kind = "tumbling", size_ms = 10000, key = "payload.user",
                        agg = "count" } },
  process = function(ev, ctx)
    local rate = ctx.lookup("rate", ev.payload.currency)
    if not rate then ctx.reject("no rate for " .. ev.payload.currency) end
    local cents = ev.payload.cents * rate.per_eur
    ctx.state.set(ev.payload.user, (ctx.state.get(ev.payload.user) or 0) + cents)
    ctx.emit("out", { user = ev.payload.user, eur_cents = cents })
    ctx.timer(ev.payload.user, ctx.now() + 3600000, "remind", "processing")
  end,
  on_window = function(win, ctx)
    ctx.emit("out", { user = win.key, payments = win.result, window_end = win["end"] })
  end,
  on_timer = function(key, tag, ctx)
    ctx.emit("out", { user = key, timer = tag })
  end,
}
LUA
cat > "$d/processors/pay_test.lua" <<'LUA'
local h = eddy.harness{ config = os.getenv("CONF"),
                        lookups = { rate = { EUR = { per_eur = 1 }, USD = { per_eur = 0.5 } } } }
local function pay(user, cents, cur, t)
  return eddy.event("pay", "paid", { user = user, cents = cents, currency = cur }, { timestamp = t })
end
test("converted, summed in state, counted in a window", function()
  expect.eq(h:send(pay("ann", 200, "USD", 1000)).outputs.out, { { user = "ann", eur_cents = 100 } })
  h:send(pay("ann", 50, "EUR", 2000))
  expect.eq(h:state("pay", "ann"), 150, "ann's total")
  expect.eq(h:state("pay", "bob"), nil, "bob's total")
  local r = h:advance{ watermark = 10000 }
  expect.eq(r.outputs.out, { { user = "ann", payments = 2, window_end = 10000 } })
end)
test("processing-time timers fire when the test moves the clock", function()
  local now = os.time() * 1000
  expect.eq(h:advance{ clock = now + 60000 }.outputs.out, {}, "an hour not yet passed")
  expect.eq(h:advance{ clock = now + 2 * 3600000 }.outputs.out, { { user = "ann", timer = "remind" } })
end)
test("a currency with no rate is a dead letter with the reason", function()
  local r = h:send(pay("bob", 1, "GBP", 3000))
  expect.has(r.dead[1], { reason = "rejected", detail = "no rate for GBP", processor = "pay" })
end)
test("a failing comparison (deliberate)", function()
  expect.has({ a = { b = { 1, { c = "x" } } } }, { a = { b = { 1, { c = "y" } } } }, "nested")
end)
LUA
rc=0; got=$(CONF=$d/eddy.conf "$EDDY" test --junit "$d/j.xml" "$d/processors/pay_test.lua" 2>&1) || rc=$?
expect_eq "own test: one deliberate failure exits 1" 1 "$rc"
check "own test: fixtures, state and the window pass" grep -q "^ok 1 - .*pay_test.lua: converted, summed in state, counted in a window" <<<"$got"
check "own test: processing-time timers fire by the test's clock" grep -q "^ok 2 - .*processing-time timers fire" <<<"$got"
check "own test: the dead letter's reason passes" grep -q "^ok 3 - .*a currency with no rate" <<<"$got"
check "own test: the failure names file, line and the nested field" \
  grep -q "^  # .*pay_test.lua:24: nested: differs at a.b\[2\].c$" <<<"$got"
check "own test: expected and actual values are shown" bash -c \
  "grep -q '^  #     expected: \"y\"' <<<'$got' && grep -q '^  #     actual:   \"x\"' <<<'$got'"
check "own test: JUnit XML has the failure with its message" python3 -c "
import sys, xml.etree.ElementTree as E
r = E.parse('$d/j.xml').getroot()
f = list(r.iter('failure'))
sys.exit(0 if r.get('failures') == '1' and len(f) == 1 and 'differs at a.b[2].c' in f[0].text else 1)"
check "own test: a *_test.lua next to processors is not loaded as a processor" bash -c \
  "'$EDDY' check -c '$d/eddy.conf' | grep -q '^  pay ' && ! '$EDDY' check -c '$d/eddy.conf' | grep -q pay_test"

# Errors of the test file itself.
printf 'test("x", function()\n  local = 1\nend)\n' > "$d/syntax_test.lua"
rc=0; got=$("$EDDY" test "$d/syntax_test.lua" 2>&1) || rc=$?
expect_eq "a test file that does not compile fails (exit 1)" 1 "$rc"
check "... naming the file and line" grep -q "not ok 1 - .*syntax_test.lua: (load)" <<<"$got"
check "... and the error" grep -q "syntax_test.lua:2: " <<<"$got"
printf 'local h = eddy.harness{ lookups = { nope = {} } }\ntest("x", function() end)\n' > "$d/nolookup_test.lua"
rc=0; got=$("$EDDY" test "$d/nolookup_test.lua" 2>&1) || rc=$?
check "a fixture for a lookup the config lacks is an error naming it" \
  grep -q "lookups: the config has no lookup named 'nope'" <<<"$got"
rc=0; "$EDDY" test "$T/none/*_test.lua" > /dev/null 2>&1 || rc=$?
expect_eq "a missing test file fails (exit 1)" 1 "$rc"
rc=0; (cd "$(newdir)" && "$EDDY" test > /dev/null 2>&1) || rc=$?
expect_eq "no test files at all: exit 2" 2 "$rc"
