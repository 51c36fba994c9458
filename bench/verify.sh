#!/usr/bin/env bash
# Benchmark runix verify against `nix-store --verify --check-contents` (real
# Nix, same machine, same run) on two identical copies of a store holding
# the benchmark closure (bench/closure.nix: the test closure with Python,
# Perl's library and the C/C++ headers, thousands of files, ~100 MB of
# NAR), with the page cache warm for both.  Prints the medians and the
# ratio; the goal is runix at least 1.6x faster on 2 cores.
#
#   bench/verify.sh [RUNIX]   RUNS=7 by default; BENCH_DIR keeps the caches
#                             (default /var/tmp/runix-bench); STORE_DIR is
#                             where the stores go (default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-7}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
STORE_DIR=${STORE_DIR:-/dev/shm}
[ -w "$STORE_DIR" ] || STORE_DIR=${TMPDIR:-/var/tmp}
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
for t in nix-build nix-store nix python3; do
  command -v "$t" >/dev/null || { echo "bench needs $t (apt-get install nix-bin python3)" >&2; exit 1; }
done
if [ $# -gt 0 ]; then
  RUNIX=$(realpath "$1")
else
  [ -x build/runix ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
  RUNIX=$PWD/build/runix
fi

# The closure and its cache, as bench/fetch.sh makes them.
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
  echo "$top" >"$BENCH_DIR/top"
fi
key=$(cat "$BENCH_DIR/key.pub")

work=$(mktemp -d "$STORE_DIR/runix-bench-verify.XXXXXX")
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
"$RUNIX" fetch -q --store "$work/runix" --cache "file://$BENCH_DIR/cache-zstd" --trusted-key "$key" "$top" >/dev/null
cp -a "$work/runix" "$work/nix"
paths=$(sqlite3 "$work/runix/nix/var/nix/db/db.sqlite" "select count(*) from ValidPaths")
narsize=$(sqlite3 "$work/runix/nix/var/nix/db/db.sqlite" "select sum(narSize) from ValidPaths")
files=$(find "$work/runix/nix/store" -type f | wc -l)
largest=$(sqlite3 "$work/runix/nix/var/nix/db/db.sqlite" "select max(narSize) from ValidPaths")
echo "store: $paths paths, $files files, NarSize $((narsize / 1000000)) MB (largest path $((largest / 1000000)) MB), $(nproc) cores"

# secs CMD...: wall time in seconds (the command must succeed); its CPU
# time (user + system) goes to $work/cpu.
secs() {
  python3 - "$work/cpu" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
d = time.monotonic() - t
if r.returncode != 0:
    sys.exit(f"failed ({r.returncode}): {' '.join(sys.argv[2:])}")
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1], "w").write(f"{u.ru_utime + u.ru_stime:.3f}\n")
print(f"{d:.3f}")
PY
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# Warm the page cache for both copies, then alternate.
secs "$RUNIX" verify -q --offline --store "$work/runix" >/dev/null
secs nix-store --store "$work/nix" --verify --check-contents >/dev/null
: >"$work/r"; : >"$work/r1"; : >"$work/n"; : >"$work/rc"; : >"$work/nc"
for i in $(seq "$RUNS"); do
  secs "$RUNIX" verify -q --offline --store "$work/runix" >>"$work/r"
  cat "$work/cpu" >>"$work/rc"
  secs "$RUNIX" verify -q --offline --jobs 1 --store "$work/runix" >>"$work/r1"
  secs nix-store --store "$work/nix" --verify --check-contents >>"$work/n"
  cat "$work/cpu" >>"$work/nc"
done
r=$(median <"$work/r"); r1=$(median <"$work/r1"); n=$(median <"$work/n")
echo "runix verify ${r}s (--jobs 1: ${r1}s), nix-store --verify --check-contents ${n}s (medians of $RUNS)"
echo "CPU time (user + system): runix $(median <"$work/rc")s, nix-store $(median <"$work/nc")s; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runs: runix $(paste -sd' ' "$work/r"); nix-store $(paste -sd' ' "$work/n")"
echo "nix-store / runix = $(python3 -c "print(f'{$n / $r:.2f}')")x   (goal >= 1.6x)"
echo "nix-store / runix --jobs 1 = $(python3 -c "print(f'{$n / $r1:.2f}')")x"
# The fastest runs, the least disturbed by other load on the machine.
rmin=$(sort -n "$work/r" | head -1); nmin=$(sort -n "$work/n" | head -1)
echo "fastest runs: runix ${rmin}s, nix-store ${nmin}s, ratio $(python3 -c "print(f'{$nmin / $rmin:.2f}')")x"
