#!/usr/bin/env bash
# fidelity_e2e.sh — model cells end to end (data source model, stories260K): linattn run of a
# tiny fidelity experiment written here (softmax_step, linear_step with elu1), its rows (the
# softmax row KL 0 and top-1 1, the linear row KL > 0), a rerun that resumes every cell, a
# sweep grown by a map that runs only the new cells and keeps the stored rows, and the loader's
# refusals (no path, heads, T beyond seq_len, sequences on other data), and the fidelity figure
# (PNG magic; no decode figure from model rows).  Skips with a message
# when the checkpoint is absent ($LINATTN_DATA, else ../shared/data).
# Not the cell's arithmetic (tests/test_fidelity_cell.c).  Run: bash tests/fidelity_e2e.sh
set -u
BIN=${LINATTN_BIN:-./linattn}
. "$(dirname "$0")/lib/common.sh"
need_bin fidelity_e2e

ckpt=${LINATTN_DATA:-../shared/data}/stories260K/stories260K.bin
if [ ! -f "$ckpt" ]; then
    echo "fidelity_e2e: no checkpoint at $ckpt: skipping the model-cell test"
    exit 0
fi
ckpt=$(cd "$(dirname "$ckpt")" && pwd)/$(basename "$ckpt")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/linattn-fidelity-e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

write_yaml() { # write_yaml MAPS
    cat > "$tmp/fid.yaml" <<EOF
name: fid
seed: 3
sweep:
  kernel: [softmax_step, linear_step]
  causal: true
  map: $1
  m: 16
  T: 32
  sequences: 2
data:
  source: model
  path: $ckpt
measure:
  time: false
EOF
}

write_yaml "[elu1]"
"$BIN" run "$tmp/fid.yaml" -o "$tmp/fid.h5" --quiet > "$tmp/run.log" 2>&1
check "run: every cell ok" test $? -eq 0
check "run: 2 rows" test "$(nrows "$tmp/fid.h5")" -eq 2
cols=kernel,map,model_positions,model_kl,model_kl_max,model_top1,model_ppl,model_ppl_softmax
"$BIN" export "$tmp/fid.h5" --columns $cols > "$tmp/a.tsv"
check "softmax row: KL 0, top-1 1, its own perplexity" awk -F'\t' '
    $1 == "softmax_step" { n++; if ($4 != 0 || $5 != 0 || $6 != 1 || $7 != $8 || !($3 > 0)) exit 1 }
    END { exit n != 1 }' "$tmp/a.tsv"
check "elu1 row: KL > 0, top-1 < 1" awk -F'\t' '
    $2 == "elu1" { n++; if (!($4 > 0) || !($5 >= $4) || !($6 < 1)) exit 1 } END { exit n != 1 }' \
    "$tmp/a.tsv"

"$BIN" run "$tmp/fid.yaml" -o "$tmp/fid.h5" > "$tmp/rerun.log" 2>&1
check "rerun: every cell resumed" grep -q ": 0 run, 2 skipped (resumed), 0 failed" "$tmp/rerun.log"

write_yaml "[elu1, prf]"
"$BIN" run "$tmp/fid.yaml" -o "$tmp/fid.h5" > "$tmp/grow.log" 2>&1
check "grown sweep: only the prf cell runs" grep -q ": 1 run, 2 skipped (resumed), 0 failed" \
    "$tmp/grow.log"
"$BIN" export "$tmp/fid.h5" --columns $cols > "$tmp/b.tsv"
check "grown sweep: the stored rows are unchanged" test "$(grep -v prf "$tmp/b.tsv")" = \
    "$(cat "$tmp/a.tsv")"
check "prf row: m 16 recorded" test "$("$BIN" export "$tmp/fid.h5" --columns map,m |
    awk -F'\t' '$1 == "prf" { print $2 }')" = 16

if command -v gnuplot > /dev/null 2>&1; then
    "$BIN" plot "$tmp/fid.h5" -o "$tmp/out" --format png > "$tmp/plot.log" 2>&1
    check "plot: exit 0" test $? -eq 0
    check "plot: fid_fidelity.png" test "$(head -c 4 "$tmp/out/fid_fidelity.png" 2>/dev/null |
        od -An -tx1 | tr -d ' \n')" = "89504e47"
    check "plot: no decode figure from model rows" test ! -e "$tmp/out/fid_decode_latency.png"
    "$BIN" plot "$tmp/fid.h5" -o "$tmp/out" --heads "$tmp/none.h5" > "$tmp/plot2.log" 2>&1
    check "plot: a missing --heads file is exit 2" test $? -eq 2
else
    echo "skip plot checks: gnuplot is not installed"
fi

# The loader's refusals: exit 2 with the reason.
refuse() { # refuse "description" pattern yaml-text
    printf '%s\n' "$3" > "$tmp/bad.yaml"
    "$BIN" run "$tmp/bad.yaml" -o "$tmp/bad.h5" > "$tmp/bad.log" 2>&1
    local rc=$?
    check "$1: exit 2" test $rc -eq 2
    check "$1: says why" grep -q "$2" "$tmp/bad.log"
}
head='name: b
sweep: {kernel: softmax_step, causal: true'
refuse "no path" "data source model needs 'path'" "$head}
data: {source: model}"
refuse "heads" "'heads' comes from the checkpoint" "$head, heads: 2}
data: {source: model, path: $ckpt}"
refuse "T beyond seq_len" "seq_len 512" "$head, T: 600}
data: {source: model, path: $ckpt}"
refuse "sequences on gaussian data" "'sequences' applies to data source model only" "$head, sequences: 2}"

exit $((fails > 0))
