/* linear_backward.c — fast fp32 gradients of linear attention w.r.t. the features φ(Q), φ(K)
 * and V, normaliser included (y_i = num_i / den_i, den_i = φ(q_i)ᵀz_i + eps).  The feature
 * map's own backward is not here: these are the gradients a map's backward takes as input.
 * Inputs:  PQ, PK: (T, m); V, dY: (T, dv); outputs dQ, dK: (T, m), dV: (T, dv), row-major.
 * With inv_i = 1/den_i, a_i = dy_i·inv_i, W_i = S_i a_i and b_i = −(φ(q_i)·W_i)·inv_i
 * (= −dy_i·y_i / den_i, so y is never formed):
 *   dφ(q_i) = W_i + b_i z_i
 *   dφ(k_j) = R_j v_j + u_j,   dv_j = R_jᵀ φ(k_j),
 *   R_j = Σ_{i ∈ I(j)} φ(q_i) a_iᵀ (m × dv),  u_j = Σ_{i ∈ I(j)} b_i φ(q_i),
 * with I(j) every row (non-causal) or the rows i >= j (causal).
 *   non-causal: Sᵀ = VᵀΦK and z first, then dQ = (inv ∘ dY) Sᵀ (+ b zᵀ), R and u over blocks
 *               of rows (φ(Q) scaled by inv in a block buffer), dV = ΦK R, dK = V Rᵀ + 1 uᵀ:
 *               five GEMMs of 2·T·m·dv (simd.h's la_gemm).
 *   causal:     the paper's algorithm, as two sweeps over the tokens with O(m·dv) state:
 *               forward, by batches of FB tokens that stay in L2, the normalisers
 *               (la_lin_den), then Sᵀ_i += v_i φ(k_i)ᵀ and W_i = a_iᵀ Sᵀ_i, fused per token by
 *               la_linrec_cols (the forward kernel's recurrent block with dY as queries, V as
 *               keys and φ(K) as values), then a short pass for b_i and the z_i term; reverse,
 *               blocks of RB tokens copied in reverse order (rev_copy; so the same
 *               forward-running block applies): R += φ(q_j)·inv_j dy_jᵀ,
 *               dv_j = φ(k_j)ᵀR; and Rᵀ augmented with the row u, [Rᵀ; uᵀ] += [a_j; b_j] φ(q_j)ᵀ,
 *               dφ(k_j) = [v_j, 1]ᵀ[Rᵀ; uᵀ].  Outputs are written in place through a negative
 *               row stride.  Per-token storage is inv and b (T floats each); no per-token
 *               state.
 *   chunked:    the same two sweeps a chunk of C rows at a time (C as the forward chunked
 *               kernel's, attn_default_chunk), with la_linchunk_out's masked tiles inside a
 *               chunk and GEMM state updates between chunks: forward, dQ_c = (dY_c Sᵀ +
 *               tril(dY_c V_cᵀ) φ(K_c)) scaled by inv, then Sᵀ += V_cᵀφ(K_c) and the b z term;
 *               reverse, the chunk copied in reverse row order (its upper triangle becomes a
 *               lower one), dV_c = φ(K_c) R + triu(φ(K_c) (φ(Q_c)·inv)ᵀ) dY_c and dφ(K_c) =
 *               [V_c, 1][Rᵀ; uᵀ] + triu([V_c, 1][A_c, b_c]ᵀ) φ(Q_c), then R += the chunk's
 *               Σ φ(q)·inv dyᵀ (one GEMM), and [Rᵀ; uᵀ] is R transposed with u += Σ b φ(q)
 *               (ru_from_r: Σ a φ(q)ᵀ is that GEMM's product transposed).  Per-token
 *               storage: inv and b.
 * Work: non-causal 10·T·m·dv flops (five GEMMs); causal 12·T·m·dv (six state products of
 * 2·m·dv a row: two in the forward sweep, four in the reverse); the chunked kernel 10·T·m·dv
 * (the reverse sweep's fourth product is the transpose) plus the triangles, about
 * 3·C·(m + dv) a row (nominal model for all: 8·T·m·dv + 8·T·m, twice the forward's).
 * Threads (a->threads, OpenMP): non-causal, contiguous ranges of NB-row blocks: partial Sᵀ, z,
 * then R, u per thread, each summed across threads between barriers (no extra flops); chunked,
 * each sweep a pipeline over L2-sized segments of chunks, claimed in the sweep's order: a
 * thread computes its segment's per-chunk state products (forward V_cᵀφ(K_c), reverse
 * (φ(Q_c)·inv_c)ᵀdY_c) and their sums, takes the previous segment's end state as soon as it is
 * published, publishes its own, then runs the sweep over its chunks advancing by the stored
 * products (no extra flops; see cb_threads).  One head, T = 16384, m = dv = 64, two vCPUs:
 * 7.7 ms against 13.7 on one thread (1.78×; 1.55–1.87× over twelve runs on a noisy host).
 * The recurrent kernel ignores a->threads (one thread per head; attn_run_heads runs heads in
 * parallel).
 * Nothing here allocates.  Tests: tests/test_kernels.c (every vector path, odd shapes, threads),
 * tests/test_backward.c (extremes, mutations) and `linattn check` against backward_ref.c
 * (harness/cli/check_backward.c).
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"

#include <omp.h>
#include <stdatomic.h>
#include <string.h>

#define NB 256 /* rows per block of the non-causal kernel */
#define RB 48  /* tokens per reversed block of the causal kernel (a multiple of every path's
                  tokens per recurrent pass: 3 on the vector paths, 2 scalar) */
#define FB 192 /* tokens per batch of the causal kernel's forward sweep: the batch's rows of dY,
                  V, φ(K), φ(Q) stay in L2 while every column block of the state runs over them */

/* x·y over n floats, in eight partial sums (vectorised by the compiler). */
static float dot(const float *x, const float *y, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++)
            acc[l] += x[i + l] * y[i + l];
    float s = 0.0f;
    for (; i < n; i++)
        s += x[i] * y[i];
    for (int l = 0; l < 8; l++)
        s += acc[l];
    return s;
}

/* Rows [t0, t1): b_t = −(φ(q_t)·dQ_t)·inv_t and dQ_t += b_t z_t, with z fixed (K = NULL) or
 * z_t = z + Σ_{j<=t} φ(k_j) (z updated). */
static void add_den_term(const float *Q, const float *K, float *dQ, const float *inv, float *b,
                         float *z, int t0, int t1, int m)
{
    for (int t = t0; t < t1; t++) {
        const float *q = Q + (size_t)t * m;
        float *restrict dq = dQ + (size_t)t * m, *restrict zz = z;
        if (K) {
            const float *restrict k = K + (size_t)t * m;
            for (int c = 0; c < m; c++)
                zz[c] += k[c];
        }
        const float bt = -dot(q, dq, m) * inv[t];
        b[t] = bt;
        for (int c = 0; c < m; c++)
            dq[c] += bt * zz[c];
    }
}

/* ---- non-causal ---------------------------------------------------------------------------- */

/* Per thread: Sᵀ (dv × m), R (m × dv), z, u (m) (thread 0's end up the totals), and a block of
 * scaled φ(Q) rows. */
static size_t nc_thread_floats(int m, int dv)
{
    const size_t mv = la_pad16((size_t)m * dv);
    return 2 * mv + 2 * la_pad16((size_t)m) + la_pad16((size_t)NB * m);
}

/* Shared: Rᵀ (dv × m), inv and b (T), then the threads' buffers. */
size_t attn_linear_noncausal_backward_ws(int T, int dk, int dv, int causal, int chunk,
                                         int threads)
{
    const size_t nth = (size_t)(threads > 1 ? threads : 1);
    return la_pad16((size_t)dk * dv) + 2 * la_pad16((size_t)T) + nth * nc_thread_floats(dk, dv);
}

struct nc_bufs {
    float *ST, *R, *z, *u, *Qs;
};

static struct nc_bufs nc_bufs_at(float *w, int m, int dv)
{
    const size_t mv = la_pad16((size_t)m * dv);
    struct nc_bufs b = {w, w + mv, w + 2 * mv, w + 2 * mv + la_pad16((size_t)m), NULL};
    b.Qs = b.u + la_pad16((size_t)m);
    return b;
}

/* Sᵀ = V_rᵀ φ(K_r) and z = Σ φ(k) over rows [r0, r1) (zero for an empty range). */
static void nc_state(int isa, const struct attn_args *a, int r0, int r1, struct nc_bufs *b)
{
    const int m = a->dk, dv = a->dv;
    memset(b->z, 0, (size_t)m * sizeof *b->z);
    if (r0 >= r1)
        memset(b->ST, 0, (size_t)m * dv * sizeof(float));
    for (int t0 = r0; t0 < r1; t0 += NB) {
        const int n = r1 - t0 < NB ? r1 - t0 : NB;
        la_gemm(isa, dv, m, n, a->v + (size_t)t0 * dv, 1, dv, a->k + (size_t)t0 * m, m, b->ST, m,
                1.0f, NULL, t0 > r0);
        for (int t = t0; t < t0 + n; t++)
            for (int c = 0; c < m; c++)
                b->z[c] += a->k[(size_t)t * m + c];
    }
}

/* Rows [r0, r1): the normalisers, dQ = (inv ∘ dY) Sᵀ + b zᵀ with the totals Sᵀ, z; then this
 * range's R = Σ φ(q_t) inv_t dy_tᵀ and u = Σ b_t φ(q_t) into b (zero for an empty range).
 * Returns the small normalisers. */
static long nc_query(int isa, const struct attn_args *a, int r0, int r1, const float *ST,
                     float *z, float *inv, float *bt, struct nc_bufs *b)
{
    const int m = a->dk, dv = a->dv;
    long small = 0;
    memset(b->u, 0, (size_t)m * sizeof *b->u);
    if (r0 >= r1)
        memset(b->R, 0, (size_t)m * dv * sizeof *b->R);
    for (int t0 = r0; t0 < r1; t0 += NB) {
        const int n = r1 - t0 < NB ? r1 - t0 : NB;
        const float *Q = a->q + (size_t)t0 * m;
        small += la_lin_den(isa, n, m, Q, NULL, m, a->eps, a->eps_row ? a->eps_row + t0 : NULL, z,
                            inv + t0);
        la_gemm(isa, n, m, dv, a->grad_y + (size_t)t0 * dv, dv, 1, ST, m,
                a->grad_q + (size_t)t0 * m, m, 1.0f, inv + t0, 0);
        add_den_term(a->q, NULL, a->grad_q, inv, bt, z, t0, t0 + n, m);
        for (int t = 0; t < n; t++) {
            const float *q = Q + (size_t)t * m;
            for (int c = 0; c < m; c++) {
                b->Qs[(size_t)t * m + c] = q[c] * inv[t0 + t];
                b->u[c] += bt[t0 + t] * q[c];
            }
        }
        la_gemm(isa, m, dv, n, b->Qs, 1, m, a->grad_y + (size_t)t0 * dv, dv, b->R, dv, 1.0f,
                NULL, t0 > r0);
    }
    return small;
}

/* Rows [r0, r1): dV = φ(K) R;  dK = V Rᵀ + 1 uᵀ, with the totals. */
static void nc_keys(int isa, const struct attn_args *a, int r0, int r1, const float *R,
                    const float *RT, const float *u)
{
    const int m = a->dk, dv = a->dv, n = r1 - r0;
    if (n <= 0)
        return;
    la_gemm(isa, n, dv, m, a->k + (size_t)r0 * m, m, 1, R, dv, a->grad_v + (size_t)r0 * dv, dv,
            1.0f, NULL, 0);
    la_gemm(isa, n, m, dv, a->v + (size_t)r0 * dv, dv, 1, RT, m, a->grad_k + (size_t)r0 * m, m,
            1.0f, NULL, 0);
    for (int t = r0; t < r1; t++)
        for (int c = 0; c < m; c++)
            a->grad_k[(size_t)t * m + c] += u[c];
}

/* Elements [e0, e1) of dst += the other threads' copies (at dst + s·per, s = 1 .. n−1). */
static void nc_reduce(float *dst, size_t per, int n, size_t e0, size_t e1)
{
    for (int s = 1; s < n; s++)
        for (size_t e = e0; e < e1; e++)
            dst[e] += dst[per * s + e];
}

void attn_linear_noncausal_backward(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const size_t mv = (size_t)m * dv, per = nc_thread_floats(m, dv);
    float *RT = la_align_work(a->work), *inv = RT + la_pad16(mv);
    float *bt = inv + la_pad16((size_t)T), *w0 = bt + la_pad16((size_t)T);
    /* Threads: whole blocks of NB rows each, at most one thread per block. */
    const int nblk = (T + NB - 1) / NB, nreq = a->threads > 1 ? a->threads : 1;
    const int nth = nreq < nblk ? nreq : nblk;
    struct nc_bufs b0 = nc_bufs_at(w0, m, dv);
    if (nth <= 1) {
        nc_state(isa, a, 0, T, &b0);
        a->n_small_den = nc_query(isa, a, 0, T, b0.ST, b0.z, inv, bt, &b0);
        for (int c = 0; c < m; c++)
            for (int e = 0; e < dv; e++)
                RT[(size_t)e * m + c] = b0.R[(size_t)c * dv + e];
        nc_keys(isa, a, 0, T, b0.R, RT, b0.u);
        return;
    }
    long small = 0;
#pragma omp parallel num_threads(nth) reduction(+ : small)
    {
        const int th = omp_get_thread_num(), n = omp_get_num_threads();
        struct nc_bufs b = nc_bufs_at(w0 + per * (size_t)th, m, dv);
        const int r0 = (int)((long)nblk * th / n) * NB, r1e = (int)((long)nblk * (th + 1) / n) * NB;
        const int r1 = r1e < T ? r1e : T;
        const size_t e0 = mv * th / n, e1 = mv * (th + 1) / n;
        /* Partial Sᵀ and z over my rows, summed into thread 0's. */
        nc_state(isa, a, r0, r1, &b);
#pragma omp barrier
        nc_reduce(b0.ST, per, n, e0, e1);
        if (th == 0)
            nc_reduce(b0.z, per, n, 0, (size_t)m);
#pragma omp barrier
        /* My rows of dQ and my partial R and u, from the totals (read only: the non-causal
         * normaliser leaves z as it is). */
        small += nc_query(isa, a, r0, r1, b0.ST, b0.z, inv, bt, &b);
#pragma omp barrier
        nc_reduce(b0.R, per, n, e0, e1);
        if (th == 0)
            nc_reduce(b0.u, per, n, 0, (size_t)m);
#pragma omp barrier
        /* Rᵀ, split by its rows, then my rows of dV and dK. */
        for (int e = dv * th / n; e < dv * (th + 1) / n; e++)
            for (int c = 0; c < m; c++)
                RT[(size_t)e * m + c] = b0.R[(size_t)c * dv + e];
#pragma omp barrier
        nc_keys(isa, a, r0, r1, b0.R, RT, b0.u);
    }
    a->n_small_den = small;
}

/* The reverse sweeps' copy of one block: rows j = t0 .. t0 + n − 1 go to row t0 + n − 1 − j of
 * Kr (φ(k)), Qr (φ(q)), QSr (φ(q)·inv), Gr (dY), VAr ([v, 1]) and ABr ([dy·inv, b]), so that the
 * rows i >= j a row j sees come first.  The rows are read in ascending order (forward streams
 * for the hardware prefetchers), and the next block's rows (the n before t0) are prefetched. */
static void rev_copy(const struct attn_args *a, int t0, int n, const float *inv, const float *bt,
                     float *Kr, float *Qr, float *QSr, float *Gr, float *VAr, float *ABr)
{
    const int m = a->dk, dv = a->dv, dva = dv + 1;
    for (int j = t0; j < t0 + n; j++) {
        const int r = t0 + n - 1 - j;
        const float *restrict q = a->q + (size_t)j * m, *restrict k = a->k + (size_t)j * m;
        const float *restrict g = a->grad_y + (size_t)j * dv, *restrict v = a->v + (size_t)j * dv;
        if (j >= n) {
            for (int c = 0; c < m; c += 16) {
                __builtin_prefetch(q - (size_t)n * m + c);
                __builtin_prefetch(k - (size_t)n * m + c);
            }
            for (int e = 0; e < dv; e += 16) {
                __builtin_prefetch(g - (size_t)n * dv + e);
                __builtin_prefetch(v - (size_t)n * dv + e);
            }
        }
        const float ij = inv[j];
        float *restrict kr = Kr + (size_t)r * m, *restrict qr = Qr + (size_t)r * m;
        float *restrict qs = QSr + (size_t)r * m, *restrict gr = Gr + (size_t)r * dv;
        float *restrict va = VAr + (size_t)r * dva, *restrict ab = ABr + (size_t)r * dva;
        for (int c = 0; c < m; c++) {
            kr[c] = k[c];
            qr[c] = q[c];
            qs[c] = q[c] * ij;
        }
        for (int e = 0; e < dv; e++) {
            gr[e] = g[e];
            va[e] = v[e];
            ab[e] = g[e] * ij;
        }
        va[dv] = 1.0f;
        ab[dv] = bt[j];
    }
}

/* ---- causal: forward sweep for dQ, reverse sweep for dK and dV ---------------------------- */

/* The states Sᵀ (dv × m), R (m × dv), [Rᵀ; uᵀ] ((dv + 1) × m), each with rows padded to 16;
 * z for the normalisers and z for the b z term (m each); inv, b (T); ones (RB); the reversed
 * block: φ(k), φ(q)·inv, φ(q) (RB × m), dY (RB × dv), [v, 1] and [a, b] (RB × (dv + 1)). */
size_t attn_linear_causal_backward_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const size_t m = (size_t)dk, v = (size_t)dv;
    return la_pad16(v * la_pad16(m)) + la_pad16(m * la_pad16(v)) +
           la_pad16((v + 1) * la_pad16(m)) + 2 * la_pad16(m) + 2 * la_pad16((size_t)T) + RB +
           3 * la_pad16(RB * m) + la_pad16(RB * v) + 2 * la_pad16(RB * (v + 1));
}

/* One state of `rows` rows and `cols` columns (slices of la_linrec_block columns at rows·c, as
 * the forward kernel lays it out) over n tokens: Y_t (stride ldy) = Qᵀ_t S_t · inv_t after
 * S += K_t V_tᵀ. */
static void rec_state(int isa, int n, int rows, int cols, const float *Q, const float *K,
                      const float *V, float *Y, ptrdiff_t ldy, const float *inv, float *S)
{
    const int blk = la_linrec_block(isa);
    for (int c = 0; c < cols; c += blk) {
        const int nc = cols - c < blk ? cols - c : blk;
        la_linrec_cols(isa, n, rows, cols, Q, K, V, Y, ldy, NULL, 0, 0, 0.0f, NULL, NULL,
                       (float *)inv, 1, S + (size_t)rows * c, c, nc, NULL, NULL, LA_REC_PF_ROWS);
    }
}

void attn_linear_causal_backward(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv);
    float *ST = la_align_work(a->work), *R = ST + la_pad16((size_t)dv * pm);
    float *RU = R + la_pad16((size_t)m * pv), *z = RU + la_pad16((size_t)(dv + 1) * pm);
    float *zd = z + pm, *inv = zd + pm, *b = inv + la_pad16((size_t)T);
    float *ones = b + la_pad16((size_t)T);
    float *Kr = ones + RB, *QSr = Kr + la_pad16((size_t)RB * m), *Qr = QSr + la_pad16(RB * m);
    float *Gr = Qr + la_pad16((size_t)RB * m), *VAr = Gr + la_pad16((size_t)RB * dv);
    float *ABr = VAr + la_pad16((size_t)RB * (dv + 1));
    /* Forward sweep by batches of FB tokens: the causal normalisers, W_t = Sᵀ_tᵀ dy_t inv_t
     * into dQ, then b_t and the b_t z_t term. */
    memset(z, 0, (size_t)m * sizeof *z);
    memset(zd, 0, (size_t)m * sizeof *zd);
    memset(ST, 0, (size_t)dv * pm * sizeof *ST);
    long small = 0;
    for (int t0 = 0; t0 < T; t0 += FB) {
        const int n = T - t0 < FB ? T - t0 : FB;
        small += la_lin_den(isa, n, m, a->q + (size_t)t0 * m, a->k + (size_t)t0 * m, m, a->eps,
                            a->eps_row ? a->eps_row + t0 : NULL, z, inv + t0);
        rec_state(isa, n, dv, m, a->grad_y + (size_t)t0 * dv, a->v + (size_t)t0 * dv,
                  a->k + (size_t)t0 * m, a->grad_q + (size_t)t0 * m, m, inv + t0, ST);
        add_den_term(a->q, a->k, a->grad_q, inv, b, zd, t0, t0 + n, m);
    }
    a->n_small_den = small;
    /* Reverse sweep, blocks from the end, each copied in reverse token order. */
    for (int i = 0; i < RB; i++)
        ones[i] = 1.0f;
    memset(R, 0, (size_t)m * pv * sizeof *R);
    memset(RU, 0, (size_t)(dv + 1) * pm * sizeof *RU);
    for (int t1 = T; t1 > 0; t1 -= RB) {
        const int n = t1 < RB ? t1 : RB;
        rev_copy(a, t1 - n, n, inv, b, Kr, Qr, QSr, Gr, VAr, ABr);
        /* dv_j = φ(k_j)ᵀ R_j,  R += φ(q_j) inv_j dy_jᵀ. */
        rec_state(isa, n, m, dv, Kr, QSr, Gr, a->grad_v + (size_t)(t1 - 1) * dv, -(ptrdiff_t)dv,
                  ones, R);
        /* dφ(k_j) = [v_j, 1]ᵀ [Rᵀ; uᵀ]_j,  [Rᵀ; uᵀ] += [a_j; b_j] φ(q_j)ᵀ. */
        rec_state(isa, n, dv + 1, m, VAr, ABr, Qr, a->grad_k + (size_t)(t1 - 1) * m,
                  -(ptrdiff_t)m, ones, RU);
    }
}

/* ---- causal chunked: the two sweeps a chunk at a time -------------------------------------- */

/* Per thread (rows of every matrix padded to 16 floats): the forward state Sᵀ (dv × m), the
 * reverse states R (m × dv) and [Rᵀ; uᵀ] ((dv + 1) × m), z for the normalisers and z for the
 * b_t z_t term (m each), ones (C); a chunk copied in reverse order: φ(k), φ(q), φ(q)·inv
 * (C × m), dY (C × dv), [v, 1] and [a, b] (C × (dv + 1)), its output rows (C × max(m, dv));
 * la_linchunk_out's packed panel (max(m, dv + 1) × C rounded up to LA_SIMD_NR_MAX) and score
 * block; and with threads (see cb_threads) a segment's sums (a matrix Ssum and a vector ssum)
 * and its ring of per-chunk products, cb_seg_chunks entries of cb_ring_stride floats: forward
 * U_c = V_cᵀφ(K_c) (dv × m), reverse P_c = (φ(Q_c)·inv_c)ᵀdY_c (m × dv) then p_c = Σ b_t φ(q_t)
 * over the chunk (m). */
struct cb_bufs {
    float *ST, *R, *RU, *z, *zd, *ones, *Kr, *Qr, *QSr, *Gr, *VAr, *ABr, *Yr, *Kt, *A;
    float *Ssum, *ssum, *ring;
};

static size_t cb_panel(int C)
{
    return ((size_t)C + LA_SIMD_NR_MAX - 1) / LA_SIMD_NR_MAX * LA_SIMD_NR_MAX;
}

/* Floats of a per-chunk product with padded rows, Sᵀ's shape (dv × m) or R's (m × dv), the
 * larger; a ring entry is one of them and a vector of m. */
static size_t cb_mat_floats(int m, int dv)
{
    const size_t st = (size_t)dv * la_pad16((size_t)m), r = (size_t)m * la_pad16((size_t)dv);
    return st > r ? st : r;
}

static size_t cb_ring_stride(int m, int dv)
{
    return cb_mat_floats(m, dv) + la_pad16((size_t)m);
}

/* Chunks per segment with threads at most: a segment's rows of φ(Q), φ(K), V and dY and its
 * ring entries, 4·(C·(2m + 2dv) + cb_ring_stride) bytes a chunk, within CB_SEG_BYTES (half of
 * this machine's 1 MiB L2), so that the rows step (1) of cb_threads reads are still in L2 for
 * step (3); at least one chunk. */
#define CB_SEG_BYTES (512 * 1024)
static int cb_seg_chunks(int C, int m, int dv)
{
    const double per = 4.0 * ((double)C * (2.0 * m + 2.0 * dv) + (double)cb_ring_stride(m, dv));
    const double L = CB_SEG_BYTES / per;
    return L < 1.0 ? 1 : L > 1024.0 ? 1024 : (int)L;
}

static size_t cb_thread_floats(int C, int m, int dv, int threaded)
{
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv), c = (size_t)C;
    const size_t w = (size_t)(m > dv + 1 ? m : dv + 1), cp = cb_panel(C);
    size_t f = (size_t)dv * pm + (size_t)m * pv + (size_t)(dv + 1) * pm + 2 * pm + la_pad16(c) +
               3 * la_pad16(c * m) + la_pad16(c * dv) + 2 * la_pad16(c * (dv + 1)) +
               la_pad16(c * (m > dv ? m : dv)) + w * cp + LA_SIMD_MR_MAX * cp;
    if (threaded)
        f += (1 + (size_t)cb_seg_chunks(C, m, dv)) * cb_ring_stride(m, dv);
    return f;
}

static struct cb_bufs cb_bufs_at(float *w, int C, int m, int dv, int threaded)
{
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv), c = (size_t)C;
    const size_t wd = (size_t)(m > dv + 1 ? m : dv + 1), cp = cb_panel(C);
    struct cb_bufs b;
    b.ST = w;
    b.R = b.ST + (size_t)dv * pm;
    b.RU = b.R + (size_t)m * pv;
    b.z = b.RU + (size_t)(dv + 1) * pm;
    b.zd = b.z + pm;
    b.ones = b.zd + pm;
    b.Kr = b.ones + la_pad16(c);
    b.Qr = b.Kr + la_pad16(c * m);
    b.QSr = b.Qr + la_pad16(c * m);
    b.Gr = b.QSr + la_pad16(c * m);
    b.VAr = b.Gr + la_pad16(c * dv);
    b.ABr = b.VAr + la_pad16(c * (dv + 1));
    b.Yr = b.ABr + la_pad16(c * (dv + 1));
    b.Kt = b.Yr + la_pad16(c * (m > dv ? m : dv));
    b.A = b.Kt + wd * cp;
    b.Ssum = b.ssum = b.ring = NULL;
    if (threaded) {
        b.Ssum = b.A + LA_SIMD_MR_MAX * cp;
        b.ssum = b.Ssum + cb_mat_floats(m, dv);
        b.ring = b.Ssum + cb_ring_stride(m, dv);
    }
    return b;
}

static int cb_chunk(const struct attn_args *a)
{
    return a->chunk > 0 ? a->chunk : attn_default_chunk(a->dk, a->dv);
}

/* Shared: inv and b (T each), then the threads' buffers, then with threads two slots of a
 * segment's end state (cb_threads), each a matrix and a vector as a ring entry. */
size_t attn_linear_causal_chunked_backward_ws(int T, int dk, int dv, int causal, int chunk,
                                              int threads)
{
    const int C = chunk > 0 ? chunk : attn_default_chunk(dk, dv);
    const size_t nth = (size_t)(threads > 1 ? threads : 1);
    return 2 * la_pad16((size_t)T) + nth * cb_thread_floats(C, dk, dv, nth > 1) +
           (nth > 1 ? 2 * cb_ring_stride(dk, dv) : 0);
}

/* Rows [0, rows) and columns [0, cols) of D (row stride ld) += those of X (same layout). */
static void cb_add(float *D, const float *X, int rows, int cols, size_t ld)
{
    for (int i = 0; i < rows; i++) {
        float *restrict d = D + (size_t)i * ld;
        const float *restrict x = X + (size_t)i * ld;
        for (int j = 0; j < cols; j++)
            d[j] += x[j];
    }
}

/* Forward sweep over chunks [c0, c1) from the state in b (Sᵀ, z, zd: the sums over the earlier
 * chunks): per chunk its normalisers, W_c = (tril(dY_c V_cᵀ) φ(K_c) + dY_c Sᵀ) scaled by inv
 * (la_linchunk_out with dY as queries, V as keys, φ(K) as values) into dQ, Sᵀ += V_cᵀφ(K_c)
 * (a GEMM, or with U not NULL the stored U_c of ring entry c − c0), then b_t and the b_t z_t
 * term.  Returns the small normalisers. */
static long cb_forward(int isa, const struct attn_args *a, int C, int c0, int c1, struct cb_bufs *b,
                       float *inv, float *bt, const float *U)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    const ptrdiff_t pm = (ptrdiff_t)la_pad16((size_t)m);
    long small = 0;
    for (int c = c0; c < c1; c++) {
        const int t0 = c * C, n = T - t0 < C ? T - t0 : C;
        const float *Kc = a->k + (size_t)t0 * m, *Vc = a->v + (size_t)t0 * dv;
        small += la_lin_den(isa, n, m, a->q + (size_t)t0 * m, Kc, m, a->eps,
                            a->eps_row ? a->eps_row + t0 : NULL, b->z, inv + t0);
        la_linchunk_out(isa, n, dv, m, a->grad_y + (size_t)t0 * dv, Vc, Kc,
                        a->grad_q + (size_t)t0 * m, b->ST, pm, inv + t0, b->Kt, b->A);
        if (c + 1 < c1) {
            if (U)
                cb_add(b->ST, U + (size_t)(c - c0) * cb_ring_stride(m, dv), dv, m, (size_t)pm);
            else
                la_gemm(isa, dv, m, n, Vc, 1, dv, Kc, m, b->ST, pm, 1.0f, NULL, 1);
        }
        add_den_term(a->q, a->k, a->grad_q, inv, bt, b->zd, t0, t0 + n, m);
    }
    return small;
}

/* [Rᵀ; uᵀ] after R has advanced by a chunk of n reversed rows: its first dv rows are R
 * transposed (Σ a_i φ(q_i)ᵀ is (Σ φ(q_i) inv_i dy_iᵀ)ᵀ: the same products, so one GEMM
 * advances both), its last row u += Σ b_i φ(q_i) over the chunk (pu, or with pu NULL summed
 * here from the chunk's reversed rows). */
static void ru_from_r(struct cb_bufs *b, const float *pu, int n, int m, int dv)
{
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv);
    for (int e = 0; e < dv; e++)
        for (int i = 0; i < m; i++)
            b->RU[(size_t)e * pm + i] = b->R[(size_t)i * pv + e];
    float *restrict u = b->RU + (size_t)dv * pm;
    if (pu) {
        for (int i = 0; i < m; i++)
            u[i] += pu[i];
        return;
    }
    for (int r = 0; r < n; r++) {
        const float br = b->ABr[(size_t)r * (dv + 1) + dv];
        const float *restrict q = b->Qr + (size_t)r * m;
        for (int i = 0; i < m; i++)
            u[i] += br * q[i];
    }
}

/* Reverse sweep over chunks c1 − 1 down to c0 from the state in b (R, [Rᵀ; uᵀ]: the sums over
 * the later rows).  Each chunk is copied in reverse row order, so that the rows i >= j a key
 * row j sees are a lower triangle and la_linchunk_out applies:
 *   dv_j = φ(k_j)ᵀR + Σ_{i>=j in c} (φ(k_j)·φ(q_i) inv_i) dy_i,
 *   dφ(k_j) = [v_j, 1]ᵀ[Rᵀ; uᵀ] + Σ_{i>=j in c} ([v_j, 1]·[a_i, b_i]) φ(q_i),
 * then R += Σ φ(q_i) inv_i dy_iᵀ (a GEMM, or with P not NULL the stored P_c of ring entry
 * c − c0), [Rᵀ; uᵀ] += Σ [a_i; b_i] φ(q_i)ᵀ (ru_from_r, with the stored p_c). */
static void cb_reverse(int isa, const struct attn_args *a, int C, int c0, int c1, struct cb_bufs *b,
                       const float *inv, const float *bt, const float *P)
{
    const int T = a->T, m = a->dk, dv = a->dv, dva = dv + 1;
    const ptrdiff_t pm = (ptrdiff_t)la_pad16((size_t)m), pv = (ptrdiff_t)la_pad16((size_t)dv);
    for (int c = c1 - 1; c >= c0; c--) {
        const int t0 = c * C, n = T - t0 < C ? T - t0 : C;
        rev_copy(a, t0, n, inv, bt, b->Kr, b->Qr, b->QSr, b->Gr, b->VAr, b->ABr);
        la_linchunk_out(isa, n, m, dv, b->Kr, b->QSr, b->Gr, b->Yr, b->R, pv, b->ones, b->Kt,
                        b->A);
        for (int r = 0; r < n; r++)
            memcpy(a->grad_v + (size_t)(t0 + n - 1 - r) * dv, b->Yr + (size_t)r * dv,
                   (size_t)dv * sizeof(float));
        la_linchunk_out(isa, n, dva, m, b->VAr, b->ABr, b->Qr, b->Yr, b->RU, pm, b->ones, b->Kt,
                        b->A);
        for (int r = 0; r < n; r++)
            memcpy(a->grad_k + (size_t)(t0 + n - 1 - r) * m, b->Yr + (size_t)r * m,
                   (size_t)m * sizeof(float));
        if (c == c0)
            break; /* the state before the first chunk is not needed */
        if (P) {
            const float *Pc = P + (size_t)(c - c0) * cb_ring_stride(m, dv);
            cb_add(b->R, Pc, m, dv, (size_t)pv);
            ru_from_r(b, Pc + cb_mat_floats(m, dv), n, m, dv);
        } else {
            la_gemm(isa, m, dv, n, b->QSr, 1, m, b->Gr, dv, b->R, pv, 1.0f, NULL, 1);
            ru_from_r(b, NULL, n, m, dv);
        }
    }
}

/* Step (1) of a forward segment, chunks [c0, c1): U_c = V_cᵀφ(K_c) into ring entry c − c0,
 * then their sum into b->Ssum (dv × m) and Σ φ(k) over the segment's rows into b->ssum. */
static void cb_products_forward(int isa, const struct attn_args *a, int C, int c0, int c1,
                                struct cb_bufs *b)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    const size_t pm = la_pad16((size_t)m), rs = cb_ring_stride(m, dv);
    for (int c = c0; c < c1; c++) {
        const int t0 = c * C, n = T - t0 < C ? T - t0 : C;
        la_gemm(isa, dv, m, n, a->v + (size_t)t0 * dv, 1, dv, a->k + (size_t)t0 * m, m,
                b->ring + (size_t)(c - c0) * rs, (ptrdiff_t)pm, 1.0f, NULL, 0);
    }
    const int r0 = c0 * C, r1 = c1 * C < T ? c1 * C : T;
    la_sum_rows(c1 - c0, (size_t)dv * pm, b->ring, rs, b->Ssum);
    la_sum_rows(r1 - r0, (size_t)m, a->k + (size_t)r0 * m, (size_t)m, b->ssum);
}

/* Step (1) of a reverse segment, chunks [c0, c1) (inv and b of their rows written): P_c =
 * (φ(Q_c)·inv_c)ᵀdY_c and p_c = Σ b_t φ(q_t) into ring entry c − c0 (φ(q)·inv formed in
 * b->QSr), then their sums into b->Ssum (m × dv) and b->ssum (laid out as a ring entry). */
static void cb_products_reverse(int isa, const struct attn_args *a, int C, int c0, int c1,
                                struct cb_bufs *b, const float *inv, const float *bt)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    const size_t pv = la_pad16((size_t)dv), rs = cb_ring_stride(m, dv);
    for (int c = c0; c < c1; c++) {
        const int t0 = c * C, n = T - t0 < C ? T - t0 : C;
        float *Pc = b->ring + (size_t)(c - c0) * rs, *restrict pc = Pc + cb_mat_floats(m, dv);
        memset(pc, 0, (size_t)m * sizeof(float));
        for (int r = 0; r < n; r++) {
            const float *restrict q = a->q + (size_t)(t0 + r) * m;
            float *restrict qs = b->QSr + (size_t)r * m;
            const float ij = inv[t0 + r], bj = bt[t0 + r];
            for (int e = 0; e < m; e++) {
                qs[e] = q[e] * ij;
                pc[e] += bj * q[e];
            }
        }
        la_gemm(isa, m, dv, n, b->QSr, 1, m, a->grad_y + (size_t)t0 * dv, dv, Pc, (ptrdiff_t)pv,
                1.0f, NULL, 0);
    }
    la_sum_rows(c1 - c0, cb_mat_floats(m, dv) + (size_t)m, b->ring, rs, b->Ssum);
}

/* Threads: each sweep runs over nseg segments of about L chunks, a pipeline in the order of the
 * sweep, with no state products beyond the one-thread form's.  L is cb_seg_chunks (L2-sized),
 * or less so that every thread gets about 4 segments; nseg is rounded up to a multiple of the
 * threads (at most one segment a chunk), and segment s covers chunks [s·nch/nseg,
 * (s + 1)·nch/nseg), so the threads get equal numbers of chunks.  A thread claims the next
 * segment of the sweep (an atomic counter) whenever it has finished one, so fewer threads than
 * asked for still run every segment, and for it:
 *   (1) computes its per-chunk products into its ring and their sums (forward: U_c =
 *       V_cᵀφ(K_c) and Σ φ(k); reverse: P_c = (φ(Q_c)·inv_c)ᵀdY_c and p_c = Σ b_t φ(q_t));
 *   (2) waits until the segment before it in the sweep has published its end state (in one of
 *       two slots, by the parity of the segment's place in the sweep), takes it as its start
 *       state (forward Sᵀ, z; reverse R, u), and publishes start + sums at once;
 *   (3) runs the sweep over its chunks (cb_forward, cb_reverse), advancing the state by the
 *       stored products instead of a GEMM.
 * The forward sweep goes up from segment 0, the reverse sweep down from segment nseg − 1, after
 * a barrier (every row's inv and b written).  The last segment of each sweep has no successor:
 * it skips (1) and (3) advances by GEMMs.  Step (1) of one thread overlaps the others' step
 * (3); only step (2), an add of 16 KB at m = dv = 64, is ordered.
 * Measured on one VM (AMD EPYC, two vCPUs, one head, m = dv = 64, C = 32: L = 10, 52 segments
 * at T = 16384), in one process alternating this form and the one it replaced (the states
 * entering contiguous ranges of chunks summed by a first pass over the other ranges, +2·m·dv
 * flops a row over half the rows per sweep), medians of blocks of best-of-3 calls, twelve runs:
 * T = 16384, 8.10 → 7.74 ms (1.68× → 1.78× over 13.7 ms on one thread; faster in every run, by
 * 4% at the median); T = 4096, 1.64 → 1.64 ms (1.80× → 1.81×; faster in ten runs, 7–9% slower
 * in two).  Per thread at T = 16384: forward (1) 0.85 ms + (3) 1.67, as one thread's forward
 * sweep halved (2.50); reverse (1) 0.92 + (3) 3.49, against 4.28 halved; step (2) 0.07–0.10 ms a
 * sweep (taking and publishing the states, their lines written by the other core).  Segments
 * of 6 or 14 chunks were no faster. */
static long cb_threads(int isa, const struct attn_args *a, int C, int nch, int nth, float *w0,
                       size_t per, float *inv, float *bt)
{
    const int m = a->dk, dv = a->dv;
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv);
    const size_t mat = cb_mat_floats(m, dv), rs = cb_ring_stride(m, dv);
    const int Lc = nch / (4 * nth), L2 = cb_seg_chunks(C, m, dv);
    const int L = Lc < 1 ? 1 : Lc < L2 ? Lc : L2;
    const int nseg0 = (nch + L - 1) / L, nsegr = (nseg0 + nth - 1) / nth * nth;
    const int nseg = nsegr < nch ? nsegr : nch;
    float *slot = w0 + (size_t)nth * per;      /* 2 × (end state, end vector), rs floats each */
    atomic_int claim_f, claim_r, pub_f, pub_r; /* segments claimed; segments published */
    atomic_init(&claim_f, 0);
    atomic_init(&claim_r, 0);
    atomic_init(&pub_f, 0);
    atomic_init(&pub_r, 0);
    long small = 0;
#pragma omp parallel num_threads(nth) reduction(+ : small)
    {
        const int th = omp_get_thread_num();
        struct cb_bufs b = cb_bufs_at(w0 + per * (size_t)th, C, m, dv, 1);
#define CB_SEG(s) ((int)((long)nch * (s) / nseg))
        for (int i = 0; i < C; i++)
            b.ones[i] = 1.0f;
        /* Forward sweep: segment sg is the sweep's sg-th. */
        for (int sg; (sg = atomic_fetch_add(&claim_f, 1)) < nseg;) {
            const int c0 = CB_SEG(sg), c1 = CB_SEG(sg + 1), last = sg + 1 == nseg;
            if (!last)
                cb_products_forward(isa, a, C, c0, c1, &b);
            if (sg == 0) {
                memset(b.ST, 0, (size_t)dv * pm * sizeof(float));
                memset(b.z, 0, (size_t)m * sizeof(float));
            } else {
                la_wait_at_least(&pub_f, sg);
                const float *ps = slot + (size_t)((sg - 1) & 1) * rs;
                memcpy(b.ST, ps, (size_t)dv * pm * sizeof(float));
                memcpy(b.z, ps + mat, (size_t)m * sizeof(float));
            }
            if (!last) {
                float *ns = slot + (size_t)(sg & 1) * rs;
                memcpy(ns, b.ST, (size_t)dv * pm * sizeof(float));
                cb_add(ns, b.Ssum, dv, m, pm);
                for (int e = 0; e < m; e++)
                    ns[mat + e] = b.z[e] + b.ssum[e];
                atomic_store_explicit(&pub_f, sg + 1, memory_order_release);
            }
            memcpy(b.zd, b.z, (size_t)m * sizeof(float));
            small += cb_forward(isa, a, C, c0, c1, &b, inv, bt, last ? NULL : b.ring);
        }
#pragma omp barrier
        /* Reverse sweep: the i-th of the sweep is segment nseg − 1 − i; the slots are free
         * again (every forward segment took its start state before the barrier). */
        for (int i; (i = atomic_fetch_add(&claim_r, 1)) < nseg;) {
            const int sg = nseg - 1 - i, c0 = CB_SEG(sg), c1 = CB_SEG(sg + 1), last = sg == 0;
            float *u = b.RU + (size_t)dv * pm;
            if (!last)
                cb_products_reverse(isa, a, C, c0, c1, &b, inv, bt);
            if (i == 0) {
                memset(b.R, 0, (size_t)m * pv * sizeof(float));
                memset(u, 0, (size_t)m * sizeof(float));
            } else {
                la_wait_at_least(&pub_r, i);
                const float *ps = slot + (size_t)((i - 1) & 1) * rs;
                memcpy(b.R, ps, (size_t)m * pv * sizeof(float));
                memcpy(u, ps + mat, (size_t)m * sizeof(float));
            }
            if (!last) {
                float *ns = slot + (size_t)(i & 1) * rs;
                memcpy(ns, b.R, (size_t)m * pv * sizeof(float));
                cb_add(ns, b.Ssum, m, dv, pv);
                for (int e = 0; e < m; e++)
                    ns[mat + e] = u[e] + b.ssum[e];
                atomic_store_explicit(&pub_r, i + 1, memory_order_release);
            }
            for (int e = 0; e < dv; e++)
                for (int c = 0; c < m; c++)
                    b.RU[(size_t)e * pm + c] = b.R[(size_t)c * pv + e];
            cb_reverse(isa, a, C, c0, c1, &b, inv, bt, last ? NULL : b.ring);
        }
#undef CB_SEG
    }
    return small;
}

void attn_linear_causal_chunked_backward(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa(), C = cb_chunk(a);
    const int nch = (T + C - 1) / C, nreq = a->threads > 1 ? a->threads : 1;
    const int nth = nreq < nch ? nreq : nch;
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv);
    float *inv = la_align_work(a->work), *bt = inv + la_pad16((size_t)T);
    float *w0 = bt + la_pad16((size_t)T);
    if (nth > 1) {
        a->n_small_den =
            cb_threads(isa, a, C, nch, nth, w0, cb_thread_floats(C, m, dv, 1), inv, bt);
        return;
    }
    struct cb_bufs b = cb_bufs_at(w0, C, m, dv, 0);
    for (int i = 0; i < C; i++)
        b.ones[i] = 1.0f;
    memset(b.ST, 0, (size_t)dv * pm * sizeof(float));
    memset(b.z, 0, (size_t)m * sizeof(float));
    memset(b.zd, 0, (size_t)m * sizeof(float));
    a->n_small_den = cb_forward(isa, a, C, 0, nch, &b, inv, bt, NULL);
    memset(b.R, 0, (size_t)m * pv * sizeof(float));
    memset(b.RU, 0, (size_t)(dv + 1) * pm * sizeof(float));
    cb_reverse(isa, a, C, 0, nch, &b, inv, bt, NULL);
}
