#!/bin/sh
# Install runix for this user, without root:
#
#   curl -fsSL https://github.com/runix-project/runix/releases/latest/download/install.sh | sh
#
# Downloads the release's runix for this machine's architecture, checks its
# sha256 against the release's SHA256SUMS, puts it at ~/.local/bin/runix
# (or PREFIX/bin/runix) with its man page and shell completions, and writes
# a receipt for 'runix self update' and 'runix self uninstall'.  Running it
# again is safe: it resumes an interrupted download and replaces nothing
# that is already right.  See docs/install.md.
set -u

# The release directory (SHA256SUMS, runix-ARCH-linux); $RUNIX_INSTALL_URL
# or --url overrides.  The same as meson's release_url option.
default_url=https://github.com/runix-project/runix/releases/latest/download

usage() {
  cat <<'EOF'
usage: install.sh [--prefix DIR] [--url URL]

Install runix for this user: DIR/bin/runix (default ~/.local/bin/runix), its
man page and its bash, zsh and fish completions, checked against the
release's SHA256SUMS.  Needs curl or wget and sha256sum (or shasum); never
root.

  --prefix DIR   install into DIR/bin and DIR/share (default: ~/.local)
  --url URL      the release directory (default: $RUNIX_INSTALL_URL, else
                 the project's latest release)
  -h, --help     show this help

Examples:
  sh install.sh
  sh install.sh --prefix ~/opt/runix
EOF
}

say() { printf '%s\n' "$*" >&2; }
die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}
usage_error() {
  printf 'install.sh: %s; see install.sh --help\n' "$*" >&2
  exit 2
}

prefix=
url=${RUNIX_INSTALL_URL:-}
while [ $# -gt 0 ]; do
  case $1 in
    --prefix)
      [ $# -ge 2 ] || usage_error "option '--prefix' needs a value"
      prefix=$2
      shift 2
      ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    --url)
      [ $# -ge 2 ] || usage_error "option '--url' needs a value"
      url=$2
      shift 2
      ;;
    --url=*) url=${1#--url=}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown argument '$1'" ;;
  esac
done
[ -n "$url" ] || url=$default_url
while :; do
  case $url in
    */) url=${url%/} ;;
    *) break ;;
  esac
done

case ${HOME:-} in
  /*) ;;
  *) [ -n "$prefix" ] && [ -n "${XDG_DATA_HOME:-}" ] ||
       die "HOME is not set to an absolute path: set it, or give --prefix and XDG_DATA_HOME" ;;
esac
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
case $data_home in
  /*) ;;
  *) data_home=$HOME/.local/share ;;
esac
if [ -n "$prefix" ]; then
  case $prefix in
    /*) ;;
    *) prefix=$(pwd)/$prefix ;;
  esac
  share=$prefix/share
else
  prefix=$HOME/.local
  share=$data_home
fi
bindir=$prefix/bin
binary=$bindir/runix
receipt_dir=$data_home/runix
receipt=$receipt_dir/receipt

# What this machine is, as the release's file names say it.
[ "$(uname -s)" = Linux ] || die "runix releases are for Linux; this is $(uname -s)"
case $(uname -m) in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) die "there is no runix release for $(uname -m); releases are for x86_64 and aarch64" ;;
esac
asset=runix-$arch-linux

# The tools: a downloader and a sha256 program.
if command -v curl >/dev/null 2>&1; then
  downloader=curl
elif command -v wget >/dev/null 2>&1; then
  downloader=wget
else
  die "neither curl nor wget is installed: install one of them and run install.sh again"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | sed 's/ .*//'; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | sed 's/ .*//'; }
elif command -v openssl >/dev/null 2>&1; then
  sha256() { openssl dgst -sha256 "$1" | sed 's/.*= *//'; }
else
  die "no sha256sum, shasum or openssl to check the download with"
fi

# get URL FILE: download URL into FILE, whole.
get() {
  if [ "$downloader" = curl ]; then
    curl -fsSL --retry 2 -o "$2" "$1"
  else
    wget -q -O "$2" "$1"
  fi
}

# resume URL FILE: download URL into FILE, continuing what FILE holds.
resume() {
  if [ "$downloader" = curl ]; then
    if [ -t 2 ]; then progress=--progress-bar; else progress=-s; fi
    curl -fSL $progress -C - -o "$2" "$1"
  else
    if [ -t 2 ]; then progress=--show-progress; else progress=; fi
    # One try, as curl makes: a dropped download stops here, and the next run resumes it.
    wget -q $progress -t 1 -c -O "$2" "$1"
  fi
}

mkdir -p "$bindir" || die "cannot make $bindir"
mkdir -p "$receipt_dir" || die "cannot make $receipt_dir"
part=$bindir/.$asset.part
sums=$bindir/.runix-SHA256SUMS.$$
trap 'rm -f "$sums" "$sums.tmp"' EXIT
trap 'rm -f "$sums" "$sums.tmp"; exit 130' INT TERM HUP

get "$url/SHA256SUMS" "$sums" ||
  die "cannot download $url/SHA256SUMS with $downloader; check the URL and the network"
want=$(sed -n "s/^\([0-9A-Fa-f]\{64\}\) [ *]$asset\$/\1/p" "$sums" | head -n 1 | tr 'A-F' 'a-f')
[ -n "$want" ] || die "$url/SHA256SUMS does not list $asset: that release has no runix for $arch"

# Is it there already?
if [ -f "$binary" ] && [ "$(sha256 "$binary")" = "$want" ]; then
  say "runix at $binary is already the release's ($want)"
  rm -f "$part"
else
  if [ -f "$part" ] && [ "$(sha256 "$part")" = "$want" ]; then
    : # a finished download from an earlier run
  else
    resumed=false
    [ -s "$part" ] && resumed=true && say "resuming the download of $asset"
    resume "$url/$asset" "$part" ||
      die "the download of $url/$asset was interrupted; run install.sh again to resume it"
    got=$(sha256 "$part")
    if [ "$got" != "$want" ] && [ "$resumed" = true ]; then
      # What was there before may be of another release: start over once.
      rm -f "$part"
      resume "$url/$asset" "$part" ||
        die "the download of $url/$asset was interrupted; run install.sh again to resume it"
      got=$(sha256 "$part")
    fi
    if [ "$got" != "$want" ]; then
      rm -f "$part"
      die "refusing $url/$asset: its sha256 is $got, but SHA256SUMS says $want; nothing installed"
    fi
  fi
  chmod 755 "$part" || die "cannot make $part executable"
  version=$("$part" --version 2>/dev/null) || version=
  case $version in
    "runix "*) ;;
    *)
      rm -f "$part"
      die "the downloaded runix does not run on this machine ('$asset --version' failed); nothing installed"
      ;;
  esac
  mv -f "$part" "$binary" || die "cannot put runix at $binary"
fi
version=$("$binary" --version 2>/dev/null) || die "$binary does not run"
version=${version#runix }

# The man page and completions, from the binary itself.  files: what the receipt lists.
files=
extra() { # extra FILE COMMAND...: write FILE from the output of runix COMMAND...
  f=$1
  shift
  mkdir -p "$(dirname "$f")" 2>/dev/null &&
    "$binary" "$@" >"$f.tmp" 2>/dev/null && mv -f "$f.tmp" "$f" &&
    files="$files
file $f" || {
    rm -f "$f.tmp"
    say "note: could not write $f ('runix $*' failed)"
  }
}
extra "$share/man/man1/runix.1" self man
extra "$share/bash-completion/completions/runix" self completion bash
extra "$share/zsh/site-functions/_runix" self completion zsh
extra "$share/fish/vendor_completions.d/runix.fish" self completion fish

# The receipt, replaced in one rename.
{
  echo "# runix's install receipt: 'runix self uninstall' removes what it lists."
  echo "runix-receipt 1"
  echo "version $version"
  echo "arch $arch"
  echo "base-url $url"
  echo "binary $binary"
  echo "sha256 $want"
  if [ -n "$files" ]; then printf '%s\n' "$files" | sed '/^$/d'; fi
} >"$receipt.tmp" && mv -f "$receipt.tmp" "$receipt" || die "cannot write the receipt $receipt"

say "installed runix $version at $binary"
case ":${PATH:-}:" in
  *":$bindir:"*)
    found=$(command -v runix 2>/dev/null)
    [ -n "$found" ] && [ "$found" != "$binary" ] &&
      say "note: 'runix' on your PATH is $found, which comes before $binary"
    ;;
  *)
    say "$bindir is not on your PATH; add this line to your shell's startup file"
    say "(~/.profile, ~/.bashrc or ~/.zshrc) and open a new shell:"
    say ""
    say "  export PATH=\"$bindir:\$PATH\""
    say ""
    ;;
esac
case $share in
  "$data_home") ;;
  *) say "note: the completions are under $share; point your shell at them to use them" ;;
esac
say "(zsh completions: add $share/zsh/site-functions to your fpath; 'runix self uninstall' removes runix)"
exit 0
