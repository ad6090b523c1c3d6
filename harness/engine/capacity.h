/* capacity.h — Schlag et al.'s capacity experiment without training: how many key–value
 * associations one linear-attention state holds, per feature map and update rule.  One cell
 * writes its associations into an empty state with the table's fp32 prefill kernel of the rule
 * (linear_prefill for the sum rule, delta_prefill for the delta rule, β = 1), then queries the
 * state with every stored key and measures the retrieval error; results are rows of a capacity
 * file (HDF5, dataset "capacity") that `linattn plot` draws (harness/figures/capacity.h).
 * Not here: the command line (harness/cli/cmd_capacity.c), the figure.
 * Tests: tests/test_capacity.c.
 *
 * One trial of a cell (map, rule, keys, values, setting, S):
 *   keys     S distinct keys of d_key = dk: "gauss" x ~ N(0, I), or "sphere" (the same divided
 *            by its norm, on the unit sphere);
 *   values   "onehot": e_j with j uniform in 0..dv−1 (dv fixed, so two keys may share a value;
 *            the argmax then still has to find the right one), or "gauss": N(0, I_dv);
 *   setting  "unique": the S associations written once, in order; "overwrite": LA_CAP_ROUNDS
 *            rounds, each writing every key once (in a fresh random order) with a fresh value,
 *            and the target of a key is its value of the last round (the latest association);
 *   writes   φ̂(k) = φ(k) / N(φ(k)) with N the sum of the entries ("sum", Schlag et al.'s sum
 *            normalisation) or the Euclidean norm ("l2"); the kernel runs on φ̂ with
 *            recur_norm = ATTN_RN_NONE, so the state is S = Σ φ̂ vᵀ (sum) or the delta rule's;
 *   reads    read directly from the state, for each key: y = Sᵀφ̂(k) / ‖φ̂(k)‖², so that a
 *            state holding φ̂ vᵀ alone gives back v exactly (the division makes the read
 *            independent of the key's normalisation), in double from the fp32 state;
 *   error    mse: the mean over keys and value entries of (y − v)²; acc (onehot only): the
 *            fraction of keys whose argmax y is the stored index.
 * The sum rule's reads are exact only while the φ̂ are orthogonal, so its error grows once S
 * passes dim φ; the delta rule corrects each write by what the state already returns.  With
 * "sum" normalisation ‖φ̂‖₂ < 1, so a delta write corrects only a fraction ‖φ̂‖² of the old
 * value: an overwritten key keeps part of its old value; with "l2" (β‖φ̂‖² = 1) a write makes
 * its key's read exact.
 */
#ifndef LA_CAPACITY_H
#define LA_CAPACITY_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"

#define LA_CAP_ROUNDS 3 /* writes of each key in the overwrite setting */
#define LA_CAP_WORD 8   /* "onehot", "sphere", "delta", ... */

/* One cell: what a row's identity holds. */
struct la_cap_cell {
    char map[LA_NAME_LEN]; /* a feature map of the registry */
    int nu;                /* dpfp: ν (0 otherwise) */
    int m;                 /* random maps: the number of features (0: the map's default) */
    char rule[LA_CAP_WORD];   /* "sum" or "delta" */
    char keys[LA_CAP_WORD];   /* "gauss" or "sphere" */
    char values[LA_CAP_WORD]; /* "onehot" or "gauss" */
    char norm[LA_CAP_WORD];   /* "sum" or "l2" */
    int overwrite;            /* 0: unique keys, 1: overwrite setting */
    int S;                    /* distinct keys */
    int dk, dv;
    int trials;
    unsigned long seed;
};

/* One results row: the cell, then what was measured over its trials. */
struct la_cap_row {
    struct la_cap_cell c;
    char label[LA_NAME_LEN]; /* the map with its parameter: "elu1", "dpfp nu=2", "prf m=256" */
    int dim;                 /* dim φ, the map's output dimension */
    int writes;              /* associations written (S, or LA_CAP_ROUNDS·S) */
    double mse;              /* the mean over trials of each trial's mse */
    double mse_lo, mse_hi;   /* the smallest and largest trial's mse */
    double acc;              /* the mean argmax accuracy (onehot), NaN for gauss values */
};

/* Fills a cell with the defaults: elu1, sum rule, gauss keys, onehot values, sum norm, unique,
 * S = 64, dk = dv = 64, 3 trials, seed 1. */
void la_cap_cell_default(struct la_cap_cell *c);

/* Runs the trials of one cell into row.  LA_EINVAL / LA_ENAME for a bad cell (the message says
 * which field), LA_ENOMEM, LA_ENUMERIC when a read is not finite. */
int la_capacity_run(const struct la_cap_cell *c, struct la_cap_row *row, struct la_error *err);

/* One trial's writes and state, for the tests: the normalised features φ̂ of the writes
 * (writes × dim), their values (writes × dv), and the fp32 state after the kernel (dim × dv
 * then dim: S then z), in buffers the function allocates (free them).  trial picks the draw. */
int la_capacity_trial_state(const struct la_cap_cell *c, int trial, float **phi, float **vals,
                            float **state, int *writes, int *dim, struct la_error *err);

/* The capacity file: writes n rows (dataset "capacity"; root attributes kind = "capacity", tool_version, git_commit,
 * created_utc, cpu_model, threads), and
 * reads them back (*rows allocated; free it).  la_capacity_is_file: 1 when path is an HDF5
 * file with that dataset whose rows read, 0 otherwise (no error); it reads the file in a forked
 * child first, so a damaged file cannot crash the caller. */
int la_capacity_write(const char *path, const struct la_cap_row *rows, size_t n,
                      struct la_error *err);
int la_capacity_read(const char *path, struct la_cap_row **rows, size_t *n, struct la_error *err);
int la_capacity_is_file(const char *path);
/* The root string attribute `name` of a capacity file into buf (cap bytes); LA_EFORMAT with buf
 * "" when it is missing, as la_results_attr does for results files. */
int la_capacity_attr(const char *path, const char *name, char *buf, size_t cap,
                     struct la_error *err);

#endif
