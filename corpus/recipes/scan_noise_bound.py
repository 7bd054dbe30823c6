#!/usr/bin/env python3
"""How many bits scan_noise.py adds to a page that no coder can take back: the entropy of
its noise given the clean (rotated) page. Every ink/paper border pixel flips
independently with probability EDGE_FLIP, H(EDGE_FLIP) = 0.33 bits each, and the speckle
picks SPECKLE × pixels places at random. A scanned page costs at least this, plus whatever
its clean content costs beyond what the scan still shows of it. Standard library only.

usage: scan_noise_bound.py CLEAN.pbm ANGLE_DEGREES [ROTATED_OUT.pbm]
"""
import math
import sys

from scan_noise import EDGE_FLIP, SPECKLE, on_border, read_pbm, rotate, write_pbm


def main():
    width, height, rows = read_pbm(sys.argv[1])
    rows = rotate(width, height, rows, float(sys.argv[2]))
    if len(sys.argv) > 3:
        write_pbm(sys.argv[3], width, rows)
    border = sum(
        on_border(rows[y], rows[y + 1], x) for y in range(height - 1) for x in range(width - 1)
    )
    p = EDGE_FLIP
    edge_bits = border * -(p * math.log2(p) + (1 - p) * math.log2(1 - p))
    n = int(width * height * SPECKLE)
    speckle_bits = n * math.log2(width * height) - math.lgamma(n + 1) / math.log(2)
    print(
        f"{sys.argv[1]}: {width}x{height}, {border} border pixels: edge noise "
        f"{edge_bits / 8:.0f} bytes, speckle ({n} pixels) {speckle_bits / 8:.0f} bytes, "
        f"noise in all {(edge_bits + speckle_bits) / 8:.0f} bytes"
    )


if __name__ == "__main__":
    main()
