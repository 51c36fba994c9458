#!/usr/bin/env bash
# runix run / shell / doctor with both engines, on the closure real Nix built:
# store loader and RUNPATH, a store library, store shebangs, a wrapper, an
# env shebang, a script as interpreter, a buildEnv symlink farm, Python with a
# C extension, /proc/self/exe, exit statuses, signals, stdin, a TTY, a static
# binary, a daemon that outlives runix, runix inside runix.
#
# Everything runs as an unprivileged user, inside a user namespace in which
# the host's /nix/store (where Nix built the fixture) is hidden under an empty
# tmpfs, so only the engine can make the paths appear.  Modes:
#   store     the host has an (empty) /nix/store: userns uses an overlay
#   nonix     the host's /nix is empty, there is no /nix/store: userns builds
#             a new root
#   noexec    as store, with the runix store mounted noexec
#   nouserns  as store, and no further user namespace may be created
#             (max_user_namespaces is used up): auto must fall back to preload
. "$(dirname "$0")/lib/libtest.sh"
fixtures
top=$(cat "$FX/top")
hello=$(path_of hello)
dash=$(path_of dash)
busybox=$(path_of busybox)
scripts=$(path_of scripts)
python=$(path_of python)
greeting=$(path_of greeting)
loader=$(basename "$(readelf -l /bin/sh | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')")

chmod 755 "$TEST_TMP"
test_user
home=$TEST_TMP/home
mkdir -p "$home"
[ "$(id -u)" = 0 ] && chown "$uid:$gid" "$home"

cat >"$TEST_TMP/in-view" <<'EOF'
#!/bin/sh
# in-view MODE CMD...: hide the host store, then become the user again.
mode=$1
shift
case $mode in
store) [ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99 ;;
nonix) [ ! -d /nix ] || mount -t tmpfs -o ro none /nix || exit 99 ;;
noexec)
  [ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99
  mount --bind "$RUNIX_STORE" "$RUNIX_STORE" && mount -o remount,bind,noexec "$RUNIX_STORE" || exit 99 ;;
nouserns)
  [ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99
  echo 1 >/proc/sys/user/max_user_namespaces || exit 99 ;;
esac
exec unshare --user --map-user="$RX_UID" --map-group="$RX_GID" -- "$@"
EOF
chmod 755 "$TEST_TMP/in-view"

MODE=store
# v CMD...: run CMD as the user in the current MODE, with runix's settings.
view_env=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8
  RX_UID="$uid" RX_GID="$gid" RUNIX_STORE="$home/store"
  RUNIX_CACHES="file://$FX/cache-zstd" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
v() {
  "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$MODE" "$@"
}
# ve CMD...: the same, replacing the calling (sub)shell: every step execs.
ve() {
  exec "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$MODE" "$@"
}
# r ARGS...: runix ARGS in the view
r() { v "$RUNIX" "$@"; }

# The controls: the store really is hidden, so nothing passes by accident.
for MODE in store nonix; do
  is "$(v sh -c 'ls /nix/store 2>/dev/null | wc -l')" 0 "$MODE: the host store is hidden"
  fails "$MODE: the fixture cannot run without an engine" 127 "" v "$hello/bin/hello"
  is "$(v id -u)" "$uid" "$MODE: the tests run as the unprivileged user"
done

MODE=store
ok "fetch the closure as the user" r fetch -q "$top"

check_engine() { # check_engine LABEL RUN-OPTIONS...
  local l=$1
  shift
  is "$(r run "$@" "$top" hello 2>&1)" "hello from a store library, world" \
    "$l: store loader, RUNPATH and a store library"
  is "$(r run "$@" "$top" hello --exe 2>&1)" "$hello/bin/hello" \
    "$l: /proc/self/exe is the program's store path (through the env symlink)"
  is "$(r run "$@" "$top" hello --self 2>&1)" "re-executed via /proc/self/exe" \
    "$l: a program re-executes itself through /proc/self/exe"
  is "$(r run "$@" "$top" dash -c 'hello-alt --loader; hello --loader' 2>&1 | sed 's|.*/nix/store/[a-z0-9]*-||')" \
    "glibc-alt-2.36/lib/$loader"$'\n'"glibc-host-2.36/lib/$loader" \
    "$l: each program runs with the loader its own PT_INTERP names (two glibcs in one closure)"
  is "$(r run "$@" "$top" dash -c 'hello-linked file; hello-linkdir dir' 2>&1)" \
    "hello from a store library, file"$'\n'"hello from a store library, dir" \
    "$l: RUNPATH through absolute store symlinks (a symlinked library, a symlinked lib dir)"
  is "$(r run "$@" "$top" greet-all you 2>&1)" \
    "hello from a store library, you"$'\n'"a leaf path with no references" \
    "$l: a script with a store shebang runs store programs"
  is "$(r run "$@" "$top" hello-wrapped w 2>&1)" "hello from a store library, w" \
    "$l: a wrapper script execs an absolute store path"
  is "$(r run "$@" "$top" greet-env a b 2>&1)" "hello from a store library, env a b" \
    "$l: #!/usr/bin/env finds the interpreter and programs in the closure"
  is "$(r run "$@" "$top" greet-nested 2>&1 | head -n 1)" \
    "hello from a store library, $top/bin/greet-nested" \
    "$l: a script whose interpreter is a script"
  is "$(r run "$@" "$top" python3 -c 'import sys; sys.path.append(sys.prefix + "/lib/python3.11/site-packages"); import fastmod, json, decimal; print(fastmod.answer(), fastmod.__file__)' 2>&1)" \
    "42 $python/lib/python3.11/site-packages/fastmod.so" \
    "$l: Python imports the stdlib and a C extension module"
  is "$(r run "$@" "$top" dash -c "cd $top/bin && pwd && cat ../share/greeting.txt" 2>&1)" \
    "$top/bin"$'\n'"a leaf path with no references" \
    "$l: cd into a symlink farm; its absolute symlinks resolve"
  is "$(r run "$@" "$top" python3 -c "import os; os.chdir('$top/bin'); print(os.getcwd()); print(os.path.realpath('hello')); print(os.readlink('hello'))" 2>&1)" \
    "$top/bin"$'\n'"$hello/bin/hello"$'\n'"$hello/bin/hello" \
    "$l: getcwd, realpath and readlink give /nix/store paths"
  local rc=0
  r run "$@" "$top" hello --exit 7 >/dev/null 2>&1 || rc=$?
  is "$rc" 7 "$l: the exit status passes through"
  rc=0
  r run "$@" "$top" hello --signal 15 >/dev/null 2>&1 || rc=$?
  is "$rc" 143 "$l: death by SIGTERM gives 128+15"
  rc=0
  r run "$@" "$top" hello --signal 2 >/dev/null 2>&1 || rc=$?
  is "$rc" 130 "$l: death by SIGINT gives 128+2"
  # runix execs the program: no process of its own in between, so a signal sent
  # to the pid the caller started reaches the program itself.
  rm -f "$home/pid"
  (ve "$RUNIX" run "$@" "$top" dash -c 'echo $$ > "$HOME/pid"; trap "echo got TERM; exit 3" TERM; while :; do sleep 0.05; done' \
    >"$TEST_TMP/sig.out" 2>&1) &
  local bg=$! i
  for i in $(seq 100); do [ -s "$home/pid" ] && break; sleep 0.05; done
  is "$(cat "$home/pid" 2>/dev/null)" "$bg" "$l: the program has the pid of the process its caller started"
  kill -TERM "$bg"
  rc=0
  wait "$bg" || rc=$?
  is "$rc:$(cat "$TEST_TMP/sig.out")" "3:got TERM" "$l: SIGTERM sent to that pid reaches the program's handler"
  is "$(printf 'line one\nline two\n' | r run "$@" "$top" hello --cat 2>&1)" \
    "line one"$'\n'"line two" "$l: stdin passes through"
  is "$(r run "$@" "$top" hello --cat <"$FX/key.pub" 2>&1)" "$(cat "$FX/key.pub")" \
    "$l: a redirected stdin file passes through"
  is "$(v script -qec "'$RUNIX' run $* '$top' dash -c 'test -t 0 && test -t 1 && echo on a tty'" /dev/null 2>&1 | tr -d '\r')" \
    "on a tty" "$l: the program gets the controlling TTY"
  is "$(r run "$@" "$top" id -u 2>&1)" "$uid" "$l: id -u is the caller's uid"
  r run "$@" "$top" dash -c 'echo written > "$HOME/own-$$"; stat -c %u "$HOME"/own-*' >"$TEST_TMP/own" 2>&1
  is "$(cat "$TEST_TMP/own")" "$uid" "$l: files written to HOME belong to the caller"
  rm -f "$home"/own-*
  fails "$l: /nix/store is read-only" 2 "Read-only file system" \
    r run "$@" "$top" dash -c "echo x > $hello/new"
  fails "$l: no directory can be made in /nix/store" 1 "Read-only file system" \
    r run "$@" "$top" python3 -c "import os; os.mkdir('/nix/store/new')"
  # A daemon that outlives runix keeps its view.
  rm -f "$home/daemon.out"
  r run "$@" "$top" dash -c "(sleep 1; $hello/bin/hello daemon > \"\$HOME/daemon.out\") >/dev/null 2>&1 &" \
    >/dev/null 2>&1
  local i
  for i in $(seq 50); do [ -s "$home/daemon.out" ] && break; sleep 0.1; done
  is "$(cat "$home/daemon.out" 2>/dev/null)" "hello from a store library, daemon" \
    "$l: a daemon started by the program keeps its view after runix exits"
  # runix inside runix.
  is "$(r run "$@" "$top" dash -c "'$RUNIX' run $* '$top' hello nested" 2>&1)" \
    "hello from a store library, nested" "$l: runix runs inside runix"
  is "$(r shell "$@" "$hello" "$dash" --command dash -c 'hello shell; echo "$PATH" | cut -d: -f1-2' 2>&1)" \
    "hello from a store library, shell"$'\n'"$hello/bin:$dash/bin" \
    "$l: runix shell puts every path's bin/ first in PATH"
}

MODE=store check_engine "userns (overlay)" --engine userns
MODE=nonix check_engine "userns (new root)" --engine userns
MODE=store check_engine "preload" --engine preload

MODE=store
is "$(r run --engine userns "$top" busybox ls "$hello/bin" 2>&1)" "hello" \
  "userns: a static binary sees /nix/store"
# Static programs under preload run from the store's real location, and see the host's /nix/store.
store_real=$(realpath "$home/store")/nix/store
is "$(r run --engine preload "$top" busybox readlink /proc/self/exe 2>&1)" \
  "$store_real/$(basename "$busybox")/bin/busybox" \
  "preload: a static binary runs, from the runix store's real location"
is "$(r run --engine preload "$top" busybox echo quiet 2>&1)" "quiet" \
  "preload: running a static binary says nothing without -v"
is "$(r run -v --engine preload "$top" busybox true 2>&1)" \
  "runix: engine: preload"$'\n'"runix: 'busybox' is statically linked: it sees the host's /nix/store, not the runix one (the preload engine runs it from '$home/store/nix/store')" \
  "preload: -v says that a static binary sees the host's /nix/store"
fails "preload: ... which is true: the static binary does not see the runix store" 1 \
  "No such file or directory" r run --engine preload "$top" busybox ls "$hello/bin"
is "$(r run --engine preload "$top" dash -c "busybox echo by name; $busybox/bin/busybox readlink /proc/self/exe; $busybox/bin/ls -l /proc/self/exe | sed 's/.* -> //'; $hello/bin/hello after" 2>&1)" \
  "by name"$'\n'"$store_real/$(basename "$busybox")/bin/busybox"$'\n'"$store_real/$(basename "$busybox")/bin/busybox"$'\n'"hello from a store library, after" \
  "preload: a shell runs the static binary by PATH, by store path and through a symlink (argv[0] kept), and store programs after it"
is "$(r run --engine preload "$top" busybox sh -c "/bin/cat $greeting/share/greeting.txt" 2>&1)" \
  "a leaf path with no references" \
  "preload: a dynamic host program started by a static binary gets the view back"
is "$(r run -v --engine preload "$top" /bin/busybox echo host 2>&1)" \
  "runix: engine: preload"$'\n'"runix: 'busybox' is statically linked: it sees the host's /nix/store, not the runix one"$'\n'"host" \
  "preload: -v says the same of a static host program, and runs it"
MODE=noexec
is "$(r run --engine preload "$top" /bin/busybox echo host 2>&1)" "host" \
  "noexec: a static host program still runs (only the store's mount matters)"
fails "preload: a static binary on a store mounted noexec is refused, saying why" 126 \
  "'$top/bin/busybox' is statically linked, and the preload engine can run a static program only from the runix store's real location, '$home/store/nix/store', which is on a file system mounted noexec" \
  r run --engine preload "$top" busybox true
MODE=store
# dash starts its commands from vfork children, which fill its memory with
# what an exec found (the program's file and PT_INTERP, its loader): the
# later execs of the same programs use it, each with its own loader.
is "$(r run --engine preload "$top" dash -c 'for i in 1 2 3; do hello-alt --loader; hello --loader; hello-linked $i; done' 2>&1 | sed 's|.*/nix/store/[a-z0-9]*-||')" \
  "$(for i in 1 2 3; do printf '%s\n' "glibc-alt-2.36/lib/$loader" "glibc-host-2.36/lib/$loader" "hello from a store library, $i"; done)" \
  "preload: a shell running the same store programs again gets each one's own loader and libraries"
is "$(r run --engine preload "$top" dash -c "env -i $hello/bin/hello scrubbed" 2>&1)" \
  "hello from a store library, scrubbed" \
  "preload: a store program run with a scrubbed environment (env -i) still works"
is "$(r run --engine preload "$top" dash -c "/bin/ls $hello/bin; /bin/cat $greeting/share/greeting.txt" 2>&1)" \
  "hello"$'\n'"a leaf path with no references" \
  "preload: host programs run from a store program work and see /nix/store"
is "$(v env RUNIX_ENGINE=preload "$RUNIX" run -v "$top" hello 2>&1)" \
  "runix: engine: preload"$'\n'"hello from a store library, world" "RUNIX_ENGINE selects the engine"
fails "an unknown engine is a usage error" 2 "unknown engine 'chroot'" r run --engine chroot "$top" hello

# auto: userns when it works, preload when it does not.
MODE=store
is "$(r run -v "$top" hello 2>&1)" "runix: engine: userns"$'\n'"hello from a store library, world" \
  "auto picks userns where it works, and -v says so"
is "$(r run "$top" hello 2>&1)" "hello from a store library, world" "auto says nothing without -v"
MODE=nouserns
is "$(v unshare -U true 2>&1 >/dev/null | grep -c 'No space left')" 1 \
  "nouserns: creating a user namespace really fails"
out=$(r run -v "$top" hello 2>&1)
is "$out" "runix: engine: preload (userns is not usable: unshare(CLONE_NEWUSER) failed: ENOSPC, the limit of user namespaces is reached (/proc/sys/user/max_user_namespaces in this or a parent namespace))"$'\n'"hello from a store library, world" \
  "auto falls back to preload when user namespaces are unavailable, and says why"
is "$(r run "$top" greet-all fallback 2>&1 | head -n 1)" "hello from a store library, fallback" \
  "the fallback runs the dynamic cases"
is "$(r run "$top" python3 -c 'import json; print(json.dumps([1]))' 2>&1)" "[1]" \
  "the fallback runs Python"
out=$(r doctor 2>&1)
ok "doctor names why userns is unusable" grep -q "userns: not usable: unshare(CLONE_NEWUSER) failed: ENOSPC" <<<"$out"
ok "doctor finds the preload engine" grep -q "preload: usable" <<<"$out"
ok "doctor: auto chooses preload" grep -q "auto chooses: preload" <<<"$out"
ok "doctor gives the fix: the sysctl, or the other engine" bash -c \
  'grep -q "fix: sudo sysctl -w user.max_user_namespaces=" <<<"$1" && grep -q "or use the other engine: --engine preload" <<<"$1"' _ "$out"
MODE=store
out=$(r doctor 2>&1)
ok "doctor: userns usable" grep -q "userns: usable" <<<"$out"
ok "doctor: the store with its path count" grep -q "^store: $home/store ($(wc -l <"$FX/closure") paths" <<<"$out"
ok "doctor: the cache answers" grep -q "file://$FX/cache-zstd: answers" <<<"$out"
out=$(v env RUNIX_CACHES=http://127.0.0.1:9 "$RUNIX" doctor 2>&1)
ok "doctor: a cache that does not answer, with the reason" grep -q "http://127.0.0.1:9: does not answer: .*onnect" <<<"$out"

# The closure index: what a warm run reads instead of the database.
idx=$home/store/nix/var/runix/closures/$(basename "$top")
is "$(tail -n +2 "$idx" | cut -d' ' -f1 | sed 's|^|/nix/store/|')" "$(cat "$FX/closure")" \
  "fetch wrote the closure index of the path it was asked for"
chmod 000 "$home/store/nix/var/nix/db/db.sqlite"
is "$(r run "$top" hello nodb 2>&1)" "hello from a store library, nodb" \
  "a warm run does not open the database"
chmod 644 "$home/store/nix/var/nix/db/db.sqlite"
echo "$(basename "$hello")" > "$idx"
is "$(r run "$top" hello headerless 2>&1)" "hello from a store library, headerless" \
  "an index without its header is not believed"
is "$(tail -n +2 "$idx" | wc -l)" "$(wc -l < "$FX/closure")" "... and is written again from the database"
echo "00000000000000000000000000000000-gone-1.0" >> "$idx"
is "$(r run "$top" hello gone 2>&1)" "hello from a store library, gone" \
  "an index naming a path that is not in the store is not believed"
ok "... and is written again without it" sh -c "! grep -q gone '$idx'"

# auto probes once per boot and then enters userns directly.
state=$home/store/nix/var/runix/userns-ok
is "$(cat "$state" 2>&1)" "$(cat /proc/sys/kernel/random/boot_id)" "auto remembers that userns works in this boot"
MODE=nouserns
is "$(r run -v "$top" hello 2>&1 | head -n 1)" \
  "runix: engine: preload (userns is not usable: unshare(CLONE_NEWUSER) failed: ENOSPC, the limit of user namespaces is reached (/proc/sys/user/max_user_namespaces in this or a parent namespace))" \
  "when userns stops working, auto falls back to preload even though it remembered userns"
ok "... and forgets it" test ! -e "$state"
MODE=store
is "$(r run -v "$top" hello 2>&1 | head -n 1)" "runix: engine: userns" "auto probes again and picks userns"
ok "... and remembers it again" test -s "$state"

# Warm runs touch no network; --offline refuses to fetch.
is "$(v env RUNIX_CACHES=http://127.0.0.1:9 "$RUNIX" run "$top" hello warm 2>&1)" \
  "hello from a store library, warm" "a complete closure runs without asking any cache"
fails "--offline fails clearly for a missing path" 1 "--offline forbids fetching it" \
  v env RUNIX_STORE="$home/empty-store" "$RUNIX" run --offline "$top" hello
# Choosing the program.
is "$(r run "$hello" 2>&1)" "hello from a store library, world" "without CMD: the only program in bin/"
fails "without CMD and several programs: the choices are listed" 1 "runix run $top greet-all" r run "$top"
fails "a command found nowhere gives 127" 127 "nosuchcmd: command not found" r run "$top" nosuchcmd
is "$(r run "$hello/bin/hello" -- sub 2>&1)" "hello from a store library, sub" \
  "a file inside the store path runs directly; -- is accepted"
is "$(r run "$hello" -- dashdash 2>&1)" "hello from a store library, dashdash" "-- then the default program's arguments"
fails "no STOREPATH is a usage error" 2 "expected a STOREPATH" r run
fails "a bad STOREPATH is a usage error" 2 "runix run:" r run /usr/bin/hello

# The preload library runs in host programs of any glibc: only old symbol versions.
shim=$(dirname "$RUNIX")/librunix-preload.so
audit=$(dirname "$RUNIX")/librunix-audit.so
newest=$(objdump -T "$shim" | grep -o 'GLIBC_2\.[0-9]*' | sort -t. -k2 -n | tail -n 1)
ok "the preload library needs nothing newer than glibc 2.17 (newest: $newest)" \
  test "${newest#GLIBC_2.}" -le 17
is "$(readelf -d "$audit" | grep -c NEEDED)" 0 "the audit module depends on no library at all"

done_testing
