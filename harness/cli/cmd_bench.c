/* cmd_bench.c — `linattn bench`: one kernel at one shape, measured through the runner
 * (the same code path as `linattn run`, and like it at one thread unless --threads), printed
 * for people (aligned) or scripts (--tsv), with its efficiency against the fp32 peak of the
 * cores and against SGEMM, both measured in the same run at the same thread count; `--suite`
 * runs the benchmark table of bench_suite.c instead.
 * Tests: tests/cli_errors.sh (bad input), tests/cli_env.sh (the SIMD path and thread count
 * printed), tests/test_runner.c (the runner itself).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "../core/sysinfo.h"
#include "../engine/runner.h"
#include "../experiment/cell.h"
#include "../experiment/experiment.h"
#include "bench.h"
#include "commands.h"
#include "options.h"

static void cell_defaults(struct la_cell *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->kernel, sizeof c->kernel, "%s", "");
    snprintf(c->map, sizeof c->map, "%s", "elu1");
    c->draw = FM_DRAW_IID;
    c->relu_eps = 1e-3;
    c->eps = 1e-6;
    c->T = 4096;
    c->d = 64;
    c->dv = 0;
    c->batch = 1;
    c->heads = 1;
    c->threads = 1; /* as `run` and the README's tables; --threads for more */
    c->source = LA_DATA_GAUSSIAN;
    c->sigma = 1.0;
    c->norm = 0.0;
    c->head = -1;
    c->seed = 1;
    la_cell_measure_defaults(c);
}

/* --map, --kernel: a registered name, copied into the cell. */
struct name_arg {
    char *dst;
    size_t cap;
    const char *what; /* "feature map", "kernel" */
    const char *const *names;
};

static int set_name(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    const struct name_arg *a = opt->target;
    snprintf(a->dst, a->cap, "%s", value);
    for (size_t i = 0; a->names[i]; i++)
        if (!strcmp(a->names[i], value))
            return 0;
    const int w = snprintf(msg, cap, "unknown %s '%s'", a->what, value);
    if (w > 0 && (size_t)w < cap)
        la_choices_msg(msg + w, cap - (size_t)w, value, a->names, SIZE_MAX, "valid");
    return 1;
}

/* --A X|auto: gerf's A, or chosen from the data. */
static int set_A(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    struct la_cell *c = opt->target;
    if (!strcmp(value, "auto")) {
        c->A_auto = 1;
        return 0;
    }
    const struct la_option real = LA_OPT_REAL("A", 0, &c->A, "X", -1e6, 0.2499999, NULL);
    return la_opt_store(&real, value, msg, cap);
}

/* --weights FILE: a readable file, copied into the cell. */
static int set_weights(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    struct la_cell *c = opt->target;
    snprintf(c->weights, sizeof c->weights, "%s", value);
    if (access(value, R_OK) != 0) {
        snprintf(msg, cap, "--weights: cannot read '%s': %s", value, strerror(errno));
        return 1;
    }
    return 0;
}

/* The --suite options. */
#define SUITE_MAX_D 8
struct suite_args {
    int tsv, threads, Tmin, Tmax, ds[SUITE_MAX_D], nd, suite;
    double budget;
};

/* --d 32,64,128: the head dimensions of the suite. */
static int set_ds(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    struct suite_args *a = opt->target;
    int d;
    const struct la_option row = LA_OPT_INT("d", 0, &d, "N", 1, 4096, NULL);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", value);
    a->nd = 0;
    for (char *s = buf, *tok; (tok = strtok(s, ",")); s = NULL) {
        if (a->nd == SUITE_MAX_D) {
            snprintf(msg, cap, "--d takes at most %d values, got '%s'", SUITE_MAX_D, value);
            return 1;
        }
        if (la_opt_store(&row, tok, msg, cap))
            return 1;
        a->ds[a->nd++] = d;
    }
    if (a->nd == 0) {
        snprintf(msg, cap, "--d expects a list of integers in 1..4096, got '%s'", value);
        return 1;
    }
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    struct la_cell c;
    cell_defaults(&c);
    int tsv = 0, data = 0;
    long long seed = (long long)c.seed;
    static const char *const draws[] = {"iid", "orthogonal", NULL};    /* enum fm_draw */
    static const char *const sources[] = {"gaussian", "sphere", NULL}; /* LA_DATA_* */
    struct name_arg map = {c.map, sizeof c.map, "feature map", featuremap_names()};
    struct name_arg kernel = {c.kernel, sizeof c.kernel, "kernel", attn_kernel_names()};
    const struct la_option one_opts[] = {
        LA_OPT_INT("T", 0, &c.T, "N", 1, 1 << 26, "sequence length (default 4096)"),
        LA_OPT_INT("d", 0, &c.d, "N", 1, 1 << 16, "head dimension of Q and K (default 64)"),
        LA_OPT_INT("dv", 0, &c.dv, "N", 1, 1 << 16, "head dimension of V (default d)"),
        LA_OPT_CALLBACK("map", 0, set_name, &map, "NAME", "feature map (default elu1)"),
        LA_OPT_CALLBACK("kernel", 0, set_name, &kernel, "NAME",
                        "attention kernel (default linear_causal with --causal, else "
                        "linear_noncausal)"),
        LA_OPT_FLAG("causal", 0, &c.causal, "causal attention"),
        LA_OPT_INT("m", 0, &c.m, "M", 1, 1 << 20, "features of the map (default: the map's own)"),
        LA_OPT_CHOICE("draw", 0, &c.draw, draws, "random maps: how W is drawn (default iid)"),
        LA_OPT_FLAG("norm-fixed", 0, &c.norm_fixed,
                    "orthogonal draws: row norms fixed at sqrt(d) instead of chi(d) draws"),
        LA_OPT_CALLBACK("A", 0, set_A, &c, "X|auto",
                        "gerf: the parameter A (< 0.25), or auto: chosen from the data"),
        LA_OPT_CALLBACK("weights", 0, set_weights, &c, "FILE", "learned: the weights file"),
        LA_OPT_REAL("relu-eps", 0, &c.relu_eps, "X", 0.0, 1.0,
                    "relu: the constant added to max(x, 0) (default 1e-3)"),
        LA_OPT_INT64("seed", 0, &seed, "S", 0, 0x7fffffffffffffffLL,
                     "seed of the data and of the map's draws (default 1)"),
        LA_OPT_REAL("eps", 0, &c.eps, "X", 0.0, 1.0,
                    "linear kernels: eps of the normaliser (default 1e-6)"),
        LA_OPT_INT("chunk", 0, &c.chunk, "C", 1, 1 << 16,
                   "linear_causal_chunked: the chunk length (default: the kernel's own)"),
        LA_OPT_INT("heads", 0, &c.heads, "H", 1, 1 << 16, "heads (default 1)"),
        LA_OPT_INT("batch", 0, &c.batch, "B", 1, 1 << 16,
                   "batch: B x H independent heads (default 1)"),
        LA_OPT_INT("threads", 0, &c.threads, "N", 1, 1024, "threads (default 1, as `run`)"),
        LA_OPT_CHOICE("data", 0, &data, sources,
                      "synthetic inputs: iid N(0, sigma^2), or rows on the sphere of radius "
                      "--norm (default gaussian; HDF5 data: use an experiment file)"),
        LA_OPT_REAL("sigma", 0, &c.sigma, "X", 1e-6, 1e6,
                    "gaussian: the standard deviation (default 1)"),
        LA_OPT_REAL("norm", 0, &c.norm, "X", 1e-6, 1e6, "sphere: the row norm (default sqrt(d))"),
        LA_OPT_REAL("budget", 0, &c.time_budget_s, "SECONDS", 0.0, 3600.0,
                    "time budget of the repeats (default 0.2 s)"),
        LA_OPT_INT("ref-rows", 0, &c.max_ref_rows, "N", 1, 1 << 26,
                   "query rows of the exact reference for the errors (default 512)"),
        LA_OPT_FLAG("tsv", 0, &tsv, "one header line and one row of TSV, for scripts"),
        LA_OPT_END,
    };
    struct suite_args sa = {
        .threads = 1, .Tmin = 256, .Tmax = 16384, .ds = {32, 64, 128}, .nd = 3, .budget = 0.3};
    const struct la_option suite_opts[] = {
        {.name = "suite", .kind = LA_OPTK_FLAG, .flags = LA_OPT_HIDDEN, .target = &sa.suite},
        LA_OPT_CALLBACK("d", 0, set_ds, &sa, "LIST",
                        "head dimensions, comma-separated (default 32,64,128)"),
        LA_OPT_INT("Tmin", 0, &sa.Tmin, "N", 1, 1 << 24, "the first T (default 256)"),
        LA_OPT_INT("Tmax", 0, &sa.Tmax, "N", 1, 1 << 24,
                   "the last T: T doubles from Tmin up to Tmax (default 16384)"),
        LA_OPT_INT("threads", 0, &sa.threads, "N", 1, 1024,
                   "threads of the table; the threads section compares 1 with N (default 1; "
                   "there: 2)"),
        LA_OPT_REAL("budget", 0, &sa.budget, "SECONDS", 0.0, 3600.0,
                    "time budget of each row's repeats (default 0.3 s)"),
        LA_OPT_FLAG("tsv", 0, &sa.tsv, "TSV, for scripts"),
        LA_OPT_END,
    };
    struct la_command one = {
        .prog = "linattn bench",
        .intro = "One measurement: the kernel's time (median of repeats calibrated to --budget), "
                 "GFLOP/s from its nominal flops, efficiency against the fp32 peak of the cores "
                 "(FMA chains in registers on the kernels' SIMD path) and against a 1024^3 SGEMM, "
                 "both timed in the same run at the same threads, the feature map's own time, "
                 "softmax_flash at the same shape for the speedup, and the output error against "
                 "exact softmax in double (relative Frobenius, on up to --ref-rows query rows).",
        .opts = one_opts,
    };
    struct la_command suite = {
        .prog = "linattn bench",
        .args = "--suite",
        .intro = "--suite: the `make bench` table (kernels x T x d at 1 thread, efficiency "
                 "against the fp32 peak and against SGEMM), then 1 against 2 (or --threads) "
                 "threads for one and two heads, each row timed in rotation with a register-only "
                 "FMA loop whose speedup is printed beside it (`control`) and with the round trip "
                 "of a cache line between two threads (`rt_ns`: ~80 ns on a shared L3).",
        .opts = suite_opts,
    };
    const struct la_command *forms[] = {&one, &suite, NULL};
    one.forms = suite.forms = forms;
    /* --suite picks the form (and its table) before anything is parsed. */
    int want_suite = 0;
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
        want_suite |= !strcmp(argv[i], "--suite");
    int nargs;
    const int prc = la_opt_parse(want_suite ? &suite : &one, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (want_suite)
        return la_bench_suite(sa.ds, sa.nd, sa.Tmin, sa.Tmax, sa.threads, sa.budget, sa.tsv);
    c.seed = (uint64_t)seed;
    c.source = data == 1 ? LA_DATA_SPHERE : LA_DATA_GAUSSIAN;
    if (!c.dv)
        c.dv = c.d;
    if (c.norm == 0.0)
        c.norm = sqrt((double)c.d);
    if (!c.kernel[0])
        snprintf(c.kernel, sizeof c.kernel, "%s", c.causal ? "linear_causal" : "linear_noncausal");
    const struct attn_kernel *kn = attn_kernel_lookup(c.kernel);
    if (!(kn->causal_support & (c.causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK))) {
        fprintf(stderr, "linattn bench: kernel %s is %s only; %s --causal\n", c.kernel,
                c.causal ? "non-causal" : "causal", c.causal ? "drop" : "add");
        return 2;
    }
    if (kn->input != ATTN_IN_FEATURES)
        snprintf(c.map, sizeof c.map, "none");
    /* Refuse sizes this machine cannot hold before touching memory (touching a too-large
     * buffer would end in the OOM killer, not in an error message). */
    double need = la_cell_bytes(&c);
    double have = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    if (need > LA_RAM_CEILING * have) {
        fprintf(stderr, "linattn bench: T=%d d=%d needs about %.3g GB of memory; this machine "
                        "has %.3g GB\n", c.T, c.d, need / 1e9, have / 1e9);
        return 2;
    }

    struct la_runner_ws *ws = la_runner_ws_alloc();
    if (!ws) {
        fprintf(stderr, "linattn bench: out of memory\n");
        return 2;
    }
    struct la_timing st, pt;
    const int isa = la_simd_isa();
    /* Both references at the kernel's thread count. */
    const double peak = la_fp32_peak_gflops(isa, c.threads, &pt);
    const double sgemm = la_sgemm_gflops(1024, c.threads, &st);
    struct la_row row, srow;
    struct la_error err;
    la_error_clear(&err);
    int rc = 0;
    int st1 = la_run_cell(ws, &c, &row, &err);
    if (st1 != LA_OK) {
        fprintf(stderr, "linattn bench: %s\n", row.message[0] ? row.message : err.msg);
        rc = la_exit_code(st1);
        goto done;
    }
    /* softmax_flash at the same shape, timed only, for the speedup. */
    double soft_t = NAN;
    if (kn->input == ATTN_IN_FEATURES) {
        struct la_cell s = c;
        snprintf(s.kernel, sizeof s.kernel, "softmax_flash");
        snprintf(s.map, sizeof s.map, "none");
        s.measure_error = 0;
        if (la_run_cell(ws, &s, &srow, &err) == LA_OK)
            soft_t = srow.time_median_s;
    } else {
        soft_t = row.time_median_s;
    }
    const double total = row.time_median_s + (isfinite(row.fm_time_median_s) ? row.fm_time_median_s : 0.0);
    const double eff = row.gflops / sgemm, peff = row.gflops / peak;
    if (tsv) {
        printf("kernel\tmap\tT\td\tm\tdv\tcausal\theads\tthreads\ttime_median_s\ttime_p20_s\t"
               "time_p80_s\trepeats\tfm_time_median_s\tgflops\tsgemm_gflops\tefficiency\t"
               "softmax_time_s\tspeedup_vs_softmax\terr_rel_fro\terr_impl\tkl_mean\tn_small_den\t"
               "seed\tpeak_gflops\tpeak_efficiency\tsimd\n");
        printf("%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%.6g\t%.6g\t%.6g\t%d\t%.6g\t%.6g\t%.6g\t%.4f\t"
               "%.6g\t%.4g\t%.6g\t%.6g\t%.6g\t%lld\t%llu\t%.6g\t%.4f\t%s\n",
               row.kernel, row.map, row.T, row.d, row.m, row.dv, row.causal, row.heads * row.batch,
               row.threads, row.time_median_s, row.time_p20_s, row.time_p80_s, row.repeats,
               row.fm_time_median_s, row.gflops, sgemm, eff, soft_t, soft_t / total,
               row.err_rel_fro, row.err_impl, row.kl_mean, (long long)row.n_small_den,
               (unsigned long long)row.seed, peak, peff, la_simd_name(isa));
    } else {
        printf("kernel            %s\n", row.kernel);
        printf("feature map       %s (m = %d)\n", row.map, row.m);
        printf("shape             T = %d, d = %d, dv = %d, heads = %d, %s\n", row.T, row.d, row.dv,
               row.heads * row.batch, row.causal ? "causal" : "non-causal");
        printf("threads           %d\n", row.threads);
        printf("simd path         %s (vmath %s)\n", la_simd_name(isa), la_vmath_isa());
        printf("time (median)     %.6f s   (p20 %.6f, p80 %.6f, %d repeats)\n", row.time_median_s,
               row.time_p20_s, row.time_p80_s, row.repeats);
        if (kn->input == ATTN_IN_FEATURES)
            printf("feature map time  %.6f s\n", row.fm_time_median_s);
        printf("rate              %.2f GFLOP/s = %.1f%% of the fp32 peak (%.2f GFLOP/s, %s), "
               "%.1f%% of SGEMM (%.2f GFLOP/s); both same run and threads\n",
               row.gflops, 100.0 * peff, peak, la_fma_loop_desc(isa), 100.0 * eff, sgemm);
        if (kn->input == ATTN_IN_FEATURES)
            printf("softmax_flash     %.6f s  -> speedup %.2fx (kernel + feature map)\n", soft_t,
                   soft_t / total);
        printf("error vs softmax  rel. Frobenius %.4g, max abs %.4g, cosine %.6f (%d rows)\n",
               row.err_rel_fro, row.err_max_abs, row.cos_mean, row.err_rows);
        if (kn->input == ATTN_IN_FEATURES)
            printf("attention KL      %.4g (mean over %d rows); implementation error %.3g; "
                   "rows with |den| <= eps: %lld\n",
                   row.kl_mean, row.kl_rows, row.err_impl, (long long)row.n_small_den);
        printf("seed              %llu\n", (unsigned long long)row.seed);
    }
done:
    la_runner_ws_free(ws);
    return rc;
}
