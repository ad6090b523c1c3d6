/* softmax_ref.c — the softmax attention reference in double: readable, no tiling, no SIMD.
 * Every fast softmax kernel and every error metric is measured against it.
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
