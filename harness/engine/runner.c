/* runner.c — one cell in, one row out (see runner.h).
 *
 * Per cell: the data (data.c) as B·H heads of (T, d) fp32; for linear kernels the feature map
 * (drawn from an mt19937 seeded with la_stream_seed(cell.seed, LA_STREAM_FEATUREMAP); fitted
 * when A is auto) applied to Q (role query) and K (role key) head by head; one untimed run of
 * the kernel over all heads whose output is checked for NaN/Inf and measured against the
 * references; then, if asked, the timed runs (la_time: warm-ups, at least min_repeats, up to the
 * budget) of the kernel, and of the feature map with a quarter of the budget.
 *
 * Errors (all in double, against attn_softmax_ref_rows):
 *  - heads: all B·H heads up to LA_ERR_MAX_HEADS, else that many spread evenly (message says).
 *  - rows: min(T, max_ref_rows) query rows per head, stratified: row i of n is drawn uniformly
 *    from [i·T/n, (i+1)·T/n), so late rows (the ones a causal kernel finds hardest) are always
 *    represented.  err_rows is the count per head.  err_rel_fro, err_max_abs, cos_mean: the fp32
 *    kernel output on those rows against the softmax reference.
 *  - err_impl: the same rows against the double linear reference on the same fp32 features,
 *    evaluated row by row with exactly attn_linear_ref's loop (test_runner.c checks they agree
 *    bit for bit), so it is available at any T.  Softmax kernels: err_impl = err_rel_fro (the
 *    fast kernel against the reference is the implementation error).
 *  - kl_mean, entropy_mean: kl_rows stratified rows per head; KL(softmax row ‖ linear weights
 *    row) with w_ij = φ(q_i)ᵀφ(k_j) / Σ_j' φ(q_i)ᵀφ(k_j'), j ≤ i when causal.  Weights <= 0 (rff)
 *    are clamped to 1e-12 of the row's largest |w| before normalising; the message counts them.
 *    Softmax kernels: kl_mean is NaN (nothing approximates the weights), entropy is measured.
 *  - kernel_mse: kernel_pairs (head, i, j) triples drawn uniformly over every head and position;
 *    estimate φ(q_i)ᵀφ(k_j) from the map applied with role FM_RAW (no stabiliser, so prf and hyp
 *    give their unscaled unbiased estimate) to that single query row and that single key row;
 *    target exp(q_iᵀk_j/√d), the softmax kernel, also for deterministic maps (then it says how
 *    far the map's own kernel is from softmax).  An overflowing raw estimate gives +Inf.
 * Every per-row value is stored and summed in a fixed order afterwards, so the numbers do not
 * depend on the thread count.  Random draws: sample rows and pairs come from a stream of their
 * own (LA_STREAM_SAMPLE), so measuring errors never changes the data or the features.
 *
 * Cancellation: between its phases (data, features, the checked run, errors, timing) the cell
 * polls la_cancelled() (timing.h); once a signal has asked the run to stop, the row gets status
 * LA_ROW_INTERRUPTED and la_run_cell returns LA_EINTR.  A kernel call in flight is not cut
 * short (cmd_run.c's watchdog covers that).  Reading an h5 data file or a map's weights file
 * holds la_io_lock, the mutex every HDF5 user takes while cells run.
 *
 * Not here: which cells run, resuming, the file (cmd_run.c, results.c).  Tests: test_runner.c,
 * tests/run_signals.sh (cancellation).
 */
#include "runner.h"

#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_rng.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/util.h"
#include "../core/sysinfo.h"
#include "../core/timing.h"
#include "../experiment/params.h"
#include "data.h"
#include "metrics.h"

/* Rows the feature-map fit sees at most (head-major from the first head). */
#define FIT_MAX_ROWS 65536
/* Timed repeats whose p80/p20 exceeds this get a note in the message. */
#define NOISY_SPREAD 1.5
/* Relative floor of clamped linear weights in the KL. */
#define KL_CLAMP 1e-12

/* ---- the workspace ---------------------------------------------------------------------- */

struct la_buf {
    void *p;
    size_t cap; /* bytes */
};

enum {
    B_Q, /* inputs and output, fp32, all heads */
    B_K,
    B_V,
    B_Y,
    B_PQ, /* features, fp32, all heads */
    B_PK,
    B_SQ,   /* stabiliser shift of every feature row (featuremap.h), all heads */
    B_SK,
    B_EPSR, /* per-row eps = eps·exp(−shift_q − shift_k): the formula's eps for stabilised rows */
    B_KWORK,  /* kernel workspace, one slice per thread */
    B_FMWORK, /* feature-map workspace, one slice per thread */
    B_PAIR,   /* φ of one query and one key row, plus the map's work for them */
    B_QD,     /* one head in double, for the references */
    B_KD,
    B_VD,
    B_PQD, /* one head's features in double */
    B_PKD,
    B_YREF, /* sampled rows: softmax reference (double) */
    B_YLIN, /* sampled rows: linear reference (double) */
    B_YK,   /* sampled rows: the kernel's output (fp32) */
    B_SCR,  /* per thread: 2·T doubles (scores, weights) */
    B_ROWS, /* sampled row indices, per error head */
    B_KLROWS,
    B_KLV, /* per KL row: KL, entropy, clamped weights */
    B_ENTV,
    B_CLAMP,
    B_COUNT
};

struct la_runner_ws {
    struct la_buf b[B_COUNT];
};

struct la_runner_ws *la_runner_ws_alloc(void)
{
    return calloc(1, sizeof(struct la_runner_ws));
}

void la_runner_ws_free(struct la_runner_ws *ws)
{
    if (!ws)
        return;
    for (int i = 0; i < B_COUNT; i++)
        free(ws->b[i].p);
    free(ws);
}

size_t la_runner_ws_bytes(const struct la_runner_ws *ws)
{
    size_t n = 0;
    for (int i = 0; ws && i < B_COUNT; i++)
        n += ws->b[i].cap;
    return n;
}

static size_t round_page(size_t bytes)
{
    return (bytes + 4095) & ~(size_t)4095;
}

/* Grows every buffer to need[i] bytes.  A buffer that grows is freed and allocated again (its
 * contents are not kept) and touched once with memset, so no page fault happens later in a
 * timed region.  Refuses up front when the total would not fit in physical memory: touching
 * it would only get the process killed. */
static int ws_reserve(struct la_runner_ws *ws, const size_t need[B_COUNT], struct la_error *err)
{
    double total = 0.0;
    for (int i = 0; i < B_COUNT; i++)
        total += (double)(need[i] > ws->b[i].cap ? round_page(need[i]) : ws->b[i].cap);
    const long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
    const double phys = pages > 0 && psize > 0 ? (double)pages * (double)psize : 0.0;
    if (phys > 0.0 && total > LA_RAM_CEILING * phys)
        return LA_FAIL(err, LA_ENOMEM, "cell needs %.2f GiB of buffers; this machine has %.2f GiB",
                       total / 1073741824.0, phys / 1073741824.0);
    for (int i = 0; i < B_COUNT; i++) {
        struct la_buf *b = &ws->b[i];
        if (need[i] <= b->cap)
            continue;
        free(b->p);
        b->p = NULL;
        b->cap = 0;
        const size_t cap = round_page(need[i]);
        void *p = aligned_alloc(64, cap);
        if (!p)
            return LA_FAIL(err, LA_ENOMEM,
                           "out of memory allocating %.1f MiB (cell needs %.2f GiB)",
                           (double)cap / 1048576.0, total / 1073741824.0);
        memset(p, 0, cap);
        b->p = p;
        b->cap = cap;
    }
    return LA_OK;
}

/* ---- one cell's state ------------------------------------------------------------------- */

struct cellrun {
    const struct la_cell *c;
    const struct attn_kernel *kn;
    struct featuremap *fm; /* NULL for softmax kernels */
    struct la_data_shape s;
    int linear; /* the kernel takes features: a feature map runs before it */
    int nth, m, dk, chunk;
    size_t wsf, fmw;         /* kernel workspace floats per head-thread; map work per thread */
    int kthreads, fmthreads; /* threads whose workspace slices exist */
    const float *eps_row;    /* per-row eps for stabilised features, NULL: c->eps */
    int ne, nr, nk, np;      /* error heads, rows per head, KL rows per head, kernel pairs */
    struct la_runner_ws *ws;
};

#define BUF(cr, i, type) ((type *)(cr)->ws->b[(i)].p)

static void plan_buffers(const struct cellrun *cr, size_t need[B_COUNT])
{
    const size_t nh = (size_t)cr->s.nheads, T = (size_t)cr->s.T, d = (size_t)cr->s.d;
    const size_t dv = (size_t)cr->s.dv, m = (size_t)cr->m;
    memset(need, 0, B_COUNT * sizeof need[0]);
    need[B_Q] = need[B_K] = nh * T * d * sizeof(float);
    need[B_V] = need[B_Y] = nh * T * dv * sizeof(float);
    /* Fewer heads than threads: the heads run one after another on one slice (attention.h). */
    need[B_KWORK] = (size_t)(cr->s.nheads < cr->nth ? 1 : cr->kthreads) * cr->wsf * sizeof(float);
    if (cr->linear) {
        need[B_PQ] = need[B_PK] = nh * T * m * sizeof(float);
        need[B_SQ] = need[B_SK] = need[B_EPSR] = nh * T * sizeof(float);
        need[B_FMWORK] = (size_t)cr->fmthreads * cr->fmw * sizeof(float);
        need[B_PAIR] = (2 * m + featuremap_work_floats(cr->fm, 1)) * sizeof(float);
    }
    if (cr->c->measure_error && (cr->nr > 0 || cr->nk > 0)) {
        need[B_QD] = need[B_KD] = T * d * sizeof(double);
        need[B_VD] = T * dv * sizeof(double);
        if (cr->linear)
            need[B_PQD] = need[B_PKD] = T * m * sizeof(double);
        need[B_YREF] = need[B_YLIN] = (size_t)cr->nr * dv * sizeof(double);
        need[B_YK] = (size_t)cr->nr * dv * sizeof(float);
        need[B_SCR] = (size_t)cr->nth * 2 * T * sizeof(double);
        need[B_ROWS] = (size_t)cr->ne * cr->nr * sizeof(int);
        need[B_KLROWS] = (size_t)cr->ne * cr->nk * sizeof(int);
        need[B_KLV] = need[B_ENTV] = (size_t)cr->ne * cr->nk * sizeof(double);
        need[B_CLAMP] = (size_t)cr->ne * cr->nk * sizeof(long);
    }
}

/* ---- feature maps over all heads -------------------------------------------------------- */

/* φ(Q) with role query and φ(K) with role key, one head (one whole sequence) per call, OpenMP
 * over the 2·nheads calls; each thread uses its own slice of the map's workspace. */
static int fm_apply_all(const struct cellrun *cr)
{
    const int nh = cr->s.nheads;
    const size_t xs = (size_t)cr->s.T * cr->s.d, ps = (size_t)cr->s.T * cr->m;
    const float *q = BUF(cr, B_Q, float), *k = BUF(cr, B_K, float);
    float *pq = BUF(cr, B_PQ, float), *pk = BUF(cr, B_PK, float);
    float *sq = BUF(cr, B_SQ, float), *sk = BUF(cr, B_SK, float);
    float *work = BUF(cr, B_FMWORK, float);
    int bad = 0;
#pragma omp parallel for num_threads(cr->fmthreads) schedule(dynamic, 1) reduction(| : bad)
    for (int t = 0; t < 2 * nh; t++) {
        const int h = t >> 1, key = t & 1;
        float *w = cr->fmw ? work + (size_t)omp_get_thread_num() * cr->fmw : NULL;
        const int st = featuremap_apply_shift(
            cr->fm, key ? FM_KEY : FM_QUERY, (key ? k : q) + (size_t)h * xs, (size_t)cr->s.T,
            (key ? pk : pq) + (size_t)h * ps, w, (key ? sk : sq) + (size_t)h * cr->s.T);
        bad |= st != LA_OK;
    }
    return bad ? LA_EINTERNAL : LA_OK;
}

static void fm_timed(void *ctx)
{
    /* Its status was checked on the untimed call with the same arguments. */
    (void)fm_apply_all(ctx);
}

struct kctx {
    const struct attn_kernel *kn;
    struct attn_args proto;
    int H, nth;
    float *work;
    size_t wsf;
    long small;
};

static void kernel_timed(void *ctx)
{
    struct kctx *x = ctx;
    x->small = attn_run_heads(x->kn, &x->proto, x->H, x->nth, x->work, x->wsf);
}

static size_t count_nonfinite(const float *x, size_t n)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad += !isfinite(x[i]);
    return bad;
}

/* ---- references and errors -------------------------------------------------------------- */

static void to_double(const float *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

/* Normalised linear weights of feature row pq over feature rows 0..n-1 into w; weights <= 0 are
 * clamped to KL_CLAMP·max|w|.  Returns how many were clamped. */
static long linear_weights(const double *pq, const double *PK, int n, int m, double *w)
{
    double amax = 0.0;
    for (int j = 0; j < n; j++) {
        const double *k = PK + (size_t)j * m;
        double s = 0.0;
        for (int f = 0; f < m; f++)
            s += pq[f] * k[f];
        w[j] = s;
        if (fabs(s) > amax)
            amax = fabs(s);
    }
    const double floor = amax > 0.0 ? KL_CLAMP * amax : 1.0;
    long clamped = 0;
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        if (!(w[j] > 0.0)) {
            w[j] = floor;
            clamped++;
        }
        sum += w[j];
    }
    for (int j = 0; j < n; j++)
        w[j] /= sum;
    return clamped;
}

static void sample_rows(gsl_rng *r, int T, int n, int *rows)
{
    if (n >= T) {
        for (int i = 0; i < T; i++)
            rows[i] = i;
        return;
    }
    for (int i = 0; i < n; i++) {
        const long lo = (long)((long long)i * T / n), hi = (long)((long long)(i + 1) * T / n);
        rows[i] = (int)(lo + (long)gsl_rng_uniform_int(r, (unsigned long)(hi - lo)));
    }
}

static int err_head(const struct cellrun *cr, int e)
{
    return (int)((long long)e * cr->s.nheads / cr->ne);
}

static int measure_errors(struct cellrun *cr, struct la_row *row, long *clamped_out,
                          struct la_error *err)
{
    const struct la_cell *c = cr->c;
    const int T = cr->s.T, d = cr->s.d, dv = cr->s.dv, m = cr->m, causal = c->causal;
    const int nr = cr->nr, nk = cr->nk, nth = cr->nth;
    const size_t xs = (size_t)T * d, vs = (size_t)T * dv, ps = (size_t)T * m;
    int *rows = BUF(cr, B_ROWS, int), *klrows = BUF(cr, B_KLROWS, int);
    double *qd = BUF(cr, B_QD, double), *kd = BUF(cr, B_KD, double), *vd = BUF(cr, B_VD, double);
    double *pqd = BUF(cr, B_PQD, double), *pkd = BUF(cr, B_PKD, double);
    double *yref = BUF(cr, B_YREF, double), *ylin = BUF(cr, B_YLIN, double);
    double *scr = BUF(cr, B_SCR, double);
    double *klv = BUF(cr, B_KLV, double), *entv = BUF(cr, B_ENTV, double);
    long *clampv = BUF(cr, B_CLAMP, long);
    float *yk = BUF(cr, B_YK, float);
    const float *q = BUF(cr, B_Q, float), *k = BUF(cr, B_K, float), *v = BUF(cr, B_V, float);
    const float *y = BUF(cr, B_Y, float);

    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return LA_FAIL(err, LA_ENOMEM, "out of memory allocating a random number generator");
    gsl_rng_set(r, la_stream_seed(c->seed, LA_STREAM_SAMPLE));
    for (int e = 0; e < cr->ne; e++)
        sample_rows(r, T, nr, rows + (size_t)e * nr);
    for (int e = 0; e < cr->ne; e++)
        sample_rows(r, T, nk, klrows + (size_t)e * nk);

    struct la_err_acc out, impl;
    la_err_acc_init(&out);
    la_err_acc_init(&impl);
    for (int e = 0; e < cr->ne; e++) {
        const int h = err_head(cr, e);
        const int *hr = rows + (size_t)e * nr, *hk = klrows + (size_t)e * nk;
        to_double(q + h * xs, qd, xs);
        to_double(k + h * xs, kd, xs);
        to_double(v + h * vs, vd, vs);
        if (cr->linear) {
            to_double(BUF(cr, B_PQ, float) + h * ps, pqd, ps);
            to_double(BUF(cr, B_PK, float) + h * ps, pkd, ps);
        }
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (int i = 0; i < nr; i++) {
            double *scores = scr + (size_t)omp_get_thread_num() * 2 * T;
            attn_softmax_ref_rows(qd, kd, vd, yref + (size_t)i * dv, T, d, dv, causal, &hr[i], 1,
                                  scores);
            if (cr->linear)
                attn_linear_ref_rows(pqd, pkd, vd, ylin + (size_t)i * dv, T, m, dv, causal, c->eps,
                                     cr->eps_row ? cr->eps_row + (size_t)h * T : NULL, &hr[i], 1);
        }
        for (int i = 0; i < nr; i++)
            memcpy(yk + (size_t)i * dv, y + h * vs + (size_t)hr[i] * dv, (size_t)dv * sizeof *yk);
        la_err_acc_add(&out, yk, yref, (size_t)nr, (size_t)dv);
        if (cr->linear)
            la_err_acc_add(&impl, yk, ylin, (size_t)nr, (size_t)dv);

#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (int i = 0; i < nk; i++) {
            double *p = scr + (size_t)omp_get_thread_num() * 2 * T, *w = p + T;
            const int qi = hk[i], n = causal ? qi + 1 : T;
            const size_t at = (size_t)e * nk + i;
            attn_softmax_probs(qd + (size_t)qi * d, kd, n, d, p);
            entv[at] = la_entropy(p, (size_t)n);
            klv[at] = NAN;
            clampv[at] = 0;
            if (cr->linear) {
                clampv[at] = linear_weights(pqd + (size_t)qi * m, pkd, n, m, w);
                klv[at] = la_kl(p, w, (size_t)n);
            }
        }
    }

    /* Sums in a fixed order: the same numbers whatever the thread count. */
    double kl = 0.0, ent = 0.0;
    long clamped = 0;
    const size_t nkl = (size_t)cr->ne * nk;
    for (size_t i = 0; i < nkl; i++) {
        kl += klv[i];
        ent += entv[i];
        clamped += clampv[i];
    }
    *clamped_out = clamped;
    row->err_rows = nr;
    row->err_rel_fro = la_err_acc_rel_fro(&out);
    row->err_max_abs = nr ? out.max_abs : NAN;
    row->cos_mean = la_err_acc_cos_mean(&out);
    row->err_impl = cr->linear ? la_err_acc_rel_fro(&impl) : row->err_rel_fro;
    row->kl_rows = nk;
    row->kl_mean = cr->linear && nkl ? kl / (double)nkl : NAN;
    row->entropy_mean = nkl ? ent / (double)nkl : NAN;

    /* Kernel MSE on pairs drawn over every head and position. */
    row->kernel_pairs = 0;
    row->kernel_mse = NAN;
    if (cr->linear && cr->np > 0) {
        float *phq = BUF(cr, B_PAIR, float), *phk = phq + m, *pw = phk + m;
        const double scale = 1.0 / sqrt((double)d);
        double sum = 0.0;
        int st = LA_OK;
        for (int p = 0; p < cr->np && st == LA_OK; p++) {
            const size_t h = gsl_rng_uniform_int(r, (unsigned long)cr->s.nheads);
            const size_t i = gsl_rng_uniform_int(r, (unsigned long)T);
            const size_t j = gsl_rng_uniform_int(r, (unsigned long)T);
            const float *qi = q + h * xs + i * d, *kj = k + h * xs + j * d;
            st = featuremap_apply(cr->fm, FM_RAW, qi, 1, phq, pw);
            if (st == LA_OK)
                st = featuremap_apply(cr->fm, FM_RAW_KEY, kj, 1, phk, pw);
            double est = 0.0, dot = 0.0;
            for (int f = 0; f < m; f++)
                est += (double)phq[f] * phk[f];
            for (int c2 = 0; c2 < d; c2++)
                dot += (double)qi[c2] * kj[c2];
            const double diff = est - exp(dot * scale);
            /* Inf − Inf (estimate and target both overflow) is an infinite error, not NaN. */
            sum += isnan(diff) ? INFINITY : diff * diff;
        }
        if (st != LA_OK) {
            gsl_rng_free(r);
            return LA_FAIL(err, LA_EINTERNAL, "feature map '%s' refused a single row", c->map);
        }
        row->kernel_pairs = cr->np;
        row->kernel_mse = sum / cr->np;
    }
    gsl_rng_free(r);
    return LA_OK;
}

/* ---- the row ---------------------------------------------------------------------------- */

void la_row_from_cell(const struct la_cell *c, struct la_row *row)
{
    memset(row, 0, sizeof *row);
    row->index = c->index;
    la_copy_text(row->key, sizeof row->key, c->key);
    /* Every parameter with a column (kernel, map, m, draw, A, causal, chunk, eps, the shape,
     * threads, data, sigma, layer, head, trial) as the cell says; la_run_cell replaces the
     * ones it measures (m and chunk as used, threads as run, the shape as read, A as fitted). */
    la_params_fill_row(c, row);
    row->dv = c->dv > 0 ? c->dv : c->d; /* a cell built by hand may leave dv at 0: dv = d */
    /* The sigma column is the per-coordinate scale of the inputs: sigma itself for gaussian
     * data, norm/√d for sphere data (the coordinate RMS of a row of that norm), and the
     * measured RMS of Q and K for h5 data (filled in by la_run_cell). */
    row->sigma = c->source == LA_DATA_GAUSSIAN ? c->sigma
                 : c->source == LA_DATA_SPHERE ? c->norm / sqrt(c->d > 0 ? (double)c->d : 1.0)
                                               : NAN;
    row->layer = c->layer;
    row->head = c->head;
    row->trial = c->trial;
    row->seed = c->seed;
    row->status = LA_ROW_OK;
    row->time_median_s = row->time_min_s = row->time_max_s = NAN;
    row->time_p20_s = row->time_p80_s = NAN;
    row->repeats = 0;
    row->flops = row->gflops = row->fm_time_median_s = NAN;
    row->workspace_bytes = NAN;
    row->peak_rss_bytes = NAN;
    row->err_rel_fro = row->err_max_abs = row->cos_mean = row->kl_mean = NAN;
    row->kernel_mse = row->err_impl = row->entropy_mean = NAN;
}

static void add_note(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_note(char *buf, size_t cap, const char *fmt, ...)
{
    size_t used = strlen(buf);
    if (used && used + 2 < cap) {
        memcpy(buf + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, cap - used, fmt, ap);
    va_end(ap);
}

static double rms(const float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)x[i] * x[i];
    return n ? sqrt(s / (double)n) : NAN;
}

/* A cancellation check point: LA_EINTR once a signal has asked the run to stop. */
static int cancel_point(struct la_error *err)
{
    const int sig = la_cancelled();
    if (!sig)
        return LA_OK;
    return LA_FAIL(err, LA_EINTR, "interrupted by %s before the cell finished",
                   sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal");
}

int la_run_cell(struct la_runner_ws *ws, const struct la_cell *c, struct la_row *row,
                struct la_error *err)
{
    struct la_error local;
    if (!err)
        err = &local;
    la_error_clear(err);
    la_row_from_cell(c, row);
    char note[LA_MSG_LEN] = "";
    gsl_rng *rng = NULL;
    struct cellrun cr;
    memset(&cr, 0, sizeof cr);
    cr.c = c;
    cr.ws = ws;
    int st = LA_OK;

    cr.kn = attn_kernel_lookup(c->kernel);
    if (!cr.kn) {
        char list[512];
        la_join_names(list, sizeof list, attn_kernel_names(), attn_kernel_count());
        st = LA_FAIL(err, LA_ENAME, "unknown kernel '%s'; valid kernels: %s", c->kernel, list);
        goto fail;
    }
    if (cr.kn->op != ATTN_OP_FORWARD) {
        st = LA_FAIL(err, LA_EINVAL, "kernel %s is not a forward kernel; cells run forward kernels",
                     cr.kn->name);
        goto fail;
    }
    if (!(cr.kn->causal_support & (c->causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK))) {
        st = LA_FAIL(err, LA_EINVAL, "kernel %s does not support causal = %d", cr.kn->name,
                     c->causal);
        goto fail;
    }
    cr.nth = c->threads > 0 ? c->threads : la_default_threads();
    row->threads = cr.nth;
    st = la_data_shape(c, &cr.s, err);
    if (st != LA_OK)
        goto fail;
    row->T = cr.s.T;
    row->d = cr.s.d;
    row->dv = cr.s.dv;
    row->batch = cr.s.batch;
    row->heads = cr.s.heads;
    const int nh = cr.s.nheads, T = cr.s.T, d = cr.s.d, dv = cr.s.dv;

    cr.linear = cr.kn->input == ATTN_IN_FEATURES;
    cr.m = d;
    row->m = 0;
    if (cr.linear) {
        if (!c->map[0] || !strcmp(c->map, "none")) {
            st = LA_FAIL(err, LA_EINVAL, "kernel %s needs a feature map (map is '%s')", cr.kn->name,
                         c->map);
            goto fail;
        }
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            st = LA_FAIL(err, LA_ENOMEM, "out of memory allocating a random number generator");
            goto fail;
        }
        gsl_rng_set(rng, la_stream_seed(c->seed, LA_STREAM_FEATUREMAP));
        struct fm_params p;
        featuremap_params_default(&p, d);
        la_params_to_fm(c, &p);
        p.seed = (unsigned long)c->seed;
        if (c->source == LA_DATA_H5 && c->head >= 0) { /* per-head weights pick this head's */
            p.layer = c->layer;
            p.head = c->head;
        }
        if (p.weights)
            la_io_lock(); /* the weights file is HDF5 */
        cr.fm = featuremap_alloc(c->map, &p, rng, err);
        if (p.weights)
            la_io_unlock();
        if (!cr.fm) {
            st = err->status != LA_OK ? err->status : LA_EINTERNAL;
            goto fail;
        }
        cr.m = cr.fm->m;
        row->m = cr.m;
    }
    cr.dk = cr.linear ? cr.m : d;
    if (cr.kn->uses_chunk)
        cr.chunk = c->chunk > 0 ? c->chunk : attn_default_chunk(cr.m, dv);
    row->chunk = cr.chunk;

    /* Workspaces: min(H, threads) slices; when there are fewer heads than threads the spare
     * threads may work inside a head, so the slice is sized for all of them. */
    cr.kthreads = nh < cr.nth ? nh : cr.nth;
    cr.wsf =
        attn_workspace_floats(cr.kn, T, cr.dk, dv, c->causal, cr.chunk, nh < cr.nth ? cr.nth : 1);
    if (cr.linear) {
        cr.fmthreads = 2 * nh < cr.nth ? 2 * nh : cr.nth;
        cr.fmw = featuremap_work_floats(cr.fm, (size_t)T);
    }
    if (c->measure_error) {
        cr.ne = nh < LA_ERR_MAX_HEADS ? nh : LA_ERR_MAX_HEADS;
        cr.nr = c->max_ref_rows <= 0 ? 0 : c->max_ref_rows < T ? c->max_ref_rows : T;
        cr.nk = c->kl_rows <= 0 ? 0 : c->kl_rows < T ? c->kl_rows : T;
        cr.np = c->kernel_pairs > 0 ? c->kernel_pairs : 0;
    }
    size_t need[B_COUNT];
    plan_buffers(&cr, need);
    st = ws_reserve(ws, need, err);
    if (st != LA_OK)
        goto fail;

    float *q = BUF(&cr, B_Q, float), *k = BUF(&cr, B_K, float), *v = BUF(&cr, B_V, float);
    float *y = BUF(&cr, B_Y, float);
    if (c->source == LA_DATA_H5)
        la_io_lock();
    st = la_data_fill(c, &cr.s, q, k, v, err);
    if (c->source == LA_DATA_H5)
        la_io_unlock();
    if (st == LA_OK)
        st = cancel_point(err);
    if (st != LA_OK)
        goto fail;
    if (c->source == LA_DATA_H5) {
        const size_t n = (size_t)nh * T * d;
        row->sigma = sqrt(0.5 * (rms(q, n) * rms(q, n) + rms(k, n) * rms(k, n)));
    }

    if (cr.linear) {
        /* Parameters chosen from the data (A: auto): fit once, record each value chosen. */
        const struct la_param *fitted[LA_NPARAMS];
        const size_t nfit = la_params_fitted(c, fitted, LA_NPARAMS);
        if (nfit) {
            const size_t rows = (size_t)nh * T < FIT_MAX_ROWS ? (size_t)nh * T : FIT_MAX_ROWS;
            st = featuremap_fit(cr.fm, q, rows, k, rows, err);
            if (st != LA_OK)
                goto fail;
            for (size_t i = 0; i < nfit; i++) {
                add_note(note, sizeof note, "%s fitted from the data", fitted[i]->name);
                la_param_set_row_real(fitted[i], row, featuremap_param(cr.fm, fitted[i]->entry));
            }
        }
        st = fm_apply_all(&cr);
        if (st != LA_OK) {
            st = LA_FAIL(err, st, "feature map '%s' refused its arguments", c->map);
            goto fail;
        }
        if ((st = cancel_point(err)) != LA_OK)
            goto fail;
        const size_t nf = (size_t)nh * T * cr.m;
        const size_t bq = count_nonfinite(BUF(&cr, B_PQ, float), nf);
        const size_t bk = count_nonfinite(BUF(&cr, B_PK, float), nf);
        if (bq || bk) {
            st = LA_FAIL(err, LA_ENUMERIC,
                         "feature map '%s' gave NaN/Inf: %zu in φ(Q), %zu in φ(K)", c->map, bq, bk);
            goto fail;
        }
        /* Row i of head h was divided by exp(sq[i]) and every key by exp(sk[0]): with
         * eps·exp(−sq[i] − sk[0]) in place of eps, the kernel computes exactly
         * num/(den + eps) of the unstabilised features (and counts the same small rows), and
         * a causal row does not depend on later keys through the key constant. */
        const float *sq = BUF(&cr, B_SQ, float), *sk = BUF(&cr, B_SK, float);
        float *epsr = BUF(&cr, B_EPSR, float);
        int shifted = 0;
        for (int h = 0; h < nh; h++)
            for (int i = 0; i < T; i++) {
                const size_t at = (size_t)h * T + i;
                const double e = c->eps * exp(-(double)sq[at] - (double)sk[(size_t)h * T]);
                /* Not below 1e-20: where the shifts are huge, fp32 features can underflow to
                 * a normaliser of exactly 0, and 0/0 must not become NaN (the row is then
                 * counted as a small normaliser instead).  1e-20 is negligible against any
                 * normaliser fp32 resolves. */
                epsr[at] = (float)(c->eps > 0.0 && e < 1e-20 ? 1e-20 : e);
                shifted |= sq[at] != 0.0f || sk[(size_t)h * T] != 0.0f;
            }
        cr.eps_row = shifted ? epsr : NULL;
    }

    struct kctx kc;
    memset(&kc, 0, sizeof kc);
    kc.kn = cr.kn;
    kc.proto.q = cr.linear ? BUF(&cr, B_PQ, float) : q;
    kc.proto.k = cr.linear ? BUF(&cr, B_PK, float) : k;
    kc.proto.v = v;
    kc.proto.y = y;
    kc.proto.T = T;
    kc.proto.dk = cr.dk;
    kc.proto.dv = dv;
    kc.proto.causal = c->causal;
    kc.proto.eps = (float)c->eps;
    kc.proto.eps_row = cr.eps_row;
    kc.proto.chunk = cr.chunk;
    kc.proto.threads = 1;
    kc.H = nh;
    kc.nth = cr.nth;
    kc.work = BUF(&cr, B_KWORK, float);
    kc.wsf = cr.wsf;

    /* The untimed run whose output is checked and measured. */
    kernel_timed(&kc);
    if ((st = cancel_point(err)) != LA_OK)
        goto fail;
    const size_t ny = (size_t)nh * T * dv;
    size_t bad = count_nonfinite(y, ny);
    if (bad) {
        st = LA_FAIL(err, LA_ENUMERIC, "kernel %s output has %zu NaN/Inf values of %zu",
                     cr.kn->name, bad, ny);
        goto fail;
    }
    row->n_small_den = cr.linear ? kc.small : 0;
    row->flops = attn_nominal_flops(cr.kn, T, cr.dk, dv, c->causal) * nh;
    row->workspace_bytes = (double)need[B_KWORK] +
                           (cr.linear ? (double)(need[B_PQ] + need[B_PK] + need[B_FMWORK]) : 0.0);

    long clamped = 0;
    if (c->measure_error) {
        st = measure_errors(&cr, row, &clamped, err);
        if (st == LA_OK)
            st = cancel_point(err);
        if (st != LA_OK)
            goto fail;
        if (cr.ne < nh)
            add_note(note, sizeof note, "errors on %d of %d heads", cr.ne, nh);
        if (clamped)
            add_note(note, sizeof note, "KL: %ld linear weights <= 0 clamped", clamped);
    }

    if (c->measure_time) {
        struct la_timing t;
        la_time(kernel_timed, &kc, c->warmup, c->min_repeats, 0, c->time_budget_s, &t);
        if ((st = cancel_point(err)) != LA_OK)
            goto fail;
        row->time_median_s = t.median_s;
        row->time_min_s = t.min_s;
        row->time_max_s = t.max_s;
        row->time_p20_s = t.p20_s;
        row->time_p80_s = t.p80_s;
        row->repeats = t.repeats;
        row->gflops = t.median_s > 0.0 ? row->flops / t.median_s / 1e9 : NAN;
        /* A wide spread means the machine was busy (or threads waited on descheduled
         * siblings): say so in the row, so a plot of it can be questioned. */
        if (t.repeats >= 5 && t.p20_s > 0.0 && t.p80_s > NOISY_SPREAD * t.p20_s)
            add_note(note, sizeof note, "noisy timing: p80/p20 = %.2g", t.p80_s / t.p20_s);
        /* Validate after timing too: the timed calls wrote the same output again. */
        bad = count_nonfinite(y, ny);
        if (bad) {
            st = LA_FAIL(err, LA_ENUMERIC, "kernel %s output has %zu NaN/Inf values after timing",
                         cr.kn->name, bad);
            goto fail;
        }
        if (cr.linear) {
            la_time(fm_timed, &cr, c->warmup, c->min_repeats, 0, 0.25 * c->time_budget_s, &t);
            if ((st = cancel_point(err)) != LA_OK)
                goto fail;
            row->fm_time_median_s = t.median_s;
        } else {
            row->fm_time_median_s = 0.0;
        }
    }
    row->peak_rss_bytes = (double)la_peak_rss_bytes();
    la_copy_text(row->message, sizeof row->message, note);
    featuremap_free(cr.fm);
    if (rng)
        gsl_rng_free(rng);
    return LA_OK;

fail:
    row->status = st == LA_EINTR ? LA_ROW_INTERRUPTED : LA_ROW_FAILED;
    la_copy_text(row->message, sizeof row->message, err->msg);
    row->peak_rss_bytes = (double)la_peak_rss_bytes();
    featuremap_free(cr.fm);
    if (rng)
        gsl_rng_free(rng);
    return st;
}
