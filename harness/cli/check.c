/* check.c — one fast kernel against its double reference (the table's ref) at one shape (see
 * check.h): a forward kernel alone (or applying a fused map to raw rows: la_check_fused,
 * against the reference on the map evaluated in double and against its own unfused output), a
 * prefill or step kernel in the chain prefill then steps, against the chained references and
 * the causal forward reference and kernel; a backward kernel through la_check_backward
 * (check_backward.c).  The `linattn check` command that runs it over odd shapes is
 * cmd_check.c.
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

/* ---- recurrences (update rule other than the sum) ----------------------------------------- */

/* Seeded gates for H heads of T tokens: delta β_t in [0.2, 1], decay γ in [0.8, 0.99] (one per
 * head), gated α_t[i] in [0.7, 0.999]; in fp32 and the same numbers in double. */
static void fill_gates(uint64_t seed, int update, float *g, double *gd, size_t n)
{
    uint64_t s = seed ^ 0x9e3779b97f4a7c15ull;
    const double lo = update == ATTN_UPD_DELTA ? 0.2 : update == ATTN_UPD_DECAY ? 0.8 : 0.7;
    const double hi = update == ATTN_UPD_DELTA ? 1.0 : update == ATTN_UPD_DECAY ? 0.99 : 0.999;
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)(lo + (hi - lo) * la_splitmix64_unit(&s));
        gd[i] = g[i];
    }
}

/* Keys of unit Euclidean norm (rows of m), so that the delta rule without a normaliser stays
 * stable (β‖k‖² <= 1); the double copy follows. */
static void unit_rows(float *k, double *kd, size_t rows, int m)
{
    for (size_t r = 0; r < rows; r++) {
        double n2 = 0.0;
        for (int i = 0; i < m; i++)
            n2 += (double)k[r * m + i] * k[r * m + i];
        const double sc = n2 > 0 ? 1.0 / sqrt(n2) : 1.0;
        for (int i = 0; i < m; i++) {
            k[r * m + i] = (float)(k[r * m + i] * sc);
            kd[r * m + i] = k[r * m + i];
        }
    }
}

/* One run of a recurrence kernel kn (forward, or the chain prefill then steps) and its
 * reference, with the gate given per token (per head for decay) or as one constant, at
 * normaliser `norm`.  Writes the relative error, finiteness and counts into res. */
static int check_recur_once(const struct attn_kernel *kn, const struct la_check_case *c,
                            uint64_t seed, int norm, int per_token, struct la_check_result *res,
                            struct la_error *err)
{
    const int H = c->heads > 0 ? c->heads : 1, T = c->T, dk = c->dk, dv = c->dv;
    const int nth = c->threads > 0 ? c->threads : 1, up = kn->update;
    const int chain = kn->op != ATTN_OP_FORWARD;
    const struct attn_kernel *fw = attn_kernel_find_update(ATTN_OP_FORWARD, kn->input, 1, up);
    const struct attn_kernel *pf = kn->op == ATTN_OP_PREFILL
                                       ? kn
                                       : attn_kernel_find_update(ATTN_OP_PREFILL, kn->input, 1, up);
    const struct attn_kernel *st = kn->op == ATTN_OP_STEP
                                       ? kn
                                       : attn_kernel_find_update(ATTN_OP_STEP, kn->input, 1, up);
    if (!c->causal || !fw || (chain && (!pf || !st)))
        return LA_FAIL(err, LA_EINVAL,
                       "check: %s: needs causal shapes and the %s rule's forward, prefill and "
                       "step kernels",
                       kn->name, attn_update_name(up));
    const int N = chain ? c->steps : 0, P = T - N;
    if (N < 0 || N > T)
        return LA_FAIL(err, LA_EINVAL, "check: %s: needs 0 <= steps (%d) <= T (%d)", kn->name, N,
                       T);
    const size_t nq = (size_t)H * T * dk, nv = (size_t)H * T * dv;
    const size_t sf = (size_t)dk * dv + dk;
    /* Gates of one head: T (delta), 1 (decay), T·dk (gated), laid out per head like q. */
    const size_t gh = attn_gate_floats(fw, T, dk), ng = (size_t)H * gh;
    size_t nws = attn_workspace_floats(fw, T, dk, dv, 1, c->chunk, nth);
    if (chain) {
        const size_t a = attn_workspace_floats(pf, T, dk, dv, 1, c->chunk, nth);
        const size_t b = attn_workspace_floats(st, H, dk, dv, 1, c->chunk, nth);
        nws = nws > a ? nws : a;
        nws = nws > b ? nws : b;
    }
    const size_t nscr = fw->ref->scratch(T, dk, dv);
    float *q = malloc(nq * sizeof *q), *k = malloc(nq * sizeof *k), *v = malloc(nv * sizeof *v);
    float *y = malloc(nv * sizeof *y), *work = malloc(nws * sizeof *work);
    float *g = malloc(ng * sizeof *g), *S = calloc((size_t)H * sf, sizeof *S);
    float *bq = malloc((size_t)H * dk * sizeof *bq), *bk = malloc((size_t)H * dk * sizeof *bk);
    float *bv = malloc((size_t)H * dv * sizeof *bv), *by = malloc((size_t)H * dv * sizeof *by);
    float *bg = malloc(((size_t)H * dk + 1) * sizeof *bg);
    double *qd = malloc(nq * sizeof *qd), *kd = malloc(nq * sizeof *kd);
    double *vd = malloc(nv * sizeof *vd), *yd = malloc(nv * sizeof *yd);
    double *gd = malloc(ng * sizeof *gd), *scr = malloc(nscr * sizeof *scr);
    int status = LA_OK;
    if (!q || !k || !v || !y || !work || !g || !S || !bq || !bk || !bv || !by || !bg || !qd ||
        !kd || !vd || !yd || !gd || !scr) {
        status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for T=%d dk=%d dv=%d H=%d", T, dk,
                         dv, H);
        goto fail;
    }
    fill_inputs(seed, 1, c->scale, q, k, qd, kd, nq, v, vd, nv);
    if (up == ATTN_UPD_DELTA && norm != ATTN_RN_SUM)
        unit_rows(k, kd, (size_t)H * T, dk);
    fill_gates(seed, up, g, gd, ng);
    for (int h = 1; chain && up == ATTN_UPD_DECAY && h < H; h++) {
        g[h] = g[0]; /* a step takes one γ for all its sequences */
        gd[h] = gd[0];
    }
    const float gc = g[0]; /* the constant, when the gate is not given per token */
    res->small_fast = res->small_ref = 0;
    /* The double reference over all T tokens of each head (sequence). */
    for (int h = 0; h < H; h++) {
        const size_t oq = (size_t)h * T * dk, ov = (size_t)h * T * dv;
        struct attn_ref_args ra = {.q = qd + oq, .k = kd + oq, .v = vd + ov, .y = yd + ov,
                                   .T = T, .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6,
                                   .scratch = scr, .gate = per_token ? gd + h * gh : NULL,
                                   .gate_const = gc, .recur_norm = norm};
        fw->ref->run(&ra);
        res->small_ref += ra.n_small_den;
    }
    if (!chain) {
        struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = dk, .dv = dv,
                              .causal = 1, .eps = 1e-6f, .chunk = c->chunk,
                              .gate = per_token ? g : NULL, .gate_const = gc, .recur_norm = norm};
        const size_t ws = attn_workspace_floats(kn, T, dk, dv, 1, c->chunk, H < nth ? nth : 1);
        if (ws * (size_t)(H < nth ? 1 : nth) > nws) {
            float *w2 = realloc(work, ws * (size_t)(H < nth ? 1 : nth) * sizeof *w2);
            if (!w2) {
                status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for the workspace");
                goto fail;
            }
            work = w2;
        }
        res->small_fast = attn_run_heads(kn, &a, H, nth, work, ws);
    } else {
        /* Prefill of P tokens per sequence, then N steps over the H sequences at once. */
        for (int h = 0; h < H && P > 0; h++) {
            const size_t oq = (size_t)h * T * dk, ov = (size_t)h * T * dv;
            struct attn_args a = {.q = q + oq, .k = k + oq, .v = v + ov, .y = y + ov, .T = P,
                                  .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6f,
                                  .chunk = c->chunk, .threads = nth, .work = work,
                                  .state = S + (size_t)h * sf,
                                  .gate = per_token ? g + h * gh : NULL, .gate_const = gc,
                                  .recur_norm = norm};
            pf->run(&a);
            res->small_fast += a.n_small_den;
        }
        for (int t = P; t < T; t++) {
            gather_rows(q, bq, H, T, t, dk, 0);
            gather_rows(k, bk, H, T, t, dk, 0);
            gather_rows(v, bv, H, T, t, dv, 0);
            /* Row b of a step's gate: sequence b's token (decay: the one γ of the call). */
            const float *sg = NULL;
            if (per_token && up == ATTN_UPD_DECAY) {
                sg = g;
            } else if (per_token) {
                const int w = up == ATTN_UPD_GATED ? dk : 1;
                for (int b = 0; b < H; b++)
                    memcpy(bg + (size_t)b * w, g + b * gh + (size_t)t * w,
                           (size_t)w * sizeof *bg);
                sg = bg;
            }
            struct attn_args a = {.q = bq, .k = bk, .v = bv, .y = by, .T = H, .dk = dk, .dv = dv,
                                  .causal = 1, .eps = 1e-6f, .chunk = c->chunk, .threads = nth,
                                  .work = work, .state = S, .pos = t, .gate = sg,
                                  .gate_const = gc, .recur_norm = norm};
            st->run(&a);
            res->small_fast += a.n_small_den;
            gather_rows(y, by, H, T, t, dv, 1);
        }
    }
    res->finite = 1;
    for (size_t i = 0; i < nv; i++)
        if (!isfinite(y[i]))
            res->finite = 0;
    res->rel_err = rel_err_f(y, yd, nv);
    res->tol = kn->ref->tol;
fail:
    free(q), free(k), free(v), free(y), free(work), free(g), free(S);
    free(bq), free(bk), free(bv), free(by), free(bg);
    free(qd), free(kd), free(vd), free(yd), free(gd), free(scr);
    return status;
}

/* A recurrence kernel twice: its rule's normaliser with the gate per token, and sum
 * normalisation with one constant gate; the larger error.  Its forward rows are compared with
 * the rule's double reference; prefill and step rows run the chain (prefill of T − steps tokens,
 * then the steps) against the same reference over all T tokens (a chain's decay γ is one for
 * all its sequences, as a step takes it). */
static int check_recur(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                       struct la_check_result *res, struct la_error *err)
{
    struct la_check_result r2;
    int st = check_recur_once(kn, c, seed, ATTN_RN_RULE, 1, res, err);
    if (st == LA_OK)
        st = check_recur_once(kn, c, seed + 1, ATTN_RN_SUM, 0, &r2, err);
    if (st != LA_OK)
        return st;
    res->rel_err = res->rel_err > r2.rel_err ? res->rel_err : r2.rel_err;
    res->finite = res->finite && r2.finite;
    if (res->small_fast == res->small_ref) { /* report a mismatch of either run */
        res->small_fast = r2.small_fast;
        res->small_ref = r2.small_ref;
    }
    return LA_OK;
}

/* φ of the fused map in double, applied to the reference's copies of the raw rows: elu+1 as
 * x >= 0 ? x + 1 : exp(x), relu as max(x, 0) plus the fp32 constant the kernel adds. */
static void map_double(int map, double map_eps, double *x, size_t n)
{
    const double e = (double)(float)map_eps;
    for (size_t i = 0; i < n; i++)
        x[i] = map == ATTN_MAP_ELU1 ? (x[i] >= 0.0 ? x[i] + 1.0 : exp(x[i]))
                                    : (x[i] > 0.0 ? x[i] : 0.0) + e;
}

/* A fused case's second run: the same kernel, unfused, on the features attn_map_rows writes
 * from q and k; 1 when its output equals y bit for bit.  -1 when out of memory. */
static int fused_exact(const struct attn_kernel *kn, const struct attn_args *proto, int H,
                       int nth, float *work, size_t ws, const float *y, size_t nq, size_t nv)
{
    float *pq = malloc(nq * sizeof *pq), *pk = malloc(nq * sizeof *pk);
    float *y2 = malloc(nv * sizeof *y2);
    int same = -1;
    if (pq && pk && y2) {
        attn_map_rows(proto->fused_map, proto->map_eps, proto->q, pq, nq);
        attn_map_rows(proto->fused_map, proto->map_eps, proto->k, pk, nq);
        struct attn_args a = *proto;
        a.q = pq;
        a.k = pk;
        a.y = y2;
        a.fused_map = ATTN_MAP_NONE;
        attn_run_heads(kn, &a, H, nth, work, ws);
        same = memcmp(y, y2, nv * sizeof *y) == 0;
    }
    free(pq), free(pk), free(y2);
    return same;
}

/* A forward kernel of the sum rule against its reference; map: the fused map (or none). */
static int check_forward(const struct attn_kernel *kn, const struct la_check_case *c, int map,
                         double map_eps, uint64_t seed, struct la_check_result *res,
                         struct la_error *err)
{
    const int H = c->heads > 0 ? c->heads : 1, T = c->T, dk = c->dk, dv = c->dv;
    const int nth = c->threads > 0 ? c->threads : 1;
    const size_t nq = (size_t)H * T * dk, nv = (size_t)H * T * dv;
    const int fused = map != ATTN_MAP_NONE;
    const int features = kn->input == ATTN_IN_FEATURES && !fused;
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
    if (fused) {
        map_double(map, map_eps, qd, nq);
        map_double(map, map_eps, kd, nq);
    }
    struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = dk, .dv = dv,
                          .causal = c->causal, .eps = 1e-6f, .chunk = c->chunk,
                          .fused_map = map, .map_eps = (float)map_eps};
    res->small_fast = attn_run_heads(kn, &a, H, nth, work, ws);
    if (fused) {
        res->fused_exact = fused_exact(kn, &a, H, nth, work, ws, y, nq, nv);
        if (res->fused_exact < 0) {
            status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for the unfused run");
            goto fail;
        }
    }
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

int la_check_kernel(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                    struct la_check_result *res, struct la_error *err)
{
    res->fused_exact = -1;
    if (kn->update != ATTN_UPD_SUM)
        return check_recur(kn, c, seed, res, err);
    if (kn->op == ATTN_OP_PREFILL || kn->op == ATTN_OP_STEP)
        return check_chain(kn, c, seed, res, err);
    if (kn->op == ATTN_OP_BACKWARD)
        return la_check_backward(kn, c, seed, res, err);
    return check_forward(kn, c, ATTN_MAP_NONE, 0.0, seed, res, err);
}

int la_check_fused(const struct attn_kernel *kn, const struct la_check_case *c, int map,
                   double map_eps, uint64_t seed, struct la_check_result *res,
                   struct la_error *err)
{
    res->fused_exact = -1;
    if (!kn->fuses_map || kn->op != ATTN_OP_FORWARD || kn->update != ATTN_UPD_SUM ||
        (map != ATTN_MAP_ELU1 && map != ATTN_MAP_RELU))
        return LA_FAIL(err, LA_EINVAL, "check: %s does not apply the fused map %s", kn->name,
                       attn_fused_map_name(map));
    return check_forward(kn, c, map, map_eps, seed, res, err);
}
