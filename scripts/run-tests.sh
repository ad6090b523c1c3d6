#!/usr/bin/env bash
# run-tests.sh — runs every test binary given (cmocka suites and CLI tests) and the shell
# tests in tests/*.sh; prints one summary line "N passed, N failed".  Used by `make check`.
# Usage: scripts/run-tests.sh BUILD_DIR test_a test_b ...
set -u
build=$1; shift
export LINATTN_BIN=${LINATTN_BIN:-./linattn}
pass=0; fail=0; failed=()
for t in "$@"; do
    echo "=== $t"
    if "$build/tests/$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$t"); fi
done
for s in tests/*.sh; do
    [ -e "$s" ] || continue
    name=$(basename "$s")
    echo "=== $name"
    if bash "$s"; then pass=$((pass + 1)); else fail=$((fail + 1)); failed+=("$name"); fi
done
echo
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
