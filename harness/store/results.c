/* results.c — the results file (results.h): one HDF5 file per experiment run, written with the
 * plain HDF5 C API (hdf5-serial, no high-level library), plus a crash-recovery journal.
 *
 * Layout of PATH: root attributes (provenance; variable-length UTF-8 strings so h5py returns
 * str; `threads` int32, `seed` uint64; `results_id` ties the file to its journal) and /runs,
 * a 1-D chunked (64 rows), unlimited, packed compound dataset whose members are the fields of
 * struct la_row (names and order: the column table below; strings fixed-length UTF-8,
 * NUL-padded with zeros).  results/README.md shows how to read it.
 *
 * Why a journal.  Appending a row in place (extend, write, H5Fflush) is not atomic: when a row
 * starts a new chunk, HDF5 writes the chunk, the object header (new extent), the chunk B-tree
 * and the superblock (end of allocation) as separate writes, and a SIGKILL between them leaves
 * a /runs that does not read ("addr overflow") or shows a fill-value row.  The crash-point test
 * in tests/test_results.c kills the writer before every single write of a create + append
 * sequence and found exactly that; random kills (3000 of them) never did.  So every append is
 * first written as one checksummed record to PATH.journal (append-only, one write()), then to
 * the HDF5 file.  The journal is the truth; the .h5 is its readable copy.  la_results_open
 * compares the two and, when the .h5 is damaged, behind, or disagrees, rebuilds it from the
 * journal (as PATH.tmp-PID, renamed over PATH); a torn record at the journal's end is cut.
 * A file without a journal (deleted, or copied alone) is adopted: the journal is regenerated
 * from it.  Creation is atomic too (tmp file + rename).  Whether an existing file may be
 * resumed is decided in one place (resume_verdict: its experiment texts and cell_context
 * against the caller's), used by la_results_open and by la_results_resume_check (--dry-run);
 * a resume that adds a text or context entries rebuilds the .h5 with them, then the journal.
 * Readers (la_results_read, la_results_attr*) use the .h5 and skip fill-value rows (status
 * LA_ROW_EMPTY).  libhdf5 crashes on some damaged files, so every read of an .h5 is first
 * done in a forked child (see "probing" below); an .h5 that does not read is replaced by the
 * journal while a writer holds the journal's lock, and is otherwise a one-line error that
 * says how to recover it.
 *
 * Journal format (native byte order, same machine and build): header = "LAJRNL1\n", u32 header
 * bytes, u32 sizeof(struct la_row), u64 layout hash, u32 attribute count, attributes (u8 kind,
 * u16 name length, name, u32 value length, value), u64 FNV-1a of all of it; then records =
 * u32 "LROW", u32 0, u64 FNV-1a of the row, the row (canonical: zero padding).
 *
 * Names: a symbolic link given as the path is followed to the file it names; the journal, the
 * tmp file and the rename are the real file's, so the link stays a link.
 * Locking: the writer holds flock(LOCK_EX) on the journal and an OFD write lock
 * (fcntl F_OFD_SETLK) on the .h5's inode for its lifetime, so a second writer is refused with a
 * clear message, whether it names the file by the same path, through a link to the file or its
 * directory, or by a hard link.  Nobody takes HDF5's own file lock (la_h5_nolock_fapl in
 * core/h5util.c), so `linattn export`/`info`, h5py and pandas read a file while a run appends.
 * --fresh replaces only a results file (or nothing): see fresh_allowed.
 * Write errors: an append the .h5 cannot take (disk full) is cut from the journal again and the
 * row count taken back, so la_results_nrows() is what every reader and a resume will find.
 * Flushes go to the OS page cache (no fsync): rows survive the death of the process, not
 * necessarily a power cut.
 * Not thread-safe: one thread appends.  la_results_attr formats numeric attributes as text.
 * Test: make build/tests/test_results && build/tests/test_results; tests/corrupt_e2e.sh
 * (damaged files), tests/h5strings.sh (attributes written by h5py); the CLI side (links, locks,
 * --fresh, disk full): tests/run_lock.sh, tests/run_diskfull.sh.
 */
#include "results.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../kernels/attention.h"
#include "../../kernels/vmath.h"
#include "../core/h5util.h"
#include "../core/sysinfo.h"
#include "../core/util.h"

#define RUNS_NAME "runs"
#define RUNS_CHUNK 64
#define JOURNAL_SUFFIX ".journal"
#define J_MAGIC "LAJRNL1\n"
#define J_ROW_MAGIC 0x574F524Cu /* "LROW" */
#define ID_ATTR "results_id"

/* ---- the column table ----------------------------------------------------------------- */

/* The kind is derived from the field's C type, so the table cannot disagree with cell.h;
 * a char array decays to char * in the controlling expression. */
#define LA_KIND_OF(f)                                                                           \
    _Generic((((struct la_row *)0)->f), int32_t: LA_COL_INT32, int64_t: LA_COL_INT64,          \
             uint64_t: LA_COL_UINT64, double: LA_COL_DOUBLE, char *: LA_COL_STRING)
#define COL(f) {#f, offsetof(struct la_row, f), sizeof(((struct la_row *)0)->f), LA_KIND_OF(f)}

static const struct la_column columns[] = {
    COL(index), COL(key), COL(kernel), COL(map), COL(m), COL(draw), COL(A), COL(causal),
    COL(chunk), COL(eps), COL(T), COL(d), COL(dv), COL(batch), COL(heads), COL(threads),
    COL(data), COL(sigma), COL(layer), COL(head), COL(trial), COL(seed),
    COL(status), COL(message), COL(host),
    COL(time_median_s), COL(time_min_s), COL(time_max_s), COL(time_p20_s), COL(time_p80_s),
    COL(repeats), COL(flops), COL(gflops), COL(fm_time_median_s), COL(workspace_bytes),
    COL(peak_rss_bytes),
    COL(err_rows), COL(err_rel_fro), COL(err_max_abs), COL(cos_mean), COL(kl_mean), COL(kl_rows),
    COL(kernel_mse), COL(kernel_pairs), COL(n_small_den), COL(err_impl), COL(entropy_mean),
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

const struct la_column *la_row_columns(size_t *n)
{
    *n = N_COLUMNS;
    return columns;
}

const struct la_column *la_row_column(const char *name)
{
    for (size_t i = 0; i < N_COLUMNS; i++)
        if (!strcmp(columns[i].name, name))
            return &columns[i];
    return NULL;
}

/* The documented root attributes, in the order `info` prints them. */
static const char *const known_attrs[] = {
    "tool_version", "git_commit", "created_utc", "host", "cpu_model", "threads", "mpi_ranks", "blas",
    "blas_core", "compiler", "cflags", "simd_isa", "vmath_isa", "experiment_name", "seed", ID_ATTR,
    "experiment_text", "text_count", "cell_context",
};
#define N_KNOWN_ATTRS (sizeof known_attrs / sizeof known_attrs[0])

/* Changes whenever struct la_row or the table changes: a journal of another build is
 * recognised instead of misread. */
static uint64_t layout_hash(void)
{
    uint64_t h = LA_FNV1A_SEED;
    for (size_t i = 0; i < N_COLUMNS; i++) {
        char buf[128];
        int w = snprintf(buf, sizeof buf, "%s:%zu:%zu:%d;", columns[i].name, columns[i].offset,
                         columns[i].size, columns[i].kind);
        h = la_fnv1a(buf, (size_t)w, h);
    }
    size_t size = sizeof(struct la_row);
    return la_fnv1a(&size, sizeof size, h);
}

/* ---- rows ----------------------------------------------------------------------------- */

/* Cuts a multi-byte UTF-8 sequence left incomplete at the end of s (a field truncated by the
 * caller's snprintf), so every stored string decodes. */
static void utf8_trim_tail(char *s)
{
    size_t len = strlen(s);
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > 1 && back + 1 < need)
        s[i - 1] = '\0';
}

/* The canonical form of a row: padding zero, strings terminated, valid UTF-8 at the end and
 * zero after their NUL (NUL-padded strings would otherwise carry the caller's stale bytes
 * into h5py).  Journal, .h5 and comparisons all use it. */
static void canon_row(struct la_row *dst, const struct la_row *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < N_COLUMNS; i++) {
        const struct la_column *c = &columns[i];
        const char *from = (const char *)src + c->offset;
        char *to = (char *)dst + c->offset;
        if (c->kind == LA_COL_STRING) {
            size_t len = strnlen(from, c->size - 1);
            memcpy(to, from, len);
            utf8_trim_tail(to);
        } else {
            memcpy(to, from, c->size);
        }
    }
}

/* Values a row has where the file lacks a column (a file from an older linattn). */
static void row_defaults(struct la_row *row)
{
    memset(row, 0, sizeof *row);
    for (size_t i = 0; i < N_COLUMNS; i++)
        if (columns[i].kind == LA_COL_DOUBLE)
            *(double *)(void *)((char *)row + columns[i].offset) = NAN;
}

/* ---- attribute sets: provenance in memory, in the .h5 and in the journal header -------- */

enum attr_kind { AK_STR = 0, AK_I32 = 1, AK_I64 = 2, AK_U64 = 3, AK_F64 = 4 };

struct attr {
    char *name;
    int kind;
    char *s; /* AK_STR */
    int64_t i;
    uint64_t u;
    double f;
};

struct attr_set {
    struct attr *a;
    size_t n, cap;
};

static void attrs_free(struct attr_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->a[i].name);
        free(set->a[i].s);
    }
    free(set->a);
    memset(set, 0, sizeof *set);
}

/* Appends an attribute (the string is copied); 0 on success, -1 out of memory. */
static int attrs_add(struct attr_set *set, const char *name, int kind, const char *s,
                     size_t slen, int64_t i, uint64_t u, double f)
{
    if (set->n == set->cap) {
        size_t ncap = set->cap ? 2 * set->cap : 16;
        struct attr *na = realloc(set->a, ncap * sizeof *na);
        if (!na)
            return -1;
        set->a = na;
        set->cap = ncap;
    }
    struct attr *a = &set->a[set->n];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->i = i;
    a->u = u;
    a->f = f;
    a->name = strdup(name);
    if (kind == AK_STR) {
        a->s = malloc(slen + 1);
        if (a->s) {
            memcpy(a->s, s, slen);
            a->s[slen] = '\0';
        }
    }
    if (!a->name || (kind == AK_STR && !a->s)) {
        free(a->name);
        free(a->s);
        return -1;
    }
    set->n++;
    return 0;
}

static int attrs_add_str(struct attr_set *set, const char *name, const char *s)
{
    s = s ? s : "";
    return attrs_add(set, name, AK_STR, s, strlen(s), 0, 0, 0);
}

static const struct attr *attrs_find(const struct attr_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->a[i].name, name))
            return &set->a[i];
    return NULL;
}

/* An attribute as text (malloc'd): strings as they are, numbers in decimal. */
static char *attr_text(const struct attr *a)
{
    char num[64];
    switch (a->kind) {
    case AK_STR: return strdup(a->s);
    case AK_I32:
    case AK_I64: snprintf(num, sizeof num, "%" PRId64, a->i); break;
    case AK_U64: snprintf(num, sizeof num, "%" PRIu64, a->u); break;
    default: snprintf(num, sizeof num, "%.17g", a->f); break;
    }
    return strdup(num);
}

static int is_known_attr(const char *name)
{
    for (size_t i = 0; i < N_KNOWN_ATTRS; i++)
        if (!strcmp(name, known_attrs[i]))
            return 1;
    return 0;
}

/* The provenance of a new file (results.h lists the attributes). */
static int attrs_provenance(struct attr_set *set, const struct la_provenance *prov)
{
    char utc[64], host[256], cpu[256], id[32];
    la_utc_now(utc, sizeof utc);
    la_hostname(host, sizeof host);
    la_cpu_model(cpu, sizeof cpu);
    uint64_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rnd = la_fnv1a(&ts, sizeof ts, LA_FNV1A_SEED) ^ (uint64_t)getpid();
    }
    snprintf(id, sizeof id, "%016" PRIx64, rnd);
    if (attrs_add_str(set, "tool_version", la_version()) ||
        attrs_add_str(set, "git_commit", la_git_commit()) ||
        attrs_add_str(set, "created_utc", utc) || attrs_add_str(set, "host", host) ||
        attrs_add_str(set, "cpu_model", cpu) ||
        attrs_add(set, "threads", AK_I32, NULL, 0, prov->threads, 0, 0) ||
        attrs_add(set, "mpi_ranks", AK_I32, NULL, 0, prov->ranks > 0 ? prov->ranks : 1, 0, 0) ||
        attrs_add_str(set, "blas", la_blas_name()) ||
        attrs_add_str(set, "blas_core", la_blas_core()) ||
        attrs_add_str(set, "compiler", la_compiler()) ||
        attrs_add_str(set, "cflags", la_cflags()) ||
        attrs_add_str(set, "simd_isa", la_simd_path()) ||
        attrs_add_str(set, "vmath_isa", la_vmath_isa()) ||
        attrs_add_str(set, "experiment_name", prov->experiment_name) ||
        attrs_add(set, "seed", AK_U64, NULL, 0, 0, prov->seed, 0) ||
        attrs_add_str(set, ID_ATTR, id) ||
        attrs_add_str(set, "experiment_text", prov->experiment_text) ||
        (prov->cell_context && attrs_add_str(set, "cell_context", prov->cell_context)))
        return -1;
    return 0;
}

/* A copy of every attribute of src appended to dst; 0 or -1 out of memory. */
static int attrs_copy(struct attr_set *dst, const struct attr_set *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct attr *a = &src->a[i];
        if (attrs_add(dst, a->name, a->kind, a->s, a->s ? strlen(a->s) : 0, a->i, a->u, a->f))
            return -1;
    }
    return 0;
}

/* Sets string attribute name to s (replacing its value, or appending it). */
static int attrs_set_str(struct attr_set *set, const char *name, const char *s)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->a[i].name, name)) {
            char *v = strdup(s);
            if (!v)
                return -1;
            free(set->a[i].s);
            set->a[i].s = v;
            set->a[i].kind = AK_STR;
            return 0;
        }
    return attrs_add_str(set, name, s);
}

static int attrs_set_i32(struct attr_set *set, const char *name, int32_t v)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->a[i].name, name)) {
            free(set->a[i].s);
            set->a[i].s = NULL;
            set->a[i].kind = AK_I32;
            set->a[i].i = v;
            return 0;
        }
    return attrs_add(set, name, AK_I32, NULL, 0, v, 0, 0);
}

/* ---- HDF5 types and property lists ---------------------------------------------------- */

static hid_t string_type(size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    if (H5Tset_size(t, size) < 0 || H5Tset_strpad(t, H5T_STR_NULLPAD) < 0 ||
        H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static hid_t native_of(int kind)
{
    switch (kind) {
    case LA_COL_INT32: return H5T_NATIVE_INT32;
    case LA_COL_INT64: return H5T_NATIVE_INT64;
    case LA_COL_UINT64: return H5T_NATIVE_UINT64;
    default: return H5T_NATIVE_DOUBLE;
    }
}

/* The in-memory compound type of struct la_row (with its padding). */
static hid_t row_mem_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct la_row));
    if (t < 0)
        return -1;
    for (size_t i = 0; i < N_COLUMNS; i++) {
        const struct la_column *c = &columns[i];
        herr_t st;
        if (c->kind == LA_COL_STRING) {
            hid_t s = string_type(c->size);
            st = s < 0 ? -1 : H5Tinsert(t, c->name, c->offset, s);
            if (s >= 0)
                H5Tclose(s);
        } else {
            st = H5Tinsert(t, c->name, c->offset, native_of(c->kind));
        }
        if (st < 0) {
            H5Tclose(t);
            return -1;
        }
    }
    return t;
}

/* The file type: the memory type without padding. */
static hid_t row_file_type(void)
{
    hid_t t = row_mem_type();
    if (t < 0)
        return -1;
    if (H5Tpack(t) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* ---- HDF5 attributes ------------------------------------------------------------------ */

static int h5_write_attr(hid_t loc, const struct attr *at)
{
    int ok = 0;
    hid_t t = -1, sp = H5Screate(H5S_SCALAR), a = -1;
    if (sp < 0)
        return 0;
    const void *val;
    const char *s = at->s;
    int32_t i32 = (int32_t)at->i;
    switch (at->kind) {
    case AK_STR:
        t = H5Tcopy(H5T_C_S1);
        if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0)
            goto done;
        val = &s;
        break;
    case AK_I32: t = H5Tcopy(H5T_NATIVE_INT32); val = &i32; break;
    case AK_I64: t = H5Tcopy(H5T_NATIVE_INT64); val = &at->i; break;
    case AK_U64: t = H5Tcopy(H5T_NATIVE_UINT64); val = &at->u; break;
    default: t = H5Tcopy(H5T_NATIVE_DOUBLE); val = &at->f; break;
    }
    if (t < 0)
        goto done;
    a = H5Acreate2(loc, at->name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0)
        ok = H5Awrite(a, t, val) >= 0;
done:
    if (a >= 0)
        H5Aclose(a);
    if (t >= 0)
        H5Tclose(t);
    H5Sclose(sp);
    return ok;
}

/* Reads root attribute name into set.  LA_EFORMAT if unreadable or of an unknown class. */
static int h5_read_attr(hid_t file, const char *path, const char *name, struct attr_set *set,
                        struct la_error *err)
{
    int rc = LA_OK, oom = 0;
    hid_t a = H5Aopen(file, name, H5P_DEFAULT), ft = -1, sp = -1;
    if (a < 0 || (ft = H5Aget_type(a)) < 0 || (sp = H5Aget_space(a)) < 0 ||
        H5Sget_simple_extent_npoints(sp) != 1)
        goto bad;
    H5T_class_t cls = H5Tget_class(ft);
    if (cls == H5T_STRING) {
        char *v = NULL;
        int got = la_h5_read_str_attr(file, name, &v);
        if (got == -1)
            goto bad;
        oom = got == -2 || attrs_add_str(set, name, v);
        free(v);
    } else if (cls == H5T_INTEGER && H5Tget_sign(ft) == H5T_SGN_NONE) {
        uint64_t u;
        if (H5Aread(a, H5T_NATIVE_UINT64, &u) < 0)
            goto bad;
        oom = attrs_add(set, name, AK_U64, NULL, 0, 0, u, 0);
    } else if (cls == H5T_INTEGER) {
        int64_t i;
        if (H5Aread(a, H5T_NATIVE_INT64, &i) < 0)
            goto bad;
        oom = attrs_add(set, name, H5Tget_size(ft) <= 4 ? AK_I32 : AK_I64, NULL, 0, i, 0, 0);
    } else if (cls == H5T_FLOAT) {
        double f;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &f) < 0)
            goto bad;
        oom = attrs_add(set, name, AK_F64, NULL, 0, 0, 0, f);
    } else {
        goto bad;
    }
    goto done;
bad:
    rc = LA_FAIL(err, LA_EFORMAT, "%s: cannot read attribute '%s'", path, name);
done:
    if (oom)
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory reading attribute '%s'", name);
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

static herr_t collect_name(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    struct attr_set *names = data;
    if (is_known_attr(name))
        return 0;
    return attrs_add_str(names, name, "") ? -1 : 0;
}

/* Every root attribute: the known ones in their order, then the others by name. */
static int h5_read_attrs(hid_t file, const char *path, struct attr_set *set,
                         struct la_error *err)
{
    for (size_t i = 0; i < N_KNOWN_ATTRS; i++) {
        if (H5Aexists(file, known_attrs[i]) <= 0)
            continue;
        int rc = h5_read_attr(file, path, known_attrs[i], set, err);
        if (rc)
            return rc;
    }
    struct attr_set others = {0};
    hsize_t idx = 0;
    int rc = LA_OK;
    if (H5Aiterate2(file, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_name, &others) < 0)
        rc = LA_FAIL(err, LA_EFORMAT, "%s: cannot list the root attributes", path);
    for (size_t i = 0; i < others.n && !rc; i++)
        rc = h5_read_attr(file, path, others.a[i].name, set, err);
    attrs_free(&others);
    return rc;
}

/* ---- reading an .h5 ------------------------------------------------------------------- */

/* Opens path read-only without locking; a one-line error names what is wrong with it. */
static int open_reader(const char *path, hid_t *file, struct la_error *err)
{
    *file = -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return LA_FAIL(err, LA_EIO, "cannot open %s: %s", path, strerror(errno));
    close(fd);
    hid_t fapl = la_h5_nolock_fapl();
    if (fapl < 0)
        return LA_FAIL(err, LA_EINTERNAL, "HDF5: cannot create a file access list");
    *file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (*file < 0)
        return LA_FAIL(err, LA_EFORMAT, "%s is not a readable HDF5 file", path);
    return LA_OK;
}

/* Opens /runs and checks that it is a 1-D compound dataset. */
static int open_runs(hid_t file, const char *path, hid_t *dset, size_t *nrows,
                     struct la_error *err)
{
    *dset = -1;
    if (H5Lexists(file, RUNS_NAME, H5P_DEFAULT) <= 0)
        return LA_FAIL(err, LA_EFORMAT, "%s has no /runs table (not a linattn results file?)",
                       path);
    hid_t d = H5Dopen2(file, RUNS_NAME, H5P_DEFAULT);
    if (d < 0)
        return LA_FAIL(err, LA_EFORMAT, "%s: cannot open /runs", path);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    int ok = t >= 0 && sp >= 0 && H5Tget_class(t) == H5T_COMPOUND &&
             H5Sget_simple_extent_ndims(sp) == 1;
    hsize_t dims[1] = {0};
    if (ok)
        ok = H5Sget_simple_extent_dims(sp, dims, NULL) == 1;
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (!ok) {
        H5Dclose(d);
        return LA_FAIL(err, LA_EFORMAT, "%s: /runs is not a 1-D table of rows", path);
    }
    *dset = d;
    *nrows = (size_t)dims[0];
    return LA_OK;
}

/* What an .h5 holds: its attributes and its rows (fill-value rows dropped and counted). */
struct h5_content {
    struct attr_set attrs;
    struct la_row *rows;
    size_t n, n_empty;
    int same_layout; /* /runs has exactly this build's row type */
};

static void h5_content_free(struct h5_content *c)
{
    attrs_free(&c->attrs);
    free(c->rows);
    memset(c, 0, sizeof *c);
}

static int h5_load_direct(const char *path, int want_attrs, int want_rows,
                          struct h5_content *c, struct la_error *err)
{
    memset(c, 0, sizeof *c);
    hid_t file, dset = -1, mt = -1, ft = -1, want_t = -1;
    int rc = open_reader(path, &file, err);
    if (rc)
        return rc;
    size_t nrows = 0;
    if (want_attrs && (rc = h5_read_attrs(file, path, &c->attrs, err)))
        goto done;
    if ((rc = open_runs(file, path, &dset, &nrows, err)))
        goto done;
    if (!want_rows)
        nrows = 0;
    if ((ft = H5Dget_type(dset)) >= 0 && (want_t = row_file_type()) >= 0)
        c->same_layout = H5Tequal(ft, want_t) > 0;
    c->rows = malloc((nrows ? nrows : 1) * sizeof *c->rows);
    if (!c->rows) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory reading the %zu rows of %s", nrows, path);
        goto done;
    }
    for (size_t i = 0; i < nrows; i++)
        row_defaults(&c->rows[i]);
    if (nrows) {
        if ((mt = row_mem_type()) < 0) {
            rc = LA_FAIL(err, LA_EINTERNAL, "HDF5: cannot build the row type");
            goto done;
        }
        if (H5Dread(dset, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, c->rows) < 0) {
            rc = LA_FAIL(err, LA_EFORMAT, "%s: cannot read /runs (damaged file?)", path);
            goto done;
        }
    }
    for (size_t i = 0; i < nrows; i++) {
        if (c->rows[i].status == LA_ROW_EMPTY) {
            c->n_empty++;
            continue;
        }
        struct la_row tmp;
        canon_row(&tmp, &c->rows[i]);
        c->rows[c->n++] = tmp;
    }
done:
    if (want_t >= 0)
        H5Tclose(want_t);
    if (ft >= 0)
        H5Tclose(ft);
    if (mt >= 0)
        H5Tclose(mt);
    if (dset >= 0)
        H5Dclose(dset);
    H5Fclose(file);
    if (rc)
        h5_content_free(c);
    return rc;
}

/* ---- probing an .h5 in a child ------------------------------------------------------- */

/* libhdf5 itself crashes (SIGSEGV, heap corruption) or loops on some damaged files, so no
 * check in this process can protect it.  h5_load therefore first performs the same reads in a
 * forked child, bounded in time (PROBE_MIN_SECONDS plus a second per PROBE_BYTES_PER_SECOND of
 * file); only when the child finished (the file read, or a clean HDF5 error) does this process
 * repeat them.  The reads are deterministic, so the parent meets what the child met.  The last
 * verdict is kept while the file's size, mtime and ctime are unchanged (`info` reads the
 * attributes one by one).  The writer probes its open-for-writing the same way (h5_write_probe). */
#define PROBE_MIN_SECONDS 5
#define PROBE_BYTES_PER_SECOND (20 << 20)
#define PROBE_CLEAN_ERROR 97 /* the child's exit status for "HDF5 said no, cleanly" */

enum probe_result { PROBE_FINISHED, PROBE_CRASHED, PROBE_TIMED_OUT, PROBE_NO_FORK };

static struct {
    int valid, attrs, rows, sig;
    enum probe_result result;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtim, ctim;
} probe_last;

static int same_stat(const struct stat *st)
{
    return probe_last.valid && probe_last.dev == st->st_dev && probe_last.ino == st->st_ino &&
           probe_last.size == st->st_size && probe_last.mtim.tv_sec == st->st_mtim.tv_sec &&
           probe_last.mtim.tv_nsec == st->st_mtim.tv_nsec &&
           probe_last.ctim.tv_sec == st->st_ctim.tv_sec &&
           probe_last.ctim.tv_nsec == st->st_ctim.tv_nsec;
}

static unsigned probe_seconds(off_t size)
{
    return PROBE_MIN_SECONDS + (unsigned)(size / PROBE_BYTES_PER_SECOND);
}

/* Forks; the child runs fn(path, a, b) with stderr on /dev/null (no HDF5 error stack or
 * sanitizer report on the terminal), the default SIGALRM action and an alarm after seconds,
 * and leaves by _exit (no atexit handler of the parent: HDF5's would close the parent's files).
 * fn returns LA_OK or an error; *ok says which when the child finished. */
static enum probe_result run_probe(int (*fn)(const char *, int, int), const char *path, int a,
                                   int b, unsigned seconds, int *sig, int *ok)
{
    *sig = 0;
    *ok = 1;
    /* A SIGCHLD ignored by whoever started this process would make the kernel reap the child
     * itself, and waitpid could not tell how it ended. */
    struct sigaction chld, old_chld;
    memset(&chld, 0, sizeof chld);
    chld.sa_handler = SIG_DFL;
    sigemptyset(&chld.sa_mask);
    const int chld_set = sigaction(SIGCHLD, &chld, &old_chld) == 0;
    pid_t pid = -1;
    for (int tries = 0; tries < 50 && pid < 0; tries++) {
        if ((pid = fork()) < 0 && errno != EAGAIN && errno != ENOMEM)
            break;
        if (pid < 0)
            nanosleep(&(struct timespec){0, 20000000}, NULL); /* 20 ms, for up to a second */
    }
    if (pid < 0) {
        if (chld_set)
            sigaction(SIGCHLD, &old_chld, NULL);
        return PROBE_NO_FORK;
    }
    if (pid == 0) {
        /* The parent's descriptors are closed first: a run's journal descriptor carries its
         * flock, which must not outlive the run should the run be killed during the probe. */
        close_range(3, ~0U, 0);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        signal(SIGALRM, SIG_DFL);
        sigset_t alrm;
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        sigprocmask(SIG_UNBLOCK, &alrm, NULL); /* a mask inherited from the caller */
        alarm(seconds);
        _exit(fn(path, a, b) == LA_OK ? 0 : PROBE_CLEAN_ERROR);
    }
    int status = 0;
    int waited;
    while ((waited = waitpid(pid, &status, 0) < 0 ? -1 : 1) < 0 && errno == EINTR)
        ;
    if (chld_set)
        sigaction(SIGCHLD, &old_chld, NULL);
    if (waited < 0) /* how the child ended is unknown: the file stays unchecked */
        return PROBE_NO_FORK;
    if (WIFSIGNALED(status)) {
        *sig = WTERMSIG(status);
        return *sig == SIGALRM ? PROBE_TIMED_OUT : PROBE_CRASHED;
    }
    if (!WIFEXITED(status) ||
        (WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != PROBE_CLEAN_ERROR))
        return PROBE_CRASHED; /* a sanitizer's exit after a fault */
    *ok = WEXITSTATUS(status) == 0;
    return PROBE_FINISHED;
}

static int probe_read(const char *path, int want_attrs, int want_rows)
{
    struct h5_content c;
    struct la_error e;
    int rc = h5_load_direct(path, want_attrs, want_rows, &c, &e);
    if (rc == LA_OK)
        h5_content_free(&c);
    return rc;
}

static enum probe_result h5_probe(const char *path, int want_attrs, int want_rows, int *sig)
{
    *sig = 0;
    struct stat st;
    if (stat(path, &st) != 0)
        return PROBE_FINISHED; /* the open reports it, without reading anything */
    if (same_stat(&st) && (probe_last.result != PROBE_FINISHED ||
                           (probe_last.attrs >= want_attrs && probe_last.rows >= want_rows))) {
        *sig = probe_last.sig;
        return probe_last.result;
    }
    int ok;
    enum probe_result pr = run_probe(probe_read, path, want_attrs, want_rows,
                                     probe_seconds(st.st_size), sig, &ok);
    probe_last.valid = pr != PROBE_NO_FORK;
    probe_last.result = pr;
    probe_last.sig = *sig;
    probe_last.dev = st.st_dev;
    probe_last.ino = st.st_ino;
    probe_last.size = st.st_size;
    probe_last.mtim = st.st_mtim;
    probe_last.ctim = st.st_ctim;
    probe_last.attrs = want_attrs;
    probe_last.rows = want_rows;
    return pr;
}

/* Opens path for writing, flushes and closes it, as the writer will: a file can read cleanly
 * and still crash HDF5 when written (a damaged address in the superblock that reading never
 * follows). */
static int probe_write(const char *path, int a, int b)
{
    (void)a, (void)b;
    hid_t fapl = la_h5_nolock_fapl();
    hid_t f = fapl >= 0 ? H5Fopen(path, H5F_ACC_RDWR, fapl) : -1;
    if (fapl >= 0)
        H5Pclose(fapl);
    if (f < 0)
        return LA_EFORMAT;
    hid_t d = H5Dopen2(f, RUNS_NAME, H5P_DEFAULT);
    int ok = d >= 0 && H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0;
    if (d >= 0)
        ok = H5Dclose(d) >= 0 && ok;
    ok = H5Fclose(f) >= 0 && ok;
    ok = H5close() >= 0 && ok; /* what exit() does: the library's own cleanup */
    return ok ? LA_OK : LA_EFORMAT;
}

/* 1 when the writer can open path: probe_write succeeded in a child. */
static int h5_write_probe(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    int sig, ok = 0;
    return run_probe(probe_write, path, 0, 0, probe_seconds(st.st_size), &sig, &ok) ==
               PROBE_FINISHED && ok;
}

/* The .h5's attributes (want_attrs) and rows (want_rows), read only after a probe shows that
 * reading them does not crash.  *crashed (may be NULL) is set when the probe did not finish. */
static int h5_load(const char *path, int want_attrs, int want_rows, struct h5_content *c,
                   int *crashed, struct la_error *err)
{
    memset(c, 0, sizeof *c);
    if (crashed)
        *crashed = 0;
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) /* a FIFO would block the open */
        return LA_FAIL(err, LA_EIO, "%s is not a regular file", path);
    int sig;
    enum probe_result pr = h5_probe(path, want_attrs, want_rows, &sig);
    if (pr == PROBE_FINISHED)
        return h5_load_direct(path, want_attrs, want_rows, c, err);
    if (pr == PROBE_NO_FORK) /* not the file's fault: no "damaged" verdict */
        return LA_FAIL(err, LA_EIO, "cannot check %s before reading it (fork: %s)", path,
                       strerror(errno));
    if (crashed)
        *crashed = 1;
    if (pr == PROBE_TIMED_OUT)
        return LA_FAIL(err, LA_EFORMAT, "%s is damaged: reading it with HDF5 does not finish",
                       path);
    if (sig)
        return LA_FAIL(err, LA_EFORMAT, "%s is damaged: reading it crashes HDF5 (%s)", path,
                       strsignal(sig));
    return LA_FAIL(err, LA_EFORMAT, "%s is damaged: reading it crashes HDF5", path);
}

/* ---- writing an .h5 ------------------------------------------------------------------- */

/* Creates the directories above path that are missing (mkdir -p of its dirname). */
static int make_parent_dirs(const char *path, struct la_error *err)
{
    char dir[LA_PATH_LEN];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return LA_FAIL(err, LA_EINVAL, "results path too long: %s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return LA_OK;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                return LA_FAIL(err, LA_EIO, "cannot create results file %s: directory %s: %s",
                               path, dir, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return LA_OK;
}

/* Writes attrs and rows as a complete .h5 at PATH.tmp-PID and renames it over path, so no
 * reader or resumed run ever sees a half-built file. */
static int h5_build(const char *path, const struct attr_set *attrs, const struct la_row *rows,
                    size_t n, struct la_error *err)
{
    char tmp[LA_PATH_LEN + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return LA_FAIL(err, LA_EIO, "cannot create results file %s: %s", path, strerror(errno));
    close(fd);

    hid_t fapl = -1, f = -1, ft = -1, mt = -1, sp = -1, dcpl = -1, d = -1;
    int rc = LA_FAIL(err, LA_EIO, "cannot write results file %s (HDF5 error)", tmp);
    if ((fapl = la_h5_nolock_fapl()) < 0)
        goto done;
    if ((f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl)) < 0)
        goto done;
    for (size_t i = 0; i < attrs->n; i++)
        if (!h5_write_attr(f, &attrs->a[i]))
            goto done;
    hsize_t dims[1] = {n}, maxdims[1] = {H5S_UNLIMITED}, chunk[1] = {RUNS_CHUNK};
    struct la_row fill;
    row_defaults(&fill);
    fill.index = -1;
    fill.status = LA_ROW_EMPTY;
    if ((ft = row_file_type()) < 0 || (mt = row_mem_type()) < 0 ||
        (sp = H5Screate_simple(1, dims, maxdims)) < 0 ||
        (dcpl = H5Pcreate(H5P_DATASET_CREATE)) < 0 || H5Pset_chunk(dcpl, 1, chunk) < 0 ||
        H5Pset_fill_value(dcpl, mt, &fill) < 0)
        goto done;
    if ((d = H5Dcreate2(f, RUNS_NAME, ft, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT)) < 0)
        goto done;
    if (n && H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
        goto done;
    if (H5Dclose(d) < 0)
        goto done;
    d = -1;
    herr_t cst = H5Fclose(f);
    f = -1;
    if (cst < 0)
        goto done;
    if (rename(tmp, path) != 0) {
        rc = LA_FAIL(err, LA_EIO, "cannot create results file %s: %s", path, strerror(errno));
        goto done;
    }
    la_error_clear(err);
    rc = LA_OK;
done:
    if (d >= 0)
        H5Dclose(d);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    if (sp >= 0)
        H5Sclose(sp);
    if (mt >= 0)
        H5Tclose(mt);
    if (ft >= 0)
        H5Tclose(ft);
    if (f >= 0)
        H5Fclose(f);
    if (fapl >= 0)
        H5Pclose(fapl);
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- the journal ---------------------------------------------------------------------- */

struct journal {
    int valid;          /* a complete header of this build's layout */
    int foreign;        /* a complete header of another row layout */
    struct attr_set attrs;
    struct la_row *rows;
    size_t n, cap;
    off_t end;          /* end of the last good record (the journal is cut here) */
};

static void journal_free(struct journal *j)
{
    attrs_free(&j->attrs);
    free(j->rows);
    memset(j, 0, sizeof *j);
}

struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
};

static void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + n)
            ncap *= 2;
        unsigned char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Writes all of p at offset off of fd; 0 or -1 with errno. */
static int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *s = p;
    while (n) {
        ssize_t w = pwrite(fd, s, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The header as one buffer (written with one write()). */
static int journal_header(const struct attr_set *attrs, struct buf *b)
{
    uint32_t hdr_len = 0, row_size = sizeof(struct la_row), nattrs = (uint32_t)attrs->n;
    uint64_t lh = layout_hash();
    buf_put(b, J_MAGIC, 8);
    buf_put(b, &hdr_len, 4); /* patched below */
    buf_put(b, &row_size, 4);
    buf_put(b, &lh, 8);
    buf_put(b, &nattrs, 4);
    for (size_t i = 0; i < attrs->n; i++) {
        const struct attr *a = &attrs->a[i];
        uint8_t kind = (uint8_t)a->kind;
        uint16_t nl = (uint16_t)strlen(a->name);
        int32_t i32 = (int32_t)a->i;
        const void *v;
        uint32_t vl;
        switch (a->kind) {
        case AK_STR: v = a->s; vl = (uint32_t)strlen(a->s); break;
        case AK_I32: v = &i32; vl = 4; break;
        case AK_I64: v = &a->i; vl = 8; break;
        case AK_U64: v = &a->u; vl = 8; break;
        default: v = &a->f; vl = 8; break;
        }
        buf_put(b, &kind, 1);
        buf_put(b, &nl, 2);
        buf_put(b, a->name, nl);
        buf_put(b, &vl, 4);
        buf_put(b, v, vl);
    }
    if (b->oom)
        return -1;
    hdr_len = (uint32_t)(b->n + 8);
    memcpy(b->p + 8, &hdr_len, 4);
    uint64_t sum = la_fnv1a(b->p, b->n, LA_FNV1A_SEED);
    buf_put(b, &sum, 8);
    return b->oom ? -1 : 0;
}

struct journal_record {
    uint32_t magic, zero;
    uint64_t sum;
    struct la_row row;
};

static void journal_record(struct journal_record *rec, const struct la_row *canon)
{
    memset(rec, 0, sizeof *rec);
    rec->magic = J_ROW_MAGIC;
    rec->zero = 0;
    rec->row = *canon;
    rec->sum = la_fnv1a(&rec->row, sizeof rec->row, LA_FNV1A_SEED);
}

/* Parses the header at p[0..n); returns its length, 0 if incomplete or invalid. */
static size_t journal_parse_header(const unsigned char *p, size_t n, struct journal *j)
{
    uint32_t hdr_len, row_size, nattrs;
    uint64_t lh, sum;
    if (n < 36 || memcmp(p, J_MAGIC, 8))
        return 0;
    memcpy(&hdr_len, p + 8, 4);
    if (hdr_len < 36 || hdr_len > n)
        return 0;
    memcpy(&sum, p + hdr_len - 8, 8);
    if (la_fnv1a(p, hdr_len - 8, LA_FNV1A_SEED) != sum)
        return 0;
    memcpy(&row_size, p + 12, 4);
    memcpy(&lh, p + 16, 8);
    memcpy(&nattrs, p + 24, 4);
    if (row_size != sizeof(struct la_row) || lh != layout_hash()) {
        j->foreign = 1;
        return 0;
    }
    size_t off = 28, end = hdr_len - 8;
    for (uint32_t i = 0; i < nattrs; i++) {
        uint8_t kind;
        uint16_t nl;
        uint32_t vl;
        if (off + 3 > end)
            return 0;
        memcpy(&kind, p + off, 1);
        memcpy(&nl, p + off + 1, 2);
        off += 3;
        if (off + nl + 4 > end)
            return 0;
        char name[256];
        if (nl >= sizeof name)
            return 0;
        memcpy(name, p + off, nl);
        name[nl] = '\0';
        off += nl;
        memcpy(&vl, p + off, 4);
        off += 4;
        if (off + vl > end)
            return 0;
        int oom;
        const unsigned char *v = p + off;
        int32_t i32;
        int64_t i64;
        uint64_t u64;
        double f;
        switch (kind) {
        case AK_STR: oom = attrs_add(&j->attrs, name, AK_STR, (const char *)v, vl, 0, 0, 0); break;
        case AK_I32:
            if (vl != 4)
                return 0;
            memcpy(&i32, v, 4);
            oom = attrs_add(&j->attrs, name, AK_I32, NULL, 0, i32, 0, 0);
            break;
        case AK_I64:
            if (vl != 8)
                return 0;
            memcpy(&i64, v, 8);
            oom = attrs_add(&j->attrs, name, AK_I64, NULL, 0, i64, 0, 0);
            break;
        case AK_U64:
            if (vl != 8)
                return 0;
            memcpy(&u64, v, 8);
            oom = attrs_add(&j->attrs, name, AK_U64, NULL, 0, 0, u64, 0);
            break;
        case AK_F64:
            if (vl != 8)
                return 0;
            memcpy(&f, v, 8);
            oom = attrs_add(&j->attrs, name, AK_F64, NULL, 0, 0, 0, f);
            break;
        default: return 0;
        }
        if (oom)
            return 0;
        off += vl;
    }
    return hdr_len;
}

/* Reads the journal on fd: header and the good records before the first bad or short one.
 * A missing, empty or torn header leaves j->valid 0 (not an error). */
static int journal_load(int fd, const char *jpath, struct journal *j, struct la_error *err)
{
    memset(j, 0, sizeof *j);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return LA_FAIL(err, LA_EIO, "cannot read %s: %s", jpath, strerror(errno));
    size_t size = (size_t)st.st_size;
    if (size == 0)
        return LA_OK;
    unsigned char *p = malloc(size);
    if (!p)
        return LA_FAIL(err, LA_ENOMEM, "out of memory reading %s", jpath);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, p + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    size_t off = journal_parse_header(p, got, j);
    if (off == 0) {
        attrs_free(&j->attrs);
        free(p);
        return LA_OK;
    }
    j->valid = 1;
    size_t recsize = sizeof(struct journal_record);
    j->cap = (got - off) / recsize + 1;
    j->rows = malloc(j->cap * sizeof *j->rows);
    if (!j->rows) {
        free(p);
        journal_free(j);
        return LA_FAIL(err, LA_ENOMEM, "out of memory reading %s", jpath);
    }
    while (off + recsize <= got) {
        struct journal_record rec;
        memcpy(&rec, p + off, recsize);
        if (rec.magic != J_ROW_MAGIC || rec.zero != 0 ||
            la_fnv1a(&rec.row, sizeof rec.row, LA_FNV1A_SEED) != rec.sum)
            break;
        j->rows[j->n++] = rec.row;
        off += recsize;
    }
    j->end = (off_t)off;
    free(p);
    return LA_OK;
}

/* Replaces the journal's content by a header and rows (the journal stays the same file, so the
 * writer's lock on it holds).  It is only ever called with rows of a healthy .h5, so a crash
 * halfway is repaired by the next open: a torn header makes the journal invalid and a short
 * one a prefix of the .h5, and either way the journal is regenerated from the .h5 again. */
static int journal_rewrite(int fd, const char *jpath, const struct attr_set *attrs,
                           const struct la_row *rows, size_t n, off_t *end,
                           struct la_error *err)
{
    struct buf b = {0};
    if (journal_header(attrs, &b) != 0) {
        free(b.p);
        return LA_FAIL(err, LA_ENOMEM, "out of memory writing %s", jpath);
    }
    for (size_t i = 0; i < n && !b.oom; i++) {
        struct journal_record rec;
        journal_record(&rec, &rows[i]);
        buf_put(&b, &rec, sizeof rec);
    }
    int rc = LA_OK;
    if (b.oom)
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory writing %s", jpath);
    else if (ftruncate(fd, 0) != 0 || pwrite_all(fd, b.p, b.n, 0) != 0)
        rc = LA_FAIL(err, LA_EIO, "cannot write %s: %s", jpath, strerror(errno));
    else
        *end = (off_t)b.n;
    free(b.p);
    return rc;
}

static int journal_path(const char *path, char *jpath, size_t cap, struct la_error *err)
{
    if (snprintf(jpath, cap, "%s%s", path, JOURNAL_SUFFIX) >= (int)cap)
        return LA_FAIL(err, LA_EINVAL, "results path too long: %s", path);
    return LA_OK;
}

/* ---- the open writer ------------------------------------------------------------------ */

struct la_results {
    hid_t file, dset, mtype;
    int jfd;          /* the journal, locked for the writer's lifetime */
    int lfd;          /* the .h5 itself, OFD-locked for the writer's lifetime (-1: none yet) */
    off_t jend;       /* its length */
    size_t nrows;
    char path[LA_PATH_LEN];
    char jpath[LA_PATH_LEN + 16];
    /* Keys of status-OK rows: open addressing, linear probing, power-of-two capacity. */
    char **keys;
    size_t kcap, kcount;
};

static int keyset_add(struct la_results *r, const char *key)
{
    if (2 * (r->kcount + 1) > r->kcap) {
        size_t ncap = r->kcap ? 2 * r->kcap : 256;
        char **nk = calloc(ncap, sizeof *nk);
        if (!nk)
            return LA_ENOMEM;
        for (size_t i = 0; i < r->kcap; i++) {
            if (!r->keys[i])
                continue;
            size_t j = la_fnv1a(r->keys[i], strlen(r->keys[i]), LA_FNV1A_SEED) & (ncap - 1);
            while (nk[j])
                j = (j + 1) & (ncap - 1);
            nk[j] = r->keys[i];
        }
        free(r->keys);
        r->keys = nk;
        r->kcap = ncap;
    }
    size_t j = la_fnv1a(key, strlen(key), LA_FNV1A_SEED) & (r->kcap - 1);
    while (r->keys[j]) {
        if (!strcmp(r->keys[j], key))
            return LA_OK;
        j = (j + 1) & (r->kcap - 1);
    }
    r->keys[j] = strdup(key);
    if (!r->keys[j])
        return LA_ENOMEM;
    r->kcount++;
    return LA_OK;
}

int la_results_has_key(const struct la_results *r, const char *key)
{
    if (!r || !r->kcap || !key)
        return 0;
    size_t j = la_fnv1a(key, strlen(key), LA_FNV1A_SEED) & (r->kcap - 1);
    while (r->keys[j]) {
        if (!strcmp(r->keys[j], key))
            return 1;
        j = (j + 1) & (r->kcap - 1);
    }
    return 0;
}

size_t la_results_nrows(const struct la_results *r) { return r ? r->nrows : 0; }

/* Extends /runs by one row and writes it (no flush). */
static int h5_append(struct la_results *r, const struct la_row *canon, struct la_error *err)
{
    hsize_t n = r->nrows, newdims[1] = {n + 1}, start[1] = {n}, count[1] = {1};
    int rc = LA_OK;
    hid_t fs = -1, ms = -1;
    if (H5Dset_extent(r->dset, newdims) < 0) {
        rc = LA_FAIL(err, LA_EIO, "%s: cannot extend /runs to %llu rows", r->path,
                     (unsigned long long)newdims[0]);
        goto done;
    }
    if ((fs = H5Dget_space(r->dset)) < 0 || (ms = H5Screate_simple(1, count, NULL)) < 0 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dwrite(r->dset, r->mtype, ms, fs, H5P_DEFAULT, canon) < 0) {
        hsize_t back[1] = {n}; /* leave no fill-value row behind */
        H5Dset_extent(r->dset, back);
        rc = LA_FAIL(err, LA_EIO, "%s: cannot write row %llu", r->path, (unsigned long long)n);
        goto done;
    }
    r->nrows++;
done:
    if (ms >= 0)
        H5Sclose(ms);
    if (fs >= 0)
        H5Sclose(fs);
    return rc;
}

static int h5_flush(struct la_results *r, struct la_error *err)
{
    if (H5Fflush(r->file, H5F_SCOPE_GLOBAL) < 0)
        return LA_FAIL(err, LA_EIO, "%s: cannot flush to disk", r->path);
    return LA_OK;
}

/* Opens the (healthy) .h5 for appending. */
static int h5_open_writer(struct la_results *r, struct la_error *err)
{
    hid_t fapl = la_h5_nolock_fapl();
    if (fapl < 0)
        return LA_FAIL(err, LA_EINTERNAL, "HDF5: cannot create a file access list");
    r->file = H5Fopen(r->path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    if (r->file < 0)
        return LA_FAIL(err, LA_EIO, "cannot open results file %s for writing (HDF5 error)",
                       r->path);
    return open_runs(r->file, r->path, &r->dset, &r->nrows, err);
}

/* ---- may an existing file be resumed? ----------------------------------------------- */

/* One "name=value" line of a cell context (the value follows the line's last '='). */
struct ctx_entry {
    const char *name, *val;
    size_t nlen, vlen;
};

/* Splits a context into its entries (pointers into text); the count, or -1 out of memory. */
static long ctx_parse(const char *text, struct ctx_entry **out)
{
    size_t n = 0, cap = 0;
    struct ctx_entry *e = NULL;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        const size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *eq = NULL;
        for (size_t i = 0; i < len; i++)
            if (p[i] == '=')
                eq = p + i;
        if (len) {
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 32;
                struct ctx_entry *ne = realloc(e, ncap * sizeof *ne);
                if (!ne) {
                    free(e);
                    return -1;
                }
                e = ne;
                cap = ncap;
            }
            e[n].name = p;
            e[n].nlen = eq ? (size_t)(eq - p) : len;
            e[n].val = eq ? eq + 1 : p + len;
            e[n].vlen = eq ? (size_t)(p + len - eq - 1) : 0;
            n++;
        }
        p += len + (nl != NULL);
    }
    *out = e;
    return (long)n;
}

static const struct ctx_entry *ctx_find(const struct ctx_entry *e, long n, const char *name,
                                        size_t nlen)
{
    for (long i = 0; i < n; i++)
        if (e[i].nlen == nlen && !memcmp(e[i].name, name, nlen))
            return &e[i];
    return NULL;
}

/* A context value for a message: content hashes shortened to 12 hex digits. */
static int ctx_show_len(const struct ctx_entry *e)
{
    return (int)(e->vlen > 19 && !strncmp(e->val, "sha256:", 7) ? 19 : e->vlen);
}

/* The resume decision, used by `run` (recover_and_open) and by `run --dry-run`
 * (la_results_resume_check) alike.  attrs are the file's root attributes.  The file may be
 * resumed when prov's experiment text is one of the file's texts and no context says
 * otherwise, or when both carry a cell context (seed, measure settings, input file hashes:
 * everything that gives a cell key its meaning) and every entry they share is equal; entries
 * only in prov's are inputs of new cells.  When upd is given and the file must record a new
 * text or new context entries, upd receives the file's attributes with them added. */
static int resume_verdict(const struct attr_set *attrs, const struct la_provenance *prov,
                          const char *path, struct la_resume *v, struct attr_set *upd,
                          struct la_error *err)
{
    memset(v, 0, sizeof *v);
    v->exists = 1;
    const struct attr *t = attrs_find(attrs, "experiment_text");
    if (!t || t->kind != AK_STR)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s has no experiment_text (not a linattn results file?); use --fresh to "
                       "overwrite it",
                       path);
    const char *text = prov->experiment_text ? prov->experiment_text : "";
    const struct attr *nt = attrs_find(attrs, "text_count");
    int ntexts = 1;
    if (nt && (nt->kind == AK_I32 || nt->kind == AK_I64) && nt->i > 1 && nt->i < 1000000)
        ntexts = (int)nt->i;
    int known = !strcmp(t->s, text);
    for (int k = 2; !known && k <= ntexts; k++) {
        char name[40];
        snprintf(name, sizeof name, "experiment_text_%d", k);
        const struct attr *a = attrs_find(attrs, name);
        known = a && a->kind == AK_STR && !strcmp(a->s, text);
    }
    v->ntexts = ntexts;
    const struct attr *n = attrs_find(attrs, "experiment_name");
    char name[256] = "";
    if (n && n->kind == AK_STR)
        snprintf(name, sizeof name, " (experiment '%s')", n->s);
    const struct attr *oc = attrs_find(attrs, "cell_context");
    const char *octx = oc && oc->kind == AK_STR ? oc->s : NULL, *nctx = prov->cell_context;
    if (!octx || !nctx) {
        if (known)
            return LA_OK;
        if (!octx)
            return LA_FAIL(err, LA_EINVAL,
                           "%s holds results of a different experiment text%s and records no "
                           "cell context (written by an older linattn), so whether its cells "
                           "still mean the same cannot be checked; use --fresh to overwrite it, "
                           "or choose another output file",
                           path, name);
        return LA_FAIL(err, LA_EINVAL,
                       "%s holds results of a different experiment text%s; use --fresh to "
                       "overwrite it, or choose another output file",
                       path, name);
    }
    struct ctx_entry *oe = NULL, *ne = NULL;
    long on = ctx_parse(octx, &oe), nn = on < 0 ? -1 : ctx_parse(nctx, &ne);
    if (on < 0 || nn < 0) {
        free(oe);
        return LA_FAIL(err, LA_ENOMEM, "out of memory comparing the cell context of %s", path);
    }
    char diff[LA_ERRMSG_MAX];
    size_t dl = 0;
    int ndiff = 0, nnew = 0;
    diff[0] = '\0';
    for (long i = 0; i < nn; i++) {
        const struct ctx_entry *o = ctx_find(oe, on, ne[i].name, ne[i].nlen);
        if (!o) {
            nnew++;
            continue;
        }
        if (o->vlen == ne[i].vlen && !memcmp(o->val, ne[i].val, o->vlen))
            continue;
        ndiff++;
        if (dl < sizeof diff - 1)
            dl += (size_t)snprintf(diff + dl, sizeof diff - dl, "%s%.*s %.*s -> %.*s",
                                   ndiff > 1 ? ", " : "", (int)ne[i].nlen, ne[i].name,
                                   ctx_show_len(o), o->val, ctx_show_len(&ne[i]), ne[i].val);
    }
    int rc = LA_OK;
    if (ndiff) {
        rc = LA_FAIL(err, LA_EINVAL,
                     "%s holds results%s whose cells this experiment would change: %s; use "
                     "--fresh to start over, or choose another output file",
                     path, name, diff);
        goto done;
    }
    v->add_text = !known;
    v->new_context = nnew;
    if (!upd || (known && !nnew))
        goto done;
    /* The updated attributes: the new text numbered after the others, new context entries
     * appended to the old ones (so later runs still check every input of every cell). */
    size_t olen = strlen(octx);
    struct buf m = {0};
    buf_put(&m, octx, olen);
    if (olen && octx[olen - 1] != '\n')
        buf_put(&m, "\n", 1);
    for (long i = 0; i < nn; i++)
        if (!ctx_find(oe, on, ne[i].name, ne[i].nlen)) {
            buf_put(&m, ne[i].name, (size_t)(ne[i].val - ne[i].name) + ne[i].vlen);
            buf_put(&m, "\n", 1);
        }
    buf_put(&m, "", 1);
    char tname[40];
    snprintf(tname, sizeof tname, "experiment_text_%d", ntexts + 1);
    if (m.oom || attrs_copy(upd, attrs) || attrs_set_str(upd, "cell_context", (char *)m.p) ||
        (!known && (attrs_add_str(upd, tname, text) ||
                    attrs_set_i32(upd, "text_count", ntexts + 1))))
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory updating the attributes of %s", path);
    free(m.p);
done:
    free(oe);
    free(ne);
    return rc;
}

static int text_matches(const struct attr_set *attrs, const struct la_provenance *prov,
                        const char *path, struct la_error *err)
{
    struct la_resume v;
    return resume_verdict(attrs, prov, path, &v, NULL, err);
}

static int same_id(const struct attr_set *a, const struct attr_set *b)
{
    const struct attr *x = attrs_find(a, ID_ATTR), *y = attrs_find(b, ID_ATTR);
    return x && y && x->kind == AK_STR && y->kind == AK_STR && !strcmp(x->s, y->s);
}

/* rows a[0..na) start with b[0..nb)? */
static int is_prefix(const struct la_row *b, size_t nb, const struct la_row *a, size_t na)
{
    return nb <= na && (nb == 0 || !memcmp(a, b, nb * sizeof *a));
}

/* Removes PATH.tmp-PID files that a writer killed while building the .h5 left behind; the
 * caller holds the journal lock, so no live writer is building one. */
static void remove_stale_tmp(const char *path)
{
    char dir[LA_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : path;
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    char prefix[LA_PATH_LEN + 8];
    snprintf(prefix, sizeof prefix, "%s.tmp-", base);
    size_t plen = strlen(prefix);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen) || !e->d_name[plen] ||
            strspn(e->d_name + plen, "0123456789") != strlen(e->d_name + plen))
            continue;
        char full[2 * LA_PATH_LEN + 2];
        snprintf(full, sizeof full, "%s/%s", dir, e->d_name);
        unlink(full);
    }
    closedir(d);
}

/* Brings .h5 and journal into agreement (the reasoning is in the file's top comment), opens
 * the .h5 for appending and loads the keys of finished rows. */
static int recover_and_open(struct la_results *r, const struct la_provenance *prov,
                            int fresh, struct la_error *err)
{
    struct journal j = {0};
    struct h5_content h = {0};
    struct attr_set newattrs = {0};
    const struct attr_set *kept = NULL; /* the attributes of a resumed file */
    struct la_error h5err;
    int rc = LA_OK, h5_ok = 0, h5_exists = 0, built = 0;

    remove_stale_tmp(r->path);
    if (fresh) {
        if (ftruncate(r->jfd, 0) != 0) {
            rc = LA_FAIL(err, LA_EIO, "cannot write %s: %s", r->jpath, strerror(errno));
            goto done;
        }
    } else {
        if ((rc = journal_load(r->jfd, r->jpath, &j, err)))
            goto done;
        struct stat st;
        h5_exists = stat(r->path, &st) == 0;
        if (h5_exists && !S_ISREG(st.st_mode)) {
            rc = LA_FAIL(err, LA_EIO, "results path %s is not a regular file", r->path);
            goto done;
        }
        h5_ok = h5_exists && h5_load(r->path, 1, 1, &h, NULL, &h5err) == LA_OK;
    }
    if (j.foreign || (h5_ok && !h.same_layout)) {
        rc = LA_FAIL(err, LA_EFORMAT,
                     "%s was written by a linattn with another row layout; use --fresh to "
                     "overwrite it, or choose another output file",
                     r->path);
        goto done;
    }
    /* A journal of another file (the .h5 was replaced) is stale: the .h5 is adopted. */
    if (j.valid && h5_ok && !same_id(&j.attrs, &h.attrs)) {
        journal_free(&j);
        j.valid = 0;
    }

    const struct la_row *rows = NULL;
    size_t n = 0;
    if (j.valid) {
        if ((rc = text_matches(&j.attrs, prov, r->path, err)))
            goto done;
        if (h5_ok && h.n_empty == 0 && is_prefix(j.rows, j.n, h.rows, h.n) && h.n > j.n) {
            /* The .h5 has more (rows added by another tool): it becomes the truth. */
            if ((rc = journal_rewrite(r->jfd, r->jpath, &h.attrs, h.rows, h.n, &r->jend, err)))
                goto done;
            rows = h.rows;
            n = h.n;
            kept = &h.attrs;
        } else {
            if (!(h5_ok && h.n_empty == 0 && is_prefix(h.rows, h.n, j.rows, j.n))) {
                /* Damaged, missing or disagreeing .h5: rebuilt from the journal. */
                if ((rc = h5_build(r->path, &j.attrs, j.rows, j.n, err)))
                    goto done;
                built = 1;
            }
            /* Cut a torn record at the end, so new records follow good ones. */
            if (ftruncate(r->jfd, j.end) != 0) {
                rc = LA_FAIL(err, LA_EIO, "cannot write %s: %s", r->jpath, strerror(errno));
                goto done;
            }
            r->jend = j.end;
            rows = j.rows;
            n = j.n;
            kept = &j.attrs;
        }
    } else if (h5_ok) {
        if ((rc = text_matches(&h.attrs, prov, r->path, err)))
            goto done;
        if (h.n_empty || !attrs_find(&h.attrs, ID_ATTR)) {
            if (!attrs_find(&h.attrs, ID_ATTR)) {
                /* Cannot happen for files of this build; give an adopted file an id. */
                char id[32];
                snprintf(id, sizeof id, "%016" PRIx64,
                         la_fnv1a(r->path, strlen(r->path), LA_FNV1A_SEED));
                if (attrs_add_str(&h.attrs, ID_ATTR, id)) {
                    rc = LA_FAIL(err, LA_ENOMEM, "out of memory opening %s", r->path);
                    goto done;
                }
            }
            if ((rc = h5_build(r->path, &h.attrs, h.rows, h.n, err)))
                goto done;
            built = 1;
        }
        if ((rc = journal_rewrite(r->jfd, r->jpath, &h.attrs, h.rows, h.n, &r->jend, err)))
            goto done;
        rows = h.rows;
        n = h.n;
        kept = &h.attrs;
    } else if (h5_exists) {
        rc = LA_FAIL(err, LA_EFORMAT, "%s exists but does not read as a results file (%s); "
                     "--fresh replaces it if it is a damaged results file, otherwise choose "
                     "another output file", r->path, h5err.msg);
        goto done;
    } else {
        /* A new file (or --fresh): the .h5 first, then the journal header. */
        if (attrs_provenance(&newattrs, prov)) {
            rc = LA_FAIL(err, LA_ENOMEM, "out of memory creating %s", r->path);
            goto done;
        }
        if ((rc = h5_build(r->path, &newattrs, NULL, 0, err)))
            goto done;
        built = 1;
        if ((rc = journal_rewrite(r->jfd, r->jpath, &newattrs, NULL, 0, &r->jend, err)))
            goto done;
    }

    /* A resume that records a new experiment text or new cell-context entries rewrites both
     * files with the updated attributes and the same rows: the .h5 first (built aside and
     * renamed), then the journal.  A crash between the two leaves a journal without them,
     * and the next open updates both again. */
    if (kept) {
        struct la_resume v;
        if ((rc = resume_verdict(kept, prov, r->path, &v, &newattrs, err)))
            goto done;
        if (newattrs.n && ((rc = h5_build(r->path, &newattrs, rows, n, err)) ||
                           (rc = journal_rewrite(r->jfd, r->jpath, &newattrs, rows, n, &r->jend,
                                                 err))))
            goto done;
    }
    /* A file that reads cleanly can still crash HDF5 once written: it is rebuilt from the
     * rows just read (the journal's, or its own). */
    if (!built && !newattrs.n && kept && !h5_write_probe(r->path) &&
        (rc = h5_build(r->path, kept, rows, n, err)))
        goto done;
    if ((rc = h5_open_writer(r, err)))
        goto done;
    /* Rows the journal has and the .h5 missed (a crash between the two writes). */
    if (r->nrows < n) {
        for (size_t i = r->nrows; i < n && !rc; i++)
            rc = h5_append(r, &rows[i], err);
        if (!rc)
            rc = h5_flush(r, err);
        if (rc)
            goto done;
    }
    if (r->nrows != n) {
        rc = LA_FAIL(err, LA_EINTERNAL, "%s: %zu rows after recovery, expected %zu", r->path,
                     r->nrows, n);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        if (rows[i].status == LA_ROW_OK && keyset_add(r, rows[i].key) != LA_OK) {
            rc = LA_FAIL(err, LA_ENOMEM, "out of memory loading the keys of %s", r->path);
            goto done;
        }
done:
    attrs_free(&newattrs);
    h5_content_free(&h);
    journal_free(&j);
    return rc;
}

/* Follows symbolic links from path to the file they name (which need not exist yet: a dangling
 * link names the file to create), so the journal, the tmp file, the rename and the locks are
 * those of the real file and a link stays a link. */
static int resolve_links(const char *path, char *out, size_t cap, struct la_error *err)
{
    char cur[LA_PATH_LEN], link[LA_PATH_LEN];
    snprintf(cur, sizeof cur, "%s", path);
    for (int hops = 0;; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            break;
        if (hops == 40)
            return LA_FAIL(err, LA_EIO, "results path %s: too many levels of symbolic links",
                           path);
        ssize_t n = readlink(cur, link, sizeof link);
        if (n < 0)
            return LA_FAIL(err, LA_EIO, "cannot read the symbolic link %s: %s", cur,
                           strerror(errno));
        if ((size_t)n >= sizeof link)
            return LA_FAIL(err, LA_EINVAL, "results path too long (max %d bytes): %s -> ...",
                           LA_PATH_LEN - 1, cur);
        link[n] = '\0';
        char *slash = strrchr(cur, '/');
        if (link[0] == '/' || !slash) {
            snprintf(cur, sizeof cur, "%s", link);
        } else {
            char next[2 * LA_PATH_LEN];
            snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur, link);
            if (strlen(next) >= sizeof cur)
                return LA_FAIL(err, LA_EINVAL, "results path too long (max %d bytes): %s",
                               LA_PATH_LEN - 1, next);
            memcpy(cur, next, strlen(next) + 1);
        }
    }
    if (strlen(cur) >= cap)
        return LA_FAIL(err, LA_EINVAL, "results path too long (max %d bytes): %s", (int)cap - 1,
                       cur);
    snprintf(out, cap, "%s", cur);
    return LA_OK;
}

/* Takes an open-file-description write lock on the .h5 at path (its inode, so a hard link to
 * it is refused too).  No file yet: *fd = -1 and LA_OK.  OFD locks are of another kind than the
 * flock() that HDF5 and h5py take, so readers that lock are not disturbed (on Linux local
 * filesystems; NFS maps both onto the same lock). */
static int lock_h5(const char *path, const char *shown, int *fd, struct la_error *err)
{
    *fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
    short type = F_WRLCK;
    if (*fd < 0 && errno == EACCES) { /* read-only: a read lock still refuses a writer */
        *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        type = F_RDLCK;
    }
    if (*fd < 0)
        return errno == ENOENT ? LA_OK
                               : LA_FAIL(err, LA_EIO, "cannot open results file %s: %s", shown,
                                         strerror(errno));
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type;
    fl.l_whence = SEEK_SET;
    if (fcntl(*fd, F_OFD_SETLK, &fl) == 0)
        return LA_OK;
    const int e = errno;
    if (e == EINVAL || e == ENOLCK || e == EOPNOTSUPP || e == ENOSYS)
        return LA_OK; /* no such locks here: the journal's lock still holds */
    close(*fd);
    *fd = -1;
    if (e == EAGAIN || e == EACCES)
        return LA_FAIL(err, LA_EIO,
                       "results file %s is locked: another linattn run is writing it (perhaps "
                       "under another name: a link)",
                       shown);
    return LA_FAIL(err, LA_EIO, "cannot lock %s: %s", shown, strerror(e));
}

/* After recovery the .h5 may be a new file (built and renamed over the path): lock that one. */
static int relock_h5(struct la_results *r, const char *shown, struct la_error *err)
{
    struct stat a, b;
    if (stat(r->path, &b) != 0)
        return LA_FAIL(err, LA_EIO, "cannot open results file %s: %s", shown, strerror(errno));
    if (r->lfd >= 0 && fstat(r->lfd, &a) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
        return LA_OK;
    int fd;
    int rc = lock_h5(r->path, shown, &fd, err);
    if (rc)
        return rc;
    if (r->lfd >= 0)
        close(r->lfd);
    r->lfd = fd;
    return LA_OK;
}

/* Whether --fresh may replace what is at path: nothing, an empty file, or a linattn results
 * file.  A results file is recognised by its journal's header (so a damaged .h5 with an intact
 * journal counts) or by the HDF5 signature at byte 0 with an experiment_text attribute (or an
 * HDF5 file that does not open: a damaged results file without its journal).  Only the first
 * bytes and one attribute are read.  LA_OK or LA_EINVAL with the reason. */
static int fresh_allowed(const struct la_results *r, const char *shown, struct la_error *err)
{
    static const unsigned char h5sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    struct stat st;
    if (stat(r->path, &st) != 0)
        return LA_OK;
    if (!S_ISREG(st.st_mode))
        return LA_FAIL(err, LA_EINVAL, "results path %s is not a regular file", shown);
    if (st.st_size == 0)
        return LA_OK;
    unsigned char head[8];
    int fd = open(r->path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? pread(fd, head, sizeof head, 0) : -1;
    if (fd >= 0)
        close(fd);
    int ok = 0;
    if (got == (ssize_t)sizeof head && !memcmp(head, h5sig, 8)) {
        /* An HDF5 file: read through the probe, so a damaged file cannot crash this check. */
        int sig;
        const enum probe_result pr = h5_probe(r->path, 1, 0, &sig);
        if (pr == PROBE_NO_FORK)
            return LA_FAIL(err, LA_EIO, "cannot check %s before replacing it (fork: %s)", shown,
                           strerror(errno));
        if (pr != PROBE_FINISHED) {
            ok = 1; /* HDF5 crashes or hangs on it: a damaged results file */
        } else {
            struct h5_content c;
            struct la_error lerr;
            if (h5_load_direct(r->path, 1, 0, &c, &lerr) == LA_OK) {
                ok = attrs_find(&c.attrs, "experiment_text") != NULL;
                h5_content_free(&c);
            } else {
                /* It reads without crashing but is no results file as a whole (no /runs,
                 * say): a results file that lost its table still has its experiment_text. */
                H5E_auto2_t efn;
                void *edata;
                H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
                H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
                hid_t f = la_h5_open_readonly(r->path);
                if (f >= 0) {
                    ok = H5Aexists(f, "experiment_text") > 0;
                    H5Fclose(f);
                }
                H5Eset_auto2(H5E_DEFAULT, efn, edata);
            }
        }
    } else {
        /* Not HDF5 (its first bytes damaged, say): a results file only if its journal's
         * header is intact. */
        ok = r->jfd >= 0 && pread(r->jfd, head, sizeof head, 0) == (ssize_t)sizeof head &&
             !memcmp(head, J_MAGIC, 8);
    }
    if (ok)
        return LA_OK;
    return LA_FAIL(err, LA_EINVAL,
                   "%s is not a linattn results file; --fresh replaces only results files: "
                   "choose another output file",
                   shown);
}

int la_results_open(const char *path, const struct la_provenance *prov, int fresh,
                    struct la_results **out, struct la_error *err)
{
    *out = NULL;
    if (!path || !*path || !prov)
        return LA_FAIL(err, LA_EINVAL, "la_results_open: no path or provenance");
    if (strlen(path) >= LA_PATH_LEN)
        return LA_FAIL(err, LA_EINVAL, "results path too long (max %d bytes): %s",
                       LA_PATH_LEN - 1, path);
    struct la_results *r = calloc(1, sizeof *r);
    if (!r)
        return LA_FAIL(err, LA_ENOMEM, "out of memory opening %s", path);
    r->file = r->dset = r->mtype = -1;
    r->jfd = r->lfd = -1;
    int rc = resolve_links(path, r->path, sizeof r->path, err);
    if (rc)
        goto fail;
    if ((rc = make_parent_dirs(r->path, err)))
        goto fail;
    if ((rc = journal_path(r->path, r->jpath, sizeof r->jpath, err)))
        goto fail;
    int created = 0;
    r->jfd = open(r->jpath, O_RDWR | O_CLOEXEC);
    if (r->jfd < 0 && errno == ENOENT) {
        r->jfd = open(r->jpath, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        created = r->jfd >= 0;
    }
    if (r->jfd < 0) {
        rc = LA_FAIL(err, LA_EIO, "cannot open results file %s for writing (journal %s): %s",
                     path, r->jpath, strerror(errno));
        goto fail;
    }
    /* Two locks: flock on the journal (one writer per name, also through a linked directory)
     * and an OFD lock on the .h5's inode (one writer per file, whatever name reaches it).
     * A reader that met a damaged .h5 takes a shared lock for an instant to ask whether a
     * writer is live (writer_active), so a busy lock is asked again for up to 0.2 s before
     * the file counts as taken. */
    int locked = flock(r->jfd, LOCK_EX | LOCK_NB) == 0;
    for (int tries = 0; !locked && errno == EWOULDBLOCK && tries < 10; tries++) {
        nanosleep(&(struct timespec){0, 20000000}, NULL);
        locked = flock(r->jfd, LOCK_EX | LOCK_NB) == 0;
    }
    if (!locked) {
        if (errno == EWOULDBLOCK)
            rc = LA_FAIL(err, LA_EIO,
                         "results file %s is locked: another linattn run is writing it", path);
        else if (errno != ENOLCK && errno != ENOSYS && errno != EOPNOTSUPP)
            rc = LA_FAIL(err, LA_EIO, "cannot lock %s: %s", r->jpath, strerror(errno));
        if (rc)
            goto fail_new; /* a filesystem without locks is tolerated, as HDF5 does */
    }
    if ((rc = lock_h5(r->path, path, &r->lfd, err)))
        goto fail_new;
    if (fresh && (rc = fresh_allowed(r, path, err)))
        goto fail_new;
    if ((r->mtype = row_mem_type()) < 0) {
        rc = LA_FAIL(err, LA_EINTERNAL, "HDF5: cannot build the row type");
        goto fail;
    }
    rc = recover_and_open(r, prov, fresh, err);
    if (!rc)
        rc = relock_h5(r, path, err);
    if (rc)
        goto fail_new;
    *out = r;
    return LA_OK;
fail_new:
    /* Leave no empty journal behind for a file that was refused (only this writer can have
     * created it: the creation was exclusive). */
    if (created) {
        struct stat st;
        if (fstat(r->jfd, &st) == 0 && st.st_size == 0)
            unlink(r->jpath);
    }
fail:
    la_results_close(r);
    return rc;
}

int la_results_append(struct la_results *r, const struct la_row *row, struct la_error *err)
{
    if (!r || !row)
        return LA_FAIL(err, LA_EINVAL, "la_results_append: no file or row");
    if (row->status == LA_ROW_EMPTY)
        return LA_FAIL(err, LA_EINVAL, "la_results_append: status %d is reserved for unwritten "
                       "rows", LA_ROW_EMPTY);
    struct journal_record rec;
    struct la_row canon;
    canon_row(&canon, row);
    /* The journal first: once this write returns, the row survives any crash. */
    journal_record(&rec, &canon);
    if (pwrite_all(r->jfd, &rec, sizeof rec, r->jend) != 0) {
        int e = errno;
        /* Cut a partial record; should that fail too, the next open's checksums drop it. */
        int cut = ftruncate(r->jfd, r->jend);
        (void)cut;
        return LA_FAIL(err, LA_EIO, "cannot write %s: %s", r->jpath, strerror(e));
    }
    const off_t jprev = r->jend;
    r->jend += (off_t)sizeof rec;
    const size_t nprev = r->nrows;
    int rc = h5_append(r, &canon, err);
    if (!rc)
        rc = h5_flush(r, err);
    if (rc) {
        /* The .h5 could not take the row (disk full): take it out of the journal too, and the
         * row count of the open .h5 back, so the file holds nrows rows by every account (the
         * journal, the .h5 if HDF5 can still write its metadata, a resume).  Cutting a file
         * needs no space; should it fail, the record's magic is overwritten in place. */
        if (r->nrows > nprev) {
            hsize_t back[1] = {nprev};
            H5Dset_extent(r->dset, back);
            r->nrows = nprev;
        }
        if (ftruncate(r->jfd, jprev) != 0) {
            const uint32_t zero = 0;
            if (pwrite_all(r->jfd, &zero, sizeof zero, jprev) != 0) {
                char why[LA_ERRMSG_MAX];
                snprintf(why, sizeof why, "%s", err ? err->msg : "");
                return LA_FAIL(err, LA_EIO, "%s; and %s could not be cut back: the next open "
                               "may find %zu rows", why, r->jpath, nprev + 1);
            }
        }
        r->jend = jprev;
        return rc;
    }
    if (canon.status == LA_ROW_OK && keyset_add(r, canon.key) != LA_OK)
        return LA_FAIL(err, LA_ENOMEM, "out of memory recording the key of row %zu",
                       r->nrows - 1);
    return LA_OK;
}

size_t la_results_settle(struct la_results *r)
{
    if (!r)
        return 0;
    /* After a failed write HDF5's cached state need not agree with the rows it accepted, and
     * its close would write that state into the file.  So its descriptor is pointed at an
     * anonymous memory file first: the close writes there, and the results file keeps what the
     * last good flush left, which is checked below.  Past a file size limit (EFBIG) that close
     * fails all the same, and HDF5 1.10 then crashes in its exit handler: the caller must end
     * the process with _exit (cmd_run.c does). */
    void *handle = NULL;
    if (r->file >= 0 && H5Fget_vfd_handle(r->file, H5P_DEFAULT, &handle) >= 0 && handle) {
        const int scratch = memfd_create("linattn-detached", MFD_CLOEXEC);
        if (scratch >= 0) {
            (void)dup3(scratch, *(int *)handle, O_CLOEXEC);
            close(scratch);
        }
    }
    if (r->dset >= 0)
        H5Dclose(r->dset);
    if (r->file >= 0)
        H5Fclose(r->file);
    r->dset = r->file = -1;
    struct journal j;
    struct la_error jerr;
    if (journal_load(r->jfd, r->jpath, &j, &jerr) != LA_OK || !j.valid) {
        journal_free(&j);
        return r->nrows; /* nothing better known */
    }
    struct h5_content h;
    struct la_error herr;
    const int h5_ok = h5_load(r->path, 0, 1, &h, NULL, &herr) == LA_OK;
    const int agree = h5_ok && h.n_empty == 0 && h.n == j.n && is_prefix(h.rows, h.n, j.rows, j.n);
    if (h5_ok)
        h5_content_free(&h);
    if (!agree) {
        /* Rebuilt from the journal; where there is no room even for that, the .h5 (whose rows
         * are all in the journal) makes way, and then readers and a resume use the journal. */
        struct la_error berr;
        if (h5_build(r->path, &j.attrs, j.rows, j.n, &berr) != LA_OK) {
            if (r->lfd >= 0) /* its open descriptor would keep the old file's space */
                close(r->lfd);
            r->lfd = -1;
            if (unlink(r->path) == 0)
                (void)h5_build(r->path, &j.attrs, j.rows, j.n, &berr);
        }
    }
    const size_t n = j.n;
    journal_free(&j);
    r->nrows = n;
    return n;
}

void la_results_close(struct la_results *r)
{
    if (!r)
        return;
    if (r->dset >= 0)
        H5Dclose(r->dset);
    if (r->mtype >= 0)
        H5Tclose(r->mtype);
    if (r->file >= 0)
        H5Fclose(r->file);
    if (r->lfd >= 0)
        close(r->lfd); /* releases the .h5's lock */
    if (r->jfd >= 0)
        close(r->jfd); /* releases the journal's lock */
    for (size_t i = 0; i < r->kcap; i++)
        free(r->keys[i]);
    free(r->keys);
    free(r);
}

/* ---- readers -------------------------------------------------------------------------- */

/* The journal of path, read-only (no lock: a writer may be appending). */
static int journal_read_path(const char *path, struct journal *j)
{
    memset(j, 0, sizeof *j);
    char jpath[LA_PATH_LEN + 16];
    if (journal_path(path, jpath, sizeof jpath, NULL))
        return 0;
    int fd = open(jpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int rc = journal_load(fd, jpath, j, NULL);
    close(fd);
    if (rc || !j->valid) {
        journal_free(j);
        return 0;
    }
    return 1;
}

/* 1 when a writer holds the journal's lock (a run is appending), 0 when none does or the
 * journal cannot be opened.  Asked only after the .h5 failed to read, so a reader does not
 * take the lock in the common case and never delays a writer that is starting. */
static int writer_active(const char *path)
{
    char jpath[LA_PATH_LEN + 16];
    if (journal_path(path, jpath, sizeof jpath, NULL))
        return 0;
    int fd = open(jpath, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int active = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases a lock taken here */
    return active;
}

/* The .h5's content.  When it does not read: the journal's while a writer is appending (the
 * .h5 can be mid-write then); otherwise a one-line error that says the file is damaged and
 * how to recover it (from an intact journal by `linattn run`, or not at all). */
static int load_for_reading(const char *path, int want_attrs, int want_rows,
                            struct h5_content *c, int *from_journal, struct la_error *err)
{
    if (from_journal)
        *from_journal = 0;
    /* Through a symbolic link, the journal is the one beside the real file (la_results_open
     * writes it there). */
    char real[LA_PATH_LEN];
    int rc = resolve_links(path, real, sizeof real, err);
    if (rc)
        return rc;
    path = real;
    struct la_error h5err;
    la_error_clear(&h5err);
    int crashed = 0;
    rc = h5_load(path, want_attrs, want_rows, c, &crashed, &h5err);
    if (rc == LA_OK)
        return LA_OK;
    struct stat st;
    const int missing = rc == LA_EIO && stat(path, &st) != 0 && errno == ENOENT;
    if (rc != LA_EFORMAT && !missing) { /* an unreadable file, out of memory */
        if (err)
            *err = h5err;
        return rc;
    }
    struct journal j;
    int jok = journal_read_path(path, &j);
    const int live = jok && writer_active(path);
    /* The journal holds every stored row: it stands in for the .h5 while a run appends, for
     * the resume decision, and when the .h5 is gone (a run out of disk deletes it to keep the
     * journal's rows readable). */
    if (jok && (live || from_journal || missing)) {
        if (from_journal && !live) {
            *from_journal = 1;
            LA_FAIL(err, LA_EFORMAT, "damaged (%s); the run rebuilds it from its intact journal "
                    "%s%s (%zu rows)", h5err.msg, path, JOURNAL_SUFFIX, j.n);
        } else {
            la_error_clear(err);
        }
        memset(c, 0, sizeof *c);
        c->attrs = j.attrs;
        c->rows = j.rows;
        c->n = j.n;
        c->same_layout = 1;
        return LA_OK;
    }
    char jpath[LA_PATH_LEN + 16];
    snprintf(jpath, sizeof jpath, "%s%s", path, JOURNAL_SUFFIX);
    if (jok) {
        const struct attr *name = attrs_find(&j.attrs, "experiment_name");
        rc = LA_FAIL(err, LA_EFORMAT,
                     "%s%s; its journal %s is intact (%zu rows): `linattn run EXPERIMENT.yaml "
                     "-o %s` with its experiment%s%s%s rebuilds it from the journal and goes on",
                     crashed ? "" : "damaged results file: ", h5err.msg, jpath, j.n, path,
                     name && name->kind == AK_STR ? " ('" : "",
                     name && name->kind == AK_STR ? name->s : "",
                     name && name->kind == AK_STR ? "')" : "");
        journal_free(&j);
        return rc;
    }
    if (crashed)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s; it has no intact journal (%s) to rebuild it from, so its rows are "
                       "lost: `linattn run EXPERIMENT.yaml -o %s --fresh` measures them again",
                       h5err.msg, jpath, path);
    if (err)
        *err = h5err;
    return rc;
}

static int read_rows(const char *path, struct la_row **rows, size_t *n, int *from_journal,
                     struct la_error *err)
{
    *rows = NULL;
    *n = 0;
    struct h5_content c;
    int rc = load_for_reading(path, 0, 1, &c, from_journal, err);
    if (rc)
        return rc;
    *rows = c.rows;
    *n = c.n;
    c.rows = NULL;
    if (!*rows && !(*rows = malloc(sizeof **rows))) { /* never NULL on success */
        h5_content_free(&c);
        return LA_FAIL(err, LA_ENOMEM, "out of memory reading %s", path);
    }
    h5_content_free(&c);
    return LA_OK;
}

int la_results_read(const char *path, struct la_row **rows, size_t *n, struct la_error *err)
{
    return read_rows(path, rows, n, NULL, err);
}

int la_results_read_resumable(const char *path, struct la_row **rows, size_t *n,
                              int *from_journal, struct la_error *err)
{
    return read_rows(path, rows, n, from_journal, err);
}

int la_results_attr(const char *path, const char *name, char *buf, size_t cap,
                    struct la_error *err)
{
    if (cap)
        buf[0] = '\0';
    struct h5_content c;
    int rc = load_for_reading(path, 1, 0, &c, NULL, err);
    if (rc)
        return rc;
    const struct attr *a = attrs_find(&c.attrs, name);
    char *v = a ? attr_text(a) : NULL;
    if (!a)
        rc = LA_FAIL(err, LA_EFORMAT, "%s: no attribute '%s' (not a linattn results file?)",
                     path, name);
    else if (!v)
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory reading attribute '%s'", name);
    else if (cap)
        snprintf(buf, cap, "%s", v);
    free(v);
    h5_content_free(&c);
    return rc;
}

int la_results_attr_names(const char *path, char ***names, size_t *n, struct la_error *err)
{
    *names = NULL;
    *n = 0;
    struct h5_content c;
    int rc = load_for_reading(path, 1, 0, &c, NULL, err);
    if (rc)
        return rc;
    char **out = calloc(c.attrs.n + 1, sizeof *out);
    size_t k = 0;
    /* The known ones in their documented order, then the others as stored. */
    for (size_t i = 0; out && i < N_KNOWN_ATTRS; i++)
        if (attrs_find(&c.attrs, known_attrs[i]) && !(out[k++] = strdup(known_attrs[i])))
            goto oom;
    for (size_t i = 0; out && i < c.attrs.n; i++)
        if (!is_known_attr(c.attrs.a[i].name) && !(out[k++] = strdup(c.attrs.a[i].name)))
            goto oom;
    if (!out)
        goto oom;
    h5_content_free(&c);
    *names = out;
    *n = k;
    return LA_OK;
oom:
    la_results_names_free(out, k);
    h5_content_free(&c);
    return LA_FAIL(err, LA_ENOMEM, "out of memory listing the attributes of %s", path);
}

void la_results_names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n && names; i++)
        free(names[i]);
    free(names);
}

/* ---- the resume decision for --dry-run ------------------------------------------------ */

int la_results_resume_check(const char *path, const struct la_provenance *prov,
                            struct la_resume *v, struct la_error *err)
{
    memset(v, 0, sizeof *v);
    char jpath[LA_PATH_LEN + 16];
    int rc = journal_path(path, jpath, sizeof jpath, err);
    if (rc)
        return rc;
    struct stat st;
    const int h5_exists = stat(path, &st) == 0;
    if (h5_exists && !S_ISREG(st.st_mode))
        return LA_FAIL(err, LA_EIO, "results path %s is not a regular file", path);
    /* A damaged .h5 with an intact journal resumes from the journal's attributes, as run
     * rebuilds it from them. */
    struct h5_content c;
    struct la_error lerr;
    int from_journal = 0;
    if (load_for_reading(path, 1, 0, &c, &from_journal, &lerr) != LA_OK) {
        if (!h5_exists)
            return LA_OK; /* no file, or only a journal without a header: a new file */
        return LA_FAIL(err, LA_EFORMAT, "%s exists but does not read as a results file (%s); "
                       "--fresh replaces it if it is a damaged results file, otherwise choose "
                       "another output file", path, lerr.msg);
    }
    rc = resume_verdict(&c.attrs, prov, path, v, NULL, err);
    h5_content_free(&c);
    return rc;
}

/* ---- the --fresh decision for --dry-run ----------------------------------------------- */

int la_results_fresh_check(const char *path, struct la_error *err)
{
    struct la_results r;
    memset(&r, 0, sizeof r);
    int rc = resolve_links(path, r.path, sizeof r.path, err);
    if (rc || (rc = journal_path(r.path, r.jpath, sizeof r.jpath, err)))
        return rc;
    if (writer_active(r.path))
        return LA_FAIL(err, LA_EIO, "results file %s is locked: another linattn run is writing it",
                       path);
    r.jfd = open(r.jpath, O_RDONLY | O_CLOEXEC); /* -1 when there is no journal */
    rc = fresh_allowed(&r, path, err);
    if (r.jfd >= 0)
        close(r.jfd);
    return rc;
}

/* ---- what a row measured ---------------------------------------------------------------- */

int la_row_is_softmax(const struct la_row *r)
{
    const struct attn_kernel *kn = attn_kernel_lookup(r->kernel);
    if (kn)
        return kn->input == ATTN_IN_QK;
    return !r->map[0] || !strcmp(r->map, "none") || !strcmp(r->map, "-");
}
