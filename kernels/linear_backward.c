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
 *               forward, the normalisers (la_lin_den), then Sᵀ_i += v_i φ(k_i)ᵀ and
 *               W_i = a_iᵀ Sᵀ_i, fused per token by la_linrec_cols (the forward kernel's
 *               recurrent block with dY as queries, V as keys and φ(K) as values), then a short
 *               pass for b_i and the z_i term; reverse, blocks of RB tokens copied in reverse
 *               order (so the same forward-running block applies): R += φ(q_j)·inv_j dy_jᵀ,
 *               dv_j = φ(k_j)ᵀR; and Rᵀ augmented with the row u, [Rᵀ; uᵀ] += [a_j; b_j] φ(q_j)ᵀ,
 *               dφ(k_j) = [v_j, 1]ᵀ[Rᵀ; uᵀ].  Outputs are written in place through a negative
 *               row stride.  Per-token storage is inv and b (T floats each); no per-token
 *               state.
 * Work: 10·T·m·dv flops in both (nominal model: 8·T·m·dv + 8·T·m, twice the forward's).
 * Threads: a->threads is ignored (one thread per head; attn_run_heads runs heads in parallel).
 * Nothing here allocates.  Tests: tests/test_kernels.c and `linattn check` against
 * backward_ref.c (harness/cli/check_backward.c).
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"

#include <string.h>

#define NB 256 /* rows per block of the non-causal kernel */
#define RB 64  /* tokens per reversed block of the causal kernel */

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

/* Sᵀ (dv × m), R (m × dv), Rᵀ (dv × m), z, u (m), inv, b (T), and a block of scaled φ(Q). */
size_t attn_linear_noncausal_backward_ws(int T, int dk, int dv, int causal, int chunk,
                                         int threads)
{
    const size_t m = (size_t)dk, v = (size_t)dv;
    return 3 * la_pad16(m * v) + 2 * la_pad16(m) + 2 * la_pad16((size_t)T) + la_pad16(NB * m);
}

void attn_linear_noncausal_backward(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const size_t mv = la_pad16((size_t)m * dv);
    float *ST = la_align_work(a->work), *R = ST + mv, *RT = R + mv, *z = RT + mv;
    float *u = z + la_pad16((size_t)m), *inv = u + la_pad16((size_t)m);
    float *b = inv + la_pad16((size_t)T), *Qs = b + la_pad16((size_t)T);
    /* Sᵀ = Vᵀ φ(K), z = Σ φ(k), the normalisers. */
    memset(z, 0, (size_t)m * sizeof *z);
    for (int t0 = 0; t0 < T; t0 += NB) {
        const int n = T - t0 < NB ? T - t0 : NB;
        la_gemm(isa, dv, m, n, a->v + (size_t)t0 * dv, 1, dv, a->k + (size_t)t0 * m, m, ST, m,
                1.0f, NULL, t0 > 0);
        for (int t = t0; t < t0 + n; t++)
            for (int c = 0; c < m; c++)
                z[c] += a->k[(size_t)t * m + c];
    }
    a->n_small_den = la_lin_den(isa, T, m, a->q, NULL, m, a->eps, a->eps_row, z, inv);
    /* dQ = (inv ∘ dY) Sᵀ, then its normaliser term. */
    la_gemm(isa, T, m, dv, a->grad_y, dv, 1, ST, m, a->grad_q, m, 1.0f, inv, 0);
    add_den_term(a->q, NULL, a->grad_q, inv, b, z, 0, T, m);
    /* R = Σ φ(q_t) inv_t dy_tᵀ and u = Σ b_t φ(q_t), by blocks of scaled rows. */
    memset(u, 0, (size_t)m * sizeof *u);
    for (int t0 = 0; t0 < T; t0 += NB) {
        const int n = T - t0 < NB ? T - t0 : NB;
        for (int t = 0; t < n; t++) {
            const float *q = a->q + (size_t)(t0 + t) * m;
            for (int c = 0; c < m; c++) {
                Qs[(size_t)t * m + c] = q[c] * inv[t0 + t];
                u[c] += b[t0 + t] * q[c];
            }
        }
        la_gemm(isa, m, dv, n, Qs, 1, m, a->grad_y + (size_t)t0 * dv, dv, R, dv, 1.0f, NULL,
                t0 > 0);
    }
    for (int c = 0; c < m; c++)
        for (int e = 0; e < dv; e++)
            RT[(size_t)e * m + c] = R[(size_t)c * dv + e];
    /* dV = φ(K) R;  dK = V Rᵀ + 1 uᵀ. */
    la_gemm(isa, T, dv, m, a->k, m, 1, R, dv, a->grad_v, dv, 1.0f, NULL, 0);
    la_gemm(isa, T, m, dv, a->v, dv, 1, RT, m, a->grad_k, m, 1.0f, NULL, 0);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < m; c++)
            a->grad_k[(size_t)t * m + c] += u[c];
}

/* ---- causal: forward sweep for dQ, reverse sweep for dK and dV ---------------------------- */

/* The states Sᵀ (dv × m), R (m × dv), [Rᵀ; uᵀ] ((dv + 1) × m), each with rows padded to 16;
 * z (m); inv, b (T); ones (RB); the reversed block: φ(k), φ(q)·inv, φ(q) (RB × m), dY (RB × dv),
 * [v, 1] and [a, b] (RB × (dv + 1)). */
size_t attn_linear_causal_backward_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const size_t m = (size_t)dk, v = (size_t)dv;
    return la_pad16(v * la_pad16(m)) + la_pad16(m * la_pad16(v)) +
           la_pad16((v + 1) * la_pad16(m)) + la_pad16(m) + 2 * la_pad16((size_t)T) + RB +
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
                       (float *)inv, 1, S + (size_t)rows * c, c, nc, NULL, NULL);
    }
}

void attn_linear_causal_backward(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const size_t pm = la_pad16((size_t)m), pv = la_pad16((size_t)dv);
    float *ST = la_align_work(a->work), *R = ST + la_pad16((size_t)dv * pm);
    float *RU = R + la_pad16((size_t)m * pv), *z = RU + la_pad16((size_t)(dv + 1) * pm);
    float *inv = z + pm, *b = inv + la_pad16((size_t)T), *ones = b + la_pad16((size_t)T);
    float *Kr = ones + RB, *QSr = Kr + la_pad16((size_t)RB * m), *Qr = QSr + la_pad16(RB * m);
    float *Gr = Qr + la_pad16((size_t)RB * m), *VAr = Gr + la_pad16((size_t)RB * dv);
    float *ABr = VAr + la_pad16((size_t)RB * (dv + 1));
    /* Forward sweep: the causal normalisers, then W_t = Sᵀ_tᵀ dy_t inv_t into dQ. */
    memset(z, 0, (size_t)m * sizeof *z);
    a->n_small_den = la_lin_den(isa, T, m, a->q, a->k, m, a->eps, a->eps_row, z, inv);
    memset(ST, 0, (size_t)dv * pm * sizeof *ST);
    rec_state(isa, T, dv, m, a->grad_y, a->v, a->k, a->grad_q, m, inv, ST);
    memset(z, 0, (size_t)m * sizeof *z);
    add_den_term(a->q, a->k, a->grad_q, inv, b, z, 0, T, m);
    /* Reverse sweep, blocks from the end, each copied in reverse token order. */
    for (int i = 0; i < RB; i++)
        ones[i] = 1.0f;
    memset(R, 0, (size_t)m * pv * sizeof *R);
    memset(RU, 0, (size_t)(dv + 1) * pm * sizeof *RU);
    for (int t1 = T; t1 > 0; t1 -= RB) {
        const int n = t1 < RB ? t1 : RB;
        for (int r = 0; r < n; r++) {
            const int j = t1 - 1 - r;
            const float *restrict q = a->q + (size_t)j * m, *restrict g = a->grad_y + (size_t)j * dv;
            const float ij = inv[j];
            float *restrict qs = QSr + (size_t)r * m, *restrict ab = ABr + (size_t)r * (dv + 1);
            memcpy(Kr + (size_t)r * m, a->k + (size_t)j * m, (size_t)m * sizeof *Kr);
            memcpy(Qr + (size_t)r * m, q, (size_t)m * sizeof *Qr);
            memcpy(Gr + (size_t)r * dv, g, (size_t)dv * sizeof *Gr);
            memcpy(VAr + (size_t)r * (dv + 1), a->v + (size_t)j * dv, (size_t)dv * sizeof *VAr);
            for (int c = 0; c < m; c++)
                qs[c] = q[c] * ij;
            for (int e = 0; e < dv; e++)
                ab[e] = g[e] * ij;
            VAr[(size_t)r * (dv + 1) + dv] = 1.0f;
            ab[dv] = b[j];
        }
        /* dv_j = φ(k_j)ᵀ R_j,  R += φ(q_j) inv_j dy_jᵀ. */
        rec_state(isa, n, m, dv, Kr, QSr, Gr, a->grad_v + (size_t)(t1 - 1) * dv, -(ptrdiff_t)dv,
                  ones, R);
        /* dφ(k_j) = [v_j, 1]ᵀ [Rᵀ; uᵀ]_j,  [Rᵀ; uᵀ] += [a_j; b_j] φ(q_j)ᵀ. */
        rec_state(isa, n, dv + 1, m, VAr, ABr, Qr, a->grad_k + (size_t)(t1 - 1) * m,
                  -(ptrdiff_t)m, ones, RU);
    }
}
