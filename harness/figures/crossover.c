/* crossover.c — the measured crossover T* of linear against softmax attention, the two
 * predictions beside it (flop model at measured rates; pure flop counts), and the crossover
 * figure drawn from them.  Definitions are in crossover.h.  Pure computation on rows: no files,
 * no clock.  Tests: tests/test_crossover.c (T*), tests/test_figures.c (the figure).
 */
#include "crossover.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/util.h"
#include "../experiment/params.h"
#include "fields.h"
#include "../store/results.h"

/* ---- small helpers --------------------------------------------------------------------- */

/* Median of v[0..n) (sorts v in place); NaN for n = 0. */
static double median(double *v, size_t n)
{
    if (!n)
        return NAN;
    qsort(v, n, sizeof *v, la_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int is_timed(const struct la_row *r)
{
    return r->status == LA_ROW_OK && isfinite(r->time_median_s) && r->time_median_s > 0;
}

static double fm_time(const struct la_row *r)
{
    return isfinite(r->fm_time_median_s) && r->fm_time_median_s > 0 ? r->fm_time_median_s : 0;
}

/* A percentile column, or the median when it was not recorded. */
static double pct(double v, const struct la_row *r)
{
    return isfinite(v) ? v : r->time_median_s;
}

static int same_context(const struct la_row *a, const struct la_row *b)
{
    return a->d == b->d && a->dv == b->dv && a->causal == b->causal && a->batch == b->batch &&
           a->heads == b->heads && a->threads == b->threads && !strcmp(a->pass, b->pass);
}

/* gerf's A: two rows with `A: auto` are one setting, whatever value each cell fitted. */
static int same_A(const struct la_row *a, const struct la_row *b)
{
    return la_field_eq(a, b, la_field_find("A"));
}

static int A_is_auto(const struct la_row *r)
{
    char v[16];
    return la_key_get(r->key, "A", v, sizeof v) == LA_OK && !strcmp(v, "auto");
}

/* The recurrences' own parameters (fields β, γ, α, recur_norm): a sweep over one of them is
 * one series per value. */
static const char *const rule_fields[] = {"beta", "gamma", "alpha", "recur_norm"};
#define NRULE (sizeof rule_fields / sizeof rule_fields[0])

static int same_rule(const struct la_row *a, const struct la_row *b)
{
    for (size_t i = 0; i < NRULE; i++)
        if (!la_field_eq(a, b, la_field_find(rule_fields[i])))
            return 0;
    return 1;
}

static int same_linear_series(const struct la_row *a, const struct la_row *b)
{
    return same_context(a, b) && !strcmp(a->kernel, b->kernel) && !strcmp(a->map, b->map) &&
           a->m == b->m && !strcmp(a->draw, b->draw) && same_A(a, b) && same_rule(a, b);
}

/* x[i].rule: the rule fields whose values differ between series of one kernel, from each
 * series' representative row rows[rep[i]]. */
static void rule_texts(struct la_crossover *x, size_t nx, const struct la_row *rows,
                       const size_t *rep)
{
    unsigned vary = 0;
    for (size_t i = 0; i < nx; i++)
        for (size_t j = 0; j < i; j++)
            if (!strcmp(x[i].kernel, x[j].kernel))
                for (size_t f = 0; f < NRULE; f++) {
                    const int id = la_field_find(rule_fields[f]);
                    if (!la_field_eq(&rows[rep[i]], &rows[rep[j]], id))
                        vary |= LA_FIELD_BIT(id);
                }
    for (size_t i = 0; i < nx; i++) {
        x[i].rule[0] = '\0';
        la_fields_append(&rows[rep[i]], vary, " ", x[i].rule, sizeof x[i].rule);
    }
}

static int same_softmax_series(const struct la_row *a, const struct la_row *b)
{
    return same_context(a, b) && !strcmp(a->kernel, b->kernel);
}

/* ---- flop counts ------------------------------------------------------------------------ */

double la_crossover_fm_flops_per_token(const char *map, int m, int d)
{
    /* One query row and one key row through the map's flop model; NaN for a map this build
     * does not know (a file written by a newer linattn): there is no model to count it by. */
    struct la_error err;
    return 2.0 * featuremap_nominal_flops(featuremap_lookup(map, &err), 1, d, m);
}

double la_crossover_flop_T(const char *linear_kernel, const char *softmax_kernel, const char *map,
                           int m, int d, int dv, int causal)
{
    const struct attn_kernel *lk = attn_kernel_lookup(linear_kernel);
    const struct attn_kernel *sk = attn_kernel_lookup(softmax_kernel);
    /* Per token (T = 1) of the linear kernel, per token² (T = 1) of softmax, from the kernels'
     * flop models; a name that is unknown (a file written by a newer linattn) is counted as the
     * table's first kernel of its kind. */
    if (!lk)
        lk = attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_FEATURES, causal);
    if (!sk)
        sk = attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_QK, causal);
    double lin = lk ? attn_nominal_flops(lk, 1, m, dv, causal) : NAN;
    double soft = sk ? attn_nominal_flops(sk, 1, d, dv, causal) : NAN;
    lin += la_crossover_fm_flops_per_token(map, m, d);
    return soft > 0 ? lin / soft : NAN;
}

/* The flop T* of a training pass (crossover.h): the backward kernels' models and the map's
 * backward per token, plus the forward's for forward+backward. */
static double train_flop_T(const struct la_crossover *x)
{
    const int fb = !strcmp(x->pass, "forward+backward");
    const struct attn_kernel *lk = attn_kernel_find(ATTN_OP_BACKWARD, ATTN_IN_FEATURES, x->causal);
    const struct attn_kernel *sk = attn_kernel_find(ATTN_OP_BACKWARD, ATTN_IN_QK, x->causal);
    struct la_error err;
    const struct featuremap_type *t = featuremap_lookup(x->map, &err);
    if (!lk || !sk)
        return NAN;
    double lin = attn_nominal_flops(lk, 1, x->m, x->dv, x->causal) +
                 2.0 * featuremap_nominal_backward_flops(t, 1, x->d, x->m);
    double soft = attn_nominal_flops(sk, 1, x->d, x->dv, x->causal);
    if (fb) {
        const double f =
            la_crossover_flop_T(x->kernel, x->softmax, x->map, x->m, x->d, x->dv, x->causal);
        const struct attn_kernel *ss = attn_kernel_lookup(x->softmax);
        const double sf =
            attn_nominal_flops(ss ? ss : attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_QK, x->causal),
                               1, x->d, x->dv, x->causal);
        lin += f * sf; /* the forward's linear flops per token */
        soft += sf;
    }
    return soft > 0 ? lin / soft : NAN;
}

/* ---- interpolation ---------------------------------------------------------------------- */

double la_crossover_interp(double T0, double lin0, double soft0, double T1, double lin1,
                           double soft1)
{
    if (!(T0 > 0 && T1 > 0 && lin0 > 0 && lin1 > 0 && soft0 > 0 && soft1 > 0) || T0 == T1)
        return NAN;
    double f0 = log(lin0) - log(soft0), f1 = log(lin1) - log(soft1);
    if ((f0 > 0 && f1 > 0) || (f0 < 0 && f1 < 0))
        return NAN;
    if (f0 == 0) /* they meet at the first point (also when they coincide) */
        return T0;
    if (f1 == 0)
        return T1;
    double x0 = log(T0), x1 = log(T1);
    return exp(x0 + f0 * (x1 - x0) / (f0 - f1));
}

/* Linear strictly faster at grid point p. */
static int faster(const struct la_xo_point *p)
{
    return p->t_linear < p->t_softmax;
}

/* Fills the crossings, the status and the three T* of x from its points. */
static void finish(struct la_crossover *x)
{
    x->T_min = x->pts[0].T;
    x->T_max = x->pts[x->npoints - 1].T;
    x->T_star = x->T_lo = x->T_hi = NAN;
    x->n_cross = 0;
    size_t last = 0; /* grid index right after the last sign change (0: none) */
    for (size_t i = 1; i < x->npoints; i++) {
        const struct la_xo_point *a = &x->pts[i - 1], *b = &x->pts[i];
        if (faster(a) == faster(b))
            continue;
        if (x->n_cross < LA_XO_MAX_CROSS) {
            struct la_xo_cross *c = &x->cross[x->n_cross];
            c->T = la_crossover_interp(a->T, a->t_linear, a->t_softmax, b->T, b->t_linear,
                                       b->t_softmax);
            c->T_lo = a->T;
            c->T_hi = b->T;
            c->to_linear = faster(b);
        }
        x->n_cross++;
        last = i;
    }
    const struct la_xo_point *end = &x->pts[x->npoints - 1];
    if (!faster(end)) {
        x->status = LA_XO_ABOVE;
    } else if (last == 0) {
        x->status = LA_XO_BELOW;
    } else {
        const struct la_xo_point *a = &x->pts[last - 1], *b = &x->pts[last];
        x->status = LA_XO_FOUND;
        x->T_lo = a->T;
        x->T_hi = b->T;
        x->T_star =
            la_crossover_interp(a->T, a->t_linear, a->t_softmax, b->T, b->t_linear, b->t_softmax);
    }
    x->ratio_max = end->t_linear / end->t_softmax;
    x->T_model = end->T * x->ratio_max;
    x->T_flops =
        x->pass[0] && strcmp(x->pass, "forward")
            ? train_flop_T(x)
            : la_crossover_flop_T(x->kernel, x->softmax, x->map, x->m, x->d, x->dv, x->causal);
}

static int cmp_xo(const void *pa, const void *pb)
{
    const struct la_crossover *a = pa, *b = pb;
    int c;
    if ((c = strcmp(a->softmax, b->softmax)))
        return c;
    if (a->causal != b->causal)
        return a->causal - b->causal;
    if (a->d != b->d)
        return a->d - b->d;
    if (a->dv != b->dv)
        return a->dv - b->dv;
    if ((c = strcmp(a->map, b->map)))
        return c;
    if (a->m != b->m)
        return a->m - b->m;
    if ((c = strcmp(a->draw, b->draw)))
        return c;
    if (a->A_auto != b->A_auto)
        return b->A_auto - a->A_auto;
    if (!la_fig_same_real(a->A, b->A))
        return isnan(a->A) ? 1 : isnan(b->A) ? -1 : (a->A > b->A) - (a->A < b->A);
    if ((c = strcmp(a->kernel, b->kernel)))
        return c;
    if ((c = strcmp(a->rule, b->rule)))
        return c;
    if (a->batch != b->batch)
        return a->batch - b->batch;
    if (a->heads != b->heads)
        return a->heads - b->heads;
    if (a->threads != b->threads)
        return a->threads - b->threads;
    return strcmp(a->pass, b->pass); /* a training step next to the forward pass */
}

/* ---- the computation -------------------------------------------------------------------- */

int la_crossover_compute(const struct la_row *rows, size_t n, struct la_crossover **out,
                         size_t *nout, struct la_error *err)
{
    *out = NULL;
    *nout = 0;
    /* Representatives: the first row of each distinct linear and softmax series, and the
     * distinct T values (an upper bound on any series' grid). */
    size_t *lin = malloc((n ? n : 1) * sizeof *lin), *soft = malloc((n ? n : 1) * sizeof *soft);
    size_t *rep = NULL; /* each series' representative row */
    double *Ts = malloc((n ? n : 1) * sizeof *Ts), *a = malloc((n ? n : 1) * sizeof *a),
           *b = malloc((n ? n : 1) * sizeof *b), *c = malloc((n ? n : 1) * sizeof *c);
    struct la_crossover *xo = NULL;
    int rc = LA_OK;
    if (!lin || !soft || !Ts || !a || !b || !c) {
        rc = LA_FAIL(err, LA_ENOMEM, "crossover: out of memory for %zu rows", n);
        goto done;
    }
    size_t nlin = 0, nsoft = 0, nT = 0;
    for (size_t i = 0; i < n; i++) {
        const struct la_row *r = &rows[i];
        if (!is_timed(r))
            continue;
        int sm = la_row_is_softmax(r);
        size_t *list = sm ? soft : lin, *cnt = sm ? &nsoft : &nlin, j;
        for (j = 0; j < *cnt; j++)
            if (sm ? same_softmax_series(&rows[list[j]], r) : same_linear_series(&rows[list[j]], r))
                break;
        if (j == *cnt)
            list[(*cnt)++] = i;
        for (j = 0; j < nT; j++)
            if (Ts[j] == r->T)
                break;
        if (j == nT)
            Ts[nT++] = r->T;
    }
    qsort(Ts, nT, sizeof *Ts, la_cmp_double);

    size_t npairs = 0;
    for (size_t i = 0; i < nlin; i++)
        for (size_t j = 0; j < nsoft; j++)
            npairs += same_context(&rows[lin[i]], &rows[soft[j]]);
    if (!npairs)
        goto done;
    /* One block: the crossovers, then each one's points (at most nT). */
    xo = calloc(1, npairs * sizeof *xo + npairs * nT * sizeof(struct la_xo_point));
    rep = malloc(npairs * sizeof *rep);
    if (!xo || !rep) {
        rc = LA_FAIL(err, LA_ENOMEM, "crossover: out of memory for %zu series", npairs);
        goto done;
    }
    struct la_xo_point *pool = (struct la_xo_point *)(xo + npairs);
    size_t k = 0;
    for (size_t i = 0; i < nlin; i++) {
        const struct la_row *L = &rows[lin[i]];
        for (size_t j = 0; j < nsoft; j++) {
            const struct la_row *S = &rows[soft[j]];
            if (!same_context(L, S))
                continue;
            struct la_crossover *x = &xo[k];
            snprintf(x->kernel, sizeof x->kernel, "%s", L->kernel);
            snprintf(x->map, sizeof x->map, "%s", L->map);
            snprintf(x->draw, sizeof x->draw, "%s", L->draw);
            snprintf(x->softmax, sizeof x->softmax, "%s", S->kernel);
            x->m = L->m;
            x->A_auto = A_is_auto(L);
            x->A = x->A_auto ? NAN : L->A;
            x->d = L->d;
            x->dv = L->dv;
            x->causal = L->causal;
            x->batch = L->batch;
            x->heads = L->heads;
            x->threads = L->threads;
            snprintf(x->pass, sizeof x->pass, "%s", L->pass);
            x->pts = pool + k * nT;
            for (size_t t = 0; t < nT; t++) {
                size_t na = 0, nb = 0, nc = 0, ns = 0, nl = 0, nh = 0;
                /* linear totals (a), kernels (b), feature maps (c) at this T */
                for (size_t r = 0; r < n; r++) {
                    const struct la_row *R = &rows[r];
                    if (R->T != Ts[t] || !is_timed(R))
                        continue;
                    if (!la_row_is_softmax(R) && same_linear_series(R, L)) {
                        a[na++] = R->time_median_s + fm_time(R);
                        b[nb++] = R->time_median_s;
                        c[nc++] = fm_time(R);
                    }
                }
                if (!na)
                    continue;
                struct la_xo_point *p = &x->pts[x->npoints];
                p->T = Ts[t];
                p->t_linear = median(a, na);
                p->t_kernel = median(b, nb);
                p->t_fm = median(c, nc);
                /* The spread of the repeats (p20, p80), median over the rows. */
                for (size_t r = 0; r < n; r++) {
                    const struct la_row *R = &rows[r];
                    if (R->T == Ts[t] && is_timed(R) && !la_row_is_softmax(R) &&
                        same_linear_series(R, L)) {
                        a[nl++] = pct(R->time_p20_s, R) + fm_time(R);
                        b[nh++] = pct(R->time_p80_s, R) + fm_time(R);
                    }
                }
                p->t_linear_p20 = median(a, nl);
                p->t_linear_p80 = median(b, nh);
                nl = nh = 0;
                for (size_t r = 0; r < n; r++) {
                    const struct la_row *R = &rows[r];
                    if (R->T == Ts[t] && is_timed(R) && la_row_is_softmax(R) &&
                        same_softmax_series(R, S)) {
                        a[ns++] = R->time_median_s;
                        b[nl++] = pct(R->time_p20_s, R);
                        c[nh++] = pct(R->time_p80_s, R);
                    }
                }
                if (!ns)
                    continue;
                p->t_softmax = median(a, ns);
                p->t_softmax_p20 = median(b, nl);
                p->t_softmax_p80 = median(c, nh);
                x->npoints++;
            }
            if (x->npoints) {
                finish(x);
                rep[k++] = lin[i];
            }
        }
    }
    if (!k) {
        free(xo);
        xo = NULL;
        goto done;
    }
    rule_texts(xo, k, rows, rep);
    qsort(xo, k, sizeof *xo, cmp_xo);
    *out = xo;
    *nout = k;
    xo = NULL;
done:
    free(xo);
    free(rep);
    free(lin);
    free(soft);
    free(Ts);
    free(a);
    free(b);
    free(c);
    return rc;
}

void la_crossover_free(struct la_crossover *xo)
{
    free(xo);
}

/* ---- text ------------------------------------------------------------------------------- */

const char *la_crossover_star_text(const struct la_crossover *x, char *buf, size_t cap)
{
    if (x->status == LA_XO_BELOW)
        snprintf(buf, cap, "< %.0f", x->T_min);
    else if (x->status == LA_XO_ABOVE)
        snprintf(buf, cap, "> %.0f", x->T_max);
    else
        snprintf(buf, cap, "%.0f", x->T_star);
    return buf;
}

const char *la_crossover_A_text(const struct la_crossover *x, char *buf, size_t cap)
{
    if (x->A_auto)
        snprintf(buf, cap, "auto");
    else if (isnan(x->A) || !la_fig_map_reads(x->map, "A"))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%g", x->A);
    return buf;
}

const char *la_crossover_cross_text(const struct la_crossover *x, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (!x->n_cross)
        snprintf(buf, cap, "-");
    for (int i = 0; i < x->n_cross && i < LA_XO_MAX_CROSS; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%.0f%s", i ? "," : "", x->cross[i].T,
                 x->cross[i].to_linear ? "+" : "-");
    }
    if (x->n_cross > LA_XO_MAX_CROSS) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, ",...");
    }
    return buf;
}

/* Characters of UTF-8 text s (its bytes less the continuation bytes): its width in the
 * table, whose labels hold γ, β, α. */
static int utf8_width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xC0) != 0x80;
    return w;
}

/* The table's kernel column of series x (first: the table's first series). */
static const char *kernel_text(const struct la_crossover *x, const struct la_crossover *first,
                               char *buf, size_t cap)
{
    if (strcmp(x->softmax, first->softmax))
        snprintf(buf, cap, "%s vs %s%s%s", x->kernel, x->softmax, x->rule[0] ? " " : "",
                 x->rule);
    else
        snprintf(buf, cap, "%s%s%s", x->kernel, x->rule[0] ? " " : "", x->rule);
    return buf;
}

size_t la_crossover_print(const struct la_row *rows, size_t n, FILE *out)
{
    struct la_crossover *xo = NULL;
    size_t nx = 0;
    struct la_error err;
    la_error_clear(&err);
    if (la_crossover_compute(rows, n, &xo, &nx, &err) != LA_OK) {
        fprintf(out, "crossover: %s\n", err.msg);
        return 0;
    }
    if (!nx)
        return 0;
    fprintf(out,
            "crossover T*: the crossing after which linear (kernel + feature map) stays faster "
            "than %s (log-log interpolation between grid points)\n",
            xo[0].softmax);
    fprintf(out, "  model: T_max * t_linear/t_softmax at T_max (rates at the largest T); "
                 "flops: nominal flop counts (crossover.h)\n");
    /* A pass column when the rows hold training steps (T* of training next to inference). */
    int passes = 0;
    for (size_t i = 0; i < nx; i++)
        passes |= xo[i].pass[0] && strcmp(xo[i].pass, "forward");
    /* The kernel column: the kernel, the softmax kernel when the table has several, and the
     * rule's parameters that tell its series apart; as wide as the widest (in characters). */
    int kw = 24;
    for (size_t i = 0; i < nx; i++) {
        char kern[2 * LA_NAME_LEN + 80];
        const int w = utf8_width(kernel_text(&xo[i], &xo[0], kern, sizeof kern));
        kw = w > kw ? w : kw;
    }
    fprintf(out, "  %4s %-10s %-8s %5s %-6s %-10s %-*s %3s %9s %9s %9s %12s%s  %s\n", "d",
            "causal", "map", "m", "A", "draw", kw, "kernel", "thr", "T*", "model", "flops",
            "lin/soft@max", passes ? "  pass            " : "", "crossings");
    for (size_t i = 0; i < nx; i++) {
        const struct la_crossover *x = &xo[i];
        char star[32], kern[2 * LA_NAME_LEN + 80];
        kernel_text(x, &xo[0], kern, sizeof kern);
        char A[24], cross[160], pcol[48] = "";
        la_crossover_A_text(x, A, sizeof A);
        la_crossover_cross_text(x, cross, sizeof cross);
        if (passes)
            snprintf(pcol, sizeof pcol, "  %-16s", x->pass[0] ? x->pass : "forward");
        fprintf(out, "  %4d %-10s %-8s %5d %-6s %-10s %s%*s %3d %9s %9.0f %9.0f %12.3g%s  %s\n",
                x->d, x->causal ? "causal" : "non-causal", x->map, x->m, A, x->draw, kern,
                kw - utf8_width(kern), "", x->threads, la_crossover_star_text(x, star, sizeof star),
                x->T_model, x->T_flops, x->ratio_max, pcol, cross);
    }
    la_crossover_free(xo);
    return nx;
}

/* ---- the crossover figure ------------------------------------------------------------------ */

/* Median repeats of the timed rows at the largest timed T. */
static double median_repeats(const struct la_row *rows, size_t n)
{
    double *v = malloc((n ? n : 1) * sizeof *v), Tmax = 0;
    size_t k = 0;
    if (!v)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].status == LA_ROW_OK && isfinite(rows[i].time_median_s) && rows[i].T > Tmax)
            Tmax = rows[i].T;
    for (size_t i = 0; i < n; i++)
        if (rows[i].status == LA_ROW_OK && isfinite(rows[i].time_median_s) && rows[i].T == Tmax)
            v[k++] = rows[i].repeats;
    qsort(v, k, sizeof *v, la_cmp_double);
    double m = k ? v[k / 2] : 0;
    free(v);
    return m;
}

int la_crossover_fits(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                      size_t nxo, int forced)
{
    int pts = 0;
    for (size_t i = 0; i < nxo; i++)
        pts |= xo[i].npoints >= 2;
    if (!pts)
        return 0;
    return forced || median_repeats(rows, n) >= LA_XO_MIN_REPEATS;
}

void la_crossover_name(const struct la_crossover *x, int with_kernel, int with_draw, int m_as_d,
                       char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", x->map);
    size_t len = strlen(buf);
    if (la_fig_map_reads(x->map, "m") && len + 1 < cap) {
        if (m_as_d && x->m == x->d)
            snprintf(buf + len, cap - len, " m=d");
        else
            snprintf(buf + len, cap - len, " m=%d", x->m);
    }
    len = strlen(buf);
    if (la_fig_map_reads(x->map, "A") && len + 1 < cap) {
        if (x->A_auto || isnan(x->A))
            snprintf(buf + len, cap - len, " A=auto");
        else
            snprintf(buf + len, cap - len, " A=%g", x->A);
    }
    len = strlen(buf);
    if (with_draw && la_fig_map_reads(x->map, "draw") && len + 1 < cap)
        snprintf(buf + len, cap - len, " %s", x->draw);
    len = strlen(buf);
    if (with_kernel && len + 1 < cap)
        snprintf(buf + len, cap - len, " (%s)", x->kernel);
    len = strlen(buf);
    if (x->rule[0] && len + 1 < cap)
        snprintf(buf + len, cap - len, " %s", x->rule);
}

void la_crossover_variety(const struct la_crossover *xo, size_t nxo, int *kernels, int *draws)
{
    *kernels = *draws = 0;
    for (size_t i = 0; i < nxo; i++)
        for (size_t j = 0; j < i; j++) {
            if (xo[i].causal == xo[j].causal && strcmp(xo[i].kernel, xo[j].kernel))
                *kernels = 1;
            if (la_fig_map_reads(xo[i].map, "draw") && la_fig_map_reads(xo[j].map, "draw") &&
                strcmp(xo[i].draw, xo[j].draw))
                *draws = 1;
        }
}

void la_crossover_add_distinct(double *v, int *n, int cap, double x)
{
    for (int i = 0; i < *n; i++)
        if (v[i] == x)
            return;
    if (*n >= cap)
        return;
    int i = (*n)++;
    while (i > 0 && v[i - 1] > x) {
        v[i] = v[i - 1];
        i--;
    }
    v[i] = x;
}

/* Same panel of the crossover figure: softmax kernel and context. */
static int ctx_eq(const struct la_crossover *a, const struct la_crossover *b)
{
    return !strcmp(a->softmax, b->softmax) && a->causal == b->causal && a->d == b->d &&
           a->dv == b->dv && a->batch == b->batch && a->heads == b->heads &&
           a->threads == b->threads && !strcmp(a->pass, b->pass);
}

/* A timed softmax row of the context of c0 (its pass too: a training step's panel draws
 * softmax's training step). */
static int softmax_of(const struct la_row *r, const struct la_crossover *c0)
{
    return r->status == LA_ROW_OK && isfinite(r->time_median_s) && la_row_is_softmax(r) &&
           !strcmp(r->kernel, c0->softmax) && r->causal == c0->causal && r->d == c0->d &&
           r->dv == c0->dv && r->batch == c0->batch && r->heads == c0->heads &&
           r->threads == c0->threads && !strcmp(r->pass, c0->pass);
}

#define SOFTMAX_MAX_T 128   /* distinct T of one softmax curve */
#define SOFTMAX_MAX_ROWS 64 /* rows behind one of its points */

/* The softmax curve of a panel: medians (time, p20, p80) over its rows at every T it was timed
 * at (also where no linear series was).  c->npoints is 0 when it was never timed. */
static int softmax_curve(const struct la_row *rows, size_t n, const struct la_crossover *c0,
                         struct la_fig_curve *c)
{
    double Ts[SOFTMAX_MAX_T];
    int nT = 0;
    for (size_t i = 0; i < n; i++)
        if (softmax_of(&rows[i], c0))
            la_crossover_add_distinct(Ts, &nT, SOFTMAX_MAX_T, rows[i].T);
    if (la_fig_curve_alloc(c, (size_t)nT) != LA_OK)
        return LA_ENOMEM;
    double v[3][SOFTMAX_MAX_ROWS];
    for (int j = 0; j < nT; j++) {
        size_t k = 0;
        for (size_t i = 0; i < n && k < SOFTMAX_MAX_ROWS; i++) {
            const struct la_row *r = &rows[i];
            if (softmax_of(r, c0) && r->T == Ts[j]) {
                v[0][k] = r->time_median_s;
                v[1][k] = isfinite(r->time_p20_s) ? r->time_p20_s : r->time_median_s;
                v[2][k] = isfinite(r->time_p80_s) ? r->time_p80_s : r->time_median_s;
                k++;
            }
        }
        for (int q = 0; q < 3; q++)
            qsort(v[q], k, sizeof(double), la_cmp_double);
        c->pts[c->npoints++] = (struct la_fig_point){
            .x = Ts[j], .y = v[0][k / 2], .lo = v[1][k / 2], .hi = v[2][k / 2], .n = k};
    }
    return LA_OK;
}

/* The legend entry of a linear series: "prf m=64: T* = 1.2K", "elu1: T* < 32", and when the
 * curves cross more than once every crossing: "prf m=64: T* = 1.5K (crosses at 181, 1.5K)". */
static void series_title(const struct la_crossover *x, int kernels, int draws, char *buf,
                         size_t cap)
{
    char name[96], tst[32];
    la_crossover_name(x, kernels, draws, 0, name, sizeof name);
    if (x->status == LA_XO_FOUND) {
        la_fig_fmt_T(x->T_star, tst, sizeof tst);
        snprintf(buf, cap, "%s: T* = %s", name, tst);
    } else {
        la_fig_fmt_T(x->status == LA_XO_BELOW ? x->T_min : x->T_max, tst, sizeof tst);
        snprintf(buf, cap, "%s: T* %s %s", name, x->status == LA_XO_BELOW ? "<" : ">", tst);
    }
    if (x->n_cross > 1 || (x->n_cross == 1 && x->status != LA_XO_FOUND)) {
        size_t len = strlen(buf);
        snprintf(buf + len, cap - len, " (crosses at");
        for (int i = 0; i < x->n_cross && i < LA_XO_MAX_CROSS; i++) {
            la_fig_fmt_T(x->cross[i].T, tst, sizeof tst);
            len = strlen(buf);
            snprintf(buf + len, cap - len, "%s %s", i ? "," : "", tst);
        }
        len = strlen(buf);
        snprintf(buf + len, cap - len, "%s)", x->n_cross > LA_XO_MAX_CROSS ? ", ..." : "");
    }
}

/* Where a crossing's mark sits: on the linear curve at T, interpolated in log-log between the
 * grid points T_lo and T_hi. */
static double mark_y(const struct la_crossover *x, double T, double T_lo, double T_hi)
{
    double y = NAN;
    for (size_t j = 1; j < x->npoints; j++)
        if (x->pts[j - 1].T == T_lo) {
            double a = log(x->pts[j - 1].t_linear), b = log(x->pts[j].t_linear);
            double u = (log(T) - log(T_lo)) / (log(T_hi) - log(T_lo));
            y = exp(a + u * (b - a));
        }
    return y;
}

#define MAX_MAPS_PER_PANEL 16 /* maps whose variants get their own dashes */

int la_crossover_is_recurrence(const struct la_crossover *x)
{
    const struct attn_kernel *kn = attn_kernel_lookup(x->kernel);
    return kn && kn->update != ATTN_UPD_SUM;
}

int la_crossover_selection(const struct la_crossover *xo, size_t nxo, int recurrences)
{
    int plain = 0, recur = 0;
    for (size_t i = 0; i < nxo; i++) {
        if (la_crossover_is_recurrence(&xo[i]))
            recur = 1;
        else
            plain = 1;
    }
    if (plain && recur)
        return recurrences ? LA_XO_SELECT_RECUR : LA_XO_SELECT_PLAIN;
    return recurrences ? -1 : LA_XO_SELECT_ALL;
}

static int selected(const struct la_crossover *x, int select)
{
    return select == LA_XO_SELECT_ALL ||
           la_crossover_is_recurrence(x) == (select == LA_XO_SELECT_RECUR);
}

/* A series' colour key (style.gp's maprgb): its map, or for a recurrence its update rule
 * ("rec:delta"), whose forms and maps are then its variants. */
static void colour_key(const struct la_crossover *x, char *buf, size_t cap)
{
    if (la_crossover_is_recurrence(x))
        snprintf(buf, cap, "rec:%s", attn_update_name(attn_kernel_lookup(x->kernel)->update));
    else
        snprintf(buf, cap, "%s", x->map);
}

int la_crossover_figure(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                        size_t nxo, int forced, struct la_figure *fig, struct la_error *err)
{
    return la_crossover_figure_of(rows, n, xo, nxo, forced, LA_XO_SELECT_ALL, fig, err);
}

int la_crossover_figure_of(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                           size_t nxo, int forced, int select, struct la_figure *fig,
                           struct la_error *err)
{
    la_figure_init(fig);
    fig->legend_every_panel = 1;
    if (select < 0 || !la_crossover_fits(rows, n, xo, nxo, forced))
        return LA_OK;
    size_t np = 0, *first = malloc((nxo ? nxo : 1) * sizeof *first);
    if (!first)
        goto nomem;
    double ds[32];
    int nd = 0;
    for (size_t i = 0; i < nxo; i++) {
        if (!selected(&xo[i], select))
            continue;
        la_crossover_add_distinct(ds, &nd, 32, xo[i].d);
        size_t j;
        for (j = 0; j < np; j++)
            if (ctx_eq(&xo[first[j]], &xo[i]))
                break;
        if (j == np)
            first[np++] = i;
    }
    if (np == 0) {
        free(first);
        return LA_OK;
    }
    if (la_figure_panels(fig, np) != LA_OK)
        goto nomem;
    fig->fits = 1;
    snprintf(fig->stats, sizeof fig->stats,
             "points: median time over the timed repeats (median over cells at one T); bars: "
             "20th–80th percentiles of the repeats\nring: T* (linear faster from there on); "
             "cross: any other crossing");
    int kernels, draws;
    la_crossover_variety(xo, nxo, &kernels, &draws);
    for (size_t p = 0; p < np; p++) {
        const struct la_crossover *c0 = &xo[first[p]];
        struct la_fig_panel *m = &fig->panels[p];
        snprintf(m->title, sizeof m->title, "d = %d, %s", c0->d,
                 c0->causal ? "causal" : "non-causal");
        if (c0->threads != 1) {
            size_t len = strlen(m->title);
            snprintf(m->title + len, sizeof m->title - len, ", %d thread%s", c0->threads,
                     la_fig_plural(c0->threads));
        }
        if (c0->pass[0] && strcmp(c0->pass, "forward")) {
            size_t len = strlen(m->title);
            snprintf(m->title + len, sizeof m->title - len, ", %s", c0->pass);
        }
        snprintf(m->xlabel, sizeof m->xlabel, "sequence length T (tokens)");
        snprintf(m->ylabel, sizeof m->ylabel, "time per call, all heads (s)");
        m->first = fig->ncurves;
        struct la_fig_curve sc = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = 1};
        if (softmax_curve(rows, n, c0, &sc) != LA_OK)
            goto nomem;
        if (sc.npoints) {
            snprintf(sc.title, sizeof sc.title, "%s", c0->softmax);
            snprintf(sc.map, sizeof sc.map, "softmax");
            if (la_figure_add_curve(fig, &sc) != LA_OK)
                goto nomem;
        } else {
            free(sc.pts);
        }
        /* The linear series, each map's variants dashed in turn. */
        char seen[MAX_MAPS_PER_PANEL][LA_NAME_LEN];
        int nseen = 0, nvar[MAX_MAPS_PER_PANEL] = {0};
        for (size_t i = 0; i < nxo; i++) {
            const struct la_crossover *x = &xo[i];
            if (!ctx_eq(x, c0) || !selected(x, select))
                continue;
            struct la_fig_curve cv = {.kind = LA_CURVE_TIMING};
            if (la_fig_curve_alloc(&cv, x->npoints) != LA_OK)
                goto nomem;
            for (size_t j = 0; j < x->npoints; j++) {
                const struct la_xo_point *q = &x->pts[j];
                cv.pts[cv.npoints++] = (struct la_fig_point){.x = q->T,
                                                             .y = q->t_linear,
                                                             .lo = q->t_linear_p20,
                                                             .hi = q->t_linear_p80,
                                                             .n = 1,
                                                             .kernel = q->t_kernel,
                                                             .fm = q->t_fm};
            }
            series_title(x, kernels, draws, cv.title, sizeof cv.title);
            colour_key(x, cv.map, sizeof cv.map);
            int k;
            for (k = 0; k < nseen; k++)
                if (!strcmp(seen[k], cv.map))
                    break;
            if (k == nseen && nseen < MAX_MAPS_PER_PANEL)
                snprintf(seen[nseen++], LA_NAME_LEN, "%s", cv.map);
            int v = k < MAX_MAPS_PER_PANEL ? nvar[k]++ : 0;
            cv.dash = 1 + v % 3;
            cv.pt = 1 + v % 8;
            if (la_figure_add_curve(fig, &cv) != LA_OK)
                goto nomem;
        }
        /* A ring at each measured T*, a cross at every other crossing. */
        for (size_t i = 0; i < nxo; i++) {
            const struct la_crossover *x = &xo[i];
            if (!ctx_eq(x, c0) || !selected(x, select))
                continue;
            /* The stored crossings, and T* itself when it lies beyond them (n_cross larger
             * than LA_XO_MAX_CROSS). */
            const int nc = x->n_cross < LA_XO_MAX_CROSS ? x->n_cross : LA_XO_MAX_CROSS;
            const int extra = x->status == LA_XO_FOUND && x->n_cross > LA_XO_MAX_CROSS;
            for (int j = 0; j < nc + extra; j++) {
                const struct la_xo_cross q =
                    j < nc ? x->cross[j]
                           : (struct la_xo_cross){x->T_star, x->T_lo, x->T_hi, 1};
                const int star = x->status == LA_XO_FOUND && q.T_lo == x->T_lo;
                struct la_fig_curve rc = {.kind = LA_CURVE_POINTS, .dash = 1, .pt = star ? -1 : -2};
                if (la_fig_curve_alloc(&rc, 1) != LA_OK)
                    goto nomem;
                double y = mark_y(x, q.T, q.T_lo, q.T_hi);
                rc.pts[rc.npoints++] =
                    (struct la_fig_point){.x = q.T, .y = y, .lo = y, .hi = y, .n = 1};
                colour_key(x, rc.map, sizeof rc.map);
                if (la_figure_add_curve(fig, &rc) != LA_OK)
                    goto nomem;
            }
        }
        m->count = fig->ncurves - m->first;
    }
    fig->ncols = nd ? nd : 1;
    fig->nrows = (int)((np + (size_t)fig->ncols - 1) / (size_t)fig->ncols);
    free(first);
    return LA_OK;
nomem:
    free(first);
    la_figure_free(fig);
    return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
}
