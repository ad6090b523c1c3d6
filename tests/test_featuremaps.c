/* test_featuremaps.c — the feature maps (every featuremaps/ map): registry and parameter errors,
 * statistical claims tested statistically (unbiasedness within 4 standard errors, IID MSE within
 * 20% of Performer Lemma 2, orthogonal no worse than IID, gerf's fitted A no worse than A = 0),
 * exactness of taylor2, positivity, the stabiliser (finite at |x| = 30 where the formula
 * overflows; cancels in attention), bit-identical features from one seed, the exponential maps'
 * projection (kernels/simd.h la_proj_rows) against a loop on every SIMD path, every map through
 * every linear kernel against attn_linear_ref, and the learned map's weights files (round trip
 * through `linattn featuremap init-learned`, every malformed file, weights whose features are
 * zero or overflow fp32, a /W declaring more rows than supported, CLI exit codes), and each map's
 * nominal flop and byte models against counts made by hand.
 * Run: make check, or build/tests/test_featuremaps (LINATTN_BIN names the CLI, default
 * ./linattn).  Fixed master seed; about 2 s on one core.
 *
 * Statistical design: a random map with M = d·B draws is B independent m = d estimators (IID:
 * disjoint groups of d draws; orthogonal: one QR block each), so one map per seed gives B
 * samples of the m = d estimate for a (q, k) pair through FM_RAW features.  S seeds × B blocks
 * = 12000 samples; the MSE's own relative standard error is ~2-4% at the pairs used (Δ <= 1.2),
 * so the 20% bound on MSE / theory has ample margin and still catches a wrong factor.
 */
#include "testutil.h"

#include <omp.h>

#include <unistd.h>

/* OpenBLAS's cblas.h first; GSL's clashing copy of the same declarations is skipped. */
#include <cblas.h>
#define __GSL_CBLAS_H__
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>

#include "../featuremaps/draws.h"
#include "../featuremaps/featuremap.h"
#include "../harness/core/status.h"
#include "../harness/core/sysinfo.h"
#include "../kernels/attention.h"
#include "../kernels/simd.h"

#define MASTER_SEED 20240611ul
#define D 16

/* ---------------------------------------------------------------- helpers */

static gsl_rng *rng_seeded(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    assert_non_null(r);
    gsl_rng_set(r, seed);
    return r;
}

static struct featuremap *make_map(const char *name, const struct fm_params *p, unsigned long seed)
{
    gsl_rng *r = rng_seeded(seed);
    struct la_error err;
    la_error_clear(&err);
    struct featuremap *fm = featuremap_alloc(name, p, r, &err);
    if (!fm)
        print_error("featuremap_alloc(%s): %s\n", name, err.msg);
    assert_non_null(fm);
    gsl_rng_free(r);
    return fm;
}

/* φ of n rows with a freshly allocated workspace. */
static void apply(const struct featuremap *fm, enum fm_role role, const float *x, size_t n,
                  float *phi)
{
    size_t wf = featuremap_work_floats(fm, n);
    float *w = wf ? malloc(wf * sizeof *w) : NULL;
    assert_int_equal(featuremap_apply(fm, role, x, n, phi, w), LA_OK);
    free(w);
}

static double dotd(const double *a, const double *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double dotf(const float *a, const float *b, int n)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += (double)a[i] * (double)b[i];
    return s;
}

/* ---------------------------------------------------------------- registry and parameters */

static void test_registry(void **state)
{
    (void)state;
    const char *want[] = {"elu1", "relu", "taylor2", "rff", "prf", "hyp", "gerf", "learned", "dpfp"};
    const char *fields[] = {"m", "draw", "norm_fixed", "A", "A_auto", "eps", "weights", "nu", "seed"};
    struct la_error err;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const struct featuremap_type *t = featuremap_lookup(want[i], &err);
        assert_non_null(t);
        assert_string_equal(t->name, want[i]);
        /* params lists only known field names (the experiment parser relies on them). */
        char buf[128];
        snprintf(buf, sizeof buf, "%s", t->params);
        if (strcmp(buf, "(none)") != 0)
            for (char *tok = strtok(buf, ", "); tok; tok = strtok(NULL, ", ")) {
                int ok = 0;
                for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++)
                    ok |= !strcmp(tok, fields[f]);
                if (!ok)
                    print_error("map %s lists unknown parameter '%s'\n", want[i], tok);
                assert_true(ok);
            }
    }
    assert_null(featuremap_lookup("gerff", &err));
    assert_int_equal(err.status, LA_ENAME);
    assert_non_null(strstr(err.msg, "did you mean 'gerf'"));
}

static void expect_alloc_error(const char *name, const struct fm_params *p, int status,
                               const char *needle)
{
    gsl_rng *r = rng_seeded(1);
    struct la_error err;
    la_error_clear(&err);
    struct featuremap *fm = featuremap_alloc(name, p, r, &err);
    gsl_rng_free(r);
    if (fm || err.status != status || !strstr(err.msg, needle))
        print_error("%s: status %d (want %d), message '%s' (want '%s')\n", name, err.status, status,
                    err.msg, needle);
    assert_null(fm);
    assert_int_equal(err.status, status);
    assert_non_null(strstr(err.msg, needle));
}

static void test_parameter_errors(void **state)
{
    (void)state;
    struct fm_params p;
    featuremap_params_default(&p, D);
    p.draw = 7;
    expect_alloc_error("prf", &p, LA_EINVAL, "draw");
    featuremap_params_default(&p, D);
    p.A = 0.25;
    expect_alloc_error("gerf", &p, LA_EINVAL, "1 - 4A > 0");
    p.A = NAN;
    expect_alloc_error("gerf", &p, LA_EINVAL, "1 - 4A > 0");
    featuremap_params_default(&p, D);
    p.m = 100;
    expect_alloc_error("taylor2", &p, LA_EINVAL, "153");
    expect_alloc_error("relu", &p, LA_EINVAL, "m is always d");
    featuremap_params_default(&p, D);
    p.eps = -1e-3;
    expect_alloc_error("relu", &p, LA_EINVAL, "eps");
    featuremap_params_default(&p, D);
    expect_alloc_error("learned", &p, LA_EINVAL, "weights file");
    /* A random map without an rng is refused by the generic layer. */
    struct la_error err;
    assert_null(featuremap_alloc("rff", &p, NULL, &err));
    assert_int_equal(err.status, LA_EINVAL);
    /* Defaults: m = d draws; rff and hyp give 2m outputs, taylor2 1 + d + d(d+1)/2. */
    const char *names[] = {"rff", "prf", "hyp", "gerf", "taylor2", "relu"};
    int outs[] = {2 * D, D, 2 * D, D, 1 + D + D * (D + 1) / 2, D};
    for (int i = 0; i < 6; i++) {
        struct featuremap *fm = make_map(names[i], &p, 3);
        assert_int_equal(fm->m, outs[i]);
        featuremap_free(fm);
    }
    p.m = 40;
    struct featuremap *fm = make_map("hyp", &p, 3);
    assert_int_equal(fm->m, 80);
    featuremap_free(fm);
}

/* ---------------------------------------------------------------- draws */

static void test_orthogonal_blocks(void **state)
{
    (void)state;
    const int m = 40, d = D; /* two full blocks and a partial one */
    double *W = malloc((size_t)m * d * sizeof *W);
    struct la_error err;
    for (int fixed = 0; fixed <= 1; fixed++) {
        gsl_rng *r = rng_seeded(MASTER_SEED + 5);
        assert_int_equal(fm_draw_w(W, m, d, FM_DRAW_ORTHOGONAL, fixed, r, "test", &err), LA_OK);
        gsl_rng_free(r);
        double worst = 0.0;
        for (int i = 0; i < m; i++) {
            double ni = sqrt(dotd(W + i * d, W + i * d, d));
            if (fixed)
                assert_true(fabs(ni - sqrt((double)d)) < 1e-9);
            assert_true(ni > 0.5 && ni < 4.0 * sqrt((double)d));
            for (int j = i + 1; j < m && j / d == i / d; j++) {
                double nj = sqrt(dotd(W + j * d, W + j * d, d));
                double c = fabs(dotd(W + i * d, W + j * d, d)) / (ni * nj);
                worst = c > worst ? c : worst;
            }
        }
        assert_true(worst < 1e-5);
    }
    /* IID rows: mean 0, variance 1 overall (loose: 640 draws). */
    gsl_rng *r = rng_seeded(MASTER_SEED + 6);
    assert_int_equal(fm_draw_w(W, m, d, FM_DRAW_IID, 0, r, "test", &err), LA_OK);
    gsl_rng_free(r);
    double s = 0, s2 = 0;
    for (int i = 0; i < m * d; i++) {
        s += W[i];
        s2 += W[i] * W[i];
    }
    assert_true(fabs(s / (m * d)) < 0.2);
    assert_true(fabs(s2 / (m * d) - 1.0) < 0.2);
    r = rng_seeded(1);
    assert_int_equal(fm_draw_w(W, m, d, 5, 0, r, "test", &err), LA_EINVAL);
    gsl_rng_free(r);
    free(W);
}

/* Same seed ⇒ bit-identical φ, also on OpenMP worker threads; gerf at A = 0 is prf. */
static void test_bit_identical(void **state)
{
    (void)state;
    const int n = 2000; /* several GEMM blocks */
    const char *names[] = {"rff", "prf", "hyp", "gerf"};
    float *x = malloc((size_t)n * D * sizeof *x);
    tu_fill(x, (size_t)n * D, 1.7f, MASTER_SEED + 10);
    for (int draw = 0; draw <= 1; draw++)
        for (int i = 0; i < 4; i++) {
            struct fm_params p;
            featuremap_params_default(&p, D);
            p.m = 48;
            p.draw = draw;
            struct featuremap *a = make_map(names[i], &p, 99), *b = make_map(names[i], &p, 99);
            size_t sz = (size_t)n * a->m;
            float *pa = malloc(sz * sizeof *pa), *pb = malloc(sz * sizeof *pb);
            /* linattn keeps OpenBLAS single-threaded and runs heads on OpenMP threads, so the
             * property to hold is: φ from one instance on the main thread equals φ from another
             * instance of the same seed on an OpenMP worker while a third thread applies a map
             * at the same time.  (OpenBLAS's own multi-threaded SGEMM may split the work into
             * edge kernels that round differently; linattn never uses it.) */
            for (int role = FM_QUERY; role <= FM_RAW; role++) {
                apply(a, role, x, n, pa);
                float *pc = malloc(sz * sizeof *pc);
#pragma omp parallel num_threads(2)
                {
                    if (omp_get_thread_num() == 1)
                        apply(b, role, x, n, pb);
                    else
                        apply(a, role, x, n, pc);
                }
                assert_memory_equal(pa, pb, sz * sizeof *pa);
                assert_memory_equal(pa, pc, sz * sizeof *pa);
                free(pc);
            }
            free(pa);
            free(pb);
            featuremap_free(a);
            featuremap_free(b);
        }
    /* gerf with A = 0 equals prf exactly (same draws, same arithmetic). */
    for (int draw = 0; draw <= 1; draw++) {
        struct fm_params p;
        featuremap_params_default(&p, D);
        p.m = 40;
        p.draw = draw;
        struct featuremap *a = make_map("prf", &p, 7), *b = make_map("gerf", &p, 7);
        size_t sz = (size_t)n * a->m;
        float *pa = malloc(sz * sizeof *pa), *pb = malloc(sz * sizeof *pb);
        for (int role = FM_QUERY; role <= FM_RAW; role++) {
            apply(a, role, x, n, pa);
            apply(b, role, x, n, pb);
            assert_memory_equal(pa, pb, sz * sizeof *pa);
        }
        free(pa);
        free(pb);
        featuremap_free(a);
        featuremap_free(b);
    }
    free(x);
}

/* The projection of the exponential maps (simd.h la_proj_rows) on every SIMD path against a
 * double loop: odd M (one row, tails of every row tile), N = 1, past one vector and one panel
 * and not a multiple of any width, K = 1, 11, 64 and 150 (past la_gemm's K block), with and
 * without offsets and pair.  u within 1e-6 of Σ|terms| (fp32 rounding), each row's max equal
 * to the largest value written (pair: of those and their negations), the rest of the row
 * (past N) untouched.  One
 * offset is NaN (that column never becomes the max) and, in the last shape, every offset is
 * −100, so every value is negative and the lanes past N (zeros before the −inf padding) would
 * win a max that looked at them. */
static void test_proj_rows(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1},     {7, 5, 11},    {13, 37, 64}, {6, 64, 64},
                                    {25, 65, 150}, {61, 256, 64}, {9, 130, 11}, {5, 3, 2}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (!la_simd_supported(isa))
            continue;
        for (int sh = 0; sh < nshapes; sh++) {
            const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
            const int ldc = 2 * N + 3, ldb = N + 5;
            float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * ldb);
            float *off = malloc(sizeof(float) * N), *C = malloc(sizeof(float) * M * ldc);
            float *mx = malloc(sizeof(float) * M);
            tu_fill(A, (size_t)M * K, 1.0f, 71 + sh);
            tu_fill(B, (size_t)K * ldb, 1.0f, 81 + sh);
            tu_fill(off, (size_t)N, 3.0f, 91 + sh);
            if (sh == nshapes - 1)
                for (int j = 0; j < N; j++)
                    off[j] = -100.0f;
            else if (N > 2)
                off[N / 2] = NAN;
            for (int withoff = 0; withoff <= 1; withoff++)
                for (int pair = 0; pair <= 1; pair++) {
                    for (int i = 0; i < M * ldc; i++)
                        C[i] = 12345.0f;
                    la_proj_rows(isa, M, N, K, A, K, B, ldb, withoff ? off : NULL, pair, C, ldc,
                                 mx);
                    for (int i = 0; i < M; i++) {
                        const float *c = C + (size_t)i * ldc;
                        float best = -INFINITY;
                        for (int j = 0; j < N; j++) {
                            double u = 0.0, b = 0.0;
                            for (int k = 0; k < K; k++) {
                                u += (double)A[i * K + k] * B[(size_t)k * ldb + j];
                                b += fabs((double)A[i * K + k] * B[(size_t)k * ldb + j]);
                            }
                            if (withoff) {
                                u += off[j];
                                b += fabs((double)off[j]);
                            }
                            if (isnan(u)) {
                                assert_true(isnan(c[j]));
                            } else {
                                if (!(fabs(c[j] - u) <= 1e-6 * (b + 1e-30)))
                                    print_error("proj [%s] M=%d N=%d K=%d off=%d pair=%d "
                                                "(%d, %d): %.9g vs %.9g\n",
                                                la_simd_name(isa), M, N, K, withoff, pair, i, j,
                                                c[j], u);
                                assert_true(fabs(c[j] - u) <= 1e-6 * (b + 1e-30));
                                best = c[j] > best ? c[j] : best;
                            }
                            if (pair && !isnan(u))
                                best = -c[j] > best ? -c[j] : best;
                        }
                        if (!(mx[i] == best))
                            print_error("proj [%s] M=%d N=%d K=%d off=%d pair=%d row %d: max "
                                        "%.9g, expected %.9g\n",
                                        la_simd_name(isa), M, N, K, withoff, pair, i, mx[i], best);
                        assert_true(mx[i] == best);
                        for (int j = N; j < ldc; j++)
                            assert_true(c[j] == 12345.0f);
                    }
                }
            free(A), free(B), free(off), free(C), free(mx);
        }
    }
}

/* prf, hyp and gerf against their definition evaluated in double from the same draws, every
 * role, on shapes that cut the projection's row blocks and register tiles unevenly (n = 1, 7
 * and past several blocks; d = 11, 64 and 150, past the GEMM's K block of 128; m = 5, 20, 37
 * and 256).  Each feature must match
 * scale·exp(e − c) (e its exponent, c the role's stabiliser, both in double) to fp32 rounding
 * of the exponent: |φ − ref| <= ref·(tol·(1 + Σ_j |ω_ij·x̃_j| + h)) + 1e-37, where the sum
 * bounds the projection's rounding.  The reported shift must match c the same way.  On every
 * SIMD path (the projection runs on la_proj_rows). */
static void test_exp_maps_exact(void **state)
{
    (void)state;
    static const struct {
        int n, d, m;
    } shapes[] = {{1, 11, 5}, {7, 11, 37}, {301, 11, 37}, {1, 64, 256}, {517, 64, 256},
                  {130, 64, 37}, {9, 150, 20}};
    const char *names[] = {"prf", "hyp", "gerf"};
    const double tol = 1e-6;
    double worst = 0.0;
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (la_simd_force(isa) != 0)
            continue;
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int mi = 0; mi < 3; mi++)
                for (int draw = 0; draw <= 1; draw++) {
                    const int n = shapes[si].n, d = shapes[si].d, mm = shapes[si].m;
                    const int pair = mi == 1;
                    const double A = mi == 2 ? -0.07 : 0.0;
                    struct fm_params p;
                    featuremap_params_default(&p, d);
                    p.m = mm;
                    p.draw = draw;
                    p.A = A;
                    const unsigned long seed =
                        500 + si * 10 + (unsigned long)mi * 2 + (unsigned long)draw;
                    struct featuremap *fm = make_map(names[mi], &p, seed);
                    const int cols = fm->m;
                    assert_int_equal(cols, pair ? 2 * mm : mm);
                    /* The same draws: init takes W first from a freshly seeded generator. */
                    double *W = malloc((size_t)mm * d * sizeof *W);
                    gsl_rng *r = rng_seeded(seed);
                    struct la_error err;
                    assert_int_equal(fm_draw_w(W, mm, d, draw, 0, r, "test", &err), LA_OK);
                    gsl_rng_free(r);
                    float *x = malloc((size_t)n * d * sizeof *x);
                    tu_fill(x, (size_t)n * d, 1.3f, MASTER_SEED + 900 + si);
                    double *e = malloc((size_t)n * cols * sizeof *e);
                    double *bound = malloc((size_t)n * cols * sizeof *bound);
                    double *h = malloc((size_t)n * sizeof *h);
                    const double f = pow((double)d, -0.25), B = sqrt(1.0 - 4.0 * A);
                    const double logD = 0.25 * d * log1p(-4.0 * A);
                    for (int row = 0; row < n; row++) {
                        double sq = 0.0;
                        for (int j = 0; j < d; j++)
                            sq += (double)x[row * d + j] * x[row * d + j] * f * f;
                        h[row] = 0.5 * sq;
                        for (int i = 0; i < mm; i++) {
                            double u = 0.0, b = 0.0, sw = 0.0;
                            for (int j = 0; j < d; j++) {
                                const double t = W[(size_t)i * d + j] * B * f * x[row * d + j];
                                u += t;
                                b += fabs(t);
                                sw += W[(size_t)i * d + j] * W[(size_t)i * d + j];
                            }
                            const double o = A * sw + (A != 0.0 ? logD : 0.0);
                            e[(size_t)row * cols + i] = u + o - h[row];
                            bound[(size_t)row * cols + i] = 1.0 + b + fabs(o) + h[row];
                            if (pair) {
                                e[(size_t)row * cols + mm + i] = -u - h[row];
                                bound[(size_t)row * cols + mm + i] = 1.0 + b + h[row];
                            }
                        }
                    }
                    const double scale = 1.0 / sqrt((double)cols);
                    float *phi = malloc((size_t)n * cols * sizeof *phi);
                    float *shift = malloc((size_t)n * sizeof *shift);
                    for (int role = FM_QUERY; role <= FM_RAW; role++) {
                        assert_int_equal(featuremap_apply_shift(fm, role, x, n, phi, NULL, shift),
                                         LA_OK);
                        double ckey = -INFINITY;
                        for (size_t i = 0; i < (size_t)n * cols; i++)
                            ckey = e[i] > ckey ? e[i] : ckey;
                        for (int row = 0; row < n; row++) {
                            double c = 0.0, cb = 0.0;
                            if (role == FM_QUERY)
                                for (int i = 0; i < cols; i++)
                                    if (i == 0 || e[(size_t)row * cols + i] > c)
                                        c = e[(size_t)row * cols + i],
                                        cb = bound[(size_t)row * cols + i];
                            if (role == FM_KEY)
                                c = ckey, cb = 1.0 + fabs(ckey);
                            assert_true(fabs((double)shift[row] - c) <=
                                        tol * (cb + fabs(c)) + 1e-30);
                            for (int i = 0; i < cols; i++) {
                                const size_t k = (size_t)row * cols + i;
                                const double ref = scale * exp(e[k] - c);
                                const double dev = fabs((double)phi[k] - ref);
                                const double lim = ref * tol * (bound[k] + cb) + 1e-37;
                                if (dev / lim > worst)
                                    worst = dev / lim;
                                if (!(dev <= lim))
                                    print_error(
                                        "%s d=%d m=%d n=%d draw=%d role=%d row %d feature %d: "
                                        "%.9g vs %.9g\n",
                                        names[mi], d, mm, n, draw, role, row, i, phi[k], ref);
                                assert_true(dev <= lim);
                            }
                        }
                    }
                    free(W), free(x), free(e), free(bound), free(h), free(phi), free(shift);
                    featuremap_free(fm);
                }
    }
    la_simd_force(-1);
    print_message("  prf, hyp, gerf vs the double definition: worst error %.3f of the tolerance\n",
                  worst);
}

/* ---------------------------------------------------------------- statistics */

struct pair {
    float q[D], k[D];
    double sm, nq, nk, delta, dminus; /* exp(q̃ᵀk̃), ‖q̃‖², ‖k̃‖², ‖q̃+k̃‖², ‖q̃−k̃‖² */
};

static void make_pairs(struct pair *P, int n)
{
    /* Moderate norms (‖x̃‖² ≈ 0.3-0.6), one correlated, one anti-correlated pair. */
    for (int i = 0; i < n; i++) {
        tu_fill(P[i].q, D, 0.62f, MASTER_SEED + 100 + 2 * i);
        tu_fill(P[i].k, D, 0.62f, MASTER_SEED + 101 + 2 * i);
    }
    for (int j = 0; j < D; j++) {
        P[1].k[j] = 0.55f * P[1].q[j] + 0.5f * P[1].k[j];
        P[2].k[j] = -0.8f * P[2].q[j] + 0.4f * P[2].k[j];
    }
    for (int i = 0; i < n; i++) {
        double f = pow((double)D, -0.25), qk = 0, nq = 0, nk = 0;
        for (int j = 0; j < D; j++) {
            double a = P[i].q[j] * f, b = P[i].k[j] * f;
            qk += a * b;
            nq += a * a;
            nk += b * b;
        }
        P[i].sm = exp(qk);
        P[i].nq = nq;
        P[i].nk = nk;
        P[i].delta = nq + nk + 2 * qk;
        P[i].dminus = nq + nk - 2 * qk;
    }
}

/* Samples of the m = d estimator for np pairs: S seeds × B blocks each (RAW features), into
 * out[pair·S·B + s·B + b].  If fit (np must be 1), the map is fitted on the pair (gerf A_auto). */
static void estimates(const char *name, struct fm_params p, const struct pair *pr, int np, int S,
                      int B, int fit, double *out)
{
    p.m = D * B;
    for (int s = 0; s < S; s++) {
        struct featuremap *fm = make_map(name, &p, MASTER_SEED + 1000 * (unsigned long)s + 17);
        if (fit) {
            struct la_error err;
            assert_int_equal(featuremap_fit(fm, pr->q, 1, pr->k, 1, &err), LA_OK);
        }
        float *pq = malloc((size_t)fm->m * sizeof *pq), *pk = malloc((size_t)fm->m * sizeof *pk);
        for (int i = 0; i < np; i++) {
            apply(fm, FM_RAW, pr[i].q, 1, pq);
            apply(fm, FM_RAW, pr[i].k, 1, pk);
            int M = p.m, two = fm->m == 2 * M;
            for (int b = 0; b < B; b++) {
                double e = 0.0;
                for (int f = b * D; f < (b + 1) * D; f++) {
                    e += (double)pq[f] * pk[f];
                    if (two)
                        e += (double)pq[M + f] * pk[M + f];
                }
                out[((size_t)i * S + s) * B + b] = e * (double)M / D;
            }
        }
        free(pq);
        free(pk);
        featuremap_free(fm);
    }
}

struct moments {
    double mean, se, mse;
};

static struct moments moments_of(const double *e, int n, double truth)
{
    double s = 0, s2 = 0, se2 = 0;
    for (int i = 0; i < n; i++)
        s += e[i];
    double mean = s / n;
    for (int i = 0; i < n; i++) {
        s2 += (e[i] - mean) * (e[i] - mean);
        se2 += (e[i] - truth) * (e[i] - truth);
    }
    struct moments r = {mean, sqrt(s2 / (n - 1) / n), se2 / n};
    return r;
}

/* Performer Lemma 2, m draws, IID. */
static double theory_mse(const char *name, const struct pair *P, int m)
{
    double prf = exp(P->delta) * P->sm * P->sm * (1.0 - exp(-P->delta)) / m;
    if (!strcmp(name, "prf"))
        return prf;
    if (!strcmp(name, "hyp"))
        return 0.5 * (1.0 - exp(-P->delta)) * prf;
    double t = 1.0 - exp(-P->dminus);
    return exp(P->delta) / (P->sm * P->sm) * t * t / (2.0 * m); /* rff */
}

/* gerf's variance at A (gerf.c's header derives it). */
static double theory_gerf(double A, const struct pair *P, int m)
{
    double ef2 = pow(1 - 4 * A, D) * pow(1 - 8 * A, -D / 2.0) *
                 exp(-P->nq - P->nk + 2 * (1 - 4 * A) * P->delta / (1 - 8 * A));
    return (ef2 - P->sm * P->sm) / m;
}

static double gerf_A_star(double delta)
{
    double d = D;
    return (d - 2 * delta - sqrt((2 * delta + d) * (2 * delta + d) + 8 * d * delta)) / (16 * d);
}

static void test_unbiased_and_variance(void **state)
{
    (void)state;
    enum { NP = 3, S = 8, B = 1500, N = S * B };
    struct pair P[NP];
    make_pairs(P, NP);
    double *e = malloc((size_t)NP * N * sizeof *e);
    const char *names[] = {"rff", "prf", "hyp", "gerf"};
    double iid_mse[4][NP];
    print_message("  pair   Delta   delta      SM\n");
    for (int i = 0; i < NP; i++)
        print_message("  %d    %6.3f  %6.3f  %6.3f\n", i, P[i].delta, P[i].dminus, P[i].sm);
    print_message("  map  draw  pair   mean/SM   z(mean)  MSE          theory(IID)  ratio\n");
    for (int draw = 0; draw <= 1; draw++)
        for (int k = 0; k < 4; k++) {
            struct fm_params p;
            featuremap_params_default(&p, D);
            p.draw = draw;
            estimates(names[k], p, P, NP, S, B, 0, e);
            for (int i = 0; i < NP; i++) {
                struct moments mo = moments_of(e + (size_t)i * N, N, P[i].sm);
                double z = (mo.mean - P[i].sm) / mo.se;
                double th = !strcmp(names[k], "gerf") ? theory_gerf(0.0, &P[i], D)
                                                      : theory_mse(names[k], &P[i], D);
                print_message("  %-4s %-4s  %d     %.4f   %+6.2f   %.4e   %.4e   %.3f\n", names[k],
                              draw ? "ort" : "iid", i, mo.mean / P[i].sm, z, mo.mse, th,
                              mo.mse / th);
                assert_true(fabs(z) <= 4.0);
                if (draw == 0) {
                    iid_mse[k][i] = mo.mse;
                    assert_true(fabs(mo.mse / th - 1.0) <= 0.20);
                } else {
                    /* Orthogonal draws: no worse than IID (small allowance for noise). */
                    assert_true(mo.mse <= iid_mse[k][i] * 1.02);
                }
            }
        }
    for (int i = 0; i < NP; i++) {
        /* gerf with A fitted to the pair: unbiased, variance as derived, no worse than A = 0. */
        struct fm_params p;
        featuremap_params_default(&p, D);
        p.A_auto = 1;
        estimates("gerf", p, &P[i], 1, S, B, 1, e);
        struct moments mo = moments_of(e, N, P[i].sm);
        double A = gerf_A_star(P[i].delta), th = theory_gerf(A, &P[i], D);
        double z = (mo.mean - P[i].sm) / mo.se;
        print_message("  gerf auto  %d     %.4f   %+6.2f   %.4e   %.4e   %.3f   (A* = %.4f; "
                      "MSE/MSE(A=0) = %.3f)\n",
                      i, mo.mean / P[i].sm, z, mo.mse, th, mo.mse / th, A, mo.mse / iid_mse[3][i]);
        assert_true(fabs(z) <= 4.0);
        assert_true(fabs(mo.mse / th - 1.0) <= 0.20);
        assert_true(mo.mse <= iid_mse[3][i] * 1.02);
    }
    /* A fixed negative A is unbiased too, with the derived variance. */
    struct fm_params p;
    featuremap_params_default(&p, D);
    p.A = -0.15;
    estimates("gerf", p, P, NP, S, B, 0, e);
    for (int i = 0; i < NP; i++) {
        struct moments mo = moments_of(e + (size_t)i * N, N, P[i].sm);
        double z = (mo.mean - P[i].sm) / mo.se, th = theory_gerf(-0.15, &P[i], D);
        print_message("  gerf A=-0.15 %d   %.4f   %+6.2f   %.4e   %.4e   %.3f\n", i,
                      mo.mean / P[i].sm, z, mo.mse, th, mo.mse / th);
        assert_true(fabs(z) <= 4.0);
        assert_true(fabs(mo.mse / th - 1.0) <= 0.20);
    }
    free(e);
}

/* ---------------------------------------------------------------- deterministic maps */

static void test_taylor2_exact(void **state)
{
    (void)state;
    int dims[] = {5, 16};
    for (int t = 0; t < 2; t++) {
        int d = dims[t];
        struct fm_params p;
        featuremap_params_default(&p, d);
        struct featuremap *fm = make_map("taylor2", &p, 1);
        assert_int_equal(fm->m, 1 + d + d * (d + 1) / 2);
        enum { N = 20 };
        float *x = malloc(2 * N * (size_t)d * sizeof *x);
        float *phi = malloc(2 * N * (size_t)fm->m * sizeof *phi);
        double *xd = malloc(2 * (size_t)d * sizeof *xd);
        tu_fill(x, 2 * N * (size_t)d, 2.3f, MASTER_SEED + 20 + t);
        apply(fm, FM_QUERY, x, N, phi);
        apply(fm, FM_KEY, x + N * d, N, phi + N * fm->m);
        double worst = 0.0;
        for (int i = 0; i < N; i++) {
            tu_to_double(x + i * d, xd, d);
            tu_to_double(x + (N + i) * d, xd + d, d);
            double s = dotd(xd, xd + d, d) / sqrt((double)d);
            double want = 1 + s + s * s / 2;
            double got = dotf(phi + i * fm->m, phi + (N + i) * fm->m, fm->m);
            double rel = fabs(got - want) / want;
            worst = rel > worst ? rel : worst;
            assert_true(fabs(featuremap_kernel(fm, xd, xd + d) - want) <= 1e-12 * want);
        }
        assert_true(worst < 2e-6);
        free(x);
        free(phi);
        free(xd);
        featuremap_free(fm);
    }
}

static void test_nonnegative(void **state)
{
    (void)state;
    const int n = 64;
    float *x = malloc((size_t)n * D * sizeof *x);
    tu_fill(x, (size_t)n * D, 40.0f, MASTER_SEED + 30);
    x[0] = -100.0f;
    x[1] = -1e30f;
    x[2] = 1e-30f;
    struct fm_params p;
    featuremap_params_default(&p, D);
    const char *names[] = {"elu1", "relu", "prf", "hyp", "gerf", "dpfp"};
    for (int i = 0; i < 6; i++) {
        struct featuremap *fm = make_map(names[i], &p, 2);
        float *phi = malloc((size_t)n * fm->m * sizeof *phi);
        for (int role = FM_QUERY; role <= FM_KEY; role++) {
            apply(fm, role, x, n, phi);
            for (int j = 0; j < n * fm->m; j++) {
                assert_true(phi[j] >= 0.0f);
                if (!strcmp(names[i], "relu"))
                    assert_true(phi[j] >= (float)p.eps);
            }
        }
        free(phi);
        featuremap_free(fm);
    }
    free(x);
}

/* dpfp against its definition (Schlag et al. 2021): r = [relu(x), relu(−x)], feature
 * (j−1)·2d + i = r_i·r_{(i+j) mod 2d}, j = 1..ν, for ν = 1, 2, 3, on rows with negative,
 * positive and zero entries (and a zero row); every feature nonnegative; its kernel φ(q)ᵀφ(k);
 * nu and m out of range refused. */
static void test_dpfp(void **state)
{
    (void)state;
    const int d = 5, n = 7;
    float x[7 * 5];
    tu_fill(x, (size_t)n * d, 1.7f, MASTER_SEED + 90);
    x[3] = 0.0f;
    for (int i = 0; i < d; i++)
        x[2 * d + i] = 0.0f; /* row 2: φ = 0 */
    for (int nu = 1; nu <= 3; nu++) {
        struct fm_params p;
        featuremap_params_default(&p, d);
        assert_int_equal(p.nu, 1);
        p.nu = nu;
        struct featuremap *fm = make_map("dpfp", &p, 1);
        const int w = 2 * d, m = w * nu;
        assert_int_equal(fm->m, m);
        float *phi = malloc((size_t)n * m * sizeof *phi);
        apply(fm, FM_KEY, x, (size_t)n, phi);
        for (int r = 0; r < n; r++) {
            double rr[10], xd[5];
            for (int i = 0; i < w; i++) {
                const double v = i < d ? x[r * d + i] : -x[r * d + i - d];
                rr[i] = v > 0 ? v : 0;
            }
            for (int j = 1; j <= nu; j++)
                for (int i = 0; i < w; i++) {
                    const float got = phi[(size_t)r * m + (j - 1) * w + i];
                    assert_true(got >= 0.0f);
                    assert_true(got == (float)(rr[i] * rr[(i + j) % w]));
                }
            /* A row's products pair an entry with its negation only at shift d, so below it
             * r_i·r_{i+j} is nonzero only when both entries have the sign their half asks. */
            if (r == 2)
                for (int f = 0; f < m; f++)
                    assert_true(phi[(size_t)r * m + f] == 0.0f);
            tu_to_double(x + r * d, xd, d);
            double kk = 0.0;
            for (int f = 0; f < m; f++)
                kk += (double)phi[(size_t)r * m + f] * phi[(size_t)r * m + f];
            assert_true(fabs(featuremap_kernel(fm, xd, xd) - kk) <= 1e-6 * (1.0 + kk));
        }
        free(phi);
        featuremap_free(fm);
    }
    struct fm_params p;
    featuremap_params_default(&p, d);
    p.nu = 0;
    expect_alloc_error("dpfp", &p, LA_EINVAL, "nu must be 1, 2 or 3, got 0");
    p.nu = 4;
    expect_alloc_error("dpfp", &p, LA_EINVAL, "nu must be 1, 2 or 3, got 4");
    p.nu = 2;
    p.m = 10;
    expect_alloc_error("dpfp", &p, LA_EINVAL, "m is always 2·d·nu (20); got m = 10");
    p.m = 20;
    struct featuremap *fm = make_map("dpfp", &p, 1);
    assert_int_equal(fm->m, 20);
    featuremap_free(fm);
}

/* ---------------------------------------------------------------- stabiliser */

static void test_overflow(void **state)
{
    (void)state;
    const int n = 8;
    float *x = malloc((size_t)n * D * sizeof *x);
    tu_fill(x, (size_t)n * D, 1.0f, MASTER_SEED + 40);
    for (int i = 0; i < n * D; i++)
        x[i] = x[i] < 0 ? -30.0f : 30.0f; /* |x_j| = 30: ‖x̃‖² = 3600 */
    /* The formula evaluated directly in fp32 with N(0, 1) draws overflows or underflows. */
    gsl_rng *r = rng_seeded(MASTER_SEED + 41);
    int nonfinite = 0, zero = 0;
    for (int i = 0; i < n; i++) {
        double h = fm_sqnorm_tilde(x + i * D, D) / 2;
        for (int f = 0; f < D; f++) {
            float u = 0.0f;
            for (int j = 0; j < D; j++)
                u += (float)gsl_ran_gaussian(r, 1.0) * x[i * D + j] * 0.5f; /* d^{-1/4} = 1/2 */
            float v = expf(u) * expf((float)-h) / 4.0f;
            nonfinite += !isfinite(v) || !isfinite(expf(u));
            zero += v == 0.0f;
        }
    }
    gsl_rng_free(r);
    print_message("  unstabilised exp(Wx~)exp(-|x~|^2/2) at |x| = 30: %d of %d non-finite or "
                  "overflowing, %d zero\n",
                  nonfinite, n * D, zero);
    assert_true(nonfinite + zero == n * D);
    const char *names[] = {"prf", "hyp", "gerf", "rff"};
    for (int i = 0; i < 4; i++) {
        struct fm_params p;
        featuremap_params_default(&p, D);
        struct featuremap *fm = make_map(names[i], &p, 3);
        int m = fm->m;
        float *phi = malloc((size_t)n * m * sizeof *phi);
        /* The library's own unstabilised features are unusable too. */
        apply(fm, FM_RAW, x, n, phi);
        int bad = !tu_all_finite(phi, (size_t)n * m);
        for (int row = 0; row < n && !bad; row++) {
            double s = 0;
            for (int j = 0; j < m; j++)
                s += fabs(phi[row * m + j]);
            bad = s == 0.0;
        }
        assert_true(bad);
        for (int role = FM_QUERY; role <= FM_KEY; role++) {
            apply(fm, role, x, n, phi);
            assert_true(tu_all_finite(phi, (size_t)n * m));
            /* Queries: every row keeps its largest feature at the scale; keys: the call does. */
            float mx_all = 0.0f;
            for (int row = 0; row < n; row++) {
                float mx = 0.0f;
                for (int j = 0; j < m; j++)
                    mx = fabsf(phi[row * m + j]) > mx ? fabsf(phi[row * m + j]) : mx;
                if (role == FM_QUERY)
                    assert_true(mx > 0.1f);
                mx_all = mx > mx_all ? mx : mx_all;
            }
            assert_true(mx_all > 0.1f && mx_all <= 1.0f);
        }
        free(phi);
        featuremap_free(fm);
    }
    free(x);
}

/* Linear attention from stabilised features equals attention from the raw formula. */
static void test_stabiliser_cancels(void **state)
{
    (void)state;
    const int T = 50, dv = 8;
    float *q = malloc((size_t)T * D * sizeof *q), *k = malloc((size_t)T * D * sizeof *k);
    double *v = malloc((size_t)T * dv * sizeof *v);
    tu_fill(q, (size_t)T * D, 1.4f, MASTER_SEED + 50);
    tu_fill(k, (size_t)T * D, 1.4f, MASTER_SEED + 51);
    float *vf = malloc((size_t)T * dv * sizeof *vf);
    tu_fill(vf, (size_t)T * dv, 1.0f, MASTER_SEED + 52);
    tu_to_double(vf, v, (size_t)T * dv);
    const char *names[] = {"rff", "prf", "hyp", "gerf"};
    for (int i = 0; i < 4; i++) {
        struct fm_params p;
        featuremap_params_default(&p, D);
        p.m = 64;
        struct featuremap *fm = make_map(names[i], &p, 5);
        int m = fm->m;
        size_t sz = (size_t)T * m;
        float *fq = malloc(sz * sizeof *fq), *fk = malloc(sz * sizeof *fk);
        double *a = malloc(sz * sizeof *a), *b = malloc(sz * sizeof *b);
        double *y0 = malloc((size_t)T * dv * sizeof *y0), *y1 = malloc((size_t)T * dv * sizeof *y1);
        for (int causal = 0; causal <= 1; causal++) {
            apply(fm, FM_RAW, q, T, fq);
            apply(fm, FM_RAW, k, T, fk);
            tu_to_double(fq, a, sz);
            tu_to_double(fk, b, sz);
            attn_linear_ref(a, b, v, y0, T, m, dv, causal, 0.0);
            apply(fm, FM_QUERY, q, T, fq);
            apply(fm, FM_KEY, k, T, fk);
            tu_to_double(fq, a, sz);
            tu_to_double(fk, b, sz);
            attn_linear_ref(a, b, v, y1, T, m, dv, causal, 0.0);
            float *y1f = malloc((size_t)T * dv * sizeof *y1f);
            for (int j = 0; j < T * dv; j++)
                y1f[j] = (float)y1[j];
            double rel = tu_rel_err(y1f, y0, (size_t)T * dv);
            free(y1f);
            if (rel > 1e-4)
                print_error("%s causal=%d: stabilised vs raw attention rel err %.3g\n", names[i],
                            causal, rel);
            assert_true(rel <= 1e-4);
        }
        free(fq);
        free(fk);
        free(a);
        free(b);
        free(y0);
        free(y1);
        featuremap_free(fm);
    }
    free(q);
    free(k);
    free(v);
    free(vf);
}

/* ---------------------------------------------------------------- learned: files */

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[8][512];
    static int slot;
    slot = (slot + 1) % 8;
    snprintf(buf[slot], sizeof buf[slot], "%s/%s", tmpdir, name);
    return buf[slot];
}

/* Writes a weights file the test controls entirely.  wtype/btype: HDF5 file types (0: skip);
 * data are doubles converted by HDF5.  act: NULL = no attribute; vlen: variable-length string;
 * act_int: write activation as an integer attribute instead. */
static void write_weights(const char *path, hid_t wtype, int wrank, const hsize_t *wdims,
                          const double *W, hid_t btype, hsize_t blen, const double *b,
                          const char *act, int vlen, int act_int)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    if (wtype) {
        hid_t sp = H5Screate_simple(wrank, wdims, NULL);
        hid_t ds = H5Dcreate2(f, "W", wtype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(ds >= 0);
        if (H5Tget_class(wtype) == H5T_STRING) {
            hsize_t n = 1;
            for (int i = 0; i < wrank; i++)
                n *= wdims[i];
            char *s = calloc(n, H5Tget_size(wtype));
            assert_true(H5Dwrite(ds, wtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, s) >= 0);
            free(s);
        } else {
            assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, W) >= 0);
        }
        H5Dclose(ds);
        H5Sclose(sp);
    }
    if (btype) {
        hid_t sp = H5Screate_simple(1, &blen, NULL);
        hid_t ds = H5Dcreate2(f, "b", btype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    if (act || act_int) {
        hid_t sp = H5Screate(H5S_SCALAR);
        if (act_int) {
            int one = 1;
            hid_t a = H5Acreate2(f, "activation", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT);
            assert_true(H5Awrite(a, H5T_NATIVE_INT, &one) >= 0);
            H5Aclose(a);
        } else {
            hid_t t = H5Tcopy(H5T_C_S1);
            H5Tset_size(t, vlen ? H5T_VARIABLE : strlen(act) + 1);
            hid_t a = H5Acreate2(f, "activation", t, sp, H5P_DEFAULT, H5P_DEFAULT);
            assert_true(a >= 0);
            assert_true(H5Awrite(a, t, vlen ? (const void *)&act : (const void *)act) >= 0);
            H5Aclose(a);
            H5Tclose(t);
        }
        H5Sclose(sp);
    }
    H5Fclose(f);
}

static struct featuremap *load_learned(const char *path, int m, struct la_error *err)
{
    struct fm_params p;
    featuremap_params_default(&p, D);
    p.weights = path;
    p.m = m;
    la_error_clear(err);
    return featuremap_alloc("learned", &p, NULL, err);
}

static void expect_learned_error(const char *path, int m, int status, const char *needle)
{
    struct la_error err;
    struct featuremap *fm = load_learned(path, m, &err);
    if (fm || err.status != status || !strstr(err.msg, needle) || !strstr(err.msg, path))
        print_error("%s: status %d (want %d), message '%s' (want '%s' and the path)\n", path,
                    err.status, status, err.msg, needle);
    assert_null(fm);
    assert_int_equal(err.status, status);
    assert_non_null(strstr(err.msg, needle));
    assert_non_null(strstr(err.msg, path));
    /* The CLI gives the same message and exit code 2. */
    char out[4096];
    int rc = tu_run(out, sizeof out, "featuremap info learned --d %d --weights '%s'%s", D, path,
                    m ? " --m 9" : "");
    if (rc != 2 || !strstr(out, needle))
        print_error("CLI: exit %d, output '%s'\n", rc, out);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, needle));
}

static void test_learned_errors(void **state)
{
    (void)state;
    const int m = 6;
    double W[6 * (D + 1)], b[6];
    for (int i = 0; i < m * (D + 1); i++)
        W[i] = 0.01 * (i % 17) - 0.073;
    for (int i = 0; i < m; i++)
        b[i] = 0.1 * i;
    hsize_t good[2] = {(hsize_t)m, D}, wide[2] = {(hsize_t)m, D + 1}, flat[1] = {(hsize_t)m * D};

    expect_learned_error(tmp_path("missing.h5"), 0, LA_EIO, "cannot read weights file");
    const char *txt = tmp_path("text.h5");
    FILE *f = fopen(txt, "w");
    assert_non_null(f);
    fputs("not hdf5\n", f);
    fclose(f);
    expect_learned_error(txt, 0, LA_EFORMAT, "not an HDF5 file");

    const char *p = tmp_path("noW.h5");
    write_weights(p, 0, 0, NULL, NULL, H5T_IEEE_F32LE, m, b, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "no dataset /W");
    p = tmp_path("intW.h5");
    write_weights(p, H5T_STD_I32LE, 2, good, W, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/W has type integer");
    p = tmp_path("strW.h5");
    hid_t s8 = H5Tcopy(H5T_C_S1);
    H5Tset_size(s8, 8);
    write_weights(p, s8, 2, good, NULL, 0, 0, NULL, "exp_pair", 0, 0);
    H5Tclose(s8);
    expect_learned_error(p, 0, LA_EFORMAT, "/W has type string");
    p = tmp_path("wideW.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, wide, W, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/W has shape (6, 17)");
    p = tmp_path("flatW.h5");
    write_weights(p, H5T_IEEE_F32LE, 1, flat, W, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/W has shape (96)");
    double Wbad[6 * D];
    memcpy(Wbad, W, sizeof Wbad);
    Wbad[2 * D + 3] = NAN;
    p = tmp_path("nanW.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, Wbad, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/W has a non-finite");
    expect_learned_error(p, 0, LA_EFORMAT, "[2, 3]");
    Wbad[2 * D + 3] = INFINITY;
    p = tmp_path("infW.h5");
    write_weights(p, H5T_IEEE_F64LE, 2, good, Wbad, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/W has a non-finite");
    Wbad[2 * D + 3] = 1e300; /* finite in float64 but not in fp32 */
    p = tmp_path("bigW.h5");
    write_weights(p, H5T_IEEE_F64LE, 2, good, Wbad, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "out-of-fp32-range");
    p = tmp_path("shortb.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, H5T_IEEE_F32LE, m - 1, b, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/b has shape (5)");
    p = tmp_path("intb.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, H5T_STD_I64LE, m, b, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "/b has type integer");
    p = tmp_path("noact.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, NULL, 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "no string attribute 'activation'");
    p = tmp_path("intact.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, NULL, 0, 1);
    expect_learned_error(p, 0, LA_EFORMAT, "'activation' on / is not a string");
    p = tmp_path("badact.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, "exp_pairs", 1, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "did you mean 'exp_pair'");
    expect_learned_error(p, 0, LA_EFORMAT, "exp_pair, softmax_pair, relu");
    /* m given and different from the file's rows. */
    p = tmp_path("good64.h5");
    write_weights(p, H5T_IEEE_F64LE, 2, good, W, H5T_IEEE_F64LE, m, b, "relu", 1, 0);
    expect_learned_error(p, 9, LA_EINVAL, "has 6 rows");
    /* The same file is fine without m: float64 and a variable-length string are accepted. */
    struct la_error err;
    struct featuremap *fm = load_learned(p, 0, &err);
    assert_non_null(fm);
    assert_int_equal(fm->m, m);
    featuremap_free(fm);
}

/* Weights that load but make the features useless are refused by init, naming the file and the
 * problem; `featuremap info` on weights that are merely unusual prints finite numbers. */
static void test_learned_degenerate(void **state)
{
    (void)state;
    const int m = 6;
    double W[6 * D], b[6];
    hsize_t good[2] = {(hsize_t)m, D};
    for (int i = 0; i < m * D; i++)
        W[i] = 0.0;
    for (int i = 0; i < m; i++)
        b[i] = -0.25 - 0.1 * i;
    const char *p = tmp_path("zero_relu.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, "relu", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "relu features are zero for every input");
    p = tmp_path("zero_relu_negb.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, H5T_IEEE_F32LE, m, b, "relu", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "relu features are zero for every input");
    /* One positive bias keeps a constant feature: accepted. */
    b[3] = 0.125;
    p = tmp_path("zero_relu_posb.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, H5T_IEEE_F32LE, m, b, "relu", 0, 0);
    struct la_error err;
    struct featuremap *fm = load_learned(p, 0, &err);
    assert_non_null(fm);
    featuremap_free(fm);

    for (int i = 0; i < m * D; i++)
        W[i] = 1e30 * (1.0 + 0.01 * (i % 7));
    p = tmp_path("big_relu.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, "relu", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "relu features overflow fp32 at the unit input");
    for (int i = 0; i < m * D; i++)
        W[i] = 100.0 + 0.37 * (i % 5);
    p = tmp_path("big_exp.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, "exp_pair", 0, 0);
    expect_learned_error(p, 0, LA_EFORMAT, "exp_pair features overflow fp32");

    /* softmax_pair is normalised, so huge weights are accepted; relu with negative weights is
     * zero on about half the inputs.  Either way info prints finite numbers and exits 0. */
    char out[4096];
    for (int i = 0; i < m * D; i++)
        W[i] = 1e30 * (1.0 + 0.01 * (i % 7));
    p = tmp_path("big_sm.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, "softmax_pair", 0, 0);
    int rc = tu_run(out, sizeof out, "featuremap info learned --d %d --weights '%s'", D, p);
    if (rc != 0 || strstr(out, "nan") || !strstr(out, "relative RMS error"))
        print_error("softmax_pair 1e30: exit %d: %s\n", rc, out);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "nan"));
    for (int i = 0; i < m * D; i++)
        W[i] = -1.0 - 0.01 * (i % 3);
    p = tmp_path("neg_relu.h5");
    write_weights(p, H5T_IEEE_F32LE, 2, good, W, 0, 0, NULL, "relu", 0, 0);
    rc = tu_run(out, sizeof out, "featuremap info learned --d %d --weights '%s'", D, p);
    if (rc != 0 || strstr(out, "nan") || !strstr(out, "pairs with kernel >= 1e-12"))
        print_error("relu -1: exit %d: %s\n", rc, out);
    assert_int_equal(rc, 0);
    assert_null(strstr(out, "nan"));
    assert_non_null(strstr(out, "pairs with kernel >= 1e-12"));
}

/* A /W whose declared shape is beyond the largest m (m*d < 2^30) is refused with that bound;
 * the dataset is chunked and never written, so the file stays a few KiB. */
static void test_learned_too_many_rows(void **state)
{
    (void)state;
    const char *p = tmp_path("huge.h5");
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dims[2] = {268435456, 32}, chunk[2] = {1024, 32};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    assert_true(sp >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 2, chunk) >= 0);
    hid_t ds = H5Dcreate2(f, "W", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    assert_true(ds >= 0);
    hid_t t = H5Tcopy(H5T_C_S1), asp = H5Screate(H5S_SCALAR);
    assert_true(H5Tset_size(t, 5) >= 0);
    hid_t a = H5Acreate2(f, "activation", t, asp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(a >= 0 && H5Awrite(a, t, "relu") >= 0);
    H5Aclose(a), H5Sclose(asp), H5Tclose(t), H5Dclose(ds), H5Pclose(dcpl), H5Sclose(sp);
    assert_true(H5Fclose(f) >= 0);

    struct fm_params par;
    featuremap_params_default(&par, 32);
    par.weights = p;
    struct la_error err;
    la_error_clear(&err);
    struct featuremap *fm = featuremap_alloc("learned", &par, NULL, &err);
    assert_null(fm);
    assert_int_equal(err.status, LA_EFORMAT);
    /* (2^30 - 1) / 32 = 33554431: the bound the check applies is the one the message states. */
    if (!strstr(err.msg, "(268435456, 32)") || !strstr(err.msg, "1 <= m <= 33554431"))
        print_error("message: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "(268435456, 32)"));
    assert_non_null(strstr(err.msg, "1 <= m <= 33554431"));
    char out[4096];
    int rc = tu_run(out, sizeof out, "featuremap info learned --d 32 --weights '%s'", p);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "1 <= m <= 33554431"));
}

/* φ of every activation against the definition, computed here from the weights in double. */
static void check_learned_features(const char *path, const double *W, const double *b, int m,
                                   const char *act)
{
    struct la_error err;
    struct featuremap *fm = load_learned(path, 0, &err);
    if (!fm)
        print_error("%s\n", err.msg);
    assert_non_null(fm);
    int relu = !strcmp(act, "relu"), out = relu ? m : 2 * m;
    assert_int_equal(fm->m, out);
    enum { N = 12 };
    float x[N * D];
    tu_fill(x, N * D, 1.9f, MASTER_SEED + 60);
    float *phi = malloc((size_t)N * out * sizeof *phi),
          *raw = malloc((size_t)N * out * sizeof *raw);
    double *want = malloc((size_t)out * sizeof *want);
    apply(fm, FM_RAW, x, N, raw);
    apply(fm, FM_QUERY, x, N, phi);
    for (int r = 0; r < N; r++) {
        double mx = -INFINITY, sum = 0.0;
        for (int i = 0; i < m; i++) {
            double u = b[i];
            for (int j = 0; j < D; j++)
                u += W[i * D + j] * x[r * D + j];
            if (relu) {
                want[i] = u > 0 ? u : 0;
            } else {
                want[i] = u;
                want[m + i] = -u;
            }
        }
        if (!relu) {
            for (int i = 0; i < out; i++)
                mx = want[i] > mx ? want[i] : mx;
            for (int i = 0; i < out; i++) {
                want[i] = exp(want[i] - mx);
                sum += want[i];
            }
        }
        double scale = !strcmp(act, "softmax_pair") ? 1.0 / sum : 1.0;
        double raw_scale = !strcmp(act, "exp_pair") ? exp(mx) : scale;
        for (int i = 0; i < out; i++) {
            double w = want[i] * scale, wr = want[i] * raw_scale;
            assert_true(fabs(phi[r * out + i] - w) <= 1e-5 * (fabs(w) + 1e-6));
            assert_true(fabs(raw[r * out + i] - wr) <= 1e-5 * (fabs(wr) + 1e-6));
        }
    }
    /* The kernel method is φ(q)ᵀφ(k) of the unstabilised features. */
    double qd[D], kd[D];
    tu_to_double(x, qd, D);
    tu_to_double(x + D, kd, D);
    double kern = featuremap_kernel(fm, qd, kd), est = dotf(raw, raw + out, out);
    assert_true(fabs(kern - est) <= 1e-5 * fabs(kern) + 1e-12);
    free(phi);
    free(raw);
    free(want);
    featuremap_free(fm);
}

/* Reads /W and /b back (for files written by the CLI). */
static void read_back(const char *path, double *W, double *b, int m)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t ds = H5Dopen2(f, "W", H5P_DEFAULT);
    hid_t t = H5Dget_type(ds);
    assert_int_equal(H5Tget_class(t), H5T_FLOAT);
    assert_int_equal(H5Tget_size(t), 4);
    H5Tclose(t);
    hid_t sp = H5Dget_space(ds);
    hsize_t dims[2];
    assert_int_equal(H5Sget_simple_extent_ndims(sp), 2);
    H5Sget_simple_extent_dims(sp, dims, NULL);
    assert_int_equal(dims[0], m);
    assert_int_equal(dims[1], D);
    H5Sclose(sp);
    assert_true(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, W) >= 0);
    H5Dclose(ds);
    ds = H5Dopen2(f, "b", H5P_DEFAULT);
    assert_true(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) >= 0);
    H5Dclose(ds);
    H5Fclose(f);
}

static void test_learned_round_trip(void **state)
{
    (void)state;
    const char *acts[] = {"exp_pair", "softmax_pair", "relu"};
    char out[4096];
    /* Through the CLI: identity (padded: m > d) and random init, every activation. */
    for (int a = 0; a < 3; a++) {
        for (int init = 0; init <= 1; init++) {
            int m = init ? 12 : 20;
            const char *path = tmp_path(init ? "cli_random.h5" : "cli_identity.h5");
            int rc = tu_run(out, sizeof out,
                            "featuremap init-learned -o '%s' --d %d --m %d "
                            "--activation %s --init %s --seed 11",
                            path, D, m, acts[a], init ? "random" : "identity");
            if (rc != 0)
                print_error("init-learned: exit %d: %s\n", rc, out);
            assert_int_equal(rc, 0);
            double *W = malloc((size_t)m * D * sizeof *W), *b = malloc((size_t)m * sizeof *b);
            read_back(path, W, b, m);
            for (int i = 0; i < m; i++) {
                assert_true(b[i] == 0.0);
                for (int j = 0; j < D; j++)
                    if (!init)
                        assert_true(W[i * D + j] == (i == j ? 1.0 : 0.0));
            }
            if (init) {
                double s2 = 0;
                for (int i = 0; i < m * D; i++)
                    s2 += W[i] * W[i];
                assert_true(fabs(s2 / (m * D) * D - 1.0) < 0.3); /* N(0, 1/d) */
            }
            check_learned_features(path, W, b, m, acts[a]);
            free(W);
            free(b);
            rc = tu_run(out, sizeof out, "featuremap info learned --d %d --weights '%s'", D, path);
            assert_int_equal(rc, 0);
            assert_non_null(strstr(out, "kernel check"));
        }
    }
    /* Through the HDF5 library: a file written here with a bias. */
    const int m = 7;
    double W[7 * D], b[7];
    for (int i = 0; i < m * D; i++)
        W[i] = sin(0.37 * i + 0.11) * 0.6;
    for (int i = 0; i < m; i++)
        b[i] = 0.21 * i - 0.5;
    hsize_t dims[2] = {(hsize_t)m, D};
    for (int a = 0; a < 3; a++) {
        const char *path = tmp_path("lib.h5");
        write_weights(path, H5T_IEEE_F32LE, 2, dims, W, H5T_IEEE_F32LE, m, b, acts[a], a == 1, 0);
        /* Compare against the fp32-rounded weights the map actually uses. */
        double Wf[7 * D], bf[7];
        for (int i = 0; i < m * D; i++)
            Wf[i] = (float)W[i];
        for (int i = 0; i < m; i++)
            bf[i] = (float)b[i];
        check_learned_features(path, Wf, bf, m, acts[a]);
    }
    /* CLI input errors exit 2 with one line. */
    assert_int_equal(tu_run(out, sizeof out,
                            "featuremap init-learned -o %s/x.h5 --d 16 "
                            "--activation exp_pairs",
                            tmpdir),
                     2);
    assert_non_null(strstr(out, "did you mean 'exp_pair'"));
    assert_int_equal(tu_run(out, sizeof out,
                            "featuremap init-learned -o %s/no/such/dir/x.h5 "
                            "--d 16",
                            tmpdir),
                     2);
    assert_non_null(strstr(out, "cannot create"));
    assert_int_equal(tu_run(out, sizeof out, "featuremap init-learned --d 16"), 2);
    assert_int_equal(tu_run(out, sizeof out, "featuremap init-learned -o x.h5 --d 0"), 2);
    assert_int_equal(tu_run(out, sizeof out, "featuremap info gerff"), 2);
    assert_non_null(strstr(out, "did you mean 'gerf'"));
    assert_int_equal(tu_run(out, sizeof out, "featuremap info gerf --A 0.3"), 2);
    assert_int_equal(tu_run(out, sizeof out, "featuremap frobnicate"), 2);
    assert_int_equal(tu_run(out, sizeof out, "featuremap --help"), 0);
    assert_int_equal(tu_run(out, sizeof out, "help featuremap"), 0);
    assert_non_null(strstr(out, "init-learned"));
}

/* ---------------------------------------------------------------- through the kernels */

static void test_maps_through_kernels(void **state)
{
    (void)state;
    const int T = 150, dv = 12;
    const char *klist[] = {"linear_noncausal", "linear_causal_recurrent", "linear_causal_chunked"};
    /* A learned file for the learned map (random init, exp_pair is enough here: the others are
     * the same code after φ). */
    char out[4096];
    const char *wpath = tmp_path("kern.h5");
    assert_int_equal(tu_run(out, sizeof out,
                            "featuremap init-learned -o '%s' --d %d --m 24 "
                            "--init random --seed 3",
                            wpath, D),
                     0);
    const char *names[] = {"elu1", "relu", "taylor2", "rff", "prf", "hyp", "gerf", "learned"};
    float *q = malloc((size_t)T * D * sizeof *q), *k = malloc((size_t)T * D * sizeof *k);
    float *v = malloc((size_t)T * dv * sizeof *v), *y = malloc((size_t)T * dv * sizeof *y);
    double *vd = malloc((size_t)T * dv * sizeof *vd), *yd = malloc((size_t)T * dv * sizeof *yd);
    tu_fill(q, (size_t)T * D, 1.5f, MASTER_SEED + 70);
    tu_fill(k, (size_t)T * D, 1.5f, MASTER_SEED + 71);
    tu_fill(v, (size_t)T * dv, 1.0f, MASTER_SEED + 72);
    tu_to_double(v, vd, (size_t)T * dv);
    for (int i = 0; i < 8; i++) {
        struct fm_params p;
        featuremap_params_default(&p, D);
        if (!strcmp(names[i], "rff"))
            p.m = 256; /* many draws keep the normalisers away from zero */
        p.weights = wpath;
        p.A_auto = 1;
        struct featuremap *fm = make_map(names[i], &p, 8);
        struct la_error err;
        assert_int_equal(featuremap_fit(fm, q, T, k, T, &err), LA_OK);
        int m = fm->m;
        size_t sz = (size_t)T * m;
        float *fq = malloc(sz * sizeof *fq), *fk = malloc(sz * sizeof *fk);
        double *a = malloc(sz * sizeof *a), *b = malloc(sz * sizeof *b);
        apply(fm, FM_QUERY, q, T, fq);
        apply(fm, FM_KEY, k, T, fk);
        tu_to_double(fq, a, sz);
        tu_to_double(fk, b, sz);
        double worst = 0.0;
        int skipped_all = 0;
        for (int kk = 0; kk < 3; kk++) {
            const struct attn_kernel *kn = attn_kernel_lookup(klist[kk]);
            assert_non_null(kn);
            int causal = kk > 0;
            attn_linear_ref(a, b, vd, yd, T, m, dv, causal, 1e-6);
            size_t wsz = attn_workspace_floats(kn, T, m, dv, causal, 0, 1);
            float *w = malloc((wsz ? wsz : 1) * sizeof *w);
            struct attn_args args = {.q = fq,
                                     .k = fk,
                                     .v = v,
                                     .y = y,
                                     .T = T,
                                     .dk = m,
                                     .dv = dv,
                                     .causal = causal,
                                     .eps = 1e-6f,
                                     .chunk = 0,
                                     .threads = 1,
                                     .work = w};
            kn->run(&args);
            free(w);
            /* rff's normaliser can come near zero, where any rounding is amplified: compare
             * only rows with |φ(q_i)ᵀz_i| > 1e-2 · the median row's (positive maps: all rows). */
            int skipped = 0;
            double num = 0.0, den = 0.0;
            for (int r = 0; r < T; r++) {
                double zr = 0.0;
                for (int j = 0; j <= (causal ? r : T - 1); j++)
                    zr += dotd(a + (size_t)r * m, b + (size_t)j * m, m);
                if (!strcmp(names[i], "rff") && fabs(zr) <= 1e-2 * (causal ? r + 1 : T) / T) {
                    skipped++;
                    continue;
                }
                for (int c = 0; c < dv; c++) {
                    double e = (double)y[r * dv + c] - yd[r * dv + c];
                    num += e * e;
                    den += yd[r * dv + c] * yd[r * dv + c];
                }
            }
            double rel = sqrt(num / den);
            worst = rel > worst ? rel : worst;
            skipped_all += skipped;
            assert_true(skipped < T / 10);
            if (!(rel < 1e-4))
                print_error("%s through %s: rel err %.3g\n", names[i], klist[kk], rel);
            assert_true(rel < 1e-4);
        }
        print_message("  %-8s m = %4d: worst relative error over the 3 linear kernels %.2e, "
                      "%d rows skipped (small normaliser)\n",
                      names[i], m, worst, skipped_all);
        free(fq);
        free(fk);
        free(a);
        free(b);
        featuremap_free(fm);
    }
    free(q);
    free(k);
    free(v);
    free(y);
    free(vd);
    free(yd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/linattn_fm_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The stabilisers rescale rows; with the per-row eps the kernels get (eps·e^{-shift_q - shift_k},
 * as the runner passes it), the output equals the defining formula on unstabilised features
 * with the plain eps, and a causal row does not depend on later keys through the key constant.
 * eps = 1e-6 here, at σ ≈ 1, d = 64: without the per-row eps the outputs differ by ~5%. */
static void stab_outputs(const struct featuremap *fm, const float *q, const float *k,
                         const float *v, int T, int d, float eps, float *y)
{
    const int m = fm->m;
    float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
    float *sq = malloc(sizeof(float) * T), *sk = malloc(sizeof(float) * T);
    float *er = malloc(sizeof(float) * T);
    size_t wf = featuremap_work_floats(fm, (size_t)T);
    float *w = wf ? malloc(wf * sizeof *w) : NULL;
    assert_int_equal(featuremap_apply_shift(fm, FM_QUERY, q, (size_t)T, pq, w, sq), LA_OK);
    assert_int_equal(featuremap_apply_shift(fm, FM_KEY, k, (size_t)T, pk, w, sk), LA_OK);
    for (int i = 0; i < T; i++)
        er[i] = (float)(eps * exp(-(double)sq[i] - (double)sk[0]));
    const struct attn_kernel *kn = attn_kernel_lookup("linear_causal");
    float *ws = malloc(sizeof(float) * attn_workspace_floats(kn, T, m, d, 1, 0, 1));
    struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y, .T = T, .dk = m, .dv = d,
                          .causal = 1, .eps = eps, .eps_row = er, .work = ws};
    kn->run(&a);
    free(pq), free(pk), free(sq), free(sk), free(er), free(w), free(ws);
}

static void test_stabiliser_keeps_eps(void **state)
{
    (void)state;
    const int T = 300, d = 64;
    const float eps = 1e-6f;
    const char *names[] = {"prf", "hyp", "gerf", "rff"};
    float *q = malloc(sizeof(float) * T * d), *k = malloc(sizeof(float) * T * d);
    float *v = malloc(sizeof(float) * T * d);
    float *y1 = malloc(sizeof(float) * T * d), *y2 = malloc(sizeof(float) * T * d);
    for (int n = 0; n < 4; n++) {
        tu_fill(q, (size_t)T * d, 1.7f, 501);
        tu_fill(k, (size_t)T * d, 1.7f, 502);
        tu_fill(v, (size_t)T * d, 1.0f, 503);
        struct fm_params p;
        featuremap_params_default(&p, d);
        p.m = 64;
        struct featuremap *fm = make_map(names[n], &p, 77);
        const int m = fm->m;
        stab_outputs(fm, q, k, v, T, d, eps, y1);
        /* The definition: unstabilised features (FM_RAW), plain eps, in double. */
        float *rq = malloc(sizeof(float) * T * m), *rk = malloc(sizeof(float) * T * m);
        apply(fm, FM_RAW, q, (size_t)T, rq);
        apply(fm, FM_RAW, k, (size_t)T, rk);
        double *rqd = malloc(sizeof(double) * T * m), *rkd = malloc(sizeof(double) * T * m);
        double *vd = malloc(sizeof(double) * T * d), *yd = malloc(sizeof(double) * T * d);
        tu_to_double(rq, rqd, (size_t)T * m);
        tu_to_double(rk, rkd, (size_t)T * m);
        tu_to_double(v, vd, (size_t)T * d);
        attn_linear_ref(rqd, rkd, vd, yd, T, m, d, 1, eps);
        const double e1 = tu_rel_err(y1, yd, (size_t)T * d);
        print_message("  %-5s stabilised + per-row eps vs the formula with eps = 1e-6: %.2e\n",
                      names[n], e1);
        assert_true(e1 < (strcmp(names[n], "rff") ? 1e-4 : 1e-2));
        /* Make the last key the one that sets the key constant: take the key with the largest
         * row exponent (its query-role shift) and scale it until its exponent is larger
         * still; the constant then changes, and earlier rows must not move. */
        float *ph = malloc(sizeof(float) * T * m), *sh = malloc(sizeof(float) * T);
        size_t wf = featuremap_work_floats(fm, (size_t)T);
        float *w = wf ? malloc(wf * sizeof *w) : NULL;
        assert_int_equal(featuremap_apply_shift(fm, FM_QUERY, k, (size_t)T, ph, w, sh), LA_OK);
        int top = 0;
        for (int i = 1; i < T; i++)
            top = sh[i] > sh[top] ? i : top;
        const float before = sh[top];
        int raised = 0;
        static const float scales[] = {1.02f, 0.98f, 1.05f, 0.95f, 1.1f, 0.9f, 1.25f, 0.8f, 1.5f, 2.0f};
        for (size_t t = 0; t < sizeof scales / sizeof scales[0] && !raised; t++) {
            for (int c = 0; c < d; c++)
                k[(size_t)(T - 1) * d + c] = scales[t] * k[(size_t)top * d + c];
            assert_int_equal(featuremap_apply_shift(fm, FM_QUERY, k + (size_t)(T - 1) * d, 1, ph,
                                                    w, sh), LA_OK);
            raised = sh[0] > before + 0.01f;
        }
        assert_true(raised);
        free(ph), free(sh), free(w);
        stab_outputs(fm, q, k, v, T, d, eps, y2);
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)(T - 1) * d; i++) {
            num += ((double)y1[i] - y2[i]) * ((double)y1[i] - y2[i]);
            den += (double)y1[i] * y1[i];
        }
        print_message("  %-5s rows 0..T-2 after changing key T-1: relative change %.2e\n",
                      names[n], sqrt(num / den));
        /* rff's normaliser can come close to 0 (signed features), which magnifies rounding. */
        assert_true(sqrt(num / den) < (strcmp(names[n], "rff") ? 1e-5 : 2e-3));
        free(rq), free(rk), free(rqd), free(rkd), free(vd), free(yd);
        featuremap_free(fm);
    }
    free(q), free(k), free(v), free(y1), free(y2);
}

/* ---------------------------------------------------------------- nominal cost */

/* Each map's nominal flops and bytes (featuremap.h's convention) on n = 3 rows of d = 4, against
 * counts made by hand from its apply; its nominal_dim against the m of a built map. */
static void test_nominal_cost(void **state)
{
    (void)state;
    const size_t n = 3;
    const int d = 4;
    struct la_error err;
    struct {
        const char *name;
        int m;        /* output dimension */
        double flops; /* per row, by hand */
        double param; /* parameter floats read once */
    } want[] = {
        /* elu1: min, exp, max, add per feature: 4·4. */
        {"elu1", 4, 16, 0},
        /* relu: max and + eps per feature: 2·4. */
        {"relu", 4, 8, 0},
        /* taylor2, m = 1 + 4 + 10 = 15: x̃ 4 multiplies, x̃_i²/√2 2·4, x̃_i·x̃_j 6: 18. */
        {"taylor2", 15, 18, 0},
        /* prf, 6 draws: W·x 2·4·6 = 48, ‖x̃‖² 8, per feature max, two shifts, exp, scale 30;
         * W 6·4. */
        {"prf", 6, 86, 24},
        /* gerf: prf's and one offset add per feature (6); Ws 6·4 and 6 offsets. */
        {"gerf", 6, 92, 30},
        /* rff, 3 draws for 6 features: W·x 2·4·3 = 24, ‖x̃‖² 8, 3 sin + 3 cos, 6 scales; W 3·4. */
        {"rff", 6, 44, 12},
        /* hyp, 3 draws for 6 features: W·x 24, ‖x̃‖² 8, max, two shifts, exp, scale on 6: 30. */
        {"hyp", 6, 62, 12},
        /* learned (the pair form), 3 units for 6 features: W·x 24, bias 3, max, two shifts
         * and exp on 6: 24; W 3·4 and b 3. */
        {"learned", 6, 51, 15},
        /* dpfp, ν = 1, m = 2·4 = 8: the 8 relus of [x, −x], one product per feature: 16. */
        {"dpfp", 8, 16, 0},
    };
    const size_t nw = sizeof want / sizeof want[0];
    assert_int_equal(nw, featuremap_count());
    for (size_t i = 0; i < nw; i++) {
        const struct featuremap_type *t = featuremap_lookup(want[i].name, &err);
        assert_non_null(t);
        assert_non_null(t->flops);
        assert_non_null(t->bytes);
        assert_non_null(t->nominal_dim);
        const double f = featuremap_nominal_flops(t, n, d, want[i].m);
        const double b = featuremap_nominal_bytes(t, n, d, want[i].m);
        /* Bytes: 3 rows of 4 read, 3 rows of m written, the parameters once, all fp32. */
        const double bw = 4.0 * (n * d + n * want[i].m + want[i].param);
        if (f != n * want[i].flops || b != bw)
            print_error("%s: flops %g (want %g), bytes %g (want %g)\n", want[i].name, f,
                        n * want[i].flops, b, bw);
        assert_true(f == n * want[i].flops);
        assert_true(b == bw);
        /* The model at n = 0 is the parameters alone; flops grow linearly in n. */
        assert_true(featuremap_nominal_bytes(t, 0, d, want[i].m) == 4.0 * want[i].param);
        assert_true(featuremap_nominal_flops(t, 0, d, want[i].m) == 0.0);
        assert_true(featuremap_nominal_flops(t, 2 * n, d, want[i].m) == 2.0 * f);
    }
    /* The output dimension from the parameters, without building: deterministic maps fix it,
     * m counts draws for the random maps (0 = d), and rff, hyp and learned's pair form give two
     * features per draw or unit. */
    const struct {
        const char *name;
        int m, dim;
    } dims[] = {{"elu1", 0, 4},  {"relu", 0, 4}, {"taylor2", 0, 15}, {"prf", 0, 4},
                {"prf", 6, 6},   {"gerf", 6, 6}, {"rff", 3, 6},      {"rff", 0, 8},
                {"hyp", 3, 6},   {"hyp", 0, 8},  {"learned", 3, 6},  {"learned", 0, 8},
                {"dpfp", 0, 8}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        const struct featuremap_type *t = featuremap_lookup(dims[i].name, &err);
        assert_true(featuremap_nominal_dim(t, d, dims[i].m) == dims[i].dim);
    }
    /* ... and it is the m a built map reports (learned: an exp_pair file of 3 units of D). */
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        const struct featuremap_type *t = featuremap_lookup(dims[i].name, &err);
        if (!strcmp(t->name, "learned"))
            continue;
        struct fm_params p;
        featuremap_params_default(&p, d);
        p.m = dims[i].m;
        struct featuremap *fm = make_map(t->name, &p, MASTER_SEED);
        assert_int_equal(fm->m, dims[i].dim);
        assert_true(featuremap_params_dim(t, &p) == dims[i].dim);
        featuremap_free(fm);
    }
    /* dpfp's dimension depends on ν, which only the whole parameters carry: 2·d·ν. */
    const struct featuremap_type *dpfp = featuremap_lookup("dpfp", &err);
    for (int nu = 1; nu <= 3; nu++) {
        struct fm_params p;
        featuremap_params_default(&p, d);
        p.nu = nu;
        struct featuremap *fm = make_map("dpfp", &p, MASTER_SEED);
        assert_int_equal(fm->m, 2 * d * nu);
        assert_true(featuremap_params_dim(dpfp, &p) == fm->m);
        featuremap_free(fm);
    }
    const char *path = tmp_path("cost.h5");
    double W[3 * D];
    for (int i = 0; i < 3 * D; i++)
        W[i] = 0.01 * (i % 7) - 0.02;
    const hsize_t wd[2] = {3, D};
    write_weights(path, H5T_IEEE_F32LE, 2, wd, W, 0, 0, NULL, "exp_pair", 0, 0);
    struct featuremap *fm = load_learned(path, 0, &err);
    assert_non_null(fm);
    assert_true(featuremap_nominal_dim(fm->type, D, 3) == fm->m);
    featuremap_free(fm);
    /* The generic layer refuses what no model covers. */
    const struct featuremap_type *prf = featuremap_lookup("prf", &err);
    assert_true(isnan(featuremap_nominal_flops(NULL, n, d, 6)));
    assert_true(isnan(featuremap_nominal_flops(prf, n, 0, 6)));
    assert_true(isnan(featuremap_nominal_flops(prf, n, d, 0)));
    assert_true(isnan(featuremap_nominal_bytes(prf, n, d, 0)));
    assert_true(isnan(featuremap_nominal_dim(prf, d, -1)));
    assert_true(isnan(featuremap_nominal_dim(NULL, d, 0)));
    struct fm_params bad;
    featuremap_params_default(&bad, 0);
    assert_true(isnan(featuremap_params_dim(prf, &bad)));
    assert_true(isnan(featuremap_params_dim(NULL, &bad)));
}

int main(void)
{
    la_startup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_parameter_errors),
        cmocka_unit_test(test_orthogonal_blocks),
        cmocka_unit_test(test_bit_identical),
        cmocka_unit_test(test_proj_rows),
        cmocka_unit_test(test_exp_maps_exact),
        cmocka_unit_test(test_unbiased_and_variance),
        cmocka_unit_test(test_taylor2_exact),
        cmocka_unit_test(test_nonnegative),
        cmocka_unit_test(test_dpfp),
        cmocka_unit_test(test_overflow),
        cmocka_unit_test(test_stabiliser_cancels),
        cmocka_unit_test(test_learned_errors),
        cmocka_unit_test(test_learned_degenerate),
        cmocka_unit_test(test_learned_too_many_rows),
        cmocka_unit_test(test_learned_round_trip),
        cmocka_unit_test(test_maps_through_kernels),
        cmocka_unit_test(test_stabiliser_keeps_eps),
        cmocka_unit_test(test_nominal_cost),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
