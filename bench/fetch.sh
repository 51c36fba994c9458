#!/usr/bin/env bash
# Benchmark runix fetch against `nix copy` (real Nix, same cache, same
# machine) and against the lower bound of just decompressing every NAR
# with 2 parallel jobs, for an xz and a zstd cache served over HTTP on
# loopback, into a cold store each run.  Also reports runix's peak RSS.
#
#   bench/fetch.sh            RUNS=5 by default; BENCH_DIR keeps the caches
#                             (default /var/tmp/runix-bench); STORE_DIR is
#                             where the cold stores go (default /dev/shm)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
STORE_DIR=${STORE_DIR:-/dev/shm}
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
[ -x build/runix ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
RUNIX=$PWD/build/runix

mkdir -p "$BENCH_DIR"
multiarch=$(gcc -print-multiarch)
interp=$(readelf -l /bin/sh | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
top=$(nix-build bench/closure.nix --argstr multiarch "$multiarch" --argstr interp "$interp" --no-out-link)
if [ "$(cat "$BENCH_DIR/top" 2>/dev/null)" != "$top" ]; then
  rm -rf "$BENCH_DIR"/cache-* "$BENCH_DIR"/key.*
  nix-store --generate-binary-cache-key runix-bench-1 "$BENCH_DIR/key.sec" "$BENCH_DIR/key.pub"
  nix store sign -r -k "$BENCH_DIR/key.sec" "$top"
  for c in xz zstd; do
    echo "making the $c cache..." >&2
    nix copy --to "file://$BENCH_DIR/cache-$c?compression=$c" "$top"
  done
  echo "$top" > "$BENCH_DIR/top"
fi
key=$(cat "$BENCH_DIR/key.pub")
files=$(nix-store -qR "$top" | xargs -I{} find {} -type f | wc -l)
narsize=$(nix path-info -S "$top" | awk '{ print $2 }')
echo "closure: $(nix-store -qR "$top" | wc -l) paths, $files files, NarSize $((narsize / 1000000)) MB"

tmp=$(mktemp -d)
python3 tests/integration/lib/httpd.py "$BENCH_DIR" "$tmp/port" /dev/null &
httpd=$!
trap 'kill $httpd; rm -rf "$tmp" "$STORE_DIR"/runix-bench-*' EXIT
while [ ! -s "$tmp/port" ]; do sleep 0.05; done
base=http://127.0.0.1:$(cat "$tmp/port")
url=$base/ok

# secs CMD...: wall time in seconds; the peak RSS in KiB of the children
# goes to $tmp/rss, their CPU time (user + system) in seconds to $tmp/cpu.
secs() {
  python3 - "$tmp" "$@" <<'PY'
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
d = time.monotonic() - t
if r.returncode != 0:
    sys.exit(f"failed ({r.returncode}): {' '.join(sys.argv[2:])}")
u = resource.getrusage(resource.RUSAGE_CHILDREN)
open(sys.argv[1] + "/rss", "w").write(f"{u.ru_maxrss}\n")
open(sys.argv[1] + "/cpu", "w").write(f"{u.ru_utime + u.ru_stime:.3f}\n")
print(f"{d:.3f}")
PY
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

for c in xz zstd; do
  case $c in xz) dec="xz -dc" ;; zstd) dec="zstd -qdc" ;; esac
  : >"$tmp/runix" ; : >"$tmp/nix" ; : >"$tmp/dec" ; : >"$tmp/rssall"
  : >"$tmp/runix-cpu" ; : >"$tmp/nix-cpu" ; : >"$tmp/dec-cpu"
  for i in $(seq "$RUNS"); do
    s=$STORE_DIR/runix-bench-$i
    rm -rf "$s" "$s-nix"; sync
    secs "$RUNIX" fetch -q --store "$s" --cache "$url/cache-$c" --trusted-key "$key" "$top" >>"$tmp/runix"
    cat "$tmp/rss" >>"$tmp/rssall"; cat "$tmp/cpu" >>"$tmp/runix-cpu"
    secs nix copy --from "$url/cache-$c" --to "$s-nix" --option trusted-public-keys "$key" "$top" >>"$tmp/nix"
    cat "$tmp/cpu" >>"$tmp/nix-cpu"
    secs sh -c "ls $BENCH_DIR/cache-$c/nar/* | xargs -P2 -n1 $dec >/dev/null" >>"$tmp/dec"
    cat "$tmp/cpu" >>"$tmp/dec-cpu"
    chmod -R u+w "$s" "$s-nix" 2>/dev/null; rm -rf "$s" "$s-nix"
  done
  r=$(median <"$tmp/runix"); n=$(median <"$tmp/nix"); d=$(median <"$tmp/dec")
  rss=$(sort -n "$tmp/rssall" | tail -1)
  echo "$c: runix fetch ${r}s, nix copy ${n}s, ${dec%% *} -dc x2 ${d}s (medians of $RUNS)"
  rc=$(median <"$tmp/runix-cpu"); cores=$(nproc)
  echo "$c:   CPU time: runix ${rc}s (so at least $(echo "scale=3; $rc / $cores" | bc)s on $cores cores), nix copy $(median <"$tmp/nix-cpu")s, ${dec%% *} -dc $(median <"$tmp/dec-cpu")s"
  echo "$c:   runix / nix copy = $(echo "scale=2; $r / $n" | bc)   (target <= 0.5)"
  echo "$c:   runix / decompress lower bound = $(echo "scale=2; $r / $d" | bc)   (target <= 1.3)"
  echo "$c:   runix peak RSS $((rss / 1024)) MB   (target <= 64)"
done

# The same xz cache behind a server that answers every request after 40 ms,
# like a distant cache: round trips, not the CPU, decide here.
: >"$tmp/runix" ; : >"$tmp/nix"
for i in $(seq "$RUNS"); do
  s=$STORE_DIR/runix-bench-$i
  rm -rf "$s" "$s-nix"
  secs "$RUNIX" fetch -q --store "$s" --cache "$base/latency/cache-xz" --trusted-key "$key" "$top" >>"$tmp/runix"
  secs nix copy --from "$base/latency/cache-xz" --to "$s-nix" --option trusted-public-keys "$key" "$top" >>"$tmp/nix"
  chmod -R u+w "$s" "$s-nix" 2>/dev/null; rm -rf "$s" "$s-nix"
done
r=$(median <"$tmp/runix"); n=$(median <"$tmp/nix")
echo "xz, 40 ms per answer: runix fetch ${r}s, nix copy ${n}s, ratio $(echo "scale=2; $r / $n" | bc) (medians of $RUNS)"
