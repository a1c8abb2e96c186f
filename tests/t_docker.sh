# The container files, checked without a Docker engine: docker-compose (Debian's) parses
# docker/compose.yml; the Dockerfile's runtime packages hold every library bin/eddy
# loads; the paths it copies exist; the shipped service config runs against the real
# parts (Kafka mock, MariaDB, Elasticsearch stand-in) under the supervisor, and every
# metric the Grafana dashboard queries is one its live /metrics exports. Also
# `make install` with PREFIX and the systemd unit.
. tests/kafka_lib.sh

DF=docker/Dockerfile
# The Dockerfile with continuation lines joined, one instruction per line.
df_lines() { sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' "$DF" | grep -v '^[[:space:]]*#'; }
# The instructions of the last stage (the runtime image).
df_runtime() { df_lines | awk '/^FROM / { buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }'; }
# The packages its `apt-get install` names.
df_runtime_pkgs() {
  df_runtime | grep 'apt-get install' | sed 's/.*apt-get install//; s/&&.*//' | tr ' ' '\n' |
    grep -v '^-' | grep -v '^$' | sort -u
}
# The package that holds a file (usrmerge: the path may be listed under /lib or /usr/lib).
pkg_of() {
  local f; f=$(readlink -f "$1")
  { dpkg -S "$f" 2>/dev/null || dpkg -S "${f#/usr}" 2>/dev/null || dpkg -S "/usr$f"; } |
    head -1 | cut -d: -f1
}
# Every installed package that `apt-get install PKGS...` would bring in (Depends and
# Pre-Depends, recursively), the named ones included.
dep_closure() {
  local todo=("$@") seen=" " p d
  while [ ${#todo[@]} -gt 0 ]; do
    p=${todo[0]}; todo=("${todo[@]:1}")
    [[ $seen == *" $p "* ]] && continue
    seen+="$p "
    for d in $(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" 2>/dev/null |
               tr ',|' '\n\n' | sed 's/([^)]*)//g; s/:any//g' | awk 'NF { print $1 }'); do
      todo+=("$d")
    done
  done
  echo "$seen" | tr ' ' '\n' | grep -v '^$' | sort -u
}

# --- Dockerfile ---
df_runtime_pkgs > "$T/df-pkgs"
check "dockerfile: the runtime stage installs packages" test -s "$T/df-pkgs"
check "dockerfile: the build stage is debian:bookworm, the runtime bookworm-slim" \
  bash -c "grep -q '^FROM debian:bookworm AS build' '$DF' && [ \"\$(grep '^FROM ' '$DF' | tail -1)\" = 'FROM debian:bookworm-slim' ]"
check "dockerfile: the build stage uses the README's install script and make" \
  bash -c "grep -q '^RUN bash scripts/deps.sh build' '$DF' && grep -q '^RUN make' '$DF'"
# The libraries eddy links by name (NEEDED). A sanitizer build (make asan-test) also
# links the sanitizer runtimes, which the image's plain build does not: they are left
# out, and so is what only they need.
needed_libs() {
  readelf -d "$EDDY" | awk '/NEEDED/ { gsub(/[][]/, "", $5); print $5 }' |
    grep -Ev '^lib(a|ub|l|t)san\.so' |
    while read -r lib; do ldd "$EDDY" | awk -v l="$lib" '$1 == l { print l, $3 }'; done
}
# Every library those load, themselves included.
loaded_libs() {
  needed_libs | while read -r lib path; do
    echo "$path"; ldd "$path" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
  done | sort -u
}
: > "$T/needed-missing"
needed_libs > "$T/needed"
while read -r lib path; do
  p=$(pkg_of "$path")
  # libc6 is in every Debian image; the rest must be named, not arrive by chance.
  [ "$p" = libc6 ] || grep -qx "$p" "$T/df-pkgs" || echo "$lib ($p)" >> "$T/needed-missing"
done < "$T/needed"
check "dockerfile: eddy links its six libraries and libc" test "$(wc -l < "$T/needed")" -ge 7
expect_eq "dockerfile: every library eddy links is a package the runtime stage names" "" \
  "$(cat "$T/needed-missing")"
# What the named packages pull in, plus what bookworm-slim has already (Essential).
{ dep_closure $(cat "$T/df-pkgs"); dpkg-query -W -f='${Package} ${Essential}\n' | awk '$2 == "yes" { print $1 }';
  dep_closure $(dpkg-query -W -f='${Package} ${Essential}\n' | awk '$2 == "yes" { print $1 }'); } |
  sort -u > "$T/df-closure"
: > "$T/ldd-missing"
for path in $(loaded_libs); do
  p=$(pkg_of "$path")
  grep -qx "$p" "$T/df-closure" || echo "$path ($p)" >> "$T/ldd-missing"
done
expect_eq "dockerfile: every library ldd shows comes with the runtime stage's packages" "" \
  "$(cat "$T/ldd-missing")"
: > "$T/copy-missing"
df_lines | awk '$1 == "COPY" && $2 !~ /^--from/ { for (i = 2; i < NF; i++) print $i }' |
  while read -r src; do compgen -G "$src" > /dev/null || echo "$src"; done > "$T/copy-missing"
expect_eq "dockerfile: every path it copies exists" "" "$(cat "$T/copy-missing")"
check "dockerfile: the build stage's packages hold every pkg-config module make uses" \
  bash -c 'for m in $(sed -n "s/^PKGS *:= *//p" Makefile); do
             p=$(pkg_of "$(pkg-config --variable=pcfiledir "$m")/$m.pc")
             sed -n "/^PKGS=(/,/^)/p" scripts/deps.sh | grep -qw -- "$p" || { echo "$m: $p"; exit 1; }
           done'
rt=$(df_runtime)
expect_eq "dockerfile: the runtime stage runs as the non-root user eddy" "USER eddy" \
  "$(grep '^USER ' <<<"$rt" | tail -1)"
check "dockerfile: conf, processors and rules volumes" \
  grep -q '^VOLUME \["/opt/eddy/processors", "/etc/eddy/rules", "/var/lib/eddy"\]' <<<"$rt"
port=$(awk '$1 == "EXPOSE" { print $2 }' <<<"$rt")
check "dockerfile: the exposed port is the admin port of the shipped config" \
  grep -q "^admin.listen=\${EDDY_ADMIN_LISTEN:-0.0.0.0:$port}" conf/service.conf
check "dockerfile: HEALTHCHECK asks /healthz on that port" \
  grep -q "^HEALTHCHECK .*curl -fsS http://127.0.0.1:$port/healthz" <<<"$rt"
check "dockerfile: STOPSIGNAL SIGTERM, and SIGHUP documented for reloads" \
  bash -c "grep -q '^STOPSIGNAL SIGTERM' '$DF' && grep -q 'SIGHUP reloads' '$DF'"
check "dockerfile: the image's config is conf/service.conf" \
  grep -q '^COPY conf/service.conf /etc/eddy/eddy.conf' "$DF"

# --- the shipped service config ---
expect_eq "service.conf: every \${VAR} has a default, so the image starts without any" "" \
  "$(grep -o '\${[A-Za-z_]*}' conf/service.conf | sort -u)"
check "service.conf: eddy check accepts it (dirs pointed at the repository)" \
  env EDDY_PROCESSORS_DIR=processors EDDY_RULES_DIR=conf/rules EDDY_STATE_DIR="$T/st" \
  "$EDDY" check -c conf/service.conf

# --- docker/compose.yml, through Debian's docker-compose ---
check "compose: docker-compose config accepts docker/compose.yml" \
  docker-compose -f docker/compose.yml config -q
sed 's/^    image: mariadb:10.11$/    image: mariadb:10.11\n    imagee: typo/' docker/compose.yml > docker/.compose-drift.yml
check "compose: ... and refuses a drifted copy (an unknown key)" \
  bash -c "! docker-compose -f docker/.compose-drift.yml config -q 2>/dev/null"
rm -f docker/.compose-drift.yml
docker-compose -f docker/compose.yml config 2>/dev/null |
  python3 -c 'import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))' > "$T/compose.json"
# cj FILTER: jq on the normalised compose file; vols: a service's volumes as
# {source, target} whatever form docker-compose wrote them in.
cj() { jq -r 'def vols: (.volumes // []) | map(if type == "string" then split(":") | {source: .[0], target: .[1]} else . end);'"$1" "$T/compose.json"; }
expect_eq "compose: the services" "clickhouse eddy elasticsearch generator grafana kafka mariadb prometheus" \
  "$(cj '.services | keys | join(" ")')"
check "compose: official images: apache/kafka, mariadb:10.11, Elasticsearch 8, ClickHouse" \
  bash -c "[[ '$(cj .services.kafka.image)' == apache/kafka:* && '$(cj .services.mariadb.image)' == mariadb:10.11 &&
            '$(cj .services.elasticsearch.image)' == docker.elastic.co/elasticsearch/elasticsearch:8.* &&
            '$(cj .services.clickhouse.image)' == clickhouse/clickhouse-server:* ]]"
expect_eq "compose: the Kafka image is the version the tests run (scripts/kafka-local.sh)" \
  "apache/kafka:$(sed -n 's/^KAFKA_VERSION=\([0-9.]*\).*/\1/p' scripts/kafka-local.sh)" \
  "$(cj .services.kafka.image)"
check "compose: Kafka is single-node KRaft" \
  jq -e '.services.kafka.environment | .KAFKA_PROCESS_ROLES == "broker,controller" and (.KAFKA_CONTROLLER_QUORUM_VOTERS | startswith("1@kafka:"))' "$T/compose.json"
expect_eq "compose: eddy waits for Kafka, MariaDB, Elasticsearch and ClickHouse to be healthy" \
  "clickhouse:service_healthy elasticsearch:service_healthy kafka:service_healthy mariadb:service_healthy" \
  "$(cj '.services.eddy.depends_on | to_entries | map("\(.key):\(.value.condition)") | join(" ")')"
# A service waited on as healthy must have a health check: its own, or eddy's image's.
expect_eq "compose: every service_healthy wait is on a service with a health check" "" \
  "$(cj '[.services[] | .depends_on // {} | to_entries[] | select(.value.condition == "service_healthy") | .key] | unique[]' |
     while read -r s; do [ "$s" = eddy ] || [ "$(cj ".services.$s.healthcheck.test | length")" -gt 0 ] || echo "$s"; done)"
check "compose: eddy is built from docker/Dockerfile" \
  jq -e '.services.eddy.build.dockerfile == "docker/Dockerfile" and .services.generator.build.target == "tools"' "$T/compose.json"
check "compose: the generator's build target is a stage of the Dockerfile" grep -q '^FROM .* AS tools$' "$DF"
expect_eq "compose: eddy mounts processors and rules where the image's volumes are" \
  "/etc/eddy/rules /opt/eddy/processors /var/lib/eddy" \
  "$(cj '[.services.eddy | vols[] | .target] | sort | join(" ")')"
cj '[.services[] | vols[] | .source | select(startswith("/"))] | unique[]' > "$T/binds"
check "compose: it bind-mounts host paths (processors, rules, conf/sql, grafana, prometheus)" \
  test "$(wc -l < "$T/binds")" -ge 6
expect_eq "compose: every bind-mounted host path exists" "" \
  "$(while read -r p; do [ -e "$p" ] || echo "$p"; done < "$T/binds")"
expect_eq "compose: MariaDB is initialised from conf/sql" "$ROOT/conf/sql" \
  "$(cj '.services.mariadb | vols[] | select(.target == "/docker-entrypoint-initdb.d") | .source')"
expect_eq "compose: ClickHouse is initialised from conf/sql/clickhouse, which MariaDB does not run" \
  "$ROOT/conf/sql/clickhouse" \
  "$(cj '.services.clickhouse | vols[] | select(.target == "/docker-entrypoint-initdb.d") | .source')"
expect_eq "compose: ClickHouse's database, user and password are the ones eddy is given" \
  "eddy eddy $(cj .services.eddy.environment.CLICKHOUSE_PASSWORD)" \
  "$(cj '.services.clickhouse.environment | "\(.CLICKHOUSE_DB) \(.CLICKHOUSE_USER) \(.CLICKHOUSE_PASSWORD)"')"
expect_eq "compose: every variable eddy is given is one the shipped config reads" "" \
  "$(cj '.services.eddy.environment | keys[]' | while read -r v; do grep -q "\${$v:-" conf/service.conf || echo "$v"; done)"
check "compose: eddy runs with workers under the supervisor" \
  grep -q '^runtime.supervisor=${EDDY_SUPERVISOR:-true}' conf/service.conf
check "compose: Prometheus scrapes eddy's admin port" grep -q "targets: \[\"eddy:$port\"\]" docker/prometheus.yml
check "compose: Grafana's provisioning points at the dashboard folder it mounts" \
  grep -q "path: $(cj '.services.grafana | vols[] | select(.source | endswith("/docker/grafana/dashboards")) | .target')\$" \
  docker/grafana/provisioning/dashboards/eddy.yml

# --- the dashboard against a live eddy on the shipped config ---
DASH=docker/grafana/dashboards/eddy.json
check "dashboard: the JSON parses" jq -e '.panels | length > 0' "$DASH"
jq -r '.. | objects | select(has("expr")) | .expr' "$DASH" > "$T/exprs"
check "dashboard: throughput, latency (by stage too), dead letters, lag, cache hit ratio and reloads" \
  bash -c "for m in eddy_events_in_total eddy_processor_events_total eddy_processing_duration_seconds_bucket \
             eddy_record_e2e_latency_seconds_bucket eddy_record_stage_latency_seconds_bucket \
             eddy_dead_letters_total eddy_kafka_consumer_lag eddy_lookup_hits_total eddy_processor_reloads_total; do
             grep -q \"\$m\" '$T/exprs' || { echo \"no panel queries \$m\"; exit 1; }; done"
# promtool checks PromQL in rule files: each query becomes a recording rule. Grafana's
# $__rate_interval is a 1m range here.
{ echo 'groups:'; echo '  - name: dashboard'; echo '    rules:'
  n=0; while IFS= read -r e; do n=$((n + 1)); echo "      - record: dashboard:q$n"
    printf '        expr: %s\n' "$(jq -Rn --arg e "${e//\$__rate_interval/1m}" '$e')"; done < "$T/exprs"; } > "$T/rules.yml"
check "dashboard: promtool parses every query" promtool check rules "$T/rules.yml"

d=$(newdir)
start_mock "$d" 1 4 business-events,device-locations,dead-letters
ensure_dims
# A real ClickHouse with the shipped OLAP table, as the compose stack's.
. tests/clickhouse_lib.sh
start_clickhouse
chq "$(cat conf/sql/clickhouse/product_events.sql)" --multiquery
esport=$(free_port)
python3 tests/es_mock.py "$esport" "$d/es.log" - 7>&- &
es=$!
EDDY_PROCESSORS_DIR=$ROOT/processors EDDY_RULES_DIR=$ROOT/conf/rules EDDY_STATE_DIR=$d/state \
KAFKA_BOOTSTRAP=$BOOT MYSQL_HOST=127.0.0.1 MYSQL_PORT=$MY_PORT MYSQL_PASSWORD=$MY_PASSWORD \
ES_URL=http://127.0.0.1:$esport EDDY_ADMIN_LISTEN=127.0.0.1:0 EDDY_WORKERS=2 \
CLICKHOUSE_URL=http://127.0.0.1:$CH_PORT CLICKHOUSE_PASSWORD=$CH_PASSWORD \
  "$EDDY" run -c conf/service.conf > /dev/null 2> "$d/err" 7>&- &
pid=$!
wait_eval 'test -n "$(admin_port "$d/err")"'
aport=$(admin_port "$d/err")
luajit scripts/gen-events.lua 2000 7 3 "$d/manifest.tsv" | awk '{ print NR "\t" $0 }' |
  kcat -b "$BOOT" -P -t business-events -K '\t'
met() { curl -fsS "http://127.0.0.1:$aport/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
# At least once: a rebalance as the second worker joins may hand records over twice.
# Two workers upserting the same rows may deadlock and retry with backoff: a 2-minute
# bound, not a timing assertion.
live_done() { test "$(met eddy_records_read_total)" -ge 2000 && test "$(met eddy_inflight_events)" = 0; }
for i in $(seq 1200); do live_done && break; sleep 0.1; done
if live_done; then pass "live: the shipped config consumes every record produced"
else fail "live: the shipped config consumes every record produced" \
  "read=$(met eddy_records_read_total) inflight=$(met eddy_inflight_events)" "$(tail -5 "$d/err")"; fi
expect_eq "live: every valid product event is one row of ClickHouse's product_events (FINAL)" \
  "$(awk -F'\t' '$3 == "product_stats"' "$d/manifest.tsv" | wc -l)" \
  "$(chq 'SELECT count() FROM product_events FINAL')"
check "live: its logs are JSON lines with the start-up summary" \
  jq -e -s 'any(.[]; .msg | startswith("config conf/service.conf: source=kafka business-events bootstrap="))' "$d/err"
kill -HUP "$pid"       # a reload, so the reload series have moved too
check "live: SIGHUP reaches the workers and they reload" \
  wait_eval 'test "$(grep -c "reload" "$d/err")" -ge 2' 
curl -fsS "http://127.0.0.1:$aport/metrics" > "$d/metrics"
check "live: promtool accepts its /metrics" promtool check metrics < "$d/metrics"
# The sample names /metrics can hold: every family, and a histogram's three series.
awk '$1 == "#" && $2 == "TYPE" { print $3; if ($4 == "histogram") { print $3 "_bucket"; print $3 "_sum"; print $3 "_count" } }' \
  "$d/metrics" | sort -u > "$d/exported"
grep -o 'eddy_[a-z0-9_]*' "$T/exprs" | sort -u > "$d/queried"
check "live: the dashboard queries at least 20 metrics" test "$(wc -l < "$d/queried")" -ge 20
expect_eq "live: every metric the dashboard queries is one /metrics exports" "" \
  "$(comm -23 "$d/queried" "$d/exported" | tr '\n' ' ')"
kill -TERM "$pid"; wait "$pid"
kill "$es" 2>/dev/null; wait "$es" 2>/dev/null
stop_mock

# --- make install with PREFIX, and the systemd unit ---
p=$T/prefix
check "install: make install PREFIX=... installs" \
  make -s install BIN="$(dirname "$EDDY")" BUILD="$T/nobuild" PREFIX="$p" -o "$EDDY"
check "install: binary, config, processors, rules, SQL and unit are in place" \
  test -x "$p/bin/eddy" -a -f "$p/etc/eddy/eddy.conf" -a -f "$p/etc/eddy/processors/order.lua" \
       -a -f "$p/etc/eddy/rules/fences.json" -a -f "$p/share/eddy/sql/wide-tables.sql" \
       -a -f "$p/lib/systemd/system/eddy.service"
echo '# edited by the operator' >> "$p/etc/eddy/eddy.conf"
make -s install BIN="$(dirname "$EDDY")" BUILD="$T/nobuild" PREFIX="$p" -o "$EDDY" > /dev/null
check "install: a second install keeps the operator's config" grep -q 'edited by the operator' "$p/etc/eddy/eddy.conf"
check "install: systemd-analyze verifies the unit" systemd-analyze verify "$p/lib/systemd/system/eddy.service"
check "install: the unit runs the installed binary on the installed config" \
  grep -qx "ExecStart=$p/bin/eddy run -c $p/etc/eddy/eddy.conf" "$p/lib/systemd/system/eddy.service"
# The unit's Environment= lines, as systemd would set them, make a config eddy accepts.
check "install: with the unit's environment, eddy check accepts the installed config" \
  env $(sed -n 's/^Environment=//p' "$p/lib/systemd/system/eddy.service" | sed "s|/var/lib/eddy|$T/varlib|") \
  "$p/bin/eddy" check -c "$p/etc/eddy/eddy.conf"
