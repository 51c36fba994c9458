#!/usr/bin/env bash
# A store path registered but gone from disk is found (doctor, fetch
# --offline), unregistered with what needs it and fetched again (fetch,
# run); a path that cannot be fetched does not throw away the closures that
# do not need it.  Real Nix checks every store left behind.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
glibc=$(path_of glibc)
libgreet=$(path_of libgreet)
missing=/nix/store/00000000000000000000000000000000-missing-1.0

r() { "$RUNIX" "$1" --trusted-key "$key" --store "$R" --cache "$HTTP/ok/cache-zstd" "${@:2}"; }
# rm_path P: remove store path P from $R by hand, as a user would.
rm_path() { chmod -R u+w "$R$1" && rm -rf "$R$1"; }

# closure_of R P: what real Nix says P's closure is in store R, sorted.
closure_of() { nix path-info --store "$1" -r "$2" | sort; }

# ---- a path deleted by hand --------------------------------------------
R=$TEST_TMP/store
r fetch -q "$hello" >/dev/null
want=$(closure_of "$R" "$hello")
rm_path "$glibc"

out=$("$RUNIX" doctor --store "$R" --cache "$HTTP/ok/cache-zstd" 2>&1)
rc=$?
is "$rc" 1 "doctor exits 1 when a registered path is missing"
ok "  ...and names it, with what to do" bash -c 'grep -q "store consistency: 1 registered path is missing or damaged on disk" <<<"$1" &&
  grep -qx "    $2" <<<"$1" && grep -q "runix fetch PATH" <<<"$1"' _ "$out" "$glibc"

fails "fetch --offline reports the missing path instead of 'complete'" 1 \
  "$glibc is registered but missing or damaged in $R/nix/store, and --offline forbids fetching it" \
  r fetch --offline "$hello"
fails "run --offline does not run from an incomplete closure" 1 "$glibc is registered but missing" \
  r run --offline "$hello/bin/hello"

# With no cache that has it, the repair keeps the store as Nix wants it: the
# missing path and what needs it unregistered, the rest as it was.
cp -r "$FX/cache-zstd" "$TEST_TMP/no-glibc"
rm "$TEST_TMP/no-glibc/$(basename "$glibc" | cut -c1-32).narinfo"
fails "a missing path no cache has: fetch fails, naming it" 1 "cannot fetch '$glibc' (a reference of '$hello'): no cache could provide it" \
  "$RUNIX" fetch --trusted-key "$key" --store "$R" --cache "file://$TEST_TMP/no-glibc" "$hello"
fails "  ...and the path asked for that needs it" 1 "'$hello' is incomplete, as it needs that" \
  "$RUNIX" fetch --trusted-key "$key" --store "$R" --cache "file://$TEST_TMP/no-glibc" "$hello"
is "$(registered)" "$(comm -23 <(echo "$want") <(printf '%s\n' "$glibc" "$hello" "$libgreet" | sort))" \
  "  ...having unregistered it and exactly the paths that need it"
ok "  ...in a store real Nix verifies" verified "$R"

out=$(r fetch "$hello" 2>"$TEST_TMP/err")
rc=$?
is "$rc:$out" "0:$hello" "fetch fetches the missing path again"
ok "  ...with the paths that needed it, as real Nix sees" bash -c '[ "$(nix path-info --store "$1" -r "$2" | sort)" = "$3" ]' _ "$R" "$hello" "$want"
ok "  ...in a store real Nix verifies" verified "$R"
out=$("$RUNIX" doctor --store "$R" --cache "$HTTP/ok/cache-zstd" 2>&1)
ok "doctor: the store is consistent again" grep -q "store consistency: every registered path is on disk" <<<"$out"

# runix run: the closure index no longer matches, so run falls back to the
# database and the caches, and runs the program.
rm_path "$glibc"
out=$(r run -q "$hello/bin/hello" 2>&1)
is "$out" "hello from a store library, world" "run with a deleted dependency fetches it again and runs"
rm_path "$hello"
out=$(r run -q "$hello/bin/hello" 2>&1)
is "$out" "hello from a store library, world" "run with the deleted path itself fetches it again and runs"
ok "  ...leaving a store real Nix verifies" verified "$R"
is "$(closure_of "$R" "$hello")" "$want" "  ...with the whole closure"

# A path replaced by something no NAR makes (a FIFO) is damaged: the same.
rm_path "$libgreet"
mkfifo "$R$libgreet"
out=$("$RUNIX" doctor --store "$R" --cache "$HTTP/ok/cache-zstd" 2>&1)
ok "doctor lists a path replaced by a FIFO" grep -qx "    $libgreet" <<<"$out"
out=$(r fetch "$hello" 2>"$TEST_TMP/err")
is "$out" "$hello" "fetch replaces the FIFO with the path"
ok "  ...saying so, and what else it fetches again" grep -qF \
  "warning: '$libgreet' is registered but missing or damaged in $R/nix/store: fetching it again, with the 1 registered path that needs it" \
  "$TEST_TMP/err"
ok "  ...and real Nix verifies the store" verified "$R"
ok "  ...and the path is a directory again" test -d "$R$libgreet"

# ---- one bad path does not throw away the rest ---------------------------
R=$TEST_TMP/store-missing-good
out=$(r fetch "$missing" "$top" 2>"$TEST_TMP/err")
rc=$?
is "$rc" 1 "fetch MISSING GOOD exits 1"
ok "  ...naming the path no cache has" grep -q "cannot fetch '$missing': no cache could provide it" "$TEST_TMP/err"
is "$out" "$top" "  ...and prints the path it fetched"
is "$(closure_of "$R" "$top")" "$(cat "$FX/closure")" "  ...whose closure real Nix sees complete"
ok "  ...in a store real Nix verifies" verified "$R"
is "$(sed -n 's/^fetched \([^ ]*\) .*/\1/p' "$TEST_TMP/err" | sort)" "$(registered)" \
  "  ...having said 'fetched' for exactly the paths it kept"

# A cache whose NAR of one leaf is corrupt: every path that does not need
# the leaf is kept, those that do are not registered.
leaf=$(grep -- '-greet.c$' "$FX/closure")
web=$TEST_TMP/web
mkdir -p "$web"
cp -r "$FX/cache-none" "$web/corrupt"
nar=$web/corrupt/$(sed -n 's/^URL: //p' "$web/corrupt/$(basename "$leaf" | cut -c1-32).narinfo")
size=$(stat -c %s "$nar")
# One byte in the middle of the file's contents: the NAR parses, its hash is wrong.
printf '\001' | dd of="$nar" bs=1 seek=$((size / 2)) conv=notrunc status=none
needs_leaf=$(nix-store -q --referrers-closure "$leaf" | sort)
kept_want=$(comm -23 "$FX/closure" <(echo "$needs_leaf"))
R=$TEST_TMP/store-corrupt
out=$("$RUNIX" fetch --trusted-key "$key" --store "$R" --cache "file://$web/corrupt" "$top" "$glibc" \
  2>"$TEST_TMP/err")
rc=$?
is "$rc" 1 "a corrupt leaf NAR: fetch exits 1"
ok "  ...naming the leaf" grep -q "cannot fetch '$leaf'" "$TEST_TMP/err"
ok "  ...and the hash that did not match" grep -q "NarHash mismatch" "$TEST_TMP/err"
ok "  ...and the path asked for that needs it" grep -q "'$top' is incomplete, as it needs that" "$TEST_TMP/err"
is "$out" "$glibc" "  ...printing the path asked for that it could fetch"
is "$(registered)" "$kept_want" "  ...keeping every path that does not need the leaf ($(wc -l <<<"$kept_want"))"
ok "  ...in a store real Nix verifies" verified "$R"
is "$(sed -n 's/^fetched \([^ ]*\) .*/\1/p' "$TEST_TMP/err" | sort)" "$kept_want" \
  "  ...having said 'fetched' only for those"
is "$(ls "$R/nix/store" | grep -v '\.lock$' | sed 's|^|/nix/store/|' | sort)" "$kept_want" \
  "  ...and leaving nothing else in nix/store"
is "$(ls -A "$R/nix/var/runix/tmp")" "" "  ...nor in its work dir"
out=$(r fetch -q "$top" 2>&1)
is "$out" "$top" "the same fetch from a good cache completes the closure"
ok "  ...and real Nix verifies it" verified "$R"

# A tree left in nix/store unregistered (a fetch killed between installing
# and registering it, or a path unregistered because one it needs had gone)
# is kept when it is exactly the signed NAR, in canonical form, instead of
# being downloaded again; anything else about it, and it is downloaded.
R=$TEST_TMP/store-leftover
r fetch -q "$top" >/dev/null 2>&1
unregister() { # unregister P: as a killed fetch leaves it, the tree stays
  db "delete from Refs where referrer = (select id from ValidPaths where path = '$1');
      delete from ValidPaths where path = '$1';"
}
nar_of() { sed -n 's/^URL: //p' "$FX/cache-zstd/$(basename "$1" | cut -c1-32).narinfo"; }
unregister "$top"
: >"$HTTP_LOG"
out=$(r fetch -q "$top" 2>&1)
is "$out" "$top" "an unregistered tree that is the very NAR: fetch completes"
ok "  ...without downloading it again" bash -c "! grep -q '$(nar_of "$top")' '$HTTP_LOG'"
ok "  ...and real Nix verifies the store" verified "$R"
# Its content changed: downloaded, and the store verifies.  hello goes
# with every path that needs it, as store_unregister_missing() would do;
# those are left on disk whole, and kept.
file=$(find "$R$hello" -type f | head -1)
unregister_with_referrers() {
  local p
  for p in $(nix-store -q --referrers-closure "$1"); do unregister "$p"; done
}
unregister_with_referrers "$hello"
chmod u+w "$file" "$(dirname "$file")"
printf 'X' | dd of="$file" bs=1 seek=0 conv=notrunc status=none
chmod a-w "$file" "$(dirname "$file")"
touch -h -d @1 "$file" "$(dirname "$file")"
: >"$HTTP_LOG"
out=$(r fetch -q "$top" 2>&1)
is "$out" "$top" "an unregistered tree with other contents: fetch completes"
ok "  ...downloading it again" grep -q "$(nar_of "$hello")" "$HTTP_LOG"
ok "  ...but not the paths that need it, which are whole" \
  bash -c "! grep -q '$(nar_of "$top")' '$HTTP_LOG'"
ok "  ...and real Nix verifies the store" verified "$R"
# The same contents, but not canonical (writable): downloaded again too.
unregister_with_referrers "$hello"
chmod u+w "$file"
: >"$HTTP_LOG"
out=$(r fetch -q "$top" 2>&1)
is "$out" "$top" "an unregistered tree with a writable file: fetch completes"
ok "  ...downloading it again" grep -q "$(nar_of "$hello")" "$HTTP_LOG"
ok "  ...leaving it canonical" bash -c "[ \$(stat -c %a '$file') != 644 ] && [ \$(stat -c %a '$file') != 755 ]"
ok "  ...and real Nix verifies the store" verified "$R"

done_testing
