#!/usr/bin/env bash
# Page by page: vlae-zip's archive size, and the least of RUNS wall times of compressing
# and of decompressing the page alone (process start included, timed to the millisecond:
# GNU time's %e counts hundredths, too coarse for a 0.13 Mpx page that takes 0.06 s), as
# Mpx/s, with the peak resident memory of either. Run it with nothing else on the
# machine.
# usage: page_speed.sh DIR_OF_PBM_PAGES [RUNS]   (default 3)
# VLAE_ZIP names the binary, or several separated by spaces: builds to compare, run in
# turn at every run of every page, so that the machine's drift falls on all alike.
set -euo pipefail
dir=$1 runs=${2:-3}
read -r -a bins <<< "${VLAE_ZIP:-target/release/vlae-zip}"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
least() { echo "if ($1 < $2) $1 else $2" | bc; }
# timed FILE COMMAND...: runs COMMAND; writes its wall seconds and peak resident KB to
# FILE. Python's clock starts after its own start-up, and wait4 gives the child's peak.
timed() {
    local out=$1; shift
    python3 -c '
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - start
if status != 0:
    sys.exit(f"{sys.argv[2]} failed")
open(sys.argv[1], "w").write(f"{seconds:.4f} {usage.ru_maxrss}\n")
' "$out" "$@"
}
printf '%-36s %6s %8s %7s %7s %7s %7s %7s' page Mpx bytes comp_s dec_s c_Mpx/s d_Mpx/s peak_MB
if [ ${#bins[@]} -gt 1 ]; then printf ' build'; fi
printf '\n'
for page in "$dir"/*.pbm; do
    name=$(basename "$page")
    best_c=() best_d=() peak=()
    for b in "${!bins[@]}"; do best_c[b]=999999; best_d[b]=999999; peak[b]=0; done
    for _ in $(seq "$runs"); do
        for b in "${!bins[@]}"; do
            timed "$work/t" "${bins[b]}" compress "$page" -o "$work/x$b.vlz" -f -q
            read -r s m < "$work/t"
            best_c[b]=$(least "$s" "${best_c[b]}"); peak[b]=$(( m > peak[b] ? m : peak[b] ))
            rm -rf "$work/out"
            timed "$work/t" "${bins[b]}" decompress "$work/x$b.vlz" -o "$work/out" -q
            read -r s m < "$work/t"
            best_d[b]=$(least "$s" "${best_d[b]}"); peak[b]=$(( m > peak[b] ? m : peak[b] ))
        done
    done
    mpx=$(head -c 200 "$page" | tr '\n' ' ' | awk '{ for (i = 2; i <= NF; i++) if ($i !~ /^#/ && $i ~ /^[0-9]+$/) { if (!w) w = $i; else { print w * $i / 1e6; exit } } }')
    for b in "${!bins[@]}"; do
        printf '%-36s %6.2f %8d %7.3f %7.3f %7.2f %7.2f %7d' "$name" "$mpx" "$(stat -c %s "$work/x$b.vlz")" \
            "${best_c[b]}" "${best_d[b]}" "$(echo "$mpx / ${best_c[b]}" | bc -l)" \
            "$(echo "$mpx / ${best_d[b]}" | bc -l)" $((peak[b] / 1024))
        if [ ${#bins[@]} -gt 1 ]; then printf ' %s' "${bins[b]}"; fi
        printf '\n'
    done
done
