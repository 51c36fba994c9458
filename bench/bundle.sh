#!/usr/bin/env bash
# Benchmark an offline bundle (runix bundle) of the benchmark closure
# (bench/closure.nix, as bench/fetch.sh makes it, zstd cache): its first run
# (the import into a cold store, then the program) and its warm run, against
# real Nix's `nix-store --import` of an export of the same closure into a
# cold store, and against a plain `tar -x` of the closure's files (and a
# zstd-compressed one), all measured in this one run.  Also the cost every
# start of runix pays to find out whether it is a bundle.
#
#   bench/bundle.sh           RUNS=5 by default; BENCH_DIR keeps the caches
#                             (default /var/tmp/runix-bench); STORE_DIR is
#                             where the cold stores go (default /dev/shm)
# The runix inside the bundle is $RUNIX_DIST_DIR/runix-ARCH-linux (default
# dist/, which scripts/release.sh builds), or BUNDLE_RUNIX=FILE.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
STORE_DIR=${STORE_DIR:-/dev/shm}
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
[ -x build/runix ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
RUNIX=$PWD/build/runix
inner=${BUNDLE_RUNIX:-${RUNIX_DIST_DIR:-$PWD/dist}/runix-$(uname -m)-linux}
[ -f "$inner" ] || { echo "no static runix at $inner: run scripts/release.sh, or set BUNDLE_RUNIX" >&2; exit 1; }

mkdir -p "$BENCH_DIR"
multiarch=$(gcc -print-multiarch)
interp=$(readelf -l /bin/sh | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
top=$(nix-build bench/closure.nix --argstr multiarch "$multiarch" --argstr interp "$interp" --no-out-link)
if [ "$(cat "$BENCH_DIR/top" 2>/dev/null)" != "$top" ]; then
  rm -rf "$BENCH_DIR"/cache-* "$BENCH_DIR"/key.*
  nix-store --generate-binary-cache-key runix-bench-1 "$BENCH_DIR/key.sec" "$BENCH_DIR/key.pub"
  for c in xz zstd; do
    echo "making the $c cache..." >&2
    nix copy --to "file://$BENCH_DIR/cache-$c?compression=$c" "$top"
    # The cache's copies are signed, not the host store's paths, which
    # other caches made from them (the tests' fixtures) would carry too.
    nix store sign --store "file://$BENCH_DIR/cache-$c" -r -k "$BENCH_DIR/key.sec" "$top"
  done
  echo "$top" > "$BENCH_DIR/top"
fi
key=$(cat "$BENCH_DIR/key.pub")
paths=$(nix-store -qR "$top")
files=$(echo "$paths" | xargs -I{} find {} -type f | wc -l)
narsize=$(nix path-info -S "$top" | awk '{ print $2 }')
echo "closure: $(echo "$paths" | wc -l) paths, $files files, NarSize $((narsize / 1000000)) MB"

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" "$STORE_DIR"/runix-bench-bundle-* 2>/dev/null || true; rm -rf "$tmp" "$STORE_DIR"/runix-bench-bundle-*; true' EXIT

# The bundle runs the closure's hello (in the test closure, under env/).
prog=$top/env/bin/hello
"$RUNIX" bundle -q --runix "$inner" --cache "file://$BENCH_DIR/cache-zstd" --trusted-key "$key" \
  -o "$tmp/bench.bundle" "$prog" 2> >(grep -v 'dynamically linked' >&2 || true)
bsize=$(stat -c %s "$tmp/bench.bundle")
echo "bundle: $((bsize / 1000000)) MB (runix $(($(stat -c %s "$inner") / 1000000)) MB)"
# The peers' inputs: an export made by real Nix, and tar files of the closure.
nix-store --export $paths >"$tmp/closure.export"
tar -cf "$tmp/closure.tar" -C / $(echo "$paths" | sed 's,^/,,')
zstd -q -3 -T1 -o "$tmp/closure.tar.zst" "$tmp/closure.tar"
echo "export: $(($(stat -c %s "$tmp/closure.export") / 1000000)) MB; tar: $(($(stat -c %s "$tmp/closure.tar") / 1000000)) MB; tar.zst: $(($(stat -c %s "$tmp/closure.tar.zst") / 1000000)) MB"

# secs CMD...: wall time in seconds.
secs() {
  python3 - "$@" <<'PY'
import subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
d = time.monotonic() - t
if r.returncode != 0:
    sys.exit(f"failed ({r.returncode}): {' '.join(sys.argv[1:])}")
print(f"{d:.4f}")
PY
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

: >"$tmp/first"; : >"$tmp/warm"; : >"$tmp/nix"; : >"$tmp/tar"; : >"$tmp/tarzst"; : >"$tmp/run"
for i in $(seq "$RUNS"); do
  s=$STORE_DIR/runix-bench-bundle-$i
  chmod -R u+w "$s" "$s-nix" "$s-tar" 2>/dev/null || true
  rm -rf "$s" "$s-nix" "$s-tar"; sync
  secs env RUNIX_STORE="$s" RUNIX_CONFIG=/dev/null "$tmp/bench.bundle" >>"$tmp/first"
  for j in 1 2 3 4; do
    secs env RUNIX_STORE="$s" RUNIX_CONFIG=/dev/null "$tmp/bench.bundle" >>"$tmp/warm"
  done
  # The same runix, as a plain 'runix run' of the same program (its own index made first).
  plain=(env RUNIX_AS_RUNIX=1 RUNIX_STORE="$s" RUNIX_CONFIG=/dev/null RUNIX_CACHES= "$tmp/bench.bundle"
         run --offline --trusted-key "$key" "$prog")
  "${plain[@]}" >/dev/null 2>&1
  for j in 1 2 3 4; do
    secs "${plain[@]}" >>"$tmp/run"
  done
  secs sh -c "nix-store --store '$s-nix' --import <'$tmp/closure.export'" >>"$tmp/nix"
  mkdir -p "$s-tar"
  secs tar -xf "$tmp/closure.tar" -C "$s-tar" >>"$tmp/tar"
  chmod -R u+w "$s-tar"; rm -rf "$s-tar"; mkdir -p "$s-tar"
  secs sh -c "zstd -qdc '$tmp/closure.tar.zst' | tar -xf - -C '$s-tar'" >>"$tmp/tarzst"
  chmod -R u+w "$s" "$s-nix" "$s-tar" 2>/dev/null || true
  rm -rf "$s" "$s-nix" "$s-tar"
done
f=$(median <"$tmp/first"); w=$(median <"$tmp/warm"); n=$(median <"$tmp/nix")
t=$(median <"$tmp/tar"); z=$(median <"$tmp/tarzst"); p=$(median <"$tmp/run")
echo "medians of $RUNS runs (warm: of $((RUNS * 4))), cold stores in $STORE_DIR:"
echo "  bundle first run (import + run)   ${f} s"
echo "  bundle warm run                   ${w} s"
echo "  plain runix run, warm (same runix) ${p} s"
echo "  nix-store --import of the export  ${n} s"
echo "  tar -x of the closure             ${t} s"
echo "  zstd -d | tar -x of the closure   ${z} s"
echo "  first run / nix-store --import = $(echo "scale=2; $f / $n" | bc)"
echo "  first run / tar -x             = $(echo "scale=2; $f / $t" | bc)"
echo "  first run / zstd -d | tar -x   = $(echo "scale=2; $f / $z" | bc)"
echo "  warm run / first run           = $(echo "scale=3; $w / $f" | bc)"
echo "  warm run / plain runix run     = $(echo "scale=2; $w / $p" | bc)"

# What every start of runix pays: cli_bundle_detect() on a runix that is not
# a bundle (this harness itself), and on one that is (the harness with the
# bundle's payload appended), in a loop.
cat >"$tmp/detect.c" <<'C'
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "cli-bundle.h"
int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000;
    struct timespec a, b;
    if (argc > 2) { /* the peer: the cheapest syscall, as many times */
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (long i = 0; i < n; i++)
            getppid();
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000.0);
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        struct cli_bundle cb;
        struct rx_error *err = NULL;
        int r = cli_bundle_detect(&cb, &err);
        if (r < 0)
            return 1;
        if (r > 0)
            cli_bundle_release(&cb);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.3f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000.0);
    return 0;
}
C
cc -O2 -D_GNU_SOURCE -Ibuild -Isrc/util -Isrc/cli -o "$tmp/detect" "$tmp/detect.c" src/cli/cli-bundle.c \
  build/src/librx-util.a -ljansson
plain=$("$tmp/detect" 200000)
sys=$("$tmp/detect" 200000 getppid)
# A bundle of the harness: its ELF, then the payload of the bench bundle.
python3 - "$tmp/detect" "$tmp/bench.bundle" "$tmp/detect-bundle" <<'PY'
import struct, sys
exe = open(sys.argv[1], "rb").read()
b = open(sys.argv[2], "rb").read()
po, mo, ml = struct.unpack("<QQQ", b[-64:-40])
shift = len(exe) - po
# Only the offsets move: the manifest and its checksum stay as they are
# (offsets inside it are not used by the detection).
tr = struct.pack("<QQQ", po + shift, mo + shift, ml) + b[-40:]
open(sys.argv[3], "wb").write(exe + b[po:-64] + tr)
PY
chmod +x "$tmp/detect-bundle"
bundled=$("$tmp/detect-bundle" 2000)
echo "bundle check at every start: ${plain} us when not a bundle (one stat of /proc/self/exe);"
echo "  getppid() here: ${sys} us, so the check = $(echo "scale=1; $plain / $sys" | bc) x the cheapest syscall"
echo "  a bundle (the trailer and the app read, for its warm start): ${bundled} us"
echo "(figures on a shared machine are noisy; compare the ratios of one run)"
