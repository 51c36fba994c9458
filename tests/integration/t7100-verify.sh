#!/usr/bin/env bash
# runix verify: every kind of damage to a store fetched from the fixture
# cache is found, named precisely (text and --json), agrees with what real
# Nix's `nix-store --verify --check-contents` calls corrupted, and is
# repaired by --repair, after which real Nix verifies the store.  Also:
# paths given by name, a path not in the store, repair without a cache,
# a cache with the wrong NAR, --jobs.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures
httpd_start "$FX"

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
glibc=$(path_of glibc)
greeting=$(path_of greeting)
libgreet=$(path_of libgreet)
dash=$(path_of dash)
python=$(path_of python)
CACHE=$HTTP/ok/cache-zstd

# A pristine store, copied afresh for each case.
P=$TEST_TMP/pristine
"$RUNIX" fetch -q --trusted-key "$key" --store "$P" --cache "$CACHE" "$top" >/dev/null ||
  { echo "Bail out! cannot fetch the fixture closure"; exit 1; }
npaths=$(sqlite3 "$P/nix/var/nix/db/db.sqlite" "select count(*) from ValidPaths")
R=$TEST_TMP/store
fresh() { chmod -R u+w "$R" 2>/dev/null; rm -rf "$R"; cp -a "$P" "$R"; }
v() { "$RUNIX" verify --trusted-key "$key" --store "$R" --cache "$CACHE" "$@"; }
# writable P: make P's directory writable, run the rest, make it read-only again.
writable() { local d=$1; shift; chmod u+w "$d" && "$@"; local rc=$?; chmod u-w "$d"; touch -h -d @1 "$d"; return $rc; }

# nix_bad R: the paths real Nix reports modified or gone, sorted.
nix_bad() {
  nix-store --store "$1" --verify --check-contents 2>&1 |
    sed -n "s/^path '\([^']*\)' \(was modified\|disappeared\).*/\1/p" | sort
}
# nix_clean R: real Nix finds nothing wrong.
nix_clean() {
  local out rc=0
  out=$(nix-store --store "$1" --verify --check-contents 2>&1) || rc=$?
  if [ $rc -ne 0 ] || grep -qiE 'error|modified|disappeared|not all' <<<"$out"; then
    echo "nix-store --verify --check-contents ($rc): $out"
    return 1
  fi
}
# json_bad FILE: the paths the JSON document calls corrupted or missing, sorted.
json_bad() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print("\n".join(sorted(p["path"] for p in d["paths"] if p["status"] in ("corrupted", "missing"))))' "$1"
}
# json_problems FILE PATH: "status kind file" lines of PATH's problems.
json_problems() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for p in d["paths"]:
    if p["path"] == sys.argv[2]:
        print(p["status"])
        for q in p["problems"]:
            print(q["kind"], q["file"])' "$1" "$2"
}
# tree_sum DIR: a digest of a tree's names, modes, mtimes and contents.
tree_sum() { (cd "$1" && find . -printf '%p %m %T@ %y %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum; }

# case NAME EXPECTED-LINE...: after the damage is done to $R, runix verify
# must exit 1 naming each expected line, --json must agree, real Nix must
# agree on what is corrupted, and --repair must restore the store.
check_case() {
  local name=$1 path=$2 jsonwant=$3
  shift 3
  local out rc=0
  out=$(v 2>"$TEST_TMP/err") || rc=$?
  is "$rc" 1 "$name: verify exits 1"
  local l
  for l in "$@"; do
    ok "$name: the output says '$l'" grep -qxF -- "$l" <<<"$out"
  done
  v --json >"$TEST_TMP/j" 2>/dev/null
  is "$(json_problems "$TEST_TMP/j" "$path" | paste -sd,)" "$jsonwant" "$name: --json names the same problems"
  is "$(json_bad "$TEST_TMP/j")" "$(nix_bad "$R")" "$name: corrupted paths agree with nix-store --verify --check-contents"
  out=$(v --repair 2>&1)
  rc=$?
  is "$rc" 0 "$name: --repair exits 0"
  ok "$name:   ...saying it repaired it" grep -q "1 repaired" <<<"$out"
  ok "$name:   ...and real Nix verifies the store" nix_clean "$R"
  ok "$name:   ...and so does runix verify" v --offline
  is "$(tree_sum "$R$path")" "$(tree_sum "$P$path")" "$name:   ...the path is as fetched"
  ok "$name:   ...leaving no work files" bash -c '! find "$1/nix/var/runix/tmp" -mindepth 2 | grep -q .' _ "$R"
}

# ---- a clean store -------------------------------------------------------
fresh
out=$(v 2>&1)
rc=$?
is "$rc" 0 "a clean store: exit 0"
ok "  ...with a summary" grep -qE "^verified $npaths paths \([0-9.]+ MiB\) in [0-9.]+ s: 0 corrupted, 0 missing, 0 with changed modes$" <<<"$out"
ok "  ...and nothing else" bash -c '[ "$(wc -l <<<"$1")" = 1 ]' _ "$out"
v --json >"$TEST_TMP/j"
ok "  ...--json lists every path as ok" python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
assert len(d["paths"]) == int(sys.argv[2]), len(d["paths"])
assert all(p["status"] == "ok" and p["problems"] == [] for p in d["paths"])
assert d["summary"]["corrupted"] == 0 and d["summary"]["missing"] == 0' "$TEST_TMP/j" "$npaths"

# ---- a flipped byte ------------------------------------------------------
fresh
f=$R$hello/bin/hello
writable "$f" sh -c 'printf X | dd of="$1" bs=1 seek=100 conv=notrunc 2>/dev/null' _ "$f"
touch -d @1 "$f"
check_case "a flipped byte" "$hello" "corrupted,changed bin/hello" \
  "  changed: bin/hello: contents differ from byte 100"
fresh
writable "$f" sh -c 'printf X | dd of="$1" bs=1 seek=100 conv=notrunc 2>/dev/null' _ "$f"
touch -d @1 "$f"
want=$(sqlite3 "$R/nix/var/nix/db/db.sqlite" "select hash from ValidPaths where path = '$hello'")
out=$("$RUNIX" verify --store "$R" --offline 2>"$TEST_TMP/err")
rc=$?
is "$rc" 1 "without a cache: exit 1"
ok "  ...naming the path and the hashes" grep -qE "^$hello: corrupted: NAR hash differs \(expected sha256:[0-9a-z]{52}, got sha256:[0-9a-z]{52}\)$" <<<"$out"
ok "  ...the registered one as Nix has it" bash -c 'nix-store --store "$1" --verify --check-contents 2>&1 | grep -q "expected hash .$(grep -o "expected sha256:[0-9a-z]*" <<<"$2" | cut -d" " -f2)"' _ "$R" "$out"
ok "  ...and saying why no file is named" grep -qF "(cannot name the changed files: no cache was asked (--offline))" <<<"$out"
ok "  ...and what to do" grep -qF "runix verify: 1 path is damaged; run 'runix verify --repair'" "$TEST_TMP/err"

# ---- repair when the cache cannot be reached changes nothing --------------
before=$(tree_sum "$R$hello")
out=$("$RUNIX" verify --trusted-key "$key" --store "$R" --cache http://127.0.0.1:9/none --repair 2>&1)
rc=$?
is "$rc" 1 "repair with the cache unreachable: exit 1"
ok "  ...saying no cache could provide it" grep -qF "(cannot name the changed files: no cache could provide the right copy: http://127.0.0.1:9/none: " <<<"$out"
ok "  ...and that it was not repaired" grep -qF "runix verify: 1 of 1 damaged path could not be repaired" <<<"$out"
is "$(tree_sum "$R$hello")" "$before" "  ...leaving the path as it was"
out=$(v --offline --repair 2>&1)
rc=$?
is "$rc" 1 "repair --offline: exit 1"
ok "  ...saying no cache was asked" grep -qF "(cannot name the changed files: no cache was asked (--offline))" <<<"$out"
is "$(tree_sum "$R$hello")" "$before" "  ...leaving the path as it was"

# ---- a cache whose NAR is not the registered one is refused ---------------
C=$TEST_TMP/wrong-nar
cp -r "$FX/cache-zstd" "$C"
hnar=$(sed -n 's/^URL: //p' "$C/$(basename "$hello" | cut -c1-32).narinfo")
anar=$(sed -n 's/^URL: //p' "$C/$(basename "$(path_of helloAlt)" | cut -c1-32).narinfo")
cp "$C/$anar" "$C/$hnar"
out=$("$RUNIX" verify --trusted-key "$key" --store "$R" --cache "file://$C" --repair 2>&1)
rc=$?
is "$rc" 1 "a cache serving another NAR: exit 1"
ok "  ...refusing its NAR" grep -qE "no cache could provide the right copy: file://$C: .*(mismatch|FileSize|NarSize)" <<<"$out"
is "$(tree_sum "$R$hello")" "$before" "  ...leaving the path as it was"
# A narinfo that says other contents (its signature no longer holds, though
# it is the one registered): refused for its NarHash, whatever signs it.
cp -r "$FX/cache-zstd" "$C.2"
ni=$C.2/$(basename "$hello" | cut -c1-32).narinfo
other=$(sed -n 's/^NarHash: //p' "$C.2/$(basename "$glibc" | cut -c1-32).narinfo")
sed -i "s|^NarHash: .*|NarHash: $other|" "$ni"
out=$("$RUNIX" verify --trusted-key "$key" --store "$R" --cache "file://$C.2" --repair 2>&1)
is "$?" 1 "a narinfo with another NarHash: exit 1"
ok "  ...refused for its NarHash" grep -qF "file://$C.2: it has other contents (NarHash $other, but the store registered" <<<"$out"
out=$("$RUNIX" verify --insecure-no-verify --store "$R" --cache "file://$C.2" --repair 2>&1)
is "$?" 1 "  ...even unsigned narinfos allowed: exit 1"
ok "  ...refused for its NarHash" grep -qF "file://$C.2: it has other contents (NarHash $other, but the store registered" <<<"$out"
is "$(tree_sum "$R$hello")" "$before" "  ...leaving the path as it was"

# A narinfo signed by no key the user trusts, and not with the registered signature.
cp -r "$FX/cache-zstd" "$C.3"
ni=$C.3/$(basename "$hello" | cut -c1-32).narinfo
sed -i "s|^Sig: .*|Sig: other-1:$(head -c 64 /dev/zero | base64 -w0)|" "$ni"
out=$("$RUNIX" verify --trusted-key "$key" --store "$R" --cache "file://$C.3" --repair 2>&1)
is "$?" 1 "a narinfo no trusted key signs: exit 1"
ok "  ...refused" grep -qF "file://$C.3: its narinfo is not signed by a trusted key" <<<"$out"
is "$(tree_sum "$R$hello")" "$before" "  ...leaving the path as it was"

# ---- a deleted file ------------------------------------------------------
fresh
writable "$R$greeting/share" rm "$R$greeting/share/greeting.txt"
check_case "a deleted file" "$greeting" "corrupted,deleted share/greeting.txt" \
  "  deleted: share/greeting.txt: a regular file"

# ---- an added file -------------------------------------------------------
fresh
writable "$R$libgreet/lib" sh -c 'echo extra >"$1" && chmod 444 "$1" && touch -d @1 "$1"' _ "$R$libgreet/lib/extra"
check_case "an added file" "$libgreet" "corrupted,added lib/extra" \
  "  added: lib/extra: a regular file"

# A name that is not UTF-8 still makes valid JSON.
fresh
writable "$R$libgreet/lib" sh -c 'echo x >"$1" && chmod 444 "$1" && touch -d @1 "$1"' _ "$R$libgreet/lib/"$'\xff'
v --json >"$TEST_TMP/j" 2>/dev/null
is "$(json_problems "$TEST_TMP/j" "$libgreet" | paste -sd,)" "corrupted,added lib/"$'\xef\xbf\xbd' "a file name that is not UTF-8 is in --json, as U+FFFD"

# ---- chmod +x on a file that is not executable ----------------------------
fresh
rel=lib/python3.11/fileinput.py
[ -x "$R$python/$rel" ] && echo "Bail out! $rel is executable in the fixture"
chmod +x "$R$python/$rel"
check_case "chmod +x" "$python" "corrupted,mode $rel" \
  "  changed mode: $rel: executable, should not be"

# ---- chmod u+w on a file: the NAR is the same ------------------------------
fresh
chmod u+w "$R$python/$rel"
out=$(v 2>/dev/null)
ok "chmod u+w: the path has changed modes" grep -qxF "$python: changed mode: 1 entry is not canonical (the NAR is right)" <<<"$out"
check_case "chmod u+w" "$python" "changed-mode,meta $rel" \
  "  changed mode: $rel: mode 0644, should be 0444 (writable)"
is "$(stat -c %a "$R$python/$rel")" 444 "  ...the file is 0444 again"

# ---- a whole path deleted ------------------------------------------------
fresh
chmod -R u+w "$R$dash" && rm -rf "$R$dash"
check_case "a deleted path" "$dash" "missing" \
  "$dash: missing: registered, but not on disk"

# ---- a kill during a repair leaves the damaged tree whole ------------------
fresh
chmod +x "$R$python/$rel"
before=$(tree_sum "$R$python")
"$RUNIX" verify --trusted-key "$key" --store "$R" --cache "$HTTP/slow/cache-zstd" --repair >/dev/null 2>&1 &
pid=$!
for i in $(seq 200); do grep -q "GET /slow/cache-zstd/nar/" "$HTTP_LOG" && break; sleep 0.05; done
sleep 0.5
kill -9 "$pid"
wait "$pid" 2>/dev/null
is "$(tree_sum "$R$python")" "$before" "killed while repairing: the damaged tree is there, whole"
is "$(nix_bad "$R")" "$python" "  ...real Nix sees just that path corrupted"
ok "  ...a repair then succeeds" v --repair
ok "  ...real Nix verifies the store" nix_clean "$R"
ok "  ...and no work files are left" bash -c '! find "$1/nix/var/runix/tmp" -mindepth 1 | grep -q .' _ "$R"

# ---- two repairs at once ---------------------------------------------------
fresh
chmod +x "$R$python/$rel"
chmod -R u+w "$R$dash" && rm -rf "$R$dash"
v --repair >"$TEST_TMP/o1" 2>&1 &
p1=$!
v --repair >"$TEST_TMP/o2" 2>&1
rc2=$?
wait "$p1"
rc1=$?
is "$rc1:$rc2" "0:0" "two repairs at once both succeed"
ok "  ...and real Nix verifies the store" nix_clean "$R"
ok "  ...and so does runix verify" v --offline

# ---- paths given by name ---------------------------------------------------
fresh
writable "$R$greeting/share" rm "$R$greeting/share/greeting.txt"
out=$(v "$hello" "$glibc/lib" 2>&1)
rc=$?
is "$rc" 0 "verify of given paths: only those are checked"
ok "  ...two of them" grep -qE "^verified 2 paths " <<<"$out"
out=$(v "$hello" "$greeting" 2>&1)
is "$?" 1 "  ...and a damaged one among them is found"
ok "  ...and named" grep -q "^$greeting: corrupted" <<<"$out"
fails "a path not in the store is an error naming it" 1 \
  "'/nix/store/00000000000000000000000000000000-missing-1.0' is not a valid path in the store" \
  v /nix/store/00000000000000000000000000000000-missing-1.0
fails "a path that is no store path is a usage error" 2 "runix verify:" v /etc/passwd
fails "--jobs 0 is a usage error" 2 "--jobs wants a number from 1 to 1024, not '0'" v --jobs 0
fails "an unknown option is a usage error" 2 "unknown option '--bogus'" v --bogus
fails "no store there is an error" 1 "there is no store at '$TEST_TMP/nothing'" \
  "$RUNIX" verify --store "$TEST_TMP/nothing"

# ---- --jobs 1 and the default agree -----------------------------------------
fresh
writable "$R$greeting/share" rm "$R$greeting/share/greeting.txt"
chmod u+w "$R$python/$rel"
chmod -R u+w "$R$dash" && rm -rf "$R$dash"
strip() { python3 -c 'import json, sys
d = json.load(sys.stdin); d["summary"].pop("seconds"); print(json.dumps(d, sort_keys=True))'; }
a=$(v --json --jobs 1 2>/dev/null | strip)
b=$(v --json 2>/dev/null | strip)
c=$(v --json --jobs 7 2>/dev/null | strip)
ok "--jobs 1 finds problems" grep -q '"corrupted": 1' <<<"$a"
is "$b" "$a" "--jobs 1 and the default give the same result"
is "$c" "$a" "  ...and --jobs 7"
out=$(v --repair 2>&1)
is "$?" 0 "several damaged paths are repaired at once"
ok "  ...all three" grep -q "3 repaired" <<<"$out"
ok "  ...and real Nix verifies the store" nix_clean "$R"

# ---- a terminal sees what happens; a pipe does not ----------------------------
fresh
chmod +x "$R$python/$rel"
tty_out=$(NO_COLOR=1 script -qec "$(printf '%q ' "$RUNIX" verify --trusted-key "$key" --store "$R" --cache "$CACHE" --repair)" /dev/null)
ok "on a terminal, a repair is shown as it happens" grep -qF "repairing $python ..." <<<"$tty_out"
ok "  ...without escape sequences under NO_COLOR" bash -c '! grep -q $'"'"'\033'"'"' <<<"$1"' _ "$tty_out"
ok "  ...and it repaired" nix_clean "$R"
fresh
chmod +x "$R$python/$rel"
v --repair >/dev/null 2>"$TEST_TMP/err"
is "$(grep -c "repairing" "$TEST_TMP/err")" 0 "on a pipe, no status line"

# ---- --help ----------------------------------------------------------------
out=$("$RUNIX" verify --help)
is "$?" 0 "--help exits 0"
ok "  ...with examples" grep -q "^Examples:" <<<"$out"
ok "runix help lists verify" bash -c '"$1" --help | grep -q "^  verify "' _ "$RUNIX"

done_testing
