/* relu.c — the ReLU feature map φ(x) = max(x, 0) + eps, elementwise on x itself (no d^{-1/4}
 * scaling), m = d.  The Performer's "generalized" features use f(Wx) + 1e-3; this is the
 * deterministic version (T2R-style learned ReLU maps are learned.c).  eps = fm_params.eps
 * (default 1e-3, must be >= 0) keeps every feature positive, so the normaliser φ(q)ᵀz cannot
 * vanish for eps > 0 (at eps = 0 a query with no positive entry gets a zero normaliser).
 * Its fp32 form is attn_map_rows's (kernels/fused_map.c), which the linear kernels can also
 * apply themselves (fused_map, with eps as that float).
 * Deterministic; defines its own kernel k(q, k) = φ(q)ᵀφ(k), evaluated in double.
 * Tests: tests/test_featuremaps.c.
 */
#include "featuremap.h"

#include <math.h>

#include "../kernels/attention.h"

struct relu_state {
    int d;
    float eps;
    double eps_d;
};

static int relu_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    (void)rng;
    struct relu_state *s = state;
    if (p->m != 0 && p->m != p->d)
        return LA_FAIL(err, LA_EINVAL, "relu: m is always d (%d); got m = %d", p->d, p->m);
    if (!isfinite(p->eps) || p->eps < 0.0)
        return LA_FAIL(err, LA_EINVAL, "relu: eps must be finite and >= 0, got %g", p->eps);
    s->d = p->d;
    s->eps = (float)p->eps;
    s->eps_d = (double)s->eps; /* the kernel uses the fp32 eps the features use */
    return LA_OK;
}

static int relu_out_dim(const void *state)
{
    return ((const struct relu_state *)state)->d;
}

static void relu_apply(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                       float *work, float *shift)
{
    fm_zero_shift(shift, n);
    (void)role;
    (void)work;
    const struct relu_state *s = state;
    /* The one definition the fused kernels use too (kernels/fused_map.c); NaN propagates. */
    attn_map_rows(ATTN_MAP_RELU, s->eps, x, phi, n * (size_t)s->d);
}

/* Backward (featuremap.h): φ'(x) = 1 for x > 0, 0 for x < 0; at x = 0 the subgradient 0 is
 * taken (eps shifts φ, not its slope).  NaN inputs give NaN.  No parameters, no workspace. */
static void relu_backward(const void *state, const float *x, size_t n, const float *phi,
                          const float *dphi, float *dx, float *dparams, float *work)
{
    (void)phi;
    (void)dparams;
    (void)work;
    const struct relu_state *s = state;
    size_t total = n * (size_t)s->d;
    for (size_t i = 0; i < total; i++)
        dx[i] = x[i] > 0.0f ? dphi[i] : (isnan(x[i]) ? x[i] : 0.0f);
}

static double relu_kernel(const void *state, const double *q, const double *k, int d)
{
    const struct relu_state *s = state;
    double acc = 0.0;
    for (int i = 0; i < d; i++)
        acc += (fmax(q[i], 0.0) + s->eps_d) * (fmax(k[i], 0.0) + s->eps_d);
    return acc;
}

/* Cost (featuremap.h): per feature a max and the add of eps; no parameters but the scalar eps.
 * m = d. */
static double relu_flops(size_t n, int d, int m)
{
    (void)d;
    return 2.0 * (double)n * m;
}

/* Backward, per feature one compare and select: m. */
static double relu_backward_flops(size_t n, int d, int m)
{
    (void)d;
    return (double)n * m;
}

static double relu_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m);
}

static double relu_nominal_dim(int d, int m)
{
    (void)m;
    return d;
}

const struct featuremap_type fm_relu = {
    .name = "relu",
    .summary = "max(x, 0) + eps elementwise, m = d; its own kernel",
    .params = "eps",
    .state_size = sizeof(struct relu_state),
    .random = 0,
    .fused_map = ATTN_MAP_RELU,
    .flops = relu_flops,
    .bytes = relu_bytes,
    .nominal_dim = relu_nominal_dim,
    .init = relu_init,
    .out_dim = relu_out_dim,
    .work_floats = NULL,
    .fit = NULL,
    .apply = relu_apply,
    .release = NULL,
    .kernel = relu_kernel,
    .backward_work_floats = NULL,
    .backward = relu_backward,
    .backward_flops = relu_backward_flops,
};
