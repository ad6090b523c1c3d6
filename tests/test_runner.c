/* test_runner.c — the runner and its helpers: error metrics on known inputs, data sources
 * (determinism, HDF5 selection and errors), one cell of every kernel through la_run_cell,
 * determinism of whole rows, training passes (train.c: backward and forward+backward cells, the
 * row-sampled gradient references), failed rows for bad inputs, and the progress ETA.
 * Run: make build/tests/test_runner && build/tests/test_runner  (a few seconds).
 */
#include "testutil.h"

#include <unistd.h>

#include <hdf5.h>

#include "../featuremaps/featuremap.h"
#include "../harness/core/sysinfo.h"
#include "../harness/core/timing.h"
#include "../harness/core/util.h"
#include "../harness/engine/data.h"
#include "../harness/engine/metrics.h"
#include "../harness/engine/progress.h"
#include "../harness/engine/runner.h"
#include "../harness/engine/train.h"
#include "../harness/experiment/cell.h"
#include "../kernels/attention.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void base_cell(struct la_cell *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->key, sizeof c->key, "test");
    snprintf(c->kernel, sizeof c->kernel, "linear_noncausal");
    snprintf(c->map, sizeof c->map, "elu1");
    c->draw = FM_DRAW_IID;
    c->relu_eps = 1e-3;
    c->eps = 1e-6;
    c->T = 96;
    c->d = 16;
    c->dv = 16;
    c->batch = 1;
    c->heads = 2;
    c->threads = 1;
    c->source = LA_DATA_GAUSSIAN;
    c->sigma = 0.8125;
    c->norm = 4.0;
    c->layer = 0;
    c->head = -1;
    c->seed = 0x5eed1234abcdull;
    c->measure_time = 1;
    c->measure_error = 1;
    c->time_budget_s = 0.002;
    c->min_repeats = 2;
    c->warmup = 1;
    c->max_ref_rows = 64;
    c->kl_rows = 16;
    c->kernel_pairs = 128;
}

static void set_kernel(struct la_cell *c, const char *kernel, const char *map, int causal)
{
    snprintf(c->kernel, sizeof c->kernel, "%s", kernel);
    snprintf(c->map, sizeof c->map, "%s", map);
    c->causal = causal;
}

/* The measured columns of two rows are bit-identical (timing, rss and host excluded). */
static void assert_same_errors(const struct la_row *a, const struct la_row *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->err_rows, b->err_rows);
    assert_int_equal(a->kl_rows, b->kl_rows);
    assert_int_equal(a->kernel_pairs, b->kernel_pairs);
    assert_int_equal(a->n_small_den, b->n_small_den);
    assert_memory_equal(&a->err_rel_fro, &b->err_rel_fro, sizeof(double));
    assert_memory_equal(&a->err_max_abs, &b->err_max_abs, sizeof(double));
    assert_memory_equal(&a->cos_mean, &b->cos_mean, sizeof(double));
    assert_memory_equal(&a->kl_mean, &b->kl_mean, sizeof(double));
    assert_memory_equal(&a->kl_nonpos_frac, &b->kl_nonpos_frac, sizeof(double));
    assert_memory_equal(&a->kernel_mse, &b->kernel_mse, sizeof(double));
    assert_memory_equal(&a->err_impl, &b->err_impl, sizeof(double));
    assert_memory_equal(&a->entropy_mean, &b->entropy_mean, sizeof(double));
    /* The messages agree except for a timing note ("noisy timing: ..."), which depends on the
     * machine's load, not on the cell. */
    char ma[LA_MSG_LEN], mb[LA_MSG_LEN];
    snprintf(ma, sizeof ma, "%s", a->message);
    snprintf(mb, sizeof mb, "%s", b->message);
    char *na = strstr(ma, "noisy timing"), *nb = strstr(mb, "noisy timing");
    if (na)
        *na = '\0';
    if (nb)
        *nb = '\0';
    for (size_t l; (l = strlen(ma)) > 0 && (ma[l - 1] == ' ' || ma[l - 1] == ';');)
        ma[l - 1] = '\0';
    for (size_t l; (l = strlen(mb)) > 0 && (mb[l - 1] == ' ' || mb[l - 1] == ';');)
        mb[l - 1] = '\0';
    assert_string_equal(ma, mb);
}

/* Writes a small HDF5 file with /Q /K /V of the given rank-4/3/2 shape, values from seed. */
static void write_h5(const char *path, int rank, const hsize_t *dims, uint64_t seed, int with_nan)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    static const char *const names[3] = {"Q", "K", "V"};
    for (int t = 0; t < 3; t++) {
        tu_fill(x, n, 1.375f, seed + (uint64_t)t);
        if (with_nan && t == 1)
            x[n / 2] = NAN;
        hid_t sp = H5Screate_simple(rank, dims, NULL);
        hid_t ds =
            H5Dcreate2(f, names[t], H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        assert_true(ds >= 0);
        assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        H5Dclose(ds);
        H5Sclose(sp);
    }
    free(x);
    H5Fclose(f);
}

static void tmp_path(char *buf, size_t cap, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/la_test_runner_%ld_%s", dir && *dir ? dir : "/tmp", (long)getpid(),
             name);
}

/* ---- metrics ---------------------------------------------------------------------------- */

static void test_metrics_known(void **state)
{
    (void)state;
    const float y[4] = {1.0f, 2.0f, -0.5f, 0.25f};
    const double r[4] = {1.0, 2.5, -0.5, 0.75};
    /* ‖y−r‖² = 0.25 + 0.25 = 0.5; ‖r‖² = 1 + 6.25 + 0.25 + 0.5625 = 8.0625 */
    assert_float_equal(la_rel_fro(y, r, 4), sqrt(0.5 / 8.0625), 1e-15);
    assert_float_equal(la_max_abs(y, r, 4), 0.5, 0.0);
    const double zero[2] = {0.0, 0.0};
    const float fz[2] = {0.0f, 0.0f};
    assert_float_equal(la_rel_fro(fz, zero, 2), 0.0, 0.0);
    assert_true(isinf(la_rel_fro(y, zero, 2)));

    const float a[2] = {3.0f, 4.0f};
    const double b[2] = {-4.0, 3.0}, c[2] = {6.0, 8.0}, d[2] = {-3.0, -4.0};
    assert_float_equal(la_cosine(a, b, 2), 0.0, 1e-15);
    assert_float_equal(la_cosine(a, c, 2), 1.0, 1e-15);
    assert_float_equal(la_cosine(a, d, 2), -1.0, 1e-15);
    assert_float_equal(la_cosine(fz, zero, 2), 1.0, 0.0);
    assert_float_equal(la_cosine(a, zero, 2), 0.0, 0.0);

    const double p[3] = {0.5, 0.5, 0.0}, q[3] = {0.25, 0.5, 0.25};
    assert_float_equal(la_kl(p, q, 3), 0.5 * log(2.0), 1e-15);
    assert_float_equal(la_kl(p, p, 3), 0.0, 0.0);
    const double q0[3] = {1.0, 0.0, 0.0};
    assert_true(isinf(la_kl(p, q0, 3)));
    const double u[4] = {0.25, 0.25, 0.25, 0.25};
    assert_float_equal(la_entropy(u, 4), log(4.0), 1e-15);
    assert_float_equal(la_entropy(p, 3), log(2.0), 1e-15);
    assert_float_equal(la_entropy(q0, 3), 0.0, 0.0);
}

static void test_metrics_accumulator(void **state)
{
    (void)state;
    float y[6 * 5];
    double r[6 * 5];
    tu_fill(y, 30, 2.25f, 11);
    float tmp[30];
    tu_fill(tmp, 30, 2.25f, 12);
    tu_to_double(tmp, r, 30);
    struct la_err_acc acc;
    la_err_acc_init(&acc);
    assert_true(isnan(la_err_acc_rel_fro(&acc)));
    la_err_acc_add(&acc, y, r, 2, 5);
    la_err_acc_add(&acc, y + 10, r + 10, 4, 5);
    assert_int_equal(acc.rows, 6);
    assert_float_equal(la_err_acc_rel_fro(&acc), la_rel_fro(y, r, 30), 1e-14);
    assert_float_equal(acc.max_abs, la_max_abs(y, r, 30), 0.0);
    double cs = 0.0;
    for (int i = 0; i < 6; i++)
        cs += la_cosine(y + 5 * i, r + 5 * i, 5);
    assert_float_equal(la_err_acc_cos_mean(&acc), cs / 6.0, 1e-15);
}

/* ---- data ------------------------------------------------------------------------------- */

static void test_data_deterministic(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.heads = 3;
    for (int src = LA_DATA_GAUSSIAN; src <= LA_DATA_SPHERE; src++) {
        c.source = src;
        struct la_data_shape s;
        struct la_error err;
        assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
        assert_int_equal(s.nheads, 3);
        const size_t n = (size_t)s.nheads * s.T * s.d;
        float *x[2][3];
        for (int r = 0; r < 2; r++) {
            for (int t = 0; t < 3; t++)
                x[r][t] = malloc(n * sizeof(float));
            c.threads = r + 1; /* the thread count must not change the data */
            assert_int_equal(la_data_fill(&c, &s, x[r][0], x[r][1], x[r][2], &err), LA_OK);
        }
        for (int t = 0; t < 3; t++)
            assert_memory_equal(x[0][t], x[1][t], n * sizeof(float));
        if (src == LA_DATA_SPHERE)
            for (int i = 0; i < s.nheads * s.T; i++) {
                double ss = 0.0;
                for (int j = 0; j < s.d; j++)
                    ss += (double)x[0][0][i * s.d + j] * x[0][0][i * s.d + j];
                assert_float_equal(sqrt(ss), c.norm, 1e-5);
            }
        else {
            double ss = 0.0;
            for (size_t i = 0; i < n; i++)
                ss += (double)x[0][0][i] * x[0][0][i];
            assert_float_equal(sqrt(ss / (double)n), c.sigma, 0.05);
        }
        /* Another seed gives other data; q and k differ. */
        assert_memory_not_equal(x[0][0], x[0][1], n * sizeof(float));
        c.seed++;
        assert_int_equal(la_data_fill(&c, &s, x[1][0], x[1][1], x[1][2], &err), LA_OK);
        assert_memory_not_equal(x[0][0], x[1][0], n * sizeof(float));
        c.seed--;
        for (int r = 0; r < 2; r++)
            for (int t = 0; t < 3; t++)
                free(x[r][t]);
    }
    /* Seeds that differ only in their upper 32 bits give different streams. */
    assert_true(la_stream_seed(1, 0) != la_stream_seed(1 + (1ull << 32), 0));
    assert_true(la_stream_seed(1, 0) != la_stream_seed(1, 1));
}

static void test_data_h5(void **state)
{
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "qkv4.h5");
    const hsize_t dims[4] = {2, 3, 40, 8};
    write_h5(path, 4, dims, 77, 0);
    struct la_cell c;
    base_cell(&c);
    c.source = LA_DATA_H5;
    snprintf(c.data_path, sizeof c.data_path, "%s", path);
    c.T = 32;
    c.d = 8;
    c.layer = 1;
    c.head = 2;
    struct la_data_shape s;
    struct la_error err;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    assert_int_equal(s.nheads, 1);
    assert_int_equal(s.d, 8);
    assert_int_equal(s.dv, 8);
    float q[3 * 32 * 8], k[3 * 32 * 8], v[3 * 32 * 8];
    assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_OK);
    /* Element (l=1, h=2, t, j) of the file's Q is x[((1*3+2)*40 + t)*8 + j]. */
    float *all = malloc(2 * 3 * 40 * 8 * sizeof *all);
    tu_fill(all, 2 * 3 * 40 * 8, 1.375f, 77);
    for (int t = 0; t < 32; t++)
        assert_memory_equal(q + t * 8, all + ((1 * 3 + 2) * 40 + t) * 8, 8 * sizeof(float));
    tu_fill(all, 2 * 3 * 40 * 8, 1.375f, 79);
    assert_memory_equal(v, all + (1 * 3 + 2) * 40 * 8, 8 * sizeof(float));

    /* head = -1: all three heads of the layer, each its first T positions. */
    c.head = -1;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    assert_int_equal(s.nheads, 3);
    assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_OK);
    tu_fill(all, 2 * 3 * 40 * 8, 1.375f, 78);
    for (int h = 0; h < 3; h++)
        assert_memory_equal(k + h * 32 * 8, all + (1 * 3 + h) * 40 * 8, 32 * 8 * sizeof(float));

    /* Errors name the file and the dataset. */
    c.T = 41;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_EINVAL);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "/Q"));
    assert_non_null(strstr(err.msg, "40"));
    c.T = 32;
    c.layer = 2;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_EINVAL);
    c.layer = 0;
    c.head = 3;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_EINVAL);
    char missing[600];
    snprintf(missing, sizeof missing, "%s.missing", path);
    snprintf(c.data_path, sizeof c.data_path, "%.500s", missing);
    assert_int_equal(la_data_shape(&c, &s, &err), LA_EIO);
    assert_non_null(strstr(err.msg, ".missing"));

    /* Rank 2 (T, d) and rank 3 (H, T, d) datasets. */
    const hsize_t d2[2] = {50, 4}, d3[3] = {2, 50, 4};
    write_h5(path, 2, d2, 5, 0);
    snprintf(c.data_path, sizeof c.data_path, "%s", path);
    c.head = -1;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    assert_int_equal(s.nheads, 1);
    assert_int_equal(s.d, 4);
    write_h5(path, 3, d3, 5, 0);
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    assert_int_equal(s.nheads, 2);
    /* NaN in the file is a format error. */
    write_h5(path, 3, d3, 5, 1);
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_EFORMAT);
    assert_non_null(strstr(err.msg, "/K"));
    free(all);
    unlink(path);
}

/* ---- the runner ------------------------------------------------------------------------- */

static void run_ok(struct la_runner_ws *ws, const struct la_cell *c, struct la_row *row)
{
    struct la_error err;
    const int st = la_run_cell(ws, c, row, &err);
    if (st != LA_OK)
        fail_msg("%s/%s causal=%d: %s", c->kernel, c->map, c->causal, row->message);
    assert_int_equal(row->status, LA_ROW_OK);
}

/* Adds dataset `name` of the given shape to an existing file, every value from fill(i). */
static void add_gate_ds(const char *path, const char *name, int rank, const hsize_t *dims,
                        float (*fill)(size_t i))
{
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    size_t n = 1;
    for (int i = 0; i < rank; i++)
        n *= dims[i];
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = fill(i);
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
    free(x);
    H5Fclose(f);
}

static float gate_quarter(size_t i)
{
    (void)i;
    return 0.25f;
}

/* A spread of gates in [0.55, 0.95]; varies along every axis. */
static float gate_spread(size_t i)
{
    return 0.55f + 0.4f * (float)((i * 2654435761u) % 1000u) / 1000.0f;
}

static float gate_bad(size_t i)
{
    return i == 7 ? 1.5f : 0.5f;
}

/* `beta: data` and `alpha: data`: per-token gates from the h5 file's /beta (L, H, T) and
 * /alpha (L, H, T, m), for forward and decode cells; a file whose β are all 0.25 gives the same
 * rows as the constant 0.25, varying gates run against the reference with the same gates
 * (err_impl), and a missing dataset, a wrong shape or a gate out of range fail the row. */
static void test_data_gates(void **state)
{
    (void)state;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    assert_non_null(ws);
    char path[512];
    tmp_path(path, sizeof path, "gates.h5");
    const hsize_t dims[4] = {2, 3, 40, 8}, bd[3] = {2, 3, 40}, ad[4] = {2, 3, 40, 8};
    write_h5(path, 4, dims, 31, 0);
    add_gate_ds(path, "beta", 3, bd, gate_quarter);
    add_gate_ds(path, "alpha", 4, ad, gate_spread);
    struct la_cell c;
    struct la_row a, b;
    struct la_error err;
    static const char *const delta[] = {"linear_delta_recurrent", "linear_delta_chunked",
                                        "linear_delta_step"};
    for (size_t i = 0; i < 3; i++) {
        base_cell(&c);
        set_kernel(&c, delta[i], "elu1", 1);
        c.source = LA_DATA_H5;
        snprintf(c.data_path, sizeof c.data_path, "%s", path);
        c.layer = 1;
        c.T = 33;
        c.d = c.dv = 8;
        c.heads = 1;
        c.measure_time = 0;
        c.recur_norm = ATTN_RN_SUM;
        c.beta = 0.25;
        run_ok(ws, &c, &a);
        c.beta = 0.0;
        c.beta_data = 1;
        run_ok(ws, &c, &b);
        assert_same_errors(&a, &b);
        assert_true(b.err_impl < 1e-5);
    }
    static const char *const gated[] = {"linear_gated_recurrent", "linear_gated_chunked",
                                        "linear_gated_step"};
    for (size_t i = 0; i < 3; i++) {
        base_cell(&c);
        set_kernel(&c, gated[i], "elu1", 1);
        c.source = LA_DATA_H5;
        snprintf(c.data_path, sizeof c.data_path, "%s", path);
        c.layer = 0;
        c.head = i == 2 ? 1 : -1;
        c.T = 40;
        c.d = c.dv = 8;
        c.heads = 1;
        c.measure_time = 0;
        c.alpha = 0.75;
        run_ok(ws, &c, &a);
        c.alpha_data = 1;
        run_ok(ws, &c, &b);
        assert_true(b.err_impl < 1e-5);
        assert_true(a.err_rel_fro != b.err_rel_fro); /* the gates differ from 0.75 */
    }
    /* A map whose m is not /alpha's last dimension (dpfp: m = 2d). */
    set_kernel(&c, "linear_gated_recurrent", "dpfp", 1);
    c.head = -1;
    c.nu = 1;
    assert_int_equal(la_run_cell(ws, &c, &b, &err), LA_EFORMAT);
    assert_int_equal(b.status, LA_ROW_FAILED);
    assert_non_null(strstr(b.message, "/alpha"));
    assert_non_null(strstr(b.message, "m = 16"));
    /* A gate out of (0, 1]. */
    tmp_path(path, sizeof path, "gates_bad.h5");
    write_h5(path, 4, dims, 31, 0);
    add_gate_ds(path, "beta", 3, bd, gate_bad);
    base_cell(&c);
    set_kernel(&c, "linear_delta_recurrent", "elu1", 1);
    c.source = LA_DATA_H5;
    snprintf(c.data_path, sizeof c.data_path, "%s", path);
    c.T = 40;
    c.d = c.dv = 8;
    c.heads = 1;
    c.beta_data = 1;
    assert_int_equal(la_run_cell(ws, &c, &b, &err), LA_EFORMAT);
    assert_non_null(strstr(b.message, "1.5"));
    /* A missing dataset, and a /beta of the wrong shape. */
    c.alpha_data = 1;
    set_kernel(&c, "linear_gated_recurrent", "elu1", 1);
    assert_int_equal(la_run_cell(ws, &c, &b, &err), LA_EFORMAT);
    assert_non_null(strstr(b.message, "no dataset /alpha"));
    unlink(path);
    write_h5(path, 4, dims, 31, 0);
    add_gate_ds(path, "beta", 4, ad, gate_quarter);
    set_kernel(&c, "linear_delta_recurrent", "elu1", 1);
    assert_int_equal(la_run_cell(ws, &c, &b, &err), LA_EFORMAT);
    assert_non_null(strstr(b.message, "one gate per token"));
    unlink(path);
    /* Not an h5 source. */
    base_cell(&c);
    set_kernel(&c, "linear_delta_recurrent", "elu1", 1);
    c.beta_data = 1;
    assert_int_equal(la_run_cell(ws, &c, &b, &err), LA_EINVAL);
    assert_non_null(strstr(b.message, "need data source h5"));
    tmp_path(path, sizeof path, "gates.h5");
    unlink(path);
    la_runner_ws_free(ws);
}

static void test_every_kernel(void **state)
{
    (void)state;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    assert_non_null(ws);
    struct la_cell c;
    base_cell(&c);
    for (size_t i = 0; attn_kernels[i].name; i++) {
        const struct attn_kernel *kn = &attn_kernels[i];
        for (int causal = 0; causal <= 1; causal++) {
            if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            const int features = kn->input == ATTN_IN_FEATURES;
            set_kernel(&c, kn->name, features ? "elu1" : "none", causal);
            /* The recurrences' gates; the delta rule on elu1's features (‖k‖² > 2) is stable
             * with sum-normalised keys only. */
            const int rec = kn->update != ATTN_UPD_SUM;
            c.beta = 0.75, c.gamma = 0.96875, c.alpha = 0.9375;
            c.recur_norm = kn->update == ATTN_UPD_DELTA ? ATTN_RN_SUM : ATTN_RN_RULE;
            struct la_row row;
            if (kn->op != ATTN_OP_FORWARD && kn->op != ATTN_OP_STEP) {
                /* cells time forward passes and decode steps: others refused, by name */
                struct la_error err;
                assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_EINVAL);
                assert_non_null(strstr(err.msg, "cells run forward and step kernels"));
                assert_non_null(strstr(err.msg, kn->name));
                continue;
            }
            const int step = kn->op == ATTN_OP_STEP;
            run_ok(ws, &c, &row);
            assert_int_equal(row.T, c.T);
            assert_int_equal(row.heads, 2);
            /* A decode cell measures the last row of each sequence. */
            assert_int_equal(row.err_rows, step ? 1 : 64);
            assert_true(row.bytes > 0.0);
            if (step)
                assert_float_equal(row.state_bytes,
                                   2.0 * sizeof(float) *
                                       (double)attn_state_floats(kn, c.T, c.d, c.dv),
                                   0.0);
            else
                assert_float_equal(row.state_bytes, 0.0, 0.0);
            assert_true(row.repeats >= 2);
            assert_true(row.time_median_s > 0.0 && row.gflops > 0.0);
            assert_true(row.workspace_bytes >= 0.0);
            assert_true(row.peak_rss_bytes > 0.0);
            assert_true(row.err_rel_fro >= 0.0 && isfinite(row.err_rel_fro));
            assert_true(row.cos_mean > 0.0 && row.cos_mean <= 1.0 + 1e-12);
            assert_true(row.entropy_mean > 0.0 && row.entropy_mean <= log((double)c.T) + 1e-9);
            if (step) /* the entropy of the last row's attention over all T keys */
                assert_true(row.entropy_mean > 0.5 * log((double)c.T));
            assert_true(row.err_impl < 2e-5);
            if (!features) {
                assert_int_equal(row.m, 0);
                assert_true(isnan(row.kl_mean));
                assert_true(isnan(row.kernel_mse));
                assert_float_equal(row.fm_time_median_s, 0.0, 0.0);
                assert_true(row.err_rel_fro < 2e-5);
            } else {
                assert_int_equal(row.m, c.d);
                /* A recurrence's weights over the keys are not the map's: no KL. */
                if (rec)
                    assert_true(isnan(row.kl_mean));
                else
                    assert_true(row.kl_mean > 0.0 && isfinite(row.kl_mean));
                assert_true(isfinite(row.kernel_mse));
                assert_int_equal(row.kernel_pairs, 128);
                /* elu1 is applied inside a kernel that can fuse it: one time for both. */
                if (kn->fuses_map) {
                    assert_true(isnan(row.fm_time_median_s));
                    assert_non_null(strstr(row.message, "map fused into the kernel"));
                } else {
                    assert_true(row.fm_time_median_s > 0.0);
                    assert_null(strstr(row.message, "map fused"));
                }
                /* elu+1 is not softmax: a visible, bounded approximation error. */
                assert_true(row.err_rel_fro > 1e-3 && row.err_rel_fro < 2.0);
            }
            /* The chunk size is recorded exactly for the kernels that read it. */
            if (kn->uses_chunk)
                assert_true(row.chunk > 0);
            else
                assert_int_equal(row.chunk, 0);
        }
    }
    la_runner_ws_free(ws);
}

/* err_impl is the distance to attn_linear_ref on the same features, computed here directly. */
static void test_err_impl_matches_reference(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.heads = 1;
    c.T = 48;
    c.max_ref_rows = 48; /* every row */
    struct la_runner_ws *ws = la_runner_ws_alloc();
    for (int causal = 0; causal <= 1; causal++) {
        set_kernel(&c, causal ? "linear_causal_recurrent" : "linear_noncausal", "elu1", causal);
        struct la_row row;
        run_ok(ws, &c, &row);
        struct la_data_shape s;
        struct la_error err;
        assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
        const int T = s.T, d = s.d, dv = s.dv;
        float *q = malloc(sizeof(float) * T * d), *k = malloc(sizeof(float) * T * d);
        float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
        float *pq = malloc(sizeof(float) * T * d), *pk = malloc(sizeof(float) * T * d);
        double *pqd = malloc(sizeof(double) * T * d), *pkd = malloc(sizeof(double) * T * d);
        double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
        assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_OK);
        struct fm_params p;
        featuremap_params_default(&p, d);
        struct featuremap *fm = featuremap_alloc("elu1", &p, NULL, &err);
        assert_non_null(fm);
        assert_int_equal(featuremap_apply(fm, FM_QUERY, q, (size_t)T, pq, NULL), LA_OK);
        assert_int_equal(featuremap_apply(fm, FM_KEY, k, (size_t)T, pk, NULL), LA_OK);
        const struct attn_kernel *kn = attn_kernel_lookup(c.kernel);
        const size_t ws_f = attn_workspace_floats(kn, T, d, dv, causal, 0, 1);
        float *work = malloc(sizeof(float) * (ws_f ? ws_f : 1));
        struct attn_args a = {.q = pq,
                              .k = pk,
                              .v = v,
                              .y = y,
                              .T = T,
                              .dk = d,
                              .dv = dv,
                              .causal = causal,
                              .eps = (float)c.eps,
                              .threads = 1,
                              .work = work};
        attn_run_heads(kn, &a, 1, 1, work, ws_f);
        tu_to_double(pq, pqd, (size_t)T * d);
        tu_to_double(pk, pkd, (size_t)T * d);
        tu_to_double(v, vd, (size_t)T * dv);
        attn_linear_ref(pqd, pkd, vd, yd, T, d, dv, causal, c.eps);
        assert_float_equal(row.err_impl, la_rel_fro(y, yd, (size_t)T * dv),
                           1e-12 * row.err_impl + 1e-300);
        featuremap_free(fm);
        free(q), free(k), free(v), free(y), free(pq), free(pk), free(pqd), free(pkd), free(vd);
        free(yd), free(work);
    }
    la_runner_ws_free(ws);
}

/* A decode cell (a step kernel): the states filled with tokens 0..T−2, one step of token T−1
 * for B sequences per head; its errors are those of row T−1 of each sequence, here computed
 * from the causal forward kernel on the same features against the softmax reference.  Timed
 * repeats append the token again, which leaves the measured errors as they are. */
static void test_decode_cell(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.T = 80;
    c.batch = 2;
    c.heads = 2; /* 4 sequences: every one is an error head */
    set_kernel(&c, "linear_step", "elu1", 1);
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_row row, again;
    run_ok(ws, &c, &row);
    const struct attn_kernel *kn = attn_kernel_lookup("linear_step");
    const int T = c.T, d = c.d, dv = c.dv, nh = c.batch * c.heads;
    assert_int_equal(row.err_rows, 1);
    assert_int_equal(row.kl_rows, 1);
    assert_float_equal(row.state_bytes, (double)nh * sizeof(float) * (d * dv + d), 0.0);
    assert_float_equal(row.flops, c.heads * attn_nominal_flops_at(kn, c.batch, T - 1, d, dv, 1),
                       0.0);
    assert_float_equal(row.bytes, c.heads * attn_nominal_bytes_at(kn, c.batch, T - 1, d, dv, 1),
                       0.0);
    assert_true(row.repeats >= 2 && row.time_median_s > 0.0);
    assert_true(row.fm_time_median_s > 0.0);
    assert_true(row.err_impl < 2e-5);

    /* The expected errors: row T−1 of the causal forward kernel per sequence. */
    struct la_data_shape s;
    struct la_error err;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    float *q = malloc(sizeof(float) * nh * T * d), *k = malloc(sizeof(float) * nh * T * d);
    float *v = malloc(sizeof(float) * nh * T * dv), *y = malloc(sizeof(float) * T * dv);
    float *pq = malloc(sizeof(float) * T * d), *pk = malloc(sizeof(float) * T * d);
    double *qd = malloc(sizeof(double) * T * d), *kd = malloc(sizeof(double) * T * d);
    double *vd = malloc(sizeof(double) * T * dv), *yref = malloc(sizeof(double) * dv);
    double *scores = malloc(sizeof(double) * T);
    assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_OK);
    struct fm_params p;
    featuremap_params_default(&p, d);
    struct featuremap *fm = featuremap_alloc("elu1", &p, NULL, &err);
    assert_non_null(fm);
    const struct attn_kernel *fw = attn_kernel_lookup("linear_causal_recurrent");
    const size_t ws_f = attn_workspace_floats(fw, T, d, dv, 1, 0, 1);
    float *work = malloc(sizeof(float) * (ws_f ? ws_f : 1));
    double num = 0.0, den = 0.0;
    for (int h = 0; h < nh; h++) {
        const size_t xs = (size_t)T * d, vs = (size_t)T * dv;
        assert_int_equal(featuremap_apply(fm, FM_QUERY, q + h * xs, (size_t)T, pq, NULL), LA_OK);
        assert_int_equal(featuremap_apply(fm, FM_KEY, k + h * xs, (size_t)T, pk, NULL), LA_OK);
        struct attn_args a = {.q = pq, .k = pk, .v = v + h * vs, .y = y, .T = T, .dk = d,
                              .dv = dv, .causal = 1, .eps = (float)c.eps, .threads = 1,
                              .work = work};
        attn_run_heads(fw, &a, 1, 1, work, ws_f);
        tu_to_double(q + h * xs, qd, xs);
        tu_to_double(k + h * xs, kd, xs);
        tu_to_double(v + h * vs, vd, vs);
        const int last = T - 1;
        attn_softmax_ref_rows(qd, kd, vd, yref, T, d, dv, 1, &last, 1, scores);
        for (int j = 0; j < dv; j++) {
            const double e = (double)y[(size_t)last * dv + j] - yref[j];
            num += e * e;
            den += yref[j] * yref[j];
        }
    }
    const double expect = sqrt(num / den);
    assert_true(expect > 1e-3); /* elu+1 is not softmax */
    assert_float_equal(row.err_rel_fro, expect, 1e-4 * expect);

    /* More timed repeats (each appends the token once more) leave the errors as they are. */
    c.time_budget_s = 0.02;
    c.min_repeats = 20;
    run_ok(ws, &c, &again);
    assert_same_errors(&row, &again);

    /* A step kernel runs causal only; a prefill kernel is not a cell. */
    c.causal = 0;
    assert_int_equal(la_run_cell(ws, &c, &again, &err), LA_EINVAL);
    set_kernel(&c, "linear_prefill", "elu1", 1);
    assert_int_equal(la_run_cell(ws, &c, &again, &err), LA_EINVAL);
    assert_non_null(strstr(err.msg, "linear_prefill is a prefill kernel"));
    featuremap_free(fm);
    free(q), free(k), free(v), free(y), free(pq), free(pk), free(qd), free(kd), free(vd);
    free(yref), free(scores), free(work);
    la_runner_ws_free(ws);
}

/* A recurrence's step kernel runs as a decode cell whose states its own rule's prefill fills:
 * its step output at row T−1 agrees with the rule's double reference (err_impl), and a sum
 * rule's prefill in its place would not (the decay and gate change every state). */
static void test_decode_cell_recurrences(void **state)
{
    (void)state;
    static const char *const steps[] = {"linear_decay_step", "linear_gated_step",
                                        "linear_delta_step"};
    struct la_runner_ws *ws = la_runner_ws_alloc();
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct la_cell c;
        base_cell(&c);
        c.T = 70;
        c.batch = 2;
        c.heads = 1;
        set_kernel(&c, steps[i], "elu1", 1);
        c.gamma = 0.9;
        c.alpha = 0.9;
        c.beta = 0.5;
        c.recur_norm = ATTN_RN_SUM; /* the delta rule stays bounded */
        struct la_row row;
        run_ok(ws, &c, &row);
        if (row.err_impl >= 2e-5)
            fail_msg("%s: err_impl %g", steps[i], row.err_impl);
        assert_int_equal(row.err_rows, 1);
    }
    la_runner_ws_free(ws);
}

/* The decode figures' generation time, Σ_{t=P+1}^{P+N} step(t) with step(t) interpolated
 * linearly in t between decode cells (harness/figures/decode.c), against a generation measured
 * directly: softmax_step called N times in a row on caches prefilled with P tokens, positions
 * P .. P+N−1, each step timed where it runs.  Both sides take the fastest of their repeats (20
 * generations here, each rewriting the same slots; the cells' time_min_s): a step of ~0.1 ms is
 * often missed by the other processes of a shared machine, a loop of N steps seldom is, and
 * under a sanitizer a step takes over a millisecond.  Only a gross disagreement fails: the
 * numbers are printed. */
static void test_decode_generation_direct(void **state)
{
    (void)state;
    enum { P = 1024, N = 64, B = 16, D = 64 };
    const struct attn_kernel *st = attn_kernel_lookup("softmax_step");
    const struct attn_kernel *pf = attn_kernel_lookup("softmax_prefill");
    assert_non_null(st);
    assert_non_null(pf);
    struct la_cell c;
    base_cell(&c);
    set_kernel(&c, "softmax_step", "none", 1);
    c.T = P + N;
    c.d = c.dv = D;
    c.batch = B;
    c.heads = 1;
    c.measure_error = 0;
    c.time_budget_s = 0.05;
    c.min_repeats = 5;
    struct la_data_shape s;
    struct la_error err;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    const size_t T = (size_t)c.T, xs = T * D;
    float *q = malloc(sizeof(float) * B * xs), *k = malloc(sizeof(float) * B * xs);
    float *v = malloc(sizeof(float) * B * xs), *y = malloc(sizeof(float) * xs);
    float *gq = malloc(sizeof(float) * N * B * D), *gk = malloc(sizeof(float) * N * B * D);
    float *gv = malloc(sizeof(float) * N * B * D), *gy = malloc(sizeof(float) * B * D);
    const size_t sf = attn_state_floats(st, c.T, D, D);
    float *cache = calloc((size_t)B * sf, sizeof(float));
    const size_t wp = attn_workspace_floats(pf, P, D, D, 1, 0, 1);
    const size_t ws = attn_workspace_floats(st, B, D, D, 1, 0, 1);
    float *work = malloc(sizeof(float) * (wp > ws ? wp : ws));
    assert_true(q && k && v && y && gq && gk && gv && gy && cache && work);
    assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_OK);
    for (int b = 0; b < B; b++) {
        struct attn_args a = {.q = q + b * xs, .k = k + b * xs, .v = v + b * xs, .y = y, .T = P,
                              .dk = D, .dv = D, .causal = 1, .threads = 1, .work = work,
                              .state = cache + b * sf, .pos = 0, .cap = c.T};
        attn_run_heads(pf, &a, 1, 1, work, wp);
    }
    for (int i = 0; i < N; i++)
        for (int b = 0; b < B; b++) {
            const size_t from = b * xs + (size_t)(P + i) * D, to = ((size_t)i * B + b) * D;
            memcpy(gq + to, q + from, D * sizeof(float));
            memcpy(gk + to, k + from, D * sizeof(float));
            memcpy(gv + to, v + from, D * sizeof(float));
        }
    double best[N];
    for (int i = 0; i < N; i++)
        best[i] = INFINITY;
    for (int r = 0; r < 20; r++)
        for (int i = 0; i < N; i++) {
            struct attn_args a = {.q = gq + (size_t)i * B * D, .k = gk + (size_t)i * B * D,
                                  .v = gv + (size_t)i * B * D, .y = gy, .T = B, .dk = D,
                                  .dv = D, .causal = 1, .threads = 1, .work = work,
                                  .state = cache, .pos = P + i, .cap = c.T};
            const double t0 = la_now();
            attn_run_heads(st, &a, 1, 1, work, ws);
            const double t = la_now() - t0;
            best[i] = t < best[i] ? t : best[i];
        }
    double direct = 0.0;
    for (int i = 0; i < N; i++)
        direct += best[i];
    /* The decode cells at the ends of the range: step(P+1) and step(P+N). */
    struct la_runner_ws *rws = la_runner_ws_alloc();
    struct la_row r1, r2;
    c.T = P + 1;
    run_ok(rws, &c, &r1);
    c.T = P + N;
    run_ok(rws, &c, &r2);
    const double integrated = N * 0.5 * (r1.time_min_s + r2.time_min_s);
    print_message("generation of N=%d after P=%d, B=%d, d=%d: measured %.4g s, integrated from "
                  "the decode cells %.4g s (ratio %.3f)\n",
                  N, P, B, D, direct, integrated, direct / integrated);
    assert_true(direct > integrated / 3.0 && direct < integrated * 3.0);
    la_runner_ws_free(rws);
    free(q), free(k), free(v), free(y), free(gq), free(gk), free(gv), free(gy), free(cache);
    free(work);
}

static void test_determinism(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.heads = 4;
    c.T = 80;
    c.max_ref_rows = 24; /* a sample, so the sampling must be deterministic too */
    c.causal = 1;
    set_kernel(&c, "linear_causal_chunked", "prf", 1);
    c.m = 32;
    struct la_runner_ws *ws = la_runner_ws_alloc(), *ws2 = la_runner_ws_alloc();
    struct la_row a, b, t2;
    run_ok(ws, &c, &a);
    run_ok(ws, &c, &b);
    assert_same_errors(&a, &b);
    assert_int_equal(a.err_rows, 24);
    /* A fresh workspace, and two threads (one per head), give the same numbers. */
    c.threads = 2;
    run_ok(ws2, &c, &t2);
    assert_same_errors(&a, &t2);
    assert_int_equal(t2.threads, 2);
    assert_string_equal(a.draw, "iid");
    /* A different seed changes the features and the data. */
    c.seed ^= 0x9999;
    run_ok(ws, &c, &b);
    assert_true(a.kernel_mse != b.kernel_mse);
    la_runner_ws_free(ws);
    la_runner_ws_free(ws2);
}

static void test_kernel_mse_decreases_with_m(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.measure_time = 0;
    c.kernel_pairs = 512;
    c.sigma = 0.5;
    c.heads = 1;
    set_kernel(&c, "linear_noncausal", "prf", 0);
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_row small, big;
    c.m = 4;
    run_ok(ws, &c, &small);
    c.m = 1024;
    run_ok(ws, &c, &big);
    /* Performer Lemma 2: MSE ∝ 1/m, so 256× more features is far below half the error. */
    assert_true(big.kernel_mse < 0.1 * small.kernel_mse);
    assert_true(big.err_rel_fro < small.err_rel_fro);
    assert_true(isnan(big.time_median_s));
    assert_int_equal(big.repeats, 0);
    la_runner_ws_free(ws);
}

/* Rows whose linear weights are not all positive: counted in kl_nonpos_frac and left out of
 * kl_mean, which then averages only the finite KLs (no floor); positive maps have none. */
static void test_kl_nonpositive_weights(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.measure_time = 0;
    c.heads = 1;
    c.kl_rows = 64;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_row row;
    /* elu1 and prf: positive features, every row counts. */
    set_kernel(&c, "linear_noncausal", "prf", 0);
    c.m = 16;
    run_ok(ws, &c, &row);
    assert_true(row.kl_nonpos_frac == 0.0);
    assert_true(isfinite(row.kl_mean) && row.kl_mean > 0.0);
    assert_null(strstr(row.message, "KL over"));
    /* rff with 4 draws: cos features, plenty of negative weights in every row. */
    set_kernel(&c, "linear_noncausal", "rff", 0);
    c.m = 8;
    run_ok(ws, &c, &row);
    assert_true(row.kl_nonpos_frac > 0.0 && row.kl_nonpos_frac <= 1.0);
    if (row.kl_nonpos_frac < 1.0)
        assert_true(isfinite(row.kl_mean) && row.kl_mean >= 0.0);
    else
        assert_true(isnan(row.kl_mean));
    assert_non_null(strstr(row.message, "KL over"));
    /* relu with eps = 0: zero weights where φ(q) and φ(k) share no positive coordinate. */
    set_kernel(&c, "linear_causal", "relu", 1);
    c.relu_eps = 0;
    c.m = 0;
    c.d = 2;
    c.dv = 2;
    run_ok(ws, &c, &row);
    assert_true(row.kl_nonpos_frac > 0.0 && row.kl_nonpos_frac <= 1.0);
    /* softmax: nothing approximates the weights. */
    set_kernel(&c, "softmax_flash", "none", 0);
    run_ok(ws, &c, &row);
    assert_true(isnan(row.kl_nonpos_frac) && isnan(row.kl_mean));
    la_runner_ws_free(ws);
}

/* gerf with A: auto over several heads: each head's A is fitted to that head's queries and keys
 * alone (never a pooled fit that pairs queries and keys of different heads); the row keeps the
 * mean over heads and the message the range. */
static void test_fit_per_head(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.measure_time = 0;
    c.heads = 3;
    c.T = 64;
    set_kernel(&c, "linear_noncausal", "gerf", 0);
    c.m = 16;
    c.A_auto = 1;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_row row;
    run_ok(ws, &c, &row);
    assert_non_null(strstr(row.message, "A fitted per head (3 heads"));

    struct la_data_shape s;
    struct la_error err;
    assert_int_equal(la_data_shape(&c, &s, &err), LA_OK);
    const size_t xs = (size_t)s.T * s.d, vs = (size_t)s.T * s.dv;
    float *q = malloc(sizeof(float) * xs * 3), *k = malloc(sizeof(float) * xs * 3);
    float *v = malloc(sizeof(float) * vs * 3);
    assert_int_equal(la_data_fill(&c, &s, q, k, v, &err), LA_OK);
    struct fm_params p;
    featuremap_params_default(&p, s.d);
    p.m = 16;
    p.A_auto = 1;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    struct featuremap *fm = featuremap_alloc("gerf", &p, r, &err);
    assert_non_null(fm);
    double sum = 0.0, A[3];
    for (int h = 0; h < 3; h++) {
        assert_int_equal(featuremap_fit(fm, q + h * xs, (size_t)s.T, k + h * xs, (size_t)s.T, &err),
                         LA_OK);
        A[h] = featuremap_param(fm, "A");
        sum += A[h];
    }
    assert_true(A[0] != A[1] && A[1] != A[2]);
    assert_float_equal(row.A, sum / 3, 1e-12 * fabs(sum));
    /* The pooled fit (all heads' rows together) is another number. */
    assert_int_equal(featuremap_fit(fm, q, 3 * (size_t)s.T, k, 3 * (size_t)s.T, &err), LA_OK);
    assert_true(fabs(featuremap_param(fm, "A") - row.A) > 1e-9);
    featuremap_free(fm);
    gsl_rng_free(r);
    free(q), free(k), free(v);
    la_runner_ws_free(ws);
}

/* Training passes: the matching backward kernel (with the map's backward for linear kernels)
 * runs, its gradients agree with the double reference, and the row has a time, the nominal
 * flops of the timed region and the bytes the step holds. */
static void test_training_cells(void **state)
{
    (void)state;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    static const struct {
        const char *kernel, *map;
        int causal;
    } cases[] = {
        {"softmax_flash", "none", 1},          {"softmax_flash", "none", 0},
        {"linear_causal", "elu1", 1},          {"linear_noncausal", "prf", 0},
        {"linear_causal_chunked", "prf", 1},   {"linear_causal_recurrent", "relu", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct la_cell c;
        struct la_row fwd, bwd, both;
        base_cell(&c);
        set_kernel(&c, cases[i].kernel, cases[i].map, cases[i].causal);
        c.T = 150; /* not a multiple of any block; rows sampled (max_ref_rows 64) */
        c.threads = 2;
        c.dv = 12;                          /* dv != d */
        if (!strcmp(cases[i].map, "prf"))
            c.m = 40;                       /* m != d, m > dv */
        run_ok(ws, &c, &fwd);
        assert_string_equal(fwd.pass, "forward");
        assert_true(isnan(fwd.err_grad));
        assert_true(fwd.step_bytes > fwd.workspace_bytes);
        c.pass = LA_PASS_BACKWARD;
        run_ok(ws, &c, &bwd);
        c.pass = LA_PASS_FORWARD_BACKWARD;
        run_ok(ws, &c, &both);
        assert_string_equal(bwd.pass, "backward");
        assert_string_equal(both.pass, "forward+backward");
        const int linear = strcmp(cases[i].map, "none") != 0;
        for (int p = 0; p < 2; p++) {
            const struct la_row *r = p ? &both : &bwd;
            assert_true(r->err_grad < ATTN_TOL_BACKWARD);
            assert_true(r->err_grad > 0.0); /* fp32 against double: never exactly 0 */
            assert_true(r->time_median_s > 0.0);
            assert_true(r->repeats >= 2);
            assert_true(r->step_bytes > fwd.step_bytes);
            assert_true(r->flops > fwd.flops);
            assert_true(linear ? isnan(r->fm_time_median_s) : r->fm_time_median_s == 0.0 ||
                                                                  isnan(r->fm_time_median_s));
            /* The forward's errors are measured as in a forward cell. */
            assert_memory_equal(&r->err_impl, &fwd.err_impl, sizeof(double));
        }
        /* forward+backward holds Y and the forward's workspaces too, and does its flops. */
        assert_true(both.step_bytes > bwd.step_bytes);
        assert_true(both.flops > bwd.flops);
        /* The same cell gives the same gradient error (fixed draws, fixed summation order). */
        struct la_row again;
        c.pass = LA_PASS_BACKWARD;
        run_ok(ws, &c, &again);
        assert_memory_equal(&again.err_grad, &bwd.err_grad, sizeof(double));
    }
    la_runner_ws_free(ws);
}

/* The row-sampled gradient references against the full references (kernels/backward_ref.c):
 * every row listed gives the full gradients; a subset gives those of dY zero elsewhere. */
static void test_grad_ref_rows(void **state)
{
    (void)state;
    enum { T = 9, D = 3, M = 4, DV = 2 };
    double Q[T * M], K[T * M], V[T * DV], dY[T * DV], dYs[T * DV], dYm[T * DV];
    double rq[T * M], rk[T * M], rv[T * DV], fq[T * M], fk[T * M], fv[T * DV], y[T * DV];
    double scr[2 * T];
    uint64_t s = 77;
    for (int i = 0; i < T * M; i++) {
        Q[i] = 2.0 * la_splitmix64_unit(&s) - 1.0;
        K[i] = 2.0 * la_splitmix64_unit(&s) - 1.0;
    }
    for (int i = 0; i < T * DV; i++) {
        V[i] = 2.0 * la_splitmix64_unit(&s) - 1.0;
        dY[i] = 2.0 * la_splitmix64_unit(&s) - 1.0;
    }
    const int all[T] = {0, 1, 2, 3, 4, 5, 6, 7, 8}, some[3] = {0, 4, 8};
    for (int sub = 0; sub < 2; sub++) {
        const int *rows = sub ? some : all, n = sub ? 3 : T;
        memset(dYm, 0, sizeof dYm);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < DV; c++) {
                dYs[r * DV + c] = dY[rows[r] * DV + c];
                dYm[rows[r] * DV + c] = dY[rows[r] * DV + c];
            }
        for (int causal = 0; causal < 2; causal++) {
            /* softmax on raw rows of D */
            la_grad_ref_rows_softmax(Q, K, V, dYs, rows, n, T, D, DV, causal, rq, rk, rv, scr);
            attn_softmax_backward_ref(Q, K, V, dYm, y, fq, fk, fv, T, D, DV, causal, scr);
            for (int i = 0; i < T * D; i++) {
                assert_true(fabs(rq[i] - fq[i]) <= 1e-12);
                assert_true(fabs(rk[i] - fk[i]) <= 1e-12);
            }
            for (int i = 0; i < T * DV; i++)
                assert_true(fabs(rv[i] - fv[i]) <= 1e-12);
            /* linear on positive features (exp of the rows), eps and a per-row eps equal to it */
            double PQ[T * M], PK[T * M];
            float er[T];
            for (int i = 0; i < T * M; i++) {
                PQ[i] = exp(Q[i]);
                PK[i] = exp(K[i]);
            }
            for (int i = 0; i < T; i++)
                er[i] = 0.25f;
            for (int per_row = 0; per_row < 2; per_row++) {
                la_grad_ref_rows_linear(PQ, PK, V, dYs, rows, n, T, M, DV, causal, 0.25,
                                        per_row ? er : NULL, rq, rk, rv, scr);
                attn_linear_backward_ref(PQ, PK, V, dYm, y, fq, fk, fv, T, M, DV, causal, 0.25,
                                         scr);
                for (int i = 0; i < T * M; i++) {
                    assert_true(fabs(rq[i] - fq[i]) <= 1e-12);
                    assert_true(fabs(rk[i] - fk[i]) <= 1e-12);
                }
                for (int i = 0; i < T * DV; i++)
                    assert_true(fabs(rv[i] - fv[i]) <= 1e-12);
            }
        }
    }
}

static void test_failed_rows(void **state)
{
    (void)state;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_cell c;
    base_cell(&c);
    struct la_row row;
    struct la_error err;

    /* A data file that does not exist. */
    c.source = LA_DATA_H5;
    snprintf(c.data_path, sizeof c.data_path, "/nonexistent/dir/qkv.h5");
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_EIO);
    assert_int_equal(row.status, LA_ROW_FAILED);
    assert_non_null(strstr(row.message, "/nonexistent/dir/qkv.h5"));
    assert_string_equal(row.key, "test");
    assert_string_equal(row.data, "h5");

    /* A file with too few positions. */
    char path[512];
    tmp_path(path, sizeof path, "short.h5");
    const hsize_t dims[4] = {1, 2, 20, 16};
    write_h5(path, 4, dims, 9, 0);
    snprintf(c.data_path, sizeof c.data_path, "%s", path);
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_EINVAL);
    assert_int_equal(row.status, LA_ROW_FAILED);
    assert_non_null(strstr(row.message, "/Q"));
    /* The same file at a T it holds runs, all heads of the layer. */
    c.T = 20;
    run_ok(ws, &c, &row);
    assert_int_equal(row.heads, 2);
    assert_true(row.sigma > 0.5 && row.sigma < 1.0); /* uniform in ±1.375: rms 0.79 */
    unlink(path);

    /* Unknown map and kernel. */
    base_cell(&c);
    set_kernel(&c, "linear_noncausal", "nosuchmap", 0);
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_ENAME);
    assert_int_equal(row.status, LA_ROW_FAILED);
    assert_non_null(strstr(row.message, "nosuchmap"));
    set_kernel(&c, "nosuchkernel", "elu1", 0);
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_ENAME);
    /* A causal-only kernel asked for non-causal attention. */
    set_kernel(&c, "linear_causal_recurrent", "elu1", 0);
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_EINVAL);

    /* NaN inputs (sigma = NaN): a NaN output is a failed row, not a crash; both families. */
    base_cell(&c);
    set_kernel(&c, "linear_noncausal", "elu1", 0);
    c.sigma = NAN;
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_ENUMERIC);
    assert_int_equal(row.status, LA_ROW_FAILED);
    assert_non_null(strstr(row.message, "NaN"));
    set_kernel(&c, "softmax_flash", "none", 0);
    assert_int_equal(la_run_cell(ws, &c, &row, &err), LA_ENUMERIC);
    assert_int_equal(row.status, LA_ROW_FAILED);
    assert_non_null(strstr(row.message, "NaN"));

    /* The workspace still works after failures. */
    base_cell(&c);
    run_ok(ws, &c, &row);
    la_runner_ws_free(ws);
}

static void test_many_heads_note(void **state)
{
    (void)state;
    struct la_cell c;
    base_cell(&c);
    c.batch = 2;
    c.heads = 5;
    c.T = 32;
    c.measure_time = 0;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_row row;
    run_ok(ws, &c, &row);
    assert_int_equal(row.batch, 2);
    assert_int_equal(row.heads, 5);
    assert_non_null(strstr(row.message, "errors on 4 of 10 heads"));
    /* A workspace that grew for a bigger cell is reused for a smaller one. */
    const size_t held = la_runner_ws_bytes(ws);
    c.batch = 1;
    c.heads = 1;
    run_ok(ws, &c, &row);
    assert_int_equal(la_runner_ws_bytes(ws), held);
    assert_string_equal(row.message, "");
    la_runner_ws_free(ws);
}

/* ---- progress --------------------------------------------------------------------------- */

static void test_progress(void **state)
{
    (void)state;
    char b[32];
    la_format_duration(0.0, b, sizeof b);
    assert_string_equal(b, "00:00");
    la_format_duration(65.4, b, sizeof b);
    assert_string_equal(b, "01:05");
    la_format_duration(3725.0, b, sizeof b);
    assert_string_equal(b, "1:02:05");
    la_format_duration(NAN, b, sizeof b);
    assert_string_equal(b, "--:--");

    struct la_progress p;
    /* Cells of 1e9 flops take 1 + 2 s each (a = 1, b = 2e-9): the fit recovers the model. */
    la_progress_init(&p, NULL, 0, 10, 10, 10e9 + 5e9);
    assert_true(isnan(la_progress_eta(&p)));
    const double f[4] = {1e9, 2e9, 0.5e9, 1.5e9};
    for (int i = 0; i < 4; i++)
        la_progress_done(&p, f[i], 1.0 + 2e-9 * f[i]);
    /* Left: 6 cells, 15e9 − 5e9 = 10e9 flops → 6·1 + 2e-9·10e9 = 26 s. */
    assert_float_equal(la_progress_eta(&p), 26.0, 1e-6);
    /* One cell done: the larger of the count and flops extrapolations. */
    la_progress_init(&p, NULL, 0, 3, 3, 4e9);
    la_progress_done(&p, 1e9, 2.0);
    assert_float_equal(la_progress_eta(&p), 6.0, 1e-9); /* by flops: 2 s/1e9 · 3e9 */
    la_progress_start(&p, 2, NULL); /* disabled: prints nothing, touches nothing */
    la_progress_clear(&p);
}

/* la_time_rotate: the functions run in strict rotation (warm-ups included), all get the same
 * number of timed calls, at least min_repeats, and the statistics are ordered. */
struct rot_log {
    char order[64];
    int n;
};

static void rot_a(void *p)
{
    struct rot_log *l = p;
    if (l->n < 63)
        l->order[l->n++] = 'a';
}

static void rot_b(void *p)
{
    struct rot_log *l = p;
    if (l->n < 63)
        l->order[l->n++] = 'b';
}

static void rot_c(void *p)
{
    struct rot_log *l = p;
    if (l->n < 63)
        l->order[l->n++] = 'c';
}

/* Calls that log their name and start time, then spin for at least 1 ms of the clock. */
struct rot_ms_log {
    char order[64];
    double start[64];
    int n;
};

static void rot_ms(struct rot_ms_log *l, char name)
{
    const double t0 = la_now();
    if (l->n < 63)
        l->order[l->n] = name, l->start[l->n++] = t0;
    while (la_now() - t0 < 1e-3)
        ;
}

static void rot_a_ms(void *p)
{
    rot_ms(p, 'a');
}

static void rot_b_ms(void *p)
{
    rot_ms(p, 'b');
}

static void test_time_rotate(void **state)
{
    (void)state;
    struct rot_log log = {{0}, 0};
    struct la_timing t[3];
    const la_timed_fn fns[3] = {rot_a, rot_b, rot_c};
    void *const ctxs[3] = {&log, &log, &log};
    la_time_rotate(3, fns, ctxs, 2, 1, 0.0, 7, 9, 0.0, t);
    assert_int_equal(log.n, 3 * (2 + 7));
    for (int i = 0; i < log.n; i++)
        assert_int_equal(log.order[i], "abc"[i % 3]);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(t[i].repeats, 7);
        assert_true(t[i].min_s >= 0.0);
        assert_true(t[i].min_s <= t[i].p20_s && t[i].p20_s <= t[i].median_s);
        assert_true(t[i].median_s <= t[i].p80_s && t[i].p80_s <= t[i].max_s);
    }
    /* A budget past what min_repeats takes stops at max_repeats. */
    log.n = 0;
    la_time_rotate(2, fns, ctxs, 0, 1, 0.0, 1, 5, 1e9, t);
    assert_int_equal(t[0].repeats, 5);
    assert_int_equal(t[1].repeats, 5);
    assert_int_equal(log.n, 10);
    /* Blocks of 3: aaabbb per round, two timed calls of each per round. */
    log.n = 0;
    la_time_rotate(2, fns, ctxs, 0, 3, 0.0, 4, 1000, 0.0, t);
    assert_int_equal(log.n, 4 * 6);
    for (int i = 0; i < log.n; i++)
        assert_int_equal(log.order[i], "ab"[(i % 6) / 3]);
    assert_int_equal(t[0].repeats, 8);
    assert_int_equal(t[1].repeats, 8);
    /* A lead of 2.5 ms before each block's timed calls, with calls of at least 1 ms: one to
     * three untimed calls (three have spent 3 ms), the first timed call starting 2.5 ms after
     * the lead's clock started (2.4 ms after the block's first call logged its start), then
     * the second timed call. */
    struct rot_ms_log sl = {{0}, {0}, 0};
    const la_timed_fn sfns[2] = {rot_a_ms, rot_b_ms};
    void *const sctxs[2] = {&sl, &sl};
    la_time_rotate(2, sfns, sctxs, 0, 3, 0.0025, 4, 4, 0.0, t);
    assert_int_equal(t[0].repeats, 4);
    assert_int_equal(t[1].repeats, 4);
    int first = 0, blocks = 0;
    for (int i = 1; i <= sl.n; i++)
        if (i == sl.n || sl.order[i] != sl.order[i - 1]) { /* calls first .. i-1: one block */
            assert_int_equal(sl.order[first], "ab"[blocks % 2]);
            const int untimed = i - first - 2;
            assert_true(untimed >= 1 && untimed <= 3);
            assert_true(sl.start[first + untimed] - sl.start[first] >= 0.0024);
            first = i, blocks++;
        }
    assert_int_equal(blocks, 4); /* a b a b: two rounds */
}

int main(void)
{
    la_startup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_known),
        cmocka_unit_test(test_kl_nonpositive_weights),
        cmocka_unit_test(test_fit_per_head),
        cmocka_unit_test(test_metrics_accumulator),
        cmocka_unit_test(test_data_deterministic),
        cmocka_unit_test(test_data_h5),
        cmocka_unit_test(test_every_kernel),
        cmocka_unit_test(test_err_impl_matches_reference),
        cmocka_unit_test(test_decode_cell),
        cmocka_unit_test(test_decode_cell_recurrences),
        cmocka_unit_test(test_decode_generation_direct),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_kernel_mse_decreases_with_m),
        cmocka_unit_test(test_training_cells),
        cmocka_unit_test(test_grad_ref_rows),
        cmocka_unit_test(test_failed_rows),
        cmocka_unit_test(test_data_gates),
        cmocka_unit_test(test_many_heads_note),
        cmocka_unit_test(test_progress),
        cmocka_unit_test(test_time_rotate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
