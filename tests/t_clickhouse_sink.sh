# ClickHouse sink against a real ClickHouse server (Debian's clickhouse-server): rows
# land over the HTTP interface as JSONEachRow; a replay into a ReplacingMergeTree
# leaves the FINAL count unchanged; one bad row is dead-lettered with ClickHouse's
# error and the rest written; the server stopped mid-stream loses nothing.
. tests/clickhouse_lib.sh
start_clickhouse

# new_table NAME: a fresh table (TRUNCATE is not used: ClickHouse 18.16 brings the
# truncated parts back on restart).
new_table() {
  chq "CREATE TABLE $1 (id String, k String, n UInt32, ts UInt64)
       ENGINE = ReplacingMergeTree ORDER BY id"
}

# ch_conf DIR TABLE [key=value...]: a file source, a processor writing three payload
# fields and the event id to TABLE, dead letters to DIR/dlq.ndjson.
ch_conf() {
  local d=$1 table=$2; shift 2
  write_conf "$d" sink.ch.type=clickhouse "sink.ch.url=http://127.0.0.1:$CH_PORT" \
    sink.ch.database=eddy "sink.ch.table=$table" sink.ch.username=eddy \
    "sink.ch.password=$CH_PASSWORD" sink.ch.retry.backoff.max.ms=500 "$@"
  sed -i '/^sink\.out\./d' "$d/eddy.conf"
  cat > "$d/processors/ch.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    ctx.emit("ch", { id = ev.eventId, k = p.k, n = p.n, ts = ev.timestamp })
  end,
}
LUA
}
ch_events() {   # FROM TO: events e<i> with n=i
  awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++)
    printf "{\"domain\":\"t\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\",\"n\":%d}}\n", i, i, i % 7, i }'
}

# 100,000 rows land; a replay of the same input leaves the FINAL count unchanged.
new_table ev
d=$(newdir); ch_conf "$d" ev sink.ch.batch.rows=10000
ch_events 1 100000 > "$d/in.ndjson"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || RC=$?
expect_eq "clickhouse sink: 100,000 events: exits 0" 0 "$RC"
expect_eq "clickhouse sink: 100,000 rows in the table, sum of n as sent" "100000 5000050000" \
  "$(chq 'SELECT count(), sum(n) FROM ev' | tr '\t' ' ')"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err2" || RC=$?
expect_eq "clickhouse sink: the replay exits 0" 0 "$RC"
expect_eq "clickhouse sink: after the replay, SELECT count() FROM ev FINAL is still 100,000" \
  "100000 100000" "$(chq 'SELECT count(), uniqExact(id) FROM ev FINAL' | tr '\t' ' ')"
check "clickhouse sink: nothing was dead-lettered" test ! -s "$d/dlq.ndjson"
check "clickhouse sink: the password never reaches the log" \
  test "$(cat "$d/err" "$d/err2" | grep -c "$CH_PASSWORD")" = 0

# One bad row among 1,000 (a string in a UInt32 column): dead-lettered with
# ClickHouse's error, the other 999 written.
new_table bad
d=$(newdir); ch_conf "$d" bad sink.ch.batch.rows=1000 sink.ch.batch.ms=5000
ch_events 1 1000 | sed 's/"n":500}/"n":"five hundred"}/' > "$d/in.ndjson"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" --set admin.listen=127.0.0.1:0 || RC=$?
expect_eq "clickhouse sink: 1,000 rows with one bad: exits 0" 0 "$RC"
expect_eq "clickhouse sink: the other 999 rows are in the table, n=500 not among them" "999 0" \
  "$(chq 'SELECT count(), countIf(n = 500) FROM bad' | tr '\t' ' ')"
expect_eq "clickhouse sink: the bad row is dead-lettered with ClickHouse's error" \
  "1 sink_error e500 five hundred" \
  "$(jq -sr '"\(length) \(.[0].reason) \(.[0].raw | fromjson | "\(.id) \(.n)")"' "$d/dlq.ndjson")"
check "clickhouse sink: ... whose text says what ClickHouse could not parse" \
  grep -q 'sink ch: clickhouse refused the row: Code: 27, e.displayText() = DB::Exception: Cannot parse input' \
  <(jq -r .detail "$d/dlq.ndjson")
check "clickhouse sink: the refused INSERT was split to find the row, no more than 2 log2(n) times" \
  test "$(grep -c 'refused for their data (code 27); split in halves' "$d/err")" -le 20

# A record that is not an object (a Lua array) is dead-lettered before the INSERT,
# which would fail whole for it; the rows around it are written.
new_table arr
d=$(newdir); ch_conf "$d" arr sink.ch.batch.rows=100
sed -i 's/^    ctx.emit("ch", {/    if p.n == 3 then ctx.emit("ch", { p.n, p.k }) return end\n&/' "$d/processors/ch.lua"
ch_events 1 5 > "$d/in.ndjson"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || RC=$?
expect_eq "clickhouse sink: an array record: exits 0" 0 "$RC"
expect_eq "clickhouse sink: ... the other 4 rows are in the table" "4 0" \
  "$(chq 'SELECT count(), countIf(n = 3) FROM arr' | tr '\t' ' ')"
expect_eq "clickhouse sink: ... and the array is dead-lettered as not a JSON object" \
  'sink_error sink ch: not a JSON object [3,"k3"]' \
  "$(jq -r '"\(.reason) \(.detail) \(.raw)"' "$d/dlq.ndjson")"

# ClickHouse stopped for 5 s mid-stream: no row missing, the INSERTs sent again.
new_table outage
d=$(newdir); ch_conf "$d" outage sink.ch.batch.rows=500 sink.ch.batch.ms=50 \
  admin.listen=127.0.0.1:0 source.file.path=/dev/stdin
mkfifo "$d/fifo"
exec 5<>"$d/fifo"
"$EDDY" run -c "$d/eddy.conf" <"$d/fifo" 2>"$d/err" 5>&- &
pid=$!
ch_events 1 5000 >&5
rows_are() { [ "$(chq 'SELECT count() FROM outage')" = "$1" ]; }
wait_until rows_are 5000
stop_clickhouse
ch_events 5001 10000 >&5
sleep 5
check "clickhouse sink: while ClickHouse is down the INSERT is sent again" \
  bash -c 'grep -q "clickhouse sink ch: request failed: .* records sent again in" "$1" || ! tail -5 "$1"' _ "$d/err"
start_clickhouse
ch_events 10001 15000 >&5
wait_until rows_are 15000
aport=$(admin_port "$d/err")
curl -fsS "http://127.0.0.1:$aport/metrics" > "$d/metrics"
expect_eq "clickhouse sink: /metrics counts 15,000 rows inserted, none failed" "15000 0" \
  "$(awk '$1 == "eddy_clickhouse_rows_inserted_total{sink=\"ch\"}" { i = $2 }
          $1 == "eddy_clickhouse_rows_failed_total{sink=\"ch\"}" { f = $2 } END { print i, f }' "$d/metrics")"
check "clickhouse sink: ... and the retries of the outage" \
  awk '$1 == "eddy_clickhouse_retries_total{sink=\"ch\"}" && $2 > 0 { ok = 1 } END { exit !ok }' "$d/metrics"
check "clickhouse sink: promtool accepts the metrics" promtool check metrics < "$d/metrics"
exec 5>&-
RC=0; wait "$pid" || RC=$?
expect_eq "clickhouse sink: after the outage the run ends, exit 0" 0 "$RC"
expect_eq "clickhouse sink: every one of the 15,000 rows is in the table, once" "15000 15000" \
  "$(chq 'SELECT count(), uniqExact(id) FROM outage' | tr '\t' ' ')"

# Events routed straight to the sink (route.<domain>.*=sink:<name>, no processor): with
# a column list the envelope's fields land and the payload object is skipped.
chq "CREATE TABLE raw (domain String, type String, timestamp UInt64, eventId String)
     ENGINE = MergeTree ORDER BY eventId"
d=$(newdir); ch_conf "$d" raw 'route.t.*=sink:ch' sink.ch.columns=domain,type,timestamp,eventId
ch_events 1 1000 > "$d/in.ndjson"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || RC=$?
expect_eq "clickhouse sink, events routed to it: exits 0" 0 "$RC"
expect_eq "clickhouse sink, events routed to it: 1,000 rows, their envelopes as sent" \
  "1000 1000 t x 500500" \
  "$(chq 'SELECT count(), uniqExact(eventId), any(domain), any(type), sum(timestamp) FROM raw' | tr '\t' ' ')"
check "clickhouse sink, events routed to it: nothing was dead-lettered" test ! -s "$d/dlq.ndjson"

# Settings: a missing table, an identifier that is not a name, a URL with a query,
# each named with file and line; the password is masked where config is shown.
d=$(newdir); ch_conf "$d" ev
sed -i '/^sink\.ch\.table=/d' "$d/eddy.conf"
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
check "clickhouse sink: a missing table is an error naming file and line" \
  grep -q "$d/eddy.conf:[0-9]*: sink.ch.table: required for a clickhouse sink" <<<"$out"
echo 'sink.ch.table=ev;DROP TABLE ev' >> "$d/eddy.conf"
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
check "clickhouse sink: a table that is not a name is refused" \
  grep -q "eddy.conf:[0-9]*: sink.ch.table: must be a name of \[A-Za-z0-9_\]" <<<"$out"
sed -i 's/^sink\.ch\.table=.*/sink.ch.table=ev/' "$d/eddy.conf"
sed -i "s|^sink\.ch\.url=.*|&/?query=DROP|" "$d/eddy.conf"
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
check "clickhouse sink: a URL with its own query is refused" \
  grep -q "sink.ch.url: must not carry a query" <<<"$out"
sed -i 's|/?query=DROP$||' "$d/eddy.conf"
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
check "clickhouse sink: a good config checks, the password masked" \
  bash -c "grep -q '^config .*: ok' <<<\"\$1\" && ! grep -q '$CH_PASSWORD' <<<\"\$1\"" _ "$out"
