/* grad.c — the generic layer of the feature maps' backward (vector–Jacobian product): checks the
 * arguments once, then dispatches to the type's backward (featuremap.h, struct featuremap_type,
 * where the method and the stabiliser's pairing are documented).  The maps' own backward
 * passes are in their files; the blocks they share (the projection's VJP) are in draws.c.
 * Not here: the attention backward (kernels/), training loops.
 * Tests: tests/test_fmgrad.c.
 */
#include "featuremap.h"

#include <math.h>

size_t featuremap_backward_work_floats(const struct featuremap *fm, size_t n)
{
    const struct featuremap_type *t = fm->type;
    return t->backward && t->backward_work_floats ? t->backward_work_floats(fm->state, n) : 0;
}

size_t featuremap_param_count(const struct featuremap *fm)
{
    return fm->type->param_count ? fm->type->param_count(fm->state) : 0;
}

int featuremap_backward(const struct featuremap *fm, enum fm_role role, const float *x, size_t n,
                        const float *phi, const float *dphi, float *dx, float *dparams, float *work,
                        struct la_error *err)
{
    if (!fm)
        return LA_FAIL(err, LA_EINVAL, "featuremap_backward: no feature map");
    const char *name = fm->type->name;
    if (!fm->type->backward)
        return LA_FAIL(err, LA_EINVAL,
                       "feature map '%s' has no backward (vector-Jacobian product): it cannot "
                       "pass gradients",
                       name);
    if (n == 0)
        return LA_FAIL(err, LA_EINVAL, "feature map '%s': backward of 0 rows", name);
    if (!x || !phi || !dphi || !dx)
        return LA_FAIL(err, LA_EINVAL,
                       "feature map '%s': backward needs x, phi, dphi and dx (one is NULL)", name);
    if (dparams && featuremap_param_count(fm) == 0)
        return LA_FAIL(err, LA_EINVAL,
                       "feature map '%s' has no trainable parameters; pass dparams = NULL", name);
    if (!work && featuremap_backward_work_floats(fm, n) > 0)
        return LA_FAIL(err, LA_EINVAL,
                       "feature map '%s': backward of %zu rows needs %zu floats of workspace", name,
                       n, featuremap_backward_work_floats(fm, n));
    const int key = (role == FM_KEY || role == FM_RAW_KEY) && fm->type->two_sided;
    if (key && !fm->type->backward_key)
        return LA_FAIL(err, LA_EINVAL,
                       "feature map '%s' has no backward of its key map: it cannot pass the keys' "
                       "gradients",
                       name);
    (key ? fm->type->backward_key : fm->type->backward)(fm->state, x, n, phi, dphi, dx, dparams,
                                                        work);
    return LA_OK;
}

double featuremap_nominal_backward_flops(const struct featuremap_type *t, size_t n, int d, int m)
{
    return t && t->backward && t->backward_flops && d >= 1 && m >= 1 ? t->backward_flops(n, d, m)
                                                                     : NAN;
}
