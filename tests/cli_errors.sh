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
expect 2 "T expects an integer"        -- bench --T 0
expect 2 "d expects an integer"        -- bench --d 0
expect 2 "T expects an integer"        -- bench --T abc
expect 2 "T expects an integer"        -- bench --T 12x
expect 2 "sigma expects a number"      -- bench --sigma nan
expect 2 "unknown feature map 'elu'.*valid: .*elu1"   -- bench --map elu
expect 2 "unknown kernel 'softmax'.*valid: .*softmax_flash" -- bench --kernel softmax
expect 2 "needs about .* GB"           -- bench --T 50000000 --d 4096
expect 2 "needs a value"               -- bench --T
expect 2 "unknown option '--frobnicate'" -- bench --frobnicate 3
expect 2 "causal only"                 -- bench --kernel linear_causal_chunked
expect 2 "unknown command 'lst'.*did you mean 'list'" -- lst
expect 0 "softmax_flash"               -- list
expect 0 "elu1"                        -- list
expect 0 "usage: linattn bench"        -- help bench
expect 0 "usage: linattn bench"        -- bench --help
expect 0 "passed, 0 failed"            -- check
exit $fails
