#!/usr/bin/env bash
# runix run --sandbox / runix shell --sandbox: escape attempts that must
# fail, and what a sandboxed program may still do.
#
# Everything runs as an unprivileged user, inside a user namespace in which
# the host's /nix/store (where Nix built the fixture) is hidden under an empty
# tmpfs, as in t5000.  The programs that try to escape come from the closure
# (python3, busybox), so they run exactly as a downloaded tool would.
. "$(dirname "$0")/lib/libtest.sh"
fixtures
top=$(cat "$FX/top")
hello=$(path_of hello)
busybox=$(path_of busybox)/bin/busybox

chmod 755 "$TEST_TMP"
test_user
home=$TEST_TMP/home
mkdir -p "$home/proj" "$home/data" "$home/out"
echo "top secret" >"$home/secret"
echo "project file" >"$home/proj/file"
echo "API_KEY=hunter2" >"$home/proj/.env"
mkdir -p "$home/proj/private"
echo "private" >"$home/proj/private/key"
echo "data" >"$home/data/d"
[ "$(id -u)" = 0 ] && chown -R "$uid:$gid" "$home"

cat >"$TEST_TMP/in-view" <<'EOF'
#!/bin/sh
# in-view CMD...: hide the host store, then become the user again.
[ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99
# RX_NONET=1: no network namespace may be created below this one.
[ -z "${RX_NONET:-}" ] || echo 0 >/proc/sys/user/max_net_namespaces || exit 99
exec unshare --user --map-user="$RX_UID" --map-group="$RX_GID" -- "$@"
EOF
chmod 755 "$TEST_TMP/in-view"

view_env=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8
  RX_UID="$uid" RX_GID="$gid" RUNIX_STORE="$home/store"
  RUNIX_CACHES="file://$FX/cache-zstd" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
# v CMD...: run CMD as the user, in $home/proj, with the host store hidden.
v() {
  (cd "$home/proj" && "${as_user[@]}" env -i "${view_env[@]}" "${EXTRA_ENV[@]}" \
    unshare -rm "$TEST_TMP/in-view" "$@")
}
ve() {
  cd "$home/proj" && exec "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$@"
}
EXTRA_ENV=()
# s ARGS... -- CMD...: runix run --sandbox ARGS $top CMD...
s() {
  local opts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do
    opts+=("$1")
    shift
  done
  shift
  v "$RUNIX" run --sandbox "${opts[@]}" "$top" "$@"
}
py() { s "${SB[@]}" -- python3 -c "$1"; }
bb() { s "${SB[@]}" -- "$busybox" sh -c "$1"; }
SB=()

# The controls: the store is hidden, and without the sandbox the secrets are readable.
is "$(v sh -c 'ls /nix/store 2>/dev/null | wc -l')" 0 "the host store is hidden"
is "$(v id -u)" "$uid" "the tests run as the unprivileged user"
ok "fetch the closure as the user" v "$RUNIX" fetch -q "$top"
is "$(v "$RUNIX" run "$top" "$busybox" cat "$home/secret" 2>&1)" "top secret" \
  "control: a plain run reads a file in \$HOME"

# The program runs, with its closure.
is "$(s -- hello 2>&1)" "hello from a store library, world" "a store program runs in the sandbox"
is "$(bb 'busybox ls /' 2>&1 | tr '\n' ' ')" "dev etc nix proc tmp " \
  "the root holds only dev, etc, nix, proc and tmp (the cwd is below the private /tmp)"
is "$(bb 'busybox ls /nix/store | busybox wc -l' 2>&1)" "$(nix-store -qR "$top" | wc -l)" \
  "/nix/store holds the closure (as real Nix lists it) and nothing else"

# Escapes through the file system.
is "$(bb "busybox cat '$home/secret' 2>&1 >/dev/null | busybox sed 's/.*: //'")" "No such file or directory" \
  "a file in \$HOME outside the allowed directories cannot be read"
is "$(bb "busybox cat /proc/1/root'$home/secret' 2>/dev/null || echo refused")" "refused" \
  "nor through /proc/1/root"
is "$(bb "cd /../../../..; busybox cat ./'$home/secret' 2>/dev/null || echo refused; busybox ls | busybox tr '\n' ' '")" \
  "refused"$'\n'"dev etc nix proc tmp " "nor through a chain of .."
is "$(bb "busybox cat '$home/store/nix/var/nix/db/db.sqlite' >/dev/null 2>&1 || echo refused")" "refused" \
  "the runix store's database is not in the view"
is "$(bb "busybox touch '$hello/x' 2>&1 | busybox sed 's/.*: //'")" "Read-only file system" \
  "the closure cannot be written"
is "$(bb "busybox mkdir /nix/store/new 2>&1 | busybox sed 's/.*: //'")" "Read-only file system" \
  "nothing can be added to /nix/store"
is "$(bb "busybox touch /etc/x /newfile 2>&1 | busybox sed 's/.*: //' | busybox sort -u")" "Read-only file system" \
  "the root and /etc cannot be written"
is "$(bb "busybox ls '$home/store' 2>&1 >/dev/null | busybox sed 's/.*: //'")" "No such file or directory" \
  "the runix store's directory is not in the view"

# What the program may do with the file system.
ok "the working directory is writable by default" bb 'echo new >written && busybox cat file'
is "$(cat "$home/proj/written" 2>/dev/null)" "new" "what it wrote is on the host"
SB=(--cwd ro)
is "$(bb 'busybox cat file; busybox touch x 2>&1 | busybox sed "s/.*: //"')" "project file"$'\n'"Read-only file system" \
  "--cwd ro: the working directory is readable, not writable"
SB=(--cwd none)
is "$(bb 'busybox pwd; busybox ls '"'$home/proj'"' 2>&1 | busybox sed "s/.*: //"')" "/"$'\n'"No such file or directory" \
  "--cwd none: the program starts in / and the directory is not in the view"
SB=(--cwd none --rw "$home/out" --ro "$home/data")
is "$(bb "busybox cat '$home/data/d'; busybox touch '$home/data/x' 2>&1 | busybox sed 's/.*: //'; echo o >'$home/out/o' && echo wrote")" \
  "data"$'\n'"Read-only file system"$'\n'"wrote" "--ro PATH is read-only, --rw PATH writable"
is "$(cat "$home/out/o" 2>/dev/null)" "o" "what it wrote into --rw PATH is on the host"
SB=(--hide "$home/proj/.env" --hide "$home/proj/private")
is "$(bb 'busybox cat file; busybox cat .env >/dev/null 2>&1 || echo env refused; busybox ls private >/dev/null 2>&1 || echo dir refused')" \
  "project file"$'\n'"env refused"$'\n'"dir refused" "--hide removes a file and a directory from the allowed tree"
SB=(--hide "~/proj/.env")
is "$(bb 'busybox cat .env >/dev/null 2>&1 || echo refused')" "refused" "--hide expands ~/"
SB=()
is "$(bb 'echo x >/tmp/f && busybox cat /tmp/f && busybox ls /tmp | busybox grep -c runix-it')" "x"$'\n'"1" \
  "/tmp is private and writable (only the cwd's mount point is in it)"
is "$(bb 'busybox grep -c . /etc/passwd; busybox id -un')" "$(if [ "$uid" = 65534 ]; then echo 1; else echo 2; fi)"$'\n'"$(id -un "$uid")" \
  "a generated /etc/passwd names the user"
is "$(bb 'busybox ls /etc | busybox tr "\n" " "')" "group hosts passwd " "/etc holds only group, hosts and passwd without a network"
is "$(bb 'busybox ls /dev | busybox tr "\n" " "')" "fd full null ptmx pts random shm stderr stdin stdout tty urandom zero " \
  "a minimal /dev"

# Processes.  python's ctypes needs the host's libffi (the fixture's python links it).
ffi=$(ldconfig -p | awk '/libffi\.so\.8 /{print $NF; exit}')
libdir=$(dirname "$(realpath "$ffi")")
sleep 300 &
hostpid=$!
is "$(py "import os
try:
    os.kill($hostpid, 15); print('signalled')
except ProcessLookupError: print('no such process')
print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit())[:2])" 2>&1)" "no such process"$'\n'"[1, 2]" \
  "host processes can be neither seen nor signalled"
kill "$hostpid" 2>/dev/null
wait "$hostpid" 2>/dev/null
SB=(--ro "$libdir")
is "$(py "import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
r = libc.ptrace(16, os.getppid(), 0, 0)
print(r, os.strerror(ctypes.get_errno()))
try:
    open('/proc/%d/mem' % os.getppid(), 'rb'); print('opened')
except OSError as e: print(e.strerror)" 2>&1)" "-1 Operation not permitted"$'\n'"Permission denied" \
  "the parent can be neither traced nor read"
SB=()
is "$(bb 'busybox unshare -U true 2>&1 | busybox sed "s/.*: //"')" "Operation not permitted" \
  "no new user namespace"
SB=(--allow-nested)
is "$(bb 'busybox unshare -U busybox echo nested 2>&1')" "nested" "--allow-nested allows one"
SB=(--ro "$libdir")
is "$(py "import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print(libc.syscall(250, 0, 0, 0, 0, 0), os.strerror(ctypes.get_errno()))" 2>&1)" "-1 Operation not permitted" \
  "keyctl is refused"
is "$(py "import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), os.strerror(ctypes.get_errno()))" 2>&1)" "-1 Operation not permitted" \
  "mount is refused"
SB=()
is "$(py "print([l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapEff','CapBnd','NoNewPrivs','Seccomp:'))])" 2>&1)" \
  "['0000000000000000', '0000000000000000', '1', '2']" \
  "no capabilities (effective, bounding), no_new_privs, a seccomp filter"

# TIOCSTI under a pty: the filter refuses it (EPERM), whatever the kernel's own setting.
tiocsti='import fcntl, termios, os, sys
try:
    fcntl.ioctl(0, termios.TIOCSTI, b"x"); print("pushed")
except OSError as e: print("refused", e.errno)
print("tty", os.isatty(0))'
# script(1) runs the command with $SHELL, and %q may quote in bash's $'...' form.
run_pty() { SHELL=/bin/bash script -qec "$1" /dev/null </dev/null | tr -d '\r'; }
control=$(run_pty "$(printf '%q ' "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$RUNIX" run "$top" python3 -c "$tiocsti")")
case $control in
*"refused 1"*) is "$control" "not EPERM" "control: without the sandbox TIOCSTI is not refused with EPERM" ;;
*) is "ok" "ok" "control: without the sandbox TIOCSTI is not refused with EPERM (${control%%$'\n'*})" ;;
esac
is "$(run_pty "$(printf '%q ' "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$RUNIX" run --sandbox "$top" python3 -c "$tiocsti")")" \
  "refused 1"$'\n'"tty True" "TIOCSTI on the terminal is refused; the program has its TTY"

# Network.
mkdir -p "$TEST_TMP/www"
echo served >"$TEST_TMP/www/f"
httpd_start "$TEST_TMP/www"
fetch_py="import urllib.request
try: print(urllib.request.urlopen('$HTTP/ok/f', timeout=5).read().decode().strip())
except Exception as e: print('unreachable', type(e).__name__, e)"
is "$(py "$fetch_py" 2>&1 | cut -d' ' -f1)" "unreachable" "--network none (the default): a loopback server on the host is unreachable"
is "$(py "import socket
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)
c = socket.create_connection(s.getsockname()); print('loopback up')" 2>&1)" "loopback up" \
  "the sandbox's own loopback is up"
SB=(--network host)
is "$(py "$fetch_py" 2>&1)" "served" "--network host reaches it"
# allow: the proxies outside, reached from inside through 127.0.0.1 ports.
port=${HTTP##*:}
mkdir -p "$TEST_TMP/www2"
echo other >"$TEST_TMP/www2/f"
python3 -m http.server -b 127.0.0.1 0 -d "$TEST_TMP/www2" >"$TEST_TMP/other.log" 2>&1 &
other_pid=$!
for i in $(seq 100); do other=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$TEST_TMP/other.log"); [ -n "$other" ] && break; sleep 0.05; done
trap 'kill $HTTPD_PID $other_pid 2>/dev/null; cleanup' EXIT
: >"$home/net.log"
[ "$(id -u)" = 0 ] && chown "$uid:$gid" "$home/net.log"
SB=(--network "allow:127.0.0.1:$port,*.example.invalid" --network-log "$home/net.log")
is "$(py "$fetch_py
import urllib.request, socket, os, http.client
try: urllib.request.urlopen('http://127.0.0.1:$other/ok/f', timeout=5); print('other reached')
except Exception as e: print('other refused', getattr(e, 'code', e))
try: socket.create_connection(('127.0.0.1', $port), timeout=3); print('direct reached')
except OSError as e: print('direct failed')
h, p = os.environ['HTTPS_PROXY'][7:].rsplit(':', 1)
c = http.client.HTTPConnection(h, int(p), timeout=5)
c.set_tunnel('127.0.0.1', $port)
c.request('GET', '/ok/f'); print('tunnel', c.getresponse().read().decode().strip())
s = socket.create_connection(('127.0.0.1', int(os.environ['ALL_PROXY'].rsplit(':', 1)[1])), timeout=5)
s.sendall(b'\\x05\\x01\\x00'); assert s.recv(2) == b'\\x05\\x00'
s.sendall(b'\\x05\\x01\\x00\\x01\\x7f\\x00\\x00\\x01' + ($other).to_bytes(2, 'big'))
print('socks', s.recv(10)[1])" 2>&1)" "served"$'\n'"other refused 403"$'\n'"direct failed"$'\n'"tunnel served"$'\n'"socks 2" \
  "allow: a listed host:port through the HTTP proxy (and CONNECT); an unlisted one refused (HTTP and SOCKS5); no direct connection"
is "$(grep -c "refused .*127.0.0.1:$other (not in the allow-list)" "$home/net.log")" 2 "the refusals are logged to --network-log"
SB=(--network "allow:localhost:$port")
is "$(py "import urllib.request
try: urllib.request.urlopen('http://localhost:$port/ok/f', timeout=5); print('reached')
except Exception as e: print('refused', getattr(e, 'code', e))" 2>&1)" \
  "runix: sandbox: refused GET localhost:$port (a private or loopback address; list it as a literal to allow it)"$'\n'"refused 403" \
  "a listed name that resolves to loopback is refused (only literals allow such addresses), on stderr by default"
# Where no network namespace can be made, the sandbox fails closed.
EXTRA_ENV=(RX_NONET=1)
ok "control: without the sandbox the program runs there" v "$RUNIX" run "$top" hello
fails "--network none fails closed, naming the reason" 1 "refusing to run with the host's network" \
  v "$RUNIX" run --sandbox "$top" "$busybox" touch "$home/proj/ran"
fails "so does allow:" 1 "refusing to run with the host's network" \
  v "$RUNIX" run --sandbox --network allow:127.0.0.1:1 "$top" "$busybox" touch "$home/proj/ran"
is "$(ls "$home/proj/ran" 2>/dev/null)" "" "and the program did not run"
ok "--network host still runs" v "$RUNIX" run --sandbox --network host "$top" hello
EXTRA_ENV=()
fails "a bad allow-list entry" 2 "bad allow-list entry 'a b'" v "$RUNIX" run --sandbox --network "allow:ok.example,a b" "$top" hello
SB=(--network host)
if [ -e /etc/resolv.conf ]; then
  is "$(bb 'busybox ls /etc | busybox tr "\n" " "')" "group hosts passwd resolv.conf " "and has the host's resolv.conf"
else
  is "$(bb 'busybox ls /etc | busybox tr "\n" " "')" "group hosts passwd " "and no resolv.conf, as the host has none"
fi
SB=()

# The environment.
EXTRA_ENV=(GITHUB_TOKEN=t AWS_SECRET_ACCESS_KEY=a SSH_AUTH_SOCK=/s MY_PASSWORD=p PLAIN=kept TMPDIR=/nonexistent)
envpy="import os; print(' '.join(sorted(k for k in os.environ if k in ('GITHUB_TOKEN','AWS_SECRET_ACCESS_KEY','SSH_AUTH_SOCK','MY_PASSWORD','PLAIN','A'))), os.environ.get('TMPDIR'))"
is "$(py "$envpy" 2>&1)" "PLAIN /tmp" "variables that carry secrets are removed; TMPDIR is the private /tmp"
SB=(--env-keep GITHUB_TOKEN --env-deny 'PLA*')
is "$(py "$envpy" 2>&1)" "GITHUB_TOKEN /tmp" "--env-keep keeps one, --env-deny removes more"
SB=(--clearenv --setenv A=1 --setenv PATH="$top/bin")
is "$(py "import os; print(sorted(os.environ))" 2>&1)" "['A', 'PATH']" "--clearenv with --setenv"
SB=()
EXTRA_ENV=()

# Exit statuses and signals.
rc=0
s -- hello --exit 7 >/dev/null 2>&1 || rc=$?
is "$rc" 7 "the exit status passes through"
rc=0
s -- hello --signal 15 >/dev/null 2>&1 || rc=$?
is "$rc" 143 "death by SIGTERM gives 128+15"
rm -f "$home/proj/pid"
(ve "$RUNIX" run --sandbox "$top" dash -c 'trap "echo got TERM; exit 3" TERM; echo $$ > pid; while :; do sleep 0.05 2>/dev/null || :; done' \
  >"$TEST_TMP/sig.out" 2>&1) &
bg=$!
for i in $(seq 100); do [ -s "$home/proj/pid" ] && break; sleep 0.05; done
kill -TERM "$bg"
rc=0
wait "$bg" || rc=$?
is "$rc:$(cat "$TEST_TMP/sig.out")" "3:got TERM" "a signal sent to runix reaches the program"

# kill -9 of runix: the sandbox dies with it, and nothing is left on the host.
before=$(cd "$home" && find . -path ./store -prune -o -print | sort)
(ve "$RUNIX" run --sandbox "$top" "$busybox" sh -c "echo up > up; exec busybox sleep 3$$" >/dev/null 2>&1) &
bg=$!
for i in $(seq 100); do [ -s "$home/proj/up" ] && break; sleep 0.05; done
rm -f "$home/proj/up"
is "$(ps -eo args | grep -c "^busybox sleep 3$$\$")" 1 "control: the sandboxed program runs"
kill -9 "$bg"
wait "$bg" 2>/dev/null
for i in $(seq 50); do [ "$(ps -eo args | grep -c "^busybox sleep 3$$\$")" = 0 ] && break; sleep 0.05; done
is "$(ps -eo args | grep -c "^busybox sleep 3$$\$")" 0 "after kill -9 of runix no process of the sandbox is left"
is "$(cd "$home" && find . -path ./store -prune -o -print | sort)" "$before" "and no file"

# runix shell --sandbox.
is "$(v "$RUNIX" shell --sandbox "$top" --command hello 2>&1)" "hello from a store library, world" \
  "runix shell --sandbox --command"
is "$(printf 'echo in $0\n' | v "$RUNIX" shell --sandbox "$top" 2>&1 | sed 's|/nix/store/[^/]*/bin/|STORE/|')" "in STORE/sh" \
  "runix shell --sandbox starts a shell from the closure, not the host's"

# Bad command lines.
fails "sandbox options need --sandbox" 2 "sandbox options need --sandbox" v "$RUNIX" run --ro /etc "$top" hello
fails "--sandbox refuses the preload engine" 2 "needs the userns engine" v "$RUNIX" run --sandbox --engine preload "$top" hello
fails "a bad --network mode" 2 "unknown --network mode 'lan'" v "$RUNIX" run --sandbox --network lan "$top" hello
fails "a missing --ro path" 1 "cannot allow '$home/nope' in the sandbox" v "$RUNIX" run --sandbox --ro "$home/nope" "$top" hello

done_testing
