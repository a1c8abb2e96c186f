# lib.sh - helpers for the test files; sourced by tests/run.sh.
# Each assertion counts one pass or one fail; run.sh prints the totals last.

PASSED=0
FAILED=0

pass() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $1"; [ $# -gt 1 ] && printf '    %s\n' "${@:2}"; return 0; }

# check NAME COMMAND...: passes when the command exits 0.
check() {
  local name=$1; shift
  if "$@" >"$T/check.out" 2>&1; then pass "$name"; else fail "$name" "$(head -c 2000 "$T/check.out")"; fi
}

# expect_eq NAME EXPECTED ACTUAL
expect_eq() {
  if [ "$2" == "$3" ]; then pass "$1"; else fail "$1" "expected: $2" "actual:   $3"; fi
}

# wait_until COND...: poll up to 30 s (a bound, not a timing assertion).
wait_until() { local i; for i in $(seq 300); do "$@" && return 0; sleep 0.1; done; return 1; }

# lua_chunk PATH: PATH as a Lua error message names it: from 60 characters on
# (LUA_IDSIZE), "..." and its last 56, so a long $TMPDIR does not fail the comparison.
lua_chunk() { if [ ${#1} -ge 60 ]; then echo "...${1: -56}"; else echo "$1"; fi; }

# A fresh directory per test case.
newdir() { local d; d=$(mktemp -d "$T/case.XXXXXX"); echo "$d"; }

# write_conf DIR [key=value...]: a config for a pipeline with one `out` sink, a dlq,
# processors from DIR/processors and input DIR/in.ndjson. Extra lines are appended;
# one that sets a default's key replaces that default.
write_conf() {
  local d=$1; shift
  mkdir -p "$d/processors"
  local defaults=(
    "processors.dir=$d/processors"
    "source.file.path=$d/in.ndjson"
    "sink.out.type=file"
    "sink.out.path=$d/out.ndjson"
    "sink.dlq.type=file"
    "sink.dlq.path=$d/dlq.ndjson"
    "dlq.sink=dlq"
    "admin.listen="
  )
  local l x skip
  {
    for l in "${defaults[@]}"; do
      skip=
      for x in "$@"; do [ "${x%%=*}" = "${l%%=*}" ] && skip=1; done
      [ -z "$skip" ] && echo "$l"
    done
    for l in "$@"; do echo "$l"; done
  } > "$d/eddy.conf"
}

# A processor that emits a copy of every event of the given domain to `out`.
write_echo_processor() {
  local d=$1 name=$2 domain=$3 type=${4:-*}
  cat > "$d/processors/$name.lua" <<LUA
return {
  name = "$name",
  routes = { { domain = "$domain", type = "$type" } },
  process = function(ev, ctx)
    ctx.emit("out", { by = "$name", id = ev.eventId, domain = ev.domain, type = ev.type,
                      ts = ev.timestamp, payload = ev.payload })
  end,
}
LUA
}

# event DOMAIN TYPE ID [PAYLOAD]: one valid BusinessEvent line.
event() {
  printf '{"domain":"%s","type":"%s","timestamp":1700000000000,"eventId":"%s","payload":%s}\n' \
    "$1" "$2" "$3" "${4:-{\}}"
}

# run_eddy DIR [args...]: runs `eddy run` on DIR/eddy.conf; stderr in DIR/err, rc in RC.
run_eddy() {
  local d=$1; shift
  RC=0
  "$EDDY" run -c "$d/eddy.conf" "$@" >"$d/stdout" 2>"$d/err" || RC=$?
}

# fifo_eddy DIR: `eddy run` on DIR/eddy.conf in the background, reading DIR/fifo, which
# the test holds open on fd 3 (write events with >&3; `exec 3>&-` ends the input). eddy
# must not inherit fd 3, or it would never see the end. Sets PID.
fifo_eddy() {
  mkfifo "$1/fifo"
  exec 3<>"$1/fifo"
  "$EDDY" run -c "$1/eddy.conf" >"$1/stdout" 2>"$1/err" 3>&- &
  PID=$!
}

# free_port [COUNT]: a free TCP port on 127.0.0.1 (scripts/free-port.sh says why
# below 32768).
free_port() { "$ROOT/scripts/free-port.sh" "$@"; }

# admin_port ERRFILE: the port eddy logged for its admin endpoint (empty until then).
admin_port() { grep -o 'listening on 127.0.0.1:[0-9]*' "$1" 2>/dev/null | head -1 | cut -d: -f2; }
# admin_up LOG: the admin endpoint's port is in LOG (a condition for wait_for).
admin_up() { [ -n "$(admin_port "$1")" ]; }

# wait_eval 'CONDITION': evaluated afresh every 0.1 s until true, for up to 30 s.
wait_eval() { local i; for i in $(seq 300); do eval "$1" 2>/dev/null && return 0; sleep 0.1; done; return 1; }
