/* results.c — the results file's API (results.h): one HDF5 file per experiment run plus a
 * crash-recovery journal.  Here: the open writer (open, append, settle, close), the decisions
 * over an .h5 and its journal (recovery, resume, --fresh), the locks, and the readers.
 * The parts it uses, declared for harness/store/ alone in store_impl.h: columns.c (the column
 * table, canonical rows), attrs.c (attribute sets: provenance), h5io.c (HDF5 types and
 * attributes, the file's layout, reading through the child probe, building an .h5),
 * journal.c (the journal's format, reading and rewriting it), resume.c (the resume decision).
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
 * journal (as PATH.tmp-PID, renamed over PATH); a torn record at the journal's end is cut.  An
 * .h5 whose row layout reads as another build's, beside a journal of this layout and of the
 * same file, counts as damaged.
 * A file without a journal (deleted, or copied alone) is adopted: the journal is regenerated
 * from it.  Creation is atomic too (tmp file + rename).  Whether an existing file may be
 * resumed is decided in one place (resume_verdict in resume.c: its experiment texts and
 * cell_context against the caller's), used by la_results_open and by la_results_resume_check
 * (--dry-run); a resume that adds a text or context entries rebuilds the .h5 with them, then
 * the journal.
 * Readers (la_results_read, la_results_attr*) use the .h5 and skip fill-value rows (status
 * LA_ROW_EMPTY).  libhdf5 crashes on some damaged files, so every read of an .h5 is first
 * done in a forked child (see "probing" in h5io.c); an .h5 that does not read is replaced by
 * the journal while a writer holds the journal's lock, and is otherwise a one-line error that
 * says how to recover it.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/h5util.h"
#include "../core/util.h"
#include "store_impl.h"

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
    /* A .h5 whose row layout differs from this build's while beside it lies a journal of this
     * layout and of the same file (its id) was written by this layout and damaged since: it is
     * rebuilt from the journal below, not refused as another version's. */
    if (h5_ok && !h.same_layout && j.valid && !j.foreign && same_id(&j.attrs, &h.attrs))
        h5_ok = 0;
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
    size_t nknown;
    const char *const *known_attrs = known_attr_names(&nknown);
    /* The known ones in their documented order, then the others as stored. */
    for (size_t i = 0; out && i < nknown; i++)
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
