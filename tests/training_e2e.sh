#!/usr/bin/env bash
# training_e2e.sh — a tiny training experiment end to end (experiments/README.md, `pass:`):
# linattn run over pass forward, backward and forward+backward for softmax_flash and linear
# attention (elu1, prf), causal and not; every row ok, timed, with step_bytes and, for the
# training passes, err_grad under the backward tolerance (1e-4); keys of forward cells carry no
# pass field; the crossover table has a pass column with a T* for each pass; train_memory is
# drawn; and a pass that is not one of the three is refused with the valid ones.
# Not the gradient arithmetic (tests/test_runner.c, tests/test_backward.c).
# Run: bash tests/training_e2e.sh  (scripts/run-tests.sh runs it.)
set -u
bin=${LINATTN_BIN:-./linattn}
fail=0
say() { echo "training_e2e: $*"; }
bad() { say "FAIL: $*"; fail=1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/linattn-train-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# About a second: T = 32 … 256, d = 16, one head.
cat > "$tmp/tr.yaml" <<'EOF'
name: tr
seed: 5
sweep:
  kernel: [softmax_flash, linear]
  map: [elu1, prf]
  m: 32
  causal: [false, true]
  pass: [forward, backward, forward+backward]
  T: [32, 64, 128, 256]
  d: 16
measure:
  time_budget_s: 0.002
  min_repeats: 3
  warmup: 1
  max_ref_rows: 16
  kl_rows: 4
  kernel_pairs: 16
EOF

"$bin" run "$tmp/tr.yaml" -o "$tmp/tr.h5" --quiet > "$tmp/run.log" 2>&1 ||
    { bad "linattn run failed"; cat "$tmp/run.log"; }
"$bin" export "$tmp/tr.h5" --columns kernel,map,causal,pass,T,status,time_median_s,step_bytes,err_grad,key \
    > "$tmp/tr.tsv" || bad "linattn export failed"
# 3 series (softmax, elu1, prf) x 2 causal x 3 passes x 4 T.
[ "$(tail -n +2 "$tmp/tr.tsv" | wc -l)" -eq 72 ] || bad "expected 72 rows, got $(tail -n +2 "$tmp/tr.tsv" | wc -l)"
awk -F'\t' 'NR > 1 {
    if ($6 != 0) { print "row " NR ": status " $6; bad = 1 }
    if (!($7 > 0)) { print "row " NR ": time " $7; bad = 1 }
    if (!($8 > 0)) { print "row " NR ": step_bytes " $8; bad = 1 }
    if ($4 == "forward") {
        if ($9 != "nan") { print "row " NR ": forward row with err_grad " $9; bad = 1 }
        if ($10 ~ /pass=/) { print "row " NR ": forward key names pass"; bad = 1 }
    } else {
        if (!($9 > 0 && $9 < 1e-4)) { print "row " NR ": err_grad " $9; bad = 1 }
        if ($10 !~ / pass=(backward|forward\+backward) /) { print "row " NR ": key lacks pass"; bad = 1 }
    }
} END { exit bad }' "$tmp/tr.tsv" || bad "rows above are wrong"
# A training step holds more than the forward pass of the same cell.
awk -F'\t' 'NR > 1 { k = $1 "/" $2 "/" $3 "/" $5; b[k "/" $4] = $8 }
    END { for (x in b) if (x ~ /\/forward$/) { s = x; sub(/forward$/, "forward+backward", s)
          if (!(b[s] > b[x])) { print x ": " b[s] " <= " b[x]; bad = 1 } } exit bad }' \
    "$tmp/tr.tsv" || bad "step_bytes of forward+backward not above forward"

if command -v gnuplot >/dev/null 2>&1; then
    "$bin" plot "$tmp/tr.h5" -o "$tmp/out" > "$tmp/plot.log" 2>&1 ||
        { bad "linattn plot failed"; cat "$tmp/plot.log"; }
    [ -s "$tmp/out/tr_train_memory.png" ] || bad "train_memory not drawn"
    [ -s "$tmp/out/tr_crossover.png" ] || bad "crossover not drawn"
    grep -q 'lin/soft@max  pass ' "$tmp/plot.log" || bad "the T* table has no pass column"
    grep -q ' forward+backward' "$tmp/plot.log" || bad "the T* table has no training row"
    awk -F'\t' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "pass") c = i; if (!c) exit 1 }
        NR > 1 { seen[$c] = 1 } END { exit !(seen["forward"] && seen["backward"] && seen["forward+backward"]) }' \
        "$tmp/out/tr_tstar.tsv" || bad "tr_tstar.tsv lacks a pass of the three"
else
    say "gnuplot missing: the figures are not checked"
fi

# A wrong pass is refused with the valid ones.
sed 's/pass: \[forward, backward, forward+backward\]/pass: [forwards]/' "$tmp/tr.yaml" > "$tmp/bad.yaml"
"$bin" run "$tmp/bad.yaml" -o "$tmp/bad.h5" --quiet > "$tmp/bad.log" 2>&1 && bad "pass: forwards accepted"
grep -q "forward, backward, forward+backward" "$tmp/bad.log" || { bad "no list of valid passes"; cat "$tmp/bad.log"; }

[ $fail -eq 0 ] && say "ok"
exit $fail
