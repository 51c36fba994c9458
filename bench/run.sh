#!/usr/bin/env bash
# Benchmark 'runix run' with each engine against the same programs run
# natively from a real /nix/store (where real Nix built the test closure),
# with Debian's proot (binding the runix store on /nix/store) measured in
# the same run as the reference for path remapping without root:
#
#   1. warm start: 'runix run P hello' against hello itself (median of many
#      runs; the difference is what runix adds), and the same with the static
#      release file (scripts/release.sh) beside the Meson build's;
#   2. syscall-heavy work: Python importing 50 standard modules; find over
#      the closure; a shell script that runs 500 store programs.
#
#   bench/run.sh        START_RUNS (default 200), RUNS (default 11, for workloads);
#                       BENCH_DIR keeps the fixture (default /var/tmp/runix-bench);
#                       BUILD is the build directory to measure (default build);
#                       RELEASE the release file (default dist/runix-$(uname -m)-linux,
#                       left out when missing); BASE another build directory
#                       (say, of the commit before a change) whose preload
#                       engine is measured beside BUILD's in the same runs
#
# Each figure is a median over interleaved runs, in wall-clock time and in
# CPU time (user + system, of every process the command ran): on a busy
# machine the wall clock mostly measures the other work, CPU time much less.
# Needs root or unprivileged user namespaces for the userns engine, and
# proot (apt-get install proot).
set -euo pipefail
cd "$(dirname "$0")/.."
START_RUNS=${START_RUNS:-200}
RUNS=${RUNS:-11}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
command -v proot >/dev/null || { echo "bench/run.sh needs proot (apt-get install proot)" >&2; exit 1; }
BUILD=${BUILD:-build}
[ -x "$BUILD/runix" ] || { meson setup "$BUILD" >/dev/null && ninja -C "$BUILD" >/dev/null; }
RUNIX=$(realpath "$BUILD/runix")
BASE_RUNIX=
if [ -n "${BASE:-}" ]; then
  [ -x "$BASE/runix" ] || { echo "bench/run.sh: BASE=$BASE has no runix: build it first" >&2; exit 1; }
  BASE_RUNIX=$(realpath "$BASE/runix")
fi
RELEASE=${RELEASE:-dist/runix-$(uname -m)-linux}
[ -x "$RELEASE" ] && RELEASE=$(realpath "$RELEASE") || RELEASE=

mkdir -p "$BENCH_DIR"
echo "building the test closure with Nix (once)..." >&2
tests/fixtures/build.sh "$BENCH_DIR/fixture" >/dev/null 2>&1
FX=$BENCH_DIR/fixture
top=$(cat "$FX/top")
hello=$(awk '$1 == "hello" { print $2 }' "$FX/paths")
[ -x "$hello/bin/hello" ] || { echo "the fixture is not in /nix/store: run tests/fixtures/build.sh" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export RUNIX_STORE=$tmp/store RUNIX_CACHES=file://$FX/cache-zstd RUNIX_TRUSTED_KEYS="$(cat "$FX/key.pub")"
"$RUNIX" fetch -q "$top" >/dev/null
"$RUNIX" run "$top" hello >/dev/null # the first auto run probes; later ones do not
# The release file's first preload run extracts its engine libraries.
[ -z "$RELEASE" ] || "$RELEASE" run --engine preload "$top" hello >/dev/null
store_real=$(realpath "$RUNIX_STORE")/nix/store
export PATH=$top/bin:$PATH

# bench OUT RUNS NAME=CMD...: run every command RUNS times, interleaved, and
# write "NAME median_wall_seconds median_cpu_seconds" lines to OUT.
bench() {
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
        # wait4 gives the CPU time of the process and all it waited for.
        _, status, ru = os.wait4(p.pid, 0)
        wall[name].append(time.perf_counter() - t)
        cpu[name].append(ru.ru_utime + ru.ru_stime)
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode != 0:
            sys.exit(f"{name} failed ({p.returncode}): {cmd}")
def median(v):
    v = sorted(v)
    return v[len(v) // 2]
with open(out, "w") as f:
    for name, _ in cmds:
        f.write(f"{name} {median(wall[name]):.6f} {median(cpu[name]):.6f}\n")
PY
}
get() { awk -v n="$2" '$1 == n { print $2 }' "$1"; }
getcpu() { awk -v n="$2" '$1 == n { print $3 }' "$1"; }

run="$RUNIX run"
pr="proot -b $store_real:/nix/store"

echo "== $RUNIX"
echo "== warm start: median of $START_RUNS runs of hello"
release_specs=()
[ -z "$RELEASE" ] || release_specs=(
  "release-userns=$RELEASE run --engine userns $top hello"
  "release-preload=$RELEASE run --engine preload $top hello"
  "release-auto=$RELEASE run $top hello")
bench "$tmp/start" "$START_RUNS" \
  "native=$hello/bin/hello" \
  "userns=$run --engine userns $top hello" \
  "preload=$run --engine preload $top hello" \
  "auto=$run $top hello" \
  "proot=$pr $hello/bin/hello" \
  "${release_specs[@]}"
n=$(get "$tmp/start" native)
nc=$(getcpu "$tmp/start" native)
printf 'native   %7.2f ms                 cpu %6.2f ms\n' "$(echo "$n * 1000" | bc -l)" "$(echo "$nc * 1000" | bc -l)"
for e in userns preload auto proot; do
  t=$(get "$tmp/start" "$e")
  c=$(getcpu "$tmp/start" "$e")
  tgt="target <= +3 ms"
  [ "$e" = proot ] && tgt=reference
  printf '%-8s %7.2f ms   %+6.2f ms   cpu %6.2f ms   %+6.2f ms   (%s)\n' \
    "$e" "$(echo "$t * 1000" | bc -l)" "$(echo "($t - $n) * 1000" | bc -l)" \
    "$(echo "$c * 1000" | bc -l)" "$(echo "($c - $nc) * 1000" | bc -l)" "$tgt"
done
if [ -n "$RELEASE" ]; then
  echo "-- the release file, $RELEASE, against the Meson build's runix:"
  for e in userns preload auto; do
    m=$(get "$tmp/start" "$e")
    t=$(get "$tmp/start" "release-$e")
    c=$(getcpu "$tmp/start" "release-$e")
    mc=$(getcpu "$tmp/start" "$e")
    printf '%-8s %7.2f ms   %+6.2f ms   cpu %6.2f ms   %+6.2f ms   (target: within 0.3 ms of the Meson build)\n' \
      "$e" "$(echo "$t * 1000" | bc -l)" "$(echo "($t - $m) * 1000" | bc -l)" \
      "$(echo "$c * 1000" | bc -l)" "$(echo "($c - $mc) * 1000" | bc -l)"
  done
fi

mods="os sys re json decimal fractions statistics collections itertools functools operator \
  datetime calendar time string textwrap difflib struct codecs unicodedata pathlib glob \
  fnmatch shutil tempfile tarfile zipfile gzip bz2 lzma zlib hashlib hmac secrets random \
  math cmath base64 binascii csv configparser argparse logging pickle copy pprint enum \
  dataclasses typing heapq bisect array"
py="python3 -c 'import $(echo $mods | tr ' ' ','); print(len(sys.modules))'"
# Every file of the closure, 20 times over, each one stat'ed (-newer).
closure_paths=$(for i in $(seq 20); do tr '\n' ' ' <"$FX/closure"; done)
find_cmd="find $closure_paths -type f -newer /nix/store"
loop="dash -c 'i=0; while [ \$i -lt 500 ]; do hello x >/dev/null; i=\$((i + 1)); done'"

report() { # report FILE LABEL
  local n nc t c e
  n=$(get "$1" native)
  nc=$(getcpu "$1" native)
  printf '%s: native %.3f s, cpu %.3f s\n' "$2" "$n" "$nc"
  local engines=(userns preload)
  [ -z "$BASE_RUNIX" ] || engines+=(preload-base)
  for e in "${engines[@]}" proot; do
    t=$(get "$1" "$e")
    c=$(getcpu "$1" "$e")
    case $e in userns) tgt="<= 1.05" ;; preload) tgt="<= 1.3" ;; preload-base) tgt="BASE=$BASE" ;; *) tgt="reference" ;; esac
    printf '  %-8s %.3f s   %.2fx native   cpu %.3f s   %.2fx native   (%s)\n' \
      "$e" "$t" "$(echo "$t / $n" | bc -l)" "$c" "$(echo "$c / $nc" | bc -l)" "$tgt"
  done
}
for w in py find_cmd loop; do
  cmd=${!w}
  bench "$tmp/$w" "$RUNS" \
    "native=$cmd" \
    "userns=$run --engine userns $top $cmd" \
    "preload=$run --engine preload $top $cmd" \
    ${BASE_RUNIX:+"preload-base=$BASE_RUNIX run --engine preload $top $cmd"} \
    "proot=$pr $cmd"
done
echo "== syscall-heavy work: median of $RUNS runs"
report "$tmp/py" "python3 importing 50 standard modules"
report "$tmp/find_cmd" "find over the closure, 20 times ($(wc -l <"$FX/closure") paths, $(find $(cat "$FX/closure") | wc -l) entries)"
report "$tmp/loop" "dash running hello 500 times"
