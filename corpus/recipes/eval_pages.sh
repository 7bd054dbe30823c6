#!/usr/bin/env bash
# The archive size of each eval page (page 3 of each of the 24 training documents; no test
# page), coded alone by each given build, and each build's total: how page mixing's
# editions were chosen (format-spec.md §3.9).
# usage: eval_pages.sh DOCS_DIR BUILD...   (DOCS_DIR as documents.sh writes it)
set -euo pipefail
docs=$1
shift
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A total
for page in "$docs"/train/*-p3*.pbm; do
    line=$(basename "$page" .pbm)
    for build in "$@"; do
        "$build" compress "$page" -o "$tmp/x.vlz" -f -q
        size=$(stat -c %s "$tmp/x.vlz")
        line="$line $size"
        total[$build]=$((${total[$build]:-0} + size))
    done
    echo "$line"
done
for build in "$@"; do echo "total $build ${total[$build]}"; done
