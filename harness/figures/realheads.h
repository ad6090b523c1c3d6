/* realheads.h — the real_heads figure: approximation error per head of a real model, heads
 * sorted by their softmax attention entropy.  For files of `data: h5` rows with single heads
 * (experiments/real-stories260k.yaml).  `linattn plot` draws it (harness/cli/cmd_plot.c,
 * plots/real_heads.gp).
 *
 * Rows used: status OK, data h5, one head (head >= 0), a feature map (not "none"), a finite
 * output error.  A head's entropy is the mean of entropy_mean over its rows (NaN when none has
 * one); heads are sorted by it, ascending (peaky heads first).  One curve per map (a learned map:
 * per weights file, its legend names the file), at one m: m = 64 outputs when measured, else
 * the largest.  Two panels: output error (left) and
 * attention KL (right) against the head's entropy; a point is the median over the rows of that
 * head (trials), with its 95% bootstrap interval (summary.h).  Needs two heads and one map.
 * Not here: files, gnuplot.  Tests: tests/test_figures.c.
 */
#ifndef LA_REALHEADS_H
#define LA_REALHEADS_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "figure.h"

struct la_head_stat {
    int layer, head;
    double entropy; /* mean over the head's rows */
    size_t n;       /* rows with an entropy */
};

struct la_realheads {
    struct la_figure fig; /* 2 panels; per panel one curve per map, in maps order */
    size_t nheads;
    struct la_head_stat *heads; /* sorted by entropy, ascending */
    size_t nmaps;                  /* series: one per map and weights file */
    char (*maps)[LA_NAME_LEN];     /* each series' map, in order of first appearance */
    char (*weights)[LA_PATH_LEN];  /* its weights file (learned), "" for the other maps */
    int *m;                        /* the m drawn for each series */
};

/* Prepares the figure into *rh (initialised here; free it with la_realheads_free).
 * rh->fig.fits = 0 with fewer than two heads or no map.  LA_OK or LA_ENOMEM. */
int la_realheads_prepare(const struct la_row *rows, size_t n, struct la_realheads *rh,
                         struct la_error *err);

void la_realheads_free(struct la_realheads *rh); /* NULL is fine */

#endif
