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
printf '{"domain":"ids","type":"t","timestamp":9007199254740993,"eventId":"i1","payload":{"big":9007199254740993,"min":-9223372036854775808,"max":9223372036854775807,"small":42,"frac":0.1,"max_safe":9007199254740992}}\n' > "$d/in.ndjson"
run_eddy "$d"
# jq reads numbers as doubles, so the exact digits are checked in the raw text.
for kv in '"big":9007199254740993' '"max":9223372036854775807' '"min":-9223372036854775808' \
          '"roundtrip":9007199254740993' '"big_str":"9007199254740993"' '"joined":"id-9007199254740993"' \
          '"small":42' '"frac":0.1' '"cmp":true' '"ts":9007199254740993'; do
  check "int64: output holds $kv" grep -qF "$kv" "$d/out.ndjson"
done
