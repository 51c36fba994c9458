#!/usr/bin/env bash
# Build runix and run its main job on the bundled demo cache (demo/cache, a
# small binary cache written and signed by real Nix): for every path, check
# the narinfo's signature against the demo key, unpack its NAR into a fresh
# directory with store permissions, and check the unpacked tree's NAR hash
# against the signed NarHash.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ ! -d build ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
runix=$PWD/build/runix

cache=demo/cache
key=$(cat demo/demo-key.pub)
out=$(mktemp -d "${TMPDIR:-/tmp}/runix-demo.XXXXXX")

for ni in "$cache"/*.narinfo; do
  path=$(sed -n 's/^StorePath: //p' "$ni")
  url=$(sed -n 's/^URL: //p' "$ni")
  want=$(sed -n 's/^NarHash: //p' "$ni")
  echo "== $path"
  printf 'signature:  '
  "$runix" narinfo verify --trusted-key "$key" "$ni"
  dest=$out/$(basename "$path")
  "$runix" nar restore --canonical "$dest" < "$cache/$url"
  got=$("$runix" nar hash "$dest")
  echo "NarHash:    $got"
  if [ "$got" != "$want" ]; then
    echo "hash mismatch: narinfo says $want" >&2
    exit 1
  fi
  echo "contents:"
  "$runix" nar ls -l "$cache/$url" | sed 's/^/  /'
done
echo
echo "unpacked and verified into $out"
echo "greeting: $(cat "$out"/*-runix-demo-greeting-1.0/share/greeting.txt)"
