/* check_backward.c — one fast backward kernel against its double reference at one shape (see
 * check.h): seeded q, k, v and upstream gradient dY, the kernel over the case's heads and
 * threads (attn_run_heads), the reference per head, and the relative Frobenius error of the
 * three gradients (grad_q, grad_k, grad_v) taken together.  la_check_kernel (check.c) sends
 * backward rows here.
 * Why together: linear attention's y_i does not change when φ(q_i) is scaled (up to eps), so
 * dφ(q_i) is orthogonal to φ(q_i) up to eps, and with one feature (m = 1) or one token it is
 * O(eps) while its two terms (W_i and b_i z_i) are O(1): fp32 rounding of the terms is then
 * large relative to that gradient alone, though not to the gradients' scale.  A wrong term or
 * row is O(1) against that scale and fails.
 */
#include "check.h"

#include <math.h>
#include <stdlib.h>

#include "../core/util.h"

/* ‖g − gr‖_F / ‖gr‖_F (absolute when gr is zero) over n values. */
static double rel_err(const float *g, const double *gr, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)g[i] - gr[i];
        num += e * e;
        den += gr[i] * gr[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Uniform in [-scale, scale) (features: e to that, positive and elu1-like), fp32 and the same
 * numbers in double. */
static void fill(uint64_t *s, float *x, double *xd, size_t n, double scale, int features)
{
    for (size_t i = 0; i < n; i++) {
        const double a = (2.0 * la_splitmix64_unit(s) - 1.0) * scale;
        x[i] = (float)(features ? exp(a) : a);
        xd[i] = x[i];
    }
}

int la_check_backward(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                      struct la_check_result *res, struct la_error *err)
{
    const int H = c->heads > 0 ? c->heads : 1, T = c->T, dk = c->dk, dv = c->dv;
    const int nth = c->threads > 0 ? c->threads : 1;
    const size_t nq = (size_t)H * T * dk, nv = (size_t)H * T * dv;
    const int features = kn->input == ATTN_IN_FEATURES;
    const size_t ws = attn_workspace_floats(kn, T, dk, dv, c->causal, c->chunk, H < nth ? nth : 1);
    const size_t nws = ws * (size_t)(H < nth ? 1 : nth); /* attn_run_heads' slices */
    const size_t nscr = kn->ref->scratch(T, dk, dv);
    float *f = malloc((4 * nq + 3 * nv) * sizeof *f), *work = malloc((nws ? nws : 1) * sizeof *work);
    double *dd = malloc((4 * nq + 3 * nv) * sizeof *dd);
    double *scratch = malloc((nscr ? nscr : 1) * sizeof *scratch);
    int status = LA_OK;
    if (!f || !work || !dd || !scratch) {
        status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for T=%d dk=%d dv=%d", T, dk, dv);
        goto fail;
    }
    /* q, k (nq each), v, dY (nv each), then the outputs dQ, dK (nq each), dV (nv). */
    float *q = f, *k = q + nq, *v = k + nq, *gy = v + nv, *gq = gy + nv, *gk = gq + nq;
    float *gv = gk + nq;
    double *qd = dd, *kd = qd + nq, *vd = kd + nq, *gyd = vd + nv, *gqd = gyd + nv;
    double *gkd = gqd + nq, *gvd = gkd + nq;
    uint64_t s = seed;
    fill(&s, q, qd, nq, c->scale, features);
    fill(&s, k, kd, nq, c->scale, features);
    fill(&s, v, vd, nv, 1.0, 0);
    fill(&s, gy, gyd, nv, 1.0, 0);
    struct attn_args a = {.q = q, .k = k, .v = v, .T = T, .dk = dk, .dv = dv, .causal = c->causal,
                          .eps = 1e-6f, .chunk = c->chunk, .grad_y = gy, .grad_q = gq,
                          .grad_k = gk, .grad_v = gv};
    res->small_fast = attn_run_heads(kn, &a, H, nth, work, ws);
    res->small_ref = 0;
    for (int h = 0; h < H; h++) {
        const size_t oq = (size_t)h * T * dk, ov = (size_t)h * T * dv;
        struct attn_ref_args ra = {.q = qd + oq, .k = kd + oq, .v = vd + ov, .T = T, .dk = dk,
                                   .dv = dv, .causal = c->causal, .eps = 1e-6,
                                   .scratch = scratch, .grad_y = gyd + ov, .grad_q = gqd + oq,
                                   .grad_k = gkd + oq, .grad_v = gvd + ov};
        kn->ref->run(&ra);
        res->small_ref += ra.n_small_den;
    }
    res->finite = all_finite(gq, 2 * nq + nv);
    res->rel_err = rel_err(gq, gqd, 2 * nq + nv);
    res->tol = kn->ref->tol;
fail:
    free(f), free(work), free(dd), free(scratch);
    return status;
}
