/* curves.c — the curve figures (curves.h): selecting rows, grouping them into curves and
 * panels, the points (mean, min, max over like rows), legends and panel titles; and the
 * specifications of the shipped curve figures.  Pure computation on rows: no I/O.
 * Tests: tests/test_figures.c.
 */
#include "curves.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../core/util.h"
#include "fields.h"
#include "theory.h"

/* ---- the shipped figures ------------------------------------------------------------------ */

/* σ as a setting (error_sigma): not on real inputs, where it is each head's measured RMS. */
static int row_ok_sigma_setting(const struct la_row *r)
{
    return la_field_applies(r, la_field_find("sigma"));
}

/* Random maps only (features figure): the maps whose type says it draws from the rng. */
static int row_ok_random_map(const struct la_row *r)
{
    if (la_row_is_softmax(r))
        return 0;
    struct la_error err;
    const struct featuremap_type *t = featuremap_lookup(r->map, &err);
    return t ? t->random : la_fig_map_reads(r->map, "draw");
}

const struct la_curve_spec la_curves_features = {
    .xfield = "m",
    .metrics = {"kernel_mse", "err_rel_fro"},
    .ylabels = {"kernel MSE of φ(q)ᵀφ(k)\n(kernel_mse)", LA_FIG_ERR_LABEL},
    /* Lemma 2 predicts the mean MSE: the theory lines sit beside the mean, with its interval. */
    .summary = {LA_SUMMARY_MEAN, LA_SUMMARY_MEDIAN},
    .nmetrics = 2,
    .xlabel = "features m (output dimension of φ; rff, hyp: 2 per draw)",
    .panel_fields = "d sigma T causal data",
    .dash_field = "draw",
    .avg_fields = "layer head",
    .row_ok = row_ok_random_map,
    .extra = la_theory_lines,
};

const struct la_curve_spec la_curves_error_T = {
    .xfield = "T",
    .metrics = {"err_rel_fro", "kl_mean"},
    .ylabels = {LA_FIG_ERR_LABEL, LA_FIG_KL_LABEL},
    .nmetrics = 2,
    .xlabel = "sequence length T (tokens)",
    .panel_fields = "causal d data",
    .fixed_field = "sigma",
    .avg_fields = "layer head",
};

const struct la_curve_spec la_curves_error_sigma = {
    .xfield = "sigma",
    .metrics = {"err_rel_fro", "kl_mean"},
    .ylabels = {LA_FIG_ERR_LABEL, LA_FIG_KL_LABEL},
    .nmetrics = 2,
    .xlabel = "input scale σ (q, k, v ~ N(0, σ²))",
    .panel_fields = "causal d",
    .fixed_field = "T",
    .avg_fields = "layer head",
    .row_ok = row_ok_sigma_setting,
};

const struct la_curve_spec la_curves_memory = {
    .xfield = "T",
    .metrics = {"workspace_bytes", "peak_rss_bytes"},
    .ylabels = {"kernel workspace + φ(Q), φ(K)\n(workspace_bytes)",
                "process peak RSS\n(peak_rss_bytes)"},
    .nmetrics = 2,
    .xlabel = "sequence length T (tokens)",
    .panel_fields = "d data",
    .metrics_across = 1,
    .dash_field = "causal",
};

/* The paper's Figure 1, memory side: the bytes one pass holds (step_bytes: inputs, outputs,
 * gradients, workspaces) against T, a forward pass solid and a training step dashed. */
const struct la_curve_spec la_curves_train_memory = {
    .xfield = "T",
    .metrics = {"step_bytes"},
    .ylabels = {"bytes held by the pass  (step_bytes)"},
    .nmetrics = 1,
    .xlabel = "sequence length T (tokens)",
    .panel_fields = "causal d data",
    .dash_field = "pass",
};

/* ---- a spec resolved to field numbers and columns ------------------------------------------ */

struct spec {
    int x, fixed, dash; /* fields; fixed, dash: -1 for none */
    unsigned panel, avg;
    const struct la_column *metric[2];
    /* fields the grouping names itself */
    int f_m, f_A, f_kernel, f_map, f_layer, f_sigma;
};

static int resolve_field(const char *name, int *f, struct la_error *err)
{
    *f = name ? la_field_find(name) : -1;
    if (name && *f < 0)
        return LA_FAIL(err, LA_EINVAL, "unknown figure field '%s'", name);
    return LA_OK;
}

static int resolve(const struct la_curve_spec *s, struct spec *R, struct la_error *err)
{
    int st;
    if (!s->xfield)
        return LA_FAIL(err, LA_EINVAL, "a curve figure needs an x field");
    if ((st = resolve_field(s->xfield, &R->x, err)) != LA_OK ||
        (st = resolve_field(s->fixed_field, &R->fixed, err)) != LA_OK ||
        (st = resolve_field(s->dash_field, &R->dash, err)) != LA_OK ||
        (st = la_fields_mask(s->panel_fields, &R->panel, err)) != LA_OK ||
        (st = la_fields_mask(s->avg_fields, &R->avg, err)) != LA_OK)
        return st;
    if (s->nmetrics < 1 || s->nmetrics > 2)
        return LA_FAIL(err, LA_EINVAL, "a curve figure has one or two metrics, not %d",
                       s->nmetrics);
    for (int k = 0; k < s->nmetrics; k++) {
        R->metric[k] = la_row_column(s->metrics[k]);
        if (!R->metric[k] || R->metric[k]->kind == LA_COL_STRING)
            return LA_FAIL(err, LA_EINVAL, "curve figure metric '%s' is not a numeric column",
                           s->metrics[k]);
    }
    R->f_m = la_field_find("m");
    R->f_A = la_field_find("A");
    R->f_kernel = la_field_find("kernel");
    R->f_map = la_field_find("map");
    R->f_layer = la_field_find("layer");
    R->f_sigma = la_field_find("sigma");
    return LA_OK;
}

/* ---- grouping ------------------------------------------------------------------------------ */

static int cmp_rep(const void *pa, const void *pb, void *ctx)
{
    const struct la_row *rows = ctx;
    return la_fields_cmp_curve(&rows[*(const size_t *)pa], &rows[*(const size_t *)pb]);
}

static int cmp_panel(const void *pa, const void *pb, void *ctx)
{
    const struct la_row *rows = ctx;
    return la_fields_cmp_panel(&rows[*(const size_t *)pa], &rows[*(const size_t *)pb]);
}

/* Distinct representatives (indices into rows) of sel under equality of every field not in
 * skip, in curve order.  *out is malloc'd. */
static int distinct(const struct la_row *rows, const size_t *sel, size_t ns, unsigned skip,
                    size_t **out, size_t *nout)
{
    size_t *r = malloc((ns ? ns : 1) * sizeof *r), k = 0;
    if (!r)
        return LA_ENOMEM;
    for (size_t i = 0; i < ns; i++) {
        size_t j;
        for (j = 0; j < k; j++)
            if (la_fields_same_except(&rows[r[j]], &rows[sel[i]], skip))
                break;
        if (j == k)
            r[k++] = sel[i];
    }
    qsort_r(r, k, sizeof *r, cmp_rep, (void *)rows);
    *out = r;
    *nout = k;
    return LA_OK;
}

/* Number of distinct values among xs[0..n) (sorts xs). */
static size_t count_distinct(double *xs, size_t n)
{
    size_t nd = 0;
    qsort(xs, n, sizeof *xs, la_cmp_double);
    for (size_t j = 0; j < n; j++)
        nd += j == 0 || xs[j] != xs[j - 1];
    return nd;
}

/* Number of distinct x values of the curve of rep (xs: scratch of ns doubles); skip: the
 * fields that do not identify a curve (x, and the fields averaged over). */
static size_t curve_nx(const struct la_row *rows, const size_t *sel, size_t ns,
                       const struct la_row *rep, int xfield, unsigned skip, double *xs)
{
    size_t nx = 0;
    for (size_t i = 0; i < ns; i++)
        if (la_fields_same_except(&rows[sel[i]], rep, skip))
            xs[nx++] = la_field_num(&rows[sel[i]], xfield);
    return count_distinct(xs, nx);
}

/* Row r's value of metric col as the curve figures draw it.  kl_mean is the mean over the
 * sampled rows whose linear weights are all positive; where more than half of them had a weight
 * <= 0 (kl_nonpos_frac > 1/2: rff, relu with eps = 0) the true mean KL is +inf and the finite
 * mean describes a biased few (a causal run's first rows), so the figures leave that row's KL
 * out (NaN).  Every other value is the column's. */
static double metric_value(const struct la_row *r, const struct la_column *col)
{
    if (!strcmp(col->name, "kl_mean") && r->kl_nonpos_frac > 0.5)
        return NAN;
    return la_row_value(r, col);
}

/* The points of rep's curve for metric col: at each x, the statistic stat of the rows there with
 * a finite value (trials, and the fields averaged over), its interval, and the count (summary.h).
 * ys: scratch of ns doubles.  c->npoints may be 0. */
static int curve_points(const struct la_row *rows, const size_t *sel, size_t ns,
                        const struct la_row *rep, int xfield, unsigned skip,
                        const struct la_column *col, int stat, double *xs, double *ys,
                        struct la_fig_curve *c)
{
    size_t nx = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct la_row *r = &rows[sel[i]];
        if (la_fields_same_except(r, rep, skip) && isfinite(metric_value(r, col)))
            xs[nx++] = la_field_num(r, xfield);
    }
    if (la_fig_curve_alloc(c, count_distinct(xs, nx)) != LA_OK)
        return LA_ENOMEM;
    for (size_t i = 0; i < nx; i++) {
        if (i > 0 && xs[i] == xs[i - 1])
            continue;
        size_t ny = 0;
        for (size_t j = 0; j < ns; j++) {
            const struct la_row *r = &rows[sel[j]];
            double y = metric_value(r, col);
            if (la_fields_same_except(r, rep, skip) && isfinite(y) &&
                la_field_num(r, xfield) == xs[i])
                ys[ny++] = y;
        }
        struct la_summary sm;
        if (la_summary_compute(ys, ny, stat, &sm) != LA_OK)
            return LA_ENOMEM; /* ny >= 1 and every value finite: only memory can fail */
        c->pts[c->npoints++] =
            (struct la_fig_point){.x = xs[i], .y = sm.y, .lo = sm.lo, .hi = sm.hi, .n = ny};
    }
    return LA_OK;
}

/* The smallest and largest count behind a point of the panel's measured curves. */
static void panel_counts(const struct la_figure *fig, const struct la_fig_panel *p, size_t *lo,
                         size_t *hi)
{
    *lo = SIZE_MAX;
    *hi = 0;
    for (size_t c = p->first; c < fig->ncurves; c++)
        for (size_t j = 0; j < fig->curves[c].npoints; j++) {
            size_t k = fig->curves[c].pts[j].n;
            if (!k)
                continue; /* a theory value */
            *lo = k < *lo ? k : *lo;
            *hi = k > *hi ? k : *hi;
        }
}

/* The value of field f to pin: the one whose rows have the most distinct x values; ties go to
 * σ closest to 1 (f = σ) or to the largest value.  Returns a row holding it. */
static const struct la_row *pick_fixed(const struct la_row *rows, const size_t *sel, size_t ns,
                                       const struct spec *R, double *xs)
{
    const struct la_row *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct la_row *c = &rows[sel[i]];
        size_t nx = 0;
        for (size_t j = 0; j < ns; j++)
            if (la_field_eq(&rows[sel[j]], c, R->fixed))
                xs[nx++] = la_field_num(&rows[sel[j]], R->x);
        size_t nd = count_distinct(xs, nx);
        int better = nd > best_n;
        if (!better && nd == best_n && best) {
            double v = la_field_num(c, R->fixed), bv = la_field_num(best, R->fixed);
            better = R->fixed == R->f_sigma ? fabs(log(v)) < fabs(log(bv)) : v > bv;
        }
        if (better) {
            best = c;
            best_n = nd;
        }
    }
    return best;
}

/* The fields a legend entry names in the panel of prep (panel fields pf): the map (or softmax
 * kernel) always, m for maps that read it, A, and every other field that varies inside the
 * panel, except x and the averaged ones.  The linear kernel is named only when two linear
 * kernels of the same causality share the panel (`kernel: linear` picks one per causality, and
 * `causal` says which).  in: scratch of ns indices. */
static unsigned title_fields(const struct la_row *rows, const size_t *sel, size_t ns,
                             const struct la_row *prep, unsigned pf, const struct spec *R,
                             size_t *in)
{
    size_t k = 0;
    for (size_t i = 0; i < ns; i++)
        if (la_fields_same_except(&rows[sel[i]], prep, la_fields_all() & ~pf))
            in[k++] = sel[i];
    unsigned tf = la_fields_varying(rows, in, k,
                                    la_fields_all() & ~LA_FIELD_BIT(R->x) & ~R->avg &
                                        ~LA_FIELD_BIT(R->f_map) & ~LA_FIELD_BIT(R->f_kernel));
    if (R->x != R->f_m)
        tf |= LA_FIELD_BIT(R->f_m);
    tf |= LA_FIELD_BIT(R->f_A); /* gerf's A is as much its identity as m */
    for (size_t i = 0; i < k && !(tf & LA_FIELD_BIT(R->f_kernel)); i++)
        for (size_t j = 0; j < i; j++) {
            const struct la_row *a = &rows[in[i]], *b = &rows[in[j]];
            if (!la_row_is_softmax(a) && !la_row_is_softmax(b) && a->causal == b->causal &&
                strcmp(a->kernel, b->kernel)) {
                tf |= LA_FIELD_BIT(R->f_kernel);
                break;
            }
        }
    return tf;
}

/* Appends ", text" (or "text" to an empty string). */
static void append_part(char *buf, size_t cap, const char *text)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? ", " : "", text);
}

/* ---- the figure ------------------------------------------------------------------------------ */

int la_curves_prepare(const struct la_row *rows, size_t n, const struct la_curve_spec *s,
                      int forced, struct la_figure *fig, struct la_error *err)
{
    la_figure_init(fig);
    struct spec R;
    int st = resolve(s, &R, err);
    if (st != LA_OK)
        return st;
    const size_t cap = n ? n : 1;
    size_t ns = 0, *sel = calloc(cap, sizeof *sel), *scratch = malloc(cap * sizeof *scratch);
    size_t *cols = NULL, *curves = NULL, ncols = 0, ncurves = 0;
    double *xs = malloc(cap * sizeof *xs), *ys = malloc(cap * sizeof *ys);
    if (!sel || !scratch || !xs || !ys)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (r->status != LA_ROW_OK || (s->row_ok && !s->row_ok(r)))
            continue;
        int any = 0;
        for (int k = 0; k < s->nmetrics; k++)
            any |= isfinite(metric_value(r, R.metric[k]));
        if (any)
            sel[ns++] = i;
    }
    /* A metric no selected row has (KL of a file that measured none) gets no row of "no data"
     * panels: the figure is the other metric's alone.  Not for specs with extra lines, which
     * are drawn by metric index. */
    int only = -1;
    if (s->nmetrics == 2 && !s->extra && ns) {
        int has[2] = {0, 0};
        for (size_t i = 0; i < ns; i++)
            for (int k = 0; k < 2; k++)
                has[k] |= isfinite(metric_value(&rows[sel[i]], R.metric[k]));
        if (has[0] != has[1])
            only = has[0] ? 0 : 1;
    }
    if (only >= 0) {
        free(sel);
        free(scratch);
        free(xs);
        free(ys);
        struct la_curve_spec one = *s;
        one.metrics[0] = s->metrics[only];
        one.ylabels[0] = s->ylabels[only];
        one.summary[0] = s->summary[only];
        one.metrics[1] = one.ylabels[1] = NULL;
        one.nmetrics = 1;
        return la_curves_prepare(rows, n, &one, forced, fig, err);
    }
    char pinned[96] = "";
    if (R.fixed >= 0 && la_fields_varying(rows, sel, ns, LA_FIELD_BIT(R.fixed))) {
        const struct la_row *pin = pick_fixed(rows, sel, ns, &R, xs);
        size_t k = 0;
        for (size_t i = 0; i < ns; i++)
            if (la_field_eq(&rows[sel[i]], pin, R.fixed))
                sel[k++] = sel[i];
        ns = k;
        la_field_text(pin, R.fixed, pinned, sizeof pinned);
    }
    if (!ns)
        goto done;
    /* Curves: every field but x and the averaged ones identifies a curve (trials of one cell
     * share a curve, and so do the heads of a real model in a curve figure). */
    const unsigned skip = LA_FIELD_BIT(R.x) | R.avg;
    const unsigned averaged = la_fields_varying(rows, sel, ns, R.avg);
    if (distinct(rows, sel, ns, skip, &curves, &ncurves) != LA_OK)
        goto nomem;
    int fits = 0;
    size_t nmax = 0; /* the most rows behind a point */
    for (size_t c = 0; c < ncurves && !fits; c++)
        fits = curve_nx(rows, sel, ns, &rows[curves[c]], R.x, skip, xs) >= 2;
    if (!fits && !forced)
        goto done;
    fig->fits = 1;
    /* Panels: the distinct values of the panel fields that vary. */
    const unsigned pf = la_fields_varying(rows, sel, ns, R.panel) & ~skip;
    const unsigned other = la_fields_all() & ~pf;
    if (distinct(rows, sel, ns, other, &cols, &ncols) != LA_OK)
        goto nomem;
    /* A figure of more panel columns than fit a page (the features figure of a file that sweeps
     * T and σ, not m) is not drawn unless forced: the figure made for those rows is another. */
    if (ncols > LA_CURVES_MAX_COLS && !forced) {
        fig->fits = 0;
        goto done;
    }
    qsort_r(cols, ncols, sizeof *cols, cmp_panel, (void *)rows);
    const size_t np = ncols * (size_t)s->nmetrics;
    if (la_figure_panels(fig, np) != LA_OK)
        goto nomem;
    for (size_t p = 0; p < np; p++) {
        int k = s->metrics_across ? (int)(p % (size_t)s->nmetrics) : (int)(p / ncols);
        size_t col = s->metrics_across ? p / (size_t)s->nmetrics : p % ncols;
        const struct la_row *prep = &rows[cols[col]];
        struct la_fig_panel *m = &fig->panels[p];
        unsigned tf = title_fields(rows, sel, ns, prep, pf, &R, scratch);
        la_fields_append(prep, pf, ", ", m->title, sizeof m->title);
        if (pinned[0])
            append_part(m->title, sizeof m->title, pinned);
        if (averaged)
            append_part(m->title, sizeof m->title,
                        averaged & LA_FIELD_BIT(R.f_layer) ? "layers and heads pooled"
                                                           : "heads pooled");
        snprintf(m->xlabel, sizeof m->xlabel, "%s", s->xlabel);
        snprintf(m->ylabel, sizeof m->ylabel, "%s", s->ylabels[k]);
        m->first = fig->ncurves;
        for (size_t c = 0; c < ncurves; c++) {
            const struct la_row *rep = &rows[curves[c]];
            if (!la_fields_same_except(rep, prep, other))
                continue;
            struct la_fig_curve cv = {.kind = LA_CURVE_POINTS};
            if (curve_points(rows, sel, ns, rep, R.x, skip, R.metric[k], s->summary[k], xs, ys,
                             &cv) != LA_OK)
                goto nomem;
            if (!cv.npoints) {
                free(cv.pts);
                continue;
            }
            int sm = la_row_is_softmax(rep);
            snprintf(cv.title, sizeof cv.title, "%s", sm ? rep->kernel : rep->map);
            la_fields_append(rep, tf & ~(sm ? LA_FIELD_BIT(R.f_kernel) : 0u), " ", cv.title,
                             sizeof cv.title);
            snprintf(cv.map, sizeof cv.map, "%s", sm ? "softmax" : rep->map);
            /* Variant: position among the panel's earlier curves with the same colour. */
            int variant = 0;
            for (size_t c2 = 0; c2 < c; c2++) {
                const struct la_row *o = &rows[curves[c2]];
                if (la_fields_same_except(o, prep, other) &&
                    !strcmp(la_row_is_softmax(o) ? "softmax" : o->map, cv.map))
                    variant++;
            }
            int dashv = R.dash >= 0 ? la_field_rank(rows, sel, ns, R.dash, rep) : variant;
            cv.dash = 1 + dashv % 3;
            cv.pt = 1 + variant % 8;
            if (la_figure_add_curve(fig, &cv) != LA_OK)
                goto nomem;
        }
        if (s->extra && s->extra(rows, n, prep, k, fig, m) != LA_OK)
            goto nomem;
        m->count = fig->ncurves - m->first;
        if (!m->count)
            snprintf(m->note, sizeof m->note, "no data");
        size_t nlo, nhi;
        panel_counts(fig, m, &nlo, &nhi);
        nmax = nhi > nmax ? nhi : nmax;
        if (nhi > 1) {
            char part[64];
            if (nlo == nhi)
                snprintf(part, sizeof part, "%s of n=%zu", la_summary_name(s->summary[k]), nhi);
            else
                snprintf(part, sizeof part, "%s of n=%zu–%zu", la_summary_name(s->summary[k]), nlo,
                         nhi);
            append_part(m->title, sizeof m->title, part);
        }
    }
    if (nmax > 1)
        snprintf(fig->stats, sizeof fig->stats,
                 "points: the panel title's statistic over the n %s at each x; bars: its 95%% "
                 "bootstrap interval\ntrials share data and draws across maps and m (common "
                 "random numbers): one trial moves several points together",
                 averaged ? "rows (trials × heads)" : "trials");
    else
        snprintf(fig->stats, sizeof fig->stats, "points: one row each (n=1), no bars");
    fig->nrows = s->metrics_across ? (int)ncols : s->nmetrics;
    fig->ncols = s->metrics_across ? s->nmetrics : (int)ncols;
    goto done;
nomem:
    st = LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
    la_figure_free(fig);
done:
    free(sel);
    free(scratch);
    free(xs);
    free(ys);
    free(cols);
    free(curves);
    return st;
}
