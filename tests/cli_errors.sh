#!/usr/bin/env bash
# cli_errors.sh — bad command-line input gives a one-line error and exit code 2, never a crash;
# `list` and `check` work.  Run by `make check` (scripts/run-tests.sh) with $LINATTN_BIN.
set -u
bin=${LINATTN_BIN:-./linattn}
fails=0
expect() { # expect CODE PATTERN -- ARGS...
    local code=$1 pat=$2; shift 3
    local out rc
    out=$("$bin" "$@" 2>&1); rc=$?
    local lines; lines=$(printf '%s\n' "$out" | grep -c .)
    if [ "$rc" -ne "$code" ] || ! printf '%s' "$out" | grep -qE -- "$pat"; then
        echo "FAIL: linattn $* -> exit $rc (want $code), output: $out"; fails=$((fails + 1))
    elif [ "$code" -eq 2 ] && [ "$lines" -ne 1 ]; then
        echo "FAIL: linattn $* -> $lines lines of error (want 1): $out"; fails=$((fails + 1))
    else
        echo "ok: linattn $*"
    fi
}
# bench's cell options are read by the parameter schema: an experiment file's ranges and messages.
expect 2 "^linattn bench: --T must be in 1\.\.16777216, got 0$"  -- bench --T 0
expect 2 "^linattn bench: --T must be in 1\.\.16777216, got 50000000$" -- bench --T 50000000
expect 2 "^linattn bench: --d must be in 1\.\.16384, got 0$"     -- bench --d 0
expect 2 "^linattn bench: --T: expected an integer, got 'abc'$"  -- bench --T abc
expect 2 "^linattn bench: --T: expected an integer, got '12x'$"  -- bench --T 12x
expect 2 "^linattn bench: --sigma: expected a number, got 'nan'$" -- bench --sigma nan
expect 2 "^linattn bench: --sigma must be > 0, got 0$"            -- bench --sigma 0
expect 2 "^linattn bench: --A must be < 0.25 \(1 - 4A > 0\), got 0.25$" -- bench --A 0.25
expect 2 "^linattn bench: --A \(a number or auto\): expected a number, got 'aut'$" -- bench --A aut
expect 2 "^linattn bench: --relu-eps must be >= 0, got -1e-3$"    -- bench --relu-eps -1e-3
expect 2 "^linattn bench: --m must be in 1\.\.1048576, got 0$"   -- bench --m 0
expect 2 "^linattn bench: unknown draw 'iidd' \(did you mean 'iid'\?\); valid draws: iid, orthogonal$" -- bench --draw iidd
expect 2 "unknown feature map 'elu'.*valid maps: .*elu1"   -- bench --map elu
expect 2 "unknown kernel 'softmax'.*valid kernels: .*softmax_flash" -- bench --kernel softmax
expect 2 "kernel 'linear_prefill' is a prefill kernel; runs and bench time forward and step kernels only" -- bench --kernel linear_prefill
expect 2 "unknown data source 'sphre'.*valid sources: gaussian, sphere, h5" -- bench --data sphre
expect 2 "--data h5 needs an HDF5 file"   -- bench --data h5
expect 2 "--data model needs a checkpoint" -- bench --data model
expect 2 "^linattn bench: --weights: cannot read '/nonexistent/w.h5': No such file" -- bench --weights /nonexistent/w.h5
expect 2 "--causal takes no value"     -- bench --causal=1
expect 2 "needs about .* GB"           -- bench --T 16000000 --d 4096
expect 2 "needs a value"               -- bench --T
expect 2 "unknown option '--frobnicate'" -- bench --frobnicate 3
expect 2 "causal only"                 -- bench --kernel linear_causal_chunked
expect 2 "unknown command 'lst'.*did you mean 'list'" -- lst
expect 0 "softmax_flash"               -- list
expect 0 "elu1"                        -- list
expect 0 "usage: linattn bench"        -- help bench
expect 0 "usage: linattn bench"        -- bench --help
# Every bench option keeps its spelling (the cell's come from the schema's flag names).
for opt in T d dv map kernel causal m draw norm-fixed A weights relu-eps seed eps chunk heads \
    batch threads data sigma norm budget ref-rows tsv Tmin Tmax; do
    expect 0 "^  --$opt( |$)" -- bench --help
done
expect 0 "passed, 0 failed"            -- check
exit $fails
