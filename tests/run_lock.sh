#!/usr/bin/env bash
# run_lock.sh — one writer per results file, whatever name reaches it, and --fresh replaces
# only results files.  While a run writes real.h5, a second run is refused (exit 2, "locked",
# no row added, no journal left behind) through the same path, a symbolic link to the file, a
# symbolic link to its directory and a hard link.  --fresh through a symbolic link rewrites the
# file it points to and leaves the link a link.  --fresh is refused (exit 2, one line, file
# unchanged) for the experiment file itself (also through a link), a text file and an HDF5 file
# that is not a results file; it is allowed for a results file whose .h5 is damaged but whose
# journal is intact.
# Run: bash tests/run_lock.sh   (uses $LINATTN_BIN, default ./linattn; a few seconds)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LINATTN_BIN:-./linattn}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_run_lock.XXXXXX")
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. tests/lib/common.sh
need_bin run_lock.sh

# A first cell that writes a row at once, then one that runs for many seconds.
cat >"$tmp/long.yaml" <<'EOF'
name: long
seed: 3
sweep:
  kernel: softmax_flash
  T: [64, 65536]
  d: 64
  threads: 1
measure: {time: false, max_ref_rows: 1, kl_rows: 1, kernel_pairs: 1}
EOF
mkdir "$tmp/d"
"$BIN" run "$tmp/long.yaml" -o "$tmp/d/real.h5" --quiet >/dev/null 2>&1 &
pid=$!
for i in $(seq 1200); do
    [ "$(nrows "$tmp/d/real.h5")" -ge 1 ] && break
    sleep 0.05
done
check "the first run has written its first row" [ "$(nrows "$tmp/d/real.h5")" -eq 1 ]
ln -s real.h5 "$tmp/d/link.h5"
ln "$tmp/d/real.h5" "$tmp/d/hard.h5"
ln -s d "$tmp/dirlink"
for name in d/real.h5 d/link.h5 dirlink/real.h5 d/hard.h5; do
    for fresh in "" --fresh; do
        "$BIN" run "$tmp/long.yaml" -o "$tmp/$name" --quiet $fresh >"$tmp/2.out" 2>"$tmp/2.err"
        rc=$?
        check "a second run through $name ${fresh:-(resume)} is refused (rc=$rc)" [ $rc -eq 2 ]
        check "... saying the file is locked" grep -q "is locked: another linattn run is writing it" \
            "$tmp/2.err"
        check "... in one line" [ "$(wc -l <"$tmp/2.err")" -eq 1 ]
    done
done
check "the first run's file still has 1 row" [ "$(nrows "$tmp/d/real.h5")" -eq 1 ]
check "the first run is still running" kill -0 "$pid"
check "no journal left behind for the hard link" [ ! -e "$tmp/d/hard.h5.journal" ]
check "no journal next to the links" [ ! -e "$tmp/d/link.h5.journal" ]
kill -TERM "$pid"
wait "$pid"
pid=
rm -f "$tmp/d/hard.h5"

# The other way round: the first run writes through the link, the second names the file.
"$BIN" run "$tmp/long.yaml" -o "$tmp/d/link.h5" --quiet >/dev/null 2>&1 &
pid=$!
for i in $(seq 1200); do # only the long cell is left: wait until the run holds its lock
    flock -n "$tmp/d/real.h5.journal" true 2>/dev/null || break
    sleep 0.05
done
check "the run through the link holds the real file's lock" \
    bash -c "! flock -n '$tmp/d/real.h5.journal' true"
n0=$(nrows "$tmp/d/real.h5")
"$BIN" run "$tmp/long.yaml" -o "$tmp/d/real.h5" --quiet >/dev/null 2>"$tmp/3.err"
rc=$?
check "first through the link, second through the real path: refused (rc=$rc)" [ $rc -eq 2 ]
check "... saying the file is locked" grep -q "is locked" "$tmp/3.err"
check "... and no row was added ($n0 rows)" [ "$(nrows "$tmp/d/real.h5")" -eq "$n0" ]
kill -TERM "$pid"
wait "$pid"
pid=

# --fresh through a symbolic link: the file it names is rewritten, the link stays.
"$BIN" run experiments/tiny.yaml -o "$tmp/d/link.h5" --fresh --quiet >"$tmp/f.out" 2>&1
rc=$?
check "--fresh through the link exits 0 (rc=$rc)" [ $rc -eq 0 ]
check "the link is still a link to real.h5" [ "$(readlink "$tmp/d/link.h5")" = real.h5 ]
ncells=$(sed -n 's/^[^:]*: \([0-9]*\) cells:.*/\1/p' "$tmp/f.out")
check "real.h5 holds the new run ($(nrows "$tmp/d/real.h5") rows, $ncells cells)" \
    [ "$(nrows "$tmp/d/real.h5")" -eq "${ncells:-0}" ]
check "real.h5 holds the tiny experiment" grep -q "experiment_name.*tiny" \
    <("$BIN" info "$tmp/d/real.h5" 2>&1)
check "the journal is the real file's" [ -f "$tmp/d/real.h5.journal" ]
check "... and none is made for the link" [ ! -e "$tmp/d/link.h5.journal" ]

# --fresh replaces only results files.
cp experiments/tiny.yaml "$tmp/x.yaml"
cp "$tmp/x.yaml" "$tmp/x.orig"
ln -s x.yaml "$tmp/xlink.h5"
echo "notes, not results" >"$tmp/notes.txt"
cp "$tmp/notes.txt" "$tmp/notes.orig"
h5copy -i "$tmp/d/real.h5" -o "$tmp/foreign.h5" -s /runs -d /data >/dev/null 2>&1
cp "$tmp/foreign.h5" "$tmp/foreign.orig" 2>/dev/null
refuse() { # refuse NAME OUT ORIG PATTERN [--fresh]
    local name=$1 out=$2 orig=$3 pat=$4; shift 4
    "$BIN" run "$tmp/x.yaml" -o "$out" --quiet "$@" >/dev/null 2>"$tmp/r.err"
    local rc=$?
    check "$name ${1:-(resume)} is refused (rc=$rc)" [ $rc -eq 2 ]
    check "... with one line: $(head -1 "$tmp/r.err")" [ "$(wc -l <"$tmp/r.err")" -eq 1 ]
    check "... that says why" grep -q "$pat" "$tmp/r.err"
    check "... and the file is unchanged" cmp -s "$out" "$orig"
}
refuse "-o the experiment file" "$tmp/x.yaml" "$tmp/x.orig" "is the experiment file" --fresh
refuse "-o the experiment file" "$tmp/x.yaml" "$tmp/x.orig" "is the experiment file"
refuse "-o a link to the experiment file" "$tmp/xlink.h5" "$tmp/x.orig" "is the experiment file" --fresh
check "... and the link is still a link" [ -L "$tmp/xlink.h5" ]
refuse "-o a text file" "$tmp/notes.txt" "$tmp/notes.orig" "is not a linattn results file" --fresh
if [ -f "$tmp/foreign.h5" ]; then
    refuse "-o an HDF5 file that is not a results file" "$tmp/foreign.h5" "$tmp/foreign.orig" \
        "is not a linattn results file" --fresh
else
    echo "skip the foreign HDF5 file (h5copy failed)"
fi

# A results file whose .h5 is damaged (its first bytes zeroed) but whose journal is intact is
# still a results file: --fresh replaces it.
dd if=/dev/zero of="$tmp/d/real.h5" bs=512 count=1 conv=notrunc 2>/dev/null
"$BIN" run "$tmp/x.yaml" -o "$tmp/d/real.h5" --fresh --quiet >/dev/null 2>"$tmp/dm.err"
rc=$?
check "--fresh over a damaged results file with its journal exits 0 (rc=$rc)" [ $rc -eq 0 ]
check "... and the file reads again ($(nrows "$tmp/d/real.h5") rows)" \
    [ "$(nrows "$tmp/d/real.h5")" -eq "${ncells:-0}" ]

echo
if [ $fails -gt 0 ]; then
    echo "run_lock.sh: $fails check(s) failed"
    exit 1
fi
echo "run_lock.sh: all checks passed"
