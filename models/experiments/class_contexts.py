#!/usr/bin/env python3
"""Bits that tile classes (model / all white / all black, format-spec.md §3.2) cost on
pages under adaptive Krichevsky–Trofimov counts, with one set of counts (format version 3)
against counts per context: the classes above and left (version 4), and richer contexts
that were measured and not taken. Each page is one lane of 32×32 tiles.

usage: class_contexts.py PAGE.pbm…    (binary P4 pages)
"""
import math
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'corpus', 'recipes'))
from scan_noise import read_pbm  # noqa: E402  (rows of 0/1 bytes)

T = 32


def classes(w, h, rows):
    """0 model, 1 white, 2 black, per tile row and column."""
    grid = []
    for ty in range(0, h, T):
        line = []
        for tx in range(0, w, T):
            ink = paper = False
            for y in range(ty, min(ty + T, h)):
                bits = rows[y][tx:min(tx + T, w)]
                ink |= 1 in bits
                paper |= 0 in bits
                if ink and paper:
                    break
            line.append(0 if ink and paper else (2 if ink else 1))
        grid.append(line)
    return grid


def cost(grid, context):
    counts, bits = {}, 0.0
    for i, line in enumerate(grid):
        for j, k in enumerate(line):
            n = counts.setdefault(context(i, j), [0, 0, 0])
            bits -= math.log2((2 * n[k] + 1) / sum(2 * c + 1 for c in n))
            n[k] += 1
    return bits


totals = {}
for path in sys.argv[1:]:
    w, h, rows = read_pbm(path)
    g = classes(w, h, rows)

    def at(i, j):
        return g[i][j] if 0 <= i < len(g) and 0 <= j < len(g[i]) else 1

    def ink_above(i, j):
        return i > 0 and 1 in rows[i * T - 1][j * T:min(j * T + T, w)]

    def ink_left(i, j):
        return j > 0 and any(rows[y][j * T - 1] for y in range(i * T, min(i * T + T, h)))

    results = {
        'one set (v3)': cost(g, lambda i, j: 0),
        'above, left (v4)': cost(g, lambda i, j: (at(i - 1, j), at(i, j - 1))),
        '+ above-right, above-left': cost(g, lambda i, j: (at(i - 1, j), at(i, j - 1), at(i - 1, j + 1), at(i - 1, j - 1))),
        '+ ink just above and left': cost(g, lambda i, j: (at(i - 1, j), at(i, j - 1), ink_above(i, j), ink_left(i, j))),
    }
    print(path.split('/')[-1], {k: round(v) for k, v in results.items()})
    for k, v in results.items():
        totals[k] = totals.get(k, 0) + v
print('all pages, bits:', {k: round(v) for k, v in totals.items()})
