#!/usr/bin/env bash
# The aarch64 release binary (dist/runix-aarch64-linux, from
# scripts/release.sh) under qemu-user through binfmt_misc, on the aarch64
# closure real Nix built from Debian's arm64 packages: fetch over HTTP
# (checked by real Nix), a bad signature and a NarHash mismatch refused,
# --dry-run and --offline; then `runix run` as an unprivileged user, with
# the host's /nix/store hidden (as in t5000): the aarch64 runix with the
# preload engine; the userns engine, which no process under qemu-user can
# have, refused with the reason (auto takes preload); and the host's runix
# with the userns engine running the aarch64 closure through binfmt_misc.
#
# As root, the test registers qemu-aarch64-static with binfmt_misc (mounting
# it first if needed) with the F flag, so that the emulator is found in
# every mount namespace and new root; otherwise that registration must be
# there already.  The binary is $RUNIX_DIST_DIR/runix-aarch64-linux
# (default: dist/ in the source tree).
. "$(dirname "$0")/lib/libtest.sh"
need_nix
src_root=$(cd "$(dirname "$0")/../.." && pwd)
dist=${RUNIX_DIST_DIR:-$src_root/dist}

# ---- binfmt_misc ---------------------------------------------------------
qemu=/usr/bin/qemu-aarch64-static
if ! [ -x "$qemu" ]; then
  echo "Bail out! $qemu (Debian package qemu-user-static) is required"
  exit 1
fi
bm=/proc/sys/fs/binfmt_misc
registered_F() {
  [ -f "$bm/qemu-aarch64" ] && [ "$(head -n 1 "$bm/qemu-aarch64")" = enabled ] &&
    grep -q '^flags: .*F' "$bm/qemu-aarch64" && [ "$(cat "$bm/status")" = enabled ]
}
if ! registered_F; then
  if [ "$(id -u)" != 0 ]; then
    echo "Bail out! aarch64 programs need qemu-aarch64 registered with binfmt_misc with the F flag;"
    echo "# as root: mount -t binfmt_misc binfmt_misc $bm; cat /usr/lib/binfmt.d/qemu-aarch64.conf > $bm/register"
    exit 1
  fi
  if ! [ -f "$bm/register" ] && ! mount -t binfmt_misc binfmt_misc "$bm"; then
    echo "Bail out! cannot mount binfmt_misc on $bm"
    exit 1
  fi
  # An entry without F (or disabled) is replaced by Debian's, which has it.
  [ -f "$bm/qemu-aarch64" ] && echo -1 >"$bm/qemu-aarch64"
  line=$(grep -m 1 '^:qemu-aarch64:' /usr/lib/binfmt.d/qemu-aarch64.conf 2>/dev/null)
  case ${line##*:} in
  *F*) ;;
  *) # Debian's magic and mask for an aarch64 ELF executable, and the F flag.
    line=':qemu-aarch64:M::\x7f\x45\x4c\x46\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:'"$qemu"':F' ;;
  esac
  echo 1 >"$bm/status"
  if ! printf '%s\n' "$line" >"$bm/register" || ! registered_F; then
    echo "Bail out! cannot register qemu-aarch64 with binfmt_misc ($line)"
    exit 1
  fi
fi

fixtures_aarch64
top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
bzip2=$(path_of bzip2)
glibc=$(path_of glibc)
scripts=$(path_of scripts)

is "$("$hello/bin/hello" 2>&1)" "Hello, world!" "an aarch64 store program runs on this host through binfmt_misc"
# What the closure is made of, as the runs below rely on it.
is "$(LC_ALL=C readelf -h "$hello/bin/hello" | sed -n 's/^ *Machine: *//p')" "AArch64" \
  "the closure: hello is an aarch64 program"
is "$(LC_ALL=C readelf -l "$hello/bin/hello" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')" \
  "$glibc/lib/ld-linux-aarch64.so.1" "the closure: hello's ELF interpreter is the store's aarch64 loader"
is "$(LC_ALL=C readelf -d "$bzip2/bin/bzip2" | sed -n 's/.*Library runpath: \[\(.*\)\]/\1/p')" \
  "$(path_of libbz2)/lib:$glibc/lib" "the closure: bzip2's RUNPATH names the store's libbz2 and glibc"
is "$(head -n 1 "$scripts/bin/greet")" "#!$(path_of dash)/bin/dash" "the closure: greet has a store shebang"
is "$(readlink "$top/bin/greet")" "$scripts/bin/greet" "the closure: the env's bin/ holds absolute store symlinks"

# ---- the binary ----------------------------------------------------------
if ! [ -f "$dist/runix-aarch64-linux" ]; then
  echo "Bail out! $dist/runix-aarch64-linux is missing: build it with scripts/release.sh --arch aarch64 (or set RUNIX_DIST_DIR)"
  exit 1
fi
chmod 755 "$TEST_TMP"
mkdir -p "$TEST_TMP/bin"
# A copy the unprivileged user can run, whatever the source tree's modes.
cp "$dist/runix-aarch64-linux" "$TEST_TMP/bin/runix"
chmod 755 "$TEST_TMP/bin" "$TEST_TMP/bin/runix"
RX=$TEST_TMP/bin/runix
is "$(LC_ALL=C readelf -h "$RX" | sed -n 's/^ *Machine: *//p')" "AArch64" "the binary under test is an aarch64 ELF file"
ok "runix --version runs under qemu" "$RX" --version

# ---- fetch ---------------------------------------------------------------
web=$TEST_TMP/web
mkdir -p "$web"
httpd_start "$web"
cp -r "$FX/cache-xz" "$web/good"

# The oracle: real Nix accepts the store and sees exactly the closure, with
# the NarHash each path has in the cache.
oracle() { nix_oracle "$@"; } # STORE-ROOT PATH CLOSURE-FILE
fetch() { "$RX" fetch --trusted-key "$key" "$@"; }

R=$TEST_TMP/store
: >"$HTTP_LOG"
is "$(fetch --store "$R" --cache "$HTTP/ok/good" "$top" 2>"$TEST_TMP/err")" "$top" \
  "fetch over HTTP: prints the top-level path"
ok "  ...and real Nix verifies the store and sees the closure" oracle "$R" "$top" "$FX/closure"
is "$(grep -c '^GET /ok/good/nar/' "$HTTP_LOG")" "$(wc -l <"$FX/closure" | tr -d ' ')" \
  "  ...each NAR downloaded exactly once"

# Hostile caches: the victim is hello; everything else is as the cache has it.
vh=$(basename "$hello" | cut -c1-32)
resign() { # CACHE: sign the victim's narinfo again with the cache's key
  local f=$web/$1/$vh.narinfo
  "$RX" narinfo sign -k "$FX/key.sec" <(grep -v '^Sig:' "$f") >"$f.new" && mv "$f.new" "$f"
}
cp -r "$FX/cache-xz" "$web/badsig"
# The first character of the signature changed (to A, or to B if it is A).
sed -i -E '/^Sig:/ { s/^(Sig: [^:]*:)A/\1B/; t; s/^(Sig: [^:]*:)./\1A/ }' "$web/badsig/$vh.narinfo"
ok "the bad signature differs from the cache's" \
  bash -c '! cmp -s "$1" "$2"' _ "$FX/cache-xz/$vh.narinfo" "$web/badsig/$vh.narinfo"
cp -r "$FX/cache-xz" "$web/narhash"
other=$(sed -n 's/^NarHash: //p' "$FX/cache-xz/$(basename "$glibc" | cut -c1-32).narinfo")
sed -i "s|^NarHash: .*|NarHash: $other|" "$web/narhash/$vh.narinfo"
resign narhash
ok "the NarHash mismatch cache is validly signed (so only the NAR check can refuse it)" \
  "$RX" narinfo verify --trusted-key "$key" "$web/narhash/$vh.narinfo"
for bad in badsig:"no valid signature by a trusted key" narhash:"NarHash mismatch"; do
  c=${bad%%:*} msg=${bad#*:}
  R=$TEST_TMP/store-$c
  fails "$c: refused" 1 "$msg" fetch -q --store "$R" --cache "$HTTP/ok/$c" "$hello"
  ok "$c: the victim is neither registered nor left on disk" \
    bash -c '! [ -e "$1$2" ] && ! sqlite3 "$1/nix/var/nix/db/db.sqlite" "select path from ValidPaths" | grep -qx "$2"' \
    _ "$R" "$hello"
done

# --dry-run lists what is missing, with sizes, and registers nothing.
R=$TEST_TMP/store-dry
fetch -q --store "$R" --cache "$HTTP/ok/good" "$glibc" >/dev/null
out=$(fetch --dry-run --store "$R" --cache "$HTTP/ok/good" "$top")
n_missing=$(grep -vc "^$glibc\$" "$FX/closure")
ok "--dry-run gives the count and sizes" \
  grep -qE "^$n_missing paths to fetch \\([0-9.]+ [KM]?i?B download, [0-9.]+ [KM]?i?B unpacked\\):" <<<"$out"
ok "--dry-run names the missing paths, not the valid one" \
  bash -c 'grep -q "$2" <<<"$1" && grep -q "$3" <<<"$1" && ! grep -q "$4" <<<"$1"' _ "$out" "$hello" "$bzip2" "$glibc"
is "$(sqlite3 "$R/nix/var/nix/db/db.sqlite" 'select count(*) from ValidPaths')" "1" "--dry-run registers nothing"

# --offline: no request; the whole closure passes, a missing path is an error.
: >"$HTTP_LOG"
is "$(fetch --offline --store "$TEST_TMP/store" --cache "$HTTP/ok/good" "$top" 2>&1)" "$top" \
  "--offline: a complete closure passes"
fails "--offline: a path not in the store is an error naming it" 1 \
  "$hello is not in the store $R and --offline forbids fetching it" \
  fetch --offline --store "$R" --cache "$HTTP/ok/good" "$hello"
is "$(wc -l <"$HTTP_LOG" | tr -d ' ')" 0 "--offline makes no request"

# ---- run, as an unprivileged user, with the host store hidden ------------
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
esac
exec unshare --user --map-user="$RX_UID" --map-group="$RX_GID" -- "$@"
EOF
chmod 755 "$TEST_TMP/in-view"
view_env=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8
  RX_UID="$uid" RX_GID="$gid" RUNIX_STORE="$home/store"
  RUNIX_CACHES="file://$FX/cache-xz" RUNIX_TRUSTED_KEYS="$key")
v() { "${as_user[@]}" env -i "${view_env[@]}" unshare -rm "$TEST_TMP/in-view" "$MODE" "$@"; }
RUNNER=$RX
r() { v "$RUNNER" "$@"; }

for MODE in store nonix; do
  is "$(v sh -c 'ls /nix/store 2>/dev/null | wc -l')" 0 "$MODE: the host store is hidden"
  fails "$MODE: the closure cannot run without an engine" 127 "" v "$hello/bin/hello"
  is "$(v id -u)" "$uid" "$MODE: the user is unprivileged"
done
MODE=store
ok "fetch the closure as the user" r fetch -q "$top"

check_engine() { # LABEL RUN-OPTIONS...
  local l=$1 rc
  shift
  is "$(r run -v "$@" "$top" hello 2>&1)" "runix: engine: ${l%% *}"$'\n'"Hello, world!" \
    "$l: the engine asked for runs hello with the store loader and RUNPATH"
  is "$(r run "$@" "$top" hello -g "two words" 2>&1)" "two words" "$l: arguments pass through"
  is "$(r run "$@" "$top" dash -c 'echo "some data" | bzip2 -c | bunzip2 -c' 2>&1)" "some data" \
    "$l: bzip2 with a store library, and as bunzip2 through a symlink"
  is "$(r run "$@" "$top" greet a b 2>&1)" "hello, a b"$'\n'"round trip" \
    "$l: a script with a store shebang runs store programs"
  is "$(r run "$@" "$top" hello-wrapped -g wrapped 2>&1)" "wrapped" \
    "$l: a wrapper script execs an absolute store path"
  is "$(r run "$@" "$top" dash -c "test -L $top/bin/hello && cd $top/bin && pwd && ./hello -g linked" 2>&1)" \
    "$top/bin"$'\n'"linked" "$l: the buildEnv farm's absolute symlinks resolve"
  is "$(r run "$@" "$top" dash -c 'echo "$HELLO_WRAPPED"; exec hello-wrapped -g env' 2>&1)" \
    $'\n'"env" "$l: a program execs another by PATH"
  is "$(printf 'line one\n' | r run "$@" "$top" dash -c 'read l; echo "got $l"' 2>&1)" "got line one" \
    "$l: stdin passes through"
  rc=0
  r run "$@" "$top" dash -c 'exit 7' >/dev/null 2>&1 || rc=$?
  is "$rc" 7 "$l: the exit status passes through"
  rc=0
  r run "$@" "$top" dash -c 'kill -TERM $$' >/dev/null 2>&1 || rc=$?
  is "$rc" 143 "$l: death by SIGTERM gives 128+15"
  rc=0
  r run "$@" "$top" no-such-program >/dev/null 2>&1 || rc=$?
  is "$rc" 127 "$l: a program the closure does not have gives 127"
  fails "$l: /nix/store is read-only" 2 "Read-only file system" \
    r run "$@" "$top" dash -c "echo x > $hello/new"
}
# The preload engine: the aarch64 runix, under qemu-user, runs the closure.
RUNNER=$RX MODE=store check_engine "preload" --engine preload
RUNNER=$RX MODE=nonix check_engine "preload (no /nix on the host)" --engine preload

# The userns engine.  Under qemu-user every process has threads of the
# emulator's own, the kernel gives a new user namespace only to a
# single-threaded process, and qemu refuses namespace flags in clone(): so
# the emulated runix cannot start it (on aarch64 hardware it can).  It says
# why, and auto takes the preload engine.
MODE=store
fails "userns under qemu-user: refused, saying why" 1 "kernel gives a new user namespace only to a single-threaded one" \
  r run --engine userns "$top" hello
is "$(r run -v "$top" hello 2>&1 | sed 's/ (userns is not usable: .*single-threaded.*)$/ (userns is not usable: threads)/')" \
  "runix: engine: preload (userns is not usable: threads)"$'\n'"Hello, world!" \
  "auto under qemu-user takes preload, saying why, and runs the program"
# The userns engine started by the host's runix runs the aarch64 closure
# through binfmt_misc, whose F flag lets the kernel find qemu in a new root.
RUNNER=$RUNIX MODE=store check_engine "userns (overlay)" --engine userns
RUNNER=$RUNIX MODE=nonix check_engine "userns (new root)" --engine userns

done_testing
