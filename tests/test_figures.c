/* test_figures.c — figure preparation on synthetic rows (harness/figures/): the legend fields
 * (fields.c: the schema's rows with a column and a label, column agreement, equality rules,
 * text, order, which fields vary, the key reader), curve grouping and legends (curves.c), the
 * crossover figure with its T* ring (crossover.c), the speedup grid (speedup.c), the real-heads
 * order (realheads.c), the fidelity figure (fidelity.c) and the theory lines (theory.c).  Values are exact: times follow power laws
 * whose crossing and ratios are known, errors are chosen per trial so means, minima and maxima are
 * known.
 * Not here: T* arithmetic (tests/test_crossover.c), the Lemma 2 formulas (tests/test_theory.c),
 * files and gnuplot (tests/figures_e2e.sh).
 * Run: make build/tests/test_figures && build/tests/test_figures
 */
#include "testutil.h"

#include "../harness/experiment/params.h"
#include "../harness/figures/crossover.h"
#include "../harness/experiment/params.h"
#include "../harness/figures/curves.h"
#include "../harness/figures/fields.h"
#include "../harness/figures/figure.h"
#include "../harness/figures/fidelity.h"
#include "../harness/figures/fitsweep.h"
#include "../harness/figures/realheads.h"
#include "../harness/figures/speedup.h"
#include "../harness/figures/summary.h"
#include "../harness/figures/theory.h"

/* ---- synthetic rows ----------------------------------------------------------------------- */

/* A row of `kernel` with map (softmax: "none"), its key written as experiment.c writes it. */
static struct la_row mkrow(const char *kernel, const char *map, int m, int causal, int T, int d,
                           double sigma)
{
    struct la_row r;
    memset(&r, 0, sizeof r);
    snprintf(r.kernel, sizeof r.kernel, "%s", kernel);
    snprintf(r.map, sizeof r.map, "%s", map);
    snprintf(r.draw, sizeof r.draw, "%s", strcmp(map, "prf") && strcmp(map, "rff") ? "-" : "iid");
    snprintf(r.data, sizeof r.data, "gaussian");
    r.m = m;
    r.A = NAN;
    r.causal = causal;
    r.T = T;
    r.d = d;
    r.dv = d;
    r.batch = 1;
    r.heads = 1;
    r.threads = 1;
    r.sigma = sigma;
    r.head = -1;
    r.eps = 1e-6;
    r.status = LA_ROW_OK;
    r.repeats = 5;
    r.time_median_s = r.time_p20_s = r.time_p80_s = NAN;
    r.fm_time_median_s = NAN;
    r.err_rel_fro = r.kl_mean = r.kernel_mse = r.entropy_mean = NAN;
    r.workspace_bytes = r.peak_rss_bytes = NAN;
    snprintf(r.key, sizeof r.key,
             "kernel=%s map=%s m=%d draw=%s norm_fixed=0 A=0 relu_eps=0 causal=%d chunk=0 "
             "eps=1e-06 T=%d d=%d dv=%d batch=1 heads=1 threads=1 data=gaussian sigma=%g "
             "norm=0 layer=0 head=-1 trial=0 weights= path=",
             kernel, map, m, r.draw, causal, T, d, d, sigma);
    return r;
}

/* got within rel·|want| of want (exact when rel = 0). */
#define assert_near(got, want, rel)                                                                \
    assert_true(fabs((double)(got) - (double)(want)) <= (rel)*fabs((double)(want)))

static int field(const char *name)
{
    int f = la_field_find(name);
    assert_true(f >= 0);
    return f;
}

static void text_is(const struct la_row *r, const char *name, const char *want)
{
    char buf[96];
    la_field_text(r, field(name), buf, sizeof buf);
    assert_string_equal(buf, want);
}

/* ---- fields ------------------------------------------------------------------------------- */

/* Every field is the results column of its name: writing the column through la_row_column
 * changes the field's value (offset and type agree with the store's table).  A map parameter
 * prf does not read (weights) is shown on a row of the map that reads it. */
static void test_fields_are_columns(void **state)
{
    (void)state;
    for (int f = 0; f < la_field_count(); f++) {
        const struct la_column *c = la_row_column(la_field_name(f));
        assert_non_null(c);
        /* recur_norm applies to the recurrences' rows only; a field the prf map does not
         * read is tried on the learned map's rows. */
        const struct la_param *pm = la_param_find(la_field_name(f), 0);
        const char *map =
            pm && pm->entry && !la_fig_map_reads("prf", pm->entry) ? "learned" : "prf";
        struct la_row r = mkrow(strcmp(c->name, "recur_norm") ? "linear_noncausal"
                                                              : "linear_delta_recurrent",
                                map, 64, 0, 256, 16, 1.0);
        char *p = (char *)&r + c->offset;
        if (c->kind == LA_COL_STRING) {
            snprintf(p, c->size, "zq%d", f);
            char want[16], got[96] = "";
            snprintf(want, sizeof want, "zq%d", f);
            la_fields_append(&r, LA_FIELD_BIT(f), " ", got, sizeof got);
            assert_true(!strcmp(la_field_name(f), "map") || strstr(got, want) != NULL);
            assert_true(isnan(la_field_num(&r, f)));
        } else if (c->kind == LA_COL_DOUBLE) {
            double v = 2.385 + f;
            memcpy(p, &v, sizeof v);
            assert_true(la_field_num(&r, f) == v);
        } else {
            assert_int_equal(c->kind, LA_COL_INT32);
            int32_t v = 1237 + f;
            memcpy(p, &v, sizeof v);
            assert_true(la_field_num(&r, f) == v);
        }
    }
    assert_int_equal(la_field_find("no_such_field"), -1);
    unsigned mask;
    struct la_error err;
    la_error_clear(&err);
    assert_int_equal(la_fields_mask("d  sigma T", &mask, &err), LA_OK);
    assert_true(mask == (LA_FIELD_BIT(field("d")) | LA_FIELD_BIT(field("sigma")) |
                         LA_FIELD_BIT(field("T"))));
    assert_int_equal(la_fields_mask("d sigmaa", &mask, &err), LA_EINVAL);
    assert_non_null(strstr(err.msg, "'sigmaa'"));
    assert_int_equal(la_fields_mask(NULL, &mask, &err), LA_OK);
    assert_true(mask == 0);
}

/* The fields are the schema's parameters with a results column and a legend label
 * (harness/experiment/params.c), numbered in the curve order; each one's text carries its
 * label. */
static void test_fields_from_schema(void **state)
{
    (void)state;
    int n = 0;
    for (int i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!p->col || !p->legend)
            continue;
        n++;
        const int f = la_field_find(p->col);
        assert_true(f >= 0);
        assert_string_equal(la_field_name(f), p->col);
    }
    assert_int_equal(la_field_count(), n);
    assert_true(n <= 32); /* masks are 32-bit */
    assert_int_equal(la_field_find("trial"), -1); /* trials are averaged, not told apart */
    char names[512] = "";
    for (int f = 0; f < n; f++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", f ? " " : "",
                 la_field_name(f));
    assert_string_equal(names, "causal d map draw m A nu kernel beta gamma alpha recur_norm dv "
                               "sigma T data chunk eps batch heads threads layer head pass weights");
    struct la_row r = mkrow("linear_causal_chunked", "gerf", 64, 1, 2048, 32, 0.5);
    r.threads = 2;
    r.layer = 3;
    r.head = 5;
    r.chunk = 48;
    r.A = -0.125;
    for (int f = 0; f < n; f++) {
        const struct la_param *p = la_param_find(la_field_name(f), 0);
        char t[96];
        assert_non_null(p);
        la_field_text(&r, f, t, sizeof t);
        if (p->legend[0] && !strstr(t, p->legend))
            fail_msg("field %s: text '%s' without its label '%s'", p->col, t, p->legend);
    }
}

/* The recurrences' parameters and dpfp's ν are fields: each applies to the rows whose rule (or
 * map) reads it, a gate from the data reads "β=data", and a sweep over γ or ν varies a series
 * within one panel (what runs), as m does. */
static void test_fields_recurrences(void **state)
{
    (void)state;
    struct la_row rows[4];
    rows[0] = mkrow("linear_decay_recurrent", "elu1", 64, 1, 2048, 64, 1.0);
    rows[0].gamma = 0.9;
    snprintf(rows[0].recur_norm, sizeof rows[0].recur_norm, "rule");
    rows[1] = rows[0];
    rows[1].gamma = 0.99;
    rows[2] = mkrow("linear_delta_recurrent", "dpfp", 128, 1, 2048, 64, 1.0);
    rows[2].nu = 1;
    rows[2].beta = NAN;
    snprintf(rows[2].recur_norm, sizeof rows[2].recur_norm, "sum");
    rows[3] = rows[2];
    rows[3].nu = 2;
    rows[3].m = 256;
    rows[3].beta = 0.5;
    const int g = field("gamma"), b = field("beta"), a = field("alpha"), nu = field("nu");
    const int rn = field("recur_norm");
    assert_true(la_field_applies(&rows[0], g) && !la_field_applies(&rows[0], b));
    assert_true(!la_field_applies(&rows[0], a) && la_field_applies(&rows[0], rn));
    assert_true(la_field_applies(&rows[2], b) && !la_field_applies(&rows[2], g));
    assert_true(!la_field_applies(&rows[0], nu) && la_field_applies(&rows[2], nu));
    struct la_row s = mkrow("linear_causal", "elu1", 64, 1, 2048, 64, 1.0);
    assert_true(!la_field_applies(&s, rn) && !la_field_applies(&s, g));
    text_is(&rows[0], "gamma", "γ=0.9");
    text_is(&rows[0], "recur_norm", "recur_norm=rule");
    text_is(&rows[2], "beta", "β=data");
    text_is(&rows[3], "beta", "β=0.5");
    text_is(&rows[3], "nu", "nu=2");
    const size_t sel01[] = {0, 1}, sel23[] = {2, 3};
    assert_true(la_fields_varying(rows, sel01, 2, la_fields_all()) == LA_FIELD_BIT(g));
    /* dpfp does not read m (it follows from ν): ν and β vary. */
    assert_true(la_fields_varying(rows, sel23, 2, la_fields_all()) ==
                (LA_FIELD_BIT(nu) | LA_FIELD_BIT(b)));
    /* One panel, two series. */
    assert_int_equal(la_fields_cmp_panel(&rows[0], &rows[1]), 0);
    assert_true(la_fields_cmp_curve(&rows[0], &rows[1]) < 0);
    assert_int_equal(la_fields_cmp_panel(&rows[2], &rows[3]), 0);
    assert_true(la_fields_cmp_curve(&rows[2], &rows[3]) < 0);
}

static void test_fields_text(void **state)
{
    (void)state;
    struct la_row r = mkrow("linear_causal", "prf", 64, 1, 2048, 32, 0.5);
    r.threads = 2;
    r.layer = 3;
    r.head = 5;
    text_is(&r, "m", "m=64");
    text_is(&r, "T", "T=2K");
    text_is(&r, "causal", "causal");
    text_is(&r, "sigma", "σ=0.5");
    text_is(&r, "threads", "2 threads");
    text_is(&r, "layer", "layer 3");
    text_is(&r, "head", "head 5");
    text_is(&r, "eps", "eps=1e-06");
    text_is(&r, "A", "A=auto"); /* NaN */
    r.A = -0.125;
    text_is(&r, "A", "A=-0.125");
    r.head = -1;
    r.threads = 1;
    r.causal = 0;
    r.T = 1536;
    text_is(&r, "head", "all heads");
    text_is(&r, "threads", "1 thread");
    text_is(&r, "causal", "non-causal");
    text_is(&r, "T", "T=1.5K");
    char t[16];
    la_fig_fmt_T(3 * 1048576.0, t, sizeof t);
    assert_string_equal(t, "3M");
    la_fig_fmt_T(500, t, sizeof t);
    assert_string_equal(t, "500");

    /* Legend order whatever the mask's order: m, draw, ..., causal, d, dv, T, σ, ..., threads. */
    r = mkrow("linear_causal", "prf", 64, 1, 2048, 16, 1.0);
    r.threads = 2;
    char buf[160] = "";
    unsigned mask;
    struct la_error err;
    assert_int_equal(la_fields_mask("threads T draw causal m d", &mask, &err), LA_OK);
    la_fields_append(&r, mask, " ", buf, sizeof buf);
    assert_string_equal(buf, "m=64 iid causal d=16 T=2K 2 threads");
    /* Fields that do not apply are left out: elu1 reads neither m nor draw; softmax no map
     * field at all. */
    struct la_row e = mkrow("linear_causal", "elu1", 16, 1, 2048, 16, 1.0);
    buf[0] = '\0';
    la_fields_append(&e, mask, ", ", buf, sizeof buf);
    assert_string_equal(buf, "causal, d=16, T=2K, 1 thread");
    struct la_row s = mkrow("softmax_flash", "none", 0, 0, 64, 16, 1.0);
    assert_false(la_field_applies(&s, field("eps")));
    assert_false(la_field_applies(&s, field("map")));
    assert_true(la_field_applies(&s, field("kernel")));
    assert_false(la_field_applies(&e, field("m")));
    assert_true(la_field_applies(&r, field("m")));
}

static void test_fields_settings(void **state)
{
    (void)state;
    /* gerf's A chosen from the data: one setting whatever value was fitted. */
    struct la_row a = mkrow("linear_noncausal", "gerf", 64, 0, 256, 16, 1.0);
    struct la_row b = a, c = a;
    snprintf(a.key, sizeof a.key,
             "kernel=linear_noncausal map=gerf m=64 draw=iid norm_fixed=0 "
             "A=auto relu_eps=0 causal=0 T=256");
    snprintf(b.key, sizeof b.key, "%s", a.key);
    a.A = -0.0713;
    b.A = -0.1402;
    c.A = -0.0713;
    int fA = field("A");
    assert_true(la_field_eq(&a, &b, fA));
    assert_false(la_field_eq(&a, &c, fA));     /* auto against a fixed A of the same value */
    assert_true(la_field_cmp(&a, &c, fA) < 0); /* auto sorts first */
    text_is(&a, "A", "A=auto");
    char v[32];
    assert_int_equal(la_key_get(a.key, "A", v, sizeof v), LA_OK);
    assert_string_equal(v, "auto");
    assert_int_equal(la_key_get(c.key, "A", v, sizeof v), LA_OK);
    assert_string_equal(v, "0");
    /* Whole names only: "eps" is not relu_eps, "norm" is not norm_fixed. */
    struct la_row k = mkrow("linear_noncausal", "prf", 64, 0, 256, 16, 1.0);
    assert_int_equal(la_key_get(k.key, "eps", v, sizeof v), LA_OK);
    assert_string_equal(v, "1e-06");
    assert_int_equal(la_key_get(k.key, "norm", v, sizeof v), LA_OK);
    assert_string_equal(v, "0");
    assert_int_equal(la_key_get(k.key, "kernel", v, sizeof v), LA_OK);
    assert_string_equal(v, "linear_noncausal");
    assert_int_equal(la_key_get(k.key, "path", v, sizeof v), LA_OK);
    assert_string_equal(v, "");
    assert_int_equal(la_key_get(k.key, "rate", v, sizeof v), LA_ENAME);

    /* The kernel's default chunk (16 for m, dv <= 32) is one setting with 0; another is not. */
    struct la_row c0 = mkrow("linear_causal_chunked", "elu1", 16, 1, 256, 16, 1.0);
    struct la_row c16 = c0, c64 = c0;
    c16.chunk = 16;
    c64.chunk = 64;
    int fC = field("chunk");
    assert_true(la_field_eq(&c0, &c16, fC));
    assert_false(la_field_eq(&c0, &c64, fC));
    assert_false(la_field_applies(&c16, fC));
    assert_true(la_field_applies(&c64, fC));
    text_is(&c64, "chunk", "C=64");

    /* σ of real inputs is each head's measured RMS: one value, and not a setting. */
    struct la_row h1 = mkrow("linear_noncausal", "prf", 64, 0, 256, 8, 0.83);
    struct la_row h2 = h1;
    snprintf(h1.data, sizeof h1.data, "h5");
    snprintf(h2.data, sizeof h2.data, "h5");
    h2.sigma = 1.21;
    int fS = field("sigma");
    assert_true(la_field_eq(&h1, &h2, fS));
    assert_false(la_field_applies(&h1, fS));
    h2 = mkrow("linear_noncausal", "prf", 64, 0, 256, 8, 1.21);
    assert_false(la_field_eq(&h1, &h2, fS));

    /* Softmax: the kernel's input is raw Q, K; for an unknown kernel, the row has no map. */
    struct la_row s = mkrow("softmax_flash", "none", 0, 0, 64, 16, 1.0);
    assert_true(la_row_is_softmax(&s));
    assert_false(la_row_is_softmax(&k));
    snprintf(s.kernel, sizeof s.kernel, "softmax_future");
    assert_true(la_row_is_softmax(&s));
    snprintf(s.kernel, sizeof s.kernel, "mystery");
    assert_true(la_row_is_softmax(&s)); /* map "none" */
    snprintf(s.map, sizeof s.map, "prf");
    assert_false(la_row_is_softmax(&s));
}

static void test_fields_varying_and_order(void **state)
{
    (void)state;
    struct la_row rows[6];
    rows[0] = mkrow("linear_noncausal", "prf", 64, 0, 256, 16, 1.0);
    rows[1] = mkrow("linear_noncausal", "prf", 16, 0, 512, 16, 1.0);
    rows[2] = mkrow("linear_noncausal", "elu1", 16, 0, 256, 16, 1.0);
    rows[3] = mkrow("softmax_flash", "none", 0, 0, 256, 16, 1.0);
    rows[4] = mkrow("linear_causal", "prf", 64, 1, 256, 16, 1.0);
    rows[5] = mkrow("linear_noncausal", "elu1", 32, 0, 256, 16, 1.0);
    size_t all[6] = {0, 1, 2, 3, 4, 5};
    int fm = field("m"), fT = field("T"), fd = field("d"), fc = field("causal");
    int fk = field("kernel"), fmap = field("map");
    unsigned mask = la_fields_all();
    unsigned v = la_fields_varying(rows, all, 6, mask);
    assert_true(v & LA_FIELD_BIT(fm));
    assert_true(v & LA_FIELD_BIT(fT));
    assert_true(v & LA_FIELD_BIT(fc));
    assert_true(v & LA_FIELD_BIT(fk));
    assert_true(v & LA_FIELD_BIT(fmap));
    assert_false(v & LA_FIELD_BIT(fd));
    assert_false(v & LA_FIELD_BIT(field("draw"))); /* iid wherever it applies */
    assert_false(v & LA_FIELD_BIT(field("sigma")));
    /* elu1 does not read m: its rows' m=16 and m=32 are one setting. */
    size_t elu[2] = {2, 5};
    assert_false(la_fields_varying(rows, elu, 2, mask) & LA_FIELD_BIT(fm));
    assert_true(la_fields_same_except(&rows[2], &rows[5], LA_FIELD_BIT(fm)));
    assert_false(la_fields_same_except(&rows[0], &rows[1], LA_FIELD_BIT(fm)));
    assert_true(la_fields_same_except(&rows[0], &rows[1], LA_FIELD_BIT(fm) | LA_FIELD_BIT(fT)));

    /* Curve order: softmax first, then causality, d, map, draw, m. */
    assert_true(la_fields_cmp_curve(&rows[3], &rows[2]) < 0);
    assert_true(la_fields_cmp_curve(&rows[2], &rows[1]) < 0); /* elu1 < prf */
    assert_true(la_fields_cmp_curve(&rows[1], &rows[0]) < 0); /* m=16 < m=64 */
    assert_true(la_fields_cmp_curve(&rows[0], &rows[4]) < 0); /* non-causal first */
    /* Panel order ignores the series fields. */
    assert_int_equal(la_fields_cmp_panel(&rows[0], &rows[2]), 0);
    assert_true(la_fields_cmp_panel(&rows[1], &rows[0]) > 0); /* T=512 after T=256 */
    /* Rank: distinct values below. */
    assert_int_equal(la_field_rank(rows, all, 6, fm, &rows[0]), 3); /* below 64: 0, 16, 32 */
    assert_int_equal(la_field_rank(rows, all, 6, fm, &rows[1]), 1);
}

/* ---- curves ------------------------------------------------------------------------------- */

/* error_T rows: softmax, elu1 and prf at m = 16 and 32, non-causal and causal, T = 64, 128, 256
 * at σ = 1, and T = 64, 128 at σ = 0.5; two trials each.  err_rel_fro of a cell is
 * base(map, m, causal, T) + trial·0.01, kl_mean twice that. */
static double err_base(const char *map, int m, int causal, int T)
{
    double b = !strcmp(map, "none") ? 1e-7 : !strcmp(map, "elu1") ? 0.3 : 0.2 * 16.0 / m;
    return b * (1 + causal) * (1 + T / 1024.0);
}

static size_t error_rows(struct la_row *rows)
{
    static const char *const maps[] = {"none", "elu1", "prf", "prf"};
    static const int ms[] = {0, 16, 16, 32};
    size_t n = 0;
    for (int causal = 0; causal <= 1; causal++)
        for (int mi = 0; mi < 4; mi++)
            for (int sg = 0; sg < 2; sg++)
                for (int T = 64; T <= 256; T *= 2)
                    for (int trial = 0; trial < 2; trial++) {
                        double sigma = sg ? 0.5 : 1.0;
                        if (sg && T == 256)
                            continue;
                        const char *kernel = mi == 0  ? "softmax_flash"
                                             : causal ? "linear_causal"
                                                      : "linear_noncausal";
                        struct la_row r = mkrow(kernel, maps[mi], ms[mi], causal, T, 16, sigma);
                        r.trial = trial;
                        r.err_rel_fro = err_base(maps[mi], ms[mi], causal, T) + trial * 0.01;
                        r.kl_mean = 2 * r.err_rel_fro;
                        rows[n++] = r;
                    }
    return n;
}

static void test_curves_error_T(void **state)
{
    (void)state;
    struct la_row rows[128];
    size_t n = error_rows(rows);
    struct la_figure fig;
    struct la_error err;
    la_error_clear(&err);
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_error_T, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    /* σ is pinned to 1 (three T against two); metrics are rows, causality the columns. */
    assert_int_equal(fig.npanels, 4);
    assert_int_equal(fig.nrows, 2);
    assert_int_equal(fig.ncols, 2);
    assert_string_equal(fig.panels[0].title, "non-causal, σ=1, median of n=2");
    assert_string_equal(fig.panels[1].title, "causal, σ=1, median of n=2");
    assert_string_equal(fig.panels[2].title, "non-causal, σ=1, median of n=2");
    assert_non_null(strstr(fig.stats, "95% bootstrap interval"));
    assert_non_null(strstr(fig.stats, "common random numbers"));
    assert_string_equal(fig.panels[0].ylabel, LA_FIG_ERR_LABEL);
    assert_string_equal(fig.panels[3].ylabel, LA_FIG_KL_LABEL);
    assert_string_equal(fig.panels[0].xlabel, "sequence length T (tokens)");
    /* Four curves per panel: softmax first, then elu1, prf m=16, prf m=32; a legend entry only
     * the first time. */
    static const char *const titles[] = {"softmax_flash", "elu1", "prf m=16", "prf m=32"};
    static const char *const colours[] = {"softmax", "elu1", "prf", "prf"};
    static const int dash[] = {1, 1, 1, 2}, pt[] = {1, 1, 1, 2};
    assert_int_equal(fig.ncurves, 16);
    for (size_t p = 0; p < 4; p++) {
        assert_int_equal(fig.panels[p].first, 4 * p);
        assert_int_equal(fig.panels[p].count, 4);
        assert_string_equal(fig.panels[p].note, "");
        for (size_t c = 0; c < 4; c++) {
            const struct la_fig_curve *cv = &fig.curves[4 * p + c];
            assert_string_equal(cv->title, p == 0 ? titles[c] : "");
            assert_string_equal(cv->map, colours[c]);
            assert_int_equal(cv->dash, dash[c]);
            assert_int_equal(cv->pt, pt[c]);
            assert_int_equal(cv->kind, LA_CURVE_POINTS);
            assert_int_equal(cv->npoints, 3);
        }
    }
    /* prf m=32, causal, KL (panel 3, curve 3): the median of two trials is their mean, and the
     * bootstrap interval of two values is their range. */
    const struct la_fig_curve *cv = &fig.curves[15];
    for (size_t j = 0; j < 3; j++) {
        const struct la_fig_point *q = &cv->pts[j];
        double T = 64 << j, b = 2 * err_base("prf", 32, 1, (int)T);
        assert_true(q->x == T);
        assert_near(q->lo, b, 1e-14);
        assert_near(q->hi, b + 0.02, 1e-14);
        assert_near(q->y, b + 0.01, 1e-14);
        assert_int_equal(q->n, 2);
    }
    la_figure_free(&fig);

    /* KL with weights <= 0: a row whose sampled rows mostly had one (kl_nonpos_frac > 1/2) has
     * no KL point, its output error stays; at most half is drawn from the finite rows. */
    for (size_t i = 0; i < n; i++)
        if (!strcmp(rows[i].map, "prf") && rows[i].m == 32 && rows[i].causal &&
            rows[i].sigma == 1.0 && (rows[i].T == 64 || (rows[i].T == 128 && !rows[i].trial)))
            rows[i].kl_nonpos_frac = 0.9;
        else
            rows[i].kl_nonpos_frac = 0.5;
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_error_T, 0, &fig, &err), LA_OK);
    assert_int_equal(fig.curves[11].npoints, 3); /* its output error */
    cv = &fig.curves[15];
    assert_int_equal(cv->npoints, 2);
    assert_true(cv->pts[0].x == 128 && cv->pts[0].n == 1);
    assert_true(cv->pts[1].x == 256 && cv->pts[1].n == 2);
    assert_int_equal(fig.curves[14].npoints, 3); /* prf m=16: half its rows finite */
    la_figure_free(&fig);
    for (size_t i = 0; i < n; i++)
        rows[i].kl_nonpos_frac = NAN;

    /* No row with a KL (a file that measured none): one row of panels, the output error's. */
    double kl[128];
    for (size_t i = 0; i < n; i++)
        kl[i] = rows[i].kl_mean, rows[i].kl_mean = NAN;
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_error_T, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 2);
    assert_int_equal(fig.nrows, 1);
    assert_string_equal(fig.panels[1].ylabel, LA_FIG_ERR_LABEL);
    assert_int_equal(fig.curves[fig.panels[1].first + 3].npoints, 3);
    la_figure_free(&fig);
    for (size_t i = 0; i < n; i++)
        rows[i].kl_mean = kl[i];

    /* The features figure of these rows (x = m: prf 16 and 32) has a panel column for each
     * (causal, σ, T): ten, more than a page holds, so it is drawn only when forced. */
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_features, 0, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_features, 1, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.ncols, 10);
    la_figure_free(&fig);

    /* One T only: no curve has two x values, so the figure does not fit unless forced. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].T == 64)
            rows[k++] = rows[i];
    assert_int_equal(la_curves_prepare(rows, k, &la_curves_error_T, 0, &fig, &err), LA_OK);
    assert_false(fig.fits);
    assert_int_equal(fig.ncurves, 0);
    la_figure_free(&fig);
    assert_int_equal(la_curves_prepare(rows, k, &la_curves_error_T, 1, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.curves[0].npoints, 1);
    la_figure_free(&fig);
}

/* Real inputs: the layers and heads are averaged over (the title says so) and σ, each head's
 * RMS, is neither a panel nor a legend field. */
static void test_curves_average_heads(void **state)
{
    (void)state;
    struct la_row rows[16];
    size_t n = 0;
    for (int layer = 0; layer < 2; layer++)
        for (int head = 0; head < 2; head++)
            for (int T = 64; T <= 128; T *= 2) {
                struct la_row r =
                    mkrow("linear_noncausal", "elu1", 8, 0, T, 8, 0.7 + 0.1 * head + layer);
                snprintf(r.data, sizeof r.data, "h5");
                r.layer = layer;
                r.head = head;
                r.err_rel_fro = 0.125 * (1 + layer + 2 * head);
                r.kl_mean = 0.5;
                rows[n++] = r;
            }
    struct la_figure fig;
    struct la_error err;
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_error_T, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 2);
    assert_string_equal(fig.panels[0].title, "layers and heads pooled, median of n=4");
    assert_int_equal(fig.ncurves, 2);
    assert_string_equal(fig.curves[0].title, "elu1");
    assert_int_equal(fig.curves[0].npoints, 2);
    assert_int_equal(fig.curves[0].pts[0].n, 4);
    /* the median of 0.125, 0.25, 0.375, 0.5, inside its interval, inside the range */
    assert_near(fig.curves[0].pts[0].y, 0.3125, 1e-14);
    assert_true(fig.curves[0].pts[0].lo >= 0.125 && fig.curves[0].pts[0].lo < 0.3125);
    assert_true(fig.curves[0].pts[0].hi <= 0.5 && fig.curves[0].pts[0].hi > 0.3125);
    la_figure_free(&fig);
    /* error_sigma takes σ as a setting only: nothing here. */
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_error_sigma, 1, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
}

/* memory: metrics across (two columns), dashes by causality's rank, legends naming the kernel
 * where two linear kernels of one causality share a panel. */
static void test_curves_memory(void **state)
{
    (void)state;
    static const char *const kernels[] = {"linear_noncausal", "linear_causal",
                                          "linear_causal_chunked"};
    struct la_row rows[12];
    size_t n = 0;
    for (int k = 0; k < 3; k++)
        for (int T = 64; T <= 128; T *= 2) {
            struct la_row r = mkrow(kernels[k], "elu1", 16, k > 0, T, 16, 1.0);
            r.workspace_bytes = 4096.0 * T * (k + 1);
            r.peak_rss_bytes = 1e7 + T;
            rows[n++] = r;
        }
    struct la_figure fig;
    struct la_error err;
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_memory, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.nrows, 1);
    assert_int_equal(fig.ncols, 2);
    assert_int_equal(fig.ncurves, 6);
    assert_string_equal(fig.curves[0].title, "elu1 linear_noncausal non-causal");
    assert_string_equal(fig.curves[1].title, "elu1 linear_causal causal");
    assert_string_equal(fig.curves[2].title, "elu1 linear_causal_chunked causal");
    assert_int_equal(fig.curves[0].dash, 1);
    assert_int_equal(fig.curves[1].dash, 2);
    assert_int_equal(fig.curves[2].dash, 2);
    assert_int_equal(fig.curves[2].pt, 3);
    assert_true(fig.curves[2].pts[1].y == 4096.0 * 128 * 3);
    assert_true(fig.curves[3].pts[1].y == 1e7 + 128); /* second column: peak RSS */
    la_figure_free(&fig);
}

static void test_curves_bad_spec(void **state)
{
    (void)state;
    struct la_row r = mkrow("linear_noncausal", "elu1", 16, 0, 64, 16, 1.0);
    struct la_curve_spec s = la_curves_error_T;
    struct la_figure fig;
    struct la_error err;
    s.panel_fields = "causal dd";
    assert_int_equal(la_curves_prepare(&r, 1, &s, 0, &fig, &err), LA_EINVAL);
    assert_non_null(strstr(err.msg, "'dd'"));
    s = la_curves_error_T;
    s.metrics[1] = "kl_maen";
    assert_int_equal(la_curves_prepare(&r, 1, &s, 0, &fig, &err), LA_EINVAL);
    assert_non_null(strstr(err.msg, "kl_maen"));
    s.metrics[1] = "kernel"; /* text, not a metric */
    assert_int_equal(la_curves_prepare(&r, 1, &s, 0, &fig, &err), LA_EINVAL);
    la_figure_free(&fig);
}

/* ---- theory lines -----------------------------------------------------------------------------
 */

/* The constants written out from theory.h's formulas, s² = 2σ²/√d:
 *   prf  (1−3s²)^{-d/2}(1+s²)^{-d/2} − (1−s²)^{-d/2}(1+s²)^{-d/2}
 *   rff  ½((1−s²)^{-d} − 2(1−s²)^{-d/2}(1+s²)^{-d/2} + (1−s²)^{-d/2}(1+3s²)^{-d/2})
 *   G    (1−s²)^{-d/2}(1+s²)^{-d/2} − 2(1+s²)^{-d/2} + (1+s²)^{-d} */
static double s2_of(int d, double sigma)
{
    return 2 * sigma * sigma / sqrt((double)d);
}
static double P(double x, int d)
{
    return pow(x, -d / 2.0);
}
static double prf_c(int d, double sigma)
{
    double s2 = s2_of(d, sigma);
    return P(1 - 3 * s2, d) * P(1 + s2, d) - P(1 - s2, d) * P(1 + s2, d);
}
static double rff_c(int d, double sigma)
{
    double s2 = s2_of(d, sigma);
    return 0.5 * (P(1 - s2, d) * P(1 - s2, d) - 2 * P(1 - s2, d) * P(1 + s2, d) +
                  P(1 - s2, d) * P(1 + 3 * s2, d));
}
static double orf_g(int d, double sigma)
{
    double s2 = s2_of(d, sigma);
    return P(1 - s2, d) * P(1 + s2, d) - 2 * P(1 + s2, d) + P(1 + s2, d) * P(1 + s2, d);
}

/* prf at m = 16, 64, 256, IID and orthogonal, and rff at m = 32, 128; d = 16, T = 1024. */
static size_t feature_rows(struct la_row *rows, double sigma)
{
    size_t n = 0;
    for (int orth = 0; orth <= 1; orth++)
        for (int m = 16; m <= 256; m *= 4) {
            struct la_row r = mkrow("linear_noncausal", "prf", m, 0, 1024, 16, sigma);
            snprintf(r.draw, sizeof r.draw, "%s", orth ? "orthogonal" : "iid");
            r.kernel_mse = 3.25 / m;
            r.err_rel_fro = 0.5 / sqrt(m);
            rows[n++] = r;
        }
    for (int m = 32; m <= 128; m *= 4) {
        struct la_row r = mkrow("linear_noncausal", "rff", m, 0, 1024, 16, sigma);
        r.kernel_mse = 0.1;
        r.err_rel_fro = 0.2;
        rows[n++] = r;
    }
    return n;
}

static void test_theory_lines(void **state)
{
    (void)state;
    struct la_row rows[16];
    size_t n = feature_rows(rows, 0.5);
    struct la_figure fig;
    struct la_error err;
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_features, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 2);
    /* Panel 0 (kernel MSE): prf iid, prf orthogonal, rff; then the theory lines rff IID, prf
     * IID, prf ORF.  Panel 1 (output error): the three data curves only. */
    assert_int_equal(fig.panels[0].count, 6);
    assert_int_equal(fig.panels[1].count, 3);
    assert_string_equal(fig.panels[0].note, "");
    const struct la_fig_curve *c = &fig.curves[0];
    assert_string_equal(c[0].title, "prf iid");
    assert_string_equal(c[1].title, "prf orthogonal");
    assert_string_equal(c[2].title, "rff iid");
    assert_int_equal(c[0].dash, 1); /* dashes follow the draw */
    assert_int_equal(c[1].dash, 2);
    assert_int_equal(c[2].dash, 1);
    assert_string_equal(c[3].title, "rff IID theory (Lemma 2)");
    assert_string_equal(c[4].title, "prf IID theory (Lemma 2)");
    assert_string_equal(c[5].title, "prf ORF bound (Performer Thm 2)");
    assert_int_equal(c[3].dash, 4);
    assert_int_equal(c[5].dash, 3);
    for (int i = 3; i < 6; i++) {
        assert_int_equal(c[i].npoints, 40);
        assert_int_equal(c[i].pt, 0);
        assert_int_equal(c[i].pts[0].n, 0);
    }
    /* rff: m from 32 to 128, 2 outputs per draw. */
    assert_true(c[3].pts[0].x == 32 && c[3].pts[39].x == 128);
    assert_near(c[3].pts[0].y, rff_c(16, 0.5) / 16, 1e-12);
    assert_near(c[3].pts[39].y, rff_c(16, 0.5) / 64, 1e-12);
    /* prf IID: C/m over 16 … 256, log-spaced (the middle point j = 13 is m = 16·16^(1/3)). */
    assert_true(c[4].pts[0].x == 16 && c[4].pts[39].x == 256);
    assert_near(c[4].pts[0].y, prf_c(16, 0.5) / 16, 1e-12);
    double m13 = 16 * pow(16, 13.0 / 39);
    assert_near(c[4].pts[13].x, m13, 1e-14);
    assert_near(c[4].pts[13].y, prf_c(16, 0.5) / m13, 1e-12);
    assert_true(c[4].pts[0].lo == c[4].pts[0].y && c[4].pts[0].hi == c[4].pts[0].y);
    /* prf ORF at m = d = 16: C/m − 2(m−1)/(m(d+2))·G; at m = 256 the blocks of d count. */
    assert_near(c[5].pts[0].y, prf_c(16, 0.5) / 16 - 2.0 * 15 / (16 * 18) * orf_g(16, 0.5), 1e-12);
    assert_near(c[5].pts[39].y, prf_c(16, 0.5) / 256 - 2.0 * 15 / (256 * 18) * orf_g(16, 0.5),
                1e-12);
    assert_true(c[5].pts[0].y < c[4].pts[0].y);
    la_figure_free(&fig);

    /* σ = 1 at d = 16: 3s² = 1.5, the prf mean diverges (the note says so, no line); rff's is
     * finite (s² = 0.5 < 1). */
    n = feature_rows(rows, 1.0);
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_features, 0, &fig, &err), LA_OK);
    assert_int_equal(fig.panels[0].count, 4);
    assert_string_equal(fig.curves[3].title, "rff IID theory (Lemma 2)");
    assert_string_equal(fig.panels[0].note,
                        "Lemma 2: the mean MSE over Gaussian inputs\ndiverges at this σ for prf");
    assert_string_equal(fig.panels[1].note, "");
    la_figure_free(&fig);

    /* Not Gaussian inputs: no theory. */
    n = feature_rows(rows, 0.5);
    for (size_t i = 0; i < n; i++)
        snprintf(rows[i].data, sizeof rows[i].data, "sphere");
    assert_int_equal(la_curves_prepare(rows, n, &la_curves_features, 0, &fig, &err), LA_OK);
    assert_int_equal(fig.panels[0].count, 3);
    la_figure_free(&fig);
}

/* ---- summaries ------------------------------------------------------------------------------ */

/* The point statistics (summary.c): median and mean, the bootstrap interval around them, its
 * degenerate cases, a heavy tail, and the same numbers on every call. */
static void test_summary(void **state)
{
    (void)state;
    struct la_summary a, b;
    double one[1] = {3.5};
    assert_int_equal(la_summary_compute(one, 1, LA_SUMMARY_MEDIAN, &a), LA_OK);
    assert_true(a.y == 3.5 && a.lo == 3.5 && a.hi == 3.5 && a.n == 1);
    double two[2] = {4, 2};
    assert_int_equal(la_summary_compute(two, 2, LA_SUMMARY_MEDIAN, &a), LA_OK);
    assert_true(a.y == 3 && a.lo == 2 && a.hi == 4 && a.min == 2 && a.max == 4);
    double same[3] = {1, 1, 1};
    assert_int_equal(la_summary_compute(same, 3, LA_SUMMARY_MEAN, &a), LA_OK);
    assert_true(a.y == 1 && a.lo == 1 && a.hi == 1);
    double bad[2] = {1, NAN};
    assert_int_equal(la_summary_compute(bad, 2, LA_SUMMARY_MEAN, &a), LA_EINVAL);
    assert_int_equal(la_summary_compute(bad, 0, LA_SUMMARY_MEAN, &a), LA_EINVAL);

    /* 1 … 20: the bootstrap interval of the mean is about mean ± 1.96·s/√n with s the
     * population standard deviation (√((n²−1)/12) = 5.77); of the median, inside the range and
     * around 10.5. */
    double v[20], w[20];
    for (int i = 0; i < 20; i++)
        v[i] = w[i] = 20 - i;
    assert_int_equal(la_summary_compute(v, 20, LA_SUMMARY_MEAN, &a), LA_OK);
    const double half = 1.96 * sqrt((400.0 - 1) / 12) / sqrt(20.0);
    assert_near(a.y, 10.5, 1e-15);
    assert_near(a.lo, 10.5 - half, 0.1);
    assert_near(a.hi, 10.5 + half, 0.1);
    assert_int_equal(la_summary_compute(w, 20, LA_SUMMARY_MEDIAN, &b), LA_OK);
    assert_near(b.y, 10.5, 1e-15);
    assert_true(b.lo >= 6 && b.lo < 10.5 && b.hi > 10.5 && b.hi <= 15);
    /* Deterministic: the same interval again. */
    for (int i = 0; i < 20; i++)
        w[i] = i + 1;
    struct la_summary c;
    assert_int_equal(la_summary_compute(w, 20, LA_SUMMARY_MEDIAN, &c), LA_OK);
    assert_true(c.lo == b.lo && c.hi == b.hi);

    /* A heavy tail (one draw 100× the others, as random-feature MSE has): the median stays with
     * the typical values while the mean moves ten-fold and its interval reaches the outlier's
     * pull. */
    double t[10] = {1, 1.1, 0.9, 1.2, 0.8, 1.05, 0.95, 1, 1.1, 100}, u[10];
    memcpy(u, t, sizeof t);
    assert_int_equal(la_summary_compute(t, 10, LA_SUMMARY_MEDIAN, &a), LA_OK);
    assert_true(a.y == 1.025 && a.hi < 1.2);
    assert_int_equal(la_summary_compute(u, 10, LA_SUMMARY_MEAN, &b), LA_OK);
    assert_near(b.y, 10.91, 1e-12);
    assert_true(b.lo < 2 && b.hi > 20);
}

/* ---- crossover and speedup ----------------------------------------------------------------- */

/* Softmax a·T² and linear series (kernel b·T, feature map c·T) over T = 128 … 4096 (d = 16,
 * non-causal): their crossings are T* = (b + c)/a. */
static size_t timing_rows(struct la_row *rows, int repeats)
{
    static const struct {
        const char *map;
        int m;
        double b, c;
    } lin[] = {
        {"elu1", 16, 4e-7, 1e-7}, /* T* = 500 */
        {"prf", 16, 2e-6, 1e-6},  /* T* = 3000 */
        {"prf", 64, 8e-6, 2e-6},  /* T* = 10000: beyond the range */
        {"relu", 16, 8e-8, 2e-8}, /* T* = 100: below the range */
    };
    const double a = 1e-9;
    size_t n = 0;
    for (int T = 128; T <= 4096; T *= 2) {
        struct la_row s = mkrow("softmax_flash", "none", 0, 0, T, 16, 1.0);
        s.time_median_s = a * T * (double)T;
        s.fm_time_median_s = 0;
        s.repeats = repeats;
        rows[n++] = s;
        for (size_t i = 0; i < sizeof lin / sizeof lin[0]; i++) {
            struct la_row r = mkrow("linear_noncausal", lin[i].map, lin[i].m, 0, T, 16, 1.0);
            r.time_median_s = lin[i].b * T;
            r.fm_time_median_s = lin[i].c * T;
            r.repeats = repeats;
            rows[n++] = r;
        }
    }
    return n;
}

static void test_crossover_figure(void **state)
{
    (void)state;
    struct la_row rows[64];
    size_t n = timing_rows(rows, 5);
    struct la_crossover *xo;
    size_t nxo;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nxo, &err), LA_OK);
    assert_int_equal(nxo, 4);
    struct la_figure fig;
    assert_int_equal(la_crossover_figure(rows, n, xo, nxo, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 1);
    assert_int_equal(fig.nrows, 1);
    assert_int_equal(fig.ncols, 1);
    assert_string_equal(fig.panels[0].title, "d = 16, non-causal");
    assert_string_equal(fig.panels[0].ylabel, "time per call, all heads (s)");
    /* softmax, four series, two rings (the series that cross inside the range). */
    assert_int_equal(fig.ncurves, 7);
    assert_int_equal(fig.panels[0].count, 7);
    const struct la_fig_curve *c = fig.curves;
    assert_string_equal(c[0].title, "softmax_flash");
    assert_string_equal(c[0].map, "softmax");
    assert_int_equal(c[0].npoints, 6);
    assert_near(c[0].pts[5].y, 1e-9 * 4096.0 * 4096.0, 1e-15);
    assert_string_equal(c[1].title, "elu1: T* = 500");
    assert_string_equal(c[2].title, "prf m=16: T* = 2.93K");
    assert_string_equal(c[3].title, "prf m=64: T* > 4K");
    assert_string_equal(c[4].title, "relu: T* < 128");
    assert_int_equal(c[2].dash, 1);
    assert_int_equal(c[3].dash, 2); /* the second prf of the panel */
    assert_int_equal(c[3].pt, 2);
    assert_int_equal(c[1].kind, LA_CURVE_TIMING);
    assert_int_equal(c[1].npoints, 6);
    const struct la_fig_point *q = &c[1].pts[2]; /* T = 512 */
    assert_true(q->x == 512);
    assert_near(q->y, 5e-7 * 512, 1e-15);
    assert_near(q->kernel, 4e-7 * 512, 1e-15);
    assert_near(q->fm, 1e-7 * 512, 1e-15);
    assert_near(q->lo, q->y, 1e-15); /* no percentiles recorded: the median */
    /* The rings: on the linear curve at T*, exactly, since the curves are power laws. */
    assert_int_equal(c[5].pt, -1);
    assert_string_equal(c[5].title, "");
    assert_string_equal(c[5].map, "elu1");
    assert_near(c[5].pts[0].x, 500, 1e-9);
    assert_near(c[5].pts[0].y, 5e-7 * 500, 1e-9);
    assert_near(c[6].pts[0].x, 3000, 1e-9);
    assert_near(c[6].pts[0].y, 3e-6 * 3000, 1e-9);
    la_figure_free(&fig);
    la_crossover_free(xo);

    /* One timed repeat: too noisy for the timing figures, unless forced. */
    n = timing_rows(rows, 1);
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nxo, &err), LA_OK);
    assert_false(la_crossover_fits(rows, n, xo, nxo, 0));
    assert_true(la_crossover_fits(rows, n, xo, nxo, 1));
    assert_int_equal(la_crossover_figure(rows, n, xo, nxo, 0, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
    la_crossover_free(xo);
}

/* gerf with `A: auto` fits a different A in every cell: one series all the same ("A=auto"), not
 * one per fitted value.  A series that crosses twice gets its T* ring at the crossing after which
 * linear stays faster, a cross at the other crossing, and every crossing in its legend. */
static void test_crossover_marks_and_auto(void **state)
{
    (void)state;
    struct la_row rows[64];
    size_t n = 0;
    /* linear/softmax ratios at T = 128 … 4096: faster, slower ×3, faster ×2 */
    static const double ratio[6] = {0.5, 2, 2, 2, 0.5, 0.5};
    for (int i = 0; i < 6; i++) {
        int T = 128 << i;
        struct la_row s = mkrow("softmax_flash", "none", 0, 0, T, 16, 1.0);
        s.time_median_s = 1e-9 * T * (double)T;
        s.fm_time_median_s = 0;
        rows[n++] = s;
        struct la_row g = mkrow("linear_noncausal", "gerf", 16, 0, T, 16, 1.0);
        char *a = strstr(g.key, " A=0 ");
        assert_non_null(a);
        memmove(a + 7, a + 4, strlen(a + 4) + 1);
        memcpy(a, " A=auto", 7);
        g.A = -0.1 * (i + 1); /* the value this cell fitted */
        g.time_median_s = ratio[i] * s.time_median_s;
        g.fm_time_median_s = 0;
        rows[n++] = g;
    }
    struct la_crossover *xo;
    size_t nxo;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nxo, &err), LA_OK);
    assert_int_equal(nxo, 1);
    assert_int_equal(xo[0].npoints, 6);
    assert_true(xo[0].A_auto);
    char buf[64];
    assert_string_equal(la_crossover_A_text(&xo[0], buf, sizeof buf), "auto");
    struct la_figure fig;
    assert_int_equal(la_crossover_figure(rows, n, xo, nxo, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    /* softmax, the gerf series, a cross at ≈181 and the ring at ≈1448 */
    assert_int_equal(fig.ncurves, 4);
    assert_string_equal(fig.curves[1].title, "gerf m=16 A=auto: T* = 1.41K (crosses at 181, 1.41K)");
    assert_int_equal(fig.curves[2].pt, -2);
    assert_near(fig.curves[2].pts[0].x, 128 * sqrt(2), 1e-9);
    assert_near(fig.curves[2].pts[0].y, 1e-9 * 128 * sqrt(2) * 128 * sqrt(2), 1e-9);
    assert_int_equal(fig.curves[3].pt, -1);
    assert_near(fig.curves[3].pts[0].x, 1024 * sqrt(2), 1e-9);
    la_figure_free(&fig);
    la_crossover_free(xo);
}

/* A file with plain linear attention and recurrences draws them as two figures: `crossover`
 * gets softmax and the plain series, `crossover_recurrences` softmax and the recurrences, each
 * coloured by its update rule; a file with one kind draws it all in `crossover` alone. */
static void test_crossover_recurrences_apart(void **state)
{
    (void)state;
    struct la_row rows[64];
    size_t n = 0;
    static const char *const kn[] = {"linear_causal", "linear_delta_recurrent",
                                     "linear_decay_chunked"};
    for (int T = 128; T <= 4096; T *= 2) {
        struct la_row s = mkrow("softmax_flash", "none", 0, 1, T, 16, 1.0);
        s.time_median_s = 1e-9 * T * (double)T;
        s.fm_time_median_s = 0;
        rows[n++] = s;
        for (int k = 0; k < 3; k++) {
            struct la_row r = mkrow(kn[k], "elu1", 16, 1, T, 16, 1.0);
            r.time_median_s = (1 + k) * 1e-6 * T;
            r.fm_time_median_s = 0;
            rows[n++] = r;
        }
    }
    struct la_crossover *xo;
    size_t nxo;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nxo, &err), LA_OK);
    assert_int_equal(nxo, 3);
    int nrec = 0;
    for (size_t i = 0; i < nxo; i++)
        nrec += la_crossover_is_recurrence(&xo[i]);
    assert_int_equal(nrec, 2);
    assert_int_equal(la_crossover_selection(xo, nxo, 0), LA_XO_SELECT_PLAIN);
    assert_int_equal(la_crossover_selection(xo, nxo, 1), LA_XO_SELECT_RECUR);
    struct la_figure fig;
    assert_int_equal(la_crossover_figure_of(rows, n, xo, nxo, 0, LA_XO_SELECT_PLAIN, &fig, &err),
                     LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 1);
    /* softmax, linear_causal, its ring (T* = 1000) */
    assert_int_equal(fig.ncurves, 3);
    assert_string_equal(fig.curves[0].map, "softmax");
    assert_string_equal(fig.curves[1].map, "elu1");
    assert_non_null(strstr(fig.curves[1].title, "linear_causal"));
    la_figure_free(&fig);
    assert_int_equal(la_crossover_figure_of(rows, n, xo, nxo, 0, LA_XO_SELECT_RECUR, &fig, &err),
                     LA_OK);
    assert_true(fig.fits);
    /* softmax, the two recurrences and their rings (T* = 2000, 3000) */
    assert_int_equal(fig.ncurves, 5);
    int delta = 0, decay = 0;
    for (size_t i = 1; i < 3; i++) {
        assert_null(strstr(fig.curves[i].title, "linear_causal"));
        delta += !strcmp(fig.curves[i].map, "rec:delta");
        decay += !strcmp(fig.curves[i].map, "rec:decay");
    }
    assert_int_equal(delta, 1);
    assert_int_equal(decay, 1);
    assert_int_equal(fig.curves[3].pt, -1);
    assert_string_equal(fig.curves[3].map, fig.curves[1].map);
    la_figure_free(&fig);
    la_crossover_free(xo);

    /* Recurrences alone: all in `crossover`, no second figure. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].kernel, "linear_causal"))
            rows[k++] = rows[i];
    assert_int_equal(la_crossover_compute(rows, k, &xo, &nxo, &err), LA_OK);
    assert_int_equal(nxo, 2);
    assert_int_equal(la_crossover_selection(xo, nxo, 0), LA_XO_SELECT_ALL);
    assert_int_equal(la_crossover_selection(xo, nxo, 1), -1);
    assert_int_equal(la_crossover_figure_of(rows, k, xo, nxo, 0, -1, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
    la_crossover_free(xo);
}

/* Softmax a_d·T² (a_d = 1e-9·d/16; causal half) over T = 128 … 1024 at d = 16, 32; elu1 at
 * 5e-7·T; prf with m = d at 1e-6·T·d/16; prf m = 16 at d = 32 at 1e-6·T; causal elu1 at d = 16. */
static size_t speedup_rows(struct la_row *rows)
{
    size_t n = 0;
    for (int d = 16; d <= 32; d *= 2)
        for (int T = 128; T <= 1024; T *= 2) {
            for (int causal = 0; causal <= (d == 16); causal++) {
                struct la_row s = mkrow("softmax_flash", "none", 0, causal, T, d, 1.0);
                s.time_median_s = 1e-9 * d / 16 * T * (double)T / (1 + causal);
                s.fm_time_median_s = 0;
                rows[n++] = s;
                struct la_row e = mkrow(causal ? "linear_causal" : "linear_noncausal", "elu1", d,
                                        causal, T, d, 1.0);
                e.time_median_s = 5e-7 * T;
                e.fm_time_median_s = 0;
                rows[n++] = e;
            }
            struct la_row p = mkrow("linear_noncausal", "prf", d, 0, T, d, 1.0);
            p.time_median_s = 1e-6 * T * d / 16;
            p.fm_time_median_s = 0;
            rows[n++] = p;
            if (d == 32) {
                p.m = 16;
                p.time_median_s = 1e-6 * T;
                rows[n++] = p;
            }
        }
    return n;
}

/* Many configurations at many T wrap into rows of panels no wider than LA_SPEEDUP_ROW_IN inches
 * (12 T values: 7-inch panels, three a row); the causal ones start a row of their own. */
static void test_speedup_wraps(void **state)
{
    (void)state;
    static struct la_row rows[12 * 11];
    size_t n = 0;
    for (int e = 0; e < 12; e++) {
        const int T = 32 << e;
        for (int causal = 0; causal <= 1; causal++) {
            struct la_row s = mkrow("softmax_flash", "none", 0, causal, T, 16, 1.0);
            s.time_median_s = 1e-9 * T * (double)T;
            s.fm_time_median_s = 0;
            rows[n++] = s;
        }
        struct la_row r = mkrow("linear_noncausal", "elu1", 16, 0, T, 16, 1.0);
        r.time_median_s = 1e-6 * T;
        r.fm_time_median_s = 0;
        rows[n++] = r;
        for (int k = 0; k < 8; k++) {
            struct la_row c = mkrow("linear_causal", "prf", 8 << k, 1, T, 16, 1.0);
            c.time_median_s = 1e-6 * (k + 1) * T;
            c.fm_time_median_s = 0;
            rows[n++] = c;
        }
    }
    struct la_crossover *xo;
    size_t nxo;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nxo, &err), LA_OK);
    assert_int_equal(nxo, 9);
    struct la_speedup sp;
    assert_int_equal(la_speedup_prepare(rows, n, xo, nxo, 0, &sp, &err), LA_OK);
    assert_true(sp.fig.fits);
    assert_int_equal(sp.nT, 12);
    assert_near(sp.panel_w, 7.0, 1e-12);
    assert_int_equal(sp.fig.ncols, 3);
    assert_int_equal(sp.fig.nrows, 4); /* one non-causal row, three causal */
    assert_true(sp.fig.ncols * sp.panel_w <= LA_SPEEDUP_ROW_IN);
    assert_string_equal(sp.fig.panels[0].title, "elu1, non-causal");
    assert_int_equal(sp.fig.panels[1].count, 0);
    assert_int_equal(sp.fig.panels[2].count, 0);
    assert_string_equal(sp.fig.panels[3].title, "prf m=8, causal");
    assert_string_equal(sp.fig.panels[10].title, "prf m=1024, causal");
    assert_int_equal(sp.fig.panels[11].count, 0);
    la_speedup_free(&sp);
    la_crossover_free(xo);
}

static void test_speedup_grid(void **state)
{
    (void)state;
    struct la_row rows[64];
    size_t n = speedup_rows(rows);
    struct la_crossover *xo;
    size_t nxo;
    struct la_error err;
    assert_int_equal(la_crossover_compute(rows, n, &xo, &nxo, &err), LA_OK);
    struct la_speedup sp;
    assert_int_equal(la_speedup_prepare(rows, n, xo, nxo, 0, &sp, &err), LA_OK);
    assert_true(sp.fig.fits);
    assert_int_equal(sp.nd, 2);
    assert_true(sp.ds[0] == 16 && sp.ds[1] == 32);
    assert_int_equal(sp.nT, 4);
    assert_true(sp.Ts[0] == 128 && sp.Ts[3] == 1024);
    /* Three non-causal configurations on the top row, the causal one below; two empty slots. */
    assert_int_equal(sp.fig.nrows, 2);
    assert_int_equal(sp.fig.ncols, 3);
    assert_int_equal(sp.fig.npanels, 6);
    assert_int_equal(sp.fig.ncurves, 4);
    assert_string_equal(sp.fig.panels[0].title, "elu1, non-causal");
    assert_string_equal(sp.fig.panels[1].title, "prf m=d, non-causal");
    assert_string_equal(sp.fig.panels[2].title, "prf m=16, non-causal");
    assert_string_equal(sp.fig.panels[3].title, "elu1, causal");
    assert_int_equal(sp.fig.panels[3].first, 3);
    assert_int_equal(sp.fig.panels[3].count, 1);
    assert_int_equal(sp.fig.panels[4].count, 0);
    assert_int_equal(sp.fig.panels[5].count, 0);
    for (int di = 0; di < 2; di++)
        for (int ti = 0; ti < 4; ti++) {
            double T = sp.Ts[ti], d = sp.ds[di];
            assert_near(la_speedup_ratio(&sp, 0, di, ti), 2e-3 * d / 16 * T, 1e-12);
            assert_near(la_speedup_ratio(&sp, 1, di, ti), 1e-3 * T, 1e-12);
            if (di == 0)
                assert_true(isnan(la_speedup_ratio(&sp, 2, di, ti))); /* not measured */
            else
                assert_near(la_speedup_ratio(&sp, 2, di, ti), 2e-3 * T, 1e-12);
            if (di == 1)
                assert_true(isnan(la_speedup_ratio(&sp, 3, di, ti)));
        }
    assert_near(la_speedup_ratio(&sp, 3, 0, 0), 1e-3 * 128, 1e-12);
    const struct la_fig_point *q = &sp.fig.curves[0].pts[1 * 4 + 2]; /* d = 32, T = 512 */
    assert_true(q->x == 9 && q->y == 1);
    /* The largest ratio either way is 1/0.128 = 7.8: colours span 8x. */
    assert_true(sp.cbmax == 8);
    la_speedup_free(&sp);
    la_crossover_free(xo);
}

/* ---- real heads ----------------------------------------------------------------------------- */

static void test_real_heads(void **state)
{
    (void)state;
    /* Three heads with entropies 2.5, 0.75, 1.875 (means over two rows each); prf at m = 16,
     * 64 and 128 (64 is drawn), elu1 (its only m); a softmax row and a row of all heads, which
     * are left out. */
    static const struct {
        int layer, head;
        double ent[2];
    } heads[] = {{0, 0, {2.25, 2.75}}, {0, 1, {0.5, 1.0}}, {1, 0, {1.75, 2.0}}};
    struct la_row rows[64];
    size_t n = 0;
    for (int h = 0; h < 3; h++)
        for (int trial = 0; trial < 2; trial++) {
            static const char *const maps[] = {"prf", "prf", "prf", "elu1"};
            static const int ms[] = {16, 64, 128, 8};
            for (int k = 0; k < 4; k++) {
                struct la_row r = mkrow("linear_noncausal", maps[k], ms[k], 0, 256, 8, 1.0);
                snprintf(r.data, sizeof r.data, "h5");
                r.layer = heads[h].layer;
                r.head = heads[h].head;
                r.trial = trial;
                r.entropy_mean = heads[h].ent[trial];
                r.err_rel_fro = 0.1 * (h + 1) + 0.01 * k + 0.001 * trial;
                r.kl_mean = 2 * r.err_rel_fro;
                rows[n++] = r;
            }
        }
    struct la_row s = mkrow("softmax_flash", "none", 0, 0, 256, 8, 1.0);
    snprintf(s.data, sizeof s.data, "h5");
    s.head = 0;
    s.err_rel_fro = 1e-7;
    rows[n++] = s;
    struct la_row all = rows[0];
    all.head = -1;
    rows[n++] = all;

    struct la_realheads rh;
    struct la_error err;
    assert_int_equal(la_realheads_prepare(rows, n, &rh, &err), LA_OK);
    assert_true(rh.fig.fits);
    assert_int_equal(rh.nheads, 3);
    /* Ascending entropy: (0, 1), (1, 0), (0, 0). */
    assert_int_equal(rh.heads[0].layer, 0);
    assert_int_equal(rh.heads[0].head, 1);
    assert_int_equal(rh.heads[1].layer, 1);
    assert_int_equal(rh.heads[1].head, 0);
    assert_int_equal(rh.heads[2].head, 0);
    assert_int_equal(rh.heads[2].layer, 0);
    assert_near(rh.heads[0].entropy, 0.75, 0);
    assert_near(rh.heads[1].entropy, 1.875, 0);
    assert_near(rh.heads[2].entropy, 2.5, 0);
    assert_int_equal(rh.heads[2].n, 8); /* 4 rows, 2 trials */
    assert_int_equal(rh.nmaps, 2);
    assert_string_equal(rh.maps[0], "prf");
    assert_int_equal(rh.m[0], 64);
    assert_string_equal(rh.maps[1], "elu1");
    assert_int_equal(rh.m[1], 8);
    /* Two panels (error, KL), one curve per map each; legend entries once. */
    assert_int_equal(rh.fig.npanels, 2);
    assert_string_equal(rh.fig.panels[0].title, "3 heads, sorted by softmax entropy");
    assert_string_equal(rh.fig.panels[1].ylabel, LA_FIG_KL_LABEL);
    assert_int_equal(rh.fig.ncurves, 4);
    assert_string_equal(rh.fig.curves[0].title, "prf (m = 64)");
    assert_string_equal(rh.fig.curves[1].title, "elu1 (m = 8)");
    assert_string_equal(rh.fig.curves[2].title, "");
    assert_int_equal(rh.fig.curves[1].pt, 2);
    assert_int_equal(rh.fig.curves[1].shade, 1); /* elu1's own colour: pt tells maps apart */
    /* prf's error at the peakiest head (0, 1), h = 1 above: mean of 0.21 and 0.211. */
    const struct la_fig_point *q = &rh.fig.curves[0].pts[0];
    assert_near(q->x, 0.75, 0);
    assert_near(q->y, 0.2105, 1e-12);
    assert_near(q->lo, 0.21, 1e-12);
    assert_near(q->hi, 0.211, 1e-12);
    assert_int_equal(q->n, 2);
    assert_near(rh.fig.curves[2].pts[2].y, 2 * 0.1105, 1e-12); /* KL, head (0, 0) */
    la_realheads_free(&rh);

    /* One head: no figure. */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].layer == 0 && rows[i].head == 0)
            rows[k++] = rows[i];
    assert_int_equal(la_realheads_prepare(rows, k, &rh, &err), LA_OK);
    assert_false(rh.fig.fits);
    la_realheads_free(&rh);

    /* The learned map with two weights files: one series per file, told apart in the legend
     * by the file's name, each drawn from its own rows only. */
    n = 0;
    for (int h = 0; h < 3; h++)
        for (int w = 0; w < 2; w++) {
            struct la_row r = mkrow("linear_causal", "learned", 32, 0, 256, 8, 1.0);
            snprintf(r.data, sizeof r.data, "h5");
            snprintf(r.weights, sizeof r.weights, "%s", w ? "data/fit_m16.h5" : "fit_m8.h5");
            r.layer = heads[h].layer;
            r.head = heads[h].head;
            r.entropy_mean = heads[h].ent[0];
            r.err_rel_fro = 0.1 * (h + 1) + 0.5 * w;
            r.kl_mean = 2 * r.err_rel_fro;
            rows[n++] = r;
        }
    assert_int_equal(la_realheads_prepare(rows, n, &rh, &err), LA_OK);
    assert_true(rh.fig.fits);
    assert_int_equal(rh.nmaps, 2);
    assert_string_equal(rh.weights[0], "fit_m8.h5");
    assert_string_equal(rh.weights[1], "data/fit_m16.h5");
    assert_string_equal(rh.fig.curves[0].title, "learned fit_m8 (m = 32)");
    assert_string_equal(rh.fig.curves[1].title, "learned fit_m16 (m = 32)");
    assert_int_equal(rh.fig.curves[1].npoints, 3);
    assert_near(rh.fig.curves[0].pts[0].y, 0.2, 1e-12); /* head (0, 1): h = 1, w = 0 */
    assert_near(rh.fig.curves[1].pts[0].y, 0.7, 1e-12);
    la_realheads_free(&rh);
}

/* A real-heads row of one head for the fit figures. */
static struct la_row head_row(const char *map, int m, const char *weights, int head, double kl,
                              double er)
{
    struct la_row r = mkrow("linear_causal", map, m, 1, 256, 8, 1.0);
    snprintf(r.data, sizeof r.data, "h5");
    snprintf(r.weights, sizeof r.weights, "%s", weights);
    r.layer = 0;
    r.head = head;
    r.kl_mean = kl;
    r.err_rel_fro = er;
    return r;
}

/* fit_m and fit_tokens (fitsweep.h): the learned map's weights files placed by their training
 * tokens, the fitted curve from the files of the most tokens, maps of one m as one point, the
 * other maps as levels against the tokens. */
static void test_fit_figures(void **state)
{
    (void)state;
    /* Learned: m = 8, 16, 32 trained on 768 tokens, and m = 32 on 256; prf at 8, 16, 32;
     * taylor2 at its 45; two heads each (head 1's values twice head 0's). */
    static const struct {
        const char *map, *w;
        int m;
        double kl;
    } spec[] = {{"learned", "d/w4.h5", 8, 0.8},
                {"learned", "d/w8.h5", 16, 0.6},
                {"learned", "d/w16.h5", 32, 0.4},
                {"learned", "d/w16_n1.h5", 32, 0.9},
                {"prf", "", 8, 30},
                {"prf", "", 16, 20},
                {"prf", "", 32, 10},
                {"taylor2", "", 45, 4}};
    struct la_row rows[32];
    size_t n = 0;
    for (size_t k = 0; k < sizeof spec / sizeof spec[0]; k++)
        for (int h = 0; h < 2; h++)
            rows[n++] = head_row(spec[k].map, spec[k].m, spec[k].w, h, spec[k].kl * (h + 1),
                                 0.1 * spec[k].kl * (h + 1));
    struct la_row bad = head_row("learned", 64, "d/w32.h5", 0, 0.1, NAN); /* no error: left out */
    rows[n++] = bad;
    struct la_fit_weights w[] = {{"d/w4.h5", 768},
                                 {"d/w8.h5", 768},
                                 {"d/w16.h5", 768},
                                 {"d/w16_n1.h5", 256},
                                 {"d/w32.h5", 768}};
    struct la_figure fig;
    struct la_error err;
    assert_int_equal(la_fit_m_figure(rows, n, w, 5, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 2);
    assert_int_equal(fig.panels[0].count, 3);
    const struct la_fig_curve *c = &fig.curves[0];
    assert_string_equal(c->map, "learned");
    assert_string_equal(c->title, "learned, fitted on 768 tokens");
    assert_string_equal(fig.panels[0].title, "attention KL against m, on the test heads");
    assert_string_equal(fig.panels[1].title, "output error against m, on the test heads");
    assert_int_equal(c->npoints, 3);
    assert_near(c->pts[2].x, 32, 0);
    assert_near(c->pts[2].y, 0.4 * 1.5, 1e-12); /* the 768-token file only */
    assert_int_equal(c->pts[2].n, 2);
    assert_int_equal(fig.curves[1].npoints, 3); /* prf */
    assert_near(fig.curves[1].pts[0].y, 45, 1e-12);
    assert_string_equal(fig.curves[2].title, "taylor2 (its one m: a point)");
    assert_int_equal(fig.curves[2].npoints, 1);
    assert_near(fig.curves[2].pts[0].x, 45, 0);
    assert_near(fig.curves[3].pts[2].y, 0.1 * 0.4 * 1.5, 1e-12); /* error panel */
    la_figure_free(&fig);

    /* Tokens: m = 32 has 256 and 768; prf at 32 is a dashed level over that range. */
    assert_int_equal(la_fit_tokens_figure(rows, n, w, 5, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.panels[0].count, 2);
    c = &fig.curves[0];
    assert_string_equal(c->title, "learned (fitted), m = 32");
    assert_int_equal(c->npoints, 2);
    assert_near(c->pts[0].x, 256, 0);
    assert_near(c->pts[0].y, 0.9 * 1.5, 1e-12);
    assert_near(c->pts[1].x, 768, 0);
    assert_near(c->pts[1].y, 0.4 * 1.5, 1e-12);
    const struct la_fig_curve *lv = &fig.curves[1];
    assert_string_equal(lv->map, "prf");
    assert_int_equal(lv->dash, 2);
    assert_int_equal(lv->npoints, 2);
    assert_near(lv->pts[0].x, 256, 0);
    assert_near(lv->pts[1].x, 768, 0);
    assert_near(lv->pts[0].y, 15, 1e-12);
    assert_near(lv->pts[1].y, 15, 1e-12);
    la_figure_free(&fig);

    /* Tokens unknown (files not read): fit_m pools every learned row, fit_tokens does not fit. */
    assert_int_equal(la_fit_m_figure(rows, n, NULL, 0, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_near(fig.curves[0].pts[2].y, (0.4 + 0.9) * 1.5 / 2, 1e-12);
    assert_int_equal(fig.curves[0].pts[2].n, 4);
    la_figure_free(&fig);
    assert_int_equal(la_fit_tokens_figure(rows, n, NULL, 0, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
    /* One m of the learned map: no fit_m. */
    assert_int_equal(la_fit_m_figure(rows + 4, n - 5, w, 5, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
}

static void test_fidelity_figure(void **state)
{
    (void)state;
    /* Model rows: prf at m = 16 and 64 over three trials, elu1 at its m = 8, a softmax check
     * row, a failed row and an h5 row (both left out).  Heads rows: prf at m = 64 on two heads
     * over two trials, and at m = 32 (no model row there: not drawn). */
    struct la_row rows[16], heads[8];
    size_t n = 0, nh = 0;
    for (int trial = 0; trial < 3; trial++)
        for (int k = 0; k < 2; k++) {
            struct la_row r = mkrow("linear_step", "prf", k ? 64 : 16, 1, 128, 8, 1.0);
            snprintf(r.data, sizeof r.data, "model");
            r.trial = trial;
            r.model_kl = (k ? 2.0 : 3.0) + 0.1 * trial;
            r.model_top1 = (k ? 0.3 : 0.2) + 0.01 * trial;
            rows[n++] = r;
        }
    struct la_row e = mkrow("linear_step", "elu1", 8, 1, 128, 8, 1.0);
    snprintf(e.data, sizeof e.data, "model");
    e.model_kl = 1.5;
    e.model_top1 = 0.5;
    rows[n++] = e;
    struct la_row s = mkrow("softmax_step", "none", 0, 1, 128, 8, 1.0);
    snprintf(s.data, sizeof s.data, "model");
    s.model_kl = 0.0;
    s.model_top1 = 1.0;
    rows[n++] = s;
    struct la_row bad = e;
    bad.status = LA_ROW_FAILED;
    bad.model_kl = 100.0;
    rows[n++] = bad;
    struct la_row h5 = e;
    snprintf(h5.data, sizeof h5.data, "h5");
    h5.model_kl = NAN;
    rows[n++] = h5;
    for (int h = 0; h < 2; h++)
        for (int trial = 0; trial < 2; trial++) {
            struct la_row r = mkrow("linear_causal", "prf", 64, 1, 256, 8, 1.0);
            snprintf(r.data, sizeof r.data, "h5");
            r.head = h;
            r.trial = trial;
            r.kl_mean = 10.0 + h + 0.5 * trial;
            heads[nh++] = r;
        }
    struct la_row h32 = heads[0];
    h32.m = 32;
    heads[nh++] = h32;

    struct la_figure fig;
    struct la_error err;
    assert_int_equal(la_fidelity_figure(rows, n, heads, nh, &fig, &err), LA_OK);
    assert_true(fig.fits);
    assert_int_equal(fig.npanels, 2);
    /* Left: prf, prf's heads, elu1 (no heads rows); right: prf, elu1. */
    assert_int_equal(fig.panels[0].count, 3);
    assert_int_equal(fig.panels[1].count, 2);
    assert_string_equal(fig.curves[0].title, "prf");
    assert_string_equal(fig.curves[1].title, "prf: attention KL on its heads");
    assert_int_equal(fig.curves[1].dash, 2);
    assert_string_equal(fig.curves[1].map, "prf");
    assert_string_equal(fig.curves[2].title, "elu1");
    assert_non_null(strstr(fig.panels[0].note, "softmax check (1 row): KL 0, top-1 1"));
    /* prf's model KL: medians over the trials at m = 16 and 64. */
    assert_int_equal(fig.curves[0].npoints, 2);
    assert_near(fig.curves[0].pts[0].x, 16, 0);
    assert_near(fig.curves[0].pts[0].y, 3.1, 1e-12);
    assert_near(fig.curves[0].pts[1].x, 64, 0);
    assert_near(fig.curves[0].pts[1].y, 2.1, 1e-12);
    assert_int_equal(fig.curves[0].pts[1].n, 3);
    /* Heads: the mean over both heads and trials at m = 64 only. */
    assert_int_equal(fig.curves[1].npoints, 1);
    assert_near(fig.curves[1].pts[0].x, 64, 0);
    assert_near(fig.curves[1].pts[0].y, 10.75, 1e-12);
    assert_int_equal(fig.curves[1].pts[0].n, 4);
    /* elu1: the one row, not the failed one. */
    assert_int_equal(fig.curves[2].npoints, 1);
    assert_near(fig.curves[2].pts[0].y, 1.5, 0);
    /* Top-1 of prf at m = 64. */
    assert_near(fig.curves[3].pts[1].y, 0.31, 1e-12);
    la_figure_free(&fig);

    /* Without heads: no dashed series, the stats say how to add them. */
    assert_int_equal(la_fidelity_figure(rows, n, NULL, 0, &fig, &err), LA_OK);
    assert_int_equal(fig.panels[0].count, 2);
    assert_non_null(strstr(fig.stats, "--heads"));
    la_figure_free(&fig);

    /* Only the softmax row: no figure. */
    assert_int_equal(la_fidelity_figure(&s, 1, heads, nh, &fig, &err), LA_OK);
    assert_false(fig.fits);
    la_figure_free(&fig);
}

/* ---- entry -------------------------------------------------------------------------------- */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fields_are_columns), cmocka_unit_test(test_fields_from_schema),
        cmocka_unit_test(test_fields_recurrences),
        cmocka_unit_test(test_fields_text),
        cmocka_unit_test(test_fields_settings),    cmocka_unit_test(test_fields_varying_and_order),
        cmocka_unit_test(test_curves_error_T),     cmocka_unit_test(test_curves_average_heads),
        cmocka_unit_test(test_curves_memory),      cmocka_unit_test(test_curves_bad_spec),
        cmocka_unit_test(test_theory_lines),       cmocka_unit_test(test_crossover_figure),
        cmocka_unit_test(test_crossover_marks_and_auto),
        cmocka_unit_test(test_crossover_recurrences_apart),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_speedup_grid), cmocka_unit_test(test_speedup_wraps),       cmocka_unit_test(test_real_heads),
        cmocka_unit_test(test_fit_figures),
        cmocka_unit_test(test_fidelity_figure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
