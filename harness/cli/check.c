/* check.c — one fast kernel against its double reference (the table's ref) at one shape (see
 * check.h).  The `linattn check` command that runs it over odd shapes is cmd_check.c.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "../core/util.h"

int la_check_kernel(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                    struct la_check_result *res, struct la_error *err)
{
    const int H = c->heads > 0 ? c->heads : 1, T = c->T, dk = c->dk, dv = c->dv;
    const int nth = c->threads > 0 ? c->threads : 1;
    const size_t nq = (size_t)H * T * dk, nv = (size_t)H * T * dv;
    const int features = kn->input == ATTN_IN_FEATURES;
    const struct attn_ref *ref = kn->ref;
    const size_t ws = attn_workspace_floats(kn, T, dk, dv, c->causal, c->chunk, H < nth ? nth : 1);
    const size_t nws = ws * (size_t)(H < nth ? 1 : nth); /* attn_run_heads' slices */
    float *q = malloc(nq * sizeof *q), *k = malloc(nq * sizeof *k);
    float *v = malloc(nv * sizeof *v), *y = malloc(nv * sizeof *y);
    float *work = malloc((nws ? nws : 1) * sizeof *work);
    double *qd = malloc(nq * sizeof *qd), *kd = malloc(nq * sizeof *kd);
    double *vd = malloc(nv * sizeof *vd), *yd = malloc(nv * sizeof *yd);
    const size_t nscr = ref->scratch(T, dk, dv);
    double *scratch = malloc((nscr ? nscr : 1) * sizeof *scratch);
    int status = LA_OK;
    if (!q || !k || !v || !y || !work || !qd || !kd || !vd || !yd || !scratch) {
        status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for T=%d dk=%d dv=%d", T, dk, dv);
        goto fail;
    }
    uint64_t s = seed;
    for (size_t i = 0; i < nq; i++) {
        /* Kernels that take features get positive (elu1-like) ones, so the normaliser is far
         * from zero and the comparison measures the kernel, not cancellation. */
        double a = (2.0 * la_splitmix64_unit(&s) - 1.0) * c->scale;
        double b = (2.0 * la_splitmix64_unit(&s) - 1.0) * c->scale;
        q[i] = (float)(features ? exp(a) : a);
        k[i] = (float)(features ? exp(b) : b);
        qd[i] = q[i];
        kd[i] = k[i];
    }
    for (size_t i = 0; i < nv; i++) {
        v[i] = (float)(2.0 * la_splitmix64_unit(&s) - 1.0);
        vd[i] = v[i];
    }
    struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = dk, .dv = dv,
                          .causal = c->causal, .eps = 1e-6f, .chunk = c->chunk};
    res->small_fast = attn_run_heads(kn, &a, H, nth, work, ws);
    res->small_ref = 0;
    for (int h = 0; h < H; h++) {
        const size_t oq = (size_t)h * T * dk, ov = (size_t)h * T * dv;
        struct attn_ref_args ra = {.q = qd + oq, .k = kd + oq, .v = vd + ov, .y = yd + ov,
                                   .T = T, .dk = dk, .dv = dv, .causal = c->causal, .eps = 1e-6,
                                   .scratch = scratch};
        ref->run(&ra);
        res->small_ref += ra.n_small_den;
    }
    double num = 0.0, den = 0.0;
    res->finite = 1;
    for (size_t i = 0; i < nv; i++) {
        if (!isfinite(y[i]))
            res->finite = 0;
        double e = (double)y[i] - yd[i];
        num += e * e;
        den += yd[i] * yd[i];
    }
    res->rel_err = den > 0 ? sqrt(num / den) : sqrt(num);
    res->tol = ref->tol;
fail:
    free(q), free(k), free(v), free(y), free(work);
    free(qd), free(kd), free(vd), free(yd), free(scratch);
    return status;
}
