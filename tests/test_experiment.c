/* test_experiment.c — the experiment loader (harness/experiment/experiment.c): every validation error
 * provoked from a string (status, line:column and text of the one-line message), defaults,
 * grid expansion (ranges, lists, scalars, trials, collapse, merge, exclude/only, dropped
 * combinations), cell seeds independent of grid order, run order, HDF5 data and weights files,
 * output checks, the estimates, the upper bound of every count, the cell context, and the
 * resume decision on a results file (la_results_resume_check and la_results_open agreeing).
 * Files it needs are written into a fresh temporary directory.  Run: make build/tests/test_experiment && build/tests/test_experiment
 */
#include "testutil.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>

#include "../featuremaps/featuremap.h"
#include "../harness/core/sysinfo.h"
#include "../harness/experiment/experiment.h"
#include "../harness/experiment/params.h"
#include "../harness/store/results.h"
#include "../kernels/attention.h"

static char g_dir[256]; /* temporary directory for files the tests write */

/* ---- helpers -------------------------------------------------------------------------- */

static int load(const char *text, struct la_experiment **e, struct la_error *err)
{
    la_error_clear(err);
    return la_experiment_load_string("t.yaml", text, strlen(text), e, err);
}

static struct la_experiment *load_ok(const char *text)
{
    struct la_experiment *e = NULL;
    struct la_error err;
    int st = load(text, &e, &err);
    if (st != LA_OK)
        fail_msg("expected success, got %s: %s\n--- text ---\n%s", la_status_name(st), err.msg,
                 text);
    assert_non_null(e);
    return e;
}

/* The load must fail with `status`, and the message must start with "t.yaml:LINE:COL: " and
 * contain `needle`, on one line. */
static void expect_error(const char *text, int status, int line, int col, const char *needle)
{
    struct la_experiment *e = (struct la_experiment *)0x1;
    struct la_error err;
    int st = load(text, &e, &err);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "t.yaml:%d:%d: ", line, col);
    if (st != status || strncmp(err.msg, prefix, strlen(prefix)) || !strstr(err.msg, needle) ||
        strchr(err.msg, '\n'))
        fail_msg("text:\n%s\nexpected %s '%s...%s', got %s '%s'", text, la_status_name(status),
                 prefix, needle, la_status_name(st), err.msg);
    assert_null(e);
}

static const struct la_cell *find_cell(const struct la_experiment *e, const char *needle1,
                                       const char *needle2)
{
    for (size_t i = 0; i < e->ncells; i++)
        if (strstr(e->cells[i].key, needle1) && (!needle2 || strstr(e->cells[i].key, needle2)))
            return &e->cells[i];
    return NULL;
}

static size_t count_cells(const struct la_experiment *e, const char *needle)
{
    size_t n = 0;
    for (size_t i = 0; i < e->ncells; i++)
        n += strstr(e->cells[i].key, needle) != NULL;
    return n;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* A small data file like `linattn capture` writes: /Q, /K, /V of (L, H, T, hs) floats. */
static void write_h5(const char *path, int L, int H, int T, int hs)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dims[4] = {(hsize_t)L, (hsize_t)H, (hsize_t)T, (hsize_t)hs};
    size_t n = (size_t)L * H * T * hs;
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    tu_fill(x, n, 1.7f, 42);
    const char *names[3] = {"/Q", "/K", "/V"};
    for (int i = 0; i < 3; i++) {
        hid_t s = H5Screate_simple(4, dims, NULL);
        hid_t d = H5Dcreate2(f, names[i], H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(d >= 0);
        assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        H5Dclose(d);
        H5Sclose(s);
    }
    H5Fclose(f);
    free(x);
}

static int setup(void **state)
{
    (void)state;
    la_startup();
    snprintf(g_dir, sizeof g_dir, "/tmp/linattn_test_experiment.XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the cell context and the resume decision ----------------------------------------- */

/* la_experiment_context: the seed, every measure setting, and a content hash per data file. */
static void test_cell_context(void **state)
{
    (void)state;
    char data[300], text[600];
    snprintf(data, sizeof data, "%s/ctx.h5", g_dir);
    write_h5(data, 1, 2, 16, 8);
    snprintf(text, sizeof text,
             "seed: 9\ndata: {source: h5, path: %s}\nmeasure: {kl_rows: 5}\n# a comment\n", data);
    struct la_experiment *e = load_ok(text);
    struct la_error err;
    char *c1 = NULL, *c2 = NULL, *c3 = NULL;
    assert_int_equal(la_experiment_context(e, &c1, &err), LA_OK);
    assert_non_null(strstr(c1, "seed=9\n"));
    assert_non_null(strstr(c1, "measure.kl_rows=5\n"));
    assert_non_null(strstr(c1, "measure.kernel_pairs=2048\n"));
    assert_non_null(strstr(c1, "measure.time_budget_s=0.2\n"));
    char want[400];
    snprintf(want, sizeof want, "data_file:%s=sha256:", data);
    const char *h = strstr(c1, want);
    assert_non_null(h);
    h += strlen(want);
    assert_int_equal(strspn(h, "0123456789abcdef"), 64);
    la_experiment_free(e);
    /* The same settings written differently (defaults spelt out, no comment): the same. */
    snprintf(text, sizeof text,
             "seed: 9\ndata: {source: h5, path: %s}\nmeasure: {kl_rows: 5, warmup: 1}\n", data);
    e = load_ok(text);
    assert_int_equal(la_experiment_context(e, &c2, &err), LA_OK);
    assert_string_equal(c1, c2);
    /* One byte of the file changed: another hash. */
    assert_int_equal(la_experiment_context(e, &c3, &err), LA_OK);
    assert_string_equal(c1, c3);
    la_experiment_free(e);
    FILE *f = fopen(data, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, -1, SEEK_END), 0);
    int last = fgetc(f);
    assert_int_equal(fseek(f, -1, SEEK_END), 0);
    assert_int_equal(fputc(last ^ 1, f), last ^ 1);
    assert_int_equal(fclose(f), 0);
    char *c4 = NULL;
    e = load_ok(text);
    assert_int_equal(la_experiment_context(e, &c4, &err), LA_OK);
    assert_string_not_equal(c3, c4);
    la_experiment_free(e);
    free(c1), free(c2), free(c3), free(c4);
}

/* The verdict of la_results_resume_check (for --dry-run) and what la_results_open does must
 * be the same; expect that status (and, when not OK, a message with needle) from both. */
static void expect_resume(const char *path, const char *text, const char *ctx, int status,
                          const char *needle, int add_text)
{
    struct la_provenance p = {"resume", text, 1, 1, 1, ctx};
    struct la_resume v;
    struct la_error e1, e2;
    la_error_clear(&e1);
    la_error_clear(&e2);
    const int st1 = la_results_resume_check(path, &p, &v, &e1);
    if (st1 != status || (status != LA_OK && !strstr(e1.msg, needle)) ||
        (status == LA_OK && v.add_text != add_text))
        fail_msg("check of '%s': expected %s '%s' (add_text %d), got %s '%s' (add_text %d)",
                 text, la_status_name(status), needle ? needle : "", add_text,
                 la_status_name(st1), e1.msg, v.add_text);
    struct la_results *r = NULL;
    const int st2 = la_results_open(path, &p, 0, &r, &e2);
    la_results_close(r);
    if (st2 != st1 || strcmp(e1.msg, e2.msg))
        fail_msg("open of '%s' disagrees with the check: %s '%s' vs %s '%s'", text,
                 la_status_name(st2), e2.msg, la_status_name(st1), e1.msg);
}

static void test_resume_decision(void **state)
{
    (void)state;
    char old[300], path[300], buf[256];
    struct la_error err;
    struct la_results *r = NULL;
    /* A file without a cell context (as older builds wrote): only its own text resumes it. */
    snprintf(old, sizeof old, "%s/old.h5", g_dir);
    struct la_provenance p0 = {"resume", "a", 1, 1, 1, NULL};
    assert_int_equal(la_results_open(old, &p0, 0, &r, &err), LA_OK);
    la_results_close(r);
    expect_resume(old, "a", "seed=1\n", LA_OK, NULL, 0);
    expect_resume(old, "b", "seed=1\n", LA_EINVAL, "records no cell context", 0);
    expect_resume(old, "b", NULL, LA_EINVAL, "records no cell context", 0);

    snprintf(path, sizeof path, "%s/ctx-results.h5", g_dir);
    const char *ctx = "seed=1\nmeasure.kl_rows=8\n";
    struct la_provenance p1 = {"resume", "a", 1, 1, 1, ctx};
    assert_int_equal(la_results_open(path, &p1, 0, &r, &err), LA_OK);
    la_results_close(r);
    assert_int_equal(la_results_attr(path, "cell_context", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, ctx);
    expect_resume(path, "a", ctx, LA_OK, NULL, 0);
    /* Another text, the same context: resumes and records the text. */
    expect_resume(path, "b", ctx, LA_OK, NULL, 1);
    assert_int_equal(la_results_attr(path, "experiment_text", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "a");
    assert_int_equal(la_results_attr(path, "experiment_text_2", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "b");
    assert_int_equal(la_results_attr(path, "text_count", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "2");
    expect_resume(path, "b", ctx, LA_OK, NULL, 0); /* recorded once */
    /* Changed settings: refused, each named with its old and new value. */
    expect_resume(path, "c", "seed=2\nmeasure.kl_rows=9\n", LA_EINVAL,
                  "seed 1 -> 2, measure.kl_rows 8 -> 9; use --fresh", 0);
    expect_resume(path, "a", "seed=2\nmeasure.kl_rows=8\n", LA_EINVAL, "seed 1 -> 2", 0);
    /* An input file only the new cells read: resumes, and the context keeps it from then on. */
    expect_resume(path, "d", "seed=1\nmeasure.kl_rows=8\nweights_file:w.h5=sha256:00\n", LA_OK,
                  NULL, 1);
    assert_int_equal(la_results_attr(path, "cell_context", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "seed=1\nmeasure.kl_rows=8\nweights_file:w.h5=sha256:00\n");
    assert_int_equal(la_results_attr(path, "text_count", buf, sizeof buf, &err), LA_OK);
    assert_string_equal(buf, "3");
    expect_resume(path, "e", "seed=1\nmeasure.kl_rows=8\nweights_file:w.h5=sha256:11\n",
                  LA_EINVAL, "weights_file:w.h5 sha256:00 -> sha256:11", 0);
    /* A caller that knows no context: only a text the file holds. */
    expect_resume(path, "d", NULL, LA_OK, NULL, 0);
    expect_resume(path, "f", NULL, LA_EINVAL, "different experiment text", 0);
    /* No file yet: a new one. */
    struct la_resume v;
    snprintf(path, sizeof path, "%s/none.h5", g_dir);
    assert_int_equal(la_results_resume_check(path, &p1, &v, &err), LA_OK);
    assert_int_equal(v.exists, 0);
}

/* ---- upper bounds of the counts ------------------------------------------------------- */

/* Every count has an upper bound: the bound itself loads, one more is refused at the value's
 * line:column with the allowed range in the message. */
static void test_bounds(void **state)
{
    (void)state;
    static const struct {
        const char *fmt; /* one %lld: the value, on line 1 */
        long long lo, hi;
        int accept_hi; /* 0: the bound alone cannot load (layer/head need an h5 file) */
    } b[] = {
        {"sweep: {T: %lld}\n", 1, 16777216, 1},
        {"sweep: {d: %lld}\n", 1, 16384, 1},
        {"sweep: {dv: %lld}\n", 1, 16384, 1},
        {"sweep: {map: prf, m: %lld}\n", 1, 1048576, 1},
        {"maps: {prf: {m: %lld}}\nsweep: {map: prf}\n", 1, 1048576, 1},
        {"sweep: {batch: %lld}\n", 1, 65536, 1},
        {"sweep: {heads: %lld}\n", 1, 65536, 1},
        {"sweep: {threads: %lld}\n", 1, 1024, 1},
        {"sweep: {kernel: linear_causal_chunked, causal: true, chunk: %lld}\n", 0, 16777216, 1},
        {"sweep: {layer: %lld}\n", 0, 65535, 0},
        {"sweep: {head: %lld}\n", 0, 65535, 0},
        {"trials: %lld\n", 1, 100000, 1},
        {"measure: {min_repeats: %lld}\n", 1, 1000, 1},
        {"measure: {warmup: %lld}\n", 0, 1000, 1},
        {"measure: {max_ref_rows: %lld}\n", 1, 16777216, 1},
        {"measure: {kl_rows: %lld}\n", 0, 16777216, 1},
        {"measure: {kernel_pairs: %lld}\n", 0, 1048576, 1},
        {"sweep: {T: {from: 1, to: %lld, factor: 4096}}\n", 1, 16777216, 1},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        char text[256], want[160], what[32];
        const int col = (int)(strstr(b[i].fmt, "%lld") - b[i].fmt) + 1;
        if (b[i].accept_hi) {
            snprintf(text, sizeof text, b[i].fmt, b[i].hi);
            struct la_experiment *e = load_ok(text);
            la_experiment_free(e);
        }
        snprintf(text, sizeof text, b[i].fmt, b[i].hi + 1);
        /* The name in the message: the word before ": %lld" (or 'to' of a range: its axis). */
        const char *at = strstr(b[i].fmt, ": %lld");
        const char *w = at;
        while (w > b[i].fmt && w[-1] != ' ' && w[-1] != '{')
            w--;
        snprintf(what, sizeof what, "%.*s", (int)(at - w), w);
        if (!strcmp(what, "to"))
            snprintf(what, sizeof what, "T");
        snprintf(want, sizeof want, "'%s'%s must be in %lld..%lld, got %lld", what,
                 !strcmp(what, "head") ? " (an integer or all)" : "", b[i].lo, b[i].hi,
                 b[i].hi + 1);
        expect_error(text, LA_EINVAL, 1, col, want);
    }
    /* time_budget_s: a real, bounded at one day. */
    struct la_experiment *e = load_ok("measure: {time_budget_s: 86400}\n");
    la_experiment_free(e);
    expect_error("measure: {time_budget_s: 86400.5}\n", LA_EINVAL, 1, 26,
                 "'time_budget_s' must be > 0 and at most 86400, got 86400.5");
    /* One cell's estimated memory is bounded too: each axis at its bound alone loads (above),
     * together they are refused at the T value. */
    e = load_ok("sweep: {T: 16777216, d: 512}\n");
    la_experiment_free(e);
    expect_error("sweep: {T: [64, 16777216], d: 16384}\n", LA_EINVAL, 1, 17,
                 "more than the 1024 GiB one cell may use");
}

/* ---- defaults ------------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    (void)state;
    struct la_experiment *e = load_ok("");
    assert_int_equal(e->ncells, 1);
    assert_string_equal(e->name, "t");
    assert_string_equal(e->output, "results/t.h5");
    assert_string_equal(e->path, "");
    assert_int_equal(e->seed, 1);
    assert_int_equal(e->n_dropped, 0);
    const struct la_cell *c = &e->cells[0];
    assert_string_equal(c->kernel, "linear_noncausal");
    assert_string_equal(c->map, "elu1");
    assert_int_equal(c->T, 1024);
    assert_int_equal(c->d, 64);
    assert_int_equal(c->dv, 64);
    assert_int_equal(c->batch, 1);
    assert_int_equal(c->heads, 1);
    assert_int_equal(c->threads, 1);
    assert_int_equal(c->causal, 0);
    assert_int_equal(c->chunk, 0);
    assert_int_equal(c->m, 0);
    assert_true(c->eps == 1e-6);
    assert_int_equal(c->source, LA_DATA_GAUSSIAN);
    assert_true(c->sigma == 1.0);
    assert_int_equal(c->head, -1);
    assert_int_equal(c->trial, 0);
    assert_int_equal(c->measure_time, 1);
    assert_int_equal(c->measure_error, 1);
    assert_true(c->time_budget_s == 0.2);
    assert_int_equal(c->min_repeats, 3);
    assert_int_equal(c->warmup, 1);
    assert_int_equal(c->max_ref_rows, 512);
    assert_int_equal(c->kl_rows, 64);
    assert_int_equal(c->kernel_pairs, 2048);
    assert_int_equal(c->index, 0);
    assert_true(c->seed != 0);
    assert_non_null(strstr(c->key, "kernel=linear_noncausal map=elu1 "));
    assert_non_null(strstr(c->key, " trial=0"));
    assert_true(strlen(c->key) < LA_KEY_LEN);
    la_experiment_free(e);

    /* A comment-only file and an explicit null are empty experiments too. */
    e = load_ok("# nothing here\n");
    assert_int_equal(e->ncells, 1);
    la_experiment_free(e);
    la_experiment_free(NULL);
}

static void test_top_level_settings(void **state)
{
    (void)state;
    struct la_experiment *e = load_ok("name: crossover-2\n"
                                      "description: \"free text: anything\"\n"
                                      "seed: 18446744073709551615\n"
                                      "output: results/other.h5\n"
                                      "trials: 3\n"
                                      "measure: {time: false, time_budget_s: 0.05, "
                                      "min_repeats: 5, warmup: 0, max_ref_rows: 100, "
                                      "kl_rows: 7, kernel_pairs: 99}\n");
    assert_string_equal(e->name, "crossover-2");
    assert_string_equal(e->output, "results/other.h5");
    assert_true(e->seed == UINT64_MAX);
    assert_int_equal(e->ncells, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct la_cell *c = &e->cells[i];
        assert_int_equal(c->trial, (int)i);
        assert_int_equal(c->measure_time, 0);
        assert_int_equal(c->measure_error, 1);
        assert_true(c->time_budget_s == 0.05);
        assert_int_equal(c->min_repeats, 5);
        assert_int_equal(c->warmup, 0);
        assert_int_equal(c->max_ref_rows, 100);
        assert_int_equal(c->kl_rows, 7);
        assert_int_equal(c->kernel_pairs, 99);
    }
    assert_true(e->cells[0].seed != e->cells[1].seed && e->cells[1].seed != e->cells[2].seed);
    la_experiment_free(e);

    /* The default output follows the name. */
    e = load_ok("name: abc\n");
    assert_string_equal(e->output, "results/abc.h5");
    la_experiment_free(e);
}

/* ---- syntax --------------------------------------------------------------------------- */

static void test_yaml_syntax_errors(void **state)
{
    (void)state;
    expect_error("sweep:\n  T: [1, 2\n  d: 3\n", LA_EINVAL, 4, 1, "YAML syntax error");
    expect_error("name: a\nname: b\n", LA_EINVAL, 2, 1, "duplicate key");
    expect_error("name: \"abc\n", LA_EINVAL, 1, 8, "YAML syntax error: double-quoted scalar");
    expect_error("name: a\n---\nname: b\n", LA_EINVAL, 2, 1, "a second YAML document");
    expect_error("x: &a 3\nsweep: {T: *a}\n", LA_EINVAL, 2, 13, "aliases");
    expect_error("sweep: {T: !!int 3}\n", LA_EINVAL, 1, 18, "tags");
    expect_error("- T\n- d\n", LA_EINVAL, 1, 3, "an experiment file is a mapping");
    expect_error("just text\n", LA_EINVAL, 1, 1, "an experiment file is a mapping");
    expect_error("? [a]\n: 1\n", LA_EINVAL, 1, 4, "a key must be a plain name");
    /* Not UTF-8: refused before libfyaml sees it (0.7.12 loops forever on this one). */
    expect_error("name: a\n%t\x82\x82\n", LA_EINVAL, 2, 3,
                 "invalid UTF-8 (byte 0x82); experiment files are UTF-8 text");
    expect_error("description: \"caf\xc3\xa9 \xed\xa0\x80\"\n", LA_EINVAL, 1, 20,
                 "invalid UTF-8 (byte 0xed)");
    struct la_experiment *e = NULL;
    struct la_error err;
    assert_int_equal(la_experiment_load_string("t.yaml", "seed: 1\n\0x", 10, &e, &err), LA_EINVAL);
    assert_null(e);
    assert_string_equal(err.msg, "t.yaml:2:1: a NUL byte (byte 0x00); experiment files are "
                                 "UTF-8 text");
    /* Valid UTF-8 is fine anywhere text is. */
    e = load_ok("description: \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"\n");
    la_experiment_free(e);
}

/* ---- keys ----------------------------------------------------------------------------- */

static void test_unknown_keys(void **state)
{
    (void)state;
    expect_error("name: x\nswep:\n  T: 5\n", LA_EINVAL, 2, 1,
                 "unknown key 'swep' in the experiment (did you mean 'sweep'?); valid keys: "
                 "name, description, seed, output, trials, sweep,");
    expect_error("sweep:\n  T: 5\n  dd: 3\n", LA_EINVAL, 3, 3,
                 "unknown key 'dd' in sweep (did you mean 'd'?); valid keys: kernel, map,");
    expect_error("sweep:\n  kernal: linear\n", LA_EINVAL, 2, 3, "(did you mean 'kernel'?)");
    expect_error("data: {sourc: gaussian}\n", LA_EINVAL, 1, 8,
                 "unknown key 'sourc' in data (did you mean 'source'?); valid keys: source, path");
    expect_error("measure:\n  time: true\n  warmpu: 2\n", LA_EINVAL, 3, 3,
                 "unknown key 'warmpu' in measure (did you mean 'warmup'?)");
    expect_error("sweep: {T: {from: 1, too: 8, factor: 2}}\n", LA_EINVAL, 1, 22,
                 "unknown key 'too' in a range");
    expect_error("maps: {prf: {mm: 3}}\n", LA_EINVAL, 1, 14,
                 "map 'prf' has no parameter 'mm' (did you mean 'm'?); its parameters: m, draw, "
                 "norm_fixed");
    expect_error("maps: {elu1: {m: 3}}\n", LA_EINVAL, 1, 15,
                 "map 'elu1' has no parameter 'm'; its parameters: none");
    expect_error("exclude:\n  - {mapp: prf}\n", LA_EINVAL, 2, 6,
                 "unknown key 'mapp' in a rule (did you mean 'map'?)");
    expect_error("exclude: [{T: {gtt: 3}}]\n", LA_EINVAL, 1, 16,
                 "unknown key 'gtt' in a comparison (did you mean 'gt'?)");
    /* An axis at the top level gets a pointed hint. */
    expect_error("name: a\nT: 5\n", LA_EINVAL, 2, 1, "'T' is a sweep axis: write it under");
    /* Quoting a key does not let it appear twice. */
    expect_error("sweep: {T: 5, 'T': 6}\n", LA_EINVAL, 1, 16, "duplicate key");
}

/* ---- types and values ----------------------------------------------------------------- */

static void test_wrong_types(void **state)
{
    (void)state;
    expect_error("sweep:\n  T: abc\n", LA_EINVAL, 2, 6, "'T': expected an integer, got 'abc'");
    expect_error("sweep:\n  T: \"256\"\n", LA_EINVAL, 2, 7,
                 "'T': expected an integer, got the quoted string \"256\"");
    expect_error("sweep:\n  T: 25.5\n", LA_EINVAL, 2, 6, "'T': expected an integer, got '25.5'");
    expect_error("sweep: {T: 0x10}\n", LA_EINVAL, 1, 12, "'T': expected an integer, got '0x10'");
    expect_error("sweep: {sigma: 0x1p3}\n", LA_EINVAL, 1, 16, "'sigma': expected a number");
    expect_error("sweep: {causal: 3}\n", LA_EINVAL, 1, 17,
                 "'causal': expected true or false, got '3'");
    expect_error("sweep: {causal: [true, maybe]}\n", LA_EINVAL, 1, 24,
                 "expected true or false, got 'maybe'");
    expect_error("sweep: {T: [[1, 2]]}\n", LA_EINVAL, 1, 14,
                 "each value of 'T' must be a scalar, got a list");
    expect_error("sweep: {T: }\n", LA_EINVAL, 1, 9, "'T': expected an integer, got an empty value");
    expect_error("sweep: 5\n", LA_EINVAL, 1, 8, "'sweep' must be a mapping of axes");
    expect_error("sweep: {sigma: abc}\n", LA_EINVAL, 1, 16, "'sigma': expected a number");
    expect_error("sweep: {eps: nan}\n", LA_EINVAL, 1, 14, "'eps': expected a number, got 'nan'");
    expect_error("sweep: {eps: .inf}\n", LA_EINVAL, 1, 14, "expected a number");
    expect_error("seed: -1\n", LA_EINVAL, 1, 7, "'seed': expected a non-negative integer");
    expect_error("seed: 18446744073709551616\n", LA_EINVAL, 1, 7, "'seed'");
    expect_error("trials: 0\n", LA_EINVAL, 1, 9, "'trials' must be in 1..100000, got 0");
    expect_error("name: [a]\n", LA_EINVAL, 1, 8, "'name': expected a string, got a list");
    expect_error("name: a/b\n", LA_EINVAL, 1, 7, "'name' 'a/b' must be letters");
    expect_error("description: {a: 1}\n", LA_EINVAL, 1, 15, "'description' must be text");
    expect_error("measure: {time: 1}\n", LA_EINVAL, 1, 17, "'time': expected true or false");
    expect_error("measure: {time_budget_s: 0}\n", LA_EINVAL, 1, 26, "'time_budget_s' must be > 0");
    expect_error("measure: {min_repeats: 0}\n", LA_EINVAL, 1, 24,
                 "'min_repeats' must be in 1..1000, got 0");
    expect_error("measure: {warmup: -1}\n", LA_EINVAL, 1, 19,
                 "'warmup' must be in 0..1000, got -1");
    expect_error("measure: {time: false, error: false}\n", LA_EINVAL, 1, 11, "nothing would be");
    expect_error("data: {source: gausian}\n", LA_ENAME, 1, 16,
                 "unknown data source 'gausian' (did you mean 'gaussian'?); valid sources: "
                 "gaussian, sphere, h5, model");
    expect_error("data: gaussian\n", LA_EINVAL, 1, 7, "'data' must be a mapping");
    expect_error("data: {path: x.h5}\n", LA_EINVAL, 1, 8, "'path' applies to data sources h5 and model only");
    expect_error("data: {source: h5}\n", LA_EINVAL, 1, 16, "data source h5 needs 'path'");
    expect_error("maps: [prf]\n", LA_EINVAL, 1, 8, "'maps' must be a mapping");
    expect_error("maps: {prf: 3}\n", LA_EINVAL, 1, 13, "maps: 'prf' must be a mapping");
    expect_error("maps: {prf: {norm_fixed: 2}}\n", LA_EINVAL, 1, 26,
                 "'norm_fixed' of map 'prf': expected true or false");
}

static void test_bad_values(void **state)
{
    (void)state;
    expect_error("sweep: {T: []}\n", LA_EINVAL, 1, 9, "'T' is an empty list");
    expect_error("sweep:\n  kernel: []\n", LA_EINVAL, 2, 3, "'kernel' is an empty list");
    expect_error("sweep: {T: 0}\n", LA_EINVAL, 1, 12, "'T' must be in 1..16777216, got 0");
    expect_error("sweep: {T: [64, -128]}\n", LA_EINVAL, 1, 17,
                 "'T' must be in 1..16777216, got -128");
    expect_error("sweep: {d: 0}\n", LA_EINVAL, 1, 12, "'d' must be in 1..16384");
    expect_error("sweep: {dv: -1}\n", LA_EINVAL, 1, 13, "'dv' must be in 1..16384");
    expect_error("sweep: {m: 0}\n", LA_EINVAL, 1, 12, "'m' must be in 1..1048576");
    expect_error("sweep: {heads: 0}\n", LA_EINVAL, 1, 16, "'heads' must be in 1..65536");
    expect_error("sweep: {batch: -3}\n", LA_EINVAL, 1, 16, "'batch' must be in 1..65536");
    expect_error("sweep: {threads: 0}\n", LA_EINVAL, 1, 18, "'threads' must be in 1..1024");
    expect_error("sweep: {chunk: -1}\n", LA_EINVAL, 1, 16, "'chunk' must be in 0..16777216");
    expect_error("sweep: {T: 99999999999}\n", LA_EINVAL, 1, 12,
                 "'T' must be in 1..16777216, got 99999999999");
    expect_error("sweep: {sigma: 0}\n", LA_EINVAL, 1, 16, "'sigma' must be > 0, got 0");
    expect_error("data: {source: sphere}\nsweep: {norm: -1}\n", LA_EINVAL, 2, 15,
                 "'norm' must be > 0");
    expect_error("sweep: {eps: -1e-6}\n", LA_EINVAL, 1, 14, "'eps' must be >= 0");
    expect_error("sweep: {A: 0.25}\n", LA_EINVAL, 1, 12, "'A' must be < 0.25");
    expect_error("sweep: {A: [0, autox]}\n", LA_EINVAL, 1, 16, "'A' (a number or auto)");
    expect_error("sweep: {draw: orthogonl}\n", LA_ENAME, 1, 15,
                 "unknown draw 'orthogonl' (did you mean 'orthogonal'?); valid draws: iid, "
                 "orthogonal");
}

static void test_ranges(void **state)
{
    (void)state;
    expect_error("sweep: {T: {from: 1024, to: 256, factor: 2}}\n", LA_EINVAL, 1, 19,
                 "the range of 'T' has from > to (1024 > 256)");
    expect_error("sweep: {T: {from: 1, to: 8, factor: 1}}\n", LA_EINVAL, 1, 37,
                 "'factor' must be > 1, got 1");
    expect_error("sweep: {T: {from: 1, to: 8, factor: 0.5}}\n", LA_EINVAL, 1, 37,
                 "'factor' must be > 1");
    expect_error("sweep: {T: {from: 1, to: 8, step: 0}}\n", LA_EINVAL, 1, 35, "'step' must be > 0");
    expect_error("sweep: {T: {from: 1, to: 8, step: 1.5}}\n", LA_EINVAL, 1, 35,
                 "'step' of integer axis 'T' must be an integer");
    expect_error("sweep: {T: {from: 1, to: 8}}\n", LA_EINVAL, 1, 13,
                 "needs exactly one of 'factor' (geometric) or 'step'");
    expect_error("sweep: {T: {from: 1, to: 8, step: 1, factor: 2}}\n", LA_EINVAL, 1, 13,
                 "needs exactly one of");
    expect_error("sweep: {T: {from: 1, factor: 2}}\n", LA_EINVAL, 1, 13,
                 "needs both 'from' and 'to'");
    expect_error("sweep: {T: {from: 1, to: 10000000, step: 1}}\n", LA_EINVAL, 1, 13,
                 "the range of 'T' has 1e+07 points (at most 100000)");
    expect_error("sweep: {sigma: {from: 1, to: 2, factor: 1.000000001}}\n", LA_EINVAL, 1, 17,
                 "points (at most 100000)");
    expect_error("sweep: {kernel: {from: 1, to: 2, step: 1}}\n", LA_EINVAL, 1, 18,
                 "'kernel' takes a value or a list of values, not a range");
    expect_error("sweep: {chunk: {from: 0, to: 64, factor: 2}}\n", LA_EINVAL, 1, 23,
                 "a geometric range of 'chunk' needs from > 0");
    expect_error("sweep: {A: {from: auto, to: 0, step: 0.1}}\n", LA_EINVAL, 1, 19,
                 "a range of 'A' takes numbers");
    expect_error("sweep: {T: {from: 0, to: 8, step: 1}}\n", LA_EINVAL, 1, 19, "'T' must be in 1..16777216");
}

static void test_names(void **state)
{
    (void)state;
    expect_error("sweep: {kernel: [linear, softmax_flsh]}\n", LA_ENAME, 1, 26,
                 "unknown kernel 'softmax_flsh' (did you mean 'softmax_flash'?); valid kernels: "
                 "linear, softmax_flash, linear_noncausal");
    expect_error("sweep:\n  map: [elu1, gerff]\n", LA_ENAME, 2, 15,
                 "unknown feature map 'gerff' (did you mean 'gerf'?); valid maps: elu1");
    expect_error("maps:\n  hedgehog: {weights: x.h5}\n", LA_ENAME, 2, 3,
                 "unknown feature map 'hedgehog' in maps; valid maps: elu1");
    expect_error("exclude: [{map: nope}]\n", LA_ENAME, 1, 17, "valid maps: elu1");
    expect_error("exclude: [{kernel: softmax}]\n", LA_ENAME, 1, 20, "unknown kernel 'softmax'");
    /* A kernel of the table that is neither a forward nor a step kernel is named for what it
     * is, with the step kernels that run decode cells. */
    expect_error("sweep: {kernel: [linear, linear_prefill]}\n", LA_EINVAL, 1, 26,
                 "kernel 'linear_prefill' is a prefill kernel; runs and bench time forward and "
                 "step kernels only (a step cell runs the prefill itself; step kernels: "
                 "linear_step, softmax_step, linear_delta_step, linear_decay_step, "
                 "linear_gated_step): linear, softmax_flash, linear_noncausal, linear_causal, "
                 "linear_causal_recurrent, linear_causal_chunked, linear_step, softmax_step, "
                 "linear_delta_recurrent, linear_delta_chunked, linear_delta_step, "
                 "linear_decay_recurrent, "
                 "linear_decay_chunked, linear_decay_step, linear_gated_recurrent, "
                 "linear_gated_chunked, linear_gated_step");
    /* A step kernel is a sweep kernel: a decode cell, causal, with its map. */
    struct la_experiment *e = load_ok("sweep: {kernel: [linear_step, softmax_step], causal: "
                                      "true, T: 64, batch: [1, 16], map: [elu1, prf]}\n");
    assert_int_equal((int)e->ncells, 6); /* softmax has no map: 2 cells, not 4 */
    for (size_t i = 0; i < e->ncells; i++) {
        const int soft = !strcmp(e->cells[i].kernel, "softmax_step");
        assert_true(soft || !strcmp(e->cells[i].kernel, "linear_step"));
        assert_true(soft == !strcmp(e->cells[i].map, "none"));
        assert_true(la_cell_flops(&e->cells[i]) > 0.0 && la_cell_bytes(&e->cells[i]) > 0.0);
    }
    la_experiment_free(e);
}

static void test_files(void **state)
{
    (void)state;
    char text[1024], path[512];
    /* Missing weights: the line:col of the path. */
    expect_error("sweep: {map: learned}\nmaps:\n  learned: {weights: /nonexistent/w.h5}\n", LA_EIO,
                 3, 22, "weights file '/nonexistent/w.h5': No such file or directory");
    /* A directory is not a weights file. */
    snprintf(text, sizeof text, "maps: {learned: {weights: %s}}\n", g_dir);
    expect_error(text, LA_EIO, 1, 27, "is not a regular file");
    /* A learned map without weights cannot run. */
    expect_error("sweep:\n  map: [elu1, learned]\n", LA_EINVAL, 2, 15,
                 "map 'learned' needs a weights file");
    /* ...unless every kernel is softmax (the map is never used). */
    struct la_experiment *e = load_ok("sweep: {kernel: softmax_flash, map: learned}\n");
    assert_int_equal(e->ncells, 1);
    assert_string_equal(e->cells[0].map, "none");
    la_experiment_free(e);
    /* Weights that exist: the path goes into the cell and its key. */
    snprintf(path, sizeof path, "%s/w.h5", g_dir);
    write_file(path, "not really hdf5, the map reads it at run time\n");
    snprintf(text, sizeof text, "sweep: {map: learned}\nmaps: {learned: {weights: %s}}\n", path);
    e = load_ok(text);
    assert_string_equal(e->cells[0].weights, path);
    assert_non_null(strstr(e->cells[0].key, path));
    la_experiment_free(e);

    /* A path so long that the cell key would not fit LA_KEY_LEN. */
    char longp[512];
    int w = snprintf(longp, sizeof longp, "%s/%0200d", g_dir, 0);
    assert_true(w > 0 && mkdir(longp, 0700) == 0);
    snprintf(longp + w, sizeof longp - (size_t)w, "/%0150d.h5", 0);
    write_file(longp, "x\n");
    snprintf(text, sizeof text, "sweep: {map: learned}\nmaps: {learned: {weights: %s}}\n", longp);
    expect_error(text, LA_EINVAL, 2, 27, "a cell key would be");

    /* A missing data file. */
    expect_error("data:\n  source: h5\n  path: /nonexistent/d.h5\n", LA_EIO, 3, 9,
                 "data file '/nonexistent/d.h5': No such file or directory");
    /* A file that is not HDF5. */
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\n", path);
    expect_error(text, LA_EFORMAT, 1, 26, "is not an HDF5 file");
}

/* Several weights files in one experiment: `weights` is a sweep axis of the learned map
 * (beside maps: learned: {weights: ...}, never both); every file is checked before anything
 * runs, and the key and the results column hold its path. */
static void test_weights_axis(void **state)
{
    (void)state;
    char text[2048], a[512], b[512];
    snprintf(a, sizeof a, "%s/wa.h5", g_dir);
    snprintf(b, sizeof b, "%s/sub/wb.h5", g_dir);
    snprintf(text, sizeof text, "%s/sub", g_dir);
    assert_true(mkdir(text, 0700) == 0 || errno == EEXIST);
    write_file(a, "weights a\n");
    write_file(b, "weights b\n");
    /* Two files and two maps: elu1 reads no weights, so it runs once. */
    snprintf(text, sizeof text, "sweep:\n  map: [learned, elu1]\n  weights: [%s, %s]\n", a, b);
    struct la_experiment *e = load_ok(text);
    assert_int_equal((int)e->ncells, 3);
    size_t na = 0, nb = 0, nelu = 0;
    for (size_t i = 0; i < e->ncells; i++) {
        const struct la_cell *c = &e->cells[i];
        struct la_row r;
        memset(&r, 0, sizeof r);
        la_params_fill_row(c, &r);
        if (!strcmp(c->map, "elu1")) {
            nelu++;
            assert_string_equal(c->weights, "");
            assert_string_equal(r.weights, "");
            continue;
        }
        assert_non_null(strstr(c->key, c->weights));
        if (!strcmp(c->weights, a)) {
            na++;
            assert_string_equal(r.weights, a);
        } else {
            assert_string_equal(c->weights, b);
            nb++;
            assert_string_equal(r.weights, b);
        }
    }
    assert_true(na == 1 && nb == 1 && nelu == 1);
    /* Both files are input files of the results' context. */
    char *ctx = NULL;
    struct la_error err;
    la_error_clear(&err);
    assert_int_equal(la_experiment_context(e, &ctx, &err), LA_OK);
    assert_non_null(strstr(ctx, "weights_file:"));
    assert_non_null(strstr(ctx, "wa.h5=sha256:"));
    assert_non_null(strstr(ctx, "wb.h5=sha256:"));
    free(ctx);
    la_experiment_free(e);
    /* A rule names a file by its path. */
    snprintf(text, sizeof text,
             "sweep: {map: learned, weights: [%s, %s]}\nexclude: [{weights: %s}]\n", a, b, a);
    e = load_ok(text);
    assert_int_equal((int)e->ncells, 1);
    assert_string_equal(e->cells[0].weights, b);
    la_experiment_free(e);
    /* A missing file in the list: named at its line and column before anything runs. */
    snprintf(text, sizeof text, "sweep:\n  map: learned\n  weights: [%s, /nonexistent/w.h5]\n",
             a);
    expect_error(text, LA_EIO, 3, (int)strlen(a) + 15,
                 "weights file '/nonexistent/w.h5': No such file or directory");
    expect_error("sweep:\n  map: learned\n  weights: /nonexistent/w.h5\n", LA_EIO, 3, 12,
                 "weights file '/nonexistent/w.h5'");
    /* Swept and fixed in maps: at once. */
    snprintf(text, sizeof text,
             "sweep: {map: learned, weights: [%s]}\nmaps:\n  learned: {weights: %s}\n", a, b);
    expect_error(text, LA_EINVAL, 3, 13, "'weights' of map 'learned' is also a sweep axis");
    /* Files are not numbers. */
    snprintf(text, sizeof text, "sweep: {map: learned, weights: {from: 1, to: 2, step: 1}}\n");
    expect_error(text, LA_EINVAL, 1, 33, "'weights' takes a value or a list of values");
}

static void test_h5_data(void **state)
{
    (void)state;
    char text[1024], path[512];
    snprintf(path, sizeof path, "%s/data.h5", g_dir);
    write_h5(path, 2, 3, 16, 8);
    /* Defaults: every layer, all heads, the file's T and head size. */
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {kernel: softmax_flash}\n",
             path);
    struct la_experiment *e = load_ok(text);
    assert_int_equal(e->ncells, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct la_cell *c = &e->cells[i];
        assert_int_equal(c->source, LA_DATA_H5);
        assert_string_equal(c->data_path, path);
        assert_int_equal(c->T, 16);
        assert_int_equal(c->d, 8);
        assert_int_equal(c->dv, 8);
        assert_int_equal(c->head, -1);
        assert_int_equal(c->heads, 3);
        assert_true(c->sigma == 0 && c->norm == 0);
    }
    assert_true(e->cells[0].layer != e->cells[1].layer);
    la_experiment_free(e);
    /* Explicit selection. */
    snprintf(text, sizeof text,
             "data: {source: h5, path: %s}\nsweep: {T: [4, 16], layer: 1, head: [0, 2, all]}\n",
             path);
    e = load_ok(text);
    assert_int_equal(e->ncells, 6);
    assert_int_equal(count_cells(e, "layer=1 head=2 "), 2);
    assert_int_equal(count_cells(e, "layer=1 head=-1 "), 2);
    const struct la_cell *c = find_cell(e, "head=0 ", "T=4 ");
    assert_non_null(c);
    assert_int_equal(c->heads, 1);
    la_experiment_free(e);
    /* What the file cannot give. */
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {T: [8, 32]}\n", path);
    expect_error(text, LA_EINVAL, 2, 16, "'T' = 32 does not fit the data file");
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {d: 16}\n", path);
    expect_error(text, LA_EINVAL, 2, 12, "'d' = 16 does not fit the data file");
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {layer: 2}\n", path);
    expect_error(text, LA_EINVAL, 2, 16, "'layer' = 2 does not fit");
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {head: [0, 3]}\n", path);
    expect_error(text, LA_EINVAL, 2, 19, "'head' = 3 does not fit");
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {heads: 2}\n", path);
    expect_error(text, LA_EINVAL, 2, 9, "'heads' comes from the data file");
    snprintf(text, sizeof text, "data: {source: h5, path: %s}\nsweep: {sigma: 2}\n", path);
    expect_error(text, LA_EINVAL, 2, 9, "'sigma' applies to data source gaussian only");
    /* Gates from the data: `beta: data` needs /beta (L, H, T) in the file; `alpha: data`
     * needs /alpha; neither is there yet.  The other values of the axis stay constants. */
    snprintf(text, sizeof text,
             "data: {source: h5, path: %s}\nsweep: {kernel: linear_delta_recurrent, causal: "
             "true, beta: [0.5, data]}\n",
             path);
    expect_error(text, LA_EFORMAT, 2, 67, "'beta: data': data file '");
    snprintf(text, sizeof text,
             "data: {source: h5, path: %s}\nsweep: {kernel: linear_gated_recurrent, causal: "
             "true, alpha: data}\n",
             path);
    expect_error(text, LA_EFORMAT, 2, 62, "lacks dataset /alpha");
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    const hsize_t bd[3] = {2, 3, 16}, bad[2] = {3, 16};
    float beta[2 * 3 * 16];
    for (size_t i = 0; i < sizeof beta / sizeof beta[0]; i++)
        beta[i] = 0.5f;
    hid_t sp = H5Screate_simple(3, bd, NULL);
    hid_t d = H5Dcreate2(f, "/beta", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, beta) >= 0);
    H5Dclose(d), H5Sclose(sp);
    sp = H5Screate_simple(2, bad, NULL);
    d = H5Dcreate2(f, "/alpha", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, beta) >= 0);
    H5Dclose(d), H5Sclose(sp);
    H5Fclose(f);
    snprintf(text, sizeof text,
             "data: {source: h5, path: %s}\nsweep: {kernel: linear_delta_recurrent, causal: "
             "true, beta: [0.5, data]}\n",
             path);
    e = load_ok(text);
    assert_int_equal(count_cells(e, "beta=data "), 2); /* one per layer */
    assert_int_equal(count_cells(e, "beta=0.5 "), 2);
    for (size_t i = 0; i < e->ncells; i++)
        assert_int_equal(e->cells[i].beta_data, strstr(e->cells[i].key, "beta=data ") != NULL);
    la_experiment_free(e);
    snprintf(text, sizeof text,
             "data: {source: h5, path: %s}\nsweep: {kernel: linear_gated_recurrent, causal: "
             "true, alpha: data}\n",
             path);
    expect_error(text, LA_EFORMAT, 2, 62, "/alpha of '");
    /* Not an h5 source. */
    expect_error("sweep: {kernel: linear_delta_chunked, causal: true, beta: data}\n", LA_EINVAL, 1,
                 59, "'beta: data' reads /beta from an h5 data file; the data source is gaussian");
    /* Axes of other sources. */
    expect_error("sweep: {layer: 0}\n", LA_EINVAL, 1, 9, "'layer' applies to data source h5");
    expect_error("sweep: {norm: 2}\n", LA_EINVAL, 1, 9, "'norm' applies to data source sphere");
}

static void test_output(void **state)
{
    (void)state;
    char text[1024], path[512];
    snprintf(path, sizeof path, "%s/plain", g_dir);
    write_file(path, "x\n");
    /* Under a regular file: no directory can be made there. */
    snprintf(text, sizeof text, "name: x\noutput: %s/sub/r.h5\n", path);
    expect_error(text, LA_EIO, 2, 9, "/sub': Not a directory");
    /* A directory is not an output file. */
    snprintf(text, sizeof text, "output: %s\n", g_dir);
    expect_error(text, LA_EIO, 1, 9, "is a directory");
    expect_error("output: results/\n", LA_EINVAL, 1, 9, "is not a file name");
    /* Missing directories that can be created are fine (the results file makes them). */
    snprintf(text, sizeof text, "output: %s/new/deeper/r.h5\n", g_dir);
    struct la_experiment *e = load_ok(text);
    la_experiment_free(e);
}

/* ---- expansion ------------------------------------------------------------------------ */

static void test_grid_ranges(void **state)
{
    (void)state;
    /* Geometric, inclusive of `to`. */
    struct la_experiment *e = load_ok("sweep: {kernel: softmax_flash, "
                                      "T: {from: 256, to: 16384, factor: 2}}\n");
    assert_int_equal(e->ncells, 7);
    for (int t = 256; t <= 16384; t *= 2) {
        char k[32];
        snprintf(k, sizeof k, " T=%d ", t);
        assert_int_equal(count_cells(e, k), 1);
    }
    la_experiment_free(e);
    /* Geometric, `to` not hit. */
    e = load_ok("sweep: {kernel: softmax_flash, T: {from: 100, to: 1000, factor: 3}}\n");
    assert_int_equal(e->ncells, 3); /* 100, 300, 900 */
    assert_int_equal(count_cells(e, " T=900 "), 1);
    la_experiment_free(e);
    /* Real factor on an integer axis: rounded, repeats removed. */
    e = load_ok("sweep: {kernel: softmax_flash, T: {from: 1, to: 4, factor: 1.5}}\n");
    assert_int_equal(e->ncells, 3); /* 1, 1.5→2, 2.25→2 (merged), 3.375→3 */
    la_experiment_free(e);
    /* Arithmetic. */
    e = load_ok("sweep: {kernel: softmax_flash, d: {from: 1, to: 10, step: 3}}\n");
    assert_int_equal(e->ncells, 4); /* 1, 4, 7, 10 */
    assert_int_equal(count_cells(e, " d=10 "), 1);
    la_experiment_free(e);
    /* Real steps end at `to` despite rounding. */
    e = load_ok("sweep: {kernel: softmax_flash, sigma: {from: 0.1, to: 1.0, step: 0.1}}\n");
    assert_int_equal(e->ncells, 10);
    assert_int_equal(count_cells(e, " sigma=1 "), 1);
    assert_int_equal(count_cells(e, " sigma=0.3 "), 1);
    la_experiment_free(e);
    /* A range of A. */
    e = load_ok("sweep: {map: gerf, A: {from: -0.5, to: 0, step: 0.25}}\n");
    assert_int_equal(e->ncells, 3);
    la_experiment_free(e);
    /* One point. */
    e = load_ok("sweep: {kernel: softmax_flash, T: {from: 64, to: 64, factor: 2}}\n");
    assert_int_equal(e->ncells, 1);
    la_experiment_free(e);
}

static void test_grid_product(void **state)
{
    (void)state;
    /* Lists × scalars × trials. */
    struct la_experiment *e = load_ok("trials: 3\n"
                                      "sweep:\n"
                                      "  kernel: linear\n"
                                      "  map: [prf, hyp]\n"
                                      "  m: [16, 32]\n"
                                      "  draw: [iid, orthogonal]\n"
                                      "  T: [64, 128]\n"
                                      "  d: 16\n"
                                      "  dv: 8\n"
                                      "  batch: 2\n"
                                      "  heads: 3\n"
                                      "  threads: 2\n"
                                      "  eps: 1e-5\n");
    assert_int_equal(e->ncells, 2 * 2 * 2 * 2 * 3);
    assert_int_equal(e->n_dropped, 0);
    assert_int_equal(e->n_merged, 0);
    const struct la_cell *c = find_cell(e, "map=hyp m=32 draw=orthogonal", " T=128 ");
    assert_non_null(c);
    assert_int_equal(c->dv, 8);
    assert_int_equal(c->batch, 2);
    assert_int_equal(c->heads, 3);
    assert_int_equal(c->threads, 2);
    assert_true(c->eps == 1e-5);
    assert_int_equal(c->draw, 1);
    la_experiment_free(e);

    /* The cap on combinations. */
    expect_error("sweep:\n  T: {from: 1, to: 1000, step: 1}\n  d: {from: 1, to: 200, step: 1}\n",
                 LA_EINVAL, 1, 1, "the grid has 200000 combinations (1000 T x 200 d x 1 trials)");
}

static void test_collapse_and_merge(void **state)
{
    (void)state;
    /* Softmax has no map: every map × m collapses onto one cell per shape. */
    struct la_experiment *e = load_ok("sweep:\n"
                                      "  kernel: [softmax_flash, linear]\n"
                                      "  map: [elu1, prf]\n"
                                      "  m: [16, 32]\n"
                                      "  A: [0, -0.25]\n"
                                      "  chunk: [0, 32]\n");
    /* softmax: 1; elu1 (no m, no A): 1; prf (m, no A): 2.  chunk applies to none of these. */
    assert_int_equal(e->ncells, 4);
    assert_int_equal(e->n_merged, 2 * 2 * 2 * 2 * 2 - 4);
    const struct la_cell *c = find_cell(e, "kernel=softmax_flash", NULL);
    assert_non_null(c);
    assert_string_equal(c->map, "none");
    assert_int_equal(c->m, 0);
    assert_true(c->eps == 0);
    assert_int_equal(c->chunk, 0);
    c = find_cell(e, "map=elu1", NULL);
    assert_non_null(c);
    assert_int_equal(c->m, 0);
    assert_true(c->A == 0);
    assert_int_equal(count_cells(e, "map=prf"), 2);
    la_experiment_free(e);

    /* gerf reads A; auto sets A_auto; chunk applies to the chunked kernels only. */
    e = load_ok("sweep:\n"
                "  kernel: [linear, linear_causal_chunked, linear_causal_recurrent]\n"
                "  causal: true\n"
                "  map: gerf\n"
                "  A: [-0.2, auto]\n"
                "  chunk: [16, 64]\n");
    /* chunked: 2 A × 2 chunks; linear→linear_causal (recurrent by default, no chunk) and
     * recurrent: 2 A each (the kernel table's uses_chunk decides). */
    assert_int_equal(e->ncells, 4 + 2 + 2);
    c = find_cell(e, "kernel=linear_causal_recurrent", "A=auto");
    assert_non_null(c);
    assert_int_equal(c->A_auto, 1);
    assert_int_equal(c->chunk, 0);
    c = find_cell(e, "kernel=linear_causal_chunked", "A=-0.2");
    assert_non_null(c);
    assert_true(c->A == -0.2);
    assert_int_equal(c->A_auto, 0);
    assert_int_equal(count_cells(e, "kernel=linear_causal "), 2);
    assert_int_equal(count_cells(e, "chunk=64"), 2);
    la_experiment_free(e);

    /* The relu map's eps and the sphere's default norm. */
    e = load_ok("data: {source: sphere}\n"
                "sweep: {map: [relu, elu1], d: 16}\n");
    c = find_cell(e, "map=relu", NULL);
    assert_non_null(c);
    assert_true(c->relu_eps == 1e-3);
    assert_true(c->norm == 4.0);
    assert_true(c->sigma == 0);
    assert_true(find_cell(e, "map=elu1", NULL)->relu_eps == 0);
    la_experiment_free(e);

    /* The recurrences' gates apply to the kernels whose rule reads them: a sweep of gamma makes
     * two decay cells and one plain linear cell (its key has no gamma); a value at the default
     * stays out of the key; beta out of (0, 1] is refused; dpfp's nu is a map parameter. */
    e = load_ok("sweep: {kernel: [linear_decay_recurrent, linear_causal], causal: true,\n"
                "        gamma: [0.5, 0.96875], map: dpfp, nu: [1, 3]}\n");
    assert_int_equal(count_cells(e, "kernel=linear_decay_recurrent "), 4);
    assert_int_equal(count_cells(e, "kernel=linear_causal "), 2);
    c = find_cell(e, "kernel=linear_decay_recurrent ", "gamma=0.5");
    assert_non_null(c);
    assert_true(c->gamma == 0.5);
    assert_true(c->beta == 0 && c->alpha == 0); /* not read by the decay rule: neutral */
    assert_int_equal(count_cells(e, "gamma="), 2);
    assert_int_equal(count_cells(e, "nu=3"), 3);
    assert_true(find_cell(e, "kernel=linear_causal ", "nu=3")->nu == 3);
    la_experiment_free(e);
    e = load_ok("sweep: {kernel: linear_delta_recurrent, causal: true, beta: 0.25,\n"
                "        recur_norm: [rule, sum]}\n");
    assert_int_equal(e->ncells, 2);
    c = find_cell(e, "recur_norm=sum", NULL);
    assert_non_null(c);
    assert_int_equal(c->recur_norm, 2);
    assert_true(c->beta == 0.25);
    la_experiment_free(e);
    expect_error("sweep: {kernel: linear_delta_recurrent, causal: true, beta: 1.5}\n", LA_EINVAL,
                 1, 61, "'beta' must be > 0 and at most 1, got 1.5");

    /* Integers written as reals, and -0 = 0, are the same values. */
    e = load_ok("sweep: {T: [1e3, 1000, 1000.0], map: gerf, A: [0, -0.0]}\n");
    assert_int_equal(e->ncells, 1);
    assert_int_equal(e->n_merged, 5);
    assert_non_null(strstr(e->cells[0].key, " A=0 "));
    la_experiment_free(e);

    /* Duplicated values in a list merge. */
    e = load_ok("sweep: {T: [64, 64, 128]}\n");
    assert_int_equal(e->ncells, 2);
    assert_int_equal(e->n_merged, 1);
    la_experiment_free(e);
}

static void test_maps_section(void **state)
{
    (void)state;
    struct la_experiment *e = load_ok("sweep: {map: [prf, gerf, relu]}\n"
                                      "maps:\n"
                                      "  prf: {m: 128, draw: orthogonal, norm_fixed: true}\n"
                                      "  gerf: {A: auto}\n"
                                      "  relu: {eps: 0.01}\n");
    assert_int_equal(e->ncells, 3);
    const struct la_cell *c = find_cell(e, "map=prf", NULL);
    assert_int_equal(c->m, 128);
    assert_int_equal(c->draw, 1);
    assert_int_equal(c->norm_fixed, 1);
    c = find_cell(e, "map=gerf", NULL);
    assert_int_equal(c->A_auto, 1);
    assert_int_equal(c->m, 0);
    assert_int_equal(c->norm_fixed, 0);
    c = find_cell(e, "map=relu", NULL);
    assert_true(c->relu_eps == 0.01);
    la_experiment_free(e);

    /* norm_fixed only means something for orthogonal draws. */
    e = load_ok("sweep: {map: prf}\nmaps: {prf: {norm_fixed: true}}\n");
    assert_int_equal(e->cells[0].norm_fixed, 0);
    la_experiment_free(e);

    /* A parameter is swept or fixed, not both. */
    expect_error("sweep:\n  map: prf\n  m: [16, 32]\nmaps:\n  prf: {m: 64}\n", LA_EINVAL, 5, 9,
                 "'m' of map 'prf' is also a sweep axis (line 3); set it in one place");
    expect_error("sweep: {draw: iid}\nmaps: {rff: {draw: iid}}\n", LA_EINVAL, 2, 14,
                 "'draw' of map 'rff' is also a sweep axis (line 1)");
}

static void test_incompatible_dropped(void **state)
{
    (void)state;
    struct la_experiment *e = load_ok("sweep:\n"
                                      "  kernel: [linear_noncausal, linear_causal_recurrent, "
                                      "softmax_flash, linear]\n"
                                      "  causal: [false, true]\n");
    /* noncausal: only causal=false; recurrent: only causal=true; softmax and linear: both. */
    assert_int_equal(e->ncells, 1 + 1 + 2 + 1);
    assert_int_equal(e->n_dropped, 2);
    assert_int_equal(e->n_merged, 1); /* linear/false = linear_noncausal/false */
    assert_null(find_cell(e, "kernel=linear_noncausal", "causal=1"));
    assert_null(find_cell(e, "kernel=linear_causal_recurrent", "causal=0"));
    assert_non_null(find_cell(e, "kernel=linear_causal ", "causal=1"));
    la_experiment_free(e);
    /* Nothing left is an error. */
    expect_error("sweep:\n  kernel: linear_noncausal\n  causal: true\n", LA_EINVAL, 1, 1,
                 "no cells left to run: 1 combination(s) dropped");
}

static void test_exclude_only(void **state)
{
    (void)state;
    const char *grid = "sweep:\n"
                       "  kernel: [softmax_flash, linear]\n"
                       "  map: [taylor2, prf]\n"
                       "  d: [16, 32, 64]\n"
                       "  T: [128, 256]\n";
    char text[2048];
    /* softmax: 3 d × 2 T = 6; taylor2 6; prf 6. */
    struct la_experiment *e = load_ok(grid);
    assert_int_equal(e->ncells, 18);
    la_experiment_free(e);
    snprintf(text, sizeof text, "%sexclude:\n  - {map: taylor2, d: {gt: 16}}\n", grid);
    e = load_ok(text);
    assert_int_equal(e->ncells, 14);
    assert_int_equal(e->n_dropped, 4);
    assert_int_equal(count_cells(e, "map=taylor2"), 2);
    la_experiment_free(e);
    /* Several rules; lists and ranges of comparisons; a single mapping is one rule. */
    snprintf(text, sizeof text,
             "%sexclude:\n  - {map: taylor2, d: {gt: 16}}\n  - {T: {ge: 200, lt: 300}, "
             "kernel: softmax_flash}\n",
             grid);
    e = load_ok(text);
    assert_int_equal(e->ncells, 11);
    la_experiment_free(e);
    snprintf(text, sizeof text, "%sexclude: {d: [16, 64]}\n", grid);
    e = load_ok(text);
    assert_int_equal(e->ncells, 6);
    la_experiment_free(e);
    /* only: a cell must match one of the rules; `linear` matches every linear kernel, `none`
     * the softmax cells. */
    snprintf(text, sizeof text, "%sonly:\n  - {kernel: softmax_flash}\n", grid);
    e = load_ok(text);
    assert_int_equal(e->ncells, 6);
    assert_int_equal(e->n_dropped, 12);
    la_experiment_free(e);
    snprintf(text, sizeof text, "%sonly:\n  - {kernel: linear, d: 16}\n  - {map: none, T: 128}\n",
             grid);
    e = load_ok(text);
    assert_int_equal(e->ncells, 4 + 3);
    la_experiment_free(e);
    /* Errors in rules. */
    expect_error("exclude: []\n", LA_EINVAL, 1, 1, "'exclude' is an empty list");
    expect_error("only:\n", LA_EINVAL, 1, 1, "'only' needs a list of rules");
    expect_error("exclude: [{}]\n", LA_EINVAL, 1, 1, "an empty rule would match every cell");
    expect_error("exclude: [5]\n", LA_EINVAL, 1, 11, "a rule must be a mapping");
    expect_error("exclude: [{map: {gt: 3}}]\n", LA_EINVAL, 1, 18,
                 "comparisons apply to numeric axes; 'map' is not one");
    expect_error("exclude: [{T: {gt: abc}}]\n", LA_EINVAL, 1, 20, "'gt' of 'T': expected a number");
    expect_error("exclude: [{T: 0}]\n", LA_EINVAL, 1, 15, "'T' must be in 1..16777216");
    expect_error("only: [{d: []}]\n", LA_EINVAL, 1, 9, "'d' is an empty list");
}

/* ---- seeds and order ------------------------------------------------------------------ */

static void test_seeds(void **state)
{
    (void)state;
    struct la_experiment *a = load_ok("seed: 7\ntrials: 2\nsweep: {T: [64, 128, 256], "
                                      "map: [elu1, prf], d: [16, 32]}\n");
    struct la_experiment *b = load_ok("seed: 7\ntrials: 2\nsweep: {d: [32, 16], "
                                      "map: [prf, elu1], T: [256, 64, 128]}\n");
    struct la_experiment *c = load_ok("seed: 8\ntrials: 2\nsweep: {T: [64, 128, 256], "
                                      "map: [elu1, prf], d: [16, 32]}\n");
    struct la_experiment *sub = load_ok("seed: 7\ntrials: 2\nsweep: {T: 128, map: prf, "
                                        "d: 32}\n");
    assert_int_equal(a->ncells, 24);
    assert_int_equal(b->ncells, 24);
    for (size_t i = 0; i < a->ncells; i++) {
        const struct la_cell *x = &a->cells[i];
        const struct la_cell *y = find_cell(b, x->key, NULL);
        const struct la_cell *z = find_cell(c, x->key, NULL);
        assert_non_null(y);
        assert_non_null(z);
        assert_true(x->seed == y->seed); /* same key, same seed, whatever the order */
        assert_true(x->seed != z->seed); /* the experiment seed matters */
        /* Cells share a seed exactly when they share their data (T, d, trial): maps and
         * kernels at one data point are compared on the same inputs. */
        for (size_t j = 0; j < i; j++) {
            const struct la_cell *w = &a->cells[j];
            const int same_data = w->T == x->T && w->d == x->d && w->trial == x->trial;
            assert_int_equal(w->seed == x->seed, same_data);
        }
    }
    /* A cell of a smaller experiment has the same seed as in the big one. */
    for (size_t i = 0; i < sub->ncells; i++) {
        const struct la_cell *y = find_cell(a, sub->cells[i].key, NULL);
        assert_non_null(y);
        assert_true(y->seed == sub->cells[i].seed);
    }
    la_experiment_free(a);
    la_experiment_free(b);
    la_experiment_free(c);
    la_experiment_free(sub);
}

static void test_run_order_and_estimates(void **state)
{
    (void)state;
    struct la_experiment *e = load_ok("sweep:\n"
                                      "  kernel: [softmax_flash, linear]\n"
                                      "  map: prf\n"
                                      "  m: 32\n"
                                      "  T: [4096, 256, 1024]\n"
                                      "  d: 32\n"
                                      "  batch: 2\n");
    assert_int_equal(e->ncells, 6);
    for (size_t i = 0; i < e->ncells; i++) {
        assert_int_equal(e->cells[i].index, (int)i);
        assert_true(la_cell_flops(&e->cells[i]) > 0);
        assert_true(la_cell_bytes(&e->cells[i]) > 0);
        if (i)
            assert_true(la_cell_flops(&e->cells[i - 1]) <= la_cell_flops(&e->cells[i]));
    }
    /* Softmax: the kernel's nominal flops × batch·heads. */
    const struct la_cell *c = find_cell(e, "kernel=softmax_flash", " T=1024 ");
    const struct attn_kernel *kn = attn_kernel_lookup("softmax_flash");
    assert_true(la_cell_flops(c) == 2 * attn_nominal_flops(kn, 1024, 32, 32, 0));
    /* Linear with a map: the kernel at dk = m, plus the map's nominal flops (featuremap.h) for
     * the T queries and T keys: prf at d = m = 32 is 2·d·m + 2·d + 5·m = 2272 per row. */
    c = find_cell(e, "map=prf", " T=1024 ");
    kn = attn_kernel_lookup("linear_noncausal");
    assert_true(la_cell_flops(c) ==
                2 * (attn_nominal_flops(kn, 1024, 32, 32, 0) + 2.0 * 1024 * 2272));
    /* Bytes at least cover the kernel's traffic (its byte model: φ(Q), φ(K), V, Y in fp32),
     * the map's input Q, K and its W (m·d floats). */
    assert_true(la_cell_bytes(c) >= 2 * 4.0 * 1024 * 32 * 4);
    assert_true(la_cell_bytes(c) >= 2 * (attn_nominal_bytes(kn, 1024, 32, 32, 0) +
                                         2 * 1024 * 32 * sizeof(float)) +
                                        32 * 32 * sizeof(float));

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    la_experiment_print_plan(e, f);
    fclose(f);
    assert_non_null(strstr(buf, "6 cells (0 dropped, 0 merged)"));
    assert_non_null(strstr(buf, e->cells[5].key));
    free(buf);
    la_experiment_free(e);

    /* dpfp's features are 2·d·ν: the estimate follows ν (featuremap_params_dim), not d alone. */
    e = load_ok("sweep: {kernel: linear, map: dpfp, nu: [1, 3], T: 512, d: 16}\n");
    assert_int_equal(e->ncells, 2);
    assert_int_equal(e->cells[0].nu + e->cells[1].nu, 4);
    kn = attn_kernel_lookup("linear_noncausal");
    struct la_error ferr;
    const struct featuremap_type *dp = featuremap_lookup("dpfp", &ferr);
    for (size_t i = 0; i < e->ncells; i++) {
        c = &e->cells[i];
        const int m = 2 * 16 * c->nu;
        assert_true(la_cell_flops(c) == attn_nominal_flops(kn, 512, m, 16, 0) +
                                            2.0 * featuremap_nominal_flops(dp, 512, 16, m));
    }
    la_experiment_free(e);

    /* The kernel runs on the features the map will give (its nominal_dim): rff's m = d = 8
     * draws give 16 features and d·m + 2·d + 2·m = 176 flops per row; taylor2 at d = 8 gives
     * 1 + 8 + 36 = 45 features for d(d+5)/2 = 52 flops per row. */
    e = load_ok("sweep:\n  kernel: linear\n  map: [rff, taylor2]\n  T: 256\n  d: 8\n"
                "  batch: 1\n  heads: 1\n");
    assert_int_equal(e->ncells, 2);
    kn = attn_kernel_lookup("linear_noncausal");
    c = find_cell(e, "map=rff", NULL);
    assert_non_null(c);
    assert_true(la_cell_flops(c) == attn_nominal_flops(kn, 256, 16, 8, 0) + 2.0 * 256 * 176);
    c = find_cell(e, "map=taylor2", NULL);
    assert_non_null(c);
    assert_true(la_cell_flops(c) == attn_nominal_flops(kn, 256, 45, 8, 0) + 2.0 * 256 * 52);
    la_experiment_free(e);
}

static void test_load_file(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/my experiment.v2.yaml", g_dir);
    const char *text = "# a comment kept verbatim\nsweep: {T: [64, 128]}\n";
    write_file(path, text);
    struct la_experiment *e = NULL;
    struct la_error err;
    la_error_clear(&err);
    assert_int_equal(la_experiment_load(path, &e, &err), LA_OK);
    assert_string_equal(e->name, "my_experiment.v2"); /* the stem, made file-name safe */
    assert_string_equal(e->path, path);
    assert_string_equal(e->text, text);
    assert_int_equal(e->text_len, strlen(text));
    assert_string_equal(e->output, "results/my_experiment.v2.h5");
    assert_int_equal(e->ncells, 2);
    la_experiment_free(e);

    /* Errors name the file. */
    snprintf(path, sizeof path, "%s/bad.yaml", g_dir);
    write_file(path, "sweep:\n  T: [64, 0]\n");
    assert_int_equal(la_experiment_load(path, &e, &err), LA_EINVAL);
    assert_null(e);
    char want[600];
    snprintf(want, sizeof want, "%s:2:11: 'T' must be in 1..16777216, got 0", path);
    assert_string_equal(err.msg, want);

    snprintf(path, sizeof path, "%s/missing.yaml", g_dir);
    assert_int_equal(la_experiment_load(path, &e, &err), LA_EIO);
    assert_null(e);
    assert_non_null(strstr(err.msg, "missing.yaml: cannot read the experiment file"));
    assert_int_equal(la_experiment_load(g_dir, &e, &err), LA_EIO);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

/* The shipped example must load (it is also the fuzzer's seed). */
static void test_shipped_examples(void **state)
{
    (void)state;
    struct la_experiment *e = NULL;
    struct la_error err;
    la_error_clear(&err);
    if (access("experiments/example.yaml", R_OK) != 0)
        skip();
    if (la_experiment_load("experiments/example.yaml", &e, &err) != LA_OK)
        fail_msg("%s", err.msg);
    assert_true(e->ncells > 0);
    la_experiment_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_top_level_settings),
        cmocka_unit_test(test_yaml_syntax_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_weights_axis),
        cmocka_unit_test(test_h5_data),
        cmocka_unit_test(test_output),
        cmocka_unit_test(test_grid_ranges),
        cmocka_unit_test(test_grid_product),
        cmocka_unit_test(test_collapse_and_merge),
        cmocka_unit_test(test_maps_section),
        cmocka_unit_test(test_incompatible_dropped),
        cmocka_unit_test(test_exclude_only),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_run_order_and_estimates),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_shipped_examples),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_cell_context),
        cmocka_unit_test(test_resume_decision),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
