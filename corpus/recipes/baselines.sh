#!/usr/bin/env bash
# Sizes of the first N images of an IDX3 file (any rows × cols) under vlae-zip and the
# classical coders, as the README reports them. The classical coders see the images
# stacked into one cols × (rows·N) page, so that their adaptive contexts learn across
# images; vlae-zip compresses the folder of N PBM files (whole archive: header, names,
# lanes).
#   JBIG1: jbigkit's `pbmtojbg -q` (Debian package jbigkit-bin), if on PATH
#   xz:    `xz -9e` on the stacked PBM file
#   JBIG2: with JBIG2=path to jbig2enc's `jbig2`: `jbig2 PAGE.pbm` (generic region coding)
#   paq8px: with PAQ8PX=path to a paq8px binary: `paq8px -8 PAGE.pbm`
# The comparison tools are not part of this repository; build or install them yourself.
# usage: [JBIG2=bin] [PAQ8PX=bin] baselines.sh IDX N [vlae-zip compress options…]
set -euo pipefail
idx=$1 n=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
bin=${VLAE_ZIP:-target/release/vlae-zip}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python3 "$here/idx_to_pbm.py" "$idx" "$work/images" "$n"
python3 "$here/idx_to_pbm.py" "$idx" "$work/stack.pbm" "$n" --stack
n=$(ls "$work/images" | wc -l)

report() { # NAME BYTES
    printf '%-10s %9d bytes %9.1f bits/image\n' "$1" "$2" "$(echo "$2 * 8 / $n" | bc -l)"
}
if command -v pbmtojbg > /dev/null; then
    report JBIG1 "$(pbmtojbg -q < "$work/stack.pbm" | wc -c)"
fi
if [[ -n "${JBIG2:-}" ]]; then
    "$JBIG2" "$work/stack.pbm" > "$work/stack.jb2"
    report JBIG2 "$(stat -c %s "$work/stack.jb2")"
fi
if [[ -n "${PAQ8PX:-}" ]]; then
    "$PAQ8PX" -8 "$work/stack.pbm" "$work/p.paq" > /dev/null
    report paq8px "$(cat "$work"/p.paq* | wc -c)"
fi
report xz "$(xz -9e -c "$work/stack.pbm" | wc -c)"
"$bin" compress "$work/images" -o "$work/x.vlz" -q "$@"
report vlae-zip "$(stat -c %s "$work/x.vlz")"
"$bin" info "$work/x.vlz" | grep lanes
