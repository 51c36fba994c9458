#!/usr/bin/env bash
# Distributables: the JSON Schema in docs/ agrees with runix's own checks on
# every example in tests/dist; files run by 'runix run' and by their first
# line, from a loopback cache, with both engines; apps, arguments and
# environment; system selection; and the trust in a file's own caches and
# keys (refused off a terminal, asked on one, 'runix trust', --trust, a
# changed file asking again).
. "$(dirname "$0")/lib/libtest.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)

# Debian's python3, which has python3-jsonschema (scripts/install-deps.sh).
py=/usr/bin/python3
if ! "$py" -c 'import jsonschema' 2>/dev/null; then
  echo "Bail out! python3-jsonschema (Debian) is required for this test"
  exit 1
fi

out=$("$py" - "$src/docs/distributable.schema.json" "$src/tests/dist" <<'PY' 2>&1
import json, sys, jsonschema
schema_file, d = sys.argv[1], sys.argv[2]
schema = json.load(open(schema_file))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
def payload(text):
    lines = text.split("\n")
    if len(lines) > 1 and lines[1] == ": <<'RUNIX_JSON'":
        return "\n".join(lines[2:lines.index("RUNIX_JSON")])
    return "\n".join(lines[1:])
n = 0
for row in open(d + "/expect.tsv"):
    if row.startswith("#") or not row.strip():
        continue
    name, want, _ = row.rstrip("\n").split("\t")
    if want == "skip":
        continue
    try:
        doc = json.loads(payload(open(d + "/" + name).read()))
        errs = list(v.iter_errors(doc))
    except ValueError as e:
        errs = [e]
    got = "invalid" if errs else "valid"
    if got != want:
        print("%s: the schema says %s, expected %s: %s" % (name, got, want, errs[:1]))
        sys.exit(1)
    n += 1
print("checked %d files" % n)
PY
)
rc=$?
is "$rc" 0 "the JSON Schema agrees with tests/dist/expect.tsv ($out)"
case $out in "checked "[3-9][0-9]*) ok "the schema checked the examples" true ;; *) ok "the schema checked the examples" false ;; esac


# --- running -------------------------------------------------------------
need_nix
fixtures
hello=$(path_of hello)
busybox=$(path_of busybox)
key=$(cat "$FX/key.pub")
web=$TEST_TMP/web
mkdir -p "$web"
cp -r "$FX/cache-zstd" "$web/"
httpd_start "$web"
CACHE=$HTTP/ok/cache-zstd
bindir=$(dirname "$RUNIX")
export HOME=$TEST_TMP/home XDG_CONFIG_HOME=$TEST_TMP/home/.config
mkdir -p "$HOME"
export RUNIX_STORE=$TEST_TMP/store RUNIX_CONFIG=/dev/null

# dist FILE [CACHES_JSON]: a distributable for this machine with three apps.
dist() {
  local caches=${2:-"[{\"url\": \"$CACHE\", \"keys\": [\"$key\"]}]"}
  cat >"$1" <<JSON
#!/usr/bin/env runix
{
  "format": "1.0",
  "name": "hello-tools",
  "description": "the test closure's hello, with apps",
  "systems": {
    "$(uname -m)-linux": {"paths": ["$hello", "$busybox"]},
    "riscv64-linux": {"paths": ["$hello"]}
  },
  "apps": {
    "default": {"program": "bin/hello"},
    "greet": {"program": "hello", "args": ["from-the-app"]},
    "env": {"program": "busybox", "args": ["sh", "-c", "echo \"\$DIST_GREETING\" \"\$@\"", "sh"],
            "env": {"DIST_GREETING": "set by the app"}}
  },
  "caches": $caches
}
JSON
  chmod +x "$1"
}
tool=$TEST_TMP/tool.runix
dist "$tool"

# Only the file's own cache and key can provide the closure.
export RUNIX_CACHES="" RUNIX_TRUSTED_KEYS="cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY="

fails "off a terminal, a file's own keys are refused until trusted" 1 "runix trust $tool" \
  "$RUNIX" run "$tool" </dev/null
ok "... and nothing was fetched" test ! -e "$RUNIX_STORE/nix/store/$(basename "$hello")"
out=$("$RUNIX" run --trust "$tool" 2>/dev/null </dev/null)
is "$out" "hello from a store library, world" "--trust: the default app runs, fetched from the file's cache"
rm -rf "$XDG_CONFIG_HOME"
out=$("$RUNIX" run --trust -q "$tool#greet" 2>&1)
is "$out" "hello from a store library, from-the-app" "FILE#APP: the app's program (looked up in the closure) with its arguments"
out=$("$RUNIX" run -q --trust "$tool#env" one two 2>&1)
is "$out" "set by the app one two" "the app's environment, then the user's arguments"
ok "--trust remembered nothing" test ! -e "$XDG_CONFIG_HOME/runix/trusted"

out=$("$RUNIX" trust "$tool" 2>&1)
ok "runix trust FILE" test -n "$(ls "$XDG_CONFIG_HOME/runix/trusted")"
chmod -R u+w "$RUNIX_STORE" && rm -rf "$RUNIX_STORE"
out=$("$RUNIX" run "$tool" 2>/dev/null </dev/null)
is "$out" "hello from a store library, world" "a trusted file runs without --trust, off a terminal"
for engine in userns preload; do
  out=$(PATH=$bindir:$PATH RUNIX_ENGINE=$engine "$tool" 2>&1)
  is "$out" "hello from a store library, world" "run by its first line (#!/usr/bin/env runix), engine $engine"
  out=$(PATH=$bindir:$PATH "$RUNIX" run --engine "$engine" "$tool#greet" --x 2>&1)
  is "$out" "hello from a store library, from-the-app" "runix run --engine $engine FILE#APP --x: the program's option"
  out=$(PATH=$bindir:$PATH RUNIX_ENGINE=$engine "$tool" -- 2>&1)
  is "$out" "hello from a store library, --" "run by its first line, engine $engine: '--' is the program's"
done
out=$(cd "$TEST_TMP" && PATH=$bindir:$PATH "$RUNIX" run "./tool.runix#env" -- a -- b 2>&1)
is "$out" "set by the app a -- b" "runix run FILE#APP -- ARGS: the first '--' is runix's, the rest the program's"

printf ' \n' >>"$tool"
fails "a changed file asks again" 1 "runix trust $tool" "$RUNIX" run "$tool" </dev/null
"$RUNIX" trust -r "$tool" >/dev/null

# On a terminal, runix asks once.
pty() { # pty ANSWER CMD...: run CMD on a pseudo-terminal, typing ANSWER.
  python3 - "$@" <<'PY'
import os, pty, sys, time
answer = sys.argv[1].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b""
sent = False
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
    if not sent and b"[y/N]" in out:
        os.write(fd, answer + b"\n")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
PY
}
out=$(pty n "$RUNIX" run "$tool") && rc=0 || rc=$?
is "$rc" 1 "on a terminal: answering no refuses"
case $out in *"$CACHE"*"signed by $key"*) ok "the prompt names the cache and the key" true ;;
  *) ok "the prompt names the cache and the key ($out)" false ;; esac
out=$(pty y "$RUNIX" run "$tool") && rc=0 || rc=$?
is "$rc" 0 "on a terminal: answering yes runs it"
out=$("$RUNIX" run "$tool" 2>&1 </dev/null)
is "$out" "hello from a store library, world" "... and the answer is remembered for this content"

# A file whose caches and keys the user already has needs no trust.
other=$TEST_TMP/known.runix
dist "$other"
out=$(RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key "$RUNIX" run -q "$other#greet" 2>&1 </dev/null)
is "$out" "hello from a store library, from-the-app" "a file naming only trusted caches and keys runs without asking"
nocache=$TEST_TMP/nocache.runix
dist "$nocache" "[]"
out=$(RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key "$RUNIX" run -q "$nocache" 2>&1 </dev/null)
is "$out" "hello from a store library, world" "a file without caches uses the user's"

# Apps, systems, listing.
fails "an unknown app is named, with the apps there are" 2 "has no app 'nope'; its apps are: default, env, greet" \
  "$RUNIX" run "$tool#nope"
sed "s/\"$(uname -m)-linux\"/\"aarch64-darwin\"/" "$nocache" >"$TEST_TMP/darwin.runix"
fails "a system the file does not list: the error names those it lists" 1 "has nothing for $(uname -m)-linux; it lists aarch64-darwin, riscv64-linux" \
  "$RUNIX" run "$TEST_TMP/darwin.runix"
out=$("$RUNIX" run --list "$TEST_TMP/darwin.runix")
case $out in *"hello-tools: the test closure's hello, with apps"*"greet  hello from-the-app"*"aarch64-darwin  $hello"*) ok "run --list: apps and systems, even without this system" true ;;
  *) ok "run --list: apps and systems ($out)" false ;; esac
fails "a missing file" 2 "'$TEST_TMP/none.runix': no such file" "$RUNIX" run "$TEST_TMP/none.runix"
fails "a bad file names the field" 1 "systems.$(uname -m)-linux.paths[0]: expected a store path" \
  bash -c 'sed "s|\"$2\", \"$3\"|\"/nix/store/x\"|" "$1" >"$1.bad" && "$RUNIX" run "$1.bad"' _ "$tool" "$hello" "$busybox"
fails "runix fetch FILE: the file's paths" 0 "" "$RUNIX" fetch --trust -q "$tool"
out=$("$RUNIX" fetch --trust -q "$tool" 2>&1)
is "$out" "$hello
$busybox" "runix fetch FILE prints the file's store paths"

# --- remote references ------------------------------------------------------
export RUNIX_STORE=$TEST_TMP/store RUNIX_CACHES="" RUNIX_TRUSTED_KEYS=cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=
export XDG_CACHE_HOME=$TEST_TMP/xdg-cache RUNIX_GITHUB_URL=$HTTP/etag/gh
commit=0123456789abcdef0123456789abcdef01234567
gh=$web/gh/alice/tools
mkdir -p "$gh/HEAD" "$gh/$commit" "$web/files"
dist "$gh/HEAD/default.runix"
cp "$gh/HEAD/default.runix" "$gh/$commit/default.runix"
cp "$gh/HEAD/default.runix" "$gh/HEAD/other.runix"
cp "$gh/HEAD/default.runix" "$web/files/tool.runix"
gets() { grep -c "^GET /etag/$1" "$HTTP_LOG"; }

out=$("$RUNIX" run -q --trust github:alice/tools 2>&1 </dev/null)
is "$out" "hello from a store library, world" "runix run github:OWNER/REPO: default.runix at HEAD"
is "$(gets gh/alice/tools/HEAD/default.runix)" 1 "... downloaded once"
out=$("$RUNIX" run -q --trust github:alice/tools#greet 2>&1 </dev/null)
is "$out" "hello from a store library, from-the-app" "github:OWNER/REPO#APP"
is "$(grep -c "^GET /etag/gh/alice/tools/HEAD/default.runix inm" "$HTTP_LOG")" 1 "the second run revalidates with If-None-Match (304)"
out=$("$RUNIX" run -q --trust "github:alice/tools/$commit" 2>&1 </dev/null)
out2=$("$RUNIX" run -q --trust "github:alice/tools/$commit" 2>&1 </dev/null)
is "$out2" "hello from a store library, world" "github:OWNER/REPO/COMMIT"
is "$(gets "gh/alice/tools/$commit/default.runix")" 1 "a reference pinned to a commit is never asked again"
out=$("$RUNIX" run -q --trust "github:alice/tools?file=other.runix#env" x 2>&1 </dev/null)
is "$out" "set by the app x" "github:OWNER/REPO?file=PATH#APP ARGS"
out=$("$RUNIX" run -q --trust "$HTTP/etag/files/tool.runix#greet" 2>&1 </dev/null)
is "$out" "hello from a store library, from-the-app" "runix run http://HOST/PATH/tool.runix#APP"
n=$(wc -l <"$HTTP_LOG")
out=$("$RUNIX" run --offline --trust github:alice/tools 2>&1 >/dev/null </dev/null)
case $out in *"using the copy of 'github:alice/tools' fetched "*" ago (offline)"*) ok "--offline uses the copy downloaded before and says how old it is" true ;;
  *) ok "--offline uses the copy downloaded before and says how old it is ($out)" false ;; esac
is "$(wc -l <"$HTTP_LOG")" "$n" "... without asking the server"
fails "--offline, never downloaded" 1 "'github:alice/other' was never downloaded and --offline forbids it" \
  "$RUNIX" run --offline github:alice/other
fails "a reference that is not there" 1 "cannot download 'github:alice/nope': HTTP 404" \
  "$RUNIX" run github:alice/nope
fails "a malformed github: reference" 2 "expected github:OWNER/REPO[/REF][?file=PATH][#APP]" \
  "$RUNIX" run github:alice
fails "a ?file= outside the repository" 2 "expected '?file=PATH' with a relative path" \
  "$RUNIX" run "github:alice/tools?file=../x.runix"
"$RUNIX" trust github:alice/tools >/dev/null
out=$("$RUNIX" run -q github:alice/tools 2>&1 </dev/null)
is "$out" "hello from a store library, world" "runix trust github:OWNER/REPO: trusted without --trust"
printf '\n\n\n' >>"$gh/HEAD/default.runix"
fails "a file that changes upstream asks again" 1 "to trust them, run 'runix trust github:alice/tools'" \
  "$RUNIX" run github:alice/tools
is "$(grep -c "^GET /etag/gh/alice/tools/HEAD/default.runix" "$HTTP_LOG")" 5 "... after downloading the new content"

# --- runix generate ---------------------------------------------------------
export RUNIX_STORE=$TEST_TMP/gen-store RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key
gen=$TEST_TMP/gen.runix
ok "generate from store paths and a cache, without Nix" \
  env PATH=/usr/bin:/bin "$RUNIX" generate -o "$gen" --name hello-gen --description "generated" \
  --cache "$CACHE" --key "$key" --embed-narinfos --app greet=hello --app env=busybox "$hello" "$busybox"
ok "the generated file is executable" test -x "$gen"
want=$(nix-store -qR "$hello" "$busybox" | sort)
got=$("$py" -c 'import json,sys; t=open(sys.argv[1]).read(); d=json.loads(t.split("\n",1)[1]); print("\n".join(d["systems"][sys.argv[2]]["closure"]))' "$gen" "$(uname -m)-linux")
is "$got" "$want" "its closure is what real Nix says (nix-store -qR)"
"$py" - "$src/docs/distributable.schema.json" "$gen" <<'PY' && ok "the generated file is valid by the JSON Schema" true || ok "the generated file is valid by the JSON Schema" false
import json, sys, jsonschema
doc = json.loads(open(sys.argv[2]).read().split("\n", 1)[1])
jsonschema.Draft202012Validator(json.load(open(sys.argv[1]))).validate(doc)
PY
out=$("$RUNIX" run -q "$gen" 2>&1 </dev/null)
is "$out" "hello from a store library, world" "the generated file runs (its first --app is the default)"
out=$("$RUNIX" run -q "$gen#env" sh -c 'echo generated-env' 2>&1 </dev/null)
is "$out" "generated-env" "... and its other apps"
# A generated file's embedded narinfos are answers already: no narinfo request at all.
export RUNIX_STORE=$TEST_TMP/hint-store
: >"$HTTP_LOG"
out=$("$RUNIX" run -q "$gen#greet" 2>&1 </dev/null)
is "$out" "hello from a store library, world" "a cold run of a file with embedded narinfos"
is "$(grep -c '\.narinfo' "$HTTP_LOG")" 0 "... asks the cache for no narinfo"
is "$(grep -c 'nix-cache-info' "$HTTP_LOG")" 1 "... asks for its nix-cache-info once"
ok "... and downloads the NARs" grep -q "^GET /ok/cache-zstd/nar/" "$HTTP_LOG"
is "$(grep -vc -e '^GET /ok/cache-zstd/nar/' -e '^GET /ok/cache-zstd/nix-cache-info$' "$HTTP_LOG")" 0 \
  "... and nothing else"
# Its StoreDir is still checked, before anything is registered.
mkdir -p "$web/otherdir"
ln -s ../cache-zstd/nar "$web/otherdir/nar"
printf 'StoreDir: /other/store\nPriority: 40\n' >"$web/otherdir/nix-cache-info"
otherdir=$TEST_TMP/otherdir.runix
sed "s#$CACHE#$HTTP/ok/otherdir#g" "$gen" >"$otherdir"
export RUNIX_STORE=$TEST_TMP/otherdir-store
: >"$HTTP_LOG"
fails "embedded narinfos from a cache for another store dir" 1 \
  "cache '$HTTP/ok/otherdir' is for store dir '/other/store', not /nix/store" \
  env RUNIX_CACHES="$HTTP/ok/otherdir" "$RUNIX" run -q "$otherdir#greet"
is "$("$py" -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from ValidPaths").fetchone()[0])' \
  "$TEST_TMP/otherdir-store/nix/var/nix/db/db.sqlite")" 0 "... and registers nothing"
# Embedded narinfos are checked as downloaded ones are: a forged one is refused.
forged=$TEST_TMP/forged.runix
"$py" - "$gen" "$forged" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
first, body = text.split("\n", 1)
d = json.loads(body)
for sysname, entry in d["systems"].items():
    for p, ni in entry.get("narinfos", {}).items():
        entry["narinfos"][p] = re.sub(r"NarSize: (\d+)", lambda m: "NarSize: %d" % (int(m.group(1)) + 1), ni)
open(sys.argv[2], "w").write(first + "\n" + json.dumps(d))
PY
export RUNIX_STORE=$TEST_TMP/forged-store
: >"$HTTP_LOG"
out=$("$RUNIX" run -q "$forged#greet" 2>&1 </dev/null)
is "$out" "hello from a store library, world" "a forged embedded narinfo is not used: the cache's own is"
ok "... which was asked for" grep -q '\.narinfo' "$HTTP_LOG"
fails "generate refuses when the cache lacks a path of the closure" 1 "nothing written" \
  "$RUNIX" generate -o "$TEST_TMP/none.runix" --cache "$HTTP/ok/nothing-here" --key "$key" "$hello"
ok "... and writes nothing" test ! -e "$TEST_TMP/none.runix"
ok "generate --add-system merges another system's entry" \
  "$RUNIX" generate -o "$gen" --add-system aarch64-linux --cache "$CACHE" --key "$key" "$hello"
out=$("$RUNIX" run --list "$gen")
case $out in *"aarch64-linux  $hello"*) ok "... for aarch64-linux" true ;; *) ok "... for aarch64-linux ($out)" false ;; esac
case $out in *"$(uname -m)-linux  $hello  (this machine)"*"greet  hello"*|*"greet  hello"*"$(uname -m)-linux  $hello  (this machine)"*) ok "... keeping the rest" true ;;
  *) ok "... keeping the rest ($out)" false ;; esac
cat >"$TEST_TMP/pkgs.nix" <<NIX
import $src/tests/fixtures/closure.nix {
  multiarch = "$(gcc -print-multiarch)";
  interp = "$(readelf -l /bin/sh | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')";
}
NIX
out=$("$RUNIX" generate -f "$TEST_TMP/pkgs.nix" --cache "$CACHE" --key "$key" hello 2>&1)
case $out in *"\"$hello\""*) ok "generate builds an installable with Nix (nix build -f FILE ATTR)" true ;;
  *) ok "generate builds an installable with Nix ($out)" false ;; esac
fails "an installable without Nix says so" 1 "building it needs Nix" \
  env PATH=/nonexistent "$RUNIX" generate --cache "$CACHE" --key "$key" nixpkgs#hello

# --- runix install, upgrade, uninstall --------------------------------------
export RUNIX_STORE=$TEST_TMP/inst-store XDG_STATE_HOME=$TEST_TMP/state RUNIX_CACHES="" \
  RUNIX_TRUSTED_KEYS=cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=
bin=$TEST_TMP/bin
dist "$TEST_TMP/inst.runix"
out=$(cd "$TEST_TMP" && "$RUNIX" install --bin-dir "$bin" --trust ./inst.runix 2>&1)
case $out in *"installed $bin/hello-tools"*"installed $bin/env"*"installed $bin/greet"*) ok "install writes a launcher per app" true ;;
  *) ok "install writes a launcher per app ($out)" false ;; esac
case $out in *"'$bin' is not on PATH; add this line to ~/.profile: export PATH=\"$bin:\$PATH\""*) ok "... and says how to put the bin dir on PATH" true ;;
  *) ok "... and says how to put the bin dir on PATH ($out)" false ;; esac
is "$("$bin/hello-tools")" "hello from a store library, world" "the default app's launcher runs the tool"
is "$("$bin/greet" --x)" "hello from a store library, from-the-app" "another app's launcher, the user's options passed on"
if [ "$(id -u)" = 0 ] && unshare --net true 2>/dev/null; then
  is "$(unshare --net "$bin/env" a b 2>&1)" "set by the app a b" "a launcher needs no network once the closure is there"
else
  is "$(RUNIX_CACHES=http://127.0.0.1:9/none "$bin/env" a b 2>&1)" "set by the app a b" "a launcher needs no network once the closure is there"
fi
out=$("$RUNIX" install --list)
case $out in *"hello-tools  from $TEST_TMP/inst.runix"*"$bin/greet"*) ok "install --list" true ;; *) ok "install --list ($out)" false ;; esac
printf '#!/bin/sh\necho mine\n' >"$bin/mine"
chmod +x "$bin/mine"
fails "install never replaces a file that is not its launcher" 1 "'$bin/mine' exists and is not a runix launcher" \
  "$RUNIX" install --bin-dir "$bin" --trust --as mine "$TEST_TMP/inst.runix#greet"
is "$("$bin/mine")" "mine" "... which is left as it was"
ls "$bin" | sort >"$TEST_TMP/bin-before"
fails "install refuses to take over another tool's launcher, naming it" 1 \
  "'$bin/env' is the launcher of the installed tool 'hello-tools': not replaced (choose another name with --as, or run 'runix uninstall hello-tools' first)" \
  "$RUNIX" install --bin-dir "$bin" --trust --as other "$TEST_TMP/inst.runix"
is "$(ls "$bin" | sort)" "$(cat "$TEST_TMP/bin-before")" "... and writes no launcher at all"
is "$("$bin/greet" --x)" "hello from a store library, from-the-app" "... the other tool's launcher still runs it"
"$RUNIX" install --bin-dir "$bin" --trust --as solo "$TEST_TMP/inst.runix#greet" >/dev/null
out=$("$RUNIX" uninstall hello-tools)
ok "uninstall removes the launchers" test ! -e "$bin/hello-tools" -a ! -e "$bin/greet" -a -e "$bin/mine"
is "$("$bin/solo" --x)" "hello from a store library, from-the-app" "... and leaves another tool's launchers alone"
"$RUNIX" uninstall solo >/dev/null
fails "uninstall of what is not installed" 1 "'hello-tools' is not installed" "$RUNIX" uninstall hello-tools

# upgrade: a github: reference that changes upstream.
"$RUNIX" trust github:alice/tools >/dev/null
ok "install github:OWNER/REPO#APP --as NAME" "$RUNIX" install --bin-dir "$bin" --as hi github:alice/tools#greet
is "$("$bin/hi")" "hello from a store library, from-the-app" "... runs"
out=$("$RUNIX" upgrade hi)
is "$out" "hi: up to date" "upgrade: nothing changed upstream"
sed -i 's/"from-the-app"/"from-the-new-app"/' "$gh/HEAD/default.runix"
"$RUNIX" trust github:alice/tools >/dev/null
out=$("$RUNIX" upgrade 2>&1)
case $out in *"hi: github:alice/tools#greet changed"*"hi: upgraded"*) ok "upgrade fetches what changed and switches to it" true ;;
  *) ok "upgrade fetches what changed and switches to it ($out)" false ;; esac
is "$("$bin/hi")" "hello from a store library, from-the-new-app" "... the launcher runs the new file"

# --- the bootstrap form: a sh script that fetches runix when it is missing ---
export RUNIX_STORE=$TEST_TMP/boot-store RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key
if [ -n "${RUNIX_BUILD_DIR:-}" ] && command -v meson >/dev/null; then
  meson install -C "$RUNIX_BUILD_DIR" --no-rebuild --quiet --destdir "$TEST_TMP/release" >/dev/null
  tar -czf "$web/files/runix.tar.gz" -C "$TEST_TMP/release" .
  boot=$TEST_TMP/boot.sh
  ok "generate --bootstrap URL writes the sh form (the sha256 from URL)" \
    "$RUNIX" generate -o "$boot" --bootstrap "$HTTP/ok/files/runix.tar.gz" --cache "$CACHE" \
    --key "$key" --app default=bin/hello "$hello"
  is "$(head -c 2 "$boot")" "#!" "... a script"
  sha=$(sha256sum "$web/files/runix.tar.gz" | cut -d' ' -f1)
  ok "... that pins the sha256 of what URL serves" grep -qx "sha256=$sha" "$boot"
  is "$("$RUNIX" run -q "$boot" 2>&1)" "hello from a store library, world" "runix run reads the sh form"
  : >"$HTTP_LOG"
  out=$(env -u RUNIX PATH=/usr/bin:/bin XDG_DATA_HOME=$TEST_TMP/data "$boot" 2>&1)
  is "$out" "hello from a store library, world" "without runix on PATH, the script downloads runix and runs the tool"
  is "$(grep -c 'files/runix.tar.gz' "$HTTP_LOG")" 1 "... downloading runix once"
  ok "... into the user's data directory" test -x "$(find "$TEST_TMP/data/runix/bootstrap/$sha" -path '*/bin/runix' -type f | head -n 1)"
  out=$(PATH=/usr/bin:/bin XDG_DATA_HOME=$TEST_TMP/data "$boot" 2>&1)
  is "$out" "hello from a store library, world" "... and the second time uses that copy"
  is "$(grep -c 'files/runix.tar.gz' "$HTTP_LOG")" 1 "... without downloading again"
  # Without curl, the script downloads with wget.
  nocurl=$TEST_TMP/nocurl-bin
  mkdir -p "$nocurl"
  for t in sh find head mkdir mktemp wget sha256sum cut od tr tar gzip mv rm chmod cat; do
    ln -s "$(command -v "$t")" "$nocurl/$t"
  done
  : >"$HTTP_LOG"
  out=$(env -u RUNIX PATH=$nocurl XDG_DATA_HOME=$TEST_TMP/data-wget "$boot" 2>&1)
  is "$out" "hello from a store library, world" "without curl, the script downloads runix with wget and runs the tool"
  is "$(grep -c 'files/runix.tar.gz' "$HTTP_LOG")" 1 "... downloading it once"
  sed "s/^sha256=.*/sha256=$(printf '0%.0s' $(seq 64))/" "$boot" >"$TEST_TMP/bad-boot.sh"
  chmod +x "$TEST_TMP/bad-boot.sh"
  out=$(PATH=/usr/bin:/bin XDG_DATA_HOME=$TEST_TMP/data2 "$TEST_TMP/bad-boot.sh" 2>&1) && rc=0 || rc=$?
  is "$rc" 1 "a wrong sha256 refuses the download"
  case $out in *"refusing the runix downloaded from $HTTP/ok/files/runix.tar.gz: its sha256 is $sha, not 000"*) ok "... saying why" true ;;
    *) ok "... saying why ($out)" false ;; esac
  is "$(find "$TEST_TMP/data2/runix/bootstrap" -mindepth 1 | wc -l)" 0 "... and leaves nothing behind"
  sed "s|^url=.*|url='http://127.0.0.1:9/none'|" "$boot" >"$TEST_TMP/path-boot.sh"
  chmod +x "$TEST_TMP/path-boot.sh"
  out=$(PATH=$bindir:/usr/bin:/bin XDG_DATA_HOME=$TEST_TMP/data3 "$TEST_TMP/path-boot.sh" 2>&1)
  is "$out" "hello from a store library, world" "with runix on PATH, the script runs it and downloads nothing"
else
  echo "Bail out! the bootstrap tests need RUNIX_BUILD_DIR and meson"
  exit 1
fi

# --- the shared store: a file's own key plants nothing for anyone else ----
# A hostile cache serves other content for the very store path of hello,
# signed by its own key; a distributable names that cache and key.
evil=$TEST_TMP/evil-cache
mkdir -p "$evil/nar" "$TEST_TMP/planted/bin"
printf 'StoreDir: /nix/store\n' >"$evil/nix-cache-info"
printf '#!/bin/sh\necho PLANTED\n' >"$TEST_TMP/planted/bin/hello"
chmod +x "$TEST_TMP/planted/bin/hello"
nix-store --dump "$TEST_TMP/planted" >"$TEST_TMP/planted.nar"
nh=$(nix-hash --type sha256 --flat --base32 "$TEST_TMP/planted.nar")
mv "$TEST_TMP/planted.nar" "$evil/nar/$nh.nar"
nix-store --generate-binary-cache-key evil-1 "$TEST_TMP/evil.sec" "$TEST_TMP/evil.pub"
printf 'StorePath: %s\nURL: nar/%s.nar\nCompression: none\nNarHash: sha256:%s\nNarSize: %s\nReferences: \n' \
  "$hello" "$nh" "$nh" "$(stat -c %s "$evil/nar/$nh.nar")" >"$TEST_TMP/evil.narinfo"
"$RUNIX" narinfo sign --key-file "$TEST_TMP/evil.sec" "$TEST_TMP/evil.narinfo" \
  >"$evil/$(basename "$hello" | cut -c1-32).narinfo"
cat >"$TEST_TMP/evil.runix" <<JSON
#!/usr/bin/env runix
{"format": "1.0", "name": "innocent",
 "systems": {"$(uname -m)-linux": {"paths": ["$hello"]}},
 "apps": {"default": {"program": "bin/hello"}},
 "caches": [{"url": "file://$evil", "keys": ["$(cat "$TEST_TMP/evil.pub")"]}]}
JSON
export RUNIX_STORE=$TEST_TMP/shared-store RUNIX_CACHES="" RUNIX_TRUSTED_KEYS=cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=
out=$("$RUNIX" run -q --trust "$TEST_TMP/evil.runix" 2>&1)
is "$out" "PLANTED" "a trusted hostile file runs its own content (the user said yes)"
export RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key
out=$("$RUNIX" run -q "$hello" 2>&1) && rc=0 || rc=$?
is "$rc" 1 "the user's own run of that path refuses the planted copy"
case $out in *PLANTED*) ok "... and never runs it" false ;; *) ok "... and never runs it" true ;; esac
case $out in *"'$hello'"*"was installed under a key this command does not trust, and $CACHE says it has other contents"*"rm -rf"*) ok "... saying which path, why, and how to repair it" true ;;
  *) ok "... saying which path, why, and how to repair it ($out)" false ;; esac
out=$("$RUNIX" run -q "$TEST_TMP/known.runix#greet" 2>&1) && rc=0 || rc=$?
case $rc:$out in 1:*"was installed under a key this command does not trust"*) ok "another distributable refuses it too" true ;;
  *) ok "another distributable refuses it too ($rc: $out)" false ;; esac
out=$("$RUNIX" run -q "$TEST_TMP/evil.runix" 2>&1)
is "$out" "PLANTED" "the hostile file itself still gets what it asked for"

# The repair the message gives: remove the planted copy, fetch again.
chmod -R u+w "$RUNIX_STORE/nix/store/$(basename "$hello")" && rm -rf "$RUNIX_STORE/nix/store/$(basename "$hello")"
out=$("$RUNIX" run -q "$hello" 2>&1)
is "$out" "hello from a store library, world" "after the repair the message gives, the real path runs"

# The same content under another key: a cache in force vouches for it, and it is used.
export RUNIX_STORE=$TEST_TMP/vouch-store RUNIX_CACHES="" \
  RUNIX_TRUSTED_KEYS=cache.nixos.org-1:6NCHdD59X431o0gWypbMrAURkbJ16ZPMQFGspcDShjY=
resigned=$TEST_TMP/resigned
cp -r "$web/cache-zstd" "$resigned"
nix-store --generate-binary-cache-key other-1 "$TEST_TMP/other.sec" "$TEST_TMP/other.pub"
for ni in "$resigned"/*.narinfo; do
  grep -v '^Sig:' "$ni" >"$ni.unsigned"
  "$RUNIX" narinfo sign --key-file "$TEST_TMP/other.sec" "$ni.unsigned" >"$ni"
  rm "$ni.unsigned"
done
cat >"$TEST_TMP/other.runix" <<JSON
#!/usr/bin/env runix
{"format": "1.0", "name": "other",
 "systems": {"$(uname -m)-linux": {"paths": ["$hello"]}},
 "caches": [{"url": "file://$resigned", "keys": ["$(cat "$TEST_TMP/other.pub")"]}]}
JSON
out=$("$RUNIX" run -q --trust "$TEST_TMP/other.runix" 2>&1)
is "$out" "hello from a store library, world" "a file fetches the path under its own key only"
out=$(RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key "$RUNIX" run -q "$hello" 2>&1)
is "$out" "hello from a store library, world" "the user's run: the user's cache vouches for the same content, so it runs"
sigs=$(nix path-info --store "local?root=$RUNIX_STORE" --sigs "$hello")
case $sigs in *other-1:*runix-test-1:*|*runix-test-1:*other-1:*) ok "... and its signature is registered beside the other" true ;;
  *) ok "... and its signature is registered beside the other ($sigs)" false ;; esac
ok "... in a store real Nix still verifies" nix-store --store "$RUNIX_STORE" --verify --check-contents

# The other order: the real path first; the hostile file then gets the real one.
export RUNIX_STORE=$TEST_TMP/store2 RUNIX_CACHES=$CACHE RUNIX_TRUSTED_KEYS=$key
out=$("$RUNIX" run -q "$hello" 2>&1)
is "$out" "hello from a store library, world" "the real path, fetched under the user's key"
out=$("$RUNIX" run -q --trust "$TEST_TMP/evil.runix" 2>&1)
is "$out" "hello from a store library, world" "a later hostile file cannot replace a path already there"

done_testing
