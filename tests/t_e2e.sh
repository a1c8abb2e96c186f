# End to end: 10,000 generated events of all four domains, ~5% broken on purpose,
# through the shipped processors. The generator's manifest says where each line must
# end up: every valid event exactly once in its sink, every invalid line exactly once
# in the dead-letter sink with the right reason.

. tests/mysql_lib.sh
ensure_dims
d=$(newdir)
luajit scripts/gen-events.lua 10000 7 5 "$d/manifest.tsv" > "$d/events.ndjson"
RC=0; E2E_DIR=$d "$EDDY" run -c tests/e2e.conf 2>"$d/err" || RC=$?
expect_eq "e2e: run over 10,000 events exits 0" 0 "$RC"

for s in order_wide user_activity product_stats device_locations; do
  jq -r --arg s "$s" '.event_id + "\t" + $s' "$d/$s.ndjson"
done | sort > "$d/got-valid"
awk -F'\t' '$3 !~ /^dlq:/ { print $2 "\t" $3 }' "$d/manifest.tsv" | sort > "$d/want-valid"
check "e2e: every valid event exactly once, in its sink" diff "$d/want-valid" "$d/got-valid"

jq -r '(.origin.line|tostring) + "\tdlq:" + .reason' "$d/dead-letters.ndjson" | sort > "$d/got-dlq"
awk -F'\t' '$3 ~ /^dlq:/ { print $1 "\t" $3 }' "$d/manifest.tsv" | sort > "$d/want-dlq"
check "e2e: every invalid line exactly once in the dead letters, right reason" diff "$d/want-dlq" "$d/got-dlq"
check "e2e: the mix had invalid lines of 5+ kinds" \
  test "$(cut -f2 "$d/want-dlq" | sort -u | wc -l)" -ge 5
expect_eq "e2e: nothing lost: outputs + dead letters = input lines" 10000 \
  "$(( $(wc -l < "$d/got-valid") + $(wc -l < "$d/got-dlq") ))"
