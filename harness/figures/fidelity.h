/* fidelity.h — the fidelity figure: how much a real model changes when a feature map replaces
 * its softmax attention, against the map's output dimension m.  For files of `data: model`
 * rows (experiments/fidelity.yaml; harness/engine/fidelity_cell.h).  `linattn plot` draws it
 * (harness/cli/cmd_plot.c, plots/fidelity.gp).
 *
 * Rows used: status OK, data model, a feature map (not "none"), a finite model_kl.  One series
 * per map (in order of first appearance), one point per m (ascending): the median over the
 * rows of that map and m (trials: other map draws) with its 95% bootstrap interval
 * (summary.h).  Left panel: model-level KL (model_kl); right panel: top-1 agreement
 * (model_top1).  With heads rows (results of the same maps on the model's own heads, `data:
 * h5`, experiments/real-stories260k.yaml), the left panel adds per map a dashed series of the
 * attention-level KL (kl_mean) at the same m: the mean over every head and trial, with its 95%
 * bootstrap interval.  A softmax row (the check: KL 0, top-1 1) is named in the left panel's
 * note.  Fits with one map row.
 * Not here: files, gnuplot.  Tests: tests/test_figures.c.
 */
#ifndef LA_FIDELITY_FIG_H
#define LA_FIDELITY_FIG_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "figure.h"

/* Prepares the figure into *fig (initialised here; free it with la_figure_free).  heads may be
 * NULL (nheads 0).  fig->fits = 0 without a map row.  LA_OK or LA_ENOMEM. */
int la_fidelity_figure(const struct la_row *rows, size_t n, const struct la_row *heads,
                       size_t nheads, struct la_figure *fig, struct la_error *err);

#endif
