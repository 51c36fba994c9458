#!/usr/bin/env bash
# The release files of scripts/release.sh (docs/release.md), as dist/ has
# them: one static file per architecture, no shared libraries; from it alone
# (in an empty root, on a musl userland, on Debian's glibc) a fetch over
# http and https from a loopback cache and a run under both engines, as an
# ordinary user; the engine libraries it extracts, their symbol versions and
# the checks on them; and the same bytes from a second build.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures

src=$(cd "$(dirname "$0")/../.." && pwd)
dist=${RUNIX_DIST:-$src/dist}
rbuild=${RUNIX_RELEASE_BUILD:-$src/build-release}
for a in x86_64 aarch64; do
  if [ ! -f "$dist/runix-$a-linux" ]; then
    echo "Bail out! $dist/runix-$a-linux is missing: run scripts/release.sh first"
    exit 1
  fi
done
if [ "$(uname -m)" != x86_64 ]; then
  echo "Bail out! this test runs the x86_64 release file, and this machine is $(uname -m)"
  exit 1
fi
for t in file ldd objdump musl-gcc gcc setpriv; do
  command -v "$t" >/dev/null || { echo "Bail out! '$t' is required (scripts/install-deps.sh --with-tests)"; exit 1; }
done

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello_out="hello from a store library, world"

# The oracle: real Nix accepts the store runix filled.
oracle() { nix_oracle "$1" "$top" "$FX/closure"; } # oracle STORE

## The files.
for a in x86_64 aarch64; do
  f=$dist/runix-$a-linux
  ok "$a: file says statically linked" grep -q 'statically linked' <<<"$(file -b "$f")"
  want=x86-64; [ $a = aarch64 ] && want=aarch64
  ok "  ...and $want" grep -q "$want" <<<"$(file -b "$f")"
  ok "  ...ldd says not a dynamic executable" grep -q 'not a dynamic executable' <<<"$(ldd "$f" 2>&1)"
  ok "  ...no PT_INTERP, no DYNAMIC segment" \
    bash -c '! readelf -lW "$1" | grep -qE "INTERP|DYNAMIC"' _ "$f"
done
ok "SHA256SUMS lists both files and they match" \
  bash -c 'cd "$1" && grep -q " runix-x86_64-linux$" SHA256SUMS && grep -q " runix-aarch64-linux$" SHA256SUMS && sha256sum -c --quiet SHA256SUMS' _ "$dist"
if [ -f "$src/scripts/install.sh" ]; then
  ok "install.sh is scripts/install.sh, listed in SHA256SUMS" \
    bash -c 'cmp -s "$1/scripts/install.sh" "$2/install.sh" && grep -q " install.sh$" "$2/SHA256SUMS"' _ "$src" "$dist"
fi
is "$("$dist/runix-x86_64-linux" --version)" "$("$RUNIX" --version)" "--version: the Meson build's line"
# Every command is in the one file: each answers --help itself (no runix-core beside it).
mkdir -p "$TEST_TMP/alone"
cp "$dist/runix-x86_64-linux" "$TEST_TMP/alone/runix"
command_list() { "$1" --help | awk '/^Commands:/ { on = 1; next } on && /^  [^ ]/ { print $1 } on && /^$/ { exit }'; }
cmds=$(command_list "$TEST_TMP/alone/runix")
is "$cmds" "$(command_list "$RUNIX")" "the release file has the Meson build's commands"
bad=
for c in $cmds; do
  [ "$c" = help ] && continue
  "$TEST_TMP/alone/runix" "$c" --help 2>&1 | grep -q '^Examples:' || bad="$bad $c"
done
is "$bad" "" "every command's --help answers from the file alone"
# A bundle is the file with data appended: that must not change what it runs.
{ cat "$dist/runix-x86_64-linux"; head -c 1048576 /dev/urandom; } >"$TEST_TMP/alone/appended"
chmod +x "$TEST_TMP/alone/appended"
is "$("$TEST_TMP/alone/appended" --version)" "$("$RUNIX" --version)" "with 1 MiB appended, it still runs"

## As an ordinary user: nobody when the test runs as root, else the caller.
asuser=()
if [ "$(id -u)" -eq 0 ]; then
  asuser=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  chmod 755 "$TEST_TMP"
fi
gcc -O2 -static -o "$TEST_TMP/emptyroot" "$(dirname "$0")/lib/emptyroot.c" ||
  { echo "Bail out! cannot build lib/emptyroot.c"; exit 1; }
ER=$TEST_TMP/emptyroot

# The caches: the same one over http and, with a self-signed certificate, https.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TEST_TMP/tls.key" -out "$TEST_TMP/tls.crt" 2>/dev/null
HTTPD_TLS_CERT=$TEST_TMP/tls.crt HTTPD_TLS_KEY=$TEST_TMP/tls.key httpd_start "$FX"
HTTPS=https://${HTTP#http://}/ok/cache-zstd
tls_pid=$HTTPD_PID
mv "$HTTP_LOG" "$TEST_TMP/https.log"
httpd_start "$FX"
HTTP=$HTTP/ok/cache-xz
trap 'kill $HTTPD_PID $tls_pid 2>/dev/null; cleanup' EXIT

# newroot DIR: DIR with only runix, /proc, /dev and a home for the store.
newroot() {
  mkdir -p "$1/proc" "$1/dev" "$1/home" "$1/etc"
  cp "$dist/runix-x86_64-linux" "$1/runix"
  printf 'ssl-cert-file = /etc/test-ca.crt\n' >"$1/etc/runix.conf"
  cp "$TEST_TMP/tls.crt" "$1/etc/test-ca.crt"
  [ ${#asuser[@]} -eq 0 ] || chown -R 65534:65534 "$1/home"
}

# in_root DIR ARGS...: runix ARGS in the root DIR, as the user, with a bare
# environment (and RUNIX_CONFIG=$CFG when CFG is set).
CFG=
in_root() {
  local root=$1
  shift
  "${asuser[@]}" env -i HOME=/home PATH=/bin ${CFG:+RUNIX_CONFIG=$CFG} "$ER" "$root" /runix "$@"
}
# with_cfg FILE COMMAND...: the command with CFG=FILE.
with_cfg() {
  CFG=$1
  shift
  local r=0
  "$@" || r=$?
  CFG=
  return $r
}

# check_userland LABEL RUNNER HOME OUTER_HOME CONFIG: fetch (http; https with
# ssl-cert-file in CONFIG) and run; HOME is the home as runix sees it,
# OUTER_HOME the same directory from here.
check_userland() {
  local label=$1 runner=$2 home=$3 outer=$4 cfg=$5
  ok "$label: fetch over http" $runner fetch -q --cache "$HTTP" --trusted-key "$key" "$top"
  ok "  ...and real Nix accepts the store" oracle "$outer/.local/share/runix"
  ok "$label: fetch over https, the CA given by ssl-cert-file" \
    with_cfg "$cfg" $runner --store "$home/https-store" fetch -q --cache "$HTTPS" --trusted-key "$key" "$top"
  ok "  ...and real Nix accepts that store" oracle "$outer/https-store"
  local e
  for e in preload userns; do
    is "$($runner run --cache "$HTTP" --trusted-key "$key" --engine $e "$top" hello 2>&1)" \
      "$hello_out" "$label: run under the $e engine"
  done
}

## An empty root: runix, /proc, /dev and the store, nothing else.
E=$TEST_TMP/empty
newroot "$E"
run_empty() { in_root "$E" "$@"; }
ok "empty root: holds only the file, /proc, /dev, /etc (the CA) and the home" \
  bash -c '[ "$(cd "$1" && ls -A | sort | tr "\n" " ")" = "dev etc home proc runix " ]' _ "$E"
check_userland "empty root" run_empty /home "$E/home" /etc/runix.conf
fails "empty root: https without a CA anywhere is refused, naming the certificate problem" 1 \
  "SSL certificate problem" run_empty --store /home/noca fetch -q --cache "$HTTPS" --trusted-key "$key" "$top"
ok "empty root: doctor says no CA bundle was found" \
  grep -q "^CA certificates: none found in the usual places" <<<"$(run_empty doctor 2>&1)"

## A musl userland: musl's loader and a program linked with it, no glibc.
M=$TEST_TMP/musl
newroot "$M"
mkdir -p "$M/lib" "$M/bin" "$M/etc/ssl"
cp -L /lib/ld-musl-x86_64.so.1 "$M/lib/"
printf '#include <stdio.h>\nint main(void) { puts("musl here"); return 0; }\n' >"$TEST_TMP/m.c"
musl-gcc -o "$M/bin/hello-musl" "$TEST_TMP/m.c"
ok "musl root: its program is linked dynamically with musl's loader" \
  grep -q 'interpreter /lib/ld-musl-x86_64.so.1' <<<"$(file -b "$M/bin/hello-musl")"
is "$("${asuser[@]}" env -i "$ER" "$M" /bin/hello-musl)" "musl here" "musl root: the musl program runs there"
ok "musl root: no glibc in it" bash -c '! find "$1" -name "libc.so*" -o -name "ld-linux*" | grep -q .' _ "$M"
# Alpine keeps its CA bundle at /etc/ssl/cert.pem: found without any setting.
cp "$TEST_TMP/tls.crt" "$M/etc/ssl/cert.pem"
run_musl() { in_root "$M" "$@"; }
check_userland "musl root" run_musl /home "$M/home" /etc/runix.conf
ok "musl root: https with the CA bundle where Alpine keeps it, and no setting" \
  run_musl --store /home/alpine-ca fetch -q --cache "$HTTPS" --trusted-key "$key" "$top"
ok "  ...doctor names it" \
  grep -q "^CA certificates: /etc/ssl/cert.pem (from the system's usual place)" <<<"$(run_musl doctor 2>&1)"

## Debian's glibc: this machine, as the user, with a fresh home.
G=$TEST_TMP/glibc
mkdir -p "$G/home" "$G/etc"
cp "$dist/runix-x86_64-linux" "$G/runix"
[ ${#asuser[@]} -eq 0 ] || chown -R 65534:65534 "$G/home"
printf 'ssl-cert-file = %s\n' "$TEST_TMP/tls.crt" >"$G/etc/runix.conf"
run_glibc() {
  "${asuser[@]}" env -i HOME="$G/home" PATH=/usr/bin:/bin ${CFG:+RUNIX_CONFIG=$CFG} "$G/runix" "$@"
}
check_userland "Debian glibc" run_glibc "$G/home" "$G/home" "$G/etc/runix.conf"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  ok "Debian glibc: doctor finds Debian's CA bundle by itself" \
    grep -q "^CA certificates: /etc/ssl/certs/ca-certificates.crt (from the system's usual place)" <<<"$(run_glibc doctor 2>&1)"
fi

## The engine libraries it extracted: where, what, and the checks before use.
edir=$(ls -d "$G"/home/.local/share/runix/engines/*)
ok "extracted into the data directory under a content-hash name" \
  grep -qE '/engines/[0-9a-f]{64}$' <<<"$edir"
ok "  ...both libraries, modes 0644 in 0700 directories" \
  bash -c '[ "$(stat -c %a "$1/librunix-preload.so" "$1/librunix-audit.so" "$1" "${1%/*}" | tr "\n" " ")" = "644 644 700 700 " ]' _ "$edir"
# Symbol versions: none newer than the architecture's first, but getauxval (2.16).
versions_ok() { # versions_ok LIB MAXVERSION
  local bad
  bad=$(objdump -T "$1" | grep -o '(GLIBC_[0-9.]*) *[A-Za-z_0-9]*' | tr -d '()' |
        awk -v max="$2" '{ split($1, v, "_"); if (v[2] != max && $2 != "getauxval") print }' | sort -u)
  [ -z "$bad" ] || { echo "$1 needs: $bad"; return 1; }
}
ok "x86_64: the libraries need no glibc symbol version above 2.2.5 (getauxval: 2.16)" \
  bash -c "$(declare -f versions_ok); versions_ok '$edir/librunix-preload.so' 2.2.5 && versions_ok '$edir/librunix-audit.so' 2.2.5"
arm_lib=$rbuild/aarch64/runix/src/run/librunix-preload.so
if [ -f "$arm_lib" ]; then
  ok "aarch64: the libraries it embeds need nothing above GLIBC_2.17" \
    bash -c "$(declare -f versions_ok); versions_ok '$arm_lib' 2.17 && versions_ok '${arm_lib%/*}/librunix-audit.so' 2.17"
  ok "  ...and are the bytes embedded in dist/runix-aarch64-linux" \
    python3 -c 'import sys; sys.exit(0 if open(sys.argv[2], "rb").read() in open(sys.argv[1], "rb").read() else 1)' "$dist/runix-aarch64-linux" "$arm_lib"
fi
cp "$edir/librunix-preload.so" "$TEST_TMP/preload.orig"
printf 'x' | dd of="$edir/librunix-preload.so" bs=1 seek=100 conv=notrunc status=none
is "$(run_glibc run --engine preload "$top" hello 2>&1)" "$hello_out" "a changed library is written again before use"
ok "  ...byte for byte" cmp "$edir/librunix-preload.so" "$TEST_TMP/preload.orig"
chmod g+w "$edir"
fails "a directory others may write is refused, saying how to fix it" 126 "chmod go-w" \
  run_glibc run --engine preload "$top" hello
chmod g-w "$edir"
rm -rf "$edir"
ln -s "$TEST_TMP" "$edir"
fails "a symlink in its place is refused, not followed" 126 "not a symlink" \
  run_glibc run --engine preload "$top" hello
rm "$edir"
# Several first runs at once: each extracts or finds the same files.
pids=()
for i in 1 2 3 4 5 6; do
  run_glibc run --engine preload "$top" hello >"$TEST_TMP/race.$i" 2>&1 &
  pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
ok "six first runs at once all run" bash -c '[ $1 -eq 0 ] && for i in 1 2 3 4 5 6; do [ "$(cat "$2/race.$i")" = "$3" ] || exit 1; done' _ $rc "$TEST_TMP" "$hello_out"
ok "  ...leaving only the two libraries" \
  bash -c '[ "$(ls -A "$1" | tr "\n" " ")" = "librunix-audit.so librunix-preload.so " ]' _ "$edir"

## Reproducible: a second build in another directory gives the same bytes.
if [ -d "$rbuild/x86_64/curl-prefix" ]; then
  mkdir -p "$TEST_TMP/rb/x86_64"
  cp -a "$rbuild/x86_64/curl-prefix" "$TEST_TMP/rb/x86_64/"
  ok "release.sh builds x86_64 again elsewhere" \
    env RUNIX_RELEASE_BUILD="$TEST_TMP/rb" "$src/scripts/release.sh" --arch x86_64 --out "$TEST_TMP/dist2"
  ok "  ...the same bytes" cmp "$dist/runix-x86_64-linux" "$TEST_TMP/dist2/runix-x86_64-linux"
else
  ok "the release build directory ($rbuild) is there to build again" false
fi

done_testing
