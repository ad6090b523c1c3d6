/* store_impl.h — internal to harness/store/: what the files of the results store share.
 *
 * Only the .c files of harness/store/ include it; everyone else uses results.h.  Grouped by
 * the file that defines each name; the comment at the definition says what it does.
 * columns.c: the column table and canonical rows.  attrs.c: attribute sets (provenance).
 * h5io.c: HDF5 types, attributes, reading (with the child probe) and building an .h5.
 * journal.c: the journal.  resume.c: the resume decision.  results.c: the API over them.
 */
#ifndef LA_STORE_IMPL_H
#define LA_STORE_IMPL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "results.h"

#define JOURNAL_SUFFIX ".journal"
#define J_MAGIC "LAJRNL1\n"
#define ID_ATTR "results_id"

/* ---- columns.c -------------------------------------------------------------------------- */

uint64_t layout_hash(void);
void canon_row(struct la_row *dst, const struct la_row *src);
void row_defaults(struct la_row *row);

/* ---- attrs.c ---------------------------------------------------------------------------- */

enum attr_kind { AK_STR = 0, AK_I32 = 1, AK_I64 = 2, AK_U64 = 3, AK_F64 = 4 };

/* One attribute: its name, its kind (enum attr_kind) and the value of that kind. */
struct attr {
    char *name;
    int kind;
    char *s; /* AK_STR */
    int64_t i;
    uint64_t u;
    double f;
};

/* The attributes of a file in order; {0} is an empty set, attrs_free empties it again. */
struct attr_set {
    struct attr *a;
    size_t n, cap;
};

void attrs_free(struct attr_set *set);
int attrs_add(struct attr_set *set, const char *name, int kind, const char *s, size_t slen,
              int64_t i, uint64_t u, double f);
int attrs_add_str(struct attr_set *set, const char *name, const char *s);
const struct attr *attrs_find(const struct attr_set *set, const char *name);
char *attr_text(const struct attr *a);
const char *const *known_attr_names(size_t *n);
int is_known_attr(const char *name);
int attrs_provenance(struct attr_set *set, const struct la_provenance *prov);
int attrs_copy(struct attr_set *dst, const struct attr_set *src);
int attrs_set_str(struct attr_set *set, const char *name, const char *s);
int attrs_set_i32(struct attr_set *set, const char *name, int32_t v);

/* ---- h5io.c ----------------------------------------------------------------------------- */

/* What an .h5 holds: its attributes and its rows (fill-value rows dropped and counted). */
struct h5_content {
    struct attr_set attrs;
    struct la_row *rows;
    size_t n, n_empty;
    int same_layout; /* /runs has exactly this build's row type */
};

/* How reading an .h5 in a forked child ended (h5io.c, "probing an .h5 in a child"). */
enum probe_result { PROBE_FINISHED, PROBE_CRASHED, PROBE_TIMED_OUT, PROBE_NO_FORK };

hid_t row_mem_type(void);
int open_runs(hid_t file, const char *path, hid_t *dset, size_t *nrows, struct la_error *err);
void h5_content_free(struct h5_content *c);
int h5_load_direct(const char *path, int want_attrs, int want_rows, struct h5_content *c,
                   struct la_error *err);
enum probe_result h5_probe(const char *path, int want_attrs, int want_rows, int *sig);
int h5_write_probe(const char *path);
int h5_load(const char *path, int want_attrs, int want_rows, struct h5_content *c, int *crashed,
            struct la_error *err);
int make_parent_dirs(const char *path, struct la_error *err);
int h5_build(const char *path, const struct attr_set *attrs, const struct la_row *rows, size_t n,
             struct la_error *err);

/* ---- journal.c -------------------------------------------------------------------------- */

/* A journal as read: its header's attributes and its good records. */
struct journal {
    int valid;          /* a complete header of this build's layout */
    int foreign;        /* a complete header of another row layout */
    struct attr_set attrs;
    struct la_row *rows;
    size_t n, cap;
    off_t end;          /* end of the last good record (the journal is cut here) */
};

/* A growing byte buffer; oom is set (and later puts do nothing) when realloc fails. */
struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

/* One record of the journal, as written with one write(). */
struct journal_record {
    uint32_t magic, zero;
    uint64_t sum;
    struct la_row row;
};

void journal_free(struct journal *j);
void buf_put(struct buf *b, const void *p, size_t n);
int pwrite_all(int fd, const void *p, size_t n, off_t off);
void journal_record(struct journal_record *rec, const struct la_row *canon);
int journal_load(int fd, const char *jpath, struct journal *j, struct la_error *err);
int journal_rewrite(int fd, const char *jpath, const struct attr_set *attrs,
                    const struct la_row *rows, size_t n, off_t *end, struct la_error *err);
int journal_path(const char *path, char *jpath, size_t cap, struct la_error *err);

/* ---- resume.c --------------------------------------------------------------------------- */

int resume_verdict(const struct attr_set *attrs, const struct la_provenance *prov, const char *path,
                   struct la_resume *v, struct attr_set *upd, struct la_error *err);

#endif
