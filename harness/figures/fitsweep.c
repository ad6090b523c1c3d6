/* fitsweep.c — the fit_m and fit_tokens figures (fitsweep.h): fitted learned maps against m and
 * against their training tokens, beside the other maps, on a real model's heads.  Pure
 * computation: no I/O.  Tests: tests/test_figures.c.
 */
#include "fitsweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "curves.h"
#include "fields.h"
#include "summary.h"

static int used_row(const struct la_row *r)
{
    return r->status == LA_ROW_OK && !strcmp(r->data, "h5") && r->head >= 0 &&
           strcmp(r->map, "none") != 0 && isfinite(r->err_rel_fro);
}

static int learned(const struct la_row *r)
{
    return !strcmp(r->map, "learned");
}

/* The training tokens of r's weights file (NaN: not in the table, or unknown). */
static double tokens_of(const struct la_row *r, const struct la_fit_weights *w, size_t nw)
{
    for (size_t i = 0; i < nw; i++)
        if (!strcmp(w[i].path, r->weights))
            return w[i].tokens;
    return NAN;
}

/* Panel p's value of r: 0 the attention KL, 1 the output error. */
static double yval(const struct la_row *r, int p)
{
    return p ? r->err_rel_fro : r->kl_mean;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Adds x to the set xs[0..*nx) unless there. */
static void add_value(double *xs, size_t *nx, double x)
{
    for (size_t i = 0; i < *nx; i++)
        if (xs[i] == x)
            return;
    xs[(*nx)++] = x;
}

/* Which rows a point pools: the map, its m (features), and for the learned map the tokens of
 * its weights file (any: NaN tokens with any_tokens). */
struct pick {
    const char *map;
    int m;
    double tokens;
    int any_tokens;
};

/* The mean of panel p's finite values over the rows of pk, with its interval, at x into *pt.
 * Returns 1 when there was a value, 0 when none, -1 out of memory.  v: scratch of n doubles. */
static int point(const struct la_row *rows, size_t n, const struct la_fit_weights *w, size_t nw,
                 const struct pick *pk, int p, double x, double *v, struct la_fig_point *pt)
{
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (!used_row(r) || strcmp(r->map, pk->map) || r->m != pk->m)
            continue;
        if (learned(r) && !pk->any_tokens && !(tokens_of(r, w, nw) == pk->tokens))
            continue;
        const double y = yval(r, p);
        if (isfinite(y))
            v[cnt++] = y;
    }
    if (!cnt)
        return 0;
    struct la_summary sm;
    if (la_summary_compute(v, cnt, LA_SUMMARY_MEAN, &sm) != LA_OK)
        return -1;
    *pt = (struct la_fig_point){.x = x, .y = sm.y, .lo = sm.lo, .hi = sm.hi, .n = cnt};
    return 1;
}

/* Two panels (KL, error) against what (their titles) over xlabel; the caller adds the curves. */
static int two_panels(struct la_figure *fig, const char *what, const char *xlabel)
{
    if (la_figure_panels(fig, 2) != LA_OK)
        return LA_ENOMEM;
    fig->fits = 1;
    fig->nrows = 1;
    fig->ncols = 2;
    for (int p = 0; p < 2; p++) {
        struct la_fig_panel *pm = &fig->panels[p];
        snprintf(pm->title, sizeof pm->title, "%s against %s", p ? "output error" : "attention KL",
                 what);
        snprintf(pm->xlabel, sizeof pm->xlabel, "%s", xlabel);
        snprintf(pm->ylabel, sizeof pm->ylabel, "%s", p ? LA_FIG_ERR_LABEL : LA_FIG_KL_LABEL);
    }
    snprintf(fig->stats, sizeof fig->stats,
             "points: mean over the heads (and trials) of the data file, bars: its 95%% bootstrap "
             "interval; the learned map is trained on other captures than these");
    return LA_OK;
}

/* The map names of the used rows other than learned, in order of first appearance, into maps
 * (room for n); returns how many. */
static size_t other_maps(const struct la_row *rows, size_t n, char (*maps)[LA_NAME_LEN])
{
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (!used_row(r) || learned(r))
            continue;
        size_t k = 0;
        while (k < nm && strcmp(maps[k], r->map))
            k++;
        if (k == nm)
            snprintf(maps[nm++], LA_NAME_LEN, "%s", r->map);
    }
    return nm;
}

/* The sorted distinct m of map's used rows (learned: those pk picks) into ms; returns how many. */
static size_t map_ms(const struct la_row *rows, size_t n, const struct la_fit_weights *w, size_t nw,
                     const struct pick *pk, double *ms)
{
    size_t nm = 0;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (!used_row(r) || strcmp(r->map, pk->map))
            continue;
        if (learned(r) && !pk->any_tokens && !(tokens_of(r, w, nw) == pk->tokens))
            continue;
        add_value(ms, &nm, r->m);
    }
    qsort(ms, nm, sizeof *ms, cmp_double);
    return nm;
}

/* A curve of pk's map over its m values ms[0..nm) in panel p.  LA_OK or LA_ENOMEM. */
static int m_curve(struct la_figure *fig, const struct la_row *rows, size_t n,
                   const struct la_fit_weights *w, size_t nw, struct pick pk, const double *ms,
                   size_t nm, int p, int pt, const char *title, double *v)
{
    struct la_fig_curve c = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = pt, .shade = 1};
    if (la_fig_curve_alloc(&c, nm) != LA_OK)
        return LA_ENOMEM;
    for (size_t j = 0; j < nm; j++) {
        pk.m = (int)ms[j];
        const int got = point(rows, n, w, nw, &pk, p, ms[j], v, &c.pts[c.npoints]);
        if (got < 0) {
            free(c.pts);
            return LA_ENOMEM;
        }
        c.npoints += (size_t)got;
    }
    if (!c.npoints) {
        free(c.pts);
        return LA_OK;
    }
    snprintf(c.map, sizeof c.map, "%s", pk.map);
    snprintf(c.title, sizeof c.title, "%s", title);
    return la_figure_add_curve(fig, &c);
}

int la_fit_m_figure(const struct la_row *rows, size_t n, const struct la_fit_weights *w, size_t nw,
                    struct la_figure *fig, struct la_error *err)
{
    la_figure_init(fig);
    const size_t cap = n ? n : 1;
    double *v = malloc(cap * sizeof *v), *ms = malloc(cap * sizeof *ms);
    char(*maps)[LA_NAME_LEN] = calloc(cap, sizeof *maps);
    if (!v || !ms || !maps)
        goto nomem;
    /* The fitted curve: the learned rows of the files trained on the most tokens. */
    struct pick lp = {"learned", 0, NAN, 1};
    for (size_t i = 0; i < n; i++) {
        const double t = used_row(&rows[i]) && learned(&rows[i]) ? tokens_of(&rows[i], w, nw) : NAN;
        if (isfinite(t) && !(lp.tokens >= t)) {
            lp.tokens = t;
            lp.any_tokens = 0;
        }
    }
    const size_t nlm = map_ms(rows, n, w, nw, &lp, ms);
    if (nlm < 2) {
        free(v), free(ms), free(maps);
        return LA_OK;
    }
    if (two_panels(fig, "m, on the test heads", "feature dimension m (map output)") != LA_OK)
        goto nomem;
    const size_t nmaps = other_maps(rows, n, maps);
    char title[LA_FIG_TEXT_LEN];
    if (lp.any_tokens)
        snprintf(title, sizeof title, "learned, fitted");
    else
        snprintf(title, sizeof title, "learned, fitted on %.0f tokens", lp.tokens);
    for (int p = 0; p < 2; p++) {
        struct la_fig_panel *pm = &fig->panels[p];
        pm->first = fig->ncurves;
        if (m_curve(fig, rows, n, w, nw, lp, ms, map_ms(rows, n, w, nw, &lp, ms), p, 1, title, v) !=
            LA_OK)
            goto nomem;
        for (size_t k = 0; k < nmaps; k++) {
            const struct pick op = {maps[k], 0, NAN, 1};
            const size_t nm = map_ms(rows, n, w, nw, &op, ms);
            char t[LA_FIG_TEXT_LEN];
            if (nm == 1)
                snprintf(t, sizeof t, "%s (its one m: a point)", maps[k]);
            else
                snprintf(t, sizeof t, "%s", maps[k]);
            if (m_curve(fig, rows, n, w, nw, op, ms, nm, p, (int)k + 2, t, v) != LA_OK)
                goto nomem;
        }
        pm->count = fig->ncurves - pm->first;
    }
    free(v), free(ms), free(maps);
    return LA_OK;
nomem:
    free(v), free(ms), free(maps);
    la_figure_free(fig);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}

/* The sorted distinct token counts of the learned rows at m (files of known tokens) into ts;
 * returns how many. */
static size_t token_counts(const struct la_row *rows, size_t n, const struct la_fit_weights *w,
                           size_t nw, int m, double *ts)
{
    size_t nt = 0;
    for (size_t i = 0; i < n; i++) {
        const double t = tokens_of(&rows[i], w, nw);
        if (used_row(&rows[i]) && learned(&rows[i]) && rows[i].m == m && isfinite(t))
            add_value(ts, &nt, t);
    }
    qsort(ts, nt, sizeof *ts, cmp_double);
    return nt;
}

/* Panel p's curves for the learned map at m over its token counts ts[0..nt), and every other
 * map at m as a dashed level across them.  LA_OK or LA_ENOMEM. */
static int tokens_curves(struct la_figure *fig, const struct la_row *rows, size_t n,
                         const struct la_fit_weights *w, size_t nw, int m, const double *ts,
                         size_t nt, char (*maps)[LA_NAME_LEN], size_t nmaps, int p, int pt,
                         double *v)
{
    struct la_fig_curve c = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = pt};
    if (la_fig_curve_alloc(&c, nt) != LA_OK)
        return LA_ENOMEM;
    for (size_t k = 0; k < nt; k++) {
        const struct pick pk = {"learned", m, ts[k], 0};
        const int got = point(rows, n, w, nw, &pk, p, ts[k], v, &c.pts[c.npoints]);
        if (got < 0) {
            free(c.pts);
            return LA_ENOMEM;
        }
        c.npoints += (size_t)got;
    }
    snprintf(c.map, sizeof c.map, "learned");
    snprintf(c.title, sizeof c.title, "learned (fitted), m = %d", m);
    if (la_figure_add_curve(fig, &c) != LA_OK)
        return LA_ENOMEM;
    for (size_t k = 0; k < nmaps; k++) {
        const struct pick op = {maps[k], m, NAN, 1};
        struct la_fig_point lvl;
        const int got = point(rows, n, w, nw, &op, p, ts[0], v, &lvl);
        if (got < 0)
            return LA_ENOMEM;
        if (!got)
            continue;
        struct la_fig_curve h = {.kind = LA_CURVE_POINTS, .dash = 2, .pt = 0};
        if (la_fig_curve_alloc(&h, 2) != LA_OK)
            return LA_ENOMEM;
        h.pts[0] = lvl;
        h.pts[1] = lvl;
        h.pts[1].x = ts[nt - 1];
        h.npoints = 2;
        snprintf(h.map, sizeof h.map, "%s", maps[k]);
        snprintf(h.title, sizeof h.title, "%s, m = %d (trains on nothing: a level)", maps[k], m);
        if (la_figure_add_curve(fig, &h) != LA_OK)
            return LA_ENOMEM;
    }
    return LA_OK;
}

int la_fit_tokens_figure(const struct la_row *rows, size_t n, const struct la_fit_weights *w,
                         size_t nw, struct la_figure *fig, struct la_error *err)
{
    la_figure_init(fig);
    const size_t cap = n ? n : 1;
    double *v = malloc(cap * sizeof *v), *ms = malloc(cap * sizeof *ms);
    double *ts = malloc(cap * sizeof *ts);
    char(*maps)[LA_NAME_LEN] = calloc(cap, sizeof *maps);
    if (!v || !ms || !ts || !maps)
        goto nomem;
    /* The learned map's m values with two token counts or more. */
    size_t nm = 0, keep = 0;
    for (size_t i = 0; i < n; i++)
        if (used_row(&rows[i]) && learned(&rows[i]) && isfinite(tokens_of(&rows[i], w, nw)))
            add_value(ms, &nm, rows[i].m);
    qsort(ms, nm, sizeof *ms, cmp_double);
    for (size_t j = 0; j < nm; j++)
        if (token_counts(rows, n, w, nw, (int)ms[j], ts) >= 2)
            ms[keep++] = ms[j];
    if (!keep) {
        free(v), free(ms), free(ts), free(maps);
        return LA_OK;
    }
    if (two_panels(fig, "training tokens, on the test heads",
                   "training tokens (positions of the captures fit saw)") != LA_OK)
        goto nomem;
    const size_t nmaps = other_maps(rows, n, maps);
    for (int p = 0; p < 2; p++) {
        struct la_fig_panel *pm = &fig->panels[p];
        pm->first = fig->ncurves;
        for (size_t j = 0; j < keep; j++) {
            const size_t nt = token_counts(rows, n, w, nw, (int)ms[j], ts);
            if (tokens_curves(fig, rows, n, w, nw, (int)ms[j], ts, nt, maps, nmaps, p, (int)j + 1,
                              v) != LA_OK)
                goto nomem;
        }
        pm->count = fig->ncurves - pm->first;
    }
    free(v), free(ms), free(ts), free(maps);
    return LA_OK;
nomem:
    free(v), free(ms), free(ts), free(maps);
    la_figure_free(fig);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}
