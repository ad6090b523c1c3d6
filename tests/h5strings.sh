#!/usr/bin/env bash
# h5strings.sh — every HDF5 string attribute linattn reads accepts what h5py writes: variable-
# or fixed-length, ASCII or UTF-8, null-terminated, null-padded or space-padded.  Files are
# written by Debian's python3-h5py (/usr/bin/python3: a python3 earlier on PATH may lack it) and
# read through the binary:
#   - learned weights as featuremaps/README.md shows (`f.attrs["activation"] = "exp_pair"`) and
#     in every other form: `featuremap info learned` takes the activation (output m = 2m for
#     exp_pair, m for relu), and an unknown one is echoed exactly in the error;
#   - a results file with extra root attributes in every form: `linattn info` prints each value
#     exactly, including experiment_name rewritten as a fixed-length string that fills its size;
#   - a file with attributes only (no datasets): `info` reads them and then says there is no
#     /runs table, not "cannot read attribute";
#   - an `h5` data file (/Q /K /V) carrying string attributes in every form runs.
# Fails (does not skip) when h5py is missing, with the line that installs it.
# Run: bash tests/h5strings.sh   (uses $LINATTN_BIN, default ./linattn; a few seconds)
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${LINATTN_BIN:-./linattn}
PY=/usr/bin/python3
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell}
. tests/lib/common.sh
need_bin h5strings.sh
if ! "$PY" -c 'import h5py, numpy' 2>/dev/null; then
    echo "FAIL h5strings.sh needs h5py for $PY: install it with 'apt-get install python3-h5py'" \
         "(scripts/install-deps.sh does)"
    exit 1
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/la_h5strings.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The string forms, written by h5py; `forms` prints their names.  set_attr(obj, name, value,
# form) writes value in that form.
cat >"$tmp/forms.py" <<'EOF'
import sys
import h5py
import numpy as np

FORMS = ["str", "vlen_ascii", "vlen_utf8", "bytes_nullpad", "fixed_nullterm", "fixed_spacepad",
         "fixed_utf8_nullpad", "fixed_utf8_spacepad", "array1_str"]


def fixed(obj, name, raw, size, pad, cset):
    tid = h5py.h5t.C_S1.copy()
    tid.set_size(size)
    tid.set_strpad(pad)
    tid.set_cset(cset)
    if name in obj.attrs:
        del obj.attrs[name]
    space = h5py.h5s.create(h5py.h5s.SCALAR)
    aid = h5py.h5a.create(obj.id, name.encode(), tid, space)
    aid.write(np.array(raw.ljust(size, b"\0")[:size], dtype="S%d" % size), mtype=tid)


def set_attr(obj, name, value, form):
    raw = value.encode("utf-8")
    if form == "str":                  # what featuremaps/README.md shows: vlen UTF-8
        obj.attrs[name] = value
    elif form == "vlen_ascii":
        obj.attrs.create(name, raw, dtype=h5py.string_dtype("ascii"))
    elif form == "vlen_utf8":
        obj.attrs.create(name, value, dtype=h5py.string_dtype("utf-8"))
    elif form == "bytes_nullpad":      # np.bytes_: fixed length = len, null-padded, ASCII
        obj.attrs[name] = np.bytes_(raw)
    elif form == "fixed_nullterm":
        fixed(obj, name, raw, len(raw) + 1, h5py.h5t.STR_NULLTERM, h5py.h5t.CSET_ASCII)
    elif form == "fixed_spacepad":
        fixed(obj, name, raw + b"    ", len(raw) + 4, h5py.h5t.STR_SPACEPAD, h5py.h5t.CSET_ASCII)
    elif form == "fixed_utf8_nullpad":
        fixed(obj, name, raw, len(raw) + 3, h5py.h5t.STR_NULLPAD, h5py.h5t.CSET_UTF8)
    elif form == "fixed_utf8_spacepad":
        fixed(obj, name, raw + b"  ", len(raw) + 2, h5py.h5t.STR_SPACEPAD, h5py.h5t.CSET_UTF8)
    elif form == "array1_str":         # a one-element array of vlen UTF-8
        obj.attrs.create(name, [value], dtype=h5py.string_dtype("utf-8"))
    else:
        raise SystemExit("unknown form " + form)


def weights(path, act, form, d=8):
    with h5py.File(path, "w") as f:
        f["W"] = np.eye(d).astype("float32")
        f["b"] = np.zeros(d).astype("float32")
        set_attr(f, "activation", act, form)


def main():
    cmd = sys.argv[1]
    if cmd == "forms":
        print(" ".join(FORMS))
    elif cmd == "weights":             # weights PATH ACTIVATION FORM
        weights(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "readme":              # exactly the line of featuremaps/README.md
        W = np.eye(8)
        b = np.zeros(8)
        with h5py.File(sys.argv[2], "w") as f:
            f["W"] = W.astype("float32"); f["b"] = b.astype("float32"); f.attrs["activation"] = "exp_pair"
    elif cmd == "annotate":            # annotate PATH: one attribute per form, plus experiment_name
        with h5py.File(sys.argv[2], "a") as f:
            for form in FORMS:
                set_attr(f, "s_" + form, "val " + form + " é", form)
            set_attr(f, "experiment_name", "tiny", "bytes_nullpad")
    elif cmd == "attrs_only":          # attrs_only PATH
        with h5py.File(sys.argv[2], "w") as f:
            for form in FORMS:
                set_attr(f, "s_" + form, "only " + form, form)
    elif cmd == "data":                # data PATH: /Q /K /V (T=32, hs=8) and string attributes
        rng = np.random.default_rng(3)
        with h5py.File(sys.argv[2], "w") as f:
            for n in "QKV":
                f[n] = rng.standard_normal((1, 2, 32, 8)).astype("float32")
            for form in FORMS:
                set_attr(f, "s_" + form, "data " + form, form)
    else:
        raise SystemExit("unknown command " + cmd)


main()
EOF
forms=$("$PY" "$tmp/forms.py" forms) || { bad "forms.py does not run"; exit 1; }

# ---- learned weights --------------------------------------------------------------------------
"$PY" "$tmp/forms.py" readme "$tmp/readme.h5"
out=$("$BIN" featuremap info learned --d 8 --weights "$tmp/readme.h5" 2>&1)
if [ $? -eq 0 ] && grep -q '^output m: *16$' <<<"$out"; then
    pass "weights written as featuremaps/README.md shows: exp_pair, output m 16"
else
    bad "weights written as featuremaps/README.md shows: $out"
fi
for form in $forms; do
    for act in exp_pair relu; do
        want=$([ $act = relu ] && echo 8 || echo 16)
        "$PY" "$tmp/forms.py" weights "$tmp/w.h5" $act "$form"
        out=$("$BIN" featuremap info learned --d 8 --weights "$tmp/w.h5" 2>&1)
        rc=$?
        if [ $rc -eq 0 ] && grep -q "^output m: *$want\$" <<<"$out"; then
            pass "activation $act as $form: output m $want"
        else
            bad "activation $act as $form (rc=$rc): $(head -2 <<<"$out")"
        fi
    done
    "$PY" "$tmp/forms.py" weights "$tmp/w.h5" exp_pairs "$form"
    out=$("$BIN" featuremap info learned --d 8 --weights "$tmp/w.h5" 2>&1)
    rc=$?
    if [ $rc -eq 2 ] && grep -q "attribute 'activation' = 'exp_pairs' is unknown" <<<"$out"; then
        pass "unknown activation as $form: read exactly, exit 2"
    else
        bad "unknown activation as $form (rc=$rc): $out"
    fi
done

# ---- a results file with attributes added by h5py -------------------------------------------
cat >"$tmp/small.yaml" <<'EOF'
name: tiny
seed: 7
sweep:
  kernel: [linear]
  map: [elu1]
  T: 32
  d: 8
measure: {time: false, max_ref_rows: 8, kl_rows: 4, kernel_pairs: 16}
EOF
if "$BIN" run "$tmp/small.yaml" -o "$tmp/r.h5" --quiet >/dev/null 2>"$tmp/run.err" &&
    "$PY" "$tmp/forms.py" annotate "$tmp/r.h5"; then
    out=$("$BIN" info "$tmp/r.h5" 2>&1)
    rc=$?
    [ $rc -eq 0 ] && pass "info on a results file annotated by h5py exits 0" ||
        bad "info on an annotated results file (rc=$rc): $(head -3 <<<"$out")"
    for form in $forms; do
        if grep -qx "  s_$form *val $form é" <<<"$out"; then
            pass "info prints attribute s_$form exactly"
        else
            bad "info: attribute s_$form: $(grep "s_$form" <<<"$out")"
        fi
    done
    if grep -qx '  experiment_name *tiny' <<<"$out"; then
        pass "experiment_name as np.bytes_ (size 4, no NUL) reads 'tiny'"
    else
        bad "experiment_name: $(grep experiment_name <<<"$out")"
    fi
else
    bad "writing the results file: $(cat "$tmp/run.err")"
fi

# ---- a file with attributes only ---------------------------------------------------------------
"$PY" "$tmp/forms.py" attrs_only "$tmp/a.h5"
out=$("$BIN" info "$tmp/a.h5" 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "has no /runs table" <<<"$out" && [ "$(wc -l <<<"$out")" -eq 1 ]; then
    pass "attributes-only file: attributes read, one line: no /runs table, exit 2"
else
    bad "attributes-only file (rc=$rc): $out"
fi

# ---- an h5 data file with string attributes -----------------------------------------------------
"$PY" "$tmp/forms.py" data "$tmp/d.h5"
cat >"$tmp/data.yaml" <<EOF
name: h5data
seed: 1
sweep: {kernel: [linear], map: [elu1], head: 0}
data: {source: h5, path: $tmp/d.h5}
measure: {time: false, max_ref_rows: 8, kl_rows: 4, kernel_pairs: 16}
EOF
out=$("$BIN" run "$tmp/data.yaml" -o "$tmp/dr.h5" --quiet 2>&1)
rc=$?
nok=$("$BIN" export "$tmp/dr.h5" --columns status 2>/dev/null | grep -c '^0$')
if [ $rc -eq 0 ] && [ "$nok" -ge 1 ]; then
    pass "h5 data file written by h5py with string attributes runs ($nok ok rows)"
else
    bad "h5 data file (rc=$rc, ok rows ${nok:-0}): $out"
fi

echo
[ $fails -eq 0 ] && echo "h5strings.sh: all passed" || echo "h5strings.sh: $fails failed"
[ $fails -eq 0 ]
