#!/usr/bin/env bash
# The test suite: every tests/t_*.sh file, against a built bin/eddy (or $EDDY).
# Closing line: "N passed, N failed". Exit status 1 when anything failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
EDDY=${EDDY:-$ROOT/bin/eddy}
case $EDDY in /*) ;; *) EDDY=$ROOT/$EDDY ;; esac
T=$(mktemp -d "${TMPDIR:-/tmp}/eddy-test.XXXXXX")
# A MariaDB the lookup tests started must not outlive the run.
trap 'scripts/mariadb-local.sh stop "$T/mariadb"; rm -rf "$T"' EXIT
export EDDY ROOT T

. tests/lib.sh
for f in tests/t_*.sh; do
  [ -n "${ONLY:-}" ] && [[ $f != *"$ONLY"* ]] && continue
  echo "# $f"
  . "$f"
done
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
