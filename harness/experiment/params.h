/* params.h — the parameter schema: one table row per parameter of a cell (struct la_cell), and
 * the generic functions every reader and writer of parameters goes through.
 *
 * A row says what a parameter is called (key field, sweep axis, maps: entry, results column,
 * `bench` flag, legend label), its type and range or choices, its default, where it may be set
 * (sweep:, maps:, data:, measure:), which cells it applies to (all, linear kernels, kernels that
 * read chunk, maps that read it, one data source), where it lives in struct la_cell, struct
 * fm_params and struct la_row, and how it prints in cell keys.  The experiment loader
 * (experiment.c), the runner's copy into a feature map's parameters and a row's identity
 * columns (engine/runner.c), and the one key writer and parser below are driven by it.
 * docs/HACKING.md, "The parameter schema", walks through adding a parameter.
 *
 * Not here: reading YAML (experiment.c, experiment_yaml.c), the results file's column table
 * (store/columns.c: struct la_row is the file layout), running cells.
 * Tests: tests/test_params.c; through the loader, tests/test_experiment.c.
 */
#ifndef LA_PARAMS_H
#define LA_PARAMS_H

#include <stddef.h>

#include "../../featuremaps/featuremap.h"
#include "../core/status.h"
#include "cell.h"

/* The rows, in table order.  The order is the order of the fields in a cell key and of the axes
 * in the grid (the last axis turns fastest), so it is part of every results file: append new
 * rows among their kind, and never reorder the KEY rows. */
enum la_param_id {
    LA_PARAM_KERNEL,
    LA_PARAM_MAP,
    LA_PARAM_M,
    LA_PARAM_DRAW,
    LA_PARAM_NORM_FIXED,
    LA_PARAM_A,
    LA_PARAM_RELU_EPS,
    LA_PARAM_NU,
    LA_PARAM_CAUSAL,
    LA_PARAM_CHUNK,
    LA_PARAM_EPS,
    LA_PARAM_BETA,
    LA_PARAM_GAMMA,
    LA_PARAM_ALPHA,
    LA_PARAM_RECUR_NORM,
    LA_PARAM_PASS,
    LA_PARAM_T,
    LA_PARAM_D,
    LA_PARAM_DV,
    LA_PARAM_BATCH,
    LA_PARAM_HEADS,
    LA_PARAM_THREADS,
    LA_PARAM_DATA,
    LA_PARAM_SIGMA,
    LA_PARAM_NORM,
    LA_PARAM_LAYER,
    LA_PARAM_HEAD,
    LA_PARAM_TRIAL,
    LA_PARAM_WEIGHTS,
    LA_PARAM_PATH,
    LA_PARAM_SEQUENCES,
    LA_PARAM_TIME,
    LA_PARAM_ERROR,
    LA_PARAM_TIME_BUDGET_S,
    LA_PARAM_MIN_REPEATS,
    LA_PARAM_WARMUP,
    LA_PARAM_MAX_REF_ROWS,
    LA_PARAM_KL_ROWS,
    LA_PARAM_KERNEL_PAIRS,
    LA_NPARAMS
};

/* Value types. */
enum la_ptype {
    LA_PT_INT,    /* an integer in lo..hi (an int in the cell) */
    LA_PT_REAL,   /* a finite real inside (lo, hi), each end open or closed (a double) */
    LA_PT_BOOL,   /* true or false; keys and the text parser also take 1 and 0 (an int) */
    LA_PT_CHOICE, /* one of choices[]; the value is its index, equal to the C enum (an int) */
    LA_PT_KERNEL, /* a kernel table name, or the alias `linear` (a name array) */
    LA_PT_MAP,    /* a feature map name; rules also take `none` (a name array) */
    LA_PT_PATH    /* a file path; the loader checks the file is readable (a path array) */
};

/* Where a parameter may be set (any combination). */
#define LA_PF_AXIS 0x001u    /* a sweep: axis, and a condition of exclude:/only: rules */
#define LA_PF_ENTRY 0x002u   /* a parameter of a maps: entry; its key there is `entry` */
#define LA_PF_DATA 0x004u    /* a key of the data: section */
#define LA_PF_MEASURE 0x008u /* a key of the measure: section (not part of the key) */

/* How it behaves.
 * RANGE:        the axis also takes a range {from, to, factor | step}.
 * KEY:          a field of every cell key.
 * KEY_IF_SET:   a key field only of cells it applies to and that hold another value than its
 *               default, so the keys of every other cell, and those in results files written
 *               before the row existed, stay as they were (the flag for new parameters).
 * KEY_DASH:     prints "-" (key and results column) when the cell's map does not read it.
 * KEY_NUMBER:   its word prints in keys as the number it stores (head=-1).
 * RULE_IF_READ: rules match it only on cells whose map reads it.
 * REQUIRED:     a map that reads it needs it set in maps: or swept (it has no default). */
#define LA_PF_RANGE 0x010u
#define LA_PF_KEY 0x020u
#define LA_PF_KEY_IF_SET 0x040u
#define LA_PF_KEY_DASH 0x080u
#define LA_PF_KEY_NUMBER 0x100u
#define LA_PF_RULE_IF_READ 0x200u
#define LA_PF_REQUIRED 0x400u

/* Which cells a parameter applies to.  Where it does not apply a cell holds its neutral value
 * (la_param.neutral, else zero), so equivalent combinations get equal keys. */
enum la_scope {
    LA_SCOPE_CELL,     /* every cell */
    LA_SCOPE_LINEAR,   /* cells of linear kernels (softmax cells have no map) */
    LA_SCOPE_CHUNK,    /* linear kernels that read chunk (attn_kernel_uses_chunk) */
    LA_SCOPE_MAP,      /* cells whose map reads `entry` (featuremap_type_reads), when `applies`
                          (if set) agrees */
    LA_SCOPE_GAUSSIAN, /* cells of data source gaussian */
    LA_SCOPE_SPHERE,   /* ... sphere */
    LA_SCOPE_H5,       /* ... h5 */
    LA_SCOPE_MODEL,    /* ... model */
    LA_SCOPE_FILE,     /* ... h5 or model (a file names the data) */
    LA_SCOPE_MEASURE,  /* a measurement setting of every cell */
    LA_SCOPE_KERNEL    /* cells of linear kernels for which `applies` holds (the recurrences'
                          gates: the kernel's update rule reads it) */
};

/* One value of a parameter. */
struct la_value {
    long long i;   /* INT, BOOL (0 or 1), CHOICE (the index) */
    double x;      /* REAL */
    int word;      /* 1: the row's word (`auto`, `all`) rather than a number */
    const char *s; /* KERNEL, MAP: static storage; PATH: the caller's text */
};

/* One row of the schema. */
struct la_param {
    /* Names. */
    const char *name;   /* key field, results column, sweep axis; unique */
    const char *yaml;   /* its key in data: or measure: when not name (data: "source"), or NULL */
    const char *entry;  /* LA_SCOPE_MAP: the featuremap_type.params word the map reads, also its
                         * key in a maps: entry (relu_eps: "eps"); else NULL */
    const char *flag;   /* the `linattn bench` option built from this row, without "--", or
                         * NULL (cmd_bench.c: one option per row that has one) */
    const char *legend; /* with a results column: the row is a figure field (figures/fields.c)
                         * and this is its label in legends and titles ("m" writes "m=64"; ""
                         * the value alone); NULL: not a field (trial: its rows are averaged) */
    const char *help;   /* one line for people */

    /* Values. */
    int type;                   /* enum la_ptype */
    unsigned flags;             /* LA_PF_* */
    int scope;                  /* enum la_scope */
    double lo, hi;              /* INT: the range lo..hi; REAL: the bounds (±INFINITY: none) */
    int lo_open;                /* REAL: 1 when lo itself is refused */
    int hi_open;                /* REAL: 1 when hi itself is refused */
    const char *why;            /* REAL: the reason shown after the range ("1 - 4A > 0") */
    const char *const *choices; /* CHOICE: the names, NULL-terminated */
    const char *noun;           /* names, paths: "unknown NOUN 'x'", "NOUN 'x': ..." */
    const char *nouns;          /* names: the label of the valid ones ("valid draws") */

    /* A word taken instead of a number (`auto`, `all`), or NULL, and the number it stores when
     * no flag field holds it (all = -1). */
    const char *word;
    double word_value;

    /* The default, as text (read unchecked: m's 0 means "the map's own"); NULL when the loader
     * computes it (dv = d, norm = √d, an h5 file's shape).  The neutral value, held where the
     * parameter does not apply, when it is not zero (head: all; map: none). */
    const char *def;
    const char *neutral;

    /* LA_SCOPE_MAP: a further condition for applying (norm_fixed: orthogonal draws), or NULL. */
    int (*applies)(const struct la_cell *c);

    /* Storage.  An offset of 0 means "none": offset 0 of struct la_cell is `index` and of
     * struct fm_params is `d`, neither of them a parameter (params.c checks this). */
    size_t cell_off, cell_size; /* the field of struct la_cell */
    size_t word_off;            /* the int field of struct la_cell the word sets to 1 (A_auto) */
    size_t fm_off;              /* the field of struct fm_params it is copied to */
    size_t fm_word_off;         /* the int field of struct fm_params for the word (A_auto) */
    const char *col;            /* the struct la_row column it fills, or NULL */
    size_t row_off, row_size;
};

extern const struct la_param la_params[LA_NPARAMS];

/* The row called `name` (la_param.name, or la_param.yaml: data's "source") among the rows
 * with any of `flags` (0: every row).  NULL when none. */
const struct la_param *la_param_find(const char *name, unsigned flags);

/* The names of the rows with any of `flags`, in table order, as la_param_find takes them,
 * NULL-terminated (names holds LA_NPARAMS + 1).  Returns the count. */
size_t la_param_names(unsigned flags, const char **names);

/* The name a section uses: la_param.yaml when set, else name. */
const char *la_param_key(const struct la_param *p);

/* 1 for INT and REAL rows (ranges, comparisons). */
int la_param_numeric(const struct la_param *p);

/* Reads one value from text.  LA_OK, or LA_EINVAL (malformed, out of range) / LA_ENAME (an
 * unknown name) with a one-line message in msg naming the range or the valid choices, e.g.
 * "'T' must be in 1..16777216, got 0", "unknown draw 'x'; valid draws: iid, orthogonal".
 * PATH values point into text.  how: LA_PARSE_RULE accepts map `none`; LA_PARSE_UNCHECKED skips
 * the range (defaults). */
#define LA_PARSE_RULE 0x1u
#define LA_PARSE_UNCHECKED 0x2u
int la_param_parse(const struct la_param *p, const char *text, unsigned how, struct la_value *v,
                   char *msg, size_t cap);
/* The same with the value called `what` in messages ("--T must be in 1..16777216, got 0")
 * rather than "'NAME'"; what NULL is "'NAME'". */
int la_param_parse_as(const struct la_param *p, const char *what, const char *text, unsigned how,
                      struct la_value *v, char *msg, size_t cap);

/* 1 when s is a plain decimal number that strtod reads whole to a finite value (into *out, with
 * -0 read as 0): strtod also reads "nan", "inf" and hex floats, which are not numbers in an
 * experiment or a key; underflow to 0 is fine, overflow is not. */
int la_decimal(const char *s, double *out);

/* The range check alone: LA_OK, or LA_EINVAL with "WHAT must be RANGE, got VALUE" in msg.
 * what names the value ("'T'", "'eps' of map 'relu'"); text is how the user wrote it (reals),
 * or NULL.  A word value always passes. */
int la_param_check(const struct la_param *p, const struct la_value *v, const char *what,
                   const char *text, char *msg, size_t cap);

/* What a malformed value is called in messages: what itself, or "WHAT (a number or auto)" /
 * "WHAT (an integer or all)" for rows with a word.  Writes into buf and returns it. */
const char *la_param_what(const struct la_param *p, const char *what, char *buf, size_t cap);

/* The row's default (la_param.def; when def is NULL, the neutral value) and its neutral value
 * (la_param.neutral, else zero and ""). */
void la_param_default(const struct la_param *p, struct la_value *v);
void la_param_neutral(const struct la_param *p, struct la_value *v);

/* Canonical text of a value, which la_param_parse reads back to the same value: integers in
 * decimal, reals as the shortest "%g" that reads back exactly, booleans 1/0, choices and names
 * as themselves, the word as the word.  Returns the length it needs (snprintf's convention). */
int la_param_format(const struct la_param *p, const struct la_value *v, char *buf, size_t cap);

/* Equal values (reals within a relative 1e-12, so 0.1·3 = 0.3). */
int la_value_eq(const struct la_param *p, const struct la_value *a, const struct la_value *b);

/* A numeric value as a double (INT, BOOL, CHOICE: i; REAL: x). */
double la_value_num(const struct la_param *p, const struct la_value *v);

/* Every parameter of c at its row's default (la_param_default), seed 0: the cell before anything
 * is chosen.  Rows without a default (dv, norm: the loader derives them) hold zero. */
void la_cell_defaults(struct la_cell *c);

/* The value a cell holds / stores one into a cell (names and paths copied, truncated to the
 * field; a word with a flag field sets the flag and the value to 0). */
void la_param_get(const struct la_param *p, const struct la_cell *c, struct la_value *v);
void la_param_set(const struct la_param *p, struct la_cell *c, const struct la_value *v);

/* What decides which parameters apply to a cell besides its own fields (source, draw). */
struct la_applies {
    int linear;                        /* the kernel takes features: a map applies */
    int uses_chunk;                    /* the kernel reads chunk */
    const struct featuremap_type *map; /* the cell's map, NULL for softmax cells */
};
/* 1 when parameter p applies to cell c (see enum la_scope). */
int la_param_applies(const struct la_param *p, const struct la_cell *c, const struct la_applies *a);

/* 1 when map t reads p (LA_SCOPE_MAP rows; other rows: 1; a NULL t reads nothing). */
int la_param_reads(const struct la_param *p, const struct featuremap_type *t);

/* The registered map named name, NULL for "none" or an unknown name.  Silent. */
const struct featuremap_type *la_cell_map(const char *name);

/* Copies the cell's map parameters into p (every row with an fm_params field; a path that is
 * empty becomes NULL).  d and seed are the caller's. */
void la_params_to_fm(const struct la_cell *c, struct fm_params *p);

/* Fills the identity columns of a results row the schema knows (every row with a column) from
 * the cell.  A real whose word has a flag field (A: auto) is NaN. */
void la_params_fill_row(const struct la_cell *c, struct la_row *r);

/* The map parameters of c chosen from the data (a word with a flag field, `A: auto`): up to
 * cap rows into out; returns how many. */
size_t la_params_fitted(const struct la_cell *c, const struct la_param **out, size_t cap);

/* Stores a value measured for p (a fitted A) into its results column, when it has one. */
void la_param_set_row_real(const struct la_param *p, struct la_row *r, double x);

/* ---- cell keys ------------------------------------------------------------------------------
 * A key is "name=value" for every KEY row (and every KEY_IF_SET row set away from its default), in
 * table order, separated by single spaces:
 *   kernel=linear_noncausal map=prf m=64 draw=iid norm_fixed=0 A=0 relu_eps=0 causal=0 ...
 * Values may hold spaces only in the last fields (paths); a field ends where the next known
 * field's " name=" begins. */

/* Writes c's key into buf (cap bytes, always NUL-terminated).  Returns the length the whole
 * key needs: >= cap means it did not fit. */
int la_key_format(const struct la_cell *c, char *buf, size_t cap);

/* The text of field `name` of key into buf.  LA_OK; LA_ENAME when the key has no such field;
 * LA_EINVAL when buf is too small. */
int la_key_get(const char *key, const char *name, char *buf, size_t cap);

/* Replaces the text of field `name` of key (cap bytes) by value.  LA_OK; LA_ENAME when the key
 * has no such field; LA_EINVAL when the result would not fit (key unchanged). */
int la_key_set(char *key, size_t cap, const char *name, const char *value);

/* Appends "measure.NAME=VALUE\n" for every measure: setting of c to buf (cap bytes) at *len,
 * advancing *len by what it needs (snprintf's convention). */
void la_params_measure_text(const struct la_cell *c, char *buf, size_t cap, size_t *len);

#endif
