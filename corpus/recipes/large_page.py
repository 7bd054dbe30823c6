#!/usr/bin/env python3
"""A 5000 x 5000 page (25 Mpx) for measuring peak memory on the largest pages the README
promises: the rows of feyn.pbm, then those of scots-frag.pbm up to the 5,000th, each at
the left, white to the right.

usage: large_page.py SCANS_DIR OUT.pbm   (SCANS_DIR holds the real scans as PBM P4)
"""
import sys

from scan_noise import read_pbm, write_pbm

SIDE = 5000


def main():
    scans, out = sys.argv[1], sys.argv[2]
    rows = []
    for name in ("feyn.pbm", "scots-frag.pbm"):
        width, _, source = read_pbm(f"{scans}/{name}")
        for row in source[: SIDE - len(rows)]:
            rows.append(row[:SIDE] + bytes(max(SIDE - width, 0)))
    write_pbm(out, SIDE, rows)


if __name__ == "__main__":
    main()
