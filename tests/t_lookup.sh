# Lookup joins against a real MariaDB (started here): exact hit/miss counts, LRU and
# TTL, cache.missing.key, full-cache reloads, an outage mid-stream, the on.failure
# policies, and a key that tries SQL injection.
. tests/mysql_lib.sh
start_mariadb
sql "$(cat conf/sql/dimensions.sql conf/sql/sample-data.sql)"
expect_eq "lookup: sample dimension data loaded" "300/5000/800" \
  "$(sql 'SELECT (SELECT COUNT(*) FROM device_metadata), (SELECT COUNT(*) FROM user_dim), (SELECT COUNT(*) FROM product_dim)' | tr '\t' /)"

# names KEY...: the `name` field of each output line, "-" when not found.
names() { jq -r '.name // "-"' "$LIVE/out.ndjson" | tr '\n' ' '; }

# Partial cache, one event at a time: d-1 d-2 d-1 d-3 d-2 d-1 d-999 d-999.
d=$(newdir)
lookup_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" \
  lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.columns=name,type
write_lookup_processor "$d"
live_start "$d"
i=0; for k in d-1 d-2 d-1 d-3 d-2 d-1 d-999 d-999; do i=$((i + 1)); live_send "$(key_event "e$i" "$k")"; done
expect_eq "lookup: rows joined in order, nil for a missing key" \
  "sensor 1 sensor 2 sensor 1 sensor 3 sensor 2 sensor 1 - - " "$(names)"
expect_eq "lookup: hits/misses/loads exact for the key sequence" "4/4/4" \
  "$(live_metric 'eddy_lookup_hits_total{lookup="dev"}')/$(live_metric 'eddy_lookup_misses_total{lookup="dev"}')/$(live_metric 'eddy_lookup_loads_total{lookup="dev"}')"
expect_eq "lookup: cache holds the 3 rows and the missing key" 4 \
  "$(live_metric 'eddy_lookup_cache_rows{lookup="dev"}')"
expect_eq "lookup: one database connection opened and open, no failed attempt" "1/1/0" \
  "$(live_metric 'eddy_lookup_db_connected{lookup="dev"}')/$(live_metric 'eddy_lookup_db_connects_total{lookup="dev"}')/$(live_metric 'eddy_lookup_db_connect_failures_total{lookup="dev"}')"
curl -fsS "http://127.0.0.1:$LIVE_PORT/metrics" > "$d/metrics"
check "lookup: promtool accepts the lookup metrics" promtool check metrics < "$d/metrics"
# The key is bound, never spliced: an injection attempt is just a key with no row.
live_send "$(key_event inj "x' OR '1'='1")"
live_send "$(key_event inj2 "d-1'; DROP TABLE device_metadata; --")"
expect_eq "lookup: injection keys find nothing" "false false" \
  "$(tail -2 "$d/out.ndjson" | jq -r .found | tr '\n' ' ' | sed 's/ $//')"
expect_eq "lookup: the tables are intact" 300 "$(sql 'SELECT COUNT(*) FROM device_metadata')"
live_stop
expect_eq "lookup: exits 0 at the end of input" 0 "$LIVE_RC"
check "lookup: the password is never logged" bash -c "! grep -qF -- '$MY_PASSWORD' '$d/err' '$d/stdout'"

# cache.missing.key=false: a key without a row is asked for every time.
d=$(newdir)
lookup_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" \
  lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.cache.missing.key=false
write_lookup_processor "$d"
live_start "$d"
for i in 1 2 3; do live_send "$(key_event "m$i" d-999)"; done
expect_eq "lookup: cache.missing.key=false asks again each time" "0/3/0" \
  "$(live_metric 'eddy_lookup_hits_total{lookup="dev"}')/$(live_metric 'eddy_lookup_misses_total{lookup="dev"}')/$(live_metric 'eddy_lookup_cache_rows{lookup="dev"}')"
live_stop

# LRU: max.rows=2, keys d-1 d-2 d-3 d-1: d-3 evicts d-1, which then misses again.
d=$(newdir)
lookup_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" \
  lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.max.rows=2
write_lookup_processor "$d"
live_start "$d"
i=0; for k in d-1 d-2 d-3 d-1 d-3; do i=$((i + 1)); live_send "$(key_event "l$i" "$k")"; done
expect_eq "lookup: LRU evicts the least recently used row" "1/4/2/2" \
  "$(live_metric 'eddy_lookup_hits_total{lookup="dev"}')/$(live_metric 'eddy_lookup_misses_total{lookup="dev"}')/$(live_metric 'eddy_lookup_evictions_total{lookup="dev",cause="size"}')/$(live_metric 'eddy_lookup_cache_rows{lookup="dev"}')"
live_stop

# TTL: expire.after.write.ms=400. A change in MySQL shows only once the row expired.
d=$(newdir)
lookup_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" \
  lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.expire.after.write.ms=400
write_lookup_processor "$d"
live_start "$d"
live_send "$(key_event t1 d-7)"
sql "UPDATE device_metadata SET name='renamed 7' WHERE device_id='d-7'"
live_send "$(key_event t2 d-7)"
sleep 0.6
live_send "$(key_event t3 d-7)"
expect_eq "lookup: cached row until it expires, then the new one" \
  "sensor 7 sensor 7 renamed 7 " "$(names)"
expect_eq "lookup: the expiry is counted" 1 \
  "$(live_metric 'eddy_lookup_evictions_total{lookup="dev",cause="expired"}')"
live_stop
sql "UPDATE device_metadata SET name='sensor 7' WHERE device_id='d-7'"

# Full cache: loaded at start; a change appears after the next reload, not before; a
# reload against a stopped server keeps the old copy.
d=$(newdir)
lookup_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" \
  lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.cache=full \
  lookup.dev.reload.interval.ms=2000
write_lookup_processor "$d"
live_start "$d"
live_send "$(key_event f1 d-9)"
first=$(live_metric 'eddy_lookup_last_reload_timestamp_seconds{lookup="dev"}')
sql "UPDATE device_metadata SET name='moved 9' WHERE device_id='d-9'"
live_send "$(key_event f2 d-9)"
reloaded() { [ "$(live_metric 'eddy_lookup_last_reload_timestamp_seconds{lookup="dev"}')" != "$first" ]; }
if reloaded; then fail "lookup: full cache: the change is not seen before the reload (reloaded too early)"
else expect_eq "lookup: full cache: the change is not seen before the reload" "sensor 9" "$(tail -1 "$d/out.ndjson" | jq -r .name)"; fi
check "lookup: full cache reloads on its interval" wait_until reloaded
live_send "$(key_event f3 d-9)"
expect_eq "lookup: full cache: the change is seen after the reload" "moved 9" "$(tail -1 "$d/out.ndjson" | jq -r .name)"
expect_eq "lookup: full cache answers every key from memory" "3/0" \
  "$(live_metric 'eddy_lookup_hits_total{lookup="dev"}')/$(live_metric 'eddy_lookup_misses_total{lookup="dev"}')"
stop_mariadb
failed_reload() { [ "$(live_metric 'eddy_lookup_load_failures_total{lookup="dev"}')" -ge 1 ]; }
check "lookup: a reload against a stopped server fails" wait_until failed_reload
live_send "$(key_event f4 d-9)"
expect_eq "lookup: ... and the old copy keeps serving" "moved 9" "$(tail -1 "$d/out.ndjson" | jq -r .name)"
live_stop
start_mariadb
sql "UPDATE device_metadata SET name='sensor 9' WHERE device_id='d-9'"

# MariaDB stopped for 5 s mid-stream, cache=none so every event needs the server:
# every event comes out once, enriched, in input order.
d=$(newdir)
lookup_conf "$d" 'admin.listen=127.0.0.1:0' "source.file.path=$d/fifo" \
  lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.cache=none \
  mysql.retry.backoff.max.ms=500
write_lookup_processor "$d"
awk 'BEGIN { for (i = 1; i <= 2000; i++)
  printf "{\"domain\":\"t\",\"type\":\"x\",\"timestamp\":1,\"eventId\":\"o%d\",\"payload\":{\"k\":\"d-%d\"}}\n", i, i % 300 + 1 }' > "$d/all.ndjson"
live_start "$d"
head -1000 "$d/all.ndjson" >&4
wait_until out_lines_over 999
stop_mariadb
tail -1000 "$d/all.ndjson" >&4
sleep 5
waiting=$(live_metric 'eddy_events_waiting')
down=$(live_metric 'eddy_lookup_db_connected{lookup="dev"}')/$(live_metric 'eddy_lookup_db_connect_failures_total{lookup="dev"}')
start_mariadb
wait_until out_lines_over 1999
up=$(live_metric 'eddy_lookup_db_connected{lookup="dev"}')/$(live_metric 'eddy_lookup_db_connects_total{lookup="dev"}')
live_stop
check "lookup outage: events waited while MariaDB was down" test "${waiting:-0}" -gt 0
check "lookup outage: meanwhile the connection is down and attempts failed ($down)" \
  conn_is "$down" 0 1
check "lookup outage: afterwards it is open again, reconnected ($up)" conn_is "$up" 1 2
expect_eq "lookup outage: every event out once, enriched, in input order" \
  "$(seq 1 2000 | awk '{ printf "o%d\tsensor %d\n", $1, $1 % 300 + 1 }')" \
  "$(jq -r '[.id, .name // "-"] | @tsv' "$d/out.ndjson")"
expect_eq "lookup outage: nothing dead-lettered, exit 0" "0/0" "$(wc -l < "$d/dlq.ndjson")/$LIVE_RC"
check "lookup outage: the failure and the recovery are logged" \
  grep -q 'database answers again' "$d/err"

# on.failure after max.wait.ms with the server down: dlq dead-letters, null answers nil.
stop_mariadb
for policy in dlq null; do
  d=$(newdir)
  lookup_conf "$d" lookup.dev.table=device_metadata lookup.dev.key=device_id \
    lookup.dev.max.wait.ms=200 "lookup.dev.on.failure=$policy"
  write_lookup_processor "$d"
  for i in 1 2 3; do key_event "p$i" "d-$i"; done > "$d/in.ndjson"
  rc=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || rc=$?
  if [ $policy = dlq ]; then
    expect_eq "lookup on.failure=dlq: events dead-lettered as lookup_failed" \
      "lookup_failed lookup_failed lookup_failed /0" "$(jq -r .reason "$d/dlq.ndjson" | tr '\n' ' ')/$rc"
  else
    expect_eq "lookup on.failure=null: events go on without the row" \
      "false false false /0" "$(jq -r .found "$d/out.ndjson" | tr '\n' ' ')/$rc"
  fi
done
start_mariadb

# IoT enrichment: 100,000 readings over 10,000 devices (and 100 unknown ones), with
# some failing data-quality rules; the output must equal a join computed here.
sql "REPLACE INTO device_metadata (device_id, name, type, owner, fence_group)
     SELECT CONCAT('d-', seq), CONCAT('sensor ', seq), ELT(1 + seq % 3, 'tracker', 'thermometer', 'gateway'),
            CONCAT('owner-', 1 + seq % 17), IF(seq % 10 = 0, NULL, CONCAT('fence-', 1 + seq % 5))
     FROM seq_1_to_10000"
d=$(newdir)
lookup_conf "$d" "processors.dir=$ROOT/processors/iot" "rules.dir=$ROOT/conf/rules" \
  'sink.rich-iot-data.type=file' "sink.rich-iot-data.path=$d/rich.ndjson" \
  lookup.device_meta.table=device_metadata lookup.device_meta.key=device_id \
  lookup.device_meta.columns=name,type,owner,fence_group
awk -v M="$d/manifest.tsv" 'BEGIN { srand(11)
  for (i = 1; i <= 100000; i++) {
    dev = int(rand() * 10100) + 1; lat = rand() * 180 - 90; lon = rand() * 360 - 180
    temp = rand() * 100 - 30; rule = ""
    if (i % 997 == 0) { lat = 91.5; rule = "lat_range" }
    else if (i % 991 == 0) { temp = 120; rule = "temperature_range" }
    printf "{\"domain\":\"geofence\",\"type\":\"device_reading\",\"timestamp\":%d,\"eventId\":\"r%d\",\"payload\":{\"deviceId\":\"d-%d\",\"lat\":%.5f,\"lon\":%.5f,\"temperature\":%.1f,\"battery\":%d}}\n", 1700000000000 + i, i, dev, lat, lon, temp, i % 101
    printf "r%d\td-%d\t%s\n", i, dev, rule > M } }' > "$d/in.ndjson"
rc=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || rc=$?
expect_eq "iot: 100,000 readings, exit 0" 0 "$rc"
sql "SELECT device_id, name, type, owner, IFNULL(fence_group, '') FROM device_metadata" > "$d/devices.tsv"
awk -F'\t' 'NR == FNR { dev[$1] = $2 "\t" $3 "\t" $4 "\t" $5; next }
  $3 == "" { print $1 "\t" $2 "\t" ($2 in dev ? dev[$2] : "\t\t\t") }' "$d/devices.tsv" "$d/manifest.tsv" > "$d/expected.tsv"
jq -r '[.event_id, .device_id, .device_name // "", .device_type // "", .owner // "", .fence_group // ""] | @tsv' \
  "$d/rich.ndjson" > "$d/actual.tsv"
check "iot: rich-iot-data equals the join of readings and device_metadata" cmp "$d/expected.tsv" "$d/actual.tsv"
expect_eq "iot: readings failing a rule are dead-lettered naming it" \
  "$(awk -F'\t' '$3 != "" { print $1 "\trule " $3 }' "$d/manifest.tsv")" \
  "$(jq -r '[.eventId, (.detail | split(":")[0])] | @tsv' "$d/dlq.ndjson")"
expect_eq "iot: unknown devices are kept without metadata" \
  "$(awk -F'\t' '$3 == "" && substr($2, 3) + 0 > 10000' "$d/manifest.tsv" | wc -l)" \
  "$(jq -r 'select(.device_name == null) | .event_id' "$d/rich.ndjson" | wc -l)"

# The context guard: each ctx function tried in every kind of call, one error that
# names the call where it is out of place (a lookup may wait only in process() itself).
d=$(newdir)
lookup_conf "$d" lookup.dev.table=device_metadata lookup.dev.key=device_id lookup.dev.columns=name
cat > "$d/processors/guard.lua" <<'LUA'
local CTX, seen = nil, {}
local function WHY(err) return (tostring(err):gsub("^[^:]*:%d+: ", "")) end
local function probe(where, ctx)
  local function try(name, f)
    local ok, err = pcall(f)
    seen[#seen + 1] = where .. " " .. name .. ": " .. (ok and "ok" or WHY(err))
  end
  try("emit", function() ctx.emit("out", { probe = true }) end)
  try("state", function() ctx.state.get("k") end)
  try("timer", function() ctx.timer("k", nil) end)
  try("lookup", function() ctx.lookup("dev", "no-such-" .. where) end)
end
local function flush(ctx)
  for _, line in ipairs(seen) do ctx.emit("out", { line = line }) end
  seen = {}
end
return {
  routes = { { domain = "t", type = "*" } },
  windows = { w = { kind = "tumbling", size_ms = 1000, key = "payload.k",
    add = function(acc, ev) probe("add", CTX); return (acc or 0) + 1 end,
    result = function(acc) return acc end } },
  init = function(ctx) CTX = ctx; probe("init", ctx) end,
  process = function(ev, ctx)
    probe("process", ctx)
    local co = coroutine.wrap(function() return pcall(ctx.lookup, "dev", "no-such-co") end)
    local ok, err = co()
    seen[#seen + 1] = "coroutine lookup: " .. (ok and "ok" or WHY(err))
    ctx.timer("t", 500, "x")
    flush(ctx)
  end,
  on_window = function(win, ctx) probe("on_window", ctx); flush(ctx) end,
  on_timer = function(key, tag, ctx) probe("on_timer", ctx); flush(ctx) end,
}
LUA
{ key_event e1 d-1 | jq -c '.timestamp = 100'; key_event e2 d-2 | jq -c '.timestamp = 2100'; } > "$d/in.ndjson"
run_eddy "$d"
expect_eq "context guard: run exits 0" 0 "$RC"
expect_eq "context guard: what ctx allows in each kind of call, and the error elsewhere" \
"add emit: ctx.emit cannot be used in a window's add
add lookup: ctx.lookup cannot wait inside a window's add: 'dev' key no-such-add is not cached
add state: ok
add timer: ok
coroutine lookup: ctx.lookup cannot wait inside a coroutine of process() or a function called from C: 'dev' key no-such-co is not cached
init emit: ctx.emit cannot be used in init
init lookup: ctx.lookup cannot wait inside init: 'dev' key no-such-init is not cached
init state: ctx.state cannot be used in init
init timer: ctx.timer cannot be used in init
on_timer emit: ok
on_timer lookup: ctx.lookup cannot wait inside on_timer: 'dev' key no-such-on_timer is not cached
on_timer state: ok
on_timer timer: ok
on_window emit: ok
on_window lookup: ctx.lookup cannot wait inside on_window: 'dev' key no-such-on_window is not cached
on_window state: ok
on_window timer: ok
process emit: ok
process lookup: ok
process state: ok
process timer: ok" "$(jq -r 'select(.line) | .line' "$d/out.ndjson" | sort -u)"
