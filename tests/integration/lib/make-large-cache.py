#!/usr/bin/env python3
"""Write a signed binary cache of N tiny store paths, in the form Nix writes.

    make-large-cache.py DIR N

DIR gets nix-cache-info, N narinfos, their NARs (uncompressed, one small
file each), key.pub (NAME:KEY, for --trusted-key), top (the path whose
closure is all N) and closure (all N paths).  Path i references 2i+1 and
2i+2 (a binary tree, 13 levels for 5,000 paths) and the last path, which
every path shares like a libc.  Store path hashes are random but valid
nix32; the narinfos are signed as Nix signs them (ed25519 over
"1;path;narHash;narSize;refs").  Nix would accept every path: only the
derivations behind them are missing.
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization

ALPHABET = "0123456789abcdfghijklmnpqrsvwxyz"


def nix32(b):
    n = (len(b) * 8 - 1) // 5 + 1
    out = []
    for i in range(n - 1, -1, -1):
        bit = i * 5
        j, k = bit // 8, bit % 8
        c = b[j] >> k
        if j + 1 < len(b):
            c |= b[j + 1] << (8 - k)
        out.append(ALPHABET[c & 0x1F])
    return "".join(out)


def nar_str(s):
    return struct.pack("<Q", len(s)) + s + b"\0" * (-len(s) % 8)


def nar_file(data):
    return b"".join(nar_str(x) for x in
                    (b"nix-archive-1", b"(", b"type", b"regular", b"contents", data, b")"))


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out + "/nar")
    seed = hashlib.sha256(b"runix-large-cache").digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    name = "runix-large-1"
    with open(out + "/key.pub", "w") as f:
        f.write(f"{name}:{base64.b64encode(pub).decode()}\n")
    with open(out + "/nix-cache-info", "w") as f:
        f.write("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n")
    bases = [nix32(hashlib.sha256(b"large %d" % i).digest()[:20]) + f"-p{i}" for i in range(n)]
    for i in range(n):
        refs = {r for r in (2 * i + 1, 2 * i + 2, n - 1) if r < n and r != i}
        refbases = sorted(bases[r] for r in refs)
        nar = nar_file(b"path %d\n" % i)
        h = "sha256:" + nix32(hashlib.sha256(nar).digest())
        fh = h.split(":")[1]
        with open(f"{out}/nar/{fh}.nar", "wb") as f:
            f.write(nar)
        path = "/nix/store/" + bases[i]
        fp = f"1;{path};{h};{len(nar)};" + ",".join("/nix/store/" + r for r in refbases)
        sig = base64.b64encode(sk.sign(fp.encode())).decode()
        with open(f"{out}/{bases[i][:32]}.narinfo", "w") as f:
            f.write(f"StorePath: {path}\nURL: nar/{fh}.nar\nCompression: none\n"
                    f"FileHash: {h}\nFileSize: {len(nar)}\nNarHash: {h}\nNarSize: {len(nar)}\n"
                    f"References: {' '.join(refbases)}\nSig: {name}:{sig}\n")
    with open(out + "/top", "w") as f:
        f.write("/nix/store/" + bases[0] + "\n")
    with open(out + "/closure", "w") as f:
        f.writelines(f"/nix/store/{b}\n" for b in sorted(bases))


main()
