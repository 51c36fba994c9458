#!/usr/bin/env bash
# Build runix, then run a real program from the bundled demo cache (demo/cache:
# a small binary cache built, signed and published by real Nix).  runix
# fetches the program's closure into a fresh store, checking every signature
# against the demo key and every NAR against its hashes, and runs it so that
# it finds its ELF interpreter, its library and its data under /nix/store.
set -euo pipefail
cd "$(dirname "$0")/.."

# RUNIX=/path/to/runix: use that build (the tests do); otherwise build one here.
if [ -n "${RUNIX:-}" ]; then
  runix=$RUNIX
else
  scripts/install-deps.sh
  if [ ! -d build ]; then
    meson setup build >/dev/null
  fi
  ninja -C build >/dev/null
  runix=$PWD/build/runix
fi

store=$(mktemp -d "${TMPDIR:-/tmp}/runix-demo.XXXXXX")
top=$(cat demo/top-path)
printf '$ runix run -v --store %q --cache %q --trusted-key %q %q\n' "$store" "file://$PWD/demo/cache" \
  "$(cat demo/demo-key.pub)" "$top" >&2
"$runix" run -v --store "$store" --cache "file://$PWD/demo/cache" \
  --trusted-key "$(cat demo/demo-key.pub)" "$top"
echo >&2
echo "the store $store now holds the verified closure; run it again (no download):" >&2
printf '  %q run --store %q %q -- you\n' "$runix" "$store" "$top" >&2
