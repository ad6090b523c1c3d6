/* train.c — the training passes of a cell (see train.h): the backward kernel, for linear kernels
 * with the feature map's vector–Jacobian product, timed alone (pass: backward) or after the
 * forward pass in one timed region (pass: forward+backward), as one training step of the layer.
 *
 * The upstream gradient dY is uniform in [-1, 1), drawn from the cell's LA_STREAM_GRAD stream.
 * Linear kernels: the attention backward takes the stabilised features and holds the forward's
 * eps_row constant, then featuremap_backward turns dφ(Q), dφ(K) into dQ, dK (featuremaps/README.md,
 * "Backward": the stabilisers' shifts then cancel exactly).  A learned map's parameter gradient
 * (dW, db) is not computed: the timed step differentiates w.r.t. the inputs only.
 *
 * err_grad: on each error head, the backward kernel runs once more on one head with dY zero
 * except on err_rows stratified query rows (row r of n drawn uniformly from [r·T/n, (r+1)·T/n)).
 * Its dQ, dK, dV are then exactly the gradients of L = Σ over those rows of dy_iᵀ y_i, which the
 * double references below give in O(n·T·(dk + dv)); every row of dK and dV is compared, so the
 * key side is checked at any T.  The error is ‖(dQ, dK, dV) − ref‖_F / ‖ref‖_F over the three
 * taken together and summed over the error heads (harness/cli/check_backward.c says why
 * together).  Linear kernels: gradients w.r.t. the fp32 features, against the double reference
 * on the same features (the kernel's implementation error, as err_impl for the forward); the
 * map's own backward is checked by tests/test_fmgrad.c.
 *
 * step_bytes: what one call of the pass holds.  Backward: Q, K, V, dY, dQ, dK, dV, the backward
 * workspace, and for linear kernels φ(Q), φ(K), dφ(Q), dφ(K) and the map's backward workspace.
 * Forward+backward: that, plus Y and the forward's workspace and map workspace.
 */
#include "train.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/timing.h"
#include "../core/util.h"
#include "data.h"

/* Timed repeats whose p80/p20 exceeds this get a note (as the forward timing in runner.c). */
#define NOISY_SPREAD 1.5

/* ---- double references on listed rows --------------------------------------------------- */

void la_grad_ref_rows_softmax(const double *Q, const double *K, const double *V, const double *dY,
                              const int *rows, int n, int T, int dk, int dv, int causal, double *dQ,
                              double *dK, double *dV, double *scratch)
{
    const double scale = 1.0 / sqrt((double)dk);
    memset(dQ, 0, (size_t)T * dk * sizeof *dQ);
    memset(dK, 0, (size_t)T * dk * sizeof *dK);
    memset(dV, 0, (size_t)T * dv * sizeof *dV);
    double *p = scratch;
    for (int r = 0; r < n; r++) {
        const int i = rows[r], lim = causal ? i + 1 : T;
        const double *qi = Q + (size_t)i * dk, *dy = dY + (size_t)r * dv;
        double mx = -INFINITY;
        for (int j = 0; j < lim; j++) {
            const double *kj = K + (size_t)j * dk;
            double s = 0.0;
            for (int c = 0; c < dk; c++)
                s += qi[c] * kj[c];
            p[j] = s * scale;
            if (p[j] > mx)
                mx = p[j];
        }
        double sum = 0.0;
        for (int j = 0; j < lim; j++) {
            p[j] = exp(p[j] - mx);
            sum += p[j];
        }
        /* D = Σ_j P_ij dP_ij = dy_iᵀ y_i, with dP_ij = dy_iᵀ v_j. */
        double D = 0.0;
        for (int j = 0; j < lim; j++) {
            p[j] /= sum;
            const double *vj = V + (size_t)j * dv;
            double dp = 0.0;
            for (int c = 0; c < dv; c++)
                dp += dy[c] * vj[c];
            D += p[j] * dp;
        }
        double *dqi = dQ + (size_t)i * dk;
        for (int j = 0; j < lim; j++) {
            const double *vj = V + (size_t)j * dv, *kj = K + (size_t)j * dk;
            double dp = 0.0;
            for (int c = 0; c < dv; c++)
                dp += dy[c] * vj[c];
            const double ds = p[j] * (dp - D) * scale;
            double *dkj = dK + (size_t)j * dk, *dvj = dV + (size_t)j * dv;
            for (int c = 0; c < dk; c++) {
                dqi[c] += ds * kj[c];
                dkj[c] += ds * qi[c];
            }
            for (int c = 0; c < dv; c++)
                dvj[c] += p[j] * dy[c];
        }
    }
}

void la_grad_ref_rows_linear(const double *PQ, const double *PK, const double *V, const double *dY,
                             const int *rows, int n, int T, int m, int dv, int causal, double eps,
                             const float *eps_row, double *dQ, double *dK, double *dV,
                             double *scratch)
{
    memset(dQ, 0, (size_t)T * m * sizeof *dQ);
    memset(dK, 0, (size_t)T * m * sizeof *dK);
    memset(dV, 0, (size_t)T * dv * sizeof *dV);
    double *s = scratch;
    for (int r = 0; r < n; r++) {
        const int i = rows[r], lim = causal ? i + 1 : T;
        const double *qi = PQ + (size_t)i * m, *dy = dY + (size_t)r * dv;
        double den = eps_row ? (double)eps_row[i] : eps;
        for (int j = 0; j < lim; j++) {
            const double *kj = PK + (size_t)j * m;
            double x = 0.0;
            for (int c = 0; c < m; c++)
                x += qi[c] * kj[c];
            s[j] = x;
            den += x;
        }
        /* y_i = Σ_j s_ij v_j / den_i; a = dy_i / den_i; b = −dy_iᵀ y_i / den_i. */
        double dyy = 0.0;
        for (int j = 0; j < lim; j++) {
            const double *vj = V + (size_t)j * dv;
            double t = 0.0;
            for (int c = 0; c < dv; c++)
                t += dy[c] * vj[c];
            dyy += s[j] * t;
        }
        dyy /= den;
        const double b = -dyy / den;
        double *dqi = dQ + (size_t)i * m;
        for (int j = 0; j < lim; j++) {
            const double *vj = V + (size_t)j * dv, *kj = PK + (size_t)j * m;
            double av = 0.0;
            for (int c = 0; c < dv; c++)
                av += dy[c] * vj[c];
            const double cij = av / den + b;
            double *dkj = dK + (size_t)j * m, *dvj = dV + (size_t)j * dv;
            for (int c = 0; c < m; c++) {
                dqi[c] += cij * kj[c];
                dkj[c] += cij * qi[c];
            }
            for (int c = 0; c < dv; c++)
                dvj[c] += s[j] * dy[c] / den;
        }
    }
}

/* ---- one cell's training pass ----------------------------------------------------------- */

struct train {
    const struct la_train_in *in;
    const struct attn_kernel *bk;
    struct attn_args proto;   /* the backward call over all heads */
    float *gy, *gq, *gk, *gv; /* dY; dQ, dK (features' for linear kernels), dV */
    float *gxq, *gxk;         /* linear: dQ, dK w.r.t. the raw inputs */
    float *bwork, *fwork;     /* backward kernel slices; map backward slices */
    size_t bwf, fwf;          /* floats per slice */
    int fthreads;
    int fm_bad; /* a map backward call refused its arguments */
};

static void backward_all(void *ctx)
{
    struct train *t = ctx;
    const struct la_train_in *in = t->in;
    attn_run_heads(t->bk, &t->proto, in->nh, in->nth, t->bwork, t->bwf);
    if (!in->fm)
        return;
    const size_t xs = (size_t)in->T * in->d, ps = (size_t)in->T * in->m;
    int bad = 0;
#pragma omp parallel for num_threads(t->fthreads) schedule(dynamic, 1) reduction(| : bad)
    for (int j = 0; j < 2 * in->nh; j++) {
        const int h = j >> 1, key = j & 1;
        float *w = t->fwf ? t->fwork + (size_t)omp_get_thread_num() * t->fwf : NULL;
        struct la_error e;
        const int st = featuremap_backward(
            in->fm, key ? FM_KEY : FM_QUERY, (key ? in->k : in->q) + h * xs, (size_t)in->T,
            (key ? in->pk : in->pq) + h * ps, (key ? t->gk : t->gq) + h * ps,
            (key ? t->gxk : t->gxq) + h * xs, NULL, w, &e);
        bad |= st != LA_OK;
    }
    t->fm_bad |= bad;
}

static void step_all(void *ctx)
{
    struct train *t = ctx;
    t->in->forward(t->in->forward_ctx);
    backward_all(t);
}

static size_t count_nonfinite(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !isfinite(x[i]);
    return bad;
}

static void *alloc_touched(size_t floats, size_t *total)
{
    const size_t bytes = (floats ? floats : 1) * sizeof(float);
    float *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (p)
        memset(p, 0, bytes);
    *total += floats * sizeof(float);
    return p;
}

static void to_double(const float *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

/* err_grad over the error heads (see the file's comment); *out gets it. */
static int grad_error(struct train *t, double *out, struct la_error *err)
{
    const struct la_train_in *in = t->in;
    const int T = in->T, dk = in->dk, dv = in->dv, n = in->err_rows < T ? in->err_rows : T;
    const size_t qs = (size_t)T * dk, vs = (size_t)T * dv;
    const int linear = in->fm != NULL;
    double *dd = malloc((4 * qs + 2 * vs + (size_t)n * dv + (size_t)T) * sizeof *dd);
    float *gyh = calloc(vs ? vs : 1, sizeof *gyh);
    int *rows = malloc((size_t)(n > 0 ? n : 1) * sizeof *rows);
    if (!dd || !gyh || !rows) {
        free(dd);
        free(gyh);
        free(rows);
        return LA_FAIL(err, LA_ENOMEM, "out of memory for the gradient reference (T = %d)", T);
    }
    double *qd = dd, *kd = qd + qs, *vd = kd + qs, *rq = vd + vs, *rk = rq + qs, *rv = rk + qs;
    double *dyd = rv + vs, *scr = dyd + (size_t)n * dv;
    uint64_t s = la_stream_seed(in->c->seed, LA_STREAM_GRAD) ^ 0x5a5a5a5a5a5a5a5aull;
    double num = 0.0, den = 0.0;
    for (int e = 0; e < in->err_heads; e++) {
        const int h = (int)((long long)e * in->nh / in->err_heads);
        for (int r = 0; r < n; r++) {
            const long lo = (long)((long long)r * T / n), hi = (long)((long long)(r + 1) * T / n);
            rows[r] = (int)(lo + (long)(la_splitmix64_unit(&s) * (double)(hi - lo)));
        }
        /* dY of this head on the listed rows only. */
        memset(gyh, 0, vs * sizeof *gyh);
        const float *gy = t->gy + (size_t)h * vs;
        for (int r = 0; r < n; r++)
            for (int c = 0; c < dv; c++) {
                gyh[(size_t)rows[r] * dv + c] = gy[(size_t)rows[r] * dv + c];
                dyd[(size_t)r * dv + c] = gy[(size_t)rows[r] * dv + c];
            }
        struct attn_args a = t->proto;
        a.q += (size_t)h * qs;
        a.k += (size_t)h * qs;
        a.v += (size_t)h * vs;
        if (a.eps_row)
            a.eps_row += (size_t)h * T;
        a.grad_y = gyh;
        a.grad_q = t->gq + (size_t)h * qs;
        a.grad_k = t->gk + (size_t)h * qs;
        a.grad_v = t->gv + (size_t)h * vs;
        attn_run_heads(t->bk, &a, 1, 1, t->bwork, t->bwf);
        to_double(a.q, qd, qs);
        to_double(a.k, kd, qs);
        to_double(a.v, vd, vs);
        if (linear)
            la_grad_ref_rows_linear(qd, kd, vd, dyd, rows, n, T, dk, dv, in->c->causal, in->c->eps,
                                    a.eps_row, rq, rk, rv, scr);
        else
            la_grad_ref_rows_softmax(qd, kd, vd, dyd, rows, n, T, dk, dv, in->c->causal, rq, rk, rv,
                                     scr);
        const float *g[3] = {a.grad_q, a.grad_k, a.grad_v};
        const double *gr[3] = {rq, rk, rv};
        const size_t len[3] = {qs, qs, vs};
        for (int w = 0; w < 3; w++)
            for (size_t i = 0; i < len[w]; i++) {
                const double d = (double)g[w][i] - gr[w][i];
                num += d * d;
                den += gr[w][i] * gr[w][i];
            }
    }
    *out = den > 0.0 ? sqrt(num / den) : sqrt(num);
    free(dd);
    free(gyh);
    free(rows);
    return LA_OK;
}

int la_train_cell(const struct la_train_in *in, struct la_row *row, char *note, size_t cap,
                  struct la_error *err)
{
    const struct la_cell *c = in->c;
    const int nh = in->nh, T = in->T, d = in->d, dv = in->dv, dk = in->dk;
    struct train t;
    memset(&t, 0, sizeof t);
    t.in = in;
    t.bk = attn_kernel_backward_of(in->fwd, c->causal);
    if (!t.bk)
        return LA_FAIL(err, LA_EINVAL,
                       "kernel %s has no backward kernel (causal = %d); pass must be forward",
                       in->fwd->name, c->causal);
    const size_t nq = (size_t)nh * T * dk, nv = (size_t)nh * T * dv, nx = (size_t)nh * T * d;
    t.bwf = attn_workspace_floats(t.bk, T, dk, dv, c->causal, c->chunk,
                                  nh < in->nth ? in->nth : 1);
    const int bslices = nh < in->nth ? 1 : in->nth;
    size_t held = 0; /* bytes of the buffers allocated here */
    t.gy = alloc_touched(nv, &held);
    t.gq = alloc_touched(nq, &held);
    t.gk = alloc_touched(nq, &held);
    t.gv = alloc_touched(nv, &held);
    t.bwork = alloc_touched((size_t)bslices * t.bwf, &held);
    int ok = t.gy && t.gq && t.gk && t.gv && t.bwork;
    if (in->fm) {
        t.fthreads = 2 * nh < in->nth ? 2 * nh : in->nth;
        t.fwf = featuremap_backward_work_floats(in->fm, (size_t)T);
        t.gxq = alloc_touched(nx, &held);
        t.gxk = alloc_touched(nx, &held);
        t.fwork = alloc_touched((size_t)t.fthreads * t.fwf, &held);
        ok = ok && t.gxq && t.gxk && t.fwork;
    }
    int st = LA_OK;
    if (!ok) {
        st = LA_FAIL(err, LA_ENOMEM, "out of memory for the gradients (%.1f MiB)",
                     (double)held / 1048576.0);
        goto done;
    }
    uint64_t s = la_stream_seed(c->seed, LA_STREAM_GRAD);
    for (size_t i = 0; i < nv; i++)
        t.gy[i] = (float)(2.0 * la_splitmix64_unit(&s) - 1.0);

    t.proto.q = in->fm ? in->pq : in->q;
    t.proto.k = in->fm ? in->pk : in->k;
    t.proto.v = in->v;
    t.proto.y = NULL;
    t.proto.T = T;
    t.proto.dk = dk;
    t.proto.dv = dv;
    t.proto.causal = c->causal;
    t.proto.eps = (float)c->eps;
    t.proto.eps_row = in->eps_row;
    t.proto.chunk = c->chunk; /* the forward's C when both read it (0: the same default) */
    t.proto.threads = 1;
    t.proto.grad_y = t.gy;
    t.proto.grad_q = t.gq;
    t.proto.grad_k = t.gk;
    t.proto.grad_v = t.gv;

    /* Q, K, V, the features, and what was allocated here (dY, the gradients, the backward's
     * workspaces); forward+backward also holds Y and the forward's workspaces. */
    row->step_bytes = 4.0 * (double)nh * T * (2.0 * d + dv) + in->features_bytes + (double)held;
    if (c->pass == LA_PASS_FORWARD_BACKWARD)
        row->step_bytes += 4.0 * (double)nv + in->forward_work_bytes;
    double flops = attn_nominal_flops(t.bk, T, dk, dv, c->causal) * nh;
    if (in->fm)
        flops += 2.0 * nh * featuremap_nominal_backward_flops(in->fm->type, (size_t)T, d, in->m);
    if (c->pass == LA_PASS_FORWARD_BACKWARD)
        flops += in->forward_flops;
    row->flops = flops;

    /* The untimed run whose gradients are checked. */
    backward_all(&t);
    if (t.fm_bad) {
        st = LA_FAIL(err, LA_EINTERNAL, "feature map '%s' backward refused its arguments", c->map);
        goto done;
    }
    size_t bad = count_nonfinite(t.gq, nq) + count_nonfinite(t.gk, nq) + count_nonfinite(t.gv, nv);
    if (in->fm)
        bad += count_nonfinite(t.gxq, nx) + count_nonfinite(t.gxk, nx);
    if (bad) {
        st = LA_FAIL(err, LA_ENUMERIC, "%s gradients have %zu NaN/Inf values", t.bk->name, bad);
        goto done;
    }
    if (la_cancelled()) {
        st = LA_FAIL(err, LA_EINTR, "interrupted before the cell finished");
        goto done;
    }
    if (c->measure_error && in->err_heads > 0 && in->err_rows > 0) {
        st = grad_error(&t, &row->err_grad, err);
        if (st != LA_OK)
            goto done;
    }
    if (c->measure_time) {
        struct la_timing tm;
        la_time(c->pass == LA_PASS_BACKWARD ? backward_all : step_all, &t, c->warmup,
                c->min_repeats, 0, c->time_budget_s, &tm);
        if (la_cancelled()) {
            st = LA_FAIL(err, LA_EINTR, "interrupted before the cell finished");
            goto done;
        }
        row->time_median_s = tm.median_s;
        row->time_min_s = tm.min_s;
        row->time_max_s = tm.max_s;
        row->time_p20_s = tm.p20_s;
        row->time_p80_s = tm.p80_s;
        row->repeats = tm.repeats;
        row->gflops = tm.median_s > 0.0 ? flops / tm.median_s / 1e9 : NAN;
        row->fm_time_median_s = NAN; /* the map is inside the timed region */
        if (tm.repeats >= 5 && tm.p20_s > 0.0 && tm.p80_s > NOISY_SPREAD * tm.p20_s) {
            const size_t used = strlen(note);
            snprintf(note + used, cap - used, "%snoisy timing: p80/p20 = %.2g", used ? "; " : "",
                     tm.p80_s / tm.p20_s);
        }
        bad = count_nonfinite(t.gq, nq) + count_nonfinite(t.gk, nq) + count_nonfinite(t.gv, nv);
        if (bad || t.fm_bad) {
            st = LA_FAIL(err, LA_ENUMERIC, "%s gradients have NaN/Inf values after timing",
                         t.bk->name);
            goto done;
        }
    }
done:
    free(t.gy);
    free(t.gq);
    free(t.gk);
    free(t.gv);
    free(t.bwork);
    free(t.gxq);
    free(t.gxk);
    free(t.fwork);
    return st;
}
