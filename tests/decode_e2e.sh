#!/usr/bin/env bash
# decode_e2e.sh — decode cells end to end on a tiny experiment written here: linattn run of
# softmax_step and linear_step cells (two maps, B = 1 and 3, four contexts) → export → plot.
# Checks the rows (every cell ok, one error row per sequence, the state bytes of a KV cache
# growing with T and of a linear state not, the time and map time), the three decode figures
# (PNG magic), the decode t* table (its header and one line per linear series and batch), that
# no forward figure is drawn from step rows, and that a prefill kernel is refused by name.
# Not the arithmetic of the figures (tests/test_decode_figures.c) nor the runner's decode cell
# against the reference (tests/test_runner.c).  Run: bash tests/decode_e2e.sh
set -u
BIN=${LINATTN_BIN:-./linattn}
. "$(dirname "$0")/lib/common.sh"
need_bin decode_e2e

tmp=$(mktemp -d "${TMPDIR:-/tmp}/linattn-decode-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/dec.yaml" <<'EOF'
name: dec
seed: 5
sweep:
  kernel: [softmax_step, linear_step]
  map: [elu1, prf]
  m: 32
  causal: true
  T: [32, 64, 128, 256]
  d: 16
  batch: [1, 3]
measure:
  time_budget_s: 0.005
  min_repeats: 3
  warmup: 1
  max_ref_rows: 8
  kl_rows: 4
  kernel_pairs: 16
EOF

"$BIN" run "$tmp/dec.yaml" -o "$tmp/dec.h5" --quiet > "$tmp/run.log" 2>&1
check "run: every decode cell ok" test $? -eq 0
check "run: 24 rows" test "$(nrows "$tmp/dec.h5")" -eq 24
cols=kernel,map,T,batch,err_rows,state_bytes,time_median_s,fm_time_median_s,err_impl
"$BIN" export "$tmp/dec.h5" --columns $cols > "$tmp/dec.tsv"
# err_rows 1 (the last row of each sequence); softmax: cache of ⌈T/64⌉·64·(d + dv) floats per
# sequence, no map; linear: one state size at every T, a map time; err_impl within fp32.
awk -F'\t' 'NR > 1 {
    if ($5 != 1) { print "err_rows " $5 " in " $0; bad = 1 }
    if (!($7 > 0)) { print "no time in " $0; bad = 1 }
    if (!($9 < 2e-5)) { print "err_impl " $9 " in " $0; bad = 1 }
    if ($1 == "softmax_step") {
        want = $4 * 4 * int(($3 + 63) / 64) * 64 * 32
        if ($6 != want) { print "cache bytes " $6 " want " want " in " $0; bad = 1 }
        if ($8 != 0) { print "softmax map time " $8; bad = 1 }
    } else {
        m = ($2 == "prf") ? 32 : 16
        want = $4 * 4 * (m * 16 + m)
        if ($6 != want) { print "state bytes " $6 " want " want " in " $0; bad = 1 }
        if (!($8 > 0)) { print "no map time in " $0; bad = 1 }
    }
} END { exit bad }' "$tmp/dec.tsv" > "$tmp/awk.log"
check "rows: err_rows, state bytes, times, err_impl" test $? -eq 0
cat "$tmp/awk.log"

if command -v gnuplot > /dev/null 2>&1; then
    "$BIN" plot "$tmp/dec.h5" -o "$tmp/out" --format png > "$tmp/plot.log" 2>&1
    check "plot: exit 0" test $? -eq 0
    for f in decode_latency decode_speedup decode_memory; do
        check "plot: $f.png" test "$(head -c 4 "$tmp/out/dec_$f.png" 2>/dev/null |
            od -An -tx1 | tr -d ' \n')" = "89504e47"
    done
    for f in crossover speedup error_T memory; do
        check "plot: no $f from step rows" test ! -e "$tmp/out/dec_$f.png"
    done
    tsv=$tmp/out/dec_decode_tstar.tsv
    check "t* table: header" grep -q $'^softmax\tkernel\tmap\tm\td\tdv\tbatch' "$tsv"
    check "t* table: 4 series (2 maps x 2 batches)" test "$(grep -c '^softmax_step' "$tsv")" -eq 4
    # P = 32 (the first context), N up to 224; the models' t* is a number for both maps.
    check "t* table: P, N_max, t_flops" awk -F'\t' 'NR > 1 && ($16 != 32 || $17 != 224 ||
        !($14 > 0)) { exit 1 }' "$tsv"
else
    echo "skip plot checks: gnuplot is not installed"
fi

# A prefill kernel is not a cell; the message names the step kernels.
printf 'sweep: {kernel: softmax_prefill, causal: true}\n' > "$tmp/bad.yaml"
"$BIN" run "$tmp/bad.yaml" -o "$tmp/bad.h5" > "$tmp/bad.log" 2>&1
check "prefill kernel refused (exit 2)" test $? -eq 2
check "prefill refusal names the step kernels" \
    grep -q "step kernels: linear_step, softmax_step" "$tmp/bad.log"

[ $fails -eq 0 ] && echo "decode_e2e: ok"
exit $fails
