/* linear.c — fast fp32 linear attention: non-causal (right-multiply-first), causal recurrent
 * (the seed's loop, fused and register-blocked), causal chunked (GEMM-shaped per chunk).
 * Inputs are features:  PQ, PK: (T, m); V, Y: (T, dv), row-major.
 * The normaliser den_i = φ(q_i)ᵀ z_i is computed apart from the (m, dv) state by short vector
 * code (simd.h's la_lin_den: z += k, den = q·z per token), so the state products keep
 * exactly dv columns (64 is four AVX-512 vectors; a ones column would make it five).
 * Y_i = num_i · 1/(den_i + eps); rows with |den_i| <= eps are counted in a->n_small_den.
 * The products are simd.h's vector blocks (AVX-512 / AVX2 / portable, chosen at run time):
 *   non-causal: S = φ(K)ᵀV, then Y = φ(Q)·S with the 1/(den + eps) folded into the store, by
 *               blocks of NONCAUSAL_BLOCK rows.  When the call streams more than
 *               NONCAUSAL_PF_BYTES of rows, each block's GEMM fetches the next block's rows of K
 *               and V, then of Q, one line per step of its tiles (la_gemm_pf), so that a fused
 *               map finds them in cache instead of waiting for memory in a burst.  Measured on
 *               one VM (AMD EPYC family 25 model 17, m = dv = 64, Gaussian rows, medians of 11
 *               blocks alternating with and without): T = 16384, elu1 fused 3.31-3.46 →
 *               2.99-3.07 ms, relu fused 3.06-3.24 → 2.79-2.84, no map 2.73-2.83 → 2.63-2.71;
 *               T = 4096, 1.5-3% slower (the rows are in cache, the prefetches are extra loads),
 *               T = 8192 -1.7% to +0.1%.  The threshold, 12 MiB, lies between: on that VM
 *               streaming reads fell from 72 GB/s over 8 MiB to 54 over 16 (a 32 MiB L3
 *               shared with other guests).  Against the build without it (two runs each):
 *               T = 16384 elu1 fused 3.36-3.48 → 3.00-3.05 ms, relu fused 3.14-3.21 →
 *               2.78-2.80, no map 2.75-2.88 → 2.62-2.64; T = 4096 and 8192 within 1%.
 *   recurrent:  per block of tokens, their normalisers, then one pass over the state (kept in
 *               L1): S_i += k_t[i]·v_t, y_t += q_t[i]·S_i, tokens in order (la_linrec_cols),
 *               in column blocks of la_linrec_block (32 on AVX-512: two vectors, measured
 *               faster per column than four).  Threads split the dv columns of the state
 *               (independent; whole cache lines each); each block computes the normalisers
 *               of each few tokens just before it needs them (see REC_SIDE).  On a long
 *               sequence the rows come from memory: on one thread the first block of a batch
 *               fetches the next batch's rows of Q and K as it goes, and every block the rows
 *               of V and Y of its next few tokens (la_linrec_cols); with threads only a fused
 *               map's raw rows are fetched ahead (the others measured slower there), each
 *               thread's state lies in its own buffers behind a page guard, and Y is written
 *               with non-temporal stores (see REC_SIDE: two cores' prefetchers otherwise
 *               fetch each other's lines).
 *   chunked:    per chunk of C rows, Y_c = Q_c·S + tril(Q_c K_cᵀ)·V_c (the upper triangle is
 *               skipped, only the diagonal register blocks are masked), then S += K_cᵀV_c.
 *               C comes from attn_default_chunk (measured on two machines).
 *               Threads: L2-sized segments of chunks, as many per thread, each claimed by the
 *               next free thread; a thread computes its segment's U_c = K_cᵀV_c and their
 *               sum, takes the previous segment's end state as soon as it is published,
 *               publishes its own, then runs the segment's outputs advancing by the stored
 *               U_c (see chunked_threads).
 * Fused maps (attention.h, attn_args.fused_map: elu1, relu): q and k hold raw rows, and each
 * kernel maps the rows a block is about to read into its workspace (attn_map_rows, the feature
 * maps' own code, so the output is bit for bit that of the kernel on the map's features): the
 * non-causal kernel a block of NONCAUSAL_BLOCK keys, then of queries; the recurrent one a batch
 * of REC_BATCH queries and keys, once for all its column blocks (with threads, each thread
 * maps every batch itself: threads split columns, not tokens), its first block fetching the
 * next batch's raw rows as it goes; the chunked one each chunk's rows, or with threads a
 * segment's rows once for its two passes.  Efficiency stays counted on the kernel's nominal
 * flops: the map's are not counted.
 * Nothing here allocates: workspaces come from the caller (sized by the _ws functions, which
 * account for threads and include the mapped rows whether or not a map is fused).
 * Tests: tests/test_kernels.c against linear_ref.c on every vector path and thread count.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"

#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define NONCAUSAL_BLOCK 256 /* rows per block of the non-causal kernel (L2-sized) */
/* The non-causal kernel fetches each next block's rows during a block's GEMM when the call
 * streams more than this many bytes of rows (Q, K, V, Y), see the file's comment. */
#define NONCAUSAL_PF_BYTES ((size_t)12 << 20)

/* Rows [t0, t0 + n) of x (a->q or a->k, m = dk columns) as the products read them: the
 * caller's features, or, with a fused map (attn_args.fused_map), their φ written into buf
 * (n·m floats), where the block's products find them in cache. */
static const float *lin_rows(const struct attn_args *a, const float *x, int t0, int n, float *buf)
{
    const float *r = x + (size_t)t0 * a->dk;
    if (a->fused_map == ATTN_MAP_NONE)
        return r;
    attn_map_rows(a->fused_map, a->map_eps, r, buf, (size_t)n * a->dk);
    return buf;
}

/* ---- non-causal: S = φ(K)ᵀV and z = Σ φ(k) first, then Y = φ(Q)·S / (φ(Q)z + eps) ---------- */

/* Per thread: S (m, lds), z (m), inv (one block), a block of mapped rows (fused map).  Thread
 * 0's S and z end up the totals. */
static size_t noncausal_thread_floats(int m, int dv)
{
    return la_pad16((size_t)m * la_pad16((size_t)dv)) + la_pad16((size_t)m) +
           la_pad16(NONCAUSAL_BLOCK) + la_pad16((size_t)NONCAUSAL_BLOCK * m);
}

size_t attn_linear_noncausal_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    return noncausal_thread_floats(dk, dv) * (size_t)(threads > 1 ? threads : 1);
}

/* S = K_rᵀV_r and z = Σ k over rows [t0, t1), by blocks that stay in cache (mapped into mb
 * with a fused map). */
static void noncausal_state(int isa, const struct attn_args *a, int t0, int t1, float *S, int lds,
                            float *z, float *mb, int pf)
{
    const int m = a->dk, dv = a->dv;
    memset(z, 0, (size_t)m * sizeof *z);
    if (t0 >= t1)
        memset(S, 0, (size_t)m * lds * sizeof *S);
    for (int b = t0; b < t1; b += NONCAUSAL_BLOCK) {
        const int n = t1 - b < NONCAUSAL_BLOCK ? t1 - b : NONCAUSAL_BLOCK;
        const float *Kb = lin_rows(a, a->k, b, n, mb);
        /* The next block's rows (none past t1, none without pf). */
        const size_t nn =
            pf ? (size_t)(t1 - b - n < NONCAUSAL_BLOCK ? t1 - b - n : NONCAUSAL_BLOCK) : 0;
        la_gemm_pf(isa, m, dv, n, Kb, 1, m, a->v + (size_t)b * dv, dv, S, lds, 1.0f, NULL, b > t0,
                   a->k + (size_t)(b + n) * m, nn * m * sizeof(float), a->v + (size_t)(b + n) * dv,
                   nn * dv * sizeof(float));
        for (int t = 0; t < n; t++)
            for (int i = 0; i < m; i++)
                z[i] += Kb[(size_t)t * m + i];
    }
}

/* Y rows [t0, t1) = φ(Q)·S / (φ(Q)z + eps), by blocks (mapped into mb with a fused map). */
static long noncausal_out(int isa, const struct attn_args *a, int t0, int t1, const float *S,
                          int lds, const float *z, float *inv, float *mb, int pf)
{
    const int m = a->dk, dv = a->dv;
    long small = 0;
    for (int b = t0; b < t1; b += NONCAUSAL_BLOCK) {
        const int n = t1 - b < NONCAUSAL_BLOCK ? t1 - b : NONCAUSAL_BLOCK;
        const float *Qb = lin_rows(a, a->q, b, n, mb);
        small += la_lin_den(isa, n, m, Qb, NULL, m, a->eps, a->eps_row ? a->eps_row + b : NULL,
                            (float *)z, inv);
        const size_t nn =
            pf ? (size_t)(t1 - b - n < NONCAUSAL_BLOCK ? t1 - b - n : NONCAUSAL_BLOCK) : 0;
        la_gemm_pf(isa, n, dv, m, Qb, m, 1, S, lds, a->y + (size_t)b * dv, dv, 1.0f, inv, 0,
                   a->q + (size_t)(b + n) * m, nn * m * sizeof(float), NULL, 0);
    }
    return small;
}

void attn_linear_noncausal(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const int lds = (int)la_pad16((size_t)dv), nth = a->threads > 1 ? a->threads : 1;
    const size_t per = noncausal_thread_floats(m, dv), sz = (size_t)m * lds;
    float *S = la_align_work(a->work), *z = S + la_pad16(sz), *inv = z + la_pad16((size_t)m);
    float *mb = inv + la_pad16(NONCAUSAL_BLOCK);
    const int pf =
        (size_t)T * (2 * (size_t)m + 2 * (size_t)dv) * sizeof(float) > NONCAUSAL_PF_BYTES;
    if (nth == 1) {
        noncausal_state(isa, a, 0, T, S, lds, z, mb, pf);
        a->n_small_den = noncausal_out(isa, a, 0, T, S, lds, z, inv, mb, pf);
        return;
    }
    long small = 0;
#pragma omp parallel num_threads(nth) reduction(+ : small)
    {
        const int th = omp_get_thread_num(), n = omp_get_num_threads();
        float *Sp = S + per * (size_t)th, *zp = z + per * (size_t)th, *mbp = mb + per * (size_t)th;
        /* Phase 1: partial states over contiguous token ranges. */
        noncausal_state(isa, a, (int)((long)T * th / n), (int)((long)T * (th + 1) / n), Sp, lds, zp,
                        mbp, pf);
#pragma omp barrier
        /* Phase 2: sum the partials into thread 0's, split by elements. */
        const size_t e0 = sz * th / n, e1 = sz * (th + 1) / n;
        for (int s = 1; s < n; s++)
            for (size_t e = e0; e < e1; e++)
                S[e] += S[per * s + e];
        if (th == 0)
            for (int s = 1; s < n; s++)
                for (int i = 0; i < m; i++)
                    z[i] += z[per * s + i];
#pragma omp barrier
        /* Phase 3: output rows, in blocks, split by whole blocks. */
        const int nb = (T + NONCAUSAL_BLOCK - 1) / NONCAUSAL_BLOCK;
        const int b0 = nb * th / n, b1 = nb * (th + 1) / n;
        const int r0 = b0 * NONCAUSAL_BLOCK,
                  r1 = b1 * NONCAUSAL_BLOCK < T ? b1 * NONCAUSAL_BLOCK : T;
        if (r0 < r1)
            small += noncausal_out(isa, a, r0, r1, S, lds, z, inv + per * (size_t)th, mbp, pf);
    }
    a->n_small_den = small;
}

/* ---- causal recurrent --------------------------------------------------------------------- */

/* Threads split the state's columns in whole cache lines (16 floats); the columns are
 * independent, and each thread computes the normalisers as its first column block goes (a
 * short vector pass per 16 token blocks, on rows of Q and K that block is about to read), so
 * threads share nothing until the end.
 * Output rows: when Y's rows start on cache lines and dv is a multiple of 16, every thread's
 * columns are whole lines of Y, and it writes them with non-temporal stores
 * (LA_REC_STREAM_Y).  Each row's lines of one thread still neighbour the next thread's, and
 * a core's hardware prefetchers, following its own stores down Y, fetch the neighbouring lines
 * too: each store of the other thread must then take its line back.  With the two vCPUs on
 * different dies that cost 20% of the time (measured on one VM, AMD EPYC family 25 model 17,
 * T = 16384, m = dv = 64, two threads of 32 columns: 1.55-1.62 ms a call with plain stores,
 * 1.36-1.39 with non-temporal ones or with each thread's Y rows in a private buffer; sharing
 * an L3, 1.34-1.40 either way).  Otherwise the line holding a thread's first output columns
 * also holds the previous thread's last ones; written by both cores token after token, it
 * would bounce between them, so every thread but the first writes its first REC_SIDE columns
 * to a private side buffer, copied into Y after one barrier.
 * Each thread's state slice sits in its own buffers, and every thread's buffers end in a
 * guard of LA_THREAD_GUARD floats (kernel_impl.h), so no prefetch for one thread's state,
 * rewritten every few tokens, reaches another's (the slices side by side cost 8-12% across
 * dies, measured as above). */
#define REC_SIDE 16

#define REC_BATCH 192

/* The threads that run one head: no more than lines of columns (then thread 0 always owns the
 * first block, the one that counts the small normalisers). */
static int rec_threads(int dv, int threads)
{
    const int nlines = (dv + 15) / 16, nreq = threads > 1 ? threads : 1;
    return nreq < nlines ? nreq : nlines;
}

/* Per thread: its state slice (m rows × dv rounded up to 16: the columns a thread runs, all of
 * them when OpenMP gives fewer threads than asked for), z (m), the
 * normalisers' inverses (T), with threads a side buffer (T, REC_SIDE) and the guard, and a
 * batch of mapped query and key rows (fused map; each thread maps its own). */
static size_t rec_thread_floats(int T, int dk, int dv, int nth)
{
    return (size_t)dk * la_pad16((size_t)dv) + la_pad16((size_t)dk) +
           la_pad16((size_t)T) + (nth > 1 ? (size_t)REC_SIDE * (size_t)T + LA_THREAD_GUARD : 0) +
           2 * la_pad16((size_t)REC_BATCH * dk);
}

/* A thread's buffers in its rec_thread_floats at p. */
struct rec_bufs {
    float *S, *z, *inv, *ys, *mq, *mk;
};

static struct rec_bufs rec_bufs_at(float *p, int T, int m, int dv, int nth)
{
    struct rec_bufs b;
    b.S = p;
    b.z = b.S + (size_t)m * la_pad16((size_t)dv);
    b.inv = b.z + la_pad16((size_t)m);
    b.ys = b.inv + la_pad16((size_t)T);
    b.mq = b.ys + (nth > 1 ? (size_t)REC_SIDE * (size_t)T : 0);
    b.mk = b.mq + la_pad16((size_t)REC_BATCH * m);
    return b;
}

size_t attn_linear_causal_recurrent_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const int nth = rec_threads(dv, threads);
    return (size_t)nth * rec_thread_floats(T, dk, dv, nth);
}

/* State columns [c0, c1) over all tokens, in column blocks of la_linrec_block and token
 * batches of REC_BATCH: every block of a column range runs over one batch before the next
 * batch, so the batch's rows of Q and K come from L2 for all but the first block (with a
 * fused map, the batch's rows are mapped into b->mq, b->mk first, once for all blocks).  The
 * first block computes the normalisers (b->z, b->inv: this thread's), the others reuse them.
 * The state of columns [c0, c1) is b->S, column block c at b->S + m·(c − c0).  The first `side`
 * columns go to b->ys (stride REC_SIDE).  alone: the kernel runs on one thread, and prefetches
 * the rows it streams from memory (below); with two threads on one head the same prefetches
 * measured slower (both threads read all of Q and K), so they keep to the fused map's, and Y
 * is written with non-temporal stores (see REC_SIDE).  Returns the small-normaliser count. */
static long rec_columns(int isa, const struct attn_args *a, int c0, int c1,
                        const struct rec_bufs *b, int side, int alone)
{
    const int T = a->T, m = a->dk, dv = a->dv, blk = la_linrec_block(isa);
    float *z = b->z, *inv = b->inv, *ys = b->ys, *S = b->S;
    long small = 0;
    memset(z, 0, (size_t)m * sizeof *z);
    for (int t0 = 0; t0 < T; t0 += REC_BATCH) {
        const int nt = T - t0 < REC_BATCH ? T - t0 : REC_BATCH;
        const float *Qb = lin_rows(a, a->q, t0, nt, b->mq), *Kb = lin_rows(a, a->k, t0, nt, b->mk);
        /* The first block fetches the next batch's rows of q and k as it goes (the next batch
         * reads them in one burst: its normalisers, or with a fused map its map; on a long
         * sequence they come from memory); the rows past T are not touched.  Every block also
         * fetches its next tokens' rows of V and Y when alone. */
        const int pf = (alone || a->fused_map != ATTN_MAP_NONE) && t0 + 2 * REC_BATCH <= T;
        for (int c = c0; c < c1; c += blk) {
            const int nc = c1 - c < blk ? c1 - c : blk;
            const int sb = c - c0 < side ? (c0 + side - c < nc ? c0 + side - c : nc) : 0;
            const size_t next = (size_t)(t0 + REC_BATCH) * m;
            small += la_linrec_cols(isa, nt, m, dv, Qb, Kb, a->v + (size_t)t0 * dv,
                                    a->y + (size_t)t0 * dv, dv,
                                    sb ? ys + (size_t)t0 * REC_SIDE + (c - c0) : NULL, REC_SIDE,
                                    sb, a->eps, a->eps_row ? a->eps_row + t0 : NULL, z, inv + t0,
                                    c > c0, S + (size_t)m * (c - c0), c, nc,
                                    pf && c == c0 ? a->q + next : NULL,
                                    pf && c == c0 ? a->k + next : NULL,
                                    alone ? LA_REC_PF_ROWS : LA_REC_STREAM_Y);
        }
    }
    return small;
}

void attn_linear_causal_recurrent(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const int nlines = (dv + 15) / 16, nth = rec_threads(dv, a->threads);
    const size_t per = rec_thread_floats(T, m, dv, nth);
    float *priv = la_align_work(a->work);
    if (nth == 1) {
        const struct rec_bufs b = rec_bufs_at(priv, T, m, dv, 1);
        memset(b.S, 0, (size_t)m * la_pad16((size_t)dv) * sizeof *b.S);
        a->n_small_den = rec_columns(isa, a, 0, dv, &b, 0, 1);
        return;
    }
    const int aligned = dv % 16 == 0 && ((uintptr_t)a->y & 63) == 0;
    long small = 0;
#pragma omp parallel num_threads(nth)
    {
        const int th = omp_get_thread_num(), n = omp_get_num_threads();
        const struct rec_bufs b = rec_bufs_at(priv + per * (size_t)th, T, m, dv, nth);
        /* Columns of the state: each thread owns whole lines of them. */
        const int c0 = nlines * th / n * 16, c1e = nlines * (th + 1) / n * 16;
        const int c1 = c1e < dv ? c1e : dv;
        const int side = th == 0 || aligned ? 0 : c1 - c0 < 16 ? c1 - c0 : 16;
        if (c0 < c1) {
            /* Zero whole lines: a block's state slice is its width rounded up to the lanes. */
            memset(b.S, 0, (size_t)m * (c1e - c0) * sizeof *b.S);
            const long s = rec_columns(isa, a, c0, c1, &b, side, 0);
            if (c0 == 0)
                small = s; /* every column block counts the same rows: take the first's */
        }
        if (!aligned) { /* the same branch in every thread */
#pragma omp barrier
        }
        for (int t = 0; t < T && side > 0; t++)
            memcpy(a->y + (size_t)t * dv + c0, b.ys + (size_t)t * REC_SIDE,
                   (size_t)side * sizeof *b.ys);
    }
    a->n_small_den = small;
}

/* ---- causal chunked ----------------------------------------------------------------------- */

/* Chunk sizes, GFLOP/s at T = 4096 or 16384, AVX-512 path, 1 thread, C in 16 .. 128 (within ±3% of
 * the best counts as a tie):
 *   Zen 5 (512-bit FMA units): m = dv = 32: best C = 16;  m = dv = 64: 32-48;  m = dv = 128:
 *   32-48;  m = 256, dv = 64: 48.
 *   Zen 4 (AMD EPYC family 25 model 17; 512-bit ops on 256-bit units), T = 4096: m = dv = 32:
 *   C = 16 (24 and 32 3-5% slower);  m = dv = 64: 16-32 (48 5% slower, 64 11%);  m = dv = 128
 *   and m = 256, dv = 64: 24-32 (48 5-10% slower); the chunked backward at m = dv = 64: 24-32
 *   (48 5% slower).
 * The intra-chunk work grows with C (about C·(m + dv)/2 flops per row on top of the 4·m·dv of
 * the state products) while small chunks pay more per-chunk overhead (packing Kᵀ, loading and
 * storing the state tile), so the best C grows slowly with the width.  32 is best or tied on
 * both machines at m = dv = 64 and 128; at m = 256, dv = 64 it is the best on Zen 4, where
 * Zen 5 preferred 48. */
int attn_default_chunk(int m, int dv)
{
    const int w = m > dv ? m : dv;
    return w <= 32 ? 16 : 32;
}

static int chunk_of(const struct attn_args *a)
{
    return a->chunk > 0 ? a->chunk : attn_default_chunk(a->dk, a->dv);
}

/* Chunks per segment with threads (see chunked_threads): a segment's rows of Q, K, V and its
 * U_c, about 4·(C·(2m + dv) + m·dv) bytes a chunk, within SEG_BYTES (half of this machine's
 * 1 MiB L2), and at least one chunk. */
#define SEG_BYTES (512 * 1024)
static int seg_chunks(int C, int m, int dv)
{
    const double per = 4.0 * ((double)C * (2.0 * m + dv) + (double)m * la_pad16((size_t)dv));
    const double L = SEG_BYTES / per;
    return L < 1.0 ? 1 : L > 1024.0 ? 1024 : (int)L;
}

/* Rows of mapped queries and of mapped keys a thread holds (fused map): one chunk's, or with
 * threads a whole segment's (mapped in step (1) of chunked_threads, read again in step (3)). */
static size_t chunk_map_rows(int C, int m, int dv, int threaded)
{
    return (size_t)C * (size_t)(threaded ? seg_chunks(C, m, dv) : 1);
}

/* Per thread: running state (m, lds), z (m), inv (C), packed Kᵀ (m, C up to the widest panel),
 * the score block (mr_max, same width), with threads the segment's sums R (m, lds) and zr (m)
 * and a ring of U_c (seg_chunks of (m, lds)), and the mapped rows Mq, Mk (chunk_map_rows of m
 * each). */
static size_t chunk_thread_floats(int C, int m, int dv, int threaded)
{
    const size_t lds = la_pad16((size_t)dv),
                 cp = ((size_t)C + LA_SIMD_NR_MAX - 1) / LA_SIMD_NR_MAX * LA_SIMD_NR_MAX;
    size_t f = 2 * (size_t)m * lds + 2 * la_pad16((size_t)m) + la_pad16((size_t)C) +
               (size_t)m * cp + LA_SIMD_MR_MAX * cp +
               2 * la_pad16(chunk_map_rows(C, m, dv, threaded) * (size_t)m);
    if (threaded)
        f += (size_t)seg_chunks(C, m, dv) * (size_t)m * lds;
    return f;
}

/* Shared with threads: two slots of a segment's end state (m, lds) and z (m). */
static size_t chunk_shared_floats(int m, int dv)
{
    return 2 * ((size_t)m * la_pad16((size_t)dv) + la_pad16((size_t)m));
}

size_t attn_linear_causal_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const int C = chunk > 0 ? chunk : attn_default_chunk(dk, dv);
    const size_t nth = (size_t)(threads > 1 ? threads : 1);
    return nth * chunk_thread_floats(C, dk, dv, nth > 1) + (nth > 1 ? chunk_shared_floats(dk, dv) : 0);
}

struct chunk_bufs {
    float *S, *z, *inv, *Kt, *A, *R, *zr, *Mq, *Mk, *U;
};

static struct chunk_bufs chunk_bufs_at(float *w, int C, int m, int dv, int threaded)
{
    const size_t lds = la_pad16((size_t)dv),
                 cp = ((size_t)C + LA_SIMD_NR_MAX - 1) / LA_SIMD_NR_MAX * LA_SIMD_NR_MAX;
    struct chunk_bufs b;
    b.S = w;
    b.R = b.S + (size_t)m * lds;
    b.z = b.R + (size_t)m * lds;
    b.zr = b.z + la_pad16((size_t)m);
    b.inv = b.zr + la_pad16((size_t)m);
    b.Kt = b.inv + la_pad16((size_t)C);
    b.A = b.Kt + (size_t)m * cp;
    b.Mq = b.A + LA_SIMD_MR_MAX * cp;
    b.Mk = b.Mq + la_pad16(chunk_map_rows(C, m, dv, threaded) * (size_t)m);
    b.U = b.Mk + la_pad16(chunk_map_rows(C, m, dv, threaded) * (size_t)m);
    return b;
}

/* The rows of q and k of chunk c (n rows from c·C) as the products read them: the caller's
 * features; with a fused map their φ, mapped here into b->Mq, b->Mk, or (seg_mapped) mapped
 * already for the chunks from c0 on, chunk c at (c − c0)·C rows in. */
static void chunk_qk(const struct attn_args *a, int C, int c0, int c, int n,
                     const struct chunk_bufs *b, int seg_mapped, const float **Qc,
                     const float **Kc)
{
    const size_t m = (size_t)a->dk, t0 = (size_t)c * C;
    if (a->fused_map != ATTN_MAP_NONE && seg_mapped) {
        const size_t off = (size_t)(c - c0) * C * m;
        *Qc = b->Mq + off;
        *Kc = b->Mk + off;
        return;
    }
    *Qc = lin_rows(a, a->q, (int)t0, n, b->Mq);
    *Kc = lin_rows(a, a->k, (int)t0, n, b->Mk);
}

/* Outputs of chunks [c0, c1), starting from the state and z in b; with U (not NULL: U_c at
 * U + (c − c0)·m·lds) the state advances by the stored U_c, otherwise by S += K_cᵀV_c.
 * seg_mapped: as chunk_qk's. */
static long chunk_range(int isa, const struct attn_args *a, int C, int c0, int c1,
                        struct chunk_bufs *b, const float *U, int seg_mapped)
{
    const int T = a->T, m = a->dk, dv = a->dv, lds = (int)la_pad16((size_t)dv);
    long small = 0;
    for (int c = c0; c < c1; c++) {
        const int t0 = c * C, n = T - t0 < C ? T - t0 : C;
        const float *Qc, *Kc, *Vc = a->v + (size_t)t0 * dv;
        chunk_qk(a, C, c0, c, n, b, seg_mapped, &Qc, &Kc);
        small += la_lin_den(isa, n, m, Qc, Kc, m, a->eps, a->eps_row ? a->eps_row + t0 : NULL,
                            b->z, b->inv);
        la_linchunk_out(isa, n, m, dv, Qc, Kc, Vc, a->y + (size_t)t0 * dv, b->S, lds, b->inv, b->Kt,
                        b->A);
        if (c + 1 == c1)
            break; /* the state after the last chunk is not needed */
        if (U) {
            const float *Uc = U + (size_t)(c - c0) * m * lds;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < dv; j++)
                    b->S[(size_t)i * lds + j] += Uc[(size_t)i * lds + j];
        } else {
            la_gemm(isa, m, dv, n, Kc, 1, m, Vc, dv, b->S, lds, 1.0f, NULL, 1);
        }
    }
    return small;
}

/* Threads: the chunks cut into segments of at most seg_chunks chunks, their number a multiple
 * of the threads (so that the threads get equal numbers of chunks), claimed in order from a
 * shared counter as threads become free.  For its segment a thread (1) computes U_c = K_cᵀV_c
 * for the segment's chunks into its ring, then their sum R and zr = Σ φ(k) over the segment's
 * rows; (2) waits until segment s − 1 has published its end state, takes it as its start
 * state, and publishes its own end (start + R) at once; (3) runs the segment's outputs,
 * advancing by the stored U_c.  Step (1) of every thread overlaps the others' step (3); only
 * step (2) is ordered, and it is a 16 KB add.  The segment is sized so that its rows of Q, K,
 * V and its U_c stay in L2 from step (1) to step (3).
 * Claiming from a counter, not dealing segments round-robin, keeps a core that runs slower
 * (another guest on its host core) from holding the other back: with a fixed deal the faster
 * thread waits in (2) for each of the slower one's segments, and with more threads than free
 * cores a thread waits for one that has no core.  Measured on one VM (AMD EPYC family 25
 * model 17, 2 vCPUs, m = dv = 64, a driver alternating the builds, medians of 30-60 rounds):
 * two threads, T = 4096 (128 chunks: 11 segments of 12 dealt before, 12 of 10-11 claimed now)
 * 0.534-0.537 → 0.500-0.502 ms; T = 16384 2.29-2.62 ms either way (the host's spread); three
 * threads, T = 16384, 107 → 2.4 ms (with la_wait_at_least's yield). */
static long chunked_threads(int isa, const struct attn_args *a, int C, int nch, int nth,
                            float *work, size_t per)
{
    /* At most the L2 size, and small enough that every thread gets about 4 segments (a
     * short sequence would otherwise be one segment per thread, unevenly cut). */
    const int T = a->T, m = a->dk, dv = a->dv;
    const int Lc = nch / (4 * nth), L2 = seg_chunks(C, m, dv);
    const int L = Lc < 1 ? 1 : Lc < L2 ? Lc : L2;
    const size_t lds = la_pad16((size_t)dv), sz = (size_t)m * lds;
    /* Segment sg is chunks [sg·nch/nseg, (sg + 1)·nch/nseg): at most L chunks each. */
    int nseg = (nch + L - 1) / L;
    nseg = (nseg + nth - 1) / nth * nth;
    nseg = nseg < nch ? nseg : nch;
    float *slot = work + (size_t)nth * per; /* 2 × (end state, end z) */
    atomic_int published;                   /* segments whose end state is in its slot */
    atomic_int claimed;                     /* segments claimed by a thread */
    atomic_init(&published, 0);
    atomic_init(&claimed, 0);
    long small = 0;
#pragma omp parallel num_threads(nth) reduction(+ : small)
    {
        const int th = omp_get_thread_num();
        struct chunk_bufs b = chunk_bufs_at(work + (size_t)th * per, C, m, dv, 1);
        for (int sg = atomic_fetch_add_explicit(&claimed, 1, memory_order_relaxed); sg < nseg;
             sg = atomic_fetch_add_explicit(&claimed, 1, memory_order_relaxed)) {
            const int c0 = (int)((long)nch * sg / nseg), c1 = (int)((long)nch * (sg + 1) / nseg);
            const int last = sg + 1 == nseg; /* nobody needs its end state */
            const int r0 = c0 * C, nr = (c1 * C < T ? c1 * C : T) - r0;
            /* With a fused map, the segment's rows of q and k, mapped once for (1) and (3). */
            if (a->fused_map != ATTN_MAP_NONE) {
                (void)lin_rows(a, a->q, r0, nr, b.Mq);
                (void)lin_rows(a, a->k, r0, nr, b.Mk);
            }
            /* (1) U_c of my chunks (but the sequence's last) and their sums (not for the last
             * segment: nobody reads its end state). */
            for (int c = c0; c < c1 && !(last && c + 1 == c1); c++) {
                const int t0 = c * C, n = T - t0 < C ? T - t0 : C;
                const float *Qc, *Kc;
                chunk_qk(a, C, c0, c, n, &b, 1, &Qc, &Kc);
                la_gemm(isa, m, dv, n, Kc, 1, m, a->v + (size_t)t0 * dv, dv,
                        b.U + (size_t)(c - c0) * sz, lds, 1.0f, NULL, 0);
            }
            if (!last) {
                la_sum_rows(c1 - c0, sz, b.U, sz, b.R);
                la_sum_rows(nr, (size_t)m,
                            a->fused_map != ATTN_MAP_NONE ? b.Mk : a->k + (size_t)r0 * m, (size_t)m,
                            b.zr);
            }
            /* (2) start = the previous segment's end; publish mine. */
            if (sg == 0) {
                memset(b.S, 0, sz * sizeof *b.S);
                memset(b.z, 0, (size_t)m * sizeof *b.z);
            } else {
                la_wait_at_least(&published, sg);
                const float *ps = slot + (size_t)((sg - 1) & 1) * (sz + la_pad16((size_t)m));
                memcpy(b.S, ps, sz * sizeof *b.S);
                memcpy(b.z, ps + sz, (size_t)m * sizeof *b.z);
            }
            if (!last) {
                float *ns = slot + (size_t)(sg & 1) * (sz + la_pad16((size_t)m));
                for (size_t e = 0; e < sz; e++)
                    ns[e] = b.S[e] + b.R[e];
                for (int i = 0; i < m; i++)
                    ns[sz + i] = b.z[i] + b.zr[i];
                atomic_store_explicit(&published, sg + 1, memory_order_release);
            }
            /* (3) my outputs. */
            small += chunk_range(isa, a, C, c0, c1, &b, b.U, 1);
        }
    }
    return small;
}

void attn_linear_causal_chunked(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa(), C = chunk_of(a);
    const int nth = a->threads > 1 ? a->threads : 1, nch = (T + C - 1) / C;
    float *const work = la_align_work(a->work);
    if (nth == 1 || nch < 2) {
        struct chunk_bufs b = chunk_bufs_at(work, C, m, dv, 0);
        memset(b.S, 0, (size_t)m * la_pad16((size_t)dv) * sizeof *b.S);
        memset(b.z, 0, (size_t)m * sizeof *b.z);
        a->n_small_den = chunk_range(isa, a, C, 0, nch, &b, NULL, 0);
        return;
    }
    a->n_small_den =
        chunked_threads(isa, a, C, nch, nth, work, chunk_thread_floats(C, m, dv, 1));
}
