#!/usr/bin/env bash
# NAR benchmarks, each against a peer measured in the same run:
#   1. 'runix nar restore' vs 'nix-store --restore' of a ~500 MB NAR of many
#      small files (copies of the Python standard library);
#   2. 'runix nar hash' of one large file vs 'sha256sum' of the same file.
# Prints the median of several alternating runs and the ratios.
# Usage: bench/nar.sh [RUNIX]   (default: build/runix)
set -euo pipefail
cd "$(dirname "$0")/.."
runix=$(realpath "${1:-build/runix}")
runs=${RUNS:-5}
target_mb=${NAR_MB:-500}
for t in nix-store python3 sha256sum; do
  command -v "$t" >/dev/null || { echo "bench needs $t (apt-get install nix-bin python3)" >&2; exit 1; }
done
export NIX_CONFIG=$'experimental-features = nix-command'

# Restores go to a tmpfs by default so that the tools, not the disk, are
# measured (on a disk both are bound by writeback); BENCH_DIR overrides.
bench_dir=${BENCH_DIR:-/dev/shm}
[ -w "$bench_dir" ] || bench_dir=${TMPDIR:-/var/tmp}
work=$(mktemp -d "$bench_dir/runix-bench.XXXXXX")
echo "working in $bench_dir"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
echo "building a ~${target_mb} MB tree from copies of $stdlib ..."
mkdir "$work/tree"
i=0
while [ "$(du -sm "$work/tree" | cut -f1)" -lt "$target_mb" ]; do
  i=$((i + 1))
  mkdir "$work/tree/copy$i"
  (cd "$stdlib" && tar --exclude=site-packages --exclude=dist-packages --exclude=__pycache__ -cf - .) |
    tar -C "$work/tree/copy$i" -xf -
done
nix-store --dump "$work/tree" > "$work/tree.nar"
files=$(find "$work/tree" -type f | wc -l)
size=$(stat -c %s "$work/tree.nar")
rm -rf "$work/tree"
echo "NAR: $((size / 1048576)) MB, $files files"

# time_cmd CMD...: print the wall time in seconds of one run.
time_cmd() {
  local s e
  s=$(date +%s.%N)
  "$@"
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

nix_t=()
runix_t=()
for r in $(seq 1 "$runs"); do
  sync
  nix_t+=("$(time_cmd sh -c 'nix-store --restore "$1" < "$2"' _ "$work/n$r" "$work/tree.nar")")
  rm -rf "$work/n$r"
  sync
  runix_t+=("$(time_cmd sh -c '"$1" nar restore "$2" < "$3"' _ "$runix" "$work/r$r" "$work/tree.nar")")
  rm -rf "$work/r$r"
done
nix_m=$(printf '%s\n' "${nix_t[@]}" | median)
runix_m=$(printf '%s\n' "${runix_t[@]}" | median)
printf 'restore  nix-store --restore: %.3f s   runix nar restore: %.3f s   ratio runix/nix = %.2f (want <= 1.00)\n' \
  "$nix_m" "$runix_m" "$(echo "$runix_m / $nix_m" | bc -l)"
rm -f "$work/tree.nar"

# One large file for hashing (1 GiB, in the page cache after the first read).
head -c $((1024 * 1048576)) /dev/urandom > "$work/big"
sha256sum "$work/big" >/dev/null
sha_t=()
hash_t=()
for r in $(seq 1 "$runs"); do
  sha_t+=("$(time_cmd sh -c 'sha256sum "$1" >/dev/null' _ "$work/big")")
  hash_t+=("$(time_cmd sh -c '"$1" nar hash "$2" >/dev/null' _ "$runix" "$work/big")")
done
sha_m=$(printf '%s\n' "${sha_t[@]}" | median)
hash_m=$(printf '%s\n' "${hash_t[@]}" | median)
printf 'hash     sha256sum: %.3f s (%.0f MB/s)   runix nar hash: %.3f s (%.0f MB/s)   throughput runix/sha256sum = %.2f (want >= 0.90)\n' \
  "$sha_m" "$(echo "1024 / $sha_m" | bc -l)" "$hash_m" "$(echo "1024 / $hash_m" | bc -l)" "$(echo "$sha_m / $hash_m" | bc -l)"
