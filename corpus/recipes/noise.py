#!/usr/bin/env python3
"""Noise, to show that nothing expands: images whose pixels are independent coin flips.
Deterministic (fixed seeds). Standard library only.

usage: noise.py OUT_DIR
writes OUT_DIR/random-28/000.pbm … 199.pbm   200 images of 28 × 28, P(ink) = 1/2
       OUT_DIR/random-28.pbm                 the same 200 stacked into one 28 × 5600 page
       OUT_DIR/random-page.pbm               1000 × 1000, P(ink) = 1/2
       OUT_DIR/sparse-page.pbm               1000 × 1000, P(ink) = 1/20
       OUT_DIR/white-page.pbm                1000 × 1000, no ink
"""
import math
import os
import random
import sys


def raster(width, height, rng, p_ink):
    stride = (width + 7) // 8
    out = bytearray()
    for _ in range(height):
        row = bytearray(stride)
        for x in range(width):
            if rng.random() < p_ink:
                row[x // 8] |= 0x80 >> (x % 8)
        out += row
    return bytes(out)


def write_pbm(path, width, height, pixels):
    with open(path, "wb") as f:
        f.write(b"P4\n%d %d\n" % (width, height) + pixels)


def main():
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "random-28"), exist_ok=True)
    rng = random.Random(1)
    small = [raster(28, 28, rng, 0.5) for _ in range(200)]
    for i, pixels in enumerate(small):
        write_pbm(os.path.join(out, "random-28", f"{i:03}.pbm"), 28, 28, pixels)
    write_pbm(os.path.join(out, "random-28.pbm"), 28, 28 * 200, b"".join(small))
    page = 1000, 1000
    write_pbm(os.path.join(out, "random-page.pbm"), *page, raster(*page, random.Random(2), 0.5))
    write_pbm(os.path.join(out, "sparse-page.pbm"), *page, raster(*page, random.Random(3), 0.05))
    write_pbm(os.path.join(out, "white-page.pbm"), *page, raster(*page, random.Random(4), 0.0))
    h = -(0.05 * math.log2(0.05) + 0.95 * math.log2(0.95))
    print(f"sparse-page: entropy {h * 1e6 / 8:.0f} bytes; random pages: {1e6 / 8:.0f} bytes")


if __name__ == "__main__":
    main()
