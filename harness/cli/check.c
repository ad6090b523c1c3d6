/* check.c — one fast kernel against its double reference (the table's ref) at one shape (see
 * check.h), and the `linattn check` command: a PASS/FAIL table over odd shapes, exit 1 on any
 * FAIL.
 */
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "commands.h"
#include "../core/util.h"

int la_check_kernel(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                    struct la_check_result *res, struct la_error *err)
{
    const int H = c->heads > 0 ? c->heads : 1, T = c->T, dk = c->dk, dv = c->dv;
    const int nth = c->threads > 0 ? c->threads : 1;
    const size_t nq = (size_t)H * T * dk, nv = (size_t)H * T * dv;
    const int features = kn->input == ATTN_IN_FEATURES;
    const struct attn_ref *ref = kn->ref;
    const size_t ws = attn_workspace_floats(kn, T, dk, dv, c->causal, c->chunk, H < nth ? nth : 1);
    const size_t nws = ws * (size_t)(H < nth ? 1 : nth); /* attn_run_heads' slices */
    float *q = malloc(nq * sizeof *q), *k = malloc(nq * sizeof *k);
    float *v = malloc(nv * sizeof *v), *y = malloc(nv * sizeof *y);
    float *work = malloc((nws ? nws : 1) * sizeof *work);
    double *qd = malloc(nq * sizeof *qd), *kd = malloc(nq * sizeof *kd);
    double *vd = malloc(nv * sizeof *vd), *yd = malloc(nv * sizeof *yd);
    const size_t nscr = ref->scratch(T, dk, dv);
    double *scratch = malloc((nscr ? nscr : 1) * sizeof *scratch);
    int status = LA_OK;
    if (!q || !k || !v || !y || !work || !qd || !kd || !vd || !yd || !scratch) {
        status = LA_FAIL(err, LA_ENOMEM, "check: out of memory for T=%d dk=%d dv=%d", T, dk, dv);
        goto fail;
    }
    uint64_t s = seed;
    for (size_t i = 0; i < nq; i++) {
        /* Kernels that take features get positive (elu1-like) ones, so the normaliser is far
         * from zero and the comparison measures the kernel, not cancellation. */
        double a = (2.0 * la_splitmix64_unit(&s) - 1.0) * c->scale;
        double b = (2.0 * la_splitmix64_unit(&s) - 1.0) * c->scale;
        q[i] = (float)(features ? exp(a) : a);
        k[i] = (float)(features ? exp(b) : b);
        qd[i] = q[i];
        kd[i] = k[i];
    }
    for (size_t i = 0; i < nv; i++) {
        v[i] = (float)(2.0 * la_splitmix64_unit(&s) - 1.0);
        vd[i] = v[i];
    }
    struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = dk, .dv = dv,
                          .causal = c->causal, .eps = 1e-6f, .chunk = c->chunk};
    res->small_fast = attn_run_heads(kn, &a, H, nth, work, ws);
    res->small_ref = 0;
    for (int h = 0; h < H; h++) {
        const size_t oq = (size_t)h * T * dk, ov = (size_t)h * T * dv;
        struct attn_ref_args ra = {.q = qd + oq, .k = kd + oq, .v = vd + ov, .y = yd + ov,
                                   .T = T, .dk = dk, .dv = dv, .causal = c->causal, .eps = 1e-6,
                                   .scratch = scratch};
        ref->run(&ra);
        res->small_ref += ra.n_small_den;
    }
    double num = 0.0, den = 0.0;
    res->finite = 1;
    for (size_t i = 0; i < nv; i++) {
        if (!isfinite(y[i]))
            res->finite = 0;
        double e = (double)y[i] - yd[i];
        num += e * e;
        den += yd[i] * yd[i];
    }
    res->rel_err = den > 0 ? sqrt(num / den) : sqrt(num);
    res->tol = ref->tol;
fail:
    free(q), free(k), free(v), free(y), free(work);
    free(qd), free(kd), free(vd), free(yd), free(scratch);
    return status;
}

static const char check_help[] =
    "usage: linattn check [--threads N]\n"
    "Runs every fast kernel against its double reference on odd shapes (T = 1, chunk-1, chunk,\n"
    "chunk+1, T not a multiple of the chunk, d = 1, m != d, dv != d, several heads, causal and\n"
    "not) and prints a PASS/FAIL table.  Exit code 1 when any case fails.\n";

int cmd_check(int argc, char **argv)
{
    int threads = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(check_help, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t < 1 || t > 1024) {
                fprintf(stderr, "linattn check: --threads must be an integer in 1..1024, got '%s'\n",
                        argv[i]);
                return 2;
            }
            threads = (int)t;
        } else {
            fprintf(stderr, "linattn check: unknown option '%s'\n%s", argv[i], check_help);
            return 2;
        }
    }
    static const struct la_check_case shapes[] = {
        /* T, dk, dv, heads, causal, chunk, threads, scale */
        {1, 16, 16, 1, 0, 0, 1, 1.0},    {63, 16, 16, 1, 0, 0, 1, 1.0},
        {64, 16, 16, 1, 0, 0, 1, 1.0},   {65, 16, 16, 1, 0, 0, 1, 1.0},
        {300, 1, 1, 1, 0, 0, 1, 1.0},    {257, 24, 40, 1, 0, 0, 1, 1.0},
        {200, 33, 17, 3, 0, 0, 1, 1.0},  {1, 16, 16, 1, 1, 0, 1, 1.0},
        {63, 16, 16, 1, 1, 0, 1, 1.0},   {64, 16, 16, 1, 1, 0, 1, 1.0},
        {65, 16, 16, 1, 1, 0, 1, 1.0},   {300, 1, 1, 1, 1, 0, 1, 1.0},
        {257, 24, 40, 1, 1, 0, 1, 1.0},  {200, 33, 17, 3, 1, 0, 1, 1.0},
        {333, 20, 12, 1, 1, 17, 1, 1.0}, {600, 64, 64, 1, 1, 0, 2, 1.0},
        {3, 7, 5, 1, 1, 2, 2, 1.0},      {301, 40, 17, 1, 1, 0, 2, 1.0},
        {513, 33, 65, 1, 1, 50, 2, 1.0}, {97, 96, 130, 1, 1, 0, 3, 1.0},
        {600, 1, 1, 1, 1, 0, 1, 2.0},    {600, 64, 64, 1, 0, 0, 2, 1.0},
    };
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    int fails = 0, cases = 0;
    printf("%-24s %6s %4s %4s %3s %6s %5s %4s %10s %9s  %s\n", "kernel", "T", "dk", "dv", "H",
           "causal", "chunk", "thr", "rel_err", "tol", "result");
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        for (size_t i = 0; i < nshapes; i++) {
            struct la_check_case c = shapes[i];
            int bit = c.causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK;
            if (!(kn->causal_support & bit))
                continue;
            if (c.threads < threads)
                c.threads = threads;
            struct la_check_result r;
            struct la_error err;
            la_error_clear(&err);
            int st = la_check_kernel(kn, &c, 0x5eed0000ull + i, &r, &err);
            int ok = st == LA_OK && r.finite && r.rel_err <= r.tol;
            cases++;
            fails += !ok;
            if (st != LA_OK)
                printf("%-24s %6d %4d %4d %3d %6d %5d %4d %10s %9.1e  FAIL (%s)\n", kn->name, c.T,
                       c.dk, c.dv, c.heads, c.causal, c.chunk, c.threads, "-", 0.0, err.msg);
            else
                printf("%-24s %6d %4d %4d %3d %6d %5d %4d %10.2e %9.1e  %s\n", kn->name, c.T, c.dk,
                       c.dv, c.heads, c.causal, c.chunk, c.threads, r.rel_err, r.tol,
                       ok ? "PASS" : "FAIL");
        }
    }
    printf("\n%d cases, %d passed, %d failed (kernel SIMD: %s, vmath: %s)\n", cases, cases - fails,
           fails, la_simd_name(la_simd_isa()), la_vmath_isa());
    return fails ? 1 : 0;
}
