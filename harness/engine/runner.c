/* runner.c — one cell in, one row out (see runner.h).
 *
 * Per cell: the data (data.c) as B·H heads of (T, d) fp32; for linear kernels the feature map
 * (drawn from an mt19937 seeded with la_stream_seed(cell.seed, LA_STREAM_FEATUREMAP)) applied
 * to Q (role query) and K (role key) head by head, a parameter chosen from the data (A: auto)
 * fitted to each head on its own (its queries and keys only: pairs of different heads, or of
 * different layers, never mix; the row records the mean over heads, the message the range); one untimed run of
 * the kernel over all heads whose output is checked for NaN/Inf and measured against the
 * references; then, if asked, the timed runs (la_time: warm-ups, at least min_repeats, up to the
 * budget) of the kernel, and of the feature map with a quarter of the budget.  A map the kernel
 * applies itself (elu1, relu: featuremap_type.fused_map, a kernel with fuses_map, forward
 * cells) is not applied apart: the kernel gets the raw Q, K, its timed calls are map and kernel
 * together, fm_time_median_s is NaN and the message says "map fused into the kernel"; the
 * features are still computed (untimed) for the errors, and the output is the same bit for
 * bit.
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
 *  - kl_mean, kl_nonpos_frac, entropy_mean: kl_rows stratified rows per head; KL(softmax row ‖
 *    linear weights row) with w_ij = φ(q_i)ᵀφ(k_j) / Σ_j' φ(q_i)ᵀφ(k_j'), j ≤ i when causal.  A
 *    row with a weight <= 0 (rff; relu with eps = 0) is no distribution and its KL is +∞ (softmax
 *    weights are positive): kl_nonpos_frac is the fraction of such rows, and kl_mean the mean
 *    over the other rows only (NaN when there are none), so that no number depends on a floor.
 *    Softmax kernels: kl_mean and kl_nonpos_frac are NaN (nothing approximates the weights),
 *    entropy is measured.
 *    Recurrences (a kernel whose update rule is not the sum, attention.h): err_impl is against
 *    the rule's double reference (attn_recur_ref over all T rows of the head, with the cell's
 *    constant gate or the head's gates from the data file (`beta: data`, `alpha: data`: read
 *    by la_data_gate, the kernel gets the same), its normaliser (recur_norm), eps without the
 *    stabilised rows' eps_row), and
 *    kl_mean and kl_nonpos_frac are NaN (their weights over the keys are not φ(q)ᵀφ(k)
 *    normalised).
 *  - kernel_mse: kernel_pairs (head, i, j) triples drawn uniformly over every head and position;
 *    estimate φ(q_i)ᵀφ(k_j) from the map applied with role FM_RAW (no stabiliser, so prf and hyp
 *    give their unscaled unbiased estimate) to that single query row and that single key row;
 *    target exp(q_iᵀk_j/√d), the softmax kernel, also for deterministic maps (then it says how
 *    far the map's own kernel is from softmax).  An overflowing raw estimate gives +Inf.
 * Every per-row value is stored and summed in a fixed order afterwards, so the numbers do not
 * depend on the thread count.  Random draws: sample rows and pairs come from a stream of their
 * own (LA_STREAM_SAMPLE), so measuring errors never changes the data or the features.
 *
 * Decode cells (the cell's kernel is a step kernel): the data holds T tokens of each of the
 * batch·heads sequences; untimed, the map runs over all of them as above and each sequence's
 * state gets tokens 0..T−2: a linear state from the prefill kernel of the same input and rule,
 * a KV cache (capacity T) by storing the tokens (attn_kv_store: all a step reads of it);
 * timed, one step of token T−1 for the B = batch sequences of each head (attn_run_heads over
 * the heads), the map over the B new query and key rows included (its share alone is
 * fm_time_median_s).  The errors are those of row T−1 of each sequence (err_rows 1): the step's
 * output stands in that row of y.  Columns state_bytes, flops and bytes: the step's, at
 * position T−1 (attn_nominal_flops_at).
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
#include "fidelity_cell.h"
#include "metrics.h"
#include "train.h"

/* Rows of one head the feature-map fit sees at most (its first ones). */
#define FIT_MAX_ROWS 65536
/* Timed repeats whose p80/p20 exceeds this get a note in the message. */
#define NOISY_SPREAD 1.5

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
    B_KLV, /* per KL row: KL (NaN: a weight <= 0), entropy, weights <= 0 */
    B_ENTV,
    B_CLAMP,
    B_YREC, /* recurrences: one head's whole reference output (T, dv), its state and work */
    B_GATE,  /* recurrences with gates from the data: every head's (nheads × gh floats) */
    B_GATED, /* the same, one head in double, for the reference */
    B_DGATE, /* decode cells: the step's gates, the last token's of every sequence */
    B_STATE, /* decode cells: the state or cache of every sequence */
    B_DQ,    /* decode cells: the last token of every sequence, raw q and k (nheads × d) */
    B_DK,
    B_DPQ, /* decode cells: its features (nheads × dk), v, the step's output, eps */
    B_DPK,
    B_DV,
    B_DY,
    B_DEPS,
    B_DPHI,    /* decode cells: where the timed map writes φ of the new rows (2 × nheads × m) */
    B_DFMWORK, /* decode cells: the map's workspace for B rows, one slice per thread */
    B_COUNT
};

struct la_runner_ws {
    struct la_buf b[B_COUNT];
    struct la_fidelity_cache *fid; /* model cells: the checkpoint and its softmax reference */
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
    la_fidelity_cache_free(ws->fid);
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
    float gate;              /* recurrences: the constant gate of the kernel's rule (β, γ or α
                                from the cell), 0 for the sum rule */
    size_t gh;               /* gates per head read from the data (T or T·m), 0: the constant */
    int ne, nr, nk, np;      /* error heads, rows per head, KL rows per head, kernel pairs */
    int fit;                 /* the map has parameters chosen from the data (A: auto) */
    int fit_head;            /* the head the map is fitted to now; -1 none */
    /* Decode cells (a step kernel): the prefill of the same input that fills the states, the
     * floats of one sequence's state (capacity T), the map's workspace for the B new rows of
     * one head. */
    int decode;
    const struct attn_kernel *pf;
    size_t sf, dfmw;
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
    if (cr->decode) {
        need[B_STATE] = nh * cr->sf * sizeof(float);
        need[B_DQ] = need[B_DK] = nh * d * sizeof(float);
        need[B_DPQ] = need[B_DPK] = nh * (size_t)cr->dk * sizeof(float);
        need[B_DV] = need[B_DY] = nh * dv * sizeof(float);
        need[B_DEPS] = nh * sizeof(float);
        if (cr->linear) {
            need[B_DPHI] = 2 * nh * m * sizeof(float);
            need[B_DFMWORK] = (size_t)cr->fmthreads * cr->dfmw * sizeof(float);
        }
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
        if (cr->linear && cr->kn->update != ATTN_UPD_SUM)
            need[B_YREC] = (T * dv + m * dv + 2 * m + dv) * sizeof(double);
        need[B_GATED] = cr->gh * sizeof(double);
    }
    need[B_GATE] = nh * cr->gh * sizeof(float);
    if (cr->decode)
        need[B_DGATE] = nh * (cr->gh / T) * sizeof(float);
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

/* Fits the map's data-chosen parameters to head h (its first FIT_MAX_ROWS queries and keys),
 * unless it is fitted to h already or has none. */
static int fm_fit_head(struct cellrun *cr, int h, struct la_error *err)
{
    if (!cr->fit || cr->fit_head == h)
        return LA_OK;
    const size_t xs = (size_t)cr->s.T * cr->s.d;
    const size_t rows = (size_t)cr->s.T < FIT_MAX_ROWS ? (size_t)cr->s.T : FIT_MAX_ROWS;
    const int st = featuremap_fit(cr->fm, BUF(cr, B_Q, float) + (size_t)h * xs, rows,
                                  BUF(cr, B_K, float) + (size_t)h * xs, rows, err);
    cr->fit_head = st == LA_OK ? h : -1;
    return st;
}

/* φ(Q) and φ(K) of a map fitted per head: head by head, each fitted to its own data first.
 * vals[h·nfit + i]: the value of fitted[i] chosen for head h. */
static int fm_apply_fitted(struct cellrun *cr, const struct la_param *const *fitted, size_t nfit,
                           double *vals, struct la_error *err)
{
    const int nh = cr->s.nheads;
    const size_t xs = (size_t)cr->s.T * cr->s.d, ps = (size_t)cr->s.T * cr->m;
    for (int h = 0; h < nh; h++) {
        int st = fm_fit_head(cr, h, err);
        if (st != LA_OK)
            return st;
        for (size_t i = 0; i < nfit; i++)
            vals[(size_t)h * nfit + i] = featuremap_param(cr->fm, fitted[i]->entry);
        for (int key = 0; key <= 1; key++) {
            st = featuremap_apply_shift(
                cr->fm, key ? FM_KEY : FM_QUERY,
                BUF(cr, key ? B_K : B_Q, float) + (size_t)h * xs, (size_t)cr->s.T,
                BUF(cr, key ? B_PK : B_PQ, float) + (size_t)h * ps,
                cr->fmw ? BUF(cr, B_FMWORK, float) : NULL,
                BUF(cr, key ? B_SK : B_SQ, float) + (size_t)h * cr->s.T);
            if (st != LA_OK)
                return LA_FAIL(err, st, "feature map '%s' refused its arguments", cr->c->map);
        }
    }
    return LA_OK;
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

/* ---- decode cells ------------------------------------------------------------------------ */

/* The data head of sequence s = g·B + b, row b of the step call of head g: batch b, head g
 * (the data holds batch-major heads, data.h). */
static size_t decode_head(const struct cellrun *cr, int s)
{
    const int B = cr->s.batch, H = cr->s.heads;
    return (size_t)(s % B) * H + (size_t)(s / B);
}

/* Untimed: every sequence's state emptied, then tokens 0..T−2 appended: by the prefill kernel
 * for a linear state (its outputs go to rows 0..T−2 of y, not measured), by attn_kv_store for
 * a KV cache; the last token of each sequence gathered for the
 * step: raw q and k (for the timed map), the kernel's inputs (features for a linear kernel,
 * computed with the whole sequence's stabiliser shifts, so they agree with the state), v and
 * the row's eps. */
static void decode_prepare(const struct cellrun *cr, size_t pf_wsf)
{
    const int T = cr->s.T, nh = cr->s.nheads, d = cr->s.d, dv = cr->s.dv, dk = cr->dk;
    const float *q = cr->linear ? BUF(cr, B_PQ, float) : BUF(cr, B_Q, float);
    const float *k = cr->linear ? BUF(cr, B_PK, float) : BUF(cr, B_K, float);
    const float *v = BUF(cr, B_V, float);
    float *state = BUF(cr, B_STATE, float);
    memset(state, 0, (size_t)nh * cr->sf * sizeof *state);
    for (int s = 0; s < nh && T > 1; s++) {
        const size_t h = decode_head(cr, s);
        if (!cr->linear) {
            /* A key-value cache is its tokens: storing them is all the prefill leaves behind
             * that a step reads (the prefill's outputs are not measured), and costs O(t·d)
             * where attending would cost O(t²·d) — what makes contexts of 64K affordable. */
            attn_kv_store(state + (size_t)s * cr->sf, dk, dv, 0, T - 1, k + h * T * dk,
                          v + h * T * dv);
            continue;
        }
        struct attn_args a;
        memset(&a, 0, sizeof a);
        a.q = q + h * T * dk;
        a.k = k + h * T * dk;
        a.v = v + h * T * dv;
        a.y = BUF(cr, B_Y, float) + h * T * dv;
        a.T = T - 1;
        a.dk = dk;
        a.dv = dv;
        a.causal = 1;
        a.eps = (float)cr->c->eps;
        a.eps_row = cr->eps_row ? cr->eps_row + h * T : NULL;
        a.threads = 1;
        a.state = state + (size_t)s * cr->sf;
        a.pos = 0;
        a.cap = T;
        a.gate = cr->gh ? BUF(cr, B_GATE, float) + h * cr->gh : NULL;
        a.gate_const = cr->gate;
        a.recur_norm = cr->c->recur_norm;
        attn_run_heads(cr->pf, &a, 1, cr->nth, BUF(cr, B_KWORK, float), pf_wsf);
    }
    const size_t last = (size_t)T - 1;
    for (int s = 0; s < nh; s++) {
        const size_t h = decode_head(cr, s);
        memcpy(BUF(cr, B_DQ, float) + (size_t)s * d, BUF(cr, B_Q, float) + (h * T + last) * d,
               (size_t)d * sizeof(float));
        memcpy(BUF(cr, B_DK, float) + (size_t)s * d, BUF(cr, B_K, float) + (h * T + last) * d,
               (size_t)d * sizeof(float));
        memcpy(BUF(cr, B_DPQ, float) + (size_t)s * dk, q + (h * T + last) * dk,
               (size_t)dk * sizeof(float));
        memcpy(BUF(cr, B_DPK, float) + (size_t)s * dk, k + (h * T + last) * dk,
               (size_t)dk * sizeof(float));
        memcpy(BUF(cr, B_DV, float) + (size_t)s * dv, v + (h * T + last) * dv,
               (size_t)dv * sizeof(float));
        BUF(cr, B_DEPS, float)[s] = cr->eps_row ? cr->eps_row[h * T + last] : (float)cr->c->eps;
        if (cr->gh) { /* the step reads sequence s's gate at row s of its call */
            const size_t w = cr->gh / (size_t)T;
            memcpy(BUF(cr, B_DGATE, float) + (size_t)s * w,
                   BUF(cr, B_GATE, float) + h * cr->gh + last * w, w * sizeof(float));
        }
    }
}

/* The map over the new token of every sequence: φ of the B new query rows and of the B new
 * key rows of each head, one call of B rows each (OpenMP over the 2·H calls), into B_DPHI.  A
 * decoder pays this per step.  Its outputs are not what the step reads: the step reads the
 * features gathered by decode_prepare, whose key rows share the stabiliser shift the state
 * was built with (a decoder keeps that shift from its prompt; the cost is the same). */
static int decode_map_all(const struct cellrun *cr)
{
    const int B = cr->s.batch, H = cr->s.heads, d = cr->s.d, m = cr->m;
    const size_t nh = (size_t)cr->s.nheads;
    const float *dq = BUF(cr, B_DQ, float), *dk = BUF(cr, B_DK, float);
    float *phi = BUF(cr, B_DPHI, float), *work = BUF(cr, B_DFMWORK, float);
    int bad = 0;
#pragma omp parallel for num_threads(cr->fmthreads) schedule(dynamic, 1) reduction(| : bad)
    for (int t = 0; t < 2 * H; t++) {
        const size_t g = (size_t)(t >> 1);
        const int key = t & 1;
        float *w = cr->dfmw ? work + (size_t)omp_get_thread_num() * cr->dfmw : NULL;
        bad |= featuremap_apply(cr->fm, key ? FM_KEY : FM_QUERY, (key ? dk : dq) + g * B * d,
                                (size_t)B, phi + (key ? nh * m : 0) + g * B * m, w) != LA_OK;
    }
    return bad ? LA_EINTERNAL : LA_OK;
}

static void decode_map(void *ctx)
{
    /* Its status was checked on the untimed call with the same arguments. */
    (void)decode_map_all(ctx);
}

struct dctx {
    struct cellrun *cr;
    struct kctx *kc;
};

/* The forward pass of a training step: the map on Q and K, then the kernel. */
struct fwdctx {
    struct cellrun *cr;
    struct kctx *kc;
};

/* One decode step as a decoder runs it: the map over the new tokens (linear kernels), then the
 * step kernel over the H heads, B sequences each, appending at position T−1. */
static void decode_timed(void *ctx)
{
    struct dctx *x = ctx;
    if (x->cr->linear)
        decode_map(x->cr);
    kernel_timed(x->kc);
}

/* What a NaN/Inf output most likely means, for the message: the delta rule's state grows
 * without bound once β‖φ(k)‖² > 2 (the update multiplies it by I − βφ(k)φ(k)ᵀ), which sum
 * normalisation of the keys rules out. */
static const char *nonfinite_hint(const struct cellrun *cr)
{
    if (cr->kn->update == ATTN_UPD_DELTA && cr->c->recur_norm != ATTN_RN_SUM)
        return " (the delta rule diverges when beta·|φ(k)|² > 2; recur_norm: sum keeps it "
               "stable)";
    return "";
}

static void forward_timed(void *ctx)
{
    struct fwdctx *f = ctx;
    if (f->cr->linear)
        fm_timed(f->cr);
    kernel_timed(f->kc);
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

/* Normalised linear weights of feature row pq over feature rows 0..n-1 into w.  Returns how many
 * weights are <= 0 (or NaN); w is normalised only when that is 0, since otherwise the row is no
 * distribution. */
static long linear_weights(const double *pq, const double *PK, int n, int m, double *w)
{
    long nonpos = 0;
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        const double *k = PK + (size_t)j * m;
        double s = 0.0;
        for (int f = 0; f < m; f++)
            s += pq[f] * k[f];
        w[j] = s;
        nonpos += !(s > 0.0);
        sum += s;
    }
    if (nonpos)
        return nonpos;
    for (int j = 0; j < n; j++)
        w[j] /= sum;
    return 0;
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

static int measure_errors(struct cellrun *cr, struct la_row *row, long *nonpos_out,
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
    long *nonposv = BUF(cr, B_CLAMP, long);
    float *yk = BUF(cr, B_YK, float);
    const float *q = BUF(cr, B_Q, float), *k = BUF(cr, B_K, float), *v = BUF(cr, B_V, float);
    const float *y = BUF(cr, B_Y, float);
    const int rec = cr->linear && cr->kn->update != ATTN_UPD_SUM; /* a recurrence's cell */

    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r)
        return LA_FAIL(err, LA_ENOMEM, "out of memory allocating a random number generator");
    gsl_rng_set(r, la_stream_seed(c->seed, LA_STREAM_SAMPLE));
    if (cr->decode) {
        /* A decode cell's output is the last row of each sequence (nr, nk <= 1). */
        for (int e = 0; e < cr->ne; e++) {
            for (int i = 0; i < nr; i++)
                rows[(size_t)e * nr + i] = T - 1;
            for (int i = 0; i < nk; i++)
                klrows[(size_t)e * nk + i] = T - 1;
        }
    } else {
        for (int e = 0; e < cr->ne; e++)
            sample_rows(r, T, nr, rows + (size_t)e * nr);
        for (int e = 0; e < cr->ne; e++)
            sample_rows(r, T, nk, klrows + (size_t)e * nk);
    }

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
            if (cr->linear && !rec)
                attn_linear_ref_rows(pqd, pkd, vd, ylin + (size_t)i * dv, T, m, dv, causal, c->eps,
                                     cr->eps_row ? cr->eps_row + (size_t)h * T : NULL, &hr[i], 1);
        }
        if (rec) {
            /* The recurrence's reference runs every row in order; the sampled ones are kept. */
            double *yall = BUF(cr, B_YREC, double), *st = yall + vs;
            memset(st, 0, ((size_t)m * dv + m) * sizeof *st);
            double *gd = cr->gh ? BUF(cr, B_GATED, double) : NULL;
            if (gd)
                to_double(BUF(cr, B_GATE, float) + (size_t)h * cr->gh, gd, cr->gh);
            attn_recur_ref(cr->kn->update, pqd, pkd, vd, yall, T, m, dv, c->eps, gd, cr->gate,
                           c->recur_norm, st, st + (size_t)m * dv + m);
            for (int i = 0; i < nr; i++)
                memcpy(ylin + (size_t)i * dv, yall + (size_t)hr[i] * dv,
                       (size_t)dv * sizeof *ylin);
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
            nonposv[at] = 0;
            if (cr->linear && !rec) {
                nonposv[at] = linear_weights(pqd + (size_t)qi * m, pkd, n, m, w);
                if (!nonposv[at])
                    klv[at] = la_kl(p, w, (size_t)n);
            }
        }
    }

    /* Sums in a fixed order: the same numbers whatever the thread count. */
    double kl = 0.0, ent = 0.0;
    long nonpos_rows = 0;
    size_t nfin = 0;
    const size_t nkl = (size_t)cr->ne * nk;
    for (size_t i = 0; i < nkl; i++) {
        if (isfinite(klv[i])) {
            kl += klv[i];
            nfin++;
        }
        ent += entv[i];
        nonpos_rows += nonposv[i] > 0;
    }
    *nonpos_out = nonpos_rows;
    row->err_rows = nr;
    row->err_rel_fro = la_err_acc_rel_fro(&out);
    row->err_max_abs = nr ? out.max_abs : NAN;
    row->cos_mean = la_err_acc_cos_mean(&out);
    row->err_impl = cr->linear ? la_err_acc_rel_fro(&impl) : row->err_rel_fro;
    row->kl_rows = nk;
    row->kl_mean = cr->linear && !rec && nfin ? kl / (double)nfin : NAN;
    row->kl_nonpos_frac = cr->linear && !rec && nkl ? (double)nonpos_rows / (double)nkl : NAN;
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
            if (fm_fit_head(cr, (int)h, err) != LA_OK) {
                gsl_rng_free(r);
                return err->status;
            }
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
    row->bytes = row->state_bytes = NAN;
    row->workspace_bytes = row->step_bytes = NAN;
    row->peak_rss_bytes = NAN;
    row->err_rel_fro = row->err_max_abs = row->cos_mean = row->kl_mean = row->kl_nonpos_frac = NAN;
    row->kernel_mse = row->err_impl = row->entropy_mean = row->err_grad = NAN;
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

/* A timed cell's repeats into its row: the order statistics, GFLOP/s on the row's nominal flops,
 * and a note when the spread says the machine was busy (or threads waited on descheduled
 * siblings), so that a plot of the row can be questioned. */
static void store_timing(struct la_row *row, const struct la_timing *t, char *note,
                         size_t note_cap)
{
    row->time_median_s = t->median_s;
    row->time_min_s = t->min_s;
    row->time_max_s = t->max_s;
    row->time_p20_s = t->p20_s;
    row->time_p80_s = t->p80_s;
    row->repeats = t->repeats;
    row->gflops = t->median_s > 0.0 ? row->flops / t->median_s / 1e9 : NAN;
    if (t->repeats >= 5 && t->p20_s > 0.0 && t->p80_s > NOISY_SPREAD * t->p20_s)
        add_note(note, note_cap, "noisy timing: p80/p20 = %.2g", t->p80_s / t->p20_s);
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

/* The decode part of a step cell, once the data and the features are there: the prefill of
 * tokens 0..T−2 and the gathering of the last token (untimed), one checked step whose outputs
 * are measured against row T−1 of the references, then the timed steps.  Every timed repeat
 * appends token T−1 again at position T−1: a KV cache overwrites the same slot (the same call
 * each time); a linear state accumulates φ(k)vᵀ once more per repeat, which leaves the work of
 * the call unchanged (its state has one size and the step's loop does not depend on the
 * values) and its output finite (checked after timing); restoring it would need a copy inside
 * the timed call. */
static int run_decode(struct cellrun *cr, struct la_row *row, const size_t need[B_COUNT],
                      size_t pf_wsf, char *note, size_t note_cap, struct la_error *err)
{
    const struct la_cell *c = cr->c;
    const int T = cr->s.T, B = cr->s.batch, H = cr->s.heads, nh = cr->s.nheads, dv = cr->s.dv;
    int st;
    decode_prepare(cr, pf_wsf);
    if ((st = cancel_point(err)) != LA_OK)
        return st;

    struct kctx kc;
    memset(&kc, 0, sizeof kc);
    kc.kn = cr->kn;
    kc.proto.q = BUF(cr, B_DPQ, float);
    kc.proto.k = BUF(cr, B_DPK, float);
    kc.proto.v = BUF(cr, B_DV, float);
    kc.proto.y = BUF(cr, B_DY, float);
    kc.proto.T = B;
    kc.proto.dk = cr->dk;
    kc.proto.dv = dv;
    kc.proto.causal = 1;
    kc.proto.eps = (float)c->eps;
    kc.proto.eps_row = cr->eps_row ? BUF(cr, B_DEPS, float) : NULL;
    kc.proto.threads = 1;
    kc.proto.state = BUF(cr, B_STATE, float);
    kc.proto.pos = T - 1;
    kc.proto.cap = T;
    kc.proto.gate = cr->gh ? BUF(cr, B_DGATE, float) : NULL;
    kc.proto.gate_const = cr->gate;
    kc.proto.recur_norm = c->recur_norm;
    kc.H = H;
    kc.nth = cr->nth;
    kc.work = BUF(cr, B_KWORK, float);
    kc.wsf = cr->wsf;
    struct dctx dc = {cr, &kc};

    /* The checked step: the map over the new rows (its status), then the kernel. */
    if (cr->linear && decode_map_all(cr) != LA_OK)
        return LA_FAIL(err, LA_EINTERNAL, "feature map '%s' refused the new tokens", c->map);
    kernel_timed(&kc);
    if ((st = cancel_point(err)) != LA_OK)
        return st;
    const float *dy = BUF(cr, B_DY, float);
    const size_t ny = (size_t)nh * dv;
    size_t bad = count_nonfinite(dy, ny);
    if (bad)
        return LA_FAIL(err, LA_ENUMERIC, "kernel %s output has %zu NaN/Inf values of %zu%s",
                       cr->kn->name, bad, ny, nonfinite_hint(cr));
    /* Each sequence's step output is row T−1 of its head, where the errors read it. */
    for (int s = 0; s < nh; s++)
        memcpy(BUF(cr, B_Y, float) + (decode_head(cr, s) * T + (size_t)T - 1) * dv,
               dy + (size_t)s * dv, (size_t)dv * sizeof *dy);
    row->n_small_den = cr->linear ? kc.small : 0;
    row->flops = attn_nominal_flops_at(cr->kn, B, T - 1, cr->dk, dv, 1) * H;
    row->bytes = attn_nominal_bytes_at(cr->kn, B, T - 1, cr->dk, dv, 1) * H;
    row->state_bytes = (double)nh * (double)cr->sf * sizeof(float);
    row->workspace_bytes = (double)need[B_KWORK] + (double)need[B_DFMWORK] +
                           (double)(need[B_DPQ] + need[B_DPK] + need[B_DPHI]);

    if (c->measure_error) {
        long clamped = 0;
        st = measure_errors(cr, row, &clamped, err);
        if (st == LA_OK)
            st = cancel_point(err);
        if (st != LA_OK)
            return st;
        if (cr->ne < nh)
            add_note(note, note_cap, "errors on %d of %d heads", cr->ne, nh);
        if (clamped)
            add_note(note, note_cap, "KL: %ld linear weights <= 0 clamped", clamped);
    }

    if (c->measure_time) {
        struct la_timing t;
        la_time(decode_timed, &dc, c->warmup, c->min_repeats, 0, c->time_budget_s, &t);
        if ((st = cancel_point(err)) != LA_OK)
            return st;
        store_timing(row, &t, note, note_cap);
        bad = count_nonfinite(dy, ny);
        if (bad)
            return LA_FAIL(err, LA_ENUMERIC, "kernel %s output has %zu NaN/Inf values after timing",
                           cr->kn->name, bad);
        row->fm_time_median_s = 0.0;
        if (cr->linear) {
            la_time(decode_map, cr, c->warmup, c->min_repeats, 0, 0.25 * c->time_budget_s, &t);
            if ((st = cancel_point(err)) != LA_OK)
                return st;
            row->fm_time_median_s = t.median_s;
        }
    }
    return LA_OK;
}

int la_run_cell(struct la_runner_ws *ws, const struct la_cell *c, struct la_row *row,
                struct la_error *err)
{
    struct la_error local;
    if (!err)
        err = &local;
    la_error_clear(err);
    la_row_from_cell(c, row);
    if (c->source == LA_DATA_MODEL) /* a model-level fidelity cell: fidelity_cell.h */
        return la_fidelity_cell(&ws->fid, c, row, err);
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
    if (cr.kn->op != ATTN_OP_FORWARD && cr.kn->op != ATTN_OP_STEP) {
        st = LA_FAIL(err, LA_EINVAL,
                     "kernel %s is a %s kernel; cells run forward and step kernels (a step "
                     "cell fills its states with the prefill kernel itself)",
                     cr.kn->name, attn_op_name(cr.kn->op));
        goto fail;
    }
    if (c->pass != LA_PASS_FORWARD &&
        (cr.kn->op != ATTN_OP_FORWARD || cr.kn->update != ATTN_UPD_SUM ||
         !attn_kernel_find(ATTN_OP_BACKWARD, cr.kn->input, c->causal))) {
        st = LA_FAIL(err, LA_EINVAL,
                     "kernel %s has no backward kernel: pass must be forward (training passes "
                     "run softmax_flash, linear_noncausal and the causal linear kernels)",
                     cr.kn->name);
        goto fail;
    }
    if (cr.kn->op == ATTN_OP_STEP) {
        cr.decode = 1;
        cr.pf = attn_kernel_find_update(ATTN_OP_PREFILL, cr.kn->input, 1, cr.kn->update);
        if (!cr.pf) {
            st = LA_FAIL(err, LA_EINVAL, "step kernel %s has no prefill kernel of its input to "
                         "fill its states", cr.kn->name);
            goto fail;
        }
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
    cr.gate = (float)(cr.kn->update == ATTN_UPD_DELTA   ? c->beta
                      : cr.kn->update == ATTN_UPD_DECAY ? c->gamma
                      : cr.kn->update == ATTN_UPD_GATED ? c->alpha
                                                        : 0.0);
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
    /* β_t or α_t from the data file (`beta: data`, `alpha: data`): T or T·m per head. */
    if ((cr.kn->update == ATTN_UPD_DELTA && c->beta_data) ||
        (cr.kn->update == ATTN_UPD_GATED && c->alpha_data))
        cr.gh = attn_gate_floats(cr.kn, T, cr.dk);
    if (cr.kn->uses_chunk)
        cr.chunk = c->chunk > 0 ? c->chunk : attn_default_chunk(cr.m, dv);
    row->chunk = cr.chunk;

    /* Workspaces: min(H, threads) slices; when there are fewer heads than threads the spare
     * threads may work inside a head, so the slice is sized for all of them.  A decode cell's
     * step runs H = heads calls of B = batch sequences; its prefill runs one sequence at a time
     * with every thread. */
    const int calls = cr.decode ? cr.s.heads : nh, ctok = cr.decode ? cr.s.batch : T;
    cr.kthreads = calls < cr.nth ? calls : cr.nth;
    cr.wsf = attn_workspace_floats(cr.kn, ctok, cr.dk, dv, c->causal, cr.chunk,
                                   calls < cr.nth ? cr.nth : 1);
    size_t pf_wsf = 0;
    if (cr.decode) {
        cr.sf = attn_state_floats(cr.kn, T, cr.dk, dv);
        pf_wsf = attn_workspace_floats(cr.pf, T > 1 ? T - 1 : 1, cr.dk, dv, 1, 0, cr.nth);
    }
    if (cr.linear) {
        cr.fmthreads = 2 * nh < cr.nth ? 2 * nh : cr.nth;
        cr.fmw = featuremap_work_floats(cr.fm, (size_t)T);
        if (cr.decode)
            cr.dfmw = featuremap_work_floats(cr.fm, (size_t)cr.s.batch);
    }
    if (c->measure_error) {
        /* A decode cell's output is one row per sequence, its last. */
        const int nrow = cr.decode ? 1 : T;
        cr.ne = nh < LA_ERR_MAX_HEADS ? nh : LA_ERR_MAX_HEADS;
        cr.nr = c->max_ref_rows <= 0 ? 0 : c->max_ref_rows < nrow ? c->max_ref_rows : nrow;
        cr.nk = c->kl_rows <= 0 ? 0 : c->kl_rows < nrow ? c->kl_rows : nrow;
        cr.np = c->kernel_pairs > 0 ? c->kernel_pairs : 0;
    }
    size_t need[B_COUNT];
    plan_buffers(&cr, need);
    if (cr.decode && need[B_KWORK] < pf_wsf * sizeof(float))
        need[B_KWORK] = pf_wsf * sizeof(float);
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
    if (cr.gh) {
        const int gated = cr.kn->update == ATTN_UPD_GATED;
        la_io_lock();
        st = la_data_gate(c, &cr.s, gated ? "/alpha" : "/beta", gated ? cr.dk : 0,
                          BUF(&cr, B_GATE, float), err);
        la_io_unlock();
        if (st != LA_OK)
            goto fail;
    }
    if (c->source == LA_DATA_H5) {
        const size_t n = (size_t)nh * T * d;
        row->sigma = sqrt(0.5 * (rms(q, n) * rms(q, n) + rms(k, n) * rms(k, n)));
    }

    if (cr.linear) {
        /* Parameters chosen from the data (A: auto): fitted head by head; the row records the
         * mean over heads, the message the range. */
        const struct la_param *fitted[LA_NPARAMS];
        const size_t nfit = la_params_fitted(c, fitted, LA_NPARAMS);
        cr.fit = nfit > 0;
        cr.fit_head = -1;
        if (nfit) {
            double *vals = malloc((size_t)nh * nfit * sizeof *vals);
            if (!vals) {
                st = LA_FAIL(err, LA_ENOMEM, "out of memory for the fitted parameters");
                goto fail;
            }
            st = fm_apply_fitted(&cr, fitted, nfit, vals, err);
            for (size_t i = 0; i < nfit && st == LA_OK; i++) {
                double sum = 0.0, lo = INFINITY, hi = -INFINITY;
                for (int h = 0; h < nh; h++) {
                    const double x = vals[(size_t)h * nfit + i];
                    sum += x;
                    lo = x < lo ? x : lo;
                    hi = x > hi ? x : hi;
                }
                if (nh > 1)
                    add_note(note, sizeof note,
                             "%s fitted per head (%d heads: %.3g … %.3g, mean kept)",
                             fitted[i]->name, nh, lo, hi);
                else
                    add_note(note, sizeof note, "%s fitted from the data", fitted[i]->name);
                la_param_set_row_real(fitted[i], row, sum / nh);
            }
            free(vals);
        } else {
            st = fm_apply_all(&cr);
            if (st != LA_OK)
                st = LA_FAIL(err, st, "feature map '%s' refused its arguments", c->map);
        }
        if (st != LA_OK)
            goto fail;
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

    if (cr.decode) {
        st = run_decode(&cr, row, need, pf_wsf, note, sizeof note, err);
        if (st != LA_OK)
            goto fail;
        goto done;
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
    kc.proto.gate = cr.gh ? BUF(&cr, B_GATE, float) : NULL;
    kc.proto.gate_const = cr.gate;
    kc.proto.recur_norm = c->recur_norm;
    kc.H = nh;
    kc.nth = cr.nth;
    kc.work = BUF(&cr, B_KWORK, float);
    kc.wsf = cr.wsf;
    /* A map the kernel can apply itself (featuremap_type.fused_map, a kernel with fuses_map;
     * forward cells whose features need no per-row eps): the kernel takes the raw rows and maps
     * each block as it reads it, so the timed call is map and kernel together and the map has
     * no time of its own (fm_time_median_s NaN).  Its output equals, bit for bit, the kernel's
     * on the features above (attn_map_rows makes both), which the errors are measured on. */
    float map_eps = 0.0f;
    const int fmap = cr.linear ? featuremap_fused(cr.fm, &map_eps) : ATTN_MAP_NONE;
    const int fused = fmap != ATTN_MAP_NONE && cr.kn->fuses_map && c->pass == LA_PASS_FORWARD &&
                      !cr.eps_row && cr.dk == d;
    if (fused) {
        kc.proto.q = q;
        kc.proto.k = k;
        kc.proto.fused_map = fmap;
        kc.proto.map_eps = map_eps;
    }
    if (fused && c->measure_time)
        add_note(note, sizeof note,
                 "map fused into the kernel: time_median_s includes φ(Q), φ(K) (gflops on the "
                 "kernel's flops)");

    /* The untimed run whose output is checked and measured. */
    kernel_timed(&kc);
    if ((st = cancel_point(err)) != LA_OK)
        goto fail;
    const size_t ny = (size_t)nh * T * dv;
    size_t bad = count_nonfinite(y, ny);
    if (bad) {
        st = LA_FAIL(err, LA_ENUMERIC, "kernel %s output has %zu NaN/Inf values of %zu%s",
                     cr.kn->name, bad, ny, nonfinite_hint(&cr));
        goto fail;
    }
    row->n_small_den = cr.linear ? kc.small : 0;
    row->flops = attn_nominal_flops(cr.kn, T, cr.dk, dv, c->causal) * nh;
    row->bytes = attn_nominal_bytes(cr.kn, T, cr.dk, dv, c->causal) * nh;
    row->state_bytes = 0.0;
    row->workspace_bytes = (double)need[B_KWORK] +
                           (cr.linear ? (double)(need[B_PQ] + need[B_PK] + need[B_FMWORK]) : 0.0);
    row->step_bytes =
        (double)(need[B_Q] + need[B_K] + need[B_V] + need[B_Y]) + row->workspace_bytes;

    long nonpos = 0;
    if (c->measure_error) {
        st = measure_errors(&cr, row, &nonpos, err);
        if (st == LA_OK)
            st = cancel_point(err);
        if (st != LA_OK)
            goto fail;
        if (cr.ne < nh)
            add_note(note, sizeof note, "errors on %d of %d heads", cr.ne, nh);
        if (nonpos)
            add_note(note, sizeof note,
                     "KL over %ld of %ld rows: the others have a linear weight <= 0 (KL infinite)",
                     (long)cr.ne * cr.nk - nonpos, (long)cr.ne * cr.nk);
    }

    if (c->pass != LA_PASS_FORWARD) {
        /* A training pass: the backward (and the forward) timed in train.c. */
        struct fwdctx fc = {&cr, &kc};
        const struct la_train_in tin = {
            .c = c,
            .fwd = cr.kn,
            .fm = cr.fm,
            .nh = nh,
            .T = T,
            .d = d,
            .dv = dv,
            .m = cr.m,
            .dk = cr.dk,
            .nth = cr.nth,
            .q = q,
            .k = k,
            .v = v,
            .pq = cr.linear ? BUF(&cr, B_PQ, float) : NULL,
            .pk = cr.linear ? BUF(&cr, B_PK, float) : NULL,
            .eps_row = cr.eps_row,
            .forward = forward_timed,
            .forward_ctx = &fc,
            .forward_flops =
                row->flops +
                (cr.linear ? 2.0 * nh * featuremap_nominal_flops(cr.fm->type, (size_t)T, d, cr.m)
                           : 0.0),
            .features_bytes = cr.linear ? (double)(need[B_PQ] + need[B_PK]) : 0.0,
            .forward_work_bytes = (double)(need[B_KWORK] + (cr.linear ? need[B_FMWORK] : 0)),
            .err_heads = cr.ne,
            .err_rows = cr.nr};
        st = la_train_cell(&tin, row, note, sizeof note, err);
        if (st != LA_OK)
            goto fail;
    } else if (c->measure_time) {
        struct la_timing t;
        la_time(kernel_timed, &kc, c->warmup, c->min_repeats, 0, c->time_budget_s, &t);
        if ((st = cancel_point(err)) != LA_OK)
            goto fail;
        store_timing(row, &t, note, sizeof note);
        /* Validate after timing too: the timed calls wrote the same output again. */
        bad = count_nonfinite(y, ny);
        if (bad) {
            st = LA_FAIL(err, LA_ENUMERIC, "kernel %s output has %zu NaN/Inf values after timing",
                         cr.kn->name, bad);
            goto fail;
        }
        if (fused) {
            row->fm_time_median_s = NAN; /* inside time_median_s */
        } else if (cr.linear) {
            la_time(fm_timed, &cr, c->warmup, c->min_repeats, 0, 0.25 * c->time_budget_s, &t);
            if ((st = cancel_point(err)) != LA_OK)
                goto fail;
            row->fm_time_median_s = t.median_s;
        } else {
            row->fm_time_median_s = 0.0;
        }
    }
done:
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
