/* seed_baseline.c — the seed's causal linear attention loop, literally, as a timing baseline
 * (kernel "linear_causal_seed", input ATTN_IN_QK_ELU1; not in attn_kernels[]).
 *   Q, K: (T, d) RAW queries and keys (not features); V, Y: (T, dv), row-major; m = d.
 * Per token t, with the elu+1 feature map applied inside the loop (scalar expf):
 *   φ(k_t), φ(q_t);  S += φ(k_t) v_tᵀ;  z += φ(k_t);  y_t = φ(q_t)ᵀS / (φ(q_t)ᵀz + eps).
 * Plain scalar loops, compiled with the project's flags (-O3 -march=native, so the compiler may
 * vectorise the inner loops by itself) and nothing else: this is what the tuned kernels are
 * measured against (`linattn bench --suite` prints the speedup).  Not for experiments: it
 * computes elu1 features only and the timed kernels take features from featuremaps/.
 * Tests: tests/test_kernels.c compares it with its reference, attn_linear_ref on elu1 features
 * in double (attn_ref_linear_elu1).
 */
#include "attention.h"
#include "kernel_impl.h"

#include <math.h>
#include <string.h>

static float elu1(float x)
{
    return x > 0.0f ? x + 1.0f : expf(x);
}

static size_t seed_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    return (size_t)dk * dv + 3 * (size_t)dk;
}

static void seed_run(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    float *S = a->work, *z = S + (size_t)m * dv, *fk = z + m, *fq = fk + m;
    memset(S, 0, (size_t)m * dv * sizeof *S);
    memset(z, 0, (size_t)m * sizeof *z);
    long small = 0;
    for (int t = 0; t < T; t++) {
        const float *q = a->q + (size_t)t * m, *k = a->k + (size_t)t * m;
        const float *v = a->v + (size_t)t * dv;
        float *y = a->y + (size_t)t * dv;
        for (int i = 0; i < m; i++) {
            fk[i] = elu1(k[i]);
            fq[i] = elu1(q[i]);
        }
        for (int i = 0; i < m; i++)
            for (int c = 0; c < dv; c++)
                S[(size_t)i * dv + c] += fk[i] * v[c];
        for (int i = 0; i < m; i++)
            z[i] += fk[i];
        float den = 0.0f;
        for (int i = 0; i < m; i++)
            den += fq[i] * z[i];
        if (fabsf(den) <= a->eps)
            small++;
        for (int c = 0; c < dv; c++) {
            float num = 0.0f;
            for (int i = 0; i < m; i++)
                num += fq[i] * S[(size_t)i * dv + c];
            y[c] = num / (den + a->eps);
        }
    }
    a->n_small_den = small;
}

const struct attn_kernel attn_linear_causal_seed = {
    .name = "linear_causal_seed",
    .summary = "baseline: the seed's per-token loop, scalar, elu+1 applied inside (takes raw Q, K)",
    .op = ATTN_OP_FORWARD,
    .input = ATTN_IN_QK_ELU1,
    .causal_support = ATTN_CAUSAL_OK,
    .uses_chunk = 0,
    .ref = &attn_ref_linear_elu1,
    .flops = attn_linear_flops,
    .bytes = attn_forward_bytes,
    .workspace = seed_ws,
    .run = seed_run,
};
