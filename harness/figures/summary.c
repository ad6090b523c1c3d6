/* summary.c — a curve point's statistic and its bootstrap interval (summary.h), on GSL's sort,
 * statistics and mt19937.  Pure computation: no I/O, the same result on every call.
 * Tests: tests/test_figures.c.
 */
#include "summary.h"

#include <math.h>
#include <stdlib.h>

#include <gsl/gsl_rng.h>
#include <gsl/gsl_sort.h>
#include <gsl/gsl_statistics_double.h>

const char *la_summary_name(int stat)
{
    return stat == LA_SUMMARY_MEAN ? "mean" : "median";
}

/* The statistic of sorted values s[0..n). */
static double stat_of(const double *s, size_t n, int stat)
{
    return stat == LA_SUMMARY_MEAN ? gsl_stats_mean(s, 1, n)
                                   : gsl_stats_median_from_sorted_data(s, 1, n);
}

int la_summary_compute(double *v, size_t n, int stat, struct la_summary *out)
{
    if (!n)
        return LA_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return LA_EINVAL;
    gsl_sort(v, 1, n);
    out->n = n;
    out->min = v[0];
    out->max = v[n - 1];
    out->y = stat_of(v, n, stat);
    out->lo = out->hi = out->y;
    if (n == 1 || v[0] == v[n - 1])
        return LA_OK;
    double *res = malloc(n * sizeof *res), *boot = malloc(LA_SUMMARY_BOOT * sizeof *boot);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!res || !boot || !r) {
        free(res);
        free(boot);
        if (r)
            gsl_rng_free(r);
        return LA_ENOMEM;
    }
    gsl_rng_set(r, LA_SUMMARY_SEED);
    for (size_t b = 0; b < LA_SUMMARY_BOOT; b++) {
        for (size_t i = 0; i < n; i++)
            res[i] = v[gsl_rng_uniform_int(r, (unsigned long)n)];
        gsl_sort(res, 1, n);
        boot[b] = stat_of(res, n, stat);
    }
    gsl_sort(boot, 1, LA_SUMMARY_BOOT);
    const double tail = 0.5 * (1.0 - LA_SUMMARY_LEVEL);
    out->lo = gsl_stats_quantile_from_sorted_data(boot, 1, LA_SUMMARY_BOOT, tail);
    out->hi = gsl_stats_quantile_from_sorted_data(boot, 1, LA_SUMMARY_BOOT, 1.0 - tail);
    free(res);
    free(boot);
    gsl_rng_free(r);
    return LA_OK;
}
