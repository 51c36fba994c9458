#!/usr/bin/env bash
# GC roots made by runs, fetches and installs, and the lock a running
# program holds on its closure: each run (of a store path, a local
# distributable, an http(s):// one, a github: reference; shell) makes the
# right root, which real Nix's collector honours; a warm run within a
# minute writes nothing, an old root is refreshed, a changed distributable
# moves its root; fetch --root; install, upgrade, uninstall and launchers;
# root's read-only store gets nothing; a running program's index cannot be
# locked exclusively, and a run whose index is so locked still runs.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
hello=$(path_of hello)
dash=$(path_of dash)
busybox=$(path_of busybox)
key=$(cat "$FX/key.pub")
web=$TEST_TMP/web
mkdir -p "$web/files" "$web/gh/alice/tools/HEAD"
cp -r "$FX/cache-zstd" "$web/"
httpd_start "$web"
CACHE=$HTTP/ok/cache-zstd
export HOME=$TEST_TMP/home XDG_CONFIG_HOME=$TEST_TMP/home/.config \
  XDG_CACHE_HOME=$TEST_TMP/xdg-cache XDG_STATE_HOME=$TEST_TMP/state RUNIX_CONFIG=/dev/null \
  RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key RUNIX_GITHUB_URL=$HTTP/etag/gh
mkdir -p "$HOME"
R=$TEST_TMP/store
export RUNIX_STORE=$R
G=$R/nix/var/nix/gcroots/runix

# enc REF: a root's NAME for REF (store_root_name_encode).
enc() {
  python3 -c '
import sys
ok = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+,=@:-")
ref = sys.argv[1].encode()
print("".join(chr(c) if c in ok and not (i == 0 and c == ord(".")) else "%%%02X" % c
              for i, c in enumerate(ref)))' "$1"
}
# targets KIND NAME: what root KIND/NAME points at, sorted, one a line.
targets() {
  local l
  for l in "$G/$1/$2"/*; do [ -L "$l" ] && readlink "$l"; done | sort
}
# sorted PATHS...: the paths, sorted, one a line.
sorted() { printf '%s\n' "$@" | sort; }
# nix_keeps PATH...: real Nix lists a root for each PATH and none of their
# closures is garbage to it.
nix_keeps() {
  local roots dead p q
  roots=$(nix-store --store "$R" --gc --print-roots 2>/dev/null) || return 1
  dead=$(nix-store --store "$R" --gc --print-dead 2>/dev/null) || return 1
  for p in "$@"; do
    grep -q -- "-> $p\$" <<<"$roots" || { echo "nix lists no root for $p: $roots"; return 1; }
    for q in $(nix path-info --store "$R" -r "$p"); do
      ! grep -qx -- "$q" <<<"$dead" || { echo "nix would collect $q (closure of $p)"; return 1; }
    done
  done
}
mtime() { stat -c %.9Y "$1" 2>/dev/null || echo "no $1"; }
# fresh DIR: its mtime is within the last minute.
fresh() { [ $(( $(date +%s) - $(stat -c %Y "$1") )) -lt 60 ]; }

# dist FILE PROGRAM PATHS...: a distributable for this machine whose default
# app runs PROGRAM (relative to the first path), from the test cache.
dist() {
  local file=$1 prog=$2
  shift 2
  local paths
  paths=$(printf '"%s",' "$@")
  cat >"$file" <<JSON
#!/usr/bin/env runix
{
  "format": "1.0",
  "name": "roots-tools",
  "systems": {"$(uname -m)-linux": {"paths": [${paths%,}]}},
  "apps": {
    "default": {"program": "$prog"},
    "greet": {"program": "hello", "args": ["from-the-app"]}
  },
  "caches": [{"url": "$CACHE", "keys": ["$key"]}]
}
JSON
}

# --- runix run of a store path ---------------------------------------------
hb=$(basename "$hello")
is "$("$RUNIX" run -q "$hello" hello)" "hello from a store library, world" "run of a store path runs"
is "$(targets auto "$hb")" "$hello" "... and makes the root auto/<basename> holding it"
ok "real Nix sees that root and keeps the closure" nix_keeps "$hello"
before=$(mtime "$G/auto/$hb")
sleep 0.1
"$RUNIX" run -q "$hello" hello >/dev/null
is "$(mtime "$G/auto/$hb")" "$before" "a second run within a minute does not touch the root"
touch -d '2 hours ago' "$G/auto/$hb"
"$RUNIX" run -q "$hello" hello >/dev/null
ok "a run refreshes a root last used 2 hours ago" fresh "$G/auto/$hb"
rm "$G/auto/$hb/$hb"
"$RUNIX" run -q "$hello" hello >/dev/null
is "$(targets auto "$hb")" "$hello" "a warm run remakes a root emptied by hand"

# --- runix shell: one root per store path -----------------------------------
out=$("$RUNIX" shell -q "$dash" "$busybox" --command dash -c 'echo in-shell')
is "$out" "in-shell" "shell runs"
is "$(targets auto "$(basename "$dash")")$(targets auto "$(basename "$busybox")")" "$dash$busybox" \
  "... making one root per store path argument"
ok "real Nix keeps both" nix_keeps "$dash" "$busybox"

# --- a local distributable, through a symlink ---------------------------------
mkdir -p "$TEST_TMP/d"
tool=$TEST_TMP/d/tool.runix
dist "$tool" bin/hello "$hello" "$busybox"
ln -s d/tool.runix "$TEST_TMP/link.runix"
is "$("$RUNIX" run -q "$TEST_TMP/link.runix#greet")" "hello from a store library, from-the-app" \
  "run of a local distributable (by a symlink, with #APP)"
tn=$(enc "$(realpath "$tool")")
is "$(targets auto "$tn")" "$(sorted "$hello" "$busybox")" \
  "... makes an automatic root named by its absolute, symlink-free file name, holding its paths"
ok "real Nix keeps them" nix_keeps "$hello" "$busybox"
before=$(mtime "$G/auto/$tn")
sleep 0.1
"$RUNIX" run -q "$tool" >/dev/null
is "$(mtime "$G/auto/$tn")" "$before" "a second run (the warm path) leaves it alone"
dist "$tool" bin/dash "$dash"
is "$("$RUNIX" run -q "$tool" -c 'echo changed')" "changed" "the distributable changed: other paths"
is "$(targets auto "$tn")" "$dash" "... its root moved to the new paths"

# --- http(s):// and github: references -----------------------------------------
dist "$web/files/tool.runix" bin/hello "$hello"
url=$HTTP/ok/files/tool.runix
is "$("$RUNIX" run -q "$url#greet")" "hello from a store library, from-the-app" "run of an http(s):// distributable"
is "$(targets auto "$(enc "$url")")" "$hello" "... makes a root named by the URL as typed, without #APP"
dist "$web/gh/alice/tools/HEAD/default.runix" bin/hello "$hello" "$dash"
is "$("$RUNIX" run -q github:alice/tools#greet)" "hello from a store library, from-the-app" "run of a github: reference"
is "$(targets auto "github:alice%2Ftools")" "$(sorted "$hello" "$dash")" \
  "... makes the root github:alice%2Ftools (the reference without #APP)"
ok "real Nix keeps them" nix_keeps "$hello" "$dash"

# --- the lock a running program holds on its closure ----------------------------
bidx=$R/nix/var/runix/closures/$(basename "$busybox")
for engine in preload userns; do
  if [ $engine = userns ] && ! "$RUNIX" run -q --engine userns "$busybox" busybox true 2>/dev/null; then
    echo "# userns does not work here: only the preload engine holds the lock below"
    continue
  fi
  "$RUNIX" run -q --engine $engine "$busybox" busybox sleep 3 &
  pid=$!
  for _ in $(seq 50); do ls -l /proc/$pid/fd 2>/dev/null | grep -q closures/ && break; sleep 0.05; done
  fails "engine $engine: while the program runs, its closure index cannot be locked exclusively" 1 "" \
    flock -n -x "$bidx" true
  ok "... the lock is on a high fd, not one of the program's low ones" \
    bash -c 'ls -l /proc/$1/fd | grep closures/ | awk "{ n++; if (\$9 < 100) bad = 1 } END { exit !(n && !bad) }"' _ $pid
  wait $pid
  ok "... and can once it has exited" flock -n -x "$bidx" true
done
flock -x "$bidx" sleep 5 &
holder=$!
sleep 0.3
ino=$(stat -c %i "$bidx")
is "$("$RUNIX" run -q "$busybox" busybox echo slow-path)" "slow-path" \
  "a run whose index a collector holds still runs"
ok "... through runix-core, which replaced the index" test "$(stat -c %i "$bidx")" != "$ino"
kill $holder 2>/dev/null
wait $holder 2>/dev/null
rm "$bidx"
is "$("$RUNIX" run -q "$busybox" busybox echo again)" "again" "a run whose index was removed runs"
ok "... and writes it again" test -s "$bidx"

# --- fetch --root ----------------------------------------------------------------
out=$("$RUNIX" fetch -q --root "my tools" "$hello" "$dash")
is "$out" "$(printf '%s\n' "$hello" "$dash")" "fetch --root NAME fetches and prints the paths"
is "$(targets manual "my%20tools")" "$(sorted "$hello" "$dash")" "... under the manual root NAME"
ok "real Nix keeps them" nix_keeps "$hello" "$dash"
"$RUNIX" fetch -q --root "my tools" "$dash" >/dev/null
is "$(targets manual "my%20tools")" "$dash" "fetch --root NAME again moves it to the new paths"
fails "fetch --root without a NAME" 2 "--root needs a NAME" "$RUNIX" fetch --root "" "$hello"
bad=$TEST_TMP/bad-store
mkdir -p "$bad/nix/var/nix/gcroots"
echo not-a-dir >"$bad/nix/var/nix/gcroots/runix"
fails "fetch --root that cannot make its root fails" 1 "nothing was fetched" \
  "$RUNIX" fetch -q --store "$bad" --root x "$hello"
ok "... and fetched nothing" test ! -e "$bad/nix/store/$hb"
out=$("$RUNIX" run -q --store "$bad" "$hello" hello 2>&1)
case $out in *"warning: "*"hello from a store library, world"*) ok "a run that cannot make its root warns, and runs" true ;;
  *) ok "a run that cannot make its root warns, and runs ($out)" false ;; esac

# --- install, upgrade, uninstall --------------------------------------------------
bin=$TEST_TMP/bin
inst=$TEST_TMP/inst.runix
dist "$inst" bin/hello "$hello"
ok "install" "$RUNIX" install --bin-dir "$bin" --as rt "$inst"
is "$(targets installed rt)" "$hello" "install makes the installed root NAME holding the tool's paths"
ok "real Nix keeps them" nix_keeps "$hello"
nauto=$(ls "$G/auto" | wc -l)
touch -d '2 hours ago' "$G/installed/rt"
is "$("$bin/rt")" "hello from a store library, world" "the launcher runs"
ok "... refreshing the installed root" fresh "$G/installed/rt"
is "$(ls "$G/auto" | wc -l)" "$nauto" "... and making no automatic one"
missing=/nix/store/00000000000000000000000000000000-missing-1.0
dist "$inst" bin/dash "$dash" "$missing"
fails "an upgrade whose new closure cannot be fetched fails" 1 "$missing" "$RUNIX" upgrade rt
is "$(targets installed rt)" "$(sorted "$hello" "$dash" "$missing")" \
  "... and the installed root keeps the old paths with the new"
is "$("$bin/rt")" "hello from a store library, world" "... the launcher still runs the old tool"
is "$(targets installed rt)" "$hello" "... and its run sets the root back to the old paths"
dist "$inst" bin/dash "$dash"
"$RUNIX" upgrade rt >/dev/null
is "$(targets installed rt)" "$dash" "upgrade moves the installed root to the new paths"
is "$("$bin/rt" -c 'echo upgraded')" "upgraded" "... and the launcher runs the new tool"
"$RUNIX" uninstall rt >/dev/null
ok "uninstall removes the installed root" test ! -e "$G/installed/rt"
printf '#!/bin/sh\n' >"$bin/taken"
fails "an install that fails" 1 "is not a runix launcher" "$RUNIX" install --bin-dir "$bin" --as taken "$inst"
ok "... leaves no installed root" test ! -e "$G/installed/taken"

# --- a store of root's, read-only to the user ---------------------------------------
if [ "$(id -u)" != 0 ]; then
  echo "# not root: the root-owned store part needs root (CI runs it)"
  done_testing
  exit
fi
shared=$TEST_TMP/opt-store
(umask 022 && RUNIX_STORE=$shared "$RUNIX" fetch -q "$hello" >/dev/null)
nobody=$TEST_TMP/nobody
mkdir -p "$nobody"
chown 65534:65534 "$nobody"
chmod 755 "$TEST_TMP"
as() {
  (cd "$nobody" && setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -i PATH="$PATH" HOME="$nobody" RUNIX_CONFIG=/dev/null RUNIX_STORE="$shared" \
    RUNIX_CACHES="$CACHE" RUNIX_TRUSTED_KEYS="$key" "$RUNIX" "$@")
}
out=$(as run "$hello" hello 2>&1)
is "$out" "hello from a store library, world" "nobody runs from root's store, without a word on stderr"
ok "... and makes no root in it" test ! -e "$shared/nix/var/nix/gcroots/runix"

done_testing
