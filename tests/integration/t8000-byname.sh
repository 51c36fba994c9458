#!/usr/bin/env bash
# Running by name, from nix-index databases: 'runix index build' from the
# fixture cache (NARs, and .ls listings Nix writes, served encoded),
# 'runix locate', 'runix run/shell nixpkgs#ATTR', 'runix , PROGRAM' (the
# prompt on a pty), 'runix generate nixpkgs#ATTR', every refusal, and
# 'runix index update' with ETag revalidation and a pinned sha256.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures

export HOME=$TEST_TMP/home XDG_CACHE_HOME=$TEST_TMP/xdg-cache XDG_STATE_HOME=$TEST_TMP/xdg-state
export RUNIX_CONFIG=$TEST_TMP/runix.conf RUNIX_STORE=$TEST_TMP/store
mkdir -p "$HOME"
: >"$RUNIX_CONFIG"
unset RUNIX_INDEX_URL RUNIX_CACHES RUNIX_TRUSTED_KEYS
KEY=$(cat "$FX/key.pub")
TOP=$(cat "$FX/top")
PY=$(path_of python)
HELLO=$(path_of hello)
INDEX=$XDG_CACHE_HOME/runix/index/nixpkgs/files

srv=$TEST_TMP/srv
mkdir -p "$srv"
cp -r "$FX/cache-xz" "$srv/cache-xz"
# The same closure with the listings Nix writes (write-nar-listing), each
# served zstd- or xz-encoded by /encoded/ (the plain one is removed).
nix copy --to "file://$srv/cache-ls?compression=zstd&write-nar-listing=true" "$TOP" 2>/dev/null
i=0
for f in "$srv"/cache-ls/*.ls; do
  if [ $((i % 2)) = 0 ]; then zstd -q "$f" -o "$f.zst"; else xz -k "$f"; fi
  rm "$f"
  i=$((i + 1))
done
httpd_start "$srv"

build() { "$RUNIX" index build --trusted-key "$KEY" "$@"; }

ok "index build from the NARs of a cache without listings" \
  build -o "$TEST_TMP/db-nar" --cache "$HTTP/ok/cache-xz" --attr hello=$TOP "$TOP" "$PY"
err=$(build -o "$TEST_TMP/db-ls" --cache "$HTTP/encoded/cache-ls" --attr hello=$TOP "$TOP" "$PY" 2>&1)
is "$(grep -o '([0-9]* paths listed from .ls files, [0-9]* from NARs)' <<<"$err")" \
  "($(wc -l <"$FX/closure") paths listed from .ls files, 0 from NARs)" \
  "index build reads every path's listing (zstd- and xz-encoded) when the cache has them"
grep -q 'GET /encoded/cache-ls/nar/' "$HTTP_LOG"
is "$?" 1 "index build with listings downloads no NAR"
is "$(head -c 4 "$TEST_TMP/db-nar")" "NIXI" "the database starts with nix-index's magic"

install_index() { mkdir -p "$(dirname "$INDEX")" && cp "$1" "$INDEX"; }
dump() { install_index "$1" && "$RUNIX" locate --regex '.*' | sort; }
nar_entries=$(dump "$TEST_TMP/db-nar")
ls_entries=$(dump "$TEST_TMP/db-ls")
is "$ls_entries" "$nar_entries" "the databases from listings and from NARs have the same entries"
is "$(wc -l <<<"$nar_entries")" "1500" "every file of the closure is listed"

export RUNIX_CACHES="$HTTP/ok/cache-xz" RUNIX_TRUSTED_KEYS="$KEY"
out=$("$RUNIX" locate bin/hello)
is "$(grep -c . <<<"$out")" 10 "locate bin/hello lists every package with such a file"
is "$(grep -F "$HELLO/bin/hello" <<<"$out" | tr -s ' ')" \
  "(hello.out) 22,200 x $HELLO/bin/hello" "locate prints attribute, size, type and path as nix-locate"
is "$("$RUNIX" locate --top-level bin/hello | grep -c '^(')" 0 "--top-level leaves out closure members"
is "$("$RUNIX" locate --top-level --json bin/python3 |
      python3 -c 'import json,sys; print(" ".join(sorted(m["attr"]+":"+m["path"] for m in json.load(sys.stdin))))')" \
  "hello:/bin/python3 python3:/bin/python3 python3:/bin/python3.11" "--json gives attribute and path of each match"
is "$("$RUNIX" locate --regex 'bin/python3\.[0-9]+$' | awk '{print $NF}')" "$PY/bin/python3.11" "--regex matches a POSIX extended expression"
# A small index (only what is under /bin/, as nix-index-database's): locate reads its sidecar, in the front.
build -q --filter-prefix /bin/ -o "$TEST_TMP/db-small" --cache "$HTTP/ok/cache-xz" --attr hello=$TOP "$TOP" "$PY"
install_index "$TEST_TMP/db-small"
is "$("$RUNIX" locate bin/hello | sort)" "$(sort <<<"$out")" "a small index lists the same /bin/ matches"
is "$("$RUNIX" locate --regex '.*' | grep -vc ' /nix/store/[^/]*/bin/')" 0 "a small index has only what is under /bin/"
strace -f -e trace=execve -o "$TEST_TMP/trace" "$RUNIX" locate bin/hello >/dev/null 2>&1
is "$(grep -c 'runix-core' "$TEST_TMP/trace")" 0 "locate of a small index reads the sidecar in the front"
install_index "$TEST_TMP/db-nar"
fails "locate of a file no package has" 1 "no package in the index 'nixpkgs' has a file matching 'bin/nosuch'" \
  "$RUNIX" locate bin/nosuch
fails "locate --regex with a bad expression" 2 "bad --regex" "$RUNIX" locate --regex 'a('

# run and shell by attribute
is "$("$RUNIX" run nixpkgs#hello hello 2>/dev/null)" "hello from a store library, world" \
  "run nixpkgs#ATTR fetches and runs the attribute's store path"
is "$("$RUNIX" run nixpkgs#python3 -c 'print(6*7)' 2>/dev/null)" "42" "run nixpkgs#ATTR runs its default program"
is "$("$RUNIX" shell nixpkgs#python3 nixpkgs#hello --command python3 -c 'print(1+1)' 2>/dev/null)" "2" \
  "shell nixpkgs#ATTR... puts the attributes' programs on PATH"
fails "an attribute the index does not have names the closest" 1 "nixpkgs#python3" \
  "$RUNIX" run nixpkgs#pyton3
fails "an attribute with no close name says how to search" 1 "'runix locate' finds packages" \
  "$RUNIX" run nixpkgs#zzzzzzzz
fails "an index not configured" 1 "set index.acme.url" "$RUNIX" run acme#tool

# ',' by program
is "$("$RUNIX" , hello-alt 2>/dev/null)" "hello from a store library, world" \
  "', PROGRAM' runs the one top-level package with bin/PROGRAM"
is "$(head -n 1 "$XDG_STATE_HOME/runix/comma/hello-alt")" "attr hello" "',' remembers what it ran"
ln -s "$RUNIX" "$TEST_TMP/,"
is "$("$TEST_TMP/," hello-alt 2>/dev/null)" "hello from a store library, world" "runix linked as ',' is ', PROGRAM'"
# The warm start: runix-core is not run at all.
strace -f -e trace=execve -o "$TEST_TMP/trace" "$RUNIX" , hello-alt >/dev/null 2>&1
is "$(grep -c 'runix-core' "$TEST_TMP/trace")" 0 "a warm ', PROGRAM' runs without runix-core"
is "$("$RUNIX" , --print hello-alt)" "$TOP" "', --print PROGRAM' prints the store path"
# With the index's sidecar made, a lookup needs no runix-core either.
rm -f "$XDG_STATE_HOME/runix/comma/hello-alt"
strace -f -e trace=execve -o "$TEST_TMP/trace" "$RUNIX" , --print hello-alt >/dev/null 2>&1
is "$(grep -c 'runix-core' "$TEST_TMP/trace")" 0 "a ', PROGRAM' lookup reads the sidecar in the front"
rm -f "$INDEX.bins" "$INDEX.attrs"
is "$("$RUNIX" , --print hello-alt)" "$TOP" "a missing sidecar is made again (by runix-core)"
is "$(head -c 22 "$INDEX.bins")" "runix index sidecar 1 " "... and written beside the index"
fails "', PROGRAM' with several packages off a terminal lists them" 1 "runix run nixpkgs#python3 python3" \
  "$RUNIX" , python3 -c 'print(1)'
fails "', PROGRAM' that no package has" 1 "no top-level package in the nixpkgs index has bin/nosuch" \
  "$RUNIX" , nosuch
# On a terminal it asks, and remembers the answer.
pty_out=$(python3 - "$RUNIX" <<'EOF' 2>&1
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], ",", "python3", "-c", "print('chose', 6*7)"])
out = b""
answered = False
end = time.time() + 60
while time.time() < end:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    if not answered and b"which one" in out:
        line = [l for l in out.split(b"\n") if b"python3.out" in l][0]
        os.write(fd, line.split(b")")[0].strip() + b"\n")
        answered = True
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
EOF
)
is "$(grep -c 'chose 42' <<<"$pty_out")" 1 "on a terminal ',' asks which package, and runs the one chosen"
is "$("$RUNIX" , python3 -c 'print(7)' 2>/dev/null)" "7" "',' remembers the choice for the program"

# generate without Nix's evaluator
is "$("$RUNIX" generate nixpkgs#python3 | python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t[t.index("{"):])["systems"]["'"$(uname -m)"'-linux"]["paths"][0])')" \
  "$PY" "generate nixpkgs#ATTR writes a distributable of the index's path"

# a path the index has but no configured cache
mkdir -p "$srv/empty"
printf 'StoreDir: /nix/store\n' >"$srv/empty/nix-cache-info"
fails "an attribute whose path is in no configured cache names the caches asked" 1 "$HTTP/ok/empty" \
  "$RUNIX" run --store "$TEST_TMP/store2" --cache "$HTTP/ok/empty" nixpkgs#python3 -c 1
fails "... and the path the index gave" 1 "'nixpkgs#python3' is $PY in the index" \
  "$RUNIX" run --store "$TEST_TMP/store2" --cache "$HTTP/ok/empty" nixpkgs#python3 -c 1

# hostile or broken indexes
good=$(cat "$TEST_TMP/db-nar" | base64 -w0)
put() { mkdir -p "$(dirname "$INDEX")"; cat >"$INDEX"; }
printf 'XXXX\1\0\0\0\0\0\0\0' | put
fails "an index with another magic" 1 "$INDEX': not a nix-index database" "$RUNIX" locate bin/jq
printf 'NIXI\2\0\0\0\0\0\0\0' | put
fails "an index of another format version" 1 "format version 2" "$RUNIX" run nixpkgs#jq
base64 -d <<<"$good" | head -c 3000 | put
fails "a truncated index" 1 "truncated zstd stream" "$RUNIX" locate bin/hello
pkg='{"store_dir":"/nix/store","hash":"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee","name":"x-1","origin":{"attr":"jq","output":"out","toplevel":true,"system":null}}'
{ printf 'NIXI\1\0\0\0\0\0\0\0'; printf "5x\0\0/bin/jq\np\0\0%s\n" "$pkg" | zstd -qc; } | put
fails "an index whose store path does not parse" 1 "store path that does not parse" "$RUNIX" , jq
{ printf 'NIXI\1\0\0\0\0\0\0\0'; { printf '1r\0\0'; head -c 70000 /dev/zero | tr '\0' a; printf '\n'; } | zstd -qc; } | put
fails "an index with an entry longer than the format allows" 1 "longer than 65536 bytes" "$RUNIX" locate bin/jq
rm -f "$INDEX"
fails "no index yet" 1 "runix index update" "$RUNIX" run nixpkgs#jq
fails "no index yet (',')" 1 "runix index update" "$RUNIX" , jq

# index update: ETag revalidation, a pinned sha256, a broken download refused
cp "$TEST_TMP/db-nar" "$srv/index-small"
export RUNIX_INDEX_URL="$HTTP/etag/index-small"
ok "index update downloads the index" "$RUNIX" index update
cmp -s "$INDEX" "$TEST_TMP/db-nar"
is "$?" 0 "the downloaded index is the file served"
: >"$HTTP_LOG"
out=$("$RUNIX" index update 2>&1)
is "$(grep -c ' inm' "$HTTP_LOG")" 1 "index update revalidates with the ETag it kept"
is "$(grep -c 'up to date' <<<"$out")" 1 "an unchanged index is not downloaded again"
touch -d '40 days ago' "$INDEX"
fails "an index older than 30 days is said so" 0 "days old" "$RUNIX" locate bin/hello
"$RUNIX" index update >/dev/null 2>&1
is "$("$RUNIX" locate bin/hello 2>&1 | grep -c 'days old')" 0 "a revalidated index counts as new"
sha=$(sha256sum "$TEST_TMP/db-nar" | cut -d' ' -f1)
printf 'index-sha256 = %s\n' "$sha" >"$RUNIX_CONFIG"
ok "index update with the right pinned sha256" "$RUNIX" index update
printf 'index-sha256 = %s\n' "$(printf %064d 0)" >"$RUNIX_CONFIG"
cp "$TEST_TMP/db-ls" "$srv/index-small"
touch -d '1 minute' "$srv/index-small"
fails "index update refuses a download the pin does not match" 1 "pins" "$RUNIX" index update
cmp -s "$INDEX" "$TEST_TMP/db-nar"
is "$?" 0 "a refused download leaves the old index in place"
: >"$RUNIX_CONFIG"
printf 'NIXI\7\0\0\0\0\0\0\0' >"$srv/index-small"
fails "index update refuses a broken database" 1 "nothing replaced" "$RUNIX" index update
cmp -s "$INDEX" "$TEST_TMP/db-nar"
is "$?" 0 "a broken download leaves the old index in place"
RUNIX_INDEX_URL="$HTTP/etag/no-such" fails "index update of a URL with nothing there" 1 "no such file there" \
  "$RUNIX" index update
# On a terminal, a progress line (cleared when done).
rm -f "$XDG_CACHE_HOME/runix/index/nixpkgs/meta"
pty_out=$(python3 - "$RUNIX" <<'EOF' 2>&1
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1], "index", "update"])
out = b""
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
EOF
)
is "$(grep -c "downloading the index 'nixpkgs'" <<<"$pty_out")" 1 "index update shows its progress on a terminal"
unset RUNIX_INDEX_URL
# The default: nix-index-database's latest release for this system (a proxy that refuses
# every connection keeps the test off the network).
sys="$(uname -m)-linux"
https_proxy=http://127.0.0.1:9 fails "the default index is nix-index-database's small one" 1 \
  "https://github.com/nix-community/nix-index-database/releases/latest/download/index-$sys-small" \
  "$RUNIX" index update
https_proxy=http://127.0.0.1:9 fails "--full is nix-index-database's full one" 1 \
  "/releases/latest/download/index-$sys:" "$RUNIX" index update --full
printf 'index-url = %s\n' "$HTTP/etag/index-small" >"$RUNIX_CONFIG"
cp "$TEST_TMP/db-ls" "$srv/index-small"
ok "index update from the config file's index-url" "$RUNIX" index update

# a company's own index: acme#ATTR
cp "$TEST_TMP/db-nar" "$srv/acme-index"
printf 'index.acme.url = %s\n' "$HTTP/ok/acme-index" >"$RUNIX_CONFIG"
ok "index update NAME downloads index.NAME.url" "$RUNIX" index update acme
is "$("$RUNIX" run acme#python3 -c 'print(3)' 2>/dev/null)" "3" "run NAME#ATTR resolves in the index NAME"

fails "index build without -o" 2 "expected -o FILE" "$RUNIX" index build "$TOP"
fails "index build of a path no cache has" 1 "nothing written" \
  build -o "$TEST_TMP/db-x" --cache "$HTTP/ok/empty" "$TOP"
[ ! -e "$TEST_TMP/db-x" ]
is "$?" 0 "a failed index build writes nothing"

done_testing
