/* featuremap.h — the plug-in type for feature maps φ: R^d → R^m, and the generic layer.
 *
 * A map is one .c file whose only export is a `const struct featuremap_type`; registry.c lists
 * them.  The generic functions below (featuremap_alloc, featuremap_apply, featuremap_free) check
 * shapes and arguments once, so implementations trust what they are given.
 *
 * Conventions every map follows:
 *  - Rows are row-major fp32: x is (n, d), phi is (n, m).
 *  - Random maps estimate the softmax kernel exp(qᵀk/√d): they scale their input by d^{-1/4}
 *    themselves (x̃ = x·d^{-1/4}); deterministic maps (elu1, relu) define their own kernel.
 *  - Randomness comes only from the gsl_rng handed to init.  Same seed ⇒ bit-identical φ,
 *    whatever the thread count.
 *  - apply is told whether the rows are queries or keys (stabilisers differ: prf subtracts a
 *    per-row max for queries and one per-sequence constant for keys), and gets the whole
 *    sequence of one head at once, so a per-sequence constant is well defined.
 *  - apply never allocates: it gets a workspace of work_floats(state, n) floats.
 *  - backward (every map has one) is the vector–Jacobian product of apply with the
 *    stabiliser's shift held constant; its comment in struct featuremap_type says why that is
 *    the gradient of linear attention and what the caller pairs it with.  grad.c is its
 *    generic layer; featuremaps/README.md, "Backward", lists the parameter layout and costs.
 *
 * Nominal cost (featuremap_nominal_flops, featuremap_nominal_bytes: each type's flops and bytes
 * models, written in the map's own file from what its apply does).  One apply of n rows of d
 * into m features, m being the output dimension (out_dim), as a function of the shape alone, so
 * that cost models (la_cell_flops, la_cell_bytes, crossover.c's flop T*, `bench`) need no built
 * map.  Every caller uses these; none has a formula of its own.
 *  - Flops, per row: a product with m' projections (W·x, m' rows of W) is 2·d·m'; an add,
 *    subtract, multiply, divide, min or max (a compare and select: relu, elu's branches, a
 *    stabiliser's row max) is 1; an elementary function (exp, sin, cos) is 1, although
 *    kernels/vmath.c spends about fifteen operations on an exp (range reduction, a polynomial,
 *    the scaling): the count is of operations, not of time, as attention.h's is.  A squared
 *    norm of the row is 2·d.  Not counted: negations and copies, scalar work once per row (a
 *    row's scale factor), and the keys' extra pass for the call's stabiliser constant (a second
 *    row max and norm), so one model serves queries and keys.
 *  - Bytes, the compulsory traffic in fp32: the n·d inputs read once, the n·m features written
 *    once, and the map's parameters (W, offsets, biases; not scalars) read once: the model at
 *    n = 0 is the parameters alone.  Workspace traffic is not counted.
 *  - The output dimension a type gives for parameters (d, fm_params.m) is nominal_dim, also
 *    without building: for learned it is an estimate (the weights file decides).  Where it
 *    depends on another parameter (dpfp's ν), featuremap_params_dim gives it from the whole
 *    fm_params (the flops and bytes models then take that m).
 * Each map's file derives its counts; featuremaps/README.md lists them.
 */
#ifndef LA_FEATUREMAP_H
#define LA_FEATUREMAP_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "../harness/core/status.h"
#include "../kernels/attention.h"

enum fm_role {
    FM_QUERY = 0, /* rows are queries */
    FM_KEY = 1,   /* rows are keys (one sequence of one head) */
    FM_RAW = 2,   /* the defining formula with no stabiliser (kernel-MSE metrics, unbiasedness
                   * tests); may overflow.  Maps without a stabiliser treat it as FM_QUERY. */
    FM_RAW_KEY = 3 /* FM_RAW for rows that are keys: a map with separate query and key maps
                    * (featuremap_type.two_sided) applies its key map; for every other map the
                    * generic layer passes FM_RAW instead */
};

enum fm_draw {
    FM_DRAW_IID = 0,       /* rows of W drawn iid N(0, I_d) */
    FM_DRAW_ORTHOGONAL = 1 /* blocks of W from QR of d×d Gaussians, rows rescaled */
};

/* Parameters of a map.  featuremap_params_default() fills sensible defaults; a map reads the
 * fields it needs and ignores the rest.  Listed in `linattn list` through featuremap_type.params. */
struct fm_params {
    int d;               /* input dimension (head dimension) */
    int m;               /* number of features / random draws; 0 = the map's default */
    int draw;            /* enum fm_draw */
    int norm_fixed;      /* orthogonal draws: 1 = row norms fixed at √d, 0 = χ(d) draws */
    double A;            /* gerf: the parameter A (1 − 4A > 0) */
    int A_auto;          /* gerf: 1 = choose A from the data (featuremap_fit) */
    double eps;          /* relu: the small constant added to max(x, 0) */
    const char *weights; /* learned: path of the HDF5 weights file */
    int nu;              /* dpfp: ν, the number of shifted products (1..3; m = 2dν) */
    int layer, head;     /* learned: the captured layer and head the map runs on, which selects a
                          * per-head weights file's entry; -1 = not one captured head (synthetic
                          * data, or all heads of a layer at once) */
    unsigned long seed;  /* recorded; the rng handed to init is seeded from it by the caller */
};

/* The plug-in type.  Optional methods may be NULL. */
struct featuremap_type {
    const char *name;    /* registry name, also written into results files */
    const char *summary; /* one line for `linattn list` */
    const char *params;  /* the fm_params fields it reads, e.g. "m, draw, seed" */
    size_t state_size;   /* bytes of state the generic layer allocates (zeroed) for init */
    int random;          /* 1 if it draws from the rng (estimates the softmax kernel) */
    int two_sided;       /* 1 if queries and keys may have different maps: apply then gets
                          * FM_RAW_KEY for raw keys, and kernel(q, k) is not symmetric */
    int fused_map;       /* enum attn_fused_map (kernels/attention.h): the elementwise form of this
                          * map that a linear kernel with fuses_map applies itself, giving the
                          * same features bit for bit (apply calls attn_map_rows); 0
                          * (ATTN_MAP_NONE): none.  featuremap_fused gives it with its constant */

    /* The nominal cost of one apply of n rows of d into m features (the convention at the top
     * of this file): flops, and compulsory bytes (n = 0: the parameters alone). */
    double (*flops)(size_t n, int d, int m);
    double (*bytes)(size_t n, int d, int m);
    /* The output dimension init gives for input dimension d and fm_params.m = m (0 = the
     * map's default), without building the map. */
    double (*nominal_dim)(int d, int m);
    /* The output dimension init gives for all of p, for a map whose dimension depends on a
     * parameter besides d and m (dpfp: 2·d·ν); NULL: nominal_dim(p->d, p->m). */
    double (*params_dim)(const struct fm_params *p);

    /* Reads params, draws its randomness from rng (may be NULL for deterministic maps), and
     * fills state.  Returns LA_OK or an LA_E* code with err filled (e.g. m = 0, missing file). */
    int (*init)(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err);

    /* Output dimension m (the length of one φ row). */
    int (*out_dim)(const void *state);

    /* Floats of workspace apply needs for n rows (NULL: none). */
    size_t (*work_floats)(const void *state, size_t n);

    /* Optional: adapt data-dependent parameters (gerf's A: auto) from sample queries and keys
     * (nq and nk rows of d).  Called once before apply, outside any timed region. */
    int (*fit)(void *state, const float *q, size_t nq, const float *k, size_t nk,
               struct la_error *err);

    /* φ of n rows: x (n, d) → phi (n, m).  Never allocates; work has work_floats(n) floats.
     * A stabilised map divides row r by exp(shift[r]) to keep exp() in range (prf: per row
     * for queries, one constant for all keys of the call); it writes shift[r] when shift is
     * not NULL (0 for maps without a stabiliser, and for FM_RAW).  The kernels use it to keep
     * the normaliser's eps meaning what it means for the unstabilised features. */
    void (*apply)(const void *state, enum fm_role role, const float *x, size_t n, float *phi,
                  float *work, float *shift);

    /* Frees what init allocated inside state (not state itself).  May be NULL. */
    void (*release)(void *state);

    /* Optional: the kernel the map estimates or defines, k(q, k) for two rows of d, in double.
     * NULL means "the softmax kernel exp(qᵀk/√d)" (random maps). */
    double (*kernel)(const void *state, const double *q, const double *k, int d);

    /* Optional: the value a named parameter has now ("A" after gerf's fit), NAN if the map
     * has no such parameter.  Lets the harness record data-dependent choices. */
    double (*param)(const void *state, const char *name);

    /* ---- Backward (optional; featuremaps/grad.c has the generic layer) ----
     * The vector–Jacobian product of the map: given x (n, d), the φ (n, m) that apply wrote for
     * these rows, and g = ∂L/∂φ (n, m), write ∂L/∂x (n, d) and, for a map with trainable
     * parameters, add ∂L/∂θ to dparams.  It is the derivative of the defining formula with
     * the stabiliser's shift held constant: each map writes its Jacobian through φ itself
     * (e.g. ∂φ_i/∂x = φ_i·(∇u_i − ∇h) for prf), so the same code serves every role and reads
     * no shift.  Why holding the shift is right: linear attention
     *     y_i = φ(q_i)ᵀS / (φ(q_i)ᵀz + eps_i),   S = Σ_j φ(k_j)v_jᵀ,  z = Σ_j φ(k_j)
     * is unchanged when row i of φ(Q) and eps_i are divided by one factor e^{s_i}, and when
     * every row of φ(K) and every eps_i are divided by one factor e^{c}: the harness's per-row
     * eps, eps_i = eps·exp(−shift_q,i − shift_k) (attn_args.eps_row), divides with them.  So
     * ∂L/∂s_i = 0 and ∂L/∂c = 0, and the chain rule through the shifts' own dependence on x
     * (a row max, not even smooth) contributes nothing.  The caller pairs this backward with
     * an attention backward that takes the stabilised features and holds eps_row constant (the
     * eps_row the forward used); the result is then the exact gradient of the unstabilised
     * attention.  With one plain eps for every row instead, the shift would not cancel against
     * eps and the result would be the gradient of a slightly different function (off by terms
     * of order eps/normaliser).  FM_RAW features (shift 0) need no pairing.
     * Floats of workspace backward needs for n rows (NULL: none); fixed for n past a few
     * hundred rows: the passes run in blocks of rows. */
    size_t (*backward_work_floats)(const void *state, size_t n);
    /* x (n, d), phi (n, m) as apply wrote it (any role), dphi (n, m) → dx (n, d), overwritten.
     * dparams: NULL = not wanted; otherwise param_count floats to which ∂L/∂θ is added (the
     * caller zeroes it; calls over several blocks of rows accumulate).  Never allocates.
     * A two-sided map differentiates its query map here (FM_QUERY and FM_RAW rows). */
    void (*backward)(const void *state, const float *x, size_t n, const float *phi,
                     const float *dphi, float *dx, float *dparams, float *work);
    /* Two-sided maps: the same for its key map (FM_KEY and FM_RAW_KEY rows), adding the key
     * map's ∂L/∂θ at their place in the parameter layout.  NULL for one-sided maps, whose
     * backward serves every role. */
    void (*backward_key)(const void *state, const float *x, size_t n, const float *phi,
                         const float *dphi, float *dx, float *dparams, float *work);
    /* Trainable parameters (floats of dparams, in the map's documented layout; NULL or 0:
     * none: random maps' W are fixed draws, gerf's fitted A is a constant). */
    size_t (*param_count)(const void *state);
    /* Nominal flops of one backward of n rows of d with m features (dparams included for
     * maps with parameters), counted as flops above; featuremaps/README.md lists them. */
    double (*backward_flops)(size_t n, int d, int m);
};

/* An instance: the type plus its state. */
struct featuremap {
    const struct featuremap_type *type;
    void *state;
    int d; /* input dimension */
    int m; /* output dimension */
    struct fm_params params;
};

/* The fused form of fm (featuremap_type.fused_map, ATTN_MAP_NONE when it has none) and in
 * *map_eps its constant: relu's eps as the float its apply adds, 0 for the others. */
static inline int featuremap_fused(const struct featuremap *fm, float *map_eps)
{
    *map_eps = fm->type->fused_map == ATTN_MAP_RELU ? (float)fm->params.eps : 0.0f;
    return fm->type->fused_map;
}

/* Bytes of n rows of d read and n rows of m features written, in fp32: the part of every
 * map's byte model that is not its parameters. */
static inline double fm_rows_bytes(size_t n, int d, int m)
{
    return (double)sizeof(float) * (double)n * ((double)d + (double)m);
}

/* For maps without a stabiliser: every row's shift is 0 (shift may be NULL). */
static inline void fm_zero_shift(float *shift, size_t n)
{
    for (size_t i = 0; shift && i < n; i++)
        shift[i] = 0.0f;
}

/* The registry (registry.c). */
extern const struct featuremap_type *const featuremap_types[];
size_t featuremap_count(void);
/* Finds a type by name; on a miss returns NULL and fills err with the valid names (LA_ENAME). */
const struct featuremap_type *featuremap_lookup(const char *name, struct la_error *err);
/* Names of all maps, NULL-terminated (static storage). */
const char *const *featuremap_names(void);
/* 1 when map type t reads parameter p (a word of t->params, "m, draw, seed"), else 0 (also for
 * a NULL t or params). */
int featuremap_type_reads(const struct featuremap_type *t, const char *p);

void featuremap_params_default(struct fm_params *p, int d);

/* Allocates an instance of the named map.  rng may be NULL for deterministic maps; random maps
 * get LA_EINVAL without one.  Returns NULL with err filled on failure. */
struct featuremap *featuremap_alloc(const char *name, const struct fm_params *p, gsl_rng *rng,
                                    struct la_error *err);
void featuremap_free(struct featuremap *fm); /* NULL is fine */

/* Floats of workspace featuremap_apply needs for n rows. */
size_t featuremap_work_floats(const struct featuremap *fm, size_t n);
/* Checks fm, n, the pointers, and dispatches.  Returns LA_OK or LA_EINVAL. */
int featuremap_apply(const struct featuremap *fm, enum fm_role role, const float *x, size_t n,
                     float *phi, float *work);
/* The same, also writing each row's stabiliser shift (n floats; see apply). */
int featuremap_apply_shift(const struct featuremap *fm, enum fm_role role, const float *x,
                           size_t n, float *phi, float *work, float *shift);
/* Calls the type's fit if it has one; LA_OK otherwise. */
int featuremap_fit(struct featuremap *fm, const float *q, size_t nq, const float *k, size_t nk,
                   struct la_error *err);
/* The current value of a named parameter (featuremap_type.param), NAN when not available. */
double featuremap_param(const struct featuremap *fm, const char *name);
/* The kernel the map stands for, in double: the map's own, or exp(qᵀk/√d). */
double featuremap_kernel(const struct featuremap *fm, const double *q, const double *k);

/* ---- Backward (grad.c; the method's comment in struct featuremap_type says what it is) ---- */

/* Floats of workspace featuremap_backward needs for n rows (0 for a map without backward). */
size_t featuremap_backward_work_floats(const struct featuremap *fm, size_t n);
/* Trainable parameters of fm, the length of dparams (0: none). */
size_t featuremap_param_count(const struct featuremap *fm);
/* Checks the arguments and dispatches to the type's backward: x (n, d), phi (n, m) from apply
 * on these rows in this role, dphi = ∂L/∂φ (n, m) → dx = ∂L/∂x (n, d); dparams (NULL or
 * featuremap_param_count floats) gets ∂L/∂θ added; work has featuremap_backward_work_floats(n)
 * floats.  The role picks a two-sided map's query or key map (FM_KEY, FM_RAW_KEY: the key
 * map); the other maps read the same code for every role.  Returns LA_OK, or LA_EINVAL with
 * err naming the map (no backward, a NULL pointer, n = 0, dparams for a map without
 * parameters). */
int featuremap_backward(const struct featuremap *fm, enum fm_role role, const float *x, size_t n,
                        const float *phi, const float *dphi, float *dx, float *dparams, float *work,
                        struct la_error *err);
/* Nominal flops of one backward (NaN for a NULL t, a type without backward, d < 1 or m < 1). */
double featuremap_nominal_backward_flops(const struct featuremap_type *t, size_t n, int d, int m);

/* The nominal cost of a map of type t (the convention at the top of this file): flops and bytes
 * of one apply of n rows of d into m features (m >= 1, the output dimension), and the output
 * dimension for input dimension d and fm_params.m = m (m >= 0, 0 = the default).  NaN for a NULL
 * t or d < 1 or m out of range. */
double featuremap_nominal_flops(const struct featuremap_type *t, size_t n, int d, int m);
double featuremap_nominal_bytes(const struct featuremap_type *t, size_t n, int d, int m);
double featuremap_nominal_dim(const struct featuremap_type *t, int d, int m);
/* The output dimension for parameters p (p->d, p->m and what else the type reads: dpfp's ν),
 * without building the map; NaN for a NULL t, p->d < 1 or p->m < 0. */
double featuremap_params_dim(const struct featuremap_type *t, const struct fm_params *p);

#endif
