/* bench_decode.c — the decode rows of `linattn bench --suite` (`make bench`): what one generated
 * token costs, per attention head, at d = dv = 64 on one thread, for B = 1 and B = 16 sequences
 * advanced by one step call.
 *   - softmax_step at contexts t = 1K, 16K and 64K (the step's token is the t-th: pos = t − 1),
 *     over caches filled directly with seeded values (a prefill of 64K tokens would take longer
 *     than the rows);
 *   - linear_step on elu1 features (m = 64) and on prf features (m = 256), whose state does not
 *     grow with t; each once as the kernel alone and once with the feature map of the B new
 *     queries and keys included (what a decoder pays per token: "elu1+linear_step").
 * Per row: the state or cache bytes of the B sequences (the table's state_floats), the median
 * and p20 time of a step call, the nominal bytes moved per second (attention.h's models at pos:
 * the cache or state read and written once) against two read bandwidths of one core measured
 * at the start of the rows (peak.c: memory, and L2 — the softmax step should approach the
 * bandwidth of wherever its cache lives; the linear step's state lives in L1/L2), and nominal
 * flops per second against the same-run fp32 peak.  Benchmarks, not tests: numbers only.
 */
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../../kernels/simd.h"
#include "../core/timing.h"
#include "../core/util.h"
#include "bench.h"

#define DEC_D 64 /* d = dv of every row */

static float *dec_alloc(size_t n)
{
    const size_t bytes = (n ? n : 1) * sizeof(float);
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* Seeded values in [lo, lo + 1), which also touches the buffer before any timing. */
static void dec_fill(float *x, size_t n, uint64_t seed, float lo)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = lo + (float)la_splitmix64_unit(&s);
}

struct step_ctx {
    const struct attn_kernel *kn;
    struct attn_args a;
    const struct featuremap *fm; /* NULL: the kernel alone */
    const float *q, *k;          /* raw queries and keys when fm is set */
    float *pq, *pk, *fwork;
};

static void step_call(void *p)
{
    struct step_ctx *c = p;
    if (c->fm) {
        featuremap_apply(c->fm, FM_QUERY, c->q, (size_t)c->a.T, c->pq, c->fwork);
        featuremap_apply(c->fm, FM_KEY, c->k, (size_t)c->a.T, c->pk, c->fwork);
    }
    c->kn->run(&c->a);
}

struct bw {
    double mem, l2, peak; /* GB/s, GB/s, GFLOP/s */
};

static void dec_header(int tsv)
{
    if (tsv)
        printf("kernel\tm\tt\tB\tstate_bytes\ttime_median_s\ttime_p20_s\trepeats\tgbytes_s\t"
               "mem_bw_fraction\tl2_bw_fraction\tgflops\tpeak_efficiency\n");
    else
        printf("%-22s %4s %6s %3s %11s %11s %11s %5s %8s %6s %6s %8s %6s\n", "kernel", "m", "t",
               "B", "state_MiB", "median_us", "p20_us", "reps", "GB/s", "mem", "L2", "GFLOP/s",
               "peak");
}

static void dec_row(int tsv, const char *name, int m, int t, int B, double state_bytes,
                    const struct la_timing *tm, double bytes, double flops, const struct bw *r)
{
    const double gbs = bytes / tm->median_s / 1e9, gf = flops / tm->median_s / 1e9;
    if (tsv)
        printf("%s\t%d\t%d\t%d\t%.0f\t%.6g\t%.6g\t%d\t%.4g\t%.4f\t%.4f\t%.4g\t%.4f\n", name, m, t,
               B, state_bytes, tm->median_s, tm->p20_s, tm->repeats, gbs, gbs / r->mem,
               gbs / r->l2, gf, gf / r->peak);
    else
        printf("%-22s %4d %6d %3d %11.3f %11.2f %11.2f %5d %8.2f %5.0f%% %5.0f%% %8.2f %5.1f%%\n",
               name, m, t, B, state_bytes / 1048576.0, 1e6 * tm->median_s, 1e6 * tm->p20_s,
               tm->repeats, gbs, 100.0 * gbs / r->mem, 100.0 * gbs / r->l2, gf,
               100.0 * gf / r->peak);
    fflush(stdout);
}

/* softmax_step at context t for B sequences. */
static int softmax_rows(int t, int B, double budget, int tsv, const struct bw *r)
{
    const struct attn_kernel *kn = attn_kernel_lookup("softmax_step");
    const int d = DEC_D, pos = t - 1;
    const size_t sf = attn_state_floats(kn, t, d, d), nx = (size_t)B * d;
    const size_t ws = attn_workspace_floats(kn, B, d, d, 1, 0, 1);
    float *cache = dec_alloc((size_t)B * sf), *q = dec_alloc(nx), *k = dec_alloc(nx);
    float *v = dec_alloc(nx), *y = dec_alloc(nx), *work = dec_alloc(ws);
    int rc = 0;
    if (!cache || !q || !k || !v || !y || !work) {
        fprintf(stderr, "linattn bench: out of memory for softmax_step at t=%d B=%d\n", t, B);
        rc = 1;
        goto done;
    }
    dec_fill(cache, (size_t)B * sf, 100 + (uint64_t)t, -0.5f);
    dec_fill(q, nx, 1, -0.5f), dec_fill(k, nx, 2, -0.5f), dec_fill(v, nx, 3, -0.5f);
    memset(y, 0, nx * sizeof *y);
    memset(work, 0, ws * sizeof *work);
    struct step_ctx c = {kn, {.q = q, .k = k, .v = v, .y = y, .T = B, .dk = d, .dv = d,
                              .causal = 1, .threads = 1, .work = work, .state = cache, .pos = pos,
                              .cap = t},
                         NULL, NULL, NULL, NULL, NULL, NULL};
    struct la_timing tm;
    la_time(step_call, &c, 2, 5, 100000, budget, &tm);
    dec_row(tsv, kn->name, d, t, B, (double)B * sf * sizeof(float), &tm,
            attn_nominal_bytes_at(kn, B, pos, d, d, 1), attn_nominal_flops_at(kn, B, pos, d, d, 1),
            r);
done:
    free(cache), free(q), free(k), free(v), free(y), free(work);
    return rc;
}

/* linear_step on the features of map fm (m = fm->m) for B sequences: the kernel alone, then
 * with the map of the new queries and keys. */
static int linear_rows(const struct featuremap *fm, const char *mapname, int B, double budget,
                       int tsv, const struct bw *r)
{
    const struct attn_kernel *kn = attn_kernel_lookup("linear_step");
    const int d = DEC_D, m = fm->m;
    const size_t sf = attn_state_floats(kn, 1, m, d), nx = (size_t)B * d, nf = (size_t)B * m;
    const size_t ws = attn_workspace_floats(kn, B, m, d, 1, 0, 1);
    const size_t fw = featuremap_work_floats(fm, (size_t)B);
    float *state = dec_alloc((size_t)B * sf), *q = dec_alloc(nx), *k = dec_alloc(nx);
    float *v = dec_alloc(nx), *y = dec_alloc(nx), *pq = dec_alloc(nf), *pk = dec_alloc(nf);
    float *work = dec_alloc(ws), *fwork = dec_alloc(fw);
    int rc = 0;
    if (!state || !q || !k || !v || !y || !pq || !pk || !work || !fwork) {
        fprintf(stderr, "linattn bench: out of memory for linear_step m=%d B=%d\n", m, B);
        rc = 1;
        goto done;
    }
    /* A state of positive features' sums (S, z), as after a prompt; small enough that the
     * repeated steps do not take it anywhere near overflow. */
    dec_fill(state, (size_t)B * sf, 7, 0.0f);
    dec_fill(q, nx, 1, -0.5f), dec_fill(k, nx, 2, -0.5f), dec_fill(v, nx, 3, -0.5f);
    memset(y, 0, nx * sizeof *y);
    memset(work, 0, ws * sizeof *work);
    memset(fwork, 0, (fw ? fw : 1) * sizeof *fwork);
    if (featuremap_apply(fm, FM_QUERY, q, (size_t)B, pq, fwork) != LA_OK ||
        featuremap_apply(fm, FM_KEY, k, (size_t)B, pk, fwork) != LA_OK) {
        fprintf(stderr, "linattn bench: %s apply failed\n", mapname);
        rc = 1;
        goto done;
    }
    struct step_ctx c = {kn, {.q = pq, .k = pk, .v = v, .y = y, .T = B, .dk = m, .dv = d,
                              .causal = 1, .eps = 1e-6f, .threads = 1, .work = work,
                              .state = state},
                         NULL, NULL, NULL, NULL, NULL, NULL};
    const double sbytes = (double)B * sf * sizeof(float);
    const double bytes = attn_nominal_bytes(kn, B, m, d, 1), flops = attn_nominal_flops(kn, B, m, d, 1);
    struct la_timing tm;
    la_time(step_call, &c, 2, 5, 100000, budget, &tm);
    dec_row(tsv, kn->name, m, 0, B, sbytes, &tm, bytes, flops, r);
    c.fm = fm, c.q = q, c.k = k, c.pq = pq, c.pk = pk, c.fwork = fwork;
    la_time(step_call, &c, 2, 5, 100000, budget, &tm);
    char name[64];
    snprintf(name, sizeof name, "%s+linear_step", mapname);
    /* The map's flops are not in the kernel's model: the rate column stays the kernel's. */
    dec_row(tsv, name, m, 0, B, sbytes, &tm, bytes, flops, r);
done:
    free(state), free(q), free(k), free(v), free(y), free(pq), free(pk), free(work), free(fwork);
    return rc;
}

int la_bench_decode(double peak_gflops, double budget, int tsv)
{
    const int isa = la_simd_isa();
    struct bw r = {0, 0, peak_gflops};
    struct la_timing tmem, tl2, tpk;
    if (!isfinite(r.peak)) /* the caller's was not at one thread */
        r.peak = la_fp32_peak_gflops(isa, 1, &tpk);
    size_t big = 4 * la_llc_bytes();
    big = big < ((size_t)256 << 20) ? (size_t)256 << 20 : big;
    big = big > ((size_t)2 << 30) ? (size_t)2 << 30 : big;
    const size_t small = la_l2_bytes() / 2;
    r.mem = la_read_bandwidth_gbs(isa, big, &tmem);
    r.l2 = la_read_bandwidth_gbs(isa, small, &tl2);
    if (!isfinite(r.mem) || !isfinite(r.l2)) {
        fprintf(stderr, "linattn bench: out of memory for the bandwidth buffers\n");
        return 1;
    }
    printf("\n# decode: one step call (one token for each of B sequences), d = dv = %d, 1 thread\n",
           DEC_D);
    printf("# read bandwidth, 1 core: memory %.2f GB/s (streaming sum of %.0f MiB; LLC %.0f MiB), "
           "L2 %.2f GB/s (%.0f KiB; L2 %.0f KiB), the best of %d calls each\n",
           r.mem, big / 1048576.0, la_llc_bytes() / 1048576.0, r.l2, small / 1024.0,
           la_l2_bytes() / 1024.0, tmem.repeats);
    printf("# t: context (the step's token is the t-th; 0: linear, whose state does not grow); "
           "state_MiB: cache or state of the B sequences; GB/s: nominal bytes (attention.h) per "
           "second; mem, L2: of the bandwidths above; peak: nominal flops/s of the fp32 peak\n");
    dec_header(tsv);
    static const int ts[] = {1024, 16384, 65536}, Bs[] = {1, 16};
    int rc = 0;
    for (size_t bi = 0; bi < 2 && rc == 0; bi++)
        for (size_t ti = 0; ti < 3 && rc == 0; ti++)
            rc = softmax_rows(ts[ti], Bs[bi], budget, tsv, &r);
    /* Linear: elu1 (m = d) and prf with m = 256 (when registered). */
    struct la_error err;
    static const char *maps[] = {"elu1", "prf"};
    for (size_t mi = 0; mi < 2 && rc == 0; mi++) {
        if (!featuremap_lookup(maps[mi], &err)) {
            printf("# %s: not registered in this build; no linear_step rows for it\n", maps[mi]);
            continue;
        }
        struct fm_params fp;
        featuremap_params_default(&fp, DEC_D);
        if (!strcmp(maps[mi], "prf"))
            fp.m = 256;
        gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            fprintf(stderr, "linattn bench: out of memory for the rng\n");
            return 1;
        }
        gsl_rng_set(rng, 12345);
        struct featuremap *fm = featuremap_alloc(maps[mi], &fp, rng, &err);
        gsl_rng_free(rng);
        if (!fm) {
            fprintf(stderr, "linattn bench: %s: %s\n", maps[mi], err.msg);
            return 1;
        }
        for (size_t bi = 0; bi < 2 && rc == 0; bi++)
            rc = linear_rows(fm, maps[mi], Bs[bi], budget, tsv, &r);
        featuremap_free(fm);
    }
    return rc;
}
