# C unit tests: every bin/*_test (or $UNITS/*_test) prints "ok - ..." / "FAIL - ..."
# lines; each counts here.
units_dir=${UNITS:-bin}
case $units_dir in /*) ;; *) units_dir=$ROOT/$units_dir ;; esac
for u in "$units_dir"/*_test; do
  [ -x "$u" ] || { fail "unit tests are built ($units_dir/*_test)"; continue; }
  while IFS= read -r line; do
    case $line in
      "ok - "*) pass "${line#ok - }" ;;
      "FAIL - "*) fail "${line#FAIL - }" ;;
      "exit 0") ;;
      "exit "*) fail "$(basename "$u") exits cleanly" "$line" ;;
      *) echo "$line" ;;
    esac
  done < <("$u" 2>&1; echo "exit $?")
done
