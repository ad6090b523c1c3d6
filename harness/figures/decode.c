/* decode.c — the decode series, pairs, crossover and figures (decode.h) from step rows.  Pure
 * computation over rows and the kernel and map tables' cost models: no I/O.
 * Tests: tests/test_decode_figures.c.
 */
#include "decode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/util.h"
#include "../store/results.h"
#include "fields.h"

/* The largest context the models' crossover is searched up to. */
#define MODEL_T_MAX (1L << 30)

/* ---- series ------------------------------------------------------------------------------- */

static int same_series(const struct la_decode_series *s, const struct la_row *r)
{
    return !strcmp(s->kernel, r->kernel) && !strcmp(s->map, r->map) && !strcmp(s->draw, r->draw) &&
           s->m == r->m && s->d == r->d && s->dv == r->dv && s->batch == r->batch &&
           s->heads == r->heads && s->threads == r->threads && la_fig_same_real(s->A, r->A) &&
           la_fig_same_real(s->sigma, r->sigma);
}

/* Same panel, and the partners of a pair: the shape of a step call and its threads. */
static int same_context(const struct la_decode_series *a, const struct la_decode_series *b)
{
    return a->d == b->d && a->dv == b->dv && a->batch == b->batch && a->heads == b->heads &&
           a->threads == b->threads;
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, la_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The point at T of series s from the rows of that series at that T. */
static void fill_point(struct la_decode_series *s, int at, const struct la_row *rows,
                       const size_t *idx, size_t nidx, double *scratch)
{
    size_t k = 0;
    double lo = INFINITY, hi = -INFINITY, state = NAN;
    for (size_t i = 0; i < nidx; i++) {
        const struct la_row *r = &rows[idx[i]];
        if (r->T != (int)s->T[at])
            continue;
        scratch[k++] = r->time_median_s;
        lo = r->time_p20_s < lo ? r->time_p20_s : lo;
        hi = r->time_p80_s > hi ? r->time_p80_s : hi;
        if (isnan(state))
            state = r->state_bytes;
    }
    s->step[at] = median(scratch, k);
    s->lo[at] = isfinite(lo) ? lo : s->step[at];
    s->hi[at] = isfinite(hi) ? hi : s->step[at];
    s->state[at] = state;
    s->rows[at] = k;
}

static int usable(const struct la_row *r)
{
    return r->status == LA_ROW_OK && la_row_is_step(r) && r->time_median_s > 0.0 &&
           isfinite(r->time_median_s);
}

int la_decode_series(const struct la_row *rows, size_t n, struct la_decode_series **out,
                     size_t *nout, struct la_error *err)
{
    *out = NULL;
    *nout = 0;
    size_t ns = 0;
    struct la_decode_series *s = NULL;
    size_t *idx = malloc((n ? n : 1) * sizeof *idx), *owner = malloc((n ? n : 1) * sizeof *owner);
    double *scratch = malloc((n ? n : 1) * sizeof *scratch);
    if (!idx || !owner || !scratch)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (!usable(r))
            continue;
        size_t j;
        for (j = 0; j < ns; j++)
            if (same_series(&s[j], r))
                break;
        if (j == ns) {
            struct la_decode_series *g = realloc(s, (ns + 1) * sizeof *s);
            if (!g)
                goto nomem;
            s = g;
            struct la_decode_series *x = &s[ns++];
            memset(x, 0, sizeof *x);
            snprintf(x->kernel, sizeof x->kernel, "%s", r->kernel);
            snprintf(x->map, sizeof x->map, "%s", r->map);
            snprintf(x->draw, sizeof x->draw, "%s", r->draw);
            x->m = r->m;
            x->d = r->d;
            x->dv = r->dv;
            x->batch = r->batch;
            x->heads = r->heads;
            x->threads = r->threads;
            x->A = r->A;
            x->sigma = r->sigma;
            x->softmax = la_row_is_softmax(r);
        }
        owner[i] = j;
        struct la_decode_series *x = &s[j];
        int k;
        for (k = 0; k < x->npoints; k++)
            if (x->T[k] == r->T)
                break;
        if (k == x->npoints && x->npoints < LA_DECODE_MAX_T)
            x->T[x->npoints++] = r->T;
    }
    for (size_t j = 0; j < ns; j++) {
        struct la_decode_series *x = &s[j];
        qsort(x->T, (size_t)x->npoints, sizeof x->T[0], la_cmp_double);
        size_t nidx = 0;
        for (size_t i = 0; i < n; i++)
            if (usable(&rows[i]) && owner[i] == j)
                idx[nidx++] = i;
        for (int k = 0; k < x->npoints; k++)
            fill_point(x, k, rows, idx, nidx, scratch);
    }
    free(idx);
    free(owner);
    free(scratch);
    *out = s;
    *nout = ns;
    return LA_OK;
nomem:
    free(idx);
    free(owner);
    free(scratch);
    free(s);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}

double la_decode_step_at(const struct la_decode_series *s, double t)
{
    const int n = s->npoints;
    if (n < 1 || !(t >= s->T[0]) || !(t <= s->T[n - 1]))
        return NAN;
    int k = 0;
    while (k + 1 < n && s->T[k + 1] < t)
        k++;
    if (k + 1 >= n || t == s->T[k])
        return s->step[k];
    const double w = (t - s->T[k]) / (s->T[k + 1] - s->T[k]);
    return (1.0 - w) * s->step[k] + w * s->step[k + 1];
}

/* The step times at t = from+1 .. from+n into g[0..n) as running sums: g[i] =
 * Σ_{t=from+1}^{from+1+i} step(t).  NaN from the first t outside the range on. */
static void cumulate(const struct la_decode_series *s, long from, long n, double *g)
{
    double sum = 0.0;
    int k = 0;
    for (long i = 0; i < n; i++) {
        const double t = (double)(from + 1 + i);
        while (k + 1 < s->npoints && s->T[k + 1] < t)
            k++;
        double v;
        if (s->npoints < 1 || t < s->T[0] || t > s->T[s->npoints - 1])
            v = NAN;
        else if (k + 1 >= s->npoints || t == s->T[k])
            v = s->step[k];
        else {
            const double w = (t - s->T[k]) / (s->T[k + 1] - s->T[k]);
            v = (1.0 - w) * s->step[k] + w * s->step[k + 1];
        }
        sum += v;
        g[i] = sum;
    }
}

double la_decode_generation(const struct la_decode_series *s, long P, long N)
{
    if (N < 1 || P < 0)
        return N == 0 ? 0.0 : NAN;
    double sum = 0.0;
    for (long t = P + 1; t <= P + N; t++)
        sum += la_decode_step_at(s, (double)t);
    return sum;
}

/* ---- pairs: crossover and generation --------------------------------------------------- */

/* The kernel's model of one step call of B sequences with pos tokens already in each state. */
static double kernel_cost(const struct attn_kernel *kn, int B, int pos, int dk, int dv, int bytes)
{
    return bytes ? attn_nominal_bytes_at(kn, B, pos, dk, dv, 1)
                 : attn_nominal_flops_at(kn, B, pos, dk, dv, 1);
}

/* The nominal cost of one step call (B sequences of one head) at context t: the kernel's model
 * with t − 1 tokens in the state, plus for a map the map's over the B new query and B new key
 * rows.  bytes: the byte models, else the flop models.  NaN for a kernel or map this build does
 * not know. */
static double step_cost(const struct la_decode_series *s, double t, int bytes)
{
    const struct attn_kernel *kn = attn_kernel_lookup(s->kernel);
    if (!kn)
        return NAN;
    const int dk = s->softmax ? s->d : s->m, pos = (int)(t - 1.0);
    double c = kernel_cost(kn, s->batch, pos, dk, s->dv, bytes);
    if (!s->softmax && kn->input == ATTN_IN_FEATURES) {
        struct la_error err;
        const struct featuremap_type *t_fm = featuremap_lookup(s->map, &err);
        if (!t_fm)
            return NAN;
        /* The map's bytes of n rows include its parameters once: counted per call. */
        c += bytes ? featuremap_nominal_bytes(t_fm, 2 * (size_t)s->batch, s->d, s->m)
                   : featuremap_nominal_flops(t_fm, 2 * (size_t)s->batch, s->d, s->m);
    }
    return c;
}

/* The smallest integer context t >= 1 at which the softmax step's cost reaches the linear
 * step's; NaN when it does not by MODEL_T_MAX (or the models are unknown).  The softmax cost is
 * nondecreasing in t (attention.h), so a doubling search then bisection finds it. */
static double model_cross(const struct la_decode_series *lin, const struct la_decode_series *soft,
                          int bytes)
{
    const double target = step_cost(lin, 1.0, bytes);
    if (!isfinite(target) || !isfinite(step_cost(soft, 1.0, bytes)))
        return NAN;
    if (step_cost(soft, 1.0, bytes) >= target)
        return 1.0;
    long lo = 1, hi = 2;
    while (step_cost(soft, (double)hi, bytes) < target) {
        lo = hi;
        hi *= 2;
        if (hi > MODEL_T_MAX)
            return NAN;
    }
    while (hi - lo > 1) { /* cost(lo) < target <= cost(hi) */
        const long mid = lo + (hi - lo) / 2;
        if (step_cost(soft, (double)mid, bytes) < target)
            lo = mid;
        else
            hi = mid;
    }
    return (double)hi;
}

/* The measured crossover of pair p over the contexts both series measured. */
static void measured_cross(const struct la_decode_series *lin, const struct la_decode_series *soft,
                           struct la_decode_pair *p)
{
    double prev_t = NAN, prev_r = NAN;
    int common = 0;
    p->status = LA_DECODE_NONE;
    p->t_star = p->t_lo = p->t_hi = NAN;
    for (int k = 0; k < lin->npoints; k++) {
        const double t = lin->T[k];
        int j;
        for (j = 0; j < soft->npoints; j++)
            if (soft->T[j] == t)
                break;
        if (j == soft->npoints)
            continue;
        const double r = log(lin->step[k] / soft->step[j]); /* < 0: linear cheaper */
        if (common++ == 0 && r <= 0.0) {
            p->status = LA_DECODE_BELOW;
            p->t_star = p->t_lo = p->t_hi = t;
            return;
        }
        if (common > 1 && prev_r > 0.0 && r <= 0.0) {
            const double f = prev_r / (prev_r - r);
            p->status = LA_DECODE_FOUND;
            p->t_lo = prev_t;
            p->t_hi = t;
            p->t_star = exp(log(prev_t) + f * (log(t) - log(prev_t)));
            return;
        }
        prev_t = t;
        prev_r = r;
    }
    if (common >= 2)
        p->status = LA_DECODE_BEYOND;
}

/* P, n_max and the generation numbers of pair p. */
static int generation(const struct la_decode_series *lin, const struct la_decode_series *soft,
                      struct la_decode_pair *p)
{
    p->P = p->n_max = 0;
    p->speedup_max = p->n_100 = p->n_1000 = NAN;
    if (lin->npoints < 1 || soft->npoints < 1)
        return LA_OK;
    const double first = lin->T[0] > soft->T[0] ? lin->T[0] : soft->T[0];
    const double last = lin->T[lin->npoints - 1] < soft->T[soft->npoints - 1]
                            ? lin->T[lin->npoints - 1]
                            : soft->T[soft->npoints - 1];
    if (!(last > first))
        return LA_OK;
    p->P = (long)first;
    p->n_max = (long)last - p->P;
    double *gl = malloc((size_t)p->n_max * sizeof *gl), *gs = malloc((size_t)p->n_max * sizeof *gs);
    if (!gl || !gs) {
        free(gl);
        free(gs);
        return LA_ENOMEM;
    }
    cumulate(lin, p->P, p->n_max, gl);
    cumulate(soft, p->P, p->n_max, gs);
    for (long i = 0; i < p->n_max; i++) {
        const double r = gs[i] / gl[i];
        if (isnan(p->n_100) && r >= 100.0)
            p->n_100 = (double)(i + 1);
        if (isnan(p->n_1000) && r >= 1000.0)
            p->n_1000 = (double)(i + 1);
    }
    p->speedup_max = gs[p->n_max - 1] / gl[p->n_max - 1];
    free(gl);
    free(gs);
    return LA_OK;
}

int la_decode_pairs(const struct la_decode_series *s, size_t ns, struct la_decode_pair **out,
                    size_t *nout, struct la_error *err)
{
    *out = NULL;
    *nout = 0;
    struct la_decode_pair *p = malloc((ns ? ns : 1) * sizeof *p);
    if (!p)
        return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
    size_t np = 0;
    for (size_t i = 0; i < ns; i++) {
        if (s[i].softmax)
            continue;
        size_t j;
        for (j = 0; j < ns; j++)
            if (s[j].softmax && same_context(&s[i], &s[j]))
                break;
        if (j == ns)
            continue;
        struct la_decode_pair *x = &p[np++];
        memset(x, 0, sizeof *x);
        x->lin = i;
        x->soft = j;
        measured_cross(&s[i], &s[j], x);
        x->t_flops = model_cross(&s[i], &s[j], 0);
        x->t_bytes = model_cross(&s[i], &s[j], 1);
        if (generation(&s[i], &s[j], x) != LA_OK) {
            free(p);
            return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
        }
    }
    if (!np) {
        free(p);
        p = NULL;
    }
    *out = p;
    *nout = np;
    return LA_OK;
}

const char *la_decode_status_name(int status)
{
    static const char *const names[] = {"found", "below_range", "beyond_range", "none"};
    return status >= 0 && status <= LA_DECODE_NONE ? names[status] : "?";
}

/* ---- figures ---------------------------------------------------------------------------- */

/* The legend text of a series: "softmax_step", "elu1", "prf m=256". */
static void series_title(const struct la_decode_series *s, char *buf, size_t cap)
{
    if (s->softmax)
        snprintf(buf, cap, "%s", s->kernel);
    else if (la_fig_map_reads(s->map, "m"))
        snprintf(buf, cap, "%s m=%d", s->map, s->m);
    else
        snprintf(buf, cap, "%s", s->map);
}

static void panel_title(const struct la_decode_series *s, char *buf, size_t cap)
{
    int w = snprintf(buf, cap, "d=%d", s->d);
    if (s->dv != s->d && w > 0 && (size_t)w < cap)
        w += snprintf(buf + w, cap - (size_t)w, ", dv=%d", s->dv);
    if (w > 0 && (size_t)w < cap)
        snprintf(buf + w, cap - (size_t)w, ", B=%d, %d head%s, %d thread%s", s->batch, s->heads,
                 la_fig_plural(s->heads), s->threads, la_fig_plural(s->threads));
}

/* The panels: one per context of the series that pass keep(), in order of first appearance;
 * panel_of[i] is series i's panel (or -1). */
static size_t make_panels(const struct la_decode_series *s, size_t ns, const int *keep,
                          int *panel_of, size_t *first)
{
    size_t np = 0;
    for (size_t i = 0; i < ns; i++) {
        panel_of[i] = -1;
        if (!keep[i])
            continue;
        size_t p;
        for (p = 0; p < np; p++)
            if (same_context(&s[first[p]], &s[i]))
                break;
        if (p == np)
            first[np++] = i;
        panel_of[i] = (int)p;
    }
    return np;
}

static void grid(struct la_figure *fig, size_t np)
{
    fig->ncols = np < 3 ? (int)np : 3;
    fig->nrows = (int)((np + 2) / 3);
}

/* A figure of one curve per kept series over its contexts: y = the step time, or the state
 * bytes. */
static int series_figure(const struct la_decode_series *s, size_t ns, int forced, int memory,
                         struct la_figure *fig, struct la_error *err)
{
    la_figure_init(fig);
    const int need = forced ? 1 : 2;
    int *keep = calloc(ns ? ns : 1, sizeof *keep), *panel_of = malloc((ns ? ns : 1) * sizeof(int));
    size_t *first = malloc((ns ? ns : 1) * sizeof *first);
    if (!keep || !panel_of || !first)
        goto nomem;
    for (size_t i = 0; i < ns; i++) {
        int ok = 0;
        for (int k = 0; k < s[i].npoints; k++)
            ok += !memory || s[i].state[k] > 0.0;
        keep[i] = ok >= need;
    }
    const size_t np = make_panels(s, ns, keep, panel_of, first);
    if (!np) {
        free(keep), free(panel_of), free(first);
        return LA_OK;
    }
    if (la_figure_panels(fig, np) != LA_OK)
        goto nomem;
    fig->fits = 1;
    fig->legend_every_panel = 1;
    if (memory)
        snprintf(fig->stats, sizeof fig->stats,
                 "points: the state or KV cache held at context t, B·H sequences (from the "
                 "kernel's state size, not measured); no bars");
    else
        snprintf(fig->stats, sizeof fig->stats,
                 "points: median step time over the timed repeats (median over a context's "
                 "rows); bars: the lowest 20th to the highest 80th percentile of those rows");
    grid(fig, np);
    for (size_t p = 0; p < np; p++) {
        struct la_fig_panel *pm = &fig->panels[p];
        panel_title(&s[first[p]], pm->title, sizeof pm->title);
        snprintf(pm->xlabel, sizeof pm->xlabel, "context t (tokens)");
        snprintf(pm->ylabel, sizeof pm->ylabel, "%s",
                 memory ? "state or KV cache (bytes, B·H sequences)"
                        : "one step of B·H sequences (s)");
        pm->first = fig->ncurves;
        for (size_t i = 0; i < ns; i++) {
            if (panel_of[i] != (int)p)
                continue;
            struct la_fig_curve cv = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = 1};
            if (la_fig_curve_alloc(&cv, (size_t)s[i].npoints) != LA_OK)
                goto nomem;
            series_title(&s[i], cv.title, sizeof cv.title);
            snprintf(cv.map, sizeof cv.map, "%s", s[i].softmax ? "softmax" : s[i].map);
            for (int k = 0; k < s[i].npoints; k++) {
                if (memory && !(s[i].state[k] > 0.0))
                    continue;
                cv.pts[cv.npoints++] =
                    (struct la_fig_point){.x = s[i].T[k],
                                          .y = memory ? s[i].state[k] : s[i].step[k],
                                          .lo = memory ? s[i].state[k] : s[i].lo[k],
                                          .hi = memory ? s[i].state[k] : s[i].hi[k],
                                          .n = s[i].rows[k]};
            }
            if (la_figure_add_curve(fig, &cv) != LA_OK)
                goto nomem;
        }
        pm->count = fig->ncurves - pm->first;
    }
    free(keep), free(panel_of), free(first);
    return LA_OK;
nomem:
    free(keep), free(panel_of), free(first);
    la_figure_free(fig);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}

int la_decode_latency_figure(const struct la_decode_series *s, size_t ns, int forced,
                             struct la_figure *fig, struct la_error *err)
{
    return series_figure(s, ns, forced, 0, fig, err);
}

int la_decode_memory_figure(const struct la_decode_series *s, size_t ns, int forced,
                            struct la_figure *fig, struct la_error *err)
{
    return series_figure(s, ns, forced, 1, fig, err);
}

/* A horizontal line at y over [x0, x1], dotted, in the legend as "100×". */
static int level_line(struct la_figure *fig, double y, double x0, double x1)
{
    struct la_fig_curve cv = {.kind = LA_CURVE_POINTS, .dash = 4, .pt = 0};
    if (la_fig_curve_alloc(&cv, 2) != LA_OK)
        return LA_ENOMEM;
    snprintf(cv.title, sizeof cv.title, "%g×", y);
    snprintf(cv.map, sizeof cv.map, "softmax");
    cv.pts[0] = (struct la_fig_point){.x = x0, .y = y, .lo = y, .hi = y};
    cv.pts[1] = (struct la_fig_point){.x = x1, .y = y, .lo = y, .hi = y};
    cv.npoints = 2;
    return la_figure_add_curve(fig, &cv);
}

int la_decode_speedup_figure(const struct la_decode_series *s, size_t ns,
                             const struct la_decode_pair *p, size_t np, struct la_figure *fig,
                             struct la_error *err)
{
    la_figure_init(fig);
    int *keep = calloc(ns ? ns : 1, sizeof *keep), *panel_of = malloc((ns ? ns : 1) * sizeof(int));
    size_t *first = malloc((ns ? ns : 1) * sizeof *first);
    double *gl = NULL, *gs = NULL;
    if (!keep || !panel_of || !first)
        goto nomem;
    for (size_t i = 0; i < np; i++)
        keep[p[i].lin] = p[i].n_max >= 1;
    const size_t npan = make_panels(s, ns, keep, panel_of, first);
    if (!npan) {
        free(keep), free(panel_of), free(first);
        return LA_OK;
    }
    if (la_figure_panels(fig, npan) != LA_OK)
        goto nomem;
    fig->fits = 1;
    fig->legend_every_panel = 1;
    snprintf(fig->stats, sizeof fig->stats,
             "points: softmax / linear time to generate N tokens after the prompt, each the sum "
             "of the median step times interpolated between measured contexts; no bars");
    grid(fig, npan);
    for (size_t q = 0; q < npan; q++) {
        struct la_fig_panel *pm = &fig->panels[q];
        char ctx[LA_FIG_TEXT_LEN - 32];
        panel_title(&s[first[q]], ctx, sizeof ctx);
        long P = 0, nmax = 0;
        pm->first = fig->ncurves;
        for (size_t i = 0; i < np; i++) {
            const struct la_decode_pair *x = &p[i];
            if (panel_of[x->lin] != (int)q)
                continue;
            P = x->P;
            nmax = x->n_max > nmax ? x->n_max : nmax;
            gl = malloc((size_t)x->n_max * sizeof *gl);
            gs = malloc((size_t)x->n_max * sizeof *gs);
            if (!gl || !gs)
                goto nomem;
            cumulate(&s[x->lin], x->P, x->n_max, gl);
            cumulate(&s[x->soft], x->P, x->n_max, gs);
            /* N = 1, 2, 4, ... and n_max. */
            size_t npts = 1;
            for (long N = 1; N < x->n_max; N *= 2)
                npts++;
            struct la_fig_curve cv = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = 1};
            if (la_fig_curve_alloc(&cv, npts) != LA_OK)
                goto nomem;
            series_title(&s[x->lin], cv.title, sizeof cv.title);
            snprintf(cv.map, sizeof cv.map, "%s", s[x->lin].map);
            for (long N = 1;; N = N * 2 < x->n_max ? N * 2 : x->n_max) {
                const double r = gs[N - 1] / gl[N - 1];
                cv.pts[cv.npoints++] =
                    (struct la_fig_point){.x = (double)N, .y = r, .lo = r, .hi = r, .n = 1};
                if (N == x->n_max)
                    break;
            }
            free(gl), free(gs);
            gl = gs = NULL;
            if (la_figure_add_curve(fig, &cv) != LA_OK)
                goto nomem;
        }
        snprintf(pm->title, sizeof pm->title, "%s, prompt P=%ld", ctx, P);
        snprintf(pm->xlabel, sizeof pm->xlabel, "tokens generated N");
        snprintf(pm->ylabel, sizeof pm->ylabel, "softmax time / linear time");
        if (level_line(fig, 100.0, 1.0, (double)nmax) != LA_OK ||
            level_line(fig, 1000.0, 1.0, (double)nmax) != LA_OK)
            goto nomem;
        pm->count = fig->ncurves - pm->first;
    }
    free(keep), free(panel_of), free(first);
    return LA_OK;
nomem:
    free(keep), free(panel_of), free(first), free(gl), free(gs);
    la_figure_free(fig);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}
