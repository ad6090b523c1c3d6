# decode_speedup.gp — generation speedup against the tokens generated N, log-log: the time
# softmax decoding takes to generate N tokens after a prompt of P divided by the time a linear
# map takes, both summed from the measured step times (harness/figures/decode.c interpolates
# them linearly in t between the measured contexts).  Dotted: 100× and 1000×.  One panel per
# (d, batch, heads, threads); P is in the panel title.
# Run: linattn plot results/decode.h5
load plotdir."/style.gp"
fig_title = "Decode: generation speedup (softmax time / linear time for N tokens after P)"
# N runs from 1 to the longest context: a tic every second power of two.
x_axis = "set logscale x 2; set xtics (); " . \
         "do for [e=0:24:2] { set xtics add (tlabel(2**e) 2**e) }; set mxtics 1"
y_axis = log10_y
key_pos = "top left"
load plotdir."/panels.gp"
