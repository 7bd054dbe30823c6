#!/usr/bin/env bash
# Renders man pages installed on this machine into bi-level PBM text pages, as a scanner
# would give them: groff typesets each page to PostScript, ghostscript rasterizes it at the
# given resolution with no anti-aliasing (Debian packages groff and ghostscript).
# usage: render_pages.sh OUT_DIR DPI FONT_SIZE_PT PAGES MAN_PAGE...
# e.g.   render_pages.sh pages-200 200 10 4 ls tar
set -euo pipefail
out=$1 dpi=$2 size=$3 pages=$4; shift 4
mkdir -p "$out"
for page in "$@"; do
    src=$(man -w "$page")
    zcat -f "$src" | groff -man -Tps -rS"$size" -P-pletter 2>/dev/null > "$out/$page.ps"
    gs -q -dNOPAUSE -dBATCH -dSAFER -sDEVICE=pbmraw -r"$dpi" -dTextAlphaBits=1 \
        -dGraphicsAlphaBits=1 -dLastPage="$pages" -sOutputFile="$out/$page-%02d.pbm" \
        "$out/$page.ps"
    rm "$out/$page.ps"
done
