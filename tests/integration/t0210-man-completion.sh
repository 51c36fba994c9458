#!/usr/bin/env bash
# runix self man makes runix(1) with a section per command, the same page
# meson builds and installs; runix self completion prints the scripts meson
# installs; what the completion scripts ask runix (self complete) answers.
# t0220 checks the page's text against every --help and drives the scripts.
. "$(dirname "$0")/lib/libtest.sh"

: "${RUNIX_BUILD_DIR:?RUNIX_BUILD_DIR must point at the build directory}"
src=$(cd "$(dirname "$0")/../.." && pwd)

man=$TEST_TMP/runix.1
ok "runix self man succeeds" bash -c '"$RUNIX" self man >"$1"' _ "$man"
ok "meson built the same man page" cmp "$man" "$RUNIX_BUILD_DIR/runix.1"

# The commands, from the help itself.
cmds=$("$RUNIX" --help | sed -n '/^Commands:$/,/^$/s/^  \([^ ][^ ]*\) .*/\1/p' | grep -vx help)
is "$(grep -c . <<<"$cmds")" "$("$RUNIX" --help | sed -n '/^Commands:$/,/^$/p' | grep -c '^  [^ ]' | awk '{print $1 - 1}')" \
  "every command of the table is read from --help"

# Every command and subcommand has its section (t0220 checks their text line for line).
sections=$(sed -n 's/^\.SS runix //p' "$man")
missing=""
for c in $cmds; do grep -qx -- "$c" <<<"$sections" || missing+=" $c"; done
for s in $(sed -n '/^Commands:$/,/^$/s/^  \([^ ][^ ]*\) .*/\1/p' <("$RUNIX" nar --help) | grep -vx help); do
  grep -qx -- "nar $s" <<<"$sections" || missing+=" nar-$s"
done
is "$missing" "" "the man page has a section for every command, and for nar's subcommands"
ok "meson install puts the man page and completions in place" bash -c '
  meson install -C "$1" --no-rebuild --quiet --destdir "$2/dest" >/dev/null &&
  test -s "$(find "$2/dest" -path "*/man1/runix.1")" &&
  test -s "$(find "$2/dest" -path "*/bash-completion/completions/runix")" &&
  test -s "$(find "$2/dest" -path "*/zsh/site-functions/_runix")" &&
  test -s "$(find "$2/dest" -path "*/fish/vendor_completions.d/runix.fish")"' _ "$RUNIX_BUILD_DIR" "$TEST_TMP"
ok "runix self completion prints the files meson installs" bash -c '
  cmp <("$RUNIX" self completion bash) "$1/completions/runix.bash" &&
  cmp <("$RUNIX" self completion zsh) "$1/completions/_runix" &&
  cmp <("$RUNIX" self completion fish) "$1/completions/runix.fish"' _ "$src"
fails "an unknown shell is a usage error" 2 "unknown shell 'tcsh'" "$RUNIX" self completion tcsh

# A store with two paths, and a distributable with two apps.
store=$TEST_TMP/store
mkdir -p "$store/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10" \
  "$store/nix/store/q75a4dfidsy381lvln5qjs599q8niblx-runix-demo-hello-1.0" "$store/nix/var"
cat >"$TEST_TMP/tool.runix" <<'EOF'
#!/usr/bin/env runix
{"format": "1.0", "name": "tool",
 "systems": {"x86_64-linux": {"paths": ["/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10"]},
             "aarch64-linux": {"paths": ["/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10"]}},
 "apps": {"default": {"program": "bin/hello"}, "greet": {"program": "bin/hello"}}}
EOF
is "$("$RUNIX" --store "$store" self complete paths /nix/store/0)" \
  "/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10" "self complete paths: the store's paths with a prefix"
is "$(RUNIX_STORE=$store "$RUNIX" self complete paths | sort)" \
  $'/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n/nix/store/q75a4dfidsy381lvln5qjs599q8niblx-runix-demo-hello-1.0' \
  "self complete paths: every path of \$RUNIX_STORE"
is "$("$RUNIX" self complete paths --store "$TEST_TMP/none" /nix/store/)" "" "self complete paths: no store, no output"
is "$("$RUNIX" self complete apps "$TEST_TMP/tool.runix")" $'default\ngreet' "self complete apps: a distributable's apps"
is "$("$RUNIX" self complete apps "$store"; echo "rc=$?")" "rc=0" "self complete apps: not a distributable, no output"
fails "self complete: a bad request is a usage error" 2 "expected 'paths [PREFIX]' or 'apps FILE'" \
  "$RUNIX" self complete frob

# self update and uninstall by this build (t0040 runs them in the release's
# binary): a receipt naming a small stand-in binary, releases in file:// directories.
H=$TEST_TMP/home
B=$H/.local/bin/runix
R=$H/.local/share/runix/receipt
mkdir -p "$H/.local/bin" "$H/.local/share/runix" "$H/.local/share/man/man1"
case $(uname -m) in aarch64) asset=runix-aarch64-linux ;; *) asset=runix-x86_64-linux ;; esac
release() { # release DIR VERSION [SUM]: a release whose binary says it is runix VERSION
  mkdir -p "$TEST_TMP/$1"
  printf '#!/bin/sh\n[ "$1" = --version ] && echo "runix %s" && exit 0\ncat "%s"\n' "$2" "$man" \
    >"$TEST_TMP/$1/$asset"
  chmod 755 "$TEST_TMP/$1/$asset"
  if [ -n "${3:-}" ]; then printf '%s  %s\n' "$3" "$asset"; else (cd "$TEST_TMP/$1" && sha256sum "$asset"); fi \
    >"$TEST_TMP/$1/SHA256SUMS"
}
release r1 0.0.1
release r2 0.0.2
release bad 0.0.3 "$(printf '%064d' 7)"
mkdir -p "$TEST_TMP/broken"
printf '#!/bin/sh\nexit 3\n' >"$TEST_TMP/broken/$asset"
(cd "$TEST_TMP/broken" && sha256sum "$asset" >SHA256SUMS)
cp "$TEST_TMP/r1/$asset" "$B"
: >"$H/.local/share/man/man1/runix.1"
printf 'runix-receipt 1\nversion 0.0.1\nbinary %s\nsha256 %s\nfile %s\n' "$B" \
  "$(sha256sum "$B" | cut -d' ' -f1)" "$H/.local/share/man/man1/runix.1" >"$R"
u() { env -i HOME="$H" PATH=/usr/bin:/bin "$RUNIX" "$@"; }
fails "self update: a bad checksum is refused" 1 "SHA256SUMS says 0000000000000000000000000000000000000000000000000000000000000007; nothing changed" \
  u self update --url "file://$TEST_TMP/bad"
ok "  ...and the binary stays" cmp "$B" "$TEST_TMP/r1/$asset"
fails "self update: a binary that does not run is rolled back" 1 "exit status 3); the old one is back in place" \
  u self update --url "file://$TEST_TMP/broken"
ok "  ...the old binary is back" cmp "$B" "$TEST_TMP/r1/$asset"
ok "  ...and nothing is left beside it" bash -c '[ "$(ls -A "$1")" = runix ]' _ "$H/.local/bin"
ok "self update: to a newer release" u self update --url "file://$TEST_TMP/r2"
ok "  ...the binary is the new one" cmp "$B" "$TEST_TMP/r2/$asset"
ok "  ...the receipt says so" grep -qx "version 0.0.2" "$R"
ok "  ...and the man page is written again by the new binary" cmp "$H/.local/share/man/man1/runix.1" "$man"
fails "self update: up to date" 0 "runix is up to date" u self update
ok "self uninstall --all" u self uninstall --all
ok "  ...leaves nothing" bash -c '! find "$1" -type f | grep .' _ "$H"

done_testing
