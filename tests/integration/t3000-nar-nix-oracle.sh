#!/usr/bin/env bash
# runix nar dump/restore/hash/ls against real Nix, over a tree with every
# kind of entry NARs carry and a file over 100 MB.
. "$(dirname "$0")/lib/libtest.sh"
need_nix

T=$TEST_TMP
tree=$T/tree
mkdir -p "$tree"
(
  cd "$tree"
  mkdir -p bin lib/deep empty-dir "dir with space"
  printf '#!/bin/sh\necho hi\n' > bin/tool
  chmod 755 bin/tool
  printf 'owner-exec only' > bin/ownerx
  chmod 700 bin/ownerx
  printf 'group-exec only' > bin/groupx
  chmod 654 bin/groupx
  : > empty-file
  printf 'data\n' > "dir with space/f"
  ln -s /nix/store/00000000000000000000000000000000-absolute/bin/x abs-link
  ln -s ../bin/tool lib/rel-link
  ln -s does-not-exist dangling
  ln -s . self-loop
  # Names that sort differently as bytes than in a locale.
  for n in B a _x Z z é É ä 'ü-x' '.hidden' '+plus' '~tilde' 'a.b' 'a-b' 'a_b' 'A'; do
    printf '%s\n' "$n" > "lib/$n"
  done
  # Deep nesting.
  d=lib/deep
  for i in $(seq 1 100); do d=$d/d$i; done
  mkdir -p "$d"
  printf 'bottom\n' > "$d/file"
  # One file over 100 MB (not compressible to nothing: a repeated pattern with counters).
  seq 1 15000000 > big.txt
  # Some binary content with every byte value.
  python3 -c 'import sys; sys.stdout.buffer.write(bytes(range(256))*1000)' > lib/binary
)
big=$(stat -c %s "$tree/big.txt")
ok "fixture has a file over 100 MB ($big bytes)" test "$big" -gt 104857600

nix-store --dump "$tree" > "$T/nix.nar"
ok "nar dump is byte-identical to nix-store --dump" bash -c '"$RUNIX" nar dump "$1" | cmp - "$2"' _ "$tree" "$T/nix.nar"

want=$(nix-hash --type sha256 --base32 "$tree")
ok "nar hash equals nix-hash --type sha256 --base32" test "$("$RUNIX" nar hash "$tree")" = "sha256:$want"
ok "nar hash --base16 equals nix-hash --base16" test "$("$RUNIX" nar hash --base16 "$tree")" = "sha256:$(nix-hash --type sha256 "$tree")"
ok "nar hash --size gives the NAR size" test "$("$RUNIX" nar hash --size "$tree" | cut -f2)" = "$(stat -c %s "$T/nix.nar")"

# Restore with both tools; dumps of both results must equal the original NAR.
ok "nar restore accepts nix's NAR" bash -c '"$RUNIX" nar restore "$1" < "$2"' _ "$T/r-runix" "$T/nix.nar"
ok "nix-store --restore accepts runix's NAR" bash -c '"$RUNIX" nar dump "$1" | nix-store --restore "$2"' _ "$tree" "$T/r-nix"
ok "dump of runix's restore equals the original" bash -c 'nix-store --dump "$1" | cmp - "$2"' _ "$T/r-runix" "$T/nix.nar"
ok "dump of nix's restore equals the original" bash -c 'nix-store --dump "$1" | cmp - "$2"' _ "$T/r-nix" "$T/nix.nar"
ok "restored symlinks are kept verbatim" test "$(readlink "$T/r-runix/abs-link")" = "/nix/store/00000000000000000000000000000000-absolute/bin/x"
ok "restored executables are executable" test -x "$T/r-runix/bin/tool"

ok "nar restore --canonical gives store permissions" bash -c '
  "$RUNIX" nar restore --canonical "$1" < "$2" &&
  test "$(stat -c %a "$1")" = 555 && test "$(stat -c %a "$1/bin/tool")" = 555 &&
  test "$(stat -c %a "$1/empty-file")" = 444 && test "$(stat -c %Y "$1/lib/a")" = 1 &&
  test "$(stat -c %Y "$1")" = 1 && test "$(find "$1" -newermt @2 | wc -l)" = 0 &&
  nix-store --dump "$1" | cmp - "$2"' _ "$T/r-canon" "$T/nix.nar"

ok "nar ls equals nix nar ls -R" bash -c 'diff <("$RUNIX" nar ls "$1") <(nix nar ls -R "$1" /)' _ "$T/nix.nar"
ok "nar ls -l equals nix nar ls -lR" bash -c 'diff <("$RUNIX" nar ls -l "$1") <(nix nar ls -lR "$1" /)' _ "$T/nix.nar"

# Single-file and symlink roots.
printf 'x' > "$T/onefile"
ln -s /etc/passwd "$T/onelink"
for p in onefile onelink; do
  ok "nar dump of a $p root equals nix-store --dump" bash -c '"$RUNIX" nar dump "$1" | cmp - <(nix-store --dump "$1")' _ "$T/$p"
  ok "nar ls -l of a $p root equals nix" bash -c 'diff <("$RUNIX" nar dump "$1" | "$RUNIX" nar ls -l -) <(nix-store --dump "$1" > "$1.nar" && nix nar ls -lR "$1.nar" /)' _ "$T/$p"
done

# Every third-party NAR: the valid ones restore to what Nix restores,
# the invalid ones are refused and leave nothing behind.
V=$RUNIX_TESTDATA/nar
for f in $(cd "$V" && find . -name '*.nar' | sort); do
  name=${f#./}
  case $name in
    nixos-nix/unit/regular-one-byte-zero-padding.nar|attic/*|go-nix/*|harmonia/*|tvix/*|nixos-nix/fuzz/*|\
    nixos-nix/functional/case.nar|nixos-nix/functional/case-collision.nar|nixos-nix/functional/unnormalized.nar|\
    zombiezen-go-nix/1byte-regular.nar|zombiezen-go-nix/empty-*|zombiezen-go-nix/hello-*|zombiezen-go-nix/mini-drv.nar|\
    zombiezen-go-nix/nested-dir-and-common-prefix.nar)
      out=$T/v-$(echo "$name" | tr / _)
      ok "vector $name restores and dumps back identically (nix-store --dump)" bash -c '
        "$RUNIX" nar restore "$1" < "$2" && nix-store --dump "$1" | cmp - "$2"' _ "$out" "$V/$name"
      ;;
    *)
      out=$T/bad-$(echo "$name" | tr / _)
      fails "vector $name is refused" 1 "invalid NAR" "$RUNIX" nar restore "$out" < "$V/$name"
      ok "vector $name leaves nothing behind" test ! -e "$out" -a ! -L "$out"
      ;;
  esac
done

# A truncated and a corrupted copy of nix's own NAR.
head -c 100000 "$T/nix.nar" > "$T/trunc.nar"
fails "truncated NAR is refused" 1 "unexpected end of input" "$RUNIX" nar restore "$T/r-trunc" < "$T/trunc.nar"
ok "truncated NAR leaves nothing behind" test ! -e "$T/r-trunc"
{ cat "$T/onefile.nar"; printf 'x'; } > "$T/trailing.nar"
fails "trailing bytes are refused" 1 "after the end of the archive" "$RUNIX" nar restore "$T/r-trail" < "$T/trailing.nar"

done_testing
