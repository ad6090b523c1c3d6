/* test_fit.c — the distillation of harness/model/fit.c and the per-head weights it produces:
 *  - the objective's gradient (xent, mse, both; every activation) against central finite
 *    differences in double;
 *  - recovery: heads whose attention is exactly that of a known learned map (exp_pair, random
 *    weights) are fitted from another start; the test KL on held-out sequences must be < 1e-3;
 *  - the learning-rate schedule (warm-up, cosine to lr/10) and determinism for a seed;
 *  - per-head weights files (docs/data-layout.md): the learned map applies the entry of the
 *    layer and head it is given, the query map to queries and the key map to keys; a file of
 *    one head serves any cell; a per-head file without a head, an unfitted entry, or a head past
 *    the file refuse with a clear message.
 * `linattn fit` itself (errors, exit codes, SIGINT): tests/fit_cli.sh.
 * Run: make check, or build/tests/test_fit (a few seconds).
 */
#include "testutil.h"

#include <stdlib.h>
#include <unistd.h>

#include <hdf5.h>

#include "../featuremaps/featuremap.h"
#include "../harness/core/status.h"
#include "../harness/core/sysinfo.h"
#include "../harness/model/fit.h"

static void rand_fill(double *x, size_t n, double scale, uint64_t *s)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (((double)(tu_next(s) >> 11) * 0x1.0p-53) * 2.0 - 1.0);
}

/* The causal attention weights (T, T) of exp_pair with parameters θ (fit.h's layout), in double. */
static void exp_pair_attention(const double *th, int m, int d, const float *q, const float *k,
                               int T, double *P)
{
    const double *Wq = th, *bq = th + m * d, *Wk = bq + m, *bk = Wk + m * d;
    for (int i = 0; i < T; i++) {
        double z = 0.0;
        for (int j = 0; j <= i; j++) {
            double s = 0.0;
            for (int u = 0; u < m; u++) {
                double a = bq[u], c = bk[u];
                for (int x = 0; x < d; x++) {
                    a += Wq[u * d + x] * q[i * d + x];
                    c += Wk[u * d + x] * k[j * d + x];
                }
                s += exp(a + c) + exp(-a - c);
            }
            P[(size_t)i * T + j] = s;
            z += s;
        }
        for (int j = 0; j < T; j++)
            P[(size_t)i * T + j] = j <= i ? P[(size_t)i * T + j] / z : 0.0;
    }
}

/* ---------------------------------------------------------------- gradients */

static void test_gradients(void **state)
{
    (void)state;
    enum { D = 3, DV = 2, M = 4, NS = 2 };
    const int Ts[NS] = {7, 5};
    float q[NS][7 * D], k[NS][7 * D], v[NS][7 * DV];
    struct la_fit_seq seqs[NS];
    for (int n = 0; n < NS; n++) {
        tu_fill(q[n], 7 * D, 1.5f, 11 + n);
        tu_fill(k[n], 7 * D, 1.5f, 21 + n);
        tu_fill(v[n], 7 * DV, 1.0f, 31 + n);
        seqs[n] = (struct la_fit_seq){q[n], k[n], v[n], Ts[n], NULL};
    }
    struct la_error err;
    la_error_clear(&err);
    struct la_fit_problem *pb = la_fit_problem_new(seqs, NS, D, DV, &err);
    assert_non_null(pb);
    const size_t np = la_fit_nparams(M, D);
    double th[64], g[64], tp[64];
    assert_true(np <= 64);
    for (int act = 0; act < 3; act++)
        for (int loss = 0; loss < 3; loss++) {
            struct la_fit_opts o = {.act = act, .loss = loss, .m = M, .mse_weight = 0.7};
            uint64_t s = 5 + (uint64_t)act;
            rand_fill(th, np, 0.6, &s);
            if (act == LA_FIT_RELU) /* biases well above 0: no unit at its kink, no zero S */
                for (int side = 0; side < 2; side++)
                    for (int i = 0; i < M; i++)
                        th[side * (M * D + M) + M * D + i] = 2.0 + 0.1 * i;
            struct la_fit_eval ev;
            assert_int_equal(la_fit_objective(pb, &o, th, g, &ev, &err), LA_OK);
            double gmax = 0.0;
            for (size_t i = 0; i < np; i++)
                gmax = fmax(gmax, fabs(g[i]));
            assert_true(gmax > 0.0);
            double worst = 0.0;
            for (size_t i = 0; i < np; i++) {
                const double h = 1e-5;
                struct la_fit_eval e1, e2;
                memcpy(tp, th, np * sizeof *tp);
                tp[i] += h;
                assert_int_equal(la_fit_objective(pb, &o, tp, NULL, &e1, &err), LA_OK);
                tp[i] -= 2 * h;
                assert_int_equal(la_fit_objective(pb, &o, tp, NULL, &e2, &err), LA_OK);
                const double fd = (e1.loss - e2.loss) / (2 * h);
                worst = fmax(worst, fabs(fd - g[i]) / gmax);
            }
            if (worst > 1e-6)
                print_error("act %d loss %d: worst relative gradient error %.3g\n", act, loss,
                            worst);
            assert_true(worst <= 1e-6);
            /* A wrong gradient is caught: one coordinate 1% off. */
            assert_true(0.01 * fabs(g[0]) / gmax > 1e-6 || fabs(g[0]) < 1e-4 * gmax);
        }
    la_fit_problem_free(pb);
}

/* ---------------------------------------------------------------- recovery */

static void test_recovers_known_map(void **state)
{
    (void)state;
    enum { D = 4, DV = 4, M = 4, T = 48, NTR = 4, NTE = 2 };
    const size_t np = la_fit_nparams(M, D);
    double star[64], th[64];
    assert_true(np <= 64);
    uint64_t s = 99;
    rand_fill(star, np, 0.5, &s);
    static float q[NTR + NTE][T * D], k[NTR + NTE][T * D], v[NTR + NTE][T * DV];
    static double P[NTR + NTE][T * T];
    struct la_fit_seq seqs[NTR + NTE];
    for (int n = 0; n < NTR + NTE; n++) {
        tu_fill(q[n], T * D, 1.0f, 100 + n);
        tu_fill(k[n], T * D, 1.0f, 200 + n);
        tu_fill(v[n], T * DV, 1.0f, 300 + n);
        exp_pair_attention(star, M, D, q[n], k[n], T, P[n]);
        seqs[n] = (struct la_fit_seq){q[n], k[n], v[n], T, P[n]};
    }
    struct la_error err;
    la_error_clear(&err);
    struct la_fit_problem *tr = la_fit_problem_new(seqs, NTR, D, DV, &err);
    struct la_fit_problem *te = la_fit_problem_new(seqs + NTR, NTE, D, DV, &err);
    assert_non_null(tr);
    assert_non_null(te);
    struct la_fit_opts o = {.act = LA_FIT_EXP_PAIR,
                            .loss = LA_FIT_XENT,
                            .m = M,
                            .steps = 1500,
                            .lr = 0.05,
                            .init = LA_FIT_INIT_RANDOM,
                            .seed = 7};
    la_fit_init(&o, D, th);
    struct la_fit_eval e0, ev, et;
    assert_int_equal(la_fit_objective(te, &o, th, NULL, &e0, &err), LA_OK);
    assert_int_equal(la_fit_run(tr, &o, th, NULL, NULL, &ev, &err), LA_OK);
    assert_int_equal(la_fit_objective(te, &o, th, NULL, &et, &err), LA_OK);
    /* The known map itself scores 0. */
    struct la_fit_eval es;
    assert_int_equal(la_fit_objective(te, &o, star, NULL, &es, &err), LA_OK);
    printf("recovery: test KL %.3g at the start, %.3g fitted (train %.3g), %.3g at the known "
           "map\n",
           e0.kl, et.kl, ev.kl, es.kl);
    assert_true(fabs(es.kl) < 1e-10);
    assert_true(e0.kl > 1e-2);
    assert_true(et.kl < 1e-3);
    /* Deterministic: the same seed gives the same bits. */
    double th2[64];
    la_fit_init(&o, D, th2);
    o.steps = 50;
    la_fit_init(&o, D, th);
    assert_int_equal(la_fit_run(tr, &o, th, NULL, NULL, &ev, &err), LA_OK);
    assert_int_equal(la_fit_run(tr, &o, th2, NULL, NULL, &et, &err), LA_OK);
    assert_memory_equal(th, th2, np * sizeof *th);
    la_fit_problem_free(tr);
    la_fit_problem_free(te);
}

static void test_schedule(void **state)
{
    (void)state;
    struct la_fit_opts o = {.steps = 200, .lr = 0.1};
    /* warm-up over 10 steps, then cosine from lr to lr/10 */
    assert_true(fabs(la_fit_lr(&o, 0) - 0.01) < 1e-15);
    assert_true(fabs(la_fit_lr(&o, 9) - 0.1) < 1e-15);
    assert_true(fabs(la_fit_lr(&o, 10) - 0.1) < 1e-15);
    assert_true(fabs(la_fit_lr(&o, 199) - 0.01) < 1e-4);
    for (int t = 10; t < 199; t++)
        assert_true(la_fit_lr(&o, t + 1) <= la_fit_lr(&o, t));
}

/* ---------------------------------------------------------------- per-head files */

static char tmpdir[256];

static void write_ds(hid_t f, const char *name, int rank, const hsize_t *dims, const double *x,
                     hid_t type)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(ds >= 0);
    assert_true(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(ds);
    H5Sclose(sp);
}

/* A per-head file of L x H entries: entry (l, h), side s (0 query, 1 key) has
 * W[i][j] = 0.1·(1 + l + 2h + 5s)·(i == j mod d) + 0.01·j, b[i] = 0.05·(l − h + s); fitted
 * (when not NULL) marks the entries that hold weights. */
static double entry_w(int l, int h, int s, int i, int j, int d)
{
    return 0.1 * (1 + l + 2 * h + 5 * s) * ((i % d) == j) + 0.01 * j;
}
static double entry_b(int l, int h, int s, int i)
{
    return 0.05 * (l - h + s) + 0.001 * i;
}

static void write_per_head(const char *path, int L, int H, int m, int d, const double *fitted)
{
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    double *W = malloc((size_t)L * H * m * d * sizeof *W), *b = malloc((size_t)L * H * m * 8);
    for (int s = 0; s < 2; s++) {
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < m; i++) {
                    b[((size_t)l * H + h) * m + i] = entry_b(l, h, s, i);
                    for (int j = 0; j < d; j++)
                        W[(((size_t)l * H + h) * m + i) * d + j] = entry_w(l, h, s, i, j, d);
                }
        hsize_t wd[4] = {(hsize_t)L, (hsize_t)H, (hsize_t)m, (hsize_t)d};
        write_ds(f, s ? "W_k" : "W_q", 4, wd, W, H5T_IEEE_F32LE);
        write_ds(f, s ? "b_k" : "b_q", 3, wd, b, H5T_IEEE_F32LE);
    }
    if (fitted) {
        hsize_t fd[2] = {(hsize_t)L, (hsize_t)H};
        write_ds(f, "fitted", 2, fd, fitted, H5T_STD_I32LE);
    }
    hid_t sp = H5Screate(H5S_SCALAR), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    const char *act = "exp_pair";
    hid_t a = H5Acreate2(f, "activation", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(H5Awrite(a, t, &act) >= 0);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
    free(W);
    free(b);
}

static struct featuremap *load(const char *path, int d, int layer, int head, struct la_error *err)
{
    struct fm_params p;
    featuremap_params_default(&p, d);
    p.weights = path;
    p.layer = layer;
    p.head = head;
    la_error_clear(err);
    return featuremap_alloc("learned", &p, NULL, err);
}

/* φ of one row with the entry (l, h), side s, FM_RAW, in double. */
static void expect_phi(int l, int h, int s, int m, int d, const float *x, const float *phi)
{
    for (int i = 0; i < m; i++) {
        double u = (float)entry_b(l, h, s, i);
        for (int j = 0; j < d; j++)
            u += (double)(float)entry_w(l, h, s, i, j, d) * x[j];
        assert_true(fabs(phi[i] - exp(u)) <= 1e-5 * exp(u));
        assert_true(fabs(phi[m + i] - exp(-u)) <= 1e-5 * exp(-u));
    }
}

static void test_per_head_weights(void **state)
{
    (void)state;
    enum { L = 2, H = 3, M = 5, D = 4 };
    char path[512], one[512], part[512];
    snprintf(path, sizeof path, "%s/heads.h5", tmpdir);
    snprintf(one, sizeof one, "%s/one.h5", tmpdir);
    snprintf(part, sizeof part, "%s/part.h5", tmpdir);
    write_per_head(path, L, H, M, D, NULL);
    float x[D] = {0.3f, -0.7f, 0.2f, 0.5f}, phi[2 * M];
    struct la_error err;
    /* Every entry: queries get its query map, keys its key map; heads differ. */
    float first[2 * M];
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            struct featuremap *fm = load(path, D, l, h, &err);
            if (!fm)
                print_error("%s\n", err.msg);
            assert_non_null(fm);
            assert_int_equal(fm->m, 2 * M);
            assert_int_equal(featuremap_apply(fm, FM_RAW, x, 1, phi, NULL), LA_OK);
            expect_phi(l, h, 0, M, D, x, phi);
            if (l == 0 && h == 0)
                memcpy(first, phi, sizeof phi);
            else
                assert_true(memcmp(first, phi, sizeof phi) != 0);
            assert_int_equal(featuremap_apply(fm, FM_RAW_KEY, x, 1, phi, NULL), LA_OK);
            expect_phi(l, h, 1, M, D, x, phi);
            /* The kernel pairs the query map of q with the key map of k. */
            double xd[D], yd[D] = {0.1, 0.2, -0.4, 0.3}, kq = 0.0;
            float yf[D], pk[2 * M];
            for (int j = 0; j < D; j++) {
                xd[j] = x[j];
                yf[j] = (float)yd[j];
            }
            featuremap_apply(fm, FM_RAW, x, 1, phi, NULL);
            featuremap_apply(fm, FM_RAW_KEY, yf, 1, pk, NULL);
            for (int i = 0; i < 2 * M; i++)
                kq += (double)phi[i] * pk[i];
            const double kk = featuremap_kernel(fm, xd, yd);
            assert_true(fabs(kk - kq) <= 1e-5 * kk);
            featuremap_free(fm);
        }
    /* Without a head, a file of several heads refuses; one of a single head serves. */
    struct featuremap *fm = load(path, D, -1, -1, &err);
    assert_null(fm);
    assert_non_null(strstr(err.msg, "per layer and head"));
    write_per_head(one, 1, 1, M, D, NULL);
    fm = load(one, D, -1, -1, &err);
    assert_non_null(fm);
    featuremap_free(fm);
    /* A head past the file, and an entry marked unfitted. */
    fm = load(path, D, 1, 3, &err);
    assert_null(fm);
    assert_non_null(strstr(err.msg, "no entry for layer 1, head 3"));
    double fitted[L * H] = {1, 1, 0, 1, 1, 1};
    write_per_head(part, L, H, M, D, fitted);
    fm = load(part, D, 0, 2, &err);
    assert_null(fm);
    assert_non_null(strstr(err.msg, "no fitted weights for layer 0, head 2"));
    fm = load(part, D, 1, 2, &err);
    assert_non_null(fm);
    featuremap_free(fm);
    /* The wrong head dimension. */
    fm = load(path, D + 1, 0, 0, &err);
    assert_null(fm);
    assert_non_null(strstr(err.msg, "/W_q"));
}

int main(void)
{
    la_startup();
    snprintf(tmpdir, sizeof tmpdir, "/tmp/linattn_fit_XXXXXX");
    if (!mkdtemp(tmpdir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_schedule),
        cmocka_unit_test(test_per_head_weights),
        cmocka_unit_test(test_recovers_known_map),
    };
    const int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}
