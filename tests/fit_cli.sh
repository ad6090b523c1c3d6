#!/usr/bin/env bash
# fit_cli.sh — `linattn fit` end to end on small synthetic captures (2 layers x 3 heads, T = 48,
# head size 4, written with h5py in the layout of docs/data-layout.md):
#   - a fit of every head on two captures, tested on a third: exit 0, the per-head layout
#     (/W_q, /b_q, /W_k, /b_k, /fitted, the measures), no temporary file left; the same seed
#     gives bit-identical weights;
#   - the weights are applied to the right head: through `linattn run` (data source h5, map
#     learned), the fitted file on head h gives the same KL as a one-head file cut from its
#     entry h, and a different KL on another head than that head's own entry;
#   - bad input gives one line and exit 2 with no output file: a missing head or layer, captures
#     of different shapes, an output directory that does not exist, a non-finite loss (relu
#     features that vanish);
#   - SIGINT during a fit exits 130 and leaves neither the output nor its temporary file.
# Fails (does not skip) when h5py is missing.  Run: bash tests/fit_cli.sh (a few seconds).
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LINATTN_BIN:-./linattn}
PY=/usr/bin/python3
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
tmp=$(mktemp -d /tmp/linattn_fitcli_XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
$PY -c 'import h5py' 2>/dev/null || { echo "FAIL: h5py missing (apt-get install python3-h5py)"; exit 1; }

# Captures: random heads with peaky attention (queries and keys of norm ~3 in d = 4).
$PY - "$tmp" <<'EOF' || exit 1
import sys, h5py, numpy as np
d = sys.argv[1]
def cap(path, seed, L=2, H=3, T=48, hs=4):
    r = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for n in ("Q", "K", "V"):
            f[n] = (1.5 * r.standard_normal((L, H, T, hs))).astype(np.float32)
cap(f"{d}/a.h5", 1); cap(f"{d}/b.h5", 2); cap(f"{d}/t.h5", 3)
cap(f"{d}/other.h5", 4, H=2)
EOF

fit() { "$BIN" fit "$@" > "$tmp/out" 2> "$tmp/err"; }

# 1. A full fit, its layout, determinism.
if fit "$tmp/a.h5" "$tmp/b.h5" --test "$tmp/t.h5" --activation exp_pair --m 4 --loss both \
    --steps 150 --seed 3 -o "$tmp/w.h5"; then
    ok "fit every head"
else
    bad "fit every head: $(cat "$tmp/err")"
fi
ls "$tmp"/w.h5.tmp* > /dev/null 2>&1 && bad "a temporary file is left"
[ "$(grep -cE '^ +[01] +[0-2] ' "$tmp/out")" -eq 6 ] || bad "expected 6 head lines: $(cat "$tmp/out")"
$PY - "$tmp/w.h5" <<'EOF' && ok "layout" || bad "layout"
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1])
assert f["W_q"].shape == (2, 3, 4, 4) and f["W_k"].shape == (2, 3, 4, 4), f["W_q"].shape
assert f["b_q"].shape == (2, 3, 4) and f["b_k"].shape == (2, 3, 4)
assert f["W_q"].dtype == np.float32
assert (f["fitted"][...] == 1).all()
assert f.attrs["activation"] == "exp_pair" and f.attrs["loss"] == "both"
assert f.attrs["train_tokens"] == 2 * 48, f.attrs["train_tokens"]
kl = f["test_kl"][...]
assert np.isfinite(kl).all() and (kl >= 0).all(), kl
assert not np.array_equal(f["W_q"][0, 1], f["W_q"][0, 2])
assert not np.array_equal(f["W_q"][0, 1], f["W_k"][0, 1])
EOF
fit "$tmp/a.h5" "$tmp/b.h5" --activation exp_pair --m 4 --loss both --steps 150 --seed 3 \
    -o "$tmp/w2.h5" || bad "second fit: $(cat "$tmp/err")"
$PY - "$tmp/w.h5" "$tmp/w2.h5" <<'EOF' && ok "same seed, same weights" || bad "not deterministic"
import sys, h5py, numpy as np
a, b = (h5py.File(p) for p in sys.argv[1:])
for n in ("W_q", "b_q", "W_k", "b_k"):
    assert np.array_equal(a[n][...], b[n][...]), n
EOF

# 2. Head matching through the h5 data source: one-head files cut from entries (0, 1), (0, 2).
$PY - "$tmp" <<'EOF' || bad "cutting one-head files"
import sys, h5py
d = sys.argv[1]
f = h5py.File(f"{d}/w.h5")
for h in (1, 2):
    with h5py.File(f"{d}/w_0{h}.h5", "w") as g:
        for n in ("W_q", "b_q", "W_k", "b_k"):
            g[n] = f[n][0:1, h:h + 1]
        g.attrs["activation"] = "exp_pair"
EOF
# One experiment per weights file (`weights` is a map entry, not a sweep axis).
runs_ok=1
for w in w w_01 w_02; do
    cat > "$tmp/$w.yaml" <<YAML
name: heads-$w
seed: 1
sweep:
  kernel: linear
  causal: true
  map: learned
  layer: 0
  head: [1, 2]
maps:
  learned: {weights: $tmp/$w.h5}
data:
  source: h5
  path: $tmp/t.h5
measure:
  time: false
  max_ref_rows: 48
  kl_rows: 48
YAML
    if "$BIN" run "$tmp/$w.yaml" -o "$tmp/r_$w.h5" --quiet > "$tmp/run.log" 2>&1; then
        "$BIN" export "$tmp/r_$w.h5" --columns head,kl_mean --exact > "$tmp/kl_$w.tsv" 2>&1
    else
        bad "run $w.yaml: $(cat "$tmp/run.log")"; runs_ok=0
    fi
done
if [ $runs_ok -eq 1 ]; then
    $PY - "$tmp" <<'EOF' && ok "per-head weights go to their head" || bad "head matching: $(cat "$tmp"/kl_*.tsv)"
import sys, csv
d = sys.argv[1]
kl = {}
for w in ("w", "w_01", "w_02"):
    for r in csv.DictReader(open(f"{d}/kl_{w}.tsv"), delimiter="\t"):
        kl[(w, int(r["head"]))] = float(r["kl_mean"])
assert kl[("w", 1)] == kl[("w_01", 1)], kl
assert kl[("w", 2)] == kl[("w_02", 2)], kl
assert kl[("w", 1)] != kl[("w", 2)], kl
assert kl[("w_01", 2)] != kl[("w", 2)], kl
EOF
fi

# 3. Bad input: one line, exit 2, no output.
expect2() { # expect2 PATTERN ARGS...
    local pat=$1; shift
    "$BIN" fit "$@" > /dev/null 2> "$tmp/err"; local rc=$?
    if [ $rc -ne 2 ] || [ "$(grep -c . "$tmp/err")" -ne 1 ] || ! grep -qE -- "$pat" "$tmp/err"; then
        bad "fit $* -> exit $rc: $(cat "$tmp/err")"
    elif ls "$tmp"/bad.h5* > /dev/null 2>&1; then
        bad "fit $* left an output"
    else
        ok "fit $*"
    fi
}
A="--activation exp_pair --m 4 --loss xent --steps 5"
expect2 "the captures have 3 heads \(0\.\.2\): no head 3" "$tmp/a.h5" --heads 1,3 $A -o "$tmp/bad.h5"
expect2 "the captures have 2 layers \(0\.\.1\): no layer 7" "$tmp/a.h5" --layers 0-7 $A -o "$tmp/bad.h5"
expect2 "differ in shape" "$tmp/a.h5" "$tmp/other.h5" $A -o "$tmp/bad.h5"
expect2 "test capture .* differs in shape" "$tmp/a.h5" --test "$tmp/other.h5" $A -o "$tmp/bad.h5"
expect2 "cannot create the weights file '$tmp/nodir/w.h5'" "$tmp/a.h5" $A -o "$tmp/nodir/w.h5"
expect2 "cannot read capture '$tmp/none.h5'" "$tmp/none.h5" $A -o "$tmp/bad.h5"
# relu features that are all zero for some query: a zero normaliser, log 0.
expect2 "layer 0, head 0: fit: the loss is not finite" "$tmp/a.h5" --activation relu --m 2 \
    --loss xent -o "$tmp/bad.h5"
expect2 "--loss" "$tmp/a.h5" --activation relu --m 4 -o "$tmp/bad.h5"

# 4. SIGINT: exit 130, nothing written.
# A background job of a non-interactive shell starts with SIGINT ignored (and linattn leaves an
# ignored signal alone): env --default-signal gives it the default back.  The step count is far
# more than the test waits for; timeout bounds a fit that missed the signal.  --foreground:
# otherwise timeout passes the SIGINT on twice, to linattn and to its process group, and the
# second, arriving after the first was handled, kills it as a second Ctrl-C does
# (SA_RESETHAND), leaving the temporary file (seen in 6 of 20 tries of a small program).
env --default-signal=INT timeout --foreground 300 "$BIN" fit "$tmp/a.h5" "$tmp/b.h5" \
    --activation exp_pair --m 4 --loss xent --steps 10000000 -o "$tmp/int.h5" > /dev/null \
    2> "$tmp/err" &
pid=$!
# Wait for the temporary file (the fit has started, its handler is set), then interrupt; a fit
# that ends first fails the checks below.
while ! ls "$tmp"/int.h5.tmp* > /dev/null 2>&1 && kill -0 $pid 2> /dev/null; do
    sleep 0.01 # the polling interval, not a guess at when the fit gets there
done
kill -INT $pid
wait $pid; rc=$?
if [ $rc -eq 130 ] && ! ls "$tmp"/int.h5* > /dev/null 2>&1 && grep -q "interrupted by SIGINT" "$tmp/err"; then
    ok "SIGINT"
else
    bad "SIGINT: exit $rc, files: $(ls "$tmp"), err: $(cat "$tmp/err")"
fi

[ $fails -eq 0 ] && echo "fit_cli: all ok" || echo "fit_cli: $fails failed"
[ $fails -eq 0 ]
