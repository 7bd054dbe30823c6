#!/usr/bin/env bash
# The VLAE paper's information preference: three decoders trained from scratch with the
# same budget (MINUTES of one thread each), then the bits in z (KL) and the -ELBO on the
# first 1,000 test images. Binarized MNIST unless TRAIN and TEST name other 28x28 IDX
# files (VALIDATION images at the end of TRAIN are held out; default 10,000, MNIST's). The decoders differ only in the PixelCNN:
#   factorized  first_kernel 1 (no pixel taps), no blocks: p(x|z) = prod_i p(x_i|z)
#   small       the shipped shape: 5x5 mask A, 5 mask-B 3x3 blocks (7 rows of context)
#   large       7x7 mask A, 10 blocks (13 rows)
# usage: models/experiments/information-preference.sh OUT_DIR [MINUTES [TRAIN TEST VALIDATION]]
set -euo pipefail
out=$1 minutes=${2:-6}
train=${3:-corpus/binarized-mnist/train-images.idx3-ubyte.gz}
test=${4:-corpus/binarized-mnist/test-images.idx3-ubyte.gz}
validation=${5:-10000}
bin=${VLAE_ZIP:-target/release/vlae-zip}
mkdir -p "$out"
python3 - "$out" <<'PY'
import json, sys
base = json.load(open("models/vlae-mnist.json"))
for name, kernel, blocks in [("factorized", 1, 0), ("small", 5, 5), ("large", 7, 10)]:
    json.dump(dict(base, first_kernel=kernel, pixel_blocks=blocks),
              open(f"{sys.argv[1]}/{name}.json", "w"), indent=2)
PY
for name in factorized small large; do
    RAYON_NUM_THREADS=1 "$bin" train "$train" \
        --config "$out/$name.json" --run "$out/run-$name" --minutes "$minutes" --epochs 100 -q --validation-images "$validation" \
        -o "$out/$name.safetensors"
done
for name in factorized small large; do
    echo "== $name"
    "$bin" eval "$test" --limit 1000 \
        --model "$out/$name.safetensors"
done
