#!/usr/bin/env python3
"""Write a C file defining one NUL-terminated char array per text file.

    embed-text.py OUT.c SYMBOL=FILE...

For text runix prints as it is (the completion scripts).
"""
import sys

out, pairs = sys.argv[1], sys.argv[2:]
lines = ["/* Made by scripts/embed-text.py; do not edit. */"]
for pair in pairs:
    sym, path = pair.split("=", 1)
    data = open(path, "rb").read()
    if b"\0" in data:
        sys.exit("%s: holds a NUL byte" % path)
    lines.append("extern const char %s[];" % sym)
    lines.append("const char %s[] = {" % sym)
    for i in range(0, len(data), 16):
        lines.append("    " + ", ".join("0x%02x" % b for b in data[i:i + 16]) + ",")
    lines.append("    0x00,")
    lines.append("};")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
