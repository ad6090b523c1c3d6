/* test_fidelity_cell.c — tests of model cells (data source model; harness/engine/
 * fidelity_cell.c through la_run_cell): a softmax_step cell has KL 0, top-1 agreement 1 and the
 * softmax model's perplexity; a linear_step cell has KL > 0; the cached reference gives the
 * same row as a fresh one and is rebuilt for other sequences; the shape columns are the
 * model's; a kernel the decoder does not run, a T beyond the checkpoint's seq_len and a missing
 * checkpoint give failed rows that say why.
 *
 * The real model is found through $LINATTN_DATA (the Makefile sets it), else ../shared/data;
 * the tests that need it skip with a message when it is absent.  Resume and the experiment
 * file: tests/fidelity_e2e.sh.  Run: make build/tests/test_fidelity_cell &&
 * build/tests/test_fidelity_cell
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../harness/core/sysinfo.h"
#include "../harness/engine/runner.h"
#include "../harness/experiment/params.h"

static char ckpt[512]; /* stories260K.bin, or "" when the data is absent */

static int setup(void **state)
{
    (void)state;
    la_startup();
    const char *data = getenv("LINATTN_DATA");
    data = data && *data ? data : "../shared/data";
    snprintf(ckpt, sizeof ckpt, "%s/stories260K/stories260K.bin", data);
    if (access(ckpt, R_OK) != 0)
        ckpt[0] = '\0';
    return 0;
}

static void need_data(void)
{
    if (!ckpt[0]) {
        print_message("stories260K not found under $LINATTN_DATA or ../shared/data: "
                      "skipping the model-cell test\n");
        skip();
    }
}

/* A model cell of kernel and map on the checkpoint: T positions, nseq sequences. */
static struct la_cell model_cell(const char *kernel, const char *map, int T, int nseq)
{
    struct la_cell c;
    la_cell_defaults(&c);
    snprintf(c.kernel, sizeof c.kernel, "%s", kernel);
    snprintf(c.map, sizeof c.map, "%s", map);
    c.causal = 1;
    c.source = LA_DATA_MODEL;
    snprintf(c.data_path, sizeof c.data_path, "%s", ckpt);
    c.T = T;
    c.sequences = nseq;
    c.measure_time = 0;
    c.seed = 77;
    return c;
}

static void test_softmax_cell(void **state)
{
    (void)state;
    need_data();
    struct la_runner_ws *ws = la_runner_ws_alloc();
    assert_non_null(ws);
    const struct la_cell c = model_cell("softmax_step", "none", 48, 2);
    struct la_row r;
    struct la_error err;
    assert_int_equal(la_run_cell(ws, &c, &r, &err), LA_OK);
    assert_int_equal(r.status, LA_ROW_OK);
    assert_true(r.model_positions > 0 && r.model_positions <= 2 * 48);
    assert_true(r.model_kl == 0.0 && r.model_kl_max == 0.0);
    assert_true(r.model_top1 == 1.0);
    assert_true(r.model_ppl == r.model_ppl_softmax);
    assert_true(isfinite(r.model_ppl) && r.model_ppl > 1.0);
    assert_int_equal(r.d, 8); /* stories260K: head size 8, 8 query heads */
    assert_int_equal(r.dv, 8);
    assert_int_equal(r.heads, 8);
    assert_int_equal(r.m, 0);
    assert_true(isnan(r.time_median_s) && isnan(r.kl_mean));
    la_runner_ws_free(ws);
}

static void test_linear_cell(void **state)
{
    (void)state;
    need_data();
    struct la_runner_ws *ws = la_runner_ws_alloc(), *fresh = la_runner_ws_alloc();
    assert_non_null(ws);
    assert_non_null(fresh);
    struct la_error err;
    struct la_row sm, a, b, c2;
    const struct la_cell s = model_cell("softmax_step", "none", 48, 2);
    assert_int_equal(la_run_cell(ws, &s, &sm, &err), LA_OK);
    /* elu1 after softmax on the same workspace: the cached reference. */
    const struct la_cell c = model_cell("linear_step", "elu1", 48, 2);
    assert_int_equal(la_run_cell(ws, &c, &a, &err), LA_OK);
    assert_int_equal(a.status, LA_ROW_OK);
    assert_int_equal(a.m, 8);
    assert_int_equal(a.model_positions, sm.model_positions);
    assert_true(a.model_kl > 0.0 && isfinite(a.model_kl));
    assert_true(a.model_kl_max >= a.model_kl);
    assert_true(a.model_top1 >= 0.0 && a.model_top1 < 1.0);
    assert_true(a.model_ppl_softmax == sm.model_ppl_softmax);
    /* A fresh workspace computes the same row. */
    assert_int_equal(la_run_cell(fresh, &c, &b, &err), LA_OK);
    assert_true(a.model_kl == b.model_kl && a.model_top1 == b.model_top1 &&
                a.model_ppl == b.model_ppl && a.model_kl_max == b.model_kl_max);
    /* Other sequences: the cache is rebuilt (more positions). */
    const struct la_cell c3 = model_cell("linear_step", "elu1", 48, 3);
    assert_int_equal(la_run_cell(ws, &c3, &c2, &err), LA_OK);
    assert_true(c2.model_positions > a.model_positions);
    /* A random map: another seed draws another map. */
    struct la_cell p = model_cell("linear_step", "prf", 48, 2);
    p.m = 16;
    struct la_row p1, p2;
    assert_int_equal(la_run_cell(ws, &p, &p1, &err), LA_OK);
    p.seed = 78;
    assert_int_equal(la_run_cell(ws, &p, &p2, &err), LA_OK);
    assert_int_equal(p1.m, 16);
    assert_true(p1.model_kl > 0.0 && p2.model_kl > 0.0 && p1.model_kl != p2.model_kl);
    la_runner_ws_free(ws);
    la_runner_ws_free(fresh);
}

static void test_errors(void **state)
{
    (void)state;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    assert_non_null(ws);
    struct la_error err;
    struct la_row r;
    struct la_cell c = model_cell("linear_step", "elu1", 48, 1);
    snprintf(c.data_path, sizeof c.data_path, "/nonexistent/stories260K.bin");
    assert_int_not_equal(la_run_cell(ws, &c, &r, &err), LA_OK);
    assert_int_equal(r.status, LA_ROW_FAILED);
    assert_non_null(strstr(r.message, "/nonexistent/stories260K.bin"));
    if (!ckpt[0]) {
        la_runner_ws_free(ws);
        need_data();
    }
    c = model_cell("linear_causal", "elu1", 48, 1);
    assert_int_equal(la_run_cell(ws, &c, &r, &err), LA_EINVAL);
    assert_int_equal(r.status, LA_ROW_FAILED);
    assert_non_null(strstr(r.message, "linear_step"));
    c = model_cell("linear_step", "elu1", 600, 1);
    assert_int_equal(la_run_cell(ws, &c, &r, &err), LA_EINVAL);
    assert_non_null(strstr(r.message, "seq_len 512"));
    la_runner_ws_free(ws);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_cell),
        cmocka_unit_test(test_linear_cell),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
