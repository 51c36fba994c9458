#!/usr/bin/env bash
# kill -9 at random moments leaves a valid store that the next run
# completes; 8 concurrent fetches of overlapping closures all succeed and
# download each NAR once; concurrent fetches of crossing closures never
# wait for each other for ever.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
export HTTPD_GATE=$TEST_TMP/gate-open
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")

# Every registered path is complete and its references are registered.
consistent() {
  local R=$1 out
  [ -f "$R/nix/var/nix/db/db.sqlite" ] || return 0
  out=$(nix-store --store "$R" --verify --check-contents 2>&1) || { echo "$out"; return 1; }
  if grep -qiE 'warning|error|modified|disappeared' <<<"$out"; then echo "$out"; return 1; fi
  local dangling
  dangling=$(sqlite3 "$R/nix/var/nix/db/db.sqlite" \
    'select count(*) from Refs where reference not in (select id from ValidPaths)')
  [ "$dangling" = 0 ] || { echo "$dangling dangling references"; return 1; }
}

complete() {
  local R=$1 P=$2
  consistent "$R" || return 1
  [ "$(nix path-info --store "$R" -r "$P" | sort)" = "$(nix-store -qR "$P" | sort)" ] || {
    echo "closure differs"; return 1; }
  [ -z "$(ls -A "$R/nix/var/runix/tmp")" ] || { echo "leftover work dirs"; return 1; }
  local e
  for e in "$R"/nix/store/*; do
    case $e in *.lock) echo "stale lock $e"; return 1 ;; esac
    [ -n "$(sqlite3 "$R/nix/var/nix/db/db.sqlite" "select 1 from ValidPaths where path = '/nix/store/${e##*/}'")" ] ||
      { echo "unregistered $e"; return 1; }
  done
}

for round in 1 2 3 4 5 6; do
  R=$TEST_TMP/crash-$round
  # The slow server spreads the fetch over a few seconds.
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/slow/cache-xz" "$top" >/dev/null 2>&1 &
  pid=$!
  delay=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.05 + (r % 250) / 100 }')
  sleep "$delay"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  ok "round $round: killed after ${delay}s, every registered path is complete" consistent "$R"
  ok "round $round: the next run completes the fetch" \
    "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-xz" "$top"
  ok "round $round: the store is complete and clean" complete "$R" "$top"
done

# Paths are registered as they become ready, not all at the end: a run
# killed midway keeps them, and the next run downloads only the rest.
R=$TEST_TMP/partial
"$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/slow/cache-xz" "$top" >/dev/null 2>&1 &
pid=$!
kept=0
for _ in $(seq 300); do
  # (sqlite3 would create an empty database if it came first)
  [ -f "$R/nix/var/nix/db/schema" ] &&
    kept=$(sqlite3 "file:$R/nix/var/nix/db/db.sqlite?mode=ro" 'select count(*) from ValidPaths' 2>/dev/null) || kept=0
  [ "${kept:-0}" -gt 0 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
sqlite3 "$R/nix/var/nix/db/db.sqlite" 'select path from ValidPaths' | sort >"$TEST_TMP/kept"
kept=$(wc -l <"$TEST_TMP/kept" | tr -d ' ')
total=$(wc -l <"$FX/closure" | tr -d ' ')
ok "a run killed midway has registered some paths already ($kept of $total)" \
  test "$kept" -gt 0 -a "$kept" -lt "$total"
ok "  ...every one of them complete, with its references" consistent "$R"
# Trees it had installed but not registered yet are whole: the next run
# keeps them (they are the very NARs) rather than downloading them again.
left=$(ls "$R/nix/store" | grep -v '\.lock$' | sed 's|^|/nix/store/|' | sort | comm -23 - "$TEST_TMP/kept" | wc -l)
: >"$HTTP_LOG"
ok "  ...the next run completes the fetch" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-xz" "$top"
asked_again() {
  local p url n=0
  while read -r p; do
    url=$(sed -n 's/^URL: //p' "$FX/cache-xz/$(basename "$p" | cut -c1-32).narinfo")
    if grep -q "GET /ok/cache-xz/$url" "$HTTP_LOG"; then echo "downloaded again: $p"; n=$((n + 1)); fi
  done <"$TEST_TMP/kept"
  [ "$n" = 0 ]
}
ok "  ...without downloading what the killed run had registered" asked_again
is "$(grep -c '/nar/' "$HTTP_LOG")" "$((total - kept - left))" \
  "  ...and downloading each of the rest once, but for the $left it had installed whole"
ok "  ...and the store is complete and clean" complete "$R" "$top"

# Wait (up to 30 s) until the fetch writing to store $1 is downloading: a NAR
# is being unpacked in its work dir.  A fixed sleep is not enough on a busy
# machine, where the store may not even exist yet after a second.
downloading() {
  local i
  for i in $(seq 600); do
    [ -n "$(ls -A "$1/nix/var/runix/tmp" 2>/dev/null)" ] && return 0
    sleep 0.05
  done
  return 1
}

# Ctrl-C (SIGINT; a background job starts with it ignored, so the signal is
# restored first) and SIGTERM: the fetch stops at once, keeps what it has
# completed, removes the rest, says so and dies of the signal.
restore_sigint='import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])'
for sig in INT TERM; do
  R=$TEST_TMP/sig-$sig
  python3 -c "$restore_sigint" "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/slow/cache-xz" "$top" \
    >/dev/null 2>"$TEST_TMP/sig.err" &
  pid=$!
  ok "SIG$sig: the fetch is downloading" downloading "$R"
  kill -$sig $pid
  wait $pid
  rc=$?
  is "$rc" "$((128 + $(kill -l $sig)))" "SIG$sig: the fetch dies of the signal"
  kept=$(sqlite3 "$R/nix/var/nix/db/db.sqlite" "select count(*) from ValidPaths")
  ok "  ...saying truly how many paths it keeps ($kept)" \
    grep -qE "interrupted: kept $kept complete paths? in $R; run the same command again to fetch the rest" "$TEST_TMP/sig.err"
  is "$(ls -A "$R/nix/var/runix/tmp"; ls "$R/nix/store" | grep '\.lock$')" "" \
    "  ...leaving no work dir and no lock behind"
  ok "  ...and every registered path complete" consistent "$R"
  ok "  ...and only registered paths in the store" \
    bash -c 'shopt -s nullglob; for e in "$1"/nix/store/*; do
      [ -n "$(sqlite3 "$1/nix/var/nix/db/db.sqlite" "select 1 from ValidPaths where path = '"'"'/nix/store/${e##*/}'"'"'")" ] || exit 1
    done' _ "$R"
done
# runix run passes a stop signal on to the fetch it started, and dies of it.
R=$TEST_TMP/sig-run
"$RUNIX" run -q --trusted-key "$key" --store "$R" --cache "$HTTP/slow/cache-xz" "$(path_of python)" \
  python3 -c 'print("started")' >"$TEST_TMP/sig-run.out" 2>&1 &
pid=$!
ok "runix run is fetching" downloading "$R"
kill -TERM $pid
wait $pid
is "$?" 143 "runix run stopped while fetching: it dies of SIGTERM"
ok "  ...without starting the program" bash -c "! grep -q started '$TEST_TMP/sig-run.out'"
ok "  ...and its fetch is gone too" bash -c "! pgrep -f -- '[-]-store $R' >/dev/null"
is "$(ls -A "$R/nix/var/runix/tmp")" "" "  ...having cleaned up after itself"

# A run killed after it registered everything leaves only its work dir: the
# next run cleans it up even though it has nothing to download.
mkdir -p "$R/nix/var/runix/tmp/dead-run/half-unpacked"
ok "a fetch with nothing to download still succeeds" \
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-xz" "$top"
ok "  ...and removes a dead run's work dir" test ! -e "$R/nix/var/runix/tmp/dead-run"

# Concurrency: overlapping closures, all at once, into one store.
R=$TEST_TMP/concurrent
: >"$HTTP_LOG"
pids=()
targets=("$top" "$(path_of python)" "$(path_of hello)" "$(path_of scripts)" "$top"
         "$(path_of dash)" "$(path_of libgreet)" "$(path_of hello)")
for i in "${!targets[@]}"; do
  "$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/slow/cache-zstd" \
    "${targets[$i]}" >"$TEST_TMP/c$i.out" 2>"$TEST_TMP/c$i.err" &
  pids+=($!)
done
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || { failed=$((failed + 1)); cat "$TEST_TMP/c$i.err"; }
done
is "$failed" "0" "8 concurrent fetches of overlapping closures all succeed"
ok "after them the store is complete and clean" complete "$R" "$top"
dups=$(grep '/nar/' "$HTTP_LOG" | sort | uniq -d)
is "$dups" "" "no NAR was downloaded twice"
is "$(grep -c '/nar/' "$HTTP_LOG")" "$(wc -l <"$FX/closure" | tr -d ' ')" "every NAR was downloaded once"

# Crossing closures: four fetches of different paths of a generated DAG of
# 300 paths, whose closures overlap in different orders, through a server
# that holds every NAR until they have all started and then answers in a
# shuffled order.  A fetch that kept its locks while it waited for another
# one's path could wait for ever (two or three of them, each holding what
# another waits for); `timeout` makes that a failure instead of a hang.
XC=${FX%/*}/crossing-300
python3 "$(dirname "$0")/lib/make-large-cache.py" "$XC" 300 dag >"$TEST_TMP/gen.log" 2>&1 ||
  { echo "Bail out! generating the crossing cache failed"; sed 's/^/# /' "$TEST_TMP/gen.log"; exit 1; }
kill "$HTTPD_PID"
httpd_start "${XC%/*}"
xkey=$(cat "$XC/key.pub")
mapfile -t gated <"$XC/top"
# Store $1 holds the closures of $2... and nothing else, whole, and no lock.
gated_complete() {
  local R=$1 t e
  shift
  consistent "$R" || return 1
  [ "$(nix path-info --store "$R" --all | sort)" = "$(nix path-info --store "$R" -r "$@" | sort -u)" ] ||
    { echo "unexpected paths"; return 1; }
  for t in "$@"; do
    [ "$(nix path-info --store "$R" -r "$t" | wc -l)" = "$(grep -c . "$XC/closure.${t##*-}")" ] ||
      { echo "closure of $t incomplete"; return 1; }
  done
  for e in "$R"/nix/store/*; do
    case $e in *.lock) echo "stale lock $e"; return 1 ;; esac
  done
}
for round in $(seq 8); do
  R=$TEST_TMP/gate-$round
  rm -f "$HTTPD_GATE"
  : >"$HTTP_LOG"
  pids=() mine=()
  for i in 0 1 2 3; do
    t=${gated[$(((i * (round % 2 + 1) + round) % ${#gated[@]}))]}
    mine+=("$t")
    timeout 60 "$RUNIX" fetch -q --trusted-key "$xkey" --store "$R" --cache "$HTTP/gate/${XC##*/}" \
      "$t" >/dev/null 2>"$TEST_TMP/g$i.err" &
    pids+=($!)
  done
  # Open the gate once NARs are asked for (the fetches have taken locks), or after 5 s.
  for _ in $(seq 100); do
    [ "$(grep -c '/nar/' "$HTTP_LOG")" -ge 4 ] && break
    sleep 0.05
  done
  sleep 0.3
  touch "$HTTPD_GATE"
  failed=0
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" ||
      { failed=$((failed + 1)); echo "# round $round, ${mine[$i]}:"; sed 's/^/# /' "$TEST_TMP/g$i.err"; }
  done
  is "$failed" 0 "crossing closures, round $round: 4 concurrent fetches all finish, within 60 s"
  ok "  ...and leave their closures whole and no lock behind" gated_complete "$R" "${mine[@]}"
done

done_testing
