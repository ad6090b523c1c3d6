# real_heads.gp — feature maps on the heads of a real trained model (stories260K): output
# error (left) and attention KL (right) per head, heads ordered by the mean entropy of their
# softmax attention rows (x, nats; left = peaky heads with attention sinks, right = diffuse).
# One curve per map (random maps at m = 64 outputs); points are medians over trials, bars
# their 95% bootstrap interval.  Not the computation: harness/figures/realheads.c through `linattn plot`.
# Run: linattn plot results/real-stories260k.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Feature maps on real attention heads (stories260K), heads sorted by softmax entropy"
x_axis = "unset logscale x; set format x '%g'"
y_axis = log10_y
load plotdir."/panels.gp"
