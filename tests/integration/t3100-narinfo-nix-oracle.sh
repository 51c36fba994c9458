#!/usr/bin/env bash
# runix narinfo verify against narinfos that real Nix wrote: 'nix store
# sign', then 'nix copy --to file://...'.  Any changed byte of a signature,
# the NarHash or a reference must make verification fail.
. "$(dirname "$0")/lib/libtest.sh"
need_nix

T=$TEST_TMP
cat > "$T/closure.nix" <<'NIX'
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" script ];
    # Make every run of the test build fresh paths.
    salt = builtins.getEnv "RUNIX_TEST_SALT";
  };
  leaf = mk "it-leaf-1.0" "mkdir $out; echo leaf > $out/data";
  lib = mk "it-lib-2.1" "mkdir -p $out/lib; echo ${leaf}/data > $out/lib/ref";
  app = mk "it-app-1.0" ''
    mkdir -p $out/bin $out/share
    echo ${lib}/lib/ref > $out/share/ref
    echo ${leaf} >> $out/share/ref
    echo $out > $out/share/self
    printf '#!/bin/sh\necho hi\n' > $out/bin/app
    chmod +x $out/bin/app
    ln -s ${leaf}/data $out/share/leaflink
  '';
in app
NIX
export RUNIX_TEST_SALT="$$-$(date +%s%N)"
app=$(nix-build "$T/closure.nix" --no-out-link 2>"$T/build.log") || { cat "$T/build.log"; echo "Bail out! nix-build failed"; exit 1; }
nix-store --generate-binary-cache-key runix-it-1 "$T/sk" "$T/pk"
nix-store --generate-binary-cache-key other-1 "$T/sk2" "$T/pk2"
key=$(cat "$T/pk")
other=$(cat "$T/pk2")
nix store sign -r -k "$T/sk" "$app" 2>>"$T/nix.log"
nix copy --to "file://$T/cache" "$app" 2>>"$T/nix.log"

mapfile -t closure < <(nix-store -qR "$app")
ok "closure has 3 paths" test "${#closure[@]}" -eq 3
for p in "${closure[@]}"; do
  h=$(basename "$p" | cut -c1-32)
  ni=$T/cache/$h.narinfo
  ok "narinfo of $(basename "$p") verifies with the signing key" bash -c '[ "$("$RUNIX" narinfo verify --trusted-key "$1" "$2")" = ok ]' _ "$key" "$ni"
  fails "narinfo of $(basename "$p") is untrusted with another key" 1 "not a trusted key" "$RUNIX" narinfo verify --trusted-key "$other" "$ni"
  fails "narinfo of $(basename "$p") is untrusted with the default key" 1 "not a trusted key" "$RUNIX" narinfo verify "$ni"
  ok "narinfo of $(basename "$p") verifies when the key is one of several" "$RUNIX" narinfo verify -k "$other" -k "$key" "$ni"
  want_fp="1;$p;sha256:$(nix-hash --type sha256 --base32 "$p");$(nix path-info --json "$p" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["narSize"])');$(nix-store -q --references "$p" | sort | paste -sd, -)"
  ok "fingerprint of $(basename "$p") is what Nix signs" test "$("$RUNIX" narinfo fingerprint "$ni")" = "$want_fp"
done

app_ni=$T/cache/$(basename "$app" | cut -c1-32).narinfo
ok "app narinfo has references" grep -q '^References: .*it-lib-2.1' "$app_ni"

# narinfo verify trusts the keys runix fetch trusts, and -k on top of them.
ok "verify uses RUNIX_TRUSTED_KEYS without -k" env RUNIX_TRUSTED_KEYS="$key" "$RUNIX" narinfo verify "$app_ni"
ok "verify adds -k to RUNIX_TRUSTED_KEYS" env RUNIX_TRUSTED_KEYS="$other" "$RUNIX" narinfo verify -k "$key" "$app_ni"
fails "RUNIX_TRUSTED_KEYS replaces the default key" 1 "not a trusted key" env RUNIX_TRUSTED_KEYS="$other" "$RUNIX" narinfo verify "$app_ni"
printf 'trusted-public-keys = %s\n' "$other" > "$T/runix.conf"
printf 'extra-trusted-public-keys = %s\n' "$key" >> "$T/runix.conf"
ok "verify uses the config file's extra-trusted-public-keys" env -u RUNIX_TRUSTED_KEYS RUNIX_CONFIG="$T/runix.conf" "$RUNIX" narinfo verify "$app_ni"
printf 'trusted-public-keys = %s\n' "$key" > "$T/runix1.conf"
ok "verify uses the config file's trusted-public-keys" env -u RUNIX_TRUSTED_KEYS RUNIX_CONFIG="$T/runix1.conf" "$RUNIX" narinfo verify "$app_ni"
fails "narinfo sign with the public key file says so" 1 "runix narinfo sign: '$T/pk' is a public key; sign with the secret key file" "$RUNIX" narinfo sign -k "$T/pk" "$app_ni"
ok "narinfo sign with the secret key file still signs" bash -c '"$RUNIX" narinfo sign -k "$1" "$2" | grep -q "^Sig: runix-it-1:"' _ "$T/sk" "$app_ni"
fails "a bad RUNIX_TRUSTED_KEYS is reported (exit 2, as a bad option value)" 2 "RUNIX_TRUSTED_KEYS: trusted key 'garbage'" env RUNIX_TRUSTED_KEYS=garbage "$RUNIX" narinfo verify "$app_ni"

# Change one byte of the signature, of the NarHash and of a reference.
flip() { # flip FILE FIELD: change one character of FIELD's value
  python3 - "$1" "$2" <<'PY'
import sys
path, field = sys.argv[1], sys.argv[2]
lines = open(path).read().split("\n")
for i, l in enumerate(lines):
    if l.startswith(field + ": "):
        k, v = l.split(": ", 1)
        if field == "Sig":
            name, b64 = v.split(":", 1)
            pos = 10
            c = b64[pos]
            b64 = b64[:pos] + ("A" if c != "A" else "B") + b64[pos + 1:]
            v = name + ":" + b64
        elif field == "NarHash":
            pos = len("sha256:") + 5
            c = v[pos]
            v = v[:pos] + ("0" if c != "0" else "1") + v[pos + 1:]
        elif field == "References":
            # change a character in the name part of the first reference
            refs = v.split(" ")
            r = refs[0]
            refs[0] = r[:-1] + ("x" if r[-1] != "x" else "y")
            v = " ".join(refs)
        lines[i] = k + ": " + v
        break
else:
    sys.exit("no field " + field)
open(path, "w").write("\n".join(lines))
PY
}
for field in Sig NarHash References; do
  cp "$app_ni" "$T/bad-$field.narinfo"
  flip "$T/bad-$field.narinfo" "$field"
  ok "changing $field changes the file" bash -c '! cmp -s "$1" "$2"' _ "$app_ni" "$T/bad-$field.narinfo"
  fails "a changed byte in $field is refused" 1 "does not verify" "$RUNIX" narinfo verify --trusted-key "$key" "$T/bad-$field.narinfo"
done

# Nix itself agrees with the untampered file and refuses the tampered ones.
mkdir -p "$T/nixcheck"
printf 'StoreDir: /nix/store\n' > "$T/nixcheck/nix-cache-info"
cp "$T/bad-Sig.narinfo" "$T/nixcheck/$(basename "$app_ni")"
# Refused as untrusted (status bit 2), not for some other reason (a corrupt file, a bad option).
fails "oracle: nix store verify also refuses the changed signature" 2 "path '$app' is untrusted" \
  nix store verify --store "file://$T/nixcheck" --no-contents --trusted-public-keys "$key" "$app"
cp "$app_ni" "$T/nixcheck/"
ok "oracle: nix store verify accepts the original" nix store verify --store "file://$T/nixcheck" --no-contents --trusted-public-keys "$key" "$app"

# Unsigned and malformed narinfos.
grep -v '^Sig:' "$app_ni" > "$T/unsigned.narinfo"
fails "an unsigned narinfo is refused" 1 "is not signed" "$RUNIX" narinfo verify --trusted-key "$key" "$T/unsigned.narinfo"
sed 's/^NarSize: .*/NarSize: 0/' "$app_ni" > "$T/zero.narinfo"
fails "NarSize 0 is refused" 1 "NarSize" "$RUNIX" narinfo verify --trusted-key "$key" "$T/zero.narinfo"
ok "narinfo verify reads standard input" bash -c '"$RUNIX" narinfo verify --trusted-key "$1" - < "$2"' _ "$key" "$app_ni"

# Third-party vectors through the command line.
V=$RUNIX_TESTDATA/narinfo
ok "net-tools verifies with the default cache.nixos.org key" "$RUNIX" narinfo verify "$V/go-nix/net-tools.narinfo"
fails "go-nix's edited net-tools narinfo is refused" 1 "does not verify" "$RUNIX" narinfo verify "$V/go-nix/net-tools-uncompressed.narinfo"
fails "gcc with unsorted references is refused as Nix does" 1 "does not verify" "$RUNIX" narinfo verify "$V/nix-compat/gcc-3.4.6-references-out-of-order.narinfo"
fails "negative NarSize is refused" 1 "NarSize" "$RUNIX" narinfo verify "$V/zombiezen-go-nix/hello-negative-narsize.narinfo"

done_testing
