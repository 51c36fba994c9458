#!/usr/bin/env bash
# Benchmark the warm start of 'runix run --sandbox' against a plain warm
# 'runix run' (target: within 3 ms at the median), with Debian's bubblewrap
# measured in the same run as the reference: bwrap with an equivalent view
# (the closure's paths read-only on /nix/store, the working directory
# read-write, a private /tmp, /dev and /proc, new user, pid, ipc, uts and
# network namespaces), running the same program.
#
#   bench/sandbox.sh    RUNS (default 200); BENCH_DIR keeps the fixture
#                       (default /var/tmp/runix-bench); BUILD the build
#                       directory (default build); BASE another runix
#                       binary (an older build) whose sandbox is measured
#                       in the same runs, for before/after figures
#
# Each figure is a median over interleaved runs, in wall-clock time and in
# CPU time (user + system of every process the command ran): on a busy
# machine the wall clock mostly measures the other work.  Needs user
# namespaces, Nix (for the fixture) and bubblewrap (apt-get install bubblewrap).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
RUNS=${RUNS:-200}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
command -v bwrap >/dev/null || { echo "bench/sandbox.sh needs bwrap (apt-get install bubblewrap)" >&2; exit 1; }
BUILD=${BUILD:-build}
[ -x "$BUILD/runix" ] || { meson setup "$BUILD" >/dev/null && ninja -C "$BUILD" >/dev/null; }
RUNIX=$(realpath "$BUILD/runix")

mkdir -p "$BENCH_DIR"
echo "building the test closure with Nix (once)..." >&2
tests/fixtures/build.sh "$BENCH_DIR/fixture" >/dev/null 2>&1
FX=$BENCH_DIR/fixture
top=$(cat "$FX/top")
hello=$(awk '$1 == "hello" { print $2 }' "$FX/paths")

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export RUNIX_STORE=$tmp/store RUNIX_CACHES=file://$FX/cache-zstd RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
"$RUNIX" fetch -q "$top" >/dev/null
"$RUNIX" run "$top" hello >/dev/null # the first auto run probes; later ones do not
store_real=$(realpath "$RUNIX_STORE")/nix/store
mkdir -p "$tmp/work"
cd "$tmp/work"

# The same view for bwrap: every closure path, the cwd, /tmp, /dev, /proc.
bw="bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --unshare-net --die-with-parent"
bw+=" --tmpfs / --dev /dev --proc /proc --tmpfs /tmp --dir /etc"
while read -r p; do
  bw+=" --ro-bind $store_real/$(basename "$p") $p"
done < <(nix-store -qR "$top" 2>/dev/null || cat "$FX/closure")
bw+=" --bind $tmp/work $tmp/work --chdir $tmp/work"

bench() { # bench OUT RUNS NAME=CMD...
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
out, runs, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cmds = [(s.split("=", 1)[0], s.split("=", 1)[1]) for s in specs]
wall = {name: [] for name, _ in cmds}
cpu = {name: [] for name, _ in cmds}
for i in range(runs):
    for name, cmd in (cmds if i % 2 == 0 else reversed(cmds)):
        t = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", "exec " + cmd], stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall[name].append(time.perf_counter() - t)
        cpu[name].append(ru.ru_utime + ru.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{name} failed: {cmd}")
def median(v):
    v = sorted(v)
    return v[len(v) // 2]
with open(out, "w") as f:
    for name, _ in cmds:
        f.write(f"{name} {median(wall[name]):.6f} {median(cpu[name]):.6f}\n")
PY
}
get() { awk -v n="$2" -v c="$3" '$1 == n { print $c }' "$1"; }
ms() { echo "$1 * 1000" | bc -l; }

rows=(sandbox sandbox-host-net)
cmds=("plain=$RUNIX run $top hello" "sandbox=$RUNIX run --sandbox $top hello"
  "sandbox-host-net=$RUNIX run --sandbox --network host $top hello")
if [ -n "${BASE:-}" ]; then
  BASE=$(realpath "$BASE")
  rows+=(base-sandbox)
  cmds+=("base-sandbox=$BASE run --sandbox $top hello")
  "$BASE" run --sandbox "$top" hello >/dev/null
fi
rows+=(bwrap)
cmds+=("bwrap=$bw $hello/bin/hello")
echo "== $RUNIX${BASE:+ (base-: $BASE)}"
echo "== warm start: median of $RUNS runs of hello"
bench "$tmp/start" "$RUNS" "${cmds[@]}"
p=$(get "$tmp/start" plain 2)
pc=$(get "$tmp/start" plain 3)
printf '%-17s %7.2f ms                 cpu %6.2f ms\n' plain "$(ms "$p")" "$(ms "$pc")"
for e in "${rows[@]}"; do
  t=$(get "$tmp/start" "$e" 2)
  c=$(get "$tmp/start" "$e" 3)
  tgt="target <= +3 ms"
  [ "$e" = bwrap ] && tgt="reference"
  printf '%-17s %7.2f ms   %+6.2f ms   cpu %6.2f ms   %+6.2f ms   (%s)\n' "$e" \
    "$(ms "$t")" "$(ms "($t - $p)")" "$(ms "$c")" "$(ms "($c - $pc)")" "$tgt"
done
bwt=$(get "$tmp/start" bwrap 2)
bwc=$(get "$tmp/start" bwrap 3)
for e in "${rows[@]}"; do
  [ "$e" = bwrap ] && continue
  t=$(get "$tmp/start" "$e" 2)
  c=$(get "$tmp/start" "$e" 3)
  printf '%s / bwrap: %.2f (wall), %.2f (cpu)\n' "$e" "$(echo "$t / $bwt" | bc -l)" \
    "$(echo "$c / $bwc" | bc -l)"
done

# The floor: what the kernel alone takes for the namespaces and processes a
# sandbox needs (bench/sandbox-floor.c), measured the same way.
if command -v cc >/dev/null; then
  cc -O2 -o "$tmp/sandbox-floor" "$src/bench/sandbox-floor.c"
  echo "== the kernel's part: median of $RUNS runs of each step (bench/sandbox-floor.c)"
  "$tmp/sandbox-floor" "$RUNS"
fi
