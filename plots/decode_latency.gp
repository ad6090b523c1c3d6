# decode_latency.gp — one decode step against the context t, log-log: the time of one step of
# the B sequences of every head (for linear maps the map over the new query and key rows
# included), softmax (black) reading its whole KV cache, so rising with t, against each linear
# map, whose state has one size, so flat.  One panel per (d, batch, heads, threads); error bars
# are the 20th–80th percentiles of the timed repeats.
# Run: linattn plot results/decode.h5
load plotdir."/style.gp"
fig_title = "Decode: time of one step vs context t (softmax KV cache vs linear state)"
x_axis = T_axis_sparse
y_axis = log10_y
key_pos = "top left"
load plotdir."/panels.gp"
