/* linear.c — fast fp32 linear attention: non-causal (right-multiply-first), causal recurrent
 * (the seed's loop, fused), causal chunked (GEMMs per chunk).  Inputs are features:
 *   PQ, PK: (T, m); V, Y: (T, dv), row-major.
 * The normaliser is carried as one extra value column: with v' = [v, 1] the state
 * S' = Σ φ(k) v'ᵀ is m×(dv+1) and its last column is z = Σ φ(k), so numerator and normaliser
 * come out of the same product.  Y_i = num_i / (den_i + eps); rows with |den_i| <= eps are
 * counted in a->n_small_den.  Nothing here allocates: workspaces come from the caller.
 * Tests: tests/test_kernels.c against linear_ref.c.
 */
#include "attention.h"
#include "kernel_impl.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#define NONCAUSAL_BLOCK 256 /* rows per block of the non-causal kernel */

/* Y row = num / (den + eps) for rows of a (rows, ld) block whose column dv is den. */
static long finish_rows(const float *Yp, int ld, float *Y, int rows, int dv, float eps)
{
    long small = 0;
    for (int i = 0; i < rows; i++) {
        const float *src = Yp + (size_t)i * ld;
        float den = src[dv];
        if (fabsf(den) <= eps)
            small++;
        float inv = 1.0f / (den + eps);
        float *dst = Y + (size_t)i * dv;
        for (int c = 0; c < dv; c++)
            dst[c] = src[c] * inv;
    }
    return small;
}

/* Copies rows of V into a (rows, ld) block with a column of ones at dv (zeros after it). */
static void load_v1(const float *V, float *Vp, int ld, int rows, int dv)
{
    for (int i = 0; i < rows; i++) {
        float *dst = Vp + (size_t)i * ld;
        memcpy(dst, V + (size_t)i * dv, (size_t)dv * sizeof *dst);
        dst[dv] = 1.0f;
        for (int c = dv + 1; c < ld; c++)
            dst[c] = 0.0f;
    }
}

/* ---- non-causal: S' = φ(K)ᵀ [V 1] first (m×(dv+1)), then Y' = φ(Q) S' ---------------------- */

size_t attn_linear_noncausal_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    size_t ld = (size_t)dv + 1;
    return la_pad16((size_t)dk * ld) + 2 * la_pad16((size_t)NONCAUSAL_BLOCK * ld);
}

void attn_linear_noncausal(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, ld = dv + 1;
    float *S = a->work;
    float *Vp = S + la_pad16((size_t)m * ld);
    float *Yp = Vp + la_pad16((size_t)NONCAUSAL_BLOCK * ld);
    memset(S, 0, (size_t)m * ld * sizeof *S);
    for (int t0 = 0; t0 < T; t0 += NONCAUSAL_BLOCK) {
        int rows = T - t0 < NONCAUSAL_BLOCK ? T - t0 : NONCAUSAL_BLOCK;
        load_v1(a->v + (size_t)t0 * dv, Vp, ld, rows, dv);
        /* S' += φ(K_blk)ᵀ V'_blk : (m × rows)(rows × ld) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, ld, rows, 1.0f,
                    a->k + (size_t)t0 * m, m, Vp, ld, 1.0f, S, ld);
    }
    long small = 0;
    for (int t0 = 0; t0 < T; t0 += NONCAUSAL_BLOCK) {
        int rows = T - t0 < NONCAUSAL_BLOCK ? T - t0 : NONCAUSAL_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, ld, m, 1.0f,
                    a->q + (size_t)t0 * m, m, S, ld, 0.0f, Yp, ld);
        small += finish_rows(Yp, ld, a->y + (size_t)t0 * dv, rows, dv, a->eps);
    }
    a->n_small_den = small;
}

/* ---- causal recurrent: per token, S'_i += φ(k_t)_i v'_t and y' += φ(q_t)_i S'_i, fused ------ */

size_t attn_linear_causal_recurrent_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    size_t ldp = la_pad16((size_t)dv + 1);
    return (size_t)dk * ldp + 2 * ldp;
}

void attn_linear_causal_recurrent(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    const int ldp = (int)la_pad16((size_t)dv + 1);
    float *S = a->work;                    /* m × ldp state, column dv is z */
    float *vp = S + (size_t)m * ldp;       /* v' = [v, 1, 0...] */
    float *yp = vp + ldp;                  /* y' = [num, den, ...] */
    memset(S, 0, (size_t)m * ldp * sizeof *S);
    memset(vp, 0, (size_t)ldp * sizeof *vp);
    vp[dv] = 1.0f;
    long small = 0;
    for (int t = 0; t < T; t++) {
        const float *k = a->k + (size_t)t * m;
        const float *q = a->q + (size_t)t * m;
        memcpy(vp, a->v + (size_t)t * dv, (size_t)dv * sizeof *vp);
        for (int c = 0; c < ldp; c++)
            yp[c] = 0.0f;
        /* One pass over the state: update row i with the key, then read it with the query. */
        for (int i = 0; i < m; i++) {
            float *Si = S + (size_t)i * ldp;
            const float ki = k[i], qi = q[i];
            for (int c = 0; c < ldp; c++) {
                Si[c] += ki * vp[c];
                yp[c] += qi * Si[c];
            }
        }
        small += finish_rows(yp, ldp, a->y + (size_t)t * dv, 1, dv, a->eps);
    }
    a->n_small_den = small;
}

/* ---- causal chunked: per chunk of C rows, intra-chunk (QKᵀ ⊙ M) V' and inter-chunk Q S' ---- */

int attn_default_chunk(int m, int dv)
{
    (void)m;
    (void)dv;
    return 64;
}

size_t attn_linear_causal_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    size_t C = (size_t)(chunk > 0 ? chunk : attn_default_chunk(dk, dv));
    size_t ld = (size_t)dv + 1;
    return la_pad16((size_t)dk * ld) + la_pad16(C * C) + 2 * la_pad16(C * ld);
}

void attn_linear_causal_chunked(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, ld = dv + 1;
    const int C = a->chunk > 0 ? a->chunk : attn_default_chunk(m, dv);
    float *S = a->work;                             /* m × ld state (last column z) */
    float *A = S + la_pad16((size_t)m * ld);        /* C × C masked scores */
    float *Vp = A + la_pad16((size_t)C * C);        /* C × ld values with ones */
    float *Yp = Vp + la_pad16((size_t)C * ld);      /* C × ld numerators | normaliser */
    memset(S, 0, (size_t)m * ld * sizeof *S);
    long small = 0;
    for (int t0 = 0; t0 < T; t0 += C) {
        const int n = T - t0 < C ? T - t0 : C;
        const float *Qc = a->q + (size_t)t0 * m, *Kc = a->k + (size_t)t0 * m;
        load_v1(a->v + (size_t)t0 * dv, Vp, ld, n, dv);
        /* Inter-chunk: Y' = Q_c S'_prev (state of all earlier chunks). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, ld, m, 1.0f, Qc, m, S, ld,
                    0.0f, Yp, ld);
        /* Intra-chunk: A = Q_c K_cᵀ, keep j <= i, then Y' += A V'_c. */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, m, 1.0f, Qc, m, Kc, m, 0.0f,
                    A, n);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                A[(size_t)i * n + j] = 0.0f;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, ld, n, 1.0f, A, n, Vp, ld,
                    1.0f, Yp, ld);
        /* State update for the next chunks: S' += K_cᵀ V'_c. */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, ld, n, 1.0f, Kc, m, Vp, ld, 1.0f,
                    S, ld);
        small += finish_rows(Yp, ld, a->y + (size_t)t0 * dv, n, dv, a->eps);
    }
    a->n_small_den = small;
}
