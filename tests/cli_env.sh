#!/usr/bin/env bash
# cli_env.sh — the code-path variables: an unknown LINATTN_SIMD / LINATTN_VMATH value (or one
# this CPU cannot run) is refused at start-up with one line naming the valid values and exit 2,
# for every command; a valid one (any case) runs, and `bench` prints the path it ran, its
# efficiency against the measured fp32 peak, and 1 thread unless --threads (OMP_NUM_THREADS
# does not change it).  Run by `make check` (scripts/run-tests.sh) with $LINATTN_BIN.
set -u
bin=${LINATTN_BIN:-./linattn}
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
refused() { # refused PATTERN VAR=VALUE -- ARGS...
    local pat=$1 env=$2; shift 3
    local out rc lines
    out=$(env "$env" "$bin" "$@" 2>&1); rc=$?
    lines=$(printf '%s\n' "$out" | grep -c .)
    if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! printf '%s' "$out" | grep -qE -- "$pat"; then
        fail "$env linattn $* -> exit $rc, $lines lines (want 2, 1 line matching '$pat'): $out"
    else
        echo "ok: $env linattn $* -> $out"
    fi
}
valid_simd="valid: avx512, avx2, scalar"
refused "LINATTN_SIMD='AVX3' is not a SIMD path; $valid_simd" LINATTN_SIMD=AVX3 -- list
refused "LINATTN_SIMD='bogus' is not a SIMD path; $valid_simd" LINATTN_SIMD=bogus -- \
    bench --T 64 --budget 0
refused "LINATTN_SIMD='avx' is not a SIMD path; $valid_simd" LINATTN_SIMD=avx -- check
refused "LINATTN_VMATH='sse' is not a vmath path; valid: .*scalar" LINATTN_VMATH=sse -- \
    run --help
if grep -qw avx512f /proc/cpuinfo && grep -qw avx512dq /proc/cpuinfo; then
    echo "skip: this CPU runs avx512, so LINATTN_SIMD=avx512 cannot be refused here"
else
    refused "LINATTN_SIMD='avx512': this CPU cannot run avx512; valid here: .*scalar" \
        LINATTN_SIMD=avx512 -- list
fi

# bench_tsv VAR=VALUE ARGS...: the one-shot bench as TSV; prints "threads simd peak_gflops".
bench_tsv() {
    local env=$1; shift
    env "$env" "$bin" bench --T 256 --budget 0 --ref-rows 8 --tsv "$@" | awk -F'\t' '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        { print $col["threads"], $col["simd"], $col["peak_gflops"] }'
}
read -r th simd peak < <(bench_tsv LINATTN_SIMD=scalar)
positive() { awk -v p="${1:-x}" 'BEGIN { exit !(p + 0 > 0) }'; }
if [ "${th:-}" = 1 ] && [ "${simd:-}" = scalar ] && positive "${peak:-}"; then
    echo "ok: LINATTN_SIMD=scalar bench -> threads $th, simd $simd, peak $peak GFLOP/s"
else
    fail "LINATTN_SIMD=scalar bench --tsv -> threads '${th:-}', simd '${simd:-}', peak '${peak:-}'"
fi
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
    read -r th simd peak < <(bench_tsv LINATTN_SIMD=AVX2 --threads 2)
    if [ "${th:-}" = 2 ] && [ "${simd:-}" = avx2 ]; then
        echo "ok: LINATTN_SIMD=AVX2 bench --threads 2 -> threads $th, simd $simd, peak $peak"
    else
        fail "LINATTN_SIMD=AVX2 bench --threads 2 --tsv -> threads '${th:-}', simd '${simd:-}'"
    fi
fi
out=$(env OMP_NUM_THREADS=2 "$bin" bench --T 256 --budget 0 --ref-rows 8 2>&1)
for want in "^threads +1$" "^simd path +(avx512|avx2|scalar) \(vmath (avx512|avx2|scalar)\)$" \
    "% of the fp32 peak \([0-9.]+ GFLOP/s, [0-9]+ chains of"; do
    if printf '%s\n' "$out" | grep -qE -- "$want"; then
        echo "ok: bench prints /$want/"
    else
        fail "OMP_NUM_THREADS=2 linattn bench: no line matching /$want/ in: $out"
    fi
done
exit $fails
