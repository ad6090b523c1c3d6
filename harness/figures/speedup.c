/* speedup.c — the speedup heatmap (speedup.h) from the crossover series.  Pure computation:
 * no I/O.  Tests: tests/test_figures.c.
 */
#include "speedup.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fields.h"

/* Same panel: the linear configuration across d (m = d is one configuration, a fixed m
 * another). */
static int same_cfg(const struct la_crossover *a, const struct la_crossover *b)
{
    if (strcmp(a->softmax, b->softmax) || a->causal != b->causal || strcmp(a->kernel, b->kernel) ||
        strcmp(a->map, b->map) || strcmp(a->draw, b->draw) || !la_fig_same_real(a->A, b->A) ||
        a->dv - a->d != b->dv - b->d || a->batch != b->batch || a->heads != b->heads ||
        a->threads != b->threads || strcmp(a->pass, b->pass))
        return 0;
    if (!la_fig_map_reads(a->map, "m"))
        return 1;
    if ((a->m == a->d) != (b->m == b->d))
        return 0;
    return a->m == a->d || a->m == b->m;
}

int la_speedup_prepare(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                       size_t nxo, int forced, struct la_speedup *sp, struct la_error *err)
{
    memset(sp, 0, sizeof *sp);
    la_figure_init(&sp->fig);
    if (!la_crossover_fits(rows, n, xo, nxo, forced))
        return LA_OK;
    for (size_t i = 0; i < nxo; i++) {
        la_crossover_add_distinct(sp->ds, &sp->nd, LA_SPEEDUP_MAX_D, xo[i].d);
        for (size_t j = 0; j < xo[i].npoints; j++)
            la_crossover_add_distinct(sp->Ts, &sp->nT, LA_SPEEDUP_MAX_T, xo[i].pts[j].T);
    }
    size_t ncfg = 0, *cfg = malloc((nxo ? nxo : 1) * sizeof *cfg);
    if (!cfg)
        goto nomem;
    for (int pass = 0; pass < 2; pass++) /* non-causal configurations first */
        for (size_t i = 0; i < nxo; i++) {
            if (xo[i].causal != pass)
                continue;
            size_t j;
            for (j = 0; j < ncfg; j++)
                if (same_cfg(&xo[cfg[j]], &xo[i]))
                    break;
            if (j == ncfg)
                cfg[ncfg++] = i;
        }
    size_t nnc = 0;
    for (size_t j = 0; j < ncfg; j++)
        nnc += !xo[cfg[j]].causal;
    const double w = LA_SPEEDUP_CELL_IN * sp->nT + 1.0;
    sp->panel_w = w > 3.4 ? w : 3.4;
    size_t per_row = (size_t)(LA_SPEEDUP_ROW_IN / sp->panel_w);
    per_row = per_row ? per_row : 1;
    size_t nc = ncfg - nnc, ncols = nnc > nc ? nnc : nc;
    ncols = ncols < per_row ? ncols : per_row;
    const size_t rows_nc = (nnc + ncols - 1) / ncols, rows_c = (nc + ncols - 1) / ncols;
    size_t nrows = rows_nc + rows_c;
    if (la_figure_panels(&sp->fig, nrows * ncols) != LA_OK)
        goto nomem;
    sp->fig.fits = 1;
    snprintf(sp->fig.stats, sizeof sp->fig.stats,
             "each cell: t_softmax / t_linear, each the median time over the timed repeats "
             "(median over cells at one T, d)");
    sp->fig.nrows = (int)nrows;
    sp->fig.ncols = (int)ncols;
    int kernels, draws;
    la_crossover_variety(xo, nxo, &kernels, &draws);
    double vmax = 1;
    for (size_t j = 0; j < ncfg; j++) {
        const struct la_crossover *c = &xo[cfg[j]];
        size_t slot = j < nnc ? j : rows_nc * ncols + (j - nnc);
        struct la_fig_panel *m = &sp->fig.panels[slot];
        char name[96];
        la_crossover_name(c, kernels, draws, 1, name, sizeof name);
        snprintf(m->title, sizeof m->title, "%s, %s%s%s", name, c->causal ? "causal" : "non-causal",
                 c->pass[0] && strcmp(c->pass, "forward") ? ", " : "",
                 c->pass[0] && strcmp(c->pass, "forward") ? c->pass : "");
        snprintf(m->xlabel, sizeof m->xlabel, "sequence length T (tokens)");
        snprintf(m->ylabel, sizeof m->ylabel, "head dimension d");
        struct la_fig_curve cv = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = 0};
        if (la_fig_curve_alloc(&cv, (size_t)sp->nd * (size_t)sp->nT) != LA_OK)
            goto nomem;
        for (int di = 0; di < sp->nd; di++)
            for (int ti = 0; ti < sp->nT; ti++) {
                double v = NAN;
                for (size_t i = 0; i < nxo; i++) {
                    const struct la_crossover *x = &xo[i];
                    if (x->d != sp->ds[di] || !same_cfg(x, c))
                        continue;
                    for (size_t q = 0; q < x->npoints; q++)
                        if (x->pts[q].T == sp->Ts[ti])
                            v = x->pts[q].t_softmax / x->pts[q].t_linear;
                }
                if (isfinite(v) && v > 0) {
                    double a = v > 1 ? v : 1 / v;
                    vmax = a > vmax ? a : vmax;
                }
                cv.pts[cv.npoints++] =
                    (struct la_fig_point){.x = log2(sp->Ts[ti]), .y = di, .lo = v, .hi = v, .n = 1};
            }
        snprintf(cv.map, sizeof cv.map, "%s", c->map);
        m->first = sp->fig.ncurves;
        if (la_figure_add_curve(&sp->fig, &cv) != LA_OK)
            goto nomem;
        m->count = 1;
    }
    /* The colour range: symmetric in log2 around 1, at least 2x and at most 64x either way
     * (beyond, colours saturate; the numbers in the cells still say). */
    double e = ceil(log2(vmax));
    sp->cbmax = pow(2, e < 1 ? 1 : e > 6 ? 6 : e);
    free(cfg);
    return LA_OK;
nomem:
    free(cfg);
    la_speedup_free(sp);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}

double la_speedup_ratio(const struct la_speedup *sp, size_t cfg, int di, int ti)
{
    if (cfg >= sp->fig.ncurves || di < 0 || di >= sp->nd || ti < 0 || ti >= sp->nT)
        return NAN;
    return sp->fig.curves[cfg].pts[(size_t)di * (size_t)sp->nT + (size_t)ti].lo;
}

void la_speedup_free(struct la_speedup *sp)
{
    if (!sp)
        return;
    la_figure_free(&sp->fig);
}
