/* speedup.h — the speedup figure: t_softmax / t_linear (linear = kernel + feature map) over
 * (T, d) as a heatmap, one panel per linear configuration, from the crossover series
 * (crossover.h).  `linattn plot` draws it (harness/cli/cmd_plot.c, plots/speedup.gp).
 *
 * A configuration is one linear series across d: the same softmax kernel, causality, linear
 * kernel, map, draw, A, dv − d, batch, heads and threads, and, for maps that read m, either
 * m = d at every d ("m=d" in the title) or one fixed m.  Non-causal configurations fill the top
 * rows of panels, causal ones the rows below (a new row), each in the order they first appear in
 * the series; a row holds as many panels as fit in LA_SPEEDUP_ROW_IN inches (panel_w each).
 * Not here: files, gnuplot.  Tests: tests/test_figures.c.
 */
#ifndef LA_SPEEDUP_H
#define LA_SPEEDUP_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "crossover.h"
#include "figure.h"

#define LA_SPEEDUP_MAX_D 32
#define LA_SPEEDUP_MAX_T 64
#define LA_SPEEDUP_CELL_IN 0.5 /* inches per T column: tick labels and ratios stay apart */
#define LA_SPEEDUP_ROW_IN 24.0 /* inches of panels in one row at most */

struct la_speedup {
    /* Panels: nrows × ncols slots, an unused slot has no curve.  Curve c is configuration c:
     * nd·nT points, d index di outer, T index ti inner: x = log2 T, y = di, lo = hi = the
     * ratio (NaN where not measured), n = 1.  Curve titles are empty (the panel says it). */
    struct la_figure fig;
    int nd, nT;
    double ds[LA_SPEEDUP_MAX_D]; /* the d values, ascending */
    double Ts[LA_SPEEDUP_MAX_T]; /* the T values, ascending */
    double cbmax;                /* colour range: 2^k for the largest ratio either way, k in 1..6 */
    double panel_w; /* inches per panel (plots/speedup.gp): nT cells, its margins, at least 3.4 */
};

/* Prepares the figure into *sp (initialised here; free it with la_speedup_free).  sp->fig.fits
 * = 0 unless la_crossover_fits(rows, n, xo, nxo, forced).  LA_OK or LA_ENOMEM. */
int la_speedup_prepare(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                       size_t nxo, int forced, struct la_speedup *sp, struct la_error *err);

/* The ratio of configuration cfg at (ds[di], Ts[ti]); NaN where not measured. */
double la_speedup_ratio(const struct la_speedup *sp, size_t cfg, int di, int ti);

void la_speedup_free(struct la_speedup *sp); /* NULL is fine */

#endif
