#!/usr/bin/env bash
# Build the release files: one static runix per architecture (every command
# in one file, the preload engine's libraries inside it), SHA256SUMS and
# install.sh.  How and why: docs/release.md.
#
#   scripts/release.sh [--arch x86_64|aarch64|all] [--out DIR]
#
# Needs what scripts/install-deps.sh --release installs (Debian 12).  The
# only download is curl's Debian source package, pinned by version and
# sha256 below, kept in $RUNIX_RELEASE_CACHE (default build-release/src).
# The same inputs give the same bytes: run it twice and compare.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$PWD

usage() {
  cat <<'EOF'
usage: scripts/release.sh [--arch x86_64|aarch64|all] [--out DIR]

Build dist/runix-x86_64-linux and dist/runix-aarch64-linux (static, every
command in one file), dist/SHA256SUMS and dist/install.sh.

Options:
  --arch ARCH   x86_64, aarch64 or all (default all)
  --out DIR     where the release files go (default dist)

Environment: RUNIX_RELEASE_BUILD (default build-release) holds the builds;
RUNIX_RELEASE_CACHE (default build-release/src) the downloaded sources.

Examples:
  scripts/release.sh
  scripts/release.sh --arch x86_64 --out /tmp/dist
EOF
}

arch=all
out=dist
while [ $# -gt 0 ]; do
  case $1 in
    --arch) [ $# -ge 2 ] || { echo "release.sh: --arch needs a value" >&2; exit 2; }; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    --out) [ $# -ge 2 ] || { echo "release.sh: --out needs a value" >&2; exit 2; }; out=$2; shift 2 ;;
    --out=*) out=${1#--out=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "release.sh: unknown argument '$1'; see 'scripts/release.sh --help'" >&2; exit 2 ;;
  esac
done
case $arch in
  all) arches=(x86_64 aarch64) ;;
  x86_64|aarch64) arches=("$arch") ;;
  *) echo "release.sh: unknown architecture '$arch' (x86_64, aarch64 or all)" >&2; exit 2 ;;
esac

# curl: Debian 12's source package, built with only what runix uses.
curl_version=7.88.1
curl_debian=10+deb12u15
curl_orig_sha256=cdb38b72e36bc5d33d5b8810f8018ece1baa29a8f215b4495e495ded82bbf3c7
curl_debian_sha256=961b78bc48492c5693e4decb352ddd176f343260a8956f48b2887874048ef23b
curl_pool=${RUNIX_DEBIAN_POOL:-http://deb.debian.org/debian/pool/main/c/curl}

build=${RUNIX_RELEASE_BUILD:-$root/build-release}
cache=${RUNIX_RELEASE_CACHE:-$build/src}
mkdir -p "$build" "$cache" "$out"
build=$(realpath "$build")
out=$(realpath "$out")
jobs=$(nproc 2>/dev/null || echo 2)

# One fixed time for every timestamp the build could record: the last
# commit's, so that a build of the same tree gives the same bytes.
SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 1700000000)
export SOURCE_DATE_EPOCH
export LC_ALL=C TZ=UTC

fetch_checked() { # fetch_checked FILE SHA256
  local f=$cache/$1 sum=$2
  if [ ! -f "$f" ] || ! echo "$sum  $f" | sha256sum -c --status; then
    echo "release.sh: downloading $1" >&2
    curl -fsSL --retry 3 -o "$f.part" "$curl_pool/$1" ||
      wget -q -O "$f.part" "$curl_pool/$1" ||
      { echo "release.sh: cannot download $curl_pool/$1" >&2; exit 1; }
    mv "$f.part" "$f"
  fi
  if ! echo "$sum  $f" | sha256sum -c --status; then
    echo "release.sh: $f does not have the pinned sha256 $sum; delete it and run again" >&2
    exit 1
  fi
}

triple_of() {
  case $1 in
    x86_64) echo x86_64-linux-gnu ;;
    aarch64) echo aarch64-linux-gnu ;;
  esac
}

# build_curl ARCH: a static libcurl in $build/ARCH/curl-prefix.
build_curl() {
  local a=$1 triple
  triple=$(triple_of "$a")
  local prefix=$build/$a/curl-prefix stamp=$build/$a/curl-prefix/.done-$curl_version-$curl_debian
  [ -f "$stamp" ] && return 0
  fetch_checked "curl_$curl_version.orig.tar.gz" "$curl_orig_sha256"
  fetch_checked "curl_$curl_version-$curl_debian.debian.tar.xz" "$curl_debian_sha256"
  local src=$build/$a/curl-src
  rm -rf "$src" "$prefix"
  mkdir -p "$src"
  tar -xzf "$cache/curl_$curl_version.orig.tar.gz" -C "$src" --strip-components=1
  tar -xJf "$cache/curl_$curl_version-$curl_debian.debian.tar.xz" -C "$src"
  # Debian's patches, in order: the security fixes among them matter.  The
  # last two only make Debian's GnuTLS and NSS flavours.  Patches of the
  # build system are applied too, but the generated files are not remade
  # (every mtime is set to one time below), which is what they need.
  local p
  while read -r p; do
    case $p in ''|'#'*|90_gnutls.patch|99_nss.patch) continue ;; esac
    patch -s -p1 -d "$src" < "$src/debian/patches/$p"
  done < "$src/debian/patches/series"
  find "$src" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  local host=()
  [ "$a" != "$(uname -m)" ] && host=(--host="$triple")
  (
    cd "$src"
    export PKG_CONFIG_LIBDIR=/usr/lib/$triple/pkgconfig:/usr/share/pkgconfig
    CC=$triple-gcc CFLAGS="-O2 -ffile-prefix-map=$src=curl" \
      ./configure "${host[@]}" --prefix="$prefix" --disable-shared --enable-static \
      --with-openssl --enable-ares --without-zlib --without-brotli --without-zstd \
      --without-libpsl --without-libidn2 --without-nghttp2 --without-nghttp3 --without-ngtcp2 \
      --without-librtmp --without-libssh2 --without-libssh --without-gssapi --without-libgsasl \
      --disable-ldap --disable-ldaps --disable-rtsp --disable-dict --disable-telnet \
      --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp \
      --disable-gopher --disable-mqtt --disable-ftp --disable-manual --disable-ntlm --disable-ntlm-wb \
      --disable-alt-svc --disable-hsts --disable-cookies --disable-unix-sockets \
      --without-ca-bundle --without-ca-path --without-ca-fallback \
      --enable-symbol-hiding --disable-dependency-tracking > "$build/$a/curl-configure.log" 2>&1 ||
      { tail -30 "$build/$a/curl-configure.log" >&2; exit 1; }
    make -s -j"$jobs" -C lib > "$build/$a/curl-make.log" 2>&1 ||
      { tail -30 "$build/$a/curl-make.log" >&2; exit 1; }
    make -s -C lib install > /dev/null
    make -s -C include install > /dev/null
    make -s install-pkgconfigDATA > /dev/null
  )
  touch "$stamp"
}

# build_runix ARCH: the one-file runix, copied to $out.
build_runix() {
  local a=$1 triple
  triple=$(triple_of "$a")
  local dir=$build/$a/runix cross=()
  if [ "$a" != "$(uname -m)" ]; then
    cat > "$build/$a/cross.ini" <<EOF
[binaries]
c = '$triple-gcc'
ar = '$triple-ar'
strip = '$triple-strip'
pkgconfig = 'pkg-config'

[host_machine]
system = 'linux'
cpu_family = '$a'
cpu = '$a'
endian = 'little'
EOF
    cross=(--cross-file "$build/$a/cross.ini")
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
  # Meson names sources relative to the build directory ("../../../src/..."),
  # and __FILE__ keeps that: mapped too, so that where the build is does not matter.
  local rel
  rel=$(realpath --relative-to="$dir" "$root")
  PKG_CONFIG_LIBDIR=$build/$a/curl-prefix/lib/pkgconfig:/usr/lib/$triple/pkgconfig:/usr/share/pkgconfig \
  CC=$triple-gcc \
    meson setup "$dir" "${cross[@]}" -Done_file=true -Dtests=false -Dbuildtype=debugoptimized -Ddebug=false \
      -Db_ndebug=false -Dstrip=true -Dwerror=true \
      -Dc_args="-ffile-prefix-map=$root/= -ffile-prefix-map=$dir/= -ffile-prefix-map=$rel/=" \
      > "$build/$a/meson.log" 2>&1 ||
    { tail -40 "$build/$a/meson.log" >&2; exit 1; }
  ninja -C "$dir" -j"$jobs" > "$build/$a/ninja.log" 2>&1 ||
    { grep -B2 -A20 -m3 'error' "$build/$a/ninja.log" >&2 || tail -40 "$build/$a/ninja.log" >&2; exit 1; }
  "$triple-strip" --strip-all -o "$out/runix-$a-linux.tmp" "$dir/runix"
  chmod 755 "$out/runix-$a-linux.tmp"
  touch -d "@$SOURCE_DATE_EPOCH" "$out/runix-$a-linux.tmp"
  mv -f "$out/runix-$a-linux.tmp" "$out/runix-$a-linux"
}

for a in "${arches[@]}"; do
  if ! command -v "$(triple_of "$a")-gcc" > /dev/null; then
    echo "release.sh: no $(triple_of "$a")-gcc: run scripts/install-deps.sh --release" >&2
    exit 1
  fi
  start=$(date +%s)
  build_curl "$a"
  build_runix "$a"
  echo "release.sh: $out/runix-$a-linux ($(stat -c %s "$out/runix-$a-linux") bytes, $(( $(date +%s) - start ))s)" >&2
done

if [ -f scripts/install.sh ]; then
  cp scripts/install.sh "$out/install.sh.tmp"
  chmod 755 "$out/install.sh.tmp"
  mv -f "$out/install.sh.tmp" "$out/install.sh"
fi
(
  cd "$out"
  files=()
  for f in runix-x86_64-linux runix-aarch64-linux install.sh; do
    [ -f "$f" ] && files+=("$f")
  done
  sha256sum "${files[@]}" > SHA256SUMS.tmp
  mv -f SHA256SUMS.tmp SHA256SUMS
)
echo "release.sh: $out/SHA256SUMS" >&2
