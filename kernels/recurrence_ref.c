/* recurrence_ref.c — the double references of the delta, decay and gated recurrences
 * (attention.h, "Recurrences"), token by token from the update rules as written: the state
 * S (m × dv) and, where the rule's normaliser uses it, z (m) are updated in full before the
 * token's output y_t = S_tᵀq_t is read from them.  No blocking, no vector code, no fused
 * passes, so they share nothing with the fp32 kernels they check beyond the definitions.
 * Forward: from a zero state held in scratch; prefill: from attn_ref_args.state; step: B
 * sequences of one token each.  Tests: tests/test_kernels.c (also against a hand-computed case).
 */
#include "attention.h"

#include <math.h>
#include <string.h>

long attn_recur_ref(int update, const double *PQ, const double *PK, const double *V, double *Y,
                    int T, int m, int dv, double eps, const double *gate, double gate_const,
                    int norm, double *state, double *work)
{
    double *S = state, *z = state + (size_t)m * dv;
    double *kh = work, *u = work + m; /* k̂_t (m), and the delta rule's v − Sᵀk̂ (dv) */
    const int den = norm == ATTN_RN_RULE && update != ATTN_UPD_DELTA;
    long small = 0;
    for (int t = 0; t < T; t++) {
        const double *q = PQ + (size_t)t * m, *k = PK + (size_t)t * m, *v = V + (size_t)t * dv;
        double *y = Y + (size_t)t * dv;
        /* Sum normalisation: q̂ = q / (Σq + eps), k̂ = k / (Σk + eps). */
        double qs = 1.0, ksum = 0.0, qsum = 0.0;
        for (int i = 0; i < m; i++) {
            qsum += q[i];
            ksum += k[i];
        }
        for (int i = 0; i < m; i++)
            kh[i] = norm == ATTN_RN_SUM ? k[i] / (ksum + eps) : k[i];
        if (norm == ATTN_RN_SUM) {
            qs = 1.0 / (qsum + eps);
            small += fabs(qsum) <= eps;
        }
        if (update == ATTN_UPD_DELTA) {
            /* S_t = S_{t−1} + β_t k̂_t (v_t − S_{t−1}ᵀk̂_t)ᵀ */
            const double beta = gate ? gate[t] : gate_const;
            for (int c = 0; c < dv; c++) {
                double sk = 0.0;
                for (int i = 0; i < m; i++)
                    sk += S[(size_t)i * dv + c] * kh[i];
                u[c] = v[c] - sk;
            }
            for (int i = 0; i < m; i++)
                for (int c = 0; c < dv; c++)
                    S[(size_t)i * dv + c] += beta * kh[i] * u[c];
        } else {
            /* S_t = diag(a_t) S_{t−1} + k̂_t v_tᵀ, z_t = diag(a_t) z_{t−1} + k_t; a_t = γ
             * (decay) or α_t (gated). */
            for (int i = 0; i < m; i++) {
                const double a = !gate                       ? gate_const
                                 : update == ATTN_UPD_GATED ? gate[(size_t)t * m + i]
                                                            : gate[0];
                for (int c = 0; c < dv; c++)
                    S[(size_t)i * dv + c] = a * S[(size_t)i * dv + c] + kh[i] * v[c];
                if (den)
                    z[i] = a * z[i] + k[i];
            }
        }
        /* y_t = S_tᵀq_t, normalised. */
        for (int c = 0; c < dv; c++) {
            double acc = 0.0;
            for (int i = 0; i < m; i++)
                acc += q[i] * S[(size_t)i * dv + c];
            y[c] = acc * qs;
        }
        if (den) {
            double d = 0.0;
            for (int i = 0; i < m; i++)
                d += q[i] * z[i];
            for (int c = 0; c < dv; c++)
                y[c] /= d + eps;
            small += fabs(d) <= eps;
        }
    }
    return small;
}
