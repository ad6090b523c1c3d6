/* test_backward.c — the backward references (kernels/backward_ref.c) against central finite
 * differences of the forward references, in double, on small shapes (T = 1, causal and not,
 * d = 1, m != dv); the forward output they write equals the forward reference's; the fast fp32
 * backward kernels stay finite and within tolerance for scores of ±1000 (softmax) and for
 * normalisers of eps alone (linear: zero and tiny query features); mutated backward kernels
 * fail la_check_kernel (what `linattn check` runs); the output softmax_flash_backward recomputes
 * is the forward kernel's.
 * Finite differences: L(x) = Σ_i dY_i·Y_i(x) with dY fixed; ∂L/∂x ≈ (L(x + h) − L(x − h)) / 2h,
 * h = 1e-5 on inputs of order 1, whose error is O(h²·L''') ≈ 1e-10; the bound 1e-7 relative to
 * the gradient's largest entry leaves room for that and for cancellation in L.
 * Run: make check (or build/tests/test_backward).
 */
#include "testutil.h"

#include "../harness/cli/check.h"
#include "../kernels/attention.h"
#include "../kernels/simd.h"

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

/* Mutated backward kernels, each a bug la_check_kernel (what `linattn check` runs) must catch:
 * causal softmax run without its mask, an upstream gradient off by 1e-3 (ten times the
 * tolerance), a missed last row of dK, and chunks that do not pass their states on. */
static void softmax_unmasked(struct attn_args *a)
{
    a->causal = 0;
    attn_softmax_flash_backward(a);
}

static void linear_scaled_dy(struct attn_args *a)
{
    const size_t n = (size_t)a->T * a->dv;
    float *g = malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = a->grad_y[i] * 1.001f;
    const float *keep = a->grad_y;
    a->grad_y = g;
    attn_linear_causal_backward(a);
    a->grad_y = keep;
    free(g);
}

static void linear_last_dk_row(struct attn_args *a)
{
    attn_linear_noncausal_backward(a);
    memset(a->grad_k + (size_t)(a->T - 1) * a->dk, 0, (size_t)a->dk * sizeof(float));
}

/* The chunked backward with its states between chunks dropped: each chunk of 8 rows run alone. */
static void linear_chunks_alone(struct attn_args *a)
{
    const int C = 8, T = a->T, m = a->dk, dv = a->dv;
    struct attn_args c = *a;
    c.chunk = C;
    for (int t0 = 0; t0 < T; t0 += C) {
        c.T = T - t0 < C ? T - t0 : C;
        c.q = a->q + (size_t)t0 * m, c.k = a->k + (size_t)t0 * m, c.v = a->v + (size_t)t0 * dv;
        c.grad_y = a->grad_y + (size_t)t0 * dv;
        c.grad_q = a->grad_q + (size_t)t0 * m, c.grad_k = a->grad_k + (size_t)t0 * m;
        c.grad_v = a->grad_v + (size_t)t0 * dv;
        attn_linear_causal_chunked_backward(&c);
    }
}

static void test_mutations_fail(void **state)
{
    (void)state;
    static const struct {
        const char *base;
        void (*run)(struct attn_args *a);
        int causal;
    } mut[] = {
        {"softmax_flash_backward", softmax_unmasked, 1},
        {"linear_causal_backward", linear_scaled_dy, 1},
        {"linear_noncausal_backward", linear_last_dk_row, 0},
        {"linear_causal_chunked_backward", linear_chunks_alone, 1},
    };
    for (size_t i = 0; i < sizeof mut / sizeof mut[0]; i++) {
        const struct attn_kernel *kn = attn_kernel_lookup(mut[i].base);
        assert_non_null(kn);
        struct attn_kernel bad = *kn;
        bad.run = mut[i].run;
        const struct la_check_case c = {37, 8, 6, 2, mut[i].causal, 0, 1, 1.0, 0};
        struct la_check_result good, r;
        struct la_error err;
        assert_int_equal(la_check_kernel(kn, &c, 77, &good, &err), LA_OK);
        assert_true(good.finite && good.rel_err <= good.tol);
        assert_int_equal(la_check_kernel(&bad, &c, 77, &r, &err), LA_OK);
        if (r.rel_err <= r.tol)
            print_error("mutant of %s passed: rel_err %.3g\n", mut[i].base, r.rel_err);
        assert_true(r.rel_err > r.tol);
    }
}

/* Scores of ±1000 and beyond (softmax: entries of q, k within 1 of ±45 at d = 2 put q·k/√2
 * anywhere in ±2900, so most rows are one hot) and normalisers of eps alone (linear: zero query features every third row, and rows of
 * 1e-30) give finite gradients that match the reference, on every kernel. */
static void extremes_finite(void)
{
    const int T = 70, H = 1;
    for (size_t kk = 0; attn_kernels[kk].name; kk++) {
        const struct attn_kernel *kn = &attn_kernels[kk];
        if (kn->op != ATTN_OP_BACKWARD)
            continue;
        const int sm = kn->input == ATTN_IN_QK, dk = sm ? 2 : 5, dv = 3;
        for (int causal = 0; causal <= 1; causal++) {
            if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            const size_t nq = (size_t)T * dk * H, nv = (size_t)T * dv * H;
            float *q = malloc(nq * sizeof *q), *k = malloc(nq * sizeof *k);
            float *v = malloc(nv * sizeof *v), *gy = malloc(nv * sizeof *gy);
            float *g = malloc((2 * nq + nv) * sizeof *g);
            double *d = malloc((4 * nq + 3 * nv) * sizeof *d);
            tu_fill(q, nq, 1.0f, 5 + kk);
            tu_fill(k, nq, 1.0f, 6 + kk);
            tu_fill(v, nv, 1.0f, 7 + kk);
            tu_fill(gy, nv, 1.0f, 8 + kk);
            for (size_t i = 0; i < nq; i++) {
                if (sm) {
                    q[i] = q[i] < 0 ? -45.0f + q[i] : 45.0f + q[i];
                    k[i] = k[i] < 0 ? -45.0f + k[i] : 45.0f + k[i];
                } else {
                    q[i] = expf(q[i]);
                    k[i] = expf(k[i]);
                }
            }
            if (!sm)
                for (int t = 0; t < T; t += 3)
                    for (int c = 0; c < dk; c++)
                        q[(size_t)t * dk + c] = t % 2 ? 1e-30f : 0.0f;
            double *qd = d, *kd = qd + nq, *vd = kd + nq, *gyd = vd + nv, *gqd = gyd + nv;
            double *gkd = gqd + nq, *gvd = gkd + nq;
            tu_to_double(q, qd, nq);
            tu_to_double(k, kd, nq);
            tu_to_double(v, vd, nv);
            tu_to_double(gy, gyd, nv);
            const size_t ws = attn_workspace_floats(kn, T, dk, dv, causal, 0, 1);
            float *w = malloc(ws * sizeof *w);
            double *scr = malloc((kn->ref->scratch(T, dk, dv) + 1) * sizeof *scr);
            struct attn_args a = {.q = q, .k = k, .v = v, .T = T, .dk = dk, .dv = dv,
                                  .causal = causal, .eps = 1e-6f, .threads = 1, .work = w,
                                  .grad_y = gy, .grad_q = g, .grad_k = g + nq,
                                  .grad_v = g + 2 * nq};
            kn->run(&a);
            struct attn_ref_args ra = {.q = qd, .k = kd, .v = vd, .T = T, .dk = dk, .dv = dv,
                                       .causal = causal, .eps = 1e-6, .scratch = scr,
                                       .grad_y = gyd, .grad_q = gqd, .grad_k = gkd,
                                       .grad_v = gvd};
            kn->ref->run(&ra);
            assert_int_equal(a.n_small_den, ra.n_small_den);
            assert_true(tu_all_finite(g, 2 * nq + nv));
            const double e = tu_rel_err(g, gqd, 2 * nq + nv);
            if (!(e <= kn->ref->tol))
                print_error("%s causal=%d: rel_err %.3g\n", kn->name, causal, e);
            assert_true(e <= kn->ref->tol);
            free(q), free(k), free(v), free(gy), free(g), free(d), free(w), free(scr);
        }
    }
}

/* On every vector path this CPU runs. */
static void test_extremes_finite(void **state)
{
    (void)state;
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (la_simd_force(isa) != 0)
            continue;
        extremes_finite();
    }
    la_simd_force(-1);
}

/* softmax_flash_backward writes the output it recomputes into y when y is given: the forward
 * kernel's output bit for bit (the same fused block at the same tiles), with threads too.  T
 * spans several of the forward's one-thread row blocks (BR1) and ends inside one. */
static void test_softmax_backward_y(void **state)
{
    (void)state;
    const struct attn_kernel *bw = attn_kernel_lookup("softmax_flash_backward");
    const struct attn_kernel *fw = attn_kernel_lookup("softmax_flash");
    const int T = 901, d = 24, dv = 17;
    const size_t nq = (size_t)T * d, nv = (size_t)T * dv;
    float *in = malloc((2 * nq + 2 * nv) * sizeof *in), *out = malloc((2 * nq + 3 * nv) * sizeof *out);
    tu_fill(in, 2 * nq + 2 * nv, 1.5f, 99);
    for (int causal = 0; causal <= 1; causal++)
        for (int th = 1; th <= 2; th++) {
            const size_t wb = attn_workspace_floats(bw, T, d, dv, causal, 0, th);
            const size_t wf = attn_workspace_floats(fw, T, d, dv, causal, 0, th);
            float *w = malloc((wb > wf ? wb : wf) * sizeof *w);
            struct attn_args a = {.q = in, .k = in + nq, .v = in + 2 * nq, .y = out, .T = T,
                                  .dk = d, .dv = dv, .causal = causal, .threads = th, .work = w,
                                  .grad_y = in + 2 * nq + nv, .grad_q = out + 2 * nv,
                                  .grad_k = out + 2 * nv + nq, .grad_v = out + 2 * nv + 2 * nq};
            bw->run(&a);
            a.y = out + nv;
            fw->run(&a);
            assert_memory_equal(out, out + nv, nv * sizeof *out);
            free(w);
        }
    free(in), free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_ref_fd),
        cmocka_unit_test(test_linear_ref_fd),
        cmocka_unit_test(test_mutations_fail),
        cmocka_unit_test(test_extremes_finite),
        cmocka_unit_test(test_softmax_backward_y),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
