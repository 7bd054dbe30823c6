#!/usr/bin/env bash
# Page by page: vlae-zip's archive size, and the least of RUNS wall times of compressing
# and of decompressing the page alone (process start included), as Mpx/s, with the peak
# resident memory of either (GNU time's %M). Run it with nothing else on the machine.
# usage: page_speed.sh DIR_OF_PBM_PAGES [RUNS]   (default 3; VLAE_ZIP names the binary)
set -euo pipefail
dir=$1 runs=${2:-3}
bin=${VLAE_ZIP:-target/release/vlae-zip}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
printf '%-36s %6s %8s %7s %7s %7s %7s %7s\n' page Mpx bytes comp_s dec_s c_Mpx/s d_Mpx/s peak_MB
for page in "$dir"/*.pbm; do
    name=$(basename "$page")
    best_c=999999 best_d=999999 peak=0
    for _ in $(seq "$runs"); do
        /usr/bin/time -f '%e %M' -o "$work/t" "$bin" compress "$page" -o "$work/x.vlz" -f -q
        read -r s m < "$work/t"
        best_c=$(echo "if ($s < $best_c) $s else $best_c" | bc); peak=$(( m > peak ? m : peak ))
        rm -rf "$work/out"
        /usr/bin/time -f '%e %M' -o "$work/t" "$bin" decompress "$work/x.vlz" -o "$work/out" -q
        read -r s m < "$work/t"
        best_d=$(echo "if ($s < $best_d) $s else $best_d" | bc); peak=$(( m > peak ? m : peak ))
    done
    size=$(stat -c %s "$work/x.vlz")
    mpx=$(head -c 200 "$page" | tr '\n' ' ' | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^#/ && $i ~ /^[0-9]+$/) { if (!w) w = $i; else { print w * $i / 1e6; exit } } }')
    printf '%-36s %6.2f %8d %7.2f %7.2f %7.2f %7.2f %7d\n' "$name" "$mpx" "$size" "$best_c" "$best_d" \
        "$(echo "$mpx / $best_c" | bc -l)" "$(echo "$mpx / $best_d" | bc -l)" $((peak / 1024))
done
