#!/usr/bin/env bash
# runix roots, roots add/remove, list and doctor's store summary, on a store
# fetched from the fixture cache with roots of every kind made by hand in
# the documented layout; real Nix (its roots, closures and dead paths) and
# the database are the oracles.
. "$(dirname "$0")/lib/libtest.sh"
need_nix
fixtures

top=$(cat "$FX/top")
key=$(cat "$FX/key.pub")
hello=$(path_of hello)
helloAlt=$(path_of helloAlt)
dash=$(path_of dash)
busybox=$(path_of busybox)
scripts=$(path_of scripts)
python=$(path_of python)
missing=/nix/store/00000000000000000000000000000000-missing-1.0
cache=file://$FX/cache-zstd

R=$TEST_TMP/store
r() { "$RUNIX" "$1" --store "$R" "${@:2}"; }
# The database is not changed after the fetch: the oracle queries a copy, so
# that sqlite3's own files never show in the store's snapshots.
db() { sqlite3 "$TEST_TMP/db/db.sqlite" "$@"; }
snap() { find "$1" -printf '%p %T@ %C@ %s %m\n' | sort; }
base() { basename "$1"; }
# closure R P...: the closure of P... as real Nix computes it, sorted.
closure() { local s=$1; shift; nix path-info --store "$s" -r "$@" | sort -u; }
# size_of PATH...(stdin): the sum of the NAR sizes the database holds for those paths.
size_of() {
  local total=0 p
  while read -r p; do
    [ -n "$p" ] || continue
    total=$((total + $(db "select narSize from ValidPaths where path = '$p'")))
  done
  echo "$total"
}
# nix_roots: what real Nix takes as roots of $R, "link -> target" sorted.
nix_roots() { nix-store --store "$R" --gc --print-roots 2>/dev/null | sed "s|^$R/||" | sort; }

"$RUNIX" fetch -q --store "$R" --cache "$cache" --trusted-key "$key" "$top" >/dev/null
mkdir "$TEST_TMP/db"
cp "$R"/nix/var/nix/db/db.sqlite* "$TEST_TMP/db/"
ok "the fixture closure is fetched" test "$(db 'select count(*) from ValidPaths')" -gt 10

# ---- roots of every kind, made by hand ----------------------------------
G=$R/nix/var/nix/gcroots
mkroot() { # kind encoded-name target...
  local d=$G/runix/$1/$2 t
  mkdir -p "$d"
  for t in "${@:3}"; do ln -s "$t" "$d/$(base "$t")"; done
}
mkroot auto '%2Fhome%2Fu%2Fhello.runix' "$hello"
mkroot manual keep-alt "$helloAlt"
mkroot manual ghost "$missing" "$dash"
mkroot installed dash "$dash"
ln -s "$busybox" "$G/direct-busybox"
mkdir -p "$G/auto"
ln -s "$scripts" "$TEST_TMP/result"
ln -s "$TEST_TMP/result" "$G/auto/xyz"
mkdir -p "$R/nix/var/nix/profiles"
ln -s "$python" "$R/nix/var/nix/profiles/default-1-link"
now=$(date +%s)
# Last uses: a runix root's directory's mtime, a Nix root's link's.
touch -h -d "@$((now - 3 * 86400))" "$G/runix/auto/%2Fhome%2Fu%2Fhello.runix"
touch -h -d "@$((now - 10 * 86400))" "$G/runix/manual/keep-alt"
touch -h -d "@$((now - 3600))" "$G/runix/manual/ghost"
touch -h -d "@$((now - 7200))" "$G/runix/installed/dash"
touch -h -d "@$((now - 5 * 3600))" "$G/direct-busybox"
touch -h -d "@$((now - 6 * 3600))" "$G/auto/xyz"
touch -h -d "@$((now - 7 * 3600))" "$R/nix/var/nix/profiles/default-1-link"

# The oracle: each root's kind, name, valid targets and closure (real Nix's).
names=(/home/u/hello.runix ghost keep-alt dash nix/var/nix/gcroots/auto/xyz
  nix/var/nix/gcroots/direct-busybox nix/var/nix/profiles/default-1-link)
kinds=(auto manual manual installed nix nix nix)
targets=("$hello" "$dash" "$helloAlt" "$dash" "$scripts" "$busybox" "$python")
for i in "${!names[@]}"; do closure "$R" "${targets[$i]}" >"$TEST_TMP/cl.$i"; done
# unique i: the paths of root i's closure in no other root's closure.
unique() {
  local i=$1 j
  for j in "${!names[@]}"; do [ "$j" = "$i" ] || cat "$TEST_TMP/cl.$j"; done | sort -u >"$TEST_TMP/others"
  comm -23 "$TEST_TMP/cl.$i" "$TEST_TMP/others"
}
want=
for i in "${!names[@]}"; do
  t=${targets[$i]}
  [ "${names[$i]}" = ghost ] && t="$missing (not in the store)	$dash"
  line="${names[$i]}	${kinds[$i]}	$(size_of <"$TEST_TMP/cl.$i")	$(unique "$i" | size_of)	$t"
  want+="$line"$'\n'
done
want=$(sort <<<"${want%$'\n'}")
top_closure=$(closure "$R" "$top" | size_of)
hello_S=$(nix path-info --store "$R" -S "$hello" | awk '{ print $2 }')

before=$(snap "$R")
out=$(r roots)
is "$(cut -f1,2,4- <<<"$out" | sort)" "$want" \
  "roots: each root's name, kind, closure size, unique size and targets, as real Nix's closures say"
is "$(cut -f2 <<<"$out" | tr '\n' ' ')" "auto manual manual installed nix nix nix " \
  "  ...sorted by kind"
is "$(awk -F'\t' '$1 == "/home/u/hello.runix" { print $3 }' <<<"$out")" "$((now - 3 * 86400))" \
  "  ...with the last use of a runix root (its directory's mtime)"
ok "  ...the sizes are not all 0 (hello's closure is $(size_of <"$TEST_TMP/cl.0") bytes)" \
  test "$(size_of <"$TEST_TMP/cl.0")" -gt 1000000
is "$(awk -F'\t' '$1 == "keep-alt" { print $5 }' <<<"$out")" \
  "$(comm -23 "$TEST_TMP/cl.2" "$TEST_TMP/cl.0" | size_of)" \
  "  ...keep-alt alone keeps hello-alt and its own glibc (what hello does not share)"
is "$(awk -F'\t' '$1 == "/home/u/hello.runix" { print $4 }' <<<"$out")" \
  "$hello_S" \
  "  ...hello's closure size is what nix path-info -S says"

json=$(r roots --json)
is "$(python3 -c '
import json, sys
for r in json.load(sys.stdin)["roots"]:
    t = [p + (" (not in the store)" if p in r["not_in_store"] else "") for p in r["targets"]]
    print("\t".join([r["name"], r["kind"], str(r["closure_size"]), str(r["unique_size"])] + t))
' <<<"$json" | sort)" "$want" "roots --json parses, with the same data"
is "$(python3 -c 'import json,sys; print([r["last_used"] for r in json.load(sys.stdin)["roots"]][0])' <<<"$json")" \
  "$((now - 3 * 86400))" "  ...and last_used in seconds"

tty=$(script -qec "$RUNIX roots --store '$R'" /dev/null | tr -d '\r')
ok "roots on a terminal: a table with a header" grep -q '^NAME  *KIND  *LAST USED  *CLOSURE  *UNIQUE  *TARGETS$' <<<"$tty"
ok "  ...times as people say them" grep -q '^/home/u/hello.runix  *auto  *3 days ago ' <<<"$tty"
ok "  ...an invalid target marked" grep -q "$missing (not in the store)" <<<"$tty"
ok "  ...sizes in MiB" grep -qE '^keep-alt .* [0-9.]+ MiB ' <<<"$tty"

# ---- list --------------------------------------------------------------
top_level=$(db "select path from ValidPaths where id not in
  (select reference from Refs where referrer != reference) order by path")
all=$(db "select path from ValidPaths order by path")
out=$(r list 2>"$TEST_TMP/err")
is "$(cut -f1 <<<"$out" | sort)" "$top_level" "list: the top-level paths, as the database says"
is "$(r list --all 2>/dev/null | cut -f1 | sort)" "$all" "list --all: every valid path"
is "$(r list --all 2>/dev/null | cut -f1)" \
  "$(sed 's|^/nix/store/\([^-]*\)-\(.*\)|\2 \1 &|' <<<"$all" | sort | cut -d' ' -f3)" \
  "  ...sorted by name, then hash"
is "$(awk -F'\t' -v p="$top" '$1 == p { print $2, $3 }' <<<"$out")" \
  "$(db "select narSize from ValidPaths where path = '$top'") $top_closure" \
  "  ...with its NAR and closure sizes"

# Which roots keep each path, by the oracle's closures.
for i in "${!names[@]}"; do sed "s|\$|	${names[$i]}|" "$TEST_TMP/cl.$i"; done | sort >"$TEST_TMP/kept"
r list --all 2>/dev/null | awk -F'\t' '{ for (i = 6; i <= NF; i++) if ($i != "-") print $1 "\t" $i }' \
  | sort >"$TEST_TMP/kept.runix"
is "$(cat "$TEST_TMP/kept.runix")" "$(cat "$TEST_TMP/kept")" "list --all: the roots keeping each path"
dead_runix=$(r list --all 2>/dev/null | awk -F'\t' '$6 == "-" { print $1 }' | sort)
cp -a "$R" "$TEST_TMP/copy"
dead_nix=$(nix-store --store "$TEST_TMP/copy" --gc --print-dead 2>/dev/null | sed "s|^$TEST_TMP/copy||" | sort)
is "$dead_runix" "$dead_nix" "  ...'-' for exactly what nix-store --gc --print-dead lists"
ok "  ...of which there is some ($(wc -l <<<"$dead_nix"))" test -n "$dead_nix"
ndead=$(wc -l <<<"$dead_nix")
dead_bytes=$(size_of <<<"$dead_nix")
ok "  ...and the summary on stderr says so" grep -qE "^$(wc -l <<<"$all") paths, .*; $ndead of them \([0-9.]+ [KMG]?i?B\) kept by no root" "$TEST_TMP/err"
is "$(r list --json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin)["summary"]; print(s["paths"], s["dead_paths"], s["dead_size"])')" \
  "$(wc -l <<<"$all") $ndead $dead_bytes" "list --json: the same totals"
is "$(r list --all --json 2>/dev/null | python3 -c '
import json, sys
for p in json.load(sys.stdin)["paths"]:
    for k in p["roots"] or [{"name": "-"}]:
        print(p["path"] + "\t" + k["name"])' | sort)" \
  "$( (cat "$TEST_TMP/kept"; sed 's/$/\t-/' <<<"$dead_nix") | sort)" "list --all --json: the same roots per path"
alt_line=$(r list --all 2>/dev/null | awk -F'\t' -v p="$helloAlt" '$1 == p')
is "$(cut -f4,5 <<<"$alt_line")" "$((now - 10 * 86400))	used" "list: last use from the only root keeping it"
glibc_line=$(r list --all 2>/dev/null | awk -F'\t' -v p="$(path_of glibc)" '$1 == p')
is "$(cut -f4,5 <<<"$glibc_line")" "$((now - 3600))	used" \
  "  ...the latest of several roots' last uses"
is "$(awk -F'\t' -v p="$top" '$1 == p { print $4 "\t" $5 "\t" $6 }' <<<"$out")" \
  "$(db "select registrationTime from ValidPaths where path = '$top'")	registered	-" \
  "  ...the registration time for garbage, shown as such"
tty=$(script -qec "$RUNIX list --store '$R'" /dev/null | tr -d '\r')
ok "list on a terminal: a table" grep -q "^PATH  *SIZE  *CLOSURE  *LAST USED  *ROOTS" <<<"$tty"
ok "  ...'registered ...' for a path no root keeps" grep -qE "^$top .* registered (just now|[0-9]+ [a-z]+ ago) +-$" <<<"$tty"
is "$(r ls 2>/dev/null)" "$out" "ls is list"

# ---- doctor ------------------------------------------------------------
doc=$("$RUNIX" doctor --store "$R" --cache "$cache" 2>&1)
ok "doctor: the store's total" grep -qE "^store: $R \($(wc -l <<<"$all") paths, [0-9.]+ MiB\)" <<<"$doc"
ok "  ...what gc could free now" grep -qE "^  collectable now: $ndead paths, [0-9.]+ [KMG]?i?B \(kept by no root" <<<"$doc"
ok "  ...the roots" grep -q "^  roots: 7 (1 auto, 2 manual, 1 installed, 3 of Nix's" <<<"$doc"
ok "  ...and that gc never ran" grep -qx "  last gc: never" <<<"$doc"
after=$(snap "$R")
ok "roots, list and doctor created or changed nothing in the store" diff <(echo "$before") <(echo "$after")

mkdir -p "$R/nix/var/runix"
printf '%s 12 3145728\n' "$((now - 2 * 3600))" >"$R/nix/var/runix/last-gc"
doc=$("$RUNIX" doctor --store "$R" --cache "$cache" 2>&1)
ok "doctor: when gc last ran, what it deleted and freed" grep -qE "^  last gc: 2 hours ago \([0-9-]+ [0-9:]+ UTC\), deleted 12 paths, freed 3.0 MiB$" <<<"$doc"
printf 'yesterday\n' >"$R/nix/var/runix/last-gc"
doc=$("$RUNIX" doctor --store "$R" --cache "$cache" 2>&1)
ok "  ...and says it cannot tell from a malformed file" grep -q "^  last gc: unknown ($R/nix/var/runix/last-gc cannot be read" <<<"$doc"
rm "$R/nix/var/runix/last-gc"

# ---- roots add ---------------------------------------------------------
fails "roots add: a path not in the store is refused, saying to fetch it" 1 \
  "$missing is not in the store at '$R'; run 'runix fetch $missing' first" r roots add mine "$missing"
ok "  ...making nothing" test ! -e "$G/runix/manual/mine"
fails "roots add: not a store path" 2 "see 'runix roots add --help'" r roots add mine /usr/bin/env
fails "roots add: no path" 2 "expected store paths after NAME" r roots add mine
fails "roots add on a store that does not exist" 1 "there is no store at '$TEST_TMP/nowhere' yet" \
  "$RUNIX" roots add --store "$TEST_TMP/nowhere" mine "$hello"
ok "  ...and does not make one" test ! -e "$TEST_TMP/nowhere"
r roots add 'a b/c' "$hello" "$dash" 2>"$TEST_TMP/err"
is "$?:$(cat "$TEST_TMP/err")" "0:" "roots add NAME PATH PATH: exits 0 quietly"
ok "  ...in the layout, NAME encoded" test -L "$G/runix/manual/a%20b%2Fc/$(base "$dash")"
is "$(r roots | awk -F'\t' '$1 == "a b/c" { print $2, $6, $7 }')" "manual $hello $dash" "  ...shown decoded, with both targets"
ok "  ...real Nix sees it" grep -qx "nix/var/nix/gcroots/runix/manual/a%20b%2Fc/$(base "$hello") -> $hello" <<<"$(nix_roots)"
"$RUNIX" --store "$R" roots add 'a b/c' "$busybox" 2>"$TEST_TMP/err" >/dev/null
is "$?" 0 "roots add with a name in use: replaces"
ok "  ...with a note" grep -q "note: replacing the manual root 'a b/c'" "$TEST_TMP/err"
is "$(r roots | awk -F'\t' '$1 == "a b/c" { print $6 "|" $7 }')" "$busybox|" "  ...holding only the new path"
is "$(nix_roots | grep -c 'manual/a%20b%2Fc/')" 1 "  ...as real Nix sees"
"$RUNIX" --store "$R" roots add keep-dash "$dash" >/dev/null 2>&1
is "$(r roots | awk -F'\t' '$1 == "dash" || $1 == "keep-dash" { print $1, $5 }')" "keep-dash 0
dash 0" "a path two roots keep is unique to neither"

# A name that is not UTF-8 (or holds a control character) stays one field, and valid JSON.
mkroot manual 'bad%FF%1Bname' "$hello"
is "$(r roots | awk -F'\t' '$1 ~ /^bad/ { print $1 }' | od -An -c | tr -s ' ')" \
  "$(printf 'bad\377\\x1bname\n' | od -An -c | tr -s ' ')" "roots: a control byte in a name is escaped"
is "$(r roots --json | python3 -c 'import json,sys; print(any(r["name"] == "bad\\xff\x1bname" for r in json.load(sys.stdin)["roots"]))')" \
  True "  ...and a name that is not UTF-8 still makes valid JSON (its bytes as \\xHH)"
r roots remove $'bad\xff\x1bname'
ok "  ...and removes by its decoded name" test ! -e "$G/runix/manual/bad%FF%1Bname"

# ---- roots remove ------------------------------------------------------
fails "roots remove: an installed root is refused" 1 "'dash' is an installed tool's root; use 'runix uninstall dash'" \
  r roots remove dash
ok "  ...and kept" test -d "$G/runix/installed/dash"
fails "roots remove: a root of Nix's is refused, naming its link" 1 \
  "remove the link '$R/nix/var/nix/gcroots/direct-busybox'" r roots remove direct-busybox
fails "  ...by its relative name too" 1 "is a root of Nix's" r roots remove nix/var/nix/profiles/default-1-link
ok "  ...and kept" test -L "$G/direct-busybox"
fails "roots remove: an unknown name is an error, and the others are removed" 1 \
  "there is no root named 'nosuch' (see 'runix roots')" r roots remove nosuch /home/u/hello.runix 'a b/c'
ok "  ...the automatic root is gone" test ! -e "$G/runix/auto/%2Fhome%2Fu%2Fhello.runix"
ok "  ...and the manual one" test ! -e "$G/runix/manual/a%20b%2Fc"
roots_now=$(nix_roots)
ok "  ...real Nix no longer sees them" bash -c '! grep -qE "hello.runix|a%20b" <<<"$1"' _ "$roots_now"
ok "  ...and still sees the others" grep -q "gcroots/runix/manual/keep-alt/" <<<"$roots_now"
r roots remove keep-dash ghost
is "$?" 0 "roots remove NAME NAME: exits 0"
is "$(r roots | cut -f1 | tr '\n' ' ')" \
  "keep-alt dash nix/var/nix/gcroots/auto/xyz nix/var/nix/gcroots/direct-busybox nix/var/nix/profiles/default-1-link " \
  "  ...leaving the other roots"
fails "roots remove: no name" 2 "expected the NAME of a root" r roots remove
fails "roots: an unknown subcommand" 2 "'frob' is not a roots command" r roots frob
fails "list: an argument" 2 "unexpected argument 'x'" r list x

# After the removals, what runix calls dead is still what Nix would delete.
rm -rf "$TEST_TMP/copy"
cp -a "$R" "$TEST_TMP/copy"
is "$(r list --all 2>/dev/null | awk -F'\t' '$6 == "-" { print $1 }' | sort)" \
  "$(nix-store --store "$TEST_TMP/copy" --gc --print-dead 2>/dev/null | sed "s|^$TEST_TMP/copy||" | sort)" \
  "list: garbage after the removals is what nix-store --gc --print-dead lists"

# ---- an empty or absent store ------------------------------------------
is "$("$RUNIX" roots --store "$TEST_TMP/none" 2>&1)" "" "roots of a store that does not exist: nothing"
is "$("$RUNIX" list --store "$TEST_TMP/none" 2>&1)" "0 paths, 0 B; 0 of them (0 B) kept by no root, which 'runix gc' would delete" \
  "list of a store that does not exist: the summary only"
ok "  ...making nothing" test ! -e "$TEST_TMP/none"

done_testing
