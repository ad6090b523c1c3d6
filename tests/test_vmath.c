/* test_vmath.c — tests of kernels/vmath.c: accuracy of every implementation this CPU can run
 * (AVX-512, AVX2+FMA, portable C) against libm in double, special values, tails, in-place
 * calls, the affine and pair forms against their definitions bit for bit, agreement between
 * paths, and the run-time choice (LINATTN_VMATH).
 *
 * Not a benchmark and not an exhaustive check (the bounds in vmath.h were measured
 * exhaustively over every float of the ranges once; here dense sweeps plus random points and
 * the hard cases re-check them in about a second).
 * Run: make build/tests/test_vmath && build/tests/test_vmath
 * (the binary re-runs itself as `test_vmath --isa` to check the environment override).
 */
#include "testutil.h"

#include <float.h>
#include <unistd.h>

#include "../kernels/vmath.h"

static const char *const isa_names[] = {"avx512", "avx2", "scalar"};
#define N_ISA (sizeof isa_names / sizeof isa_names[0])

/* The implementations this CPU runs, best first; returns how many. */
static size_t available(const struct la_vmath_impl **out)
{
    size_t k = 0;
    for (size_t i = 0; i < N_ISA; i++) {
        const struct la_vmath_impl *im = la_vmath_get(isa_names[i]);
        if (im)
            out[k++] = im;
        else
            print_message("vmath: %s not available on this CPU, not tested\n", isa_names[i]);
    }
    return k;
}

static int same_bits(float a, float b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* The spacing of floats at the exact value r (subnormal spacing below FLT_MIN). */
static double float_ulp(double r)
{
    int e;
    frexp(fabs(r), &e);
    return e - 24 < -149 ? 0x1p-149 : ldexp(1.0, e - 24);
}

/* ---- inputs ------------------------------------------------------------------------------- */

#define N_DENSE (1u << 21)
#define N_RAND (1u << 17)

/* Exp inputs: an even sweep over the normal-result range, a sweep over the subnormal-result
 * range, random points over the whole clamped range. */
static float *exp_inputs(size_t *n)
{
    size_t nsub = 1u << 16, total = N_DENSE + nsub + N_RAND;
    float *x = malloc(total * sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < N_DENSE; i++)
        x[i] = (float)(-87.3 + (88.72 + 87.3) * (double)i / (N_DENSE - 1));
    for (size_t i = 0; i < nsub; i++)
        x[N_DENSE + i] = (float)(-103.9 + (103.9 - 87.34) * (double)i / (nsub - 1));
    tu_fill(x + N_DENSE + nsub, N_RAND, 96.0f, 0x5eed0e8fu);
    for (size_t i = 0; i < N_RAND; i++)
        x[N_DENSE + nsub + i] -= 7.5f; /* [-103.5, 88.5) */
    *n = total;
    return x;
}

/* Sincos inputs: an even sweep over ±LA_VSINCOS_RANGE, random small arguments (where random
 * Fourier features live), and the floats nearest k·π/2 (where reduction cancels most). */
static float *sincos_inputs(size_t *n)
{
    size_t kmax = (size_t)(LA_VSINCOS_RANGE / M_PI_2);
    size_t total = N_DENSE + N_RAND + 10 * kmax;
    float *x = malloc(total * sizeof *x);
    if (!x)
        return NULL;
    for (size_t i = 0; i < N_DENSE; i++)
        x[i] =
            (float)(-(double)LA_VSINCOS_RANGE + 2.0 * LA_VSINCOS_RANGE * (double)i / (N_DENSE - 1));
    tu_fill(x + N_DENSE, N_RAND, 7.853f, 0xc0ffee11u);
    size_t j = N_DENSE + N_RAND;
    for (size_t k = 1; k <= kmax; k++) {
        float v = (float)(k * M_PI_2);
        float lo = nextafterf(nextafterf(v, 0.0f), 0.0f);
        for (int s = 0; s < 5; s++) {
            x[j++] = lo;
            x[j++] = -lo;
            lo = nextafterf(lo, INFINITY);
        }
    }
    *n = j;
    return x;
}

/* ---- accuracy ----------------------------------------------------------------------------- */

static void test_exp_accuracy(void **state)
{
    (void)state;
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im), n = 0;
    float *x = exp_inputs(&n);
    float *y = malloc(n * sizeof *y);
    double *ref = malloc(n * sizeof *ref);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(ref);
    for (size_t i = 0; i < n; i++)
        ref[i] = exp((double)x[i]);
    for (size_t k = 0; k < nim; k++) {
        im[k]->vexpf(x, y, n);
        double maxu = 0, maxsub = 0;
        float worst = 0;
        for (size_t i = 0; i < n; i++) {
            double e = fabs((double)y[i] - ref[i]);
            if (ref[i] < FLT_MIN) {
                maxsub = fmax(maxsub, e);
            } else if (e / float_ulp(ref[i]) > maxu) {
                maxu = e / float_ulp(ref[i]);
                worst = x[i];
            }
        }
        print_message("vmath %-6s expf: max %.4f ulp (at x = %.9g), subnormal results max %.3f "
                      "steps of 2^-149, over %zu points\n",
                      im[k]->name, maxu, (double)worst, maxsub / 0x1p-149, n);
        assert_true(maxu <= LA_VEXPF_ULP);
        assert_true(maxsub <= LA_VEXPF_SUBNORMAL_ABS);
    }
    free(x);
    free(y);
    free(ref);
}

static void test_sincos_accuracy(void **state)
{
    (void)state;
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im), n = 0;
    float *x = sincos_inputs(&n);
    float *s = malloc(n * sizeof *s), *c = malloc(n * sizeof *c);
    double *rs = malloc(n * sizeof *rs), *rc = malloc(n * sizeof *rc);
    assert_non_null(x);
    assert_non_null(s);
    assert_non_null(c);
    assert_non_null(rs);
    assert_non_null(rc);
    for (size_t i = 0; i < n; i++) {
        rs[i] = sin((double)x[i]);
        rc[i] = cos((double)x[i]);
    }
    for (size_t k = 0; k < nim; k++) {
        im[k]->vsincosf(x, s, c, n);
        double es = 0, ec = 0;
        for (size_t i = 0; i < n; i++) {
            es = fmax(es, fabs((double)s[i] - rs[i]));
            ec = fmax(ec, fabs((double)c[i] - rc[i]));
        }
        print_message("vmath %-6s sincosf: max abs error sin %.3g, cos %.3g over %zu points "
                      "in |x| <= %g\n",
                      im[k]->name, es, ec, n, (double)LA_VSINCOS_RANGE);
        assert_true(es <= LA_VSINCOS_ABS);
        assert_true(ec <= LA_VSINCOS_ABS);
    }
    free(x);
    free(s);
    free(c);
    free(rs);
    free(rc);
}

/* ---- special values ----------------------------------------------------------------------- */

static void test_exp_special(void **state)
{
    (void)state;
    const float xmax = 0x1.62e42ep+6f; /* 88.7228: the largest x with exp(x) <= FLT_MAX */
    /* clang-format off */
    const float x[] = {NAN,     -NAN,       INFINITY, -INFINITY, 0.0f,       -0.0f,
                       1e-30f,  -1e-30f,    1e-40f,   1.0f,      -1.0f,      xmax,
                       nextafterf(xmax, INFINITY),    89.0f,     1e30f,      FLT_MAX,
                       -104.0f, -103.98f,   -1e30f,   -FLT_MAX,  -87.33654f, -100.0f,
                       -103.9f, -103.278f,  -88.0f,   42.4242f,  -0.3465f,   0.3466f};
    /* clang-format on */
    const size_t n = sizeof x / sizeof x[0];
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    float y[sizeof x / sizeof x[0]], y1;
    for (size_t k = 0; k < nim; k++) {
        im[k]->vexpf(x, y, n);
        for (size_t i = 0; i < n; i++) {
            /* One element at a time goes through the tail code: same answer. */
            im[k]->vexpf(&x[i], &y1, 1);
            assert_true(same_bits(y1, y[i]));
            double r = exp((double)x[i]);
            if (isnan(x[i])) {
                assert_true(isnan(y[i]));
            } else if (r > FLT_MAX) {
                assert_true(isinf(y[i]) && y[i] > 0);
            } else if (r < 0x1p-150) {
                assert_true(y[i] == 0.0f && !signbit(y[i]));
            } else if (r < FLT_MIN) {
                assert_true(fabs((double)y[i] - r) <= LA_VEXPF_SUBNORMAL_ABS);
            } else {
                assert_true(isfinite(y[i]));
                assert_true(fabs((double)y[i] - r) <= LA_VEXPF_ULP * float_ulp(r));
            }
        }
        /* Exact where the answer is exact. */
        assert_true(y[4] == 1.0f && y[5] == 1.0f && y[6] == 1.0f && y[8] == 1.0f);
        /* -103.9: exp = 1.07·2^-150 rounds up to the smallest subnormal; -103.98 rounds to 0. */
        assert_true(y[22] == 0x1p-149f);
        assert_true(y[17] == 0.0f);
    }
}

static void test_sincos_special(void **state)
{
    (void)state;
    /* clang-format off */
    const float x[] = {NAN,       -NAN,     INFINITY, -INFINITY, 0.0f,    -0.0f,   1e-30f,
                       -1e-40f,   FLT_MIN,  1.0f,     -2.5f,     1e4f,    -1e4f,
                       nextafterf(1e4f, INFINITY), -nextafterf(1e4f, INFINITY), 12345.678f,
                       1e5f,      -3.1e6f,  16777216.0f, 3e7f,   1e30f,   -1e30f,  FLT_MAX,
                       -FLT_MAX,  0.7853982f, 1.5707964f, 3.1415927f, 4.712389f};
    /* clang-format on */
    const size_t n = sizeof x / sizeof x[0];
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    float s[sizeof x / sizeof x[0]], c[sizeof x / sizeof x[0]], s1, c1;
    for (size_t k = 0; k < nim; k++) {
        im[k]->vsincosf(x, s, c, n);
        for (size_t i = 0; i < n; i++) {
            im[k]->vsincosf(&x[i], &s1, &c1, 1);
            assert_true(same_bits(s1, s[i]) && same_bits(c1, c[i]));
            if (!isfinite(x[i])) {
                assert_true(isnan(s[i]) && isnan(c[i]));
                continue;
            }
            /* Beyond the range libm answers, so the bound holds for every finite x. */
            assert_true(fabs((double)s[i] - sin((double)x[i])) <= LA_VSINCOS_ABS);
            assert_true(fabs((double)c[i] - cos((double)x[i])) <= LA_VSINCOS_ABS);
        }
        /* Signed zeros, and tiny arguments give sin x = x exactly. */
        assert_true(s[4] == 0.0f && !signbit(s[4]) && c[4] == 1.0f);
        assert_true(s[5] == 0.0f && signbit(s[5]) && c[5] == 1.0f);
        assert_true(s[6] == x[6] && s[7] == x[7] && s[8] == x[8]);
    }
}

/* ---- tails, alignment, in place ----------------------------------------------------------- */

#define TAIL_BUF 72
#define SENTINEL 12345.678f

static void test_tails(void **state)
{
    (void)state;
    static const size_t ns[] = {0, 1, 7, 15, 16, 17, 33};
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    float xb[TAIL_BUF], full_y[TAIL_BUF], full_s[TAIL_BUF], full_c[TAIL_BUF];
    float y[TAIL_BUF], s[TAIL_BUF], c[TAIL_BUF];
    tu_fill(xb, TAIL_BUF, 60.3f, 0x7a11u);
    xb[3] = 3.3e5f; /* out of sincos range: libm fallback inside a vector and inside a tail */
    xb[1 + 16 + 2] = -7.7e6f;
    xb[1 + 32] = NAN;
    for (size_t k = 0; k < nim; k++) {
        /* Offset 1: no alignment.  Every element's result is independent of n and position. */
        im[k]->vexpf(xb + 1, full_y, 64);
        im[k]->vsincosf(xb + 1, full_s, full_c, 64);
        im[k]->vexpf(NULL, NULL, 0);
        im[k]->vsincosf(NULL, NULL, NULL, 0);
        for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
            size_t n = ns[t];
            for (size_t i = 0; i < TAIL_BUF; i++)
                y[i] = s[i] = c[i] = SENTINEL;
            im[k]->vexpf(xb + 1, y + 1, n);
            im[k]->vsincosf(xb + 1, s + 1, c + 1, n);
            for (size_t i = 0; i < TAIL_BUF; i++) {
                if (i >= 1 && i <= n) {
                    assert_true(same_bits(y[i], full_y[i - 1]));
                    assert_true(same_bits(s[i], full_s[i - 1]));
                    assert_true(same_bits(c[i], full_c[i - 1]));
                } else {
                    assert_true(y[i] == SENTINEL && s[i] == SENTINEL && c[i] == SENTINEL);
                }
            }
        }
    }
    la_vexpf(NULL, NULL, 0);
    la_vsincosf(NULL, NULL, NULL, 0);
}

static void test_in_place(void **state)
{
    (void)state;
    enum { N = 1003 };
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    float x[N], y[N], s[N], c[N], a[N], b[N];
    tu_fill(x, N, 31.41f, 0x1a9eu);
    x[500] = 4.4e4f;
    for (size_t k = 0; k < nim; k++) {
        im[k]->vexpf(x, y, N);
        im[k]->vsincosf(x, s, c, N);
        memcpy(a, x, sizeof a);
        im[k]->vexpf(a, a, N);
        assert_memory_equal(a, y, sizeof a);
        memcpy(a, x, sizeof a);
        im[k]->vsincosf(a, a, b, N); /* s aliases x */
        assert_memory_equal(a, s, sizeof a);
        assert_memory_equal(b, c, sizeof b);
        memcpy(a, x, sizeof a);
        im[k]->vsincosf(a, b, a, N); /* c aliases x */
        assert_memory_equal(b, s, sizeof b);
        assert_memory_equal(a, c, sizeof a);
    }
}

/* vexpf_affine equals its definition — (x − sub) + add in fp32, vexpf, times scale — bit for
 * bit on every path, for every length up to three vectors (tails) and a long array, with
 * special values among the inputs and in place. */
static void test_exp_affine(void **state)
{
    (void)state;
    enum { N = 1003 };
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    static float x[N], y[N], t[N], a[N];
    tu_fill(x, N, 40.0f, 0xaff1u);
    x[3] = NAN, x[17] = INFINITY, x[18] = -INFINITY, x[40] = 0.0f, x[41] = -0.0f, x[77] = 1e30f;
    static const float par[][3] = {{0.0f, 0.0f, 1.0f},   {3.25f, -0.5f, 0.0625f},
                                   {-7.0f, 0.0f, 0.125f}, {1e-3f, -1e-3f, 0.7071068f},
                                   {30.0f, -2.0f, 1.0f}};
    for (size_t k = 0; k < nim; k++)
        for (size_t p = 0; p < sizeof par / sizeof par[0]; p++)
            for (size_t n = 0; n <= N; n = n < 48 ? n + 1 : N) {
                const float sub = par[p][0], add = par[p][1], sc = par[p][2];
                for (size_t i = 0; i < n; i++)
                    t[i] = (x[i] - sub) + add;
                im[k]->vexpf(t, t, n);
                for (size_t i = 0; i < n; i++)
                    t[i] *= sc;
                im[k]->vexpf_affine(x, y, n, sub, add, sc);
                memcpy(a, x, sizeof a);
                im[k]->vexpf_affine(a, a, n, sub, add, sc);
                for (size_t i = 0; i < n; i++) {
                    if (!same_bits(y[i], t[i]) && !(isnan(y[i]) && isnan(t[i])))
                        print_error("%s: affine(%g, %g, %g) at x = %g: %a vs %a\n", im[k]->name,
                                    sub, add, sc, x[i], y[i], t[i]);
                    assert_true(same_bits(y[i], t[i]) || (isnan(y[i]) && isnan(t[i])));
                    assert_true(same_bits(a[i], y[i]) || (isnan(a[i]) && isnan(y[i])));
                }
                if (n == N)
                    break;
            }
    la_vexpf_affine(NULL, NULL, 0, 1.0f, 2.0f, 3.0f); /* n = 0 touches nothing */
}

/* vexpf_pair equals vexpf_affine of x and of −x bit for bit on every path, for every length up
 * to three vectors (tails) and a long array, with special values, in place (yp = x). */
static void test_exp_pair(void **state)
{
    (void)state;
    enum { N = 1003 };
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    static float x[N], nx[N], tp[N], tm[N], yp[N], ym[N], a[N], am[N];
    tu_fill(x, N, 40.0f, 0x9a17u);
    x[3] = NAN, x[17] = INFINITY, x[18] = -INFINITY, x[40] = 0.0f, x[41] = -0.0f, x[77] = 1e30f;
    for (size_t i = 0; i < N; i++)
        nx[i] = -x[i];
    static const float par[][3] = {{0.0f, 0.0f, 1.0f}, {3.25f, -0.5f, 0.0625f},
                                   {30.0f, -2.0f, 1.0f}};
    for (size_t k = 0; k < nim; k++)
        for (size_t p = 0; p < sizeof par / sizeof par[0]; p++)
            for (size_t n = 0; n <= N; n = n < 48 ? n + 1 : N) {
                const float sub = par[p][0], add = par[p][1], sc = par[p][2];
                im[k]->vexpf_affine(x, tp, n, sub, add, sc);
                im[k]->vexpf_affine(nx, tm, n, sub, add, sc);
                im[k]->vexpf_pair(x, yp, ym, n, sub, add, sc);
                memcpy(a, x, sizeof a);
                im[k]->vexpf_pair(a, a, am, n, sub, add, sc);
                for (size_t i = 0; i < n; i++) {
                    const int okp = same_bits(yp[i], tp[i]) || (isnan(yp[i]) && isnan(tp[i]));
                    const int okm = same_bits(ym[i], tm[i]) || (isnan(ym[i]) && isnan(tm[i]));
                    if (!okp || !okm)
                        print_error("%s: pair(%g, %g, %g) at x = %g: %a %a vs %a %a\n",
                                    im[k]->name, sub, add, sc, x[i], yp[i], ym[i], tp[i], tm[i]);
                    assert_true(okp && okm);
                    assert_true(same_bits(a[i], yp[i]) || (isnan(a[i]) && isnan(yp[i])));
                    assert_true(same_bits(am[i], ym[i]) || (isnan(am[i]) && isnan(ym[i])));
                }
                if (n == N)
                    break;
            }
    la_vexpf_pair(NULL, NULL, NULL, 0, 1.0f, 2.0f, 3.0f); /* n = 0 touches nothing */
}

/* ---- agreement between paths and the dispatcher ------------------------------------------- */

static void test_paths_agree(void **state)
{
    (void)state;
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im), ne = 0, ns = 0;
    float *xe = exp_inputs(&ne), *xs = sincos_inputs(&ns);
    size_t nmax = ne > ns ? ne : ns;
    float *y0 = malloc(nmax * sizeof *y0), *y1 = malloc(nmax * sizeof *y1);
    float *c0 = malloc(nmax * sizeof *c0), *c1 = malloc(nmax * sizeof *c1);
    assert_true(xe && xs && y0 && y1 && c0 && c1);
    for (size_t k = 1; k < nim; k++) {
        size_t diff_e = 0, diff_s = 0;
        double maxu = 0, maxa = 0;
        im[0]->vexpf(xe, y0, ne);
        im[k]->vexpf(xe, y1, ne);
        for (size_t i = 0; i < ne; i++) {
            if (!same_bits(y0[i], y1[i])) {
                diff_e++;
                maxu = fmax(maxu, fabs((double)y0[i] - y1[i]) / float_ulp(y0[i]));
            }
        }
        im[0]->vsincosf(xs, y0, c0, ns);
        im[k]->vsincosf(xs, y1, c1, ns);
        for (size_t i = 0; i < ns; i++) {
            if (!same_bits(y0[i], y1[i]) || !same_bits(c0[i], c1[i])) {
                diff_s++;
                maxa = fmax(maxa, fmax(fabs((double)y0[i] - y1[i]), fabs((double)c0[i] - c1[i])));
            }
        }
        print_message("vmath %s vs %s: %zu/%zu exp and %zu/%zu sincos results differ "
                      "(max %.2f ulp, %.3g abs)\n",
                      im[k]->name, im[0]->name, diff_e, ne, diff_s, ns, maxu, maxa);
#ifdef FP_FAST_FMAF
        /* With a fast fmaf the portable path computes exactly what the vector paths do. */
        assert_int_equal(diff_e, 0);
        assert_int_equal(diff_s, 0);
#else
        assert_true(maxu <= 1.0);
        assert_true(maxa <= 0x1p-23);
#endif
    }
    free(xe);
    free(xs);
    free(y0);
    free(y1);
    free(c0);
    free(c1);
}

static void test_dispatch(void **state)
{
    (void)state;
    const char *isa = la_vmath_isa();
    const struct la_vmath_impl *sel = la_vmath_get(isa);
    assert_non_null(sel);
    assert_string_equal(sel->name, isa);
    assert_null(la_vmath_get("avx513"));
    assert_null(la_vmath_get(NULL));
    assert_non_null(la_vmath_get("scalar"));
    /* Without an override the best available one runs. */
    const char *env = getenv("LINATTN_VMATH");
    if (!env || !la_vmath_get(env)) {
        const struct la_vmath_impl *im[N_ISA];
        assert_true(available(im) >= 1);
        assert_string_equal(isa, im[0]->name);
    }
    print_message("vmath: selected %s\n", isa);
    /* The public functions are the selected implementation. */
    enum { N = 77 };
    float x[N], a[N], b[N], s[N], c[N];
    tu_fill(x, N, 20.2f, 0xd15au);
    la_vexpf(x, a, N);
    sel->vexpf(x, b, N);
    assert_memory_equal(a, b, sizeof a);
    la_vsincosf(x, a, b, N);
    sel->vsincosf(x, s, c, N);
    assert_memory_equal(a, s, sizeof a);
    assert_memory_equal(b, c, sizeof b);
}

/* LINATTN_VMATH picks the implementation; unknown or unavailable names fall back to the best. */
static void test_env_override(void **state)
{
    (void)state;
    char self[4096];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        print_message("vmath: /proc/self/exe unreadable, override test skipped\n");
        skip();
    }
    self[len] = '\0';
    const struct la_vmath_impl *im[N_ISA];
    size_t nim = available(im);
    const char *want[N_ISA + 2], *ask[N_ISA + 2];
    size_t nt = 0;
    for (size_t k = 0; k < nim; k++) {
        ask[nt] = im[k]->name;
        want[nt++] = im[k]->name;
    }
    ask[nt] = "bogus";
    want[nt++] = im[0]->name;
    ask[nt] = "";
    want[nt++] = im[0]->name;
    for (size_t t = 0; t < nt; t++) {
        char cmd[4300], out[64] = "";
        snprintf(cmd, sizeof cmd, "LINATTN_VMATH='%s' '%s' --isa", ask[t], self);
        FILE *p = popen(cmd, "r");
        assert_non_null(p);
        size_t got = fread(out, 1, sizeof out - 1, p);
        out[got] = '\0';
        assert_int_equal(pclose(p), 0);
        out[strcspn(out, "\n")] = '\0';
        assert_string_equal(out, want[t]);
    }
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--isa") == 0) {
        puts(la_vmath_isa());
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),     cmocka_unit_test(test_env_override),
        cmocka_unit_test(test_exp_special),  cmocka_unit_test(test_sincos_special),
        cmocka_unit_test(test_tails),        cmocka_unit_test(test_in_place),
        cmocka_unit_test(test_exp_accuracy), cmocka_unit_test(test_sincos_accuracy),
        cmocka_unit_test(test_paths_agree),  cmocka_unit_test(test_exp_affine),
        cmocka_unit_test(test_exp_pair),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
