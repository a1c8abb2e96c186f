# The shipped geofence processor on a scripted route through the shipped fences
# (conf/rules/fences.json: group fence-1 may be within 3 km of hz-depot or in hz-east,
# never within 2.5 km of hz-airport; 30 s windows sliding every 5 s, alert at 60% of
# a window's points, cool-down 300 s). One point a second; the expected alerts,
# suppressions and resolutions are worked out by hand below.
. tests/mysql_lib.sh

d=$(newdir)
ensure_dims
sql "REPLACE INTO device_metadata (device_id, name, type, owner, fence_group) VALUES
     ('gf-1', 'route', 'tracker', 'test', 'fence-1'), ('gf-free', 'free', 'tracker', 'test', NULL)"
lookup_conf "$d" "rules.dir=$ROOT/conf/rules" $(grep -E '^lookup\.device_meta\.' conf/eddy.conf) \
  "sink.device_locations.type=file" "sink.device_locations.path=$d/locations.ndjson" \
  "sink.geofence_alerts.type=file" "sink.geofence_alerts.path=$d/alerts.ndjson" \
  "log.level=debug"
cp processors/geofence.lua "$d/processors/"

# Positions: the depot's centre; 2990 m and 3010 m due north of it (the fence's edge is
# 3000 m: 1 degree of latitude is 111195.08 m on the sphere of R = 6371008.8 m); 14 km
# north; the airport.
awk 'function pt(t, where,   lat, lon) {
       lat = 30.2741; lon = 120.1551
       if (where == "edge_in") lat += 0.026890
       if (where == "edge_out") lat += 0.027070
       if (where == "far") lat += 0.13
       if (where == "airport") { lat = 30.2295; lon = 120.4344 }
       printf "{\"domain\":\"geofence\",\"type\":\"device_location\",\"timestamp\":%d,\"eventId\":\"g%d\",\"payload\":{\"deviceId\":\"%s\",\"lat\":%.6f,\"lon\":%.6f}}\n",
         1700000000000 + t * 1000, t, dev, lat, lon }
  BEGIN { dev = "gf-1"
    for (t = 0; t < 60; t++) pt(t, "centre")            # A: home
    for (; t < 120; t++) pt(t, "far")                   # B: out: alert when 60% of a window is
    for (; t < 180; t++) pt(t, "centre")                # C: back: resolved
    for (; t < 240; t++) pt(t, t % 3 ? "edge_in" : "edge_out")  # D: jitter, 1/3 outside: nothing
    for (; t < 420; t++) pt(t, "far")                   # E, F: out again: cool-down, then alert
    for (; t < 480; t++) pt(t, "centre")                # G: back: resolved
    for (; t < 540; t++) pt(t, "airport")               # H: forbidden (and outside: cooling down)
    for (; t < 600; t++) pt(t, "centre")                # I: back: resolved
    dev = "gf-free"                                     # a device without a fence group
    for (t = 600; t < 660; t++) pt(t, "far") }' > "$d/in.ndjson"

RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err" || RC=$?
expect_eq "geofence: the route runs" 0 "$RC"
expect_eq "geofence: every report goes to device_locations" 660 "$(wc -l < "$d/locations.ndjson")"
# Window [s, s+30 s) fires at its end. B: [50,80) has 20 of 30 points out (the first at
# 60%): alert at 80. C: [105,135) has 15 out (50%): resolved at 135. D: at most 1/3 out.
# E: [225,255) has 20 out; the last alert was at 80, 175 s ago: suppressed, and so every
# 5 s until 375; at 380 the cool-down is over: alert. G: [405,435) 15 out: resolved.
# H: [470,500) has 20 points at the airport: forbidden alert at 500 (outside too, but
# cooling down since 380: suppressed 500..550); I: [525,555): resolved at 555.
expect_eq "geofence: exactly the expected alerts and resolutions, with deterministic ids" \
"gf-1|fence-1|outside|1700000080000|alert alert outside fence-1 80 20
gf-1|fence-1|outside|1700000135000|resolved resolved outside fence-1 135 15
gf-1|fence-1|outside|1700000380000|alert alert outside fence-1 380 30
gf-1|fence-1|outside|1700000435000|resolved resolved outside fence-1 435 15
gf-1|hz-airport|forbidden|1700000500000|alert alert forbidden hz-airport 500 20
gf-1|hz-airport|forbidden|1700000555000|resolved resolved forbidden hz-airport 555 15" \
  "$(jq -r '"\(.id) \(.status) \(.type) \(.fence) \((.window_end - 1700000000000) / 1000) \(.share * .points + 0.5 | floor)"' "$d/alerts.ndjson")"
expect_eq "geofence: cool-down suppressions, one per window (255..375 and 500..550)" \
  "36" "$(grep -c 'gf-1 outside fence-1 suppressed by the cool-down' "$d/err")"
expect_eq "geofence: each alert is logged at debug level, none at warn" "3 0" \
  "$(grep -c 'debug .*geofence alert gf-1|' "$d/err") $(grep -c 'warn .*geofence' "$d/err")"
expect_eq "geofence: nothing was dead-lettered" "" "$(jq -r '"\(.reason) \(.detail)"' "$d/dlq.ndjson" | sort | uniq -c)"

# A broken fences file stops the processor from loading, naming the fence.
mkdir -p "$d/badrules"
echo '{"device_lookup":"device_meta","group_column":"fence_group","window":{"size_ms":30000,"slide_ms":5000},"min_share":0.6,"cooldown_ms":300000,"sink":"geofence_alerts","fences":[{"id":"x","group":"g","kind":"maybe","circle":{"lat":1,"lon":2,"radius_m":3}}]}' > "$d/badrules/fences.json"
sed -i "s|^rules.dir=.*|rules.dir=$d/badrules|" "$d/eddy.conf"
RC=0; "$EDDY" run -c "$d/eddy.conf" 2>"$d/err2" || RC=$?
expect_eq "geofence: a fence of unknown kind refuses the start" 2 "$RC"
check "geofence: ... naming the fence" grep -q 'fence x: kind must be allowed or forbidden' "$d/err2"
# Leave the shared dimension tables as the sample data has them.
sql "DELETE FROM device_metadata WHERE device_id IN ('gf-1', 'gf-free')"
