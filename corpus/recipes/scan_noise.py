#!/usr/bin/env python3
"""Makes a rendered bi-level page look scanned: a small rotation, ragged glyph edges and
speckle. Standard library only.

usage: scan_noise.py IN.pbm OUT.pbm SEED [ANGLE_DEGREES]
"""
import math
import random
import sys

# Each pixel on an ink/paper border flips with this probability; this fraction of all
# pixels are flipped at random places.
EDGE_FLIP = 0.06
SPECKLE = 2e-5

UNPACK = [bytes((b >> (7 - i)) & 1 for i in range(8)) for b in range(256)]


def read_pbm(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    assert fields[0] == b"P4", "P4 only"
    width, height = int(fields[1]), int(fields[2])
    pos += 1
    stride = (width + 7) // 8
    rows = []
    for y in range(height):
        packed = data[pos + y * stride:pos + (y + 1) * stride]
        rows.append(bytearray(b"".join(UNPACK[b] for b in packed)[:width]))
    return width, height, rows


def write_pbm(path, width, rows):
    out = bytearray(b"P4\n%d %d\n" % (width, len(rows)))
    for r in rows:
        padded = bytes(r) + bytes(-len(r) % 8)
        out += bytes(
            sum(padded[i + k] << (7 - k) for k in range(8)) for i in range(0, len(padded), 8)
        )
    open(path, "wb").write(out)


def rotate(width, height, rows, degrees):
    """Rotation by two shears (rows shifted, then bands of columns), paper outside."""
    t = math.tan(math.radians(degrees))
    sheared = []
    for y, r in enumerate(rows):
        s = round((y - height / 2) * t)
        if s >= 0:
            sheared.append(bytearray(bytes(s) + r[:width - s]))
        else:
            sheared.append(bytearray(r[-s:] + bytes(-s)))
    out = [bytearray(width) for _ in range(height)]
    x = 0
    while x < width:
        s = round((x - width / 2) * -t)
        end = x
        while end < width and round((end - width / 2) * -t) == s:
            end += 1
        for y in range(height):
            src = y - s
            if 0 <= src < height:
                out[y][x:end] = sheared[src][x:end]
        x = end
    return out


def on_border(r, below, x):
    """Whether pixel x of row r differs from its right or lower neighbour."""
    return r[x] != r[x + 1] or r[x] != below[x]


def roughen(width, rows, rng, edge=EDGE_FLIP, speckle=SPECKLE):
    """Flips pixels on ink/paper borders with probability `edge`, and scattered ones."""
    for y in range(len(rows) - 1):
        r, below = rows[y], rows[y + 1]
        flips = [x for x in range(width - 1) if on_border(r, below, x) and rng.random() < edge]
        for x in flips:
            r[x] ^= 1
    n = int(width * len(rows) * speckle)
    for _ in range(n):
        rows[rng.randrange(len(rows))][rng.randrange(width)] ^= 1


def main():
    src, dst, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    angle = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    rng = random.Random(seed)
    width, height, rows = read_pbm(src)
    if angle:
        rows = rotate(width, height, rows, angle)
    roughen(width, rows, rng)
    write_pbm(dst, width, rows)


if __name__ == "__main__":
    main()
