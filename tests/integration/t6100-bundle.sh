#!/usr/bin/env bash
# Offline bundles (runix bundle): a bundle of the test closure and one of a
# distributable's app, run offline (no network namespace to reach) by a
# user with a fresh HOME and no runix on PATH; real Nix verifies the store
# they filled; the second run is warm (no import: nothing in the store
# changes, and the import's temporary directory could not even be made);
# tampered bundles are refused with nothing planted; the bundle's keys
# vouch for nothing else afterwards; --arch aarch64 writes an aarch64 one.
#
# The runix inside is the release binary, $RUNIX_DIST_DIR/runix-ARCH-linux
# (default <source root>/dist, which scripts/release.sh builds).
. "$(dirname "$0")/lib/libtest.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
need_nix
fixtures
hello=$(path_of hello)
busybox=$(path_of busybox)
helloAlt=$(path_of helloAlt)
key=$(cat "$FX/key.pub")
arch=$(uname -m)
dist=${RUNIX_DIST_DIR:-$src/dist}

if [ -f "$dist/runix-$arch-linux" ] && [ -f "$dist/runix-aarch64-linux" ]; then
  export RUNIX_DIST_DIR=$dist
  standin=
elif [ -n "${RUNIX_BUNDLE_STANDIN:-}" ]; then
  # Before the release binaries exist: runix-core stands in (it needs its
  # shared libraries, which this machine has), and a static aarch64 program
  # for --arch.
  echo "# no release binaries in $dist: runix-core stands in for them"
  mkdir -p "$TEST_TMP/dist"
  cp "$(dirname "$RUNIX")/runix-core" "$TEST_TMP/dist/runix-$arch-linux"
  echo 'int main(void) { return 0; }' >"$TEST_TMP/arm.c"
  aarch64-linux-gnu-gcc -static -o "$TEST_TMP/dist/runix-aarch64-linux" "$TEST_TMP/arm.c" || exit 1
  standin=--runix=$TEST_TMP/dist/runix-$arch-linux
  export RUNIX_DIST_DIR=$TEST_TMP/dist
else
  echo "1..0 # SKIP no release binaries in $dist: run scripts/release.sh first"
  exit 0
fi

web=$TEST_TMP/web
mkdir -p "$web"
cp -r "$FX/cache-zstd" "$web/"
httpd_start "$web"
CACHE=$HTTP/ok/cache-zstd
export HOME=$TEST_TMP/home XDG_CONFIG_HOME=$TEST_TMP/home/.config
mkdir -p "$HOME"
export RUNIX_STORE=$TEST_TMP/store RUNIX_CONFIG=/dev/null
export RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key

# Where the user can read the bundles (TEST_TMP is private).
pub=$(mktemp -d /tmp/runix-bundle-t.XXXXXX)
chmod 755 "$pub"
trap 'kill $HTTPD_PID 2>/dev/null; chmod -R u+w "$pub" 2>/dev/null; rm -rf "$pub"; cleanup' EXIT

tool=$TEST_TMP/tool.runix
cat >"$tool" <<JSON
#!/usr/bin/env runix
{
  "format": "1.0",
  "name": "tools",
  "systems": {
    "$arch-linux": {"paths": ["$busybox", "$hello"]},
    "aarch64-linux": {"paths": ["$busybox"]}
  },
  "apps": {
    "default": {"program": "bin/busybox", "args": ["true"]},
    "long": {"program": "busybox", "args": ["sh", "-c", "echo \${#1}", "sh", "$(head -c 6000 /dev/zero | tr '\0' x)"]},
    "status": {"program": "busybox", "args": ["sh", "-c", "echo \"\$DIST_GREETING\" \"\$@\"; exit 7", "sh"],
               "env": {"DIST_GREETING": "set by the app"}}
  },
  "caches": [{"url": "$CACHE", "keys": ["$key"]}]
}
JSON

# --- writing bundles -------------------------------------------------------
ok "runix bundle of a store path" "$RUNIX" bundle -q $standin -o "$pub/hello" "$hello"
ok "runix bundle of a distributable's app" "$RUNIX" bundle -q $standin --trust -o "$pub/status" "$tool#status"
ok "the bundles are executable files" test -x "$pub/hello" -a -x "$pub/status"
if [ -z "$standin" ]; then
  ok "the bundle is a static $arch executable" sh -c "file '$pub/hello' | grep -q 'statically linked'"
fi
fails "a path no cache has: nothing written" 1 "the caches do not have the whole closure" \
  "$RUNIX" bundle -q $standin -o "$pub/none" /nix/store/00000000000000000000000000000000-none
ok "... and no file" test ! -e "$pub/none"
fails "-o is required" 2 "expected -o FILE" "$RUNIX" bundle "$hello"

# --- the first run: offline, a new user, no runix ---------------------------
if [ "$(id -u)" = 0 ]; then
  uid=$(id -u nobody 2>/dev/null || echo 65534)
  gid=$(id -g nobody 2>/dev/null || echo 65534)
  as_user=(setpriv --reuid="$uid" --regid="$gid" --clear-groups)
  offline=(unshare --net)
else
  uid=$(id -u) gid=$(id -g) as_user=()
  offline=(unshare --net --map-current-user)
fi
uhome=$pub/home
mkdir -p "$uhome"
chown "$uid:$gid" "$uhome"
ustore=$uhome/.local/share/runix
# user [ENV=VALUE...] CMD...: as the new user, offline, with nothing of ours in the environment.
user() { env -i HOME="$uhome" PATH=/usr/bin:/bin LC_ALL=C.UTF-8 "$@"; }
offline_user() { "${offline[@]}" "${as_user[@]}" env -i HOME="$uhome" PATH=/usr/bin:/bin LC_ALL=C.UTF-8 "$@"; }

ok "the user has no runix on PATH" sh -c "! env -i PATH=/usr/bin:/bin sh -c 'command -v runix'"
ok "offline: no cache can be reached" sh -c "! ${offline[*]} curl -sf '$CACHE/nix-cache-info' >/dev/null 2>&1 || ! command -v curl"
rc=0
out=$(offline_user "$pub/hello" first 2>"$TEST_TMP/err1") || rc=$?
is "$rc:$out" "0:hello from a store library, first" "first run offline as a new user: the program's output"
ok "... and the import said what it did on stderr" grep -q "$(basename "$hello")" "$TEST_TMP/err1"
ok "real Nix verifies the store the bundle filled" \
  nix-store --store "$ustore" --verify --check-contents
paths=$(nix-store --store "$ustore" -q --references "$hello" 2>&1 | sort | tr '\n' ' ')
want=$(nix-store -q --references "$hello" | sort | tr '\n' ' ')
is "$paths" "$want" "real Nix sees hello's references in the user's store"

# Warm: nothing imported.  The import needs a directory in TMPDIR, which
# cannot be made there, and the database stays as it was.
db=$ustore/nix/var/nix/db/db.sqlite
before=$(stat -c '%i %s %Y' "$db"; ls -la --time-style=full-iso "$ustore/nix/store")
rc=0
out=$(offline_user TMPDIR=/nonexistent "$pub/hello" again 2>"$TEST_TMP/err2") || rc=$?
is "$rc:$out" "0:hello from a store library, again" "second run: warm"
is "$(cat "$TEST_TMP/err2")" "" "... says nothing on stderr"
after=$(stat -c '%i %s %Y' "$db"; ls -la --time-style=full-iso "$ustore/nix/store")
is "$after" "$before" "... and imported nothing (the database and the store are unchanged)"

# The distributable's app: its environment, arguments and exit status; the
# paths hello already brought are not imported again.
rc=0
out=$(offline_user "$pub/status" one two 2>"$TEST_TMP/err3") || rc=$?
is "$rc:$out" "7:set by the app one two" "a distributable's app: its env and args, then the user's; its exit status"
ok "... its own path was imported" grep -q "$(basename "$busybox")" "$TEST_TMP/err3"
ok "... the paths already there were not" sh -c "! grep -q '$(basename "$hello")' '$TEST_TMP/err3'"
rc=0
out=$(offline_user TMPDIR=/nonexistent "$pub/status" three 2>/dev/null) || rc=$?
is "$rc:$out" "7:set by the app three" "... and its second run is warm"
ok "runix bundle of an app whose manifest entry is longer than a page" \
  "$RUNIX" bundle -q $standin --trust -o "$pub/long" "$tool#long"
out=$(offline_user TMPDIR=/nonexistent "$pub/long" 2>&1)
is "$out" "6000" "... runs with its whole argument, importing nothing: the store has all its paths"
ok "real Nix verifies the store after both" \
  nix-store --store "$ustore" --verify --check-contents

# --- the bundle's keys vouch for its own closure only -----------------------
ok "the keys were not added to the user's configuration" \
  sh -c "! grep -rqs '${key%%:*}' '$uhome/.config' '$uhome/.local/state'"
fails "runix run of the bundle's path, without the bundle: not vouched for by the user's keys" 1 "a key this command does not trust" \
  "${as_user[@]}" env -i HOME="$uhome" PATH=/usr/bin:/bin RUNIX_CACHES= "$RUNIX" run --offline "$hello"
fails "a fetch from a cache signed by the bundle's key: refused" 1 "signature" \
  "${as_user[@]}" env -i HOME="$uhome" PATH=/usr/bin:/bin RUNIX_CACHES="$CACHE" "$RUNIX" fetch -q "$helloAlt"
ok "... and nothing of it is in the store" test ! -e "$ustore/nix/store/$(basename "$helloAlt")"

# --- tampered bundles --------------------------------------------------------
# tamper MODE IN OUT: a copy of IN with a flipped byte in its largest NAR
# (nar), every narinfo signature forged (sig, the checksum made to match),
# or cut in the middle of its NARs (truncate), as an interrupted download is.
tamper() {
  python3 - "$@" <<'PY'
import base64, hashlib, json, struct, sys
mode, src, dst = sys.argv[1:4]
b = bytearray(open(src, "rb").read())
po, mo, ml = struct.unpack("<QQQ", bytes(b[-64:-40]))
text = bytes(b[mo:mo + ml]).decode()
app, end = json.JSONDecoder().raw_decode(text)
m = json.loads(text[end:])
if mode == "nar":
    e = max(m["paths"], key=lambda e: e["size"])
    b[e["offset"] + e["size"] // 2] ^= 0x40
elif mode == "sig":
    for e in m["paths"]:
        out = []
        for line in e["narinfo"].split("\n"):
            if line.startswith("Sig: "):
                name, sig = line[5:].split(":", 1)
                raw = bytearray(base64.b64decode(sig))
                raw[0] ^= 1
                line = "Sig: %s:%s" % (name, base64.b64encode(bytes(raw)).decode())
            out.append(line)
        e["narinfo"] = "\n".join(out)
    new = (json.dumps(app, separators=(",", ":"), sort_keys=True) + "\n" +
           json.dumps(m, separators=(",", ":"), sort_keys=True) + "\n").encode()
    tr = struct.pack("<QQQ", po, mo, len(new)) + hashlib.sha256(new).digest() + b"RXBUNDL1"
    b = b[:mo] + new + tr
elif mode == "truncate":
    b = b[:(po + mo) // 2]
open(dst, "wb").write(b)
PY
  chmod 755 "$3"
}
for mode in nar sig truncate; do
  case $mode in
  nar) why="does not match its FileHash" ;;
  sig) why="is not signed by its keys" ;;
  truncate) why="this bundle is truncated: it has" ;;
  esac
  tamper "$mode" "$pub/hello" "$pub/bad-$mode"
  h=$pub/home-$mode
  mkdir -p "$h"
  chown "$uid:$gid" "$h"
  fails "a bundle with $mode tampered with is refused" 1 "$why" \
    "${offline[@]}" "${as_user[@]}" env -i HOME="$h" PATH=/usr/bin:/bin "$pub/bad-$mode" x
  is "$(ls -A "$h/.local/share/runix/nix/store" 2>/dev/null)" "" "... and nothing of it is in the store"
done

# --- other architectures, and where the static runix comes from -------------
ok "--arch aarch64 writes a bundle" "$RUNIX" bundle -q --trust --arch aarch64 -o "$pub/arm" "$tool#status"
ok "... which file(1) calls an aarch64 executable" sh -c "file '$pub/arm' | grep -q 'ARM aarch64'"
fails "--runix of another architecture is refused" 1 "is not a runix for aarch64" \
  "$RUNIX" bundle -q --trust --arch aarch64 --runix "$RUNIX_DIST_DIR/runix-$arch-linux" -o "$pub/arm2" "$tool#status"
fails "with no static runix to be found, a clear error" 1 "no static runix for aarch64" \
  env -u RUNIX_DIST_DIR "$RUNIX" bundle -q --trust --arch aarch64 -o "$pub/arm3" "$tool#status"
ok "... and nothing written" test ! -e "$pub/arm2" -a ! -e "$pub/arm3"
fails "an unknown architecture is a usage error" 2 "unknown architecture 'mips'" \
  "$RUNIX" bundle --arch mips -o "$pub/x" "$hello"

done_testing
