#!/usr/bin/env bash
# The bundled demo (README command 1) stays valid and runs: every narinfo
# verifies with the demo key, every NAR unpacks to its signed NarHash,
# tampering is caught, and 'runix run' fetches the closure and runs the
# program with both engines, with the host's /nix/store hidden so that only
# runix can make the paths appear.
. "$(dirname "$0")/lib/libtest.sh"

demo=$(cd "$(dirname "$0")/../../demo" && pwd)
key=$(cat "$demo/demo-key.pub")
top=$(cat "$demo/top-path")
n=0
for ni in "$demo"/cache/*.narinfo; do
  n=$((n + 1))
  path=$(sed -n 's/^StorePath: //p' "$ni")
  url=$(sed -n 's/^URL: //p' "$ni")
  want=$(sed -n 's/^NarHash: //p' "$ni")
  name=$(basename "$path")
  ok "$name: narinfo signed by the demo key" "$RUNIX" narinfo verify --trusted-key "$key" "$ni"
  ok "$name: NAR unpacks" bash -c 'xz -dc "$2" | "$RUNIX" nar restore --canonical "$1"' _ "$TEST_TMP/$name" "$demo/cache/$url"
  ok "$name: unpacked tree has the signed NarHash" test "$("$RUNIX" nar hash "$TEST_TMP/$name")" = "$want"
done
is "$n" 4 "the demo cache holds the program, its library, glibc and a data path"
ok "the program's ELF interpreter is the store's loader" \
  bash -c 'readelf -l "$1"/*-runix-demo-hello-1.0/bin/runix-demo | grep -q "interpreter: /nix/store/.*-runix-demo-glibc-2.36/lib/ld-linux"' _ "$TEST_TMP"
ok "its RUNPATH names the store library" \
  bash -c 'readelf -d "$1"/*-runix-demo-hello-1.0/bin/runix-demo | grep -q "RUNPATH.*/nix/store/.*-runix-demo-libgreeting-1.0/lib"' _ "$TEST_TMP"

# A flipped byte in a NAR's file contents gives another hash.
ni=$(grep -l "StorePath: .*-runix-demo-data-1.0" "$demo"/cache/*.narinfo)
url=$(sed -n 's/^URL: //p' "$ni")
want=$(sed -n 's/^NarHash: //p' "$ni")
xz -dc "$demo/cache/$url" | sed 's/read from/READ FROM/' > "$TEST_TMP/tampered.nar"
ok "tampered NAR still parses" bash -c '"$RUNIX" nar restore "$1" < "$2"' _ "$TEST_TMP/tampered" "$TEST_TMP/tampered.nar"
ok "tampered NAR does not match the signed NarHash" test "$("$RUNIX" nar hash "$TEST_TMP/tampered")" != "$want"

# The demo itself: fetch and run, with the host store hidden.
hidden() {
  unshare -rm sh -c '[ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99; exec "$@"' _ "$@"
}
is "$(hidden ls /nix/store 2>/dev/null | wc -l)" 0 "the host store is hidden"
for engine in userns preload; do
  out=$(hidden "$RUNIX" run -q --engine "$engine" --store "$TEST_TMP/store" \
    --cache "file://$demo/cache" --trusted-key "$key" "$top" runix-demo you 2>&1)
  is "$(printf '%s\n' "$out" | head -n 1)" \
    "Hello, you! This program was fetched from a Nix binary cache, verified and" \
    "$engine: the demo program runs from the demo cache"
  ok "$engine: it sees its own store path and its data path" bash -c \
    'grep -q "program: $2/bin/runix-demo" <<<"$1" && grep -q "data:    read from /nix/store/.*-runix-demo-data-1.0" <<<"$1"' \
    _ "$out" "$top"
done
ok "the closure is valid for real Nix" \
  nix-store --store "$TEST_TMP/store" --verify --check-contents

# The demo script prints a command to run the program again: it works as printed.
mkdir -p "$TEST_TMP/demo-tmp"
out=$(TMPDIR=$TEST_TMP/demo-tmp RUNIX=$RUNIX "$demo/../scripts/demo.sh" 2>&1)
is "$(grep -c '^Hello, world! This program was fetched' <<<"$out")" 1 "the demo script runs the program"
again=$(grep -A1 'run it again' <<<"$out" | tail -n 1)
ok "the demo prints how to run it again ($again)" grep -q ' run --store ' <<<"$again"
is "$(cd / && eval "env RUNIX_CACHES=http://127.0.0.1:9 $again" 2>&1 | head -n 1)" \
  "Hello, you! This program was fetched from a Nix binary cache, verified and" \
  "the printed command works exactly as printed, without the network"

done_testing
