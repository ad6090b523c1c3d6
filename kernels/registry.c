/* registry.c (kernels) — the table of attention kernels (operation, inputs, capabilities,
 * reference, flop and byte models of each), the double references behind one signature, lookup
 * by name and by kind, attn_run_heads (batch × heads with OpenMP), and the public view of the
 * code-path choice (la_env_check, la_simd_path).  Names in the table are the strings written to
 * results files and shown by `linattn list`.  Tests: tests/test_kernels.c checks every field
 * against what the kernel does.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"
#include "vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- references behind one signature ---- */

static size_t no_scratch(int T, int dk, int dv)
{
    (void)T, (void)dk, (void)dv;
    return 0;
}

static size_t softmax_scratch(int T, int dk, int dv)
{
    (void)dk, (void)dv;
    return (size_t)T; /* one row of scores */
}

static void ref_softmax_run(struct attn_ref_args *a)
{
    attn_softmax_ref(a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->causal, a->scratch);
    a->n_small_den = 0;
}

static void ref_linear_run(struct attn_ref_args *a)
{
    a->n_small_den = attn_linear_ref(a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->causal, a->eps);
}

static size_t elu1_scratch(int T, int dk, int dv)
{
    (void)dv;
    return 2 * (size_t)T * dk; /* elu+1(q), elu+1(k) */
}

/* elu+1 of raw q and k in double, then the linear reference on those features. */
static void ref_linear_elu1_run(struct attn_ref_args *a)
{
    const size_t n = (size_t)a->T * a->dk;
    double *pq = a->scratch, *pk = a->scratch + n;
    for (size_t i = 0; i < n; i++) {
        pq[i] = a->q[i] > 0 ? a->q[i] + 1.0 : exp(a->q[i]);
        pk[i] = a->k[i] > 0 ? a->k[i] + 1.0 : exp(a->k[i]);
    }
    a->n_small_den = attn_linear_ref(pq, pk, a->v, a->y, a->T, a->dk, a->dv, a->causal, a->eps);
}

static void ref_linear_prefill_run(struct attn_ref_args *a)
{
    a->n_small_den =
        attn_linear_prefill_ref(a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->eps, a->state);
}

static void ref_linear_step_run(struct attn_ref_args *a)
{
    a->n_small_den =
        attn_linear_step_ref(a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->eps, a->state);
}

/* A KV cache's capacity: cap, or the exact size of the call (attn_args.cap). */
static int cache_cap(int cap, int pos, int T, int step)
{
    return cap > 0 ? cap : pos + (step ? 1 : T);
}

static void ref_softmax_prefill_run(struct attn_ref_args *a)
{
    const int cap = cache_cap(a->cap, a->pos, a->T, 0);
    attn_softmax_prefill_ref(a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->pos, cap, a->state,
                             a->scratch);
    a->n_small_den = 0;
}

static void ref_softmax_step_run(struct attn_ref_args *a)
{
    const int cap = cache_cap(a->cap, a->pos, a->T, 1);
    attn_softmax_step_ref(a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->pos, cap,
                          attn_softmax_cache_floats(cap, a->dk, a->dv), a->state, a->scratch);
    a->n_small_den = 0;
}

/* Backward: the gradients (and y when the caller gives it) from the definitions. */
static size_t softmax_backward_scratch(int T, int dk, int dv)
{
    (void)dk, (void)dv;
    return 2 * (size_t)T; /* one row of weights and one of dS */
}

static void ref_softmax_backward_run(struct attn_ref_args *a)
{
    attn_softmax_backward_ref(a->q, a->k, a->v, a->grad_y, a->y, a->grad_q, a->grad_k, a->grad_v,
                              a->T, a->dk, a->dv, a->causal, a->scratch);
    a->n_small_den = 0;
}

static size_t linear_backward_scratch(int T, int dk, int dv)
{
    (void)T, (void)dk;
    return (size_t)dv; /* one row's numerator, then a_i */
}

static void ref_linear_backward_run(struct attn_ref_args *a)
{
    a->n_small_den = attn_linear_backward_ref(a->q, a->k, a->v, a->grad_y, a->y, a->grad_q,
                                              a->grad_k, a->grad_v, a->T, a->dk, a->dv,
                                              a->causal, a->eps, a->scratch);
}

const struct attn_ref attn_ref_softmax = {"softmax", ATTN_TOL_SOFTMAX, softmax_scratch,
                                          ref_softmax_run};
const struct attn_ref attn_ref_linear = {"linear", ATTN_TOL_LINEAR, no_scratch, ref_linear_run};
const struct attn_ref attn_ref_linear_elu1 = {"linear_elu1", ATTN_TOL_LINEAR, elu1_scratch,
                                              ref_linear_elu1_run};
const struct attn_ref attn_ref_linear_prefill = {"linear_prefill", ATTN_TOL_LINEAR, no_scratch,
                                                 ref_linear_prefill_run};
const struct attn_ref attn_ref_linear_step = {"linear_step", ATTN_TOL_LINEAR, no_scratch,
                                              ref_linear_step_run};
/* Their scratch is one row of scores over the cache: softmax_scratch at the capacity. */
const struct attn_ref attn_ref_softmax_prefill = {"softmax_prefill", ATTN_TOL_SOFTMAX,
                                                  softmax_scratch, ref_softmax_prefill_run};
const struct attn_ref attn_ref_softmax_step = {"softmax_step", ATTN_TOL_SOFTMAX, softmax_scratch,
                                               ref_softmax_step_run};
const struct attn_ref attn_ref_softmax_backward = {"softmax_backward", ATTN_TOL_BACKWARD,
                                                   softmax_backward_scratch,
                                                   ref_softmax_backward_run};
const struct attn_ref attn_ref_linear_backward = {"linear_backward", ATTN_TOL_BACKWARD,
                                                  linear_backward_scratch,
                                                  ref_linear_backward_run};

/* ---- flop and byte models (attention.h states them) ---- */

static double softmax_flops(int T, int dk, int dv, int causal)
{
    const double t = T, k = dk, v = dv;
    return (causal ? 2.0 : 4.0) * t * t * (k + v) / 2.0;
}

double attn_linear_flops(int T, int dk, int dv, int causal)
{
    (void)causal;
    const double t = T, k = dk, v = dv;
    return 4.0 * t * k * v + 4.0 * t * k;
}

double attn_forward_bytes(int T, int dk, int dv, int causal)
{
    (void)causal;
    const double t = T, k = dk, v = dv;
    return sizeof(float) * (2.0 * t * k + 2.0 * t * v); /* q, k, v read; y written */
}

/* Backward: 2.5× softmax's forward model, 2× linear's; q, k, v, grad_y read and the three
 * gradients written once. */
static double softmax_backward_flops(int T, int dk, int dv, int causal)
{
    return 2.5 * softmax_flops(T, dk, dv, causal);
}

static double linear_backward_flops(int T, int dk, int dv, int causal)
{
    return 2.0 * attn_linear_flops(T, dk, dv, causal);
}

static double backward_bytes(int T, int dk, int dv, int causal)
{
    (void)causal;
    const double t = T, k = dk, v = dv;
    return sizeof(float) * (4.0 * t * k + 4.0 * t * v);
}

/* Linear prefill and step (T = B sequences for a step): the tokens' traffic plus each state
 * read and written once. */
static double linear_prefill_bytes(int T, int dk, int dv, int causal)
{
    const double k = dk, v = dv;
    return attn_forward_bytes(T, dk, dv, causal) + 2.0 * sizeof(float) * (k * v + k);
}

static double linear_step_bytes(int T, int dk, int dv, int causal)
{
    const double k = dk, v = dv;
    return attn_forward_bytes(T, dk, dv, causal) + 2.0 * sizeof(float) * T * (k * v + k);
}

/* Softmax prefill and step over a KV cache (attention.h states the models): flops and bytes at
 * pos, and at pos = 0 for the table's flops and bytes. */
static double softmax_prefill_flops_at(int T, int pos, int dk, int dv)
{
    const double t = T, p = pos, k = dk, v = dv;
    return 2.0 * (k + v) * (t * p + t * (t + 1.0) / 2.0);
}

static double softmax_prefill_bytes_at(int T, int pos, int dk, int dv)
{
    const double t = T, p = pos, k = dk, v = dv;
    return attn_forward_bytes(T, dk, dv, 1) + sizeof(float) * (p + t) * (k + v);
}

static double softmax_step_flops_at(int T, int pos, int dk, int dv)
{
    const double b = T, p = pos, k = dk, v = dv;
    return 2.0 * b * (p + 1.0) * (k + v);
}

static double softmax_step_bytes_at(int T, int pos, int dk, int dv)
{
    const double b = T, p = pos, k = dk, v = dv;
    return attn_forward_bytes(T, dk, dv, 1) + sizeof(float) * b * (p + 1.0) * (k + v);
}

static double softmax_prefill_flops(int T, int dk, int dv, int causal)
{
    (void)causal;
    return softmax_prefill_flops_at(T, 0, dk, dv);
}

static double softmax_prefill_bytes(int T, int dk, int dv, int causal)
{
    (void)causal;
    return softmax_prefill_bytes_at(T, 0, dk, dv);
}

static double softmax_step_flops(int T, int dk, int dv, int causal)
{
    (void)causal;
    return softmax_step_flops_at(T, 0, dk, dv);
}

static double softmax_step_bytes(int T, int dk, int dv, int causal)
{
    (void)causal;
    return softmax_step_bytes_at(T, 0, dk, dv);
}

/* ---- recurrences (attention.h, "Recurrences"): references and models ---- */

/* A forward reference's state (S, z) and attn_recur_ref's work. */
static size_t recur_scratch(int T, int dk, int dv)
{
    (void)T;
    return (size_t)dk * dv + 2 * (size_t)dk + (size_t)dv;
}

static size_t recur_prefill_scratch(int T, int dk, int dv)
{
    (void)T;
    return (size_t)dk + (size_t)dv;
}

static void recur_ref_forward(struct attn_ref_args *a, int update)
{
    const size_t sf = (size_t)a->dk * a->dv + a->dk;
    memset(a->scratch, 0, sf * sizeof *a->scratch);
    a->n_small_den = attn_recur_ref(update, a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->eps,
                                    a->gate, a->gate_const, a->recur_norm, a->scratch,
                                    a->scratch + sf);
}

static void recur_ref_prefill(struct attn_ref_args *a, int update)
{
    a->n_small_den = attn_recur_ref(update, a->q, a->k, a->v, a->y, a->T, a->dk, a->dv, a->eps,
                                    a->gate, a->gate_const, a->recur_norm, a->state, a->scratch);
}

/* Sequence b: its token's row of q, k, v, y and of the gate (decay: the head's one γ). */
static void recur_ref_step(struct attn_ref_args *a, int update)
{
    const size_t sf = (size_t)a->dk * a->dv + a->dk;
    const size_t gs = update == ATTN_UPD_GATED ? (size_t)a->dk : update == ATTN_UPD_DELTA;
    long small = 0;
    for (int b = 0; b < a->T; b++)
        small += attn_recur_ref(update, a->q + (size_t)b * a->dk, a->k + (size_t)b * a->dk,
                                a->v + (size_t)b * a->dv, a->y + (size_t)b * a->dv, 1, a->dk,
                                a->dv, a->eps, a->gate ? a->gate + b * gs : NULL, a->gate_const,
                                a->recur_norm, a->state + b * sf, a->scratch);
    a->n_small_den = small;
}

#define LA_RECUR_REFS(rule, UPD)                                                                 \
    static void ref_##rule##_run(struct attn_ref_args *a) { recur_ref_forward(a, UPD); }         \
    static void ref_##rule##_prefill_run(struct attn_ref_args *a) { recur_ref_prefill(a, UPD); } \
    static void ref_##rule##_step_run(struct attn_ref_args *a) { recur_ref_step(a, UPD); }       \
    const struct attn_ref attn_ref_##rule = {#rule, ATTN_TOL_RECUR, recur_scratch,               \
                                             ref_##rule##_run};                                  \
    const struct attn_ref attn_ref_##rule##_prefill = {                                          \
        #rule "_prefill", ATTN_TOL_RECUR, recur_prefill_scratch, ref_##rule##_prefill_run};      \
    const struct attn_ref attn_ref_##rule##_step = {#rule "_step", ATTN_TOL_RECUR,               \
                                                    recur_prefill_scratch, ref_##rule##_step_run};
LA_RECUR_REFS(delta, ATTN_UPD_DELTA)
LA_RECUR_REFS(decay, ATTN_UPD_DECAY)
LA_RECUR_REFS(gated, ATTN_UPD_GATED)
#undef LA_RECUR_REFS

/* Flops (attention.h): delta 6·T·m·dv + 2·T·dv; decay and gated 5·T·m·dv + 4·T·m. */
static double delta_flops(int T, int dk, int dv, int causal)
{
    (void)causal;
    const double t = T, k = dk, v = dv;
    return 6.0 * t * k * v + 2.0 * t * v;
}

static double gate_flops(int T, int dk, int dv, int causal)
{
    (void)causal;
    const double t = T, k = dk, v = dv;
    return 5.0 * t * k * v + 4.0 * t * k;
}

/* Bytes: the forward model plus the gate read once (decay's one γ is not counted), and for
 * prefill one state, for a step T states, read and written once. */
static double recur_gate_bytes(int update, int T, int dk)
{
    return sizeof(float) * (update == ATTN_UPD_DELTA   ? (double)T
                            : update == ATTN_UPD_GATED ? (double)T * dk
                                                       : 0.0);
}
#define LA_RECUR_BYTES(rule, UPD)                                                                \
    static double rule##_bytes(int T, int dk, int dv, int causal)                                \
    {                                                                                            \
        return attn_forward_bytes(T, dk, dv, causal) + recur_gate_bytes(UPD, T, dk);             \
    }                                                                                            \
    static double rule##_prefill_bytes(int T, int dk, int dv, int causal)                        \
    {                                                                                            \
        return rule##_bytes(T, dk, dv, causal) + linear_prefill_bytes(T, dk, dv, causal) -      \
               attn_forward_bytes(T, dk, dv, causal);                                            \
    }                                                                                            \
    static double rule##_step_bytes(int T, int dk, int dv, int causal)                           \
    {                                                                                            \
        return rule##_bytes(T, dk, dv, causal) + linear_step_bytes(T, dk, dv, causal) -         \
               attn_forward_bytes(T, dk, dv, causal);                                            \
    }
LA_RECUR_BYTES(delta, ATTN_UPD_DELTA)
LA_RECUR_BYTES(decay, ATTN_UPD_DECAY)
LA_RECUR_BYTES(gated, ATTN_UPD_GATED)
#undef LA_RECUR_BYTES

/* The default causal linear kernel: the faster of the two causal algorithms, as measured by
 * `linattn bench --suite` on the development machine (Zen 5, AVX-512 path, 1 thread, d = m =
 * dv = 64, T = 16384): recurrent ~98 GFLOP/s, chunked ~58 GFLOP/s (SGEMM ~105).  The recurrent
 * form does exactly the nominal flops with the state in L1; the chunked form adds the
 * intra-chunk products.  The chunked form stays available by name. */
static void linear_causal_default(struct attn_args *a)
{
    attn_linear_causal_recurrent(a);
}
static size_t linear_causal_default_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    return attn_linear_causal_recurrent_ws(T, dk, dv, causal, chunk, threads);
}

/* linear_causal's alias_of and uses_chunk follow the algorithm linear_causal_default runs: the
 * recurrent one, which ignores the chunk size (tests/test_kernels.c checks both against what the
 * kernel does). */
const struct attn_kernel attn_kernels[] = {
    {
        .name = "softmax_flash",
        .summary = "softmax attention, fp32, tiled online softmax, fused exp (no T×T buffer)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_QK,
        .causal_support = ATTN_NONCAUSAL_OK | ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_softmax,
        .flops = softmax_flops,
        .bytes = attn_forward_bytes,
        .workspace = attn_softmax_flash_ws,
        .run = attn_softmax_flash,
    },
    {
        .name = "linear_noncausal",
        .summary = "linear attention, fp32, φ(K)ᵀV first, then φ(Q)·S (SIMD GEMM tiles)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_NONCAUSAL_OK,
        .uses_chunk = 0,
        .fuses_map = 1,
        .ref = &attn_ref_linear,
        .flops = attn_linear_flops,
        .bytes = attn_forward_bytes,
        .workspace = attn_linear_noncausal_ws,
        .run = attn_linear_noncausal,
    },
    {
        .name = "linear_causal",
        .summary = "causal linear attention, fp32: the default algorithm (recurrent)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .fuses_map = 1,
        .alias_of = "linear_causal_recurrent",
        .ref = &attn_ref_linear,
        .flops = attn_linear_flops,
        .bytes = attn_forward_bytes,
        .workspace = linear_causal_default_ws,
        .run = linear_causal_default,
    },
    {
        .name = "linear_causal_recurrent",
        .summary = "causal linear attention, fp32, per-token state update and query in one pass "
                   "(SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .fuses_map = 1,
        .ref = &attn_ref_linear,
        .flops = attn_linear_flops,
        .bytes = attn_forward_bytes,
        .workspace = attn_linear_causal_recurrent_ws,
        .run = attn_linear_causal_recurrent,
    },
    {
        .name = "linear_causal_chunked",
        .summary = "causal linear attention, fp32, chunks: triangular intra-chunk + state GEMMs "
                   "(SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 1,
        .fuses_map = 1,
        .ref = &attn_ref_linear,
        .flops = attn_linear_flops,
        .bytes = attn_forward_bytes,
        .workspace = attn_linear_causal_chunked_ws,
        .run = attn_linear_causal_chunked,
    },
    {
        .name = "linear_prefill",
        .summary = "causal linear attention, fp32, prefill: T tokens of one sequence appended to "
                   "its state (S, z), y for each",
        .op = ATTN_OP_PREFILL,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_linear_prefill,
        .flops = attn_linear_flops,
        .bytes = linear_prefill_bytes,
        .workspace = attn_linear_decode_ws,
        .run = attn_linear_prefill,
    },
    {
        .name = "linear_step",
        .summary = "causal linear attention, fp32, step: one token for each of T = B sequences, "
                   "each state updated in place",
        .op = ATTN_OP_STEP,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_linear_step,
        .flops = attn_linear_flops,
        .bytes = linear_step_bytes,
        .workspace = attn_linear_decode_ws,
        .run = attn_linear_step,
    },
    {
        .name = "softmax_prefill",
        .summary = "causal softmax attention, fp32, prefill: T tokens of one sequence appended to "
                   "its key-value cache, y for each (blocked cache, online softmax)",
        .op = ATTN_OP_PREFILL,
        .input = ATTN_IN_QK,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_softmax_cache_floats,
        .ref = &attn_ref_softmax_prefill,
        .flops = softmax_prefill_flops,
        .bytes = softmax_prefill_bytes,
        .flops_at = softmax_prefill_flops_at,
        .bytes_at = softmax_prefill_bytes_at,
        .workspace = attn_softmax_prefill_ws,
        .run = attn_softmax_prefill,
    },
    {
        .name = "softmax_step",
        .summary = "causal softmax attention, fp32, step: one token for each of T = B sequences "
                   "over its key-value cache (blocked; one sequence split across threads)",
        .op = ATTN_OP_STEP,
        .input = ATTN_IN_QK,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_softmax_cache_floats,
        .ref = &attn_ref_softmax_step,
        .flops = softmax_step_flops,
        .bytes = softmax_step_bytes,
        .flops_at = softmax_step_flops_at,
        .bytes_at = softmax_step_bytes_at,
        .workspace = attn_softmax_step_ws,
        .run = attn_softmax_step,
    },
    {
        .name = "softmax_flash_backward",
        .summary = "softmax attention gradients, fp32, FlashAttention-2 style: forward and "
                   "log-sum-exp recomputed, P re-formed tile by tile",
        .op = ATTN_OP_BACKWARD,
        .input = ATTN_IN_QK,
        .causal_support = ATTN_NONCAUSAL_OK | ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_softmax_backward,
        .flops = softmax_backward_flops,
        .bytes = backward_bytes,
        .workspace = attn_softmax_flash_backward_ws,
        .run = attn_softmax_flash_backward,
    },
    {
        .name = "linear_noncausal_backward",
        .summary = "linear attention gradients w.r.t. φ(Q), φ(K), V, fp32, normaliser included "
                   "(SIMD GEMM tiles)",
        .op = ATTN_OP_BACKWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_NONCAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_linear_backward,
        .flops = linear_backward_flops,
        .bytes = backward_bytes,
        .workspace = attn_linear_noncausal_backward_ws,
        .run = attn_linear_noncausal_backward,
    },
    {
        .name = "linear_causal_backward",
        .summary = "causal linear attention gradients w.r.t. φ(Q), φ(K), V, fp32: forward sweep "
                   "for dQ, reverse sweep for dK, dV, O(m·dv) state",
        .op = ATTN_OP_BACKWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_linear_backward,
        .flops = linear_backward_flops,
        .bytes = backward_bytes,
        .workspace = attn_linear_causal_backward_ws,
        .run = attn_linear_causal_backward,
    },
    {
        .name = "linear_causal_chunked_backward",
        .summary = "causal linear attention gradients w.r.t. φ(Q), φ(K), V, fp32, chunked: "
                   "masked tiles inside a chunk, running states between chunks (forward for dQ, "
                   "reverse for dK, dV)",
        .op = ATTN_OP_BACKWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 1,
        .ref = &attn_ref_linear_backward,
        .flops = linear_backward_flops,
        .bytes = backward_bytes,
        .workspace = attn_linear_causal_chunked_backward_ws,
        .run = attn_linear_causal_chunked_backward,
    },
    {
        .name = "linear_delta_recurrent",
        .summary = "causal linear attention, fp32, delta rule S += βk(v − Sᵀk)ᵀ, no normaliser: one pass over the state per "
                   "token (SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_delta,
        .flops = delta_flops,
        .bytes = delta_bytes,
        .workspace = attn_recur_ws,
        .run = attn_delta_recurrent,
        .update = ATTN_UPD_DELTA,
    },
    {
        .name = "linear_delta_chunked",
        .summary = "causal linear attention, fp32, delta rule, chunks: the WY/UT representation "
                   "(forward substitution per chunk, then seven GEMMs) (SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 1,
        .ref = &attn_ref_delta,
        .flops = delta_flops,
        .bytes = delta_bytes,
        .workspace = attn_delta_chunked_ws,
        .run = attn_delta_chunked,
        .update = ATTN_UPD_DELTA,
    },
    {
        .name = "linear_delta_prefill",
        .summary = "causal linear attention, fp32, delta rule, prefill: T tokens of one sequence "
                   "appended to its state (S, z), y for each",
        .op = ATTN_OP_PREFILL,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_delta_prefill,
        .flops = delta_flops,
        .bytes = delta_prefill_bytes,
        .workspace = attn_recur_ws,
        .run = attn_delta_prefill,
        .update = ATTN_UPD_DELTA,
    },
    {
        .name = "linear_delta_step",
        .summary = "causal linear attention, fp32, delta rule, step: one token for each of T = B "
                   "sequences, each state updated in place",
        .op = ATTN_OP_STEP,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_delta_step,
        .flops = delta_flops,
        .bytes = delta_step_bytes,
        .workspace = attn_recur_step_ws,
        .run = attn_delta_step,
        .update = ATTN_UPD_DELTA,
    },
    {
        .name = "linear_decay_recurrent",
        .summary = "causal linear attention, fp32, decay S = γS + kvᵀ (γ per head), normaliser z decayed alike: one pass over the state per "
                   "few tokens (SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_decay,
        .flops = gate_flops,
        .bytes = decay_bytes,
        .workspace = attn_recur_ws,
        .run = attn_decay_recurrent,
        .update = ATTN_UPD_DECAY,
    },
    {
        .name = "linear_decay_chunked",
        .summary = "causal linear attention, fp32, decay S = γS + kvᵀ, chunks: the gates' products on "
                   "Q, K and the scores, three GEMMs per chunk (SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 1,
        .ref = &attn_ref_decay,
        .flops = gate_flops,
        .bytes = decay_bytes,
        .workspace = attn_recur_chunked_ws,
        .run = attn_decay_chunked,
        .update = ATTN_UPD_DECAY,
    },
    {
        .name = "linear_decay_prefill",
        .summary = "causal linear attention, fp32, decay rule, prefill: T tokens of one sequence "
                   "appended to its state (S, z), y for each",
        .op = ATTN_OP_PREFILL,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_decay_prefill,
        .flops = gate_flops,
        .bytes = decay_prefill_bytes,
        .workspace = attn_recur_ws,
        .run = attn_decay_prefill,
        .update = ATTN_UPD_DECAY,
    },
    {
        .name = "linear_decay_step",
        .summary = "causal linear attention, fp32, decay rule, step: one token for each of T = B "
                   "sequences, each state updated in place",
        .op = ATTN_OP_STEP,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_decay_step,
        .flops = gate_flops,
        .bytes = decay_step_bytes,
        .workspace = attn_recur_step_ws,
        .run = attn_decay_step,
        .update = ATTN_UPD_DECAY,
    },
    {
        .name = "linear_gated_recurrent",
        .summary = "causal linear attention, fp32, gated S = diag(α_t)S + kvᵀ (α_t per token), normaliser z gated alike: one pass over the state per "
                   "few tokens (SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .ref = &attn_ref_gated,
        .flops = gate_flops,
        .bytes = gated_bytes,
        .workspace = attn_recur_ws,
        .run = attn_gated_recurrent,
        .update = ATTN_UPD_GATED,
    },
    {
        .name = "linear_gated_chunked",
        .summary = "causal linear attention, fp32, gated S = diag(α_t)S + kvᵀ, chunks: the gates' products on "
                   "Q, K and the scores, three GEMMs per chunk (SIMD)",
        .op = ATTN_OP_FORWARD,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 1,
        .ref = &attn_ref_gated,
        .flops = gate_flops,
        .bytes = gated_bytes,
        .workspace = attn_recur_chunked_ws,
        .run = attn_gated_chunked,
        .update = ATTN_UPD_GATED,
    },
    {
        .name = "linear_gated_prefill",
        .summary = "causal linear attention, fp32, gated rule, prefill: T tokens of one sequence "
                   "appended to its state (S, z), y for each",
        .op = ATTN_OP_PREFILL,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_gated_prefill,
        .flops = gate_flops,
        .bytes = gated_prefill_bytes,
        .workspace = attn_recur_ws,
        .run = attn_gated_prefill,
        .update = ATTN_UPD_GATED,
    },
    {
        .name = "linear_gated_step",
        .summary = "causal linear attention, fp32, gated rule, step: one token for each of T = B "
                   "sequences, each state updated in place",
        .op = ATTN_OP_STEP,
        .input = ATTN_IN_FEATURES,
        .causal_support = ATTN_CAUSAL_OK,
        .uses_chunk = 0,
        .state_floats = attn_linear_state_floats,
        .ref = &attn_ref_gated_step,
        .flops = gate_flops,
        .bytes = gated_step_bytes,
        .workspace = attn_recur_step_ws,
        .run = attn_gated_step,
        .update = ATTN_UPD_GATED,
    },
    {0},
};

const char *attn_op_name(enum attn_op op)
{
    switch (op) {
    case ATTN_OP_FORWARD:
        return "forward";
    case ATTN_OP_PREFILL:
        return "prefill";
    case ATTN_OP_STEP:
        return "step";
    case ATTN_OP_BACKWARD:
        return "backward";
    }
    return "?";
}

size_t attn_kernel_count(void)
{
    size_t n = 0;
    while (attn_kernels[n].name)
        n++;
    return n;
}

const struct attn_kernel *attn_kernel_lookup(const char *name)
{
    for (size_t i = 0; name && attn_kernels[i].name; i++)
        if (!strcmp(attn_kernels[i].name, name))
            return &attn_kernels[i];
    return NULL;
}

const char *const *attn_kernel_names(void)
{
    static const char *names[32];
    size_t n = attn_kernel_count();
    for (size_t i = 0; i < n && i < 31; i++)
        names[i] = attn_kernels[i].name;
    names[n < 31 ? n : 31] = NULL;
    return names;
}

size_t attn_workspace_floats(const struct attn_kernel *kn, int T, int dk, int dv, int causal,
                             int chunk, int threads)
{
    return kn->workspace(T, dk, dv, causal, chunk, threads) + LA_WS_SLACK;
}

double attn_nominal_flops(const struct attn_kernel *kn, int T, int dk, int dv, int causal)
{
    return kn->flops(T, dk, dv, causal);
}

double attn_nominal_bytes(const struct attn_kernel *kn, int T, int dk, int dv, int causal)
{
    return kn->bytes(T, dk, dv, causal);
}

double attn_nominal_flops_at(const struct attn_kernel *kn, int T, int pos, int dk, int dv,
                             int causal)
{
    return kn->flops_at ? kn->flops_at(T, pos, dk, dv) : kn->flops(T, dk, dv, causal);
}

double attn_nominal_bytes_at(const struct attn_kernel *kn, int T, int pos, int dk, int dv,
                             int causal)
{
    return kn->bytes_at ? kn->bytes_at(T, pos, dk, dv) : kn->bytes(T, dk, dv, causal);
}

size_t attn_state_floats(const struct attn_kernel *kn, int T, int dk, int dv)
{
    return kn->state_floats ? kn->state_floats(T, dk, dv) : 0;
}

size_t attn_call_state_floats(const struct attn_kernel *kn, int T, int dk, int dv)
{
    const size_t sf = attn_state_floats(kn, T, dk, dv);
    return kn->op == ATTN_OP_STEP ? (size_t)T * sf : sf;
}

size_t attn_args_state_floats(const struct attn_kernel *kn, const struct attn_args *a)
{
    const int step = kn->op == ATTN_OP_STEP;
    const size_t sf = attn_state_floats(kn, cache_cap(a->cap, a->pos, a->T, step), a->dk, a->dv);
    return step ? (size_t)a->T * sf : sf;
}

const struct attn_kernel *attn_kernel_find(enum attn_op op, enum attn_input input, int causal)
{
    const int bit = causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK;
    for (size_t i = 0; attn_kernels[i].name; i++)
        if (attn_kernels[i].op == op && attn_kernels[i].input == input &&
            (attn_kernels[i].causal_support & bit))
            return &attn_kernels[i];
    return NULL;
}

const struct attn_kernel *attn_kernel_backward_of(const struct attn_kernel *fwd, int causal)
{
    const int bit = causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK;
    for (size_t i = 0; attn_kernels[i].name; i++)
        if (attn_kernels[i].op == ATTN_OP_BACKWARD && attn_kernels[i].input == fwd->input &&
            (attn_kernels[i].causal_support & bit) && attn_kernels[i].uses_chunk == fwd->uses_chunk)
            return &attn_kernels[i];
    return attn_kernel_find(ATTN_OP_BACKWARD, fwd->input, causal);
}

/* Runs head h of proto's batch on `threads` threads with workspace work; its n_small_den. */
static long run_head(const struct attn_kernel *kn, const struct attn_args *proto, int h,
                     int threads, float *work)
{
    const size_t qstride = (size_t)proto->T * proto->dk, vstride = (size_t)proto->T * proto->dv;
    struct attn_args a = *proto;
    a.q += h * qstride;
    a.k += h * qstride;
    a.v += h * vstride;
    if (a.y)
        a.y += h * vstride;
    if (a.grad_y) {
        a.grad_y += h * vstride;
        a.grad_q += h * qstride;
        a.grad_k += h * qstride;
        a.grad_v += h * vstride;
    }
    if (a.eps_row)
        a.eps_row += (size_t)h * proto->T;
    if (a.state)
        a.state += h * attn_args_state_floats(kn, proto);
    if (a.gate)
        a.gate += h * attn_gate_floats(kn, proto->T, proto->dk);
    a.threads = threads;
    a.work = work;
    kn->run(&a);
    return a.n_small_den;
}

long attn_run_heads(const struct attn_kernel *kn, const struct attn_args *proto, int H,
                    int nthreads, float *work, size_t ws)
{
    long small = 0;
    if (nthreads < 1)
        nthreads = 1;
    if (H < nthreads || nthreads == 1) {
        /* Fewer heads than threads: heads one after another, every thread inside each. */
        for (int h = 0; h < H; h++)
            small += run_head(kn, proto, h, nthreads, work);
        return small;
    }
    const int nth = nthreads < H ? nthreads : H;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1) reduction(+ : small)
    for (int h = 0; h < H; h++)
        small += run_head(kn, proto, h, 1, work + ws * (size_t)omp_get_thread_num());
    return small;
}

int la_env_check(char *msg, size_t cap)
{
    return la_simd_env_check(msg, cap) || la_vmath_env_check(msg, cap) ? -1 : 0;
}

const char *la_simd_path(void) { return la_simd_name(la_simd_isa()); }

const char *attn_update_name(int update)
{
    switch (update) {
    case ATTN_UPD_SUM:
        return "sum";
    case ATTN_UPD_DELTA:
        return "delta";
    case ATTN_UPD_DECAY:
        return "decay";
    case ATTN_UPD_GATED:
        return "gated";
    }
    return "?";
}

size_t attn_gate_floats(const struct attn_kernel *kn, int T, int dk)
{
    switch (kn->update) {
    case ATTN_UPD_DELTA:
        return (size_t)T;
    case ATTN_UPD_DECAY:
        return 1;
    case ATTN_UPD_GATED:
        return (size_t)T * dk;
    }
    return 0;
}

const struct attn_kernel *attn_kernel_find_update(enum attn_op op, enum attn_input input,
                                                  int causal, int update)
{
    const int bit = causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK;
    for (size_t i = 0; attn_kernels[i].name; i++)
        if (attn_kernels[i].op == op && attn_kernels[i].input == input &&
            (attn_kernels[i].causal_support & bit) && attn_kernels[i].update == update)
            return &attn_kernels[i];
    return NULL;
}
