/* test_params.c — the parameter schema (harness/experiment/params.c): the table's consistency
 * with struct la_cell, struct fm_params, struct la_row and the results columns; parse and
 * format round trips; range and choice errors; cell keys byte-identical to the keys written
 * before the schema existed (golden strings, so existing results files still resume); the key
 * parser and editor; copies into fm_params and results rows; a cell's defaults and the measure
 * defaults; the `bench` option names the table gives.
 * Run: make build/tests/test_params && build/tests/test_params
 */
#include "testutil.h"

#include "../featuremaps/featuremap.h"
#include "../harness/core/sysinfo.h"
#include "../harness/experiment/experiment.h"
#include "../harness/experiment/params.h"
#include "../harness/store/results.h"

/* ---- golden keys ------------------------------------------------------------------------
 * Written by build_key in harness/experiment/experiment.c at commit 8c1e4de, the last one
 * before the schema; results files written then hold these exact strings. */
static const char *const k_default =
    "kernel=linear_noncausal map=elu1 m=0 draw=- norm_fixed=0 A=0 relu_eps=0 causal=0 chunk=0 "
    "eps=1e-06 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 norm=0 "
    "layer=0 head=-1 trial=0 weights= path=";
static const char *const k_gerf_auto =
    "kernel=linear_causal map=gerf m=16 draw=iid norm_fixed=0 A=auto relu_eps=0 causal=1 "
    "chunk=0 eps=1e-06 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 "
    "norm=0 layer=0 head=-1 trial=0 weights= path=";
static const char *const k_prf_orth =
    "kernel=linear_noncausal map=prf m=16 draw=orthogonal norm_fixed=1 A=0 relu_eps=0 causal=0 "
    "chunk=0 eps=0 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 norm=0 "
    "layer=0 head=-1 trial=0 weights= path=";
static const char *const k_softmax =
    "kernel=softmax_flash map=none m=0 draw=- norm_fixed=0 A=0 relu_eps=0 causal=1 chunk=0 "
    "eps=0 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 norm=0 layer=0 "
    "head=-1 trial=0 weights= path=";
static const char *const k_chunked =
    "kernel=linear_causal_chunked map=prf m=0 draw=iid norm_fixed=0 A=0 relu_eps=0 causal=1 "
    "chunk=8 eps=0.001 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 "
    "norm=0 layer=0 head=-1 trial=0 weights= path=";
static const char *const k_gerf_range =
    "kernel=linear_noncausal map=gerf m=0 draw=iid norm_fixed=0 A=-0.3 relu_eps=0 causal=0 "
    "chunk=0 eps=1e-06 T=32 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=0.1 "
    "norm=0 layer=0 head=-1 trial=0 weights= path=";
static const char *const k_sphere =
    "kernel=linear_noncausal map=elu1 m=0 draw=- norm_fixed=0 A=0 relu_eps=0 causal=0 chunk=0 "
    "eps=1e-06 T=16 d=8 dv=4 batch=1 heads=3 threads=1 data=sphere sigma=0 norm=2.5 layer=0 "
    "head=-1 trial=1 weights= path=";
static const char *const k_relu =
    "kernel=linear_noncausal map=relu m=0 draw=- norm_fixed=0 A=0 relu_eps=0.01 causal=0 "
    "chunk=0 eps=1e-06 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 "
    "norm=0 layer=0 head=-1 trial=0 weights= path=";
static const char *const k_learned =
    "kernel=linear_noncausal map=learned m=0 draw=- norm_fixed=0 A=0 relu_eps=0 causal=0 "
    "chunk=0 eps=1e-06 T=1024 d=64 dv=64 batch=1 heads=1 threads=1 data=gaussian sigma=1 "
    "norm=0 layer=0 head=-1 trial=0 weights=/tmp/schema_golden/w.bin path=";
static const char *const k_h5 =
    "kernel=linear_noncausal map=elu1 m=0 draw=- norm_fixed=0 A=0 relu_eps=0 causal=0 chunk=0 "
    "eps=1e-06 T=8 d=4 dv=4 batch=1 heads=1 threads=1 data=h5 sigma=0 norm=0 layer=0 head=0 "
    "trial=0 weights= path=/tmp/schema_golden/d.h5";

/* The default cell of an empty experiment, built by hand; parameters that print in keys only
 * when set (LA_PF_KEY_IF_SET) are at their defaults, so they are not in its key. */
static void default_cell(struct la_cell *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < LA_NPARAMS; i++)
        if (la_params[i].flags & LA_PF_KEY_IF_SET) {
            struct la_value v;
            la_param_default(&la_params[i], &v);
            la_param_set(&la_params[i], c, &v);
        }
    snprintf(c->kernel, sizeof c->kernel, "linear_noncausal");
    snprintf(c->map, sizeof c->map, "elu1");
    c->eps = 1e-6;
    c->T = 1024;
    c->d = c->dv = 64;
    c->batch = c->heads = c->threads = 1;
    c->source = LA_DATA_GAUSSIAN;
    c->sigma = 1;
    c->head = -1;
}

static void expect_key(const struct la_cell *c, const char *want)
{
    char key[LA_KEY_LEN];
    const int n = la_key_format(c, key, sizeof key);
    assert_string_equal(key, want);
    assert_int_equal(n, (int)strlen(want));
}

/* Hand-built cells give the golden keys. */
static void test_golden_keys_by_hand(void **state)
{
    (void)state;
    struct la_cell c;
    default_cell(&c);
    expect_key(&c, k_default);

    default_cell(&c);
    snprintf(c.kernel, sizeof c.kernel, "linear_causal");
    snprintf(c.map, sizeof c.map, "gerf");
    c.m = 16;
    c.A_auto = 1;
    c.causal = 1;
    expect_key(&c, k_gerf_auto);

    default_cell(&c);
    snprintf(c.map, sizeof c.map, "prf");
    c.m = 16;
    c.draw = FM_DRAW_ORTHOGONAL;
    c.norm_fixed = 1;
    c.eps = 0;
    expect_key(&c, k_prf_orth);

    default_cell(&c);
    snprintf(c.kernel, sizeof c.kernel, "softmax_flash");
    snprintf(c.map, sizeof c.map, "none");
    c.causal = 1;
    c.eps = 0;
    c.draw = FM_DRAW_ORTHOGONAL; /* softmax cells have no map: the draw prints "-" */
    expect_key(&c, k_softmax);

    default_cell(&c);
    snprintf(c.kernel, sizeof c.kernel, "linear_causal_chunked");
    snprintf(c.map, sizeof c.map, "prf");
    c.causal = 1;
    c.chunk = 8;
    c.eps = 1e-3;
    expect_key(&c, k_chunked);

    default_cell(&c);
    snprintf(c.map, sizeof c.map, "relu");
    c.relu_eps = 0.01;
    expect_key(&c, k_relu);

    default_cell(&c);
    snprintf(c.map, sizeof c.map, "learned");
    snprintf(c.weights, sizeof c.weights, "/tmp/schema_golden/w.bin");
    expect_key(&c, k_learned);

    default_cell(&c);
    c.T = 8;
    c.d = c.dv = 4;
    c.source = LA_DATA_H5;
    c.sigma = 0;
    c.head = 0;
    snprintf(c.data_path, sizeof c.data_path, "/tmp/schema_golden/d.h5");
    expect_key(&c, k_h5);

    /* Too long for the buffer: the length it needs, a terminated prefix. */
    char small[40];
    default_cell(&c);
    assert_int_equal(la_key_format(&c, small, sizeof small), (int)strlen(k_default));
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_int_equal(strncmp(small, k_default, sizeof small - 1), 0);
}

static const struct la_cell *find_key(const struct la_experiment *e, const char *key)
{
    for (size_t i = 0; i < e->ncells; i++)
        if (!strcmp(e->cells[i].key, key))
            return &e->cells[i];
    return NULL;
}

/* The loader gives the golden keys (and the same seeds: they hash the data fields). */
static void test_golden_keys_loaded(void **state)
{
    (void)state;
    static const struct {
        const char *yaml, *key;
    } cases[] = {
        {"", k_default},
        {"sweep: {kernel: [linear, softmax_flash], causal: true, map: gerf, m: 16, A: auto}\n",
         k_gerf_auto},
        {"sweep: {kernel: [linear, softmax_flash], causal: true, map: gerf, m: 16, A: auto}\n",
         k_softmax},
        {"sweep: {map: prf, eps: 0, m: 16}\nmaps: {prf: {draw: orthogonal, norm_fixed: true}}\n",
         k_prf_orth},
        {"sweep: {kernel: linear_causal_chunked, causal: true, map: prf, chunk: 8, eps: 1e-3}\n",
         k_chunked},
        {"sweep: {map: gerf, T: 32, sigma: {from: 0.1, to: 1.0, step: 0.1}, "
         "A: {from: -0.5, to: 0.1, step: 0.2}}\n",
         k_gerf_range},
        {"trials: 2\ndata: {source: sphere}\nsweep: {norm: [1, 2.5], d: 8, dv: 4, T: 16, "
         "heads: 3}\n",
         k_sphere},
        {"sweep: {map: relu}\nmaps: {relu: {eps: 0.01}}\n", k_relu},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct la_experiment *e = NULL;
        struct la_error err;
        int st =
            la_experiment_load_string("t.yaml", cases[i].yaml, strlen(cases[i].yaml), &e, &err);
        if (st != LA_OK)
            fail_msg("%s: %s", cases[i].yaml, err.msg);
        if (!find_key(e, cases[i].key)) {
            for (size_t j = 0; j < e->ncells; j++)
                fprintf(stderr, "  got %s\n", e->cells[j].key);
            fail_msg("%s: no cell with key\n  %s", cases[i].yaml, cases[i].key);
        }
        la_experiment_free(e);
    }
}

/* ---- the table ------------------------------------------------------------------------- */

static void test_table(void **state)
{
    (void)state;
    for (int i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        assert_non_null(p->name);
        assert_non_null(p->help);
        /* Names are unique, within each section too. */
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(la_params[j].name, p->name);
            if (la_params[j].entry && p->entry)
                assert_string_not_equal(la_params[j].entry, p->entry);
        }
        assert_ptr_equal(la_param_find(p->name, 0), p);
        /* The cell field matches the type. */
        switch (p->type) {
        case LA_PT_INT:
        case LA_PT_BOOL:
        case LA_PT_CHOICE:
            assert_int_equal(p->cell_size, sizeof(int));
            break;
        case LA_PT_REAL:
            assert_int_equal(p->cell_size, sizeof(double));
            break;
        case LA_PT_KERNEL:
        case LA_PT_MAP:
            assert_int_equal(p->cell_size, LA_NAME_LEN);
            break;
        default:
            assert_int_equal(p->cell_size, LA_PATH_LEN);
        }
        assert_true(p->cell_off > 0 && p->cell_off + p->cell_size <= sizeof(struct la_cell));
        /* The results column is the one columns.c lists, at the same place. */
        if (p->col) {
            const struct la_column *col = la_row_column(p->col);
            assert_non_null(col);
            assert_int_equal(col->offset, p->row_off);
            assert_int_equal(col->size, p->row_size);
            if (p->type == LA_PT_REAL)
                assert_int_equal(col->kind, LA_COL_DOUBLE);
            else if (p->type == LA_PT_INT || p->type == LA_PT_BOOL)
                assert_int_equal(col->kind, LA_COL_INT32);
            else
                assert_int_equal(col->kind, LA_COL_STRING);
        }
        /* Map parameters name a word some map reads; maps: entries are map parameters. */
        if (p->scope == LA_SCOPE_MAP) {
            int read = 0;
            for (size_t m = 0; featuremap_types[m]; m++)
                read |= featuremap_type_reads(featuremap_types[m], p->entry);
            assert_true(read);
        }
        if (p->flags & LA_PF_ENTRY)
            assert_int_equal(p->scope, LA_SCOPE_MAP);
        /* A range needs numbers; a sweep axis or setting has a default or a computed one. */
        if (p->flags & LA_PF_RANGE)
            assert_true(la_param_numeric(p) && (p->flags & LA_PF_AXIS));
        /* Every default and neutral value reads (unchecked) and prints back to itself. */
        struct la_value v;
        char msg[256], text[LA_PATH_LEN];
        if (p->def && *p->def) {
            assert_int_equal(la_param_parse(p, p->def, LA_PARSE_UNCHECKED, &v, msg, sizeof msg),
                             LA_OK);
            la_param_format(p, &v, text, sizeof text);
            struct la_value w;
            assert_int_equal(la_param_parse(p, text, LA_PARSE_UNCHECKED, &w, msg, sizeof msg),
                             LA_OK);
            assert_true(la_value_eq(p, &v, &w));
        }
    }
    /* Sections list their keys in table order (the order error messages print). */
    const char *names[LA_NPARAMS + 1];
    char joined[512];
    la_param_names(LA_PF_AXIS, names);
    la_join_names(joined, sizeof joined, names, SIZE_MAX);
    assert_string_equal(joined, "kernel, map, m, draw, A, nu, causal, chunk, eps, beta, gamma, "
                                "alpha, recur_norm, pass, T, d, dv, batch, heads, threads, sigma, "
                                "norm, layer, head, weights, sequences");
    la_param_names(LA_PF_DATA, names);
    la_join_names(joined, sizeof joined, names, SIZE_MAX);
    assert_string_equal(joined, "source, path");
    la_param_names(LA_PF_MEASURE, names);
    la_join_names(joined, sizeof joined, names, SIZE_MAX);
    assert_string_equal(joined, "time, error, time_budget_s, min_repeats, warmup, max_ref_rows, "
                                "kl_rows, kernel_pairs");
    la_param_names(LA_PF_ENTRY, names);
    la_join_names(joined, sizeof joined, names, SIZE_MAX);
    assert_string_equal(joined, "m, draw, norm_fixed, A, relu_eps, nu, weights");
    /* The `bench` options built from the table (cmd_bench.c), in table order: the spellings
     * bench has always had. */
    char *at = joined;
    joined[0] = '\0';
    for (int i = 0; i < LA_NPARAMS; i++)
        if (la_params[i].flag)
            at += snprintf(at, sizeof joined - (size_t)(at - joined), "%s%s",
                           at == joined ? "" : " ", la_params[i].flag);
    assert_string_equal(joined, "kernel map m draw norm-fixed A relu-eps nu causal chunk eps beta "
                                "gamma alpha recur-norm pass T d dv batch heads threads data sigma "
                                "norm weights");
    assert_ptr_equal(la_param_find("source", LA_PF_DATA), &la_params[LA_PARAM_DATA]);
    assert_null(la_param_find("source", LA_PF_AXIS));
    assert_null(la_param_find("nope", 0));
}

/* The schema's default of every map parameter is featuremap_params_default's (a map used
 * outside the harness gets the same value). */
static void test_fm_defaults_agree(void **state)
{
    (void)state;
    struct fm_params def;
    featuremap_params_default(&def, 64);
    int n = 0;
    for (int i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!p->fm_off)
            continue;
        n++;
        struct la_value v;
        la_param_default(p, &v);
        const char *at = (const char *)&def + p->fm_off;
        switch (p->type) {
        case LA_PT_REAL:
            if (*(const double *)(const void *)at != v.x)
                fail_msg("%s: fm_params default %g, schema %g", p->name,
                         *(const double *)(const void *)at, v.x);
            break;
        case LA_PT_PATH:
            assert_null(*(const char *const *)(const void *)at);
            assert_string_equal(v.s, "");
            break;
        default:
            if (*(const int *)(const void *)at != (int)v.i)
                fail_msg("%s: fm_params default %d, schema %lld", p->name,
                         *(const int *)(const void *)at, v.i);
        }
        if (p->fm_word_off)
            assert_int_equal(*(const int *)(const void *)((const char *)&def + p->fm_word_off),
                             v.word);
    }
    assert_true(n >= 6); /* m, draw, norm_fixed, A, relu_eps, weights, and any new one */
}

/* ---- values ---------------------------------------------------------------------------- */

/* text → value → canonical text; the canonical text reads back to the same value. */
static void round_trip(int id, const char *text, const char *canonical)
{
    const struct la_param *p = &la_params[id];
    struct la_value v, w;
    char msg[512], out[LA_PATH_LEN];
    if (la_param_parse(p, text, 0, &v, msg, sizeof msg) != LA_OK)
        fail_msg("%s '%s': %s", p->name, text, msg);
    la_param_format(p, &v, out, sizeof out);
    assert_string_equal(out, canonical);
    assert_int_equal(la_param_parse(p, out, 0, &w, msg, sizeof msg), LA_OK);
    assert_true(la_value_eq(p, &v, &w));
}

static void test_round_trips(void **state)
{
    (void)state;
    round_trip(LA_PARAM_T, "1024", "1024");
    round_trip(LA_PARAM_T, "1e3", "1000");
    round_trip(LA_PARAM_T, "4096.0", "4096");
    round_trip(LA_PARAM_M, "1048576", "1048576");
    round_trip(LA_PARAM_A, "-0.2", "-0.2");
    round_trip(LA_PARAM_A, "auto", "auto");
    round_trip(LA_PARAM_A, "-0", "0");
    round_trip(LA_PARAM_EPS, "1e-6", "1e-06");
    round_trip(LA_PARAM_EPS, "0", "0");
    round_trip(LA_PARAM_SIGMA, "0.30000000000000004", "0.30000000000000004");
    round_trip(LA_PARAM_SIGMA, "2.385", "2.385");
    round_trip(LA_PARAM_HEAD, "all", "all");
    round_trip(LA_PARAM_HEAD, "7", "7");
    round_trip(LA_PARAM_DRAW, "orthogonal", "orthogonal");
    round_trip(LA_PARAM_DATA, "h5", "h5");
    round_trip(LA_PARAM_KERNEL, "linear", "linear");
    round_trip(LA_PARAM_KERNEL, "softmax_flash", "softmax_flash");
    round_trip(LA_PARAM_MAP, "gerf", "gerf");
    round_trip(LA_PARAM_CAUSAL, "true", "1");
    round_trip(LA_PARAM_CAUSAL, "0", "0");
    round_trip(LA_PARAM_WEIGHTS, "/data/my weights.h5", "/data/my weights.h5");
    round_trip(LA_PARAM_TIME_BUDGET_S, "86400", "86400");

    /* Values of words and choices. */
    struct la_value v;
    char msg[256];
    assert_int_equal(la_param_parse(&la_params[LA_PARAM_HEAD], "all", 0, &v, msg, sizeof msg),
                     LA_OK);
    assert_true(v.word && v.i == -1);
    assert_int_equal(
        la_param_parse(&la_params[LA_PARAM_DRAW], "orthogonal", 0, &v, msg, sizeof msg), LA_OK);
    assert_int_equal(v.i, FM_DRAW_ORTHOGONAL);
    assert_int_equal(la_param_parse(&la_params[LA_PARAM_DATA], "sphere", 0, &v, msg, sizeof msg),
                     LA_OK);
    assert_int_equal(v.i, LA_DATA_SPHERE);
    /* Reals compare within a relative 1e-12; words only with words. */
    struct la_value a = {.x = 0.1 * 3}, b = {.x = 0.3}, w = {.word = 1};
    assert_true(la_value_eq(&la_params[LA_PARAM_SIGMA], &a, &b));
    assert_false(la_value_eq(&la_params[LA_PARAM_A], &w, &b));
}

/* The message of a refused value: status and exact text. */
static void expect_refused(int id, const char *text, unsigned how, int status, const char *want)
{
    struct la_value v;
    char msg[1024];
    const int st = la_param_parse(&la_params[id], text, how, &v, msg, sizeof msg);
    if (st != status || strcmp(msg, want))
        fail_msg("%s '%s': expected %s '%s', got %s '%s'", la_params[id].name, text,
                 la_status_name(status), want, la_status_name(st), st ? msg : "");
}

static void test_errors(void **state)
{
    (void)state;
    expect_refused(LA_PARAM_T, "0", 0, LA_EINVAL, "'T' must be in 1..16777216, got 0");
    expect_refused(LA_PARAM_T, "x", 0, LA_EINVAL, "'T': expected an integer, got 'x'");
    expect_refused(LA_PARAM_T, "1.5", 0, LA_EINVAL, "'T': expected an integer, got '1.5'");
    expect_refused(LA_PARAM_T, "", 0, LA_EINVAL, "'T': expected an integer, got ''");
    expect_refused(LA_PARAM_CHUNK, "-1", 0, LA_EINVAL, "'chunk' must be in 0..16777216, got -1");
    expect_refused(LA_PARAM_A, "0.25", 0, LA_EINVAL, "'A' must be < 0.25 (1 - 4A > 0), got 0.25");
    expect_refused(LA_PARAM_A, "autox", 0, LA_EINVAL,
                   "'A' (a number or auto): expected a number, got 'autox'");
    expect_refused(LA_PARAM_A, "nan", 0, LA_EINVAL,
                   "'A' (a number or auto): expected a number, got 'nan'");
    expect_refused(LA_PARAM_HEAD, "-2", 0, LA_EINVAL,
                   "'head' (an integer or all) must be in 0..65535, got -2");
    expect_refused(LA_PARAM_EPS, "-1e-6", 0, LA_EINVAL, "'eps' must be >= 0, got -1e-6");
    expect_refused(LA_PARAM_SIGMA, "0", 0, LA_EINVAL, "'sigma' must be > 0, got 0");
    expect_refused(LA_PARAM_TIME_BUDGET_S, "86400.5", 0, LA_EINVAL,
                   "'time_budget_s' must be > 0 and at most 86400, got 86400.5");
    expect_refused(LA_PARAM_CAUSAL, "yes", 0, LA_EINVAL,
                   "'causal': expected true or false, got 'yes'");
    expect_refused(LA_PARAM_DRAW, "orthogonl", 0, LA_ENAME,
                   "unknown draw 'orthogonl' (did you mean 'orthogonal'?); valid draws: iid, "
                   "orthogonal");
    expect_refused(LA_PARAM_DATA, "gausian", 0, LA_ENAME,
                   "unknown data source 'gausian' (did you mean 'gaussian'?); valid sources: "
                   "gaussian, sphere, h5, model");
    expect_refused(LA_PARAM_MAP, "none", 0, LA_ENAME,
                   "unknown feature map 'none'; valid maps: elu1, relu, taylor2, rff, prf, hyp, "
                   "gerf, learned, dpfp");
    expect_refused(LA_PARAM_MAP, "gerff", LA_PARSE_RULE, LA_ENAME,
                   "unknown feature map 'gerff' (did you mean 'gerf'?); valid maps: elu1, relu, "
                   "taylor2, rff, prf, hyp, gerf, learned, dpfp, none");
    expect_refused(LA_PARAM_KERNEL, "softmax_flsh", 0, LA_ENAME,
                   "unknown kernel 'softmax_flsh' (did you mean 'softmax_flash'?); valid "
                   "kernels: linear, softmax_flash, linear_noncausal, linear_causal, "
                   "linear_causal_recurrent, linear_causal_chunked, linear_step, softmax_step, "
                   "linear_delta_recurrent, linear_delta_chunked, linear_delta_step, "
                   "linear_decay_recurrent, "
                   "linear_decay_chunked, linear_decay_step, linear_gated_recurrent, "
                   "linear_gated_chunked, linear_gated_step");
    expect_refused(LA_PARAM_WEIGHTS, "", 0, LA_EINVAL,
                   "'weights': expected a path, got an empty value");
    /* Rules may name map none; defaults skip the range (m = 0: the map's own). */
    struct la_value v;
    char msg[256];
    assert_int_equal(
        la_param_parse(&la_params[LA_PARAM_MAP], "none", LA_PARSE_RULE, &v, msg, sizeof msg),
        LA_OK);
    assert_string_equal(v.s, "none");
    assert_int_equal(
        la_param_parse(&la_params[LA_PARAM_M], "0", LA_PARSE_UNCHECKED, &v, msg, sizeof msg),
        LA_OK);
    /* Another name for the value (bench names its option). */
    assert_int_equal(la_param_parse_as(&la_params[LA_PARAM_T], "--T", "0", 0, &v, msg, sizeof msg),
                     LA_EINVAL);
    assert_string_equal(msg, "--T must be in 1..16777216, got 0");
    assert_int_equal(la_param_parse_as(&la_params[LA_PARAM_A], "--A", "x", 0, &v, msg, sizeof msg),
                     LA_EINVAL);
    assert_string_equal(msg, "--A (a number or auto): expected a number, got 'x'");
    assert_int_equal(
        la_param_parse_as(&la_params[LA_PARAM_A], "--A", "auto", 0, &v, msg, sizeof msg), LA_OK);
    assert_true(v.word);
    /* The range check alone, with the user's text and another name. */
    struct la_value x = {.x = -1};
    assert_int_equal(la_param_check(&la_params[LA_PARAM_RELU_EPS], &x, "'eps' of map 'relu'",
                                    "-1.0", msg, sizeof msg),
                     LA_EINVAL);
    assert_string_equal(msg, "'eps' of map 'relu' must be >= 0, got -1.0");
}

/* ---- cells, fm_params, rows ------------------------------------------------------------ */

static void test_cells_and_rows(void **state)
{
    (void)state;
    struct la_cell c;
    default_cell(&c);
    struct la_value v;
    char msg[256];
    /* A: auto sets the flag and A = 0; a number clears the flag. */
    const struct la_param *A = &la_params[LA_PARAM_A];
    la_param_parse(A, "auto", 0, &v, msg, sizeof msg);
    c.A = 0.125;
    la_param_set(A, &c, &v);
    assert_int_equal(c.A_auto, 1);
    assert_true(c.A == 0);
    la_param_get(A, &c, &v);
    assert_true(v.word);
    la_param_parse(A, "-0.25", 0, &v, msg, sizeof msg);
    la_param_set(A, &c, &v);
    assert_int_equal(c.A_auto, 0);
    assert_true(c.A == -0.25);
    /* head: all is -1 in the cell. */
    const struct la_param *head = &la_params[LA_PARAM_HEAD];
    la_param_parse(head, "all", 0, &v, msg, sizeof msg);
    c.head = 3;
    la_param_set(head, &c, &v);
    assert_int_equal(c.head, -1);
    la_param_get(head, &c, &v);
    assert_true(v.word);
    /* Paths are copied. */
    char path[] = "/tmp/w.h5";
    la_param_parse(&la_params[LA_PARAM_WEIGHTS], path, 0, &v, msg, sizeof msg);
    la_param_set(&la_params[LA_PARAM_WEIGHTS], &c, &v);
    path[0] = 'X';
    assert_string_equal(c.weights, "/tmp/w.h5");

    /* Into fm_params: every map parameter, the path by pointer, an empty path as NULL. */
    snprintf(c.map, sizeof c.map, "gerf");
    c.m = 48;
    c.draw = FM_DRAW_ORTHOGONAL;
    c.norm_fixed = 1;
    c.A_auto = 1;
    c.relu_eps = 0.02;
    struct fm_params fp;
    featuremap_params_default(&fp, 32);
    fp.seed = 9;
    la_params_to_fm(&c, &fp);
    assert_int_equal(fp.d, 32);
    assert_int_equal(fp.seed, 9);
    assert_int_equal(fp.m, 48);
    assert_int_equal(fp.draw, FM_DRAW_ORTHOGONAL);
    assert_int_equal(fp.norm_fixed, 1);
    assert_int_equal(fp.A_auto, 1);
    assert_true(fp.eps == 0.02);
    assert_ptr_equal(fp.weights, c.weights);
    c.weights[0] = '\0';
    la_params_to_fm(&c, &fp);
    assert_null(fp.weights);

    /* A chosen from the data: the runner fits it and records the value. */
    const struct la_param *fitted[4];
    assert_int_equal(la_params_fitted(&c, fitted, 4), 1);
    assert_ptr_equal(fitted[0], A);

    /* Into a row: A auto is NaN until fitted; draw prints "-" for maps without one. */
    struct la_row r;
    memset(&r, 0, sizeof r);
    la_params_fill_row(&c, &r);
    assert_string_equal(r.kernel, "linear_noncausal");
    assert_string_equal(r.map, "gerf");
    assert_int_equal(r.m, 48);
    assert_string_equal(r.draw, "orthogonal");
    assert_true(isnan(r.A));
    assert_true(r.eps == 1e-6);
    assert_string_equal(r.data, "gaussian");
    assert_int_equal(r.head, -1);
    assert_int_equal(r.T, 1024);
    la_param_set_row_real(fitted[0], &r, -0.0625);
    assert_true(r.A == -0.0625);
    snprintf(c.map, sizeof c.map, "elu1");
    c.A_auto = 0;
    assert_int_equal(la_params_fitted(&c, fitted, 4), 0);
    la_params_fill_row(&c, &r);
    assert_string_equal(r.draw, "-");
    assert_true(r.A == -0.25);
}

static void test_applies(void **state)
{
    (void)state;
    struct la_cell c;
    default_cell(&c);
    const struct featuremap_type *prf = la_cell_map("prf"), *elu1 = la_cell_map("elu1");
    assert_non_null(prf);
    assert_null(la_cell_map("none"));
    struct la_applies lin = {1, 0, prf}, soft = {0, 0, NULL}, chunked = {1, 1, elu1};
    assert_true(la_param_applies(&la_params[LA_PARAM_M], &c, &lin));
    assert_false(la_param_applies(&la_params[LA_PARAM_M], &c, &soft));
    assert_false(la_param_applies(&la_params[LA_PARAM_M], &c, &chunked)); /* elu1 has no m */
    /* norm_fixed: orthogonal draws only. */
    assert_false(la_param_applies(&la_params[LA_PARAM_NORM_FIXED], &c, &lin));
    c.draw = FM_DRAW_ORTHOGONAL;
    assert_true(la_param_applies(&la_params[LA_PARAM_NORM_FIXED], &c, &lin));
    assert_false(la_param_applies(&la_params[LA_PARAM_CHUNK], &c, &lin));
    assert_true(la_param_applies(&la_params[LA_PARAM_CHUNK], &c, &chunked));
    assert_true(la_param_applies(&la_params[LA_PARAM_EPS], &c, &lin));
    assert_false(la_param_applies(&la_params[LA_PARAM_EPS], &c, &soft));
    assert_true(la_param_applies(&la_params[LA_PARAM_SIGMA], &c, &soft));
    assert_false(la_param_applies(&la_params[LA_PARAM_NORM], &c, &soft));
    c.source = LA_DATA_H5;
    assert_true(la_param_applies(&la_params[LA_PARAM_HEAD], &c, &soft));
    assert_false(la_param_applies(&la_params[LA_PARAM_SIGMA], &c, &soft));
    assert_true(la_param_reads(&la_params[LA_PARAM_DRAW], prf));
    assert_false(la_param_reads(&la_params[LA_PARAM_DRAW], elu1));
    assert_true(la_param_reads(&la_params[LA_PARAM_T], NULL));
}

/* ---- key parsing and editing ------------------------------------------------------------ */

static void expect_get(const char *key, const char *name, const char *want)
{
    char buf[LA_KEY_LEN];
    if (la_key_get(key, name, buf, sizeof buf) != LA_OK)
        fail_msg("no field '%s' in '%s'", name, key);
    assert_string_equal(buf, want);
}

static void test_key_get_set(void **state)
{
    (void)state;
    expect_get(k_gerf_auto, "kernel", "linear_causal");
    expect_get(k_gerf_auto, "A", "auto");
    expect_get(k_gerf_auto, "threads", "1");
    expect_get(k_gerf_auto, "eps", "1e-06");
    expect_get(k_gerf_auto, "relu_eps", "0");
    expect_get(k_gerf_auto, "norm", "0");
    expect_get(k_gerf_auto, "norm_fixed", "0");
    expect_get(k_gerf_auto, "head", "-1");
    expect_get(k_gerf_auto, "heads", "1");
    expect_get(k_gerf_auto, "weights", "");
    expect_get(k_gerf_auto, "path", "");
    expect_get(k_h5, "path", "/tmp/schema_golden/d.h5");
    char buf[16];
    assert_int_equal(la_key_get(k_gerf_auto, "nope", buf, sizeof buf), LA_ENAME);
    assert_int_equal(la_key_get(k_gerf_auto, "kernel", buf, 4), LA_EINVAL);

    /* Paths with spaces, and with text that looks like a field. */
    struct la_cell c;
    default_cell(&c);
    snprintf(c.map, sizeof c.map, "learned");
    snprintf(c.weights, sizeof c.weights, "/my dir/a threads=9 kernel=x.h5");
    c.source = LA_DATA_H5;
    snprintf(c.data_path, sizeof c.data_path, "/data dir/q k v.h5");
    char key[LA_KEY_LEN];
    la_key_format(&c, key, sizeof key);
    expect_get(key, "weights", "/my dir/a threads=9 kernel=x.h5");
    expect_get(key, "path", "/data dir/q k v.h5");
    expect_get(key, "threads", "1");
    expect_get(key, "kernel", "linear_noncausal");

    /* Editing one field: the rest is untouched, and the result is the key of the edited cell. */
    char k2[LA_KEY_LEN];
    snprintf(k2, sizeof k2, "%s", k_gerf_auto);
    assert_int_equal(la_key_set(k2, sizeof k2, "threads", "16"), LA_OK);
    struct la_cell g;
    default_cell(&g);
    snprintf(g.kernel, sizeof g.kernel, "linear_causal");
    snprintf(g.map, sizeof g.map, "gerf");
    g.m = 16;
    g.A_auto = 1;
    g.causal = 1;
    g.threads = 16;
    char want[LA_KEY_LEN];
    la_key_format(&g, want, sizeof want);
    assert_string_equal(k2, want);
    assert_int_equal(la_key_set(k2, sizeof k2, "eps", "0"), LA_OK);
    expect_get(k2, "eps", "0");
    expect_get(k2, "relu_eps", "0");
    assert_int_equal(la_key_set(k2, sizeof k2, "norm", "3"), LA_OK);
    expect_get(k2, "norm_fixed", "0");
    expect_get(k2, "norm", "3");
    assert_int_equal(la_key_set(k2, sizeof k2, "head", "2"), LA_OK);
    expect_get(k2, "heads", "1");
    assert_int_equal(la_key_set(k2, sizeof k2, "path", "/p q"), LA_OK);
    expect_get(k2, "path", "/p q");
    expect_get(k2, "weights", "");
    assert_int_equal(la_key_set(k2, sizeof k2, "nope", "1"), LA_ENAME);
    /* A value that does not fit leaves the key as it was. */
    char before[LA_KEY_LEN];
    snprintf(before, sizeof before, "%s", k2);
    char big[LA_KEY_LEN];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(la_key_set(k2, sizeof k2, "path", big), LA_EINVAL);
    assert_string_equal(k2, before);
}

/* ---- a cell's defaults ------------------------------------------------------------------ */

/* la_cell_defaults: every row at its default, the rows the loader derives at zero. */
static void test_cell_defaults(void **state)
{
    (void)state;
    struct la_cell c;
    memset(&c, 0x5a, sizeof c);
    la_cell_defaults(&c);
    for (int i = 0; i < LA_NPARAMS; i++) {
        struct la_value want, got;
        la_param_default(&la_params[i], &want);
        la_param_get(&la_params[i], &c, &got);
        assert_true(la_value_eq(&la_params[i], &got, &want));
    }
    assert_string_equal(c.kernel, "linear");
    assert_string_equal(c.map, "elu1");
    assert_int_equal(c.T, 1024);
    assert_int_equal(c.d, 64);
    assert_int_equal(c.dv, 0);  /* the loader's: d */
    assert_true(c.norm == 0.0); /* the loader's: √d */
    assert_int_equal(c.head, -1);
    assert_int_equal(c.A_auto, 0);
    assert_true(c.relu_eps == 1e-3 && c.eps == 1e-6 && c.sigma == 1.0);
    assert_int_equal(c.source, LA_DATA_GAUSSIAN);
    assert_string_equal(c.weights, "");
    assert_int_equal(c.max_ref_rows, 512);
    assert_true(c.seed == 0);
}

/* ---- measure settings ------------------------------------------------------------------- */

static void test_measure(void **state)
{
    (void)state;
    struct la_cell c;
    memset(&c, 0, sizeof c);
    la_cell_measure_defaults(&c);
    /* The documented defaults (experiments/README.md, measure:). */
    assert_int_equal(c.measure_time, 1);
    assert_int_equal(c.measure_error, 1);
    assert_true(c.time_budget_s == 0.2);
    assert_int_equal(c.min_repeats, 3);
    assert_int_equal(c.warmup, 1);
    assert_int_equal(c.max_ref_rows, 512);
    assert_int_equal(c.kl_rows, 64);
    assert_int_equal(c.kernel_pairs, 2048);
    /* The cell context's lines, as results files hold them. */
    char buf[512];
    size_t len = 0;
    c.measure_time = 0;
    c.time_budget_s = 0.05;
    c.min_repeats = 5;
    c.warmup = 0;
    c.max_ref_rows = 7;
    c.kl_rows = 0;
    c.kernel_pairs = 9;
    la_params_measure_text(&c, buf, sizeof buf, &len);
    assert_string_equal(buf, "measure.time=0\nmeasure.error=1\nmeasure.time_budget_s=0.05\n"
                             "measure.min_repeats=5\nmeasure.warmup=0\nmeasure.max_ref_rows=7\n"
                             "measure.kl_rows=0\nmeasure.kernel_pairs=9\n");
    assert_int_equal(len, strlen(buf));
    /* Too small: the length it needs. */
    char small[8];
    len = 0;
    la_params_measure_text(&c, small, sizeof small, &len);
    assert_int_equal(len, strlen(buf));
}

int main(void)
{
    la_startup();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_keys_by_hand),
        cmocka_unit_test(test_golden_keys_loaded),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fm_defaults_agree),
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cells_and_rows),
        cmocka_unit_test(test_applies),
        cmocka_unit_test(test_key_get_set),
        cmocka_unit_test(test_cell_defaults),
        cmocka_unit_test(test_measure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
