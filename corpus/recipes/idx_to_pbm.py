#!/usr/bin/env python3
"""Writes the images of a bi-level IDX3 file (optionally gzipped; any rows × cols; pixel
bytes 0 or 1, 1 = ink) as PBM (P4) files. Standard library only.

usage: idx_to_pbm.py IDX OUT_DIR [N]          one file per image: OUT_DIR/00000.pbm, …
       idx_to_pbm.py IDX OUT.pbm [N] --stack  the first N images stacked into one page,
                                              cols × (rows·N), as the classical coders
                                              are measured on small images

`vlae-zip extract` does the first for 28 × 28 files; this one takes any size (the 105 × 105
OMNIGLOT files, for example).
"""
import gzip
import os
import struct
import sys


def read_idx(path):
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x803:
        sys.exit(f"{path}: not an IDX3 unsigned-byte file")
    body = raw[16:]
    if len(body) != count * rows * cols:
        sys.exit(f"{path}: header promises {count} images of {rows}×{cols}")
    if any(b > 1 for b in body):
        sys.exit(f"{path}: pixel values other than 0 and 1")
    return count, rows, cols, body


def pack(pixels, cols):
    """Rows of 0/1 bytes → PBM raster rows, each padded to a whole byte."""
    pad = bytes(-cols % 8)
    out = bytearray()
    for r in range(0, len(pixels), cols):
        row = pixels[r:r + cols] + pad
        out += bytes(
            sum(row[i + k] << (7 - k) for k in range(8)) for i in range(0, len(row), 8)
        )
    return bytes(out)


def main():
    args = [a for a in sys.argv[1:] if a != "--stack"]
    stack = len(args) < len(sys.argv) - 1
    src, dst = args[0], args[1]
    count, rows, cols, body = read_idx(src)
    n = min(int(args[2]), count) if len(args) > 2 else count
    size = rows * cols
    if stack:
        with open(dst, "wb") as f:
            f.write(b"P4\n%d %d\n" % (cols, rows * n) + pack(body[:n * size], cols))
        return
    os.makedirs(dst, exist_ok=True)
    width = len(str(count - 1))  # as `vlae-zip extract` names them
    for i in range(n):
        with open(os.path.join(dst, f"{i:0{max(width, 5)}}.pbm"), "wb") as f:
            f.write(b"P4\n%d %d\n" % (cols, rows) + pack(body[i * size:(i + 1) * size], cols))


if __name__ == "__main__":
    main()
