/* cli_bench_one.c — `linattn bench`: one kernel at one shape, measured through the runner
 * (the same code path as `linattn run`, and like it at one thread unless --threads), printed
 * for people (aligned) or scripts (--tsv), with its efficiency against the fp32 peak of the
 * cores and against SGEMM, both measured in the same run at the same thread count; `--suite`
 * runs the benchmark table of cli_bench.c instead.
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

static const char bench_help[] =
    "usage: linattn bench [--T N] [--d N] [--dv N] [--map NAME] [--kernel NAME] [--causal]\n"
    "                     [--m M] [--draw iid|orthogonal] [--norm-fixed] [--A X|auto]\n"
    "                     [--weights FILE] [--relu-eps X] [--seed S] [--eps X] [--chunk C]\n"
    "                     [--heads H] [--batch B] [--threads N] [--data gaussian|sphere]\n"
    "                     [--sigma X] [--norm X] [--budget SECONDS] [--ref-rows N] [--tsv]\n"
    "       linattn bench --suite [--d 32,64,128] [--Tmin 256] [--Tmax 16384] [--threads N]\n"
    "                     [--budget SECONDS] [--tsv]\n"
    "\n"
    "One measurement: the kernel's time (median of repeats calibrated to --budget, default 0.2 s),\n"
    "GFLOP/s from its nominal flops, efficiency against the fp32 peak of the cores (FMA chains in\n"
    "registers on the kernels' SIMD path) and against a 1024^3 SGEMM, both timed in the same run\n"
    "at the same threads, the feature map's own time, softmax_flash at the same shape for the\n"
    "speedup, and the output error against exact softmax in double (relative Frobenius, on up to\n"
    "--ref-rows query rows, default 512).\n"
    "Defaults: T 4096, d 64, map elu1, kernel linear_causal with --causal else linear_noncausal,\n"
    "1 thread (as `run`), seed 1, eps 1e-6, gaussian data with sigma 1.\n"
    "--suite: the `make bench` table (kernels x T x d at 1 thread, efficiency against the fp32\n"
    "peak and against SGEMM),\n"
    "then 1 against 2 (or --threads) threads for one and two heads, each row timed in rotation\n"
    "with a register-only FMA loop whose speedup is printed beside it (`control`) and with the\n"
    "round trip of a cache line between two threads (`rt_ns`: ~80 ns on a shared L3).\n";

/* Strict number parsing: the whole argument must be a number inside [lo, hi]. */
static int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "linattn bench: %s expects an integer in %ld..%ld, got '%s'\n", flag, lo,
                hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_double(const char *flag, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "linattn bench: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi,
                s);
        return 0;
    }
    *out = v;
    return 1;
}

static int int_opt(const char *flag, const char *s, long lo, long hi, int *out)
{
    long v;
    if (!parse_long(flag, s, lo, hi, &v))
        return 0;
    *out = (int)v;
    return 1;
}

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

static int name_ok(const char *what, const char *name, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (!strcmp(names[i], name))
            return 1;
    char msg[640];
    fprintf(stderr, "linattn bench: unknown %s '%s'%s\n", what, name,
            la_choices_msg(msg, sizeof msg, name, names, SIZE_MAX, "valid"));
    return 0;
}

static int bench_suite(int argc, char **argv)
{
    int tsv = 0, threads = 1, Tmin = 256, Tmax = 16384, ds[8] = {32, 64, 128}, nd = 3;
    double budget = 0.3;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--suite"))
            continue;
        if (!strcmp(o, "--tsv")) {
            tsv = 1;
            continue;
        }
        if (!val) {
            fprintf(stderr, "linattn bench: %s needs a value\n", o);
            return 2;
        }
        i++;
        if (!strcmp(o, "--threads")) {
            if (!int_opt(o, val, 1, 1024, &threads))
                return 2;
        } else if (!strcmp(o, "--Tmin")) {
            if (!int_opt(o, val, 1, 1 << 24, &Tmin))
                return 2;
        } else if (!strcmp(o, "--Tmax")) {
            if (!int_opt(o, val, 1, 1 << 24, &Tmax))
                return 2;
        } else if (!strcmp(o, "--budget")) {
            if (!parse_double(o, val, 0.0, 3600.0, &budget))
                return 2;
        } else if (!strcmp(o, "--d")) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", val);
            nd = 0;
            for (char *s = buf, *tok; (tok = strtok(s, ",")) && nd < 8; s = NULL)
                if (!int_opt(o, tok, 1, 4096, &ds[nd++]))
                    return 2;
        } else {
            fprintf(stderr, "linattn bench --suite: unknown option '%s'\n%s", o, bench_help);
            return 2;
        }
    }
    return la_bench_suite(ds, nd, Tmin, Tmax, threads, budget, tsv);
}

int cmd_bench(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(bench_help, stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--suite"))
            return bench_suite(argc, argv);
    }
    struct la_cell c;
    cell_defaults(&c);
    int tsv = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--causal")) {
            c.causal = 1;
            continue;
        }
        if (!strcmp(o, "--tsv")) {
            tsv = 1;
            continue;
        }
        if (!strcmp(o, "--norm-fixed")) {
            c.norm_fixed = 1;
            continue;
        }
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strncmp(o, "--", 2) != 0) {
            fprintf(stderr, "linattn bench: unexpected argument '%s'\n", o);
            return 2;
        }
        if (!val) {
            fprintf(stderr, "linattn bench: %s needs a value\n", o);
            return 2;
        }
        i++;
        int ok = 1;
        if (!strcmp(o, "--T"))
            ok = int_opt(o, val, 1, 1 << 26, &c.T);
        else if (!strcmp(o, "--d"))
            ok = int_opt(o, val, 1, 1 << 16, &c.d);
        else if (!strcmp(o, "--dv"))
            ok = int_opt(o, val, 1, 1 << 16, &c.dv);
        else if (!strcmp(o, "--m"))
            ok = int_opt(o, val, 1, 1 << 20, &c.m);
        else if (!strcmp(o, "--heads"))
            ok = int_opt(o, val, 1, 1 << 16, &c.heads);
        else if (!strcmp(o, "--batch"))
            ok = int_opt(o, val, 1, 1 << 16, &c.batch);
        else if (!strcmp(o, "--threads"))
            ok = int_opt(o, val, 1, 1024, &c.threads);
        else if (!strcmp(o, "--chunk"))
            ok = int_opt(o, val, 1, 1 << 16, &c.chunk);
        else if (!strcmp(o, "--ref-rows"))
            ok = int_opt(o, val, 1, 1 << 26, &c.max_ref_rows);
        else if (!strcmp(o, "--seed")) {
            long s;
            ok = parse_long(o, val, 0, 0x7fffffffffffffffL, &s);
            c.seed = (uint64_t)s;
        } else if (!strcmp(o, "--eps"))
            ok = parse_double(o, val, 0.0, 1.0, &c.eps);
        else if (!strcmp(o, "--relu-eps"))
            ok = parse_double(o, val, 0.0, 1.0, &c.relu_eps);
        else if (!strcmp(o, "--sigma"))
            ok = parse_double(o, val, 1e-6, 1e6, &c.sigma);
        else if (!strcmp(o, "--norm"))
            ok = parse_double(o, val, 1e-6, 1e6, &c.norm);
        else if (!strcmp(o, "--budget"))
            ok = parse_double(o, val, 0.0, 3600.0, &c.time_budget_s);
        else if (!strcmp(o, "--A")) {
            if (!strcmp(val, "auto"))
                c.A_auto = 1;
            else
                ok = parse_double(o, val, -1e6, 0.2499999, &c.A);
        } else if (!strcmp(o, "--draw")) {
            if (!strcmp(val, "iid"))
                c.draw = FM_DRAW_IID;
            else if (!strcmp(val, "orthogonal"))
                c.draw = FM_DRAW_ORTHOGONAL;
            else {
                fprintf(stderr, "linattn bench: --draw must be iid or orthogonal, got '%s'\n", val);
                ok = 0;
            }
        } else if (!strcmp(o, "--data")) {
            if (!strcmp(val, "gaussian"))
                c.source = LA_DATA_GAUSSIAN;
            else if (!strcmp(val, "sphere"))
                c.source = LA_DATA_SPHERE;
            else {
                fprintf(stderr, "linattn bench: --data must be gaussian or sphere, got '%s' "
                                "(HDF5 data: use an experiment file)\n", val);
                ok = 0;
            }
        } else if (!strcmp(o, "--map")) {
            ok = name_ok("feature map", val, featuremap_names());
            snprintf(c.map, sizeof c.map, "%s", val);
        } else if (!strcmp(o, "--kernel")) {
            ok = name_ok("kernel", val, attn_kernel_names());
            snprintf(c.kernel, sizeof c.kernel, "%s", val);
        } else if (!strcmp(o, "--weights")) {
            if (access(val, R_OK) != 0) {
                fprintf(stderr, "linattn bench: --weights: cannot read '%s': %s\n", val,
                        strerror(errno));
                ok = 0;
            }
            snprintf(c.weights, sizeof c.weights, "%s", val);
        } else {
            fprintf(stderr, "linattn bench: unknown option '%s' (see linattn bench --help)\n", o);
            ok = 0;
        }
        if (!ok)
            return 2;
    }
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
