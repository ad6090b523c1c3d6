/* gerf.c — generalised exponential random features (Likhosherstov et al. 2022, "Chefs' Random
 * Tables"; with the optimal A below they call it OPRF / FAVOR++):
 *     φ(x)_i = m^{-1/2} · D · exp(A‖ω_i‖² + B·ω_iᵀx̃ + C‖x̃‖²),   x̃ = x·d^{-1/4},
 *     1 − 4A > 0,  B = √(1 − 4A),  C = −1/2,  D = (1 − 4A)^{d/4},
 * m outputs from m draws ω_i ~ N(0, I_d) (default m = d; iid or orthogonal, draws.h).
 * Unbiased for exp(x̃_qᵀx̃_k) because E[exp(a‖ω‖² + bᵀω)] = (1−2a)^{−d/2}·exp(‖b‖²/(2(1−2a))):
 * with a = 2A and b = B(x̃_q + x̃_k) the D² and the C terms cancel everything but exp(x̃_qᵀx̃_k).
 * A = 0 is prf exactly: same draws from the same seed, same fp32 arithmetic (the offsets below
 * are +0), so φ is bit-identical (tested).  For A < 0 each feature is bounded.
 *
 * Variance as a function of A (one draw, x = x̃_q, y = x̃_k, Δ = ‖x + y‖²):
 *     E[f²] = D⁴·e^{2C(‖x‖²+‖y‖²)}·E[exp(4A‖ω‖² + 2Bωᵀ(x+y))]
 *           = (1−4A)^d·(1−8A)^{−d/2}·e^{−‖x‖²−‖y‖²}·exp(2(1−4A)Δ/(1−8A)),   finite iff A < 1/8,
 *     Var = (E[f²] − exp(2xᵀy))/m  for m IID draws;  A = 0 gives Performer's Lemma 2 for SM⁺.
 * A_auto (fit): minimise the mean over all query–key pairs of log E[f²].  Only
 *     L(A) = d·log(1−4A) − (d/2)·log(1−8A) + 2Δ̄·(1−4A)/(1−8A)
 * depends on A, and it is linear in Δ, so its pair mean is L at Δ̄ = mean over pairs of
 * ‖x̃_q + x̃_k‖² = mean‖x̃_q‖² + mean‖x̃_k‖² + 2·mean(x̃_q)ᵀmean(x̃_k) (exact, O((nq+nk)·d), no
 * sampling).  dL/dA = −4d/(1−4A) + 4d/(1−8A) + 8Δ/(1−8A)² = 0 reduces to
 *     16d·A² + (4Δ − 2d)·A − Δ = 0,
 * whose root in A < 1/8 (L → +∞ at both ends of (−∞, 1/8), so it is the minimum) is
 *     A* = (d − 2Δ − √((2Δ + d)² + 8dΔ)) / (16d)  <= 0,
 * Likhosherstov et al.'s closed form.  Before fit (or without A_auto) A is fm_params.A.
 * The fitted A is kept in the state; fit needs nq, nk >= 1.
 *
 * Implementation: Ws = W·d^{-1/4}·B for the projection; the per-feature offsets A‖ω_i‖² + log D
 * are added to the exponents (log D is folded in so D cannot overflow fp32 at large d); then the
 * prf stabiliser: row max for queries, one constant per call for keys, none for FM_RAW.  All of
 * it is draws.h's fm_proj_exp (row blocks, each exponentiated while in cache), as for prf.
 * Tests: tests/test_featuremaps.c (A = 0 equals prf, unbiasedness, A_auto no worse than A = 0).
 */
#include "featuremap.h"

#include <math.h>
#include <string.h>
#include <stdlib.h>

#include "draws.h"

struct gerf_state {
    struct fm_proj P;
    double A;    /* current A (fm_params.A, or the fitted A*) */
    int A_auto;  /* fit chooses A */
    double *sqw; /* (m) ‖ω_i‖² in double */
    float *off;  /* (m) A‖ω_i‖² + log D, fp32 */
};

/* Sets A: rescales Ws by B = √(1−4A) and recomputes the offsets. */
static void gerf_set_A(struct gerf_state *s, double A)
{
    int m = s->P.m, d = s->P.d;
    s->A = A;
    fm_proj_scale(&s->P, sqrt(1.0 - 4.0 * A));
    double logD = 0.25 * d * log1p(-4.0 * A);
    for (int i = 0; i < m; i++)
        s->off[i] = (float)(A * s->sqw[i] + logD);
}

static int gerf_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    struct gerf_state *s = state;
    if (!isfinite(p->A) || !(1.0 - 4.0 * p->A > 0.0))
        return LA_FAIL(err, LA_EINVAL,
                       "gerf: A must satisfy 1 - 4A > 0 (A < 0.25), got A = %g "
                       "(the variance is finite only for A < 0.125)",
                       p->A);
    int st = fm_proj_init(&s->P, p, rng, "gerf", err);
    if (st != LA_OK)
        return st;
    int m = s->P.m, d = s->P.d;
    s->sqw = malloc((size_t)m * sizeof *s->sqw);
    s->off = malloc((size_t)m * sizeof *s->off);
    if (!s->sqw || !s->off) {
        fm_proj_release(&s->P);
        free(s->sqw);
        free(s->off);
        s->sqw = NULL;
        s->off = NULL;
        return LA_FAIL(err, LA_ENOMEM, "gerf: out of memory (m = %d)", m);
    }
    for (int i = 0; i < m; i++) {
        double acc = 0.0;
        for (int j = 0; j < d; j++) {
            double w = s->P.W[(size_t)i * (size_t)d + (size_t)j];
            acc += w * w;
        }
        s->sqw[i] = acc;
    }
    s->A_auto = p->A_auto;
    gerf_set_A(s, p->A);
    return LA_OK;
}

static int gerf_out_dim(const void *state)
{
    return ((const struct gerf_state *)state)->P.m;
}

/* Mean of ‖x̃‖² and the mean vector of x̃ over n rows (sum into mean[d]). */
static double mean_rows(const float *x, size_t n, int d, double *mean)
{
    double sq = 0.0, f = pow((double)d, -0.25);
    for (int j = 0; j < d; j++)
        mean[j] = 0.0;
    for (size_t r = 0; r < n; r++)
        for (int j = 0; j < d; j++) {
            double v = (double)x[r * (size_t)d + (size_t)j] * f;
            sq += v * v;
            mean[j] += v;
        }
    for (int j = 0; j < d; j++)
        mean[j] /= (double)n;
    return sq / (double)n;
}

static int gerf_fit(void *state, const float *q, size_t nq, const float *k, size_t nk,
                    struct la_error *err)
{
    struct gerf_state *s = state;
    if (!s->A_auto)
        return LA_OK;
    int d = s->P.d;
    double *mq = malloc(2 * (size_t)d * sizeof *mq);
    if (!mq)
        return LA_FAIL(err, LA_ENOMEM, "gerf: out of memory in fit");
    double *mk = mq + d;
    double delta = mean_rows(q, nq, d, mq) + mean_rows(k, nk, d, mk);
    for (int j = 0; j < d; j++)
        delta += 2.0 * mq[j] * mk[j];
    free(mq);
    if (!isfinite(delta))
        return LA_FAIL(err, LA_ENUMERIC, "gerf: fit: mean |q~ + k~|^2 is not finite");
    if (delta < 0.0)
        delta = 0.0; /* rounding only: a mean of squared norms */
    double A =
        ((double)d - 2.0 * delta - sqrt((2.0 * delta + d) * (2.0 * delta + d) + 8.0 * d * delta)) /
        (16.0 * d);
    gerf_set_A(s, A);
    return LA_OK;
}

static void gerf_apply(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                       float *work, float *shift)
{
    (void)work;
    const struct gerf_state *s = state;
    int m = s->P.m, d = s->P.d;
    fm_proj_exp(&s->P, s->off, 0, x, n, 0.5 / sqrt((double)d), role,
                (float)(1.0 / sqrt((double)m)), phi, shift);
}

/* Backward (featuremap.h): the offsets A‖ω_i‖² + log D are constants (with A: auto, the fitted
 * A is a constant too: fit ran before apply and is not differentiated), and Ws already holds
 * B·d^{-1/4}·ω_i, so the VJP is prf's: dx = G·Ws − (Σ_i g_i·φ_i)·x/√d, G_i = g_i·φ_i. */
static void gerf_backward(const void *state, const float *x, size_t n, const float *phi,
                          const float *dphi, float *dx, float *dparams, float *work)
{
    (void)dparams;
    const struct gerf_state *s = state;
    fm_proj_backward(&s->P, FM_GRAD_EXP, (float)(-1.0 / sqrt((double)s->P.d)), x, n, phi, dphi, dx,
                     work);
}

static size_t gerf_backward_work_floats(const void *state, size_t n)
{
    return fm_grad_work_floats(((const struct gerf_state *)state)->P.m, n);
}

static void gerf_release(void *state)
{
    struct gerf_state *s = state;
    fm_proj_release(&s->P);
    free(s->sqw);
    free(s->off);
    s->sqw = NULL;
    s->off = NULL;
}

static double gerf_param(const void *state, const char *name)
{
    const struct gerf_state *s = state;
    return strcmp(name, "A") == 0 ? s->A : NAN;
}

/* Cost (featuremap.h), per row: prf's (2·d·m + 2·d + 5·m) and the add of each feature's offset
 * A‖ω_i‖² + log D: 2·d·m + 2·d + 6·m.  Parameters: Ws (m·d) and the offsets (m) in fp32; fit
 * runs once, outside apply, and is not counted. */
static double gerf_flops(size_t n, int d, int m)
{
    return (double)n * (2.0 * d * (double)m + 2.0 * d + 6.0 * m);
}

static double gerf_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m) + sizeof(float) * ((double)m * d + m);
}

/* Backward, per row: prf's, 2·d·m + 2·m + 2·d (the offsets are constants). */
static double gerf_backward_flops(size_t n, int d, int m)
{
    return (double)n * (2.0 * d * (double)m + 2.0 * m + 2.0 * d);
}

static double gerf_nominal_dim(int d, int m)
{
    return m > 0 ? m : d;
}

const struct featuremap_type fm_gerf = {
    .name = "gerf",
    .summary = "generalised exponential random features (FAVOR++, OPRF); A = 0 is prf",
    .params = "m, draw, norm_fixed, A, A_auto, seed",
    .param = gerf_param,
    .state_size = sizeof(struct gerf_state),
    .random = 1,
    .flops = gerf_flops,
    .bytes = gerf_bytes,
    .nominal_dim = gerf_nominal_dim,
    .init = gerf_init,
    .out_dim = gerf_out_dim,
    .work_floats = NULL,
    .fit = gerf_fit,
    .apply = gerf_apply,
    .release = gerf_release,
    .kernel = NULL,
    .backward_work_floats = gerf_backward_work_floats,
    .backward = gerf_backward,
    .backward_flops = gerf_backward_flops,
};
