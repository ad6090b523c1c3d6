/* test_capacity.c — the capacity experiment (harness/engine/capacity.h): the fp32 prefill
 * kernels' state against the double recurrence reference on the same writes; the delta rule's
 * near exact reads below dim φ; the sum rule's error growing past dim φ; the overwrite setting;
 * the capacity file round trip; the command through the binary; and the capacity figure
 * (harness/figures/capacity.h) on synthetic rows.
 * Run: make build/tests/test_capacity && build/tests/test_capacity
 */
#include "testutil.h"

#include "../harness/engine/capacity.h"
#include "../harness/figures/capacity.h"
#include "../kernels/attention.h"

static struct la_cap_cell cell(const char *map, int nu, const char *rule, const char *keys,
                               const char *norm, int S)
{
    struct la_cap_cell c;
    la_cap_cell_default(&c);
    snprintf(c.map, sizeof c.map, "%s", map);
    c.nu = nu;
    snprintf(c.rule, sizeof c.rule, "%s", rule);
    snprintf(c.keys, sizeof c.keys, "%s", keys);
    snprintf(c.norm, sizeof c.norm, "%s", norm);
    c.S = S;
    return c;
}

/* The state the fp32 kernel leaves equals the double reference's on the same φ̂ and values. */
static void check_state(const struct la_cap_cell *c)
{
    float *phi, *vals, *state;
    int W, m;
    struct la_error err;
    assert_int_equal(la_capacity_trial_state(c, 0, &phi, &vals, &state, &W, &m, &err), LA_OK);
    const int dv = c->dv;
    double *P = malloc((size_t)W * m * sizeof *P), *V = malloc((size_t)W * dv * sizeof *V);
    double *Y = malloc((size_t)W * dv * sizeof *Y);
    double *R = calloc((size_t)m * dv + m, sizeof *R), *work = malloc((size_t)(m + dv) * 8);
    assert_non_null(P);
    assert_non_null(V);
    assert_non_null(Y);
    assert_non_null(R);
    assert_non_null(work);
    tu_to_double(phi, P, (size_t)W * m);
    tu_to_double(vals, V, (size_t)W * dv);
    /* The sum rule is the decay recurrence at γ = 1. */
    const int upd = strcmp(c->rule, "delta") ? ATTN_UPD_DECAY : ATTN_UPD_DELTA;
    attn_recur_ref(upd, P, P, V, Y, W, m, dv, 1e-6, NULL, 1.0, ATTN_RN_NONE, R, work);
    double maxabs = 0.0, maxdiff = 0.0;
    for (size_t i = 0; i < (size_t)m * dv; i++) {
        maxabs = fmax(maxabs, fabs(R[i]));
        maxdiff = fmax(maxdiff, fabs(R[i] - state[i]));
    }
    assert_true(maxabs > 0.0);
    assert_true(maxdiff <= 1e-4 * maxabs);
    free(P);
    free(V);
    free(Y);
    free(R);
    free(work);
    free(phi);
    free(vals);
    free(state);
}

static void test_kernel_matches_reference(void **st)
{
    (void)st;
    struct la_cap_cell c = cell("dpfp", 1, "sum", "gauss", "sum", 150);
    check_state(&c);
    c = cell("dpfp", 2, "delta", "sphere", "sum", 150);
    check_state(&c);
    c = cell("prf", 0, "delta", "gauss", "l2", 40);
    c.m = 64;
    c.overwrite = 1;
    check_state(&c);
}

/* Far fewer keys than dim φ with nearly orthogonal features (taylor2 of N(0, I) keys in d = 64:
 * the squared terms dominate the constant and linear ones, and two keys' products overlap
 * little) and unit-norm writes: the delta rule reads back every value nearly exactly, and
 * overwritten keys give their latest value, which the sum rule cannot. */
static void test_delta_exact_below_dim(void **st)
{
    (void)st;
    struct la_error err;
    struct la_cap_row r;
    struct la_cap_cell c = cell("taylor2", 0, "delta", "gauss", "l2", 16);
    assert_int_equal(la_capacity_run(&c, &r, &err), LA_OK);
    assert_int_equal(r.dim, 1 + 64 + 64 * 65 / 2);
    /* A zero read has mse 1/dv; the delta rule's is a small fraction of it. */
    assert_true(r.mse < 0.05 / c.dv);
    assert_true(r.acc == 1.0);
    /* Overwriting: the latest value comes back. */
    c.overwrite = 1;
    assert_int_equal(la_capacity_run(&c, &r, &err), LA_OK);
    assert_int_equal(r.writes, LA_CAP_ROUNDS * 16);
    assert_true(r.mse < 0.05 / c.dv);
    assert_true(r.acc == 1.0);
    /* The sum rule cannot overwrite: the old values stay in the state. */
    snprintf(c.rule, sizeof c.rule, "sum");
    struct la_cap_row rs;
    assert_int_equal(la_capacity_run(&c, &rs, &err), LA_OK);
    assert_true(rs.mse > 10 * r.mse);
    assert_true(rs.acc < 0.9);
}

/* The sum rule reads dpfp ν = 1 (dim φ = 128) well at S = 32, and its error grows once S
 * passes dim φ; the delta rule's less. */
static void test_sum_degrades_past_dim(void **st)
{
    (void)st;
    struct la_error err;
    struct la_cap_row lo, hi, dlo, dhi;
    struct la_cap_cell c = cell("dpfp", 1, "sum", "gauss", "sum", 32);
    assert_int_equal(la_capacity_run(&c, &lo, &err), LA_OK);
    c.S = 512; /* 4 × dim φ */
    assert_int_equal(la_capacity_run(&c, &hi, &err), LA_OK);
    assert_int_equal(lo.dim, 128);
    assert_true(lo.acc == 1.0);
    assert_true(hi.mse > 10 * lo.mse);
    assert_true(hi.acc < 0.8);
    /* The delta rule degrades less at the same S. */
    snprintf(c.rule, sizeof c.rule, "delta");
    c.S = 32;
    assert_int_equal(la_capacity_run(&c, &dlo, &err), LA_OK);
    c.S = 512;
    assert_int_equal(la_capacity_run(&c, &dhi, &err), LA_OK);
    assert_true(dhi.mse < hi.mse);
    assert_true(dlo.mse <= lo.mse);
    /* Trials: the mean lies within the smallest and largest trial. */
    assert_true(hi.mse_lo <= hi.mse && hi.mse <= hi.mse_hi);
}

static void test_bad_cells(void **st)
{
    (void)st;
    struct la_error err;
    struct la_cap_row r;
    struct la_cap_cell c = cell("elu1", 0, "gated", "gauss", "sum", 8);
    assert_int_equal(la_capacity_run(&c, &r, &err), LA_ENAME);
    assert_non_null(strstr(err.msg, "rule"));
    c = cell("nosuchmap", 0, "sum", "gauss", "sum", 8);
    assert_int_not_equal(la_capacity_run(&c, &r, &err), LA_OK);
    c = cell("elu1", 0, "sum", "gauss", "sum", 0);
    assert_int_equal(la_capacity_run(&c, &r, &err), LA_EINVAL);
}

static void test_file_round_trip(void **st)
{
    (void)st;
    struct la_error err;
    struct la_cap_row rows[2];
    struct la_cap_cell c = cell("elu1", 0, "delta", "gauss", "sum", 8);
    c.trials = 1;
    assert_int_equal(la_capacity_run(&c, &rows[0], &err), LA_OK);
    c = cell("dpfp", 2, "sum", "sphere", "l2", 8);
    c.trials = 1;
    snprintf(c.values, sizeof c.values, "gauss");
    assert_int_equal(la_capacity_run(&c, &rows[1], &err), LA_OK);
    assert_true(isnan(rows[1].acc));
    char path[] = "/tmp/test_capacity_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(la_capacity_write(path, rows, 2, &err), LA_OK);
    assert_int_equal(la_capacity_is_file(path), 1);
    struct la_cap_row *back;
    size_t n;
    assert_int_equal(la_capacity_read(path, &back, &n, &err), LA_OK);
    assert_int_equal(n, 2);
    assert_string_equal(back[1].label, "dpfp nu=2");
    assert_string_equal(back[1].c.values, "gauss");
    assert_string_equal(back[0].c.rule, "delta");
    assert_int_equal(back[1].dim, 256);
    assert_true(back[0].mse == rows[0].mse && back[0].acc == rows[0].acc);
    assert_true(isnan(back[1].acc));
    free(back);
    unlink(path);
    assert_int_equal(la_capacity_is_file("/nonexistent/x.h5"), 0);
}

/* The command: a small grid, its rows in the file, and its errors. */
static void test_command(void **st)
{
    (void)st;
    char out[8192];
    char path[] = "/tmp/test_capacity_cmd_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(tu_run(out, sizeof out,
                            "capacity --maps elu1,dpfp2,prf32 --S 8,16 --trials 1 "
                            "--settings unique,overwrite --norm sum -q -o %s",
                            path),
                     0);
    struct la_cap_row *rows;
    size_t n;
    struct la_error err;
    assert_int_equal(la_capacity_read(path, &rows, &n, &err), LA_OK);
    assert_int_equal(n, 3 * 2 * 2 * 2); /* maps × rules × settings × S */
    assert_string_equal(rows[0].label, "elu1");
    assert_int_equal(rows[n - 1].dim, 32);
    free(rows);
    unlink(path);
    assert_int_equal(tu_run(out, sizeof out, "capacity --maps dpfp7 -o /tmp/x.h5"), 2);
    assert_non_null(strstr(out, "1..3"));
    assert_int_equal(tu_run(out, sizeof out, "capacity --maps nosuch -o /tmp/x.h5"), 2);
    assert_int_equal(tu_run(out, sizeof out, "capacity --rules sum,gated -o /tmp/x.h5"), 2);
    assert_non_null(strstr(out, "gated"));
    assert_int_equal(tu_run(out, sizeof out, "capacity --S 10,0 -o /tmp/x.h5"), 2);
    assert_int_equal(tu_run(out, sizeof out, "capacity --S 10"), 2);
}

/* ---- the figure ---------------------------------------------------------------------------- */

static struct la_cap_row synth(const char *map, int nu, const char *rule, int ow, int S,
                               int dim, double mse)
{
    struct la_cap_row r;
    memset(&r, 0, sizeof r);
    la_cap_cell_default(&r.c);
    snprintf(r.c.map, sizeof r.c.map, "%s", map);
    r.c.nu = nu;
    snprintf(r.c.rule, sizeof r.c.rule, "%s", rule);
    r.c.overwrite = ow;
    r.c.S = S;
    r.c.trials = 3;
    if (nu)
        snprintf(r.label, sizeof r.label, "%s nu=%d", map, nu);
    else
        snprintf(r.label, sizeof r.label, "%s", map);
    r.dim = dim;
    r.mse = mse;
    r.mse_lo = mse / 2;
    r.mse_hi = mse * 2;
    r.acc = 1.0;
    return r;
}

static void test_figure(void **st)
{
    (void)st;
    struct la_cap_row rows[16];
    size_t n = 0;
    const int Ss[] = {256, 64, 128}; /* out of order: the curve sorts by S */
    for (int ow = 0; ow <= 1; ow++)
        for (int i = 0; i < 3; i++) {
            rows[n++] = synth("dpfp", 1, "sum", ow, Ss[i], 128, 0.001 * Ss[i]);
            rows[n++] = synth("dpfp", 1, "delta", ow, Ss[i], 128, 0.0001 * Ss[i]);
        }
    rows[n++] = synth("dpfp", 2, "sum", 0, 64, 256, 0.01);
    rows[n++] = synth("elu1", 0, "sum", 0, 64, 64, 0.5); /* dim 64: at the panel's edge */
    struct la_figure fig;
    struct la_error err;
    assert_int_equal(la_capacity_figure(rows, n, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 2);
    assert_int_equal(fig.ncols, 2);
    assert_int_equal(fig.nrows, 1);
    const struct la_fig_panel *p0 = &fig.panels[0], *p1 = &fig.panels[1];
    assert_non_null(strstr(p0->title, "unique"));
    assert_non_null(strstr(p1->title, "overwrite"));
    /* Panel 0: dpfp1 sum, dpfp1 delta, dpfp2 sum, elu1 sum, then the marks of dpfp1 (128) and
     * elu1 (64); dpfp2's dim 256 is in range too. */
    assert_int_equal(p0->count, 4 + 3);
    const struct la_fig_curve *c = &fig.curves[p0->first];
    assert_string_equal(c[0].title, "dpfp nu=1, sum rule");
    assert_int_equal(c[0].dash, 1);
    assert_int_equal(c[1].dash, 2);
    assert_int_equal(c[0].pt, 1);
    assert_int_equal(c[2].pt, 2); /* dpfp ν = 2: the map's second label */
    assert_string_equal(c[0].map, "dpfp");
    assert_int_equal(c[0].npoints, 3);
    assert_true(c[0].pts[0].x == 64 && c[0].pts[1].x == 128 && c[0].pts[2].x == 256);
    assert_true(fabs(c[0].pts[2].y - 0.256) < 1e-12 && fabs(c[0].pts[2].hi - 0.512) < 1e-12);
    assert_int_equal(c[0].pts[0].n, 3);
    /* The marks: vertical at dim φ, spanning the panel's smallest to largest bar. */
    const struct la_fig_curve *mk = &c[4];
    assert_int_equal(mk->dash, 4);
    assert_int_equal(mk->pt, 0);
    assert_int_equal(mk->npoints, 2);
    assert_true(mk->pts[0].x == 128 && mk->pts[1].x == 128);
    assert_true(fabs(mk->pts[0].y - 0.0032) < 1e-12); /* 0.0001·64 / 2 */
    assert_true(fabs(mk->pts[1].y - 1.0) < 1e-12);    /* elu1's 0.5 · 2 */
    assert_string_equal(mk->title, "dim φ (dotted)");
    assert_string_equal(c[5].title, ""); /* the legend has it once */
    assert_true(c[6].pts[0].x == 64);
    /* Panel 1: the two overwrite curves and the one mark. */
    assert_int_equal(p1->count, 3);
    la_figure_free(&fig);
    /* No rows: nothing fits. */
    assert_int_equal(la_capacity_figure(rows, 0, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_matches_reference),
        cmocka_unit_test(test_delta_exact_below_dim),
        cmocka_unit_test(test_sum_degrades_past_dim),
        cmocka_unit_test(test_bad_cells),
        cmocka_unit_test(test_file_round_trip),
        cmocka_unit_test(test_command),
        cmocka_unit_test(test_figure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
