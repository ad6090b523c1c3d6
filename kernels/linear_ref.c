/* linear_ref.c — the linear attention reference in double, straight from the definition:
 *   Y_i = Σ_j (φ(q_i)ᵀφ(k_j)) v_j / (Σ_j φ(q_i)ᵀφ(k_j) + eps),  j over all rows or j <= i.
 * O(T²·m): no right-multiply-first, no recurrence, so it shares no algebra with the fast
 * kernels it checks.  Implementation error of a fast kernel = its distance to this; the
 * approximation error of a feature map = this against the softmax reference.  The prefill and
 * step references continue from a carried state (S0, z0): the same sums with S0 and z0 added,
 * and the state after the tokens.
 * Tests: tests/test_kernels.c.
 */
#include "attention.h"

#include <math.h>

/* Row i of the output into y; returns the normaliser φ(q_i)ᵀz_i (before eps). */
static double linear_row(const double *PQ, const double *PK, const double *V, double *y, int T,
                         int m, int dv, int causal, int i, double eps)
{
    const double *q = PQ + (size_t)i * m;
    const int n = causal ? i + 1 : T;
    double den = 0.0;
    for (int c = 0; c < dv; c++)
        y[c] = 0.0;
    for (int j = 0; j < n; j++) {
        const double *k = PK + (size_t)j * m;
        const double *v = V + (size_t)j * dv;
        double w = 0.0;
        for (int f = 0; f < m; f++)
            w += q[f] * k[f];
        den += w;
        for (int c = 0; c < dv; c++)
            y[c] += w * v[c];
    }
    for (int c = 0; c < dv; c++)
        y[c] /= den + eps;
    return den;
}

/* PQ, PK: (T, m) features; V, Y: (T, dv), row-major.  Returns rows with |normaliser| <= eps. */
long attn_linear_ref(const double *PQ, const double *PK, const double *V, double *Y, int T, int m,
                     int dv, int causal, double eps)
{
    long small = 0;
    for (int i = 0; i < T; i++)
        small += fabs(linear_row(PQ, PK, V, Y + (size_t)i * dv, T, m, dv, causal, i, eps)) <= eps;
    return small;
}

long attn_linear_ref_rows(const double *PQ, const double *PK, const double *V, double *Y, int T,
                          int m, int dv, int causal, double eps, const float *eps_row,
                          const int *rows, int nrows)
{
    long small = 0;
    for (int r = 0; r < nrows; r++) {
        const double e = eps_row ? (double)eps_row[rows[r]] : eps;
        small += fabs(linear_row(PQ, PK, V, Y + (size_t)r * dv, T, m, dv, causal, rows[r], e)) <= e;
    }
    return small;
}

long attn_linear_prefill_ref(const double *PQ, const double *PK, const double *V, double *Y,
                             int T, int m, int dv, double eps, double *state)
{
    double *S0 = state, *z0 = state + (size_t)m * dv;
    long small = 0;
    for (int i = 0; i < T; i++) {
        const double *q = PQ + (size_t)i * m;
        double *y = Y + (size_t)i * dv;
        double den = 0.0;
        for (int f = 0; f < m; f++)
            den += q[f] * z0[f];
        for (int c = 0; c < dv; c++) {
            double s = 0.0;
            for (int f = 0; f < m; f++)
                s += q[f] * S0[(size_t)f * dv + c];
            y[c] = s;
        }
        for (int j = 0; j <= i; j++) {
            const double *k = PK + (size_t)j * m, *v = V + (size_t)j * dv;
            double w = 0.0;
            for (int f = 0; f < m; f++)
                w += q[f] * k[f];
            den += w;
            for (int c = 0; c < dv; c++)
                y[c] += w * v[c];
        }
        for (int c = 0; c < dv; c++)
            y[c] /= den + eps;
        small += fabs(den) <= eps;
    }
    for (int j = 0; j < T; j++) {
        const double *k = PK + (size_t)j * m, *v = V + (size_t)j * dv;
        for (int f = 0; f < m; f++) {
            z0[f] += k[f];
            for (int c = 0; c < dv; c++)
                S0[(size_t)f * dv + c] += k[f] * v[c];
        }
    }
    return small;
}

long attn_linear_step_ref(const double *PQ, const double *PK, const double *V, double *Y, int B,
                          int m, int dv, double eps, double *state)
{
    const size_t sf = (size_t)m * dv + (size_t)m;
    long small = 0;
    for (int b = 0; b < B; b++)
        small += attn_linear_prefill_ref(PQ + (size_t)b * m, PK + (size_t)b * m,
                                         V + (size_t)b * dv, Y + (size_t)b * dv, 1, m, dv, eps,
                                         state + (size_t)b * sf);
    return small;
}
