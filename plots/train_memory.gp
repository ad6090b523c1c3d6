# train_memory.gp — the memory side of Katharopoulos et al.'s Figure 1, log-log: the bytes one
# call of a pass holds (step_bytes: Q, K, V, Y, the gradients dY, dQ, dK, dV and the features'
# for a training step, the kernels' and maps' workspaces) against T.  Solid: the forward pass;
# dashed: the training step (forward+backward; backward alone when timed alone).
# Run: linattn plot results/training.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Memory of a forward pass and of a training step vs sequence length T"
x_axis = T_axis
y_axis = bytes_axis
load plotdir."/panels.gp"
