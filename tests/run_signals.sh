#!/usr/bin/env bash
# run_signals.sh — SIGTERM and SIGINT stop `linattn run` within about a second even while a
# single kernel call is running (a softmax cell at T = 40960 takes many seconds in one call):
# exit 128 + signal, the message says how many rows are stored and how to resume, the cell in
# flight has a row with status 2 (interrupted), and rerunning the same command resumes it.
# The signal is sent once the run is inside the long cell: its first (tiny) cell's row is in
# the file and the process has used 1 s of CPU since (the tiny cell needs milliseconds).
# Run: bash tests/run_signals.sh   (uses $LINATTN_BIN, default ./linattn; about 10 s)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LINATTN_BIN:-./linattn}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_run_signals.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. tests/lib/common.sh
need_bin run_signals.sh

cat >"$tmp/long.yaml" <<'EOF'
name: long
seed: 3
sweep:
  kernel: softmax_flash
  T: [64, 40960]
  d: 64
  threads: 1
measure: {time: false, max_ref_rows: 1, kl_rows: 1, kernel_pairs: 1}
EOF

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo -1; }
hz=$(getconf CLK_TCK)

# interrupt SIG CODE: one run, interrupted inside the long cell.
interrupt() {
    local sig=$1 code=$2 out=$tmp/$1.h5
    # A background job of a non-interactive shell starts with SIGINT ignored (and linattn
    # leaves an ignored signal alone): env --default-signal gives it the default back.
    env --default-signal=INT "$BIN" run "$tmp/long.yaml" -o "$out" --quiet \
        >"$tmp/$sig.out" 2>"$tmp/$sig.err" &
    pid=$!
    local i n=0 t=-1 t_row
    for i in $(seq 1200); do # up to 60 s for the first row
        n=$(nrows "$out")
        [ "${n:-0}" -ge 1 ] && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    check "$sig: the tiny cell's row is written first ($n rows)" [ "${n:-0}" -eq 1 ]
    t_row=$(cpu_ticks "$pid")
    for i in $(seq 1200); do # then 1 s of CPU: inside the long kernel call
        t=$(cpu_ticks "$pid")
        [ "$t" -lt 0 ] || [ "$t" -ge $((t_row + hz)) ] && break
        sleep 0.05
    done
    check "$sig: the run is inside the long cell (CPU ticks $t_row -> $t)" \
        [ "$t" -ge $((t_row + hz)) ]
    local t0 t1 rc
    t0=$(date +%s%N)
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    t1=$(date +%s%N)
    pid=
    local ms=$(((t1 - t0) / 1000000))
    echo "     $sig: exited $rc after $ms ms"
    check "$sig: exit code $code (rc=$rc)" [ "$rc" -eq "$code" ]
    check "$sig: stopped within 1.5 s ($ms ms)" [ "$ms" -le 1500 ]
    check "$sig: says how many rows are stored and how to resume" \
        grep -q "interrupted by SIG$sig during cell 1; 2 rows are stored in $out; rerun the same command to resume" \
        "$tmp/$sig.err"
    "$BIN" export "$out" --columns T,status,message >"$tmp/$sig.tsv" 2>&1
    check "$sig: the long cell has an interrupted row (status 2)" \
        grep -q "^40960	2	interrupted by SIG$sig" "$tmp/$sig.tsv"
    check "$sig: the tiny cell's row is ok" grep -q "^64	0	" "$tmp/$sig.tsv"
    "$BIN" run "$tmp/long.yaml" -o "$out" --dry-run >"$tmp/$sig.dry" 2>&1
    check "$sig: a resume would skip 1 of 2 cells (the interrupted one is retried)" \
        grep -q "1 of 2 cells already done" "$tmp/$sig.dry"
}

interrupt TERM 143
interrupt INT 130

# The resume finishes the interrupted cell (it takes the long call's full time, once).
"$BIN" run "$tmp/long.yaml" -o "$tmp/TERM.h5" --quiet >"$tmp/resume.out" 2>&1
rc=$?
check "resume after SIGTERM exits 0 (rc=$rc)" [ $rc -eq 0 ]
check "resume runs 1 and skips 1" grep -q ": 1 run, 1 skipped (resumed), 0 failed" "$tmp/resume.out"
"$BIN" export "$tmp/TERM.h5" --columns T,status >"$tmp/resume.tsv" 2>&1
check "the long cell now has an ok row too" grep -q "^40960	0$" "$tmp/resume.tsv"

# A signal between phases (right after the first row) is honoured at a check point by the
# main thread itself: same exit code, same message form.
"$BIN" run "$tmp/long.yaml" -o "$tmp/early.h5" --quiet >/dev/null 2>"$tmp/early.err" &
pid=$!
for i in $(seq 1200); do
    [ "$(nrows "$tmp/early.h5")" -ge 1 ] && break
    sleep 0.05
done
kill -TERM "$pid"
wait "$pid"
rc=$?
pid=
check "SIGTERM right after the first row exits 143 (rc=$rc)" [ $rc -eq 143 ]
check "... and says how to resume" grep -q "rerun the same command to resume" "$tmp/early.err"

echo
if [ $fails -gt 0 ]; then
    echo "run_signals.sh: $fails check(s) failed"
    exit 1
fi
echo "run_signals.sh: all checks passed"
