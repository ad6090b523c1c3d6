# style.gp — the one style of every linattn figure: fonts, sizes, a colour per feature map
# (softmax is black), dash and point types, the T axis in powers of two, the PNG/PDF terminal
# switch, the caption line, and the macros that draw one panel of curves.
# Not a figure: every plots/FIG.gp loads it after the meta file `linattn plot` wrote, which
# defines: out (path without extension), formats ("png pdf"), caption, data (TSV blocks, one per
# curve: x, y, lo, hi, n, ...), panels (npanels, nrows, ncols, ptitle[], pxlabel[], pylabel[],
# pnote[], pfirst[], plast[]) and curves (btitle[], bmap[], bdash[], bpt[], bshade[]).
# Try it by hand: linattn plot FILE.h5 --keep /tmp/k; gnuplot /tmp/k/FIG.meta.gp plots/FIG.gp

# ---- page and fonts ------------------------------------------------------------------------
# The terminal is enhanced (10^{-3} on axes); every string that comes from the data (titles,
# legends, the caption) is drawn `noenhanced`, so names like softmax_flash print as they are.
font_name = "DejaVu Sans"
font_size = 10          # points, in the PDF; the PNG is rendered at png_dpi
if (!exists("png_dpi")) png_dpi = 110   # `linattn plot --png-dpi N` sets it
if (!exists("legend_right")) legend_right = 0     # 1: one legend for the figure, right strip
legend_w = legend_right ? 2.9 : 0                 # inches of that strip
# Inches; a panel is ~4.2 wide, and a page at least 8.4 so that one panel's title and the caption
# (experiment, file, commit, CPU, threads, date) fit.
# A figure script that sets legend_fit = 1 (every panel has its own legend, inside it) gets
# panels wide enough for the longest entry (about 0.07 inch a character in the key's font) and
# 1.5 inch of curves right of it.
if (!exists("fig_w") && exists("legend_fit")) {
    legend_chars = 0
    do for [b=1:nblocks] { if (strlen(btitle[b]) > legend_chars) { legend_chars = strlen(btitle[b]) } }
    panel_in = 2.4 + 0.07 * legend_chars
    fig_w = (panel_in > 4.2 ? panel_in : 4.2) * ncols + 0.6
}
if (!exists("fig_w")) fig_w = 4.2 * ncols + 0.6 + legend_w
if (fig_w < 8.4) fig_w = 8.4
# The statistics line under the title (fig_stats, from the meta file; up to two lines) takes
# top_in inches above the panels together with the title.
if (!exists("fig_stats")) fig_stats = ""
top_in = strlen(fig_stats) > 0 ? 1.0 : 0.75
if (!exists("fig_h")) fig_h = 3.3 * nrows + 0.65 + top_in

# The terminal of one format; `eval term_for(fmt)` before drawing, `unset output` after.
# PNG fonts are scaled by png_dpi/96 so that both formats have the same proportions.
term_for(fmt) = fmt eq "png" ? \
    sprintf("set terminal pngcairo size %d,%d font '%s,%g' enhanced linewidth 1.25 " . \
            "background rgb 'white'; set output out.'.png'", \
            int(fig_w * png_dpi), int(fig_h * png_dpi), font_name, font_size * png_dpi / 96.0) : \
    sprintf("set terminal pdfcairo size %gin,%gin font '%s,%g' enhanced linewidth 1.25; " . \
            "set output out.'.pdf'", fig_w, fig_h, font_name, font_size)

# ---- colours: one per map, the same in every figure (Okabe–Ito, colour-blind safe) ----------
# The recurrences' figure colours by update rule instead ("rec:delta", ...: crossover.c).
maprgb(name) = \
    name eq "softmax" ? 0x000000 : \
    name eq "elu1"    ? 0xE69F00 : \
    name eq "relu"    ? 0x56B4E9 : \
    name eq "rff"     ? 0x009E73 : \
    name eq "prf"     ? 0x0072B2 : \
    name eq "hyp"     ? 0xD55E00 : \
    name eq "gerf"    ? 0xCC79A7 : \
    name eq "taylor2" ? 0x8C6D31 : \
    name eq "learned" ? 0x7F7F7F : \
    name eq "dpfp"    ? 0x999933 : \
    name eq "rec:delta" ? 0x0072B2 : \
    name eq "rec:decay" ? 0xD55E00 : \
    name eq "rec:gated" ? 0x009E73 : 0x44AA99
mapcolor(name) = sprintf("#%06X", maprgb(name))
# Variants of one map (point types 2, 3, ...: the second m, the second ν) keep the map's hue in
# other shades, lighter ones first (a darker orange would read as taylor2's brown), so that they
# stay apart where their point marks are too small to tell: a positive t darkens each channel to
# (1 − t) of itself, a negative one mixes |t| of white in.
array SHADE[4] = [-0.45, -0.7, 0.3, 0.5]
mix1(v, t) = t >= 0 ? int(v * (1 - t)) : int(v + (255 - v) * (-t))
mixrgb(c, t) = mix1((c >> 16) & 255, t) * 65536 + mix1((c >> 8) & 255, t) * 256 + mix1(c & 255, t)
variantcolor(name, i) = sprintf("#%06X", i <= 1 ? maprgb(name) : \
                                mixrgb(maprgb(name), SHADE[(i - 2) % 4 + 1]))

# ---- dashes and points: variants of one map (m, draw, causality) -----------------------------
# 1 solid (the first variant, IID, non-causal), 2 dashed (orthogonal, causal, the second m),
# 3 dash-dot, 4 dotted (theory lines).
set dashtype 11 solid
set dashtype 12 (7, 4)
set dashtype 13 (8, 3, 2, 3)
set dashtype 14 (2, 3)
dt_of(i) = 10 + (i < 1 ? 1 : i > 4 ? 4 : i)
array PT[8] = [7, 5, 9, 13, 6, 4, 8, 12]
# Point type -1: the ring at a crossover T*; -2: the cross at any other crossing.
pt_of(i) = i == -1 ? 6 : i < 0 ? 2 : i == 0 ? 7 : PT[(i - 1) % 8 + 1]
ps_of(i) = i == -1 ? 2.2 : i < 0 ? 1.6 : i == 0 ? 0.01 : 0.55
lw_of(i) = i < 0 ? 1.5 : i == 0 ? 1.7 : 1.0     # marks and theory lines a little heavier

# ---- axes ------------------------------------------------------------------------------------
set grid xtics ytics mxtics mytics lc rgb "#e4e4e4" lw 0.6, lc rgb "#f2f2f2" lw 0.4
set border 3 lc rgb "#444444"
set tics nomirror out scale 0.6
eval sprintf("set key top left reverse Left noautotitle samplen 2.2 spacing 1.0 " . \
             "font ',%g' nobox opaque", font_size * 0.78)
# Characters of key width given back per character of the longest title (panels.gp): the box
# gnuplot estimates is that much wider than the text in the key's font.
key_trim = 0.6
set errorbars small
# A little air left and right, so the first and last points (and their tics) are not on the
# border: gnuplot drops a tic that rounding puts a hair outside an autoscaled log axis.
set offsets graph 0.03, graph 0.03, 0, 0
set bars 0.5

# T axis: powers of two, labelled 128, 1K, 64K, 1M.
tlabel(x) = x >= 1048576 ? sprintf("%gM", x / 1048576.) : \
            x >= 1024 ? sprintf("%gK", x / 1024.) : sprintf("%g", x)
T_axis = "set logscale x 2; set xtics (); " . \
         "do for [e=0:24] { set xtics add (tlabel(2**e) 2**e) }; set mxtics 1"
# Bytes axis: 4 KiB, 16 MiB.
# The same with a label on every other power of 2 (64, 256, 1K, ...): for sweeps of a dozen or
# more powers, whose every-power labels would run together.
T_axis_sparse = "set logscale x 2; set xtics (); " . \
                "do for [e=0:24] { set xtics add ((e % 2 ? '' : tlabel(2**e)) 2**e) }; set mxtics 1"
bytes_axis = "set logscale y 2; set format y '%.0b %BB'"
# Powers-of-ten axis for errors and times.
log10_y = "set logscale y 10; set format y '10^{%L}'; set mytics 10"

# ---- the caption: experiment, commit, machine; drawn once per page -------------------------
caption_on = sprintf("set label 99 caption at screen 0.006, 0.014 left font ',%g' " . \
                     "tc rgb '#555555' front noenhanced", font_size * 0.72)
caption_off = "unset label 99"

# ---- one panel of curves: blocks pfirst[p]..plast[p] of `data` -----------------------------
# Columns: 1 x, 2 y (mean or median), 3 lo, 4 hi (spread over trials or repeats).
# The note sits in the top right corner, where falling error curves leave room, clear of the
# axis labels; on a white box, so that it stays legible where curves do pass.
set style textbox opaque noborder
panel_note = sprintf("set label 98 pnote[p] at graph 0.98, 0.95 right font ',%g' " . \
                     "tc rgb '#aa3333' front boxed noenhanced", font_size * 0.8)
curve_style = "lc rgb variantcolor(bmap[b], bshade[b]) dt dt_of(bdash[b]) lw lw_of(bpt[b]) " . \
              "pt pt_of(bpt[b]) ps ps_of(bpt[b])"
plot_curves = "plot for [b=pfirst[p]:plast[p]] data index (b-1) using 1:2:3:4 " . \
              "with yerrorlines " . curve_style . \
              " title (legend_right ? '' : btitle[b]) noenhanced"
# The figure's legend in the right-hand strip: key entries of every curve (NaN draws nothing),
# appended to the last panel's plot command.
legend_entries = ", for [b=1:nblocks] NaN with linespoints " . curve_style . \
                 " title btitle[b] noenhanced"
empty_panel = "unset logscale; set xrange [0:1]; set yrange [0:1]; unset xtics; unset ytics; " . \
              "set label 97 'no data' at graph 0.5, 0.5 center; plot NaN notitle; " . \
              "unset label 97; set xtics; set ytics; set autoscale"

# The figure title, top centre (the terminal's multiplot title is not used: it would be enhanced),
# and under it the figure's statistics line (fig_stats from the meta file: what points and bars
# are, n), in smaller type.
title_on(t) = sprintf("set label 96 '%s' at screen 0.5, 1 - 0.2 / fig_h center " . \
                      "font ',%g' front noenhanced; " . \
                      "set label 95 fig_stats at screen 0.5, 1 - 0.43 / fig_h center " . \
                      "font ',%g' tc rgb '#333333' front noenhanced", \
                      t, font_size * 1.2, font_size * 0.75)
title_off = "unset label 96; unset label 95"
