# ctx.geo: Haversine distance against GeographicLib's geodesic (GeodSolve, WGS84) for
# city pairs, the antimeridian and the poles; point in polygon.

d=$(newdir)
write_conf "$d"
cat > "$d/processors/g.lua" <<'LUA'
return {
  routes = { { domain = "geo", type = "*" } },
  process = function(ev, ctx)
    local p = ev.payload
    if ev.type == "distance" then
      ctx.emit("out", { id = ev.eventId, m = ctx.geo.haversine(p.lat1, p.lon1, p.lat2, p.lon2) })
    else
      ctx.emit("out", { id = ev.eventId, inside = ctx.geo.in_polygon(p.lat, p.lon, p.poly) })
    end
  end,
}
LUA
# name lat1 lon1 lat2 lon2
cat > "$d/pairs" <<'EOF'
london-newyork 51.5074 -0.1278 40.7128 -74.0060
paris-tokyo 48.8566 2.3522 35.6762 139.6503
sydney-losangeles -33.8688 151.2093 34.0522 -118.2437
beijing-shanghai 39.9042 116.4074 31.2304 121.4737
moscow-capetown 55.7558 37.6173 -33.9249 18.4241
saopaulo-lagos -23.5505 -46.6333 6.5244 3.3792
delhi-singapore 28.6139 77.2090 1.3521 103.8198
berlin-munich 52.5200 13.4050 48.1351 11.5820
fiji-samoa -17.7134 178.0650 -13.7590 -172.1046
anchorage-kamchatka 61.2181 -149.9003 53.0452 158.6483
northpole-oslo 90 0 59.9139 10.7522
southpole-ushuaia -90 0 -54.8019 -68.3030
quito-singapore -0.1807 -78.4678 1.3521 103.8198
EOF
: > "$d/in.ndjson"
while read -r name a b c e; do
  printf '{"domain":"geo","type":"distance","timestamp":1,"eventId":"%s","payload":{"lat1":%s,"lon1":%s,"lat2":%s,"lon2":%s}}\n' \
    "$name" "$a" "$b" "$c" "$e" >> "$d/in.ndjson"
done < "$d/pairs"
# A concave polygon (an L shape) and points inside its arms, in its notch, outside.
L='[[0,0],[0,10],[5,10],[5,5],[10,5],[10,0]]'
for pt in "in-arm1 2 8" "in-arm2 8 2" "notch 8 8" "outside -1 3" "corner-in 4 4"; do
  set -- $pt
  printf '{"domain":"geo","type":"polygon","timestamp":1,"eventId":"%s","payload":{"lat":%s,"lon":%s,"poly":%s}}\n' "$1" "$2" "$3" "$L" >> "$d/in.ndjson"
done
check "geo: run exits 0" "$EDDY" run -c "$d/eddy.conf"
bad=
while read -r name a b c e; do
  ref=$(echo "$a $b $c $e" | GeodSolve -i | awk '{ print $3 }')
  got=$(jq -r --arg n "$name" 'select(.id == $n) | .m' "$d/out.ndjson")
  ok=$(awk -v r="$ref" -v g="$got" 'BEGIN { e = (g - r) / r; if (e < 0) e = -e; print (e <= 0.005) ? "yes" : sprintf("%.4f%%", e * 100) }')
  [ "$ok" = yes ] || bad="$bad $name(ref $ref got $got off $ok)"
done < "$d/pairs"
expect_eq "geo: Haversine within 0.5% of GeodSolve for 13 pairs (antimeridian, poles)" "" "$bad"
expect_eq "geo: point in a concave polygon" \
  "in-arm1 true in-arm2 true notch false outside false corner-in true" \
  "$(jq -r 'select(.inside != null) | "\(.id) \(.inside)"' "$d/out.ndjson" | tr '\n' ' ' | sed 's/ $//')"
printf '{"domain":"geo","type":"distance","timestamp":1,"eventId":"bad","payload":{"lat1":91,"lon1":0,"lat2":0,"lon2":0}}\n' > "$d/in.ndjson"
"$EDDY" run -c "$d/eddy.conf" 2>/dev/null
check "geo: a latitude beyond 90 is an error naming it" grep -q 'latitude must be within' "$d/dlq.ndjson"
