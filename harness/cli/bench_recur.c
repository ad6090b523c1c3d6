/* bench_recur.c — the recurrences' rows of `linattn bench --suite` (`make bench`): the causal
 * recurrent forms of the sum, decay, gated and delta update rules (kernels/recurrence.c,
 * attention.h "Recurrences") at d = m = dv = 64, T = 16384, one thread, each against the fp32
 * peak of the cores measured in the same run (bench_suite.c passes it in), the chunked delta
 * rule (WY/UT representation, default chunk) next to its recurrent row; then the chunked forms
 * of decay and gated (default chunk) for comparison.
 * Inputs: positive elu1-like features; the delta rule's keys scaled to unit norm (its update is
 * stable for β‖k‖² <= 2), β_t = 0.5, γ = 0.95, α_t[i] in [0.9, 1).  Timing does not depend on
 * these values (no data-dependent branches), only on the shapes.
 * The delta rule's number is explained in the note printed under its row: token t's update
 * needs u_t = S_{t−1}ᵀk_t summed over all m rows first, so its pass over the state cannot be
 * shared between tokens as the sum, decay and gated rules share theirs (one pass per three
 * tokens).  The kernel hides the dependence in the one pass each token makes anyway: while it
 * writes row i of S_t it also adds k_{t+1}[i]·S_t[i] into u_{t+1}, so the state is loaded and
 * stored once per token for three FMAs per element (update, output, next u), and the next token
 * waits only for the last rows of that pass.  The chunked delta rule trades that serial pass
 * for GEMMs: it does 6·m·dv + 4·C·(m + dv) + C²/3 flops per token (about 1.3 times the nominal
 * 6·m·dv at m = dv = 64 and its default C = 16, see recurrence.c attn_delta_chunked), so its
 * efficiency against the nominal model is the small GEMMs' over that factor.
 * The decay rule's pass keeps each tile's state rescaled by γ's powers (simd_tmpl.h gate_tile):
 * two FMAs per element and token where the plain form takes a multiply and two FMAs, plus a
 * multiply per tile, so it executes 4·m·dv + m·dv/tb of the nominal 5·m·dv (tb = 3 tokens a tile
 * on AVX-512 at dv = 64): its rate against the nominal count is the plain form's speed, and the
 * printed note says so.
 * A benchmark, not a test: it prints numbers and checks nothing.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../core/timing.h"
#include "../core/util.h"
#include "bench.h"

struct recur_ctx {
    const struct attn_kernel *kn;
    struct attn_args a;
};

static void recur_call(void *p)
{
    struct recur_ctx *c = p;
    c->kn->run(&c->a);
}

static float *recur_alloc(size_t n)
{
    const size_t bytes = (n ? n : 1) * sizeof(float);
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

int la_bench_recur(double peak, double budget, int tsv)
{
    enum { T = 16384, M = 64, DV = 64 };
    static const char *const names[] = {"linear_causal_recurrent", "linear_decay_recurrent",
                                        "linear_gated_recurrent",  "linear_delta_recurrent",
                                        "linear_delta_chunked",    "linear_decay_chunked",
                                        "linear_gated_chunked"};
    const size_t nq = (size_t)T * M, nv = (size_t)T * DV;
    size_t wsmax = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct attn_kernel *kn = attn_kernel_lookup(names[i]);
        if (!kn) {
            fprintf(stderr, "linattn bench: no kernel %s in this build\n", names[i]);
            return 1;
        }
        const size_t w = attn_workspace_floats(kn, T, M, DV, 1, 0, 1);
        wsmax = w > wsmax ? w : wsmax;
    }
    float *q = recur_alloc(nq), *k = recur_alloc(nq), *ku = recur_alloc(nq);
    float *v = recur_alloc(nv), *y = recur_alloc(nv), *beta = recur_alloc(T);
    float *alpha = recur_alloc(nq), *work = recur_alloc(wsmax);
    int rc = 0;
    if (!q || !k || !ku || !v || !y || !beta || !alpha || !work) {
        fprintf(stderr, "linattn bench: out of memory for the recurrences' rows\n");
        rc = 1;
        goto done;
    }
    /* Touch everything before timing. */
    uint64_t s = 4242;
    for (size_t i = 0; i < nq; i++) {
        q[i] = (float)exp(2.0 * la_splitmix64_unit(&s) - 1.0);
        k[i] = (float)exp(2.0 * la_splitmix64_unit(&s) - 1.0);
        alpha[i] = (float)(0.9 + 0.1 * la_splitmix64_unit(&s));
    }
    for (size_t t = 0; t < T; t++) {
        double n2 = 0.0;
        for (int i = 0; i < M; i++)
            n2 += (double)k[t * M + i] * k[t * M + i];
        for (int i = 0; i < M; i++)
            ku[t * M + i] = (float)(k[t * M + i] / sqrt(n2));
        beta[t] = 0.5f;
    }
    for (size_t i = 0; i < nv; i++)
        v[i] = (float)(2.0 * la_splitmix64_unit(&s) - 1.0);
    memset(y, 0, nv * sizeof *y);
    memset(work, 0, wsmax * sizeof *work);
    printf("# recurrences (causal, recurrent form, delta chunked, then decay and gated "
           "chunked, 1 thread, m = dv = %d, T = %d): nominal flops per token 4·m·dv + 4·m "
           "(sum), 5·m·dv + 4·m (decay, gated), 6·m·dv + 2·dv (delta); peak = that rate over "
           "the fp32 peak above\n",
           M, T);
    if (tsv)
        printf("rule\tkernel\tT\tm\tdv\ttime_median_s\ttime_p20_s\ttime_p80_s\trepeats\tgflops\t"
               "peak_efficiency\n");
    else
        printf("%-6s %-24s %6s %4s %4s %12s %12s %12s %5s %9s %8s\n", "rule", "kernel", "T",
               "m", "dv", "median_s", "p20_s", "p80_s", "reps", "GFLOP/s", "peak");
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct attn_kernel *kn = attn_kernel_lookup(names[i]);
        const int up = kn->update;
        struct recur_ctx c = {kn,
                              {.q = q, .k = up == ATTN_UPD_DELTA ? ku : k, .v = v, .y = y, .T = T,
                               .dk = M, .dv = DV, .causal = 1, .eps = 1e-6f, .threads = 1,
                               .work = work,
                               .gate = up == ATTN_UPD_DELTA   ? beta
                                       : up == ATTN_UPD_GATED ? alpha
                                                              : NULL,
                               .gate_const = 0.95f}};
        struct la_timing t;
        la_time(recur_call, &c, 1, 3, 1000, budget, &t);
        const double gf = attn_nominal_flops(kn, T, M, DV, 1) / t.median_s / 1e9;
        if (tsv)
            printf("%s\t%s\t%d\t%d\t%d\t%.6g\t%.6g\t%.6g\t%d\t%.4g\t%.4f\n", attn_update_name(up),
                   kn->name, T, M, DV, t.median_s, t.p20_s, t.p80_s, t.repeats, gf, gf / peak);
        else
            printf("%-6s %-24s %6d %4d %4d %12.6f %12.6f %12.6f %5d %9.2f %7.1f%%\n",
                   attn_update_name(up), kn->name, T, M, DV, t.median_s, t.p20_s, t.p80_s,
                   t.repeats, gf, 100.0 * gf / peak);
        fflush(stdout);
    }
    printf("# delta: token t's update needs u_t = S_{t-1}^T k_t over all m rows first, so tokens "
           "cannot share a pass over the state (sum, decay, gated: one pass per 3 tokens); its "
           "pass computes the next token's u as it writes each row, so the state is loaded and "
           "stored once per token for 3 FMAs per element (6 nominal flops), and the next token "
           "waits for the end of the pass; delta chunked (WY/UT, chunk C = 16): GEMMs instead of "
           "the serial pass, at 6·m·dv + 4·C·(m + dv) + C²/3 flops per token (about 1.3x the "
           "nominal 6·m·dv here), so its efficiency is the small GEMMs' over that factor\n");
    printf("# decay: its pass keeps each tile's state rescaled by gamma's powers (2 FMAs per "
           "element and token, a multiply per tile, where the plain form takes a multiply and "
           "2 FMAs), so it executes 4·m·dv + m·dv/tb flops per token of the nominal 5·m·dv "
           "(tb = 3 on AVX-512 at dv = 64: 0.87 of it); its peak column rates the plain form's "
           "count\n");
done:
    free(q), free(k), free(ku), free(v), free(y), free(beta), free(alpha), free(work);
    return rc;
}
