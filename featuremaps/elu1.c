/* elu1.c — the elu+1 feature map of Katharopoulos et al. (2020): φ(x) = elu(x) + 1, m = d.
 * Evaluated as x >= 0 ? x + 1 : exp(x), which is exact and positive (computing elu(x) then
 * adding 1 loses everything below -17 in fp32).  Its fp32 form is attn_map_rows's
 * (kernels/fused_map.c, the SIMD path's exp), which the linear kernels can also apply
 * themselves (fused_map), with the same floats.  Deterministic; defines its own kernel
 * k(q, k) = φ(q)ᵀφ(k).  Tests: tests/test_featuremaps.c.
 */
#include "featuremap.h"

#include <math.h>

#include "../kernels/attention.h"

struct elu1_state {
    int d;
};

static int elu1_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    (void)rng;
    struct elu1_state *s = state;
    if (p->m != 0 && p->m != p->d)
        return LA_FAIL(err, LA_EINVAL, "elu1: m is always d (%d); got m = %d", p->d, p->m);
    s->d = p->d;
    return LA_OK;
}

static int elu1_out_dim(const void *state)
{
    return ((const struct elu1_state *)state)->d;
}

static void elu1_apply(const void *state, enum fm_role role, const float *x, size_t n,
                       float *phi, float *work, float *shift)
{
    fm_zero_shift(shift, n);
    (void)role;
    (void)work;
    const struct elu1_state *s = state;
    /* The one definition the fused kernels use too (kernels/fused_map.c): max(x, 0) +
     * exp(min(x, 0)) in one vector pass. */
    attn_map_rows(ATTN_MAP_ELU1, 0.0f, x, phi, n * (size_t)s->d);
}

/* Backward (featuremap.h): φ'(x) = 1 for x >= 0 and exp(x) = φ(x) for x < 0 (continuous at 0,
 * both sides 1), so dx = g·(x >= 0 ? 1 : φ).  No stabiliser, no parameters, no workspace. */
static void elu1_backward(const void *state, const float *x, size_t n, const float *phi,
                          const float *dphi, float *dx, float *dparams, float *work)
{
    (void)dparams;
    (void)work;
    const struct elu1_state *s = state;
    size_t total = n * (size_t)s->d;
    for (size_t i = 0; i < total; i++)
        dx[i] = dphi[i] * (x[i] >= 0.0f ? 1.0f : phi[i]); /* NaN x: φ is NaN */
}

static double elu1_phi(double v)
{
    return v >= 0.0 ? v + 1.0 : exp(v);
}

static double elu1_kernel(const void *state, const double *q, const double *k, int d)
{
    (void)state;
    double acc = 0.0;
    for (int i = 0; i < d; i++)
        acc += elu1_phi(q[i]) * elu1_phi(k[i]);
    return acc;
}

/* Cost (featuremap.h): per feature a max, a min (x − max(x, 0)), an exp and an add; no
 * parameters.  m = d. */
static double elu1_flops(size_t n, int d, int m)
{
    (void)d;
    return 4.0 * (double)n * m;
}

/* Backward, per feature a compare and select and a multiply: 2·m. */
static double elu1_backward_flops(size_t n, int d, int m)
{
    (void)d;
    return 2.0 * (double)n * m;
}

static double elu1_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m);
}

static double elu1_nominal_dim(int d, int m)
{
    (void)m;
    return d;
}

const struct featuremap_type fm_elu1 = {
    .name = "elu1",
    .summary = "elu(x)+1 elementwise, m = d (Katharopoulos 2020); its own kernel",
    .params = "(none)",
    .state_size = sizeof(struct elu1_state),
    .random = 0,
    .fused_map = ATTN_MAP_ELU1,
    .flops = elu1_flops,
    .bytes = elu1_bytes,
    .nominal_dim = elu1_nominal_dim,
    .init = elu1_init,
    .out_dim = elu1_out_dim,
    .work_floats = NULL,
    .fit = NULL,
    .apply = elu1_apply,
    .release = NULL,
    .kernel = elu1_kernel,
    .backward_work_floats = NULL,
    .backward = elu1_backward,
    .backward_flops = elu1_backward_flops,
};
