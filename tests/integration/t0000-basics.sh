#!/usr/bin/env bash
# The command line itself: help, version, dispatch, usage errors.
. "$(dirname "$0")/lib/libtest.sh"

ok "--version prints the version" bash -c '"$RUNIX" --version | grep -Eq "^runix [0-9]+\.[0-9]+\.[0-9]+$"'
is "$("$RUNIX" version)" "$("$RUNIX" --version)" "version prints the same as --version"
ok "help version" bash -c '"$RUNIX" help version | grep -q "^usage: runix version"'
ok "--help lists version" bash -c '"$RUNIX" --help | grep -q "^  version "'
ok "help fetch still works" bash -c '"$RUNIX" help fetch | grep -q "^usage: runix fetch"'
ok "--help lists the commands" bash -c '"$RUNIX" --help | grep -q "^  nar " && "$RUNIX" --help | grep -q "^  narinfo "'
ok "help nar restore" bash -c '"$RUNIX" help nar | grep -q restore'
for c in "nar dump" "nar restore" "nar hash" "nar ls" "narinfo verify" "narinfo fingerprint"; do
  ok "runix $c --help" bash -c "\"\$RUNIX\" $c --help | grep -q '^usage: runix $c'"
done
fails "unknown command is a usage error" 2 "'frobnicate' is not a command" "$RUNIX" frobnicate
fails "a misspelt command suggests the closest" 2 "runix: 'fecth' is not a command; did you mean 'fetch'?" "$RUNIX" fecth
fails "the suggestion keeps the --help hint" 2 "(see 'runix --help')" "$RUNIX" fecth
ok "the suggestion is one line" bash -c 'test "$("$RUNIX" fecth 2>&1 | wc -l)" = 1' 
fails "a command's prefix suggests it" 2 "did you mean 'narinfo'?" "$RUNIX" narin
fails "a misspelt subcommand suggests the closest" 2 "runix nar: 'hsah' is not a command; did you mean 'hash'?" "$RUNIX" nar hsah
ok "nothing close, no suggestion" bash -c '! "$RUNIX" frobnicate 2>&1 | grep -q "did you mean"'
fails "unknown subcommand is a usage error" 2 "'frob' is not a command" "$RUNIX" nar frob
fails "no command prints usage" 2 "usage: runix" "$RUNIX"
fails "unknown global option" 2 "unknown option '--bogus'" "$RUNIX" --bogus
fails "nar hash without a path" 2 "expected a PATH" "$RUNIX" nar hash
fails "nar restore needs a DIR" 2 "expected exactly one DIR" "$RUNIX" nar restore
fails "nar restore into / is refused" 2 "name a new directory" bash -c '"$RUNIX" nar restore / < /dev/null'
fails "nar restore of an existing dir" 1 "already exists" bash -c 'mkdir -p "$0/x" && "$RUNIX" nar restore "$0/x" < /dev/null' "$TEST_TMP"
fails "nar dump of a missing path" 1 "No such file or directory" bash -c '"$RUNIX" nar dump /nonexistent/x > /dev/null'
fails "nar ls of a missing file" 1 "cannot open" "$RUNIX" nar ls /nonexistent/x.nar
fails "narinfo verify with a malformed key" 2 "--trusted-key" "$RUNIX" narinfo verify --trusted-key nonsense /dev/null
fails "narinfo verify of a missing file" 1 "cannot open '/nonexistent/x'" "$RUNIX" narinfo verify /nonexistent/x
demo=$(cd "$(dirname "$0")/../../demo" && pwd)
fails "--quiet still warns of --insecure-no-verify" 0 "warning: signatures are NOT checked (--insecure-no-verify)" \
  "$RUNIX" fetch -q --insecure-no-verify --store "$TEST_TMP/insecure" --cache "file://$demo/cache" "$(cat "$demo/top-path")"
ok "--quiet alone prints nothing on stderr" bash -c 'test -z "$("$RUNIX" fetch -q --store "$1/quiet" --cache "file://$2/cache" --trusted-key "$(cat "$2/demo-key.pub")" "$(cat "$2/top-path")" 2>&1 >/dev/null)"' _ "$TEST_TMP" "$demo"
# A bad option value is a usage error that names the option and the value.
sp=/nix/store/q75a4dfidsy381lvln5qjs599q8niblx-runix-demo-hello-1.0
fails "fetch --trusted-key garbage" 2 "runix fetch: bad --trusted-key 'garbage': " \
  "$RUNIX" fetch --store "$TEST_TMP/bad" --trusted-key garbage "$sp"
fails "fetch --cache with a bad priority number" 2 "runix fetch: bad --cache: cache 'https://example.org?priority=high': priority is not a number" \
  "$RUNIX" fetch --store "$TEST_TMP/bad" --cache "https://example.org?priority=high" "$sp"
fails "fetch --extra-cache with a bad URL" 2 "runix fetch: bad --extra-cache: cache 'ftp://x'" \
  "$RUNIX" fetch --store "$TEST_TMP/bad" --extra-cache ftp://x "$sp"
fails "doctor --trusted-key garbage" 2 "runix doctor: bad --trusted-key 'garbage': " "$RUNIX" doctor --trusted-key garbage
fails "run --trusted-key garbage" 2 "bad --trusted-key 'garbage': " \
  "$RUNIX" run --store "$TEST_TMP/bad" --trusted-key garbage "$sp"
ok "a bad option value is one line" bash -c 'test "$("$RUNIX" fetch --store "$1/bad" --trusted-key garbage "$2" 2>&1 | wc -l)" = 1' _ "$TEST_TMP" "$sp"
ok "nar dump refuses a terminal" bash -c 'script -qec "$RUNIX nar dump /etc/hostname" /dev/null | grep -q "refusing to write a NAR to a terminal"'

done_testing
