#!/usr/bin/env bash
# Benchmark running by name on a generated index of PACKAGES packages (laid
# out as nix-index-database's small index, bench/make-index.py) with the
# fixture closure's own packages at the end:
#
#   1. 'runix locate bin/PROGRAM' and the lookup of ', PROGRAM'
#      (', --print PROGRAM', in the front while the sidecar is fresh): target < 50 ms,
#      < 16 MB; the same locate reading the whole database, for reference;
#   2. the warm ', PROGRAM' against 'runix run STOREPATH PROGRAM': target
#      within 5 ms.
#
#   bench/byname.sh     PACKAGES (default 80000), RUNS (default 21), LEVEL
#                       (zstd level of the generated index, default 12);
#                       BENCH_DIR keeps the fixture and the generated lines
#                       (default /var/tmp/runix-bench); BUILD the build
#                       directory (default build)
#
# Each figure is a median over interleaved runs, wall clock and CPU time
# (user + system): on a busy machine the wall clock mostly measures the
# other work.  Needs Nix (for the fixture) and zstd.
set -euo pipefail
cd "$(dirname "$0")/.."
PACKAGES=${PACKAGES:-80000}
RUNS=${RUNS:-21}
LEVEL=${LEVEL:-12}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
BUILD=${BUILD:-build}
[ -x "$BUILD/runix" ] || { meson setup "$BUILD" >/dev/null && ninja -C "$BUILD" >/dev/null; }
RUNIX=$(realpath "$BUILD/runix")
command -v zstd >/dev/null || { echo "bench/byname.sh needs zstd" >&2; exit 1; }

mkdir -p "$BENCH_DIR"
echo "building the test closure with Nix (once)..." >&2
tests/fixtures/build.sh "$BENCH_DIR/fixture" >/dev/null 2>&1
FX=$BENCH_DIR/fixture
top=$(cat "$FX/top")

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export HOME=$tmp/home XDG_CACHE_HOME=$tmp/cache XDG_STATE_HOME=$tmp/state RUNIX_CONFIG=/dev/null
export RUNIX_STORE=$tmp/store RUNIX_CACHES=file://$FX/cache-zstd RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
mkdir -p "$HOME"

lines=$BENCH_DIR/index-$PACKAGES-$LEVEL.zst
if [ ! -s "$lines" ]; then
  echo "generating an index of $PACKAGES packages (once)..." >&2
  python3 bench/make-index.py "$PACKAGES" | zstd -q -T0 -"$LEVEL" >"$lines.tmp"
  mv "$lines.tmp" "$lines"
fi
"$RUNIX" index build -q --filter-prefix /bin/ -o "$tmp/fixture-index" --cache "$RUNIX_CACHES" "$top"
db=$XDG_CACHE_HOME/runix/index/nixpkgs/files
mkdir -p "$(dirname "$db")"
# One stream of zstd frames: the generated packages, then the fixture's.
{ printf 'NIXI\1\0\0\0\0\0\0\0'; cat "$lines"; tail -c +13 "$tmp/fixture-index"; } >"$db"
plain=$(tail -c +13 "$db" | zstd -dc | wc -c)
printf 'index: %d packages + the fixture, %.1f MiB (%.1f MiB decompressed)\n' "$PACKAGES" \
  "$(echo "$(stat -c %s "$db") / 1048576" | bc -l)" "$(echo "$plain / 1048576" | bc -l)"
t0=$(date +%s.%N)
"$RUNIX" locate bin/bench-needle >/dev/null
printf 'first lookup (writes the sidecars): %.0f ms\n' "$(echo "($(date +%s.%N) - $t0) * 1000" | bc -l)"
"$RUNIX" , hello-alt >/dev/null 2>&1 # fetches the closure, remembers the choice

# bench OUT RUNS NAME=CMD...: "NAME median_wall median_cpu" lines in OUT.
bench() {
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
out, runs, specs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
cmds = [(s.split("=", 1)[0], s.split("=", 1)[1]) for s in specs]
wall = {n: [] for n, _ in cmds}
cpu = {n: [] for n, _ in cmds}
for i in range(runs):
    for name, cmd in (cmds if i % 2 == 0 else reversed(cmds)):
        t = time.perf_counter()
        p = subprocess.Popen(["/bin/sh", "-c", "exec " + cmd], stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall[name].append(time.perf_counter() - t)
        cpu[name].append(ru.ru_utime + ru.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{name} failed: {cmd}")
med = lambda v: sorted(v)[len(v) // 2]
with open(out, "w") as f:
    for name, _ in cmds:
        f.write(f"{name} {med(wall[name]):.6f} {med(cpu[name]):.6f}\n")
PY
}
show() { # show FILE NAME LABEL
  awk -v n="$2" -v l="$3" '$1 == n { printf "%-44s %7.2f ms   cpu %6.2f ms\n", l, $2 * 1000, $3 * 1000 }' "$1"
}
maxrss() { # maxrss LABEL CMD...: the largest resident set of CMD (GNU time; no Python fork in it)
  local kb
  /usr/bin/time -f '%M' -o "$tmp/rss" "${@:2}" >/dev/null 2>&1
  kb=$(tail -n 1 "$tmp/rss")
  printf '%-44s max rss %5.1f MB\n' "$1" "$(echo "$kb / 1024" | bc -l)"
}

echo "== lookups, median of $RUNS runs (target < 50 ms, < 16 MB)"
bench "$tmp/lookup" "$RUNS" \
  "locate=$RUNIX locate bin/bench-needle" \
  "comma=$RUNIX , --print bench-needle" \
  "scan=$RUNIX locate --regex bin/bench-needle" \
  "core=$(dirname "$RUNIX")/runix-core version"
show "$tmp/lookup" locate "runix locate bin/bench-needle"
show "$tmp/lookup" comma "runix , --print bench-needle"
show "$tmp/lookup" scan "locate --regex (reads the whole database)"
show "$tmp/lookup" core "runix-core version (its start alone)"
maxrss "runix locate bin/bench-needle" "$RUNIX" locate bin/bench-needle
maxrss "runix , --print bench-needle" "$RUNIX" , --print bench-needle
maxrss "locate --regex (reads the whole database)" "$RUNIX" locate --regex bin/bench-needle

echo "== warm start, median of $((RUNS * 5)) runs (target: within 5 ms)"
bench "$tmp/warm" "$((RUNS * 5))" \
  "run=$RUNIX run $top hello-alt" \
  "comma=$RUNIX , hello-alt"
show "$tmp/warm" run "runix run STOREPATH hello-alt"
show "$tmp/warm" comma "runix , hello-alt"
awk '$1 == "run" { r = $2; rc = $3 } $1 == "comma" { c = $2; cc = $3 }
     END { printf "%-44s %+7.2f ms   cpu %+6.2f ms\n", "difference", (c - r) * 1000, (cc - rc) * 1000 }' "$tmp/warm"
