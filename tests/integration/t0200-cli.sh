#!/usr/bin/env bash
# What a new user meets first: one style for every error, global options
# before the command, help with examples for every command, run's argument
# rules.
. "$(dirname "$0")/lib/libtest.sh"

demo=$(cd "$(dirname "$0")/../../demo" && pwd)
key=$(cat "$demo/demo-key.pub")
top=$(cat "$demo/top-path")
cache=file://$demo/cache

# one_line_usage DESC WANT CMD...: exit 2, and stderr is exactly WANT (one line).
one_line_usage() {
  local desc=$1 want=$2 err rc=0
  shift 2
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  is "$rc:$err" "2:$want" "$desc"
}

# getopt's own messages are replaced by ours, in every command.
for cmd in fetch run shell doctor "nar restore" "nar hash" "nar ls" "narinfo verify" "narinfo sign"; do
  # shellcheck disable=SC2086
  one_line_usage "runix $cmd --foo: ours, not getopt's" \
    "runix $cmd: unknown option '--foo'; see 'runix $cmd --help'" "$RUNIX" $cmd --foo
done
for cmd in fetch run shell doctor "nar ls"; do
  # shellcheck disable=SC2086
  one_line_usage "runix $cmd -Z" "runix $cmd: unknown option '-Z'; see 'runix $cmd --help'" "$RUNIX" $cmd -Z
done
one_line_usage "a cluster names the bad letter" \
  "runix fetch: unknown option '-x'; see 'runix fetch --help'" "$RUNIX" fetch -nxq
one_line_usage "a long option without its value" \
  "runix fetch: option '--store' needs a value; see 'runix fetch --help'" "$RUNIX" fetch --store
one_line_usage "a short option without its value" \
  "runix narinfo verify: option '-k' needs a value; see 'runix narinfo verify --help'" \
  "$RUNIX" narinfo verify -k
one_line_usage "a value for an option that takes none" \
  "runix fetch: option '--dry-run' takes no value; see 'runix fetch --help'" "$RUNIX" fetch --dry-run=yes /nix/store/x
one_line_usage "an ambiguous abbreviation" \
  "runix run: option '--e' is ambiguous; see 'runix run --help'" "$RUNIX" run --e x /nix/store/x
one_line_usage "a global option without its value" \
  "runix: option '--store' needs a value; see 'runix --help'" "$RUNIX" --store
one_line_usage "an unknown global option" \
  "runix: unknown option '--frob'; see 'runix --help'" "$RUNIX" --frob fetch
one_line_usage "global options and no command" \
  "runix: expected a command after the global options; see 'runix --help'" "$RUNIX" -q
one_line_usage "a missing operand" \
  "runix fetch: expected at least one STOREPATH; see 'runix fetch --help'" "$RUNIX" fetch
ok "no getopt message anywhere" bash -c '! "$RUNIX" fetch --foo -x --store 2>&1 | grep -qE "invalid option|unrecognized option|requires an argument"'

# A bad value in the config file is a usage error too (exit 2), on one line.
printf 'connect-timeout = soon\n' >"$TEST_TMP/bad.conf"
for cmd in "fetch $top" "run $top" "doctor"; do
  # shellcheck disable=SC2086
  out=$(RUNIX_CONFIG=$TEST_TMP/bad.conf "$RUNIX" --store "$TEST_TMP/s-badconf" $cmd 2>&1 >/dev/null)
  rc=$?
  [ "$cmd" = doctor ] && continue # doctor reports it and goes on (below)
  is "$rc" 2 "a bad config value: exit 2 (${cmd%% *})"
  ok "  ...one line naming the file, line and setting" bash -c \
    'test "$(wc -l <<<"$1")" = 1 && grep -q "bad.conf:1: .connect-timeout. must be a number" <<<"$1"' _ "$out"
done
printf 'trusted-public-keys = nonsense\n' >"$TEST_TMP/badkey.conf"
fails "a bad key in the config file: exit 2" 2 "badkey.conf: trusted key 'nonsense'" \
  env RUNIX_CONFIG="$TEST_TMP/badkey.conf" "$RUNIX" fetch --store "$TEST_TMP/s-badkey" "$top"

# Global options before the command mean what they mean after it.
out=$("$RUNIX" -q --store "$TEST_TMP/g" --cache "$cache" --trusted-key "$key" fetch "$top" 2>"$TEST_TMP/g.err")
is "$out" "$top" "runix -q --store --cache --trusted-key fetch: fetched"
is "$(cat "$TEST_TMP/g.err")" "" "  ...quietly (-q before the command)"
ok "  ...into the store given before the command" test -d "$TEST_TMP/g/nix/store/$(basename "$top")"
is "$("$RUNIX" --store="$TEST_TMP/g" run "$top" -- global 2>&1 | head -n 1)" \
  "Hello, global! This program was fetched from a Nix binary cache, verified and" \
  "runix --store=DIR run: runs from that store"
ok "runix --cache URL --store DIR doctor probes that cache" bash -c \
  '"$RUNIX" --cache "$1" --store "$2" doctor | grep -qF "$1: answers"' _ "$cache" "$TEST_TMP/g"
ok "runix --trusted-key K doctor trusts it" bash -c \
  '"$RUNIX" --trusted-key "$1" --store "$2" doctor | grep -q "runix-demo-1"' _ "$key" "$TEST_TMP/g"
ninfo=$(ls "$demo"/cache/*.narinfo | head -n 1)
is "$(RUNIX_TRUSTED_KEYS= "$RUNIX" --trusted-key "$key" narinfo verify "$ninfo" 2>&1)" ok \
  "runix --trusted-key K narinfo verify FILE"
is "$(RUNIX_TRUSTED_KEYS= "$RUNIX" narinfo verify "$ninfo" --trusted-key "$key" 2>&1)" ok \
  "after global options, a command's own option ordering still holds (narinfo verify FILE -k K)"
fails "a global option the command does not take is refused by the command" 2 \
  "runix nar hash: unknown option '--store'" "$RUNIX" --store /tmp nar hash /etc/skel
is "$("$RUNIX" -- version)" "$("$RUNIX" --version)" "'--' ends the global options"
ok "--help and --version keep working" bash -c '"$RUNIX" --help | grep -q "^usage: runix" && "$RUNIX" --version | grep -q "^runix "'
ok "--help lists the global options" bash -c '"$RUNIX" --help | grep -q -- "--store DIR"'

# Every command in the table (as --help lists it, and each group's
# subcommands) has help with examples, exits 0, and 'runix help CMD' prints
# the same.
walk() {
  local help sub
  help=$("$RUNIX" "$@" --help 2>&1)
  local rc=$?
  is "$rc" 0 "runix $* --help exits 0"
  ok "runix $* --help has an Examples section with runix commands" \
    bash -c 'grep -qx "Examples:" <<<"$1" && sed -n "/^Examples:/,\$p" <<<"$1" | grep -q "^  .*runix "' _ "$help"
  is "$("$RUNIX" help "$@" 2>&1)" "$help" "runix help $* prints the same as runix $* --help"
  for sub in $(sed -n '/^Commands:/,/^$/p' <<<"$help" | awk 'NR > 1 && NF { print $1 }'); do
    [ "$sub" = help ] && continue
    walk "$@" "$sub"
  done
}
walk_cmds=$("$RUNIX" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
ok "--help lists run, fetch, doctor, nar, narinfo, version and help" bash -c \
  'for c in run fetch doctor nar narinfo version help shell; do grep -qx "$c" <<<"$1" || exit 1; done' _ "$walk_cmds"
for c in $walk_cmds; do
  if [ "$c" = help ]; then
    h=$("$RUNIX" help --help)
    ok "runix help --help has examples" grep -qx "Examples:" <<<"$h"
    is "$("$RUNIX" help help 2>&1)" "$h" "runix help help prints the same"
    continue
  fi
  walk "$c"
done
is "$("$RUNIX" help)" "$("$RUNIX" --help)" "runix help is runix --help"
ok "runix help nar hash: a subcommand's help" bash -c '"$RUNIX" help nar hash | grep -q "^usage: runix nar hash"'
fails "runix help frob" 2 "'frob' is not a command" "$RUNIX" help frob

# The offline examples work as shown: run each 'runix nar' and 'runix
# version' example line in a scratch directory.
mkdir -p "$TEST_TMP/ex"
for c in "nar dump" "nar restore" "nar hash" "nar ls" version; do
  # shellcheck disable=SC2086
  while IFS= read -r line; do
    [ -n "$line" ] || continue
    ok "example works: $line" bash -c 'cd "$1" && runix() { "$RUNIX" "$@"; } && eval "$2"' _ "$TEST_TMP/ex" "$line"
  done < <("$RUNIX" $c --help | sed -n '/^Examples:/,$p' | sed -n 's/^  //p')
done

# run: options after STOREPATH (or after the program) are the program's.
R=$TEST_TMP/run-store
"$RUNIX" fetch -q --store "$R" --cache "$cache" --trusted-key "$key" "$top" >/dev/null
first() { "$@" 2>&1 | head -n 1; }
hello_line() { echo "Hello, $1! This program was fetched from a Nix binary cache, verified and"; }
is "$(first "$RUNIX" run --store "$R" "$top" -- you)" "$(hello_line you)" \
  "run STOREPATH -- ARGS passes ARGS to the default program"
is "$(first "$RUNIX" run --store "$R" "$top" -- --help)" "$(hello_line --help)" \
  "  ...options included"
is "$(first "$RUNIX" run --store "$R" "$top" --version)" "$(hello_line --version)" \
  "run STOREPATH --version: the program's option, not runix's"
is "$(first "$RUNIX" run --store "$R" "$top" runix-demo --help)" "$(hello_line --help)" \
  "run STOREPATH CMD --help: CMD's option"
is "$(first "$RUNIX" run --store "$R" "$top/bin/runix-demo" -q)" "$(hello_line -q)" \
  "run STOREPATH/bin/PROG ARGS: ARGS are the program's"
ok "run --help shows STOREPATH/bin/PROGRAM and says options after STOREPATH are the program's" bash -c \
  'h=$("$RUNIX" run --help); grep -q "runix run \[OPTIONS\] STOREPATH/bin/PROGRAM \[ARGS...\]" <<<"$h" &&
   grep -q "hello --version" <<<"$h" && grep -q "after .--." <<<"$h" && grep -q "^  runix run .*/bin/hello --version" <<<"$h"'

# doctor: goes on past every problem, reports each in its section, exit 1.
D=$TEST_TMP/doctor-store
doc() { "$RUNIX" --store "$D" --cache "$cache" "$@" doctor; }
out=$(RUNIX_CONFIG=$TEST_TMP/bad.conf NIX_SSL_CERT_FILE=$TEST_TMP/gone.pem doc 2>&1)
rc=$?
is "$rc" 1 "doctor with a bad config and a stale NIX_SSL_CERT_FILE: exit 1"
ok "  ...names the config file and its problem" bash -c \
  'grep -q "^config: $2/bad.conf$" <<<"$1" && grep -q "problem: .*bad.conf:1: .connect-timeout. must be a number" <<<"$1"' _ "$out" "$TEST_TMP"
ok "  ...names the CA file's problem and where the setting came from" bash -c \
  'grep -q "^CA certificates: from NIX_SSL_CERT_FILE" <<<"$1" && grep -q "problem: .*gone.pem.* cannot be read" <<<"$1"' _ "$out"
ok "  ...and goes on: the cache, the keys, the engines" bash -c \
  'grep -qF "$2: answers" <<<"$1" && grep -q "^trusted keys" <<<"$1" && grep -q "^engines:" <<<"$1" && grep -q "^auto chooses: " <<<"$1"' _ "$out" "$cache"
ok "  ...a store that does not exist yet: says so" grep -qF "store: $D: no store there yet" <<<"$out"
"$RUNIX" --store "$D" --cache "$cache" --trusted-key "$key" fetch -q "$top" >/dev/null
rc=0
out=$(unset NIX_SSL_CERT_FILE SSL_CERT_FILE RUNIX_CONFIG; XDG_CONFIG_HOME=$TEST_TMP/noconf doc --trusted-key "$key" 2>&1) || rc=$?
is "$rc" 0 "doctor where everything works: exit 0"
ok "  ...no config file: none" grep -q "^config: none ($TEST_TMP/noconf/runix/runix.conf does not exist" <<<"$out"
ok "  ...the trusted key names, without the keys" bash -c \
  'grep -q "^trusted keys (2): cache.nixos.org-1 runix-demo-1$" <<<"$1"' _ "$out"
ok "  ...the CA bundle: the system default" grep -q "^CA certificates: the system's default" <<<"$out"
ok "  ...whether the host has a /nix/store, and what that means" grep -qE "^host store: (/nix/store exists|none).*: userns" <<<"$out"
ok "  ...how to remove the store" grep -qF "to remove it: chmod -R u+w $D && rm -rf $D" <<<"$out"
printf 'ssl-cert-file = %s\n' /etc/hostname >"$TEST_TMP/ca.conf"
ok "doctor: the CA bundle named in the config file" bash -c \
  'RUNIX_CONFIG=$2 "$RUNIX" --store "$3" --cache "$4" doctor | grep -qx "CA certificates: /etc/hostname (from ssl-cert-file in the config file)"' _ _ "$TEST_TMP/ca.conf" "$D" "$cache"
ok "doctor: the CA bundle from SSL_CERT_FILE" bash -c \
  'env -u NIX_SSL_CERT_FILE SSL_CERT_FILE=/etc/hostname "$RUNIX" --store "$1" --cache "$2" doctor | grep -qx "CA certificates: /etc/hostname (from SSL_CERT_FILE)"' _ "$D" "$cache"
out=$(RUNIX_CACHES=http://127.0.0.1:9 "$RUNIX" --store "$D" doctor 2>&1)
is "$?" 1 "doctor: a cache that does not answer is a problem (exit 1)"

# Progress on a terminal (a pseudo-terminal here), from a fixture cache over HTTP.
need_nix
fixtures
httpd_start "$FX"
fxkey=$(cat "$FX/key.pub")
hello=$(path_of hello)
nclosure=$(nix-store -qR "$hello" | wc -l)
# tty ENV... : runix fetch of hello's closure into a new store, on a pty; the output.
tty() {
  local store
  store=$(mktemp -d "$TEST_TMP/tty.XXXXXX")
  script -qfec "env $* $(printf '%q ' "$RUNIX" fetch --trusted-key "$fxkey" --store "$store" --cache "$HTTP/slow/cache-none" "$hello")" /dev/null
}
out=$(tty TERM=xterm)
ok "tty: the status line names a path being downloaded" \
  grep -qE "fetching: [0-9]+/[0-9]+ paths, [^$'\r']*: ($(nix-store -qR "$hello" | sed 's,.*/[a-z0-9]*-,,' | paste -sd'|'))" <<<"$out"
ok "tty: a summary line at the end: paths, bytes and time" \
  grep -qE "fetched $nclosure paths, [0-9.]+ (B|KiB|MiB) in [0-9]+\.[0-9] s( \([0-9.]+ (B|KiB|MiB)/s\))?"$'\r'"\$" <<<"$out"
ok "tty: never a rate of 0 B/s" bash -c '! grep -q "0 B/s" <<<"$1"' _ "$out"
ok "tty: the status line is redrawn in place" grep -q $'\r\033\[K' <<<"$out"
out=$(tty TERM=dumb)
ok "TERM=dumb: no escape sequence" bash -c '! grep -q $'"'"'\033'"'"' <<<"$1"' _ "$out"
ok "TERM=dumb: no redraw, only whole lines" bash -c '! tr -d "\r" <<<"$1" | grep -q "fetching:" && ! grep -q $'"'"'\r[^\n]'"'"' <<<"$(sed "s/\r\$//" <<<"$1")"' _ "$out"
is "$(tr -d '\r' <<<"$out" | grep -c "^fetched /nix/store/")" "$nclosure" "TERM=dumb: a plain line per path"
ok "TERM=dumb: and the summary" grep -q "^fetched $nclosure paths, " <<<"$out"
out=$(tty TERM=xterm NO_COLOR=1)
ok "NO_COLOR: no escape sequence" bash -c '! grep -q $'"'"'\033'"'"' <<<"$1"' _ "$out"
ok "NO_COLOR: still a status line naming a path, and the summary" bash -c \
  'grep -q "fetching: .*paths" <<<"$1" && grep -q "fetched $2 paths, " <<<"$1"' _ "$out" "$nclosure"
R=$TEST_TMP/pipe
"$RUNIX" fetch --trusted-key "$fxkey" --store "$R" --cache "$HTTP/slow/cache-none" "$hello" 2>"$TEST_TMP/pipe.err" >/dev/null
ok "in a pipe: no status line, no escape sequence, no summary" bash -c \
  '! grep -qE $'"'"'\033|\r|fetching:|fetched [0-9]+ paths'"'"' "$1"' _ "$TEST_TMP/pipe.err"
out=$(script -qfec "$(printf '%q ' "$RUNIX" fetch --trusted-key "$fxkey" --store "$R" --cache "$HTTP/slow/cache-none" "$hello")" /dev/null)
ok "tty: nothing to fetch, no summary" bash -c '! grep -q "fetched" <<<"$1"' _ "$out"

done_testing
