# eos_lib.sh - the keyed exactly-once scenario shared by t_kafka_eos.sh and
# t_changelog.sh: its events, its processor (a per-key count in keyed state, so each
# output carries its key's sequence number), its config and the read_committed check
# that every output arrives once with the count an uninterrupted run gives. Sourced
# after kafka_lib.sh and broker_lib.sh.

# eos_case COUNT [windows] [PARTITIONS]: a fresh broker (topics of 4 partitions unless
# said) and $d/keyed, COUNT events, event i keyed
# (in Kafka and in state) by k<i mod 50> with timestamp i; every 100th is rejected by
# the processor (a dead letter). The processor counts each key's events in keyed state
# and emits the count with each event; with `windows`, also each key's events per
# second of event time (a tumbling window, built-in count) and per two seconds sliding
# by one (a sliced window: a Lua count kept per slice, merged when a window fires).
eos_case() {
  d=$(newdir)
  start_broker "$d" events,out,dlq "${3:-4}"
  mkdir -p "$d/processors"
  cat > "$d/processors/p.lua" <<LUA
return { routes = { { domain = "t", type = "*" } },
  $([ "${2:-}" = windows ] && echo 'windows = { w = { kind = "tumbling", size_ms = 1000, key = "payload.k", agg = "count" },
    s = { kind = "sliding", size_ms = 2000, slide_ms = 1000, key = "payload.k",
          add = function(a) return (a or 0) + 1 end, merge = function(a, b) return a + b end } },')
  process = function(ev, ctx)
    if ev.payload.bad then ctx.reject("bad one") end
    local c = (ctx.state.get(ev.payload.k) or 0) + 1
    ctx.state.set(ev.payload.k, c)
    ctx.emit("out", { id = ev.eventId, k = ev.payload.k, c = c })
  end,
  on_window = function(win, ctx)
    if win.name == "s" then
      ctx.emit("out", { swin = win.start, k = win.key, n = win.result })
    else
      ctx.emit("out", { win = win.start, k = win.key, n = win.result })
    end
  end }
LUA
  awk -v n="$1" 'BEGIN { for (i = 1; i <= n; i++)
    printf "k%d\t{\"domain\":\"t\",\"type\":\"x\",\"timestamp\":%d,\"eventId\":\"e%d\",\"payload\":{\"k\":\"k%d\"%s}}\n",
           i % 50, i, i, i % 50, (i % 100 == 0 ? ",\"bad\":true" : "") }' > "$d/events.ndjson"
}
eos_conf() {   # eos_conf DIR GROUP [key=value...]
  local d=$1 g=$2; shift 2
  kafka_out_conf "$d" "$g" out processing.guarantee=exactly_once kafka.session.timeout.ms=6000 \
    kafka.heartbeat.interval.ms=1000 "$@"
}
committed() { kcat -b "$BOOT" -C -t "$1" -e -q -X isolation.level=read_committed -f '%s\n'; }
uncommitted() { kcat -b "$BOOT" -C -t "$1" -e -q -X isolation.level=read_uncommitted -f '%s\n'; }
outputs_in() { [ "$(committed out | grep -c '"id"')" -ge "$1" ]; }
dead_letters_in() { [ "$(committed dlq | grep -c '"eventId"')" -ge "$1" ]; }
# same_lines WANT GOT: whether two files are equal; the first differences are shown.
same_lines() { diff "$1" "$2" > "$2.diff" && return 0; head -8 "$2.diff"; return 1; }
# check_windows WHAT KIND FIELD WANT CLOSED: the window outputs of $d/got-all that carry
# their start in FIELD, against WANT's "start key count" lines: each fired once with
# its count, and every one starting before CLOSED (closed by the watermark) fired.
check_windows() {
  local what=$1 kind=$2 f=$3 want=$4 closed=$5
  jq -r "select(.$f != null) | \"\\(.$f) \\(.k) \\(.n)\"" "$d/got-all" | sort > "$d/got-$f"
  check "$what: each $kind fired once, with its count" \
    test -z "$(comm -23 "$d/got-$f" "$want")" -a "$(cut -d' ' -f1,2 "$d/got-$f" | sort -u | wc -l)" = "$(wc -l < "$d/got-$f")"
  awk -v c="$closed" '$1 < c' "$want" > "$want.closed"
  check "$what: every $kind closed by the watermark fired ($(wc -l < "$d/got-$f") of them)" \
    test -z "$(comm -23 "$want.closed" "$d/got-$f")"
}
# check_exactly_once WHAT COUNT [windows]: read_committed, every output once with the
# count an uninterrupted run gives, every dead letter once, and with `windows` every
# window that closed once with its count.
check_exactly_once() {
  local what=$1 n=$2
  check "$what: every output arrives (read_committed)" wait_for outputs_in $((n - n / 100))
  # The last event is a dead letter, so the outputs can all be visible while the
  # transaction holding it has yet to commit (a rebalance may delay it): wait for the
  # dead letters too before comparing.
  wait_for dead_letters_in $((n / 100)) || true
  sleep 1
  committed out > "$d/got-all"
  jq -r 'select(.id) | "\(.id) \(.k) \(.c)"' "$d/got-all" | sort > "$d/got"
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) if (i % 100) print "e" i, "k" i % 50, ++c[i % 50] }' |
    sort > "$d/want"
  check "$what: read_committed sees each output exactly once, with the state's count" \
    same_lines "$d/want" "$d/got"
  committed dlq | jq -r .eventId 2>/dev/null | sort > "$d/got-dlq"
  [ -s "$d/got-dlq" ] || committed dlq | grep -o '"eventId":"e[0-9]*"' | cut -d'"' -f4 | sort > "$d/got-dlq"
  awk -v n="$n" 'BEGIN { for (i = 100; i <= n; i += 100) print "e" i }' | sort > "$d/want-dlq"
  check "$what: ... and each dead letter exactly once" same_lines "$d/want-dlq" "$d/got-dlq"
  [ "${3:-}" = windows ] || return 0
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) if (i % 100) w[int(i / 1000) * 1000 " k" i % 50]++
                         for (x in w) print x, w[x] }' | sort > "$d/want-win"
  check_windows "$what" window win "$d/want-win" $(((n / 1000 - 2) * 1000))
  awk -v n="$n" 'BEGIN { for (i = 1; i <= n; i++) if (i % 100) { s = int(i / 1000) * 1000
                           w[s " k" i % 50]++; w[s - 1000 " k" i % 50]++ }
                         for (x in w) print x, w[x] }' | sort > "$d/want-swin"
  check_windows "$what" "sliced window" swin "$d/want-swin" $(((n / 1000 - 3) * 1000))
}

