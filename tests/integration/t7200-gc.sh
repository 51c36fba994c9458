#!/usr/bin/env bash
# runix gc keeps exactly what real Nix's collector keeps (runix's roots, Nix's
# own gcroots and profiles), drops old automatic roots (--older-than), goes
# least recently used first with referrers first (--max-freed, --keep-size),
# changes nothing with --dry-run, speaks JSON, and leaves a store real Nix
# verifies.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
dash=$(path_of dash)
busybox=$(path_of busybox)
greeting=$(path_of greeting)
glibc=$(path_of glibc)
glibcAlt=$(path_of glibcAlt)
helloAlt=$(path_of helloAlt)
python=$(path_of python)

r() { "$RUNIX" "$1" --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-zstd" "${@:2}"; }
gc() { "$RUNIX" gc --store "$R" "$@"; }
# nix_dead R: what real Nix's collector would delete in a copy of store R, sorted.
nix_dead() {
  rm -rf "$TEST_TMP/copy"
  cp -a "$1" "$TEST_TMP/copy"
  nix-store --store "$TEST_TMP/copy" --gc --print-dead 2>/dev/null | grep '^/nix/store/' | sort
  chmod -R u+w "$TEST_TMP/copy"
  rm -rf "$TEST_TMP/copy"
}
# on_disk: the store entries of $R, with the lock files (not Nix's .links).
on_disk() { ls -A "$R/nix/store" | grep -vx .links | sort; }
nar_size() { db "select narSize from ValidPaths where path = '$1'"; }

# ---- the collector keeps what Nix keeps ------------------------------------
R=$TEST_TMP/store
r fetch -q "$top" >/dev/null
mkroot manual h "$hello"
mkroot auto old "$dash"
touch -d '40 days ago' "$R/nix/var/nix/gcroots/runix/auto/old"
mkroot auto new "$busybox"
mkroot installed tool "$glibcAlt"
nix-store --store "$R" --add-root "$R/nix/var/nix/gcroots/py" --indirect -r "$python" >/dev/null 2>&1
mkdir -p "$R/nix/var/nix/profiles"
ln -s "$helloAlt" "$R/nix/var/nix/profiles/p-1-link"
ln -s p-1-link "$R/nix/var/nix/profiles/p"

want=$(nix_dead "$R")
ok "real Nix would delete something here (the test means something)" test -n "$want"
before_disk=$(on_disk)
before_db=$(db "select path, registrationTime from ValidPaths order by path")
out=$(gc --dry-run 2>"$TEST_TMP/err")
rc=$?
is "$rc" 0 "gc --dry-run exits 0"
is "$(sort <<<"$out")" "$want" "  ...printing exactly what real Nix's collector would delete"
ok "  ...with a summary on stderr" grep -qE "^would delete $(wc -l <<<"$want") paths, freeing [0-9.]+ (MiB|KiB)$" "$TEST_TMP/err"
is "$(on_disk)" "$before_disk" "  ...deleting no file"
is "$(db "select path, registrationTime from ValidPaths order by path")" "$before_db" "  ...unregistering nothing"
ok "  ...and recording no run" test ! -e "$R/nix/var/runix/last-gc"

json=$(gc --dry-run --json)
is "$(jq -r '.deleted[].path' <<<"$json" | sort)" "$want" "gc --dry-run --json lists the same paths"
is "$(jq -r '[.dryRun, .paths, (.bytes == ([.deleted[].narSize] | add))] | @tsv' <<<"$json")" \
  "$(printf 'true\t%s\ttrue' "$(wc -l <<<"$want")")" "  ...with counts and sizes that add up"

out=$(gc 2>"$TEST_TMP/err")
rc=$?
is "$rc" 0 "gc exits 0"
is "$(sort <<<"$out")" "$want" "  ...deleting exactly what real Nix's collector would"
ok "  ...saying how much it freed" grep -qE "^deleted $(wc -l <<<"$want") paths, freed [0-9.]+ (MiB|KiB)$" "$TEST_TMP/err"
ok "  ...in a store real Nix verifies" verified "$R"
is "$(nix_dead "$R")" "" "  ...where real Nix finds nothing more to delete"
is "$(on_disk)" "$(registered | sed 's|^/nix/store/||')" "  ...and nothing but valid paths in nix/store"
ok "  ...and the run recorded in last-gc" grep -qxE "[0-9]+ $(wc -l <<<"$want") [0-9]+" "$R/nix/var/runix/last-gc"
ok "  ...and the index of the deleted top removed" test ! -e "$R/nix/var/runix/closures/$(basename "$top")"
out=$(gc 2>"$TEST_TMP/err")
is "$out:$(cat "$TEST_TMP/err")" ":deleted 0 paths, freed 0 bytes" "a second gc has nothing to delete"

# ---- --older-than drops old automatic roots ------------------------------
rm -rf "$TEST_TMP/older"
cp -a "$R" "$TEST_TMP/older"
rm -r "$TEST_TMP/older/nix/var/nix/gcroots/runix/auto/old"
want=$(nix_dead "$TEST_TMP/older")
chmod -R u+w "$TEST_TMP/older"; rm -rf "$TEST_TMP/older"
out=$(gc --older-than 30d 2>"$TEST_TMP/err")
is "$(sort <<<"$out")" "$want" "gc --older-than 30d deletes what only the root unused for 40 days kept"
ok "  ...saying it dropped one root" grep -q "(dropped 1 old automatic root)" "$TEST_TMP/err"
ok "  ...which is gone" test ! -e "$R/nix/var/nix/gcroots/runix/auto/old"
ok "  ...while the recent automatic, manual and installed roots stay" test -d "$R/nix/var/nix/gcroots/runix/auto/new" -a -d "$R/nix/var/nix/gcroots/runix/manual/h" -a -d "$R/nix/var/nix/gcroots/runix/installed/tool"
ok "  ...and Nix's own, with the closures they keep" bash -c 'nix path-info --store "$1" -r "$2" "$3" "$4" "$5" >/dev/null 2>&1' _ "$R" "$python" "$helloAlt" "$hello" "$busybox"
ok "  ...in a store real Nix verifies" verified "$R"

# ---- least recently used first, referrers first ---------------------------
R=$TEST_TMP/lru
r fetch -q "$busybox" "$greeting" "$dash" >/dev/null
mkroot auto a "$busybox"
mkroot auto b "$greeting"
mkroot auto c "$dash"
touch -d '50 days ago' "$R/nix/var/nix/gcroots/runix/auto/a"
touch -d '40 days ago' "$R/nix/var/nix/gcroots/runix/auto/b"
touch -d '35 days ago' "$R/nix/var/nix/gcroots/runix/auto/c"
json=$(gc --older-than 30d --dry-run --json)
is "$(jq -r '.rootsDropped[] | "\(.kind) \(.name)"' <<<"$json" | sort | tr '\n' ' ')" "auto a auto b auto c " \
  "--json names the roots --older-than would drop"
out=$(gc --older-than 30d --max-freed $(($(nar_size "$busybox") + 1)) 2>"$TEST_TMP/err")
is "$out" "$(printf '%s\n' "$busybox" "$greeting")" \
  "--max-freed: the path of the root used longest ago goes first, then the next, until enough is freed"
ok "  ...having dropped all three old roots" grep -q "(dropped 3 old automatic roots)" "$TEST_TMP/err"
is "$(registered)" "$(printf '%s\n' "$dash" "$glibc" | sort)" "  ...and kept the rest"
# glibc fetched long ago, dash just now: yet dash references glibc, so it goes first.
db "update ValidPaths set registrationTime = 1000 where path = '$glibc'"
total=$(db "select sum(narSize) from ValidPaths")
out=$(gc --keep-size $((total - 1)))
is "$out" "$dash" "--keep-size: a referrer goes before what it references, however old that is"
out=$(gc --max-freed 1 --json | jq -r '.deleted[].path')
is "$out" "$glibc" "--max-freed 1 deletes one path"
is "$(registered)" "" "  ...leaving the store empty"
ok "  ...and valid" verified "$R"

# ---- bad command lines ---------------------------------------------------
fails "a bad duration is a usage error" 2 "--older-than: '3x' is not a duration" gc --older-than 3x
fails "a bad size is a usage error" 2 "--max-freed: 'lots' is not a size" gc --max-freed lots
fails "no argument is taken" 2 "unexpected argument 'now'" gc now
out=$("$RUNIX" gc --store "$TEST_TMP/nothing-here" 2>&1)
is "$?:$out" "0:runix gc: there is no store at $TEST_TMP/nothing-here: nothing to collect" "gc of no store says so and creates nothing"
ok "  ...creating nothing" test ! -e "$TEST_TMP/nothing-here"
ok "gc --help has examples" bash -c '"$1" gc --help | grep -q "^Examples:"' _ "$RUNIX"

done_testing
