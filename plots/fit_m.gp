# fit_m.gp — fitted learned maps (`linattn fit`, one weights file per m) against the other maps
# on a real model's heads, against the feature dimension m: test attention KL (left) and output
# error (right), mean over the heads with its 95% bootstrap interval.  A map with one m
# (taylor2, elu1) is a single point.  Not the computation: harness/figures/fitsweep.c through
# `linattn plot`.
# Run: linattn plot results/real-stories260k-fit-sweep.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Fitted learned maps against random and deterministic maps on stories260K heads, vs m"
x_axis = T_axis
y_axis = log10_y
load plotdir."/panels.gp"
