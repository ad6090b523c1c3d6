/* linear_decode.c — fast fp32 causal linear attention with a carried state: prefill (the
 * tokens of one sequence appended to its state, an output for each) and step (one token for
 * each of B independent sequences, each with its own state).  The state of one sequence is
 * S (m × dv, row-major, S = Σ_j φ(k_j) v_jᵀ) followed by z (m, z = Σ_j φ(k_j)), as
 * attn_args.state documents; both operations update it in place, token after token:
 *   z += φ(k_t);  den_t = φ(q_t)ᵀz;  S += φ(k_t) v_tᵀ;  y_t = φ(q_t)ᵀS · 1/(den_t + eps),
 * the recurrence of the causal forward kernels (linear.c), so a prefill of P tokens followed by
 * steps reproduces the forward kernel's rows.  Rows with |den_t| <= eps are counted in
 * a->n_small_den.  The per-token loop runs the dv columns innermost (rank-1 update of a state
 * row and accumulation of y in one pass, unit stride, vectorised by the compiler without any
 * reassociation); the state of a sequence is read once per token, from L1 or L2 at the sizes
 * decoding uses.  Nothing here allocates; neither operation needs a workspace.
 * Tests: tests/test_kernels.c (against linear_ref.c's prefill and step references and against
 * the causal forward kernel), `linattn check`.
 */
#include "attention.h"
#include "kernel_impl.h"

#include <math.h>
#include <string.h>

/* One token appended to one state (S: m × dv, z: m); its output into y.  Returns 1 when the
 * normaliser was small. */
static long token_step(const float *restrict q, const float *restrict k, const float *restrict v,
                       float *restrict y, int m, int dv, float *restrict S, float *restrict z,
                       float eps)
{
    float den = 0.0f;
    for (int i = 0; i < m; i++) {
        z[i] += k[i];
        den += q[i] * z[i];
    }
    memset(y, 0, (size_t)dv * sizeof *y);
    for (int i = 0; i < m; i++) {
        const float ki = k[i], qi = q[i];
        float *restrict Si = S + (size_t)i * dv;
        for (int c = 0; c < dv; c++) {
            Si[c] += ki * v[c];
            y[c] += qi * Si[c];
        }
    }
    const float inv = 1.0f / (den + eps);
    for (int c = 0; c < dv; c++)
        y[c] *= inv;
    return fabsf(den) <= eps;
}

size_t attn_linear_decode_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    (void)T, (void)dk, (void)dv, (void)causal, (void)chunk, (void)threads;
    return 0;
}

size_t attn_linear_state_floats(int T, int dk, int dv)
{
    (void)T;
    return (size_t)dk * dv + (size_t)dk;
}

void attn_linear_prefill(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    float *S = a->state, *z = a->state + (size_t)m * dv;
    long small = 0;
    for (int t = 0; t < T; t++)
        small += token_step(a->q + (size_t)t * m, a->k + (size_t)t * m, a->v + (size_t)t * dv,
                            a->y + (size_t)t * dv, m, dv, S, z, a->eps_row ? a->eps_row[t] : a->eps);
    a->n_small_den = small;
}

/* Sequences are independent: with threads they are split between them (each state is written
 * by one thread only). */
void attn_linear_step(struct attn_args *a)
{
    const int B = a->T, m = a->dk, dv = a->dv, nth = a->threads > 1 ? a->threads : 1;
    const size_t sf = attn_linear_state_floats(1, m, dv);
    long small = 0;
#pragma omp parallel for num_threads(nth) if (nth > 1 && B > 1) reduction(+ : small)
    for (int b = 0; b < B; b++) {
        float *S = a->state + (size_t)b * sf, *z = S + (size_t)m * dv;
        small += token_step(a->q + (size_t)b * m, a->k + (size_t)b * m, a->v + (size_t)b * dv,
                            a->y + (size_t)b * dv, m, dv, S, z, a->eps_row ? a->eps_row[b] : a->eps);
    }
    a->n_small_den = small;
}
