/* figure.h — a prepared figure in memory: its panels (title, axis labels, a note, the range of
 * curves drawn in it) and its curves (legend text, colour key, dash, point type, points).  The
 * figure preparations return it (curves.h, crossover.h, speedup.h, realheads.h) and `linattn
 * plot` writes it out for gnuplot (harness/cli/cmd_plot.c: one data block per curve, one meta
 * file of panel and curve arrays).
 * Not here: choosing rows, files, gnuplot.  Tests: tests/test_figures.c.
 */
#ifndef LA_FIGURE_H
#define LA_FIGURE_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"

#define LA_FIG_TEXT_LEN 160 /* a legend entry, a panel title, an axis label */
#define LA_FIG_NOTE_LEN 200  /* a line written inside a panel */
#define LA_FIG_STATS_LEN 320 /* the line under the figure title */

/* How a curve's points are written for gnuplot. */
enum la_fig_curve_kind {
    LA_CURVE_POINTS = 0, /* x, y, lo, hi, n */
    LA_CURVE_TIMING = 1  /* T, y, lo, hi, n, kernel, fm: a linear series of the crossover figure */
};

struct la_fig_point {
    double x;
    double y;      /* the mean, the median or a theory value */
    double lo, hi; /* the bar around y (a 95% bootstrap interval, or the 20th–80th percentiles) */
    size_t n;      /* rows behind the point (0 for a theory value) */
    double kernel; /* LA_CURVE_TIMING: the linear kernel's time; 0 otherwise */
    double fm;     /* LA_CURVE_TIMING: the feature map's time; 0 otherwise */
};

struct la_fig_curve {
    char title[LA_FIG_TEXT_LEN]; /* legend entry; "" for none */
    char map[LA_NAME_LEN];       /* colour key: a map name, or "softmax" */
    int dash;                    /* 1 solid, 2 dashed, 3 dash-dot, 4 dotted (theory) */
    int pt;                      /* point type 1..8; 0 none; -1 the ring that marks T*,
                                    * -2 the cross at any other crossing */
    int shade;                   /* 0: pt's (a variant of its map: pt 2, 3, ... take the map's
                                    other shades, style.gp); 1: the map's own colour whatever
                                    pt (figures whose point types tell maps apart) */
    int kind;                    /* enum la_fig_curve_kind */
    size_t npoints;
    struct la_fig_point *pts; /* owned by the figure once added */
};

struct la_fig_panel {
    char title[LA_FIG_TEXT_LEN];
    char xlabel[LA_FIG_TEXT_LEN];
    char ylabel[LA_FIG_TEXT_LEN];
    char note[LA_FIG_NOTE_LEN]; /* a line inside the panel ("no data"), "" for none */
    size_t first, count;        /* its curves: curves[first .. first + count) */
};

struct la_figure {
    int fits; /* 0: the rows hold no data for this figure, and nothing below is set */
    size_t npanels;
    int nrows, ncols; /* the panel grid, filled row by row */
    struct la_fig_panel *panels;
    size_t ncurves, cap;
    struct la_fig_curve *curves;
    /* What the points and bars are, and how the trials relate, drawn under the figure's title;
     * "" for none. */
    char stats[LA_FIG_STATS_LEN];
    /* 1: every panel has its own legend.  0: a legend entry appears once per figure, so a
     * curve whose title an earlier curve has is added with an empty title. */
    int legend_every_panel;
};

/* An empty figure (fits = 0, no panels, no curves). */
void la_figure_init(struct la_figure *f);

/* n panels, zeroed (LA_ENOMEM on failure).  Called once per figure. */
int la_figure_panels(struct la_figure *f, size_t n);

/* Points for a curve being built: c->pts gets room for n points (at least one), c->npoints = 0.
 * LA_ENOMEM on failure. */
int la_fig_curve_alloc(struct la_fig_curve *c, size_t n);

/* Appends c (its title blanked when the legend already has it, see above); the figure then owns
 * c->pts.  On LA_ENOMEM c->pts is freed as well, so the caller never frees it. */
int la_figure_add_curve(struct la_figure *f, struct la_fig_curve *c);

/* Frees the panels, curves and points and leaves an empty figure; NULL is fine. */
void la_figure_free(struct la_figure *f);

#endif
