#!/usr/bin/env bash
# Page by page: JBIG (jbigkit's `pbmtojbg -q`), xz -9e on the PBM file, and vlae-zip on the
# page alone (whole archive, default settings or the options given), with vlae-zip's
# compress and decompress wall times and a check that the pixels came back.
# With PAQ8PX=path-to-binary (corpus/recipes/build_paq8px.sh), also paq8px -8 on the PBM file.
# usage: [MODEL=name-or-path] [PAQ8PX=bin] page_baselines.sh DIR_OF_PBM_PAGES [vlae-zip compress options…]
set -euo pipefail
dir=$1; shift
bin=${VLAE_ZIP:-target/release/vlae-zip}
model=(--model "${MODEL:-auto}")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
printf '%-34s %9s %8s %8s %8s %6s %7s %7s %8s\n' page Mpx JBIG xz vlae-zip ratio comp_s dec_s paq8px
for page in "$dir"/*.pbm; do
    name=$(basename "$page")
    jbig=$(pbmtojbg -q < "$page" | wc -c)
    xzb=$(xz -9e -c "$page" | wc -c)
    paq=-
    if [[ -n "${PAQ8PX:-}" ]]; then
        "$PAQ8PX" -8 "$page" "$work/p.paq" > /dev/null 2>&1
        paq=$(stat -c %s "$work"/p.paq*)
        rm -f "$work"/p.paq*
    fi
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
    mpx=$(head -c 200 "$page" | tr '\n' ' ' | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^#/ && $i ~ /^[0-9]+$/) { if (!w) w = $i; else { print w * $i / 1e6; exit } } }')
    printf '%-34s %9.2f %8d %8d %8d %6.3f %7.2f %7.2f %8s\n' "$name" "$mpx" "$jbig" "$xzb" "$size" \
        "$(echo "$size / $jbig" | bc -l)" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$paq"
done
