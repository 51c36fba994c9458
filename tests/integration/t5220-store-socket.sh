#!/usr/bin/env bash
# The sandbox's narrow channel to the store ($RUNIX_STORE_SOCKET,
# docs/store-socket.md): a program inside asks the outer runix for a store
# path that is not in its closure; the outer runix fetches and verifies it
# under its own caches and keys and binds it into the sandbox read-only.
# Everything else is refused, with the reason.
#
# As in t5200: an unprivileged user, the host's /nix/store hidden, and the
# client is python3 from the closure; the cache is served over loopback.
. "$(dirname "$0")/lib/libtest.sh"
fixtures
python=$(path_of python)
hello=$(path_of hello)
busybox=$(path_of busybox)
dash=$(path_of dash)

chmod 755 "$TEST_TMP"
test_user
home=$TEST_TMP/home
mkdir -p "$home/proj"

# The cache: the fixture's, with busybox's narinfo unsigned and dash's NAR altered.
mkdir "$TEST_TMP/web"
cache=$TEST_TMP/web/cache
cp -r "$FX/cache-zstd" "$cache"
bb_ni=$cache/$(basename "$busybox" | cut -c1-32).narinfo
grep -v '^Sig:' "$bb_ni" >"$bb_ni.new" && mv "$bb_ni.new" "$bb_ni"
dash_ni=$cache/$(basename "$dash" | cut -c1-32).narinfo
dash_nar=$cache/$(awk '/^URL:/ {print $2}' "$dash_ni")
zstd -qdc "$dash_nar" | sed 's/dash/DASH/g' | zstd -qc >"$dash_nar.new" && mv "$dash_nar.new" "$dash_nar"
sed -i "s|^FileHash:.*|FileHash: sha256:$(nix-hash --type sha256 --flat --base32 "$dash_nar")|; s|^FileSize:.*|FileSize: $(stat -c %s "$dash_nar")|" "$dash_ni"
httpd_start "$TEST_TMP/web"

cat >"$home/proj/ask.py" <<'EOF'
# ask.py LINE...: send each LINE (a newline added) on its own connection, print the answers.
import os, socket, sys
def ask(data):
    s = socket.socket(socket.AF_UNIX)
    s.connect(os.environ["RUNIX_STORE_SOCKET"])
    s.sendall(data)
    out = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        out += d
    s.close()
    return out.decode()
for a in sys.argv[1:]:
    sys.stdout.write(ask(a.encode() + b"\n"))
EOF
cat >"$TEST_TMP/in-view" <<'EOF'
#!/bin/sh
[ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99
exec unshare --user --map-user="$RX_UID" --map-group="$RX_GID" -- "$@"
EOF
chmod 755 "$TEST_TMP/in-view"
[ "$(id -u)" = 0 ] && chown -R "$uid:$gid" "$home"

view_env=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8
  RX_UID="$uid" RX_GID="$gid" RUNIX_STORE="$home/store"
  RUNIX_CACHES="$HTTP/ok/cache" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
v() {
  (cd "$home/proj" && "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$@")
}
# py ARGS... -- CODE: python3 -c CODE in a sandbox of python's closure.
py() {
  local opts=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  v "$RUNIX" run --sandbox "${opts[@]}" "$python" python3 -c "$2"
}
in_store() { [ -e "$home/store/nix/store/$(basename "$1")" ]; }
registered() {
  sqlite3 "file:$home/store/nix/var/nix/db/db.sqlite?mode=ro" \
    "select count(*) from ValidPaths where path = '$1'"
}

is "$(v sh -c 'ls /nix/store 2>/dev/null | wc -l')" 0 "the host store is hidden"
ok "fetch python's closure as the user" v "$RUNIX" fetch -q "$python"
ok "hello is not in the store yet" test "$(registered "$hello")" = 0 -a ! -e "$home/store/nix/store/$(basename "$hello")"

is "$(py -- 'import os; print(os.environ.get("RUNIX_STORE_SOCKET"), os.path.exists("/nix/var/runix/store.sock"), os.path.exists("'"$hello"'"))' 2>&1)" \
  "/nix/var/runix/store.sock True False" "the sandbox has \$RUNIX_STORE_SOCKET, and hello is not in its view"

# Realise a path from inside, then run it and read it.
out=$(py -- 'import os, subprocess, sys
sys.argv = ["ask.py", "realise '"$hello"'"]
exec(open("ask.py").read())
sys.stdout.flush()
subprocess.run(["'"$hello"'/bin/hello"])
print(open("'"$(path_of greeting)"'/share/greeting.txt").read().strip())
try:
    open("'"$hello"'/new", "w")
except OSError as e: print(e.strerror)
try:
    os.mkdir("/nix/store/new")
except OSError as e: print(e.strerror)' 2>"$TEST_TMP/err1")
want_greet=$(cat "$(path_of greeting)/share/greeting.txt")
is "$out" "ok"$'\n'"hello from a store library, world"$'\n'"$want_greet"$'\n'"Read-only file system"$'\n'"Read-only file system" \
  "a program inside realises a path outside its closure, runs it and reads its closure; both stay read-only"
[ "$out" = "${out#ok}" ] && sed 's/^/#   /' "$TEST_TMP/err1"
is "$(registered "$hello")" 1 "the path is registered in the outer store"
ok "and complete there (runix verify)" v "$RUNIX" verify -q "$hello"

# Refusals: each with the reason, and nothing registered.
out=$(py -- 'import sys
sys.argv = ["ask.py", "realise '"$busybox"'", "realise '"$dash"'"]
exec(open("ask.py").read())' 2>"$TEST_TMP/err2")
is "$(printf '%s\n' "$out" | cut -d' ' -f1 | tr '\n' ' ')" "refused refused " "an unsigned and a tampered path are refused"
ok "the unsigned path's reason: it is not signed" grep -q "^refused .*' is not signed$" <<<"$(sed -n 1p <<<"$out")"
ok "the tampered path's reason: the NAR hash mismatch" grep -q "^refused cannot fetch .*NarHash mismatch" <<<"$(sed -n 2p <<<"$out")"
is "$(registered "$busybox")$(registered "$dash")" "00" "neither is registered"
ok "neither is in the store" test ! -e "$home/store/nix/store/$(basename "$busybox")" -a ! -e "$home/store/nix/store/$(basename "$dash")"

long=$(printf 'realise /nix/store/%0600d' 0)
out=$(py -- 'import sys
sys.argv = ["ask.py", "realise /etc/passwd", "realise '"$hello"'/bin/hello", "realise /nix/store/../../etc", "delete '"$hello"'", "realise", "'"$long"'"]
exec(open("ask.py").read())' 2>&1)
is "$out" "refused not a store path name (/nix/store/HASH-NAME, nothing below it)
refused not a store path name (/nix/store/HASH-NAME, nothing below it)
refused not a store path name (/nix/store/HASH-NAME, nothing below it)
refused unknown request (the only one is \"realise /nix/store/HASH-NAME\")
refused unknown request (the only one is \"realise /nix/store/HASH-NAME\")
refused request too long (at most 512 bytes, newline included)" \
  "a non-store path, a path below one, a .. path, another command, a bare verb and an oversized request are refused"

# Garbage, hang-ups and a burst of connections: the outer runix still answers.
out=$(py -- 'import os, socket, sys
p = os.environ["RUNIX_STORE_SOCKET"]
for data in [os.urandom(100000), b"\0" * 600, b"realise /nix/store/x\nrealise /nix/store/y\n", b"", b"realise /nix/st"]:
    s = socket.socket(socket.AF_UNIX); s.connect(p)
    try:
        s.sendall(data)
    except OSError:
        pass
    s.close()
socks = [socket.socket(socket.AF_UNIX) for i in range(20)]
for s in socks:
    s.connect(p); s.sendall(b"\xff" * 10 + b"\n")
for s in socks:
    s.recv(100); s.close()
# "refused busy" is an answer too: the servers of the burst may still be ending.
exec(open("ask.py").read().split("for a in")[0])
import time
for i in range(100):
    a = ask(b"realise '"$hello"'\n")
    if not a.startswith("refused busy"):
        break
    time.sleep(0.05)
sys.stdout.write(a)
print(os.path.exists("'"$hello"'/bin/hello"))' 2>&1)
is "$out" "ok"$'\n'"True" "after garbage, hang-ups and a burst on the socket the outer runix still answers"

# Clients that connect and send nothing hold their servers only: others are answered.
out=$(py -- 'import os, socket, sys, time
p = os.environ["RUNIX_STORE_SOCKET"]
idle = [socket.socket(socket.AF_UNIX) for i in range(3)]
for s in idle:
    s.connect(p)
t = time.monotonic()
sys.argv = ["ask.py", "realise '"$hello"'", "realise /etc"]
exec(open("ask.py").read())
print(time.monotonic() - t < 5)' 2>&1)
is "$out" "ok"$'\n'"refused not a store path name (/nix/store/HASH-NAME, nothing below it)"$'\n'"True" \
  "three idle connections do not hold up the next requests"

# runix fetch inside the sandbox asks through the socket.  The host's runix-core
# is bound in read-only with its libraries and started through the host's loader
# (the view has no /lib64); RUNIX_AS_RUNIX=1 because /proc/self/exe is then the
# loader, not runix.
core=$(dirname "$RUNIX")/runix-core
loader=$(readlink -f /lib64/ld-linux-x86-64.so.2)
libs=$(dirname "$(readlink -f "$(ldconfig -p | awk '/libcurl\.so\.4 /{print $NF; exit}')")")
alt=$(path_of glibcAlt)
out=$(py --ro "$(dirname "$core")" --ro "$(dirname "$loader")" --ro "$libs" -- 'import os, subprocess
os.environ["RUNIX_AS_RUNIX"] = "1"
r = subprocess.run(["'"$loader"'", "--library-path", "'"$libs"'", "'"$core"'", "fetch", "'"$alt"'"])
os.environ["RUNIX_AS_RUNIX"] = "1"
r2 = subprocess.run(["'"$loader"'", "--library-path", "'"$libs"'", "'"$core"'", "fetch", "'"$busybox"'"],
                    stderr=subprocess.PIPE, text=True)
print(r.returncode, os.path.isdir("'"$alt"'"), r2.returncode, r2.stderr.strip())' 2>"$TEST_TMP/err3")
is "$out" "$alt"$'\n'"0 True 1 runix: the store socket refused $busybox: '$busybox' is not signed" \
  "runix fetch inside the sandbox realises through the socket, and reports a refusal"
ok "the outer runix logs the refused fetch on its stderr" grep -q "is not signed" "$TEST_TMP/err3"
is "$(registered "$alt")" 1 "what it fetched is registered in the outer store"

# runix run (and runix shell) inside the sandbox: the outer runix realises the
# path, and the program runs in the sandbox's own view.  hello-alt is in the
# cache but not in the outer store.
halt=$(path_of helloAlt)
ok "hello-alt is not in the outer store yet" test "$(registered "$halt")" = 0
inner='import os, subprocess, sys
os.environ["RUNIX_AS_RUNIX"] = "1"
r = subprocess.run(["'"$loader"'", "--library-path", "'"$libs"'", "'"$core"'"] + sys.argv[1:],
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
print(r.returncode, r.stdout.strip(), r.stderr.strip(), sep="|")'
ri() { # ri SANDBOX-OPTS... -- RUNIX-ARGS...: runix-core inside a sandbox of python's closure
  local opts=()
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  v "$RUNIX" run --sandbox --ro "$(dirname "$core")" --ro "$(dirname "$loader")" --ro "$libs" \
    "${opts[@]}" "$python" python3 -c "$inner" "$@"
}
is "$(ri -- run "$halt" hello-alt inside 2>"$TEST_TMP/err4")" "0|hello from a store library, inside|" \
  "runix run inside the sandbox realises a path through the socket and runs it"
is "$(registered "$halt")" 1 "the outer runix registered it in its store"
is "$(ri -- shell "$halt" --command hello-alt shell 2>&1)" "0|hello from a store library, shell|" \
  "runix shell inside the sandbox does the same"
is "$(ri -- run "$busybox" busybox true 2>/dev/null)" \
  "1||runix run: the store socket refused $busybox: '$busybox' is not signed" \
  "runix run inside the sandbox fails with the reason of a refusal"
# Without the socket the inner runix fetches as outside, into a store the view
# does not have (here its fetching child is the loader, which fails sooner).
out=$(ri --no-store-socket -- run "$halt" hello-alt 2>&1)
ok "with --no-store-socket, runix run inside fails (exit status 1), running nothing" \
  test "${out:0:3}" = "1||"
ok "and says that it could not fetch" grep -q "runix: could not fetch the closure" <<<"$out"

# --no-store-socket: no socket, no variable (not even one inherited).
EXTRA=RUNIX_STORE_SOCKET=/nix/var/runix/store.sock
is "$(view_env+=("$EXTRA"); py --no-store-socket -- 'import os; print(os.environ.get("RUNIX_STORE_SOCKET"), os.path.exists("/nix/var/runix"), os.listdir("/nix"))' 2>&1)" \
  "None False ['store']" "--no-store-socket: no socket and no variable"
is "$(py --clearenv --setenv A=1 --setenv "PATH=$python/bin" -- 'import os; print(sorted(os.environ), os.path.exists("/nix/var/runix/store.sock"))' 2>&1)" \
  "['A', 'PATH'] True" "--clearenv: the socket is there, the variable only with --setenv"
fails "--no-store-socket needs --sandbox" 2 "sandbox options need --sandbox" v "$RUNIX" run --no-store-socket "$python" python3 -c 1

done_testing
