/* cell.h — the contract between the experiment parser, the runner and the results file.
 *
 * struct la_cell is one point of an experiment's grid (what to run); struct la_row is one row
 * of the /runs table in the results file (what was run and what was measured).  The parser
 * (experiment.c) produces cells; the runner (runner.c) turns a cell into a row; results.c
 * writes and reads rows.  Field names here are the column names in HDF5 and in `export`.
 * Each parameter field of a cell is described by one row of the parameter schema (params.h:
 * its name, type, default, where it applies, its results column and its place in the key).
 */
#ifndef LA_CELL_H
#define LA_CELL_H

#include <stdint.h>

#define LA_NAME_LEN 32
#define LA_PATH_LEN 512
#define LA_KEY_LEN 512
#define LA_MSG_LEN 256
#define LA_HOST_LEN 64

enum la_data_source {
    LA_DATA_GAUSSIAN = 0, /* q, k, v ~ N(0, sigma²) iid */
    LA_DATA_SPHERE = 1,   /* rows uniform on the sphere of radius `norm`; v ~ N(0, 1) */
    LA_DATA_H5 = 2,       /* Q, K, V datasets from an HDF5 file (layer/head selection) */
    LA_DATA_MODEL = 3     /* a Llama-2 checkpoint run with the cell's attention: model-level
                             fidelity (harness/engine/fidelity_cell.h) */
};

/* What a cell times (experiments/README.md, `pass:`): the forward kernel, the matching backward
 * kernel (for linear kernels with the feature map's backward of Q and K), or both in one timed
 * region, as one training step does (harness/engine/train.c). */
enum la_pass {
    LA_PASS_FORWARD = 0,
    LA_PASS_BACKWARD = 1,
    LA_PASS_FORWARD_BACKWARD = 2
};

/* One grid point.  Every field has a default (see experiments/README.md and params.c). */
struct la_cell {
    int index;              /* position in the expanded grid, 0-based */
    char key[LA_KEY_LEN];   /* canonical text of every identifying field below: two cells
                               with the same key are the same measurement (resume matches it) */

    /* what runs */
    char kernel[LA_NAME_LEN]; /* attn kernel name (kernels/attention.h table) */
    char map[LA_NAME_LEN];    /* feature map name; "none" for softmax kernels */
    int m;                    /* map parameter m (0 = the map's default) */
    int draw;                 /* enum fm_draw */
    int norm_fixed;           /* orthogonal draws: fixed √d row norms */
    double A;                 /* gerf A */
    int A_auto;               /* gerf: A chosen from the data */
    double relu_eps;          /* relu map's eps */
    int nu;                   /* dpfp map's ν (1..3) */
    char weights[LA_PATH_LEN];/* learned map's weights file ("" if none) */
    int causal;
    int chunk;                /* linear_causal_chunked's C (0 = default) */
    double eps;               /* linear normaliser eps */
    double beta, gamma, alpha; /* the recurrences' gates (constants): delta β, decay γ, gated
                                  α (attention.h "Recurrences") */
    int beta_data, alpha_data; /* 1: β_t (α_t) per token from the h5 data file's /beta (/alpha)
                                  instead of the constant (`beta: data`; docs/data-layout.md) */
    int recur_norm;           /* the recurrences' normaliser: enum attn_recur_norm */
    int pass;                 /* enum la_pass */

    /* shape */
    int T, d, dv;             /* dv = d unless set */
    int batch, heads;         /* B·H independent heads of (T, d) */
    int threads;              /* OpenMP threads for this cell */

    /* data */
    int source;               /* enum la_data_source */
    double sigma;             /* gaussian: standard deviation */
    double norm;              /* sphere: row norm */
    char data_path[LA_PATH_LEN]; /* h5: file */
    int layer, head;          /* h5: selection (head = -1: all heads of the layer) */
    int sequences;            /* model: sequences the softmax model samples (seeds 1..) */

    /* randomness */
    int trial;                /* 0..trials-1 */
    uint64_t seed;            /* derived from the experiment seed and the cell key: data and
                                 feature-map draws of this cell come from it alone */

    /* what to measure */
    int measure_time;         /* 1: time the kernel */
    int measure_error;        /* 1: errors against the double softmax reference */
    double time_budget_s;     /* timing: total budget for the repeats */
    int min_repeats;          /* timing: at least this many timed repeats */
    int warmup;               /* timing: untimed runs before timing */
    int max_ref_rows;         /* errors: exact reference on at most this many query rows */
    int kl_rows;              /* errors: query rows sampled for the attention KL */
    int kernel_pairs;         /* errors: (q, k) pairs sampled for the kernel MSE */
};

/* The measurement defaults of a cell, the one set an experiment's `measure:` section
 * (experiments/README.md) and `linattn bench` both start from: the defaults of the schema's
 * measure rows (params.c).  The values are recorded in each results file's cell context, so
 * changing one makes `run` refuse to extend existing files. */
void la_cell_measure_defaults(struct la_cell *c);

/* Row status values. */
enum la_row_status {
    LA_ROW_OK = 0,
    LA_ROW_FAILED = 1, /* message says why: allocation failure, NaN output, unreadable data */
    LA_ROW_INTERRUPTED = 2 /* SIGINT/SIGTERM arrived during the cell; retried on resume */
};

/* One measurement: the identifying fields of the cell, plus what was measured. */
struct la_row {
    /* identity (copied from the cell) */
    int32_t index;
    char key[LA_KEY_LEN];
    char kernel[LA_NAME_LEN];
    char map[LA_NAME_LEN];
    int32_t m;               /* the map's actual output dimension (after defaults) */
    char draw[LA_NAME_LEN];  /* "iid" | "orthogonal" | "-" */
    double A;
    int32_t causal;
    int32_t chunk;           /* actual chunk size used (0 for other kernels) */
    double eps;
    char pass[LA_NAME_LEN];  /* "forward" | "backward" | "forward+backward" */
    int32_t nu;              /* dpfp's ν (maps that do not read it: the cell's neutral value) */
    double beta, gamma, alpha; /* the recurrences' gates: the constant of the kernel's rule,
                                  NaN when read from the data file (`beta: data`); kernels
                                  whose rule does not read one: the cell's neutral value */
    char recur_norm[LA_NAME_LEN]; /* "rule" | "none" | "sum"; "-" for the sum-rule kernels */
    int32_t T, d, dv, batch, heads, threads;
    char data[LA_NAME_LEN];  /* "gaussian" | "sphere" | "h5" */
    double sigma;
    int32_t layer, head;
    int32_t trial;
    uint64_t seed;
    char weights[LA_PATH_LEN]; /* the learned map's weights file as the experiment names it
                                  ("" for other maps) */

    /* outcome */
    int32_t status;          /* enum la_row_status */
    char message[LA_MSG_LEN];
    char host[LA_HOST_LEN];

    /* timing of the attention kernel (seconds, all heads); NaN when not timed.  Step cells:
     * one decode step of every sequence, the map over the new q and k rows included.  A map
     * fused into the kernel (elu1, relu with a kernel that has fuses_map, forward pass; the
     * message says so): the map and the kernel in one call, so this is their total */
    double time_median_s, time_min_s, time_max_s, time_p20_s, time_p80_s;
    int32_t repeats;
    double flops;            /* nominal flops of one call (all heads), see attention.h */
    double gflops;           /* flops / time_median_s / 1e9 (the kernel's nominal flops, also
                                when the time includes a fused map's) */
    double fm_time_median_s; /* feature map φ(Q) and φ(K), all heads (step cells: of the new
                                rows, a share of time_median_s); 0 for softmax; NaN when the
                                map is inside time_median_s (fused, or a training pass) */
    double workspace_bytes;  /* kernel workspace + feature buffers */
    double step_bytes;       /* bytes one call of the pass holds: Q, K, V, Y, the workspaces and
                                feature buffers; backward adds dY, dQ, dK, dV (and dφ(Q), dφ(K)) */
    double peak_rss_bytes;   /* process peak resident set after the cell */
    double bytes;            /* nominal bytes of one call (all heads), see attention.h */
    double state_bytes;      /* step cells: the carried state or KV cache of every sequence
                                (B·H of them) at capacity T; 0 for forward cells */

    /* errors against the double softmax reference (NaN when not measured) */
    int32_t err_rows;        /* query rows the errors were computed on (T or a sample) */
    double err_rel_fro;      /* ‖Y − Y_ref‖_F / ‖Y_ref‖_F over those rows */
    double err_max_abs;
    double cos_mean;         /* mean over rows of cos(Y_i, Y_ref_i) */
    double kl_mean;          /* mean KL(softmax row ‖ normalised linear row), over the rows
                              * whose linear weights are all > 0 (KL finite) */
    int32_t kl_rows;
    double kl_nonpos_frac;   /* fraction of the KL rows with a linear weight <= 0 (KL = +∞) */
    double kernel_mse;       /* mean (φ(q)ᵀφ(k) − exp(qᵀk/√d))² over sampled pairs */
    int32_t kernel_pairs;
    int64_t n_small_den;     /* rows with |normaliser| <= eps */
    double err_impl;         /* fp32 kernel vs double linear reference, relative Frobenius */
    double entropy_mean;     /* mean entropy (nats) of the softmax attention rows sampled */
    double err_grad;         /* pass backward or forward+backward: the backward kernel's
                                (dQ, dK, dV) against the double reference, relative Frobenius of
                                the three together (features' gradients for linear kernels) */

    /* model-level fidelity (data source model; NaN, and 0 positions, otherwise): the model
     * with the cell's attention against the softmax model, teacher-forced on the sequences the
     * softmax model sampled (harness/model/generate.h, struct la_fidelity) */
    int32_t model_positions;  /* positions compared, over all sequences */
    double model_kl;          /* mean KL(softmax model ‖ this model) of the next token, nats */
    double model_kl_max;
    double model_top1;        /* fraction of positions whose most likely next token agrees */
    double model_ppl;         /* perplexity of this model on the sequences */
    double model_ppl_softmax; /* perplexity of the softmax model on them */
};

#endif
