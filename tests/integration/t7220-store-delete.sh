#!/usr/bin/env bash
# runix store delete refuses what something alive needs, naming the keeper,
# and with --force takes the referrers along (never what a running program
# uses); runix store destroy removes everything, read-only files included,
# only when confirmed and when nobody uses the store.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
dash=$(path_of dash)
glibc=$(path_of glibc)
scripts=$(path_of scripts)
busybox=$(path_of busybox)

r() { "$RUNIX" "$1" --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-zstd" "${@:2}"; }
del() { "$RUNIX" store delete --store "$R" "$@"; }
valid() { [ -n "$(db "select 1 from ValidPaths where path = '$1'")" ]; }
# hold FILE MODE: a process holding flock MODE (-s, -x) on FILE, as $holder.
hold() {
  ( exec 9<"$1"; flock "$2" 9; exec sleep 60 ) &
  holder=$!
  sleep 0.2
}

# ---- store delete --------------------------------------------------------
R=$TEST_TMP/store
r fetch -q "$top" >/dev/null
mkroot manual h "$hello"
before=$(registered)
fails "deleting a rooted path is refused, naming the root" 1 \
  "'$hello' is kept alive by the manual root 'h' ($R/nix/var/nix/gcroots/runix/manual/h)" del "$hello"
fails "deleting a path others reference is refused, naming one" 1 "'$dash' is referenced by '$scripts'" del "$dash"
fails "  ...and says what to do" 1 "use --force to delete the paths with everything that references them" del "$dash"
is "$(registered)" "$before" "  ...deleting nothing"
fails "a path not in the store is an error" 1 "is not in the store $R" \
  del /nix/store/00000000000000000000000000000000-missing-1.0
fails "a path that is no store path is a usage error" 2 "" del /tmp/nothing

out=$(del "$top")
is "$?:$out" "0:$top" "deleting a dead top path deletes it alone"
ok "  ...from disk too" test ! -e "$R$top"
ok "  ...in a store real Nix verifies" verified "$R"

out=$(del --dry-run --force "$dash")
is "$(sort <<<"$out")" "$(printf '%s\n' "$dash" "$scripts" | sort)" "--force --dry-run lists the path and what references it"
ok "  ...deleting nothing" valid "$dash"
out=$(del --force "$dash")
is "$(tail -1 <<<"$out")" "$dash" "--force deletes the path after what references it"
ok "  ...both gone" bash -c '! sqlite3 "$1" "select path from ValidPaths" | grep -qx -e "$2" -e "$3"' _ "$R/nix/var/nix/db/db.sqlite" "$dash" "$scripts"
ok "  ...in a store real Nix verifies" verified "$R"

# glibc: referenced by hello (rooted) and more; --force takes all and drops the root.
r fetch -q "$busybox" >/dev/null
hold "$R/nix/var/runix/closures/$(basename "$busybox")" -s
fails "--force still refuses a path a running program uses" 1 \
  "'$busybox' is in use by a running program (closure index '$(basename "$busybox")')" del --force "$busybox"
kill $holder; wait $holder 2>/dev/null
out=$(del --force "$glibc")
ok "--force deletes glibc with everything that needs it" bash -c '! sqlite3 "$1" "select path from ValidPaths" | grep -qx "$2"' _ "$R/nix/var/nix/db/db.sqlite" "$glibc"
ok "  ...hello among them" grep -qx "$hello" <<<"$out"
ok "  ...and the root that held it" test ! -e "$R/nix/var/nix/gcroots/runix/manual/h"
ok "  ...in a store real Nix verifies" verified "$R"
ok "  ...where every path left has its closure" bash -c 'nix-store --store "$1" -qR $(sqlite3 "$1/nix/var/nix/db/db.sqlite" "select path from ValidPaths") >/dev/null 2>&1' _ "$R"

# ---- store destroy --------------------------------------------------------
R=$TEST_TMP/doomed
r fetch -q "$top" >/dev/null
fails "store destroy without a terminal and without --yes refuses" 1 "pass --yes" \
  "$RUNIX" store destroy --store "$R" </dev/null
ok "  ...leaving the store" valid "$top"
hold "$R/nix/var/runix/gc.lock" -s
fails "store destroy while another runix process uses the store refuses" 1 "other runix processes are using the store" \
  "$RUNIX" store destroy --store "$R" --yes
kill $holder; wait $holder 2>/dev/null
hold "$R/nix/var/runix/closures/$(basename "$top")" -s
fails "store destroy while a program runs from it refuses" 1 "a program is running from the store" \
  "$RUNIX" store destroy --store "$R" --yes
kill $holder; wait $holder 2>/dev/null
if command -v script >/dev/null; then
  out=$(echo "not it" | script -qec "$RUNIX store destroy --store $R" /dev/null 2>&1)
  ok "on a terminal, a wrong answer keeps the store" valid "$top"
  out=$(echo "$R" | script -qec "$RUNIX store destroy --store $R" /dev/null 2>&1)
  ok "on a terminal, typing the store's path removes it" test ! -e "$R"
  r fetch -q "$top" >/dev/null
fi
mkdir -p "$TEST_TMP/keep"
touch "$TEST_TMP/keep/mine"
out=$("$RUNIX" store destroy --store "$R" --yes 2>&1)
is "$?:$out" "0:removed the store $R" "store destroy --yes removes the store"
ok "  ...leaving nothing, read-only store files included" test ! -e "$R"
R=$TEST_TMP/keep
r fetch -q "$hello" >/dev/null
"$RUNIX" store destroy --store "$R" --yes >/dev/null 2>&1
is "$(ls -A "$R")" "mine" "store destroy leaves the user's own files beside the store"
out=$("$RUNIX" store destroy --store "$TEST_TMP/never" --yes 2>&1)
is "$?:$out" "0:runix store destroy: there is no store at $TEST_TMP/never" "store destroy of no store says so"
ok "store delete --help has examples" bash -c '"$1" store delete --help | grep -q "^Examples:"' _ "$RUNIX"
ok "store destroy --help has examples" bash -c '"$1" store destroy --help | grep -q "^Examples:"' _ "$RUNIX"

done_testing
