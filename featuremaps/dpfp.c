/* dpfp.c — the deterministic parameter-free projection of Schlag et al. (2021, "Linear
 * Transformers Are Secretly Fast Weight Programmers"): with r = [relu(x), relu(−x)] (2d
 * entries), the features are r_i · r_{(i+j) mod 2d} for j = 1..ν and i = 0..2d−1, feature
 * (j−1)·2d + i, so m = 2dν; ν = fm_params.nu in 1..3 (default 1).  Every feature is a product
 * of two nonnegative numbers, so φ >= 0 (some open implementations use −relu(x) for the second
 * half, which makes half the products negative; this follows the definition).  No d^{-1/4}
 * scaling.  A row with x = 0 has φ = 0 (the normaliser then counts it as small).
 * Deterministic; defines its own kernel k(q, k) = φ(q)ᵀφ(k), evaluated in double.
 * Tests: tests/test_featuremaps.c (against the definition, nonnegativity, the cost models),
 * tests/test_fmgrad.c (the backward against finite differences).
 */
#include "featuremap.h"

#include <math.h>

struct dpfp_state {
    int d, nu;
};

static int dpfp_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    (void)rng;
    struct dpfp_state *s = state;
    if (p->nu < 1 || p->nu > 3)
        return LA_FAIL(err, LA_EINVAL, "dpfp: nu must be 1, 2 or 3, got %d", p->nu);
    if (p->m != 0 && p->m != 2 * p->d * p->nu)
        return LA_FAIL(err, LA_EINVAL, "dpfp: m is always 2·d·nu (%d); got m = %d",
                       2 * p->d * p->nu, p->m);
    s->d = p->d;
    s->nu = p->nu;
    return LA_OK;
}

static int dpfp_out_dim(const void *state)
{
    const struct dpfp_state *s = state;
    return 2 * s->d * s->nu;
}

/* One row's r (2d floats). */
static size_t dpfp_work_floats(const void *state, size_t n)
{
    (void)n;
    return 2 * (size_t)((const struct dpfp_state *)state)->d;
}

static inline float relu0(float v)
{
    return v > 0.0f ? v : 0.0f * v; /* 0·NaN keeps a NaN input visible */
}

/* Per row: r into work, then each shift j as two runs without a modulo (i + j < 2d, and the
 * wrapped tail), which the compiler vectorises. */
static void dpfp_apply(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                       float *work, float *shift)
{
    fm_zero_shift(shift, n);
    (void)role;
    const struct dpfp_state *s = state;
    const int d = s->d, w = 2 * d, m = w * s->nu;
    float *restrict rr = work;
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * (size_t)d;
        float *restrict pr = phi + r * (size_t)m;
        for (int i = 0; i < d; i++) {
            rr[i] = relu0(xr[i]);
            rr[d + i] = relu0(-xr[i]);
        }
        for (int j = 1; j <= s->nu; j++) {
            float *restrict o = pr + (size_t)(j - 1) * w;
            const int jj = j % w, cut = w - jj;
            for (int i = 0; i < cut; i++)
                o[i] = rr[i] * rr[i + jj];
            for (int i = cut; i < w; i++)
                o[i] = rr[i] * rr[i - cut];
        }
    }
}

/* Backward (featuremap.h): feature (j−1)·2d + i is r_i·r_{(i+j) mod 2d}, so with g = ∂L/∂φ
 *   ∂L/∂r_a = Σ_j g_{j,a}·r_{(a+j) mod 2d} + g_{j,(a−j) mod 2d}·r_{(a−j) mod 2d},
 * and r_c = relu(x_c), r_{d+c} = relu(−x_c) give ∂L/∂x_c = ∂L/∂r_c·[x_c > 0] − ∂L/∂r_{d+c}·[x_c < 0]
 * (the subgradient 0 at x_c = 0, where both halves are 0).  No parameters; work: r and ∂L/∂r. */
static size_t dpfp_backward_work_floats(const void *state, size_t n)
{
    (void)n;
    return 4 * (size_t)((const struct dpfp_state *)state)->d;
}

static void dpfp_backward(const void *state, const float *x, size_t n, const float *phi,
                          const float *dphi, float *dx, float *dparams, float *work)
{
    (void)phi;
    (void)dparams;
    const struct dpfp_state *s = state;
    const int d = s->d, w = 2 * d, m = w * s->nu;
    float *restrict rr = work, *restrict dr = work + w;
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * (size_t)d;
        const float *gr = dphi + r * (size_t)m;
        for (int i = 0; i < d; i++) {
            rr[i] = relu0(xr[i]);
            rr[d + i] = relu0(-xr[i]);
        }
        for (int a = 0; a < w; a++)
            dr[a] = 0.0f;
        for (int j = 1; j <= s->nu; j++) {
            const float *g = gr + (size_t)(j - 1) * w;
            const int jj = j % w;
            for (int i = 0; i < w; i++) {
                const int b = i + jj < w ? i + jj : i + jj - w;
                dr[i] += g[i] * rr[b];
                dr[b] += g[i] * rr[i];
            }
        }
        float *dxr = dx + r * (size_t)d;
        for (int c = 0; c < d; c++)
            dxr[c] = (xr[c] > 0.0f ? dr[c] : 0.0f) - (xr[c] < 0.0f ? dr[d + c] : 0.0f);
    }
}

/* Per feature two multiply-adds (into ∂L/∂r_i and ∂L/∂r_{i+j}), per input a select of each
 * half: 4·m + 2·d. */
static double dpfp_backward_flops(size_t n, int d, int m)
{
    return (double)n * (4.0 * m + 2.0 * d);
}

static double dpfp_rd(const double *x, int d, int i)
{
    const double v = i < d ? x[i] : -x[i - d];
    return v > 0.0 ? v : 0.0;
}

static double dpfp_kernel(const void *state, const double *q, const double *k, int d)
{
    const struct dpfp_state *s = state;
    const int w = 2 * d;
    double acc = 0.0;
    for (int j = 1; j <= s->nu; j++)
        for (int i = 0; i < w; i++)
            acc += dpfp_rd(q, d, i) * dpfp_rd(q, d, (i + j) % w) * dpfp_rd(k, d, i) *
                   dpfp_rd(k, d, (i + j) % w);
    return acc;
}

/* Cost (featuremap.h): per row the 2d relus (a max each), then one product per feature; no
 * parameters.  m = 2dν. */
static double dpfp_flops(size_t n, int d, int m)
{
    return (double)n * (2.0 * d + m);
}

static double dpfp_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m);
}

/* m when given (it must be 2dν), else ν = 1's 2d: (d, m) does not carry ν, so this is the
 * dimension at the default ν; dpfp_params_dim, which has ν, is the one the harness's estimates
 * (run order, ETA, memory: featuremap_params_dim) use.  A run's rows record the built map's m,
 * 2dν, which the flops and bytes models above take as their m. */
static double dpfp_nominal_dim(int d, int m)
{
    return m > 0 ? m : 2.0 * d;
}

static double dpfp_params_dim(const struct fm_params *p)
{
    return p->m > 0 ? p->m : 2.0 * p->d * (p->nu >= 1 ? p->nu : 1);
}

const struct featuremap_type fm_dpfp = {
    .name = "dpfp",
    .summary = "DPFP: products r_i·r_{i+j} of r = [relu(x), relu(−x)], j = 1..nu, m = 2d·nu "
               "(Schlag 2021); its own kernel",
    .params = "nu",
    .state_size = sizeof(struct dpfp_state),
    .random = 0,
    .flops = dpfp_flops,
    .bytes = dpfp_bytes,
    .nominal_dim = dpfp_nominal_dim,
    .params_dim = dpfp_params_dim,
    .init = dpfp_init,
    .out_dim = dpfp_out_dim,
    .work_floats = dpfp_work_floats,
    .fit = NULL,
    .apply = dpfp_apply,
    .release = NULL,
    .kernel = dpfp_kernel,
    .backward_work_floats = dpfp_backward_work_floats,
    .backward = dpfp_backward,
    .backward_flops = dpfp_backward_flops,
};
