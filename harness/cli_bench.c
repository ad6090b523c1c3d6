/* cli_bench.c — `linattn list` and `linattn bench --suite` (the `make bench` table).
 * The suite times every kernel at 1 thread (unless --threads) for d in {32, 64, 128} and
 * T = 256 … 16384, next to the SGEMM rate of a 1024³ product measured in the same run; each
 * kernel's efficiency is its nominal flops (attention.h) per second over that SGEMM rate.
 * Single-cell `bench` (one kernel, one shape, with errors) lives in cli_bench_one.c.
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../featuremaps/featuremap.h"
#include "../kernels/attention.h"
#include "../kernels/vmath.h"
#include "bench.h"
#include "commands.h"
#include "sysinfo.h"
#include "timing.h"

/* ---- list ------------------------------------------------------------------------------- */

int cmd_list(int argc, char **argv)
{
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        puts("usage: linattn list\nLists the attention kernels and the feature maps with a "
             "one-line summary each (maps also list the parameters they read).");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "linattn list: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    printf("kernels:\n");
    for (size_t i = 0; attn_kernels[i].name; i++)
        printf("  %-24s %s%s\n", attn_kernels[i].name, attn_kernels[i].summary,
               attn_kernels[i].causal_support == ATTN_CAUSAL_OK      ? " [causal]"
               : attn_kernels[i].causal_support == ATTN_NONCAUSAL_OK ? " [non-causal]"
                                                                      : " [causal, non-causal]");
    printf("feature maps:\n");
    for (size_t i = 0; featuremap_types[i]; i++)
        printf("  %-24s %s; params: %s\n", featuremap_types[i]->name, featuremap_types[i]->summary,
               featuremap_types[i]->params);
    return 0;
}

/* ---- SGEMM peak ------------------------------------------------------------------------- */

struct sgemm_ctx {
    int n;
    const float *a, *b;
    float *c;
};

static void sgemm_call(void *p)
{
    struct sgemm_ctx *s = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->n, s->n, s->n, 1.0f, s->a, s->n,
                s->b, s->n, 0.0f, s->c, s->n);
}

double la_sgemm_gflops(int n, int threads, struct la_timing *t)
{
    size_t nn = (size_t)n * n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return NAN;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)((i * 7919u) % 1000u) * 1e-3f - 0.5f;
        b[i] = (float)((i * 104729u) % 1000u) * 1e-3f - 0.5f;
        c[i] = 0.0f;
    }
    struct sgemm_ctx ctx = {n, a, b, c};
    openblas_set_num_threads(threads);
    la_time(sgemm_call, &ctx, 2, 5, 50, 0.5, t);
    openblas_set_num_threads(1);
    free(a), free(b), free(c);
    return 2.0 * n * (double)n * n / t->median_s / 1e9;
}

/* ---- the suite -------------------------------------------------------------------------- */

struct kern_ctx {
    const struct attn_kernel *kn;
    struct attn_args args;
    int heads, threads;
    size_t ws;
};

static void kern_call(void *p)
{
    struct kern_ctx *c = p;
    attn_run_heads(c->kn, &c->args, c->heads, c->threads, c->args.work, c->ws);
}

struct fm_ctx {
    const struct featuremap *fm;
    const float *x;
    float *phi, *work;
    size_t n;
};

static void fm_call(void *p)
{
    struct fm_ctx *c = p;
    featuremap_apply(c->fm, FM_KEY, c->x, c->n, c->phi, c->work);
}

static void fill(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x[i] = (float)((double)(z >> 11) * 0x1.0p-53 * 2.0 - 1.0);
    }
}

static void print_row(int tsv, int d, int T, const char *name, int causal, const struct la_timing *t,
                      double flops, double sgemm)
{
    double gf = flops / t->median_s / 1e9;
    if (tsv)
        printf("%d\t%d\t%s\t%d\t%.6g\t%.6g\t%.6g\t%d\t%.4g\t%.4f\n", d, T, name, causal,
               t->median_s, t->p20_s, t->p80_s, t->repeats, gf, gf / sgemm);
    else
        printf("%4d %6d  %-24s %6d %12.6f %12.6f %12.6f %5d %9.2f %7.1f%%\n", d, T, name, causal,
               t->median_s, t->p20_s, t->p80_s, t->repeats, gf, 100.0 * gf / sgemm);
    fflush(stdout);
}

int la_bench_suite(const int *ds, int nd, int Tmin, int Tmax, int threads, double budget, int tsv)
{
    char cpu[256];
    la_cpu_model(cpu, sizeof cpu);
    struct la_timing st;
    double sgemm = la_sgemm_gflops(1024, threads, &st);
    if (!isfinite(sgemm)) {
        fprintf(stderr, "linattn bench: out of memory for the SGEMM reference\n");
        return 1;
    }
    printf("# linattn %s (%s), %s, BLAS %s core %s, vmath %s, threads %d\n", la_version(),
           la_git_commit(), cpu, la_blas_name(), la_blas_core(), la_vmath_isa(), threads);
    printf("# SGEMM 1024^3: %.2f GFLOP/s (median of %d, p20 %.6f s, p80 %.6f s); efficiency = "
           "nominal flops/s / SGEMM rate\n",
           sgemm, st.repeats, st.p20_s, st.p80_s);
    if (tsv)
        printf("d\tT\tkernel\tcausal\ttime_median_s\ttime_p20_s\ttime_p80_s\trepeats\tgflops\t"
               "efficiency\n");
    else
        printf("%4s %6s  %-24s %6s %12s %12s %12s %5s %9s %8s\n", "d", "T", "kernel", "causal",
               "median_s", "p20_s", "p80_s", "reps", "GFLOP/s", "eff");
    size_t Tcap = (size_t)Tmax;
    int dmax = 0;
    for (int i = 0; i < nd; i++)
        dmax = ds[i] > dmax ? ds[i] : dmax;
    /* Allocate and touch every buffer once, before timing (first touch is very slow here). */
    size_t nx = Tcap * (size_t)dmax, wsmax = 0;
    for (size_t k = 0; attn_kernels[k].name; k++)
        for (int c = 0; c <= 1; c++) {
            size_t w = attn_workspace_floats(&attn_kernels[k], Tmax, dmax, dmax, c, 0, threads);
            wsmax = w > wsmax ? w : wsmax;
        }
    float *q = malloc(nx * sizeof *q), *k = malloc(nx * sizeof *k), *v = malloc(nx * sizeof *v);
    float *pq = malloc(nx * sizeof *pq), *pk = malloc(nx * sizeof *pk), *y = malloc(nx * sizeof *y);
    float *work = malloc(wsmax * sizeof *work);
    int rc = 0;
    if (!q || !k || !v || !pq || !pk || !y || !work) {
        fprintf(stderr, "linattn bench: out of memory for T=%d d=%d\n", Tmax, dmax);
        rc = 1;
        goto done;
    }
    memset(work, 0, wsmax * sizeof *work);
    memset(y, 0, nx * sizeof *y);
    fill(q, nx, 1), fill(k, nx, 2), fill(v, nx, 3);
    for (int di = 0; di < nd; di++) {
        const int d = ds[di];
        struct fm_params fp;
        featuremap_params_default(&fp, d);
        struct la_error err;
        struct featuremap *fm = featuremap_alloc("elu1", &fp, NULL, &err);
        if (!fm) {
            fprintf(stderr, "linattn bench: %s\n", err.msg);
            rc = 1;
            goto done;
        }
        for (int T = Tmin; T <= Tmax; T *= 2) {
            featuremap_apply(fm, FM_QUERY, q, (size_t)T, pq, NULL);
            featuremap_apply(fm, FM_KEY, k, (size_t)T, pk, NULL);
            struct fm_ctx fc = {fm, k, pk, NULL, (size_t)T};
            struct la_timing t;
            la_time(fm_call, &fc, 1, 3, 1000, budget, &t);
            print_row(tsv, d, T, "featuremap_elu1", 0, &t, (double)T * d, sgemm);
            for (size_t kk = 0; attn_kernels[kk].name; kk++) {
                const struct attn_kernel *kn = &attn_kernels[kk];
                if (!strcmp(kn->name, "linear_causal"))
                    continue; /* an alias of one of the two algorithms below */
                for (int causal = 0; causal <= 1; causal++) {
                    if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                        continue;
                    const int lin = kn->family == ATTN_LINEAR;
                    struct kern_ctx kc = {kn, {.q = lin ? pq : q, .k = lin ? pk : k, .v = v,
                                               .y = y, .T = T, .dk = d, .dv = d, .causal = causal,
                                               .eps = 1e-6f, .work = work},
                                          1, threads,
                                          attn_workspace_floats(kn, T, d, d, causal, 0, threads)};
                    la_time(kern_call, &kc, 1, 3, 1000, budget, &t);
                    print_row(tsv, d, T, kn->name, causal, &t,
                              attn_nominal_flops(kn, T, d, d, causal), sgemm);
                }
            }
        }
        featuremap_free(fm);
    }
done:
    free(q), free(k), free(v), free(pq), free(pk), free(y), free(work);
    return rc;
}
