#!/usr/bin/env bash
# Build runix, then run a real program from the bundled demo cache (demo/cache:
# a small binary cache built, signed and published by real Nix).  runix
# fetches the program's closure into a fresh store, checking every signature
# against the demo key and every NAR against its hashes, and runs it so that
# it finds its ELF interpreter, its library and its data under /nix/store.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
if [ ! -d build ]; then
  meson setup build >/dev/null
fi
ninja -C build >/dev/null
runix=$PWD/build/runix

store=$(mktemp -d "${TMPDIR:-/tmp}/runix-demo.XXXXXX")
top=$(cat demo/top-path)
echo "\$ runix run --store $store --cache file://$PWD/demo/cache --trusted-key $(cat demo/demo-key.pub) $top" >&2
"$runix" run -v --store "$store" --cache "file://$PWD/demo/cache" \
  --trusted-key "$(cat demo/demo-key.pub)" "$top"
echo >&2
echo "the store $store now holds the verified closure; run it again (no download):" >&2
echo "  $runix run --store $store $top [NAME]" >&2
