/* prf.c — positive random features, FAVOR+ (Choromanski et al. 2021, "SM⁺"):
 *     φ(x) = m^{-1/2} · exp(W x̃ − ‖x̃‖²/2),   x̃ = x·d^{-1/4},   rows ω_i of W ~ N(0, I_d),
 * an unbiased estimate of the softmax kernel: E[φ(q)ᵀφ(k)] = exp(qᵀk/√d).  m outputs from m
 * draws (default m = d); draw = iid or orthogonal (draws.h).  Positive, so the normaliser never
 * vanishes.  MSE (IID, Performer Lemma 2): (1/m)·exp(Δ)·SM²·(1 − exp(−Δ)), Δ = ‖x̃_q + x̃_k‖².
 *
 * Stabiliser (draws.h, fm_exp_stabilised): queries have their row's largest exponent subtracted,
 * keys one constant for the whole call (the largest exponent of all rows), so the largest
 * feature is exactly m^{-1/2} and nothing overflows; the factors cancel in the attention ratio.
 * With role FM_RAW apply evaluates the formula above unchanged (kernel-MSE metrics, tests).
 * apply is draws.h's fm_proj_exp: the projection in row blocks through the kernels' GEMM tiles,
 * each block's max, exp (la_vexpf) and scale while it is in cache.  No workspace.
 * Not here: the generalised A ≠ 0 family (gerf.c, which reproduces this map at A = 0).
 * Tests: tests/test_featuremaps.c (unbiasedness, Lemma 2 variance, overflow, kernels).
 */
#include "featuremap.h"

#include <math.h>

#include "draws.h"

struct prf_state {
    struct fm_proj P;
};

static int prf_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    struct prf_state *s = state;
    return fm_proj_init(&s->P, p, rng, "prf", err);
}

static int prf_out_dim(const void *state)
{
    return ((const struct prf_state *)state)->P.m;
}

static void prf_apply(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                      float *work, float *shift)
{
    (void)work;
    const struct prf_state *s = state;
    int m = s->P.m, d = s->P.d;
    /* h_r = ‖x̃‖²/2 = ‖x‖²/(2√d). */
    fm_proj_exp(&s->P, NULL, 0, x, n, 0.5 / sqrt((double)d), role, (float)(1.0 / sqrt((double)m)),
                phi, shift);
}

/* Backward (featuremap.h): with the shift held constant ∂φ_i/∂x = φ_i·(∇u_i − x/√d), so
 * dx = G·Ws − (Σ_i g_i·φ_i)·x/√d with G_i = g_i·φ_i (draws.h, FM_GRAD_EXP).  No parameters. */
static void prf_backward(const void *state, const float *x, size_t n, const float *phi,
                         const float *dphi, float *dx, float *dparams, float *work)
{
    (void)dparams;
    const struct prf_state *s = state;
    fm_proj_backward(&s->P, FM_GRAD_EXP, (float)(-1.0 / sqrt((double)s->P.d)), x, n, phi, dphi, dx,
                     work);
}

static size_t prf_backward_work_floats(const void *state, size_t n)
{
    return fm_grad_work_floats(((const struct prf_state *)state)->P.m, n);
}

static void prf_release(void *state)
{
    fm_proj_release(&((struct prf_state *)state)->P);
}

/* Cost (featuremap.h), per row of m features from m draws: the projection 2·d·m, the norm term
 * ‖x̃‖²/2 (2·d; fm_proj_exp forms it for every role), and per feature the row max, the
 * two shifts (row max, key offset), the exp and the scale m^{-1/2}: 2·d·m + 2·d + 5·m.
 * Parameters: W, m·d floats. */
static double prf_flops(size_t n, int d, int m)
{
    return (double)n * (2.0 * d * (double)m + 2.0 * d + 5.0 * m);
}

static double prf_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m) + sizeof(float) * (double)m * d;
}

/* Backward, per row: the products g_i·φ_i (m) and their sum t (m), the product G·Ws (2·d·m),
 * and the norm term t·x/√d subtracted (2·d): 2·d·m + 2·m + 2·d. */
static double prf_backward_flops(size_t n, int d, int m)
{
    return (double)n * (2.0 * d * (double)m + 2.0 * m + 2.0 * d);
}

static double prf_nominal_dim(int d, int m)
{
    return m > 0 ? m : d;
}

const struct featuremap_type fm_prf = {
    .name = "prf",
    .summary = "FAVOR+ positive random features exp(Wx~ - |x~|^2/2)/sqrt(m), max-stabilised",
    .params = "m, draw, norm_fixed, seed",
    .state_size = sizeof(struct prf_state),
    .random = 1,
    .flops = prf_flops,
    .bytes = prf_bytes,
    .nominal_dim = prf_nominal_dim,
    .init = prf_init,
    .out_dim = prf_out_dim,
    .work_floats = NULL,
    .fit = NULL,
    .apply = prf_apply,
    .release = prf_release,
    .kernel = NULL,
    .backward_work_floats = prf_backward_work_floats,
    .backward = prf_backward,
    .backward_flops = prf_backward_flops,
};
