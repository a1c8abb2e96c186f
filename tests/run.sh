#!/usr/bin/env bash
# The test suite: every tests/t_*.sh file, against a built bin/eddy (or $EDDY).
# Each file runs in a bash of its own with a temporary directory of its own ($T), so
# variables, file descriptors, traps and an `exit` stay inside it; a MariaDB,
# ClickHouse or Kafka server it started is stopped when it ends. A file that dies before its
# end, or runs past TEST_FILE_TIMEOUT seconds (default 1200), counts as one failure.
# Closing lines: the FAIL lines again (a long log is often read by its tail), then
# "N passed, N failed". Exit status 1 when anything failed. KEEP=1 keeps
# the temporary directories (logs, configs, data) and says where.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
EDDY=${EDDY:-$ROOT/bin/eddy}
case $EDDY in /*) ;; *) EDDY=$ROOT/$EDDY ;; esac
SUITE=$(mktemp -d "${TMPDIR:-/tmp}/eddy-test.XXXXXX")
if [ -n "${KEEP:-}" ]; then trap 'echo "kept: $SUITE"' EXIT; else trap 'rm -rf "$SUITE"' EXIT; fi
export EDDY ROOT

# run_file FILE RESULT: the file in its own shell; its totals ("passed failed") go to
# RESULT once it has run to its end.
run_file() {
  T=$(mktemp -d "$SUITE/t.XXXXXX") RESULT=$2 \
    timeout -k 10 "${TEST_FILE_TIMEOUT:-1200}" bash -c '
      set -u
      trap '\''scripts/mariadb-local.sh stop "$T/mariadb"; scripts/clickhouse-local.sh stop "$T/clickhouse"
            for k in "$T"/case.*/kafka; do [ -d "$k" ] && scripts/kafka-local.sh kill "$k"; done'\'' EXIT
      . tests/lib.sh
      . "$0"
      echo "$PASSED $FAILED" > "$RESULT"' "$1"
}

passed=0 failed=0
for f in tests/t_*.sh; do
  [ -n "${ONLY:-}" ] && [[ $f != *"$ONLY"* ]] && continue
  echo "# $f"
  res=$SUITE/result
  rm -f "$res"
  run_file "$f" "$res" > >(tee "$SUITE/out")
  rc=$?
  wait $! 2>/dev/null
  grep '^FAIL - ' "$SUITE/out" | sed "s|^|$f: |" >> "$SUITE/failures"
  if [ -s "$res" ]; then
    read -r p n < "$res"
    passed=$((passed + p)) failed=$((failed + n))
  else
    failed=$((failed + 1))
    echo "FAIL - $f ended before its last test (exit status $rc)" |
      tee -a "$SUITE/failures"
  fi
done
[ -s "$SUITE/failures" ] && { echo "# failed:"; cat "$SUITE/failures"; }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
