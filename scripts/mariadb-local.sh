#!/usr/bin/env bash
# A throwaway MariaDB server for the demo, tests and bench: its own datadir, socket
# and port on 127.0.0.1, nothing shared with a system server.
#   mariadb-local.sh start DIR PORT   create DIR/data on first use, start, wait until
#                                     it answers; a database `eddy` and a user
#                                     eddy/$MYSQL_PASSWORD (default eddy) exist
#   mariadb-local.sh stop DIR         stop it and wait until it is gone
#   mariadb-local.sh sql DIR [ARGS]   the mariadb client, as root over the socket
set -eu
cmd=${1:?usage: mariadb-local.sh start|stop|sql DIR [PORT]}
dir=${2:?DIR missing}
client() { mariadb --no-defaults -S "$dir/sock" -uroot "$@"; }

case $cmd in
start)
  port=${3:?PORT missing}
  mkdir -p "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
      --auth-root-authentication-method=normal --skip-test-db --skip-name-resolve --force \
      >"$dir/install.log" 2>&1 ||
      { cat "$dir/install.log" >&2; exit 1; }
    fresh=1
  fi
  mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/data" --socket="$dir/sock" \
    --port="$port" --bind-address=127.0.0.1 --pid-file="$dir/pid" --log-error="$dir/err.log" \
    --skip-name-resolve --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 \
    --max-connections=200 >/dev/null 2>&1 &
  for _ in $(seq 300); do
    mariadb-admin --no-defaults -S "$dir/sock" -uroot ping >/dev/null 2>&1 && break
    kill -0 $! 2>/dev/null || { echo "mariadbd did not start:" >&2; tail -5 "$dir/err.log" >&2; exit 1; }
    sleep 0.1
  done
  if [ -n "${fresh:-}" ]; then
    client -e "CREATE DATABASE eddy CHARACTER SET utf8mb4;
               CREATE USER 'eddy'@'%' IDENTIFIED BY '${MYSQL_PASSWORD:-eddy}';
               GRANT ALL ON eddy.* TO 'eddy'@'%';"
  fi
  ;;
stop)
  [ -f "$dir/pid" ] || exit 0
  pid=$(cat "$dir/pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  rm -f "$dir/pid"
  ;;
sql)
  shift 2
  client "$@"
  ;;
*)
  echo "mariadb-local.sh: unknown command $cmd" >&2
  exit 2
  ;;
esac
