#!/usr/bin/env bash
# Where the store is, and what touches it.  A relative --store or
# RUNIX_STORE is the current directory's, a relative 'store =' the config
# file's directory's and '~' in it is $HOME; resolved once, so a fetch child,
# the engines and doctor all see that one absolute directory, whatever the
# current directory.  Commands that only read (doctor, fetch --dry-run,
# fetch --offline, a fetch or run of a complete closure) create and change
# nothing.  A complete store of root's that the user cannot write (an
# administrator's prefetched one) runs and answers --offline, and only a
# fetch that must write is refused, saying so.
#
# The last part needs root, to prepare root's store and act as nobody.
. "$(dirname "$0")/lib/libtest.sh"
fixtures
hello=$(path_of hello)
hbase=$(basename "$hello")
dash=$(path_of dash)
greet="hello from a store library, world"

chmod 755 "$TEST_TMP"
home=$TEST_TMP/home
mkdir -p "$home/.config/runix"
env_=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8
  RUNIX_CACHES="file://$FX/cache-zstd" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
# rx DIR ARGS...: runix ARGS in the directory DIR, with only our environment
rx() {
  local dir=$1
  shift
  (cd "$dir" && env -i "${env_[@]}" "${extra[@]}" "$RUNIX" "$@")
}
extra=(LC_ALL=C.UTF-8) # more of the environment, for some tests
# snap DIR: every file under DIR with its mtime, ctime and size
snap() { find "$1" -printf '%p %T@ %C@ %s %m\n' | sort; }
mkdir -p "$TEST_TMP/a" "$TEST_TMP/b"

# --- '~' and relative paths in the config file ---
conf=$home/.config/runix/runix.conf
echo 'store = ~/st' >"$conf"
out=$(rx "$TEST_TMP/a" doctor 2>&1)
ok "doctor: '~' in 'store =' is \$HOME" grep -qxF "store: $home/st: no store there yet ('runix fetch' makes it)" <<<"$out"
ok "and doctor made nothing there" test ! -e "$home/st"
echo 'store = ~' >"$conf"
ok "a lone '~' is \$HOME" grep -qxF "store: $home: no store there yet ('runix fetch' makes it)" <<<"$(rx "$TEST_TMP/a" doctor 2>&1)"
echo 'store = ~root/st' >"$conf"
fails "'~user' is refused, naming the setting" 2 "'store' in $conf: '~root/st' names another user's home" \
  rx "$TEST_TMP/a" fetch --dry-run "$hello"
out=$(rx "$TEST_TMP/a" doctor 2>&1) && rc=0 || rc=$?
ok "doctor reports it as a problem of the config file (exit 1)" bash -c \
  '[ "$1" = 1 ] && grep -qF "problem: '"'"'store'"'"' in $2: '"'"'~root/st'"'"' names another user'"'"'s home" <<<"$3"' _ "$rc" "$conf" "$out"

echo 'store = ./st//rel/.' >"$conf"
ok "a relative 'store =' fetches into the config file's directory" rx "$TEST_TMP/a" fetch -q "$hello"
ok "which has the path" test -d "$home/.config/runix/st/rel/nix/store/$hbase"
ok "and nothing was made in the current directory" test -z "$(ls -A "$TEST_TMP/a")"
is "$(rx "$TEST_TMP/b" run --engine preload "$hello" hello 2>&1)" "$greet" \
  "a run from another directory uses the same store"
is "$(rx "$TEST_TMP/b" run -q --engine preload "$dash" dash -c 'echo $RUNIX_STORE_DIR' 2>&1)" \
  "$home/.config/runix/st/rel/nix/store" "the engine gets the absolute store (a cold run: the fetch child got it too)"
ok "nothing was made in either directory" test -z "$(ls -A "$TEST_TMP/a" "$TEST_TMP/b" | grep -v :)"
ok "doctor shows the absolute store" grep -q "^store: $home/.config/runix/st/rel (" <<<"$(rx "$TEST_TMP/b" doctor 2>&1)"
# An included file's 'store =' is relative to that file.
mkdir -p "$TEST_TMP/inc"
echo 'store = inc-store' >"$TEST_TMP/inc/more.conf"
echo "include $TEST_TMP/inc/more.conf" >"$conf"
ok "an included 'store =' is relative to the file it is in" \
  grep -qF "store: $TEST_TMP/inc/inc-store: no store there yet" <<<"$(rx "$TEST_TMP/a" doctor 2>&1)"
# RUNIX_CONFIG names a relative file: its directory is taken from the current one.
echo 'store = s2' >"$TEST_TMP/a/c.conf"
extra=(RUNIX_CONFIG=c.conf)
ok "RUNIX_CONFIG relative: its 'store =' is beside it" \
  grep -qF "store: $TEST_TMP/a/s2: no store there yet" <<<"$(rx "$TEST_TMP/a" doctor 2>&1)"
extra=(LC_ALL=C.UTF-8)
rm -f "$TEST_TMP/a/c.conf" "$conf"

# --- relative --store and RUNIX_STORE: the current directory's ---
rx "$TEST_TMP/a" run -q --engine preload --store ./rs "$hello" hello >"$TEST_TMP/out" 2>&1
is "$(cat "$TEST_TMP/out")" "$greet" "a cold run with a relative --store"
ok "fetched into the current directory's store" test -d "$TEST_TMP/a/rs/nix/store/$hbase"
is "$(rx "$TEST_TMP/a" run -q --engine preload --store rs "$dash" dash -c 'echo $RUNIX_STORE_DIR' 2>&1)" \
  "$TEST_TMP/a/rs/nix/store" "the engine gets it absolute"
extra=(RUNIX_STORE=../a/rs)
is "$(rx "$TEST_TMP/b" run --offline --engine preload "$hello" hello 2>&1)" \
  "$greet" "a relative RUNIX_STORE is the current directory's"
ok "doctor shows it ('..' kept, for the kernel to follow)" \
  grep -q "^store: $TEST_TMP/a/rs (" <<<"$(rx "$TEST_TMP/b" doctor 2>&1)"
extra=(LC_ALL=C.UTF-8)
ok "no store was made in b" test -z "$(ls -A "$TEST_TMP/b")"

# --- read-only commands on a store that does not exist ---
none=$TEST_TMP/none/store
mkdir "$TEST_TMP/none"
out=$(rx "$TEST_TMP/a" doctor --store "$none" 2>&1)
ok "doctor says there is no store there yet" grep -qxF "store: $none: no store there yet ('runix fetch' makes it)" <<<"$out"
out=$(rx "$TEST_TMP/a" fetch --dry-run --store "$none" "$hello" 2>&1)
ok "fetch --dry-run plans the whole closure" grep -q "$hbase" <<<"$out"
fails "fetch --offline says there is no store" 1 "runix fetch: there is no store at '$none' yet, so $hello is not in it" \
  rx "$TEST_TMP/a" fetch --offline --store "$none" "$hello"
fails "run --offline too" 1 "there is no store at '$none' yet" \
  rx "$TEST_TMP/a" run --offline --store "$none" "$hello" hello
ok "none of them made anything" test -z "$(ls -A "$TEST_TMP/none")"

# --- and on a complete store: nothing changes ---
st=$TEST_TMP/a/rs
rx "$TEST_TMP/a" run --store "$st" "$hello" hello >/dev/null 2>&1 # auto's probe, once per boot
before=$(snap "$st")
rx "$TEST_TMP/a" doctor --store "$st" >/dev/null 2>&1
ok "fetch --dry-run of a complete closure" rx "$TEST_TMP/a" fetch -q --dry-run --store "$st" "$hello"
ok "fetch --offline" rx "$TEST_TMP/a" fetch -q --offline --store "$st" "$hello"
ok "fetch of a complete closure" rx "$TEST_TMP/a" fetch -q --store "$st" "$hello"
for e in auto preload userns; do
  rx "$TEST_TMP/a" run --engine $e --store "$st" "$hello" hello >/dev/null 2>&1
done
is "$(snap "$st")" "$before" "doctor, dry-run, offline, fetch and warm runs changed nothing in the store"
ok "and left no -wal or -shm file" test -z "$(ls "$st/nix/var/nix/db" | grep -e -wal -e -shm)"

# --- a store of root's, read-only to the user ---
if [ "$(id -u)" != 0 ]; then
  echo "# not root: the root-owned store part needs root (CI runs it)"
  done_testing
  exit
fi
victim=(setpriv --reuid=65534 --regid=65534 --clear-groups)
chown -R 65534:65534 "$home"
shared=$TEST_TMP/opt-store
(umask 022 && env -i "${env_[@]}" RUNIX_STORE="$shared" "$RUNIX" fetch -q "$hello") >/dev/null
is "$(stat -c '%U %a' "$shared" "$shared/nix/var/nix/db" "$shared/nix/var/nix/db/db.sqlite")" \
  $'root 755\nroot 755\nroot 644' "root's store: dirs 0755, db 0644"
# as ARGS...: runix ARGS as nobody on root's store
as() { (cd "$home" && "${victim[@]}" env -i "${env_[@]}" RUNIX_STORE="$shared" "$RUNIX" "$@"); }
rm -f "$shared/nix/var/runix/userns-ok"
before=$(snap "$shared")
out=$(as fetch --offline "$hello" 2>&1)
is "$out" "$hello" "nobody: fetch --offline works on root's store, without a word on stderr"
is "$(as run -v --engine preload "$hello" hello 2>&1)" "runix: engine: preload"$'\n'"$greet" \
  "nobody runs from it with preload"
if "${victim[@]}" unshare -U true 2>/dev/null; then
  is "$(as run -v --engine userns "$hello" hello 2>&1)" "runix: engine: userns"$'\n'"$greet" \
    "nobody runs from it with userns"
else
  echo "# userns is not available to uid 65534 here: only preload was run"
fi
is "$(as run "$hello" hello 2>&1)" "$greet" "and with auto"
ok "fetch --dry-run of a missing path works" as fetch -q --dry-run "$dash"
fails "fetch of a missing path is refused, saying why" 1 \
  "runix fetch: the store '$shared' is not writable by you (uid 65534): '$shared/nix/store' belongs to uid 0, mode 0755; use --store DIR for a store of your own" \
  as fetch -q "$dash"
fails "run of one too" 1 "the store '$shared' is not writable by you" as run "$dash" dash -c true
ok "doctor says it is read-only to you" grep -q "^store: $shared (.*read-only to you" <<<"$(as doctor 2>&1)"
is "$(snap "$shared")" "$before" "nothing in root's store changed"
is "$(find "$shared" -uid 65534 | wc -l)" 0 "and nothing in it is nobody's"
# While root has the database open (its -wal and -shm exist, 0644), nobody reads through them.
fifo=$TEST_TMP/hold
mkfifo "$fifo"
python3 -c '
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("select count(*) from ValidPaths").fetchall()
print("open", flush=True)
sys.stdin.read()' "$shared/nix/var/nix/db/db.sqlite" <"$fifo" >"$TEST_TMP/held" &
holder=$!
exec 9>"$fifo"
for _ in $(seq 100); do grep -q open "$TEST_TMP/held" 2>/dev/null && break; sleep 0.1; done
ok "root's connection made the -wal and -shm files" test -e "$shared/nix/var/nix/db/db.sqlite-shm"
is "$(as fetch --offline "$hello" 2>&1)" "$hello" "nobody's fetch --offline reads through them"
is "$(as run --engine preload "$hello" hello 2>&1)" "$greet" "and nobody runs"
exec 9>&-
wait "$holder"

done_testing
