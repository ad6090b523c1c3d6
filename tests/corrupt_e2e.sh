#!/usr/bin/env bash
# corrupt_e2e.sh — no command dies by a signal on a damaged results file, and `run` recovers it.
# A real results file (experiments/tiny.yaml) gets 8 random bytes (fixed seed) written over
# every 8-byte window of its first 4 KiB (offsets 0, 8, ..., 4088) and over 40 random windows
# further on, one window per copy; plus 0xff bytes at offsets 120, 168, 688, 704 and 808, which
# crash libhdf5 1.10.8 in a plain read.  On each copy: `info`, `export` and `run` (with the intact
# journal: rebuilds the file and goes on); `run --dry-run` (must write nothing) on every 4th
# window and `plot` on every 16th (to keep the test near a minute; plot runs gnuplot).  Required: no exit by a signal or a
# timeout; info/export exit 0 or 2, and on 2 print exactly one line; after `run` the exported
# keys and statuses equal those of the uninterrupted run.  Then the hard cases: a damaged .h5
# without journal (one-line error, exit 2, also from `run`), and a damaged journal beside an
# intact .h5 (the .h5 wins).  Prints the counts.
# Run: bash tests/corrupt_e2e.sh   (uses $LINATTN_BIN, default ./linattn; about a minute on
# 2 cores; CORRUPT_JOBS=N runs N windows at a time, default 2)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LINATTN_BIN:-./linattn}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
EXP=experiments/tiny.yaml
LIMIT=120 # seconds for one command; reaching it counts as a hang

# ---- one window (the test calls itself with --window) ----------------------------------------
# Prints: OFF info export plot dryrun run dry_clean rows_same info_lines export_lines, and 1
# when info's probe child was killed (HDF5 crashed or looped on the file in the child)
if [ "${1:-}" = --window ]; then
    base=$2 off=$3 hex=$4 nth=$5
    w=$(mktemp -d "$base.w.XXXXXX")
    cp "$base" "$w/x.h5" && cp "$base.journal" "$w/x.h5.journal" || exit 1
    printf "$(sed 's/../\\x&/g' <<<"$hex")" |
        dd of="$w/x.h5" bs=1 seek="$off" conv=notrunc status=none
    timeout -k 5 $LIMIT "$BIN" info "$w/x.h5" >/dev/null 2>"$w/info.err"; ri=$?
    timeout -k 5 $LIMIT "$BIN" export "$w/x.h5" >/dev/null 2>"$w/export.err"; re=$?
    rp=-
    if [ $((nth % 16)) = 0 ]; then
        timeout -k 5 $LIMIT "$BIN" plot "$w/x.h5" -o "$w/plots" --quiet >/dev/null 2>&1; rp=$?
        rm -rf "$w/plots"
    fi
    rn=- clean=1
    if [ $((nth % 4)) = 0 ]; then
        before=$(cd "$w" && ls -A && cksum x.h5 x.h5.journal)
        timeout -k 5 $LIMIT "$BIN" run --dry-run "$EXP" -o "$w/x.h5" >/dev/null 2>&1; rn=$?
        after=$(cd "$w" && ls -A && cksum x.h5 x.h5.journal)
        clean=$([ "$before" = "$after" ] && echo 1 || echo 0)
    fi
    timeout -k 5 $LIMIT "$BIN" run "$EXP" -o "$w/x.h5" --quiet >/dev/null 2>"$w/run.err"; rr=$?
    same=0
    if [ $rr -eq 0 ] && "$BIN" export "$w/x.h5" --columns key,status 2>/dev/null | sort |
        cmp -s - "$base.rows"; then
        same=1
    fi
    # Kept for the report when an exit status is neither 0 nor 2.
    { [ $ri = 0 ] || [ $ri = 2 ]; } || head -5 "$w/info.err" | sed 's/^/       info: /' >"$(dirname "$base")/err.$off"
    { [ $re = 0 ] || [ $re = 2 ]; } || head -5 "$w/export.err" | sed 's/^/       export: /' >>"$(dirname "$base")/err.$off"
    probe=$(grep -c 'crashes HDF5\|does not finish' "$w/info.err")
    echo "$off $ri $re $rp $rn $rr $clean $same $(wc -l <"$w/info.err") $(wc -l <"$w/export.err") $probe"
    rm -rf "$w"
    exit 0
fi

. tests/lib/common.sh
need_bin corrupt_e2e.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_corrupt.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

base=$tmp/base.h5
if ! "$BIN" run "$EXP" -o "$base" --quiet >/dev/null 2>"$tmp/base.err"; then
    bad "the uninterrupted run: $(cat "$tmp/base.err")"
    exit 1
fi
"$BIN" export "$base" --columns key,status | sort >"$base.rows"
size=$(stat -c %s "$base")
echo "     results file: $size bytes, $(($(wc -l <"$base.rows") - 1)) rows, journal" \
     "$(stat -c %s "$base.journal") bytes"

# The windows and their bytes, from a fixed seed.
RANDOM=20240611
hexbytes() { local h="" i; for i in 1 2 3 4 5 6 7 8; do h+=$(printf %02x $((RANDOM % 256))); done; echo "$h"; }
: >"$tmp/windows"
n=0
for ((off = 0; off < 4096 && off + 8 <= size; off += 8)); do
    echo "$off $(hexbytes) $n" >>"$tmp/windows"
    n=$((n + 1))
done
for ((k = 0; k < 40; k++)); do
    off=$(( (RANDOM * 32768 + RANDOM) % (size - 4096 - 8) + 4096 ))
    echo "$off $(hexbytes) $k" >>"$tmp/windows"
done
# The five offsets of the issue report, filled with 0xff (which crashed libhdf5 at each).
for off in 120 168 688 704 808; do
    echo "$off ffffffffffffffff 0" >>"$tmp/windows"
done
jobs=${CORRUPT_JOBS:-2}
# shellcheck disable=SC2016
xargs -P "$jobs" -L 1 bash -c 'bash "$0" --window "$1" "$2" "$3" "$4"' "$0" "$base" \
    <"$tmp/windows" >"$tmp/results"

awk -v want="$(wc -l <"$tmp/windows")" -v tmpd="$tmp" '
    function dead(rc) { return rc != "-" && (rc + 0 > 128 || rc + 0 == 124) }
    { n++
      for (i = 2; i <= 6; i++) if (dead($i)) { deaths++; print "     signal/timeout: window " $1 " (info export plot dry-run run: " $2, $3, $4, $5, $6 ")" }
      if ($4 != "-") plots++
      if ($5 != "-") dryruns++
      if ($2 == 2) detected++
      if ($11 == 1) probed++
      if (($2 != 0 && $2 != 2) || ($3 != 0 && $3 != 2)) { badrc++; print "     exit status not 0 or 2: window " $1 ": info " $2 ", export " $3; system("cat " tmpd "/err." $1) }
      if (($2 == 2 && $9 != 1) || ($3 == 2 && $10 != 1)) { lines++; print "     not one line: window " $1 }
      if ($7 != 1) { dirty++; print "     --dry-run wrote: window " $1 }
      if ($8 == 1) same++; else print "     not recovered: window " $1 " (run exit " $6 ")"
    }
    END {
      printf "     windows %d (of %d), plot on %d, dry-run on %d; damage seen by info %d (%d of them crashed or hung HDF5 in the probe child); signal deaths or hangs %d;\n", n, want, plots, dryruns, detected, probed, deaths
      printf "     exit not 0/2 %d; errors longer than one line %d; dry-runs that wrote %d; recovered to the uninterrupted rows %d\n", badrc, lines, dirty, same
      exit !(n == want && deaths == 0 && badrc == 0 && lines == 0 && dirty == 0 && same == n)
    }' "$tmp/results" && pass "every window: no signal, one-line errors, run recovers the rows" ||
    bad "damaged windows (counts above)"

# ---- no journal: a one-line error, exit 2, from every command ------------------------------
# A window of the first KiB that info sees as damaged, with its journal removed.
w=$tmp/nj
mkdir -p "$w"
found=0
for off in 0 8 16 24 32 40 48 56 64 96 120 168; do
    cp "$base" "$w/x.h5"
    rm -f "$w/x.h5.journal"
    printf '\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5' | dd of="$w/x.h5" bs=1 seek=$off conv=notrunc status=none
    "$BIN" info "$w/x.h5" >/dev/null 2>"$w/err" && continue
    found=1
    break
done
if [ $found = 1 ]; then
    ok=1
    for cmd in info export "run $EXP -o" "plot"; do
        if [ "$cmd" = plot ]; then
            "$BIN" plot "$w/x.h5" -o "$w/plots" --quiet >/dev/null 2>"$w/err"; rc=$?
        else
            # shellcheck disable=SC2086
            "$BIN" $cmd "$w/x.h5" >/dev/null 2>"$w/err"; rc=$?
        fi
        if [ $rc -ne 2 ] || [ "$(wc -l <"$w/err")" -ne 1 ]; then
            ok=0
            echo "     $cmd: exit $rc: $(cat "$w/err")"
        fi
    done
    echo "     $(head -1 "$w/err")"
    [ $ok = 1 ] && pass "damaged .h5 without journal (offset $off): one line, exit 2 from info, export, run, plot" ||
        bad "damaged .h5 without journal"
else
    bad "no window of the first KiB made info fail (the no-journal case was not tested)"
fi

# ---- a damaged journal beside an intact .h5 ------------------------------------------------------
jsize=$(stat -c %s "$base.journal")
jbad=0
for off in 0 40 200 $((jsize / 2)) $((jsize - 16)); do
    cp "$base" "$w/x.h5"
    cp "$base.journal" "$w/x.h5.journal"
    printf '\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5' | dd of="$w/x.h5.journal" bs=1 seek=$off conv=notrunc status=none
    "$BIN" export "$w/x.h5" --columns key,status 2>/dev/null | sort | cmp -s - "$base.rows" || jbad=$((jbad + 1))
    "$BIN" run "$EXP" -o "$w/x.h5" --quiet >/dev/null 2>&1; rc=$?
    { [ $rc -eq 0 ] && "$BIN" export "$w/x.h5" --columns key,status | sort | cmp -s - "$base.rows"; } ||
        { jbad=$((jbad + 1)); echo "     journal damaged at $off: run exit $rc"; }
done
[ $jbad -eq 0 ] && pass "damaged journal (5 offsets): export reads the .h5, run goes on with its rows" ||
    bad "damaged journal: $jbad failures"

echo
[ $fails -eq 0 ] && echo "corrupt_e2e.sh: all passed" || echo "corrupt_e2e.sh: $fails failed"
[ $fails -eq 0 ]
