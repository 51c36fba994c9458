#!/usr/bin/env bash
# Install what runix needs to build and test on Debian 12, with apt-get.
# Only packages that are missing are installed; nothing is downloaded
# from anywhere but the Debian archive.
set -euo pipefail

build_pkgs=(
  gcc clang meson ninja-build pkg-config
  libcurl4-openssl-dev libsodium-dev libssl-dev liblzma-dev libzstd-dev libbz2-dev
  libbrotli-dev libsqlite3-dev libjansson-dev libcmocka-dev
)
test_pkgs=(
  nix-bin libclang-rt-14-dev xz-utils zstd bzip2 python3 libpython3-dev sqlite3 coreutils bc bsdutils
  patchelf busybox-static util-linux tar gcc openssl libcap2-bin python3-jsonschema curl
  awscli python3-botocore
)

pkgs=("${build_pkgs[@]}")
if [ "${1:-}" = "--with-tests" ]; then
  pkgs+=("${test_pkgs[@]}")
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
# The S3 server of the s3:// tests runs on node; a node that comes with its
# own npm (another packaging of it) is used as it is.
if [ "${1:-}" = "--with-tests" ] && ! { command -v node && command -v npm; } >/dev/null; then
  missing+=(nodejs npm)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
