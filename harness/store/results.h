/* results.h — the results file: one HDF5 file per experiment run.
 *
 * Root attributes (strings unless noted): tool_version, git_commit, created_utc, host,
 * cpu_model, threads (int), blas, blas_core, compiler, cflags, experiment_name, seed (uint64),
 * experiment_text (the verbatim experiment file that created it), text_count (int, only once
 * a resume added texts: how many contributed; the later ones are experiment_text_2, ...),
 * cell_context (what gives the cell keys their meaning: seed, measure settings, input file
 * hashes; one "name=value" per line), vmath_isa.
 * /runs: one chunked, extendible 1-D compound dataset of struct la_row (cell.h); strings are
 * fixed-length, NUL-padded UTF-8, so h5py/pandas read it whole:
 *     pandas.DataFrame(h5py.File(f)["runs"][:])
 * Rows are appended and flushed (H5Fflush) one at a time, so a killed run loses at most the
 * cell in flight.  Reopening resumes (finished keys are skipped) when the experiment text is
 * one the file holds, or when both carry a cell context and every shared entry is equal (the
 * new text is then recorded); anything else is refused unless fresh.
 */
#ifndef LA_RESULTS_H
#define LA_RESULTS_H

#include <stddef.h>
#include <stdint.h>


#include "../core/status.h"
#include "../experiment/cell.h"

struct la_results;

/* Provenance that goes into the root attributes when the file is created. */
struct la_provenance {
    const char *experiment_name;
    const char *experiment_text; /* verbatim file text */
    uint64_t seed;
    int threads;
    int ranks; /* MPI ranks of the run that created the file (0 is taken as 1) */
    const char *cell_context; /* la_experiment_context's text; NULL: unknown (then only a text
                                 the file already holds may resume it) */
};

/* What opening an existing file would do (la_results_resume_check, and la_results_open). */
struct la_resume {
    int exists;      /* path holds a results file (0: run would create it) */
    int ntexts;      /* experiment texts it holds */
    int add_text;    /* the experiment text is new: it would become experiment_text_<ntexts+1> */
    int new_context; /* cell-context entries (input files of new cells) it would record */
};

/* The verdict la_results_open(path, prov, fresh = 0) would reach, without writing anything or
 * taking the lock: LA_OK with *v filled when it would create or resume the file, else the
 * error (the same message) it would refuse it with.  For `run --dry-run`. */
int la_results_resume_check(const char *path, const struct la_provenance *prov,
                            struct la_resume *v, struct la_error *err);

/* The verdict la_results_open(path, prov, fresh = 1) would reach on what is at path, without
 * writing anything: LA_OK when --fresh may replace it (nothing, an empty file, a results file),
 * else the refusal (not a results file; another run writes it).  For `run --dry-run --fresh`. */
int la_results_fresh_check(const char *path, struct la_error *err);

/* Opens path for appending.  If it does not exist (or fresh is set) it is created with the
 * provenance attributes and an empty /runs.  If it exists, the resume decision above must
 * allow it (else LA_EINVAL, naming what changed, or why it cannot tell, and --fresh); a new
 * experiment text or new context entries are then added to the attributes of the .h5 and the
 * journal.  A file that cannot be created (unwritable directory) is LA_EIO. */
int la_results_open(const char *path, const struct la_provenance *prov, int fresh,
                    struct la_results **out, struct la_error *err);

/* Number of rows already in the file, and whether a row with this key and status OK exists
 * (failed rows are retried on resume). */
size_t la_results_nrows(const struct la_results *r);
int la_results_has_key(const struct la_results *r, const char *key);

/* Appends one row and flushes the file to disk. */
int la_results_append(struct la_results *r, const struct la_row *row, struct la_error *err);

/* After an append failed (disk full): closes the HDF5 side, makes the .h5 agree with the
 * journal (rebuilt from it when HDF5 left it behind or damaged; removed when even that does
 * not fit, so that readers use the journal) and returns the number of rows stored: what a
 * resume and `linattn export` find.  Only la_results_close may follow, and the process should
 * end with _exit: HDF5's exit handler may crash on the file its failed close left behind. */
size_t la_results_settle(struct la_results *r);

void la_results_close(struct la_results *r); /* NULL is fine */

/* Reads every row of path's /runs (malloc'd array in *rows, count in *n).  The .h5 is first
 * read in a child process (h5io.c), so a damaged file is an error, never a crash.  While a
 * run is appending (it holds the journal's lock) an .h5 that does not read is replaced by the
 * journal; otherwise a damaged file is LA_EFORMAT with one line that says how to recover it.
 * la_results_attr and la_results_attr_names read the same way. */
int la_results_read(const char *path, struct la_row **rows, size_t *n, struct la_error *err);

/* The rows `linattn run -o path` would resume from (for --dry-run): la_results_read's, or, when
 * the .h5 is damaged and its journal intact, the journal's, with *from_journal set to 1 and
 * err->msg saying so.  Writes nothing. */
int la_results_read_resumable(const char *path, struct la_row **rows, size_t *n,
                              int *from_journal, struct la_error *err);

/* Reads a string root attribute into buf (LA_EFORMAT if absent). */
int la_results_attr(const char *path, const char *name, char *buf, size_t cap,
                    struct la_error *err);

/* ---- Column and attribute metadata (export, info and plot read these). ---- */

/* The C type of a column; strings are fixed-length, NUL-padded UTF-8. */
enum la_col_kind { LA_COL_INT32, LA_COL_INT64, LA_COL_UINT64, LA_COL_DOUBLE, LA_COL_STRING };

struct la_column {
    const char *name; /* the struct la_row field name = the HDF5 and export column name */
    size_t offset;    /* offsetof(struct la_row, name) */
    size_t size;      /* bytes; for strings the fixed length including the terminating NUL */
    int kind;         /* enum la_col_kind */
};

/* Every column of /runs in struct la_row order (count in *n). */
const struct la_column *la_row_columns(size_t *n);
/* The column called name, or NULL. */
const struct la_column *la_row_column(const char *name);

/* The value of numeric column c of row r as a double (integers converted); NaN for a string
 * column.  Every reader of a column's number (export --where, figure fields and metrics) uses
 * it. */
double la_row_value(const struct la_row *r, const struct la_column *c);

/* 1 if row r measured softmax attention: its kernel takes raw Q, K (ATTN_IN_QK in the kernel
 * table).  A kernel name this build does not know (a file written by a newer linattn) is decided
 * by the map: "none" (or empty, or "-") for softmax rows.  The one test crossover.c and
 * `linattn plot` use. */
int la_row_is_softmax(const struct la_row *r);

/* 1 if row r is a decode cell's: its kernel is a step kernel (ATTN_OP_STEP in the kernel
 * table).  A kernel name this build does not know is decided by its state_bytes (NaN in rows
 * written before the column, 0 in forward cells): > 0 for a step.  The figures of decode.h take
 * these rows, every other figure the others.  A model cell's row (data model) names the step
 * kernel its decoder runs and is not one. */
int la_row_is_step(const struct la_row *r);

/* Names of every root attribute of path: the documented ones (order above) first, then any
 * others by name.  *names is malloc'd; free it with la_results_names_free. */
int la_results_attr_names(const char *path, char ***names, size_t *n, struct la_error *err);
void la_results_names_free(char **names, size_t n);

/* ---- Crash recovery (details in results.c's top comment). ---- */

/* Every append is first written to PATH.journal (one checksummed record per row), then to the
 * HDF5 file; la_results_open repairs or rebuilds the .h5 from the journal after a crash, and
 * readers fall back to the journal when the .h5 does not read.  The root attribute results_id
 * ties the two files together.  The .h5 is complete on its own: delete the journal once the
 * experiment will not be resumed (a resume regenerates it from the .h5). */

/* status of /runs' fill value: a row that HDF5 shows but that was never written (a crash
 * inside an append).  Readers skip such rows; la_results_open rebuilds the file without them. */
#define LA_ROW_EMPTY (-1)

#endif
