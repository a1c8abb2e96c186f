# Sandbox: each attempt in tests/sandbox-escapes.txt runs in process() and must fail
# with processor_error; the control line must succeed. Bytecode files are refused.

d=$(newdir)
write_conf "$d"
{
  echo 'local attempts = {'
  while IFS=$'\t' read -r name expr; do
    [[ -z $name || $name == \#* ]] && continue
    printf '  ["%s"] = function() return %s end,\n' "$name" "$expr"
  done < tests/sandbox-escapes.txt
  echo '}'
  cat <<'LUA'
return {
  routes = { { domain = "sandbox", type = "*" } },
  process = function(ev, ctx)
    local r = attempts[ev.payload.name]()
    ctx.emit("out", { name = ev.payload.name, result = tostring(r) })
  end,
}
LUA
} > "$d/processors/escape.lua"
n=0
while IFS=$'\t' read -r name expr; do
  [[ -z $name || $name == \#* ]] && continue
  n=$((n + 1))
  event sandbox try "e$n" "$(jq -cn --arg n "$name" '{name: $n}')"
done < tests/sandbox-escapes.txt > "$d/in.ndjson"
run_eddy "$d"
expect_eq "sandbox: the control expression runs" "42" \
  "$(jq -r 'select(.name=="control").result' "$d/out.ndjson")"
while IFS=$'\t' read -r name expr; do
  [[ -z $name || $name == \#* || $name == control ]] && continue
  got=$(jq -r --arg n "$name" 'select((.raw|fromjson).payload.name==$n).reason' "$d/dlq.ndjson")
  expect_eq "sandbox: $name is refused" processor_error "$got"
done < tests/sandbox-escapes.txt
check "sandbox: nothing escaped to the filesystem" test ! -e /tmp/eddy-sandbox-escaped

# Precompiled bytecode can crash the VM, so a bytecode processor file is refused.
d=$(newdir)
write_conf "$d"
echo 'return { process = function() end }' > "$d/src.lua"
luajit -b "$d/src.lua" "$d/processors/bytecode.lua"
rc=0; got=$("$EDDY" check -c "$d/eddy.conf" 2>&1) || rc=$?
expect_eq "sandbox: a bytecode processor exits 2" 2 "$rc"
expect_eq "sandbox: a bytecode processor is refused, naming the file" \
  "eddy: $d/processors/bytecode.lua: precompiled bytecode is not accepted; ship the Lua source" "$got"
