/* fidelity.c — the fidelity figure (fidelity.h): model-level KL and top-1 agreement per map
 * against m, beside the map's attention-level KL on the model's heads.  Pure computation: no
 * I/O.  Tests: tests/test_figures.c.
 */
#include "fidelity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"
#include "summary.h"

enum { V_MODEL_KL, V_TOP1, V_HEAD_KL };

static int model_row(const struct la_row *r)
{
    return r->status == LA_ROW_OK && !strcmp(r->data, "model") && strcmp(r->map, "none") != 0 &&
           isfinite(r->model_kl);
}

static int cmp_int(const void *a, const void *b)
{
    const int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The value of row r for series kind what (NaN when r does not belong to it). */
static double value(const struct la_row *r, int what, const char *map, int m)
{
    if (r->m != m || strcmp(r->map, map) != 0)
        return NAN;
    if (what == V_HEAD_KL)
        return r->status == LA_ROW_OK && !strcmp(r->data, "h5") ? r->kl_mean : NAN;
    if (!model_row(r))
        return NAN;
    return what == V_MODEL_KL ? r->model_kl : r->model_top1;
}

/* The series of map over ms[0..nm): per m, the summary (median, or mean for head KL) of the
 * finite values of the rows.  v: scratch of n doubles.  c->npoints may end 0. */
static int series(const struct la_row *rows, size_t n, int what, const char *map, const int *ms,
                  size_t nm, double *v, struct la_fig_curve *c)
{
    if (la_fig_curve_alloc(c, nm) != LA_OK)
        return LA_ENOMEM;
    for (size_t j = 0; j < nm; j++) {
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++) {
            const double y = value(&rows[i], what, map, ms[j]);
            if (isfinite(y))
                v[cnt++] = y;
        }
        if (!cnt)
            continue;
        struct la_summary sm;
        if (la_summary_compute(v, cnt, what == V_HEAD_KL ? LA_SUMMARY_MEAN : LA_SUMMARY_MEDIAN,
                               &sm) != LA_OK)
            return LA_ENOMEM;
        c->pts[c->npoints++] =
            (struct la_fig_point){.x = ms[j], .y = sm.y, .lo = sm.lo, .hi = sm.hi, .n = cnt};
    }
    return LA_OK;
}

/* Adds the series (if it has points) with its style; LA_OK or LA_ENOMEM. */
static int add_series(struct la_figure *fig, const struct la_row *rows, size_t n, int what,
                      const char *map, int pt, const int *ms, size_t nm, double *v)
{
    struct la_fig_curve c = {.kind = LA_CURVE_POINTS, .dash = what == V_HEAD_KL ? 2 : 1,
                             .pt = pt, .shade = 1};
    if (series(rows, n, what, map, ms, nm, v, &c) != LA_OK) {
        free(c.pts);
        return LA_ENOMEM;
    }
    if (!c.npoints) {
        free(c.pts);
        return LA_OK;
    }
    snprintf(c.map, sizeof c.map, "%s", map);
    snprintf(c.title, sizeof c.title, "%s%s", map,
             what == V_HEAD_KL ? ": attention KL on its heads" : "");
    return la_figure_add_curve(fig, &c);
}

int la_fidelity_figure(const struct la_row *rows, size_t n, const struct la_row *heads,
                       size_t nheads, struct la_figure *fig, struct la_error *err)
{
    la_figure_init(fig);
    const size_t cap = n ? n : 1;
    char(*maps)[LA_NAME_LEN] = calloc(cap, sizeof *maps);
    int *ms = calloc(cap, sizeof *ms);
    double *v = malloc((n > nheads ? n : nheads ? nheads : 1) * sizeof *v);
    size_t nmaps = 0, nm = 0, nsoft = 0;
    double soft_kl = 0.0, soft_top1 = 1.0;
    if (!maps || !ms || !v)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (r->status == LA_ROW_OK && !strcmp(r->data, "model") && !strcmp(r->map, "none") &&
            isfinite(r->model_kl)) {
            /* The softmax check rows: the largest KL and the smallest agreement among them. */
            soft_kl = r->model_kl > soft_kl ? r->model_kl : soft_kl;
            soft_top1 = r->model_top1 < soft_top1 ? r->model_top1 : soft_top1;
            nsoft++;
        }
        if (!model_row(r))
            continue;
        size_t k = 0;
        while (k < nmaps && strcmp(maps[k], r->map) != 0)
            k++;
        if (k == nmaps)
            snprintf(maps[nmaps++], LA_NAME_LEN, "%s", r->map);
        size_t j = 0;
        while (j < nm && ms[j] != r->m)
            j++;
        if (j == nm)
            ms[nm++] = r->m;
    }
    if (!nmaps) {
        free(maps), free(ms), free(v);
        return LA_OK;
    }
    qsort(ms, nm, sizeof *ms, cmp_int);
    if (la_figure_panels(fig, 2) != LA_OK)
        goto nomem;
    fig->fits = 1;
    fig->nrows = 1;
    fig->ncols = 2;
    for (int p = 0; p < 2; p++) {
        struct la_fig_panel *pm = &fig->panels[p];
        snprintf(pm->title, sizeof pm->title, "%s",
                 p ? "top-1 agreement with the softmax model"
                   : "model-level KL (solid) and attention-level KL (dashed)");
        snprintf(pm->xlabel, sizeof pm->xlabel, "feature dimension m (map output)");
        snprintf(pm->ylabel, sizeof pm->ylabel, "%s",
                 p ? "next token: argmax agrees (model_top1)"
                   : "KL (nats)\n(model_kl; heads: kl_mean)");
        pm->first = fig->ncurves;
        for (size_t k = 0; k < nmaps; k++) {
            if (add_series(fig, rows, n, p ? V_TOP1 : V_MODEL_KL, maps[k], (int)k + 1, ms, nm,
                           v) != LA_OK ||
                (!p && heads &&
                 add_series(fig, heads, nheads, V_HEAD_KL, maps[k], (int)k + 1, ms, nm, v) !=
                     LA_OK))
                goto nomem;
        }
        pm->count = fig->ncurves - pm->first;
    }
    if (nsoft)
        snprintf(fig->panels[0].note, sizeof fig->panels[0].note,
                 "softmax check (%zu row%s): KL %g, top-1 %g", nsoft,
                 la_fig_plural((long long)nsoft), soft_kl, soft_top1);
    snprintf(fig->stats, sizeof fig->stats,
             "points: median over trials (map draws), bars: its 95%% bootstrap interval; dashed: "
             "mean attention KL over the model's heads and trials%s",
             heads ? "" : " (not given: plot --heads FILE)");
    free(maps), free(ms), free(v);
    return LA_OK;
nomem:
    free(maps), free(ms), free(v);
    la_figure_free(fig);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}
