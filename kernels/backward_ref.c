/* backward_ref.c — the gradients of softmax and linear attention in double, straight from the
 * definitions (attention.h states them): every pair (i, j) of a query row and a key it sees is
 * visited once and adds its terms to the three gradients, in O(T²·(dk + dv)), with no tiling,
 * no recurrence and no algebra shared with the fast backward kernels they check.
 * Tests: tests/test_backward.c checks both against central finite differences of the forward
 * references (softmax_ref.c, linear_ref.c).
 */
#include "attention.h"

#include <math.h>
#include <string.h>

void attn_softmax_backward_ref(const double *Q, const double *K, const double *V,
                               const double *dY, double *Y, double *dQ, double *dK, double *dV,
                               int T, int d, int dv, int causal, double *scratch)
{
    const double scale = 1.0 / sqrt((double)d);
    double *p = scratch, *ds = scratch + T;
    memset(dK, 0, (size_t)T * d * sizeof *dK);
    memset(dV, 0, (size_t)T * dv * sizeof *dV);
    for (int i = 0; i < T; i++) {
        const int n = causal ? i + 1 : T;
        const double *q = Q + (size_t)i * d, *g = dY + (size_t)i * dv;
        attn_softmax_probs(q, K, n, d, p);
        /* dP_ij = dy_i·v_j and D_i = Σ_j P_ij dP_ij. */
        double D = 0.0;
        for (int j = 0; j < n; j++) {
            const double *v = V + (size_t)j * dv;
            double dp = 0.0;
            for (int c = 0; c < dv; c++)
                dp += g[c] * v[c];
            ds[j] = dp;
            D += p[j] * dp;
        }
        if (Y) {
            double *y = Y + (size_t)i * dv;
            for (int c = 0; c < dv; c++)
                y[c] = 0.0;
            for (int j = 0; j < n; j++)
                for (int c = 0; c < dv; c++)
                    y[c] += p[j] * V[(size_t)j * dv + c];
        }
        double *dq = dQ + (size_t)i * d;
        for (int c = 0; c < d; c++)
            dq[c] = 0.0;
        for (int j = 0; j < n; j++) {
            const double s = p[j] * (ds[j] - D); /* dS_ij */
            const double *k = K + (size_t)j * d;
            double *dk = dK + (size_t)j * d, *dvj = dV + (size_t)j * dv;
            for (int c = 0; c < d; c++) {
                dq[c] += scale * s * k[c];
                dk[c] += scale * s * q[c];
            }
            for (int c = 0; c < dv; c++)
                dvj[c] += p[j] * g[c];
        }
    }
}

long attn_linear_backward_ref(const double *PQ, const double *PK, const double *V,
                              const double *dY, double *Y, double *dQ, double *dK, double *dV,
                              int T, int m, int dv, int causal, double eps, double *scratch)
{
    double *a = scratch;
    long small = 0;
    memset(dK, 0, (size_t)T * m * sizeof *dK);
    memset(dV, 0, (size_t)T * dv * sizeof *dV);
    for (int i = 0; i < T; i++) {
        const int n = causal ? i + 1 : T;
        const double *q = PQ + (size_t)i * m, *g = dY + (size_t)i * dv;
        /* The forward row: num_i = Σ_j s_ij v_j into a, den_i = Σ_j s_ij + eps. */
        double den = 0.0;
        for (int c = 0; c < dv; c++)
            a[c] = 0.0;
        for (int j = 0; j < n; j++) {
            const double *k = PK + (size_t)j * m, *v = V + (size_t)j * dv;
            double s = 0.0;
            for (int f = 0; f < m; f++)
                s += q[f] * k[f];
            den += s;
            for (int c = 0; c < dv; c++)
                a[c] += s * v[c];
        }
        if (fabs(den) <= eps)
            small++;
        den += eps;
        /* y_i = num_i / den_i; a_i = dy_i / den_i; b_i = −dy_i·y_i / den_i. */
        double gy = 0.0;
        for (int c = 0; c < dv; c++) {
            const double y = a[c] / den;
            if (Y)
                Y[(size_t)i * dv + c] = y;
            gy += g[c] * y;
            a[c] = g[c] / den;
        }
        const double b = -gy / den;
        double *dq = dQ + (size_t)i * m;
        for (int f = 0; f < m; f++)
            dq[f] = 0.0;
        for (int j = 0; j < n; j++) {
            const double *k = PK + (size_t)j * m, *v = V + (size_t)j * dv;
            double *dk = dK + (size_t)j * m, *dvj = dV + (size_t)j * dv;
            double s = 0.0, cij = b;
            for (int f = 0; f < m; f++)
                s += q[f] * k[f];
            for (int c = 0; c < dv; c++)
                cij += a[c] * v[c];
            for (int f = 0; f < m; f++) {
                dq[f] += cij * k[f];
                dk[f] += cij * q[f];
            }
            for (int c = 0; c < dv; c++)
                dvj[c] += s * a[c];
        }
    }
    return small;
}
