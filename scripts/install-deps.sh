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
  wget man-db groff-base bsdextrautils zsh fish qemu-user-static awscli python3-botocore
  uidmap systemd skopeo umoci podman runc jq
)

# scripts/release.sh: the cross compiler, musl (for the release test's musl
# userland), c-ares, and arm64's static archives through multiarch.
release_pkgs=(
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross musl-tools libc-ares-dev file binutils patch
  libsodium-dev:arm64 libssl-dev:arm64 liblzma-dev:arm64 libzstd-dev:arm64 libbz2-dev:arm64
  libbrotli-dev:arm64 libsqlite3-dev:arm64 libjansson-dev:arm64 libc-ares-dev:arm64 zlib1g-dev:arm64
)

pkgs=("${build_pkgs[@]}")
case "${1:-}" in
  --with-tests) pkgs+=("${test_pkgs[@]}" "${release_pkgs[@]}") ;;
  --release) pkgs+=("${release_pkgs[@]}") ;;
esac

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

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
# The aarch64 test closure is made from Debian's arm64 packages
# (tests/fixtures/build-aarch64.sh downloads them with apt-get), and the
# aarch64 release links their static archives.
if { [ "${1:-}" = "--with-tests" ] || [ "${1:-}" = "--release" ]; } && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "adding the arm64 architecture to apt" >&2
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
  updated=1
fi
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
[ -n "${updated:-}" ] || $sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
