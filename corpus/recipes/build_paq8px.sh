#!/usr/bin/env bash
# Builds paq8px (github.com/hxim/paq8px, commit 29237fb) for the side-by-side page figures
# in the README: `PAQ8PX=DIR/build/paq8px page_baselines.sh …` adds its column.
# usage: build_paq8px.sh DIR     (DIR: a checkout or snapshot of that repository)
# Plain -O2 without LTO, to build in a few minutes on 2 cores; compression is unchanged.
set -euo pipefail
cd "$1/build"
gcc -c -DNDEBUG -I../zlib/ -O2 -include unistd.h ../zlib/*.c
g++ -DNDEBUG -I../zlib/ -O2 -fno-fast-math -ffp-contract=off -std=gnu++17 -fno-rtti *.o \
    ../src/file/*.cpp ../src/filter/*.cpp ../src/model/*.cpp ../src/text/*.cpp \
    ../src/lstm/*.cpp ../src/*.cpp -o paq8px -lz -lpthread
rm -f ./*.o
echo "$1/build/paq8px"
