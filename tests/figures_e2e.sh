#!/usr/bin/env bash
# figures_e2e.sh — the figure pipeline end to end on a tiny experiment written here: linattn run
# → export (TSV) → plot; every figure that should fit is drawn as PNG and PDF with valid magic
# bytes (\x89PNG, %PDF) and a non-trivial size; the T* table is printed and written; and the
# error paths: an unknown figure, a missing file, gnuplot missing from PATH; and a capacity file
# (`linattn capacity`) drawn as the capacity figure alone.
# Not a test of how the figures look (view plots/out/*.png) nor of the crossover arithmetic
# (tests/test_crossover.c).  Run: bash tests/figures_e2e.sh  (scripts/run-tests.sh runs it.)
set -u
bin=${LINATTN_BIN:-./linattn}
fail=0
say() { echo "figures_e2e: $*"; }
bad() { say "FAIL: $*"; fail=1; }

if ! "$bin" --help 2>&1 | grep -q '^  run '; then
    say "FAIL: '$bin run' is not there yet (the experiment runner); cannot test the pipeline"
    exit 1
fi
if ! command -v gnuplot >/dev/null 2>&1; then
    say "SKIP: gnuplot is not installed (scripts/install-deps.sh installs gnuplot-nox)"
    exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/linattn-fig-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Timed softmax and linear rows over three T (crossover, speedup), a random map at two m with
# errors (features), errors over T (error_T).  About a second.
cat > "$tmp/e2e.yaml" <<'EOF'
name: e2e
seed: 11
sweep:
  kernel: [softmax_flash, linear]
  map: [elu1, prf]
  m: [16, 32]
  T: [32, 64, 128]
  d: 16
measure:
  time_budget_s: 0.005
  min_repeats: 3
  warmup: 1
  max_ref_rows: 32
  kl_rows: 8
  kernel_pairs: 64
EOF

"$bin" run "$tmp/e2e.yaml" -o "$tmp/e2e.h5" --quiet > "$tmp/run.log" 2>&1 ||
    { bad "linattn run failed"; cat "$tmp/run.log"; }
"$bin" export "$tmp/e2e.h5" > "$tmp/e2e.tsv" || bad "linattn export failed"
head -n 1 "$tmp/e2e.tsv" | grep -q 'time_median_s' || bad "export has no header"
[ "$(wc -l < "$tmp/e2e.tsv")" -gt 10 ] || bad "export has too few rows"

"$bin" plot "$tmp/e2e.h5" -o "$tmp/out" --keep "$tmp/keep" > "$tmp/plot.log" 2>&1 ||
    { bad "linattn plot failed"; cat "$tmp/plot.log"; }

# check_fig BASE: PNG and PDF exist, right magic, non-trivial size.
check_fig() {
    local png=$1.png pdf=$1.pdf
    if [ ! -f "$png" ]; then bad "missing $png"; else
        [ "$(head -c 4 "$png" | od -An -tx1 | tr -d ' \n')" = "89504e47" ] || bad "$png: not a PNG"
        [ "$(stat -c %s "$png")" -gt 20000 ] || bad "$png: only $(stat -c %s "$png") bytes"
    fi
    if [ ! -f "$pdf" ]; then bad "missing $pdf"; else
        [ "$(head -c 4 "$pdf")" = "%PDF" ] || bad "$pdf: not a PDF"
        [ "$(stat -c %s "$pdf")" -gt 5000 ] || bad "$pdf: only $(stat -c %s "$pdf") bytes"
    fi
}
for f in crossover speedup features error_T; do
    check_fig "$tmp/out/e2e_$f"
done
# Memory fits every file but is drawn by default only when nothing else is; error_sigma needs σ.
[ -e "$tmp/out/e2e_memory.png" ] && bad "memory drawn although other figures fit"
[ -e "$tmp/out/e2e_error_sigma.png" ] && bad "error_sigma drawn without a σ sweep"
grep -q 'crossover T\*' "$tmp/plot.log" || bad "no crossover table printed"
[ -s "$tmp/out/e2e_tstar.tsv" ] || bad "no T* table written"
head -n 1 "$tmp/out/e2e_tstar.tsv" | grep -q 'T_star' || bad "T* table has no header"
# The kept gnuplot inputs: a meta file with the caption (experiment name and commit).
grep -q 'caption = "experiment e2e' "$tmp/keep/crossover.meta.gp" || bad "caption missing in meta"
grep -q 'commit' "$tmp/keep/crossover.meta.gp" || bad "caption has no commit"

# Forced figure, PNG only, another DPI.
"$bin" plot "$tmp/e2e.h5" -o "$tmp/out2" --only memory --format png --png-dpi 60 -q \
    > "$tmp/plot2.log" 2>&1 || { bad "plot --only memory failed"; cat "$tmp/plot2.log"; }
[ -f "$tmp/out2/e2e_memory.png" ] || bad "--only memory did not draw it"
[ -e "$tmp/out2/e2e_memory.pdf" ] && bad "--format png wrote a PDF"

# A capacity file (`linattn capacity`): only the capacity figure fits it, with its caption.
"$bin" capacity --maps dpfp1,prf32 --S 16,64,256 --trials 1 --settings unique,overwrite \
    -q -o "$tmp/cap.h5" > "$tmp/cap.log" 2>&1 || { bad "linattn capacity failed"; cat "$tmp/cap.log"; }
"$bin" plot "$tmp/cap.h5" -o "$tmp/out5" --keep "$tmp/keep5" > "$tmp/plot5.log" 2>&1 ||
    { bad "plot of a capacity file failed"; cat "$tmp/plot5.log"; }
check_fig "$tmp/out5/cap_capacity"
[ "$(ls "$tmp/out5" | wc -l)" -eq 2 ] || bad "plot of a capacity file drew other figures"
grep -q 'commit' "$tmp/keep5/capacity.meta.gp" || bad "capacity caption has no commit"
[ -e "$tmp/out/e2e_capacity.png" ] && bad "capacity drawn from a results file"

# Error paths.
"$bin" plot "$tmp/e2e.h5" --only crossovr -o "$tmp/out3" > "$tmp/e1.log" 2>&1
rc=$?
[ $rc -eq 2 ] || bad "unknown figure: exit $rc, want 2"
grep -q "did you mean 'crossover'" "$tmp/e1.log" || bad "unknown figure: no hint"
"$bin" plot "$tmp/nope.h5" -o "$tmp/out3" > "$tmp/e2.log" 2>&1
rc=$?
[ $rc -ne 0 ] || bad "missing results file accepted"
PATH=/nonexistent "$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")" plot "$tmp/e2e.h5" \
    -o "$tmp/out4" > "$tmp/e3.log" 2>&1
rc=$?
[ $rc -ne 0 ] || bad "plot without gnuplot succeeded"
grep -q 'gnuplot-nox' "$tmp/e3.log" || { bad "no install hint without gnuplot"; cat "$tmp/e3.log"; }

[ $fail -eq 0 ] && say "ok"
exit $fail
