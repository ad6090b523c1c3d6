# features.gp — random-feature maps against the number of features m (Performer Fig. 4 style):
# top row the kernel MSE of φ(q)ᵀφ(k) against exp(qᵀk/√d), bottom row the relative error of
# the attention output; one column per head dimension (and σ, T when they vary).  Solid: IID
# draws; dashed: orthogonal.  Points: the mean kernel MSE (what Lemma 2
# predicts) and the median output error over trials; bars: their 95% bootstrap intervals.
# Dotted: the Lemma 2 mean MSE for IID draws on the same Gaussian inputs (harness/figures/theory.c),
# dash-dot... the ORF bound for orthogonal prf.  Run: linattn plot results/features.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Random features: kernel MSE and output error vs number of features m"
x_axis = T_axis                  # powers of two: 16, 32, ..., 1K, 2K
y_axis = log10_y
load plotdir."/panels.gp"
