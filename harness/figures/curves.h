/* curves.h — the curve figures: one metric (or two) against one field of the rows, a curve per
 * distinct setting, a panel per value of the panel fields that vary.  The specifications of
 * the shipped ones (features, error_T, error_sigma, memory, train_memory) are here; `linattn plot` draws them
 * (harness/cli/cmd_plot.c).
 *
 * How rows become curves.  Rows with status OK that the spec accepts (row_ok) and that have a
 * finite value of a metric are selected.  A fixed field that varies is pinned to the value whose
 * rows have the most distinct x (ties: σ closest to 1, else the largest), and the panel titles
 * say which.  Every field except x and the averaged ones identifies a curve; its point at one x
 * summarises the rows there (trials, and the pooled layers and heads) by the metric's statistic
 * (summary.h: the median unless the spec asks for the mean) with its 95% bootstrap interval as
 * the bar, and the count.  Each panel title ends with the statistic and n ("median of n=10")
 * when a point has more than one row, and fig->stats says what the bars are and that trials
 * share data and draws across maps and m (common random numbers: one trial's draw moves every
 * curve of that trial together), or that every point is one row.  The panel fields that vary split panels; each metric is a panel row (or a
 * panel column when metrics_across).  Curves sort softmax first, then by the field order of
 * fields.h; panels by causality, d, ...  A legend entry names the map (or the softmax kernel),
 * m and A where the map reads them, every other field that varies inside the panel except x,
 * and the linear kernel when two linear kernels of one causality share the panel.  One colour
 * per map; variants of one map in a panel (a second m, orthogonal draws) get the next dash and
 * point type, or, with a dash field, the dash says that field's value.
 * Not here: files, gnuplot.  Tests: tests/test_figures.c.
 */
#ifndef LA_CURVES_H
#define LA_CURVES_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "figure.h"
#include "summary.h"

/* Axis labels of two lines: a panel is about 2.5 inches tall. */
#define LA_FIG_ERR_LABEL "output error ‖Y − Y_sm‖_F / ‖Y_sm‖_F\n(err_rel_fro)"
#define LA_FIG_KL_LABEL "attention KL (nats), rows with all w > 0\n(kl_mean)"

/* Extra curves of one panel (the features figure's theory lines): may add curves to fig and set
 * the panel's note.  rows: every row of the file; panel: a row holding the panel's values;
 * metric: the panel's metric index.  Returns LA_OK or LA_ENOMEM. */
typedef int (*la_curves_extra_fn)(const struct la_row *rows, size_t n, const struct la_row *panel,
                                  int metric, struct la_figure *fig, struct la_fig_panel *p);

/* A curve figure.  Fields are named as in fields.h, space-separated; metrics are results
 * columns. */
struct la_curve_spec {
    const char *xfield;     /* the x axis */
    const char *metrics[2]; /* one panel row (or column) per metric */
    const char *ylabels[2]; /* their axis labels (quantity and unit) */
    int summary[2];         /* their statistic, enum la_summary_stat (0: the median) */
    int nmetrics;
    const char *xlabel;
    const char *panel_fields; /* fields that split panels (those of them that vary) */
    int metrics_across;       /* 1: metrics are the panel columns, panel values the rows */
    const char *fixed_field;  /* pinned to one value when it varies; NULL: none */
    const char *dash_field;   /* dash by this field's value rank; NULL: by variant of the map */
    const char *avg_fields;   /* averaged over like trials (a real model's layers, heads) */
    int (*row_ok)(const struct la_row *r); /* which rows the figure may use; NULL: every row */
    la_curves_extra_fn extra;              /* NULL: none */
};

/* The shipped curve figures (docs/FIGURES.md). */
extern const struct la_curve_spec la_curves_features;    /* kernel MSE, error vs m; theory */
extern const struct la_curve_spec la_curves_error_T;     /* error and KL vs T, at one σ */
extern const struct la_curve_spec la_curves_error_sigma; /* error and KL vs σ, at one T */
extern const struct la_curve_spec la_curves_memory;      /* workspace and peak RSS vs T */
extern const struct la_curve_spec la_curves_train_memory; /* bytes a pass holds vs T, by pass */

/* The most panel columns a curve figure is drawn with when not forced (--only). */
#define LA_CURVES_MAX_COLS 8

/* Prepares the curve figure s over rows into *fig (initialised here; free it with
 * la_figure_free).  fig->fits = 0 when no row is selected, or (unless forced) no curve has two
 * x values or the panels need more than LA_CURVES_MAX_COLS columns
 * (forced: draw it anyway).  LA_EINVAL for a spec naming an unknown field or
 * column, LA_ENOMEM. */
int la_curves_prepare(const struct la_row *rows, size_t n, const struct la_curve_spec *s,
                      int forced, struct la_figure *fig, struct la_error *err);

#endif
