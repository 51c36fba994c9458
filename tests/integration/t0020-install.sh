#!/usr/bin/env bash
# meson install gives a working runix: from the installed tree, moved away
# from where it was installed and with the build tree out of reach, runix
# finds runix-core and both engines run the demo program.
. "$(dirname "$0")/lib/libtest.sh"

: "${RUNIX_BUILD_DIR:?RUNIX_BUILD_DIR must point at the build directory}"
if ! command -v meson >/dev/null; then
  echo "1..0 # SKIP meson is not on PATH"
  exit 0
fi
demo=$(cd "$(dirname "$0")/../../demo" && pwd)
key=$(cat "$demo/demo-key.pub")
top=$(cat "$demo/top-path")
unset RUNIX_PRELOAD_LIB RUNIX_ENGINE

ok "meson install --destdir" meson install -C "$RUNIX_BUILD_DIR" --no-rebuild --quiet \
  --destdir "$TEST_TMP/dest"
# The whole tree, elsewhere: only paths relative to runix itself can work.
mv "$TEST_TMP/dest" "$TEST_TMP/moved"
bin=$(find "$TEST_TMP/moved" -path '*/bin/runix' -type f)
ok "runix is installed in a bin/" test -x "$bin"
ok "runix-core is installed apart from runix" \
  bash -c '[ ! -e "$(dirname "$1")/runix-core" ] && find "$2" -name runix-core -type f | grep -q .' \
  _ "$bin" "$TEST_TMP/moved"
ok "runix reaches runix-core" bash -c '"$1" nar --help | grep -q "^usage: runix nar\|nar "' _ "$bin"
ok "runix-core finds the preload engine" bash -c '"$1" doctor 2>&1 | grep -q "preload: usable"' \
  _ "$bin"

# has DESCRIPTION TEXT PATTERN: pass if a line of TEXT matches PATTERN (else TEXT is shown).
has() { ok "$1" bash -c 'grep -q "$2" <<<"$1" || { printf "%s\n" "$1"; exit 1; }' _ "$2" "$3"; }

# hidden CMD...: run CMD with the host's /nix/store hidden, as t0100 does.
hidden() {
  unshare -rm sh -c '[ ! -d /nix/store ] || mount -t tmpfs -o ro none /nix/store || exit 99; exec "$@"' _ "$@"
}
for engine in userns preload; do
  out=$(cd / && hidden "$bin" run -v -q --engine "$engine" --store "$TEST_TMP/store-$engine" \
    --cache "file://$demo/cache" --trusted-key "$key" "$top" runix-demo installed 2>&1)
  has "$engine: the installed runix says which engine ran" "$out" "^runix: engine: $engine$"
  has "$engine: the demo program runs from the installed tree" "$out" \
    "^Hello, installed! This program was fetched"
done

# Without the installed engine libraries runix does not fall back on the build tree's.
lib=$(find "$TEST_TMP/moved" -name librunix-preload.so)
mv "$lib" "$lib.away"
fails "without them, the preload engine says where it looked" 1 \
  "librunix-preload.so not found next to runix ($(dirname "$bin")) nor in $(dirname "$bin")/../" \
  "$bin" run --engine preload --store "$TEST_TMP/store-preload" --offline "$top" runix-demo

done_testing
