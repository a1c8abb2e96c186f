#!/usr/bin/env bash
# A throwaway ClickHouse server for tests and bench: its own config, data directory and
# ports on 127.0.0.1, nothing shared with a system server.
#   clickhouse-local.sh start DIR HTTP_PORT TCP_PORT   write DIR/config.xml on first use,
#                                     start, wait until it answers; a user eddy with
#                                     password $CLICKHOUSE_PASSWORD (default eddy) and a
#                                     database `eddy` exist
#   clickhouse-local.sh stop DIR      stop it and wait until it is gone
#   clickhouse-local.sh sql DIR [ARGS]  clickhouse-client as that user (a query in ARGS,
#                                     e.g. -q "SELECT 1", or one on stdin)
set -eu
cmd=${1:?usage: clickhouse-local.sh start|stop|sql DIR [HTTP_PORT TCP_PORT]}
dir=$(mkdir -p "${2:?DIR missing}" && cd "$2" && pwd)
pass=${CLICKHOUSE_PASSWORD:-eddy}
client() {
  clickhouse-client --host 127.0.0.1 --port "$(cat "$dir/tcp_port")" --user eddy \
    --password "$pass" "$@"
}

case $cmd in
start)
  http=${3:?HTTP_PORT missing}
  tcp=${4:?TCP_PORT missing}
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  echo "$tcp" >"$dir/tcp_port"
  # The whole server config: no system file is read (users.xml sits beside it).
  cat >"$dir/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/server.log</log><errorlog>$dir/err.log</errorlog>
    <size>10M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$http</http_port>
  <tcp_port>$tcp</tcp_port>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <format_schema_path>$dir/format_schemas/</format_schema_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>67108864</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <timezone>UTC</timezone>
</yandex>
EOF
  cat >"$dir/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></default>
    <eddy><password>$pass</password><networks><ip>127.0.0.1</ip></networks>
      <profile>default</profile><quota>default</quota></eddy>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
  </interval></default></quotas>
</yandex>
EOF
  clickhouse-server --config-file="$dir/config.xml" >"$dir/stdout.log" 2>&1 &
  pid=$!
  echo "$pid" >"$dir/pid"
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$http/ping" >/dev/null 2>&1 && break
    kill -0 $pid 2>/dev/null ||
      { echo "clickhouse-server did not start:" >&2; tail -n 5 "$dir/err.log" "$dir/stdout.log" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf "http://127.0.0.1:$http/ping" >/dev/null ||
    { echo "clickhouse-server did not answer on $http" >&2; exit 1; }
  client -q "CREATE DATABASE IF NOT EXISTS eddy"
  ;;
stop)
  [ -f "$dir/pid" ] || exit 0
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/pid"
  ;;
sql)
  shift 2
  client "$@"
  ;;
*)
  echo "clickhouse-local.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
