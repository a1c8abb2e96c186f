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
# The OLAP feed: every valid product event once more, as one row of the types
# conf/sql/clickhouse/product_events.sql declares (numbers for time, score and price;
# strings else).
jq -r .event_id "$d/product_events.ndjson" | sort > "$d/got-olap"
awk -F'\t' '$3 == "product_stats" { print $2 }' "$d/manifest.tsv" | sort > "$d/want-olap"
check "e2e: every valid product event exactly once in product_events" \
  bash -c "test -s \"$d/want-olap\" && diff \"$d/want-olap\" \"$d/got-olap\""
expect_eq "e2e: product_events rows have the ClickHouse table's columns and types" "" \
  "$(jq -c 'select((keys != ["brand","category","event_id","event_time","event_type","price","product_id","query","score","user_id"])
                   or ([.event_time, .score, .price] | map(type) | unique) != ["number"]
                   or ([.event_id, .event_type, .product_id, .user_id, .query, .category, .brand]
                       | map(type) | unique) != ["string"])' "$d/product_events.ndjson" | head -3)"

jq -r '(.origin.line|tostring) + "\tdlq:" + .reason' "$d/dead-letters.ndjson" | sort > "$d/got-dlq"
awk -F'\t' '$3 ~ /^dlq:/ { print $1 "\t" $3 }' "$d/manifest.tsv" | sort > "$d/want-dlq"
check "e2e: every invalid line exactly once in the dead letters, right reason" diff "$d/want-dlq" "$d/got-dlq"
check "e2e: the mix had invalid lines of 5+ kinds" \
  test "$(cut -f2 "$d/want-dlq" | sort -u | wc -l)" -ge 5
expect_eq "e2e: nothing lost: outputs + dead letters = input lines" 10000 \
  "$(( $(wc -l < "$d/got-valid") + $(wc -l < "$d/got-dlq") ))"
