# fidelity.gp — how much stories260K changes when a feature map replaces softmax: per map, the
# model-level KL (mean per-position KL of the softmax model's next-token distribution against
# the linearised model's, teacher-forced on stories the softmax model sampled) beside the
# attention-level KL of the same map on the model's own heads (mean over layers, heads and
# trials of experiments/real-stories260k.yaml), both in nats on a log axis.  Maps whose heads
# were not measured at that m have no second bar.
# Not the computation: harness/model/generate.c through `linattn generate --fidelity`; this
# script reads its TSV (README "A real model generating with linear attention").
# Run:
#   linattn run experiments/real-stories260k.yaml
#   linattn generate ../shared/data/stories260K/stories260K.bin --fidelity --m 64 \
#       --heads results/real-stories260k.h5 --tsv /tmp/fidelity.tsv
#   gnuplot -e "tsv='/tmp/fidelity.tsv'; out='plots/out/fidelity'" plots/fidelity.gp
if (!exists("tsv")) print "fidelity.gp: set tsv='FILE.tsv' (linattn generate --fidelity --tsv)"; exit
if (!exists("out")) out = "fidelity"
if (!exists("plotdir")) plotdir = "plots"
if (!exists("formats")) formats = "png pdf"
ncols = 1
nrows = 1
fig_w = 6.8
fig_h = 4.4
load plotdir."/style.gp"

set datafile separator "\t"
set datafile columnheaders
set style data histograms
set style histogram clustered gap 1.5
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set format y "%g"
set grid ytics
set ylabel "KL (nats), log scale"
set xtics noenhanced rotate by -30 left
set key top left noenhanced
set title "stories260K: model-level vs attention-level KL per feature map" noenhanced
skip_softmax(x) = strcol(1) eq "softmax" ? NaN : x

do for [fmt in formats] {
    eval term_for(fmt)
    plot tsv using (skip_softmax($9)):xtic(strcol(1) eq "softmax" ? "" : sprintf("%s m=%d", strcol(1), int($2))) \
             title "model: next-token KL(softmax || linear)" lc rgb "#0072B2", \
         tsv using (skip_softmax($14)) title "attention: mean per-head KL" lc rgb "#E69F00"
    unset output
}
