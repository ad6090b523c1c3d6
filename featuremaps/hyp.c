/* hyp.c — hyperbolic positive random features (Performer's SM^hyp+):
 *     φ(x) = (2m)^{-1/2} · [exp(W x̃ − ‖x̃‖²/2), exp(−W x̃ − ‖x̃‖²/2)],   x̃ = x·d^{-1/4},
 * 2m outputs from m draws (default m = d), unbiased for exp(qᵀk/√d): the pair averages
 * exp(±ωᵀ(x̃_q + x̃_k)) into a cosh.  IID MSE = ½(1 − exp(−Δ))·MSE(prf), Δ = ‖x̃_q + x̃_k‖²,
 * always below prf's at equal draws.  Layout of a row: the m "+" features, then the m "−".
 *
 * Stabilised like prf (draws.h, fm_exp_stabilised): the max runs over both halves, per row for
 * queries and over the whole call for keys; FM_RAW gives the unshifted formula.  apply is
 * draws.h's fm_proj_exp with pair set: each row block's projection is written into the "+"
 * half, then both halves are exponentiated from it (vmath.h's la_vexpf_pair) while in cache;
 * no workspace.
 * Tests: tests/test_featuremaps.c.
 */
#include "featuremap.h"

#include <math.h>

#include "draws.h"

struct hyp_state {
    struct fm_proj P;
};

static int hyp_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    struct hyp_state *s = state;
    return fm_proj_init(&s->P, p, rng, "hyp", err);
}

static int hyp_out_dim(const void *state)
{
    return 2 * ((const struct hyp_state *)state)->P.m;
}

static void hyp_apply(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                      float *work, float *shift)
{
    (void)work;
    const struct hyp_state *s = state;
    int m = s->P.m, d = s->P.d;
    fm_proj_exp(&s->P, NULL, 1, x, n, 0.5 / sqrt((double)d), role, (float)(1.0 / sqrt(2.0 * m)),
                phi, shift);
}

/* Backward (featuremap.h): the "+" half is exp(u_i − h − c), the "−" half exp(−u_i − h − c),
 * so ∂L/∂u_i = g_i·φ_i − g_{m+i}·φ_{m+i} and dx = G·Ws − (Σ over both halves of g·φ)·x/√d
 * (draws.h, FM_GRAD_PAIR).  No parameters. */
static void hyp_backward(const void *state, const float *x, size_t n, const float *phi,
                         const float *dphi, float *dx, float *dparams, float *work)
{
    (void)dparams;
    const struct hyp_state *s = state;
    fm_proj_backward(&s->P, FM_GRAD_PAIR, (float)(-1.0 / sqrt((double)s->P.d)), x, n, phi, dphi, dx,
                     work);
}

static size_t hyp_backward_work_floats(const void *state, size_t n)
{
    return fm_grad_work_floats(((const struct hyp_state *)state)->P.m, n);
}

static void hyp_release(void *state)
{
    fm_proj_release(&((struct hyp_state *)state)->P);
}

/* Cost (featuremap.h), per row of m = 2p features from p = m/2 draws: the projection 2·d·p = d·m
 * (the "−" half is a negated copy, not counted), the norm term 2·d, and over all m features the
 * row max, the two shifts, the exp and the scale (2m)^{-1/2} (5 each): d·m + 2·d + 5·m.
 * Parameters: W, (m/2)·d floats. */
static double hyp_flops(size_t n, int d, int m)
{
    return (double)n * ((double)d * m + 2.0 * d + 5.0 * m);
}

static double hyp_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m) + sizeof(float) * 0.5 * m * (double)d;
}

/* Backward, per row of m = 2p features: the products g·φ (m), their sum (m), the differences
 * G_i (m/2), the product G·Ws (2·d·p = d·m) and the norm term (2·d): d·m + 2.5·m + 2·d. */
static double hyp_backward_flops(size_t n, int d, int m)
{
    return (double)n * ((double)d * m + 2.5 * m + 2.0 * d);
}

static double hyp_nominal_dim(int d, int m)
{
    return 2.0 * (m > 0 ? m : d);
}

const struct featuremap_type fm_hyp = {
    .name = "hyp",
    .summary = "hyperbolic positive random features [exp(+Wx~), exp(-Wx~)] (2m outputs)",
    .params = "m, draw, norm_fixed, seed",
    .state_size = sizeof(struct hyp_state),
    .random = 1,
    .flops = hyp_flops,
    .bytes = hyp_bytes,
    .nominal_dim = hyp_nominal_dim,
    .init = hyp_init,
    .out_dim = hyp_out_dim,
    .work_floats = NULL,
    .fit = NULL,
    .apply = hyp_apply,
    .release = hyp_release,
    .kernel = NULL,
    .backward_work_floats = hyp_backward_work_floats,
    .backward = hyp_backward,
    .backward_flops = hyp_backward_flops,
};
