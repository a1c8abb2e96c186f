# Routing: an exact type wins over "*", route.<domain>.<type> overrides, conflicts name
# both processors, unrouted events are dead-lettered as no_route.

d=$(newdir)
write_conf "$d"
write_echo_processor "$d" wild order '*'
write_echo_processor "$d" exact order order_pay
{ event order order_pay e1; event order order_create e2; event user user_login e3; } > "$d/in.ndjson"
run_eddy "$d"
expect_eq "routing: exact type beats *" "exact" "$(jq -r 'select(.id=="e1").by' "$d/out.ndjson")"
expect_eq "routing: * takes the other types" "wild" "$(jq -r 'select(.id=="e2").by' "$d/out.ndjson")"
expect_eq "routing: unknown domain is no_route" "no_route user/user_login" \
  "$(jq -r '.reason + " " + (.raw|fromjson|.domain+"/"+.type)' "$d/dlq.ndjson")"

# Config overrides a declaration, whichever is more specific.
d2=$(newdir)
cp -r "$d/processors" "$d2/"; cp "$d/in.ndjson" "$d2/"
write_conf "$d2" 'route.order.order_pay=wild' 'route.user.*=exact'
run_eddy "$d2"
expect_eq "routing: route.order.order_pay=wild overrides the exact declaration" "wild" \
  "$(jq -r 'select(.id=="e1").by' "$d2/out.ndjson")"
expect_eq "routing: route.user.*=exact adds a route" "exact" "$(jq -r 'select(.id=="e3").by' "$d2/out.ndjson")"
out=$("$EDDY" check -c "$d2/eddy.conf")
check "routing: eddy check shows where a route came from" \
  grep -qE "^order +order_pay +wild +$d2/eddy.conf:9" <<<"$out"

# Two processors declaring the same pair: start-up error naming both.
d3=$(newdir)
write_conf "$d3"
write_echo_processor "$d3" first order order_pay
write_echo_processor "$d3" second order order_pay
rc=0; got=$("$EDDY" check -c "$d3/eddy.conf" 2>&1) || rc=$?
expect_eq "routing: a conflict exits 2" 2 "$rc"
check "routing: a conflict names both processors and the fix" grep -qF \
  "route conflict: first ($d3/processors/first.lua) and second ($d3/processors/second.lua) both declare domain=order type=order_pay; set route.order.order_pay=<processor> to choose one" <<<"$got"
echo 'route.order.order_pay=second' >> "$d3/eddy.conf"
check "routing: route.<d>.<t> settles a conflict" "$EDDY" check -c "$d3/eddy.conf"
