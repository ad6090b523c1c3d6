/* check.c — one fast kernel against its double reference (the table's ref) at one shape (see
 * check.h): a forward kernel alone, a prefill or step kernel in the chain prefill then steps,
 * against the chained references and the causal forward reference and kernel.  The `linattn
 * check` command that runs it over odd shapes is cmd_check.c.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "../core/util.h"

/* Seeded inputs: n query and key values (positive, elu1-like, when features), nv values, in
 * fp32 and the same numbers in double. */
static void fill_inputs(uint64_t seed, int features, double scale, float *q, float *k, double *qd,
                        double *kd, size_t n, float *v, double *vd, size_t nv)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        /* Kernels that take features get positive (elu1-like) ones, so the normaliser is far
         * from zero and the comparison measures the kernel, not cancellation. */
        double a = (2.0 * la_splitmix64_unit(&s) - 1.0) * scale;
        double b = (2.0 * la_splitmix64_unit(&s) - 1.0) * scale;
        q[i] = (float)(features ? exp(a) : a);
        k[i] = (float)(features ? exp(b) : b);
        qd[i] = q[i];
        kd[i] = k[i];
    }
    for (size_t i = 0; i < nv; i++) {
        v[i] = (float)(2.0 * la_splitmix64_unit(&s) - 1.0);
        vd[i] = v[i];
    }
}

/* ‖y − yr‖_F / ‖yr‖_F (absolute when yr is zero) over n values, with y of float or double. */
static double rel_err_f(const float *y, const double *yr, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)y[i] - yr[i];
        num += e * e;
        den += yr[i] * yr[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Row t of each of B sequences of T rows of w values (sequence b's at b·T·w) into the (B, w)
 * block g, or back (to_rows). */
static void gather_rows(float *all, float *g, int B, int T, int t, int w, int to_rows)
{
    for (int b = 0; b < B; b++) {
        float *r = all + ((size_t)b * T + t) * w;
        if (to_rows)
            memcpy(r, g + (size_t)b * w, (size_t)w * sizeof *r);
        else
            memcpy(g + (size_t)b * w, r, (size_t)w * sizeof *r);
    }
}

static void gather_rows_d(const double *all, double *g, int B, int T, int t, int w)
{
    for (int b = 0; b < B; b++)
        memcpy(g + (size_t)b * w, all + ((size_t)b * T + t) * w, (size_t)w * sizeof *g);
}

static void scatter_rows_d(double *all, const double *g, int B, int T, int t, int w)
{
    for (int b = 0; b < B; b++)
        memcpy(all + ((size_t)b * T + t) * w, g + (size_t)b * w, (size_t)w * sizeof *g);
}

/* The prefill-then-steps chain of check.h for a prefill or step kernel kn. */
static int check_chain(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                       struct la_check_result *res, struct la_error *err)
{
    const int B = c->heads > 0 ? c->heads : 1, T = c->T, dk = c->dk, dv = c->dv;
    const int N = c->steps, P = T - N, nth = c->threads > 0 ? c->threads : 1;
    const struct attn_kernel *pf = kn->op == ATTN_OP_PREFILL
                                       ? kn
                                       : attn_kernel_find(ATTN_OP_PREFILL, kn->input, 1);
    const struct attn_kernel *st = kn->op == ATTN_OP_STEP
                                       ? kn
                                       : attn_kernel_find(ATTN_OP_STEP, kn->input, 1);
    const struct attn_kernel *fw = attn_kernel_find(ATTN_OP_FORWARD, kn->input, 1);
    if (!pf || !st || !fw)
        return LA_FAIL(err, LA_EINVAL,
                       "check: %s: no prefill, step and causal forward kernel of its input to "
                       "chain it with",
                       kn->name);
    if (N < 0 || N > T || !c->causal)
        return LA_FAIL(err, LA_EINVAL, "check: %s: needs causal and 0 <= steps (%d) <= T (%d)",
                       kn->name, N, T);
    const size_t nq = (size_t)B * T * dk, nv = (size_t)B * T * dv;
    /* Every sequence's state has room for all T tokens (a KV cache's capacity, cap = T). */
    const size_t sf = attn_state_floats(pf, T, dk, dv);
    const size_t n1 = pf->ref->scratch(T, dk, dv), n2 = st->ref->scratch(T, dk, dv);
    const size_t n3 = fw->ref->scratch(T, dk, dv);
    const size_t nscr = (n1 > n2 ? n1 : n2) > n3 ? (n1 > n2 ? n1 : n2) : n3;
    const size_t wpf = attn_workspace_floats(pf, P, dk, dv, 1, c->chunk, nth);
    const size_t wst = attn_workspace_floats(st, B, dk, dv, 1, c->chunk, nth);
    const size_t wfw = attn_workspace_floats(fw, T, dk, dv, 1, c->chunk, nth);
    size_t nws = wpf > wst ? wpf : wst;
    nws = nws > wfw ? nws : wfw;
    float *q = malloc(nq * sizeof *q), *k = malloc(nq * sizeof *k);
    float *v = malloc(nv * sizeof *v), *y = malloc(nv * sizeof *y), *yk = malloc(nv * sizeof *yk);
    float *S = calloc((size_t)B * sf, sizeof *S), *work = malloc(nws * sizeof *work);
    float *gq = malloc((size_t)B * dk * sizeof *gq), *gk = malloc((size_t)B * dk * sizeof *gk);
    float *gv = malloc((size_t)B * dv * sizeof *gv), *gy = malloc((size_t)B * dv * sizeof *gy);
    double *qd = malloc(nq * sizeof *qd), *kd = malloc(nq * sizeof *kd);
    double *vd = malloc(nv * sizeof *vd), *yd = malloc(nv * sizeof *yd);
    double *yf = malloc(nv * sizeof *yf), *Sd = calloc((size_t)B * sf, sizeof *Sd);
    double *gqd = malloc((size_t)B * dk * sizeof *gqd), *gkd = malloc((size_t)B * dk * sizeof *gkd);
    double *gvd = malloc((size_t)B * dv * sizeof *gvd), *gyd = malloc((size_t)B * dv * sizeof *gyd);
    double *scr = malloc((nscr ? nscr : 1) * sizeof *scr);
    int status = LA_OK;
    if (!q || !k || !v || !y || !yk || !S || !work || !gq || !gk || !gv || !gy || !qd || !kd ||
        !vd || !yd || !yf || !Sd || !gqd || !gkd || !gvd || !gyd || !scr) {
        status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for T=%d dk=%d dv=%d B=%d", T, dk,
                         dv, B);
        goto fail;
    }
    fill_inputs(seed, kn->input == ATTN_IN_FEATURES, c->scale, q, k, qd, kd, nq, v, vd, nv);
    res->small_fast = res->small_ref = 0;
    /* The prefill of each sequence from an empty state, in fp32 and in double. */
    for (int b = 0; b < B && P > 0; b++) {
        const size_t oq = (size_t)b * T * dk, ov = (size_t)b * T * dv;
        struct attn_args a = {.q = q + oq, .k = k + oq, .v = v + ov, .y = y + ov, .T = P,
                              .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6f, .chunk = c->chunk,
                              .threads = nth, .work = work, .state = S + (size_t)b * sf,
                              .cap = T};
        pf->run(&a);
        res->small_fast += a.n_small_den;
        struct attn_ref_args ra = {.q = qd + oq, .k = kd + oq, .v = vd + ov, .y = yd + ov,
                                   .T = P, .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6,
                                   .scratch = scr, .state = Sd + (size_t)b * sf, .cap = T};
        pf->ref->run(&ra);
        res->small_ref += ra.n_small_den;
    }
    /* The steps: token t of every sequence in one call. */
    for (int t = P; t < T; t++) {
        gather_rows(q, gq, B, T, t, dk, 0);
        gather_rows(k, gk, B, T, t, dk, 0);
        gather_rows(v, gv, B, T, t, dv, 0);
        struct attn_args a = {.q = gq, .k = gk, .v = gv, .y = gy, .T = B, .dk = dk, .dv = dv,
                              .causal = 1, .eps = 1e-6f, .chunk = c->chunk, .threads = nth,
                              .work = work, .state = S, .pos = t, .cap = T};
        st->run(&a);
        res->small_fast += a.n_small_den;
        gather_rows(y, gy, B, T, t, dv, 1);
        gather_rows_d(qd, gqd, B, T, t, dk);
        gather_rows_d(kd, gkd, B, T, t, dk);
        gather_rows_d(vd, gvd, B, T, t, dv);
        struct attn_ref_args ra = {.q = gqd, .k = gkd, .v = gvd, .y = gyd, .T = B, .dk = dk,
                                   .dv = dv, .causal = 1, .eps = 1e-6, .scratch = scr,
                                   .state = Sd, .pos = t, .cap = T};
        st->ref->run(&ra);
        res->small_ref += ra.n_small_den;
        scatter_rows_d(yd, gyd, B, T, t, dv);
    }
    /* The causal forward reference and kernel over all T tokens. */
    for (int b = 0; b < B; b++) {
        const size_t oq = (size_t)b * T * dk, ov = (size_t)b * T * dv;
        struct attn_ref_args rf = {.q = qd + oq, .k = kd + oq, .v = vd + ov, .y = yf + ov,
                                   .T = T, .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6,
                                   .scratch = scr};
        fw->ref->run(&rf);
        struct attn_args a = {.q = q + oq, .k = k + oq, .v = v + ov, .y = yk + ov, .T = T,
                              .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6f, .chunk = c->chunk,
                              .threads = nth, .work = work};
        fw->run(&a);
    }
    res->finite = 1;
    for (size_t i = 0; i < nv; i++)
        if (!isfinite(y[i]))
            res->finite = 0;
    const double e_chain = rel_err_f(y, yd, nv), e_ref = rel_err_f(y, yf, nv);
    for (size_t i = 0; i < nv; i++)
        yf[i] = yk[i]; /* the forward kernel's rows, as the third comparison's reference */
    const double e_fw = rel_err_f(y, yf, nv);
    res->rel_err = e_chain > e_ref ? e_chain : e_ref;
    res->rel_err = res->rel_err > e_fw ? res->rel_err : e_fw;
    res->tol = kn->ref->tol;
fail:
    free(q), free(k), free(v), free(y), free(yk), free(S), free(work);
    free(gq), free(gk), free(gv), free(gy);
    free(qd), free(kd), free(vd), free(yd), free(yf), free(Sd);
    free(gqd), free(gkd), free(gvd), free(gyd), free(scr);
    return status;
}

int la_check_kernel(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                    struct la_check_result *res, struct la_error *err)
{
    if (kn->op == ATTN_OP_PREFILL || kn->op == ATTN_OP_STEP)
        return check_chain(kn, c, seed, res, err);
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
    fill_inputs(seed, features, c->scale, q, k, qd, kd, nq, v, vd, nv);
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
    res->finite = 1;
    for (size_t i = 0; i < nv; i++)
        if (!isfinite(y[i]))
            res->finite = 0;
    res->rel_err = rel_err_f(y, yd, nv);
    res->tol = ref->tol;
fail:
    free(q), free(k), free(v), free(y), free(work);
    free(qd), free(kd), free(vd), free(yd), free(scratch);
    return status;
}
