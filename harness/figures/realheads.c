/* realheads.c — the real_heads figure (realheads.h): heads of a real model sorted by softmax
 * entropy, error and KL per head and map.  Pure computation: no I/O.
 * Tests: tests/test_figures.c.
 */
#include "realheads.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curves.h"
#include "fields.h"
#include "summary.h"

#define PREFERRED_M 64

static int cmp_head_entropy(const void *a, const void *b)
{
    const struct la_head_stat *x = a, *y = b;
    return (x->entropy > y->entropy) - (x->entropy < y->entropy);
}

static int real_row(const struct la_row *r)
{
    return r->status == LA_ROW_OK && !strcmp(r->data, "h5") && r->head >= 0 &&
           strcmp(r->map, "none") != 0 && isfinite(r->err_rel_fro);
}

/* Row r belongs to series k: the same map and weights file. */
static int same_series(const struct la_realheads *rh, size_t k, const struct la_row *r)
{
    return !strcmp(rh->maps[k], r->map) && !strcmp(rh->weights[k], r->weights);
}

/* The legend of series k: the map and its m; a learned map also names its weights file (base
 * name without .h5). */
static void series_title(const struct la_realheads *rh, size_t k, char *buf, size_t cap)
{
    const char *w = rh->weights[k], *slash = strrchr(w, '/');
    if (slash)
        w = slash + 1;
    if (!w[0]) {
        snprintf(buf, cap, "%s (m = %d)", rh->maps[k], rh->m[k]);
        return;
    }
    size_t len = strlen(w);
    if (len > 3 && !strcmp(w + len - 3, ".h5"))
        len -= 3;
    snprintf(buf, cap, "%s %.*s (m = %d)", rh->maps[k], (int)len, w, rh->m[k]);
}

/* The heads and maps of the rows, each map's m, the heads' mean entropies. */
static void collect(const struct la_row *rows, size_t n, struct la_realheads *rh)
{
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (!real_row(r))
            continue;
        size_t h = 0;
        while (h < rh->nheads && !(rh->heads[h].layer == r->layer && rh->heads[h].head == r->head))
            h++;
        if (h == rh->nheads) {
            rh->heads[h].layer = r->layer, rh->heads[h].head = r->head;
            rh->nheads++;
        }
        if (isfinite(r->entropy_mean)) {
            rh->heads[h].entropy += r->entropy_mean;
            rh->heads[h].n++;
        }
        size_t k = 0;
        while (k < rh->nmaps && !same_series(rh, k, r))
            k++;
        if (k == rh->nmaps) {
            snprintf(rh->maps[k], LA_NAME_LEN, "%s", r->map);
            snprintf(rh->weights[k], LA_PATH_LEN, "%s", r->weights);
            rh->m[rh->nmaps++] = r->m;
        } else if (rh->m[k] != PREFERRED_M && (r->m == PREFERRED_M || r->m > rh->m[k])) {
            rh->m[k] = r->m;
        }
    }
    for (size_t h = 0; h < rh->nheads; h++)
        rh->heads[h].entropy = rh->heads[h].n ? rh->heads[h].entropy / (double)rh->heads[h].n : NAN;
    qsort(rh->heads, rh->nheads, sizeof *rh->heads, cmp_head_entropy);
}

/* The curve of map k in panel p (0: output error, 1: KL): per head, the median over its trials
 * with its 95% bootstrap interval and the count (summary.h).  v: scratch of n doubles. */
static int head_curve(const struct la_row *rows, size_t n, const struct la_realheads *rh, size_t k,
                      int p, double *v, struct la_fig_curve *c)
{
    if (la_fig_curve_alloc(c, rh->nheads) != LA_OK)
        return LA_ENOMEM;
    for (size_t h = 0; h < rh->nheads; h++) {
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++) {
            const struct la_row *r = &rows[i];
            if (!real_row(r) || !same_series(rh, k, r) || r->m != rh->m[k] ||
                r->layer != rh->heads[h].layer || r->head != rh->heads[h].head)
                continue;
            const double y = p ? r->kl_mean : r->err_rel_fro;
            if (isfinite(y))
                v[cnt++] = y;
        }
        struct la_summary sm;
        if (cnt && la_summary_compute(v, cnt, LA_SUMMARY_MEDIAN, &sm) != LA_OK)
            return LA_ENOMEM;
        if (cnt)
            c->pts[c->npoints++] = (struct la_fig_point){
                .x = rh->heads[h].entropy, .y = sm.y, .lo = sm.lo, .hi = sm.hi, .n = cnt};
    }
    return LA_OK;
}

int la_realheads_prepare(const struct la_row *rows, size_t n, struct la_realheads *rh,
                         struct la_error *err)
{
    memset(rh, 0, sizeof *rh);
    la_figure_init(&rh->fig);
    rh->heads = calloc(n ? n : 1, sizeof *rh->heads);
    rh->maps = calloc(n ? n : 1, sizeof *rh->maps);
    rh->weights = calloc(n ? n : 1, sizeof *rh->weights);
    rh->m = calloc(n ? n : 1, sizeof *rh->m);
    double *v = malloc((n ? n : 1) * sizeof *v);
    if (!rh->heads || !rh->maps || !rh->weights || !rh->m || !v)
        goto nomem;
    collect(rows, n, rh);
    if (rh->nheads < 2 || rh->nmaps == 0) {
        free(v);
        return LA_OK;
    }
    if (la_figure_panels(&rh->fig, 2) != LA_OK)
        goto nomem;
    rh->fig.fits = 1;
    rh->fig.nrows = 1;
    rh->fig.ncols = 2;
    for (int p = 0; p < 2; p++) {
        struct la_fig_panel *pm = &rh->fig.panels[p];
        snprintf(pm->title, sizeof pm->title, "%zu head%s, sorted by softmax entropy", rh->nheads,
                 la_fig_plural((long long)rh->nheads));
        snprintf(pm->xlabel, sizeof pm->xlabel,
                 "head's mean softmax attention entropy, nats (left: peaky)");
        snprintf(pm->ylabel, sizeof pm->ylabel, "%s", p ? LA_FIG_KL_LABEL : LA_FIG_ERR_LABEL);
        pm->first = rh->fig.ncurves;
        for (size_t k = 0; k < rh->nmaps; k++) {
            struct la_fig_curve cv = {
                .kind = LA_CURVE_POINTS, .dash = 1, .pt = (int)k + 1, .shade = 1};
            if (head_curve(rows, n, rh, k, p, v, &cv) != LA_OK) {
                free(cv.pts);
                goto nomem;
            }
            snprintf(cv.map, sizeof cv.map, "%s", rh->maps[k]);
            series_title(rh, k, cv.title, sizeof cv.title);
            if (la_figure_add_curve(&rh->fig, &cv) != LA_OK)
                goto nomem;
        }
        pm->count = rh->fig.ncurves - pm->first;
    }
    snprintf(rh->fig.stats, sizeof rh->fig.stats,
             "points: median over a head's trials; bars: its 95%% bootstrap interval (with two "
             "trials, their range)");
    free(v);
    return LA_OK;
nomem:
    free(v);
    la_realheads_free(rh);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}

void la_realheads_free(struct la_realheads *rh)
{
    if (!rh)
        return;
    la_figure_free(&rh->fig);
    free(rh->heads);
    free(rh->maps);
    free(rh->weights);
    free(rh->m);
    rh->heads = NULL;
    rh->maps = NULL;
    rh->weights = NULL;
    rh->m = NULL;
    rh->nheads = rh->nmaps = 0;
}
