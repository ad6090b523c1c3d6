#!/usr/bin/env bash
# bench_threads.sh — the summary of `linattn bench --suite --threads-only --threads-runs N`:
# for every row of the section, a line per head count (speedups min / median / max over the runs)
# and, at two threads, the line of the one-head speedup over the two-head one per run, whose
# min / median / max must be those of the ratios of the speedups the runs printed (two decimals
# there, so within rounding; with two runs the printed median is the larger, as in the other
# summary lines).  Tiny sizes and no time budget: the numbers are not measurements, only the
# bookkeeping is checked.  Never timed.
# Run: bash tests/bench_threads.sh (scripts/run-tests.sh runs it with $LINATTN_BIN).
set -u
bin=${LINATTN_BIN:-./linattn}
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/linattn-bench-threads.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$bin" bench --suite --threads-only --threads 2 --threads-runs 2 --d 16 --Tmax 64 --budget 0 \
    > "$tmp/out" 2> "$tmp/err" || { bad "bench --threads-only failed: $(cat "$tmp/err")"; exit 1; }

rows=$(awk '$0 !~ /^#/ && NF == 11 && $5 == 2 && $1 != "kernel" { print $1 " " $2 }' "$tmp/out" |
    sort -u)
nrows=$(printf '%s\n' "$rows" | grep -c .)
if [ "$nrows" -ge 8 ]; then ok "$nrows rows (kernel, causal) in the section"; else
    bad "only $nrows rows in: $(cat "$tmp/out")"; fi

while read -r name causal; do
    [ -n "$name" ] || continue
    for h in 1 2; do
        if grep -Eq "^# $name +causal $causal heads $h: " "$tmp/out"; then :; else
            bad "no summary line for $name causal $causal heads $h"; fi
    done
    line=$(grep -E "^# $name +causal $causal one head / two heads, per run: " "$tmp/out")
    if [ -z "$line" ]; then bad "no one-head / two-head line for $name causal $causal"; continue; fi
    # The ratios recomputed from the runs' rows (speedups printed as 1.23x).
    want=$(awk -v n="$name" -v c="$causal" '
        $0 !~ /^#/ && $1 == n && $2 == c && NF == 11 {
            s = $8; sub(/x$/, "", s)
            if ($3 == 1) one[++a] = s; else two[++b] = s
        }
        END {
            for (i = 1; i <= a; i++) r[i] = one[i] / two[i]
            for (i = 1; i <= a; i++) for (j = i + 1; j <= a; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            printf "%d %.6f %.6f %.6f\n", a, r[1], r[int(a / 2) + 1], r[a]
        }' "$tmp/out")
    read -r nruns wmin wmed wmax <<< "$want"
    got=$(printf '%s\n' "$line" | sed -E 's/.*per run: ([0-9.]+) \/ ([0-9.]+) \/ ([0-9.]+)$/\1 \2 \3/')
    read -r gmin gmed gmax <<< "$got"
    if [ "$nruns" != 2 ]; then bad "$name causal $causal: $nruns runs of rows, not 2"; continue; fi
    if awk -v a="$gmin" -v b="$gmed" -v c="$gmax" -v x="$wmin" -v y="$wmed" -v z="$wmax" '
        function near(p, q) { return (p - q < 0 ? q - p : p - q) <= 0.01 * q + 0.006 }
        BEGIN { exit !(a <= b && b <= c && near(a, x) && near(b, y) && near(c, z)) }'; then
        ok "$name causal $causal: one head / two heads $gmin / $gmed / $gmax"
    else
        bad "$name causal $causal: printed $gmin / $gmed / $gmax, from the runs' rows $wmin / $wmed / $wmax"
    fi
done <<< "$rows"

[ "$fails" -eq 0 ] && echo "bench_threads: all ok" || echo "bench_threads: $fails failed"
[ "$fails" -eq 0 ]
