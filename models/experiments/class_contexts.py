#!/usr/bin/env python3
"""Bits that tile classes (model / all white / all black, format-spec.md §3.2) cost on
pages under adaptive Krichevsky–Trofimov counts, with one set of counts (format version 3)
against counts per context: the classes above and left (version 4), and richer contexts
that were measured and not taken. Each page is one lane of 32×32 tiles.

usage: class_contexts.py PAGE.pbm…    (binary P4 pages)
"""
import math
import sys

T = 32


def read_pbm(path):
    data = open(path, 'rb').read()
    tokens, i = [], 0
    while len(tokens) < 3:
        while data[i:i + 1].isspace():
            i += 1
        if data[i:i + 1] == b'#':
            while data[i:i + 1] != b'\n':
                i += 1
            continue
        j = i
        while not data[j:j + 1].isspace():
            j += 1
        tokens.append(data[i:j])
        i = j
    i += 1
    assert tokens[0] == b'P4', 'binary PBM only'
    w, h = int(tokens[1]), int(tokens[2])
    row_bytes = (w + 7) // 8
    return w, h, [data[i + r * row_bytes:i + (r + 1) * row_bytes] for r in range(h)]


def pixel(rows, y, x):
    return (rows[y][x >> 3] >> (7 - (x & 7))) & 1


def classes(w, h, rows):
    """0 model, 1 white, 2 black, per tile row and column."""
    grid = []
    for ty in range(0, h, T):
        line = []
        for tx in range(0, w, T):
            ink = paper = False
            for y in range(ty, min(ty + T, h)):
                bits = [pixel(rows, y, x) for x in range(tx, min(tx + T, w))]
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
        return i > 0 and any(pixel(rows, i * T - 1, x) for x in range(j * T, min(j * T + T, w)))

    def ink_left(i, j):
        return j > 0 and any(pixel(rows, y, j * T - 1) for y in range(i * T, min(i * T + T, h)))

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
