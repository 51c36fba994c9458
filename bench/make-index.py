#!/usr/bin/env python3
"""Write the frcode lines of a synthetic nix-index database (stdout).

    bench/make-index.py PACKAGES [SEED] | zstd -19 > lines.zst

PACKAGES packages laid out as nix-index-database's small index is (only
/bin/ entries, each package's files then its package line), with random
store hashes, one to four programs each, and every third package a
closure member (toplevel false).  Program "bench-needle" is in one package
only, near the end, so that a lookup reads the whole stream.
"""
import json
import random
import sys

n = int(sys.argv[1])
rng = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
out = sys.stdout.buffer
words = ["lib", "py", "go", "rs", "cli", "tool", "x", "gtk", "qt", "kde", "gnu", "net", "fs", "db"]


def diff(d):
    if abs(d) < 127:
        return bytes([d & 0xFF])
    return bytes([0x80, (d >> 8) & 0xFF, d & 0xFF])


for i in range(n):
    name = f"{rng.choice(words)}{rng.choice(words)}-{i}"
    progs = sorted({f"{name}{'' if k == 0 else '-' + rng.choice(words)}" for k in range(rng.randint(1, 4))})
    if i == n - 10:
        progs = ["bench-needle"]
    files = [("/bin/" + p, f"{rng.randint(100, 10**7)}x") for p in reversed(progs)]
    last, shared = b"", 0
    buf = bytearray()
    for path, meta in files:
        p = path.encode()
        s = 0
        while s < len(last) and s < len(p) and last[s] == p[s]:
            s += 1
        buf += meta.encode() + b"\0" + diff(s - shared) + p[s:] + b"\n"
        last, shared = p, s
    h = "".join(rng.choice(alphabet) for _ in range(32))
    pkg = {"store_dir": "/nix/store", "hash": h, "name": f"{name}-1.{i % 7}",
           "origin": {"attr": name, "output": "out", "toplevel": i % 3 != 2, "system": "x86_64-linux"}}
    buf += b"p\0" + diff(-shared) + json.dumps(pkg, separators=(",", ":")).encode() + b"\n"
    out.write(buf)
