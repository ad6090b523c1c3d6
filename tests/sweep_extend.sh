#!/usr/bin/env bash
# sweep_extend.sh — extending a finished sweep: after a run of a copy of experiments/tiny.yaml,
# adding a T value resumes and runs only the new cells (the old rows stay bit-identical, the
# provenance keeps both texts, also after the .h5 is rebuilt from its journal); adding a comment
# or an axis at its default value resumes with 0 new cells; changing the seed, a measure
# setting or the content of an h5 data file is refused, naming what changed.  Each time
# `run --dry-run` must announce exactly what `run` then does (cells kept and to run, or the
# same refusal and exit status 2).
# Run: bash tests/sweep_extend.sh   (uses $LINATTN_BIN, default ./linattn; h5dump, h5import)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LINATTN_BIN:-./linattn}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_sweep_extend.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. tests/lib/common.sh
need_bin sweep_extend.sh
for tool in h5dump h5import; do
    if ! command -v $tool >/dev/null; then
        echo "sweep_extend.sh: $tool (hdf5-tools) is missing"
        exit 1
    fi
done

# Rows of a results file, exact, sorted by key (the key is column 2 of `export`).
rows() { "$BIN" export "$1" --exact | tail -n +2 | sort -t "$(printf '\t')" -k2,2; }
# An integer or string root attribute as h5dump prints it ((0): VALUE), or nothing.
attr() { h5dump -a "$2" "$1" 2>/dev/null | sed -n 's/^ *(0): //p'; }
# attr_has FILE ATTR REGEX: the attribute's dump matches REGEX.
attr_has() { h5dump -a "$2" "$1" 2>/dev/null | grep -q -- "$3"; }

# dry_then_run NAME YAML [OUT]: a dry run, then the run; both outputs and exit codes kept in
# $tmp/NAME.{dry,dryrc,out,err,rc}.
dry_then_run() {
    local name=$1 yaml=$2 out=${3:-$tmp/x.h5}
    "$BIN" run "$yaml" -o "$out" --dry-run >"$tmp/$name.dry" 2>&1
    echo $? >"$tmp/$name.dryrc"
    "$BIN" run "$yaml" -o "$out" --quiet >"$tmp/$name.out" 2>"$tmp/$name.err"
    echo $? >"$tmp/$name.rc"
}
# agree NAME: the dry run announced "K of N cells already done ..., M to run" and the run then
# reported "N cells: M run, K skipped"; prints M.
agree() {
    local line k n m
    line=$(grep -o '[0-9]* of [0-9]* cells already done (would be skipped), [0-9]* to run' \
        "$tmp/$1.dry")
    read -r k _ n _ <<<"$line"
    m=${line##*, }; m=${m% to run}
    if [ -n "$line" ] && [ "$(cat "$tmp/$1.dryrc")" = 0 ] && [ "$(cat "$tmp/$1.rc")" = 0 ] &&
        grep -q ": $n cells: $m run, $k skipped (resumed), 0 failed" "$tmp/$1.out"; then
        echo "$m"
    else
        echo "dry: $(tail -1 "$tmp/$1.dry") / run: $(cat "$tmp/$1.out" "$tmp/$1.err")" >&2
        echo "disagree"
    fi
}
# refused NAME NEEDLE: dry run and run both exit 2 with the same message, which has NEEDLE.
refused() {
    local msg
    msg=$(sed -n 's/^linattn run: //p' "$tmp/$1.err")
    [ "$(cat "$tmp/$1.dryrc")" = 2 ] && [ "$(cat "$tmp/$1.rc")" = 2 ] && [ -n "$msg" ] &&
        grep -qF -- "run would refuse it: $msg" "$tmp/$1.dry" && grep -qF -- "$2" <<<"$msg" &&
        grep -q -- "--fresh" <<<"$msg"
}

# ---- the first run --------------------------------------------------------------------------
y=$tmp/t.yaml
cp experiments/tiny.yaml "$y"
"$BIN" run "$y" -o "$tmp/x.h5" --dry-run >"$tmp/new.dry" 2>&1
check "dry run on no file: a new file, 12 cells to run" \
    grep -q "x.h5: a new file; 12 cells to run" "$tmp/new.dry"
"$BIN" run "$y" -o "$tmp/x.h5" --quiet >"$tmp/first.out" 2>&1
check "first run: 12 cells run" grep -q ": 12 cells: 12 run, 0 skipped" "$tmp/first.out"
rows "$tmp/x.h5" >"$tmp/rows1"
check "first run: cell_context recorded" attr_has "$tmp/x.h5" cell_context 'measure.kl_rows=8'
check "... with the seed" attr_has "$tmp/x.h5" cell_context 'seed=7'
check "... and no second text" [ -z "$(attr "$tmp/x.h5" experiment_text_2)" ]
check "first run: no text_count (one text)" [ -z "$(attr "$tmp/x.h5" text_count)" ]

# ---- add a T value: resume, only the new cells run ------------------------------------------
sed -i 's/^  T: \[64, 128\]/  T: [64, 128, 32]/' "$y"
dry_then_run addT "$y"
m=$(agree addT)
check "add a T value: dry run and run agree ($m to run)" [ "$m" = 6 ]
check "... dry run says the text will be recorded" \
    grep -q "recorded as experiment_text_2" "$tmp/addT.dry"
rows "$tmp/x.h5" >"$tmp/rows2"
check "... 18 rows now" [ "$(wc -l <"$tmp/rows2")" -eq 18 ]
cut -f2 "$tmp/rows1" >"$tmp/keys1"
check "... the 12 old rows are bit-identical (export --exact)" \
    diff <(grep -F -f "$tmp/keys1" "$tmp/rows2") "$tmp/rows1"
check "... text_count = 2" [ "$(attr "$tmp/x.h5" text_count)" = 2 ]
check "... experiment_text_2 holds the new text" \
    attr_has "$tmp/x.h5" experiment_text_2 'T: \[64, 128, 32\]'
check "... experiment_text is still the first text" \
    attr_has "$tmp/x.h5" experiment_text 'T: \[64, 128\]$'

# The journal holds the new attributes too: rebuilt from it, the .h5 keeps them.
rm "$tmp/x.h5"
"$BIN" run "$y" -o "$tmp/x.h5" --quiet >"$tmp/rebuild.out" 2>&1
check "rebuilt from the journal: 0 run, 18 skipped" \
    grep -q ": 18 cells: 0 run, 18 skipped" "$tmp/rebuild.out"
check "... text_count = 2 survives" [ "$(attr "$tmp/x.h5" text_count)" = 2 ]
check "... experiment_text_2 survives" \
    attr_has "$tmp/x.h5" experiment_text_2 'T: \[64, 128, 32\]'
check "... the rows survive" diff <(rows "$tmp/x.h5") "$tmp/rows2"

# ---- a comment, an axis at its default value: resume with 0 new cells -----------------------
echo "# a note added later" >>"$y"
dry_then_run comment "$y"
check "add a comment: dry run and run agree, 0 to run" [ "$(agree comment)" = 0 ]
check "... text_count = 3" [ "$(attr "$tmp/x.h5" text_count)" = 3 ]
"$BIN" run "$y" -o "$tmp/x.h5" --dry-run >"$tmp/again.dry" 2>&1
check "... the same text again is not recorded twice" \
    [ -z "$(grep 'recorded as' "$tmp/again.dry")" ]
sed -i 's/^  d: 16$/  d: 16\n  batch: 1\n  sigma: 1.0/' "$y"
dry_then_run axis "$y"
check "add axes at their default values (batch: 1, sigma: 1.0): 0 to run" \
    [ "$(agree axis)" = 0 ]
rows "$tmp/x.h5" >"$tmp/rows3"
check "... no rows added or changed" diff "$tmp/rows3" "$tmp/rows2"

# ---- changes that alter existing cells are refused, naming them ------------------------------
sed 's/^seed: 7/seed: 8/' "$y" >"$tmp/seed.yaml"
dry_then_run seed "$tmp/seed.yaml"
check "change the seed: refused by dry run and run, naming 'seed 7 -> 8'" refused seed "seed 7 -> 8"
sed 's/^  kl_rows: 8/  kl_rows: 16/' "$y" >"$tmp/kl.yaml"
dry_then_run kl "$tmp/kl.yaml"
check "change kl_rows: refused, naming 'measure.kl_rows 8 -> 16'" \
    refused kl "measure.kl_rows 8 -> 16"
sed 's/^  time_budget_s: 0.01/  time_budget_s: 0.02/' "$y" >"$tmp/tb.yaml"
dry_then_run tb "$tmp/tb.yaml"
check "change time_budget_s: refused, naming it" refused tb "measure.time_budget_s 0.01 -> 0.02"
check "... the file is unchanged by the refusals" diff <(rows "$tmp/x.h5") "$tmp/rows2"
check "... and records no refused text (4 texts: first, +T, +comment, +axes)" \
    [ "$(attr "$tmp/x.h5" text_count)" = 4 ]

# ---- an h5 data file whose content changes -----------------------------------------------------
# /Q, /K, /V of shape (2 heads, T = 32, hs = 8) from awk's generator with seed $2.
write_data() {
    local n
    for n in Q K V; do
        awk -v seed="$2" -v n="$n" 'BEGIN { srand(10 * seed + index("QKV", n));
            for (i = 0; i < 2 * 32 * 8; i++) printf "%.5f ", rand() - 0.5 }' \
            >"$tmp/$n.txt"
        printf 'PATH %s\nINPUT-CLASS TEXTFP\nRANK 3\nDIMENSION-SIZES 2 32 8\nOUTPUT-CLASS FP\nOUTPUT-SIZE 32\n' \
            "$n" >"$tmp/$n.cfg"
    done
    rm -f "$1"
    h5import "$tmp/Q.txt" -c "$tmp/Q.cfg" "$tmp/K.txt" -c "$tmp/K.cfg" "$tmp/V.txt" \
        -c "$tmp/V.cfg" -o "$1" >/dev/null
}
write_data "$tmp/data.h5" 1
cat >"$tmp/d.yaml" <<EOF
name: data
sweep:
  kernel: [softmax_flash, linear]
  T: [16, 32]
data: {source: h5, path: $tmp/data.h5}
measure: {time: false, max_ref_rows: 8, kl_rows: 4, kernel_pairs: 32}
EOF
"$BIN" run "$tmp/d.yaml" -o "$tmp/d.h5" --quiet >"$tmp/d1.out" 2>&1
check "h5 data: first run, 4 cells" grep -q ": 4 cells: 4 run" "$tmp/d1.out"
check "... the data file's hash is in cell_context" \
    attr_has "$tmp/d.h5" cell_context "data_file:$tmp/data.h5=sha256:"
sed -i 's/T: \[16, 32\]/T: [8, 16, 32]/' "$tmp/d.yaml"
dry_then_run d2 "$tmp/d.yaml" "$tmp/d.h5"
check "h5 data: add a T value, the same data: 2 to run" [ "$(agree d2)" = 2 ]
write_data "$tmp/data.h5" 2
dry_then_run d3 "$tmp/d.yaml" "$tmp/d.h5"
check "h5 data: new content at the same path: refused, naming the data file" \
    refused d3 "data_file:$tmp/data.h5 sha256:"
sed -n 's/^linattn run: /     /p' "$tmp/d3.err"

echo
if [ $fails -gt 0 ]; then
    echo "sweep_extend.sh: $fails check(s) failed"
    exit 1
fi
echo "sweep_extend.sh: all checks passed"
