# speedup.gp — heatmap of t_softmax / t_linear (linear = kernel + feature map) over sequence
# length T (x) and head dimension d (y), one panel per linear series (top rows non-causal,
# the rows below causal).  Blue: linear is faster; red: softmax is faster; white: equal; the number
# in each cell is the ratio.  Grey cells were not measured (e.g. taylor2 beyond d = 32).
# Not the computation: the ratios come from harness/figures/speedup.c through `linattn plot`,
# whose meta file adds nd, dvals[], log2Tmin, log2Tmax and cbmax to the usual inputs (style.gp).
# Run: linattn plot results/crossover.h5
load plotdir."/style.gp"
# A panel is wide enough for its T columns (panel_w from the meta file: speedup.c gives each
# cell 0.5 inch, so that the tick labels 128, 256, 512 and the ratios in the cells stay apart,
# and wraps the panels into rows of at most 24 inches); the ratio's font shrinks if cells are
# narrower.
nT = int(log2Tmax - log2Tmin + 1.5)
fig_w = panel_w * ncols + 1.2
fig_h = 2.6 * nrows + 0.65 + top_in
cell_w = (panel_w - 1.0) / nT
label_font = sprintf(",%g", font_size * 0.8 < 20 * cell_w ? font_size * 0.8 : 20 * cell_w)
set palette defined (0 "#c0392b", 0.35 "#f4a582", 0.5 "#f7f7f7", 0.65 "#92c5de", 1 "#2166ac")
set logscale cb 2
set cbrange [1.0 / cbmax : cbmax]
unset key
# Colour-bar tics at powers of two (of four beyond 16×): 1/4×, 1×, 4×.
set cbtics ()
cbstep = cbmax >= 64 ? 2 : 1
do for [e=-12:12:cbstep] {
    set cbtics add ((e < 0 ? sprintf("1/%d×", 2**(-e)) : sprintf("%d×", 2**e)) 2.0**e)
}
# Ratios print with two digits (0.43, 1.7, 23, 140), below 0.1 with one (0.09): at most four
# characters.
ratio(v) = v >= 99.5 ? sprintf("%.0f", v) : v < 0.0995 ? sprintf("%.1g", v) : sprintf("%.2g", v)
set colorbox user origin screen 1 - 0.7 / fig_w, 0.2 size screen 0.16 / fig_w, 0.6
set cbtics scale 0.5
set grid noxtics noytics nomxtics nomytics
set tics scale 0
set border 15 lc rgb "#888888"
fig_title = "Speedup of linear over softmax attention: t_softmax / t_linear (kernel + feature map)"
# One filled box per cell (boxxyerror, not `image`, which needs a 2 × 2 grid): grey under every
# cell, so the cells not measured stay grey, then the coloured ratios and their values.
cells = "plot data index (pfirst[p] - 1) using 1:2:(0.5):(0.5) " . \
        "with boxxyerror fillstyle solid 1.0 noborder lc rgb '#d9d9d9' notitle, " . \
        "data index (pfirst[p] - 1) using (strcol(3) eq 'NaN' ? NaN : $1):2:(0.5):(0.5):3 " . \
        "with boxxyerror fillstyle solid 1.0 noborder lc palette notitle, " . \
        "data index (pfirst[p] - 1) using 1:2:(strcol(3) eq 'NaN' ? '' : ratio($3)) " . \
        "with labels font label_font notitle"
do for [fmt in formats] {
    eval term_for(fmt)
    set multiplot layout nrows, ncols \
        margins 0.55 / fig_w + 0.02, 1 - 0.9 / fig_w, 0.55 / fig_h + 0.05, 1 - top_in / fig_h \
        spacing 0.5 / fig_w + 0.02, 0.95 / fig_h
    eval title_on(fig_title)
    eval caption_on
    do for [p=1:npanels] {
        if (pfirst[p] > plast[p]) {
            set multiplot next
        } else {
            set title ptitle[p] noenhanced offset 0, -0.4
            set xlabel pxlabel[p] noenhanced offset 0, 0.5
            if ((p - 1) % ncols == 0) {
                set ylabel pylabel[p] noenhanced offset 1, 0
            } else {
                unset ylabel
            }
            set xrange [log2Tmin - 0.5 : log2Tmax + 0.5]
            set yrange [-0.5 : nd - 0.5]
            set xtics ()
            do for [e=int(log2Tmin):int(log2Tmax)] { set xtics add (tlabel(2**e) e) }
            set ytics ()
            do for [i=1:nd] { set ytics add (sprintf("%g", dvals[i]) i - 1) }
            eval cells
        }
        eval title_off
        eval caption_off
    }
    unset multiplot
    unset output
}
