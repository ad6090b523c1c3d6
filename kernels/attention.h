/* attention.h — the attention kernels: double references and fp32 fast kernels, one signature,
 * and the kernel table that says what each kernel is (its operation, inputs, capabilities,
 * reference, flop and byte models).
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
 * OpenMP over heads.  Nominal flop counts (attn_nominal_flops, the entry's flops model) are
 * what efficiency is computed from, whatever the algorithm does inside:
 *   softmax: 2·T²·(d + dv) non-causal, half that causal (QKᵀ: 2·T²·d, PV: 2·T²·dv; so
 *            4·T²·d when dv = d; the T² exps are not counted);
 *   linear:  4·T·m·dv + 4·T·m (state and output products, plus the normaliser), causal or not.
 * Nominal bytes (attn_nominal_bytes, the entry's bytes model) are the compulsory memory traffic
 * of one head in fp32: every input read once and every output written once, plus a carried
 * state read once and written once where the operation has one.  A forward kernel reads q, k
 * (T·dk each) and v (T·dv) and writes y (T·dv): 4·(2·T·dk + 2·T·dv) bytes, causal or not.
 * Workspace traffic, re-reads of K and V (a tiled softmax reads them once per query block) and
 * cache misses are not counted: it is a lower bound, the same for every algorithm of an operation.
 *
 * Linear prefill and step (causal; the state of one sequence is S (m × dv) and z (m)):
 *   prefill of T tokens: flops 4·T·m·dv + 4·T·m, as the forward kernel (per token z += φ(k):
 *            m; φ(q)ᵀz: 2·m; S += φ(k)vᵀ: 2·m·dv; φ(q)ᵀS: 2·m·dv; the m left over and the dv
 *            scalings are the forward model's convention); bytes 4·(2·T·m + 2·T·dv) for the
 *            tokens plus 2·4·(m·dv + m) for the state read on entry and written on return.
 *   step of B sequences (T = B, one token each): flops 4·B·m·dv + 4·B·m (the prefill of one
 *            token per sequence); bytes 4·B·(2·m + 2·dv) + 2·4·B·(m·dv + m): at decode sizes
 *            the state dominates, so a step is bound by where the states live.
 *
 * Softmax prefill and step (causal, input ATTN_IN_QK; the state of one sequence is its
 * key-value cache, below): the cost grows with the tokens already cached, pos, so these entries
 * have flops_at and bytes_at (attn_nominal_flops_at, attn_nominal_bytes_at); their flops and
 * bytes are the pos = 0 case.  Token i of a call (0-based) is at position pos + i and sees the
 * pos + i + 1 tokens 0 .. pos + i:
 *   prefill of T tokens: flops 2·(d + dv)·Σ_i (pos + i + 1) = 2·(d + dv)·(T·pos + T(T+1)/2)
 *            (QKᵀ and PV of every visible pair, exps not counted); bytes 4·(2·T·d + 2·T·dv)
 *            for the tokens plus 4·(pos + T)·(d + dv): the cached keys and values read once and
 *            the T new ones written once (tiled re-reads not counted).
 *   step of B sequences (T = B, each at pos): flops 2·B·(pos + 1)·(d + dv); bytes
 *            4·B·(2·d + 2·dv) + 4·B·(pos + 1)·(d + dv): a step at context t = pos + 1 moves
 *            t·(d + dv) floats of cache per sequence (t − 1 read, 1 written), so it is bound by
 *            the bandwidth of wherever the cache lives.
 *
 * The key-value cache (attn_args.state of softmax_prefill and softmax_step): blocks of
 * ATTN_KV_BLOCK tokens; block b (tokens b·ATTN_KV_BLOCK ..) starts at float
 * b·ATTN_KV_BLOCK·(d + dv) and holds its keys transposed (d × ATTN_KV_BLOCK: key c of token
 * b·ATTN_KV_BLOCK + j at [c·ATTN_KV_BLOCK + j]) then its values (ATTN_KV_BLOCK × dv, row-major).
 * A step reads whole blocks front to back (the scores of a block are one vector pass over its
 * keys, its output one over its values).  A cache with room for CAP tokens is
 * attn_state_floats(kn, CAP, d, dv) = ⌈CAP/ATTN_KV_BLOCK⌉·ATTN_KV_BLOCK·(d + dv) floats
 * (monotone in CAP); where a block sits does not depend on CAP, so a cache grows by
 * reallocation (attn_kv_reserve) and one sized for CAP serves any pos + T <= CAP.  Only tokens
 * 0 .. pos + T − 1 are ever read; the rest may hold anything.
 * Backward (grad_q, grad_k, grad_v from grad_y and q, k, v; the forward's y is not an input):
 *   flops:   softmax 2.5× its forward model: 5·T²·(d + dv) non-causal, half that causal
 *            (the five products S = QKᵀ again, dP = dY Vᵀ, dV = Pᵀ dY, dQ = dS K, dK = dSᵀ Q
 *            are 2·T²·(3·d + 2·dv), which is that when dv = d); linear 2× its forward model,
 *            8·T·m·dv + 8·T·m, causal or not.
 *   bytes:   q, k, v and grad_y read once, grad_q, grad_k, grad_v written once:
 *            4·(4·T·dk + 4·T·dv).
 *   softmax_flash_backward recomputes the forward pass itself (output rows and each row's
 *   log-sum-exp, tile by tile, never the T×T matrix) before the backward tiles: it needs no
 *   saved forward state, and it does 2·T²·(d + dv) more than its model (see
 *   kernels/softmax_backward.c).  The linear backward kernels recompute the normalisers:
 *   linear_noncausal_backward (GEMMs), linear_causal_backward (the paper's forward and reverse
 *   sweeps, token by token) and linear_causal_chunked_backward (the same sweeps a chunk of C
 *   rows at a time, masked tiles inside a chunk; it reads chunk as linear_causal_chunked does
 *   and runs more than the model, the triangles: kernels/linear_backward.c).  Threads inside
 *   one head (attn_args.threads): the non-causal and chunked backward kernels split the rows
 *   (the chunked one by ranges of chunks, with a first pass for the states entering each);
 *   linear_causal_backward runs on one.
 */
#ifndef LA_ATTENTION_H
#define LA_ATTENTION_H

#include <stddef.h>

/* Tokens per block of a softmax key-value cache (the layout above). */
#define ATTN_KV_BLOCK 64

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

/* The operation a kernel performs. */
enum attn_op {
    ATTN_OP_FORWARD = 0, /* y from q, k, v over T tokens, no state in or out */
    ATTN_OP_PREFILL,     /* causal: T tokens appended to a carried state, y for each */
    ATTN_OP_STEP,        /* causal: one token for each of T = B independent sequences
                            appended to that sequence's state, its y */
    ATTN_OP_BACKWARD,    /* grad_q, grad_k, grad_v from grad_y (and q, k, v) */
};

/* The operation's name: "forward", "prefill", "step", "backward" (`linattn list`, messages). */
const char *attn_op_name(enum attn_op op);

/* What a kernel's q, k inputs hold, and so what it computes from them. */
enum attn_input {
    ATTN_IN_QK = 0,   /* raw Q, K (dk = d), scored by softmax(q·k/√d): softmax attention */
    ATTN_IN_FEATURES, /* φ(Q), φ(K) from a feature map the caller applies (dk = m): linear
                         attention */
    ATTN_IN_QK_ELU1,  /* raw Q, K (dk = d = m); the kernel applies elu+1 itself: linear
                         attention with a built-in map (the seed baseline) */
};

/* Elementwise feature maps a linear kernel can apply itself (attn_args.fused_map, on kernels
 * whose table entry has fuses_map): q and k then hold raw rows (dk = d = m) and the kernel maps
 * each block of rows into its workspace just before the block's products read it, so φ(Q) and
 * φ(K) never go to memory as a separate pass.  attn_map_rows is the one definition of these
 * maps, used by the fused kernels and by the feature maps (featuremaps/elu1.c, relu.c), so a
 * fused kernel sees exactly the features the map writes and its output is the same, bit for
 * bit, as that of the kernel on the map's features.  The nominal flops of a fused call are the
 * kernel's alone (the map's are not counted). */
enum attn_fused_map {
    ATTN_MAP_NONE = 0, /* q, k hold features (or softmax's raw rows): nothing applied */
    ATTN_MAP_ELU1,     /* φ(x) = x >= 0 ? x + 1 : exp(x) (featuremaps/elu1.c) */
    ATTN_MAP_RELU,     /* φ(x) = max(x, 0) + map_eps (featuremaps/relu.c) */
};

/* phi[i] = φ(x[i]) for i < n with the map `map` (enum attn_fused_map; ATTN_MAP_NONE copies);
 * map_eps is relu's constant.  x and phi may be the same array.  NaN stays NaN.  Each
 * element's result depends only on its input (la_vexpf's contract), never on n or position. */
void attn_map_rows(int map, float map_eps, const float *x, float *phi, size_t n);

/* "none", "elu1", "relu". */
const char *attn_fused_map_name(int map);

struct attn_args {
    const float *q, *k, *v; /* q, k: (T, dk); v: (T, dv) */
    float *y;               /* (T, dv) */
    int T, dk, dv;
    int causal;
    float eps;   /* linear: normaliser eps; softmax: unused */
    const float *eps_row; /* linear, optional: per-row eps (T floats per head) replacing eps,
                             for stabilised features whose rows were rescaled: eps·e^{-shift}
                             keeps eps meaning what it means for the defining formula */
    int chunk;   /* kernels with uses_chunk: chunk size C (0 = default) */
    int threads; /* threads inside one head (1 = none); kernels may ignore it */
    float *work; /* workspace of attn_workspace_floats() floats */
    long n_small_den; /* out (linear): rows whose |normaliser| <= eps */
    int fused_map;    /* enum attn_fused_map: the map the kernel applies to q and k itself
                         (kernels with fuses_map; the others need ATTN_MAP_NONE) */
    float map_eps;    /* ATTN_MAP_RELU: its constant */

    /* Prefill and step only (forward kernels neither read nor write these).  Step: T is the
     * number of sequences B; row b of q, k, v and y is sequence b's token, and state holds the
     * B states back to back (sequence b's at b·attn_state_floats()); threads may split the
     * sequences. */
    float *state; /* the carried state of one head, attn_state_floats() floats, read on entry
                     and written on return; linear: S (dk × dv, row-major), then z (dk), all
                     zero for an empty state; softmax: the K, V cache */
    int pos;      /* tokens already in the state (0: empty); the first token's position (linear
                     kernels do not read it: their state has one size) */
    int cap;      /* softmax (a KV cache): the tokens one sequence's cache has room for, so its
                     state is attn_state_floats(kn, cap, dk, dv) floats and sequence b of a step
                     starts at b times that; needs pos + T <= cap (prefill), pos + 1 <= cap
                     (step).  0: a cache sized exactly, pos + T (prefill) or pos + 1 (step).
                     Linear kernels do not read it */

    /* Backward only (forward kernels neither read nor write these).  A backward kernel reads
     * q, k, v (features for linear kernels: the gradients are w.r.t. φ(Q), φ(K) and V), eps
     * (or eps_row), threads and work, and writes the three gradients; y may be NULL (softmax
     * writes the recomputed output there when it is not), n_small_den as the forward. */
    const float *grad_y;    /* in: the upstream gradient ∂L/∂y, (T, dv) */
    float *grad_q, *grad_k; /* out: ∂L/∂q, ∂L/∂k, (T, dk) */
    float *grad_v;          /* out: ∂L/∂v, (T, dv) */

    /* Recurrences only (kernels whose update is not ATTN_UPD_SUM; the others neither read nor
     * write these).  The gate of the update rule (see "Recurrences" at the end of this file):
     *   delta: β_t, T floats (one per token; a step: one per sequence);
     *   decay: γ, 1 float (the head's; attn_run_heads gives head h gate + h);
     *   gated: α_t, T × dk floats (row t: token t's gate of the dk state rows).
     * gate = NULL: every β_t, γ or α_t[i] is gate_const.  attn_gate_floats() is the count. */
    const float *gate;
    float gate_const;
    int recur_norm; /* ATTN_RN_*: the output normaliser (0: the rule's default) */
};

/* ---- double references, one signature ---- */

/* Arguments of a reference: the kernel's arguments in double, same shapes and meaning (the
 * references of prefill, step and backward add the fields attn_args has for them). */
struct attn_ref_args {
    const double *q, *k, *v; /* exactly what the kernel takes: q, k: (T, dk); v: (T, dv) */
    double *y;               /* (T, dv) */
    int T, dk, dv;
    int causal;
    double eps;              /* linear: normaliser eps */
    double *scratch;         /* attn_ref.scratch(T, dk, dv) doubles */
    long n_small_den;        /* out (linear): rows whose |normaliser| <= eps */
    double *state;           /* prefill and step: the carried state, read and written, in
                                attn_args.state's place (linear prefill: S (dk × dv) then z (dk)
                                of one sequence; linear step: T such states back to back;
                                softmax: each sequence's cache, see attn_softmax_prefill_ref) */
    int pos, cap;            /* prefill and step: as attn_args.pos and attn_args.cap */
    const double *grad_y;    /* backward: in, ∂L/∂y (T, dv) */
    double *grad_q, *grad_k; /* backward: out, (T, dk) */
    double *grad_v;          /* backward: out, (T, dv); y is written too when not NULL */
    const double *gate;      /* recurrences: as attn_args.gate, gate_const and recur_norm */
    double gate_const;
    int recur_norm;
};

/* The double reference that checks one kind of kernel (struct attn_kernel.ref). */
struct attn_ref {
    const char *name;                         /* "softmax", "linear", "linear_elu1" */
    double tol;                               /* the relative Frobenius error an fp32 kernel
                                                 may have against it (ATTN_TOL_*) */
    size_t (*scratch)(int T, int dk, int dv); /* doubles of scratch run needs (prefill and step
                                                 of a KV cache: T = the cache's capacity) */
    void (*run)(struct attn_ref_args *a);     /* y (and n_small_den) from q, k, v */
};

/* Tolerances stated for fp32 kernels against double references (relative Frobenius). */
#define ATTN_TOL_SOFTMAX 2e-5
#define ATTN_TOL_LINEAR 2e-5
/* Gradients (the largest relative Frobenius error of grad_q, grad_k, grad_v): the backward sums
 * are longer and dS = P ∘ (dP − D) subtracts, so fp32 kernels are held to a looser bound. */
#define ATTN_TOL_BACKWARD 1e-4

extern const struct attn_ref attn_ref_softmax;     /* attn_softmax_ref */
extern const struct attn_ref attn_ref_linear;      /* attn_linear_ref */
extern const struct attn_ref attn_ref_linear_elu1; /* attn_linear_ref on elu+1(q), elu+1(k) */
extern const struct attn_ref attn_ref_linear_prefill; /* attn_linear_prefill_ref */
extern const struct attn_ref attn_ref_linear_step;    /* attn_linear_step_ref */
extern const struct attn_ref attn_ref_softmax_prefill; /* attn_softmax_prefill_ref */
extern const struct attn_ref attn_ref_softmax_step;    /* attn_softmax_step_ref */
extern const struct attn_ref attn_ref_softmax_backward; /* attn_softmax_backward_ref */
extern const struct attn_ref attn_ref_linear_backward;  /* attn_linear_backward_ref */

/* Softmax attention's gradients from the definition (kernels/backward_ref.c): with P the
 * attention weights of attn_softmax_ref (scale 1/√d), dP = dY Vᵀ, D_i = Σ_j P_ij dP_ij,
 * dS = P ∘ (dP − D):  dQ = scale·dS K,  dK = scale·dSᵀ Q,  dV = Pᵀ dY, summed directly in
 * O(T²·(d + dv)).  Y (or NULL) gets the forward output.  scratch: 2·T doubles. */
void attn_softmax_backward_ref(const double *Q, const double *K, const double *V,
                               const double *dY, double *Y, double *dQ, double *dK, double *dV,
                               int T, int d, int dv, int causal, double *scratch);

/* Linear attention's gradients w.r.t. the features φ(Q), φ(K) and V from the definition, the
 * normaliser included: with s_ij = φ(q_i)ᵀφ(k_j), den_i = Σ_j s_ij + eps, y_i = Σ_j s_ij v_j /
 * den_i, a_i = dy_i / den_i and b_i = −dy_i·y_i / den_i, each pair (i, j) with j in row i's
 * range adds c_ij = a_i·v_j + b_i times φ(k_j) to dφ(q_i), c_ij·φ(q_i) to dφ(k_j) and s_ij·a_i
 * to dv_j; O(T²·(m + dv)).  Y (or NULL) gets the forward output.  Returns the rows whose
 * normaliser was <= eps in absolute value.  scratch: dv doubles. */
long attn_linear_backward_ref(const double *PQ, const double *PK, const double *V,
                              const double *dY, double *Y, double *dQ, double *dK, double *dV,
                              int T, int m, int dv, int causal, double eps, double *scratch);

/* Causal linear attention continuing from a state, from the definition: row i of Y is
 *   (φ(q_i)ᵀ(S0 + Σ_{j<=i} φ(k_j) v_jᵀ)) / (φ(q_i)ᵀ(z0 + Σ_{j<=i} φ(k_j)) + eps)
 * with S0, z0 the state on entry (state: S (m × dv) then z (m)), summed directly in O(T²·m);
 * on return state holds S0 + Σ_j φ(k_j) v_jᵀ and z0 + Σ_j φ(k_j).  Returns the rows whose
 * normaliser was <= eps in absolute value. */
long attn_linear_prefill_ref(const double *PQ, const double *PK, const double *V, double *Y,
                             int T, int m, int dv, double eps, double *state);

/* One token for each of B sequences: row b of PQ, PK, V, Y is sequence b's, whose state (S, z)
 * is at state + b·(m·dv + m); each is the prefill of one token.  Returns the small rows. */
long attn_linear_step_ref(const double *PQ, const double *PK, const double *V, double *Y, int B,
                          int m, int dv, double eps, double *state);

/* Causal softmax attention continuing a key-value cache, from the definition: the T new rows of
 * K and V are stored at positions pos .. pos + T − 1 of the cache, then row i of Y is
 *   Σ_{j <= pos+i} softmax_j(q_i·k_j/√d) v_j   over the cached keys and values.
 * The reference's own cache layout, in the doubles of one sequence's state: keys (cap × d) then
 * values (cap × dv), row-major (cap·(d + dv) <= attn_state_floats at cap, so it fits where the
 * kernel's cache does).  scores: pos + T doubles. */
void attn_softmax_prefill_ref(const double *Q, const double *K, const double *V, double *Y, int T,
                              int d, int dv, int pos, int cap, double *state, double *scores);

/* One token for each of B sequences, all at pos: row b of Q, K, V, Y is sequence b's, whose
 * cache (the prefill reference's layout) starts at state + b·stride; each is the prefill of
 * one token.  scores: pos + 1 doubles. */
void attn_softmax_step_ref(const double *Q, const double *K, const double *V, double *Y, int B,
                           int d, int dv, int pos, int cap, size_t stride, double *state,
                           double *scores);

/* One row of the kernel table: what the kernel is, as data.  Code that needs to know whether
 * a kernel takes features, reads the chunk size or carries a state reads these fields (never
 * the name or the function pointers).  One slot per line; optional slots may be NULL. */
struct attn_kernel {
    /* e.g. "softmax_flash", "linear_causal_chunked"; goes into results files */
    const char *name;
    /* one line for `linattn list` */
    const char *summary;
    /* the operation run performs */
    enum attn_op op;
    /* what q, k hold (so dk = d or m): ATTN_IN_FEATURES needs a feature map before it */
    enum attn_input input;
    /* ATTN_NONCAUSAL_OK | ATTN_CAUSAL_OK: the causalities it runs */
    int causal_support;
    /* 1: reads args.chunk, so the chunk size is a real parameter of its measurements; 0: ignores
     * it */
    int uses_chunk;
    /* 1: a forward kernel of features that applies attn_args.fused_map itself (linear
     * attention on raw q, k with an elementwise map, attention.h's enum attn_fused_map); 0:
     * reads features only, fused_map must be ATTN_MAP_NONE */
    int fuses_map;
    /* the name of the entry whose algorithm this one runs under another name (linear_causal:
     * the default causal algorithm, linear_causal_recurrent), or NULL.  Its measurements repeat
     * that entry's: a table that lists each algorithm once (`bench --suite`) skips it */
    const char *alias_of;
    /* prefill/step: floats of carried state of one sequence holding up to T tokens (linear:
     * dk·dv + dk whatever T; a KV cache grows with T).  NULL: no state (forward, backward) */
    size_t (*state_floats)(int T, int dk, int dv);
    /* the double reference that checks it */
    const struct attn_ref *ref;
    /* nominal flops and bytes of one head (the models at the top of this file) */
    double (*flops)(int T, int dk, int dv, int causal);
    double (*bytes)(int T, int dk, int dv, int causal);
    /* prefill/step whose cost grows with the tokens already in the state (a KV cache): the
     * flops and bytes of one head at pos (flops and bytes above are these at pos = 0).  NULL:
     * the cost does not depend on pos */
    double (*flops_at)(int T, int pos, int dk, int dv);
    double (*bytes_at)(int T, int pos, int dk, int dv);
    /* workspace floats of one head (callers use attn_workspace_floats, which adds the slack) */
    size_t (*workspace)(int T, int dk, int dv, int causal, int chunk, int threads);
    /* the kernel: one head */
    void (*run)(struct attn_args *a);
    /* the update rule of its state (ATTN_UPD_SUM, the zero value, for every kernel of plain
     * linear attention and for softmax): which gate it reads, which entries it chains with */
    int update;
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

/* Runs kernel kn over H heads stored back to back (head h at q + h·T·dk, ..., its state at
 * state + h·attn_call_state_floats()).  H >= nthreads:
 * OpenMP over heads, each head on one thread using work + t·ws (t = the thread's number), so
 * work must hold min(H, nthreads)·ws floats with ws sized for 1 thread.  H < nthreads: the heads
 * run one after another with every thread inside each (args.threads = nthreads), so ws must be
 * sized for nthreads threads.  Returns the summed n_small_den. */
long attn_run_heads(const struct attn_kernel *kn, const struct attn_args *proto, int H,
                    int nthreads, float *work, size_t ws);

/* Nominal flops and bytes of one head, as documented above (the entry's models). */
double attn_nominal_flops(const struct attn_kernel *kn, int T, int dk, int dv, int causal);
double attn_nominal_bytes(const struct attn_kernel *kn, int T, int dk, int dv, int causal);

/* The same with pos tokens already in the state (prefill and step; equal to the above where
 * the entry has no flops_at / bytes_at, and at pos = 0). */
double attn_nominal_flops_at(const struct attn_kernel *kn, int T, int pos, int dk, int dv,
                             int causal);
double attn_nominal_bytes_at(const struct attn_kernel *kn, int T, int pos, int dk, int dv,
                             int causal);

/* Floats of carried state of one sequence holding up to T tokens (0 for an operation without
 * state). */
size_t attn_state_floats(const struct attn_kernel *kn, int T, int dk, int dv);

/* Floats of state one call of kn on one head reads and writes: a prefill's one sequence
 * (attn_state_floats), a step's T sequences (T times that), 0 without state.  For a KV cache
 * this is at capacity T; attn_args_state_floats gives a call's own. */
size_t attn_call_state_floats(const struct attn_kernel *kn, int T, int dk, int dv);

/* Floats of state the call a describes reads and writes on one head: attn_call_state_floats
 * with a KV cache's capacity a->cap (or its default, attn_args.cap).  attn_run_heads gives
 * head h the state at h times this. */
size_t attn_args_state_floats(const struct attn_kernel *kn, const struct attn_args *a);

/* Grows a buffer of B states of kn (each holding up to *cap tokens, sequence b's at
 * b·attn_state_floats(kn, *cap, dk, dv)) so that each holds at least `need` tokens: the
 * capacity at least doubles (and is at least need and one ATTN_KV_BLOCK), so over a
 * generation the copying is amortised O(1) per appended token and most appends copy nothing;
 * the contents are kept, each sequence moved to its new offset.  need <= *cap: nothing
 * happens.  *buf may be NULL (with *cap 0).  Returns 0, or -1 when out of memory (then *buf
 * and *cap are unchanged).  Callers that know the final length allocate it once instead.
 * (kernels/kv_cache.c) */
int attn_kv_reserve(const struct attn_kernel *kn, float **buf, int *cap, int need, int B, int dk,
                    int dv);

/* Stores T tokens' keys k (T × d) and values v (T × dv) at positions pos .. pos + T − 1 of one
 * sequence's key-value cache (the layout above), without attending: what softmax_prefill
 * leaves in the cache, for a caller that needs the cache and not the prefill's outputs (a
 * decode cell filling the context before the step it times).  Needs pos + T <= the cache's
 * capacity.  (kernels/softmax_decode.c) */
void attn_kv_store(float *cache, int d, int dv, int pos, int T, const float *k, const float *v);

/* The first entry of the table with this operation and input that runs this causality, or
 * NULL: what a name that stands for a kind of kernel ("linear" in experiment files) means. */
const struct attn_kernel *attn_kernel_find(enum attn_op op, enum attn_input input, int causal);

/* The backward row that trains a forward kernel's cells at this causality: the first entry with
 * ATTN_OP_BACKWARD, fwd's input and this causality whose uses_chunk is fwd's (a chunked forward
 * gets the chunked backward, with the same chunk size), else attn_kernel_find's; NULL when there
 * is none. */
const struct attn_kernel *attn_kernel_backward_of(const struct attn_kernel *fwd, int causal);

/* The default chunk size of linear_causal_chunked for (m, dv). */
int attn_default_chunk(int m, int dv);

/* The seed's literal loop (kernels/seed_baseline.c), input ATTN_IN_QK_ELU1, causal only: the
 * baseline `bench --suite` reports the default causal kernel's speedup over.  Not in
 * attn_kernels[] (nothing that walks the table sees it); its nominal flops are linear's. */
extern const struct attn_kernel attn_linear_causal_seed;

/* Individual kernels (also reachable through the table). */
void attn_softmax_flash(struct attn_args *a);
void attn_linear_noncausal(struct attn_args *a);
void attn_linear_causal_recurrent(struct attn_args *a);
void attn_linear_causal_chunked(struct attn_args *a);
void attn_linear_prefill(struct attn_args *a);
void attn_linear_step(struct attn_args *a);
void attn_softmax_prefill(struct attn_args *a);
void attn_softmax_step(struct attn_args *a);
void attn_softmax_flash_backward(struct attn_args *a);
void attn_linear_noncausal_backward(struct attn_args *a);
void attn_linear_causal_backward(struct attn_args *a);
void attn_linear_causal_chunked_backward(struct attn_args *a);

/* The environment that picks kernel code paths (LINATTN_SIMD, LINATTN_VMATH): 0 when unset or
 * valid on this CPU, else -1 with a one-line reason naming the valid values in msg.  The CLI's
 * start-up check. */
int la_env_check(char *msg, size_t cap);
/* The SIMD path the kernels use: "avx512", "avx2" or "scalar" (recorded in results files). */
const char *la_simd_path(void);

/* ---- Recurrences (kernels/recurrence.c, references in kernels/recurrence_ref.c) ----
 *
 * Causal linear attention whose state S (dk × dv) follows another update rule than the sum.
 * With q_t, k_t the features of token t (dk = m) and v_t its value:
 *   delta  S_t = S_{t−1} + β_t k_t (v_t − S_{t−1}ᵀ k_t)ᵀ            (Schlag et al. 2021)
 *   decay  S_t = γ S_{t−1} + k_t v_tᵀ,          z_t = γ z_{t−1} + k_t       (RetNet-style)
 *   gated  S_t = diag(α_t) S_{t−1} + k_t v_tᵀ,  z_t = diag(α_t) z_{t−1} + k_t  (GLA-style)
 * and the output y_t = S_tᵀ q_t scaled by the normaliser recur_norm picks:
 *   ATTN_RN_RULE (0)  decay, gated: 1 / (q_tᵀ z_t + eps), z decayed or gated as S is (so that
 *                     y_t stays a weighted mean of the values); delta: none;
 *   ATTN_RN_NONE      none: y_t = S_tᵀ q_t;
 *   ATTN_RN_SUM       q_t and k_t each divided by the sum of its entries (plus eps), as
 *                     Schlag et al. use with the delta rule, and no other normaliser.
 * Rows whose normaliser (q_tᵀz_t, or the sum of q_t) is <= eps in absolute value are counted
 * in n_small_den.  The delta rule is only stable while β_t‖k_t‖² <= 2: with raw features, give
 * it unit keys or use ATTN_RN_SUM (‖k̂‖₂ <= ‖k̂‖₁ = 1).
 * Forms: recurrent (token by token over the state), chunked (chunks of attn_args.chunk tokens
 * through GEMMs: decay and gated through the products of the gates, default chunk 64; delta
 * through the WY/UT representation, U = (I + strictly-lower(diag(β) K Kᵀ))⁻¹ diag(β) (V − K S0)
 * per chunk, default chunk 16, 6·m·dv + 4·C·(m + dv) + C²/3 flops per token against the model's
 * 6·m·dv), prefill and step (below).
 * State of one sequence (prefill, step): S (dk × dv) then z (dk), as linear attention's (delta
 * and the normalisers other than RULE leave z as it is).
 * Flops per token (the models of the table's rows): delta 6·m·dv + 2·dv (Sᵀk, the rank-one
 * update, Sᵀq; v − u and its scaling by β); decay and gated 5·m·dv + 4·m (the gate's product,
 * k vᵀ and the sum, Sᵀq; z's update and qᵀz).  Bytes: the forward model plus the gate read
 * once (delta 4·T, gated 4·T·m; decay's one float is not counted) and, for prefill and step,
 * the state read and written once per sequence. */
enum attn_update {
    ATTN_UPD_SUM = 0, /* S_t = S_{t−1} + k_t v_tᵀ: plain linear attention */
    ATTN_UPD_DELTA,
    ATTN_UPD_DECAY,
    ATTN_UPD_GATED,
};

enum attn_recur_norm {
    ATTN_RN_RULE = 0, /* the rule's own: 1/(qᵀz + eps) for decay and gated, none for delta */
    ATTN_RN_NONE,
    ATTN_RN_SUM,
};

/* "sum", "delta", "decay", "gated". */
const char *attn_update_name(int update);

/* Floats of gate one call of kn on one head reads (T = B for a step): delta T, decay 1, gated
 * T·dk, 0 for the sum rule. */
size_t attn_gate_floats(const struct attn_kernel *kn, int T, int dk);

/* The first entry with this operation, input, causality and update rule, or NULL. */
const struct attn_kernel *attn_kernel_find_update(enum attn_op op, enum attn_input input,
                                                  int causal, int update);

/* The double reference of a recurrence, token by token from its definition: T tokens appended
 * to state (S (m × dv) then z (m); zero for the forward pass), outputs into Y, the state after
 * the tokens left in state.  gate, gate_const, norm as in attn_args.  work: m + dv doubles.
 * Returns the rows whose normaliser was <= eps in absolute value. */
long attn_recur_ref(int update, const double *PQ, const double *PK, const double *V, double *Y,
                    int T, int m, int dv, double eps, const double *gate, double gate_const,
                    int norm, double *state, double *work);

/* Their references behind the one signature, per rule: forward (from an empty state),
 * prefill (from attn_ref_args.state) and step (T = B sequences, one token each). */
#define ATTN_TOL_RECUR 2e-5
extern const struct attn_ref attn_ref_delta, attn_ref_delta_prefill, attn_ref_delta_step;
extern const struct attn_ref attn_ref_decay, attn_ref_decay_prefill, attn_ref_decay_step;
extern const struct attn_ref attn_ref_gated, attn_ref_gated_prefill, attn_ref_gated_step;

/* The recurrence kernels (also reachable through the table). */
void attn_delta_recurrent(struct attn_args *a);
void attn_decay_recurrent(struct attn_args *a);
void attn_gated_recurrent(struct attn_args *a);
void attn_delta_chunked(struct attn_args *a);
void attn_decay_chunked(struct attn_args *a);
void attn_gated_chunked(struct attn_args *a);
void attn_delta_prefill(struct attn_args *a);
void attn_decay_prefill(struct attn_args *a);
void attn_gated_prefill(struct attn_args *a);
void attn_delta_step(struct attn_args *a);
void attn_decay_step(struct attn_args *a);
void attn_gated_step(struct attn_args *a);

#endif
