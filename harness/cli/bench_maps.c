/* bench_maps.c — the "kernel + feature map" rows of `linattn bench --suite` (`make bench`) for
 * the maps whose cost is not elementwise: prf, gerf and hyp at m = 256 features, and taylor2
 * (m = 1 + d + d(d+1)/2, 2145 at d = 64).  At the suite's d (64 if listed) and T = Tmax, one
 * head, at the suite's thread count, each map gets four rows:
 *   featuremap_NAME_mM      φ(Q) and φ(K) alone (FM_QUERY and FM_KEY applies: the stabilisers
 *                           differ);
 *   linear_noncausal_mM     the kernel alone on those features;
 *   NAME+linear_noncausal   the whole: φ(Q), φ(K), then the kernel, as a user pays it;
 *   NAME+linear_causal      the same with the default causal kernel (random maps only: taylor2's
 *                           2145 features make its causal row as slow as the rest together).
 * Draws: iid, seed 12345; hyp's 256 features come from 128 draws; gerf runs at A = −0.1 (so
 * its offsets are exercised; A = 0 is prf bit for bit).
 *
 * What the GFLOP/s, peak and eff columns count (the suite's peak and SGEMM rates, measured in
 * the same run, are passed in):
 *   map rows    the projection only, 2·d·p flops per row for p draws (prf, gerf: p = m; hyp:
 *               p = m/2), for the T query and T key rows; taylor2: its products, d(d+5)/2 per
 *               row (featuremap.h's model; it has no projection).
 *   kernel rows the kernel's nominal flops (attention.h) with dk = m, dv = d.
 *   whole rows  the sum of the two.
 * Not counted anywhere: the exps (one per feature), the norms ‖x̃‖², the row maxima, shifts and
 * scales of the stabiliser — the rows' times include that work, but it is not a product's
 * flop, so a map whose exps cost as much as its projection shows as half the projection's rate.
 * `map` (last column): the map row's median over the whole row's median, both timed here at the
 * same shapes (1 for the map rows, 0 for the kernel rows).
 * A benchmark, not a test: it prints numbers and checks nothing.
 */
#include <gsl/gsl_rng.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/timing.h"
#include "../core/util.h"
#include "bench.h"

static float *maps_alloc(size_t n)
{
    const size_t bytes = (n ? n : 1) * sizeof(float);
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

struct maps_ctx {
    const struct featuremap *fm;
    const struct attn_kernel *kn;
    struct attn_args a;
    const float *q, *k;
    float *fwork;
    int threads;
    size_t ws;
};

static void maps_map(void *p)
{
    struct maps_ctx *c = p;
    featuremap_apply(c->fm, FM_QUERY, c->q, (size_t)c->a.T, (float *)c->a.q, c->fwork);
    featuremap_apply(c->fm, FM_KEY, c->k, (size_t)c->a.T, (float *)c->a.k, c->fwork);
}

static void maps_kernel(void *p)
{
    struct maps_ctx *c = p;
    attn_run_heads(c->kn, &c->a, 1, c->threads, c->a.work, c->ws);
}

static void maps_whole(void *p)
{
    maps_map(p);
    maps_kernel(p);
}

static void maps_row(int tsv, int d, int T, const char *name, int causal,
                     const struct la_timing *t, double flops, double peak, double sgemm,
                     double share)
{
    const double gf = flops / t->median_s / 1e9;
    if (tsv)
        printf("%d\t%d\t%s\t%d\t%.6g\t%.6g\t%.6g\t%d\t%.4g\t%.4f\t%.4f\t%.3f\n", d, T, name, causal,
               t->median_s, t->p20_s, t->p80_s, t->repeats, gf, gf / sgemm, gf / peak, share);
    else
        printf("%4d %6d  %-24s %6d %12.6f %12.6f %12.6f %5d %9.2f %7.1f%% %7.1f%% %5.0f%%\n", d, T,
               name, causal, t->median_s, t->p20_s, t->p80_s, t->repeats, gf, 100.0 * gf / peak,
               100.0 * gf / sgemm, 100.0 * share);
    fflush(stdout);
}

/* One map's four (taylor2: three) rows.  Returns an exit code. */
static int bench_one_map(const char *name, int d, int T, int threads, double budget, int tsv,
                         double peak, double sgemm)
{
    struct la_error err;
    if (!featuremap_lookup(name, &err)) {
        printf("# %s: not registered in this build; no rows\n", name);
        return 0;
    }
    const int random = strcmp(name, "taylor2") != 0, pair = strcmp(name, "hyp") == 0;
    struct fm_params fp;
    featuremap_params_default(&fp, d);
    if (random)
        fp.m = pair ? 128 : 256; /* draws: 256 features either way */
    if (strcmp(name, "gerf") == 0)
        fp.A = -0.1;
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        fprintf(stderr, "linattn bench: out of memory for the rng\n");
        return 1;
    }
    gsl_rng_set(rng, 12345);
    struct featuremap *fm = featuremap_alloc(name, &fp, rng, &err);
    gsl_rng_free(rng);
    if (!fm) {
        fprintf(stderr, "linattn bench: %s: %s\n", name, err.msg);
        return 1;
    }
    const int m = fm->m;
    const struct attn_kernel *kns[2] = {attn_kernel_lookup("linear_noncausal"),
                                        random ? attn_kernel_lookup("linear_causal") : NULL};
    const size_t nx = (size_t)T * d, nf = (size_t)T * m;
    const size_t fw = featuremap_work_floats(fm, (size_t)T);
    size_t ws = 0;
    for (int c = 0; c < 2; c++)
        if (kns[c]) {
            const size_t w = attn_workspace_floats(kns[c], T, m, d, c, 0, threads);
            ws = w > ws ? w : ws;
        }
    float *q = maps_alloc(nx), *k = maps_alloc(nx), *v = maps_alloc(nx), *y = maps_alloc(nx);
    float *pq = maps_alloc(nf), *pk = maps_alloc(nf), *fwork = maps_alloc(fw);
    float *work = maps_alloc(ws);
    int rc = 0;
    if (!q || !k || !v || !y || !pq || !pk || !fwork || !work || !kns[0]) {
        fprintf(stderr, "linattn bench: out of memory (or no kernel) for the %s rows\n", name);
        rc = 1;
        goto done;
    }
    /* Touch everything once before timing (first touch is very slow on these machines). */
    uint64_t s = 0x5eedu;
    for (size_t i = 0; i < nx; i++) {
        q[i] = (float)(la_splitmix64_unit(&s) * 2.0 - 1.0);
        k[i] = (float)(la_splitmix64_unit(&s) * 2.0 - 1.0);
        v[i] = (float)(la_splitmix64_unit(&s) * 2.0 - 1.0);
    }
    memset(y, 0, nx * sizeof *y);
    memset(pq, 0, nf * sizeof *pq);
    memset(pk, 0, nf * sizeof *pk);
    memset(fwork, 0, (fw ? fw : 1) * sizeof *fwork);
    memset(work, 0, (ws ? ws : 1) * sizeof *work);
    struct maps_ctx c = {fm, kns[0],
                         {.q = pq, .k = pk, .v = v, .y = y, .T = T, .dk = m, .dv = d, .causal = 0,
                          .eps = 1e-6f, .work = work},
                         q, k, fwork, threads, ws};
    /* The map's flops: the projection (random maps) or its products (taylor2), both roles. */
    const double draws = pair ? m / 2.0 : (double)m;
    const double mflops = random ? 2.0 * T * 2.0 * d * draws
                                 : 2.0 * featuremap_nominal_flops(fm->type, (size_t)T, d, m);
    struct la_timing tm, tk, tw;
    char row[64];
    la_time(maps_map, &c, 1, 3, 1000, budget, &tm);
    snprintf(row, sizeof row, "featuremap_%s_m%d", name, m);
    maps_row(tsv, d, T, row, 0, &tm, mflops, peak, sgemm, 1.0);
    for (int causal = 0; causal < 2; causal++) {
        if (!kns[causal])
            continue;
        c.kn = kns[causal];
        c.a.causal = causal;
        const double kflops = attn_nominal_flops(c.kn, T, m, d, causal);
        if (causal == 0) {
            la_time(maps_kernel, &c, 1, 3, 1000, budget, &tk);
            snprintf(row, sizeof row, "%s_m%d", c.kn->name, m);
            maps_row(tsv, d, T, row, causal, &tk, kflops, peak, sgemm, 0.0);
        }
        la_time(maps_whole, &c, 1, 3, 1000, budget, &tw);
        snprintf(row, sizeof row, "%s+%s", name, c.kn->name);
        maps_row(tsv, d, T, row, causal, &tw, mflops + kflops, peak, sgemm,
                 tm.median_s / tw.median_s);
    }
done:
    featuremap_free(fm);
    free(q), free(k), free(v), free(y), free(pq), free(pk), free(fwork), free(work);
    return rc;
}

int la_bench_maps(int d, int Tmax, int threads, double budget, int tsv, double peak, double sgemm)
{
    static const char *const names[] = {"prf", "gerf", "hyp", "taylor2"};
    printf("# kernel + feature map, d=%d T=%d, one head: map rows count the projection's flops "
           "(taylor2: its products), never the exps; whole rows add the kernel's nominal flops; "
           "map = the map's share of the whole row's time\n",
           d, Tmax);
    if (tsv)
        printf("d\tT\tkernel\tcausal\ttime_median_s\ttime_p20_s\ttime_p80_s\trepeats\tgflops\t"
               "efficiency\tpeak_efficiency\tmap_share\n");
    else
        printf("%4s %6s  %-24s %6s %12s %12s %12s %5s %9s %8s %8s %6s\n", "d", "T", "kernel",
               "causal", "median_s", "p20_s", "p80_s", "reps", "GFLOP/s", "peak", "eff", "map");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const int rc = bench_one_map(names[i], d, Tmax, threads, budget, tsv, peak, sgemm);
        if (rc)
            return rc;
    }
    return 0;
}
