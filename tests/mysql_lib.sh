# mysql_lib.sh - a real MariaDB for the lookup tests: one throwaway server per suite
# run (scripts/mariadb-local.sh), its dimension tables, and a FIFO-fed eddy whose
# outputs and metrics can be read while it runs.

MY_DIR=$T/mariadb
MY_PASSWORD='pw-with-@-and-/'   # the URL parser must cope; never logged

start_mariadb() {
  [ -f "$MY_DIR/pid" ] && kill -0 "$(cat "$MY_DIR/pid")" 2>/dev/null && return 0
  if [ -z "${MY_PORT:-}" ]; then
    MY_PORT=$(free_port)
  fi
  # 4>&-: the server must not hold the FIFO of a live eddy open.
  MYSQL_PASSWORD=$MY_PASSWORD scripts/mariadb-local.sh start "$MY_DIR" "$MY_PORT" 4>&-
}
stop_mariadb() { scripts/mariadb-local.sh stop "$MY_DIR"; }
# ensure_dims: the server running, with the dimension tables, their sample rows and
# the (empty at first) wide tables. The shipped processors' configs read
# MYSQL_PORT/MYSQL_PASSWORD.
ensure_dims() {
  start_mariadb
  if [ -z "${MY_DIMS:-}" ]; then
    sql "$(cat conf/sql/dimensions.sql conf/sql/sample-data.sql conf/sql/wide-tables.sql)"
    MY_DIMS=1
  fi
  export MYSQL_PORT=$MY_PORT MYSQL_PASSWORD=$MY_PASSWORD
}
# sql STATEMENTS: run as root in database eddy; tab-separated rows, no header.
sql() { scripts/mariadb-local.sh sql "$MY_DIR" -N -B eddy -e "$1"; }

# lookup_conf DIR [key=value...]: write_conf plus the server's URL.
lookup_conf() {
  local d=$1; shift
  write_conf "$d" "mysql.url=mysql://eddy:$MY_PASSWORD@127.0.0.1:$MY_PORT/eddy" "$@"
}

# A processor that looks up payload.k in lookup `dev` and emits what it found.
write_lookup_processor() {
  cat > "$1/processors/look.lua" <<'LUA'
return {
  routes = { { domain = "t", type = "*" } },
  process = function(ev, ctx)
    local row = ctx.lookup("dev", ev.payload.k)
    ctx.emit("out", { id = ev.eventId, k = ev.payload.k, found = row ~= nil,
                      name = row and row.name, type = row and row.type })
  end,
}
LUA
}

# key_event ID KEY: an event of domain t whose payload.k is KEY (JSON-escaped by jq).
key_event() {
  jq -cn --arg id "$1" --arg k "$2" '{domain:"t",type:"x",timestamp:1,eventId:$id,payload:{k:$k}}'
}

# live_start DIR: eddy reading DIR/fifo (held open on fd 4), admin on a free port.
live_start() {
  LIVE=$1
  mkfifo "$LIVE/fifo"
  exec 4<>"$LIVE/fifo"
  "$EDDY" run -c "$LIVE/eddy.conf" >"$LIVE/stdout" 2>"$LIVE/err" 4>&- &
  LIVE_PID=$!
  wait_until grep -q 'listening on' "$LIVE/err"
  LIVE_PORT=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$LIVE/err" | cut -d: -f2)
}
# live_send LINE: write one event and wait until the outputs (out + dlq) grew by one.
live_send() {
  local before; before=$(cat "$LIVE/out.ndjson" "$LIVE/dlq.ndjson" 2>/dev/null | wc -l)
  echo "$1" >&4
  wait_until out_lines_over "$before"
}
out_lines_over() { [ "$(cat "$LIVE/out.ndjson" "$LIVE/dlq.ndjson" 2>/dev/null | wc -l)" -gt "$1" ]; }
# live_metric NAME{LABELS}: one sample of /metrics.
live_metric() {
  curl -fsS "http://127.0.0.1:$LIVE_PORT/metrics" | grep -v '^#' | grep -F "$1 " | awk '{print $NF}'
}
# conn_is OPEN/COUNT OPEN MIN: a connection's state read as "open/count" (of its
# *_connected and a *_connects_total or *_connect_failures_total): open is OPEN, and
# the count at least MIN.
conn_is() { [ "${1%/*}" = "$2" ] && [ "${1#*/}" -ge "$3" ]; }
# live_stop: end the input; eddy finishes what it has and exits. Sets LIVE_RC.
live_stop() { exec 4>&-; LIVE_RC=0; wait "$LIVE_PID" || LIVE_RC=$?; }

