#!/usr/bin/env bash
# install.sh and runix self update/uninstall/info, with the release's real
# files ($RUNIX_DIST_DIR, default dist/ from scripts/release.sh) served on
# 127.0.0.1, run as an unprivileged user in a clean environment: a fresh
# HOME, a PATH of a few tools (no runix, no compiler) with curl or with wget.
. "$(dirname "$0")/lib/libtest.sh"

src=$(cd "$(dirname "$0")/../.." && pwd)
dist=${RUNIX_DIST_DIR:-$src/dist}
case $(uname -m) in
  x86_64) arch=x86_64 ;;
  aarch64) arch=aarch64 ;;
  *) echo "Bail out! no release file for $(uname -m)"; exit 1 ;;
esac
asset=runix-$arch-linux
if [ ! -f "$dist/SHA256SUMS" ] || [ ! -x "$dist/$asset" ]; then
  echo "Bail out! no release directory with SHA256SUMS and $asset at $dist: run scripts/release.sh first, or set RUNIX_DIST_DIR"
  exit 1
fi
key=$(cat "$src/demo/demo-key.pub")
top=$(cat "$src/demo/top-path")

# has DESCRIPTION TEXT PATTERN / hasnt: a line of TEXT matches (does not match) the fixed string.
has() { ok "$1" bash -c 'grep -qF -- "$2" <<<"$1" || { printf "%s\n" "$1"; exit 1; }' _ "$2" "$3"; }
hasnt() { ok "$1" bash -c '! grep -qF -- "$2" <<<"$1" || { printf "%s\n" "$1"; exit 1; }' _ "$2" "$3"; }

# The unprivileged user: nobody when the tests run as root (as in CI).
chmod 755 "$TEST_TMP"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
fi

# What the user reads, where the user can read it (the source tree may be in root's home).
mkdir -p "$TEST_TMP/src"
cp "$src/scripts/install.sh" "$TEST_TMP/src/install.sh"
cp -r "$src/demo" "$TEST_TMP/src/demo"
chmod -R a+rX "$TEST_TMP/src"
installer=$TEST_TMP/src/install.sh
demo=$TEST_TMP/src/demo

# Two tool directories, the only PATH the installer gets.
tools="sh uname sed head tr mkdir chmod mv rm cat dirname sha256sum ls env grep id"
for dl in curl wget; do
  mkdir -p "$TEST_TMP/bin-$dl"
  for t in $tools $dl; do
    ln -s "$(command -v "$t")" "$TEST_TMP/bin-$dl/$t"
  done
done

# The release directories the server has: r1 (the release as built), and
# copies made from it below.
srv=$TEST_TMP/srv
mkdir -p "$srv/r1"
cp "$dist/$asset" "$dist/SHA256SUMS" "$srv/r1/"
[ -f "$dist/VERSION" ] && cp "$dist/VERSION" "$srv/r1/"
for d in cut-curl cut-wget; do cp -r "$srv/r1" "$srv/$d"; done
want=$(sha256sum "$dist/$asset" | cut -d' ' -f1)
# bad: SHA256SUMS lists another sum for the binary.
mkdir -p "$srv/bad"
cp "$dist/$asset" "$srv/bad/"
printf '%064d  %s\n' 0 "$asset" >"$srv/bad/SHA256SUMS"
# newer: another file that answers --version as runix 99.0.0 and runs the release's binary.
mkdir -p "$TEST_TMP/real" "$srv/newer" "$srv/broken" "$srv/newer-bad"
cp "$dist/$asset" "$TEST_TMP/real/runix"
chmod 755 "$TEST_TMP/real" "$TEST_TMP/real/runix"
{
  printf '#!/bin/sh\ncase "$1" in --version) echo "runix 99.0.0" ;; *) exec %s "$@" ;; esac\n' \
    "$TEST_TMP/real/runix"
  head -c 100000 /dev/zero | tr '\0' '#' | fold -w 80
} >"$srv/newer/$asset"
echo 99.0.0 >"$srv/newer/VERSION"
# broken: a binary that does not run (--version fails).
{ printf '#!/bin/sh\nexit 3\n'; head -c 100000 /dev/zero | tr '\0' '#' | fold -w 80; } >"$srv/broken/$asset"
chmod 755 "$srv/newer/$asset" "$srv/broken/$asset"
for d in newer broken; do (cd "$srv/$d" && sha256sum "$asset" >SHA256SUMS); done
cp "$srv/newer/$asset" "$srv/newer-bad/"
printf '%064d  %s\n' 1 "$asset" >"$srv/newer-bad/SHA256SUMS"
chmod -R a+rX "$srv"
httpd_start "$srv"

n=0
# fresh: a new HOME for the next scenario (in $H).
fresh() {
  n=$((n + 1))
  H=$TEST_TMP/home-$n
  mkdir -p "$H"
  [ ${#as_user[@]} -eq 0 ] || chown 65534:65534 "$H"
  B=$H/.local/bin/runix
  R=$H/.local/share/runix/receipt
}
# fresh_installed: a new HOME holding what install.sh installed in scenario 1.
fresh_installed() {
  fresh
  rmdir "$H"
  cp -a "$TEST_TMP/installed" "$H"
  sed -i "s|$installed_home/|$H/|" "$R"
  rc=0
}
# user DL URL CMD...: run CMD as the user, in a clean environment with tools DL.
user() {
  local dl=$1 url=$2
  shift 2
  "${as_user[@]}" env -i HOME="$H" PATH="$TEST_TMP/bin-$dl" LC_ALL=C.UTF-8 \
    ${url:+RUNIX_INSTALL_URL="$url"} ${EXTRA_PATH:+PATH="$TEST_TMP/bin-$dl:$EXTRA_PATH"} "$@"
}
# install DL URL [ARGS]: run install.sh; its stderr in $out, its status in $rc.
install() {
  local dl=$1 url=$2
  shift 2
  rc=0
  out=$(user "$dl" "$url" sh "$installer" "$@" 2>&1 </dev/null) || rc=$?
}
# selfcmd ARGS...: run the installed runix as the user; output in $out, status in $rc.
selfcmd() {
  rc=0
  out=$(user curl "${URL-}" "$B" "$@" 2>&1 </dev/null) || rc=$?
}
installed_ok() { # installed_ok LABEL
  is "$rc" 0 "$1: install.sh succeeds"
  ok "$1: the binary is the release's" cmp "$B" "$dist/$asset"
  ok "$1: it runs as runix" bash -c '"$1" --version | grep -q "^runix "' _ "$B"
  has "$1: the receipt names the binary" "$(cat "$R" 2>&1)" "binary $B"
  has "$1: the receipt has the release's sha256" "$(cat "$R" 2>&1)" "sha256 $want"
  ok "$1: man page and completions are installed" test -s "$H/.local/share/man/man1/runix.1" \
    -a -s "$H/.local/share/bash-completion/completions/runix" \
    -a -s "$H/.local/share/zsh/site-functions/_runix" \
    -a -s "$H/.local/share/fish/vendor_completions.d/runix.fish"
  ok "$1: no partial download is left" bash -c '! ls -a "$1" | grep -q "^\.runix"' _ "$H/.local/bin"
}
gone_ok() { # gone_ok LABEL: nothing of runix's is left but the store and config
  ok "$1: binary, man page, completions and receipt are gone" bash -c \
    '! find "$1" ! -type d \( -name runix -o -name runix.1 -o -name _runix -o -name runix.fish -o -name receipt \) | grep .' \
    _ "$H"
}

ok "the release's SHA256SUMS has its binary's sha256" \
  grep -qE "^$want [ *]$asset\$" "$dist/SHA256SUMS"
ok "the clean PATH has no runix and no compiler" \
  bash -c 'export PATH=$1; ! command -v runix && ! command -v cc && ! command -v gcc' _ "$TEST_TMP/bin-curl"
if [ -f "$dist/install.sh" ]; then
  ok "the release's install.sh is scripts/install.sh" cmp "$dist/install.sh" "$src/scripts/install.sh"
fi

# 1. curl, then the same again, then uninstall.
fresh
install curl "$HTTP/ok/r1"
installed_ok "curl"
# What install.sh left, to start the scenarios below that are about runix self from.
cp -a "$H" "$TEST_TMP/installed"
installed_home=$H
has "curl: says where runix went" "$out" "installed runix"
has "curl: gives the PATH line to add" "$out" "export PATH=\"$H/.local/bin:\$PATH\""
ino=$(stat -c %i "$B")
before=$(cat "$R")
install curl "$HTTP/ok/r1"
is "$rc" 0 "re-run: install.sh succeeds again"
has "re-run: says runix is already the release's" "$out" "already the release's"
is "$(stat -c %i "$B")" "$ino" "re-run: the binary is not replaced"
is "$(cat "$R")" "$before" "re-run: the receipt is the same"
EXTRA_PATH=$H/.local/bin install curl "$HTTP/ok/r1"
hasnt "with ~/.local/bin on PATH there is no PATH hint" "$out" "export PATH="
selfcmd self info
is "$rc" 0 "self info succeeds"
has "self info names the installed binary" "$out" "installed: $B"
has "self info has the receipt's sha256" "$out" "installed sha256: $want"
has "self info has the release URL" "$out" "release url: $HTTP/ok/r1"
mkdir -p "$H/.config/runix"
echo "http-connections = 4" >"$H/.config/runix/runix.conf"
selfcmd self uninstall
is "$rc" 0 "uninstall (no terminal) succeeds"
has "uninstall says what it removed" "$out" "removed $B"
has "uninstall keeps the data without a terminal, and says how to remove it" "$out" \
  "and the config $H/.config/runix; remove them with"
ok "  ...the config is still there" test -s "$H/.config/runix/runix.conf"
gone_ok "uninstall"

# 2. wget only.
fresh
ok "the wget PATH has no curl" bash -c 'export PATH=$1; ! command -v curl' _ "$TEST_TMP/bin-wget"
install wget "$HTTP/ok/r1"
installed_ok "wget"
selfcmd self uninstall
is "$rc" 0 "wget: uninstall succeeds"
hasnt "wget: uninstall without a store or config says nothing of them" "$out" "kept the store"
gone_ok "wget: uninstall"

# 3. A bad checksum: refused, nothing installed.
fresh
install curl "$HTTP/ok/bad"
is "$rc" 1 "bad checksum: install.sh fails"
has "bad checksum: says why" "$out" "refusing $HTTP/ok/bad/$asset: its sha256 is $want"
ok "bad checksum: nothing is installed" bash -c '! find "$1" -type f | grep .' _ "$H"

# 4. Interrupted halfway (the connection drops once), with each downloader; the re-run completes it.
for dl in curl wget; do
  fresh
  install "$dl" "$HTTP/cut-once/cut-$dl"
  is "$rc" 1 "$dl, interrupted: install.sh fails"
  has "$dl, interrupted: says to run it again" "$out" "run install.sh again to resume it"
  ok "$dl, interrupted: no runix is installed" test ! -e "$B" -a ! -e "$R"
  part=$H/.local/bin/.$asset.part
  ok "$dl, interrupted: the part downloaded is kept" test -s "$part"
  install "$dl" "$HTTP/cut-once/cut-$dl"
  installed_ok "$dl, re-run after the interruption"
  ok "$dl: the re-run asked only for the rest" grep -q "GET /cut-once/cut-$dl/$asset range=" "$HTTP_LOG"
  selfcmd self uninstall
  gone_ok "$dl, interrupted then completed: uninstall"
done

# 5. self update: to a newer release, refusing a bad one, rolling back a broken one.
fresh_installed
URL=$HTTP/ok/r1 selfcmd self update
is "$rc" 0 "update from the same release succeeds"
has "update from the same release: up to date" "$out" "runix is up to date"
ok "update from the same release: the binary stays" cmp "$B" "$dist/$asset"
URL=$HTTP/ok/newer-bad selfcmd self update
is "$rc" 1 "update with a bad checksum fails"
has "update with a bad checksum: refused" "$out" "refusing $HTTP/ok/newer-bad/$asset"
ok "update with a bad checksum: the binary stays" cmp "$B" "$dist/$asset"
has "update with a bad checksum: the receipt stays" "$(cat "$R")" "sha256 $want"
URL=$HTTP/ok/broken selfcmd self update
is "$rc" 1 "update to a binary that does not run fails"
has "update to a broken binary: the old one is back" "$out" "the old one is back in place"
ok "update to a broken binary: the binary is the old one" cmp "$B" "$dist/$asset"
has "update to a broken binary: the receipt stays" "$(cat "$R")" "sha256 $want"
ok "update to a broken binary: nothing is left beside it" \
  bash -c '[ "$(ls -A "$1")" = runix ]' _ "$H/.local/bin"
: >"$H/.local/share/man/man1/runix.1"
URL=$HTTP/ok/newer selfcmd self update
is "$rc" 0 "update to a newer release succeeds"
ok "update: the man page is written again, by the new runix" cmp "$H/.local/share/man/man1/runix.1" \
  <(user curl "" "$TEST_TMP/real/runix" self man)
has "update: says so" "$out" "updated $B to runix 99.0.0"
ok "update: the binary is the new one" cmp "$B" "$srv/newer/$asset"
has "update: the receipt has the new version" "$(cat "$R")" "version 99.0.0"
has "update: the receipt has the new sha256" "$(cat "$R")" \
  "sha256 $(sha256sum "$srv/newer/$asset" | cut -d' ' -f1)"
ok "update: nothing is left beside it" bash -c '[ "$(ls -A "$1")" = runix ]' _ "$H/.local/bin"
URL=$HTTP/ok/newer selfcmd self update
has "update again: up to date" "$out" "runix is up to date"
selfcmd self uninstall
is "$rc" 0 "uninstall after updates succeeds"
gone_ok "uninstall after updates"

# 6. uninstall with a receipt listing a file install.sh does not write; without a
# receipt; with one of an older format.
fresh_installed
echo keep >"$H/.profile"
echo "file $H/.profile" >>"$R"
selfcmd self uninstall
is "$rc" 0 "uninstall with a receipt listing another file succeeds"
has "  ...and says it leaves that file" "$out" "not removing $H/.profile"
ok "  ...which is still there" test -s "$H/.profile"
gone_ok "uninstall with a receipt listing another file"
fresh_installed
rm "$R"
selfcmd self uninstall
is "$rc" 0 "uninstall without a receipt succeeds"
has "without a receipt: says so" "$out" "no receipt at $R; removing runix from the places install.sh uses"
gone_ok "uninstall without a receipt"
fresh_installed
printf 'binary=%s\nversion=0.0.1\n' "$B" >"$R"
selfcmd self uninstall
is "$rc" 0 "uninstall with an old-format receipt succeeds"
has "old-format receipt: says it cannot read it" "$out" "this runix cannot read it; removing runix from the places"
gone_ok "uninstall with an old-format receipt"

# 7. --all: the store, config and cache go too.
fresh_installed
selfcmd --cache "file://$demo/cache" --trusted-key "$key" fetch -q "$top"
is "$rc" 0 "--all: runix fetches into the user's store"
mkdir -p "$H/.config/runix" "$H/.cache/runix"
echo "http-connections = 4" >"$H/.config/runix/runix.conf"
echo x >"$H/.cache/runix/x"
[ ${#as_user[@]} -eq 0 ] || chown -R 65534:65534 "$H/.config" "$H/.cache"
ok "--all: the store has the demo closure" test -d "$H/.local/share/runix/nix/store/$(basename "$top")"
cp -a "$H/.local/share/runix/nix" "$TEST_TMP/store-nix" # for the prompt, below
selfcmd self uninstall --all
is "$rc" 0 "uninstall --all succeeds"
has "--all: says the store is removed" "$out" "removed the store $H/.local/share/runix"
ok "--all: store, config and cache are gone" test ! -e "$H/.local/share/runix" -a ! -e "$H/.config/runix" \
  -a ! -e "$H/.cache/runix"
gone_ok "uninstall --all"

# 8. The confirmation prompt, on a terminal: "n" keeps the data, "y" removes it.
# pty ANSWER CMD...: run CMD on a pseudo-terminal, answering the prompt; output in $out.
pty() {
  local answer=$1
  shift
  rc=0
  out=$(python3 - "$answer" "$@" <<'PY'
import os, pty, sys, time
answer = sys.argv[1].encode() + b"\n"
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
got = b""
sent = False
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    got += chunk
    if not sent and b"[y/N]" in got:
        os.write(fd, answer)
        sent = True
sys.stdout.write(got.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
) || rc=$?
}
for answer in n y; do
  fresh_installed
  cp -a "$TEST_TMP/store-nix" "$H/.local/share/runix/nix"
  ok "terminal, '$answer': runix sees the store" bash -c 'grep -q "$2" <<<"$("${@:3}" list 2>&1)"' _ x \
    "$(basename "$top")" "${as_user[@]}" env -i HOME="$H" PATH="$TEST_TMP/bin-curl" "$B"
  pty "$answer" "${as_user[@]}" env -i HOME="$H" PATH="$TEST_TMP/bin-curl" "$B" self uninstall
  is "$rc" 0 "terminal, '$answer': uninstall succeeds"
  has "terminal, '$answer': asks before removing the store" "$out" "Remove them? [y/N]"
  gone_ok "terminal, '$answer'"
  if [ "$answer" = n ]; then
    ok "terminal, 'n': the store stays" test -d "$H/.local/share/runix/nix/store/$(basename "$top")"
  else
    ok "terminal, 'y': the store is gone" test ! -e "$H/.local/share/runix"
  fi
done

# 9. install.sh's default release URL is runix's.
fresh
out=$(sed -n 's/^default_url=//p' "$src/scripts/install.sh")
is "$(user curl "" "$TEST_TMP/real/runix" self info 2>&1 | sed -n 's/^release url: //p')" "$out" \
  "install.sh's default release URL is the one runix self update uses"

done_testing
