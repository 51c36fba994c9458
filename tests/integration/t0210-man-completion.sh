#!/usr/bin/env bash
# runix(1) holds every command's --help, as the commands print it, and
# renders without warnings; the man page meson builds and installs is the
# same, and so are the completion scripts; what the completion scripts ask
# runix (self complete) answers (t0220 drives the scripts themselves).
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

# The man page as man shows it (roff escapes undone), without the indentation.
rendered=$TEST_TMP/rendered
ok "man renders it without warnings" bash -c \
  'MANWIDTH=200 MAN_KEEP_FORMATTING=0 man --warnings -E UTF-8 -l "$1" 2>"$2.err" | col -bx >"$2" && ! [ -s "$2.err" ] || { cat "$2.err"; exit 1; }' \
  _ "$man" "$rendered"
# in_man FILE...: every non-blank line of each FILE is a line of the rendered
# page, in order; prints the files that are not (and the first missing line).
in_man() {
  python3 - "$rendered" "$@" <<'PY'
import sys
page = [l.strip() for l in open(sys.argv[1], encoding="utf-8")]
bad = 0
for f in sys.argv[2:]:
    i = 0
    for want in (l.strip() for l in open(f, encoding="utf-8")):
        if not want:
            continue
        while i < len(page) and page[i] != want:
            i += 1
        if i == len(page):
            print("%s: missing from the man page: %r" % (f.rsplit("/", 1)[-1], want))
            bad = 1
            break
sys.exit(bad)
PY
}
helps=$TEST_TMP/helps
mkdir -p "$helps"
"$RUNIX" --help >"$helps/runix"
failed=""
for c in $cmds; do
  "$RUNIX" "$c" --help >"$helps/runix-$c" || failed+=" $c"
  subs=$(sed -n '/^Commands:$/,/^$/s/^  \([^ ][^ ]*\) .*/\1/p' "$helps/runix-$c" | grep -vx help)
  for s in $subs; do
    "$RUNIX" "$c" "$s" --help >"$helps/runix-$c-$s" || failed+=" $c-$s"
  done
done
is "$failed" "" "every command's and subcommand's --help succeeds"
ok "the man page has runix --help and every command's and subcommand's, line for line" \
  in_man "$helps"/*
ok "  ...which is at least 30 of them" test "$(ls "$helps" | wc -l)" -ge 30
echo "runix frobnicates the store" >"$TEST_TMP/not-help"
is "$(in_man "$TEST_TMP/not-help" >/dev/null; echo $?)" 1 "a line no help has is not found (the check can fail)"
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

done_testing
