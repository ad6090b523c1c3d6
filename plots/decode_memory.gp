# decode_memory.gp — the state or KV cache of every sequence against the context t, log-log:
# softmax's cache grows with t (keys and values of every token), a linear map's state (S and z)
# does not.  One panel per (d, batch, heads, threads).
# Run: linattn plot results/decode.h5
load plotdir."/style.gp"
fig_title = "Decode: state or KV cache bytes vs context t"
x_axis = T_axis_sparse
y_axis = bytes_axis
key_pos = "top left"
# A constant state sits on the lowest tic: room above and below the data.
set offsets graph 0.03, graph 0.03, graph 0.06, graph 0.06
load plotdir."/panels.gp"
