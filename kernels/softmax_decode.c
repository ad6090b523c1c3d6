/* softmax_decode.c — fast fp32 causal softmax attention over a key-value cache: prefill (the T
 * tokens of one sequence appended to its cache, an output for each) and step (one token for
 * each of B independent sequences, each with its own cache).  The cache layout (blocks of
 * ATTN_KV_BLOCK tokens: keys transposed, then values) is attention.h's; both operations first
 * store the new keys and values at positions pos .. and then attend over the cache with
 * la_kv_attend (simd.h: the online-softmax block that softmax_flash's tiles also use, one GEMM
 * tile pass per cache block for the scores and one for P·V).
 *   - Prefill: query rows in blocks of BR, each over the cache blocks it sees (block outer, its
 *     rows inner, so a cache block stays in L1/L2 while the rows pass); threads take row blocks
 *     (dynamic, longest first: causal blocks differ).
 *   - Step: B = 1 with threads: the cached blocks are split between the threads, each keeping
 *     its own running max, sum and unnormalised output, merged at the end (the partial
 *     softmaxes rescaled to the common max, as flash-decoding does).  B > 1: threads take
 *     sequences.  One thread: the sequences in turn, each read front to back.
 * Nothing here allocates: the workspace (attn_softmax_decode_ws) holds the scores of a row
 * block and, per thread, a partial output.
 * Tests: tests/test_kernels.c (the chain prefill then steps against softmax_ref.c's prefill and
 * step references and against softmax_flash; a thread split, a prefill in pieces), `linattn
 * check`.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define BR 96 /* prefill query rows per block (softmax_flash's row block) */

size_t attn_softmax_cache_floats(int T, int dk, int dv)
{
    const size_t blocks = ((size_t)(T > 0 ? T : 0) + ATTN_KV_BLOCK - 1) / ATTN_KV_BLOCK;
    return blocks * ATTN_KV_BLOCK * ((size_t)dk + (size_t)dv);
}

/* Per thread: scores (rows × block), max and sum per row, a partial output (step). */
static size_t prefill_thread_floats(void)
{
    return la_pad16((size_t)BR * ATTN_KV_BLOCK) + la_pad16(2 * (size_t)BR);
}

static size_t step_thread_floats(int dv)
{
    return la_pad16(ATTN_KV_BLOCK) + la_pad16((size_t)dv) + 16;
}

size_t attn_softmax_prefill_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    (void)T, (void)dk, (void)dv, (void)causal, (void)chunk;
    return prefill_thread_floats() * (size_t)(threads > 1 ? threads : 1);
}

size_t attn_softmax_step_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    (void)T, (void)dk, (void)causal, (void)chunk;
    return step_thread_floats(dv) * (size_t)(threads > 1 ? threads : 1);
}

/* Token t's key and value (k: d floats, v: dv) into cache C at position t. */
static void cache_store(float *C, int d, int dv, int t, const float *k, const float *v)
{
    const size_t bf = (size_t)ATTN_KV_BLOCK * ((size_t)d + (size_t)dv);
    float *Kt = C + (size_t)(t / ATTN_KV_BLOCK) * bf, *Vb = Kt + (size_t)ATTN_KV_BLOCK * d;
    const int j = t % ATTN_KV_BLOCK;
    for (int c = 0; c < d; c++)
        Kt[(size_t)c * ATTN_KV_BLOCK + j] = k[c];
    memcpy(Vb + (size_t)j * dv, v, (size_t)dv * sizeof *v);
}

void attn_kv_store(float *cache, int d, int dv, int pos, int T, const float *k, const float *v)
{
    for (int i = 0; i < T; i++)
        cache_store(cache, d, dv, pos + i, k + (size_t)i * d, v + (size_t)i * dv);
}

/* y = the normalised output of one row: acc / l. */
static void finish_row(float *y, int dv, float l)
{
    const float inv = 1.0f / l;
    for (int c = 0; c < dv; c++)
        y[c] *= inv;
}

/* Rows [i0, i0 + rows) of a prefill at pos (all T tokens already stored); w: one thread's. */
static void prefill_block(int isa, const struct attn_args *a, int i0, int rows, float scale,
                          float *w)
{
    const int d = a->dk, dv = a->dv, p0 = a->pos + i0;
    float *S = w, *m = w + la_pad16((size_t)BR * ATTN_KV_BLOCK), *l = m + BR;
    float *Y = a->y + (size_t)i0 * dv;
    for (int r = 0; r < rows; r++)
        m[r] = -INFINITY, l[r] = 0.0f;
    memset(Y, 0, (size_t)rows * dv * sizeof *Y);
    la_kv_attend(isa, a->q + (size_t)i0 * d, d, rows, a->state, d, dv, 0, p0 + rows, p0, scale, S,
                 m, l, Y, dv);
    for (int r = 0; r < rows; r++)
        finish_row(Y + (size_t)r * dv, dv, l[r]);
}

void attn_softmax_prefill(struct attn_args *a)
{
    const int T = a->T, d = a->dk, dv = a->dv, isa = la_simd_isa();
    const int nth = a->threads > 1 ? a->threads : 1, nblocks = (T + BR - 1) / BR;
    const float scale = 1.0f / sqrtf((float)d);
    float *w0 = la_align_work(a->work);
    for (int i = 0; i < T; i++)
        cache_store(a->state, d, dv, a->pos + i, a->k + (size_t)i * d, a->v + (size_t)i * dv);
    if (nth == 1 || nblocks == 1) {
        for (int b = 0; b < nblocks; b++) {
            const int i0 = b * BR, rows = T - i0 < BR ? T - i0 : BR;
            prefill_block(isa, a, i0, rows, scale, w0);
        }
    } else {
#pragma omp parallel num_threads(nth)
        {
            float *w = w0 + prefill_thread_floats() * (size_t)omp_get_thread_num();
            /* The last blocks see the most keys: they go first, so the threads end together. */
#pragma omp for schedule(dynamic, 1)
            for (int bi = 0; bi < nblocks; bi++) {
                const int b = nblocks - 1 - bi;
                const int i0 = b * BR, rows = T - i0 < BR ? T - i0 : BR;
                prefill_block(isa, a, i0, rows, scale, w);
            }
        }
    }
    a->n_small_den = 0;
}

/* One sequence's step over its whole cache C on this thread: y = its output; w: one thread's. */
static void step_one(int isa, const float *q, float *y, const float *C, int d, int dv, int pos,
                     float scale, float *w)
{
    float *S = w, *ml = w + la_pad16(ATTN_KV_BLOCK) + la_pad16((size_t)dv);
    ml[0] = -INFINITY, ml[1] = 0.0f;
    memset(y, 0, (size_t)dv * sizeof *y);
    la_kv_attend(isa, q, d, 1, C, d, dv, 0, pos + 1, pos, scale, S, ml, ml + 1, y, dv);
    finish_row(y, dv, ml[1]);
}

/* One sequence's step with its cache's blocks split between nth threads: thread t attends over
 * its range into its own (max, sum, output), then the partial softmaxes are merged:
 *   M = max_t m_t,  l = Σ_t l_t·e^{m_t − M},  y = Σ_t acc_t·e^{m_t − M} / l. */
static void step_split(int isa, const float *q, float *y, const float *C, int d, int dv, int pos,
                       float scale, float *w0, int nth)
{
    const int nblk = (pos + 1 + ATTN_KV_BLOCK - 1) / ATTN_KV_BLOCK;
    const int parts = nth < nblk ? nth : nblk;
    const size_t tf = step_thread_floats(dv), mo = la_pad16(ATTN_KV_BLOCK) + la_pad16((size_t)dv);
    int np = 1; /* the team's size, which may be smaller than asked for */
#pragma omp parallel num_threads(parts)
    {
        const int t = omp_get_thread_num(), team = omp_get_num_threads();
        float *w = w0 + tf * (size_t)t;
        float *S = w, *acc = w + la_pad16(ATTN_KV_BLOCK), *ml = w + mo;
        const int b0 = (int)((long)nblk * t / team), b1 = (int)((long)nblk * (t + 1) / team);
        const int j0 = b0 * ATTN_KV_BLOCK;
        const int j1 = b1 * ATTN_KV_BLOCK < pos + 1 ? b1 * ATTN_KV_BLOCK : pos + 1;
        if (t == 0)
            np = team;
        ml[0] = -INFINITY, ml[1] = 0.0f;
        memset(acc, 0, (size_t)dv * sizeof *acc);
        if (j0 < j1)
            la_kv_attend(isa, q, d, 1, C, d, dv, j0, j1, pos, scale, S, ml, ml + 1, acc, dv);
    }
    float M = -INFINITY;
    for (int t = 0; t < np; t++) {
        const float mt = w0[tf * (size_t)t + mo];
        M = mt > M ? mt : M;
    }
    float l = 0.0f;
    memset(y, 0, (size_t)dv * sizeof *y);
    for (int t = 0; t < np; t++) {
        const float *acc = w0 + tf * (size_t)t + la_pad16(ATTN_KV_BLOCK),
                    *ml = w0 + tf * (size_t)t + mo;
        if (ml[0] == -INFINITY)
            continue; /* an empty range */
        const float e = expf(ml[0] - M);
        l += ml[1] * e;
        for (int c = 0; c < dv; c++)
            y[c] += acc[c] * e;
    }
    finish_row(y, dv, l);
}

void attn_softmax_step(struct attn_args *a)
{
    const int B = a->T, d = a->dk, dv = a->dv, pos = a->pos, isa = la_simd_isa();
    const int nth = a->threads > 1 ? a->threads : 1;
    const size_t stride = attn_softmax_cache_floats(a->cap > 0 ? a->cap : pos + 1, d, dv);
    const float scale = 1.0f / sqrtf((float)d);
    float *w0 = la_align_work(a->work);
    if (B == 1 && nth > 1 && pos + 1 > ATTN_KV_BLOCK) {
        cache_store(a->state, d, dv, pos, a->k, a->v);
        step_split(isa, a->q, a->y, a->state, d, dv, pos, scale, w0, nth);
    } else {
#pragma omp parallel for num_threads(nth) if (nth > 1 && B > 1) schedule(static)
        for (int b = 0; b < B; b++) {
            float *C = a->state + (size_t)b * stride;
            float *w = w0 + step_thread_floats(dv) * (size_t)omp_get_thread_num();
            cache_store(C, d, dv, pos, a->k + (size_t)b * d, a->v + (size_t)b * dv);
            step_one(isa, a->q + (size_t)b * d, a->y + (size_t)b * dv, C, d, dv, pos, scale, w);
        }
    }
    a->n_small_den = 0;
}
