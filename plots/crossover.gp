# crossover.gp — time per call against sequence length, log-log: softmax (black) against every
# linear series (kernel + feature map: what a practitioner pays), one panel per (causal, d);
# the legend gives each series' crossover T* and a ring marks it on the curve.  Error bars are
# the 20th–80th percentiles of the timed repeats.
# Not the computation: T* comes from harness/figures/crossover.c through `linattn plot`, which writes
# the meta file this script reads (see style.gp).  Run: linattn plot results/crossover.h5
legend_fit = 1                   # panels as wide as their legends need (style.gp)
load plotdir."/style.gp"
fig_title = "Softmax vs linear attention: time per call (kernel + feature map); T* = crossover"
x_axis = T_axis
y_axis = log10_y
key_pos = "top left"
load plotdir."/panels.gp"
