/* summary.h — one point of a curve from the values of its like rows (trials, and the heads a
 * real-model figure pools): the statistic drawn (median or mean), a 95% bootstrap confidence
 * interval of that statistic, the range and the count.  The curve figures (curves.c) draw the
 * statistic as the point and the interval as its bar.
 *
 * Why these.  Random-feature errors are heavy-tailed across draws: a mean over a few trials can
 * land far from the typical value and one bad draw stretches an axis.  The median is what a
 * figure of typical behaviour shows; the mean where a formula predicts a mean (the Lemma 2
 * kernel MSE), with its interval saying how far it may be from that expectation.
 *
 * The interval: the percentile bootstrap, LA_SUMMARY_BOOT resamples of the n values with
 * replacement, the statistic of each, and their 2.5th and 97.5th percentiles (linear
 * interpolation, gsl_stats_quantile_from_sorted_data).  Resampling uses an mt19937 seeded with
 * LA_SUMMARY_SEED, so a figure is the same every time it is drawn.  With n = 1 the interval is
 * the value itself; with n = 2 it is the range.  With few values the percentile interval is
 * narrower than its nominal 95% (its coverage needs n of about 10 or more); the figures state n.
 * Not here: which rows are alike (curves.c).  Tests: tests/test_figures.c.
 */
#ifndef LA_SUMMARY_H
#define LA_SUMMARY_H

#include <stddef.h>

#include "../core/status.h"

#define LA_SUMMARY_BOOT 2000     /* bootstrap resamples */
#define LA_SUMMARY_LEVEL 0.95    /* the interval's nominal coverage */
#define LA_SUMMARY_SEED 20240531 /* the resampling stream's fixed seed */

enum la_summary_stat {
    LA_SUMMARY_MEDIAN = 0, /* the default */
    LA_SUMMARY_MEAN = 1
};

struct la_summary {
    double y;        /* the statistic */
    double lo, hi;   /* its 95% bootstrap interval */
    double min, max; /* the range of the values */
    size_t n;
};

/* The summary of v[0..n) (n >= 1; v is sorted in place) by stat into *out.  LA_EINVAL for n = 0
 * or a value that is not finite, LA_ENOMEM. */
int la_summary_compute(double *v, size_t n, int stat, struct la_summary *out);

/* "median" or "mean". */
const char *la_summary_name(int stat);

#endif
