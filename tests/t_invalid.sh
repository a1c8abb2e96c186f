# Invalid events: each tests/events/invalid/<case>/input (one record, no newline) must
# reach the dead-letter sink once, with the reason in <case>/reason and the original
# bytes in `raw` (base64 when they are not UTF-8); nothing reaches the output sink.
# An optional <case>/conf adds config lines.

for c in tests/events/invalid/*/; do
  name=$(basename "$c")
  d=$(newdir)
  extra=(); [ -f "$c/conf" ] && mapfile -t extra < "$c/conf"
  write_conf "$d" "${extra[@]}"
  write_echo_processor "$d" order order order_pay
  { cat "$c/input"; echo; } > "$d/in.ndjson"
  run_eddy "$d"
  want=$(cat "$c/reason")
  got=$(jq -r '.reason' "$d/dlq.ndjson" 2>&1 | tr '\n' ' ')
  expect_eq "invalid $name: dead-lettered once as $want" "$want " "$got"
  expect_eq "invalid $name: nothing emitted, exit 0" "0/0" "$(wc -l < "$d/out.ndjson")/$RC"
  expect_eq "invalid $name: origin is line 1 of the input" "$d/in.ndjson:1" \
    "$(jq -r '.origin.file + ":" + (.origin.line|tostring)' "$d/dlq.ndjson" 2>&1)"
  if [ "$(jq -r '.raw_encoding // "utf8"' "$d/dlq.ndjson")" = base64 ]; then
    jq -j '.raw' "$d/dlq.ndjson" | base64 -d > "$d/raw"
  else
    jq -j '.raw' "$d/dlq.ndjson" > "$d/raw"
  fi
  check "invalid $name: raw holds the original bytes" cmp "$d/raw" "$c/input"
done
