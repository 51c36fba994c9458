#!/usr/bin/env bash
# runix gc beside running programs and fetches loses nothing they need; a
# fetch waits for a collection; gc killed at any moment (kill -9) leaves a
# store real Nix verifies, and the next gc finishes the job; min-free makes a
# fetch collect garbage, oldest automatic roots first.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
export HTTPD_GATE=$TEST_TMP/gate
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
dash=$(path_of dash)
busybox=$(path_of busybox)
scripts=$(path_of scripts)
glibcAlt=$(path_of glibcAlt)
python=$(path_of python)

r() { "$RUNIX" "$1" --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-zstd" "${@:2}"; }
gc() { "$RUNIX" gc --store "$R" "$@"; }
# whole P...: each closure is registered and on disk, as real Nix sees it.
whole() {
  local p
  for p in $(nix path-info --store "$R" -r "$@"); do
    [ -e "$R$p" ] || [ -L "$R$p" ] || { echo "$p is registered but not on disk"; return 1; }
  done
}
pids=()
stop_all() {
  local p
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  pids=()
}

# ---- gc beside 4 running programs and 2 fetches ---------------------------
R=$TEST_TMP/store
r fetch -q "$top" >/dev/null
"$RUNIX" store delete --store "$R" --force "$glibcAlt" >/dev/null 2>&1
"$RUNIX" store delete --store "$R" "$python" >/dev/null 2>&1
ok "python and glibc-alt are to be fetched again" bash -c '! nix path-info --store "$1" "$2" 2>/dev/null && ! nix path-info --store "$1" "$3" 2>/dev/null' _ "$R" "$python" "$glibcAlt"
# Four programs run from their closures, holding the indexes as runs do.
r fetch -q "$dash" "$busybox" "$scripts" "$hello" >/dev/null
for p in "$dash" "$busybox" "$scripts" "$hello"; do
  flock -s "$R/nix/var/runix/closures/$(basename "$p")" "$R$busybox/bin/busybox" sleep 120 &
  pids+=($!)
done
# And a real run, which makes its root and holds its index as long as the program lives.
setsid "$RUNIX" run --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-zstd" -q "$dash" \
  dash -c 'sleep 120' </dev/null >/dev/null 2>&1 &
runpg=$!
for i in $(seq 100); do [ -d "$R/nix/var/nix/gcroots/runix/auto" ] && break; sleep 0.1; done
# Two fetches, whose downloads wait at the gate, of paths their roots name (fetch --root).
mkroot manual fa "$python"
mkroot manual fb "$glibcAlt"
rm -f "$HTTPD_GATE"
"$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/gate/cache-zstd" "$python" >"$TEST_TMP/fa.out" 2>"$TEST_TMP/fa.err" &
fa=$!
"$RUNIX" fetch -q --trusted-key "$key" --store "$R" --cache "$HTTP/gate/cache-zstd" "$glibcAlt" >"$TEST_TMP/fb.out" 2>"$TEST_TMP/fb.err" &
fb=$!
for i in $(seq 100); do grep -q 'GET /gate/.*/nar/' "$HTTP_LOG" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
gc >"$TEST_TMP/gc.out" 2>"$TEST_TMP/gc.err" &
g=$!
sleep 1
ok "gc waits while the fetches run" kill -0 $g
touch "$HTTPD_GATE"
wait $fa; rca=$?
wait $fb; rcb=$?
wait $g; rcg=$?
is "$rca:$rcb:$(cat "$TEST_TMP/fa.out" "$TEST_TMP/fb.out")" "0:0:$python
$glibcAlt" "both fetches complete"
is "$rcg" 0 "gc completes"
ok "  ...having said what it waited for" grep -q "runix: waiting for other runix processes using $R" "$TEST_TMP/gc.err"
ok "  ...keeping the closures of the five running programs" whole "$dash" "$busybox" "$scripts" "$hello"
ok "  ...the real run still running" kill -0 "$runpg"
ok "  ...and their indexes" bash -c 'for p in "${@:2}"; do test -e "$1/nix/var/runix/closures/$(basename "$p")" || exit 1; done' _ "$R" "$dash" "$busybox" "$scripts" "$hello"
ok "  ...and what the fetches fetched" whole "$python" "$glibcAlt"
ok "  ...while deleting what nothing uses" grep -q -- '-hello-linked-2.12$' "$TEST_TMP/gc.out"
ok "  ...in a store real Nix verifies" verified "$R"
stop_all
kill -- -"$runpg" 2>/dev/null
wait "$runpg" 2>/dev/null
out=$(gc)
ok "once the programs are gone, their closures are garbage" grep -qx "$scripts" <<<"$out"
is "$(nix-store --store "$R" --gc --print-dead 2>/dev/null | grep '^/nix/store/')" "" "  ...and real Nix agrees nothing more is dead"

# A fetch while a collection runs waits for it, and says so.
flock -x "$R/nix/var/runix/gc.lock" sleep 1.5 &
holder=$!
sleep 0.2
out=$(r fetch -q "$scripts" 2>"$TEST_TMP/err")
is "$out" "$scripts" "a fetch during a collection completes"
ok "  ...having waited for it, saying so" grep -qx "runix: waiting for garbage collection to finish in $R" "$TEST_TMP/err"
wait $holder

# ---- kill -9 at random moments -------------------------------------------
n=5000
LC=${RUNIX_FIXTURES:-${TMPDIR:-/tmp}/runix-fixtures}/large-$n
if ! python3 "$(dirname "$0")/lib/make-large-cache.py" "$LC" "$n" >"$TEST_TMP/gen.log" 2>&1; then
  echo "Bail out! generating the large cache failed:"
  sed 's/^/# /' "$TEST_TMP/gen.log" | tail -n 20
  exit 1
fi
R=$TEST_TMP/big
"$RUNIX" fetch -q --trusted-key "$(cat "$LC/key.pub")" --store "$R" --cache "file://$LC" "$(cat "$LC/top")" >/dev/null
is "$(db "select count(*) from ValidPaths")" "$n" "a store of $n paths, all dead"
# How long a whole collection takes here, on a copy: the kills land within that.
cp -a "$R" "$TEST_TMP/big-copy"
t0=$(date +%s.%N)
"$RUNIX" gc --store "$TEST_TMP/big-copy" >/dev/null 2>&1
full=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
chmod -R u+w "$TEST_TMP/big-copy"; rm -rf "$TEST_TMP/big-copy"
killed=0
for i in 1 2 3 4 5; do
  "$RUNIX" gc --store "$R" >/dev/null 2>&1 & # the process itself, not a subshell
  g=$!
  # The first kill early in the collection, the later ones anywhere in what is left.
  sleep "$(awk -v r=$RANDOM -v t="$full" -v i=$i 'BEGIN { printf "%.3f", 0.01 + r / 32768 * t * (i == 1 ? 0.5 : 0.9) }')"
  kill -9 $g 2>/dev/null && killed=$((killed + 1))
  wait $g 2>/dev/null
  ok "gc killed (kill -9) at a random moment ($i): real Nix verifies the store ($(db "select count(*) from ValidPaths") paths left)" verified "$R"
done
ok "  ...and some kills did land mid-collection" test "$killed" -ge 1
gc >/dev/null 2>"$TEST_TMP/err"
is "$?:$(registered)" "0:" "a last gc completes the job"
is "$(ls -A "$R/nix/store" | grep -vx .links)" "" "  ...leaving nothing in nix/store, leftovers and lock files included"
is "$(ls -A "$R/nix/var/runix/tmp")" "" "  ...nor in the work dirs"
ok "  ...in a store real Nix verifies" verified "$R"

# ---- min-free: a fetch collects garbage first ------------------------------
mnt=$TEST_TMP/mnt
mkdir -p "$mnt"
mount -t tmpfs -o size=64m tmpfs "$mnt" || { echo "Bail out! cannot mount a tmpfs (needs root)"; exit 1; }
trap 'umount -l "$mnt" 2>/dev/null; kill $HTTPD_PID 2>/dev/null; cleanup' EXIT
R=$mnt/store
r fetch -q "$top" >/dev/null
"$RUNIX" store delete --store "$R" --force "$glibcAlt" >/dev/null 2>&1
mkroot manual h "$hello"
mkroot auto old "$python"
touch -d '60 days ago' "$R/nix/var/nix/gcroots/runix/auto/old"
mkroot auto mid "$busybox"
touch -d '10 days ago' "$R/nix/var/nix/gcroots/runix/auto/mid"
free_now() { df -B1 --output=avail "$mnt" | tail -1 | tr -d ' '; }
conf() { printf 'min-free = %s\nmax-free = %s\n' "$1" "$2" >"$TEST_TMP/runix.conf"; }
export RUNIX_CONFIG=$TEST_TMP/runix.conf

f=$(free_now)
conf $((f + 1)) $((f + 1))
out=$(r fetch -q "$glibcAlt" 2>"$TEST_TMP/err")
is "$out" "$glibcAlt" "min-free above the free space: the fetch still fetches"
ok "  ...having collected garbage first, saying so" grep -q "less than min-free" "$TEST_TMP/err"
ok "  ...the dead paths" bash -c '! nix path-info --store "$1" "$2" 2>/dev/null' _ "$R" "$dash"
ok "  ...and no root, as that was enough" test -d "$R/nix/var/nix/gcroots/runix/auto/old" -a -d "$R/nix/var/nix/gcroots/runix/auto/mid"
ok "  ...in a store real Nix verifies" verified "$R"

"$RUNIX" store delete --store "$R" "$glibcAlt" >/dev/null 2>&1
f=$(free_now)
conf $((f + 1)) $((f + 16 * 1024 * 1024))
out=$(r fetch -q "$glibcAlt" 2>"$TEST_TMP/err")
is "$out" "$glibcAlt" "max-free 16 MiB above the free space: the fetch fetches"
ok "  ...having dropped the oldest automatic root" test ! -e "$R/nix/var/nix/gcroots/runix/auto/old"
ok "  ...and deleted what it kept" bash -c '! nix path-info --store "$1" "$2" 2>/dev/null' _ "$R" "$python"
ok "  ...but not the next one, as that was enough" whole "$busybox"
ok "  ...in a store real Nix verifies" verified "$R"

"$RUNIX" store delete --store "$R" "$glibcAlt" >/dev/null 2>&1
f=$(free_now)
conf $((f + 1)) 0
out=$(r fetch -q "$glibcAlt" 2>"$TEST_TMP/err")
is "$out" "$glibcAlt" "no max-free: the fetch fetches"
ok "  ...having dropped every automatic root" test ! -e "$R/nix/var/nix/gcroots/runix/auto/mid"
is "$(registered)" "$(nix path-info --store "$R" -r "$hello" "$glibcAlt" | sort)" \
  "  ...keeping exactly the manual root's closure and what the fetch is for"
ok "  ...in a store real Nix verifies" verified "$R"

conf 0 0
f=$(free_now)
"$RUNIX" store delete --store "$R" "$glibcAlt" >/dev/null 2>&1
out=$(r fetch -q "$glibcAlt" 2>"$TEST_TMP/err")
ok "min-free 0: no collection" bash -c '! grep -q "min-free" "$1"' _ "$TEST_TMP/err"
printf 'min-free = plenty\n' >"$TEST_TMP/runix.conf"
fails "a bad min-free is a usage error naming the file" 2 "runix.conf:1: 'min-free': 'plenty' is not a size" r fetch "$glibcAlt"
unset RUNIX_CONFIG

done_testing
