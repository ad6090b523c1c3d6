#!/usr/bin/env bash
# run_diskfull.sh — a results file that cannot be written stops `linattn run` at once: exit 3,
# the summary says it stopped, stderr says how many rows are stored, and that number is what
# `linattn export` reads and what a resume skips once there is room; the resume then completes.
# Two ways to run out of room: a small tmpfs (when this user may mount one, e.g. root) of several
# sizes, so that both the journal write and the HDF5 flush are the write that fails; and a file
# size limit (ulimit -f: writes fail with EFBIG, SIGXFSZ is ignored), which needs no privilege.
# Run: bash tests/run_diskfull.sh   (uses $LINATTN_BIN, default ./linattn; a few seconds)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=$(realpath "${LINATTN_BIN:-./linattn}")
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_run_diskfull.XXXXXX")
mnt=$tmp/mnt
mkdir "$mnt"
trap 'mountpoint -q "$mnt" && umount "$mnt"; rm -rf "$tmp"' EXIT
. tests/lib/common.sh
need_bin run_diskfull.sh

# 720 cells of a few milliseconds each: about 1.2 KiB of journal and of .h5 per row.
cat >"$tmp/many.yaml" <<'EOF'
name: many
seed: 5
trials: 60
sweep:
  kernel: [softmax_flash, linear]
  map: [elu1, prf]
  causal: [false, true]
  T: [16, 32]
  d: 8
maps:
  prf: {m: 8}
measure: {time: false, max_ref_rows: 4, kl_rows: 2, kernel_pairs: 4}
EOF
ncells=720

# stopped NAME OUT: the checks on a run that ran out of room ($tmp/run.out, $tmp/run.err, $rc).
stopped() {
    local name=$1 out=$2
    check "$name: exit 3 (rc=$rc)" [ "$rc" -eq 3 ]
    check "$name: the summary says it stopped: $(cat "$tmp/run.out")" \
        grep -q "; stopped: results file not writable, [0-9]* cells\{0,1\} not run$" "$tmp/run.out"
    said=$(sed -n 's/^linattn run: stopped: \([0-9]*\) rows are stored in .*/\1/p' "$tmp/run.err")
    check "$name: stderr says how many rows are stored ($said): $(head -1 "$tmp/run.err")" \
        [ -n "$said" ]
    check "$name: stderr has the error and the stop line only" [ "$(wc -l <"$tmp/run.err")" -eq 2 ]
    local ran
    ran=$(sed -n 's/^[^:]*: [0-9]* cells\{0,1\}: \([0-9]*\) run.*/\1/p' "$tmp/run.out")
    check "$name: the summary's run count is the rows stored ($ran)" [ "${ran:--1}" = "$said" ]
    got=$(nrows "$out")
    check "$name: export reads the $said rows said to be stored ($got)" [ "$got" = "$said" ]
}

# resumed NAME OUT: the resume once there is room ($tmp/res.out, $rc).
resumed() {
    local name=$1 out=$2
    check "$name: the resume exits 0 (rc=$rc)" [ "$rc" -eq 0 ]
    check "$name: the resume skips the $said stored rows: $(cat "$tmp/res.out")" \
        grep -q ": $((ncells - said)) run, $said skipped (resumed), 0 failed" "$tmp/res.out"
    check "$name: the file ends with one row per cell" [ "$(nrows "$out")" -eq $ncells ]
}

if mount -t tmpfs -o size=200k tmpfs "$mnt" 2>/dev/null; then
    umount "$mnt"
    declare -A seen=()
    for kb in 200 333 600; do
        mount -t tmpfs -o size=${kb}k tmpfs "$mnt" || { bad "mount a ${kb}k tmpfs"; continue; }
        "$BIN" run "$tmp/many.yaml" -o "$mnt/m.h5" --quiet >"$tmp/run.out" 2>"$tmp/run.err"
        rc=$?
        stopped "tmpfs ${kb}k" "$mnt/m.h5"
        case $(head -1 "$tmp/run.err") in
        *journal*) seen[journal]=1 ;;
        *flush*) seen[flush]=1 ;;
        esac
        mount -o remount,size=8m "$mnt"
        "$BIN" run "$tmp/many.yaml" -o "$mnt/m.h5" --quiet >"$tmp/res.out" 2>&1
        rc=$?
        resumed "tmpfs ${kb}k" "$mnt/m.h5"
        umount "$mnt"
    done
    check "the tmpfs sizes made both the journal write and the HDF5 flush fail (${!seen[*]})" \
        [ "${#seen[@]}" -eq 2 ]
else
    echo "skip the tmpfs cases: this user cannot mount a tmpfs"
fi

for kb in 100 300; do
    out=$tmp/u$kb.h5
    (ulimit -f $kb && exec "$BIN" run "$tmp/many.yaml" -o "$out" --quiet) \
        >"$tmp/run.out" 2>"$tmp/run.err"
    rc=$?
    stopped "ulimit -f $kb" "$out"
    "$BIN" run "$tmp/many.yaml" -o "$out" --quiet >"$tmp/res.out" 2>&1
    rc=$?
    resumed "ulimit -f $kb" "$out"
done

echo
if [ $fails -gt 0 ]; then
    echo "run_diskfull.sh: $fails check(s) failed"
    exit 1
fi
echo "run_diskfull.sh: all checks passed"
