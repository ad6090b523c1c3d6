/* softmax_ref.c — the softmax attention reference in double: readable, no tiling, no SIMD.
 * Every fast softmax kernel and every error metric is measured against it.  The prefill and
 * step references continue a key-value cache (in a plain layout of their own: keys, then values,
 * row by row) and attend over it row by row with the same probabilities.
 * Tests: tests/test_kernels.c (against a direct evaluation of the definition).
 */
#include "attention.h"

#include <math.h>

void attn_softmax_probs(const double *q, const double *K, int n, int d, double *p)
{
    const double scale = 1.0 / sqrt((double)d);
    /* Pass 1: scores and the row max (subtracting it keeps exp() in range). */
    double mx = -INFINITY;
    for (int j = 0; j < n; j++) {
        const double *k = K + (size_t)j * d;
        double s = 0.0;
        for (int c = 0; c < d; c++)
            s += q[c] * k[c];
        p[j] = s * scale;
        if (p[j] > mx)
            mx = p[j];
    }
    /* Pass 2: exponentials and their sum. */
    double sum = 0.0;
    for (int j = 0; j < n; j++) {
        p[j] = exp(p[j] - mx);
        sum += p[j];
    }
    /* Pass 3: normalise. */
    for (int j = 0; j < n; j++)
        p[j] /= sum;
}

/* One query row i: Y_i = Σ_j softmax_j(q_i·k_j / √d) v_j over j < n (n = i+1 when causal). */
static void softmax_row(const double *Q, const double *K, const double *V, double *y, int T,
                        int d, int dv, int causal, int i, double *scores)
{
    const int n = causal ? i + 1 : T;
    attn_softmax_probs(Q + (size_t)i * d, K, n, d, scores);
    /* Pass 4: weighted sum of value rows. */
    for (int c = 0; c < dv; c++)
        y[c] = 0.0;
    for (int j = 0; j < n; j++) {
        const double *v = V + (size_t)j * dv;
        for (int c = 0; c < dv; c++)
            y[c] += scores[j] * v[c];
    }
}

/* Q, K: (T, d); V, Y: (T, dv), row-major.  scores: T doubles of scratch. */
void attn_softmax_ref(const double *Q, const double *K, const double *V, double *Y, int T, int d,
                      int dv, int causal, double *scores)
{
    for (int i = 0; i < T; i++)
        softmax_row(Q, K, V, Y + (size_t)i * dv, T, d, dv, causal, i, scores);
}

/* Only the query rows rows[0..nrows): row rows[r] of the full output goes to Y row r. */
void attn_softmax_ref_rows(const double *Q, const double *K, const double *V, double *Y, int T,
                           int d, int dv, int causal, const int *rows, int nrows, double *scores)
{
    for (int r = 0; r < nrows; r++)
        softmax_row(Q, K, V, Y + (size_t)r * dv, T, d, dv, causal, rows[r], scores);
}

void attn_softmax_prefill_ref(const double *Q, const double *K, const double *V, double *Y, int T,
                              int d, int dv, int pos, int cap, double *state, double *scores)
{
    double *Kc = state, *Vc = state + (size_t)cap * d;
    for (int i = 0; i < T; i++) {
        for (int c = 0; c < d; c++)
            Kc[(size_t)(pos + i) * d + c] = K[(size_t)i * d + c];
        for (int c = 0; c < dv; c++)
            Vc[(size_t)(pos + i) * dv + c] = V[(size_t)i * dv + c];
    }
    for (int i = 0; i < T; i++) {
        const int n = pos + i + 1;
        double *y = Y + (size_t)i * dv;
        attn_softmax_probs(Q + (size_t)i * d, Kc, n, d, scores);
        for (int c = 0; c < dv; c++)
            y[c] = 0.0;
        for (int j = 0; j < n; j++)
            for (int c = 0; c < dv; c++)
                y[c] += scores[j] * Vc[(size_t)j * dv + c];
    }
}

void attn_softmax_step_ref(const double *Q, const double *K, const double *V, double *Y, int B,
                           int d, int dv, int pos, int cap, size_t stride, double *state,
                           double *scores)
{
    for (int b = 0; b < B; b++)
        attn_softmax_prefill_ref(Q + (size_t)b * d, K + (size_t)b * d, V + (size_t)b * dv,
                                 Y + (size_t)b * dv, 1, d, dv, pos, cap, state + b * stride,
                                 scores);
}
