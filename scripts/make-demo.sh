#!/usr/bin/env bash
# Rebuild demo/cache with real Nix (Debian's nix-bin): build demo/demo.nix,
# sign it with a fresh key, and publish it as an uncompressed binary cache.
# Only the public key is kept (demo/demo-key.pub); the secret is thrown away.
set -euo pipefail
cd "$(dirname "$0")/.."
export NIX_CONFIG=$'experimental-features = nix-command\nsandbox = false\nsubstituters =\nbuild-users-group ='
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$(nix-build demo/demo.nix --no-out-link)
nix-store --generate-binary-cache-key runix-demo-1 "$tmp/sk" demo/demo-key.pub
nix store sign -r -k "$tmp/sk" "$out"
rm -rf demo/cache
nix copy --to "file://$PWD/demo/cache?compression=none" "$out"
rm -rf demo/cache/log demo/cache/realisations
echo "$out" > demo/top-path
echo "demo cache rebuilt for $out"
