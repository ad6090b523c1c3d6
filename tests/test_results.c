/* test_results.c — tests of the results file (harness/store/) and of `linattn export` and
 * `linattn info` (harness/cli/cmd_export.c, harness/cli/cmd_info.c).
 *
 * The softmax-row test (la_row_is_softmax).  Round trip of every column type (NaN, long UTF-8
 * strings, uint64 above 2^63), resume semantics (same text resumes, another text is refused,
 * --fresh truncates), unwritable paths, the CLI (filters, columns, errors), and crash safety: a
 * writer process is SIGKILLed at random moments; after every kill the file must open, hold every
 * row the writer reported flushed, each exactly once and bit-for-bit as written, and the resumed
 * writer must finish with the same rows as an uninterrupted run.  LA_KILLS=N runs N kills (stress;
 * default 12).
 * Random kills rarely land inside HDF5's flush, so the crash-point test also kills the writer
 * before each single write (pwrite/write/ftruncate, interposed below) of a create, a resume
 * and a chunk boundary, whole or torn; without the journal (journal.c) it found a /runs that
 * no longer reads.  The journal's own recovery paths (damaged .h5, lost .h5, torn record,
 * lost or stale journal) are provoked directly.
 * Not tested here: power loss (flushes go to the page cache, no fsync).
 * Run: make linattn build/tests/test_results && build/tests/test_results
 */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../harness/core/sysinfo.h"
#include "../harness/store/results.h"
#include "../kernels/attention.h"

static char tmpdir[256];

static const char *tpath(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    return buf;
}

static const char *const exp_text =
    "name: roundtrip\nseed: 7\n# σ² = 1.37 — UTF-8 in the verbatim text\n"
    "grid:\n  T: [256, 1024]\n";

static struct la_provenance prov_of(const char *text)
{
    struct la_provenance p = {"roundtrip", text, 0xF123456789ABCDEFull, 3, 1, NULL};
    return p;
}

/* A row with every field set from i: high-entropy numbers, NaN in some timings, a long key
 * with multi-byte UTF-8, a message that fills its field, a seed above 2^63. */
static void make_row(int i, struct la_row *r)
{
    memset(r, 0, sizeof *r);
    r->index = i;
    int w = snprintf(r->key, sizeof r->key,
                     "cell-%05d|kernel=linear_causal_chunked|map=φ-favor+|", i);
    for (size_t j = (size_t)w; j + 1 < sizeof r->key - 40; j++)
        r->key[j] = (char)('a' + (i * 7 + (int)j) % 26);
    snprintf(r->kernel, sizeof r->kernel, "linear_causal_chunked");
    snprintf(r->map, sizeof r->map, i % 3 ? "favor+" : "elu1");
    r->m = 64 + i % 5;
    snprintf(r->draw, sizeof r->draw, i % 2 ? "orthogonal" : "iid");
    r->A = -0.1875 * (i + 1);
    r->causal = i % 2;
    r->chunk = 64 * (i % 3);
    r->eps = 1.2345e-6;
    r->T = 256 << (i % 4);
    r->d = 64;
    r->dv = 32 + i % 3;
    r->batch = 2;
    r->heads = 3 + i % 2;
    r->threads = 1 + i % 2;
    snprintf(r->data, sizeof r->data, "gaussian");
    r->sigma = 1.385 + i;
    r->layer = i % 5;
    r->head = -1;
    r->trial = i % 7;
    r->seed = 0xFEDCBA9876543210ull ^ (uint64_t)i * 0x9E3779B97F4A7C15ull;
    r->status = i % 5 == 4 ? LA_ROW_FAILED : LA_ROW_OK;
    for (size_t j = 0; j + 1 < sizeof r->message; j++)
        r->message[j] = r->status ? (char)('A' + (i + (int)j) % 26) : '\0';
    snprintf(r->host, sizeof r->host, "node-%d.example", i % 4);
    r->time_median_s = i % 4 == 1 ? NAN : 1.25e-3 * (i + 1);
    r->time_min_s = 1.1e-3 * (i + 1);
    r->time_max_s = i % 6 == 5 ? INFINITY : 1.7e-3 * (i + 1);
    r->time_p20_s = 1.15e-3 * (i + 1);
    r->time_p80_s = 1.4e-3 * (i + 1);
    r->repeats = 9 + i;
    r->flops = 2.718281828e9 * (i + 1);
    r->gflops = 97.3 + i;
    r->fm_time_median_s = 3.3e-5;
    r->workspace_bytes = 1048576.0 * (i + 2);
    r->peak_rss_bytes = 5.5e7;
    r->err_rows = 128;
    r->err_rel_fro = 0.0123 / (i + 1);
    r->err_max_abs = -0.0;
    r->cos_mean = 0.999871;
    r->kl_mean = NAN;
    r->kl_rows = 17;
    r->kl_nonpos_frac = 0.375 + 0.0625 * (i % 3);
    r->kernel_mse = 4.2e-9;
    r->kernel_pairs = 4096;
    r->n_small_den = ((int64_t)1 << 40) + i;
    r->err_impl = 2.2e-7;
    r->entropy_mean = 3.14159;
}

/* Equal field by field (doubles bitwise, so NaN equals NaN; strings up to their NUL). */
static int rows_equal(const struct la_row *a, const struct la_row *b, char *why, size_t cap)
{
    size_t n;
    const struct la_column *c = la_row_columns(&n);
    for (size_t i = 0; i < n; i++) {
        const char *pa = (const char *)a + c[i].offset, *pb = (const char *)b + c[i].offset;
        int same = c[i].kind == LA_COL_STRING ? !strncmp(pa, pb, c[i].size)
                                              : !memcmp(pa, pb, c[i].size);
        if (!same) {
            snprintf(why, cap, "column %s differs", c[i].name);
            return 0;
        }
    }
    return 1;
}

/* ---- the column table --------------------------------------------------------------- */

static void test_columns_cover_row(void **state)
{
    (void)state;
    size_t n;
    const struct la_column *c = la_row_columns(&n);
    assert_true(n > 40);
    assert_int_equal(c[0].offset, 0);
    /* Consecutive columns leave only alignment padding: a field missing from the table would
     * leave a gap at least its own size. */
    for (size_t i = 0; i < n; i++) {
        size_t end = c[i].offset + c[i].size;
        size_t next = i + 1 < n ? c[i + 1].offset : sizeof(struct la_row);
        size_t align = i + 1 < n ? (c[i + 1].kind == LA_COL_STRING ? 1 : c[i + 1].size) : 8;
        size_t aligned = (end + align - 1) / align * align;
        if (next != aligned)
            fail_msg("gap after column %s: ends at %zu, next at %zu", c[i].name, end, next);
        assert_ptr_equal(la_row_column(c[i].name), &c[i]);
    }
    assert_null(la_row_column("no_such_column"));
    const struct la_column *s = la_row_column("seed");
    assert_int_equal(s->kind, LA_COL_UINT64);
    assert_int_equal(la_row_column("key")->size, LA_KEY_LEN);
    assert_int_equal(la_row_column("n_small_den")->kind, LA_COL_INT64);
}

/* ---- what a row measured ------------------------------------------------------------ */

/* Softmax rows are told by the kernel table's input kind, whatever the map column says; a
 * kernel this build does not know, by its map. */
static void test_row_is_softmax(void **state)
{
    (void)state;
    struct la_row r;
    memset(&r, 0, sizeof r);
    for (size_t i = 0; attn_kernels[i].name; i++) {
        snprintf(r.kernel, sizeof r.kernel, "%s", attn_kernels[i].name);
        snprintf(r.map, sizeof r.map, "%s", "elu1");
        assert_int_equal(la_row_is_softmax(&r), attn_kernels[i].input == ATTN_IN_QK);
        snprintf(r.map, sizeof r.map, "%s", "none");
        assert_int_equal(la_row_is_softmax(&r), attn_kernels[i].input == ATTN_IN_QK);
    }
    snprintf(r.kernel, sizeof r.kernel, "%s", "softmax_flash");
    assert_true(la_row_is_softmax(&r));
    snprintf(r.kernel, sizeof r.kernel, "%s", "linear_causal_chunked");
    assert_false(la_row_is_softmax(&r));
    /* Unknown kernels: the map decides, not the name. */
    snprintf(r.kernel, sizeof r.kernel, "%s", "softmax_from_the_future");
    snprintf(r.map, sizeof r.map, "%s", "prf");
    assert_false(la_row_is_softmax(&r));
    snprintf(r.kernel, sizeof r.kernel, "%s", "linear_from_the_future");
    const char *softmax_maps[] = {"none", "", "-"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(r.map, sizeof r.map, "%s", softmax_maps[i]);
        assert_true(la_row_is_softmax(&r));
    }
}

/* ---- round trip --------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    (void)state;
    char path[512];
    tpath(path, sizeof path, "sub/dir/rt.h5"); /* parents are created */
    struct la_provenance p = prov_of(exp_text);
    struct la_results *r = NULL;
    struct la_error err;
    int rc = la_results_open(path, &p, 0, &r, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(la_results_nrows(r), 0);
    struct la_row empty;
    make_row(0, &empty);
    empty.status = LA_ROW_EMPTY; /* reserved for the fill value */
    assert_int_equal(la_results_append(r, &empty, &err), LA_EINVAL);
    enum { N = 150 }; /* more than two chunks */
    for (int i = 0; i < N; i++) {
        struct la_row row;
        make_row(i, &row);
        rc = la_results_append(r, &row, &err);
        if (rc)
            fail_msg("%s", err.msg);
    }
    assert_int_equal(la_results_nrows(r), N);
    la_results_close(r);

    struct la_row *rows = NULL;
    size_t n = 0;
    rc = la_results_read(path, &rows, &n, &err);
    if (rc)
        fail_msg("%s", err.msg);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        struct la_row want;
        char why[128];
        make_row(i, &want);
        if (!rows_equal(&rows[i], &want, why, sizeof why))
            fail_msg("row %d: %s", i, why);
    }
    assert_true(isnan(rows[1].time_median_s));
    assert_true(rows[0].seed > (1ull << 63));
    free(rows);

    char buf[4096];
    assert_int_equal(la_results_attr(path, "experiment_text", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, exp_text);
    assert_int_equal(la_results_attr(path, "seed", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "17375808098319191535"); /* 0xF123456789ABCDEF */
    assert_int_equal(la_results_attr(path, "threads", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "3");
    assert_int_equal(la_results_attr(path, "tool_version", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, la_version());
    assert_int_equal(la_results_attr(path, "vmath_isa", buf, sizeof buf, &err), LA_OK);
    assert_true(strlen(buf) > 0);
    assert_int_equal(la_results_attr(path, "simd_isa", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, la_simd_path());
    assert_int_equal(la_results_attr(path, "nope", buf, sizeof buf, &err), LA_EFORMAT);

    char **names = NULL;
    size_t nn = 0;
    assert_int_equal(la_results_attr_names(path, &names, &nn, &err), LA_OK);
    assert_int_equal(nn, 17); /* 16 provenance attributes + results_id */
    int has_id = 0;
    for (size_t i = 0; i < nn; i++)
        has_id |= !strcmp(names[i], "results_id");
    assert_true(has_id);
    assert_string_equal(names[0], "tool_version");
    assert_string_equal(names[nn - 1], "experiment_text");
    la_results_names_free(names, nn);
}

/* A string that fills its field and ends inside a multi-byte character is cut before it. */
static void test_utf8_truncation(void **state)
{
    (void)state;
    char path[512];
    tpath(path, sizeof path, "utf8.h5");
    struct la_provenance p = prov_of("utf8");
    struct la_results *r = NULL;
    struct la_error err;
    assert_int_equal(la_results_open(path, &p, 1, &r, &err), LA_OK);
    struct la_row row;
    make_row(0, &row);
    memset(row.map, 'x', sizeof row.map);
    memcpy(row.map + sizeof row.map - 2, "\xcf\x86", 2); /* φ whose 2nd byte falls off */
    assert_int_equal(la_results_append(r, &row, &err), LA_OK);
    la_results_close(r);
    struct la_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(strlen(rows[0].map), sizeof row.map - 2);
    free(rows);
}

/* ---- resume ------------------------------------------------------------------------- */

static void test_resume(void **state)
{
    (void)state;
    char path[512];
    tpath(path, sizeof path, "resume.h5");
    struct la_provenance p = prov_of(exp_text);
    struct la_results *r = NULL;
    struct la_error err;
    assert_int_equal(la_results_open(path, &p, 1, &r, &err), LA_OK);
    struct la_row row;
    for (int i = 0; i < 10; i++) { /* row 4 and 9 are FAILED */
        make_row(i, &row);
        assert_int_equal(la_results_append(r, &row, &err), LA_OK);
    }
    la_results_close(r);

    /* The same text resumes: OK keys are known, failed ones are retried. */
    assert_int_equal(la_results_open(path, &p, 0, &r, &err), LA_OK);
    assert_int_equal(la_results_nrows(r), 10);
    make_row(3, &row);
    assert_true(la_results_has_key(r, row.key));
    make_row(4, &row);
    assert_false(la_results_has_key(r, row.key));
    make_row(10, &row);
    assert_false(la_results_has_key(r, row.key));
    assert_int_equal(la_results_append(r, &row, &err), LA_OK);
    assert_true(la_results_has_key(r, row.key)); /* appended rows join the set */
    make_row(4, &row);
    row.status = LA_ROW_OK; /* the retry succeeds */
    assert_int_equal(la_results_append(r, &row, &err), LA_OK);
    assert_true(la_results_has_key(r, row.key));
    la_results_close(r);

    /* Another text is refused, and the message says what to do. */
    struct la_provenance other = prov_of("name: roundtrip\nseed: 8\n");
    r = NULL;
    assert_int_equal(la_results_open(path, &other, 0, &r, &err), LA_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err.msg, "--fresh"));
    assert_non_null(strstr(err.msg, path));

    /* The refused open changed nothing. */
    struct la_row *rows = NULL;
    size_t n = 0;
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_OK);
    assert_int_equal(n, 12);
    free(rows);

    /* fresh truncates and records the new text. */
    assert_int_equal(la_results_open(path, &other, 1, &r, &err), LA_OK);
    assert_int_equal(la_results_nrows(r), 0);
    make_row(3, &row);
    assert_false(la_results_has_key(r, row.key));
    la_results_close(r);
    char buf[256];
    assert_int_equal(la_results_attr(path, "experiment_text", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, other.experiment_text);
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_OK);
    assert_int_equal(n, 0);
    free(rows);

    /* No temporary files are left behind. */
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld", path, (long)getpid());
    assert_int_equal(access(tmp, F_OK), -1);
}

/* A second writer on the same file is refused while the first holds it. */
static void test_second_writer_refused(void **state)
{
    (void)state;
    char path[512];
    tpath(path, sizeof path, "locked.h5");
    struct la_provenance p = prov_of("lock");
    struct la_results *r = NULL, *r2 = NULL;
    struct la_error err;
    assert_int_equal(la_results_open(path, &p, 1, &r, &err), LA_OK);
    /* A lock is per open file description, so the second writer must be another process. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = la_results_open(path, &p, 0, &r2, &err);
        _exit(rc == LA_EIO && strstr(err.msg, "another linattn run") ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* Readers do not need the lock: another process reads, and so does this one. */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct la_row *rows = NULL;
        size_t n = 9;
        int rc = la_results_read(path, &rows, &n, &err);
        _exit(rc == LA_OK && n == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct la_row *rows = NULL;
    size_t n = 9;
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_OK);
    assert_int_equal(n, 0);
    free(rows);
    la_results_close(r);
}

/* ---- error paths -------------------------------------------------------------------- */

static void test_unwritable(void **state)
{
    (void)state;
    char path[600], blocker[512];
    struct la_provenance p = prov_of("x");
    struct la_results *r = NULL;
    struct la_error err;

    /* A regular file where a directory should be. */
    tpath(blocker, sizeof blocker, "plainfile");
    FILE *f = fopen(blocker, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/sub/out.h5", blocker);
    assert_int_equal(la_results_open(path, &p, 0, &r, &err), LA_EIO);
    assert_null(r);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, strerror(ENOTDIR)));

    /* A read-only directory (root ignores permissions, so only as another user). */
    if (geteuid() != 0) {
        char dir[300];
        tpath(dir, sizeof dir, "ro");
        assert_int_equal(mkdir(dir, 0555), 0);
        snprintf(path, sizeof path, "%s/out.h5", dir);
        assert_int_equal(la_results_open(path, &p, 0, &r, &err), LA_EIO);
        assert_non_null(strstr(err.msg, strerror(EACCES)));
    }

    /* Not an HDF5 file. */
    tpath(path, sizeof path, "junk.h5");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("not hdf5\n", f);
    fclose(f);
    assert_int_equal(la_results_open(path, &p, 0, &r, &err), LA_EFORMAT);
    assert_non_null(strstr(err.msg, "--fresh"));
    struct la_row *rows = NULL;
    size_t n;
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_EFORMAT);
    /* --fresh replaces only results files: this one is refused and left alone. */
    assert_int_equal(la_results_open(path, &p, 1, &r, &err), LA_EINVAL);
    assert_null(r);
    assert_non_null(strstr(err.msg, "not a linattn results file"));
    f = fopen(path, "r");
    assert_non_null(f);
    char line[32] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "not hdf5\n");

    tpath(path, sizeof path, "missing.h5");
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_EIO);
    assert_non_null(strstr(err.msg, strerror(ENOENT)));
    char buf[64];
    assert_int_equal(la_results_attr(path, "host", buf, sizeof buf, &err), LA_EIO);
}

/* ---- the journal -------------------------------------------------------------------- */

static void write_rows(const char *path, int from, int to, int fresh)
{
    struct la_provenance p = prov_of(exp_text);
    struct la_results *r = NULL;
    struct la_error err;
    if (la_results_open(path, &p, fresh, &r, &err) != LA_OK)
        fail_msg("%s", err.msg);
    for (int i = from; i < to; i++) {
        struct la_row row;
        make_row(i, &row);
        if (la_results_append(r, &row, &err) != LA_OK)
            fail_msg("%s", err.msg);
    }
    la_results_close(r);
}

static void expect_rows(const char *path, int n_expected)
{
    struct la_row *rows = NULL;
    size_t n = 0;
    struct la_error err;
    if (la_results_read(path, &rows, &n, &err) != LA_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(n, n_expected);
    for (size_t i = 0; i < n; i++) {
        struct la_row want;
        char why[128];
        make_row((int)i, &want);
        if (!rows_equal(&rows[i], &want, why, sizeof why))
            fail_msg("row %zu: %s", i, why);
    }
    free(rows);
}

/* Reading a damaged (or missing) .h5 without a writer: one line naming the intact journal with
 * its n_journal rows and the command that rebuilds the file, LA_EFORMAT. */
static void expect_damaged(const char *path, int n_journal)
{
    struct la_row *rows = NULL;
    size_t n = 0;
    struct la_error err;
    assert_int_equal(la_results_read(path, &rows, &n, &err), LA_EFORMAT);
    assert_null(strchr(err.msg, '\n'));
    char want[64];
    snprintf(want, sizeof want, "is intact (%d rows)", n_journal);
    if (!strstr(err.msg, want) || !strstr(err.msg, "linattn run"))
        fail_msg("unexpected message: %s", err.msg);
}

static void test_journal_recovery(void **state)
{
    (void)state;
    char path[512], jpath[600], buf[256];
    tpath(path, sizeof path, "journal.h5");
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    struct la_error err;
    write_rows(path, 0, 5, 1);
    struct stat st;
    assert_int_equal(stat(jpath, &st), 0);

    /* A damaged .h5 and no writer: readers say so in one line and name the intact journal
     * (the rows it holds) and the command that rebuilds the file; the next open rebuilds it. */
    char created[64];
    assert_int_equal(la_results_attr(path, "created_utc", created, sizeof created, &err), 0);
    FILE *f = fopen(path, "r+");
    assert_non_null(f);
    fseek(f, 0, SEEK_SET);
    fputs("garbage garbage garbage", f);
    fclose(f);
    expect_damaged(path, 5);
    assert_int_equal(la_results_attr(path, "created_utc", buf, sizeof buf, &err), LA_EFORMAT);
    char *out = malloc(1 << 16);
    assert_non_null(out);
    assert_int_equal(tu_run(out, 1 << 16, "export %s --columns index", path), 2);
    /* What --dry-run resumes from: the journal's rows. */
    struct la_row *jrows = NULL;
    size_t jn = 0;
    int from_journal = 0;
    assert_int_equal(la_results_read_resumable(path, &jrows, &jn, &from_journal, &err), LA_OK);
    assert_int_equal(jn, 5);
    assert_int_equal(from_journal, 1);
    assert_non_null(strstr(err.msg, "rebuilds it from its intact journal"));
    free(jrows);
    write_rows(path, 5, 7, 0);
    expect_rows(path, 7);
    assert_int_equal(la_results_attr(path, "created_utc", buf, sizeof buf, &err), 0);
    assert_string_equal(buf, created); /* the rebuilt file keeps its provenance */

    /* A torn record at the journal's end is ignored, then cut by the next writer. */
    assert_int_equal(stat(jpath, &st), 0);
    off_t good = st.st_size;
    f = fopen(jpath, "a");
    assert_non_null(f);
    fputs("LROW half a record", f);
    fclose(f);
    unlink(path); /* and the .h5 is gone entirely: readers use the journal's 7 whole rows, */
    expect_rows(path, 7);    /* and the next writer restores the .h5 from it */
    write_rows(path, 7, 8, 0);
    expect_rows(path, 8);
    assert_int_equal(stat(jpath, &st), 0);
    assert_true(st.st_size > good);

    /* The journal deleted: the file is adopted and the journal regenerated. */
    assert_int_equal(unlink(jpath), 0);
    write_rows(path, 8, 9, 0);
    expect_rows(path, 9);
    assert_int_equal(stat(jpath, &st), 0);

    /* A journal of another file (the .h5 was replaced by a copy of another run) is stale: the
     * .h5 wins and the journal is regenerated from it. */
    char other[512], cmd[1400];
    tpath(other, sizeof other, "journal-other.h5");
    write_rows(other, 0, 3, 1);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", other, path);
    assert_int_equal(system(cmd), 0);
    expect_rows(path, 3);
    write_rows(path, 3, 4, 0);
    expect_rows(path, 4);
    /* The damaged .h5 is now recoverable from the regenerated journal. */
    f = fopen(path, "r+");
    assert_non_null(f);
    fputs("garbage garbage garbage", f);
    fclose(f);
    expect_damaged(path, 4);
    write_rows(path, 4, 4, 0);
    expect_rows(path, 4);

    /* --fresh discards both. */
    write_rows(path, 0, 2, 1);
    expect_rows(path, 2);
    free(out);
}

/* ---- the CLI: export and info ------------------------------------------------------- */

/* A results file of 12 rows (rows 4 and 9 failed; row 4 retried successfully as row 12). */
static void write_cli_file(const char *path)
{
    struct la_provenance p = prov_of(exp_text);
    struct la_results *r = NULL;
    struct la_error err;
    assert_int_equal(la_results_open(path, &p, 1, &r, &err), LA_OK);
    struct la_row row;
    for (int i = 0; i < 12; i++) {
        make_row(i, &row);
        assert_int_equal(la_results_append(r, &row, &err), LA_OK);
    }
    make_row(4, &row);
    row.status = LA_ROW_OK;
    row.message[0] = '\0';
    assert_int_equal(la_results_append(r, &row, &err), LA_OK);
    la_results_close(r);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Field `col` (0-based) of line `line` (0 = header) of TSV text, into buf. */
static const char *tsv_field(const char *text, int line, int col, char *buf, size_t cap)
{
    const char *p = text;
    for (int l = 0; l < line && p; l++) {
        p = strchr(p, '\n');
        p = p ? p + 1 : NULL;
    }
    for (int c = 0; c < col && p; c++) {
        p = strpbrk(p, "\t\n");
        p = p && *p == '\t' ? p + 1 : NULL;
    }
    assert_non_null(p);
    size_t len = strcspn(p, "\t\n");
    snprintf(buf, cap, "%.*s", (int)len, p);
    return buf;
}

static void test_cli_export(void **state)
{
    (void)state;
    char path[512], f[256];
    tpath(path, sizeof path, "cli.h5");
    write_cli_file(path);
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    assert_non_null(out);

    /* Everything: a header with every column, then 13 rows. */
    assert_int_equal(tu_run(out, cap, "export %s", path), 0);
    assert_int_equal(count_lines(out), 14);
    size_t ncols;
    const struct la_column *cols = la_row_columns(&ncols);
    for (size_t c = 0; c < ncols; c++)
        assert_string_equal(tsv_field(out, 0, (int)c, f, sizeof f), cols[c].name);
    struct la_row want;
    make_row(1, &want);
    int seed_col = (int)(la_row_column("seed") - cols);
    char num[32];
    snprintf(num, sizeof num, "%" PRIu64, want.seed);
    assert_string_equal(tsv_field(out, 2, seed_col, f, sizeof f), num); /* exact uint64 */
    assert_string_equal(tsv_field(out, 2, (int)(la_row_column("time_median_s") - cols), f,
                                  sizeof f), "nan");
    assert_string_equal(tsv_field(out, 2, (int)(la_row_column("sigma") - cols), f, sizeof f),
                        "2.385");
    make_row(5, &want);
    assert_string_equal(tsv_field(out, 6, (int)(la_row_column("time_max_s") - cols), f,
                                  sizeof f), "inf");

    /* Columns in the order asked, rows filtered (ANDed, numeric and string compares). */
    assert_int_equal(tu_run(out, cap, "export %s --columns index,map,T,seed "
                                      "--where 'T>=1024' --where map=favor+ --status ok", path), 0);
    assert_string_equal(tsv_field(out, 0, 0, f, sizeof f), "index");
    assert_string_equal(tsv_field(out, 0, 3, f, sizeof f), "seed");
    /* T = 256 << (i % 4) >= 1024: i % 4 in {2, 3}; favor+: i % 3 != 0; ok: i % 5 != 4
     * (the retried row 4 has T = 256): rows 2, 7, 10, 11. */
    assert_int_equal(count_lines(out), 5);
    const int expect[] = {2, 7, 10, 11};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(atoi(tsv_field(out, k + 1, 0, f, sizeof f)), expect[k]);
        assert_string_equal(tsv_field(out, k + 1, 1, f, sizeof f), "favor+");
    }
    /* Exact integer compare on the uint64 seed; != and NaN. */
    make_row(7, &want);
    assert_int_equal(tu_run(out, cap, "export %s --columns=index --where seed=%" PRIu64, path,
                            want.seed), 0);
    assert_string_equal(out, "index\n7\n");
    assert_int_equal(tu_run(out, cap, "export %s --columns index --where time_median_s=nan",
                            path), 0);
    assert_string_equal(out, "index\n1\n5\n9\n");
    assert_int_equal(tu_run(out, cap, "export %s --columns index --where 'index!=0' "
                                      "--where 'index<3'", path), 0);
    assert_string_equal(out, "index\n1\n2\n");
    assert_int_equal(tu_run(out, cap, "export %s --columns index,status --status failed", path),
                     0);
    assert_string_equal(out, "index\tstatus\n4\t1\n9\t1\n");

    /* Mistakes: exit 2 with one line saying what to do. */
    assert_int_equal(tu_run(out, cap, "export %s --columns map,tmie_median_s", path), 2);
    assert_non_null(strstr(out, "unknown column 'tmie_median_s' (did you mean 'time_median_s'?)"));
    assert_non_null(strstr(out, "valid columns: index, key, kernel"));
    assert_int_equal(count_lines(out), 1);
    assert_int_equal(tu_run(out, cap, "export %s --where mapp=favor", path), 2);
    assert_non_null(strstr(out, "did you mean 'map'"));
    assert_int_equal(tu_run(out, cap, "export %s --where T=large", path), 2);
    assert_non_null(strstr(out, "not a number"));
    assert_int_equal(tu_run(out, cap, "export %s --where T", path), 2);
    assert_int_equal(tu_run(out, cap, "export %s --status maybe", path), 2);
    assert_int_equal(tu_run(out, cap, "export %s --bogus", path), 2);
    assert_int_equal(tu_run(out, cap, "export"), 2);
    assert_int_equal(tu_run(out, cap, "export %s/missing.h5", tmpdir), 2);
    assert_int_equal(count_lines(out), 1);
    assert_non_null(strstr(out, "No such file"));
    char junk[512];
    tpath(junk, sizeof junk, "junk-cli.h5");
    FILE *fj = fopen(junk, "w");
    assert_non_null(fj);
    fputs("plain text\n", fj);
    fclose(fj);
    assert_int_equal(tu_run(out, cap, "export %s", junk), 2);
    assert_int_equal(count_lines(out), 1);
    assert_int_equal(tu_run(out, cap, "export --help"), 0);
    assert_non_null(strstr(out, "usage: linattn export"));
    assert_int_equal(tu_run(out, cap, "help export"), 0);
    assert_non_null(strstr(out, "--where"));
    free(out);
}

static void test_cli_info(void **state)
{
    (void)state;
    char path[512];
    tpath(path, sizeof path, "cli-info.h5");
    write_cli_file(path);
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    assert_non_null(out);
    assert_int_equal(tu_run(out, cap, "info %s", path), 0);
    const char *want[] = {"tool_version", "git_commit", "created_utc", "cpu_model", "blas_core",
                          "compiler", "cflags", "simd_isa", "vmath_isa",
                          "experiment_name  roundtrip",
                          "seed             17375808098319191535", "threads          3",
                          "  | name: roundtrip", "  | # σ² = 1.37",
                          "rows: 13 total, 11 ok, 2 failed",
                          "(retried: ok)", "ABCDEFG"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("info output lacks '%s':\n%s", want[i], out);
    struct la_row row;
    make_row(9, &row);
    assert_non_null(strstr(out, row.key));

    assert_int_equal(tu_run(out, cap, "info %s/missing.h5", tmpdir), 2);
    assert_int_equal(count_lines(out), 1);
    assert_int_equal(tu_run(out, cap, "info"), 2);
    assert_int_equal(tu_run(out, cap, "info --help"), 0);
    assert_non_null(strstr(out, "usage: linattn info"));
    free(out);
}

/* ---- SIGKILL ------------------------------------------------------------------------ */

enum { KILL_N = 600 }; /* rows of the experiment the killed writer works through */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* All rows OK here, so each key must appear exactly once whatever the kills did. */
static void make_ok_row(int i, struct la_row *row)
{
    make_row(i, row);
    row->status = LA_ROW_OK;
    row->message[0] = '\0';
}

/* The writer: resume, append the missing rows below upto, report each index after its
 * flush. */
static void writer_upto(const char *path, int report_fd, int upto)
{
    struct la_provenance p = prov_of(exp_text);
    struct la_results *r = NULL;
    struct la_error err;
    if (la_results_open(path, &p, 0, &r, &err) != LA_OK) {
        fprintf(stderr, "writer: %s\n", err.msg);
        _exit(3);
    }
    for (int i = 0; i < upto; i++) {
        struct la_row row;
        make_ok_row(i, &row);
        if (la_results_has_key(r, row.key))
            continue;
        if (la_results_append(r, &row, &err) != LA_OK) {
            fprintf(stderr, "writer: %s\n", err.msg);
            _exit(4);
        }
        int32_t idx = i;
        if (report_fd >= 0 && write(report_fd, &idx, sizeof idx) != (ssize_t)sizeof idx)
            _exit(5);
    }
    la_results_close(r);
    _exit(0);
}

/* Runs the writer in a child and SIGKILLs it after delay_s (< 0: let it finish).  reported[i]
 * is set for every row the child saw flushed.  Returns 1 if it was killed. */
static int run_writer(const char *path, double delay_s, unsigned char *reported)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        writer_upto(path, fds[1], KILL_N);
    }
    close(fds[1]);
    if (delay_s >= 0) {
        struct timespec ts = {(time_t)delay_s, (long)((delay_s - (double)(time_t)delay_s) * 1e9)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    int32_t idx;
    while (read(fds[0], &idx, sizeof idx) == (ssize_t)sizeof idx) {
        assert_true(idx >= 0 && idx < KILL_N);
        reported[idx] = 1;
    }
    close(fds[0]);
    if (WIFSIGNALED(st)) {
        assert_int_equal(WTERMSIG(st), SIGKILL);
        return 1;
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("writer exited with status %d", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    return 0;
}

/* What a reader sees: every reported row, each row once and as written. */
static size_t verify_rows(const char *path, const unsigned char *reported, int kill_no,
                          const char *when)
{
    struct la_row *rows = NULL;
    size_t n = 0;
    struct la_error err;
    int rc = la_results_read(path, &rows, &n, &err);
    /* A writer killed mid-append can leave an .h5 that does not read: before the reopen a
     * reader says so, naming the intact journal that holds every flushed row. */
    if (rc == LA_EFORMAT && !strcmp(when, "before reopening") && strstr(err.msg, "is intact ("))
        return 0;
    if (rc != LA_OK)
        fail_msg("after kill %d, %s: cannot read: %s", kill_no, when, err.msg);
    unsigned char seen[KILL_N] = {0};
    for (size_t j = 0; j < n; j++) {
        int i = rows[j].index;
        if (i < 0 || i >= KILL_N)
            fail_msg("after kill %d, %s: row %zu has index %d", kill_no, when, j, i);
        if (seen[i])
            fail_msg("after kill %d, %s: row %d appears twice", kill_no, when, i);
        seen[i] = 1;
        struct la_row want;
        char why[128];
        make_ok_row(i, &want);
        if (!rows_equal(&rows[j], &want, why, sizeof why))
            fail_msg("after kill %d, %s: row %zu (index %d): %s", kill_no, when, j, i, why);
    }
    for (int i = 0; i < KILL_N; i++)
        if (reported[i] && !seen[i])
            fail_msg("after kill %d, %s: row %d was flushed but is missing", kill_no, when, i);
    free(rows);
    return n;
}

/* Readers before any repair, then the file opens for resume, then readers again.  Returns
 * the number of rows. */
static size_t verify_file(const char *path, const unsigned char *reported, int kill_no)
{
    struct stat st;
    if (stat(path, &st) == 0)
        verify_rows(path, reported, kill_no, "before reopening");
    struct la_provenance p = prov_of(exp_text);
    struct la_results *r = NULL;
    struct la_error err;
    if (la_results_open(path, &p, 0, &r, &err) != LA_OK)
        fail_msg("after kill %d: cannot reopen: %s", kill_no, err.msg);
    size_t nrows = la_results_nrows(r);
    la_results_close(r);
    /* A writer killed while building the .h5 leaves PATH.tmp-PID; the reopen removes it. */
    char pattern[600];
    snprintf(pattern, sizeof pattern, "%s.tmp-*", path);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) == 0)
        fail_msg("after kill %d: %s is left behind", kill_no, g.gl_pathv[0]);
    size_t n = verify_rows(path, reported, kill_no, "after reopening");
    assert_int_equal(n, nrows);
    return n;
}

static void test_sigkill(void **state)
{
    (void)state;
    char full[512], path[512];
    tpath(full, sizeof full, "uninterrupted.h5");
    tpath(path, sizeof path, "killed.h5");
    unsigned char *reported = calloc(KILL_N, 1);
    assert_non_null(reported);

    /* The uninterrupted run gives the expected rows and the time scale of the kills. */
    double t0 = now_s();
    assert_int_equal(run_writer(full, -1, reported), 0);
    double t_full = now_s() - t0;
    assert_int_equal(verify_file(full, reported, 0), KILL_N);
    memset(reported, 0, KILL_N);

    const char *e = getenv("LA_KILLS");
    int kills = e && atoi(e) > 0 ? atoi(e) : 12;
    uint64_t rng = 0x5EEDC0FFEEull;
    int killed = 0, restarts = 0;
    size_t prev = 0;
    for (int k = 0; k < kills; k++) {
        /* The first kills land during creation (the file does not exist yet); later ones
         * anywhere in the first eighth of a full run, i.e. mostly inside appends. */
        double u = (double)(tu_next(&rng) >> 11) * 0x1.0p-53;
        double delay = k < 3 ? 2e-4 * k * u : u * t_full / 8;
        killed += run_writer(path, delay, reported);
        size_t n = verify_file(path, reported, k + 1);
        assert_true(n >= prev); /* nothing flushed is ever lost */
        prev = n;
        if (n == KILL_N) { /* finished between kills: start over so kills keep landing */
            char j[600];
            snprintf(j, sizeof j, "%s.journal", path);
            assert_int_equal(unlink(path), 0);
            assert_int_equal(unlink(j), 0);
            memset(reported, 0, KILL_N);
            prev = 0;
            restarts++;
        }
    }
    assert_true(killed >= 5);
    /* Let the last writer finish; it must end where the uninterrupted run did. */
    assert_int_equal(run_writer(path, -1, reported), 0);
    assert_int_equal(verify_file(path, reported, kills + 1), KILL_N);
    print_message("    %d kills (%d during a run, %d restarts), full run %.3f s\n", kills,
                  killed, restarts, t_full);
    free(reported);

    /* Same set of keys as the uninterrupted run, and the same rows. */
    struct la_row *a = NULL, *b = NULL;
    size_t na, nb;
    struct la_error err;
    assert_int_equal(la_results_read(full, &a, &na, &err), LA_OK);
    assert_int_equal(la_results_read(path, &b, &nb, &err), LA_OK);
    assert_int_equal(na, nb);
    struct la_row **by_index = calloc(KILL_N, sizeof *by_index);
    assert_non_null(by_index);
    for (size_t j = 0; j < nb; j++)
        by_index[b[j].index] = &b[j];
    for (size_t j = 0; j < na; j++) {
        char why[128];
        assert_non_null(by_index[a[j].index]);
        if (!rows_equal(&a[j], by_index[a[j].index], why, sizeof why))
            fail_msg("index %d: %s", a[j].index, why);
    }
    free(by_index);
    free(a);
    free(b);
}

/* ---- crash points ------------------------------------------------------------------- */

/* Every write HDF5 and harness/store/ make goes through these (the executable's definitions
 * interpose libc's for libhdf5 too).  In a crash-point child, the crash_at-th write to a file
 * SIGKILLs the process first — or, with crash_torn, after writing half of it (Linux may cut a
 * multi-page write short when a fatal signal arrives). */
static long crash_at = -1, crash_count;
static int crash_torn, crash_skip_fd = -1;

static void crash_point(int fd, const void *buf, size_t n, off_t off, int positioned)
{
    if (crash_at < 0 || fd <= 2 || fd == crash_skip_fd || ++crash_count < crash_at)
        return;
    if (crash_torn && n > 1) {
        if (positioned)
            syscall(SYS_pwrite64, fd, buf, n / 2, off);
        else
            syscall(SYS_write, fd, buf, n / 2);
    }
    raise(SIGKILL);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    crash_point(fd, buf, n, off, 1);
    return syscall(SYS_pwrite64, fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    crash_point(fd, buf, n, 0, 0);
    return syscall(SYS_write, fd, buf, n);
}

int ftruncate(int fd, off_t len)
{
    crash_point(fd, NULL, 0, 0, 1);
    return (int)syscall(SYS_ftruncate, fd, len);
}

static void copy_file(const char *from, const char *to)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd,
             "cp '%s' '%s' 2>/dev/null; cp '%s.journal' '%s.journal' 2>/dev/null; true", from,
             to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* Kills a writer before each of its file writes in turn (and, torn, halfway through each),
 * starting from a file of base_rows rows (0: no file), appending up to upto rows. */
static int crash_scenario(const char *base, int base_rows, int upto, int torn, int no_journal)
{
    char path[512];
    tpath(path, sizeof path, "crash.h5");
    unsigned char *reported = calloc(KILL_N, 1);
    assert_non_null(reported);
    int points = 0;
    for (long k = 1;; k++) {
        unlink(path);
        char j[600];
        snprintf(j, sizeof j, "%s.journal", path);
        unlink(j);
        if (base_rows)
            copy_file(base, path);
        if (no_journal)
            unlink(j);
        memset(reported, 0, KILL_N);
        for (int i = 0; i < base_rows; i++)
            reported[i] = 1;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            crash_at = k;
            crash_torn = torn;
            crash_skip_fd = fds[1];
            writer_upto(path, fds[1], upto);
        }
        close(fds[1]);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        int32_t idx;
        while (read(fds[0], &idx, sizeof idx) == (ssize_t)sizeof idx)
            reported[idx] = 1;
        close(fds[0]);
        int killed = WIFSIGNALED(st);
        if (!killed && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
            fail_msg("crash point %ld: writer failed", k);
        verify_file(path, reported, (int)k);
        if (!killed)
            break;
        points++;
    }
    free(reported);
    return points;
}

static void test_crash_points(void **state)
{
    (void)state;
    char base[512];
    tpath(base, sizeof base, "base.h5");
    /* A base file of 62 rows, so the appends below cross into the second chunk (row 64). */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        writer_upto(base, -1, 62);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    int a = crash_scenario(base, 0, 3, 0, 0);   /* creation and the first appends */
    int b = crash_scenario(base, 62, 67, 0, 0); /* resume, chunk boundary */
    int c = crash_scenario(base, 62, 67, 1, 0); /* the same with torn writes */
    int d = crash_scenario(base, 62, 67, 0, 1); /* a file without its journal is adopted */
    print_message("    crash points: %d (create), %d (resume + new chunk), %d (torn), "
                  "%d (no journal)\n", a, b, c, d);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/la_test_results_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    la_startup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_cover_row),
        cmocka_unit_test(test_row_is_softmax),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_utf8_truncation),
        cmocka_unit_test(test_resume),
        cmocka_unit_test(test_second_writer_refused),
        cmocka_unit_test(test_unwritable),
        cmocka_unit_test(test_journal_recovery),
        cmocka_unit_test(test_cli_export),
        cmocka_unit_test(test_cli_info),
        cmocka_unit_test(test_sigkill),
        cmocka_unit_test(test_crash_points),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
