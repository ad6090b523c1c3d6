#!/usr/bin/env bash
# fit-sweep.sh — the weights of experiments/real-stories260k-fit-sweep.yaml: captures of
# stories260K sampled with seeds 1-3 and `linattn fit` (exp_pair, xent, 1000 steps) at m = 4, 8,
# 16, 32 units on all three, and at m = 16 on the first 1 and 2; then the experiment and its
# figures through scripts/figures.sh.  Files that exist are kept (delete one to redo it).
# About 7 minutes of one core (measured: see docs/FIGURES.md); not part of `make figures`,
# which runs the experiment once its weights exist.
# Usage: scripts/fit-sweep.sh   (from anywhere; the checkpoint in $LINATTN_DATA/stories260K/,
#        ../shared/data by default)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${LINATTN_BIN:-./linattn}
ckpt=${LINATTN_DATA:-../shared/data}/stories260K/stories260K.bin
[ -x "$bin" ] || { echo "fit-sweep.sh: $bin not built; run make first" >&2; exit 1; }
[ -f "$ckpt" ] || { echo "fit-sweep.sh: no checkpoint at $ckpt (see README)" >&2; exit 1; }
mkdir -p data
[ -f data/stories260k.h5 ] ||
    "$bin" capture "$ckpt" --steps 256 --greedy -o data/stories260k.h5 > /dev/null
for s in 1 2 3; do
    [ -f "data/stories260k_s$s.h5" ] ||
        "$bin" capture "$ckpt" --steps 256 --seed "$s" --through-bos \
            -o "data/stories260k_s$s.h5" > /dev/null
done
# fit_one OUT M N: exp_pair at M units on the first N captures.
fit_one() {
    local out=$1 m=$2 n=$3 train=() s t0
    [ -f "$out" ] && return 0
    for s in $(seq 1 "$n"); do train+=("data/stories260k_s$s.h5"); done
    t0=$(date +%s)
    "$bin" fit "${train[@]}" --activation exp_pair --m "$m" --loss xent --steps 1000 -o "$out" \
        > /dev/null
    echo "fitted $out (m = $m, $n capture(s)) in $(( $(date +%s) - t0 )) s"
}
for m in 4 8 16 32; do fit_one "data/fit_exp_pair_m$m.h5" "$m" 3; done
for n in 1 2; do fit_one "data/fit_exp_pair_m16_n$n.h5" 16 "$n"; done
scripts/figures.sh experiments/real-stories260k-fit-sweep.yaml
