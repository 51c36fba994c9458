#!/usr/bin/env bash
# The front/core split: runix needs only libc and jansson (distributables
# are JSON; jansson is small and needs only libc), so that a warm 'runix run'
# loads nothing else, and hands every other command to runix-core.
. "$(dirname "$0")/lib/libtest.sh"

core=$(dirname "$RUNIX")/runix-core

# needed FILE: the NEEDED entries of FILE's dynamic section, one a line.
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*Shared library: \[\(.*\)\]/\1/p'; }

ok "readelf reads runix's dynamic section" bash -c 'readelf -d "$1" | grep -q NEEDED' _ "$RUNIX"
# A sanitizer build also needs the sanitizers' runtimes, and nothing else.
allowed='libc\.so\.6|ld-linux[-a-z0-9_]*\.so\.[0-9]+|libjansson\.so\.4'
case ${RUNIX_SANITIZE:-none} in *address*) allowed="$allowed|libasan\.so\.[0-9]+" ;; esac
case ${RUNIX_SANITIZE:-none} in *undefined*) allowed="$allowed|libubsan\.so\.[0-9]+" ;; esac
others=$(needed "$RUNIX" | grep -Ev "^($allowed)\$")
is "$others" "" "runix needs no library but libc and jansson (and the loader)"
ok "jansson needs only libc" bash -c '! ldd "$(ldconfig -p | sed -n "s/.*libjansson\.so\.4 .*=> //p" | head -1)" | grep -Ev "libc\.so|ld-linux|linux-vdso|^\s*/"' 
ok "runix-core does link the network library" bash -c 'readelf -d "$1" | grep -q "NEEDED.*libcurl"' _ "$core"

# A stand-in runix-core next to a copy of runix says what it was asked to run
# (on stderr: runix run sends the fetch's stdout to /dev/null).
mkdir -p "$TEST_TMP/bin"
cp "$RUNIX" "$TEST_TMP/bin/runix"
cat >"$TEST_TMP/bin/runix-core" <<'SH'
#!/bin/sh
echo "core: $*" >&2
SH
chmod 755 "$TEST_TMP/bin/runix-core"
front=$TEST_TMP/bin/runix
for cmd in "fetch /nix/store/x" "nar hash /tmp" "narinfo verify x" "doctor" "help fetch" \
  "fetch --help"; do
  # shellcheck disable=SC2086
  is "$("$front" $cmd 2>&1)" "core: $cmd" "runix $cmd runs runix-core with the same arguments"
done
ok "runix run --help is answered by runix" bash -c \
  '"$1" run --help | grep -q "^usage: runix run" && ! "$1" run --help | grep -q core:' _ "$front"
ok "runix shell --help is answered by runix" bash -c \
  '"$1" shell --help | grep -q "^usage: runix shell"' _ "$front"
ok "runix --help is answered by runix" bash -c \
  '"$1" --help | grep -q "^  fetch " && ! "$1" --help | grep -q core:' _ "$front"
is "$("$front" run --store "$TEST_TMP/store" --offline /nix/store/00000000000000000000000000000000-x 2>&1 | head -n 1)" \
  "core: fetch --store $TEST_TMP/store --offline --auto-root-each -- /nix/store/00000000000000000000000000000000-x" \
  "runix run asks runix-core to fetch a missing closure"

rm "$TEST_TMP/bin/runix-core"
fails "without runix-core, its commands say where it was looked for" 1 \
  "runix-core not found next to runix ($TEST_TMP/bin) nor in $TEST_TMP/bin/../" "$front" fetch x

done_testing
