# Config: every bad file in tests/config/bad gives exit 2 and exactly the message in
# its "# expect:" line ({file} is the file's own path); good configs expand and override.

for f in tests/config/bad/*.conf; do
  want=$(head -1 "$f" | sed -e 's/^# expect: //' -e "s|{file}|$f|")
  rc=0
  got=$("$EDDY" check -c "$f" 2>&1 >/dev/null) || rc=$?
  expect_eq "config $(basename "$f" .conf): message" "eddy: $want" "$got"
  expect_eq "config $(basename "$f" .conf): exit 2" 2 "$rc"
done

for f in tests/config/bad/secret_*.conf; do
  check "config $(basename "$f" .conf): the secret value is not echoed" \
    bash -c "! '$EDDY' check -c '$f' 2>&1 | grep -q hunter2"
done

d=$(newdir)
write_conf "$d" 'sink.env.type=file' 'sink.env.path=${EDDY_TEST_DIR}/${EDDY_TEST_NAME:-fallback}.ndjson  # comment' \
  'sink.hash.type=file' "sink.hash.path=$d/a#b.ndjson"
write_echo_processor "$d" echo order
export EDDY_TEST_DIR=$d
out=$("$EDDY" check -c "$d/eddy.conf" 2>&1)
expect_eq "config: \${VAR} and \${VAR:-default} expand, ' #' starts a comment" \
  "sink.env.path=$d/fallback.ndjson" "$(grep -o 'sink.env.path=.*' <<<"$out")"
expect_eq "config: '#' inside a value is kept" "sink.hash.path=$d/a#b.ndjson" \
  "$(grep -o 'sink.hash.path=.*' <<<"$out")"
out=$(EDDY_TEST_NAME=given "$EDDY" check -c "$d/eddy.conf" --set sink.out.path=/tmp/over.ndjson 2>&1)
expect_eq "config: environment wins over the default" "sink.env.path=$d/given.ndjson" \
  "$(grep -o 'sink.env.path=.*' <<<"$out")"
expect_eq "config: --set overrides the file" "sink.out.path=/tmp/over.ndjson" \
  "$(grep -o 'sink.out.path=.*' <<<"$out")"

rc=0; got=$("$EDDY" check -c "$d/eddy.conf" --set event.max.bytes=abc 2>&1) || rc=$?
expect_eq "config: a bad --set names its position" "eddy: --set:1: event.max.bytes: 'abc' is not an integer" "$got"
rc=0; got=$("$EDDY" check -c "$d/eddy.conf" --set nonsense 2>&1) || rc=$?
expect_eq "config: --set without '=' is refused" "eddy: --set:1: nonsense: expected key=value" "$got"
unset EDDY_TEST_DIR
rc=0; got=$("$EDDY" check -c "$d/missing.conf" 2>&1) || rc=$?
expect_eq "config: a missing file is named" "eddy: $d/missing.conf: cannot open: No such file or directory/2" "$got/$rc"

out=$("$EDDY" config)
for key in processors.dir source.type source.file.path 'sink.\*.type' 'sink.\*.path' dlq.sink \
           'route.\*.\*' event.max.bytes admin.listen log.level; do
  check "eddy config lists $key" grep -q "^$key " <<<"$out"
done
# Every key in the table is documented in the README, with its default.
while read -r key type def _; do
  [ "$key" = KEY ] && continue
  check "README documents $key (default $def)" grep -qF "\`$key\`" README.md
done <<<"$out"

# Every metric the code exports has its row in the README's metrics table.
grep -rhoE '"eddy_[a-z0-9_]+"' runtime/ | tr -d '"' | sort -u > "$T/metrics"
check "README's metrics table lists every metric the code exports" bash -c \
  'while read -r m; do grep -qF "| \`$m\` |" README.md || { echo "missing: $m"; bad=1; }; done < "$0"; [ -z "$bad" ]' "$T/metrics"

# Start-up is linear in the number of keys: 40,000 sink keys (20,000 sinks) are read,
# checked and printed well inside the bound, where the quadratic lookup took minutes.
d=$(newdir)
write_conf "$d"
write_echo_processor "$d" echo t
awk -v d="$d" 'BEGIN { for (i = 1; i <= 20000; i++) printf "sink.s%d.type=file\nsink.s%d.path=%s/s%d\n", i, i, d, i }' >> "$d/eddy.conf"
rc=0; timeout 30 "$EDDY" check -c "$d/eddy.conf" > "$d/check.txt" 2>&1 || rc=$?
expect_eq "config: 40,000 sink keys are checked inside 30 s" "0 20000" \
  "$rc $(grep -c '^  s[0-9]* (file)$' "$d/check.txt")"
