/* cmd_bench.c — `linattn bench`: one kernel at one shape, measured through the runner
 * (the same code path as `linattn run`, and like it at one thread unless --threads), printed
 * for people (aligned) or scripts (--tsv), with its efficiency against the fp32 peak of the
 * cores and against SGEMM, both measured in the same run at the same thread count; `--suite`
 * runs the benchmark table of bench_suite.c instead.
 * The cell's options are built from the parameter schema (param_options.c): one per
 * row with a `flag`, read by the schema's parser, defaults and help from the row; a new
 * parameter with a flag needs no edit here.  bench's own options (--seed, --budget, --ref-rows,
 * --tsv, the --suite form) are written below.
 * Tests: tests/cli_errors.sh (bad input, every option's spelling), tests/cli_small.sh (options
 * reach the cell), tests/cli_env.sh (the SIMD path and thread count printed),
 * tests/test_runner.c (the runner itself).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "../core/sysinfo.h"
#include "../engine/runner.h"
#include "../experiment/cell.h"
#include "../experiment/experiment.h"
#include "../experiment/params.h"
#include "bench.h"
#include "commands.h"
#include "options.h"
#include "param_options.h"

/* bench's defaults: the schema's (params.c), with a longer sequence than an experiment's, where
 * the kernels run at speed; the kernel `linear` is resolved once --causal is known. */
#define BENCH_T 4096
static void cell_defaults(struct la_cell *c)
{
    la_cell_defaults(c);
    c->T = BENCH_T;
    c->seed = 1;
}

/* The --suite options. */
#define SUITE_MAX_D 8
struct suite_args {
    int tsv, threads, Tmin, Tmax, ds[SUITE_MAX_D], nd, suite, threads_runs, threads_only;
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
    int tsv = 0;
    long long seed = (long long)c.seed;
    /* The cell's parameters from the schema, then bench's own options (its measurement
     * settings take wider ranges than an experiment's: a budget of 0 is the minimum repeats). */
    struct la_param_rows pr;
    struct la_option one_opts[LA_NPARAMS + 5];
    char budget_help[96], ref_help[96];
    snprintf(budget_help, sizeof budget_help, "time budget of the repeats (default %g s)",
             c.time_budget_s);
    snprintf(ref_help, sizeof ref_help,
             "query rows of the exact reference for the errors (default %d)", c.max_ref_rows);
    size_t n = la_param_options(&c, NULL, 1, &pr, one_opts);
    one_opts[n++] =
        (struct la_option)LA_OPT_INT64("seed", 0, &seed, "S", 0, 0x7fffffffffffffffLL,
                                       "seed of the data and of the map's draws (default 1)");
    one_opts[n++] = (struct la_option)LA_OPT_REAL("budget", 0, &c.time_budget_s, "SECONDS", 0.0,
                                                  3600.0, budget_help);
    one_opts[n++] =
        (struct la_option)LA_OPT_INT("ref-rows", 0, &c.max_ref_rows, "N", 1, 1 << 26, ref_help);
    one_opts[n++] = (struct la_option)LA_OPT_FLAG(
        "tsv", 0, &tsv, "one header line and one row of TSV, for scripts");
    one_opts[n] = (struct la_option)LA_OPT_END;
    struct suite_args sa = {
        .threads = 1, .Tmin = 256, .Tmax = 16384, .ds = {32, 64, 128}, .nd = 3, .budget = 0.3,
        .threads_runs = 1};
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
        LA_OPT_INT("threads-runs", 0, &sa.threads_runs, "N", 1, 100,
                   "run the threads section N times and summarise each row's speedups over "
                   "the runs (default 1)"),
        LA_OPT_FLAG("threads-only", 0, &sa.threads_only,
                    "the threads section alone (no table, backward, recurrence or decode rows)"),
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
                 "exact softmax in double (relative Frobenius, on up to --ref-rows query rows).  "
                 "A step kernel (--kernel linear_step --causal) times one decode step at context "
                 "T of --batch sequences per head, its map on the new rows included, against "
                 "softmax_step.",
        .opts = one_opts,
        .outro = "The options before --seed are the cell parameters of the schema "
                 "(harness/experiment/params.c): an experiment file's names, ranges and defaults "
                 "(T excepted: 4096), checked with its messages.  --kernel linear is "
                 "linear_causal with --causal, else linear_noncausal.  Synthetic data only "
                 "(gaussian, sphere); h5 data: an experiment file.",
    };
    struct la_command suite = {
        .prog = "linattn bench",
        .args = "--suite",
        .intro = "--suite: the `make bench` table (kernels x T x d at 1 thread, efficiency "
                 "against the fp32 peak and against SGEMM), then 1 against 2 (or --threads) "
                 "threads for one and two heads, each row timed in rotation with a register-only "
                 "FMA loop whose speedup is printed beside it (`control`) and with the round trip "
                 "of a cache line between two threads (`rt_ns`: ~80 ns on a shared L3; "
                 "--threads-runs N repeats that section and summarises each row over the runs); "
                 "last, "
                 "the decode rows (softmax and linear steps, bytes/s against a read bandwidth of "
                 "memory and of L2 measured in the same run).",
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
        return la_bench_suite(sa.ds, sa.nd, sa.Tmin, sa.Tmax, sa.threads, sa.budget, sa.tsv,
                              sa.threads_runs, sa.threads_only);
    c.seed = (uint64_t)seed;
    if (c.source == LA_DATA_H5) {
        fprintf(stderr, "linattn bench: --data h5 needs an HDF5 file, which bench does not read: "
                        "run an experiment file (linattn run) for h5 data\n");
        return 2;
    }
    if (c.source == LA_DATA_MODEL) {
        fprintf(stderr, "linattn bench: --data model needs a checkpoint, which bench does not "
                        "read: run an experiment file (linattn run; experiments/fidelity.yaml)\n");
        return 2;
    }
    if (!c.dv)
        c.dv = c.d;
    if (c.norm == 0.0)
        c.norm = sqrt((double)c.d);
    if (!strcmp(c.kernel, "linear"))
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
    /* The softmax kernel of the same operation (softmax_flash for a forward pass, softmax_step
     * for a decode step) at the same shape, timed only, for the speedup. */
    double soft_t = NAN;
    const struct attn_kernel *sk = attn_kernel_find(kn->op, ATTN_IN_QK, c.causal);
    if (kn->input == ATTN_IN_FEATURES && sk) {
        struct la_cell s = c;
        snprintf(s.kernel, sizeof s.kernel, "%s", sk->name);
        snprintf(s.map, sizeof s.map, "none");
        s.measure_error = 0;
        if (la_run_cell(ws, &s, &srow, &err) == LA_OK)
            soft_t = srow.time_median_s;
    } else {
        soft_t = row.time_median_s;
    }
    /* What one pays: kernel and map (a step's time already includes the map on its new rows). */
    const double total = row.time_median_s + (kn->op != ATTN_OP_STEP && isfinite(row.fm_time_median_s)
                                                  ? row.fm_time_median_s
                                                  : 0.0);
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
        if (c.pass != LA_PASS_FORWARD) {
            const int lin = kn->input == ATTN_IN_FEATURES, fb = c.pass != LA_PASS_BACKWARD;
            printf(
                "pass              %s (%s%s; one timed region, harness/engine/train.h)\n", row.pass,
                fb ? (lin ? "the map and the forward kernel, then " : "the forward kernel, then ")
                   : "",
                lin ? "the backward kernel and the map's backward" : "the backward kernel");
        } else if (kn->input == ATTN_IN_FEATURES && !isfinite(row.fm_time_median_s)) {
            printf("feature map time  inside the time above (the kernel applies the map itself)\n");
        } else if (kn->input == ATTN_IN_FEATURES) {
            printf("feature map time  %.6f s\n", row.fm_time_median_s);
        }
        printf("rate              %.2f GFLOP/s = %.1f%% of the fp32 peak (%.2f GFLOP/s, %s), "
               "%.1f%% of SGEMM (%.2f GFLOP/s); both same run and threads\n",
               row.gflops, 100.0 * peff, peak, la_fma_loop_desc(isa), 100.0 * eff, sgemm);
        if (kn->input == ATTN_IN_FEATURES && sk)
            printf("%-17s %.6f s  -> speedup %.2fx (kernel + feature map)\n", sk->name, soft_t,
                   soft_t / total);
        printf("error vs softmax  rel. Frobenius %.4g, max abs %.4g, cosine %.6f (%d rows)\n",
               row.err_rel_fro, row.err_max_abs, row.cos_mean, row.err_rows);
        if (kn->input == ATTN_IN_FEATURES)
            printf("attention KL      %.4g (mean over %d rows); implementation error %.3g; "
                   "rows with |den| <= eps: %lld\n",
                   row.kl_mean, row.kl_rows, row.err_impl, (long long)row.n_small_den);
        if (c.pass != LA_PASS_FORWARD)
            printf("gradient error    rel. Frobenius %.3g of (dQ, dK, dV) against the double "
                   "reference; holds %.1f MiB\n",
                   row.err_grad, row.step_bytes / 1048576.0);
        printf("seed              %llu\n", (unsigned long long)row.seed);
    }
done:
    la_runner_ws_free(ws);
    return rc;
}
