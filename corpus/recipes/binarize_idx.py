#!/usr/bin/env python3
"""Binarize a grey-level IDX3 file the way our binarized MNIST was made: every pixel
sampled once as Bernoulli(v/255), 1 = ink. Deterministic: a fixed seed per file.

usage: binarize_idx.py IN.idx3-ubyte.gz OUT.idx3-ubyte.gz SEED

Fashion-MNIST comes from Debian's `dataset-fashion-mnist` package; with FASHION the
folder where it installs its IDX files (`dpkg -L dataset-fashion-mnist` lists them):
  binarize_idx.py "$FASHION"/t10k-images-idx3-ubyte.gz \
      corpus/fashion-mnist/test-images.idx3-ubyte.gz 2
  binarize_idx.py "$FASHION"/train-images-idx3-ubyte.gz \
      corpus/fashion-mnist/train-images.idx3-ubyte.gz 1
"""
import gzip
import random
import struct
import sys


def main(src, dst, seed):
    raw = gzip.open(src, "rb").read()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != 0x803:
        sys.exit(f"{src}: not an IDX3 unsigned-byte file")
    rng = random.Random(int(seed))
    # One uniform draw per pixel, in file order: ink when it falls below v/255.
    body = bytes(1 if rng.random() < v / 255 else 0 for v in raw[16 : 16 + count * rows * cols])
    with gzip.GzipFile(dst, "wb", mtime=0) as out:
        out.write(struct.pack(">IIII", magic, count, rows, cols) + body)


if __name__ == "__main__":
    main(*sys.argv[1:4])
