/* test_backward.c — the backward references (kernels/backward_ref.c) against central finite
 * differences of the forward references, in double, on small shapes (T = 1, causal and not,
 * d = 1, m != dv); the forward output they write equals the forward reference's; the fast fp32
 * backward kernels stay finite and within tolerance for scores of ±1000 (softmax) and for
 * normalisers of eps alone (linear: zero and tiny query features).
 * Finite differences: L(x) = Σ_i dY_i·Y_i(x) with dY fixed; ∂L/∂x ≈ (L(x + h) − L(x − h)) / 2h,
 * h = 1e-5 on inputs of order 1, whose error is O(h²·L''') ≈ 1e-10; the bound 1e-7 relative to
 * the gradient's largest entry leaves room for that and for cancellation in L.
 * Run: make check (or build/tests/test_backward).
 */
#include "testutil.h"

#include "../harness/cli/check.h"
#include "../kernels/attention.h"

static void fill_d(double *x, size_t n, double lo, double hi, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * (double)(tu_next(&s) >> 11) * 0x1.0p-53;
}

/* L = Σ dY·Y of the forward reference at (Q, K, V). */
static double loss(int softmax, const double *Q, const double *K, const double *V,
                   const double *dY, double *Y, int T, int dk, int dv, int causal, double eps,
                   double *scores)
{
    if (softmax)
        attn_softmax_ref(Q, K, V, Y, T, dk, dv, causal, scores);
    else
        attn_linear_ref(Q, K, V, Y, T, dk, dv, causal, eps);
    double L = 0.0;
    for (size_t i = 0; i < (size_t)T * dv; i++)
        L += dY[i] * Y[i];
    return L;
}

/* The central difference of L in every entry of x (n values) against grad. */
static double fd_worst(int softmax, double *x, size_t n, const double *grad, const double *Q,
                       const double *K, const double *V, const double *dY, double *Y, int T,
                       int dk, int dv, int causal, double eps, double *scores)
{
    const double h = 1e-5;
    double gmax = 0.0, worst = 0.0;
    for (size_t i = 0; i < n; i++)
        gmax = fmax(gmax, fabs(grad[i]));
    for (size_t i = 0; i < n; i++) {
        const double x0 = x[i];
        x[i] = x0 + h;
        const double lp = loss(softmax, Q, K, V, dY, Y, T, dk, dv, causal, eps, scores);
        x[i] = x0 - h;
        const double lm = loss(softmax, Q, K, V, dY, Y, T, dk, dv, causal, eps, scores);
        x[i] = x0;
        worst = fmax(worst, fabs((lp - lm) / (2.0 * h) - grad[i]) / fmax(gmax, 1e-300));
    }
    return worst;
}

static void check_fd(int softmax, int T, int dk, int dv, int causal, uint64_t seed)
{
    const size_t nq = (size_t)T * dk, nv = (size_t)T * dv;
    double *Q = malloc(nq * sizeof *Q), *K = malloc(nq * sizeof *K), *V = malloc(nv * sizeof *V);
    double *dY = malloc(nv * sizeof *dY), *Y = malloc(nv * sizeof *Y), *Yr = malloc(nv * sizeof *Yr);
    double *dQ = malloc(nq * sizeof *dQ), *dK = malloc(nq * sizeof *dK);
    double *dV = malloc(nv * sizeof *dV), *scr = malloc((2 * (size_t)T + dv) * sizeof *scr);
    const double eps = 1e-3; /* large enough that its gradient path is exercised */
    /* Softmax: raw scores of either sign; linear: positive features. */
    fill_d(Q, nq, softmax ? -1.5 : 0.1, 1.5, seed);
    fill_d(K, nq, softmax ? -1.5 : 0.1, 1.5, seed + 1);
    fill_d(V, nv, -1.0, 1.0, seed + 2);
    fill_d(dY, nv, -1.0, 1.0, seed + 3);
    if (softmax)
        attn_softmax_backward_ref(Q, K, V, dY, Y, dQ, dK, dV, T, dk, dv, causal, scr);
    else
        attn_linear_backward_ref(Q, K, V, dY, Y, dQ, dK, dV, T, dk, dv, causal, eps, scr);
    /* The forward output it writes is the forward reference's. */
    loss(softmax, Q, K, V, dY, Yr, T, dk, dv, causal, eps, scr);
    for (size_t i = 0; i < nv; i++)
        assert_true(fabs(Y[i] - Yr[i]) <= 1e-13 * (1.0 + fabs(Yr[i])));
    const double eq = fd_worst(softmax, Q, nq, dQ, Q, K, V, dY, Y, T, dk, dv, causal, eps, scr);
    const double ek = fd_worst(softmax, K, nq, dK, Q, K, V, dY, Y, T, dk, dv, causal, eps, scr);
    const double ev = fd_worst(softmax, V, nv, dV, Q, K, V, dY, Y, T, dk, dv, causal, eps, scr);
    if (eq > 1e-7 || ek > 1e-7 || ev > 1e-7)
        print_error("%s T=%d dk=%d dv=%d causal=%d: fd errors dQ %.3g dK %.3g dV %.3g\n",
                    softmax ? "softmax" : "linear", T, dk, dv, causal, eq, ek, ev);
    assert_true(eq <= 1e-7 && ek <= 1e-7 && ev <= 1e-7);
    free(Q), free(K), free(V), free(dY), free(Y), free(Yr), free(dQ), free(dK), free(dV);
    free(scr);
}

static const int fd_shapes[][3] = {{1, 3, 2}, {2, 1, 1}, {5, 3, 2}, {7, 4, 6}, {9, 2, 3}};

static void test_softmax_ref_fd(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fd_shapes / sizeof fd_shapes[0]; i++)
        for (int causal = 0; causal <= 1; causal++)
            check_fd(1, fd_shapes[i][0], fd_shapes[i][1], fd_shapes[i][2], causal, 10 + i);
}

static void test_linear_ref_fd(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof fd_shapes / sizeof fd_shapes[0]; i++)
        for (int causal = 0; causal <= 1; causal++)
            check_fd(0, fd_shapes[i][0], fd_shapes[i][1], fd_shapes[i][2], causal, 20 + i);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_ref_fd),
        cmocka_unit_test(test_linear_ref_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
