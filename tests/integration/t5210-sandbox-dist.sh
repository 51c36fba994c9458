#!/usr/bin/env bash
# Distributables that ask for a sandbox: an app's declared policy applies
# with no flags (escape attempts fail), --list and the trust prompt show it,
# the command line tightens it silently and widens it only by explicit
# options that are said, a changed policy asks again, and bad policies are
# refused with their key path.
#
# As in t5200: an unprivileged user, in a user namespace in which the host's
# /nix/store is hidden under an empty tmpfs; the programs come from the closure.
. "$(dirname "$0")/lib/libtest.sh"
fixtures
top=$(cat "$FX/top")
busybox=$(path_of busybox)/bin/busybox

chmod 755 "$TEST_TMP"
test_user
home=$TEST_TMP/home
mkdir -p "$home/proj/out" "$home/data"
echo "top secret" >"$home/secret"
echo "project file" >"$home/proj/file"
echo "API_KEY=hunter2" >"$home/proj/.env"
echo "data" >"$home/data/d"
ln -s "$FX/cache-zstd" "$home/cache2" # the same cache under a URL the user has not trusted

cat >"$TEST_TMP/in-view" <<'EOF'
#!/bin/sh
[ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99
exec unshare --user --map-user="$RX_UID" --map-group="$RX_GID" -- "$@"
EOF
chmod 755 "$TEST_TMP/in-view"

view_env=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8 MY_SECRET=s3 PLAIN=p
  RX_UID="$uid" RX_GID="$gid" RUNIX_STORE="$home/store"
  RUNIX_CACHES="file://$FX/cache-zstd" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
in_view=("${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view")
# v CMD...: run CMD as the user, in $home/proj, with the host store hidden.
v() { (cd "$home/proj" && "${in_view[@]}" "$@"); }

# agent FILE NETWORK [CACHES]: the tool's distributable; its apps ask for sandboxes.
agent() {
  cat >"$1" <<JSON
#!/usr/bin/env runix
{
  "format": "1.0",
  "name": "agent",
  "systems": {"$(uname -m)-linux": {"paths": ["$top"]}},
  "apps": {
    "default": {
      "program": "busybox", "args": ["sh", "-c"],
      "sandbox": {
        "cwd": "ro",
        "ro": ["~/data"],
        "rw": ["\$PWD/out"],
        "hide": ["\$PWD/.env"],
        "network": "$2",
        "env": {"set": {"AGENT": "on"}, "deny": ["MY_*"]}
      }
    },
    "py": {"program": "python3", "args": ["-c"], "sandbox": true},
    "plain": {"program": "busybox", "args": ["sh", "-c"]},
    "off": {"program": "busybox", "args": ["sh", "-c"], "sandbox": {"enable": false, "network": "host"}}
  }${3:+,
  \"caches\": $3}
}
JSON
}
f=$home/agent.runix
agent "$f" none
chmod 644 "$f"
[ "$(id -u)" = 0 ] && chown -R "$uid:$gid" "$home"

is "$(v sh -c 'ls /nix/store 2>/dev/null | wc -l')" 0 "the host store is hidden"
ok "fetch the closure as the user" v "$RUNIX" fetch -q "$top"
is "$(v "$RUNIX" run "$f#plain" 'busybox cat ~/secret' 2>&1)" "top secret" \
  "control: an app without a policy reads a file in \$HOME"
is "$(v "$RUNIX" run "$f#off" 'busybox cat ~/secret' 2>&1)" "top secret" \
  "an app whose policy says enable: false runs unconfined"

# The declared policy applies with no flags.
out=$(v "$RUNIX" run "$f" 'busybox cat ~/secret 2>&1 >/dev/null | busybox sed "s/.*: //"
busybox cat file; busybox touch x 2>&1 | busybox sed "s/.*: //"
busybox cat .env >/dev/null 2>&1 || echo env refused
echo o >out/o && echo wrote out; busybox cat ~/data/d; busybox touch ~/data/x 2>&1 | busybox sed "s/.*: //"
echo "AGENT=$AGENT MY_SECRET=${MY_SECRET:-unset} PLAIN=$PLAIN"' 2>"$TEST_TMP/err")
is "$out" "No such file or directory
project file
Read-only file system
env refused
wrote out
data
Read-only file system
AGENT=on MY_SECRET=unset PLAIN=p" \
  "the app's policy applies with no flags: \$HOME unreadable, cwd read-only, .env hidden, \$PWD/out writable, ~/data read-only, env set and denied"
is "$(cat "$TEST_TMP/err")" "" "... and nothing is said"
is "$(cat "$home/proj/out/o" 2>/dev/null)" "o" "what it wrote into \$PWD/out is on the host"

mkdir -p "$TEST_TMP/www"
echo served >"$TEST_TMP/www/f"
httpd_start "$TEST_TMP/www"
fetch_py="import urllib.request
try: print(urllib.request.urlopen('$HTTP/ok/f', timeout=5).read().decode().strip())
except Exception as e: print('unreachable', type(e).__name__)"
is "$(v "$RUNIX" run "$f#py" "$fetch_py" 2>&1 | cut -d' ' -f1)" "unreachable" \
  "'sandbox: true': a loopback server on the host is unreachable (network none)"
is "$(v "$RUNIX" run "$f#py" "import os; print(os.path.exists('$home/secret'))" 2>&1)" "False" \
  "'sandbox: true': \$HOME is not in the view"

# The file's allow-list: the listed server is reached through runix's proxies.
n=$home/net.runix
hostport=${HTTP#http://}
hostport=${hostport%%/*}
cat >"$n" <<JSON
#!/usr/bin/env runix
{"format": "1.0", "name": "net", "systems": {"$(uname -m)-linux": {"paths": ["$top"]}},
 "apps": {"default": {"program": "python3", "args": ["-c"],
                      "sandbox": {"network": "allow:$hostport", "cwd": "none"}}}}
JSON
chmod 644 "$n"
is "$(v "$RUNIX" run "$n" "$fetch_py" 2>&1)" "served" "the policy's allow-list reaches the listed server through the proxy"
is "$(v "$RUNIX" run "$n" "import os; print(os.environ.get('HTTP_PROXY', 'none')[:17], os.getcwd())" 2>&1)" \
  "http://127.0.0.1: /" "... with the proxy variables set, and cwd none"
is "$(v "$RUNIX" run --network none "$n" "$fetch_py" 2>&1 | cut -d' ' -f1)" "unreachable" \
  "tightening: --network none over the policy's allow-list"

# --list shows each app's policy.
out=$(v "$RUNIX" run --list "$f" 2>&1)
case $out in *"  default  busybox sh -c"$'\n'"    sandbox: cwd ro, network none; ro ~/data; rw \$PWD/out; hide \$PWD/.env; env set AGENT; env deny MY_*"*"  off  busybox sh -c"$'\n'"    sandbox: off"$'\n'"  plain  busybox sh -c"$'\n'"  py  python3 -c"$'\n'"    sandbox: cwd rw, network none"$'\n'"systems:"*)
  ok "--list shows each app's policy" true ;;
  *) ok "--list shows each app's policy ($out)" false ;; esac

# Tightening: applies, and is not said.
out=$(v "$RUNIX" run --cwd none --hide "~/data/d" --clearenv "$f" 'busybox pwd; busybox cat ~/data/d >/dev/null 2>&1 || echo d refused; echo "PLAIN=${PLAIN:-unset} AGENT=$AGENT"' 2>"$TEST_TMP/err")
is "$out" "/"$'\n'"d refused"$'\n'"PLAIN=unset AGENT=on" "tightening: --cwd none, --hide, --clearenv apply over the policy"
is "$(cat "$TEST_TMP/err")" "" "... and are not said"
is "$(v "$RUNIX" run --network none "$f#py" "$fetch_py" 2>&1 | cut -d' ' -f1)" "unreachable" "--network none keeps it closed"

# Widening: only with the explicit option, always said.
out=$(v "$RUNIX" run --network host "$f#py" "$fetch_py" 2>"$TEST_TMP/err")
is "$out" "served" "widening: --network host reaches the server"
is "$(cat "$TEST_TMP/err")" "runix run: widening the sandbox that app 'py' of '$f' asks for: --network host: the policy says none" \
  "... and says so on stderr"
out=$(v "$RUNIX" run --cwd rw "$f" 'echo n >new && busybox cat new' 2>"$TEST_TMP/err")
is "$out" "n" "widening: --cwd rw makes the working directory writable"
is "$(cat "$TEST_TMP/err")" "runix run: widening the sandbox that app 'default' of '$f' asks for: --cwd rw: the policy says ro" \
  "... and says so"
out=$(v "$RUNIX" run --rw "~/data" "$f" 'echo w >~/data/w && echo wrote' 2>"$TEST_TMP/err")
is "$out" "wrote" "widening: --rw over the policy's ro"
case $(cat "$TEST_TMP/err") in *"--rw $home/data: the policy does not allow it"*) ok "... said" true ;;
  *) ok "... said ($(cat "$TEST_TMP/err"))" false ;; esac
out=$(v "$RUNIX" run --no-sandbox "$f" 'busybox cat ~/secret' 2>"$TEST_TMP/err")
is "$out" "top secret" "--no-sandbox drops the policy"
case $(cat "$TEST_TMP/err") in *"--no-sandbox: the program runs without the sandbox"*) ok "... said" true ;;
  *) ok "... said ($(cat "$TEST_TMP/err"))" false ;; esac
fails "--no-sandbox with another sandbox option is a usage error" 2 "--no-sandbox takes no other sandbox option" \
  v "$RUNIX" run --no-sandbox --cwd ro "$f" true
fails "a policy needs the userns engine: preload is refused, never run unconfined" 2 "--sandbox needs the userns engine" \
  v "$RUNIX" run --engine preload "$f" 'busybox cat ~/secret'

# The launcher of an installed app keeps its policy.
ok "install the tool" v "$RUNIX" install --bin-dir "$home/bin" "$f"
is "$(v "$home/bin/agent" 'busybox cat ~/secret 2>/dev/null || echo refused' 2>&1)" "refused" \
  "the installed launcher runs the app in its sandbox"

# The trust prompt shows the policy; a changed policy asks again.
pty() { # pty ANSWER CMD...: run CMD on a pseudo-terminal in $home/proj, typing ANSWER.
  (cd "$home/proj" && python3 - "$@" <<'PY'
import os, pty, sys
answer = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b""
sent = False
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not sent and b"[y/N]" in out:
        os.write(fd, answer + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace").replace("\r", ""))
sys.exit(os.waitstatus_to_exitcode(status))
PY
  )
}
t=$home/trust.runix
caches="[{\"url\": \"file://$home/cache2\", \"keys\": [\"$(cat "$FX/key.pub")\"]}]"
agent "$t" none "$caches"
[ "$(id -u)" = 0 ] && chown "$uid:$gid" "$t"
fails "off a terminal, a file with caches not trusted is refused" 1 "brings caches or keys you have not trusted" \
  v "$RUNIX" run "$t" 'echo ran'
out=$(pty y "${in_view[@]}" "$RUNIX" run "$t" 'busybox cat ~/secret 2>/dev/null || echo refused') && rc=0 || rc=$?
is "$rc" 0 "on a terminal: answering yes runs it"
case $out in *"app 'default' runs sandboxed, as the file asks:"$'\n'"    sandbox: cwd ro, network none; ro ~/data; rw \$PWD/out; hide \$PWD/.env"*"app 'py' runs sandboxed"*"[y/N] y"*refused*)
  ok "the prompt shows each app's policy, and the app runs confined" true ;;
  *) ok "the prompt shows each app's policy, and the app runs confined ($out)" false ;; esac
case $out in *"app 'off'"*|*"app 'plain'"*) ok "apps without a sandbox are not listed as sandboxed ($out)" false ;;
  *) ok "apps without a sandbox are not listed as sandboxed" true ;; esac
is "$(v "$RUNIX" run "$t" 'echo again' 2>&1 </dev/null)" "again" "the answer is remembered for this content"
agent "$t" host "$caches"
fails "a changed policy asks again (off a terminal: refused)" 1 "brings caches or keys you have not trusted" \
  v "$RUNIX" run "$t" 'echo ran'
out=$(pty n "${in_view[@]}" "$RUNIX" run "$t" 'echo ran') && rc=0 || rc=$?
is "$rc" 1 "on a terminal the changed policy is asked about; no refuses"
case $out in *"sandbox: cwd ro, network host;"*"not trusted"*) ok "... the prompt shows the new policy" true ;;
  *) ok "... the prompt shows the new policy ($out)" false ;; esac

# Bad policies: refused, naming the file, the key path and what was expected.
bad() { # bad NAME POLICY WANT
  local b=$home/$1.runix
  agent "$b" none
  python3 - "$b" "$2" <<'PY'
import json, sys
f, pol = sys.argv[1], sys.argv[2]
text = open(f).read()
first, rest = text.split("\n", 1)
d = json.loads(rest)
d["apps"]["default"]["sandbox"] = json.loads(pol)
open(f, "w").write(first + "\n" + json.dumps(d))
PY
  chmod 644 "$b"
  fails "a bad policy is refused: $1" 1 "$3" v "$RUNIX" run "$b" true
}
bad unknown '{"network": "none", "syscalls": "any"}' \
  "runix run: '$home/unknown.runix': apps.default.sandbox: unknown field 'syscalls' in a sandbox policy"
bad env-unknown '{"env": {"inherit": true}}' "apps.default.sandbox.env: unknown field 'inherit'"
bad network '{"network": "allow:a.example:99999"}' "apps.default.sandbox.network: expected 'none', 'host' or 'allow:HOST[:PORT],...'"
bad path '{"ro": ["/etc", "data"]}' "apps.default.sandbox.ro[1]: expected paths ('/abs', '~/rel' or '\$PWD/rel'"
bad cwd '{"cwd": 1}' "apps.default.sandbox.cwd: expected a string, found a number"
done_testing
