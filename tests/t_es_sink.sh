# Elasticsearch sink against tests/es_mock.py, which checks each _bulk body line by line
# and answers like Elasticsearch: a whole 429, a 503, per-item 429s and a per-item 400.
# Every document is indexed exactly once by its _id; the refused one is dead-lettered.
d=$(newdir)
port=$(free_port)
mkdir -p "$d/processors"
cat > "$d/processors/es.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local n = ev.payload.n
    ctx.emit("es", { id = n and "doc-" .. n, n = n, bad = n == 7 or nil, ts = ev.timestamp })
  end,
}
LUA
for i in $(seq 1 300); do
  printf '{"domain":"t","type":"x","timestamp":1700000000000,"eventId":"e%d","payload":{"n":%d}}\n' "$i" "$i"
done > "$d/in.ndjson"
SECRET='s3cret-pw'
write_conf "$d" sink.es.type=elasticsearch "sink.es.url=http://127.0.0.1:$port" \
  'sink.es.index=alerts-%Y.%m' sink.es.id=id sink.es.time.field=ts sink.es.batch.docs=50 \
  sink.es.batch.ms=20 sink.es.retry.backoff.ms=50 sink.es.retry.backoff.max.ms=400 \
  sink.es.username=eddy "sink.es.password=$SECRET"
sed -i '/^sink\.out\./d' "$d/eddy.conf"
# eddy starts before Elasticsearch is up: its first requests cannot connect.
"$EDDY" run -c "$d/eddy.conf" 2>"$d/err" &
pid=$!
sleep 1
python3 tests/es_mock.py "$port" "$d/es.log" "Basic $(printf 'eddy:%s' "$SECRET" | base64)" &
mock=$!
RC=0; wait "$pid" || RC=$?
kill "$mock" 2>/dev/null; wait "$mock" 2>/dev/null
expect_eq "es sink: the run ends with every document acknowledged" 0 "$RC"
check "es sink: the connection errors before Elasticsearch was up were retried" \
  grep -q "request failed: Couldn't connect to server; .* sent again" "$d/err"
check "es sink: a whole 429 was retried, batch.docs documents" grep -q 'HTTP 429; 50 records sent again' "$d/err"
check "es sink: ... and a 503" grep -q 'HTTP 503; 50 records sent again' "$d/err"
check "es sink: per-item 429s were retried" grep -q 'refused for now (429 or 5xx); [0-9]* records sent again' "$d/err"
expect_eq "es sink: every _bulk body was well-formed NDJSON, with basic auth" "" \
  "$(grep -E '^(bad-request|auth-fail)' "$d/es.log")"
expect_eq "es sink: every document but the refused one indexed exactly once, by _id" \
  "299 1" "$(awk '$1 == "indexed" { print $3 }' "$d/es.log" | sort | uniq -c | awk '{ n++; if ($1 > m) m = $1 } END { print n, m }')"
expect_eq "es sink: the index pattern takes the date of time.field" "alerts-2023.11" \
  "$(awk '$1 == "indexed" { print $2 }' "$d/es.log" | sort -u)"
expect_eq "es sink: the document Elasticsearch refused is dead-lettered with its reason" \
  'sink_error sink es: elasticsearch refused the document (400 mapper_parsing_exception): failed to parse field [bad] {"bad":true,"id":"doc-7","n":7,"ts":1700000000000}' \
  "$(jq -r '"\(.reason) \(.detail)"' "$d/dlq.ndjson") $(jq -r .raw "$d/dlq.ndjson" | jq -cS .)"
check "es sink: the password never reaches the log" test "$(grep -c "$SECRET" "$d/err")" = 0

# An API key goes as "Authorization: ApiKey ..."; a record without its id is refused.
: > "$d/es.log"
python3 tests/es_mock.py "$port" "$d/es.log" "ApiKey a2V5OnNlY3JldA==" &
mock=$!
wait_until() { local i; for i in $(seq 100); do "$@" && return 0; sleep 0.1; done; return 1; }
wait_until bash -c "echo > /dev/tcp/127.0.0.1/$port" 2>/dev/null
sed -i '/^sink\.es\.\(username\|password\)=/d' "$d/eddy.conf"
echo 'sink.es.api.key=a2V5OnNlY3JldA==' >> "$d/eddy.conf"
: > "$d/dlq.ndjson"
{ head -3 "$d/in.ndjson"; printf '{"domain":"t","type":"x","timestamp":1,"eventId":"nokey","payload":{}}\n'; } > "$d/in2.ndjson"
sed -i "s|^source.file.path=.*|source.file.path=$d/in2.ndjson|" "$d/eddy.conf"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err2" || RC=$?
kill "$mock" 2>/dev/null; wait "$mock" 2>/dev/null
expect_eq "es sink: with an API key the run succeeds" 0 "$RC"
expect_eq "es sink: ... and the mock saw the ApiKey header" "" "$(grep auth-fail "$d/es.log")"
check "es sink: ... and indexed the documents" test "$(grep -c '^indexed' "$d/es.log")" = 3
check "es sink: a record without its id field is dead-lettered, saying so" \
  grep -q "record has no id field 'id'" "$d/dlq.ndjson"
