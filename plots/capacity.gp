# capacity.gp — Schlag et al.'s capacity experiment: the retrieval MSE of S stored keys against
# S, one curve per (feature map, update rule; solid sum, dashed delta), a dotted vertical mark at
# each map's dim φ; columns: unique keys, overwrite (the latest value is the target); rows: key,
# value and normalisation kinds.  Run: linattn plot results/capacity.h5
legend_right = 1
load plotdir."/style.gp"
fig_title = "Capacity: retrieval error vs stored keys S"
x_axis = "set logscale x 2; set xtics (); do for [e=0:20] { set xtics add (sprintf('%g', 2**e) 2**e) }; set mxtics 1"
y_axis = log10_y
load plotdir."/panels.gp"
