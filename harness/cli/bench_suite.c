/* bench_suite.c — the benchmark table of `linattn bench --suite` (`make bench`), and the SGEMM
 * reference rate that it and the single-cell bench compare with (bench.h).
 * The suite times every kernel at 1 thread (unless --threads) for d in {32, 64, 128} and
 * T = 256 … 16384, next to two rates measured in the same run: the fp32 peak of the cores
 * (peak.c: FMA chains in registers on the widest vector of the SIMD path the kernels use) and
 * the SGEMM rate of a 1024³ product.  Each kernel's nominal flops (attention.h), and each
 * feature-map row's (featuremap.h), per second are printed over both: `peak` and `eff` (over
 * SGEMM).
 * Per T it also times the default causal kernel with its elu1 feature map included
 * ("elu1+linear_causal": φ(Q), φ(K), then linear_causal) against the seed's literal loop
 * ("linear_causal_seed", which applies elu+1 inside) and prints the speedup; then elu1 and
 * relu with linear_causal and linear_noncausal, the map applied apart ("relu+linear_causal")
 * and fused into the kernel ("relu+linear_causal_fused": the kernel maps raw rows block by
 * block, attn_args.fused_map), all rated on the kernel's nominal flops (the map's are not
 * counted), each pair followed by the map's share of the two totals against the kernel alone
 * on features (its row in the table).  After the table:
 * the backward kernels' rows (bench_backward.c), the "kernel + feature map" rows of prf, gerf,
 * hyp (m = 256) and taylor2 at T = Tmax (bench_maps.c: the map alone, the kernel alone, the
 * two together with the map's share of the time), and a threads section (1 vs 2 threads, or vs
 * --threads, for heads = 1 and heads = 2; softmax at T = min(Tmax, 8192), linear kernels at T =
 * Tmax; forward kernels, the backward kernels that split a head: softmax_flash_backward causal,
 * linear_noncausal_backward, linear_causal_chunked_backward, and two recurrences,
 * linear_decay_recurrent (γ = 0.95) and linear_delta_recurrent (β = 0.5, keys and queries
 * divided by their sums, so its state stays bounded)) with speedups and,
 * beside each, the speedup of the peak's FMA loop (peak.c) timed in rotation with it (the
 * control: what the machine's cores gave at that moment) and the core-to-core round trip of a
 * cache line (rt_ns: whether the two threads share an L3); a row whose control falls short is
 * measured again (up to 3 tries, the best control kept, the number of tries printed); with
 * --threads-runs N the section runs N times and ends with each row's speedups over the runs,
 * the runs that met the goal among those whose control showed the cores free, and (two
 * threads) the one-head speedup over the two-head one in each run (--threads-only: that section
 * alone).  Then
 * the backward rows (bench_backward.c), the recurrences' rows (bench_recur.c: sum, decay, gated,
 * delta at d = 64, T = 16384) and, last, the decode rows (bench_decode.c: softmax and linear
 * steps against a read bandwidth measured in the same run).
 * The command (its options, and the single-cell bench: one kernel, one shape, with errors) is
 * cmd_bench.c.
 */
#include <cblas.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <omp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "../core/sysinfo.h"
#include "../core/timing.h"
#include "bench.h"
#include "../core/util.h"

/* Float buffers start on a 64-byte line, as the runner's do (harness/engine/runner.c). */
static float *bench_alloc(size_t n)
{
    const size_t bytes = (n ? n : 1) * sizeof(float);
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
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
    float *a = bench_alloc(nn), *b = bench_alloc(nn), *c = bench_alloc(nn);
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
    la_blas_set_threads(threads);
    la_time(sgemm_call, &ctx, 2, 10, 100, 1.0, t);
    la_blas_set_threads(1);
    free(a), free(b), free(c);
    /* A peak: the time 20% of the calls beat, so a slow spell of a shared machine during these
     * calls does not lower it (and so raise every efficiency computed from it). */
    return 2.0 * n * (double)n * n / t->p20_s / 1e9;
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

/* Feature map of Q and K, then the kernel: what a user of the default causal kernel pays. */
struct e2e_ctx {
    const struct featuremap *fm;
    const float *q, *k;
    float *pq, *pk;
    struct kern_ctx kc;
};

static void e2e_call(void *p)
{
    struct e2e_ctx *c = p;
    featuremap_apply(c->fm, FM_QUERY, c->q, (size_t)c->kc.args.T, c->pq, NULL);
    featuremap_apply(c->fm, FM_KEY, c->k, (size_t)c->kc.args.T, c->pk, NULL);
    kern_call(&c->kc);
}

static void fill(float *x, size_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(la_splitmix64_unit(&s) * 2.0 - 1.0);
}

/* The two rates every row is compared with, both measured at the start of the run. */
struct refs {
    double sgemm, peak; /* GFLOP/s */
};

static void print_row(int tsv, int d, int T, const char *name, int causal,
                      const struct la_timing *t, double flops, const struct refs *r)
{
    double gf = flops / t->median_s / 1e9;
    if (tsv)
        printf("%d\t%d\t%s\t%d\t%.6g\t%.6g\t%.6g\t%d\t%.4g\t%.4f\t%.4f\n", d, T, name,
               causal, t->median_s, t->p20_s, t->p80_s, t->repeats, gf, gf / r->sgemm,
               gf / r->peak);
    else
        printf("%4d %6d  %-28s %6d %12.6f %12.6f %12.6f %5d %9.2f %7.1f%% %7.1f%%\n", d, T, name,
               causal, t->median_s, t->p20_s, t->p80_s, t->repeats, gf, 100.0 * gf / r->peak,
               100.0 * gf / r->sgemm);
    fflush(stdout);
}

/* A deterministic map with a linear kernel, as a user pays for it: φ(Q), φ(K) applied apart
 * (featuremap_apply) then the kernel on the features, and the same map fused into the kernel
 * (attn_args.fused_map: the kernel maps each block of raw rows as it reads it).  Both rows are
 * rated on the kernel's nominal flops only (the map's are not counted); then a line with the
 * map's share of each total, against the kernel alone on features (t_kernel, timed in the
 * table above in the same run): (total − t_kernel) / total. */
struct map_run {
    const struct featuremap *fm;
    const float *q, *k;
    float *pq, *pk;
    struct kern_ctx kc;
};

static void map_run_call(void *p)
{
    struct map_run *c = p;
    if (c->kc.args.fused_map == ATTN_MAP_NONE) {
        featuremap_apply(c->fm, FM_QUERY, c->q, (size_t)c->kc.args.T, c->pq, NULL);
        featuremap_apply(c->fm, FM_KEY, c->k, (size_t)c->kc.args.T, c->pk, NULL);
    }
    kern_call(&c->kc);
}

static void bench_fused_pair(int tsv, int d, int T, const struct featuremap *fm,
                             const struct attn_kernel *kn, int causal, const float *q,
                             const float *k, float *pq, float *pk, const float *v, float *y,
                             float *work, int threads, double budget, double t_kernel,
                             const struct refs *r)
{
    float map_eps = 0.0f;
    const int fmap = featuremap_fused(fm, &map_eps);
    const double flops = attn_nominal_flops(kn, T, d, d, causal);
    struct la_timing t[2];
    for (int fused = 0; fused <= 1; fused++) {
        struct map_run mr = {fm, q, k, pq, pk,
                             {kn, {.q = fused ? q : pq, .k = fused ? k : pk, .v = v, .y = y,
                                   .T = T, .dk = d, .dv = d, .causal = causal, .eps = 1e-6f,
                                   .work = work, .fused_map = fused ? fmap : ATTN_MAP_NONE,
                                   .map_eps = map_eps},
                              1, threads, attn_workspace_floats(kn, T, d, d, causal, 0, threads)}};
        la_time(map_run_call, &mr, 1, 3, 1000, budget, &t[fused]);
        char name[64];
        snprintf(name, sizeof name, "%s+%s%s", fm->type->name, kn->name,
                 fused ? "_fused" : "");
        print_row(tsv, d, T, name, causal, &t[fused], flops, r);
    }
    printf("# d=%d T=%d %s+%s: the map's share of the total, (total - kernel) / total, with the "
           "kernel alone %.6f s: apart %.1f%%, fused %.1f%%; fused/apart time %.3f\n",
           d, T, fm->type->name, kn->name, t_kernel,
           100.0 * (t[0].median_s - t_kernel) / t[0].median_s,
           100.0 * (t[1].median_s - t_kernel) / t[1].median_s, t[1].median_s / t[0].median_s);
}

/* The d (64 if asked for, else the first) that the extra sections use. */
static int section_d(const int *ds, int nd)
{
    for (int i = 0; i < nd; i++)
        if (ds[i] == 64)
            return 64;
    return ds[0];
}

/* The control column of the threads section: the peak's FMA loop (peak.c, on the kernels'
 * SIMD path; no memory traffic and nothing shared), split evenly over the threads.  Its 1 -> n
 * speedup is what this machine gives n threads at that moment: on a shared VM two vCPUs can
 * sit on one core's SMT siblings for a while, and then no kernel can scale. */
#define FMA_ITERS 400000 /* about 1.2 ms a call at one thread with AVX-512 on Zen 5 */
#define CONTROL_OK 0.9   /* the control's speedup over the thread count that counts as undisturbed */
#define THREAD_TRIES 3
#define BLOCK_BELOW_S 0.02 /* calls shorter than this are timed in blocks (see bench_threads) */
#define BLOCK_LEAD_S 0.025 /* the untimed lead of each block */

struct fma_ctx {
    long iters;
    int threads, isa;
    float sink;
};

static void fma_call(void *p)
{
    struct fma_ctx *c = p;
    float s = 0.0f;
    if (c->threads <= 1) {
        s = la_fma_loop(c->isa, c->iters);
    } else {
#pragma omp parallel num_threads(c->threads) reduction(+ : s)
        s += la_fma_loop(c->isa, c->iters / omp_get_num_threads());
    }
    c->sink += s;
}

/* The second control: threads 0 and 1 hand one cache line back and forth PINGPONG_TRIPS
 * times (an atomic counter each bumps in turn).  A round trip costs about 60 ns between two
 * cores that share an L3 and about 330 ns between cores on different dies, which is where a
 * VM's two vCPUs sometimes sit; kernels whose threads read the same rows (the recurrent one:
 * every thread reads all of Q and K) then scale worse, and the FMA control cannot see it. */
#define PINGPONG_TRIPS 2000
static void pingpong_call(void *p)
{
    atomic_int *line = p;
    atomic_store_explicit(line, 0, memory_order_relaxed);
#pragma omp parallel num_threads(2)
    {
        const int th = omp_get_thread_num();
        if (omp_get_num_threads() == 2)
            for (int i = 0; i < PINGPONG_TRIPS; i++) {
                const int want = 2 * i + th;
                while (atomic_load_explicit(line, memory_order_acquire) != want)
                    ;
                atomic_store_explicit(line, want + 1, memory_order_release);
            }
    }
}

/* Compares doubles, for qsort. */
static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* 1 thread against nt threads, for one head (threads inside the head) and two heads (OpenMP
 * over heads), on the same inputs, timed in rotation with the two controls (fma_call at 1 and
 * nt threads, pingpong_call); prints both medians, the speedup (the ratio of the medians), the
 * FMA control's speedup, the round trip and the number of tries.  With runs > 1 the whole
 * section runs `runs` times (each run's rows printed as they come), then one summary line per
 * row: its speedups over the runs (min, median, max), the runs whose control showed the cores
 * free (>= CONTROL_OK of the thread count), and of those the runs at >= SPEEDUP_GOAL_1 times the
 * thread count over 2 on one head (>= SPEEDUP_GOAL_2 on two heads): "8 of 10" is then read off,
 * no run dropped. */
#define SPEEDUP_GOAL_1 1.8
#define SPEEDUP_GOAL_2 1.9
#define THREAD_ROWS 10
#define THREAD_RUNS_MAX 100
static int bench_threads(const int *ds, int nd, int Tmax, int nt, double budget, int tsv, int runs)
{
    const int d = section_d(ds, nd), Tsm = Tmax < 8192 ? Tmax : 8192;
    static const struct {
        const char *name;
        int causal;
        float gate;     /* the recurrences' γ or β (gate_const) */
        int recur_norm; /* their normaliser */
    } rows[THREAD_ROWS] = {{"softmax_flash", 0, 0.0f, 0},
                           {"softmax_flash", 1, 0.0f, 0},
                           {"linear_noncausal", 0, 0.0f, 0},
                           {"linear_causal_recurrent", 1, 0.0f, 0},
                           {"linear_causal_chunked", 1, 0.0f, 0},
                           {"softmax_flash_backward", 1, 0.0f, 0},
                           {"linear_noncausal_backward", 0, 0.0f, 0},
                           {"linear_causal_chunked_backward", 1, 0.0f, 0},
                           {"linear_decay_recurrent", 1, 0.95f, ATTN_RN_RULE},
                           {"linear_delta_recurrent", 1, 0.5f, ATTN_RN_SUM}};
    runs = runs < 1 ? 1 : runs > THREAD_RUNS_MAX ? THREAD_RUNS_MAX : runs;
    static double sp[THREAD_ROWS][2][THREAD_RUNS_MAX], ctl[THREAD_ROWS][2][THREAD_RUNS_MAX];
    const size_t nx = 2 * (size_t)Tmax * d;
    size_t wsmax = 0;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct attn_kernel *kn = attn_kernel_lookup(rows[i].name);
        if (!kn)
            continue;
        for (int h = 1; h <= 2; h++)
            for (int pass = 0; pass < 2; pass++) {
                const int th = pass ? nt : 1;
                const size_t w = attn_workspace_floats(kn, Tmax, d, d, rows[i].causal, 0,
                                                       h == 1 ? th : 1) *
                                 (size_t)(h < th ? h : th);
                wsmax = w > wsmax ? w : wsmax;
            }
    }
    float *q = bench_alloc(nx), *k = bench_alloc(nx), *v = bench_alloc(nx);
    float *y = bench_alloc(nx), *work = bench_alloc(wsmax);
    if (!q || !k || !v || !y || !work) {
        fprintf(stderr, "linattn bench: out of memory for the threads section\n");
        free(q), free(k), free(v), free(y), free(work);
        return 1;
    }
    fill(q, nx, 21), fill(k, nx, 22), fill(v, nx, 23);
    memset(y, 0, nx * sizeof *y);
    memset(work, 0, (wsmax ? wsmax : 1) * sizeof *work);
    /* Linear kernels take features: keep them positive, as a feature map would. */
    for (size_t i = 0; i < nx; i++) {
        q[i] = q[i] > 0.0f ? q[i] + 1.0f : expf(q[i]);
        k[i] = k[i] > 0.0f ? k[i] + 1.0f : expf(k[i]);
    }
    float *qs = bench_alloc(nx), *ks = bench_alloc(nx);
    if (!qs || !ks) {
        fprintf(stderr, "linattn bench: out of memory for the threads section\n");
        free(q), free(k), free(v), free(y), free(work), free(qs), free(ks);
        return 1;
    }
    fill(qs, nx, 24), fill(ks, nx, 25);
    /* The backward rows' upstream gradient and their three gradients. */
    float *gy = bench_alloc(nx), *gq = bench_alloc(nx), *gk = bench_alloc(nx);
    float *gv = bench_alloc(nx);
    if (!gy || !gq || !gk || !gv) {
        fprintf(stderr, "linattn bench: out of memory for the threads section\n");
        free(q), free(k), free(v), free(y), free(work), free(qs), free(ks);
        free(gy), free(gq), free(gk), free(gv);
        return 1;
    }
    fill(gy, nx, 26);
    memset(gq, 0, nx * sizeof *gq), memset(gk, 0, nx * sizeof *gk), memset(gv, 0, nx * sizeof *gv);
    printf("# threads: 1 vs %d; softmax at T=%d, linear at T=%d, d=m=dv=%d\n", nt, Tsm, Tmax, d);
    /* What the control can reach: nt, or the cores there are when nt is more. */
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    const int ncores = online > 0 && online < nt ? (int)online : nt;
    if (tsv)
        printf("kernel\tcausal\theads\tT\tthreads\ttime_1_s\ttime_n_s\tspeedup\tcontrol\t"
               "rt_ns\ttries\n");
    else
        printf("%-30s %6s %5s %6s %7s %12s %12s %8s %8s %6s %5s\n", "kernel", "causal", "heads",
               "T", "threads", "median_1_s", "median_n_s", "speedup", "control", "rt_ns", "tries");
    for (int run = 0; run < runs; run++) {
        if (runs > 1)
            printf("# threads run %d of %d\n", run + 1, runs);
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            const struct attn_kernel *kn = attn_kernel_lookup(rows[i].name);
            if (!kn)
                continue;
            const int lin = kn->input == ATTN_IN_FEATURES, T = lin ? Tmax : Tsm;
            for (int h = 1; h <= 2; h++) {
                struct la_timing t1 = {0}, tn = {0};
                struct kern_ctx kc[2];
                for (int pass = 0; pass < 2; pass++) {
                    const int th = pass ? nt : 1;
                    kc[pass] = (struct kern_ctx){
                        kn,
                        {.q = lin ? q : qs,
                         .k = lin ? k : ks,
                         .v = v,
                         .y = y,
                         .T = T,
                         .dk = d,
                         .dv = d,
                         .causal = rows[i].causal,
                         .eps = 1e-6f,
                         .work = work,
                         .grad_y = gy,
                         .grad_q = gq,
                         .grad_k = gk,
                         .grad_v = gv,
                         .gate_const = rows[i].gate,
                         .recur_norm = rows[i].recur_norm},
                        h,
                        th,
                        attn_workspace_floats(kn, T, d, d, rows[i].causal, 0, h == 1 ? th : 1)};
                }
                /* 1 and nt threads, and the control at 1 and nt, in rotation, so the ratios see
                 * the same machine.  When the control says the machine did not give nt cores
                 * (below CONTROL_OK of nt, or of the cores online if fewer), the row is measured
                 * again, up to THREAD_TRIES times, and the try with the best control is kept;
                 * `tries` says how many it took. */
                struct fma_ctx f1 = {FMA_ITERS, 1, la_simd_isa(), 0.0f};
                struct fma_ctx fn = {FMA_ITERS, nt, la_simd_isa(), 0.0f};
                _Alignas(64) atomic_int line;
                const la_timed_fn fns[5] = {kern_call, kern_call, fma_call, fma_call,
                                            pingpong_call};
                void *const ctxs[5] = {&kc[0], &kc[1], &f1, &fn, &line};
                double rt_ns = 0.0;
                double control = -1.0;
                int tries = 0;
                /* Calls under BLOCK_BELOW_S run in blocks: BLOCK_LEAD_S of untimed calls, then
                 * 3 timed.  Each thread count then finds its data in its caches as in a run of
                 * many calls, instead of where the other thread count left it.  On a VM whose
                 * two vCPUs sit on different dies the second die takes several calls to hold
                 * its rows again: the recurrent kernel's 2-thread calls after 1-thread ones took
                 * 1.90, 1.61, 1.56, 1.53, 1.51, 1.48 ms and from the seventh on 1.46 (T = 16384,
                 * medians of 40 rounds); sharing an L3, only the first call was slow. */
                const double t_probe = la_now();
                kern_call(&kc[0]);
                const int block = la_now() - t_probe < BLOCK_BELOW_S ? 4 : 1;
                while (tries < THREAD_TRIES && control < CONTROL_OK * ncores) {
                    struct la_timing tm[5];
                    la_time_rotate(5, fns, ctxs, 1, block, BLOCK_LEAD_S, 5, 1000, 2 * budget, tm);
                    tries++;
                    const double c = tm[2].median_s / tm[3].median_s;
                    if (c > control)
                        control = c, t1 = tm[0], tn = tm[1],
                        rt_ns = tm[4].median_s / PINGPONG_TRIPS * 1e9;
                }
                if (tsv)
                    printf("%s\t%d\t%d\t%d\t%d\t%.6g\t%.6g\t%.3f\t%.3f\t%.0f\t%d\n", kn->name,
                           rows[i].causal, h, T, nt, t1.median_s, tn.median_s,
                           t1.median_s / tn.median_s, control, rt_ns, tries);
                else
                    printf("%-30s %6d %5d %6d %7d %12.6f %12.6f %7.2fx %7.2fx %6.0f %5d\n",
                           kn->name, rows[i].causal, h, T, nt, t1.median_s, tn.median_s,
                           t1.median_s / tn.median_s, control, rt_ns, tries);
                fflush(stdout);
                sp[i][h - 1][run] = t1.median_s / tn.median_s;
                ctl[i][h - 1][run] = control;
            }
        }
    }
    if (runs > 1) {
        printf("# threads over %d runs: speedup min / median / max; runs whose control showed the "
               "cores free (>= %.2f x %d); of those, runs at >= %.2f x %d/2 (one head) or "
               ">= %.2f x %d/2 (two heads)%s\n",
               runs, CONTROL_OK, ncores, SPEEDUP_GOAL_1, nt, SPEEDUP_GOAL_2, nt,
               nt == 2 ? "; then the one-head speedup over the two-head one in the same run, "
                         "min / median / max"
                       : "");
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
            if (!attn_kernel_lookup(rows[i].name))
                continue;
            for (int h = 1; h <= 2; h++) {
                double s[THREAD_RUNS_MAX];
                int free_runs = 0, met = 0;
                const double goal = (h == 1 ? SPEEDUP_GOAL_1 : SPEEDUP_GOAL_2) * nt / 2.0;
                for (int r = 0; r < runs; r++) {
                    s[r] = sp[i][h - 1][r];
                    if (ctl[i][h - 1][r] >= CONTROL_OK * ncores) {
                        free_runs++;
                        met += s[r] >= goal;
                    }
                }
                qsort(s, (size_t)runs, sizeof s[0], cmp_double);
                printf("# %-30s causal %d heads %d: %.2fx / %.2fx / %.2fx; cores free in %d of "
                       "%d runs; >= %.2fx in %d of those %d\n",
                       rows[i].name, rows[i].causal, h, s[0], s[runs / 2], s[runs - 1],
                       free_runs, runs, goal, met, free_runs);
            }
            /* With two threads the two-head row runs the kernel on independent data, a head
             * per core: the one-head speedup over it, per run, is what the threads inside one
             * head reach of what the machine gave in that run. */
            if (nt == 2) {
                double rr[THREAD_RUNS_MAX];
                for (int r = 0; r < runs; r++)
                    rr[r] = sp[i][0][r] / sp[i][1][r];
                qsort(rr, (size_t)runs, sizeof rr[0], cmp_double);
                printf("# %-30s causal %d one head / two heads, per run: %.3f / %.3f / %.3f\n",
                       rows[i].name, rows[i].causal, rr[0], rr[runs / 2], rr[runs - 1]);
            }
        }
    }
    free(q), free(k), free(v), free(y), free(work), free(qs), free(ks);
    free(gy), free(gq), free(gk), free(gv);
    return 0;
}

int la_bench_suite(const int *ds, int nd, int Tmin, int Tmax, int threads, double budget, int tsv,
                   int threads_runs, int threads_only)
{
    char cpu[256];
    la_cpu_model(cpu, sizeof cpu);
    const int isa = la_simd_isa();
    struct la_timing st, pt;
    struct refs r;
    r.peak = la_fp32_peak_gflops(isa, threads, &pt);
    r.sgemm = la_sgemm_gflops(1024, threads, &st);
    if (!isfinite(r.sgemm)) {
        fprintf(stderr, "linattn bench: out of memory for the SGEMM reference\n");
        return 1;
    }
    printf("# linattn %s (%s), %s, BLAS %s core %s, simd %s, vmath %s, threads %d\n",
           la_version(), la_git_commit(), cpu, la_blas_name(), la_blas_core(), la_simd_name(isa),
           la_vmath_isa(), threads);
    printf("# fp32 peak: %.2f GFLOP/s (%s at %d thread%s, the best of %d calls of %.3f s; "
           "median %.3f s)\n",
           r.peak, la_fma_loop_desc(isa), threads, threads > 1 ? "s" : "", pt.repeats, pt.min_s,
           pt.median_s);
    printf("# SGEMM 1024^3: %.2f GFLOP/s (from the p20 time of %d calls, %.6f s; median %.6f s, "
           "p80 %.6f s)\n",
           r.sgemm, st.repeats, st.p20_s, st.median_s, st.p80_s);
    printf("# peak = nominal flops/s / fp32 peak; eff = nominal flops/s / SGEMM rate\n");
    if (tsv)
        printf("d\tT\tkernel\tcausal\ttime_median_s\ttime_p20_s\ttime_p80_s\trepeats\tgflops\t"
               "efficiency\tpeak_efficiency\n");
    else
        printf("%4s %6s  %-28s %6s %12s %12s %12s %5s %9s %8s %8s\n", "d", "T", "kernel",
               "causal", "median_s", "p20_s", "p80_s", "reps", "GFLOP/s", "peak", "eff");
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
    {
        size_t w = attn_workspace_floats(&attn_linear_causal_seed, Tmax, dmax, dmax, 1, 0, 1);
        wsmax = w > wsmax ? w : wsmax;
    }
    float *q = bench_alloc(nx), *k = bench_alloc(nx), *v = bench_alloc(nx);
    float *pq = bench_alloc(nx), *pk = bench_alloc(nx), *y = bench_alloc(nx);
    float *work = bench_alloc(wsmax);
    int rc = 0;
    if (!q || !k || !v || !pq || !pk || !y || !work) {
        fprintf(stderr, "linattn bench: out of memory for T=%d d=%d\n", Tmax, dmax);
        rc = 1;
        goto done;
    }
    memset(work, 0, wsmax * sizeof *work);
    memset(y, 0, nx * sizeof *y);
    fill(q, nx, 1), fill(k, nx, 2), fill(v, nx, 3);
    for (int di = 0; di < nd && !threads_only; di++) {
        const int d = ds[di];
        struct fm_params fp;
        featuremap_params_default(&fp, d);
        struct la_error err;
        struct featuremap *fm = featuremap_alloc("elu1", &fp, NULL, &err);
        struct featuremap *fr = fm ? featuremap_alloc("relu", &fp, NULL, &err) : NULL;
        if (!fm || !fr) {
            fprintf(stderr, "linattn bench: %s\n", err.msg);
            featuremap_free(fm);
            rc = 1;
            goto done;
        }
        for (int T = Tmin; T <= Tmax; T *= 2) {
            featuremap_apply(fm, FM_QUERY, q, (size_t)T, pq, NULL);
            featuremap_apply(fm, FM_KEY, k, (size_t)T, pk, NULL);
            struct fm_ctx fc = {fm, k, pk, NULL, (size_t)T};
            struct la_timing t;
            /* The kernels on features that the fused rows below compare with. */
            const struct attn_kernel *def = attn_kernel_lookup("linear_causal");
            const struct attn_kernel *nck = attn_kernel_lookup("linear_noncausal");
            const char *def_algo = def->alias_of ? def->alias_of : def->name;
            double t_def = NAN, t_nc = NAN;
            la_time(fm_call, &fc, 1, 3, 1000, budget, &t);
            print_row(tsv, d, T, "featuremap_elu1", 0, &t,
                      featuremap_nominal_flops(fm->type, (size_t)T, d, fm->m), &r);
            for (size_t kk = 0; attn_kernels[kk].name; kk++) {
                const struct attn_kernel *kn = &attn_kernels[kk];
                if (kn->alias_of)
                    continue; /* its algorithm has its own row */
                if (kn->op != ATTN_OP_FORWARD)
                    continue; /* the table times forward passes; backward rows come after it */
                if (kn->update != ATTN_UPD_SUM)
                    continue; /* the recurrences have their own rows (bench_recur.c) */
                for (int causal = 0; causal <= 1; causal++) {
                    if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                        continue;
                    const int lin = kn->input == ATTN_IN_FEATURES;
                    struct kern_ctx kc = {kn, {.q = lin ? pq : q, .k = lin ? pk : k, .v = v,
                                               .y = y, .T = T, .dk = d, .dv = d, .causal = causal,
                                               .eps = 1e-6f, .work = work},
                                          1, threads,
                                          attn_workspace_floats(kn, T, d, d, causal, 0, threads)};
                    la_time(kern_call, &kc, 1, 3, 1000, budget, &t);
                    print_row(tsv, d, T, kn->name, causal, &t,
                              attn_nominal_flops(kn, T, d, d, causal), &r);
                    if (causal && !strcmp(kn->name, def_algo))
                        t_def = t.median_s;
                    if (kn == nck)
                        t_nc = t.median_s;
                }
            }
            /* The default causal kernel with its feature map, against the seed's loop. */
            const double lflops = attn_nominal_flops(def, T, d, d, 1);
            struct e2e_ctx ec = {fm, q, k, pq, pk,
                                 {def, {.v = v, .y = y, .T = T, .dk = d, .dv = d, .causal = 1,
                                        .eps = 1e-6f, .work = work},
                                  1, threads, attn_workspace_floats(def, T, d, d, 1, 0, threads)}};
            ec.kc.args.q = pq;
            ec.kc.args.k = pk;
            struct la_timing te, ts;
            la_time(e2e_call, &ec, 1, 3, 1000, budget, &te);
            print_row(tsv, d, T, "elu1+linear_causal", 1, &te, lflops, &r);
            const struct attn_kernel *seed = &attn_linear_causal_seed;
            struct kern_ctx sc = {seed, {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = d, .dv = d,
                                         .causal = 1, .eps = 1e-6f, .work = work},
                                  1, 1, attn_workspace_floats(seed, T, d, d, 1, 0, 1)};
            la_time(kern_call, &sc, 1, 3, 1000, budget, &ts);
            print_row(tsv, d, T, seed->name, 1, &ts, attn_nominal_flops(seed, T, d, d, 1), &r);
            printf("# d=%d T=%d: elu1+linear_causal is %.1fx faster than linear_causal_seed "
                   "(medians; both include elu+1)\n",
                   d, T, ts.median_s / te.median_s);
            /* elu1 and relu, applied apart and fused, with the default causal kernel and the
             * non-causal one (the rows apart apply the map in every call). */
            for (int mi = 0; mi < 2; mi++) {
                const struct featuremap *map = mi ? fr : fm;
                bench_fused_pair(tsv, d, T, map, def, 1, q, k, pq, pk, v, y, work, threads,
                                 budget, t_def, &r);
                bench_fused_pair(tsv, d, T, map, nck, 0, q, k, pq, pk, v, y, work, threads,
                                 budget, t_nc, &r);
            }
        }
        featuremap_free(fm);
        featuremap_free(fr);
    }
    if (rc == 0 && !threads_only)
        rc = la_bench_backward(section_d(ds, nd), Tmax, threads, budget, tsv, r.peak, r.sgemm);
    if (rc == 0 && !threads_only)
        rc = la_bench_maps(section_d(ds, nd), Tmax, threads, budget, tsv, r.peak, r.sgemm);
    if (rc == 0 && !threads_only)
        rc = la_bench_recur(r.peak, budget, tsv);
    if (rc == 0)
        rc = bench_threads(ds, nd, Tmax, threads > 1 ? threads : 2, budget, tsv, threads_runs);
    if (rc == 0 && !threads_only)
        rc = la_bench_decode(threads == 1 ? r.peak : NAN, budget, tsv);
done:
    free(q), free(k), free(v), free(pq), free(pk), free(y), free(work);
    return rc;
}
