/* capacity.h — the capacity figure: retrieval error against the number of stored keys S, one
 * curve per (feature map, update rule), with a dotted vertical mark at each map's dim φ, from
 * the rows of a capacity file (harness/engine/capacity.h).  Not here: running the experiment,
 * gnuplot (harness/cli/cmd_plot.c, plots/capacity.gp).  Tests: tests/test_capacity.c.
 */
#ifndef LA_FIG_CAPACITY_H
#define LA_FIG_CAPACITY_H

#include <stddef.h>

#include "../core/status.h"
#include "../engine/capacity.h"
#include "figure.h"

#define LA_CAP_MAX_GROUPS 8 /* panel rows: (keys, values, norm) combinations drawn */

/* Prepares the figure.  Panels: one column per setting present (unique, then overwrite), one
 * row per (keys, values, norm) combination in the order the rows first show it (at most
 * LA_CAP_MAX_GROUPS; the figure's stats line says how many were left out).  In a panel, one
 * curve per (map label, rule) in row order: x = S, y = the mean mse over trials, bars the
 * smallest and largest trial, n = trials; colour the map, dash 1 for the sum rule and 2 for the
 * delta rule, point type the label's rank among labels of its map.  Then for each label, a mark
 * of two points (dim φ, panel's smallest y) and (dim φ, largest y) with dash 4 and no point,
 * titled "dim φ (dotted)" once, drawn only when dim φ lies within the panel's S range.
 * fits = 0 when there are no rows.  LA_OK or LA_ENOMEM. */
int la_capacity_figure(const struct la_cap_row *rows, size_t n, struct la_figure *fig,
                       struct la_error *err);

#endif
