# 64-bit integers keep their exact value from input payload to output record.

d=$(newdir)
write_conf "$d"
cat > "$d/processors/ids.lua" <<'LUA'
return {
  routes = { { domain = "ids", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    local again = ctx.json.decode(ctx.json.encode(p))
    ctx.emit("out", {
      big = p.big, min = p.min, max = p.max, small = p.small, frac = p.frac,
      big_str = tostring(p.big), cmp = p.big < p.max and p.min < p.big and p.big == again.big,
      joined = "id-" .. p.big, roundtrip = again.big, ts = ev.timestamp,
    })
  end,
}
LUA
printf '{"domain":"ids","type":"t","timestamp":253402300799999,"eventId":"i1","payload":{"big":9007199254740993,"min":-9223372036854775808,"max":9223372036854775807,"small":42,"frac":0.1,"max_safe":9007199254740992}}\n' > "$d/in.ndjson"
run_eddy "$d"
# jq reads numbers as doubles, so the exact digits are checked in the raw text.
for kv in '"big":9007199254740993' '"max":9223372036854775807' '"min":-9223372036854775808' \
          '"roundtrip":9007199254740993' '"big_str":"9007199254740993"' '"joined":"id-9007199254740993"' \
          '"small":42' '"frac":0.1' '"cmp":true' '"ts":253402300799999'; do
  check "int64: output holds $kv" grep -qF "$kv" "$d/out.ndjson"
done

# Integers past int64 are valid JSON: they arrive as doubles (as in JavaScript), in the
# payload and through ctx.json.decode, and the event is not dead-lettered. -0.0 stays
# negative zero on the way out.
d=$(newdir)
write_conf "$d"
cat > "$d/processors/wide.lua" <<'LUA'
return {
  routes = { { domain = "wide", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    local again = ctx.json.decode('{"n":-100000000000000000000,"s":"99999999999999999999"}')
    ctx.emit("out", { huge = p.huge, neg = p.neg, kind = type(p.huge), zero = p.zero,
                      nested = p.list[2], again = again.n, s = again.s,
                      signed = 1 / p.zero < 0, minus = -0.0 })
  end,
}
LUA
printf '%s\n' '{"domain":"wide","type":"t","timestamp":1,"eventId":"w1","payload":{"huge":18446744073709551616,"neg":-9223372036854775809,"zero":-0.0,"list":[1,12345678901234567890123,"9223372036854775808"]}}' > "$d/in.ndjson"
run_eddy "$d"
expect_eq "wide ints: nothing dead-lettered, exit 0" "0/0" "$(wc -l < "$d/dlq.ndjson")/$RC"
expect_eq "wide ints: values arrive as doubles" \
  '18446744073709552000 -9223372036854776000 number 12345678901234568000000 -1e+20 99999999999999999999' \
  "$(jq -r '[.huge, .neg, .kind, .nested, .again, .s] | map(tostring) | join(" ")' "$d/out.ndjson" 2>&1)"
for kv in '"zero":-0.0' '"minus":-0.0'; do
  check "negative zero: output holds $kv" grep -qF "$kv" "$d/out.ndjson"
done
check "negative zero: the processor sees the sign (1 / zero < 0)" grep -qF '"signed":true' "$d/out.ndjson"
