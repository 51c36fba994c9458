#!/usr/bin/env bash
# runix enter: /nix is the runix root, read-write, and real Nix (Debian's
# nix-bin) uses it as a single-user install; --with, --gpu (also for runix
# run), users only NSS knows, nix.conf, bad arguments.
#
# Everything runs as an unprivileged user, inside a user namespace in which
# the host's /nix/store (where Nix built the fixture) is hidden under an empty
# tmpfs, as in t5200.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
top=$(cat "$FX/top")
hello=$(path_of hello)
bbdir=$(path_of busybox)
busybox=$bbdir/bin/busybox

chmod 755 "$TEST_TMP"
test_user
home=$TEST_TMP/home
R=$home/store
mkdir -p "$home/work"
[ "$(id -u)" = 0 ] && chown -R "$uid:$gid" "$home"

cat >"$TEST_TMP/in-view" <<'EOF'
#!/bin/sh
# in-view CMD...: hide the host store, then become the user again.
[ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99
exec unshare --user --map-user="$RX_UID" --map-group="$RX_GID" -- "$@"
EOF
chmod 755 "$TEST_TMP/in-view"

view_env=(PATH=/usr/bin:/bin HOME="$home" LC_ALL=C.UTF-8 SHELL=/bin/sh USER=tester
  RX_UID="$uid" RX_GID="$gid" RUNIX_STORE="$R"
  RUNIX_CACHES="file://$FX/cache-zstd" RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
  ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" UBSAN_OPTIONS="${UBSAN_OPTIONS:-}")
EXTRA_ENV=()
# v CMD...: run CMD as the user, in $home/work, with the host store hidden.
v() {
  (cd "$home/work" && "${as_user[@]}" env -i "${view_env[@]}" "${EXTRA_ENV[@]}" \
    unshare -rm "$TEST_TMP/in-view" "$@")
}
# e CMD...: runix enter CMD... as the user.
e() { v "$RUNIX" enter "$@"; }

# ---- the command line ----------------------------------------------------
"$RUNIX" enter --help >"$TEST_TMP/help" 2>&1
is "$?" 0 "--help exits 0"
ok "--help has examples" grep -q '^Examples:' "$TEST_TMP/help"
fails "an unknown option is a usage error" 2 "unknown option '--bogus'" "$RUNIX" enter --bogus
fails "--with takes a store path" 2 "--with '/tmp/nothing'" "$RUNIX" enter --with /tmp/nothing true
fails "--with needs a value" 2 "needs a value" "$RUNIX" enter --with
out=$(e true 2>&1)
is "$?" 1 "a missing store fails"
ok "a missing store is said clearly" grep -q "no runix store at '$R'" <<<"$out"

# ---- the view ------------------------------------------------------------
is "$(v sh -c 'ls /nix/store 2>/dev/null | wc -l')" 0 "control: the host store is hidden"
ok "fetch busybox as the user" v "$RUNIX" fetch -q "$bbdir"
ok "keep busybox with a manual root" v "$RUNIX" roots add bb "$bbdir"
is "$(e sh -c 'ls /nix/store' | grep -c busybox)" 1 "/nix/store is the runix store"
is "$(e id -u)" "$uid" "the command runs as the user"
e sh -c 'exit 7'
is "$?" 7 "the command's exit status passes through"
is "$(echo 'echo in the shell; exit 3' | e 2>&1)" "in the shell" "without a command: \$SHELL"
echo 'exit 5' | e >/dev/null 2>&1
is "$?" 5 "the shell's exit status passes through"
ok "/nix is writable" e sh -c 'echo hi >/nix/var/nix/written'
is "$(cat "$R/nix/var/nix/written" 2>&1)" hi "what is written in /nix lands in the store root"
is "$(e sh -c 'cat /proc/self/mountinfo' | awk '$5 == "/nix" { print $4 }')" "$(realpath "$R")/nix" \
  "/nix is the store root's nix/"
fails "a missing command: 127" 127 "cannot run 'no-such-command-here'" e no-such-command-here
ok "the host's files are there" e test -x /usr/bin/nix-store
ok "nested user namespaces work inside (pivot_root, not chroot)" e unshare -r true

# ---- nix.conf --------------------------------------------------------------
conf=$(e sh -c 'echo "$NIX_CONF_DIR"; cat "$NIX_CONF_DIR/nix.conf"')
is "$(head -n1 <<<"$conf")" /nix/etc/nix "NIX_CONF_DIR is /nix/etc/nix"
ok "no build users" grep -qx 'build-users-group =' <<<"$conf"
ok "the sandbox is on (nested user namespaces work here)" grep -qx 'sandbox = true' <<<"$conf"
is "$(cat "$R/nix/var/runix/enter-sandbox" 2>&1)" "$(cat /proc/sys/kernel/random/boot_id)" \
  "the probe's yes is remembered for this boot"
ok "runix's caches are the substituters" grep -qx "substituters = file://$FX/cache-zstd" <<<"$conf"
ok "runix's keys are trusted" grep -qx "trusted-public-keys = $(cat "$FX/key.pub")" <<<"$conf"
EXTRA_ENV=(RUNIX_CACHES="file://$FX/cache-xz")
ok "nix.conf follows runix's config" e grep -qx "substituters = file://$FX/cache-xz" /nix/etc/nix/nix.conf
EXTRA_ENV=()
v sh -c "echo 'sandbox = false' >'$R/nix/etc/nix/nix.conf'"
is "$(e cat /nix/etc/nix/nix.conf)" "sandbox = false" "a nix.conf of the user's own is kept"
v sh -c "rm '$R/nix/etc/nix/nix.conf'"
ok "and written again once removed" e grep -qx 'sandbox = true' /nix/etc/nix/nix.conf

# ---- real Nix inside -------------------------------------------------------
ok "nix-store --version inside" e sh -c 'nix-store --version | grep -q "(Nix)"'
cat >"$home/work/tiny.nix" <<EOF
let bb = builtins.storePath "$bbdir"; in
builtins.derivation {
  name = "tiny";
  system = builtins.currentSystem;
  builder = "\${bb}/bin/busybox";
  args = [ "sh" "-c" "\$0 mkdir \$out; echo built >\$out/msg; \$0 ls /nix/store >\$out/seen" "\${bb}/bin/busybox" ];
}
EOF
sed "s/tiny/slow/; s/mkdir/sleep 4; \\\$0 mkdir/" "$home/work/tiny.nix" >"$home/work/slow.nix"
chmod 644 "$home/work/"*.nix
out=$(e nix-build tiny.nix 2>&1)
is "$?" 0 "nix-build inside"
tiny=$(readlink "$home/work/result")
ok "the result is in /nix/store" grep -q '^/nix/store/.*-tiny$' <<<"$tiny"
is "$(cat "$R$tiny/msg" 2>&1)" built "the build's output is in the runix store"
is "$(sort "$R$tiny/seen" | tr '\n' ' ')" "$(basename "$bbdir") $(basename "$tiny") " \
  "the build ran in Nix's sandbox (it saw only its inputs)"
ok "runix sees it registered" v "$RUNIX" verify "$tiny"
ok "the store verifies (nix-store --verify --check-contents)" verified "$R"
roots=$(v "$RUNIX" roots 2>&1)
ok "runix roots shows the result link as Nix's root" grep -qP "\tnix\t.*\t$tiny\$" <<<"$roots"
v "$RUNIX" gc -q >/dev/null 2>&1
ok "runix gc keeps what the result link keeps" test -d "$R$tiny"

ok "nix-env -i inside" e sh -c "nix-env -i '$tiny' >/dev/null 2>&1"
ok "the profile lands in the store" sh -c "ls '$R/nix/var/nix/profiles/per-user/'*/ | grep -q profile"
rm "$home/work/result"
v "$RUNIX" gc -q >/dev/null 2>&1
ok "runix gc keeps what the profile keeps" test -d "$R$tiny"
ok "nix-env -e inside" e sh -c "nix-env -e tiny >/dev/null 2>&1 && nix-env --delete-generations old >/dev/null 2>&1"
ok "nix-store --gc inside" e sh -c 'nix-store --gc >/dev/null 2>&1'
ok "Nix's collector removed the build" test ! -e "$R$tiny"
fails "runix knows it is gone" 1 "" v "$RUNIX" verify -q "$tiny"
ok "busybox, kept by runix's root, stays for Nix's collector too" test -x "$R$busybox"
ok "the store verifies after Nix's gc" verified "$R"

# ---- concurrency: runix fetch while nix-build runs inside ------------------------
e nix-build slow.nix -o slow-result >"$TEST_TMP/slow.log" 2>&1 &
slow=$!
sleep 1
ok "runix fetch while Nix builds" v "$RUNIX" fetch -q "$top"
wait "$slow"
is "$?" 0 "the build ended well too"
ok "both are in the store" test -d "$R$(readlink "$home/work/slow-result")" -a -d "$R$top"
ok "the store verifies after both" verified "$R"
ok "runix verifies it too" v "$RUNIX" verify -q

# ---- --with ----------------------------------------------------------------------
out=$(e --with "$hello" sh -c 'echo "$PATH"; hello')
is "$?" 0 "--with STOREPATH"
is "$(head -n1 <<<"$out")" "$hello/bin:/usr/bin:/bin" "--with puts its bin/ in front of PATH"
is "$(tail -n1 <<<"$out")" "hello from a store library, world" "and its programs run"
fails "--with a path no cache has fails" 1 "" e --with /nix/store/00000000000000000000000000000000-none true

# ---- --gpu -----------------------------------------------------------------------
gl=$TEST_TMP/gl
mkdir -p "$gl/lib"
echo 'int fake_gl_version(void) { return 42; }' >"$gl/gl.c"
gcc -shared -fPIC -Wl,-soname,libGL.so.1 -o "$gl/lib/libGL.so.1" "$gl/gl.c"
printf '#include <stdio.h>\nint fake_gl_version(void);\nint main(void) { printf("gl %%d\\n", fake_gl_version()); return 0; }\n' >"$gl/prog.c"
gcc -o "$gl/prog" "$gl/prog.c" -L"$gl/lib" -l:libGL.so.1 -Wl,-rpath,/run/opengl-driver/lib
ldconfig -C "$gl/ld.so.cache" -f /dev/null "$gl/lib"
chmod -R a+rX "$gl"
EXTRA_ENV=(RUNIX_LD_CACHE="$gl/ld.so.cache")
fails "control: without the driver, the program fails" 127 "fake_gl_version" v "$gl/prog"
is "$(e --gpu "$gl/prog" 2>&1)" "gl 42" "enter --gpu: a program with that RUNPATH finds the host's library"
is "$(e --gpu readlink /run/opengl-driver/lib/libGL.so.1)" "$(realpath "$gl/lib/libGL.so.1")" \
  "the link names the library of the loader cache"
ok "the rest of the host's /run is still there" e test -d /run/user -o -e /run/lock
is "$(e "$gl/prog" 2>&1)" "gl 42" "enter shows an existing opengl-driver without --gpu too"
is "$(v "$RUNIX" run --gpu "$bbdir" "$gl/prog" 2>&1)" "gl 42" "run --gpu"
is "$(v "$RUNIX" shell --gpu "$bbdir" --command "$gl/prog" 2>&1)" "gl 42" "shell --gpu"
ok "run --gpu --sandbox shows the library" v "$RUNIX" run --gpu --sandbox "$bbdir" \
  "$busybox" cmp /run/opengl-driver/lib/libGL.so.1 "$(realpath "$gl/lib/libGL.so.1")"
fails "run --gpu --engine preload is refused" 2 "--gpu needs the userns engine" v "$RUNIX" run --gpu --engine preload "$bbdir" true
EXTRA_ENV=(RUNIX_LD_CACHE="$gl/missing")
fails "a loader cache that cannot be read fails" 1 "ldconfig" e --gpu true
EXTRA_ENV=()

# ---- a user only NSS knows -------------------------------------------------------
ghost=4242
ok "control: uid $ghost is not in /etc/passwd" sh -c "! grep -q '^[^:]*:[^:]*:$ghost:' /etc/passwd"
gh=$TEST_TMP/ghost
mkdir -p "$gh"
[ "$(id -u)" = 0 ] && chown "$ghost:$ghost" "$gh"
g() {
  (cd "$gh" && setpriv --reuid="$ghost" --regid="$ghost" --clear-groups env -i "${view_env[@]}" \
    HOME="$gh" USER=ghostuser RX_UID="$ghost" RX_GID="$ghost" RUNIX_STORE="$gh/store" \
    unshare -rm "$TEST_TMP/in-view" "$@")
}
fails "control: outside, id -un fails" 1 "" g id -un
ok "fetch as that user" g "$RUNIX" fetch -q "$bbdir"
is "$(g "$RUNIX" enter id -un 2>&1)" ghostuser "inside, the user has a name"
is "$(g "$RUNIX" enter whoami 2>&1)" ghostuser "whoami works"
is "$(g "$RUNIX" enter sh -c 'getent passwd 4242 | cut -d: -f6')" "$gh" "and the home directory"
is "$(g "$RUNIX" enter id -gn 2>&1)" ghostuser "the group too"
is "$(e sh -c 'cat /etc/passwd' | md5sum)" "$(md5sum </etc/passwd)" \
  "a user in /etc/passwd sees the host's file unchanged"

done_testing
