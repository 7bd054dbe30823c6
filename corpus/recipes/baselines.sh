#!/usr/bin/env bash
# Sizes of the first N images of an IDX3 file under vlae-zip and classical coders, as the
# README reports them: JBIG (jbigkit's `pbmtojbg -q`, Debian package jbigkit-bin) on the
# images stacked into one 28 × 28N page, so that its contexts learn across images; xz -9e
# on the packed bits; vlae-zip on the folder of PBM files (whole archive).
# usage: baselines.sh IDX N [vlae-zip options…]
set -euo pipefail
idx=$1 n=$2; shift 2
bin=${VLAE_ZIP:-target/release/vlae-zip}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$bin" extract "$idx" -o "$work/images" --limit "$n" -q
python3 - "$idx" "$n" "$work" <<'PY'
import gzip, struct, sys
idx, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
raw = gzip.open(idx).read() if idx.endswith(".gz") else open(idx, "rb").read()
_, count, rows, cols = struct.unpack(">IIII", raw[:16])
px = raw[16:16 + n * rows * cols]
def pack(bits, width):
    out = bytearray()
    for r in range(0, len(bits), width):
        row = bits[r:r + width]
        for b in range(0, width, 8):
            byte = 0
            for i, v in enumerate(row[b:b + 8]):
                byte |= v << (7 - i)
            out.append(byte)
    return bytes(out)
open(f"{work}/stack.pbm", "wb").write(b"P4\n%d %d\n" % (cols, rows * n) + pack(px, cols))
open(f"{work}/packed.bin", "wb").write(pack(px, cols))
PY
pbmtojbg -q "$work/stack.pbm" "$work/stack.jbg"
xz -9e -k -c "$work/packed.bin" > "$work/packed.xz"
"$bin" compress "$work/images" -o "$work/x.vlz" -q "$@"
for f in packed.bin stack.jbg packed.xz x.vlz; do
    bytes=$(stat -c %s "$work/$f")
    printf '%-10s %9d bytes %9.1f bits/image\n' "$f" "$bytes" "$(echo "$bytes * 8 / $n" | bc -l)"
done
"$bin" info "$work/x.vlz" | grep lanes
