/* cmd_check.c — `linattn check`: every fast kernel against its double reference (check.c) on odd
 * shapes (prefill and step kernels in their chain, prefill then steps, on shapes of their own;
 * backward kernels on the forward shapes, check_backward.c; the kernels with fuses_map again
 * applying elu1 and relu themselves, la_check_fused),
 * printed as a PASS/FAIL table; exit 1 on any FAIL.  Tests: tests/cli_errors.sh runs it,
 * tests/test_kernels.c checks the same comparisons case by case.
 */
#include <stdio.h>

#include "../../kernels/simd.h"
#include "../../kernels/vmath.h"
#include "check.h"
#include "commands.h"
#include "options.h"

int cmd_check(int argc, char **argv)
{
    int threads = 1;
    const struct la_option opts[] = {
        LA_OPT_INT("threads", 0, &threads, "N", 1, 1024,
                   "at least N threads in every case (default: each case's own, 1 to 3)"),
        LA_OPT_END,
    };
    const struct la_command cmd = {
        .prog = "linattn check",
        .intro = "Runs every fast kernel against its double reference on odd shapes (T = 1, "
                 "chunk-1, chunk, chunk+1, T not a multiple of the chunk, chunk = 1, d = 1, m != "
                 "d, dv != d, several heads, causal and not; prefill and step kernels as a "
                 "prefill of P tokens then N steps, against the causal forward reference and "
                 "kernel, with P = 0, P = 1, N = 1, m = 1, m != dv, a batch B > 1, threads > 1 on "
                 "one sequence; backward kernels: the three gradients against the reference's on "
                 "the forward shapes; the kernels that can apply an elementwise map themselves, "
                 "with elu1, relu and relu with eps = 0, on raw rows against the reference on the "
                 "map in double and bit for bit against their unfused output) and prints a "
                 "PASS/FAIL table (column N: the steps; H: the batch B of a chain).  Exit code 1 "
                 "when any case fails.",
        .opts = opts,
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    static const struct la_check_case shapes[] = {
        /* T, dk, dv, heads, causal, chunk, threads, scale, steps (unused) */
        {1, 16, 16, 1, 0, 0, 1, 1.0, 0},    {63, 16, 16, 1, 0, 0, 1, 1.0, 0},
        {64, 16, 16, 1, 0, 0, 1, 1.0, 0},   {65, 16, 16, 1, 0, 0, 1, 1.0, 0},
        {300, 1, 1, 1, 0, 0, 1, 1.0, 0},    {257, 24, 40, 1, 0, 0, 1, 1.0, 0},
        {200, 33, 17, 3, 0, 0, 1, 1.0, 0},  {1, 16, 16, 1, 1, 0, 1, 1.0, 0},
        {63, 16, 16, 1, 1, 0, 1, 1.0, 0},   {64, 16, 16, 1, 1, 0, 1, 1.0, 0},
        {65, 16, 16, 1, 1, 0, 1, 1.0, 0},   {300, 1, 1, 1, 1, 0, 1, 1.0, 0},
        {257, 24, 40, 1, 1, 0, 1, 1.0, 0},  {200, 33, 17, 3, 1, 0, 1, 1.0, 0},
        {333, 20, 12, 1, 1, 17, 1, 1.0, 0}, {600, 64, 64, 1, 1, 0, 2, 1.0, 0},
        {3, 7, 5, 1, 1, 2, 2, 1.0, 0},      {301, 40, 17, 1, 1, 0, 2, 1.0, 0},
        {513, 33, 65, 1, 1, 50, 2, 1.0, 0}, {97, 96, 130, 1, 1, 0, 3, 1.0, 0},
        {600, 1, 1, 1, 1, 0, 1, 2.0, 0},    {600, 64, 64, 1, 0, 0, 2, 1.0, 0},
        /* C = 1 with two heads; several heads with threads inside each; three threads over
         * uneven ranges. */
        {41, 9, 6, 2, 1, 1, 1, 1.0, 0},
        {65, 6, 5, 1, 1, 1, 2, 1.0, 0},     {130, 9, 11, 2, 1, 7, 3, 1.0, 0},
        {800, 13, 9, 1, 0, 0, 3, 1.0, 0},   {800, 13, 9, 1, 1, 0, 3, 1.0, 0},
    };
    static const struct la_check_case chains[] = {
        /* T, dk, dv, heads (B), causal, chunk, threads, scale, steps (N; P = T − N) */
        {5, 16, 16, 1, 1, 0, 1, 1.0, 5},    {6, 16, 16, 1, 1, 0, 1, 1.0, 5},
        {64, 16, 16, 1, 1, 0, 1, 1.0, 1},   {40, 1, 1, 1, 1, 0, 1, 1.0, 7},
        {50, 24, 40, 3, 1, 0, 1, 1.0, 9},   {1, 8, 8, 2, 1, 0, 1, 1.0, 0},
        {70, 33, 17, 4, 1, 0, 2, 1.0, 20},  {130, 64, 64, 16, 1, 0, 1, 1.0, 10},
        {200, 5, 3, 5, 1, 0, 3, 1.5, 150},  {300, 24, 40, 1, 1, 0, 3, 1.0, 100},
    };
    const size_t nshapes = sizeof shapes / sizeof shapes[0];
    const size_t nchains = sizeof chains / sizeof chains[0];
    int fails = 0, cases = 0;
    printf("%-24s %6s %5s %4s %4s %3s %6s %5s %4s %10s %9s  %s\n", "kernel", "T", "N", "dk",
           "dv", "H", "causal", "chunk", "thr", "rel_err", "tol", "result");
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        const int chain = kn->op == ATTN_OP_PREFILL || kn->op == ATTN_OP_STEP;
        for (size_t i = 0; i < (chain ? nchains : nshapes); i++) {
            struct la_check_case c = chain ? chains[i] : shapes[i];
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
            char nsteps[16];
            snprintf(nsteps, sizeof nsteps, chain ? "%d" : "-", c.steps);
            if (st != LA_OK)
                printf("%-24s %6d %5s %4d %4d %3d %6d %5d %4d %10s %9.1e  FAIL (%s)\n", kn->name,
                       c.T, nsteps, c.dk, c.dv, c.heads, c.causal, c.chunk, c.threads, "-", 0.0,
                       err.msg);
            else
                printf("%-24s %6d %5s %4d %4d %3d %6d %5d %4d %10.2e %9.1e  %s\n", kn->name, c.T,
                       nsteps, c.dk, c.dv, c.heads, c.causal, c.chunk, c.threads, r.rel_err,
                       r.tol, ok ? "PASS" : "FAIL");
        }
    }
    /* The kernels that apply a fused map themselves, on raw rows (T = 1, T past no block
     * boundary, d = 1, dv != d, several heads, threads, several segments of the threaded chunked
     * form), with elu1, relu and relu with eps = 0: at dk = 1 and 3 that gives rows whose
     * features are all zero, so normalisers of 0 (counted, and the row 0). */
    static const struct la_check_case fused[] = {
        /* T, dk, dv, heads, causal (both run), chunk, threads, scale, steps (unused) */
        {1, 16, 16, 1, 0, 0, 1, 2.0, 0},    {65, 16, 16, 1, 0, 0, 1, 2.0, 0},
        {300, 1, 1, 1, 0, 0, 1, 2.0, 0},    {257, 24, 40, 1, 0, 0, 1, 2.0, 0},
        {200, 3, 17, 3, 0, 0, 1, 2.0, 0},   {3, 7, 5, 1, 0, 2, 2, 2.0, 0},
        {301, 40, 17, 1, 0, 0, 2, 2.0, 0},  {513, 33, 65, 2, 0, 50, 2, 2.0, 0},
        {700, 64, 64, 1, 0, 0, 2, 2.0, 0},  {97, 96, 130, 1, 0, 0, 3, 2.0, 0},
        {1000, 128, 128, 1, 0, 0, 3, 2.0, 0},
    };
    static const struct {
        int map;
        double eps;
        const char *label;
    } maps[] = {{ATTN_MAP_ELU1, 0.0, "+elu1"},
                {ATTN_MAP_RELU, 1e-3, "+relu"},
                {ATTN_MAP_RELU, 0.0, "+relu(eps=0)"}};
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        if (!kn->fuses_map)
            continue;
        for (size_t mi = 0; mi < sizeof maps / sizeof maps[0]; mi++)
            for (size_t i = 0; i < sizeof fused / sizeof fused[0]; i++)
                for (int causal = 0; causal <= 1; causal++) {
                    struct la_check_case c = fused[i];
                    c.causal = causal;
                    if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                        continue;
                    if (c.threads < threads)
                        c.threads = threads;
                    struct la_check_result r;
                    struct la_error err;
                    la_error_clear(&err);
                    char label[64];
                    snprintf(label, sizeof label, "%s%s", kn->name, maps[mi].label);
                    const int st = la_check_fused(kn, &c, maps[mi].map, maps[mi].eps,
                                                  0x5eed1000ull + i, &r, &err);
                    const int ok = st == LA_OK && r.finite && r.rel_err <= r.tol &&
                                   r.small_fast == r.small_ref && r.fused_exact == 1;
                    cases++;
                    fails += !ok;
                    if (st != LA_OK)
                        printf("%-24s %6d %5s %4d %4d %3d %6d %5d %4d %10s %9.1e  FAIL (%s)\n",
                               label, c.T, "-", c.dk, c.dv, c.heads, c.causal, c.chunk,
                               c.threads, "-", 0.0, err.msg);
                    else
                        printf("%-24s %6d %5s %4d %4d %3d %6d %5d %4d %10.2e %9.1e  %s%s\n",
                               label, c.T, "-", c.dk, c.dv, c.heads, c.causal, c.chunk,
                               c.threads, r.rel_err, r.tol, ok ? "PASS" : "FAIL",
                               !ok && r.small_fast != r.small_ref ? " (small normalisers)"
                               : !ok && r.fused_exact != 1       ? " (differs from unfused)"
                                                                 : "");
                }
    }
    printf("\n%d cases, %d passed, %d failed (kernel SIMD: %s, vmath: %s)\n", cases, cases - fails,
           fails, la_simd_name(la_simd_isa()), la_vmath_isa());
    return fails ? 1 : 0;
}
