/* test_decode_figures.c — the decode figures' preparation on synthetic step rows
 * (harness/figures/decode.c): series (grouping, order, the median of trials), the step time
 * interpolated in t, the generation sums, the measured crossover t* and its status, the models'
 * crossover, the first N of a 100× speedup, and the latency, speedup and memory figures.  Values
 * are exact: the softmax step time is b·t and a linear one a constant c, so the crossover is
 * c/b (log-log interpolation is exact for a power law), a generation sum is b·Σt against c·N,
 * and the speedup after a prompt of P is b·(P + (N+1)/2)/c.
 * Not here: files and gnuplot (tests/decode_e2e.sh), the runner's decode cells
 * (tests/test_runner.c).
 * Run: make build/tests/test_decode_figures && build/tests/test_decode_figures
 */
#include "testutil.h"

#include "../featuremaps/featuremap.h"
#include "../harness/figures/decode.h"
#include "../harness/figures/figure.h"
#include "../harness/store/results.h"
#include "../kernels/attention.h"

#define B_SLOPE 1e-8 /* softmax: seconds per step per token of context */

/* A step row: kernel with map (softmax_step: "none"), context T, batch B, median time t. */
static struct la_row steprow(const char *kernel, const char *map, int m, int T, int B, double t)
{
    struct la_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", kernel);
    snprintf(r.map, sizeof r.map, "%s", map);
    snprintf(r.draw, sizeof r.draw, "%s", strcmp(map, "prf") ? "-" : "iid");
    snprintf(r.data, sizeof r.data, "gaussian");
    r.m = m;
    r.A = NAN;
    r.causal = 1;
    r.T = T;
    r.d = r.dv = 64;
    r.batch = B;
    r.heads = 1;
    r.threads = 1;
    r.sigma = 1.0;
    r.head = -1;
    r.status = LA_ROW_OK;
    r.repeats = 5;
    r.time_median_s = t;
    r.time_p20_s = 0.9 * t;
    r.time_p80_s = 1.2 * t;
    const struct attn_kernel *kn = attn_kernel_lookup(kernel);
    r.state_bytes = (double)B * sizeof(float) *
                    (double)attn_state_floats(kn, T, strcmp(map, "none") ? m : 64, 64);
    return r;
}

/* softmax_step at b·t, elu1 at 300·b (t* = 300), prf at 2·b (cheaper from the start), relu at
 * 5000·b (never cheaper up to 1024), at T = 64 … 1024; plus rows the figures must skip. */
static size_t make_rows(struct la_row *rows)
{
    size_t n = 0;
    for (int T = 64; T <= 1024; T *= 2) {
        rows[n++] = steprow("softmax_step", "none", 0, T, 1, B_SLOPE * T);
        rows[n++] = steprow("linear_step", "elu1", 64, T, 1, 300 * B_SLOPE);
        rows[n++] = steprow("linear_step", "prf", 256, T, 1, 2 * B_SLOPE);
        rows[n++] = steprow("linear_step", "relu", 64, T, 1, 5000 * B_SLOPE);
    }
    /* Two more trials of elu1 at T = 256: the median of 300b, 100b and 900b is 300b. */
    rows[n++] = steprow("linear_step", "elu1", 64, 256, 1, 100 * B_SLOPE);
    rows[n++] = steprow("linear_step", "elu1", 64, 256, 1, 900 * B_SLOPE);
    /* Skipped: a failed step row, an untimed one, a forward row. */
    rows[n] = steprow("linear_step", "elu1", 64, 2048, 1, 1.0);
    rows[n++].status = LA_ROW_FAILED;
    rows[n++] = steprow("linear_step", "elu1", 64, 4096, 1, NAN);
    rows[n] = steprow("linear_causal", "elu1", 64, 8192, 1, 1.0);
    rows[n++].state_bytes = 0.0;
    return n;
}

static void test_series(void **state)
{
    (void)state;
    struct la_row rows[64];
    const size_t n = make_rows(rows);
    assert_true(la_row_is_step(&rows[0]) && !la_row_is_step(&rows[n - 1]));
    struct la_decode_series *s;
    size_t ns;
    struct la_error err;
    assert_int_equal(la_decode_series(rows, n, &s, &ns, &err), LA_OK);
    assert_int_equal((int)ns, 4);
    assert_string_equal(s[0].kernel, "softmax_step");
    assert_true(s[0].softmax && !s[1].softmax);
    assert_string_equal(s[1].map, "elu1");
    assert_string_equal(s[2].map, "prf");
    assert_int_equal(s[2].m, 256);
    for (size_t i = 0; i < ns; i++) {
        assert_int_equal(s[i].npoints, 5);
        for (int k = 0; k < 5; k++)
            assert_true(s[i].T[k] == 64 << k);
    }
    assert_true(s[1].step[2] == 300 * B_SLOPE);
    assert_int_equal((int)s[1].rows[2], 3);
    assert_true(s[1].lo[2] == 0.9 * (100 * B_SLOPE) && s[1].hi[2] == 1.2 * (900 * B_SLOPE));
    assert_true(s[0].state[4] == 4.0 * 1024 * 128); /* the KV cache of 1024 tokens */
    assert_true(s[1].state[0] == s[1].state[4]);    /* a linear state has one size */

    /* Interpolated linearly in t: exact for b·t; undefined outside the measured range. */
    assert_true(fabs(la_decode_step_at(&s[0], 100.0) - B_SLOPE * 100.0) < 1e-20);
    assert_true(fabs(la_decode_step_at(&s[0], 1000.0) - B_SLOPE * 1000.0) < 1e-20);
    assert_true(la_decode_step_at(&s[0], 1024.0) == B_SLOPE * 1024.0);
    assert_true(isnan(la_decode_step_at(&s[0], 63.0)) && isnan(la_decode_step_at(&s[0], 1025.0)));
    /* G(P, N) = b·Σ_{t=P+1}^{P+N} t. */
    const long P = 100, N = 500;
    const double want = B_SLOPE * (double)(N * P + N * (N + 1) / 2);
    assert_true(fabs(la_decode_generation(&s[0], P, N) - want) < 1e-12 * want);
    assert_true(fabs(la_decode_generation(&s[1], P, N) - 300 * B_SLOPE * N) < 1e-12);
    assert_true(isnan(la_decode_generation(&s[0], 1000, 100)));
    free(s);
}

/* The smallest t at which softmax_step's model reaches linear_step's plus the map's, by a
 * plain scan (decode.c searches). */
static double scan_cross(const char *map, int m, int bytes)
{
    const struct attn_kernel *sk = attn_kernel_lookup("softmax_step");
    const struct attn_kernel *lk = attn_kernel_lookup("linear_step");
    struct la_error err;
    const struct featuremap_type *t = featuremap_lookup(map, &err);
    const double lin =
        (bytes ? attn_nominal_bytes_at(lk, 1, 0, m, 64, 1)
               : attn_nominal_flops_at(lk, 1, 0, m, 64, 1)) +
        (bytes ? featuremap_nominal_bytes(t, 2, 64, m) : featuremap_nominal_flops(t, 2, 64, m));
    for (int x = 1; x < 1 << 24; x++)
        if ((bytes ? attn_nominal_bytes_at(sk, 1, x - 1, 64, 64, 1)
                   : attn_nominal_flops_at(sk, 1, x - 1, 64, 64, 1)) >= lin)
            return x;
    return NAN;
}

static void test_pairs(void **state)
{
    (void)state;
    struct la_row rows[64];
    const size_t n = make_rows(rows);
    struct la_decode_series *s;
    struct la_decode_pair *p;
    size_t ns, np;
    struct la_error err;
    assert_int_equal(la_decode_series(rows, n, &s, &ns, &err), LA_OK);
    assert_int_equal(la_decode_pairs(s, ns, &p, &np, &err), LA_OK);
    assert_int_equal((int)np, 3);
    /* elu1: crosses at 300, between the measured 256 and 512. */
    assert_int_equal((int)p[0].lin, 1);
    assert_int_equal((int)p[0].soft, 0);
    assert_int_equal(p[0].status, LA_DECODE_FOUND);
    assert_true(fabs(p[0].t_star - 300.0) < 1e-9 * 300.0);
    assert_true(p[0].t_lo == 256 && p[0].t_hi == 512);
    assert_string_equal(la_decode_status_name(p[0].status), "found");
    /* prf: cheaper from the first context; relu: never within it. */
    assert_int_equal(p[1].status, LA_DECODE_BELOW);
    assert_true(p[1].t_star == 64);
    assert_int_equal(p[2].status, LA_DECODE_BEYOND);
    assert_true(isnan(p[2].t_star));
    /* The models' crossover. */
    assert_true(p[0].t_flops == scan_cross("elu1", 64, 0));
    assert_true(p[0].t_bytes == scan_cross("elu1", 64, 1));
    assert_true(p[1].t_flops == scan_cross("prf", 256, 0));
    assert_true(p[1].t_flops > p[0].t_flops); /* m = 256 and its map cost more per step */
    /* Generation after P = 64, N up to 960: prf's speedup is (64 + (N+1)/2)/2, 100× first at
     * N = 271; 1000× is not reached. */
    assert_int_equal((int)p[1].P, 64);
    assert_int_equal((int)p[1].n_max, 960);
    assert_true(p[1].n_100 == 271.0);
    assert_true(isnan(p[1].n_1000));
    assert_true(fabs(p[1].speedup_max - (64 + 961 / 2.0) / 2) < 1e-9 * p[1].speedup_max);
    free(p);
    free(s);
}

static void test_figures(void **state)
{
    (void)state;
    struct la_row rows[64];
    const size_t n = make_rows(rows);
    struct la_decode_series *s;
    struct la_decode_pair *p;
    size_t ns, np;
    struct la_error err;
    assert_int_equal(la_decode_series(rows, n, &s, &ns, &err), LA_OK);
    assert_int_equal(la_decode_pairs(s, ns, &p, &np, &err), LA_OK);

    struct la_figure f;
    assert_int_equal(la_decode_latency_figure(s, ns, 0, &f, &err), LA_OK);
    assert_true(f.fits);
    assert_int_equal((int)f.npanels, 1);
    assert_string_equal(f.panels[0].title, "d=64, B=1, 1 head, 1 thread");
    assert_int_equal((int)f.ncurves, 4);
    assert_string_equal(f.curves[0].title, "softmax_step");
    assert_string_equal(f.curves[0].map, "softmax");
    assert_string_equal(f.curves[2].title, "prf m=256");
    assert_int_equal((int)f.curves[1].npoints, 5);
    assert_true(f.curves[0].pts[4].x == 1024 && f.curves[0].pts[4].y == B_SLOPE * 1024);
    assert_true(f.curves[1].pts[2].lo == 0.9 * (100 * B_SLOPE));
    assert_non_null(strstr(f.stats, "points: median step time")); /* says what it draws */
    la_figure_free(&f);

    assert_int_equal(la_decode_memory_figure(s, ns, 0, &f, &err), LA_OK);
    assert_true(f.fits);
    assert_int_equal((int)f.ncurves, 4);
    assert_true(f.curves[0].pts[0].y == 4.0 * 64 * 128);
    assert_true(f.curves[2].pts[0].y == 4.0 * (256 * 64 + 256));
    assert_non_null(strstr(f.stats, "no bars"));
    la_figure_free(&f);

    /* Speedup: a curve per linear series at N = 1, 2, …, 512 and 960, then 100× and 1000×. */
    assert_int_equal(la_decode_speedup_figure(s, ns, p, np, &f, &err), LA_OK);
    assert_true(f.fits);
    assert_int_equal((int)f.ncurves, 5);
    assert_string_equal(f.panels[0].title, "d=64, B=1, 1 head, 1 thread, prompt P=64");
    assert_non_null(strstr(f.stats, "softmax / linear time"));
    const struct la_fig_curve *c = &f.curves[1];
    assert_string_equal(c->title, "prf m=256");
    assert_int_equal((int)c->npoints, 11);
    assert_true(c->pts[10].x == 960);
    for (size_t k = 0; k < c->npoints; k++) {
        const double N = c->pts[k].x, want = (64 + (N + 1) / 2) / 2;
        assert_true(fabs(c->pts[k].y - want) < 1e-9 * want);
    }
    assert_string_equal(f.curves[3].title, "100×");
    assert_true(f.curves[4].pts[0].y == 1000 && f.curves[4].dash == 4);
    la_figure_free(&f);

    /* Without a softmax series there is no pair and no speedup figure; with one context per
     * series no latency figure unless forced. */
    free(p);
    assert_int_equal(la_decode_pairs(s + 1, ns - 1, &p, &np, &err), LA_OK);
    assert_int_equal((int)np, 0);
    assert_int_equal(la_decode_speedup_figure(s + 1, ns - 1, p, np, &f, &err), LA_OK);
    assert_false(f.fits);
    la_figure_free(&f);
    s[0].npoints = s[1].npoints = s[2].npoints = s[3].npoints = 1;
    assert_int_equal(la_decode_latency_figure(s, ns, 0, &f, &err), LA_OK);
    assert_false(f.fits);
    la_figure_free(&f);
    assert_int_equal(la_decode_latency_figure(s, ns, 1, &f, &err), LA_OK);
    assert_true(f.fits);
    la_figure_free(&f);
    free(p);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_pairs),
        cmocka_unit_test(test_figures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
