#!/usr/bin/env bash
# Page by page: vlae-zip on each page alone (whole archive, default settings or the options
# given), its compress and decompress wall times, a check that the pixels came back, and
# the classical coders on the same PBM file:
#   JBIG1: jbigkit's `pbmtojbg -q` (Debian package jbigkit-bin), if on PATH
#   xz:    `xz -9e`
#   JBIG2: with JBIG2=path to jbig2enc's `jbig2`: `jbig2 PAGE.pbm` (generic region coding)
#   paq8px: with PAQ8PX=path to a paq8px binary: `paq8px -8 PAGE.pbm`
# The comparison tools are not part of this repository; build or install them yourself.
# A column whose tool is missing shows "-"; ratio is vlae-zip / JBIG1.
# usage: [MODEL=name-or-path] [JBIG2=bin] [PAQ8PX=bin] page_baselines.sh DIR_OF_PBM_PAGES [vlae-zip compress options…]
set -euo pipefail
dir=$1; shift
bin=${VLAE_ZIP:-target/release/vlae-zip}
model=(--model "${MODEL:-auto}")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
printf '%-34s %7s %8s %8s %8s %8s %8s %6s %7s %7s\n' \
    page Mpx JBIG1 JBIG2 xz paq8px vlae-zip ratio comp_s dec_s
total=0
for page in "$dir"/*.pbm; do
    name=$(basename "$page")
    jbig=- jbig2=- paq=- ratio=-
    if command -v pbmtojbg > /dev/null; then jbig=$(pbmtojbg -q < "$page" | wc -c); fi
    if [[ -n "${JBIG2:-}" ]]; then
        "$JBIG2" "$page" > "$work/p.jb2"
        jbig2=$(stat -c %s "$work/p.jb2")
    fi
    if [[ -n "${PAQ8PX:-}" ]]; then
        "$PAQ8PX" -8 "$page" "$work/p.paq" > /dev/null
        paq=$(cat "$work"/p.paq* | wc -c)
        rm -f "$work"/p.paq*
    fi
    xzb=$(xz -9e -c "$page" | wc -c)
    t0=$(date +%s.%N)
    "$bin" compress "$page" -o "$work/x.vlz" -f -q "${model[@]}" "$@"
    t1=$(date +%s.%N)
    "$bin" decompress "$work/x.vlz" -o "$work/out" -q "${model[@]}"
    t2=$(date +%s.%N)
    # Compression is deterministic: the decoded pixels must give the same archive.
    "$bin" compress "$work/out/$name" -o "$work/y.vlz" -f -q "${model[@]}" "$@"
    cmp -s "$work/x.vlz" "$work/y.vlz" || { echo "$name: pixels differ" >&2; exit 1; }
    rm -rf "$work/out" "$work/y.vlz"
    size=$(stat -c %s "$work/x.vlz")
    total=$((total + size))
    [[ $jbig == - ]] || ratio=$(printf '%.3f' "$(echo "$size / $jbig" | bc -l)")
    mpx=$(head -c 200 "$page" | tr '\n' ' ' | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^#/ && $i ~ /^[0-9]+$/) { if (!w) w = $i; else { print w * $i / 1e6; exit } } }')
    printf '%-34s %7.2f %8s %8s %8d %8s %8d %6s %7.2f %7.2f\n' "$name" "$mpx" "$jbig" "$jbig2" \
        "$xzb" "$paq" "$size" "$ratio" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)"
done
echo "vlae-zip total: $total bytes"
