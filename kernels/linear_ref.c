/* linear_ref.c — the linear attention reference in double, straight from the definition:
 *   Y_i = Σ_j (φ(q_i)ᵀφ(k_j)) v_j / (Σ_j φ(q_i)ᵀφ(k_j) + eps),  j over all rows or j <= i.
 * O(T²·m): no right-multiply-first, no recurrence, so it shares no algebra with the fast
 * kernels it checks.  Implementation error of a fast kernel = its distance to this; the
 * approximation error of a feature map = this against the softmax reference.
 * Tests: tests/test_kernels.c.
 */
#include "attention.h"

#include <math.h>

/* PQ, PK: (T, m) features; V, Y: (T, dv), row-major.  Returns rows with |normaliser| <= eps. */
long attn_linear_ref(const double *PQ, const double *PK, const double *V, double *Y, int T, int m,
                     int dv, int causal, double eps)
{
    long small = 0;
    for (int i = 0; i < T; i++) {
        const double *q = PQ + (size_t)i * m;
        double *y = Y + (size_t)i * dv;
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
        if (fabs(den) <= eps)
            small++;
        for (int c = 0; c < dv; c++)
            y[c] /= den + eps;
    }
    return small;
}
