/* experiment.h — experiment files: YAML (libfyaml) → validated → expanded grid of cells.
 *
 * The schema is documented key by key in experiments/README.md.  Validation is strict and
 * happens before anything runs: a YAML syntax error, an unknown key (with "did you mean"), a
 * wrong type, an empty or negative axis, a count over its upper bound (never clamped), an
 * unknown map or kernel, a missing weights or data file: each a one-line error
 * "FILE:LINE:COL: message" (LA_EINVAL/LA_ENAME/LA_EIO), exit code 2.
 * Cell seeds derive from the experiment seed and the cell key, so a cell's data and draws do
 * not depend on its position in the grid or on which process runs it.
 */
#ifndef LA_EXPERIMENT_H
#define LA_EXPERIMENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/status.h"
#include "cell.h"

struct la_experiment {
    char name[LA_NAME_LEN * 2]; /* `name:` or the file's stem */
    char path[LA_PATH_LEN];     /* the file it was read from ("" for strings) */
    char *text;                 /* verbatim file text (NUL-terminated) */
    size_t text_len;
    uint64_t seed;              /* `seed:` (default 1) */
    char output[LA_PATH_LEN];   /* `output:` or results/<name>.h5 */
    struct la_cell *cells;      /* the expanded grid, in run order */
    size_t ncells;
    size_t n_dropped;           /* combinations removed by exclude/only or incompatibility */
    size_t n_merged;            /* combinations that collapsed onto an earlier cell's key
                                   (e.g. every map × a softmax kernel); added by experiment.c */
};

/* Reads, validates and expands an experiment file. */
int la_experiment_load(const char *path, struct la_experiment **out, struct la_error *err);

/* The same with the output path replaced (the command line's -o; NULL: the file's `output:`). */
int la_experiment_load_to(const char *path, const char *output, struct la_experiment **out,
                          struct la_error *err);

/* The same from a buffer; `origin` names it in error messages (used by tests and the fuzzer). */
int la_experiment_load_string(const char *origin, const char *text, size_t len,
                              struct la_experiment **out, struct la_error *err);

void la_experiment_free(struct la_experiment *e); /* NULL is fine */

/* The cell context (malloc'd text, one "name=value" per line): what a cell's result depends on
 * beyond its key: the seed (cell seeds derive from it), every measure: setting, and the
 * SHA-256 of every data and weights file the cells read ("data_file:PATH=sha256:HEX").  Equal
 * contexts mean equal keys are the same measurement; the results file records it so a resume
 * can tell an extended sweep from a changed one.  Reads (hashes) the input files: LA_EIO if
 * one cannot be read. */
int la_experiment_context(const struct la_experiment *e, char **out, struct la_error *err);

/* Estimated nominal flops of one cell (kernel + feature map, all heads, one call) and bytes of
 * memory it needs (inputs, outputs, features, workspace, reference); for --dry-run and ETAs. */
double la_cell_flops(const struct la_cell *c);
double la_cell_bytes(const struct la_cell *c);

/* Prints the expanded grid for --dry-run: cell count, dropped count, total estimated flops and
 * peak memory, then one line per cell. */
void la_experiment_print_plan(const struct la_experiment *e, FILE *out);

#endif
