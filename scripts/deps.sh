#!/usr/bin/env bash
# Install the Debian packages that eddy's build, tests and demo need, and the Apache
# Kafka broker jars the tests run (from Maven Central, with Debian's OpenJDK and Maven).
#   scripts/deps.sh         everything (make test, make demo, make bench)
#   scripts/deps.sh build   only what `make` needs (docker/Dockerfile's build stage)
# Idempotent: does nothing when every package is installed and the jars are cached.
# As non-root it prints the exact apt-get line to run and exits 1.
set -eu

PKGS=(
  gcc make pkg-config
  libluajit-5.1-dev libjansson-dev libevent-dev
  librdkafka-dev libmariadb-dev libcurl4-openssl-dev
)
if [ "${1:-all}" != build ]; then
  PKGS+=(
    # tests, demo and bench: the outside clients a user would use
    luajit curl jq kcat prometheus geographiclib-tools
    # the stand-in Elasticsearch of tests/es_mock.py
    python3
    # a throwaway MariaDB server (scripts/mariadb-local.sh) and its client
    mariadb-server mariadb-client
    # a throwaway ClickHouse server (scripts/clickhouse-local.sh) and its client
    clickhouse-server clickhouse-client
    # a throwaway Apache Kafka broker (scripts/kafka-local.sh): Java and Maven to fetch
    # and run the official broker jars
    openjdk-17-jre-headless maven
    # engine-free checks of docker/compose.yml and the systemd unit (tests/t_docker.sh);
    # script(1) for the terminal test comes with bsdutils, which every Debian has
    docker-compose systemd
  )
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing packages; run as root:" >&2
    echo "  apt-get update && $cmd" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  $cmd
fi

if [ "${1:-all}" != build ]; then
  "$(dirname "$0")/kafka-local.sh" install
fi
