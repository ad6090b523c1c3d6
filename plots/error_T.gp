# error_T.gp — approximation error against sequence length T: top row the relative Frobenius
# error of the output against softmax, bottom row the mean KL divergence between softmax and
# linear attention rows; one column per causality (and d).  At one σ when the file sweeps σ
# (the value with the most T values; the panel title says which).  Points are medians over
# trials, bars their 95% bootstrap interval (harness/figures/summary.h).  Run: linattn plot results/approximation.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Approximation error vs sequence length T"
x_axis = T_axis
y_axis = log10_y
load plotdir."/panels.gp"
