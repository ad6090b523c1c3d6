# error_sigma.gp — approximation error against the input scale σ (q, k, v ~ N(0, σ²)): larger
# σ means peakier softmax attention, which positive feature maps find harder.  Top row: relative
# Frobenius error of the output; bottom row: mean KL between attention rows; one column per
# causality (and d); at one T when the file sweeps T.  Run: linattn plot results/approximation.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Approximation error vs input scale σ"
x_axis = "set logscale x 2; set format x '%g'; set xtics autofreq; set mxtics 1"
y_axis = log10_y
load plotdir."/panels.gp"
