#!/usr/bin/env bash
# run_e2e.sh — end-to-end test of `linattn run`: a tiny experiment runs and writes one row per
# cell; a rerun resumes (skips everything); --dry-run and bad input write nothing; a changed
# experiment needs --fresh; --threads re-keys the cells; and a run killed with SIGKILL at random
# moments, rerun until done, ends with exactly the keys of an uninterrupted run, no duplicates;
# SIGTERM stops cleanly between cells.
# Run: bash tests/run_e2e.sh   (uses $LINATTN_BIN, default ./linattn; about 10 s on 2 cores)
set -u
cd "$(dirname "$0")/.." || exit 1 # the repository root: experiments/ and ./linattn are there
BIN=${LINATTN_BIN:-./linattn}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_run_e2e.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
. tests/lib/common.sh

need_bin run_e2e.sh

# Sorted keys of every row of a results file, one per line, duplicates kept.
keys() {
    if "$BIN" export --help >/dev/null 2>&1; then
        "$BIN" export "$1" --columns key | grep '^kernel=' | sort
    else
        h5dump -d /runs "$1" | grep -o '"kernel=[^"]*"' | tr -d '"' | sort
    fi
}

# ---- a tiny experiment, then a rerun that resumes ----------------------------------------
out=$tmp/x.h5
"$BIN" run experiments/tiny.yaml -o "$out" --quiet >"$tmp/run1.out" 2>"$tmp/run1.err"
rc=$?
check "tiny run exits 0 (rc=$rc)" [ $rc -eq 0 ]
check "tiny run writes the output file" [ -f "$out" ]
check "nothing on stderr with --quiet" [ ! -s "$tmp/run1.err" ]
summary=$(cat "$tmp/run1.out")
echo "     $summary"
ncells=$(sed -n 's/^[^:]*: \([0-9]*\) cells:.*/\1/p' "$tmp/run1.out")
check "summary counts cells ($ncells)" [ "${ncells:-0}" -gt 0 ]
check "summary: all run, none skipped, none failed" \
    grep -q ": $ncells run, 0 skipped (resumed), 0 failed; results in $out" "$tmp/run1.out"
nrows=$(keys "$out" | wc -l)
check "one row per cell ($nrows rows, $ncells cells)" [ "$nrows" -eq "$ncells" ]
if "$BIN" export --help >/dev/null 2>&1; then
    nexp=$("$BIN" export "$out" | grep -c 'linear\|softmax')
    check "export prints the rows ($nexp)" [ "$nexp" -ge "$ncells" ]
fi

"$BIN" run experiments/tiny.yaml -o "$out" >"$tmp/run2.out" 2>"$tmp/run2.err"
rc=$?
check "rerun exits 0" [ $rc -eq 0 ]
check "rerun skips every cell (resumed = $ncells)" \
    grep -q ": 0 run, $ncells skipped (resumed), 0 failed" "$tmp/run2.out"
check "rerun adds no rows" [ "$(keys "$out" | wc -l)" -eq "$ncells" ]
check "no progress line when stderr is not a terminal" [ ! -s "$tmp/run2.err" ]

# ---- --dry-run and bad input write nothing -----------------------------------------------
"$BIN" run experiments/tiny.yaml -o "$tmp/dry.h5" --dry-run >"$tmp/dry.out" 2>&1
rc=$?
check "--dry-run exits 0" [ $rc -eq 0 ]
check "--dry-run writes no file" [ ! -e "$tmp/dry.h5" ]
check "--dry-run prints the plan" grep -q "kernel=" "$tmp/dry.out"
"$BIN" run experiments/tiny.yaml -o "$out" --dry-run >"$tmp/dry2.out" 2>&1
check "--dry-run counts cells already done" \
    grep -q "$ncells of $ncells cells already done" "$tmp/dry2.out"

printf 'name: bad\nsweep:\n  T: [64]\n  kernal: softmax_flash\n' >"$tmp/bad.yaml"
"$BIN" run "$tmp/bad.yaml" -o "$tmp/bad.h5" >"$tmp/bad.out" 2>"$tmp/bad.err"
rc=$?
check "bad yaml exits 2 (rc=$rc)" [ $rc -eq 2 ]
check "bad yaml writes no file" [ ! -e "$tmp/bad.h5" ]
check "bad yaml: one error line" [ "$(wc -l <"$tmp/bad.err")" -eq 1 ]
check "... naming file:line:col" grep -q "bad.yaml:4:3: unknown key 'kernal'" "$tmp/bad.err"
sed 's/^/     /' "$tmp/bad.err"
"$BIN" run "$tmp/nonexistent.yaml" >/dev/null 2>&1
check "missing experiment file exits 2" [ $? -eq 2 ]
"$BIN" run experiments/tiny.yaml --threads 0 >/dev/null 2>&1
check "--threads 0 exits 2" [ $? -eq 2 ]
"$BIN" run experiments/tiny.yaml --no-such-option >/dev/null 2>&1
check "unknown option exits 2" [ $? -eq 2 ]
: >"$tmp/afile"
"$BIN" run experiments/tiny.yaml -o "$tmp/afile/x.h5" --quiet >/dev/null 2>"$tmp/unw.err"
rc=$?
check "unwritable output exits 2 (rc=$rc)" [ $rc -eq 2 ]

# A changed experiment text is refused on an existing file, unless --fresh.
sed 's/^seed: 7/seed: 8/' experiments/tiny.yaml >"$tmp/tiny8.yaml"
"$BIN" run "$tmp/tiny8.yaml" -o "$out" --quiet >/dev/null 2>"$tmp/changed.err"
rc=$?
check "changed experiment on an old file exits 2 (rc=$rc)" [ $rc -eq 2 ]
check "... and says --fresh" grep -q -- "--fresh" "$tmp/changed.err"
"$BIN" run "$tmp/tiny8.yaml" -o "$out" --quiet --fresh >"$tmp/fresh.out" 2>&1
check "--fresh starts over" grep -q ": $ncells run, 0 skipped" "$tmp/fresh.out"
check "--fresh leaves one row per cell" [ "$(keys "$out" | wc -l)" -eq "$ncells" ]

# --threads N runs every cell with N threads and keys the rows accordingly.
"$BIN" run experiments/tiny.yaml -o "$tmp/t2.h5" --threads 2 --quiet >/dev/null 2>&1
check "--threads 2 exits 0" [ $? -eq 0 ]
check "--threads 2 keys say threads=2" \
    [ "$(keys "$tmp/t2.h5" | grep -c ' threads=2 ')" -eq "$ncells" ]

# ---- SIGKILL at random moments, resume until done ----------------------------------------
cat >"$tmp/kill.yaml" <<'EOF'
name: killme
seed: 11
trials: 6
sweep:
  kernel: [softmax_flash, linear]
  map: [elu1, prf]
  causal: [false, true]
  T: [64, 128, 256]
  d: 16
maps:
  prf: {m: 32}
measure: {time_budget_s: 0.02, min_repeats: 2, warmup: 1, max_ref_rows: 32, kl_rows: 8,
          kernel_pairs: 64}
EOF
t0=$(date +%s.%N)
"$BIN" run "$tmp/kill.yaml" -o "$tmp/ref.h5" --quiet >"$tmp/ref.out" 2>&1
check "uninterrupted run exits 0" [ $? -eq 0 ]
t1=$(date +%s.%N)
keys "$tmp/ref.h5" >"$tmp/ref.keys"
nref=$(wc -l <"$tmp/ref.keys")
ref_ms=$(echo "($t1 - $t0) * 1000 / 1" | bc)
echo "     uninterrupted: $nref rows in $ref_ms ms"
# Kill moments scale with the machine's speed: uniform in [30, 30 + ref/5] ms, so the eight
# kills together cover most of a run and nearly all of them land before the end.
span=$((ref_ms / 5 > 20 ? ref_ms / 5 : 20))

RANDOM=4242 # reproducible kill moments
kills=0
for attempt in 1 2 3 4 5 6 7 8; do
    "$BIN" run "$tmp/kill.yaml" -o "$tmp/k.h5" --quiet >/dev/null 2>&1 &
    pid=$!
    ms=$((30 + RANDOM % span)) # here, not in $(...): a subshell would reseed RANDOM
    printf -v delay '%d.%03d' $((ms / 1000)) $((ms % 1000))
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    have=$([ -f "$tmp/k.h5" ] && keys "$tmp/k.h5" | wc -l || echo 0)
    [ "$have" -lt "$nref" ] && kills=$((kills + 1))
    echo "     kill $attempt after ${delay}s: $have rows so far"
done
check "runs were killed mid-way ($kills of 8 before the end)" [ "$kills" -ge 3 ]
done_runs=0
for attempt in 1 2 3 4 5; do
    "$BIN" run "$tmp/kill.yaml" -o "$tmp/k.h5" --quiet >"$tmp/k.out" 2>&1
    rc=$?
    done_runs=$((done_runs + 1))
    [ $rc -eq 0 ] && break
    echo "     resume $attempt exited $rc: $(cat "$tmp/k.out")"
done
check "resumed run completes (rc=$rc)" [ $rc -eq 0 ]
keys "$tmp/k.h5" >"$tmp/k.keys"
check "killed+resumed has no duplicate keys" [ -z "$(uniq -d "$tmp/k.keys")" ]
check "killed+resumed has the keys of the uninterrupted run ($(wc -l <"$tmp/k.keys") vs $nref)" \
    cmp -s "$tmp/ref.keys" "$tmp/k.keys"

# ---- SIGTERM: stop between cells, close the file cleanly, exit 143, resume ---------------
# The signal goes out once the run has written its first row (its handler is in place before
# the first cell starts): poll the results file, which readers may open while a run appends,
# for up to 60 s.  A run that ends first, or never writes a row, fails the checks below.
"$BIN" run "$tmp/kill.yaml" -o "$tmp/term.h5" --quiet >"$tmp/term.out" 2>"$tmp/term.err" &
pid=$!
seen=0
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ] && kill -0 "$pid" 2>/dev/null; do
    seen=$([ -f "$tmp/term.h5" ] && keys "$tmp/term.h5" 2>/dev/null | wc -l || echo 0)
    [ "$seen" -ge 1 ] && break
    sleep 0.02 # the polling interval, not a guess at when the run gets there
done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
rc=$?
have=$(keys "$tmp/term.h5" | wc -l)
check "SIGTERM sent after the first row ($seen of $nref rows then)" [ "$seen" -ge 1 ]
check "SIGTERM mid-run exits 143 (rc=$rc, $have of $nref rows)" [ $rc -eq 143 ]
check "... before the last row" [ "$have" -lt "$nref" ]
check "... says how to resume" grep -q "rerun the same command" "$tmp/term.err"
"$BIN" run "$tmp/kill.yaml" -o "$tmp/term.h5" --quiet >"$tmp/term2.out" 2>&1
# The cell in flight was recorded as interrupted (not ok); the rerun runs it again.
check "... and the rerun completes: its ok rows have the keys of an uninterrupted run" \
    cmp -s "$tmp/ref.keys" <("$BIN" export "$tmp/term.h5" --status ok --columns key | grep '^kernel=' | sort)
check "... at most one interrupted row" [ "$("$BIN" export "$tmp/term.h5" --status interrupted --columns key | grep -c '^kernel=')" -le 1 ]

echo
if [ $fails -gt 0 ]; then
    echo "run_e2e.sh: $fails check(s) failed"
    exit 1
fi
echo "run_e2e.sh: all checks passed"
