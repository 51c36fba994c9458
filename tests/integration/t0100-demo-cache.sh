#!/usr/bin/env bash
# The bundled demo cache stays valid: every narinfo verifies with the demo
# key, every NAR unpacks and hashes to its signed NarHash, and tampering
# with a NAR is caught by the hash check.
. "$(dirname "$0")/lib/libtest.sh"

demo=$(cd "$(dirname "$0")/../../demo" && pwd)
key=$(cat "$demo/demo-key.pub")
n=0
for ni in "$demo"/cache/*.narinfo; do
  n=$((n + 1))
  path=$(sed -n 's/^StorePath: //p' "$ni")
  url=$(sed -n 's/^URL: //p' "$ni")
  want=$(sed -n 's/^NarHash: //p' "$ni")
  name=$(basename "$path")
  ok "$name: narinfo signed by the demo key" "$RUNIX" narinfo verify --trusted-key "$key" "$ni"
  ok "$name: NAR unpacks" bash -c '"$RUNIX" nar restore --canonical "$1" < "$2"' _ "$TEST_TMP/$name" "$demo/cache/$url"
  ok "$name: unpacked tree has the signed NarHash" test "$("$RUNIX" nar hash "$TEST_TMP/$name")" = "$want"
done
ok "demo cache holds two paths" test "$n" -eq 2
ok "demo symlink points into the store" bash -c 'readlink "$1"/*-runix-demo-hello-1.0/share/greeting.txt | grep -q "^/nix/store/.*-runix-demo-greeting-1.0/share/greeting.txt$"' _ "$TEST_TMP"

# A flipped byte in a NAR's file contents gives another hash.
url=$(sed -n 's/^URL: //p' "$demo"/cache/wfyx*.narinfo)
want=$(sed -n 's/^NarHash: //p' "$demo"/cache/wfyx*.narinfo)
sed 's/runix demo/runix DEMO/' "$demo/cache/$url" > "$TEST_TMP/tampered.nar"
ok "tampered NAR still parses" bash -c '"$RUNIX" nar restore "$1" < "$2"' _ "$TEST_TMP/tampered" "$TEST_TMP/tampered.nar"
ok "tampered NAR does not match the signed NarHash" test "$("$RUNIX" nar hash "$TEST_TMP/tampered")" != "$want"

done_testing
