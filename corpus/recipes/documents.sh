#!/usr/bin/env bash
# The documents corpus: man pages installed on this machine, typeset by groff and rasterized
# by ghostscript into bi-level PBM pages, as a scanner would give them. Every document gets
# its own font family (groff's Times, Helvetica, Courier, New Century Schoolbook, Palatino,
# Bookman), size (8–14 pt) and resolution (150–400 dpi); every fourth one is roughened by
# scan_noise.py (a rotation under a degree, ragged edges, speckle).
# Training and test pages come from different documents.
# usage: documents.sh OUT_DIR      (writes OUT_DIR/train and OUT_DIR/test)
set -euo pipefail
out=$1
here=$(cd "$(dirname "$0")" && pwd)
fonts=(T H C N P BM)
sizes=(10 8 12 9 14 11)
dpis=(200 300 150 400 200 300)
train_docs=(bash git find grep awk tar ssh curl python3 perl man less xz gzip openssl ps
            top dpkg systemctl journalctl ld as objdump readelf)
test_docs=(strace groff make vim sed gs ls cp)

render() { # DIR INDEX DOC PAGES
    local dir=$1 i=$2 doc=$3 pages=$4
    local font=${fonts[$((i % 6))]} size=${sizes[$(((i / 2) % 6))]} dpi=${dpis[$(((i / 3 + i) % 6))]}
    local stem="$dir/$(printf %02d "$i")-$doc-$font$size-${dpi}dpi"
    zcat -f "$(man -w "$doc")" | groff -man -Tps -f"$font" -rS"$size" -P-pletter 2>/dev/null |
        gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=pbmraw -r"$dpi" -dTextAlphaBits=1 \
            -dGraphicsAlphaBits=1 -dLastPage="$pages" -sOutputFile="$stem-p%d.pbm" -
    if ((i % 4 == 3)); then
        for f in "$stem"-p*.pbm; do
            # Meant to be -0.6..0.6 degrees, but bc takes % at scale 2 (i % 7 is then
            # 0.01 or so), so every scan comes out at -0.58 to -0.60. Kept, so that the
            # recipe still makes the committed test pages.
            angle=$(echo "scale=2; ($i % 7 - 3) / 5" | bc)
            python3 "$here/scan_noise.py" "$f" "${f%.pbm}-scan.pbm" "$i" "$angle"
            rm "$f"
        done
    fi
}

mkdir -p "$out/train" "$out/test"
for i in "${!train_docs[@]}"; do render "$out/train" "$i" "${train_docs[$i]}" 3; done
for i in "${!test_docs[@]}"; do render "$out/test" "$i" "${test_docs[$i]}" 1; done
