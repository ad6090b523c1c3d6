/* taylor2.c — the second-order Taylor feature map (Based, Arora et al. 2024): deterministic and
 * exact for the truncated exponential
 *     φ(q)ᵀφ(k) = 1 + s + s²/2,   s = qᵀk/√d = x̃_qᵀx̃_k,   x̃ = x·d^{-1/4},
 *     φ(x) = [1, x̃, x̃_i²/√2 (i < d), x̃_i·x̃_j (i < j)]   (row layout in that order; the
 * off-diagonal products appear once, which equals √2·x̃_ix̃_j/√2 twice in vec(x̃x̃ᵀ)/√2),
 * so m = 1 + d + d(d+1)/2 (m = 153 at d = 16, 2145 at d = 64).  fm_params.m is ignored when 0
 * and must equal that value otherwise.  1 + s + s²/2 > 0 for every s, so the normaliser is
 * positive although features can be negative.  Its own kernel method returns 1 + s + s²/2.
 * Not here: higher orders.  Tests: tests/test_featuremaps.c.
 */
#include "featuremap.h"

#include <math.h>

struct taylor2_state {
    int d, m;
};

static int taylor2_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    (void)rng;
    struct taylor2_state *s = state;
    long m = 1L + p->d + (long)p->d * (p->d + 1) / 2;
    if (m > 1L << 28)
        return LA_FAIL(err, LA_EINVAL, "taylor2: d = %d gives m = %ld features, too many", p->d, m);
    if (p->m != 0 && p->m != m)
        return LA_FAIL(err, LA_EINVAL,
                       "taylor2: m is always 1 + d + d(d+1)/2 = %ld at d = %d; "
                       "got m = %d",
                       m, p->d, p->m);
    s->d = p->d;
    s->m = (int)m;
    return LA_OK;
}

static int taylor2_out_dim(const void *state)
{
    return ((const struct taylor2_state *)state)->m;
}

/* Products written in whole groups of TAYLOR2_VEC (a 512-bit vector of floats): a fixed-length
 * inner loop that the compiler turns into one vector multiply and store, with no scalar
 * remainder. */
#define TAYLOR2_VEC 16

static void taylor2_apply(const void *state, enum fm_role role, const float *x, size_t n,
                          float *phi, float *work, float *shift)
{
    fm_zero_shift(shift, n);
    (void)role;
    (void)work;
    const struct taylor2_state *s = state;
    const int d = s->d, m = s->m;
    float f = (float)pow((double)d, -0.25);
    float rs2 = (float)(1.0 / sqrt(2.0));
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * (size_t)d;
        float *o = phi + r * (size_t)m;
        const float *end = o + m;
        float *lin = o + 1, *diag = o + 1 + d, *off = o + 1 + 2 * d;
        o[0] = 1.0f;
        for (int i = 0; i < d; i++)
            lin[i] = xr[i] * f;
        for (int i = 0; i < d; i++)
            diag[i] = lin[i] * lin[i] * rs2;
        /* Pair block i is x̃_i·x̃_j for j = i+1 .. d−1.  Whole groups run up to TAYLOR2_VEC − 1
         * entries past the block: those spill into the next blocks' places, which are written
         * after (with their own values), and read x̃'s row up to 15 places past x̃_{d−1}, which
         * is still inside φ's row (the diagonal block, then pairs) for d >= 5.  A block whose
         * groups would pass the end of the row is written exactly. */
        for (int i = 0; i < d; i++) {
            const int len = d - 1 - i;
            const float a = lin[i], *xj = lin + i + 1;
            const int whole = (len + TAYLOR2_VEC - 1) / TAYLOR2_VEC * TAYLOR2_VEC;
            if (d >= 5 && off + whole <= end && xj + whole <= end) {
                for (int t0 = 0; t0 < len; t0 += TAYLOR2_VEC)
                    for (int l = 0; l < TAYLOR2_VEC; l++)
                        off[t0 + l] = a * xj[t0 + l];
            } else {
                for (int t = 0; t < len; t++)
                    off[t] = a * xj[t];
            }
            off += len;
        }
    }
}

/* Backward (featuremap.h).  With x̃ = x·d^{-1/4} (read back from φ's linear block, which holds
 * it exactly as apply rounded it) and g split like φ into [g_1, g_lin, g_diag, g_off]:
 *     ∂L/∂x̃_k = g_lin,k + √2·x̃_k·g_diag,k + Σ_{j≠k} g_off,{kj}·x̃_j,
 * the off-diagonal term visiting each pair (i < j) once and feeding both ends; then
 * dx = d^{-1/4}·∂L/∂x̃.  The constant feature has no gradient.  No workspace. */
static void taylor2_backward(const void *state, const float *x, size_t n, const float *phi,
                             const float *dphi, float *dx, float *dparams, float *work)
{
    (void)x;
    (void)dparams;
    (void)work;
    const struct taylor2_state *s = state;
    int d = s->d;
    float f = (float)pow((double)d, -0.25);
    float sq2 = (float)sqrt(2.0);
    for (size_t r = 0; r < n; r++) {
        const float *lin = phi + r * (size_t)s->m + 1;
        const float *g = dphi + r * (size_t)s->m;
        const float *glin = g + 1, *gdiag = g + 1 + d, *goff = g + 1 + 2 * d;
        float *o = dx + r * (size_t)d;
        for (int k = 0; k < d; k++)
            o[k] = glin[k] + sq2 * lin[k] * gdiag[k];
        /* Pair (i, j > i) feeds o[j] += g·x̃_i (an axpy over j) and o[i] += g·x̃_j (a dot
         * over j, in eight lanes so that it vectorises without reassociation flags). */
        for (int i = 0; i < d; i++) {
            const int len = d - 1 - i;
            const float a = lin[i], *xj = lin + i + 1;
            float *oj = o + i + 1;
            for (int t = 0; t < len; t++)
                oj[t] += goff[t] * a;
            float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc = 0.0f;
            int t = 0;
            for (; t + 8 <= len; t += 8)
                for (int l = 0; l < 8; l++)
                    lane[l] += goff[t + l] * xj[t + l];
            for (; t < len; t++)
                acc += goff[t] * xj[t];
            for (int l = 0; l < 8; l++)
                acc += lane[l];
            o[i] += acc;
            goff += len;
        }
        for (int k = 0; k < d; k++)
            o[k] *= f;
    }
}

static double taylor2_kernel(const void *state, const double *q, const double *k, int d)
{
    (void)state;
    double dot = 0.0;
    for (int i = 0; i < d; i++)
        dot += q[i] * k[i];
    double s = dot / sqrt((double)d);
    return 1.0 + s + 0.5 * s * s;
}

/* Cost (featuremap.h), per row: d multiplies for x̃, two for each x̃_i²/√2, one for each of the
 * d(d−1)/2 products x̃_i·x̃_j: 3d + d(d−1)/2 = d(d+5)/2, which is m + d − 1 for this map's
 * m = 1 + d + d(d+1)/2 (counted from d, so it holds whatever m the caller has).  No parameters. */
static double taylor2_flops(size_t n, int d, int m)
{
    (void)m;
    return (double)n * 0.5 * (double)d * ((double)d + 5.0);
}

/* Backward, per row: 2·d(d−1) for the d(d−1)/2 pairs (two multiply-adds each), 3·d for the
 * linear and diagonal terms (a multiply by √2·x̃_k, a multiply, an add) and d for the final
 * scale: 2d² + 2d, counted from d as the forward is. */
static double taylor2_backward_flops(size_t n, int d, int m)
{
    (void)m;
    return (double)n * 2.0 * (double)d * ((double)d + 1.0);
}

static double taylor2_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m);
}

static double taylor2_nominal_dim(int d, int m)
{
    (void)m;
    return 1.0 + d + 0.5 * (double)d * ((double)d + 1.0);
}

const struct featuremap_type fm_taylor2 = {
    .name = "taylor2",
    .summary = "2nd-order Taylor features [1, x~, x~x~'/sqrt2]: exactly 1 + s + s^2/2 (Based)",
    .params = "(none)",
    .state_size = sizeof(struct taylor2_state),
    .random = 0,
    .flops = taylor2_flops,
    .bytes = taylor2_bytes,
    .nominal_dim = taylor2_nominal_dim,
    .init = taylor2_init,
    .out_dim = taylor2_out_dim,
    .work_floats = NULL,
    .fit = NULL,
    .apply = taylor2_apply,
    .release = NULL,
    .kernel = taylor2_kernel,
    .backward_work_floats = NULL,
    .backward = taylor2_backward,
    .backward_flops = taylor2_backward_flops,
};
