/* rff.c — trigonometric random Fourier features (Rahimi & Recht 2007) times the norm factor
 * that turns the Gaussian kernel into the softmax kernel (Performer's "SM^trig"):
 *     φ(x) = m^{-1/2} · [cos(W x̃), sin(W x̃)] · exp(‖x̃‖²/2),   x̃ = x·d^{-1/4},
 * 2m outputs from m draws (default m = d); row layout: the m cosines, then the m sines.
 * Unbiased for exp(qᵀk/√d); IID MSE (Performer Lemma 2) = (1/2m)·exp(‖x̃_q‖² + ‖x̃_k‖²)·
 * (1 − exp(−‖x̃_q − x̃_k‖²))², which grows without bound relative to SM² as SM → 0.
 *
 * Not positive: φ(q)ᵀz, the attention normaliser, can be near zero or negative.  The linear
 * kernels count the rows with |normaliser| <= eps (attn_args.n_small_den, and attn_linear_ref's
 * return value); such rows' outputs are meaningless and experiments should report the count.
 *
 * Stabiliser: the factor exp(‖x̃‖²/2) overflows fp32 once ‖x̃‖² > 177.  It is positive, so it
 * is replaced by exp(‖x̃‖²/2 − c) with c = ‖x̃‖²/2 per row for queries (the factor becomes 1)
 * and c = the largest ‖x̃‖²/2 of the call for keys; both cancel in the attention ratio.  FM_RAW
 * keeps c = 0 (the formula above).  The projection is one SGEMM written into the cosine half;
 * each row's angles are copied to the workspace (m floats) and la_vsincosf writes both halves.
 * Tests: tests/test_featuremaps.c.
 */
#include "featuremap.h"

#include <math.h>
#include <string.h>

#include "../kernels/vmath.h"
#include "draws.h"

struct rff_state {
    struct fm_proj P;
};

static int rff_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    struct rff_state *s = state;
    return fm_proj_init(&s->P, p, rng, "rff", err);
}

static int rff_out_dim(const void *state)
{
    return 2 * ((const struct rff_state *)state)->P.m;
}

static size_t rff_work_floats(const void *state, size_t n)
{
    (void)n;
    return (size_t)((const struct rff_state *)state)->P.m;
}

static void rff_apply(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                      float *work, float *shift)
{
    const struct rff_state *s = state;
    int m = s->P.m, d = s->P.d;
    size_t ld = (size_t)(2 * m);
    fm_proj_gemm(&s->P, x, n, phi, 2 * m);
    double cmax = 0.0; /* keys: the largest ‖x̃‖²/2 of the call */
    if (role == FM_KEY) {
        cmax = -INFINITY;
        for (size_t r = 0; r < n; r++) {
            double h = 0.5 * fm_sqnorm_tilde(x + r * (size_t)d, d);
            cmax = h > cmax ? h : cmax;
        }
    }
    double base = 1.0 / sqrt((double)m);
    for (size_t r = 0; r < n; r++) {
        float *row = phi + r * ld;
        memcpy(work, row, (size_t)m * sizeof *work);
        la_vsincosf(work, row + m, row, (size_t)m);
        float f = (float)base;
        const double h = 0.5 * fm_sqnorm_tilde(x + r * (size_t)d, d);
        if (role != FM_QUERY)
            f = (float)(base * exp(h - cmax));
        /* Relative to the formula's exp(‖x̃‖²/2): queries drop it (shift h), keys keep it
         * relative to the call's largest (shift cmax; 0 for FM_RAW). */
        if (shift)
            shift[r] = role == FM_QUERY ? (float)h : (float)cmax;
        for (size_t i = 0; i < ld; i++)
            row[i] *= f;
    }
}

/* Backward (featuremap.h): φ = m^{-1/2}·[cos u, sin u]·exp(h − c), h = ‖x‖²/(2√d), c held
 * constant; ∂cos u_i = −sin u_i and ∂sin u_i = cos u_i carry the same factor, so
 * ∂L/∂u_i = g_{m+i}·φ_i − g_i·φ_{m+i}, and the factor's own derivative adds
 * (Σ_c g_c·φ_c)·x/√d: dx = G·Ws + t·x/√d (draws.h, FM_GRAD_TRIG).  No parameters. */
static void rff_backward(const void *state, const float *x, size_t n, const float *phi,
                         const float *dphi, float *dx, float *dparams, float *work)
{
    (void)dparams;
    const struct rff_state *s = state;
    fm_proj_backward(&s->P, FM_GRAD_TRIG, (float)(1.0 / sqrt((double)s->P.d)), x, n, phi, dphi, dx,
                     work);
}

static size_t rff_backward_work_floats(const void *state, size_t n)
{
    return fm_grad_work_floats(((const struct rff_state *)state)->P.m, n);
}

static void rff_release(void *state)
{
    fm_proj_release(&((struct rff_state *)state)->P);
}

/* Cost (featuremap.h), per row of m = 2p features from p = m/2 draws: the projection 2·d·p = d·m,
 * the norm ‖x̃‖²/2 (2·d), a sine and a cosine per draw (m) and the scale of every feature (m):
 * d·m + 2·d + 2·m.  The copy of the angles is not counted, nor the keys' per-row factor
 * exp(‖x̃‖²/2 − c) (one exp per row, scalar).  Parameters: W, (m/2)·d floats. */
static double rff_flops(size_t n, int d, int m)
{
    return (double)n * ((double)d * m + 2.0 * d + 2.0 * m);
}

static double rff_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m) + sizeof(float) * 0.5 * m * (double)d;
}

/* Backward, per row of m = 2p features: the products g·φ (m) and their sum t (m), G_i from
 * two cross products g_{p+i}·φ_i, g_i·φ_{p+i} and a subtract (3 per draw: 1.5·m), the product
 * G·Ws (2·d·p = d·m) and the norm term (2·d): d·m + 3.5·m + 2·d. */
static double rff_backward_flops(size_t n, int d, int m)
{
    return (double)n * ((double)d * m + 3.5 * m + 2.0 * d);
}

static double rff_nominal_dim(int d, int m)
{
    return 2.0 * (m > 0 ? m : d);
}

const struct featuremap_type fm_rff = {
    .name = "rff",
    .summary = "trigonometric random features [cos(Wx~), sin(Wx~)]exp(|x~|^2/2) (2m outputs)",
    .params = "m, draw, norm_fixed, seed",
    .state_size = sizeof(struct rff_state),
    .random = 1,
    .flops = rff_flops,
    .bytes = rff_bytes,
    .nominal_dim = rff_nominal_dim,
    .init = rff_init,
    .out_dim = rff_out_dim,
    .work_floats = rff_work_floats,
    .fit = NULL,
    .apply = rff_apply,
    .release = rff_release,
    .kernel = NULL,
    .backward_work_floats = rff_backward_work_floats,
    .backward = rff_backward,
    .backward_flops = rff_backward_flops,
};
