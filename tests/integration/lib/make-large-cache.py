#!/usr/bin/env python3
"""Write a signed binary cache of N tiny store paths, in the form Nix writes.

    make-large-cache.py DIR N [dag]

DIR is made once and kept: it is left as it is when its stamp (of this
script and the arguments) matches, else made anew beside it and renamed
into place.  DIR gets nix-cache-info, N narinfos, their NARs
(uncompressed, one small file each), key.pub (NAME:KEY, for
--trusted-key), top (the path whose closure is all N), closure (all N
paths) and closure.pT (the closure of each top path pT).

Path i references 2i+1 and 2i+2 (a binary tree, 13 levels for 5,000
paths) and the last path, which every path shares like a libc.  With
"dag", path i references instead three paths after it picked at random
(the same every time), and top lists paths 0 to 5, whose closures cross.
Store path hashes are random but valid nix32; the narinfos are signed as
Nix signs them (ed25519 over "1;path;narHash;narSize;refs").  Nix would
accept every path: only the derivations behind them are missing.
"""
import base64
import hashlib
import os
import random
import shutil
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
    final, n = sys.argv[1], int(sys.argv[2])
    dag = sys.argv[3:] == ["dag"]
    with open(__file__, "rb") as f:
        stamp = hashlib.sha256(f.read() + repr(sys.argv[2:]).encode()).hexdigest()
    try:
        with open(final + "/stamp") as f:
            if f.read().strip() == stamp:
                return
    except OSError:
        pass
    out = f"{final}.tmp.{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    generate(out, n, dag)
    with open(out + "/stamp", "w") as f:
        f.write(stamp + "\n")
    # Another run may have made it meanwhile: replace it (whole directories only).
    old = f"{final}.old.{os.getpid()}"
    if os.path.exists(final):
        os.rename(final, old)
    os.rename(out, final)
    shutil.rmtree(old, ignore_errors=True)


def generate(out, n, dag):
    rnd = random.Random(n)
    os.makedirs(out + "/nar")
    seed = hashlib.sha256(b"runix-large-cache").digest()
    sk = Ed25519PrivateKey.from_private_bytes(seed)
    pub = sk.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    name = "runix-large-1"
    with open(out + "/key.pub", "w") as f:
        f.write(f"{name}:{base64.b64encode(pub).decode()}\n")
    with open(out + "/nix-cache-info", "w") as f:
        f.write("StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n")
    allrefs = []
    bases = [nix32(hashlib.sha256(b"large %d" % i).digest()[:20]) + f"-p{i}" for i in range(n)]
    for i in range(n):
        if dag:
            refs = {rnd.randrange(i + 1, n) for _ in range(3)} if i + 1 < n else set()
        else:
            refs = {r for r in (2 * i + 1, 2 * i + 2, n - 1) if r < n and r != i}
        allrefs.append(refs)
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
        f.writelines(f"/nix/store/{bases[i]}\n" for i in range(6 if dag else 1))
    with open(out + "/closure", "w") as f:
        f.writelines(f"/nix/store/{b}\n" for b in sorted(bases))
    for t in range(6 if dag else 1):
        seen, todo = set(), [t]
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo.extend(allrefs[i])
        with open(f"{out}/closure.p{t}", "w") as f:
            f.writelines(f"/nix/store/{b}\n" for b in sorted(bases[i] for i in seen))


main()
