#!/usr/bin/env bash
# Who may change a store decides what runix runs, so runix refuses a store
# whose root, nix/, nix/store, nix/var/** or closure indexes belong to
# another user or can be written by group or others (sshd's StrictModes
# rule), in the front's warm `runix run` and in runix-core alike.  A store of
# root's that the user cannot write still runs.  And a warm run does not
# believe an index about a path that was replaced after it was written.
#
# Needs root: the victim is nobody (65534), the attacker another
# unprivileged uid (65533) with no account, both through setpriv.
. "$(dirname "$0")/lib/libtest.sh"
if [ "$(id -u)" != 0 ]; then
  echo "1..0 # SKIP needs root, to act as two unprivileged users"
  exit 0
fi
fixtures
hello=$(path_of hello)
hbase=$(basename "$hello")
greet="hello from a store library, world"

chmod 755 "$TEST_TMP"
victim=(setpriv --reuid=65534 --regid=65534 --clear-groups)
attacker=(setpriv --reuid=65533 --regid=65533 --clear-groups)
home=$TEST_TMP/home
mkdir -p "$home" && chown 65534:65534 "$home"
marks=$TEST_TMP/marks
mkdir -m 1777 "$marks"
att=$TEST_TMP/attacker # her own directory
mkdir "$att" && chown 65533:65533 "$att"
env_=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8
  RUNIX_CACHES="file://$FX/cache-zstd" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
# as WHO STORE ARGS...: runix ARGS as the victim (or root), on STORE
as() {
  local who=$1 store=$2
  shift 2
  local pre=()
  [ "$who" = victim ] && pre=("${victim[@]}")
  "${pre[@]}" env -i "${env_[@]}" RUNIX_STORE="$store" "$RUNIX" "$@"
}
# planted DIR: make DIR's hello the attacker's program, which leaves a mark
planted() {
  local p=$1/nix/store/$hbase/bin/hello
  chmod u+w "$(dirname "$p")" && rm -f "$p" &&
    printf '#!/bin/sh\ntouch %s/ran\necho planted\n' "$marks" >"$p" && chmod 755 "$p"
}

# A good store of the victim's own, and one of root's, fetched for real.
mine=$TEST_TMP/mine
mkdir "$mine" && chown 65534:65534 "$mine"
ok "the victim fetches into a store of her own" as victim "$mine" fetch -q "$hello"
is "$(as victim "$mine" run "$hello" hello 2>&1)" "$greet" "the victim runs from it"
ok "the index was written" test -f "$mine/nix/var/runix/closures/$hbase"
is "$(as victim "$mine" run "$hello" hello 2>&1)" "$greet" "a warm run works"

shared=$TEST_TMP/shared
ok "root prefetches a store" as root "$shared" fetch -q "$hello"
is "$(stat -c '%U %a' "$shared" "$shared/nix/store")" $'root 755\nroot 755' "root's store is 0755"
is "$(as victim "$shared" run "$hello" hello 2>&1)" "$greet" \
  "the victim runs from root's read-only store (warm)"
is "$(find "$shared" -uid 65534 | wc -l)" 0 "without writing to it"

# The attack: the attacker prepares a store root with her program in it and an index that names it.
evil=$att/evil
"${attacker[@]}" cp -a "$mine" "$evil" 2>/dev/null # all but the 0600 lock files
"${attacker[@]}" bash -c "$(declare -f planted); marks=$marks hbase=$hbase planted $evil"
ok "the attacker's tree is hers" test "$(stat -c %u "$evil/nix/store/$hbase/bin/hello")" = 65533
fails "warm run refuses a root another user owns" 1 "'$evil' belongs to uid 65533" \
  as victim "$evil" run "$hello" hello
fails "and says what to do" 1 "use a store of your own (--store DIR)" \
  as victim "$evil" run "$hello" hello
fails "fetch refuses it too" 1 "'$evil' belongs to uid 65533" as victim "$evil" fetch -q "$hello"
ok "the planted program never ran" test ! -e "$marks/ran"

# The same tree behind a root the victim owns: nix/ is the attacker's.
evil2=$TEST_TMP/evil2
mkdir "$evil2" && chown 65534:65534 "$evil2"
mv "$evil/nix" "$evil2/nix"
fails "warm run refuses another user's nix/" 1 "'$evil2/nix' belongs to uid 65533" \
  as victim "$evil2" run "$hello" hello
ok "the planted program never ran" test ! -e "$marks/ran"

# A symlink the attacker owns, to a good store: she could point it anywhere.
ln -s "$mine" "$TEST_TMP/link" && chown -h 65533:65533 "$TEST_TMP/link"
fails "a root that is another user's symlink is refused" 1 "symlink that belongs to uid 65533" \
  as victim "$TEST_TMP/link" run "$hello" hello
ln -s "$mine" "$TEST_TMP/mylink" && chown -h 65534:65534 "$TEST_TMP/mylink"
is "$(as victim "$TEST_TMP/mylink" run "$hello" hello 2>&1)" "$greet" \
  "a symlink of her own to her store is followed"

# The reviewer's scene: a world-writable root (sticky or not) someone else made.
for mode in 1777 0777; do
  d=$att/open-$mode
  "${attacker[@]}" mkdir -m "$mode" "$d"
  fails "fetch refuses a $mode root of another user's" 1 "'$d' belongs to uid 65533" \
    as victim "$d" fetch -q "$hello"
  ok "and creates nothing in it" test -z "$(ls -A "$d")"
done

# /tmp itself is no store, and root's: the fix is a directory in it.
d=$TEST_TMP/sticky
mkdir -m 1777 "$d"
fails "a sticky shared directory is no store" 1 "use a directory of your own in it, such as '$d/store'" \
  as victim "$d" run "$hello" hello
ok "and a store in it works" as victim "$d/store" fetch -q "$hello"
is "$(as victim "$d/store" run "$hello" hello 2>&1)" "$greet" "and runs"

# Group or others may write: the victim's own store, made writable by mistake.
for rel in "" /nix /nix/store /nix/var /nix/var/runix /nix/var/runix/closures \
  "/nix/var/runix/closures/$hbase"; do
  for bits in g+w o+w; do
    chmod "$bits" "$mine$rel"
    fails "warm run refuses $bits on '${rel:-/}'" 1 "'$mine$rel' is writable by" \
      as victim "$mine" run "$hello" hello
    chmod go-w "$mine$rel"
  done
done
chmod o+w "$mine/nix/var/runix/closures"
fails "and names the fix" 1 "run 'chmod go-w $mine/nix/var/runix/closures'" \
  as victim "$mine" run "$hello" hello
chmod go-w "$mine/nix/var/runix/closures"
# A fetch of a complete closure only reads; one that downloads works in tmp/ too.
dash=$(path_of dash)
for rel in /nix/var /nix/var/nix /nix/var/nix/db /nix/var/nix/db/db.sqlite /nix/var/runix/tmp; do
  chmod o+w "$mine$rel"
  for p in "$hello" "$dash"; do
    [ "$rel" = /nix/var/runix/tmp ] && [ "$p" = "$hello" ] && continue
    fails "fetch $(basename "$p") refuses o+w on '$rel'" 1 "'$mine$rel' is writable by other users" \
      as victim "$mine" fetch -q "$p"
  done
  chmod go-w "$mine$rel"
done
ok "nothing was fetched through an unsafe store" test ! -e "$mine/nix/store/$(basename "$dash")"
# An index the attacker put in place (the directory was writable for a while).
idx=$mine/nix/var/runix/closures/$hbase
chown 65533:65533 "$idx"
fails "warm run refuses an index another user owns" 1 "'$idx' belongs to uid 65533" \
  as victim "$mine" run "$hello" hello
chown 65534:65534 "$idx"
is "$(as victim "$mine" run "$hello" hello 2>&1)" "$greet" "put right, the store runs again"

# A path replaced after the index was written is not believed: the database decides again.
ino() { stat -c %i "$mine/nix/store/$hbase"; }
old=$(ino)
ok "the index records the path's inode" grep -q "^$hbase [0-9]* $old " "$idx"
"${victim[@]}" bash -c "cd '$mine/nix/store' && mv $hbase old && cp -a old $hbase && chmod -R u+w old && rm -rf old"
new=$(ino)
ok "the path is another inode now" test "$old" != "$new"
is "$(as victim "$mine" run --offline "$hello" hello 2>&1)" "$greet" "the run still works"
ok "through the database, which wrote the index again" grep -q "^$hbase [0-9]* $new " "$idx"
ok "nothing planted ran at any point" test ! -e "$marks/ran"

done_testing
