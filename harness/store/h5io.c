/* h5io.c — the HDF5 side of a results file: row types, root attributes, reading an .h5 (first
 * in a forked child, the probe), and building a complete .h5 aside and renaming it into place.
 *
 * Layout of PATH: root attributes (provenance; variable-length UTF-8 strings so h5py returns
 * str; `threads` int32, `seed` uint64; `results_id` ties the file to its journal) and /runs,
 * a 1-D chunked (64 rows), unlimited, packed compound dataset whose members are the fields of
 * struct la_row (names and order: the column table in columns.c; strings fixed-length UTF-8,
 * NUL-padded with zeros).  results/README.md shows how to read it.  Plain HDF5 C API
 * (hdf5-serial, no high-level library), never HDF5's own file lock (la_h5_nolock_fapl in
 * core/h5util.c).  Touches the .h5 at the path it is given, PATH.tmp-PID while building and
 * the missing directories above a new file.  Appending to an open file, the locks and the
 * decisions over .h5 and journal are results.c's.
 * Shared with the other files of harness/store/ through store_impl.h.
 * Test: make build/tests/test_results && build/tests/test_results; tests/corrupt_e2e.sh
 * (damaged files), tests/h5strings.sh (attributes written by h5py).
 */
#include "store_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../core/h5util.h"

#define RUNS_NAME "runs"
#define RUNS_CHUNK 64

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
hid_t row_mem_type(void)
{
    size_t ncols;
    const struct la_column *columns = la_row_columns(&ncols);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct la_row));
    if (t < 0)
        return -1;
    for (size_t i = 0; i < ncols; i++) {
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
    size_t nknown;
    const char *const *known_attrs = known_attr_names(&nknown);
    for (size_t i = 0; i < nknown; i++) {
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
int open_runs(hid_t file, const char *path, hid_t *dset, size_t *nrows, struct la_error *err)
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

void h5_content_free(struct h5_content *c)
{
    attrs_free(&c->attrs);
    free(c->rows);
    memset(c, 0, sizeof *c);
}

int h5_load_direct(const char *path, int want_attrs, int want_rows, struct h5_content *c,
                   struct la_error *err)
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

enum probe_result h5_probe(const char *path, int want_attrs, int want_rows, int *sig)
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
int h5_write_probe(const char *path)
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
int h5_load(const char *path, int want_attrs, int want_rows, struct h5_content *c, int *crashed,
            struct la_error *err)
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
int make_parent_dirs(const char *path, struct la_error *err)
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
int h5_build(const char *path, const struct attr_set *attrs, const struct la_row *rows, size_t n,
             struct la_error *err)
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
