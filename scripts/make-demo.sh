#!/usr/bin/env bash
# Rebuild demo/cache with real Nix (Debian's nix-bin, on x86_64 Debian 12):
# build demo/demo.nix, sign it with a fresh key, and publish it as an
# xz-compressed binary cache.  Only the public key is kept
# (demo/demo-key.pub); the secret is thrown away.
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
multiarch=$(gcc -print-multiarch)
interp=$(readelf -l /bin/sh | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
out=$(nix-build demo/demo.nix --argstr multiarch "$multiarch" --argstr interp "$interp" --no-out-link)
nix-store --generate-binary-cache-key runix-demo-1 "$tmp/sk" demo/demo-key.pub
nix store sign -r -k "$tmp/sk" "$out"
rm -rf demo/cache
nix copy --to "file://$PWD/demo/cache?compression=xz" "$out"
rm -rf demo/cache/log demo/cache/realisations
echo "$out" > demo/top-path
echo "demo cache rebuilt for $out"
