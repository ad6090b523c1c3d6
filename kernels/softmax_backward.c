/* softmax_backward.c — fast fp32 gradients of softmax attention (FlashAttention-2's
 * recompute-style backward), never forming the T×T matrix.
 *   Q, K: (T, d); V, dY: (T, dv); outputs dQ, dK: (T, d), dV: (T, dv), row-major.  Scale 1/√d.
 * With P = softmax(scale·QKᵀ) (causal: masked), dP = dY Vᵀ, D_i = dy_i·o_i = Σ_j P_ij dP_ij and
 * dS = P ∘ (dP − D):  dV = Pᵀ dY,  dK = scale·dSᵀ Q,  dQ = scale·dS K.
 *   1. The forward pass, recomputed here (the row needs no saved state from a forward call):
 *      softmax_flash's fused block (simd.h la_softmax_rows) writes the output rows O (into y
 *      when given, else the workspace) and leaves each row's max m_i and sum l_i, from which
 *      lse_i = m_i + log l_i; then D_i = dy_i·o_i.  This costs the forward's 2·T²·(d + dv)
 *      flops on top of the backward's nominal model (which counts only the backward), so the
 *      efficiency this row reports is that of the backward proper times its share of the work.
 *   2. Key tiles of BK keys outside, query blocks of BQ rows inside (dK and dV of the tile stay
 *      in cache while the queries stream): per block, S = scale·Q Kᵀ again (one GEMM per packed
 *      panel), P = exp(S − lse_i) with la_vexpf (entries past a causal row's diagonal are 0,
 *      never exponentiated; P ≤ 1, so scores of any size give no overflow), dP = dY Vᵀ, then
 *      dS in place, and the three accumulating GEMMs (simd.h la_gemm).  Causal: blocks whose
 *      rows all precede the tile are skipped, and a block's tile stops at its last row.
 * Memory: Kᵀ and Vᵀ packed in panels (O(T·(d + dv))), O and lse, D (O(T·dv)), per thread the
 * P and dS tiles (2·BQ·BK) and, for threads after the first, a private dQ (T·d) summed at the
 * end.  Threads (a->threads > 1) split the forward's query blocks, then the key tiles.
 * Tests: tests/test_kernels.c and `linattn check` against backward_ref.c
 * (harness/cli/check_backward.c), on every vector path, with scores of ±1000.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"
#include "vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define BR ATTN_SOFTMAX_BR /* forward: softmax_flash's tiles (kernel_impl.h) */
#define BC ATTN_SOFTMAX_BC
#define BQ 64  /* backward: query rows per block */
#define BK 128 /* backward: keys per tile (a multiple of every path's nr) */

static size_t packed(int T, int cols)
{
    return la_pad16(((size_t)T + LA_SIMD_NR_MAX - 1) / LA_SIMD_NR_MAX * LA_SIMD_NR_MAX * cols);
}

/* Per thread: the forward's score tile and m, l rows, or the backward's P and dS tiles. */
static size_t tile_floats(void)
{
    const size_t fw = la_pad16((size_t)LA_SIMD_MR_MAX * BC) + la_pad16(2 * (size_t)BR);
    const size_t bw = 2 * (size_t)BQ * BK;
    return fw > bw ? fw : bw;
}

static size_t shared_floats(int T, int d, int dv)
{
    return packed(T, d) + packed(T, dv) + la_pad16((size_t)T * dv) + 2 * la_pad16((size_t)T);
}

size_t attn_softmax_flash_backward_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const size_t nth = (size_t)(threads > 1 ? threads : 1);
    return shared_floats(T, dk, dv) + nth * tile_floats() + (nth - 1) * la_pad16((size_t)T * dk);
}

/* Forward query block b: O rows, lse and D of its rows. */
static void forward_block(int isa, const struct attn_args *a, const float *Kp, float *O,
                          float *lse, float *D, float scale, int b, float *w)
{
    const int T = a->T, d = a->dk, dv = a->dv;
    const int i0 = b * BR, rows = T - i0 < BR ? T - i0 : BR;
    float *ml = w + la_pad16((size_t)LA_SIMD_MR_MAX * BC);
    la_softmax_rows(isa, a->q, Kp, a->v, O, T, d, dv, a->causal, scale, i0, rows, BC, w, ml);
    for (int r = 0; r < rows; r++) {
        const int i = i0 + r;
        lse[i] = ml[r] + logf(ml[rows + r]);
        const float *o = O + (size_t)i * dv, *g = a->grad_y + (size_t)i * dv;
        float acc[8] = {0}, s = 0.0f;
        int c = 0;
        for (; c + 8 <= dv; c += 8)
            for (int l = 0; l < 8; l++)
                acc[l] += o[c + l] * g[c + l];
        for (; c < dv; c++)
            s += o[c] * g[c];
        for (int l = 0; l < 8; l++)
            s += acc[l];
        D[i] = s;
    }
}

/* Key tile t over every query block that sees it: dK, dV rows of the tile, dQ into dQ. */
static void backward_tile(int isa, const struct attn_args *a, const float *Kp, const float *Vp,
                          const float *lse, const float *D, float *dQ, float scale, int t,
                          float *P, float *dS)
{
    const int T = a->T, d = a->dk, dv = a->dv, nr = la_simd_nr(isa), causal = a->causal;
    const int j0 = t * BK, nk = T - j0 < BK ? T - j0 : BK;
    for (int i0 = causal ? j0 / BQ * BQ : 0; i0 < T; i0 += BQ) {
        const int nq = T - i0 < BQ ? T - i0 : BQ;
        /* Keys of the tile the block sees: causal, up to its last row. */
        const int nj = causal && i0 + nq - j0 < nk ? i0 + nq - j0 : nk;
        if (nj <= 0)
            continue;
        const int npan = (nj + nr - 1) / nr;
        for (int p = 0; p < npan; p++) {
            const size_t po = (size_t)(j0 / nr + p);
            la_gemm(isa, nq, nr, d, a->q + (size_t)i0 * d, d, 1, Kp + po * d * nr, nr, P + p * nr,
                    BK, scale, NULL, 0);
            la_gemm(isa, nq, nr, dv, a->grad_y + (size_t)i0 * dv, dv, 1, Vp + po * dv * nr, nr,
                    dS + p * nr, BK, 1.0f, NULL, 0);
        }
        for (int r = 0; r < nq; r++) {
            const int i = i0 + r;
            const int n = causal ? (i - j0 + 1 < nj ? i - j0 + 1 : nj) : nj;
            float *pr = P + (size_t)r * BK, *sr = dS + (size_t)r * BK;
            const float l = lse[i], Di = D[i];
            if (n < 0) {
                memset(pr, 0, (size_t)nj * sizeof *pr);
                memset(sr, 0, (size_t)nj * sizeof *sr);
                continue;
            }
            for (int c = 0; c < n; c++)
                pr[c] -= l;
            la_vexpf(pr, pr, (size_t)n);
            for (int c = 0; c < n; c++)
                sr[c] = pr[c] * (sr[c] - Di);
            for (int c = n; c < nj; c++)
                pr[c] = sr[c] = 0.0f;
        }
        /* dV_tile += Pᵀ dY_block;  dK_tile += scale·dSᵀ Q_block;  dQ_block += scale·dS K_tile. */
        la_gemm(isa, nj, dv, nq, P, 1, BK, a->grad_y + (size_t)i0 * dv, dv,
                a->grad_v + (size_t)j0 * dv, dv, 1.0f, NULL, 1);
        la_gemm(isa, nj, d, nq, dS, 1, BK, a->q + (size_t)i0 * d, d, a->grad_k + (size_t)j0 * d,
                d, scale, NULL, 1);
        la_gemm(isa, nq, d, nj, dS, BK, 1, a->k + (size_t)j0 * d, d, dQ + (size_t)i0 * d, d,
                scale, NULL, 1);
    }
}

void attn_softmax_flash_backward(struct attn_args *a)
{
    const int T = a->T, d = a->dk, dv = a->dv, isa = la_simd_isa(), nr = la_simd_nr(isa);
    const int nth = a->threads > 1 ? a->threads : 1;
    const int nfw = (T + BR - 1) / BR, ntiles = (T + BK - 1) / BK, npan = (T + nr - 1) / nr;
    const float scale = 1.0f / sqrtf((float)d);
    float *Kp = la_align_work(a->work), *Vp = Kp + packed(T, d), *Ow = Vp + packed(T, dv);
    float *lse = Ow + la_pad16((size_t)T * dv), *D = lse + la_pad16((size_t)T);
    float *tiles = D + la_pad16((size_t)T), *dQp = tiles + (size_t)nth * tile_floats();
    float *O = a->y ? a->y : Ow;
    const size_t nqd = (size_t)T * d;
    memset(a->grad_q, 0, nqd * sizeof(float));
    memset(a->grad_k, 0, nqd * sizeof(float));
    memset(a->grad_v, 0, (size_t)T * dv * sizeof(float));
    if (nth == 1) {
        la_pack_t(a->k, d, 0, T, d, nr, Kp);
        la_pack_t(a->v, dv, 0, T, dv, nr, Vp);
        for (int b = 0; b < nfw; b++)
            forward_block(isa, a, Kp, O, lse, D, scale, b, tiles);
        for (int t = 0; t < ntiles; t++)
            backward_tile(isa, a, Kp, Vp, lse, D, a->grad_q, scale, t, tiles,
                          tiles + (size_t)BQ * BK);
    } else {
#pragma omp parallel num_threads(nth)
        {
            const int th = omp_get_thread_num(), n = omp_get_num_threads();
            float *w = tiles + tile_floats() * (size_t)th;
            float *dQ = th ? dQp + la_pad16(nqd) * (size_t)(th - 1) : a->grad_q;
            if (th)
                memset(dQ, 0, nqd * sizeof *dQ);
#pragma omp for schedule(static)
            for (int p = 0; p < npan; p++) {
                const int m = T - p * nr < nr ? T - p * nr : nr;
                la_pack_t(a->k, d, p * nr, m, d, nr, Kp + (size_t)p * d * nr);
                la_pack_t(a->v, dv, p * nr, m, dv, nr, Vp + (size_t)p * dv * nr);
            }
#pragma omp for schedule(dynamic, 1)
            for (int bi = 0; bi < nfw; bi++)
                forward_block(isa, a, Kp, O, lse, D, scale, a->causal ? nfw - 1 - bi : bi, w);
            /* Causal: the first key tiles see the most query blocks, so they go first. */
#pragma omp for schedule(dynamic, 1)
            for (int t = 0; t < ntiles; t++)
                backward_tile(isa, a, Kp, Vp, lse, D, dQ, scale, t, w, w + (size_t)BQ * BK);
            /* The implicit barrier above: every private dQ is complete; sum them by rows. */
            const size_t e0 = nqd * th / n, e1 = nqd * (th + 1) / n;
            for (int s = 1; s < n; s++) {
                const float *src = dQp + la_pad16(nqd) * (size_t)(s - 1);
                for (size_t e = e0; e < e1; e++)
                    a->grad_q[e] += src[e];
            }
        }
    }
    a->n_small_den = 0;
}
