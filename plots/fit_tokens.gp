# fit_tokens.gp — fitted learned maps (`linattn fit`) against the tokens they were trained on,
# on a real model's heads: test attention KL (left) and output error (right), mean over the
# heads with its 95% bootstrap interval, one curve per m; every other map at that m is a dashed
# level (it trains on nothing).  Not the computation: harness/figures/fitsweep.c through
# `linattn plot`.
# Run: linattn plot results/real-stories260k-fit-sweep.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Fitted learned maps on stories260K heads against their training tokens"
x_axis = T_axis
y_axis = log10_y
load plotdir."/panels.gp"
