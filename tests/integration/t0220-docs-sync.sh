#!/usr/bin/env bash
# runix(1) holds every command's and subcommand's --help, line for line, and
# renders without warnings.  The bash completion (and zsh's and fish's, when
# those shells are installed: scripts/install-deps.sh installs both for the
# tests) completes commands, subcommands, options, store paths from the
# store and a distributable's apps.  Run once, not again under the
# sanitizers: t0210 runs the C code these use (self man, self complete)
# under both.
. "$(dirname "$0")/lib/libtest.sh"

man=$TEST_TMP/runix.1
ok "runix self man succeeds" bash -c '"$RUNIX" self man >"$1"' _ "$man"

cmds=$("$RUNIX" --help | sed -n '/^Commands:$/,/^$/s/^  \([^ ][^ ]*\) .*/\1/p' | grep -vx help)
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
bin=$TEST_TMP/bin
mkdir -p "$bin"
ln -s "$RUNIX" "$bin/runix"

# bcomp WORDS...: the bash completions of the last word (one a line, sorted), with
# the completion script sourced in a clean bash and runix on PATH.
bcomp() {
  env -i HOME="$TEST_TMP" PATH="$bin:/usr/bin:/bin" RUNIX_STORE="$store" \
    bash --norc --noprofile -c '
      source <(runix self completion bash)
      COMP_WORDS=("$@")
      COMP_CWORD=$(($# - 1))
      COMP_LINE="$*"
      _runix
      printf "%s\n" "${COMPREPLY[@]}" | sort' _ "$@"
}
ok "bash: 'complete -p runix' names the function" bash -c \
  'source <("$1" self completion bash) && [ "$(complete -p runix)" = "complete -F _runix runix" ]' _ "$RUNIX"
is "$(bcomp runix fe)" "fetch" "bash: a command"
is "$(bcomp runix na)" $'nar\nnarinfo' "bash: the commands a prefix begins"
is "$(bcomp runix "")" "$(sort <<<"$cmds")" "bash: every command"
is "$(bcomp runix nar "")" $'dump\nhash\nls\nrestore' "bash: a group's subcommands"
is "$(bcomp runix self un)" "uninstall" "bash: self's subcommands"
is "$(bcomp runix --sto)" "--store" "bash: a global option"
is "$(bcomp runix fetch --dry)" "--dry-run" "bash: a command's option"
is "$(bcomp runix self uninstall --a)" "--all" "bash: a subcommand's option"
is "$(bcomp runix run /nix/store/0i2)" "/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10" \
  "bash: a store path from the store"
is "$(bcomp runix fetch /nix/st)" $'/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n/nix/store/q75a4dfidsy381lvln5qjs599q8niblx-runix-demo-hello-1.0' \
  "bash: every store path"
is "$(bcomp runix --store "$store" run /nix/store/q)" "/nix/store/q75a4dfidsy381lvln5qjs599q8niblx-runix-demo-hello-1.0" \
  "bash: store paths of the --store given"
is "$(bcomp runix run "$TEST_TMP/tool.runix#")" "$TEST_TMP/tool.runix#default"$'\n'"$TEST_TMP/tool.runix#greet" \
  "bash: a distributable's apps"
is "$(bcomp runix run "$TEST_TMP/tool.runix#g")" "$TEST_TMP/tool.runix#greet" "bash: an app by prefix"
is "$(bcomp runix run "$TEST_TMP/tool.r")" "$TEST_TMP/tool.runix" "bash: file names"
is "$(bcomp runix export --layers "")" $'one\nper-path' "bash: export's --layers values"
is "$(bcomp runix export --la)" "--layers" "bash: export's options"

# zsh and fish, when installed (scripts/install-deps.sh installs both for the tests).
if command -v zsh >/dev/null; then
  # zcomp WORDS...: what zsh's completion offers for the last word, through compadd.
  zcomp() {
    env -i HOME="$TEST_TMP" PATH="$bin:/usr/bin:/bin" RUNIX_STORE="$store" zsh -f -c '
      compadd() { local a; local -a l; local P=""
        while [[ $1 == -* ]]; do case $1 in -a) l=(${(P)2}); shift 2;; -P) P=$2; shift 2;; *) shift;; esac; done
        for a in $l; do print -r -- "$P$a"; done }
      _files() { print -r -- FILES; }
      _directories() { print -r -- DIRS; }
      source <(runix self completion zsh | sed "\$d")
      words=("$@"); CURRENT=$#
      _runix | sort' _ "$@"
  }
  out=$(zcomp runix "")
  is "$out" "$(sort <<<"$cmds")" "zsh: every command"
  is "$(zcomp runix nar "")" $'dump\nhash\nls\nrestore' "zsh: a group's subcommands"
  ok "zsh: options of a command" bash -c 'grep -qx -- --dry-run <<<"$1"' _ "$(zcomp runix fetch --)"
  is "$(zcomp runix run /nix/store/)" $'/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10\n/nix/store/q75a4dfidsy381lvln5qjs599q8niblx-runix-demo-hello-1.0' \
    "zsh: store paths"
  is "$(zcomp runix run "$TEST_TMP/tool.runix#")" "$TEST_TMP/tool.runix#default"$'\n'"$TEST_TMP/tool.runix#greet" \
    "zsh: a distributable's apps"
  is "$(zcomp runix export --layers "")" $'one\nper-path' "zsh: export's --layers values"
fi
if command -v fish >/dev/null; then
  fcomp() {
    env -i HOME="$TEST_TMP" PATH="$bin:/usr/bin:/bin" RUNIX_STORE="$store" fish --no-config -c '
      runix self completion fish | source
      complete -C "$argv[1]"' "$1" | cut -f1 | sort
  }
  is "$(fcomp "runix fe")" "fetch" "fish: a command"
  is "$(fcomp "runix nar ")" $'dump\nhash\nls\nrestore' "fish: a group's subcommands"
  is "$(fcomp "runix fetch --dry")" "--dry-run" "fish: a command's option"
  is "$(fcomp "runix run /nix/store/0i")" "/nix/store/0i2jd68mp5g6h2sa5k9c85rb80sn8hi9-hello-2.10" "fish: a store path"
  is "$(fcomp "runix run $TEST_TMP/tool.runix#g")" "$TEST_TMP/tool.runix#greet" "fish: an app"
  is "$(fcomp "runix export --layers ")" $'one\nper-path' "fish: export's --layers values"
fi

done_testing
