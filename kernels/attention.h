/* attention.h — the attention kernels: double references and fp32 fast kernels, one signature.
 *
 * Shapes (row-major, one head):
 *   softmax kernels:  Q, K: (T, dk) with dk = d;   V, Y: (T, dv)
 *   linear kernels:   Q, K hold φ(Q), φ(K): (T, dk) with dk = m;   V, Y: (T, dv)
 * Softmax:  Y = softmax(Q Kᵀ / √d) V; causal: row i sees keys j <= i.
 * Linear:   Y_i = φ(q_i)ᵀ S_i / (φ(q_i)ᵀ z_i + eps), S_i = Σ_j φ(k_j) v_jᵀ, z_i = Σ_j φ(k_j),
 *           over all j (non-causal) or j <= i (causal).  eps is a parameter and is reported.
 *
 * Fast kernels never allocate: callers size a workspace with attn_workspace_floats() and
 * allocate (and touch) it before any timed region.  Batch × heads is attn_run_heads(), with
 * OpenMP over heads.  Nominal flop counts (attn_nominal_flops) are what efficiency is computed
 * from, whatever the algorithm does inside:
 *   softmax: 2·T²·(d + dv) non-causal, half that causal (QKᵀ: 2·T²·d, PV: 2·T²·dv; so
 *            4·T²·d when dv = d; the T² exps are not counted);
 *   linear:  4·T·m·dv + 4·T·m (state and output products, plus the normaliser), causal or not.
 */
#ifndef LA_ATTENTION_H
#define LA_ATTENTION_H

#include <stddef.h>

/* ---- references (double; readable; tested against the slow definitions) ---- */

/* Q, K: (T, d); V, Y: (T, dv).  Scale is 1/√d.  Allocates nothing (O(T) scratch is on the
 * caller: scores must hold T doubles). */
void attn_softmax_ref(const double *Q, const double *K, const double *V, double *Y, int T, int d,
                      int dv, int causal, double *scores);

/* Softmax reference for a subset of query rows: rows[i] (ascending not required) → Y row i.
 * Used when T is too large for all rows.  scores: T doubles. */
void attn_softmax_ref_rows(const double *Q, const double *K, const double *V, double *Y, int T,
                           int d, int dv, int causal, const int *rows, int nrows, double *scores);

/* The softmax attention weights of one query row q (d) over keys K[0..n) into p (n doubles,
 * summing to 1): passes 1–3 of the reference. */
void attn_softmax_probs(const double *q, const double *K, int n, int d, double *p);

/* PQ, PK: (T, m) features; V, Y: (T, dv).  Returns the number of rows whose normaliser
 * φ(q_i)ᵀz_i was <= eps in absolute value.  Direct O(T²) evaluation of the defining sums in the
 * same order as the definition (no algebraic rearrangement). */
long attn_linear_ref(const double *PQ, const double *PK, const double *V, double *Y, int T, int m,
                     int dv, int causal, double eps);

/* The same for the query rows rows[0..nrows): row rows[r] of the full output goes to Y row r
 * (bit-identical to the corresponding rows of attn_linear_ref).  eps_row (T floats, or NULL):
 * per-row eps as in attn_args.eps_row. */
long attn_linear_ref_rows(const double *PQ, const double *PK, const double *V, double *Y, int T,
                          int m, int dv, int causal, double eps, const float *eps_row,
                          const int *rows, int nrows);

/* ---- fast fp32 kernels, behind one signature ---- */

struct attn_args {
    const float *q, *k, *v; /* q, k: (T, dk); v: (T, dv) */
    float *y;               /* (T, dv) */
    int T, dk, dv;
    int causal;
    float eps;   /* linear: normaliser eps; softmax: unused */
    const float *eps_row; /* linear, optional: per-row eps (T floats per head) replacing eps,
                             for stabilised features whose rows were rescaled: eps·e^{-shift}
                             keeps eps meaning what it means for the defining formula */
    int chunk;   /* linear_causal_chunked: chunk size C (0 = default) */
    int threads; /* threads inside one head (1 = none); kernels may ignore it */
    float *work; /* workspace of attn_workspace_floats() floats */
    long n_small_den; /* out (linear): rows whose |normaliser| <= eps */
};

/* ATTN_LINEAR_SEED: a linear kernel that takes RAW q, k (d = m) and applies the elu+1 map
 * itself; only the timing baseline attn_linear_causal_seed has it, and it is not in
 * attn_kernels[] (nothing that walks the table sees it).  Its nominal flops are linear's. */
enum attn_family { ATTN_SOFTMAX = 0, ATTN_LINEAR = 1, ATTN_LINEAR_SEED = 2 };

/* One row of the kernel table. */
struct attn_kernel {
    const char *name;    /* e.g. "softmax_flash", "linear_causal_chunked"; goes into results */
    const char *summary; /* one line for `linattn list` */
    int family;          /* enum attn_family: softmax kernels take Q, K; linear take φ(Q), φ(K) */
    int causal_support;  /* bit 0: non-causal supported, bit 1: causal supported */
    size_t (*workspace)(int T, int dk, int dv, int causal, int chunk, int threads);
    void (*run)(struct attn_args *a);
};

#define ATTN_NONCAUSAL_OK 1
#define ATTN_CAUSAL_OK 2

extern const struct attn_kernel attn_kernels[];
size_t attn_kernel_count(void);
const struct attn_kernel *attn_kernel_lookup(const char *name);
const char *const *attn_kernel_names(void); /* NULL-terminated, static */

/* Workspace floats for one head of kernel kn at this shape.  Any float-aligned buffer does:
 * the size includes room for the kernels to start their buffers on a 64-byte line. */
size_t attn_workspace_floats(const struct attn_kernel *kn, int T, int dk, int dv, int causal,
                             int chunk, int threads);

/* Runs kernel kn over H heads stored back to back (head h at q + h·T·dk, ...).  H >= nthreads:
 * OpenMP over heads, each head on one thread using work + t·ws (t = the thread's number), so
 * work must hold min(H, nthreads)·ws floats with ws sized for 1 thread.  H < nthreads: the heads
 * run one after another with every thread inside each (args.threads = nthreads), so ws must be
 * sized for nthreads threads.  Returns the summed n_small_den. */
long attn_run_heads(const struct attn_kernel *kn, const struct attn_args *proto, int H,
                    int nthreads, float *work, size_t ws);

/* Nominal flops of one head, as documented above. */
double attn_nominal_flops(const struct attn_kernel *kn, int T, int dk, int dv, int causal);

/* 1 if the kernel reads args.chunk: linear_causal_chunked, and `linear_causal` only when
 * kernels/registry.c makes the chunked algorithm its default (the recurrent one is).  For
 * these the chunk size is a real parameter of the measurements. */
int attn_kernel_uses_chunk(const struct attn_kernel *kn);

/* The default chunk size of linear_causal_chunked for (m, dv). */
int attn_default_chunk(int m, int dv);

/* The seed's literal loop (kernels/seed_baseline.c), family ATTN_LINEAR_SEED, causal only:
 * the baseline `bench --suite` reports the default causal kernel's speedup over. */
extern const struct attn_kernel attn_linear_causal_seed;

/* Individual kernels (also reachable through the table). */
void attn_softmax_flash(struct attn_args *a);
void attn_linear_noncausal(struct attn_args *a);
void attn_linear_causal_recurrent(struct attn_args *a);
void attn_linear_causal_chunked(struct attn_args *a);

/* The environment that picks kernel code paths (LINATTN_SIMD, LINATTN_VMATH): 0 when unset or
 * valid on this CPU, else -1 with a one-line reason naming the valid values in msg.  The CLI's
 * start-up check. */
int la_env_check(char *msg, size_t cap);
/* The SIMD path the kernels use: "avx512", "avx2" or "scalar" (recorded in results files). */
const char *la_simd_path(void);

#endif
