#!/usr/bin/env bash
# Benchmark the cold start of a distributable (a closure of 31 paths in 5
# levels of references, bench/dist-closure.nix) from a cache 40 ms away
# (every answer waits 40 ms), into a fresh store each run: time from
# 'runix run FILE' to the program's first output, for the same file
#   plain:     paths only (the narinfos are walked a level at a time)
#   closure:   with the whole closure listed (runix generate --closure)
#   embedded:  with the signed narinfos embedded (--embed-narinfos)
# and the ratios closure/plain and embedded/plain, measured interleaved.
#
#   bench/distributable.sh      RUNS (default 9); BENCH_DIR keeps the cache
#                               (default /var/tmp/runix-bench)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-9}
BENCH_DIR=${BENCH_DIR:-/var/tmp/runix-bench}
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
[ -x build/runix ] || { meson setup build >/dev/null && ninja -C build >/dev/null; }
RUNIX=${RUNIX:-$PWD/build/runix}

mkdir -p "$BENCH_DIR"
top=$(nix-build bench/dist-closure.nix --no-out-link)
cache=$BENCH_DIR/dist-cache
if [ "$(cat "$BENCH_DIR/dist-top" 2>/dev/null)" != "$top" ]; then
  rm -rf "$cache" "$BENCH_DIR"/dist-key.*
  nix-store --generate-binary-cache-key runix-dist-bench-1 "$BENCH_DIR/dist-key.sec" "$BENCH_DIR/dist-key.pub"
  nix copy --to "file://$cache?compression=zstd" "$top"
  # Signed in the cache, not in the host store (see bench/fetch.sh).
  nix store sign --store "file://$cache" -r -k "$BENCH_DIR/dist-key.sec" "$top"
  echo "$top" > "$BENCH_DIR/dist-top"
fi
key=$(cat "$BENCH_DIR/dist-key.pub")
echo "closure: $(nix-store -qR "$top" | wc -l) paths; every answer of the cache waits 40 ms"

tmp=$(mktemp -d)
python3 tests/integration/lib/httpd.py "$BENCH_DIR" "$tmp/port" /dev/null &
httpd=$!
trap 'kill $httpd; chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
while [ ! -s "$tmp/port" ]; do sleep 0.05; done
url=http://127.0.0.1:$(cat "$tmp/port")/latency/dist-cache
export RUNIX_CACHES=$url RUNIX_TRUSTED_KEYS=$key RUNIX_CONFIG=/dev/null HOME=$tmp/home
mkdir -p "$HOME"

common=(--cache "$url" --key "$key" --app default=bin/dist-bench)
"$RUNIX" generate -o "$tmp/plain.runix" "${common[@]}" "$top"
"$RUNIX" generate -o "$tmp/closure.runix" --closure "${common[@]}" "$top"
"$RUNIX" generate -o "$tmp/embedded.runix" --embed-narinfos "${common[@]}" "$top"

# first_output FILE: seconds from starting 'runix run FILE' in a fresh store
# to the program's first line.
first_output() {
  python3 - "$RUNIX" "$1" "$tmp/store-$RANDOM$RANDOM" <<'PY'
import os, subprocess, sys, time
runix, f, store = sys.argv[1:]
env = dict(os.environ, RUNIX_STORE=store)
t = time.monotonic()
p = subprocess.Popen([runix, "run", "-q", f], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
line = p.stdout.readline()
d = time.monotonic() - t
p.wait()
if line.strip() != b"ready" or p.returncode != 0:
    sys.exit(f"{f}: no output ({p.returncode})")
print(f"{d:.4f}")
PY
}

declare -A times
for i in $(seq "$RUNS"); do
  kinds=(plain closure embedded)
  [ $((i % 2)) -eq 0 ] && kinds=(embedded closure plain)
  for k in "${kinds[@]}"; do
    times[$k]+="$(first_output "$tmp/$k.runix") "
  done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
p=$(echo "${times[plain]}" | median)
c=$(echo "${times[closure]}" | median)
e=$(echo "${times[embedded]}" | median)
printf '%-10s %8s %8s\n' "file" "median" "ratio"
printf '%-10s %7.3fs %8s\n' plain "$p" "1.00x"
printf '%-10s %7.3fs %7.2fx   (goal <= 0.60x)\n' closure "$c" "$(echo "$c / $p" | bc -l)"
printf '%-10s %7.3fs %7.2fx   (goal <= 0.50x)\n' embedded "$e" "$(echo "$e / $p" | bc -l)"
