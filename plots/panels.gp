# panels.gp — the drawing loop shared by the curve figures (crossover, features, error_T,
# error_sigma, memory): for each format, a multiplot of nrows × ncols panels, each panel the
# curves pfirst[p]..plast[p] of `data` (style.gp's plot_curves), with the caption once.
# Not a figure by itself: a figure script sets fig_title, x_axis and y_axis (gnuplot commands
# as strings) and key_pos (legend inside each panel) or legend_right = 1 (one legend for the
# figure in a strip on the right, set before style.gp is loaded), then loads this file.
if (!exists("key_pos")) key_pos = "top left"
# The last panel with curves carries the figure legend.
lastp = 0
do for [q=1:npanels] { if (pfirst[q] <= plast[q]) { lastp = q } }
# A T axis labelled at every power of two whose labels would not fit side by side in a panel
# (about 0.36 in each at the figure's font) is labelled at every other power instead.
if (x_axis eq T_axis && lastp > 0) {
    stats data using 1 nooutput
    panel_in = (fig_w - legend_w - 0.9) / ncols - 0.9
    if (STATS_min > 0 && log(STATS_max / STATS_min) / log(2) + 1 > panel_in / 0.36) {
        x_axis = T_axis_sparse
    }
}
do for [fmt in formats] {
    eval term_for(fmt)
    # Margins and spacing in inches, turned into screen fractions.
    set multiplot layout nrows, ncols \
        margins 0.9 / fig_w + 0.02, 1 - (legend_w + 0.1) / fig_w, \
                0.55 / fig_h + 0.05, 1 - top_in / fig_h \
        spacing 0.9 / fig_w + 0.03, 0.85 / fig_h
    eval title_on(fig_title)
    eval caption_on
    do for [p=1:npanels] {
        unset logscale
        set autoscale
        eval x_axis
        eval y_axis
        if (legend_right) {
            set key at screen 1 - (legend_w - 0.05) / fig_w, 1 - top_in / fig_h top left
        } else {
            eval "set key ".key_pos
            # gnuplot sizes the key's (opaque) box for its titles at the full font's character
            # width; in the smaller key font the box would reach far past the text and hide the
            # curves there, so it is narrowed in proportion to the longest title.
            maxlen = 0
            do for [b=pfirst[p]:plast[p]] { if (strlen(btitle[b]) > maxlen) { maxlen = strlen(btitle[b]) } }
            eval sprintf("set key width %d", -int(maxlen * key_trim))
        }
        set title ptitle[p] noenhanced offset 0, -0.4
        set xlabel pxlabel[p] noenhanced offset 0, 0.5
        show_y = (p - 1) % ncols == 0
        if (!show_y) { show_y = pylabel[p] ne pylabel[p - 1] }
        # Two-line labels (quantity, then column) sit a little further out than one-line ones.
        if (show_y) {
            set ylabel pylabel[p] noenhanced offset (strstrt(pylabel[p], "\n") ? 0.2 : 1), 0
        } else {
            unset ylabel
        }
        unset label 98
        if (strlen(pnote[p]) > 0 && pfirst[p] <= plast[p]) { eval panel_note }
        if (pfirst[p] > plast[p]) {
            eval empty_panel
        } else {
            if (legend_right && p == lastp) {
                eval plot_curves.legend_entries
            } else {
                eval plot_curves
            }
        }
        eval title_off
        eval caption_off
        unset label 98
    }
    unset multiplot
    unset output
}
