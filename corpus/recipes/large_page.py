#!/usr/bin/env python3
"""A 5000 x 5000 page (25 Mpx) for measuring peak memory on the largest pages the README
promises: the rows of feyn.pbm, then those of scots-frag.pbm up to the 5,000th, each at
the left, white to the right.

usage: large_page.py SCANS_DIR OUT.pbm   (SCANS_DIR holds the real scans as PBM P4)
"""
import sys

SIDE = 5000


def read_p4(path):
    data = open(path, "rb").read()
    fields, at = [], 0
    while len(fields) < 3:
        while data[at : at + 1].isspace():
            at += 1
        if data[at : at + 1] == b"#":
            at = data.index(b"\n", at)
            continue
        end = at
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[at:end])
        at = end
    if fields[0] != b"P4":
        sys.exit(f"{path}: not a binary PBM (P4)")
    width, height = int(fields[1]), int(fields[2])
    stride = (width + 7) // 8
    body = data[at + 1 : at + 1 + stride * height]
    return width, [body[k * stride : (k + 1) * stride] for k in range(height)]


def widened(row, width):
    """The row at the left of a SIDE-pixel row, its padding bits cleared."""
    row = bytearray(row[: (min(width, SIDE) + 7) // 8])
    spare = 8 * len(row) - min(width, SIDE)
    if spare:
        row[-1] &= 0xFF << spare & 0xFF
    return bytes(row) + bytes(SIDE // 8 - len(row))


def main():
    scans, out = sys.argv[1], sys.argv[2]
    rows = []
    for name in ("feyn.pbm", "scots-frag.pbm"):
        width, source = read_p4(f"{scans}/{name}")
        rows += [widened(r, width) for r in source[: SIDE - len(rows)]]
    with open(out, "wb") as f:
        f.write(b"P4\n%d %d\n" % (SIDE, SIDE) + b"".join(rows))


if __name__ == "__main__":
    main()
