# fidelity.gp — how much stories260K changes when a feature map replaces softmax attention in
# every layer, against the map's output dimension m.  Left: the model-level KL (mean over
# positions of KL(softmax model ‖ linearised model) of the next token, teacher-forced on stories
# the softmax model sampled; solid) and, given `plot --heads`, the same map's attention-level KL
# on the model's own heads (mean over heads and trials; dashed), in nats on a log axis.  Right:
# top-1 agreement of the next token.  Points: medians over trials (map draws), bars: their 95%
# bootstrap intervals.  Not the computation: harness/figures/fidelity.c through `linattn plot`.
# Run: linattn plot results/fidelity.h5 --heads results/real-stories260k.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Linearised stories260K against the softmax model: model-level fidelity per feature map"
x_axis = T_axis
y_axis = "if (p == 1) { ".log10_y." } else { unset logscale y; set format y '%g'; set yrange [0:1] }"
load plotdir."/panels.gp"
