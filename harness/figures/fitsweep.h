/* fitsweep.h — the figures of fitted learned maps on a real model's heads (`linattn fit`
 * weights swept in one experiment, experiments/real-stories260k-fit-sweep.yaml):
 *   fit_m       test attention KL (left) and output error (right) against the feature
 *               dimension m: the fitted learned map (one weights file per m) against every
 *               other map of the file at its m (prf, gerf: a curve over their m; a map with one
 *               m, taylor2 or elu1, is one point)
 *   fit_tokens  the same against the tokens the learned map was trained on: one curve per m of
 *               the learned map; every other map at that m is a dashed horizontal line (it
 *               trains on nothing) across the curve's token range
 * A point is the mean over the rows at that x (every head, every trial) with its 95% bootstrap
 * interval (summary.h).  Rows used: status OK, data h5, one head (head >= 0), a feature map, a
 * finite output error (KL and error each where finite).
 *
 * What a weights file was trained on is not in the rows: the caller (harness/cli/cmd_plot.c)
 * reads it from each file (its `train_tokens` attribute, docs/data-layout.md) into the table
 * w[0..nw), by the path the rows name; a file it could not read has tokens NaN.
 * fit_m: the learned rows of the files with the most training tokens (all learned rows when no
 * file's tokens are known) are the fitted curve, at each file's m; fits when that curve has two
 * values of m.  fit_tokens: fits when some m of the learned map has two token counts.
 * Not here: files, gnuplot (plots/fit_m.gp, plots/fit_tokens.gp).  Tests: tests/test_figures.c.
 */
#ifndef LA_FITSWEEP_H
#define LA_FITSWEEP_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "figure.h"

/* One weights file of the learned rows: its path as the rows name it, and the positions of all
 * the captures it was trained on (NaN: unknown). */
struct la_fit_weights {
    char path[LA_PATH_LEN];
    double tokens;
};

/* Prepares fit_m into *fig (initialised here; la_figure_free it).  fig->fits = 0 when it does
 * not fit.  LA_OK or LA_ENOMEM. */
int la_fit_m_figure(const struct la_row *rows, size_t n, const struct la_fit_weights *w, size_t nw,
                    struct la_figure *fig, struct la_error *err);

/* Prepares fit_tokens, as la_fit_m_figure. */
int la_fit_tokens_figure(const struct la_row *rows, size_t n, const struct la_fit_weights *w,
                         size_t nw, struct la_figure *fig, struct la_error *err);

#endif
