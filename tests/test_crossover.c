/* test_crossover.c — the crossover computation (harness/figures/crossover.c) on synthetic timing rows.
 * Times follow exact power laws (softmax a·T², linear b·T), which are straight lines on a
 * log-log plot, so the log-log interpolation must recover their crossing T* = b/a exactly, even
 * between grid points.  Also: no crossing (beyond range), linear faster everywhere (below
 * range), medians over trials, failed and untimed rows ignored, contexts kept apart (training
 * passes among them), the flop model's numbers, and the printed table.
 * Run: make build/tests/test_crossover && build/tests/test_crossover
 */
#include "testutil.h"

#include "../harness/figures/crossover.h"

#define NT 6 /* T = 128 … 4096 */

static struct la_row base_row(const char *kernel, const char *map, int m, int d, int causal, int T)
{
    struct la_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", kernel);
    snprintf(r.map, sizeof r.map, "%s", map);
    snprintf(r.draw, sizeof r.draw, "%s", strcmp(map, "prf") ? "-" : "iid");
    snprintf(r.data, sizeof r.data, "gaussian");
    r.m = m;
    r.d = d;
    r.dv = d;
    r.causal = causal;
    r.T = T;
    r.batch = 1;
    r.heads = 2;
    r.threads = 1;
    r.A = NAN;
    r.status = LA_ROW_OK;
    r.time_median_s = NAN;
    r.fm_time_median_s = NAN;
    return r;
}

/* Appends softmax (a·T²) and linear (kernel b·T, feature map c·T) rows over T = 128 … 4096. */
static size_t add_series(struct la_row *rows, size_t n, const char *lk, const char *map, int m,
                         int d, int causal, double a, double b, double c)
{
    for (int i = 0; i < NT; i++) {
        int T = 128 << i;
        struct la_row s = base_row("softmax_flash", "none", 0, d, causal, T);
        s.time_median_s = a * T * (double)T;
        s.fm_time_median_s = 0;
        struct la_row l = base_row(lk, map, m, d, causal, T);
        l.time_median_s = b * T;
        l.fm_time_median_s = c * T;
        rows[n++] = s;
        rows[n++] = l;
    }
    return n;
}

static const struct la_crossover *find(const struct la_crossover *xo, size_t n, const char *map,
                                       int d, int causal)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(xo[i].map, map) && xo[i].d == d && xo[i].causal == causal)
            return &xo[i];
    return NULL;
}

static void test_interp_exact(void **state)
{
    (void)state;
    /* soft = 1e-9 T², lin = 5e-7 T cross at T = 500 (between 256 and 512). */
    double T =
        la_crossover_interp(256, 5e-7 * 256, 1e-9 * 256 * 256, 512, 5e-7 * 512, 1e-9 * 512 * 512);
    assert_true(fabs(T - 500) < 1e-9 * 500);
    /* Same sign on both sides: no zero. */
    assert_true(isnan(la_crossover_interp(256, 2, 1, 512, 3, 1)));
    assert_true(isnan(la_crossover_interp(256, 0.5, 1, 512, 0.25, 1)));
    /* Non-positive input. */
    assert_true(isnan(la_crossover_interp(256, -1, 1, 512, 0.5, 1)));
    /* Exactly equal at the first point: T* is that point. */
    assert_true(la_crossover_interp(256, 1, 1, 512, 0.5, 1) == 256);
}

static void test_found_below_above(void **state)
{
    (void)state;
    struct la_row rows[200];
    size_t n = 0;
    /* d = 64 non-causal: crossing at T* = (b + c)/a = 5e-7/1e-9 = 500. */
    n = add_series(rows, n, "linear_noncausal", "elu1", 64, 64, 0, 1e-9, 4e-7, 1e-7);
    /* d = 32 non-causal: never faster (ratio 244 at T = 4096). */
    n = add_series(rows, n, "linear_noncausal", "prf", 256, 32, 0, 1e-9, 0.9e-3, 0.1e-3);
    /* d = 64 causal: faster everywhere. */
    n = add_series(rows, n, "linear_causal", "elu1", 64, 64, 1, 1e-9, 1e-12, 0);

    struct la_crossover *xo = NULL;
    size_t nx = 0;
    struct la_error err;
    la_error_clear(&err);
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, &err), LA_OK);
    assert_int_equal(nx, 3);

    const struct la_crossover *f = find(xo, nx, "elu1", 64, 0);
    assert_non_null(f);
    assert_int_equal(f->status, LA_XO_FOUND);
    assert_int_equal(f->npoints, NT);
    assert_true(fabs(f->T_star - 500) < 1e-9 * 500);
    assert_true(f->T_lo == 256 && f->T_hi == 512);
    assert_int_equal(f->n_cross, 1);
    assert_true(f->T_min == 128 && f->T_max == 4096);
    /* Exact power laws: the rate model recovers the same T*. */
    assert_true(fabs(f->T_model - 500) < 1e-9 * 500);
    /* Flops: (4·64·64 + 4·64 + 2·4·64) / (4·64) = 67 (elu1: 4 flops per feature, Q and K). */
    assert_true(fabs(f->T_flops - 67) < 1e-12);
    /* The points carry the parts. */
    assert_true(fabs(f->pts[0].t_kernel - 4e-7 * 128) < 1e-18);
    assert_true(fabs(f->pts[0].t_fm - 1e-7 * 128) < 1e-18);

    const struct la_crossover *ab = find(xo, nx, "prf", 32, 0);
    assert_non_null(ab);
    assert_int_equal(ab->status, LA_XO_ABOVE);
    assert_true(isnan(ab->T_star));
    assert_int_equal(ab->n_cross, 0);
    assert_true(fabs(ab->ratio_max - 1e-3 / (1e-9 * 4096)) < 1e-9 * ab->ratio_max);
    assert_true(ab->T_model > 4096);
    /* prf flops: (4·256·32 + 4·256 + 2·(2·32·256 + 2·32 + 5·256)) / (4·32) = 69248/128 = 541. */
    assert_true(fabs(ab->T_flops - 541) < 1e-9);

    const struct la_crossover *be = find(xo, nx, "elu1", 64, 1);
    assert_non_null(be);
    assert_int_equal(be->status, LA_XO_BELOW);
    assert_true(isnan(be->T_star));
    /* Causal softmax is half the flops: the flop crossover doubles. */
    assert_true(fabs(be->T_flops - 134) < 1e-12);

    char buf[32];
    assert_string_equal(la_crossover_star_text(f, buf, sizeof buf), "500");
    assert_string_equal(la_crossover_star_text(ab, buf, sizeof buf), "> 4096");
    assert_string_equal(la_crossover_star_text(be, buf, sizeof buf), "< 128");
    la_crossover_free(xo);
}

/* Trials are reduced to their median; failed and untimed rows do not count. */
static void test_medians_and_filters(void **state)
{
    (void)state;
    struct la_row rows[200];
    size_t n = add_series(rows, 0, "linear_noncausal", "elu1", 64, 64, 0, 1e-9, 4e-7, 1e-7);
    /* At T = 512 add two more trials of the linear row: values 10x and 0.1x ... the median of
     * {x, 10x, 0.2x} is x, so T* stays 500. */
    struct la_row extra = base_row("linear_noncausal", "elu1", 64, 64, 0, 512);
    extra.time_median_s = 10 * 4e-7 * 512;
    extra.fm_time_median_s = 10 * 1e-7 * 512;
    rows[n++] = extra;
    extra.time_median_s = 0.2 * 4e-7 * 512;
    extra.fm_time_median_s = 0.2 * 1e-7 * 512;
    rows[n++] = extra;
    /* A failed row that would move the crossing, and an untimed one. */
    struct la_row bad = base_row("linear_noncausal", "elu1", 64, 64, 0, 256);
    bad.time_median_s = 1e-12;
    bad.status = LA_ROW_FAILED;
    rows[n++] = bad;
    struct la_row untimed = base_row("softmax_flash", "none", 0, 64, 0, 256);
    rows[n++] = untimed;
    /* A linear series with a different thread count has no softmax partner: no crossover. */
    struct la_row lone = base_row("linear_noncausal", "elu1", 64, 64, 0, 256);
    lone.threads = 2;
    lone.time_median_s = 1e-6;
    rows[n++] = lone;

    struct la_crossover *xo = NULL;
    size_t nx = 0;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, NULL), LA_OK);
    assert_int_equal(nx, 1);
    assert_int_equal(xo[0].status, LA_XO_FOUND);
    assert_true(fabs(xo[0].T_star - 500) < 1e-9 * 500);
    assert_int_equal(xo[0].threads, 1);
    la_crossover_free(xo);
}

/* Times at T = 128 … 4096 given as the ratio t_linear / t_softmax at each grid point. */
static size_t add_ratios(struct la_row *rows, const double *ratio)
{
    size_t n = add_series(rows, 0, "linear_noncausal", "elu1", 64, 64, 0, 1e-9, 4e-7, 0);
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].kernel, "softmax_flash") != 0) {
            int g = 0;
            while ((128 << g) != rows[i].T)
                g++;
            rows[i].time_median_s = ratio[g] * 1e-9 * rows[i].T * (double)rows[i].T;
        }
    return n;
}

/* Curves that cross more than once: every crossing is kept, and T* is the one after which linear
 * stays faster.  Interpolation of log(ratio) in log T: the crossing between T0 and 2·T0 with
 * ratios r0, r1 lies at T0 · 2^(log r0 / (log r0 − log r1)). */
static void test_crosses_back(void **state)
{
    (void)state;
    struct la_row rows[64];
    struct la_crossover *xo = NULL;
    size_t nx = 0;
    char buf[160];

    /* Faster at 128, slower at 256 … 1024, faster from 2048: T* is the second crossing, not
     * "< 128". */
    const double a[NT] = {0.5, 2, 2, 2, 0.5, 0.5};
    size_t n = add_ratios(rows, a);
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, NULL), LA_OK);
    assert_int_equal(nx, 1);
    assert_int_equal(xo[0].n_cross, 2);
    assert_true(fabs(xo[0].cross[0].T - 128 * sqrt(2)) < 1e-9 * 181);
    assert_int_equal(xo[0].cross[0].to_linear, 0);
    assert_true(fabs(xo[0].cross[1].T - 1024 * sqrt(2)) < 1e-9 * 1448);
    assert_int_equal(xo[0].cross[1].to_linear, 1);
    assert_int_equal(xo[0].status, LA_XO_FOUND);
    assert_true(fabs(xo[0].T_star - 1024 * sqrt(2)) < 1e-9 * 1448);
    assert_true(xo[0].T_lo == 1024 && xo[0].T_hi == 2048);
    assert_string_equal(la_crossover_cross_text(&xo[0], buf, sizeof buf), "181-,1448+");
    la_crossover_free(xo);

    /* Faster from between 256 and 512, slower again at 4096: no crossing after which linear
     * stays faster within the range (not T* = the first crossing). */
    const double b[NT] = {4, 2, 0.5, 0.5, 0.5, 2};
    n = add_ratios(rows, b);
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, NULL), LA_OK);
    assert_int_equal(nx, 1);
    assert_int_equal(xo[0].n_cross, 2);
    assert_true(fabs(xo[0].cross[0].T - 256 * sqrt(2)) < 1e-9 * 362);
    assert_int_equal(xo[0].cross[0].to_linear, 1);
    assert_true(fabs(xo[0].cross[1].T - 2048 * sqrt(2)) < 1e-9 * 2896);
    assert_int_equal(xo[0].cross[1].to_linear, 0);
    assert_int_equal(xo[0].status, LA_XO_ABOVE);
    assert_true(isnan(xo[0].T_star));
    assert_string_equal(la_crossover_star_text(&xo[0], buf, sizeof buf), "> 4096");
    assert_string_equal(la_crossover_cross_text(&xo[0], buf, sizeof buf), "362+,2896-");
    la_crossover_free(xo);

    /* One crossing is T* itself; none: "-". */
    n = add_series(rows, 0, "linear_noncausal", "elu1", 64, 64, 0, 1e-9, 4e-7, 1e-7);
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, NULL), LA_OK);
    assert_int_equal(xo[0].n_cross, 1);
    assert_true(fabs(xo[0].cross[0].T - 500) < 1e-9 * 500);
    assert_true(xo[0].T_star == xo[0].cross[0].T);
    assert_string_equal(la_crossover_A_text(&xo[0], buf, sizeof buf), "-");
    la_crossover_free(xo);
    const double c[NT] = {0.5, 0.5, 0.5, 0.5, 0.5, 0.5};
    n = add_ratios(rows, c);
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, NULL), LA_OK);
    assert_int_equal(xo[0].status, LA_XO_BELOW);
    assert_string_equal(la_crossover_cross_text(&xo[0], buf, sizeof buf), "-");
    la_crossover_free(xo);
}

static void test_no_pairs_and_print(void **state)
{
    (void)state;
    struct la_row rows[64];
    struct la_crossover *xo = (struct la_crossover *)1;
    size_t nx = 7;
    /* Nothing at all, and error-only rows (no timing). */
    assert_int_equal(la_crossover_compute(NULL, 0, &xo, &nx, NULL), LA_OK);
    assert_null(xo);
    assert_int_equal(nx, 0);
    rows[0] = base_row("linear_noncausal", "prf", 64, 64, 0, 1024);
    rows[0].err_rel_fro = 0.0123;
    char buf[4096] = "";
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    assert_int_equal(la_crossover_print(rows, 1, f), 0);
    fclose(f);
    assert_string_equal(buf, "");

    size_t n = add_series(rows, 0, "linear_noncausal", "elu1", 64, 64, 0, 1e-9, 4e-7, 1e-7);
    f = fmemopen(buf, sizeof buf, "w");
    assert_non_null(f);
    assert_int_equal(la_crossover_print(rows, n, f), 1);
    fclose(f);
    assert_non_null(strstr(buf, "crossover T*"));
    assert_non_null(strstr(buf, "elu1"));
    assert_non_null(strstr(buf, " 500 "));
    assert_non_null(strstr(buf, "non-causal"));
}

/* Feature-map flops per token: one query row and one key row through the map's nominal flop
 * model (featuremap.h; derived per map in tests/test_featuremaps.c); NaN for an unknown map. */
static void test_fm_flops(void **state)
{
    (void)state;
    /* prf, gerf: m draws, 2·(2·d·m + 2·d + 5·m), gerf one offset add more per feature. */
    assert_true(la_crossover_fm_flops_per_token("prf", 64, 32) == 2.0 * (4096 + 64 + 320));
    assert_true(la_crossover_fm_flops_per_token("gerf", 64, 32) == 2.0 * (4096 + 64 + 384));
    /* rff and hyp: m outputs from m/2 draws, 2·(d·m + 2·d + 2·m) and 2·(d·m + 2·d + 5·m). */
    assert_true(la_crossover_fm_flops_per_token("rff", 128, 32) == 2.0 * (4096 + 64 + 256));
    assert_true(la_crossover_fm_flops_per_token("hyp", 128, 32) == 2.0 * (4096 + 64 + 640));
    /* elementwise: 4 flops per feature (elu1), 2 (relu); taylor2: d(d+5)/2 per row. */
    assert_true(la_crossover_fm_flops_per_token("elu1", 32, 32) == 256.0);
    assert_true(la_crossover_fm_flops_per_token("relu", 32, 32) == 128.0);
    assert_true(la_crossover_fm_flops_per_token("taylor2", 561, 32) == 1184.0);
    assert_true(isnan(la_crossover_fm_flops_per_token("map_from_a_newer_build", 64, 32)));
    assert_true(isnan(la_crossover_flop_T("linear_noncausal", "softmax_flash",
                                          "map_from_a_newer_build", 64, 32, 48, 0)));
}

/* The flop T* from the kernels' flop models: linear per token (kernel + map) over softmax per
 * token²; a kernel name this build does not know counts as the table's kernel of its kind. */
static void test_flop_T(void **state)
{
    (void)state;
    const double m = 64, d = 32, dv = 48;
    const double lin = 4.0 * m * dv + 4.0 * m + 2.0 * 4.0 * m; /* linear kernel + elu1 */
    const double soft = 2.0 * (d + dv);                  /* 4·T²·(d + dv)/2 at T = 1 */
    const double want = lin / soft;
    assert_true(fabs(la_crossover_flop_T("linear_noncausal", "softmax_flash", "elu1", 64, 32, 48,
                                         0) - want) <= 1e-12 * want);
    assert_true(fabs(la_crossover_flop_T("linear_causal_chunked", "softmax_flash", "elu1", 64, 32,
                                         48, 1) - 2.0 * want) <= 1e-12 * want);
    assert_true(la_crossover_flop_T("linear_from_a_newer_build", "softmax_from_a_newer_build",
                                    "elu1", 64, 32, 48, 0) ==
                la_crossover_flop_T("linear_noncausal", "softmax_flash", "elu1", 64, 32, 48, 0));
    assert_true(la_crossover_flop_T("linear_from_a_newer_build", "softmax_from_a_newer_build",
                                    "elu1", 64, 32, 48, 1) ==
                la_crossover_flop_T("linear_causal", "softmax_flash", "elu1", 64, 32, 48, 1));
}

/* Training passes (pass column) are series of their own, compared with softmax's rows of the same
 * pass; their flop T* counts the backward kernels and the map's backward; the table gets a pass
 * column only when some row is a training pass. */
static void test_passes_apart(void **state)
{
    (void)state;
    struct la_row rows[8 * NT];
    size_t n = add_series(rows, 0, "linear_causal", "prf", 64, 64, 1, 1e-9, 4e-7, 1e-7);
    const size_t nf = n;
    n = add_series(rows, n, "linear_causal", "prf", 64, 64, 1, 3e-9, 8e-7, 2e-7);
    for (size_t i = 0; i < n; i++)
        snprintf(rows[i].pass, sizeof rows[i].pass, "%s", i < nf ? "forward" : "forward+backward");
    struct la_crossover *xo = NULL;
    size_t nx = 0;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, &err), LA_OK);
    assert_int_equal(nx, 2);
    /* Sorted with the training step next to the forward pass. */
    assert_string_equal(xo[0].pass, "forward");
    assert_string_equal(xo[1].pass, "forward+backward");
    /* soft = a·T², lin = (b + c)·T cross at (b + c)/a: 500 and 1000/3. */
    assert_true(fabs(xo[0].T_star - 500.0) < 1e-6 * 500.0);
    assert_true(fabs(xo[1].T_star - 1000.0 / 3.0) < 1e-6 * 1000.0);
    /* The forward flop T* is the forward models'; the training one differs (backward models
     * and the map's backward). */
    assert_true(fabs(xo[0].T_flops - la_crossover_flop_T("linear_causal", "softmax_flash", "prf",
                                                         64, 64, 64, 1)) < 1e-9);
    assert_true(isfinite(xo[1].T_flops) && xo[1].T_flops > 0 && xo[1].T_flops != xo[0].T_flops);
    la_crossover_free(xo);

    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_int_equal(la_crossover_print(rows, n, f), 2);
    fclose(f);
    assert_non_null(strstr(buf, "lin/soft@max  pass "));
    assert_non_null(strstr(buf, "  forward+backward"));
    f = fmemopen(buf, sizeof buf, "w");
    assert_int_equal(la_crossover_print(rows, nf, f), 1);
    fclose(f);
    assert_null(strstr(buf, "pass")); /* forward rows only: the table as before */

    /* The figure: a panel per pass, each with softmax's rows of its own pass (a·T², with a =
     * 1e-9 forward and 3e-9 for the training step). */
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, &err), LA_OK);
    struct la_figure fig;
    assert_int_equal(la_crossover_figure(rows, n, xo, nx, 1, &fig, &err), LA_OK);
    assert_int_equal(fig.npanels, 2);
    for (size_t p = 0; p < 2; p++) {
        const double a = p ? 3e-9 : 1e-9;
        int seen = 0;
        for (size_t c = fig.panels[p].first; c < fig.panels[p].first + fig.panels[p].count; c++) {
            const struct la_fig_curve *cv = &fig.curves[c];
            if (strcmp(cv->map, "softmax"))
                continue;
            seen = 1;
            assert_int_equal(cv->npoints, NT);
            for (size_t j = 0; j < cv->npoints; j++)
                assert_true(fabs(cv->pts[j].y - a * cv->pts[j].x * cv->pts[j].x) <=
                            1e-9 * cv->pts[j].y);
        }
        assert_true(seen);
    }
    la_figure_free(&fig);
    la_crossover_free(xo);
}

/* The recurrences in the crossover (experiments/crossover.yaml): one series per kernel with the
 * same map, each against softmax, with its T* from its own times and its flop T* from its
 * rule's model (delta 6·m·dv + 2·dv per token, decay and gated 5·m·dv + 4·m); and one series
 * per value of a swept gate. */
static void test_recurrences_apart(void **state)
{
    (void)state;
    static const char *const kernels[] = {"linear_causal", "linear_delta_recurrent",
                                          "linear_decay_recurrent", "linear_gated_recurrent"};
    struct la_row rows[8 * NT];
    size_t n = 0;
    for (int i = 0; i < 4; i++)
        n = add_series(rows, n, kernels[i], "elu1", 32, 32, 1, 1e-9, (2 + i) * 1e-7, 1e-7);
    struct la_crossover *xo = NULL;
    size_t nx = 0;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, &err), LA_OK);
    assert_int_equal(nx, 4);
    const double m = 32, dv = 32, fm = 2.0 * 4.0 * m, soft = 2.0 * (32 + dv) / 2.0;
    for (int i = 0; i < 4; i++) {
        const struct la_crossover *x = NULL;
        for (size_t j = 0; j < nx; j++)
            if (!strcmp(xo[j].kernel, kernels[i]))
                x = &xo[j];
        assert_non_null(x);
        /* soft = a·T², lin = (b + c)·T cross at (b + c)/a = (3 + i)·100. */
        assert_true(fabs(x->T_star - (3 + i) * 100.0) < 1e-6 * 100.0);
        const double lin = i == 0   ? 4.0 * m * dv + 4.0 * m
                           : i == 1 ? 6.0 * m * dv + 2.0 * dv
                                    : 5.0 * m * dv + 4.0 * m;
        assert_true(fabs(x->T_flops - (lin + fm) / soft) < 1e-9 * x->T_flops);
        assert_string_equal(x->rule, ""); /* one series per kernel: nothing to tell apart */
    }
    la_crossover_free(xo);

    /* A sweep over γ: one series per value, told apart by "γ=…" in the legend and table. */
    n = add_series(rows, 0, "linear_decay_recurrent", "elu1", 32, 32, 1, 1e-9, 2e-7, 1e-7);
    const size_t n1 = n;
    n = add_series(rows, n, "linear_decay_recurrent", "elu1", 32, 32, 1, 1e-9, 4e-7, 1e-7);
    for (size_t i = 0; i < n; i++)
        rows[i].gamma = i < n1 ? 0.9 : 0.99;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nx, &err), LA_OK);
    assert_int_equal(nx, 2);
    assert_string_equal(xo[0].rule, "γ=0.9");
    assert_string_equal(xo[1].rule, "γ=0.99");
    assert_true(fabs(xo[0].T_star - 300.0) < 1e-6 * 300.0);
    assert_true(fabs(xo[1].T_star - 500.0) < 1e-6 * 500.0);
    char name[96];
    la_crossover_name(&xo[1], 0, 0, 0, name, sizeof name);
    assert_string_equal(name, "elu1 γ=0.99");
    la_crossover_free(xo);
    char buf[4096];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    assert_int_equal(la_crossover_print(rows, n, f), 2);
    fclose(f);
    assert_non_null(strstr(buf, "linear_decay_recurrent γ=0.99   1 "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_interp_exact),        cmocka_unit_test(test_found_below_above),
        cmocka_unit_test(test_medians_and_filters), cmocka_unit_test(test_crosses_back),
        cmocka_unit_test(test_no_pairs_and_print),  cmocka_unit_test(test_fm_flops),
        cmocka_unit_test(test_flop_T),              cmocka_unit_test(test_passes_apart),
        cmocka_unit_test(test_recurrences_apart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
