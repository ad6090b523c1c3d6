/* recurrence.c — fast fp32 causal linear attention with the delta, decay and gated update rules
 * (attention.h, "Recurrences"): the recurrent forward kernels, their prefill (the same, from and
 * back to a carried state) and step (one token of each of B sequences).
 * Inputs are features:  PQ, PK: (T, m); V, Y: (T, dv), row-major; the gate as attn_args says.
 * Recurrent form: a short pass over the tokens first computes each token's output scale ys_t
 * (1/(q_tᵀz_t + eps) with z decayed or gated as S is, simd.h la_gate_den; 1/(Σq_t + eps) under
 * sum normalisation; else 1) and key scale ks_t (1/(Σk_t + eps) under sum normalisation, else
 * 1); then the state's columns, which evolve independently under all three rules, run in blocks
 * (simd.h la_recur_cols: the decay and gated rules share a pass over the state between a few
 * tokens, the decay rule's with its state rescaled by γ's powers, the delta rule makes one pass
 * per token, see simd_tmpl.h).  Threads split the column blocks, narrower ones where there are
 * fewer blocks than threads (the delta rule's 64 columns on AVX-512 run as two blocks of 32 on
 * two threads), and each thread computes all the scales itself (about 0.1 ms at T = 16384,
 * m = 64 for the decay rule) rather than wait for one thread's pass; each thread's blocks of
 * the state lie together, followed by a page guard (LA_THREAD_GUARD), and its columns of Y are
 * written with non-temporal stores where they are whole aligned vectors (as
 * linear_causal_recurrent's: two cores' prefetchers otherwise fetch each other's lines of Y and
 * state).  Measured on Zen 4 with the decay rule, T = 16384, m = dv = 64: two threads
 * 1.93-1.97× faster than one with the two cores on different dies, 1.95-1.99× sharing an L3.
 * A thread's columns of Y may share a cache line with its neighbour's when dv is not a multiple
 * of 16 (correct, not the fastest layout).
 * Step: a plain loop per sequence (the compiler vectorises the dv columns), states split between
 * threads.  Nothing here allocates: workspaces come from the caller.
 * Chunked forms of the decay and gated rules (GEMMs per chunk through the products of the
 * gates, see recur_chunked) and of the delta rule (the WY/UT representation, see
 * attn_delta_chunked).  Not here: backward.
 * Tests: tests/test_kernels.c against recurrence_ref.c on every vector path; `linattn check`.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static size_t recur_state_floats(int dk, int dv, int threads)
{
    return (size_t)dk * (la_pad16((size_t)dv) + 64) +
           (threads > 1 ? (size_t)threads * LA_THREAD_GUARD : 0);
}

/* With threads, each thread's scales ys, ks (T each) and normaliser state z (m). */
static size_t recur_thread_floats(int T, int dk)
{
    return 2 * la_pad16((size_t)T) + la_pad16((size_t)dk);
}

/* Workspace of one head: ys (T), ks (T), z (m) (the scales and z of one thread, or with threads
 * only the head's starting z, which every thread copies), the state in column blocks
 * (recur_layout), at most m·(dv + 64) floats for every path's blocks, plus a guard per thread,
 * then with threads each thread's own scales and z (recur_thread_floats each). */
size_t attn_recur_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    (void)causal, (void)chunk;
    return recur_thread_floats(T, dk) + recur_state_floats(dk, dv, threads) +
           (threads > 1 ? (size_t)threads * recur_thread_floats(T, dk) : 0);
}

/* The column blocks of one head's state with nreq threads asked for: blocks of blk columns (the
 * path's la_recur_block, or fewer, in whole lines, when that leaves a thread without a block),
 * nb of them, run by nth threads, thread th taking blocks [nb·th/nth, nb·(th+1)/nth).  Block b
 * of nc columns holds m rows of la_linrec_width(nc) floats at recur_slice(b): the blocks side by
 * side (b·m·blk), and with threads each thread's after a guard per earlier thread. */
struct recur_layout {
    int blk, nb, nth, m;
};

static struct recur_layout recur_layout_of(int isa, int update, int m, int dv, int threads)
{
    struct recur_layout l;
    const int nreq = threads > 1 ? threads : 1;
    l.blk = la_recur_block(isa, update);
    const int per = (int)la_pad16((size_t)((dv + nreq - 1) / nreq));
    if (nreq > 1 && per < l.blk)
        l.blk = per;
    l.nb = (dv + l.blk - 1) / l.blk;
    l.nth = nreq < l.nb ? nreq : l.nb;
    l.m = m;
    return l;
}

static int recur_owner(const struct recur_layout *l, int b)
{
    int th = 0;
    while (th + 1 < l->nth && (long)l->nb * (th + 1) / l->nth <= b)
        th++;
    return th;
}

static float *recur_slice(float *S, const struct recur_layout *l, int b)
{
    const size_t guard = l->nth > 1 ? (size_t)recur_owner(l, b) * LA_THREAD_GUARD : 0;
    return S + (size_t)l->m * (size_t)b * (size_t)l->blk + guard;
}

/* The gate of token t's state row i, or of token t (delta), or the head's (decay). */
static inline float gate_at(const struct attn_args *a, int update, int t, int i)
{
    if (!a->gate)
        return a->gate_const;
    return update == ATTN_UPD_GATED ? a->gate[(size_t)t * a->dk + i]
           : update == ATTN_UPD_DELTA ? a->gate[t]
                                      : a->gate[0];
}

/* The sum of n floats in eight partial sums (element i into sum i mod 8), added pairwise at the
 * end: the compiler vectorises it, where one running sum is a chain of n dependent adds. */
static inline float row_sum(const float *restrict x, int n)
{
    float s[8] = {0.0f};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += x[i + j];
    for (int j = 0; i < n; i++, j++)
        s[j] += x[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/* ys, ks for tokens [t0, t1) into ys[t − t0], ks[t − t0] (see the file's comment); z (m)
 * carries the normaliser's state for the rules that have one, from before t0 to after t1 − 1.
 * Returns the rows whose normaliser was <= eps in absolute value. */
static long scales_range(const struct attn_args *a, int update, int t0, int t1, float *ys,
                         float *ks, float *z)
{
    const int m = a->dk;
    if (t1 <= t0)
        return 0;
    if (a->recur_norm == ATTN_RN_RULE && update != ATTN_UPD_DELTA) {
        /* z_t = g ⊙ z_{t−1} + k_t, ys_t = 1/(q_tᵀz_t + eps), in SIMD registers. */
        for (int t = t0; t < t1; t++)
            ks[t - t0] = 1.0f;
        const float *G = update == ATTN_UPD_GATED && a->gate ? a->gate + (size_t)t0 * m : NULL;
        return la_gate_den(la_simd_isa(), t1 - t0, m, a->q + (size_t)t0 * m,
                           a->k + (size_t)t0 * m, G, G ? 1.0f : gate_at(a, update, t0, 0), m,
                           a->eps, a->eps_row ? a->eps_row + t0 : NULL, z, ys);
    }
    long small = 0;
    for (int t = t0; t < t1; t++) {
        const float *q = a->q + (size_t)t * m, *k = a->k + (size_t)t * m;
        const float eps = a->eps_row ? a->eps_row[t] : a->eps;
        float d;
        ks[t - t0] = 1.0f;
        if (a->recur_norm == ATTN_RN_SUM) {
            d = row_sum(q, m);
            ks[t - t0] = 1.0f / (row_sum(k, m) + eps);
        } else {
            ys[t - t0] = 1.0f;
            continue;
        }
        ys[t - t0] = 1.0f / (d + eps);
        small += fabsf(d) <= eps;
    }
    return small;
}

/* ys, ks for all T tokens (the chunked forms). */
static long scales(const struct attn_args *a, int update, float *ys, float *ks, float *z)
{
    return scales_range(a, update, 0, a->T, ys, ks, z);
}

/* Block b of the state (recur_layout) from `state` (S (m × dv) then z; NULL: zero), or (store)
 * back to it. */
static void recur_block_io(const struct attn_args *a, int isa, const struct recur_layout *L,
                           int b, float *state, float *S, int store)
{
    const int m = a->dk, dv = a->dv;
    const int c0 = b * L->blk, nc = dv - c0 < L->blk ? dv - c0 : L->blk;
    const int w = la_linrec_width(isa, nc);
    float *Sb = recur_slice(S, L, b);
    for (int i = 0; i < m; i++) {
        float *r = Sb + (size_t)i * w;
        if (store)
            memcpy(state + (size_t)i * dv + c0, r, (size_t)nc * sizeof *r);
        else if (state)
            memcpy(r, state + (size_t)i * dv + c0, (size_t)nc * sizeof *r);
        else
            memset(r, 0, (size_t)nc * sizeof *r);
        if (!store)
            memset(r + nc, 0, (size_t)(w - nc) * sizeof *r);
    }
}

/* A thread's blocks [b0, b1) over all T tokens: the scales of every token (scales_range, into
 * the thread's ys, ks from its own copy of z0; every thread computes the same ones, so none
 * waits for another and nothing runs before the threads start), then each block's pass (simd.h
 * la_recur_cols).  z ends as the state's z after the last token.  Returns the rows whose
 * normaliser was <= eps. */
static long recur_thread(const struct attn_args *a, int isa, int update, int rule,
                         const struct recur_layout *L, int b0, int b1, float *state, float *S,
                         float *ys, float *ks, float *z, const float *z0, float g,
                         const float *G, int flags)
{
    const int T = a->T, m = a->dk, dv = a->dv;
    if (z != z0)
        memcpy(z, z0, (size_t)m * sizeof *z);
    const long small = scales_range(a, update, 0, T, ys, ks, z);
    for (int b = b0; b < b1; b++) {
        const int c0 = b * L->blk, nc = dv - c0 < L->blk ? dv - c0 : L->blk;
        recur_block_io(a, isa, L, b, state, S, 0);
        la_recur_cols(isa, rule, T, m, dv, a->q, a->k, a->v, a->y, dv, ys, ks, g, G,
                      recur_slice(S, L, b), c0, nc, flags);
        if (state)
            recur_block_io(a, isa, L, b, state, S, 1);
    }
    return small;
}

/* T tokens of one sequence through the rule, from `state` (S (m × dv) then z (m); NULL: empty)
 * and back to it. */
static void recur_run(struct attn_args *a, int update, float *state)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa();
    const struct recur_layout L = recur_layout_of(isa, update, m, dv, a->threads);
    float *ys = la_align_work(a->work), *ks = ys + la_pad16((size_t)T);
    float *z = ks + la_pad16((size_t)T), *S = z + la_pad16((size_t)m);
    float *tw = S + recur_state_floats(m, dv, a->threads); /* the threads' own */
    if (state)
        memcpy(z, state + (size_t)m * dv, (size_t)m * sizeof *z);
    else
        memset(z, 0, (size_t)m * sizeof *z);
    /* A gated rule whose every α_t[i] is one constant runs as the decay rule's pass. */
    const float g = a->gate && update == ATTN_UPD_DECAY ? a->gate[0] : a->gate_const;
    const float *G = update == ATTN_UPD_DECAY ? NULL : a->gate;
    const int rule = update == ATTN_UPD_GATED && !G ? ATTN_UPD_DECAY : update;
    float *zend = z;
    long small = 0;
    if (L.nth == 1) {
        small = recur_thread(a, isa, update, rule, &L, 0, L.nb, state, S, ys, ks, z, z, g, G, 0);
    } else {
        zend = tw + 2 * la_pad16((size_t)T);
        /* Each thread its blocks (recur_layout), Y by non-temporal stores when there are two
         * or more. */
#pragma omp parallel num_threads(L.nth)
        {
            const int th = omp_get_thread_num(), n = omp_get_num_threads();
            const int b0 = (int)((long)L.nb * th / n), b1 = (int)((long)L.nb * (th + 1) / n);
            float *ty = tw + (size_t)th * recur_thread_floats(T, m), *tk = ty + la_pad16((size_t)T);
            const long s = recur_thread(a, isa, update, rule, &L, b0, b1, state, S, ty, tk,
                                        tk + la_pad16((size_t)T), z, g, G,
                                        n > 1 ? LA_REC_STREAM_Y : 0);
            if (th == 0)
                small = s;
        }
    }
    a->n_small_den = small;
    /* Every thread's z ended the same; thread 0's is the first. */
    if (state && a->recur_norm == ATTN_RN_RULE && update != ATTN_UPD_DELTA)
        memcpy(state + (size_t)m * dv, zend, (size_t)m * sizeof *state);
}

void attn_delta_recurrent(struct attn_args *a) { recur_run(a, ATTN_UPD_DELTA, NULL); }
void attn_decay_recurrent(struct attn_args *a) { recur_run(a, ATTN_UPD_DECAY, NULL); }
void attn_gated_recurrent(struct attn_args *a) { recur_run(a, ATTN_UPD_GATED, NULL); }
void attn_delta_prefill(struct attn_args *a) { recur_run(a, ATTN_UPD_DELTA, a->state); }
void attn_decay_prefill(struct attn_args *a) { recur_run(a, ATTN_UPD_DECAY, a->state); }
void attn_gated_prefill(struct attn_args *a) { recur_run(a, ATTN_UPD_GATED, a->state); }

/* ---- chunked forms of the decay and gated rules --------------------------------------------- */

/* Chunks of C tokens (a->chunk, default RECUR_CHUNK).  With b_i the product of the gates of the
 * chunk's tokens 1..i (b_0 = 1; decay: γ^i; gated: a vector over the m state rows) and S0 the
 * state before the chunk scaled by its first token's gate, token i of the chunk sees
 *   S_i = diag(b_i) S0 + Σ_{j<=i} diag(b_i / b_j) k̂_j v_jᵀ,
 * so its output is y_i = ys_i · (q̃_iᵀ S0 + Σ_{j<=i} (q̃_i·k̃_j) v_j) with q̃_i = q_i ⊙ b_i and
 * k̃_j = k̂_j / b_j (decay: the factor γ^{i−j} on the scores instead, no division), and the state
 * after the chunk is diag(b_{n−1}) (S0 + Σ_j k̃_j v_jᵀ).  Three GEMMs per chunk (simd.h
 * la_gemm): Q̃·S0, the masked scores Q̃·K̃ᵀ times V, and K̃ᵀV.  The gated rule's 1/b_j grows as
 * the gates multiply: a chunk ends early, before any b_i[f] falls below RECUR_BMIN, so that
 * q̃·k̃ keeps fp32's range (a chunk of one token divides by nothing).  Threads: one (these are
 * GEMM-shaped for the development of larger blocks; a->threads is not read).
 * The scores are a full C × C block (the upper triangle zeroed, not skipped), so the work per
 * token grows with C: RECUR_CHUNK = 16, measured (decay, one AVX-512 thread on AMD EPYC family
 * 25 model 17, T = 4096, two runs each) the fastest of C = 8, 16, 32, 64 at m = dv = 32, 64 and
 * 128 and at m = 256, dv = 64: at m = dv = 64, 0.61 of the peak against 0.44 at C = 64; at
 * m = dv = 128, 0.71-0.76 against 0.62-0.65; at C = 8 the per-chunk work dominates
 * (0.53-0.61). */
#define RECUR_CHUNK 16
#define RECUR_BMIN 1e-12f

static int recur_chunk_of(const struct attn_args *a)
{
    return a->chunk > 0 ? a->chunk : RECUR_CHUNK;
}

/* Workspace: the recurrent form's (ys, ks, z, S) plus per chunk Q̃ (C × m), K̃ (C × m), K̃ᵀ
 * (m × C), the scores (C × C), the row scales (C), the gate products b (m) and γ's powers (C). */
size_t attn_recur_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const size_t C = (size_t)(chunk > 0 ? chunk : RECUR_CHUNK), m = (size_t)dk;
    return attn_recur_ws(T, dk, dv, causal, chunk, threads) + 3 * la_pad16(C * m) +
           la_pad16(C * C) + 2 * la_pad16(C) + la_pad16(m);
}

static void recur_chunked(struct attn_args *a, int update)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa(), C = recur_chunk_of(a);
    const int gated = update == ATTN_UPD_GATED && a->gate;
    const size_t lds = la_pad16((size_t)dv), Cm = la_pad16((size_t)C * m);
    float *ys = la_align_work(a->work), *ks = ys + la_pad16((size_t)T);
    float *z = ks + la_pad16((size_t)T), *S = z + la_pad16((size_t)m);
    float *Qt = S + (size_t)m * lds, *Kd = Qt + Cm, *Kt = Kd + Cm;
    float *A = Kt + Cm, *rs = A + la_pad16((size_t)C * C), *pw = rs + la_pad16((size_t)C);
    float *b = pw + la_pad16((size_t)C);
    memset(z, 0, (size_t)m * sizeof *z);
    a->n_small_den = scales(a, update, ys, ks, z);
    memset(S, 0, (size_t)m * lds * sizeof *S);
    const float g = a->gate && update == ATTN_UPD_DECAY ? a->gate[0] : a->gate_const;
    pw[0] = 1.0f; /* γ^i (decay, or a gated rule with one constant gate) */
    for (int i = 1; i < C; i++)
        pw[i] = pw[i - 1] * g;
    for (int t0 = 0, n; t0 < T; t0 += n) {
        const int nmax = T - t0 < C ? T - t0 : C;
        /* S0: the state scaled by the chunk's first gate. */
        for (int f = 0; f < m; f++) {
            const float gf = gated ? a->gate[(size_t)t0 * m + f] : g;
            for (int c = 0; c < dv; c++)
                S[(size_t)f * lds + c] *= gf;
        }
        /* q̃, k̃ (gated: with the running products b; decay: the raw rows, γ goes on the
         * scores), and the row scales. */
        for (int f = 0; f < m; f++)
            b[f] = 1.0f;
        for (n = 0; n < nmax; n++) {
            const size_t t = (size_t)(t0 + n);
            const float *q = a->q + t * m, *k = a->k + t * m;
            if (gated && n > 0) {
                const float *al = a->gate + t * m;
                float lo = 1.0f;
                for (int f = 0; f < m; f++)
                    lo = fminf(lo, b[f] * al[f]);
                if (lo < RECUR_BMIN)
                    break; /* the chunk ends before this token */
                for (int f = 0; f < m; f++)
                    b[f] *= al[f];
            }
            for (int f = 0; f < m; f++) {
                Qt[(size_t)n * m + f] = gated ? q[f] * b[f] : q[f];
                Kd[(size_t)n * m + f] = gated ? k[f] * ks[t] / b[f] : k[f] * ks[t];
            }
            rs[n] = gated ? ys[t] : ys[t] * pw[n];
        }
        const float *Vc = a->v + (size_t)t0 * dv;
        float *Yc = a->y + (size_t)t0 * dv;
        /* Y = rs ⊙ (Q̃ S0) + ys ⊙ (masked scores · V). */
        la_gemm(isa, n, dv, m, Qt, m, 1, S, (ptrdiff_t)lds, Yc, dv, 1.0f, rs, 0);
        for (int j = 0; j < n; j++)
            for (int f = 0; f < m; f++)
                Kt[(size_t)f * C + j] = Kd[(size_t)j * m + f];
        la_gemm(isa, n, n, m, Qt, m, 1, Kt, C, A, C, 1.0f, NULL, 0);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                A[(size_t)i * C + j] = j > i ? 0.0f : gated ? A[(size_t)i * C + j]
                                                            : A[(size_t)i * C + j] * pw[i - j];
        la_gemm(isa, n, dv, n, A, C, 1, Vc, dv, Yc, dv, 1.0f, ys + t0, 1);
        /* S = diag(b_{n−1}) (S0 + K̃ᵀV); decay: γ^{n−1} S0 + Σ_j γ^{n−1−j} k̂_j v_jᵀ. */
        if (!gated)
            for (int j = 0; j < n; j++)
                for (int f = 0; f < m; f++)
                    Kd[(size_t)j * m + f] *= pw[n - 1 - j];
        for (int f = 0; f < m && !gated; f++)
            for (int c = 0; c < dv; c++)
                S[(size_t)f * lds + c] *= pw[n - 1];
        la_gemm(isa, m, dv, n, Kd, 1, m, Vc, dv, S, (ptrdiff_t)lds, 1.0f, NULL, 1);
        for (int f = 0; f < m && gated; f++)
            for (int c = 0; c < dv; c++)
                S[(size_t)f * lds + c] *= b[f];
    }
}

void attn_decay_chunked(struct attn_args *a) { recur_chunked(a, ATTN_UPD_DECAY); }
void attn_gated_chunked(struct attn_args *a) { recur_chunked(a, ATTN_UPD_GATED); }

/* ---- chunked delta rule: the WY / UT representation ---------------------------------------- */

/* Chunks of C tokens (a->chunk, default DELTA_CHUNK).  With S0 the state before the chunk, k̂_j
 * the chunk's keys after the key scale (K̂: n × m) and u_j = β_j (v_j − S_{j−1}ᵀk̂_j) the delta
 * rule's correction of token j, S_i = S0 + Σ_{j<=i} k̂_j u_jᵀ, so
 *   u_j + β_j Σ_{i<j} (k̂_j·k̂_i) u_i = β_j (v_j − S0ᵀk̂_j),
 * that is U = T (V − K̂ S0) with T = (I + strictly-lower(diag(β) K̂K̂ᵀ))⁻¹ diag(β) (the UT
 * transform; W = T K̂ of the WY form is not formed: U = T V − W S0 = T (V − K̂ S0) costs one
 * GEMM less).  The chunk's outputs are Y = ys ⊙ (Q S0 + mask(Q K̂ᵀ) U) (mask: j <= i) and the
 * state after it S0 + K̂ᵀU.  Per chunk: R = (I + strictly-lower(diag(β) K̂K̂ᵀ))⁻¹ by forward
 * substitution (n³/3 flops, row by row), β folded into the rows of V − K̂ S0, then seven GEMMs
 * (simd.h la_gemm): K̂K̂ᵀ, K̂ S0, R·(β ⊙ (V − K̂S0)), Q S0, the masked Q K̂ᵀ and its product with
 * U, and K̂ᵀU.
 * Efficiency: per token the chunked form does 6·m·dv + 4·C·(m + dv) + C²/3 flops against the
 * recurrence's 6·m·dv (the model the table's row counts): 1.3 times as many at m = dv = 64 and
 * C = 16, 2.4 times at C = 64, half of the extra in the zero halves of the triangular R and the
 * masked scores.  In exchange every product is a GEMM whose inner dimension is m or C, the
 * state is read once per chunk instead of once per token, and the token-to-token dependence of
 * the recurrent form (u_t needs all of S_{t−1}ᵀk_t before S_t) is left only in the forward
 * substitution's C²/2 short dot products per chunk.  Its rate against the nominal flops is
 * therefore the small GEMMs' rate over that factor, and the default chunk is small
 * (DELTA_CHUNK = 16: at m = dv = 64 on one AVX-512 core of a loaded machine, chunks of 8 and 16
 * ran two to three times as fast as 64, whose extra flops its larger GEMMs do not pay back).
 * Threads: one (a->threads is not read; attn_run_heads splits heads).  The normalisation
 * options are the recurrent form's (ys, ks from scales()). */
#define DELTA_CHUNK 16

static int delta_chunk_of(const struct attn_args *a)
{
    return a->chunk > 0 ? a->chunk : DELTA_CHUNK;
}

/* Workspace: the recurrent form's (ys, ks, z, S with rows padded to 16) plus per chunk K̂
 * (C × m), K̂ᵀ (m × C), R and the masked scores (C × C each), β ⊙ (V − K̂S0) and U (C × dv
 * padded each) and one row of the forward substitution (C). */
size_t attn_delta_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    const size_t C = (size_t)(chunk > 0 ? chunk : DELTA_CHUNK), m = (size_t)dk;
    return attn_recur_ws(T, dk, dv, causal, chunk, threads) + 2 * la_pad16(C * m) +
           2 * la_pad16(C * C) + 2 * C * la_pad16((size_t)dv) + la_pad16(C);
}

/* Q, K: (T, m) features; V, Y: (T, dv), row-major; β per token in a->gate (T) or gate_const. */
void attn_delta_chunked(struct attn_args *a)
{
    const int T = a->T, m = a->dk, dv = a->dv, isa = la_simd_isa(), C = delta_chunk_of(a);
    const size_t lds = la_pad16((size_t)dv), Cm = la_pad16((size_t)C * m);
    const size_t CC = la_pad16((size_t)C * C);
    float *ys = la_align_work(a->work), *ks = ys + la_pad16((size_t)T);
    float *z = ks + la_pad16((size_t)T), *S = z + la_pad16((size_t)m);
    float *Kh = S + (size_t)m * lds, *Kt = Kh + Cm, *R = Kt + Cm, *P = R + CC;
    float *Vb = P + CC, *U = Vb + (size_t)C * lds, *r = U + (size_t)C * lds;
    a->n_small_den = scales(a, ATTN_UPD_DELTA, ys, ks, z);
    memset(S, 0, (size_t)m * lds * sizeof *S);
    for (int t0 = 0; t0 < T; t0 += C) {
        const int n = T - t0 < C ? T - t0 : C;
        const float *Qc = a->q + (size_t)t0 * m, *Vc = a->v + (size_t)t0 * dv;
        float *Yc = a->y + (size_t)t0 * dv;
        /* K̂ and K̂ᵀ; Vb = β ⊙ (V − K̂ S0). */
        for (int j = 0; j < n; j++) {
            const float *k = a->k + (size_t)(t0 + j) * m;
            for (int f = 0; f < m; f++) {
                Kh[(size_t)j * m + f] = k[f] * ks[t0 + j];
                Kt[(size_t)f * C + j] = Kh[(size_t)j * m + f];
            }
            memcpy(Vb + (size_t)j * lds, Vc + (size_t)j * dv, (size_t)dv * sizeof *Vb);
        }
        la_gemm(isa, n, dv, m, Kh, m, 1, S, (ptrdiff_t)lds, Vb, (ptrdiff_t)lds, -1.0f, NULL, 1);
        for (int j = 0; j < n; j++) {
            const float beta = gate_at(a, ATTN_UPD_DELTA, t0 + j, 0);
            for (int c = 0; c < dv; c++)
                Vb[(size_t)j * lds + c] *= beta;
        }
        /* R = (I + L)⁻¹, L = strictly-lower(diag(β) K̂K̂ᵀ), in place over K̂K̂ᵀ: row j of R is
         * e_j − β_j Σ_{l<j} (k̂_j·k̂_l) R_l, where the rows R_l (l < j) are already final and row
         * j still holds its dot products.  The upper triangle is cleared for the GEMM. */
        la_gemm(isa, n, n, m, Kh, m, 1, Kt, C, R, C, 1.0f, NULL, 0);
        for (int j = 0; j < n; j++) {
            float *Rj = R + (size_t)j * C;
            const float beta = gate_at(a, ATTN_UPD_DELTA, t0 + j, 0);
            for (int i = 0; i < j; i++)
                r[i] = 0.0f;
            for (int l = 0; l < j; l++) {
                const float c = -beta * Rj[l], *Rl = R + (size_t)l * C;
                for (int i = 0; i < l; i++)
                    r[i] += c * Rl[i];
                r[l] += c;
            }
            for (int i = 0; i < j; i++)
                Rj[i] = r[i];
            Rj[j] = 1.0f;
            for (int i = j + 1; i < n; i++)
                Rj[i] = 0.0f;
        }
        /* U = R Vb: the chunk's corrections u_j. */
        la_gemm(isa, n, dv, n, R, C, 1, Vb, (ptrdiff_t)lds, U, (ptrdiff_t)lds, 1.0f, NULL, 0);
        /* Y = ys ⊙ (Q S0 + mask(Q K̂ᵀ) U). */
        la_gemm(isa, n, dv, m, Qc, m, 1, S, (ptrdiff_t)lds, Yc, dv, 1.0f, ys + t0, 0);
        la_gemm(isa, n, n, m, Qc, m, 1, Kt, C, P, C, 1.0f, NULL, 0);
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                P[(size_t)i * C + j] = 0.0f;
        la_gemm(isa, n, dv, n, P, C, 1, U, (ptrdiff_t)lds, Yc, dv, 1.0f, ys + t0, 1);
        /* S = S0 + K̂ᵀU. */
        la_gemm(isa, m, dv, n, Kh, 1, m, U, (ptrdiff_t)lds, S, (ptrdiff_t)lds, 1.0f, NULL, 1);
    }
}

/* ---- step: one token appended to each of B states --------------------------------------- */

/* Sequence b's token through the rule (state S (m × dv), z (m)); y from the new state.  u: dv
 * floats of scratch (the delta rule's Sᵀk). */
static long step_one(const struct attn_args *a, int update, int b, float *restrict S,
                     float *restrict z, float *restrict u)
{
    const int m = a->dk, dv = a->dv;
    const float *restrict q = a->q + (size_t)b * m, *restrict k = a->k + (size_t)b * m;
    const float *restrict v = a->v + (size_t)b * dv;
    float *restrict y = a->y + (size_t)b * dv;
    const float eps = a->eps_row ? a->eps_row[b] : a->eps;
    const int den = a->recur_norm == ATTN_RN_RULE && update != ATTN_UPD_DELTA;
    float ys = 1.0f, ks = 1.0f;
    long small = 0; /* 1 when the normaliser is <= eps in absolute value */
    if (a->recur_norm == ATTN_RN_SUM) {
        const float d = row_sum(q, m);
        ys = 1.0f / (d + eps);
        ks = 1.0f / (row_sum(k, m) + eps);
        small = fabsf(d) <= eps;
    }
    memset(y, 0, (size_t)dv * sizeof *y);
    if (update == ATTN_UPD_DELTA) {
        /* w = β (v − Sᵀk̂) first (into u): the update needs the whole product. */
        memset(u, 0, (size_t)dv * sizeof *u);
        for (int i = 0; i < m; i++) {
            const float ki = k[i];
            const float *restrict Si = S + (size_t)i * dv;
            for (int c = 0; c < dv; c++)
                u[c] += ki * Si[c];
        }
        const float beta = gate_at(a, update, b, 0) * ks;
        for (int c = 0; c < dv; c++)
            u[c] = beta * (v[c] - ks * u[c]);
        for (int i = 0; i < m; i++) {
            const float ki = k[i], qi = q[i];
            float *restrict Si = S + (size_t)i * dv;
            for (int c = 0; c < dv; c++) {
                Si[c] += ki * u[c];
                y[c] += qi * Si[c];
            }
        }
    } else {
        for (int i = 0; i < m; i++) {
            const float g = gate_at(a, update, b, i), ki = k[i] * ks, qi = q[i];
            float *restrict Si = S + (size_t)i * dv;
            for (int c = 0; c < dv; c++) {
                Si[c] = g * Si[c] + ki * v[c];
                y[c] += qi * Si[c];
            }
        }
        if (den) { /* z and its normaliser as the forward's scales form them */
            const float *G = update == ATTN_UPD_GATED && a->gate ? a->gate + (size_t)b * m : NULL;
            small = la_gate_den(la_simd_isa(), 1, m, q, k, G, G ? 1.0f : gate_at(a, update, b, 0),
                                m, eps, NULL, z, &ys);
        }
    }
    for (int c = 0; c < dv; c++)
        y[c] *= ys;
    return small;
}

/* Step workspace: dv floats of scratch per thread. */
size_t attn_recur_step_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    (void)T, (void)dk, (void)causal, (void)chunk;
    return la_pad16((size_t)dv) * (size_t)(threads > 1 ? threads : 1);
}

static void step_run(struct attn_args *a, int update)
{
    const int B = a->T, m = a->dk, dv = a->dv, nth = a->threads > 1 ? a->threads : 1;
    const size_t sf = attn_linear_state_floats(1, m, dv);
    float *const work = la_align_work(a->work);
    long small = 0;
#pragma omp parallel num_threads(nth) if (nth > 1 && B > 1) reduction(+ : small)
    {
        float *u = work + la_pad16((size_t)dv) * (size_t)omp_get_thread_num();
#pragma omp for
        for (int b = 0; b < B; b++) {
            float *S = a->state + (size_t)b * sf;
            small += step_one(a, update, b, S, S + (size_t)m * dv, u);
        }
    }
    a->n_small_den = small;
}

void attn_delta_step(struct attn_args *a) { step_run(a, ATTN_UPD_DELTA); }
void attn_decay_step(struct attn_args *a) { step_run(a, ATTN_UPD_DECAY); }
void attn_gated_step(struct attn_args *a) { step_run(a, ATTN_UPD_GATED); }
