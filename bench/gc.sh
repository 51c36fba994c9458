#!/usr/bin/env bash
# Garbage collection benchmark, against real Nix measured in the same run:
# a store of 10,000 small paths (PATHS=N) of which half are dead, copied
# anew for each run; 'runix gc' vs 'nix-store --gc' on identical copies.
# Also times 'runix roots' and 'runix list' on that store when the build has
# them.  Prints the median of several alternating runs and the ratios.
# Usage: bench/gc.sh [RUNIX]   (default: build/runix)
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
runix=$(realpath "${1:-build/runix}")
runs=${RUNS:-3}
n=${PATHS:-10000}
for t in nix-store python3 bc; do
  command -v "$t" >/dev/null || { echo "bench needs $t (apt-get install nix-bin python3 bc)" >&2; exit 1; }
done
export NIX_CONFIG=$'experimental-features = nix-command\nbuild-users-group ='

# A tmpfs by default, so that the collectors, not the disk, are measured;
# BENCH_DIR=/var/tmp measures them on a disk (where unlinking dominates).
bench_dir=${BENCH_DIR:-/dev/shm}
[ -w "$bench_dir" ] || bench_dir=${TMPDIR:-/var/tmp}
work=$(mktemp -d "$bench_dir/runix-bench.XXXXXX")
echo "working in $bench_dir"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# The cache: path i references 2i+1, 2i+2 and the last path (make-large-cache.py).
cache=${RUNIX_FIXTURES:-${TMPDIR:-/tmp}/runix-fixtures}/large-$n
python3 tests/integration/lib/make-large-cache.py "$cache" "$n" >/dev/null
echo "building a store of $n paths ..."
"$runix" fetch -q --store "$work/store" --trusted-key "$(cat "$cache/key.pub")" \
  --cache "file://$cache" "$(cat "$cache/top")" >/dev/null
# Root p1, the left half of the tree: the other half is dead.
p1=$(grep -- '-p1$' "$cache/closure")
mkdir -p "$work/store/nix/var/nix/gcroots/runix/manual/bench"
ln -s "$p1" "$work/store/nix/var/nix/gcroots/runix/manual/bench/$(basename "$p1")"
dead=$(nix-store --store "$work/store" --gc --print-dead 2>/dev/null | grep -c '^/nix/store/')
echo "store: $n paths, $dead dead"

time_cmd() {
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
copy() { rm -rf "$work/copy"; cp -a "$work/store" "$work/copy"; sync; }

nix_t=()
runix_t=()
for r in $(seq 1 "$runs"); do
  copy
  nix_t+=("$(time_cmd nix-store --store "$work/copy" --gc)")
  left=$(sqlite3 "$work/copy/nix/var/nix/db/db.sqlite" "select count(*) from ValidPaths")
  chmod -R u+w "$work/copy"
  copy
  runix_t+=("$(time_cmd "$runix" gc --store "$work/copy")")
  left_r=$(sqlite3 "$work/copy/nix/var/nix/db/db.sqlite" "select count(*) from ValidPaths")
  [ "$left" = "$left_r" ] || { echo "runix gc left $left_r paths, Nix $left" >&2; exit 1; }
  chmod -R u+w "$work/copy"
done
nix_m=$(printf '%s\n' "${nix_t[@]}" | median)
runix_m=$(printf '%s\n' "${runix_t[@]}" | median)
printf 'gc       nix-store --gc: %.3f s   runix gc: %.3f s   ratio runix/nix = %.2f (want <= 0.50)\n' \
  "$nix_m" "$runix_m" "$(echo "$runix_m / $nix_m" | bc -l)"

# The listing commands, when this build has them (another part of runix).
for cmd in roots list; do
  if "$runix" "$cmd" --help >/dev/null 2>&1; then
    t=()
    for r in $(seq 1 "$runs"); do t+=("$(time_cmd "$runix" "$cmd" --store "$work/store")"); done
    printf '%-8s runix %s: %.0f ms (want < 200 ms)\n' "$cmd" "$cmd" \
      "$(echo "$(printf '%s\n' "${t[@]}" | median) * 1000" | bc -l)"
  else
    printf '%-8s runix %s: not in this build\n' "$cmd" "$cmd"
  fi
done
cd "$here"
