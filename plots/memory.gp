# memory.gp — memory against sequence length T, log-log: left the kernel workspace plus the
# feature buffers φ(Q), φ(K) (what the kernel itself needs; softmax_flash keeps no T×T matrix),
# right the process peak RSS after the cell (a high-water mark: cells run in order of cost, so
# it includes every earlier cell and the inputs).  Solid: non-causal; dashed: causal.
# Run: linattn plot results/memory.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Memory vs sequence length T"
x_axis = T_axis
y_axis = bytes_axis
load plotdir."/panels.gp"
