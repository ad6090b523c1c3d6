/* params.c — the parameter schema (params.h): the table of every parameter of a cell, and the
 * generic functions over it: parse, check, format and compare values; get and set them on a
 * cell; copy a cell's map parameters into struct fm_params and its identity into a results row;
 * and the one writer and parser of cell keys.
 *
 * The table is the single description of a parameter's name, type, range, default, scope and
 * storage; the experiment loader (experiment.c) and the runner (engine/runner.c) read it rather
 * than naming parameters one by one.  docs/HACKING.md, "The parameter schema", explains the
 * columns and the steps of adding a parameter.
 *
 * Not here: YAML (experiment.c), the results file's columns (store/columns.c).
 * Tests: tests/test_params.c (golden keys from before the schema, round trips, messages).
 */
#include "params.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../core/util.h"

/* Upper bounds of the counts (experiments/README.md, "Bounds", gives the reasons).  A value
 * over its bound is refused, never clamped. */
#define MAX_T (1 << 24)           /* T; also max_ref_rows, kl_rows and chunk (at most T rows) */
#define MAX_DIM (1 << 14)         /* d, dv */
#define MAX_M (1 << 20)           /* m: taylor2's 1 + d + d² at d = 1023 still fits */
#define MAX_BATCH_HEADS (1 << 16) /* batch, heads */
#define MAX_THREADS 1024          /* as --threads: more only ends in libgomp aborting */
#define MAX_LAYER_HEAD 65535      /* layer, head of an h5 data file (checked against it too) */
#define MAX_SEQUENCES 1000        /* model: as generate --sequences */
#define MAX_TRIAL 99999           /* trials is at most 100 000 */
#define MAX_REPEATS 1000          /* the timer keeps at most 1000 samples (timing.c) */
#define MAX_WARMUP 1000
#define MAX_KERNEL_PAIRS (1 << 20) /* the MSE's standard error is ~0.1 % of its spread here */
#define MAX_TIME_BUDGET_S 86400.0  /* one day per cell */

/* Offset 0 stands for "no field" in the table (params.h). */
_Static_assert(offsetof(struct la_cell, index) == 0, "la_cell.index must be the first field");
_Static_assert(offsetof(struct fm_params, d) == 0, "fm_params.d must be the first field");
/* A choice's value is its index in choices[]: the C enums must agree. */
_Static_assert(FM_DRAW_IID == 0 && FM_DRAW_ORTHOGONAL == 1, "draw names follow enum fm_draw");
_Static_assert(LA_DATA_GAUSSIAN == 0 && LA_DATA_SPHERE == 1 && LA_DATA_H5 == 2 &&
                   LA_DATA_MODEL == 3,
               "source names follow enum la_data_source");
_Static_assert(LA_PASS_FORWARD == 0 && LA_PASS_BACKWARD == 1 && LA_PASS_FORWARD_BACKWARD == 2,
               "pass names follow enum la_pass");

static const char *const draw_names[] = {"iid", "orthogonal", NULL};
static const char *const source_names[] = {"gaussian", "sphere", "h5", "model", NULL};
_Static_assert(ATTN_RN_RULE == 0 && ATTN_RN_NONE == 1 && ATTN_RN_SUM == 2,
               "recur_norm names follow enum attn_recur_norm");
static const char *const recur_norm_names[] = {"rule", "none", "sum", NULL};

/* The recurrences' gates apply to the cells whose kernel's update rule reads them. */
static int kernel_update_is(const struct la_cell *c, int update)
{
    const struct attn_kernel *kn = attn_kernel_lookup(c->kernel);
    return kn && kn->update == update;
}
static int reads_beta(const struct la_cell *c) { return kernel_update_is(c, ATTN_UPD_DELTA); }
static int reads_gamma(const struct la_cell *c) { return kernel_update_is(c, ATTN_UPD_DECAY); }
static int reads_alpha(const struct la_cell *c) { return kernel_update_is(c, ATTN_UPD_GATED); }
static int is_recurrence(const struct la_cell *c) { return !kernel_update_is(c, ATTN_UPD_SUM); }
static const char *const pass_names[] = {"forward", "backward", "forward+backward", NULL};

/* norm_fixed: the row norms of orthogonal draws; iid draws have no such choice. */
static int orthogonal_draws(const struct la_cell *c)
{
    return c->draw == FM_DRAW_ORTHOGONAL;
}

#define CELL(f)                                                                                    \
    .cell_off = offsetof(struct la_cell, f), .cell_size = sizeof(((struct la_cell *)0)->f)
#define ROW(f)                                                                                     \
    .col = #f, .row_off = offsetof(struct la_row, f), .row_size = sizeof(((struct la_row *)0)->f)
#define FM(f) .fm_off = offsetof(struct fm_params, f)
#define INTS(a, b) .type = LA_PT_INT, .lo = (a), .hi = (b)
#define NOLO .lo = -INFINITY
#define NOHI .hi = INFINITY

const struct la_param la_params[LA_NPARAMS] = {
    /* ---- what runs ---- */
    [LA_PARAM_KERNEL] = {.name = "kernel",
                         .flag = "kernel",
                         .legend = "",
                         .help = "the attention kernel (`linattn list`), or linear",
                         .type = LA_PT_KERNEL,
                         .flags = LA_PF_AXIS | LA_PF_KEY,
                         .scope = LA_SCOPE_CELL,
                         .noun = "kernel",
                         .nouns = "valid kernels",
                         .def = "linear",
                         CELL(kernel),
                         ROW(kernel)},
    [LA_PARAM_MAP] = {.name = "map",
                      .flag = "map",
                      .legend = "",
                      .help = "the feature map; softmax cells have none",
                      .type = LA_PT_MAP,
                      .flags = LA_PF_AXIS | LA_PF_KEY,
                      .scope = LA_SCOPE_LINEAR,
                      .noun = "feature map",
                      .nouns = "valid maps",
                      .def = "elu1",
                      .neutral = "none",
                      CELL(map),
                      ROW(map)},
    [LA_PARAM_M] = {.name = "m",
                    .entry = "m",
                    .flag = "m",
                    .legend = "m",
                    .help = "features (random draws); when unset, the map's own number",
                    INTS(1, MAX_M),
                    .flags = LA_PF_AXIS | LA_PF_ENTRY | LA_PF_RANGE | LA_PF_KEY,
                    .scope = LA_SCOPE_MAP,
                    .def = "0",
                    CELL(m),
                    FM(m),
                    ROW(m)},
    [LA_PARAM_DRAW] = {.name = "draw",
                       .entry = "draw",
                       .flag = "draw",
                       .legend = "",
                       .help = "rows of W: iid or orthogonal blocks",
                       .type = LA_PT_CHOICE,
                       .flags = LA_PF_AXIS | LA_PF_ENTRY | LA_PF_KEY | LA_PF_KEY_DASH |
                                LA_PF_RULE_IF_READ,
                       .scope = LA_SCOPE_MAP,
                       .choices = draw_names,
                       .noun = "draw",
                       .nouns = "valid draws",
                       .def = "iid",
                       CELL(draw),
                       FM(draw),
                       ROW(draw)},
    [LA_PARAM_NORM_FIXED] = {.name = "norm_fixed",
                             .entry = "norm_fixed",
                             .flag = "norm-fixed",
                             .legend = "norm_fixed",
                             .help = "orthogonal draws: row norms fixed at √d, not χ(d) draws",
                             .type = LA_PT_BOOL,
                             .flags = LA_PF_ENTRY | LA_PF_KEY,
                             .scope = LA_SCOPE_MAP,
                             .applies = orthogonal_draws,
                             .def = "false",
                             CELL(norm_fixed),
                             FM(norm_fixed)},
    [LA_PARAM_A] = {.name = "A",
                    .entry = "A",
                    .flag = "A",
                    .legend = "A",
                    .help = "gerf's A (1 - 4A > 0), or auto: chosen from the data",
                    .type = LA_PT_REAL,
                    NOLO,
                    .hi = 0.25,
                    .hi_open = 1,
                    .why = "1 - 4A > 0",
                    .word = "auto",
                    .flags =
                        LA_PF_AXIS | LA_PF_ENTRY | LA_PF_RANGE | LA_PF_KEY | LA_PF_RULE_IF_READ,
                    .scope = LA_SCOPE_MAP,
                    .def = "0",
                    CELL(A),
                    .word_off = offsetof(struct la_cell, A_auto),
                    FM(A),
                    .fm_word_off = offsetof(struct fm_params, A_auto),
                    ROW(A)},
    [LA_PARAM_RELU_EPS] = {.name = "relu_eps",
                           .entry = "eps",
                           .flag = "relu-eps",
                           .legend = "relu eps",
                           .help = "relu's constant added to max(x, 0)",
                           .type = LA_PT_REAL,
                           .lo = 0,
                           NOHI,
                           .flags = LA_PF_ENTRY | LA_PF_KEY,
                           .scope = LA_SCOPE_MAP,
                           .def = "1e-3",
                           CELL(relu_eps),
                           FM(eps)},
    [LA_PARAM_NU] = {.name = "nu",
                     .entry = "nu",
                     .flag = "nu",
                     .legend = "nu",
                     .help = "dpfp's number of shifted products ν (m = 2·d·ν)",
                     INTS(1, 3),
                     .flags = LA_PF_AXIS | LA_PF_ENTRY | LA_PF_RANGE | LA_PF_KEY_IF_SET,
                     .scope = LA_SCOPE_MAP,
                     .def = "1",
                     CELL(nu),
                     ROW(nu),
                     FM(nu)},
    [LA_PARAM_CAUSAL] = {.name = "causal",
                         .flag = "causal",
                         .legend = "causal",
                         .help = "row i attends to keys j <= i",
                         .type = LA_PT_BOOL,
                         .flags = LA_PF_AXIS | LA_PF_KEY,
                         .scope = LA_SCOPE_CELL,
                         .def = "false",
                         CELL(causal),
                         ROW(causal)},
    [LA_PARAM_CHUNK] = {.name = "chunk",
                        .flag = "chunk",
                        .legend = "C",
                        .help = "chunk size C of the chunked causal kernel; 0 = its default",
                        INTS(0, MAX_T),
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                        .scope = LA_SCOPE_CHUNK,
                        .def = "0",
                        CELL(chunk),
                        ROW(chunk)},
    [LA_PARAM_EPS] = {.name = "eps",
                      .flag = "eps",
                      .legend = "eps",
                      .help = "the linear normaliser's eps",
                      .type = LA_PT_REAL,
                      .lo = 0,
                      NOHI,
                      .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                      .scope = LA_SCOPE_LINEAR,
                      .def = "1e-6",
                      CELL(eps),
                      ROW(eps)},
    [LA_PARAM_PASS] = {.name = "pass",
                       .flag = "pass",
                       .legend = "",
                       .help = "what is timed: forward, backward (gradients), or forward+backward",
                       .type = LA_PT_CHOICE,
                       .flags = LA_PF_AXIS | LA_PF_KEY_IF_SET,
                       .scope = LA_SCOPE_CELL,
                       .choices = pass_names,
                       .noun = "pass",
                       .nouns = "valid passes",
                       .def = "forward",
                       CELL(pass),
                       ROW(pass)},
    /* ---- shape ---- */
    [LA_PARAM_BETA] = {.name = "beta",
                       .flag = "beta",
                       .legend = "β",
                       .help = "the delta rule's β (every token's): the share of the retrieved "
                               "value replaced, or data: β_t per token from the h5 file's /beta",
                       .type = LA_PT_REAL,
                       .lo = 0,
                       .lo_open = 1,
                       .hi = 1,
                       .word = "data",
                       .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY_IF_SET,
                       .scope = LA_SCOPE_KERNEL,
                       .applies = reads_beta,
                       .def = "1",
                       CELL(beta),
                       ROW(beta),
                       .word_off = offsetof(struct la_cell, beta_data)},
    [LA_PARAM_GAMMA] = {.name = "gamma",
                        .flag = "gamma",
                        .legend = "γ",
                        .help = "the decay rule's γ (every head's): S = γS + kvᵀ",
                        .type = LA_PT_REAL,
                        .lo = 0,
                        .lo_open = 1,
                        .hi = 1,
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY_IF_SET,
                        .scope = LA_SCOPE_KERNEL,
                        .applies = reads_gamma,
                        .def = "0.96875",
                        CELL(gamma),
                        ROW(gamma)},
    [LA_PARAM_ALPHA] = {.name = "alpha",
                        .flag = "alpha",
                        .legend = "α",
                        .help = "the gated rule's α (every token's and state row's): S = "
                                "diag(α)S + kvᵀ, or data: α_t per token and state row from the h5 "
                                "file's /alpha",
                        .type = LA_PT_REAL,
                        .lo = 0,
                        .lo_open = 1,
                        .hi = 1,
                        .word = "data",
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY_IF_SET,
                        .scope = LA_SCOPE_KERNEL,
                        .applies = reads_alpha,
                        .def = "0.96875",
                        CELL(alpha),
                        ROW(alpha),
                        .word_off = offsetof(struct la_cell, alpha_data)},
    [LA_PARAM_RECUR_NORM] = {.name = "recur_norm",
                             .flag = "recur-norm",
                             .legend = "recur_norm",
                             .help = "the recurrences' normaliser: rule (decay, gated: 1/(qᵀz + "
                                     "eps); delta: none), none, or sum (q, k divided by their "
                                     "sums)",
                             .type = LA_PT_CHOICE,
                             .flags = LA_PF_AXIS | LA_PF_KEY_IF_SET,
                             .scope = LA_SCOPE_KERNEL,
                             .applies = is_recurrence,
                             .choices = recur_norm_names,
                             .noun = "normaliser",
                             .nouns = "valid normalisers",
                             .def = "rule",
                             CELL(recur_norm),
                             ROW(recur_norm)},
    [LA_PARAM_T] = {.name = "T",
                    .flag = "T",
                    .legend = "T",
                    .help = "sequence length",
                    INTS(1, MAX_T),
                    .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                    .scope = LA_SCOPE_CELL,
                    .def = "1024",
                    CELL(T),
                    ROW(T)},
    [LA_PARAM_D] = {.name = "d",
                    .flag = "d",
                    .legend = "d",
                    .help = "query/key head dimension",
                    INTS(1, MAX_DIM),
                    .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                    .scope = LA_SCOPE_CELL,
                    .def = "64",
                    CELL(d),
                    ROW(d)},
    [LA_PARAM_DV] = {.name = "dv",
                     .flag = "dv",
                     .legend = "dv",
                     .help = "value head dimension (default d)",
                     INTS(1, MAX_DIM),
                     .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                     .scope = LA_SCOPE_CELL,
                     CELL(dv),
                     ROW(dv)},
    [LA_PARAM_BATCH] = {.name = "batch",
                        .flag = "batch",
                        .legend = "B",
                        .help = "independent sequences",
                        INTS(1, MAX_BATCH_HEADS),
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                        .scope = LA_SCOPE_CELL,
                        .def = "1",
                        CELL(batch),
                        ROW(batch)},
    [LA_PARAM_HEADS] = {.name = "heads",
                        .flag = "heads",
                        .legend = "H",
                        .help = "heads per sequence",
                        INTS(1, MAX_BATCH_HEADS),
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                        .scope = LA_SCOPE_CELL,
                        .def = "1",
                        CELL(heads),
                        ROW(heads)},
    [LA_PARAM_THREADS] = {.name = "threads",
                          .flag = "threads",
                          .legend = "threads",
                          .help = "OpenMP threads of the cell",
                          INTS(1, MAX_THREADS),
                          .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                          .scope = LA_SCOPE_CELL,
                          .def = "1",
                          CELL(threads),
                          ROW(threads)},
    /* ---- data ---- */
    [LA_PARAM_DATA] = {.name = "data",
                       .yaml = "source",
                       .flag = "data",
                       .legend = "",
                       .help = "where Q, K, V come from",
                       .type = LA_PT_CHOICE,
                       .flags = LA_PF_DATA | LA_PF_KEY,
                       .scope = LA_SCOPE_CELL,
                       .choices = source_names,
                       .noun = "data source",
                       .nouns = "valid sources",
                       .def = "gaussian",
                       CELL(source),
                       ROW(data)},
    [LA_PARAM_SIGMA] = {.name = "sigma",
                        .flag = "sigma",
                        .legend = "σ",
                        .help = "gaussian data: the standard deviation",
                        .type = LA_PT_REAL,
                        .lo = 0,
                        .lo_open = 1,
                        NOHI,
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                        .scope = LA_SCOPE_GAUSSIAN,
                        .def = "1",
                        CELL(sigma),
                        ROW(sigma)},
    [LA_PARAM_NORM] = {.name = "norm",
                       .flag = "norm",
                       .legend = "norm",
                       .help = "sphere data: the row norm (default √d)",
                       .type = LA_PT_REAL,
                       .lo = 0,
                       .lo_open = 1,
                       NOHI,
                       .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                       .scope = LA_SCOPE_SPHERE,
                       CELL(norm)},
    [LA_PARAM_LAYER] = {.name = "layer",
                        .legend = "layer",
                        .help = "h5 data: the layer",
                        INTS(0, MAX_LAYER_HEAD),
                        .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY,
                        .scope = LA_SCOPE_H5,
                        .def = "0",
                        CELL(layer),
                        ROW(layer)},
    [LA_PARAM_HEAD] = {.name = "head",
                       .legend = "head",
                       .help = "h5 data: one head, or all heads of the layer at once",
                       INTS(0, MAX_LAYER_HEAD),
                       .word = "all",
                       .word_value = -1,
                       .flags = LA_PF_AXIS | LA_PF_KEY | LA_PF_KEY_NUMBER,
                       .scope = LA_SCOPE_H5,
                       .def = "all",
                       .neutral = "all",
                       CELL(head),
                       ROW(head)},
    [LA_PARAM_TRIAL] = {.name = "trial",
                        .help = "repetition with another seed (0 .. trials-1)",
                        INTS(0, MAX_TRIAL),
                        .flags = LA_PF_KEY,
                        .scope = LA_SCOPE_CELL,
                        .def = "0",
                        CELL(trial),
                        ROW(trial)},
    [LA_PARAM_WEIGHTS] = {.name = "weights",
                          .entry = "weights",
                          .flag = "weights",
                          .legend = "weights",
                          .help = "learned: the HDF5 weights file",
                          .type = LA_PT_PATH,
                          .flags = LA_PF_AXIS | LA_PF_ENTRY | LA_PF_KEY | LA_PF_REQUIRED,
                          .scope = LA_SCOPE_MAP,
                          .noun = "weights file",
                          .def = "",
                          CELL(weights),
                          FM(weights),
                          ROW(weights)},
    [LA_PARAM_PATH] = {.name = "path",
                       .legend = "path",
                       .help = "h5 data: the HDF5 file; model data: the Llama-2 checkpoint",
                       .type = LA_PT_PATH,
                       .flags = LA_PF_DATA | LA_PF_KEY,
                       .scope = LA_SCOPE_FILE,
                       .noun = "data file",
                       .def = "",
                       CELL(data_path)},
    [LA_PARAM_SEQUENCES] = {.name = "sequences",
                            .legend = "sequences",
                            .help = "model data: sequences the softmax model samples",
                            INTS(1, MAX_SEQUENCES),
                            .flags = LA_PF_AXIS | LA_PF_RANGE | LA_PF_KEY_IF_SET,
                            .scope = LA_SCOPE_MODEL,
                            .def = "4",
                            CELL(sequences)},
    /* ---- what to measure (not part of the key) ---- */
    [LA_PARAM_TIME] = {.name = "time",
                       .help = "time the kernel",
                       .type = LA_PT_BOOL,
                       .flags = LA_PF_MEASURE,
                       .scope = LA_SCOPE_MEASURE,
                       .def = "true",
                       CELL(measure_time)},
    [LA_PARAM_ERROR] = {.name = "error",
                        .help = "errors against the double softmax reference",
                        .type = LA_PT_BOOL,
                        .flags = LA_PF_MEASURE,
                        .scope = LA_SCOPE_MEASURE,
                        .def = "true",
                        CELL(measure_error)},
    [LA_PARAM_TIME_BUDGET_S] = {.name = "time_budget_s",
                                .help = "timing: seconds for the timed repeats",
                                .type = LA_PT_REAL,
                                .lo = 0,
                                .lo_open = 1,
                                .hi = MAX_TIME_BUDGET_S,
                                .flags = LA_PF_MEASURE,
                                .scope = LA_SCOPE_MEASURE,
                                .def = "0.2",
                                CELL(time_budget_s)},
    [LA_PARAM_MIN_REPEATS] = {.name = "min_repeats",
                              .help = "timing: at least this many repeats",
                              INTS(1, MAX_REPEATS),
                              .flags = LA_PF_MEASURE,
                              .scope = LA_SCOPE_MEASURE,
                              .def = "3",
                              CELL(min_repeats)},
    [LA_PARAM_WARMUP] = {.name = "warmup",
                         .help = "timing: untimed runs first",
                         INTS(0, MAX_WARMUP),
                         .flags = LA_PF_MEASURE,
                         .scope = LA_SCOPE_MEASURE,
                         .def = "1",
                         CELL(warmup)},
    [LA_PARAM_MAX_REF_ROWS] = {.name = "max_ref_rows",
                               .help = "errors: exact reference on at most this many query rows",
                               INTS(1, MAX_T),
                               .flags = LA_PF_MEASURE,
                               .scope = LA_SCOPE_MEASURE,
                               .def = "512",
                               CELL(max_ref_rows)},
    [LA_PARAM_KL_ROWS] = {.name = "kl_rows",
                          .help = "errors: query rows sampled for the KL",
                          INTS(0, MAX_T),
                          .flags = LA_PF_MEASURE,
                          .scope = LA_SCOPE_MEASURE,
                          .def = "64",
                          CELL(kl_rows)},
    [LA_PARAM_KERNEL_PAIRS] = {.name = "kernel_pairs",
                               .help = "errors: (q, k) pairs sampled for the kernel MSE",
                               INTS(0, MAX_KERNEL_PAIRS),
                               .flags = LA_PF_MEASURE,
                               .scope = LA_SCOPE_MEASURE,
                               .def = "2048",
                               CELL(kernel_pairs)},
};

/* ---- lookup ------------------------------------------------------------------------------ */

const char *la_param_key(const struct la_param *p)
{
    return p->yaml ? p->yaml : p->name;
}

const struct la_param *la_param_find(const char *name, unsigned flags)
{
    for (size_t i = 0; name && i < LA_NPARAMS; i++)
        if ((!flags || (la_params[i].flags & flags)) &&
            (!strcmp(la_params[i].name, name) ||
             (la_params[i].yaml && !strcmp(la_params[i].yaml, name))))
            return &la_params[i];
    return NULL;
}

size_t la_param_names(unsigned flags, const char **names)
{
    size_t n = 0;
    for (size_t i = 0; i < LA_NPARAMS; i++)
        if (!flags || (la_params[i].flags & flags))
            names[n++] = la_param_key(&la_params[i]);
    names[n] = NULL;
    return n;
}

int la_param_numeric(const struct la_param *p)
{
    return p->type == LA_PT_INT || p->type == LA_PT_REAL;
}

const struct featuremap_type *la_cell_map(const char *name)
{
    for (size_t i = 0; name && featuremap_types[i]; i++)
        if (!strcmp(featuremap_types[i]->name, name))
            return featuremap_types[i];
    return NULL;
}

int la_param_reads(const struct la_param *p, const struct featuremap_type *t)
{
    return p->scope != LA_SCOPE_MAP || featuremap_type_reads(t, p->entry);
}

int la_param_applies(const struct la_param *p, const struct la_cell *c, const struct la_applies *a)
{
    switch (p->scope) {
    case LA_SCOPE_LINEAR:
        return a->linear;
    case LA_SCOPE_CHUNK:
        return a->linear && a->uses_chunk;
    case LA_SCOPE_MAP:
        return a->linear && featuremap_type_reads(a->map, p->entry) &&
               (!p->applies || p->applies(c));
    case LA_SCOPE_GAUSSIAN:
        return c->source == LA_DATA_GAUSSIAN;
    case LA_SCOPE_SPHERE:
        return c->source == LA_DATA_SPHERE;
    case LA_SCOPE_H5:
        return c->source == LA_DATA_H5;
    case LA_SCOPE_MODEL:
        return c->source == LA_DATA_MODEL;
    case LA_SCOPE_FILE:
        return c->source == LA_DATA_H5 || c->source == LA_DATA_MODEL;
    case LA_SCOPE_KERNEL:
        return a->linear && p->applies && p->applies(c);
    default:
        return 1;
    }
}

/* ---- values ------------------------------------------------------------------------------ */

/* Appends s at buf[len] as far as cap allows (always terminated when cap > 0); returns the new
 * length it needs.  The key writer's building block: a grid of 100 000 cells writes millions of
 * fields, and a memcpy costs a fraction of a snprintf. */
static size_t put(char *buf, size_t cap, size_t len, const char *s)
{
    const size_t n = strlen(s);
    if (len < cap) {
        const size_t k = n < cap - 1 - len ? n : cap - 1 - len;
        memcpy(buf + len, s, k);
        buf[len + k] = '\0';
    }
    return len + n;
}

/* Decimal text of v into out (24 bytes). */
static const char *fmt_int(char out[24], long long v)
{
    char *e = out + 23, *s = e;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    *s = '\0';
    do
        *--s = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--s = '-';
    return s;
}

/* Shortest "%g" text that reads back as exactly x, so keys are short and still exact. */
static int fmt_real(char *buf, size_t cap, double x)
{
    int w = 0;
    for (int prec = 6; prec <= 17; prec++) {
        char tmp[40];
        w = snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x || prec == 17) {
            snprintf(buf, cap, "%s", tmp);
            break;
        }
    }
    return w;
}

/* The names a CHOICE, KERNEL or MAP row accepts (`linear` first for kernels, then the forward
 * and step kernels: cells run forward passes or decode steps), NULL-terminated. */
static size_t name_list(const struct la_param *p, const char **names, size_t cap)
{
    size_t n = 0;
    if (p->type == LA_PT_CHOICE) {
        for (; p->choices[n] && n + 1 < cap; n++)
            names[n] = p->choices[n];
    } else if (p->type == LA_PT_KERNEL) {
        names[n++] = "linear";
        for (size_t i = 0; attn_kernels[i].name && n + 1 < cap; i++)
            if (attn_kernels[i].op == ATTN_OP_FORWARD || attn_kernels[i].op == ATTN_OP_STEP)
                names[n++] = attn_kernels[i].name;
    } else {
        for (size_t i = 0; featuremap_types[i] && n + 1 < cap; i++)
            names[n++] = featuremap_types[i]->name;
    }
    names[n] = NULL;
    return n;
}

const char *la_param_what(const struct la_param *p, const char *what, char *buf, size_t cap)
{
    if (p->word)
        snprintf(buf, cap, "%s (%s or %s)", what, p->type == LA_PT_INT ? "an integer" : "a number",
                 p->word);
    else
        snprintf(buf, cap, "%s", what);
    return buf;
}

/* "in 1..16777216", "> 0", ">= 0", "< 0.25 (1 - 4A > 0)", "> 0 and at most 86400". */
static void range_text(const struct la_param *p, char *buf, size_t cap)
{
    if (p->type == LA_PT_INT) {
        snprintf(buf, cap, "in %lld..%lld", (long long)p->lo, (long long)p->hi);
        return;
    }
    char lo[48] = "", hi[48] = "";
    const int has_lo = isfinite(p->lo), has_hi = isfinite(p->hi);
    if (has_lo)
        snprintf(lo, sizeof lo, "%s %g", p->lo_open ? ">" : ">=", p->lo);
    if (has_hi && has_lo)
        snprintf(hi, sizeof hi, " and %s %g", p->hi_open ? "below" : "at most", p->hi);
    else if (has_hi)
        snprintf(hi, sizeof hi, "%s %g", p->hi_open ? "<" : "<=", p->hi);
    size_t len = put(buf, cap, put(buf, cap, 0, lo), hi);
    if (p->why)
        put(buf, cap, put(buf, cap, put(buf, cap, len, " ("), p->why), ")");
}

int la_param_check(const struct la_param *p, const struct la_value *v, const char *what,
                   const char *text, char *msg, size_t cap)
{
    if (v->word || !la_param_numeric(p))
        return LA_OK;
    char range[96], w[96];
    range_text(p, range, sizeof range);
    if (p->type == LA_PT_INT) {
        if (v->i >= (long long)p->lo && v->i <= (long long)p->hi)
            return LA_OK;
        /* Integers are named as in their type errors: "'head' (an integer or all)". */
        snprintf(msg, cap, "%s must be %s, got %lld", la_param_what(p, what, w, sizeof w), range,
                 v->i);
        return LA_EINVAL;
    }
    const double x = v->x;
    const int ok_lo = !isfinite(p->lo) || (p->lo_open ? x > p->lo : x >= p->lo);
    const int ok_hi = !isfinite(p->hi) || (p->hi_open ? x < p->hi : x <= p->hi);
    if (ok_lo && ok_hi)
        return LA_OK;
    char got[48];
    if (text)
        snprintf(got, sizeof got, "%s", text);
    else
        snprintf(got, sizeof got, "%g", x);
    snprintf(msg, cap, "%s must be %s, got %s", what, range, got);
    return LA_EINVAL;
}

int la_decimal(const char *s, double *out)
{
    if (!*s)
        return 0;
    for (const char *c = s; *c; c++)
        if (!((*c >= '0' && *c <= '9') || *c == '.' || *c == 'e' || *c == 'E' || *c == '+' ||
              *c == '-'))
            return 0;
    char *end;
    errno = 0;
    const double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x) || (errno == ERANGE && fabs(x) > 1.0))
        return 0;
    *out = x == 0 ? 0.0 : x; /* -0 is 0: one value, one cell key */
    return 1;
}

int la_param_parse(const struct la_param *p, const char *text, unsigned how, struct la_value *v,
                   char *msg, size_t cap)
{
    return la_param_parse_as(p, NULL, text, how, v, msg, cap);
}

int la_param_parse_as(const struct la_param *p, const char *what, const char *text, unsigned how,
                      struct la_value *v, char *msg, size_t cap)
{
    memset(v, 0, sizeof *v);
    char quoted[64], w[128], list[1024];
    if (!what) {
        snprintf(quoted, sizeof quoted, "'%s'", p->name);
        what = quoted;
    }
    if (!text)
        text = "";
    if (p->word && !strcmp(text, p->word)) {
        v->word = 1;
        v->i = (long long)p->word_value;
        v->x = p->word_off ? 0.0 : p->word_value;
        return LA_OK;
    }
    const char *names[64];
    size_t n;
    switch (p->type) {
    case LA_PT_INT: {
        char *end;
        errno = 0;
        long long i = strtoll(text, &end, 10);
        if (!*text || end == text || *end || errno) {
            double x; /* 1e4 or 4096.0 are integers too, written as reals */
            if (!la_decimal(text, &x) || x != floor(x) || fabs(x) > 0x1p53) {
                snprintf(msg, cap, "%s: expected an integer, got '%s'",
                         la_param_what(p, what, w, sizeof w), text);
                return LA_EINVAL;
            }
            i = (long long)x;
        }
        v->i = i;
        return how & LA_PARSE_UNCHECKED ? LA_OK : la_param_check(p, v, what, text, msg, cap);
    }
    case LA_PT_REAL:
        if (!la_decimal(text, &v->x)) {
            snprintf(msg, cap, "%s: expected a number, got '%s'",
                     la_param_what(p, what, w, sizeof w), text);
            return LA_EINVAL;
        }
        return how & LA_PARSE_UNCHECKED ? LA_OK : la_param_check(p, v, what, text, msg, cap);
    case LA_PT_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1")) {
            v->i = 1;
            return LA_OK;
        }
        if (!strcmp(text, "false") || !strcmp(text, "0"))
            return LA_OK;
        snprintf(msg, cap, "%s: expected true or false, got '%s'", what, text);
        return LA_EINVAL;
    case LA_PT_PATH:
        if (!*text && !(how & LA_PARSE_UNCHECKED)) {
            snprintf(msg, cap, "%s: expected a path, got an empty value", what);
            return LA_EINVAL;
        }
        if (strlen(text) >= p->cell_size) {
            snprintf(msg, cap, "%s is longer than %zu characters", what, p->cell_size - 1);
            return LA_EINVAL;
        }
        v->s = text;
        return LA_OK;
    default:
        break;
    }
    /* Names: choices, kernels, maps. */
    n = name_list(p, names, sizeof names / sizeof names[0]);
    for (size_t i = 0; i < n; i++)
        if (!strcmp(text, names[i])) {
            v->i = p->type == LA_PT_CHOICE ? (long long)i : 0;
            v->s = names[i];
            return LA_OK;
        }
    if (p->type == LA_PT_MAP && (how & LA_PARSE_RULE) && !strcmp(text, "none")) {
        v->s = "none";
        return LA_OK;
    }
    const struct attn_kernel *kn = p->type == LA_PT_KERNEL ? attn_kernel_lookup(text) : NULL;
    if (kn) { /* in the table, but neither a forward nor a step kernel */
        const char *steps[64];
        size_t ns = 0;
        for (size_t i = 0; attn_kernels[i].name && ns + 1 < sizeof steps / sizeof steps[0]; i++)
            if (attn_kernels[i].op == ATTN_OP_STEP)
                steps[ns++] = attn_kernels[i].name;
        char slist[256];
        la_join_names(slist, sizeof slist, steps, ns);
        la_join_names(list, sizeof list, names, n);
        snprintf(msg, cap,
                 "%s '%s' is a %s kernel; runs and bench time forward and step kernels only (a "
                 "step cell runs the prefill itself; step kernels: %s): %s",
                 p->noun, text, attn_op_name(kn->op), ns ? slist : "none", list);
        return LA_EINVAL;
    }
    snprintf(msg, cap, "unknown %s '%s'%s%s", p->noun, text,
             la_choices_msg(list, sizeof list, text, names, n, p->nouns),
             p->type == LA_PT_MAP && (how & LA_PARSE_RULE) ? ", none" : "");
    return LA_ENAME;
}

/* Reads text unchecked (a default or neutral value), or zero and "" when text is NULL. */
static void fixed_value(const struct la_param *p, const char *text, struct la_value *v)
{
    char msg[256];
    memset(v, 0, sizeof *v);
    if (text)
        la_param_parse(p, text, LA_PARSE_UNCHECKED | LA_PARSE_RULE, v, msg, sizeof msg);
    else if (p->type == LA_PT_PATH || p->type == LA_PT_KERNEL || p->type == LA_PT_MAP)
        v->s = "";
}

void la_param_default(const struct la_param *p, struct la_value *v)
{
    fixed_value(p, p->def ? p->def : p->neutral, v);
}

void la_param_neutral(const struct la_param *p, struct la_value *v)
{
    fixed_value(p, p->neutral, v);
}

int la_param_format(const struct la_param *p, const struct la_value *v, char *buf, size_t cap)
{
    char tmp[24];
    const char *s;
    if (cap)
        buf[0] = '\0';
    if (v->word) {
        s = p->word;
    } else if (p->type == LA_PT_INT || p->type == LA_PT_BOOL) {
        s = fmt_int(tmp, v->i);
    } else if (p->type == LA_PT_REAL) {
        return fmt_real(buf, cap, v->x);
    } else if (p->type == LA_PT_CHOICE) {
        long long n = 0;
        while (p->choices[n])
            n++;
        s = v->i >= 0 && v->i < n ? p->choices[v->i] : "?";
    } else {
        s = v->s ? v->s : "";
    }
    return (int)put(buf, cap, 0, s);
}

int la_value_eq(const struct la_param *p, const struct la_value *a, const struct la_value *b)
{
    if (a->word || b->word)
        return a->word && b->word;
    switch (p->type) {
    case LA_PT_REAL:
        return a->x == b->x || fabs(a->x - b->x) <= 1e-12 * fmax(fabs(a->x), fabs(b->x));
    case LA_PT_KERNEL:
    case LA_PT_MAP:
    case LA_PT_PATH:
        return a->s && b->s && !strcmp(a->s, b->s);
    default:
        return a->i == b->i;
    }
}

double la_value_num(const struct la_param *p, const struct la_value *v)
{
    return p->type == LA_PT_REAL ? v->x : (double)v->i;
}

/* ---- cells ------------------------------------------------------------------------------- */

static int *cell_int(struct la_cell *c, size_t off)
{
    return (int *)(void *)((char *)c + off);
}

static int cell_int_get(const struct la_cell *c, size_t off)
{
    return *(const int *)(const void *)((const char *)c + off);
}

void la_param_get(const struct la_param *p, const struct la_cell *c, struct la_value *v)
{
    const char *at = (const char *)c + p->cell_off;
    memset(v, 0, sizeof *v);
    switch (p->type) {
    case LA_PT_REAL:
        v->x = *(const double *)(const void *)at;
        v->word = p->word_off && cell_int_get(c, p->word_off);
        break;
    case LA_PT_KERNEL:
    case LA_PT_MAP:
    case LA_PT_PATH:
        v->s = at;
        break;
    default:
        v->i = *(const int *)(const void *)at;
        v->word = p->word && !p->word_off && v->i == (long long)p->word_value;
        break;
    }
}

void la_param_set(const struct la_param *p, struct la_cell *c, const struct la_value *v)
{
    char *at = (char *)c + p->cell_off;
    if (p->word_off)
        *cell_int(c, p->word_off) = v->word;
    switch (p->type) {
    case LA_PT_REAL:
        *(double *)(void *)at = v->word ? (p->word_off ? 0.0 : p->word_value) : v->x;
        break;
    case LA_PT_KERNEL:
    case LA_PT_MAP:
    case LA_PT_PATH: {
        const char *s = v->s ? v->s : "";
        size_t n = strlen(s);
        if (n >= p->cell_size)
            n = p->cell_size - 1;
        memcpy(at, s, n);
        at[n] = '\0';
        break;
    }
    default:
        *(int *)(void *)at = v->word && !p->word_off ? (int)p->word_value : (int)v->i;
        break;
    }
}

void la_params_to_fm(const struct la_cell *c, struct fm_params *fp)
{
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!p->fm_off)
            continue;
        char *at = (char *)fp + p->fm_off;
        struct la_value v;
        la_param_get(p, c, &v);
        if (p->fm_word_off)
            *(int *)(void *)((char *)fp + p->fm_word_off) = v.word;
        switch (p->type) {
        case LA_PT_REAL:
            *(double *)(void *)at = v.x;
            break;
        case LA_PT_PATH:
        case LA_PT_KERNEL:
        case LA_PT_MAP:
            *(const char **)(void *)at = v.s && v.s[0] ? v.s : NULL;
            break;
        default:
            *(int *)(void *)at = (int)v.i;
            break;
        }
    }
}

void la_params_fill_row(const struct la_cell *c, struct la_row *r)
{
    const struct featuremap_type *t = la_cell_map(c->map);
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!p->col)
            continue;
        char *at = (char *)r + p->row_off;
        struct la_value v;
        la_param_get(p, c, &v);
        switch (p->type) {
        case LA_PT_REAL:
            *(double *)(void *)at = v.word && p->word_off ? NAN : v.x;
            break;
        case LA_PT_INT:
        case LA_PT_BOOL:
            *(int32_t *)(void *)at = (int32_t)v.i;
            break;
        default: {
            char text[LA_PATH_LEN + 8];
            /* "-" where the parameter means nothing: a map's it does not read (draw), a
             * kernel's whose rule does not read it (recur_norm). */
            if (((p->flags & LA_PF_KEY_DASH) && !la_param_reads(p, t)) ||
                (p->scope == LA_SCOPE_KERNEL && p->applies && !p->applies(c)))
                snprintf(text, sizeof text, "-");
            else
                la_param_format(p, &v, text, sizeof text);
            la_copy_text(at, p->row_size, text);
            break;
        }
        }
    }
}

size_t la_params_fitted(const struct la_cell *c, const struct la_param **out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < LA_NPARAMS && n < cap; i++)
        if (la_params[i].word_off && la_params[i].fm_off && cell_int_get(c, la_params[i].word_off))
            out[n++] = &la_params[i];
    return n;
}

void la_param_set_row_real(const struct la_param *p, struct la_row *r, double x)
{
    if (p->col && p->type == LA_PT_REAL)
        *(double *)(void *)((char *)r + p->row_off) = x;
}

void la_cell_defaults(struct la_cell *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        struct la_value v;
        la_param_default(&la_params[i], &v);
        la_param_set(&la_params[i], c, &v);
    }
}

void la_cell_measure_defaults(struct la_cell *c)
{
    for (size_t i = 0; i < LA_NPARAMS; i++)
        if (la_params[i].scope == LA_SCOPE_MEASURE) {
            struct la_value v;
            la_param_default(&la_params[i], &v);
            la_param_set(&la_params[i], c, &v);
        }
}

void la_params_measure_text(const struct la_cell *c, char *buf, size_t cap, size_t *len)
{
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!(p->flags & LA_PF_MEASURE))
            continue;
        struct la_value v;
        char text[64];
        la_param_get(p, c, &v);
        la_param_format(p, &v, text, sizeof text);
        const size_t at = *len < cap ? *len : cap;
        *len += (size_t)snprintf(buf + at, cap - at, "measure.%s=%s\n", la_param_key(p), text);
    }
}

/* ---- keys -------------------------------------------------------------------------------- */

static int in_key(const struct la_param *p)
{
    return (p->flags & (LA_PF_KEY | LA_PF_KEY_IF_SET)) != 0;
}

/* What decides which parameters apply, from the cell alone: softmax cells have map "none". */
static void cell_applies(const struct la_cell *c, struct la_applies *a)
{
    a->map = la_cell_map(c->map);
    a->linear = strcmp(c->map, "none") != 0;
    const struct attn_kernel *kn = attn_kernel_lookup(c->kernel);
    a->uses_chunk = kn && kn->uses_chunk;
}

/* A KEY_IF_SET row is in the key when it applies to the cell and is not at its default. */
static int key_if_set(const struct la_param *p, const struct la_cell *c, const struct la_applies *a,
                      const struct la_value *v)
{
    struct la_value def;
    if (!la_param_applies(p, c, a))
        return 0;
    la_param_default(p, &def);
    return !la_value_eq(p, v, &def);
}

int la_key_format(const struct la_cell *c, char *buf, size_t cap)
{
    const struct featuremap_type *t = la_cell_map(c->map);
    struct la_applies a;
    cell_applies(c, &a);
    size_t len = 0;
    if (cap)
        buf[0] = '\0';
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!in_key(p))
            continue;
        struct la_value v;
        char text[LA_PATH_LEN + 32], num[24];
        la_param_get(p, c, &v);
        if (!(p->flags & LA_PF_KEY) && !key_if_set(p, c, &a, &v))
            continue;
        if ((p->flags & LA_PF_KEY_DASH) && !la_param_reads(p, t))
            put(text, sizeof text, 0, "-");
        else if (v.word && (p->flags & LA_PF_KEY_NUMBER))
            put(text, sizeof text, 0, fmt_int(num, v.i));
        else
            la_param_format(p, &v, text, sizeof text);
        if (len)
            len = put(buf, cap, len, " ");
        len = put(buf, cap, len, p->name);
        len = put(buf, cap, len, "=");
        len = put(buf, cap, len, text);
    }
    return (int)len;
}

/* Where the value that starts at v0 ends: at the earliest " NAME=" of a key field that comes
 * after field `after` in table order (any key field when after < 0), else at the key's end. */
static size_t value_end(const char *key, size_t v0, int after)
{
    size_t end = strlen(key);
    for (int i = after + 1; i < LA_NPARAMS; i++) {
        if (!in_key(&la_params[i]))
            continue;
        char pat[64];
        snprintf(pat, sizeof pat, " %s=", la_params[i].name);
        const char *hit = strstr(key + v0, pat);
        if (hit && (size_t)(hit - key) < end)
            end = (size_t)(hit - key);
    }
    return end;
}

/* Finds field name in key: *vs, *ve get the start and end of its value.  1 when found. */
static int key_find(const char *key, const char *name, size_t *vs, size_t *ve)
{
    const size_t len = strlen(key), nlen = strlen(name);
    size_t pos = 0;
    while (pos < len) {
        const char *eq = strchr(key + pos, '=');
        if (!eq)
            return 0;
        const size_t flen = (size_t)(eq - (key + pos)), v0 = (size_t)(eq - key) + 1;
        int id = -1;
        for (int i = 0; i < LA_NPARAMS && id < 0; i++)
            if (in_key(&la_params[i]) && strlen(la_params[i].name) == flen &&
                !memcmp(la_params[i].name, key + pos, flen))
                id = i;
        const size_t v1 = value_end(key, v0, id);
        if (flen == nlen && !memcmp(key + pos, name, nlen)) {
            *vs = v0;
            *ve = v1;
            return 1;
        }
        pos = v1 + 1;
    }
    return 0;
}

int la_key_get(const char *key, const char *name, char *buf, size_t cap)
{
    size_t vs, ve;
    if (!key || !name || !key_find(key, name, &vs, &ve))
        return LA_ENAME;
    if (ve - vs >= cap)
        return LA_EINVAL;
    memcpy(buf, key + vs, ve - vs);
    buf[ve - vs] = '\0';
    return LA_OK;
}

int la_key_set(char *key, size_t cap, const char *name, const char *value)
{
    size_t vs, ve;
    if (!key || !name || !value || !key_find(key, name, &vs, &ve))
        return LA_ENAME;
    const size_t len = strlen(key), old = ve - vs, vlen = strlen(value);
    if (len - old + vlen >= cap)
        return LA_EINVAL;
    memmove(key + vs + vlen, key + ve, len - ve + 1);
    memcpy(key + vs, value, vlen);
    return LA_OK;
}
