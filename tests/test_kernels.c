/* test_kernels.c — every fast kernel against its double reference on odd shapes, the two
 * causal algorithms against each other, causal linear against the non-causal formula on every
 * prefix, and softmax stability for scores of ±1000.  Run: make check (or build/tests/test_kernels).
 * Tolerance: relative Frobenius error <= 2e-5 for fp32 kernels (LA_TOL_* in harness/check.h);
 * measured errors are ~1e-7, so the bound has two orders of margin and still catches any bug
 * that is not rounding (a wrong row, a missed tile or chunk gives errors of order 1).
 */
#include "testutil.h"

#include "../harness/check.h"
#include "../kernels/attention.h"

static const struct la_check_case odd_shapes[] = {
    /* T, dk, dv, heads, causal, chunk, threads, scale */
    {1, 16, 16, 1, 0, 0, 1, 1.0},   {63, 16, 16, 1, 0, 0, 1, 1.0},  {64, 16, 16, 1, 0, 0, 1, 1.0},
    {65, 16, 16, 1, 0, 0, 1, 1.0},  {129, 16, 16, 1, 0, 0, 1, 1.0}, {300, 1, 1, 1, 0, 0, 1, 1.0},
    {257, 24, 40, 1, 0, 0, 1, 1.0}, {200, 33, 17, 3, 0, 0, 2, 1.0}, {100, 5, 3, 4, 0, 0, 1, 1.5},
    {1, 16, 16, 1, 1, 0, 1, 1.0},   {63, 16, 16, 1, 1, 0, 1, 1.0},  {64, 16, 16, 1, 1, 0, 1, 1.0},
    {65, 16, 16, 1, 1, 0, 1, 1.0},  {129, 16, 16, 1, 1, 0, 1, 1.0}, {300, 1, 1, 1, 1, 0, 1, 1.0},
    {257, 24, 40, 1, 1, 0, 1, 1.0}, {200, 33, 17, 3, 1, 0, 2, 1.0}, {100, 5, 3, 4, 1, 0, 1, 1.5},
    {333, 20, 12, 1, 1, 17, 1, 1.0}, {31, 8, 8, 1, 1, 32, 1, 1.0}, {32, 8, 8, 1, 1, 32, 1, 1.0},
    {33, 8, 8, 1, 1, 32, 1, 1.0},   {700, 64, 64, 1, 1, 0, 2, 1.0}, {700, 64, 64, 1, 0, 0, 2, 1.0},
};

static void test_every_kernel_odd_shapes(void **state)
{
    (void)state;
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        for (size_t i = 0; i < sizeof odd_shapes / sizeof odd_shapes[0]; i++) {
            const struct la_check_case *c = &odd_shapes[i];
            if (!(kn->causal_support & (c->causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            struct la_check_result r;
            struct la_error err;
            assert_int_equal(la_check_kernel(kn, c, 1000 + i, &r, &err), LA_OK);
            if (!(r.finite && r.rel_err <= r.tol))
                print_error("%s T=%d dk=%d dv=%d H=%d causal=%d chunk=%d: rel_err %.3g tol %.1g\n",
                            kn->name, c->T, c->dk, c->dv, c->heads, c->causal, c->chunk,
                            r.rel_err, r.tol);
            assert_true(r.finite);
            assert_true(r.rel_err <= r.tol);
            assert_int_equal(r.small_fast, r.small_ref);
        }
    }
}

/* Seeded positive features and values for one head. */
static void features(float *pq, float *pk, float *v, int T, int m, int dv, uint64_t seed)
{
    tu_fill(pq, (size_t)T * m, 1.3f, seed);
    tu_fill(pk, (size_t)T * m, 1.3f, seed + 1);
    tu_fill(v, (size_t)T * dv, 1.0f, seed + 2);
    for (size_t i = 0; i < (size_t)T * m; i++) {
        pq[i] = expf(pq[i]);
        pk[i] = expf(pk[i]);
    }
}

static void test_recurrent_equals_chunked(void **state)
{
    (void)state;
    const int T = 517, m = 24, dv = 20;
    float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
    float *v = malloc(sizeof(float) * T * dv);
    float *y1 = malloc(sizeof(float) * T * dv), *y2 = malloc(sizeof(float) * T * dv);
    features(pq, pk, v, T, m, dv, 77);
    const struct attn_kernel *rec = attn_kernel_lookup("linear_causal_recurrent");
    const struct attn_kernel *chk = attn_kernel_lookup("linear_causal_chunked");
    assert_non_null(rec);
    assert_non_null(chk);
    int chunks[] = {1, 7, 64, 100, 517, 600};
    float *w1 = malloc(sizeof(float) * attn_workspace_floats(rec, T, m, dv, 1, 0, 1));
    struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y1, .T = T, .dk = m, .dv = dv,
                          .causal = 1, .eps = 1e-6f, .work = w1};
    rec->run(&a);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        float *w2 = malloc(sizeof(float) * attn_workspace_floats(chk, T, m, dv, 1, chunks[c], 1));
        struct attn_args b = a;
        b.y = y2;
        b.chunk = chunks[c];
        b.work = w2;
        chk->run(&b);
        double num = 0, den = 0;
        for (int i = 0; i < T * dv; i++) {
            num += ((double)y1[i] - y2[i]) * ((double)y1[i] - y2[i]);
            den += (double)y1[i] * y1[i];
        }
        assert_true(sqrt(num / den) < 2e-5);
        free(w2);
    }
    free(pq), free(pk), free(v), free(y1), free(y2), free(w1);
}

/* Causal output row i equals the non-causal formula on the prefix 0..i, computed the slow way. */
static void test_causal_is_prefix_of_noncausal(void **state)
{
    (void)state;
    const int T = 150, m = 12, dv = 9;
    float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
    float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
    double *pqd = malloc(sizeof(double) * T * m), *pkd = malloc(sizeof(double) * T * m);
    double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
    features(pq, pk, v, T, m, dv, 99);
    tu_to_double(pq, pqd, (size_t)T * m);
    tu_to_double(pk, pkd, (size_t)T * m);
    tu_to_double(v, vd, (size_t)T * dv);
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        if (kn->family != ATTN_LINEAR || !(kn->causal_support & ATTN_CAUSAL_OK))
            continue;
        float *w = malloc(sizeof(float) * attn_workspace_floats(kn, T, m, dv, 1, 0, 1));
        struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y, .T = T, .dk = m, .dv = dv,
                              .causal = 1, .eps = 1e-6f, .work = w};
        kn->run(&a);
        for (int i = 0; i < T; i += 7) {
            /* Non-causal reference on the first i+1 rows; its last row is causal row i. */
            attn_linear_ref(pqd, pkd, vd, yd, i + 1, m, dv, 0, 1e-6);
            for (int c = 0; c < dv; c++)
                assert_true(fabs(y[(size_t)i * dv + c] - yd[(size_t)i * dv + c]) <=
                            2e-5 * (1.0 + fabs(yd[(size_t)i * dv + c])));
        }
        free(w);
    }
    free(pq), free(pk), free(v), free(y), free(pqd), free(pkd), free(vd), free(yd);
}

/* Scores of ±1000: q·k/√d = ±1000 would overflow exp in any unstabilised form. */
static void test_softmax_extreme_scores(void **state)
{
    (void)state;
    const int T = 300, d = 4, dv = 5;
    float *q = malloc(sizeof(float) * T * d), *k = malloc(sizeof(float) * T * d);
    float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
    double *qd = malloc(sizeof(double) * T * d), *kd = malloc(sizeof(double) * T * d);
    double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
    double *scores = malloc(sizeof(double) * T);
    /* q = ±(a, 0, 0, 0) and k = (b, 0, 0, 0) with a·b/2 = ±1000 for |a| = 40, |b| = 50. */
    memset(q, 0, sizeof(float) * T * d);
    memset(k, 0, sizeof(float) * T * d);
    for (int i = 0; i < T; i++) {
        q[(size_t)i * d] = (i % 3 == 0 ? -40.0f : 40.0f);
        k[(size_t)i * d] = (i % 5 == 0 ? -50.0f : 50.0f) * (1.0f - 0.001f * (float)(i % 7));
    }
    tu_fill(v, (size_t)T * dv, 1.0f, 5);
    tu_to_double(q, qd, (size_t)T * d);
    tu_to_double(k, kd, (size_t)T * d);
    tu_to_double(v, vd, (size_t)T * dv);
    const struct attn_kernel *kn = attn_kernel_lookup("softmax_flash");
    for (int causal = 0; causal <= 1; causal++) {
        float *w = malloc(sizeof(float) * attn_workspace_floats(kn, T, d, dv, causal, 0, 1));
        struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = d, .dv = dv,
                              .causal = causal, .work = w};
        kn->run(&a);
        attn_softmax_ref(qd, kd, vd, yd, T, d, dv, causal, scores);
        assert_true(tu_all_finite(y, (size_t)T * dv));
        assert_true(tu_rel_err(y, yd, (size_t)T * dv) < 1e-4);
        free(w);
    }
    free(q), free(k), free(v), free(y), free(qd), free(kd), free(vd), free(yd), free(scores);
}

/* The reference itself against a hand-computed case: T = 2, d = 1, causal and not. */
static void test_softmax_ref_by_hand(void **state)
{
    (void)state;
    double Q[2] = {0.5, -1.25}, K[2] = {2.0, 0.75}, V[2] = {3.0, -1.0}, Y[2], sc[2];
    attn_softmax_ref(Q, K, V, Y, 2, 1, 1, 0, sc);
    double w00 = exp(0.5 * 2.0), w01 = exp(0.5 * 0.75);
    assert_true(fabs(Y[0] - (w00 * 3.0 - w01) / (w00 + w01)) < 1e-14);
    attn_softmax_ref(Q, K, V, Y, 2, 1, 1, 1, sc);
    assert_true(fabs(Y[0] - 3.0) < 1e-14);
    double w10 = exp(-1.25 * 2.0), w11 = exp(-1.25 * 0.75);
    assert_true(fabs(Y[1] - (w10 * 3.0 - w11) / (w10 + w11)) < 1e-14);
}

static void test_lookup_and_flops(void **state)
{
    (void)state;
    assert_null(attn_kernel_lookup("softmax_slow"));
    const struct attn_kernel *s = attn_kernel_lookup("softmax_flash");
    const struct attn_kernel *l = attn_kernel_lookup("linear_noncausal");
    assert_true(fabs(attn_nominal_flops(s, 100, 8, 8, 0) - 4.0 * 100 * 100 * 8) < 1e-6);
    assert_true(fabs(attn_nominal_flops(s, 100, 8, 8, 1) - 2.0 * 100 * 100 * 8) < 1e-6);
    assert_true(fabs(attn_nominal_flops(l, 100, 8, 6, 0) - (4.0 * 100 * 8 * 6 + 4.0 * 100 * 8)) <
                1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kernel_odd_shapes),
        cmocka_unit_test(test_recurrent_equals_chunked),
        cmocka_unit_test(test_causal_is_prefix_of_noncausal),
        cmocka_unit_test(test_softmax_extreme_scores),
        cmocka_unit_test(test_softmax_ref_by_hand),
        cmocka_unit_test(test_lookup_and_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
