/* test_theory.c — the closed-form Lemma 2 means (harness/figures/theory.c) against Monte Carlo averages
 * of the per-pair formulas exactly as REFERENCES.md states them, on Gaussian pairs; the
 * divergence thresholds; the ORF bound's shape; draws per output.
 * Run: make build/tests/test_theory && build/tests/test_theory
 */
#include "testutil.h"

#include "../harness/figures/theory.h"

/* One N(0, 1) value (Box–Muller on two uniforms of tu_next). */
static double gauss(uint64_t *s)
{
    double u1 = ((double)(tu_next(s) >> 11) + 0.5) * 0x1.0p-53;
    double u2 = (double)(tu_next(s) >> 11) * 0x1.0p-53;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

struct mc {
    double sum, sum2;
    long n;
};

static void mc_add(struct mc *a, double x)
{
    a->sum += x;
    a->sum2 += x * x;
    a->n++;
}

static double mc_mean(const struct mc *a)
{
    return a->sum / a->n;
}
static double mc_se(const struct mc *a)
{
    double m = mc_mean(a);
    return sqrt((a->sum2 / a->n - m * m) / a->n);
}

/* Samples pairs and averages m·MSE of trig, SM⁺, hyp and the ORF term G, written as in
 * REFERENCES.md (Δ, δ, SM), then compares with the closed forms within 5 standard errors. */
static void check_mc(int d, double sigma, long npairs, uint64_t seed)
{
    struct mc trig = {0}, pos = {0}, hyp = {0}, g = {0};
    uint64_t s = seed;
    double q[256], k[256];
    const double sc = pow((double)d, -0.25);
    for (long p = 0; p < npairs; p++) {
        double D = 0, dl = 0, qk = 0, nq = 0, nk = 0;
        for (int i = 0; i < d; i++) {
            q[i] = sigma * gauss(&s) * sc;
            k[i] = sigma * gauss(&s) * sc;
            D += (q[i] + k[i]) * (q[i] + k[i]);
            dl += (q[i] - k[i]) * (q[i] - k[i]);
            qk += q[i] * k[i];
            nq += q[i] * q[i];
            nk += k[i] * k[i];
        }
        double SM = exp(qk);
        double mse_pos = exp(D) * SM * SM * (1 - exp(-D));
        mc_add(&trig, 0.5 * exp(D) / (SM * SM) * (1 - exp(-dl)) * (1 - exp(-dl)));
        mc_add(&pos, mse_pos);
        mc_add(&hyp, 0.5 * (1 - exp(-D)) * mse_pos);
        double t = SM - exp(-(nq + nk) / 2);
        mc_add(&g, t * t);
    }
    struct {
        const char *name;
        struct mc *a;
        double theory;
    } cases[] = {
        {"rff", &trig, la_lemma2_mean_c("rff", d, sigma)},
        {"prf", &pos, la_lemma2_mean_c("prf", d, sigma)},
        {"hyp", &hyp, la_lemma2_mean_c("hyp", d, sigma)},
        {"G", &g, la_lemma2_mean_orf_g(d, sigma)},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double m = mc_mean(cases[i].a), se = mc_se(cases[i].a);
        if (fabs(m - cases[i].theory) > 5 * se + 1e-12 * fabs(m))
            fail_msg("d=%d sigma=%g %s: Monte Carlo %.6g +- %.2g, closed form %.6g", d, sigma,
                     cases[i].name, m, se, cases[i].theory);
    }
}

static void test_closed_form_matches_sampling(void **state)
{
    (void)state;
    check_mc(16, 0.4, 200000, 0x5eed0001ull);
    check_mc(64, 0.55, 100000, 0x5eed0002ull);
    check_mc(4, 0.3, 200000, 0x5eed0003ull);
}

static void test_divergence(void **state)
{
    (void)state;
    /* Positive maps diverge once 3·s² >= 1, s² = 2σ²/√d: d = 16, σ² >= 2/3. */
    assert_true(isfinite(la_lemma2_mean_c("prf", 16, 0.80)));
    assert_true(isinf(la_lemma2_mean_c("prf", 16, 0.82)));
    assert_true(isinf(la_lemma2_mean_c("hyp", 16, 0.82)));
    /* trig survives up to s² < 1: σ² < 2. */
    assert_true(isfinite(la_lemma2_mean_c("rff", 16, 0.82)));
    assert_true(isinf(la_lemma2_mean_c("rff", 16, 1.42)));
    /* Unknown maps and bad arguments. */
    assert_true(isnan(la_lemma2_mean_c("elu1", 16, 0.5)));
    assert_true(isnan(la_lemma2_mean_c("prf", 0, 0.5)));
    assert_true(isnan(la_lemma2_mse("prf", 0, 16, 0.5, 0)));
    assert_true(isnan(la_lemma2_mse("rff", 1, 16, 0.5, 64)));
}

static void test_shapes(void **state)
{
    (void)state;
    const int d = 16;
    const double sigma = 0.5;
    double c = la_lemma2_mean_c("prf", d, sigma);
    /* IID: exactly C/m. */
    assert_true(fabs(la_lemma2_mse("prf", 0, d, sigma, 64) - c / 64) < 1e-15 * c);
    /* hyp below prf at the same draws; the ORF bound below IID, above zero. */
    assert_true(la_lemma2_mean_c("hyp", d, sigma) < c);
    for (int m = 2; m <= 1024; m *= 2) {
        double iid = la_lemma2_mse("prf", 0, d, sigma, m);
        double orf = la_lemma2_mse("prf", 1, d, sigma, m);
        assert_true(orf < iid);
        assert_true(orf > 0);
    }
    /* One draw: no orthogonality to gain. */
    assert_true(fabs(la_lemma2_mse("prf", 1, d, sigma, 1) - c) < 1e-15 * c);
    assert_true(la_map_draws("rff", 128) == 64 && la_map_draws("hyp", 128) == 64);
    assert_true(la_map_draws("prf", 128) == 128 && la_map_draws("gerf", 100) == 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_closed_form_matches_sampling),
        cmocka_unit_test(test_divergence),
        cmocka_unit_test(test_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
