#!/usr/bin/env python3
"""Exact repeats, which page mixing's contexts do not reach and an LZ coder does: pages
of one small tile over and over, and a folder of copies of one page. Deterministic (fixed
seeds). Standard library only.

usage: repeats.py OUT_DIR [PAGE.pbm]
writes OUT_DIR/dots-48.pbm     1024 × 1024: one 48 × 48 tile of sparse dots (P(ink) = 1/50)
       OUT_DIR/dots-200x64.pbm 1024 × 1024: one 200 × 64 tile of the same dots
       OUT_DIR/rows-40.pbm     1275 × 1600: one 1275 × 40 strip of random bars and dots
                               (a ruled form's line), 40 times
       OUT_DIR/copies/a.pbm … h.pbm   eight copies of PAGE.pbm, when it is given
"""
import os
import random
import shutil
import sys


def write_pbm(path, width, height, ink):
    """`ink(x, y)` is 1 for a black pixel."""
    stride = (width + 7) // 8
    out = bytearray()
    for y in range(height):
        row = bytearray(stride)
        for x in range(width):
            if ink(x, y):
                row[x // 8] |= 0x80 >> (x % 8)
        out += row
    with open(path, "wb") as f:
        f.write(b"P4\n%d %d\n" % (width, height) + bytes(out))


def tiled(path, width, height, tile_w, tile_h, p_ink, seed):
    rng = random.Random(seed)
    tile = [[rng.random() < p_ink for _ in range(tile_w)] for _ in range(tile_h)]
    write_pbm(path, width, height, lambda x, y: tile[y % tile_h][x % tile_w])


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    tiled(os.path.join(out, "dots-48.pbm"), 1024, 1024, 48, 48, 1 / 50, 1)
    tiled(os.path.join(out, "dots-200x64.pbm"), 1024, 1024, 200, 64, 1 / 50, 2)
    # A form's line: bars (ruling) and a few dots (print), the same strip 40 times.
    rng = random.Random(3)
    bars = [rng.random() < 0.3 for _ in range(1275)]
    dots = [[rng.random() < 0.05 for _ in range(1275)] for _ in range(40)]
    write_pbm(
        os.path.join(out, "rows-40.pbm"),
        1275,
        1600,
        lambda x, y: (y % 40 in (0, 1) and bars[x]) or dots[y % 40][x],
    )
    if len(sys.argv) > 2:
        copies = os.path.join(out, "copies")
        os.makedirs(copies, exist_ok=True)
        for name in "abcdefgh":
            shutil.copyfile(sys.argv[2], os.path.join(copies, name + ".pbm"))


if __name__ == "__main__":
    main()
