#!/usr/bin/env bash
# make demo: generate events of all four domains (some broken on purpose), run eddy on
# them with conf/demo.conf, and show what came out, the dead letters and the metrics.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${DEMO_EVENTS:-5000}
export DEMO_DIR=${DEMO_DIR:-$PWD/demo-out}
rm -rf "$DEMO_DIR"; mkdir -p "$DEMO_DIR"

echo "== generating $COUNT events (about 3% broken on purpose) into $DEMO_DIR/events.ndjson"
luajit scripts/gen-events.lua "$COUNT" 42 3 > "$DEMO_DIR/events.ndjson"
head -2 "$DEMO_DIR/events.ndjson"

echo; echo "== bin/eddy check -c conf/demo.conf"
bin/eddy check -c conf/demo.conf | sed -n '/^processors:/,$p'

echo; echo "== bin/eddy run -c conf/demo.conf (input from stdin, held open 2 s to read /metrics)"
{ cat "$DEMO_DIR/events.ndjson"; sleep 2; } |
  bin/eddy run -c conf/demo.conf --set source.file.path=- 2> "$DEMO_DIR/eddy.log" &
pid=$!
port=
for _ in $(seq 50); do
  port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$DEMO_DIR/eddy.log" 2>/dev/null | cut -d: -f2) || true
  [ -n "$port" ] && break
  sleep 0.1
done
sleep 1
if [ -n "$port" ]; then
  echo "GET http://127.0.0.1:$port/metrics (excerpt):"
  curl -fsS "http://127.0.0.1:$port/metrics" | grep -E '^eddy_(events_in|events_out|dead_letters|processor_errors)_total'
fi
wait "$pid"
cat "$DEMO_DIR/eddy.log"

echo; echo "== outputs (one NDJSON file per sink)"
for f in orders user_activity product_events device_locations; do
  printf '%-18s %6d records  e.g. %s\n' "$f" "$(wc -l < "$DEMO_DIR/$f.ndjson")" "$(head -1 "$DEMO_DIR/$f.ndjson")"
done
echo; echo "== dead letters by reason ($DEMO_DIR/dead-letters.ndjson)"
jq -r .reason "$DEMO_DIR/dead-letters.ndjson" | sort | uniq -c | sort -rn
echo "first one:"
head -1 "$DEMO_DIR/dead-letters.ndjson" | jq .
