# Custom metrics (ctx.metric): declared in the processor table, exported on /metrics as
# eddy_<processor>_<name> with the processor and the declared labels, kept across a
# reload, added up over the workers under the supervisor; misuse is an error naming it.

# pay_processor DIR VERSION
pay_processor() {
  cat > "$1/processors/pay.lua.tmp" <<LUA
return {
  name = "pay",
  routes = { { domain = "pay", type = "*" } },
  metrics = {
    paid_total = { type = "counter", help = "Payments by currency.", labels = { "currency" } },
    paid_cents_total = { type = "counter", help = "Cents paid.", labels = { "currency" } },
    last_cents = { type = "gauge", help = "The last payment's amount." },
  },
  process = function(ev, ctx)
    local p = ev.payload
    assert(ctx.metric.inc("paid_total", { currency = p.currency }))
    ctx.metric.inc("paid_cents_total", p.cents, { currency = p.currency })
    ctx.metric.set("last_cents", p.cents)
    if p.misuse == "undeclared" then ctx.metric.inc("nope") end
    if p.misuse == "labels" then ctx.metric.inc("paid_total", { cur = "x" }) end
    if p.misuse == "down" then ctx.metric.inc("paid_total", -1, { currency = "EUR" }) end
    if p.misuse == "set" then ctx.metric.set("paid_total", 5, { currency = "EUR" }) end
    ctx.emit("out", { v = "$2", id = ev.eventId })
  end,
}
LUA
  mv "$1/processors/pay.lua.tmp" "$1/processors/pay.lua"
}
pay() { printf '{"domain":"pay","type":"t","timestamp":1,"eventId":"%s","payload":{"currency":"%s","cents":%s%s}}\n' "$1" "$2" "$3" "${4:+,\"misuse\":\"$4\"}"; }
metrics_of() { curl -fsS "http://127.0.0.1:$(admin_port "$1/err")/metrics"; }
sample() { metrics_of "$1" | awk -v m="$2" '$1 == m { print $2 }'; }

d=$(newdir)
write_conf "$d" "source.file.path=$d/fifo" "admin.listen=127.0.0.1:0" "reload.watch=false"
pay_processor "$d" v1
fifo_eddy "$d"
wait_eval 'test -n "$(admin_port "$d/err")"'
{ pay e1 EUR 250; pay e2 EUR 100; pay e3 USD 999; } >&3
wait_eval 'test "$(sample "$d" '\''eddy_pay_paid_total{processor="pay",currency="EUR"}'\'')" = 2'
expect_eq "ctx.metric: a counter per label value" "2 1" \
  "$(sample "$d" 'eddy_pay_paid_total{processor="pay",currency="EUR"}') $(sample "$d" 'eddy_pay_paid_total{processor="pay",currency="USD"}')"
expect_eq "ctx.metric: inc by n" 350 "$(sample "$d" 'eddy_pay_paid_cents_total{processor="pay",currency="EUR"}')"
expect_eq "ctx.metric: a gauge set" 999 "$(sample "$d" 'eddy_pay_last_cents{processor="pay"}')"
check "ctx.metric: declared help and type are exported" bash -c \
  "curl -fsS 'http://127.0.0.1:$(admin_port "$d/err")/metrics' | grep -qx '# TYPE eddy_pay_paid_total counter' &&
   curl -fsS 'http://127.0.0.1:$(admin_port "$d/err")/metrics' | grep -qx '# HELP eddy_pay_paid_total Payments by currency.'"
check "ctx.metric: promtool accepts /metrics" bash -c "curl -fsS 'http://127.0.0.1:$(admin_port "$d/err")/metrics' | promtool check metrics"
# Misuse: each is a processor error (dead letter) naming what is wrong.
{ pay m1 EUR 1 undeclared; pay m2 EUR 1 labels; pay m3 EUR 1 down; pay m4 EUR 1 set; } >&3
wait_eval 'test "$(wc -l < "$d/dlq.ndjson" 2>/dev/null)" = 4'
check "ctx.metric: an undeclared metric is an error naming it" \
  grep -q "'nope' is not declared in the processor's metrics table" "$d/dlq.ndjson"
check "ctx.metric: a wrong label is an error naming the one needed" grep -q "paid_total needs label 'currency'" "$d/dlq.ndjson"
check "ctx.metric: a counter cannot go down" grep -q "counter paid_total cannot go down" "$d/dlq.ndjson"
check "ctx.metric: set is for gauges" grep -q "paid_total is a counter; use inc" "$d/dlq.ndjson"
# Kept across a reload.
pay_processor "$d" v2
kill -HUP "$PID"
wait_eval 'grep -q "processor pay reloaded" "$d/err"'
pay e4 EUR 1 >&3
wait_eval 'grep -q "\"v2\"" "$d/out.ndjson"'
# e1, e2, e4 and the four misuse events (counted before they failed): 7.
expect_eq "ctx.metric: values are kept across a reload" 7 \
  "$(sample "$d" 'eddy_pay_paid_total{processor="pay",currency="EUR"}')"
# A reload that changes a metric's labels is refused.
sed -i '/ paid_total = /s/labels = { "currency" }/labels = { "currency", "country" }/' "$d/processors/pay.lua"
curl -fsS -X POST "http://127.0.0.1:$(admin_port "$d/err")/-/reload" > /dev/null
last_error() { curl -fsS "http://127.0.0.1:$(admin_port "$d/err")/-/processors" | jq -r '.processors[0].last_reload_error'; }
wait_eval 'last_error | grep -q "metric paid_total"'
check "ctx.metric: a reload changing a metric's labels is refused, naming it" \
  grep -q "metric paid_total changed its type or labels" <<<"$(last_error)"
exec 3>&-
wait "$PID"

# A bad declaration stops the load, naming file and key.
d=$(newdir); write_conf "$d"
printf 'return {\n  routes = { { domain = "x", type = "*" } },\n  metrics = { n = { type = "histogram" } },\n  process = function() end,\n}\n' > "$d/processors/m.lua"
rc=0; got=$("$EDDY" check -c "$d/eddy.conf" 2>&1) || rc=$?
expect_eq "metrics: a bad type is refused at load" "eddy: $d/processors/m.lua: metrics.n.type must be \"counter\" or \"gauge\"/2" "$got/$rc"
printf 'return {\n  routes = { { domain = "x", type = "*" } },\n  metrics = { n = { type = "counter", lables = {} } },\n  process = function() end,\n}\n' > "$d/processors/m.lua"
rc=0; got=$("$EDDY" check -c "$d/eddy.conf" 2>&1) || rc=$?
check "metrics: a mistyped key in a declaration is refused, with the nearest one" \
  grep -q "unknown key 'lables' in a metric declaration; did you mean 'labels'?" <<<"$got"

# Two workers under the supervisor (a Kafka source): /metrics adds their samples up.
. tests/kafka_lib.sh
d=$(newdir)
start_mock "$d" 1 4 events,out,dlq
mkdir -p "$d/processors"
pay_processor "$d" v1
kafka_out_conf "$d" paygroup out "runtime.workers=2"
for i in $(seq 1 2000); do printf '%d\t' "$i"; pay "s$i" EUR 1; done | kcat -b "$BOOT" -P -t events -K $'\t'
start_eddy "$d" sup
wait_ge 2000 topic_count out
wait_for admin_up "$d/sup.err"
port=$(admin_port "$d/sup.err")
procs=$(curl -fsS "http://127.0.0.1:$port/-/processors")
check "supervisor: both workers ran the processor" \
  jq -e '[.workers[].processors[] | select(.name == "pay") | .events] | length == 2 and all(. > 0)' <<<"$procs"
expect_eq "supervisor: the counter is the sum over the workers" 2000 \
  "$(curl -fsS "http://127.0.0.1:$port/metrics" | awk '$1 == "eddy_pay_paid_total{processor=\"pay\",currency=\"EUR\"}" { print $2 }')"
stop_eddy sup
stop_mock
