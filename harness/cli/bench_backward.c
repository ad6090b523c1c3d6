/* bench_backward.c — the backward rows of `linattn bench --suite` (`make bench`): each backward
 * kernel of the table at d = 64 (or the suite's first d), one head, the suite's threads —
 * softmax_flash_backward at T = min(Tmax, 8192), causal and not, and the linear backward kernels
 * at T = min(Tmax, 16384) with m = dv = d, on positive (elu1-like) features — printed as the
 * suite prints its rows: nominal flops per second (attention.h's backward models) over the
 * same-run fp32 peak and SGEMM rate.  softmax_flash_backward also recomputes the forward pass,
 * which its model does not count (kernels/softmax_backward.c).  Called by bench_suite.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../core/timing.h"
#include "../core/util.h"
#include "bench.h"

struct bwd_ctx {
    const struct attn_kernel *kn;
    struct attn_args args;
    int threads;
    size_t ws;
};

static void bwd_call(void *p)
{
    struct bwd_ctx *c = p;
    attn_run_heads(c->kn, &c->args, 1, c->threads, c->args.work, c->ws);
}

int la_bench_backward(int d, int Tmax, int threads, double budget, int tsv, double peak,
                      double sgemm)
{
    const int Tsm = Tmax < 8192 ? Tmax : 8192, Tlin = Tmax < 16384 ? Tmax : 16384;
    const int Tbig = Tsm > Tlin ? Tsm : Tlin;
    const size_t nx = (size_t)Tbig * d;
    size_t wsmax = 0;
    for (size_t k = 0; attn_kernels[k].name; k++)
        if (attn_kernels[k].op == ATTN_OP_BACKWARD)
            for (int c = 0; c <= 1; c++) {
                const size_t w = attn_workspace_floats(&attn_kernels[k], Tbig, d, d, c, 0, threads);
                wsmax = w > wsmax ? w : wsmax;
            }
    float *buf = aligned_alloc(64, ((8 * nx + wsmax) * sizeof(float) + 63) / 64 * 64);
    if (!buf) {
        fprintf(stderr, "linattn bench: out of memory for the backward rows\n");
        return 1;
    }
    float *q = buf, *k = q + nx, *pq = k + nx, *pk = pq + nx, *v = pk + nx, *gy = v + nx;
    float *gq = gy + nx, *gk = gq + nx, *work = gk + nx;
    float *gv = aligned_alloc(64, (nx * sizeof(float) + 63) / 64 * 64);
    if (!gv) {
        fprintf(stderr, "linattn bench: out of memory for the backward rows\n");
        free(buf);
        return 1;
    }
    /* Touch everything before timing; features are positive, as a feature map's would be. */
    uint64_t s = 31;
    for (size_t i = 0; i < 6 * nx; i++)
        buf[i] = (float)(la_splitmix64_unit(&s) * 2.0 - 1.0);
    for (size_t i = 0; i < nx; i++) {
        pq[i] = pq[i] > 0.0f ? pq[i] + 1.0f : expf(pq[i]);
        pk[i] = pk[i] > 0.0f ? pk[i] + 1.0f : expf(pk[i]);
    }
    memset(gq, 0, (2 * nx + wsmax) * sizeof(float));
    memset(gv, 0, nx * sizeof(float));
    printf("# backward (one head, %d thread%s): softmax T=%d, linear T=%d, d=m=dv=%d\n", threads,
           threads > 1 ? "s" : "", Tsm, Tlin, d);
    for (size_t kk = 0; attn_kernels[kk].name; kk++) {
        const struct attn_kernel *kn = &attn_kernels[kk];
        if (kn->op != ATTN_OP_BACKWARD || kn->alias_of)
            continue;
        const int lin = kn->input == ATTN_IN_FEATURES, T = lin ? Tlin : Tsm;
        for (int causal = 0; causal <= 1; causal++) {
            if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            struct bwd_ctx c = {kn,
                                {.q = lin ? pq : q, .k = lin ? pk : k, .v = v, .T = T, .dk = d,
                                 .dv = d, .causal = causal, .eps = 1e-6f, .work = work,
                                 .grad_y = gy, .grad_q = gq, .grad_k = gk, .grad_v = gv},
                                threads,
                                attn_workspace_floats(kn, T, d, d, causal, 0, threads)};
            struct la_timing t;
            la_time(bwd_call, &c, 1, 3, 1000, budget, &t);
            const double gf = attn_nominal_flops(kn, T, d, d, causal) / t.median_s / 1e9;
            if (tsv)
                printf("%d\t%d\t%s\t%d\t%.6g\t%.6g\t%.6g\t%d\t%.4g\t%.4f\t%.4f\n", d, T, kn->name,
                       causal, t.median_s, t.p20_s, t.p80_s, t.repeats, gf, gf / sgemm,
                       gf / peak);
            else
                printf("%4d %6d  %-24s %6d %12.6f %12.6f %12.6f %5d %9.2f %7.1f%% %7.1f%%\n", d,
                       T, kn->name, causal, t.median_s, t.p20_s, t.p80_s, t.repeats, gf,
                       100.0 * gf / peak, 100.0 * gf / sgemm);
            fflush(stdout);
        }
    }
    free(buf), free(gv);
    return 0;
}
