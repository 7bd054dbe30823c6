#!/usr/bin/env python3
"""Training images for a 28×28 OMNIGLOT model, augmented from the 105×105 originals.

usage: omniglot_augment.py OMNIGLOT105_TRAIN.idx3-ubyte.gz OMNIGLOT28_TRAIN.idx3-ubyte.gz
                           HELD_OUT COPIES OUT.idx3-ubyte.gz [SEED]

The 4,840 training characters are few for a VLAE, which learns them by heart within an
hour. Handwriting varies by small turns, stretches and slants, so each character drawn
again with such a change is a plausible new character. Every image but the last
HELD_OUT of the 105×105 training file is drawn COPIES times, each turned by up to 10
degrees, scaled by 0.9 to 1.1 (each axis a further 5% either way), slanted by up to 0.1
and moved by up to 4 pixels, then reduced to 28×28 by area average, ink where it covers
at least half of a pixel (as the 28×28 set was made; this reduction differs from that
set's in about 6 of 784 pixels an image). Characters are never mirrored. The output
holds, in order: the augmented copies, shuffled; the 28×28 training file's own images
but the last HELD_OUT; then its last HELD_OUT images unchanged, so that `vlae-zip train
OUT --validation-images HELD_OUT` validates on unaltered characters that it never
trained on, of an alphabet of their own.
"""
import gzip
import math
import random
import struct
import sys
from multiprocessing import Pool

BIG, SMALL = 105, 28


def load(path):
    data = gzip.open(path).read()
    magic, n, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 0x803:
        sys.exit(f"{path}: not an IDX file of images")
    size = rows * cols
    return rows, cols, [data[16 + k * size:16 + (k + 1) * size] for k in range(n)]


def overlaps():
    """For each output row (or column), the input rows it covers, with their share."""
    scale = BIG / SMALL
    cells = []
    for i in range(SMALL):
        lo, hi = i * scale, (i + 1) * scale
        cells.append([(k, min(hi, k + 1) - max(lo, k))
                      for k in range(int(lo), min(BIG, int(hi) + 1))
                      if min(hi, k + 1) - max(lo, k) > 0])
    return cells


CELLS = overlaps()


def reduce(image):
    area = (BIG / SMALL) ** 2
    out = bytearray(SMALL * SMALL)
    for i, rows in enumerate(CELLS):
        for j, cols in enumerate(CELLS):
            ink = sum(wy * wx for y, wy in rows for x, wx in cols if image[y * BIG + x])
            out[i * SMALL + j] = 1 if ink >= 0.5 * area - 1e-9 else 0
    return bytes(out)


def transformed(image, rng):
    """The image under a random small affine change, sampled at its nearest pixels."""
    turn = math.radians(rng.uniform(-10, 10))
    scale = rng.uniform(0.9, 1.1)
    sx, sy = scale * rng.uniform(0.95, 1.05), scale * rng.uniform(0.95, 1.05)
    slant = rng.uniform(-0.1, 0.1)
    tx, ty = rng.uniform(-4, 4), rng.uniform(-4, 4)
    c, s = math.cos(turn), math.sin(turn)
    # Forward: p' = R · S · H · (p − centre) + centre + t; sampled by its inverse.
    a, b = c * sx, c * sx * slant - s * sy
    d, e = s * sx, s * sx * slant + c * sy
    det = a * e - b * d
    ia, ib, id_, ie = e / det, -b / det, -d / det, a / det
    centre = (BIG - 1) / 2
    out = bytearray(BIG * BIG)
    for y in range(BIG):
        dy = y - centre - ty
        for x in range(BIG):
            dx = x - centre - tx
            u = round(ia * dx + ib * dy + centre)
            v = round(id_ * dx + ie * dy + centre)
            if 0 <= u < BIG and 0 <= v < BIG and image[v * BIG + u]:
                out[y * BIG + x] = 1
    return bytes(out)


def copies(job):
    index, image, count, seed = job
    rng = random.Random(seed * 1_000_003 + index)
    return [reduce(transformed(image, rng)) for _ in range(count)]


def main():
    if len(sys.argv) not in (6, 7):
        sys.exit(__doc__)
    big_path, small_path, held, count, out_path = sys.argv[1:6]
    held, count = int(held), int(count)
    seed = int(sys.argv[6]) if len(sys.argv) == 7 else 1
    rows, cols, big = load(big_path)
    srows, scols, small = load(small_path)
    if (rows, cols, srows, scols) != (BIG, BIG, SMALL, SMALL) or len(big) != len(small):
        sys.exit("expected the 105×105 and 28×28 training files of the same images")
    train = big[:len(big) - held]
    with Pool() as pool:
        made = [c for cs in pool.map(copies, [(k, im, count, seed) for k, im in enumerate(train)],
                                     chunksize=16) for c in cs]
    random.Random(seed).shuffle(made)
    images = made + small[:len(small) - held] + small[len(small) - held:]
    with gzip.open(out_path, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), SMALL, SMALL))
        for image in images:
            f.write(image)
    print(f"{out_path}: {len(made)} augmented, {len(small) - held} original training and "
          f"{held} held-out images, 28×28")


if __name__ == "__main__":
    main()
