#!/usr/bin/env bash
# figures.sh — the figure pipeline behind `make figures`: runs each shipped experiment (resuming
# where its results file already has rows), exports its rows as TSV, draws every figure that
# fits with `linattn plot`, and prints where everything is.
# Not the figures themselves (plots/*.gp, harness/figures/, harness/cli/cmd_plot.c) nor the experiments
# (experiments/*.yaml).  Tested by tests/figures_e2e.sh (a tiny experiment, same commands).
#
# Usage: scripts/figures.sh [--paper] [--docs] [EXPERIMENT...]
#   (none)      quick sizes: experiments/{crossover,features,approximation,memory,decode,training}.yaml
#               and the capacity experiment (`linattn capacity`), a few minutes on two cores;
#               results in results/NAME.h5; then the real-model experiments
#               (experiments/real-*.yaml) when their data can be had (the fitted learned
#               map's weights made by `linattn fit`, about 1.5 min), and
#               experiments/fidelity.yaml when the checkpoint is there (hooks below)
#   --paper     paper sizes: experiments/paper/*.yaml and `linattn capacity --size paper` (an
#               hour or more; see docs/FIGURES.md)
#   --docs      also refresh docs/figures/ (small PNGs of the quick run, committed)
#   EXPERIMENT  only these (names of files in experiments/ or experiments/paper/, or capacity)
# Environment: LINATTN_BIN (default ./linattn), FIGURES_OUT (default plots/out),
#   FRESH=1 (start results files over instead of resuming), FIGURES_HEADS (set by the fidelity
#   hook: the results file plot --heads reads).
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${LINATTN_BIN:-./linattn}
out=${FIGURES_OUT:-plots/out}
dir=experiments
docs=0
names=()
for a in "$@"; do
    case "$a" in
        --paper) dir=experiments/paper ;;
        --docs) docs=1 ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "figures.sh: unknown option $a (see --help)" >&2; exit 2 ;;
        *) names+=("$a") ;;
    esac
done
all=0
if [ ${#names[@]} -eq 0 ]; then
    names=(crossover features approximation memory decode training capacity)
    all=1
fi

if ! command -v gnuplot >/dev/null 2>&1; then
    echo "figures.sh: gnuplot is missing; install it with scripts/install-deps.sh (as root)" \
         "or: apt-get install gnuplot-nox" >&2
    exit 1
fi
[ -x "$bin" ] || { echo "figures.sh: $bin not built; run make first" >&2; exit 1; }

mkdir -p "$out/data" results
start=$(date +%s)
failed=()
nofig=()

# run_one YAML [nodocs]: run (resuming), export, plot.  A failed cell does not stop the pipeline (its
# row says why); a bad experiment file or a results file made from another version does.
run_one() {
    local yaml=$1 name h5 t0 rc=0
    name=$(sed -n 's/^name:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$yaml" | head -n 1)
    [ -n "$name" ] || name=$(basename "$yaml" .yaml)
    h5=results/$name.h5
    t0=$(date +%s)
    echo "== $name: $yaml -> $h5"
    "$bin" run "$yaml" -o "$h5" ${FRESH:+--fresh} || rc=$?
    if [ $rc -eq 1 ]; then
        echo "   some cells of $name failed (see: $bin export $h5 --status failed)" >&2
        failed+=("$name")
    elif [ $rc -eq 130 ] || [ $rc -eq 143 ]; then
        echo "figures.sh: $name was interrupted (exit $rc); its rows so far are in $h5: rerun" \
             "the same command to resume." >&2
        exit $rc
    elif [ $rc -ne 0 ]; then
        echo "figures.sh: $name could not run (exit $rc).  If the experiment file changed since" \
             "$h5 was written, rerun with FRESH=1 or delete $h5." >&2
        exit $rc
    fi
    "$bin" export "$h5" > "$out/data/$name.tsv"
    # plot exits 1 when it drew nothing (its stderr line says why): reported at the end, not fatal.
    local prc=0
    local heads=()
    [ -n "${FIGURES_HEADS:-}" ] && [ -f "$FIGURES_HEADS" ] && heads=(--heads "$FIGURES_HEADS")
    "$bin" plot "$h5" -o "$out" "${heads[@]}" || prc=$?
    [ $prc -le 1 ] || exit $prc
    [ $prc -eq 0 ] || nofig+=("$name")
    # docs/figures holds the shipped quick experiments only (the real-model ones have their own).
    if [ $docs -eq 1 ] && [ "${2:-}" != nodocs ] && [ $prc -eq 0 ]; then
        mkdir -p docs/figures
        "$bin" plot "$h5" -o docs/figures --format png --png-dpi 80 -q > /dev/null
    fi
    echo "   $name done in $(( $(date +%s) - t0 )) s"
}

# capacity: the capacity experiment is a command (`linattn capacity`, no experiment file): the
# quick size into results/capacity.h5, --paper its paper size into results/paper-capacity.h5.
capacity() {
    local h5=results/capacity.h5 size=quick t0 prc=0
    if [ "$dir" = experiments/paper ]; then
        h5=results/paper-capacity.h5
        size=paper
    fi
    t0=$(date +%s)
    echo "== capacity: linattn capacity --size $size -> $h5"
    "$bin" capacity --size "$size" -q -o "$h5" || { failed+=(capacity); return 0; }
    "$bin" plot "$h5" -o "$out" || prc=$?
    [ $prc -le 1 ] || exit $prc
    [ $prc -eq 0 ] || nofig+=(capacity)
    if [ $docs -eq 1 ] && [ $prc -eq 0 ]; then
        mkdir -p docs/figures
        "$bin" plot "$h5" -o docs/figures --format png --png-dpi 80 -q > /dev/null
    fi
    echo "   capacity done in $(( $(date +%s) - t0 )) s"
}

for n in "${names[@]}"; do
    if [ "$n" = capacity ]; then
        capacity
        continue
    fi
    yaml=$dir/$n.yaml
    [ -f "$yaml" ] || yaml=$n
    [ -f "$yaml" ] || { echo "figures.sh: no experiment $dir/$n.yaml" >&2; exit 2; }
    run_one "$yaml"
done

# ---- hook: the real-model figures -------------------------------------------------------------
# Captured attention inputs of a trained model: data/stories260k.h5, written by `linattn
# capture` from the stories260K checkpoint in $LINATTN_DATA (../shared/data by default), and
# the experiments on it, experiments/real-*.yaml (another issue owns them and their figure).
# With the quick set (no names given) this captures the data once when the checkpoint is there,
# fits the learned map of experiments/real-stories260k-fitted.yaml (fit_weights), then runs
# every real-*.yaml whose data and weights files exist; nothing happens without them.
real_model() {
    local ckpt=${LINATTN_DATA:-../shared/data}/stories260K/stories260K.bin y f missing
    if [ ! -f data/stories260k.h5 ] && [ -f "$ckpt" ]; then
        echo "== capturing data/stories260k.h5 from $ckpt"
        "$bin" capture "$ckpt" --steps 256 --greedy -o data/stories260k.h5 ||
            { echo "figures.sh: capture failed; skipping the real-model figures" >&2; return 0; }
    fi
    [ -f "$ckpt" ] && fit_weights "$ckpt"
    for y in "$dir"/real-*.yaml; do
        [ -f "$y" ] || continue
        if grep -q 'data/stories260k.h5' "$y" && [ ! -f data/stories260k.h5 ]; then
            echo "== skipped the real-model figure ($y): no checkpoint at $ckpt; get stories260K.bin" \
                 "and tok512.bin from Andrej Karpathy's Hugging Face repository karpathy/tinyllamas," \
                 "folder stories260K (MIT), into \$LINATTN_DATA/stories260K/ (see README)"
            continue
        fi
        # Other files it reads (weights of the learned map), outside comments: all must exist.
        missing=
        for f in $(sed 's/#.*//' "$y" | grep -o 'data/[A-Za-z0-9_.+-]*\.h5' | sort -u); do
            [ -f "$f" ] || missing="$missing $f"
        done
        if [ -n "$missing" ]; then
            echo "== skipped $y: missing$missing (its header says how to make them)"
            continue
        fi
        run_one "$y" nodocs
        # The README shows the per-head figure of the real model.
        if [ $docs -eq 1 ] && [ "$(basename "$y")" = real-stories260k.yaml ]; then
            "$bin" plot results/real-stories260k.h5 -o docs/figures --only real_heads \
                --format png --png-dpi 80 -q > /dev/null
        fi
    done
}
# fit_weights CHECKPOINT: the weights of experiments/real-stories260k-fitted.yaml, made once:
# three captures sampled with seeds 1-3 (other sequences than the greedy one it is evaluated on)
# and `linattn fit` on them, Hedgehog's exp_pair at m = 16 (about 1.5 min on one core).
fit_weights() {
    local ckpt=$1 s t0 train=()
    [ -f data/fit_exp_pair_m16.h5 ] && return 0
    t0=$(date +%s)
    for s in 1 2 3; do
        train+=("data/stories260k_s$s.h5")
        [ -f "data/stories260k_s$s.h5" ] && continue
        "$bin" capture "$ckpt" --steps 256 --seed "$s" --through-bos \
            -o "data/stories260k_s$s.h5" > /dev/null ||
            { echo "figures.sh: capture --seed $s failed; no fitted map" >&2; return 0; }
    done
    echo "== fitting data/fit_exp_pair_m16.h5 (linattn fit, 40 heads)"
    "$bin" fit "${train[@]}" --activation exp_pair --m 16 --loss xent --steps 1000 \
        -o data/fit_exp_pair_m16.h5 > /dev/null ||
        { echo "figures.sh: fit failed; no fitted map" >&2; return 0; }
    echo "   fitted in $(( $(date +%s) - t0 )) s"
}

# ---- hook: model-level fidelity --------------------------------------------------------------
# experiments/fidelity.yaml runs the stories260K checkpoint itself (data source model) with every
# map in place of softmax attention; its figure puts each map's attention-level KL from
# results/real-stories260k.h5 beside the model-level KL when that file exists.
fidelity() {
    local ckpt=../shared/data/stories260K/stories260K.bin y=$dir/fidelity.yaml
    [ -f "$y" ] || return 0
    if [ ! -f "$ckpt" ]; then
        echo "== skipped the fidelity figure ($y): no checkpoint at $ckpt (see README)"
        return 0
    fi
    FIGURES_HEADS=results/real-stories260k.h5 run_one "$y" nodocs
}
[ $all -eq 1 ] && real_model
[ $all -eq 1 ] && fidelity

echo
echo "figures ($(( $(date +%s) - start )) s) in $out/:"
ls -1 "$out"/*.png "$out"/*.pdf 2>/dev/null | sed 's/^/  /' || true  # no figure in $out: ls fails
echo "data (TSV, one row per measurement) in $out/data/; T* tables: $out/*_tstar.tsv" \
     "(decode: $out/*_decode_tstar.tsv)"
[ $docs -eq 1 ] && echo "docs figures refreshed in docs/figures/"
if [ ${#failed[@]} -gt 0 ]; then
    echo "experiments with failed cells: ${failed[*]}" >&2
fi
if [ ${#nofig[@]} -gt 0 ]; then
    echo "experiments that gave no figure: ${nofig[*]}" >&2
fi
exit 0
