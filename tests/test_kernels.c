/* test_kernels.c — every kernel of the table (and the seed baseline) against the double
 * reference its entry names, on odd shapes, on every vector path this CPU runs (AVX-512, AVX2,
 * portable; forced with la_simd_force) and with threads inside a head; the table's capability
 * fields against what the kernels do (causality, uses_chunk, what q and k hold, no state, an
 * alias's output equal to its algorithm's) and its flop and byte models on small shapes; the SIMD
 * GEMM tile against a plain loop; the two causal algorithms against each other; causal linear
 * against the non-causal formula on every prefix; the seed baseline (raw Q, K, elu+1 inside)
 * against the reference on elu1 features; softmax stability for scores of ±1000; small
 * normalisers counted at every thread count; the output at aligned and unaligned addresses with
 * threads; prefill and step (linear): prefill then steps against the causal forward reference
 * and kernel (la_check_kernel's chain), a prefill in pieces equal to one prefill, a threaded
 * step equal to an unthreaded one, and mutated prefill and step kernels that the chain check
 * fails; backward kernels against their gradient references (la_check_kernel) on the same odd
 * shapes, and their flop and byte models; the chunked backward's threaded pipeline on shapes
 * that reach its segment counts and edges, and with fewer threads than asked for; the delta,
 * decay and gated recurrences: their references by hand, every entry at every normaliser with
 * the gate per token and constant, and mutations their checks fail.  Run: make check (or build/tests/test_kernels).
 * Tolerance: relative Frobenius error <= 2e-5 for fp32 kernels (ATTN_TOL_* in kernels/attention.h);
 * measured errors are ~1e-7, so the bound has two orders of margin and still catches any bug
 * that is not rounding (a wrong row, a missed tile or chunk gives errors of order 1).
 */
#include "testutil.h"

#include <omp.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../harness/cli/check.h"
#include "../kernels/attention.h"
#include "../kernels/simd.h"

static const struct la_check_case odd_shapes[] = {
    /* T, dk, dv, heads, causal, chunk, threads, scale, steps (unused) */
    {1, 16, 16, 1, 0, 0, 1, 1.0, 0},   {63, 16, 16, 1, 0, 0, 1, 1.0, 0},  {64, 16, 16, 1, 0, 0, 1, 1.0, 0},
    {65, 16, 16, 1, 0, 0, 1, 1.0, 0},  {129, 16, 16, 1, 0, 0, 1, 1.0, 0}, {300, 1, 1, 1, 0, 0, 1, 1.0, 0},
    {257, 24, 40, 1, 0, 0, 1, 1.0, 0}, {200, 33, 17, 3, 0, 0, 2, 1.0, 0}, {100, 5, 3, 4, 0, 0, 1, 1.5, 0},
    {1, 16, 16, 1, 1, 0, 1, 1.0, 0},   {63, 16, 16, 1, 1, 0, 1, 1.0, 0},  {64, 16, 16, 1, 1, 0, 1, 1.0, 0},
    {65, 16, 16, 1, 1, 0, 1, 1.0, 0},  {129, 16, 16, 1, 1, 0, 1, 1.0, 0}, {300, 1, 1, 1, 1, 0, 1, 1.0, 0},
    {257, 24, 40, 1, 1, 0, 1, 1.0, 0}, {200, 33, 17, 3, 1, 0, 2, 1.0, 0}, {100, 5, 3, 4, 1, 0, 1, 1.5, 0},
    {333, 20, 12, 1, 1, 17, 1, 1.0, 0}, {31, 8, 8, 1, 1, 32, 1, 1.0, 0}, {32, 8, 8, 1, 1, 32, 1, 1.0, 0},
    {33, 8, 8, 1, 1, 32, 1, 1.0, 0},   {700, 64, 64, 1, 1, 0, 2, 1.0, 0}, {700, 64, 64, 1, 0, 0, 2, 1.0, 0},
    /* Threads inside one head: fewer chunks or column vectors than threads, T = 1, dv not a
     * multiple of any vector width, three threads. */
    {1, 16, 16, 1, 1, 0, 2, 1.0, 0},   {3, 7, 5, 1, 1, 2, 2, 1.0, 0},     {70, 9, 5, 1, 1, 16, 3, 1.0, 0},
    {301, 40, 17, 1, 1, 0, 2, 1.0, 0}, {301, 40, 17, 1, 0, 0, 2, 1.0, 0}, {513, 33, 65, 1, 1, 50, 2, 1.0, 0},
    {1, 16, 16, 1, 0, 0, 2, 1.0, 0},   {97, 96, 130, 1, 1, 0, 3, 1.0, 0}, {97, 96, 130, 1, 0, 0, 3, 1.0, 0},
    /* Several segments of the threaded chunked form (3 chunks of 48 a segment at 128 wide;
     * 11 of 20 at m = 100, dv = 60), dealt to 2 and 3 threads; 721 ends on a one-token chunk
     * alone in the last segment. */
    {1000, 128, 128, 1, 1, 48, 2, 1.0, 0}, {1000, 128, 128, 1, 1, 48, 3, 1.0, 0},
    {721, 128, 128, 1, 1, 48, 2, 1.0, 0},  {721, 128, 128, 1, 1, 48, 3, 1.0, 0},
    {1000, 100, 60, 1, 1, 20, 3, 1.0, 0},
    /* C = 1; several heads with threads inside each; three threads over uneven ranges (the
     * backward kernels' row blocks and chunk ranges). */
    {65, 6, 5, 1, 1, 1, 2, 1.0, 0},    {40, 6, 5, 2, 1, 1, 1, 1.0, 0},    {130, 9, 11, 2, 1, 7, 3, 1.0, 0},
    {800, 13, 9, 1, 0, 0, 3, 1.0, 0},  {800, 13, 9, 1, 1, 0, 3, 1.0, 0},
    /* Several key tiles and query blocks of softmax; long rows; m != dv widths past 64. */
    {600, 1, 1, 1, 0, 0, 1, 2.0, 0},   {600, 1, 1, 1, 1, 0, 1, 2.0, 0},   {531, 72, 80, 1, 1, 0, 1, 1.0, 0},
    {531, 72, 80, 1, 0, 0, 1, 1.0, 0}, {290, 130, 3, 2, 1, 0, 2, 1.0, 0}, {290, 3, 130, 2, 0, 0, 2, 1.0, 0},
};

/* r, la_check_kernel's result for kn on c, within the reference's tolerance and finite, with
 * the same rows of small normalisers as the reference; a failure prints the case first. */
static void assert_check_ok(const struct attn_kernel *kn, const struct la_check_case *c,
                            const struct la_check_result *r)
{
    if (!(r->finite && r->rel_err <= r->tol && r->small_fast == r->small_ref))
        print_error("%s [%s] T=%d N=%d dk=%d dv=%d H=%d causal=%d chunk=%d thr=%d: rel_err %.3g "
                    "tol %.1g, small %ld/%ld\n",
                    kn->name, la_simd_name(la_simd_isa()), c->T, c->steps, c->dk, c->dv, c->heads,
                    c->causal, c->chunk, c->threads, r->rel_err, r->tol, r->small_fast,
                    r->small_ref);
    assert_true(r->finite);
    assert_true(r->rel_err <= r->tol);
    assert_int_equal(r->small_fast, r->small_ref);
}

/* Every entry of the table, and the seed baseline, against the reference its entry names
 * (la_check_kernel runs kn->ref).  Prefill and step entries run each causal shape as a chain:
 * a prefill of T − N tokens then N steps, with N = T (P = 0) and N = ⌈T/3⌉ in turn, heads as
 * the batch B. */
static void check_every_kernel_odd_shapes(void)
{
    const size_t nk = attn_kernel_count();
    for (size_t k = 0; k <= nk; k++) {
        const struct attn_kernel *kn = k < nk ? &attn_kernels[k] : &attn_linear_causal_seed;
        assert_true(kn->op == ATTN_OP_FORWARD || kn->op == ATTN_OP_PREFILL ||
                    kn->op == ATTN_OP_STEP || kn->op == ATTN_OP_BACKWARD);
        assert_non_null(kn->ref);
        for (size_t i = 0; i < sizeof odd_shapes / sizeof odd_shapes[0]; i++) {
            struct la_check_case cc = odd_shapes[i];
            if (kn->op == ATTN_OP_PREFILL || kn->op == ATTN_OP_STEP)
                cc.steps = i % 2 ? cc.T : (cc.T + 2) / 3;
            const struct la_check_case *c = &cc;
            if (!(kn->causal_support & (c->causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            struct la_check_result r;
            struct la_error err;
            assert_int_equal(la_check_kernel(kn, c, 1000 + i, &r, &err), LA_OK);
            assert_check_ok(kn, c, &r);
        }
    }
}

/* The same table on every vector path this CPU can run (the default path is one of them). */
static void test_every_kernel_odd_shapes(void **state)
{
    (void)state;
    int ran = 0;
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (!la_simd_supported(isa))
            continue;
        assert_int_equal(la_simd_force(isa), 0);
        assert_int_equal(la_simd_isa(), isa);
        check_every_kernel_odd_shapes();
        ran++;
    }
    la_simd_force(-1);
    assert_true(ran >= 1);
}

/* The kernels with fuses_map applying elu1, relu and relu with eps = 0 to raw rows, on every
 * path and at 1 to 3 threads: against the reference on the map evaluated in double, the small
 * normalisers counted as the reference counts them, and the output equal bit for bit to the
 * same kernel's on the features attn_map_rows writes.  At dk = 1 and 3 relu with eps = 0 gives
 * rows with all features 0 (normaliser 0): some must be counted. */
static void test_fused_maps(void **state)
{
    (void)state;
    static const struct la_check_case shapes[] = {
        /* T, dk, dv, heads, causal (both run), chunk, threads (1 to 3 run), scale, steps */
        {1, 16, 16, 1, 0, 0, 1, 2.0, 0},  {65, 16, 16, 1, 0, 0, 1, 2.0, 0},
        {300, 1, 1, 1, 0, 0, 1, 2.0, 0},  {257, 24, 40, 1, 0, 0, 1, 2.0, 0},
        {200, 3, 17, 3, 0, 0, 1, 2.0, 0}, {3, 7, 5, 1, 0, 2, 1, 2.0, 0},
        {513, 33, 65, 2, 0, 50, 1, 2.0, 0}, {600, 128, 128, 1, 0, 0, 1, 2.0, 0},
    };
    static const struct {
        int map;
        double eps;
    } maps[] = {{ATTN_MAP_ELU1, 0.0}, {ATTN_MAP_RELU, 1e-3}, {ATTN_MAP_RELU, 0.0}};
    int fusing = 0;
    long zero_rows = 0;
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        if (!kn->fuses_map) {
            struct la_check_result r;
            struct la_error err;
            assert_int_equal(la_check_fused(kn, &shapes[0], ATTN_MAP_ELU1, 0.0, 1, &r, &err),
                             LA_EINVAL);
            continue;
        }
        assert_true(kn->op == ATTN_OP_FORWARD && kn->input == ATTN_IN_FEATURES);
        fusing++;
        for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
            if (la_simd_force(isa) != 0)
                continue;
            for (size_t mi = 0; mi < sizeof maps / sizeof maps[0]; mi++)
                for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
                    for (int causal = 0; causal <= 1; causal++)
                        for (int th = 1; th <= 3; th++) {
                            struct la_check_case c = shapes[i];
                            c.causal = causal;
                            c.threads = th;
                            if (!(kn->causal_support &
                                  (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                                continue;
                            struct la_check_result r;
                            struct la_error err;
                            assert_int_equal(la_check_fused(kn, &c, maps[mi].map, maps[mi].eps,
                                                            2000 + i, &r, &err),
                                             LA_OK);
                            if (!(r.finite && r.rel_err <= r.tol && r.fused_exact == 1 &&
                                  r.small_fast == r.small_ref))
                                print_error("%s+%s eps=%g [%s] T=%d dk=%d dv=%d H=%d causal=%d "
                                            "thr=%d: rel_err %.3g, exact %d, small %ld/%ld\n",
                                            kn->name, attn_fused_map_name(maps[mi].map),
                                            maps[mi].eps, la_simd_name(isa), c.T, c.dk, c.dv,
                                            c.heads, causal, th, r.rel_err, r.fused_exact,
                                            r.small_fast, r.small_ref);
                            assert_true(r.finite);
                            assert_true(r.rel_err <= r.tol);
                            assert_int_equal(r.fused_exact, 1);
                            assert_int_equal(r.small_fast, r.small_ref);
                            if (maps[mi].map == ATTN_MAP_RELU && maps[mi].eps == 0.0)
                                zero_rows += r.small_ref;
                        }
        }
        la_simd_force(-1);
    }
    assert_true(fusing >= 3); /* non-causal, and both causal algorithms (and the alias) */
    assert_true(zero_rows > 0);
}

/* linear_noncausal on a call that streams more than NONCAUSAL_PF_BYTES (12 MiB: T = 12301 at
 * m = dv = 64), where each block's GEMM prefetches the next block's rows (linear.c): against the
 * reference at 1 and 2 threads, and with elu1 fused, bit for bit the kernel on the features. */
static void test_noncausal_prefetch(void **state)
{
    (void)state;
    const struct attn_kernel *kn = attn_kernel_lookup("linear_noncausal");
    assert_non_null(kn);
    for (int th = 1; th <= 2; th++) {
        const struct la_check_case c = {12301, 64, 64, 1, 0, 0, th, 2.0, 0};
        struct la_check_result r;
        struct la_error err;
        assert_int_equal(la_check_kernel(kn, &c, 3100 + th, &r, &err), LA_OK);
        assert_check_ok(kn, &c, &r);
        assert_int_equal(la_check_fused(kn, &c, ATTN_MAP_ELU1, 0.0, 3200 + th, &r, &err), LA_OK);
        assert_true(r.finite);
        assert_true(r.rel_err <= r.tol);
        assert_int_equal(r.fused_exact, 1);
    }
}

/* linear_causal_chunked_backward's threaded form (linear_backward.c cb_threads: segments of
 * chunks claimed in turn, each starting from the state the previous one published) against the
 * reference on every vector path at 2 and 3 threads, then with OpenMP giving one thread where 2
 * or 3 were asked for (a nested region; one thread then claims every segment).  Segments at 2
 * and 3 threads (C = 32 unless given, cb_seg_chunks = 10 chunks at m = dv = 64, 12 at C = 24):
 * T = 1 and 32, one chunk (the one-thread path); 64, two chunks, one segment each; 70, three
 * chunks (the last of 6 rows), three segments (not a multiple of 2); 5000, 157 chunks, 16 and
 * 18 segments; 3001 at C = 24, 126 chunks (the last of one row), 12 and 15 segments; and odd
 * widths: m != dv, dv = 1, m = 1, m = dv = 1, T not a multiple of C. */
static void test_chunked_backward_threads(void **state)
{
    (void)state;
    static const struct la_check_case shapes[] = {
        /* T, dk, dv, heads, causal, chunk, threads (set below), scale, steps */
        {1, 16, 16, 1, 1, 0, 0, 1.0, 0},    {32, 16, 16, 1, 1, 32, 0, 1.0, 0},
        {64, 16, 16, 1, 1, 32, 0, 1.0, 0},  {70, 8, 8, 1, 1, 32, 0, 1.0, 0},
        {5000, 64, 64, 1, 1, 0, 0, 1.0, 0}, {3001, 64, 64, 1, 1, 24, 0, 1.0, 0},
        {333, 20, 12, 1, 1, 17, 0, 1.0, 0}, {500, 12, 40, 1, 1, 0, 0, 1.0, 0},
        {700, 40, 1, 1, 1, 0, 0, 1.0, 0},   {600, 1, 9, 1, 1, 0, 0, 1.0, 0},
        {600, 1, 1, 1, 1, 0, 0, 1.0, 0},    {1000, 100, 60, 1, 1, 20, 0, 1.0, 0},
    };
    const size_t ns = sizeof shapes / sizeof shapes[0];
    const struct attn_kernel *kn = attn_kernel_lookup("linear_causal_chunked_backward");
    assert_non_null(kn);
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (!la_simd_supported(isa))
            continue;
        assert_int_equal(la_simd_force(isa), 0);
        for (size_t i = 0; i < ns; i++)
            for (int th = 2; th <= 3; th++) {
                struct la_check_case c = shapes[i];
                c.threads = th;
                struct la_check_result r;
                struct la_error err;
                assert_int_equal(la_check_kernel(kn, &c, 4000 + 10 * i + th, &r, &err), LA_OK);
                assert_check_ok(kn, &c, &r);
            }
    }
    la_simd_force(-1);
    /* Fewer threads than asked for: inside a parallel region with nesting off, the kernel's
     * region has one thread. */
    const int levels = omp_get_max_active_levels();
    omp_set_max_active_levels(1);
    for (size_t i = 0; i < ns; i++)
        for (int th = 2; th <= 3; th++) {
            struct la_check_case c = shapes[i];
            c.threads = th;
            struct la_check_result r = {0};
            int st = -1;
#pragma omp parallel num_threads(2)
            if (omp_get_thread_num() == 0) {
                struct la_error err;
                st = la_check_kernel(kn, &c, 4500 + 10 * i + th, &r, &err);
            }
            assert_int_equal(st, LA_OK);
            assert_check_ok(kn, &c, &r);
        }
    omp_set_max_active_levels(levels);
}

/* The featuremaps' elu1 and relu are attn_map_rows (what the fused kernels apply), and it maps
 * in place as it maps into another array. */
static void test_map_rows(void **state)
{
    (void)state;
    enum { N = 1000 };
    float x[N], a[N], b[N];
    tu_fill(x, N, 30.0f, 4242);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = NAN, x[3] = -200.0f, x[4] = 1e-30f;
    for (int map = ATTN_MAP_NONE; map <= ATTN_MAP_RELU; map++) {
        attn_map_rows(map, 0.25f, x, a, N);
        memcpy(b, x, sizeof b);
        attn_map_rows(map, 0.25f, b, b, N);
        assert_memory_equal(a, b, sizeof a);
        assert_true(isnan(a[2]));
        for (int i = 3; i < N; i++) {
            const double want = map == ATTN_MAP_ELU1   ? (x[i] >= 0 ? x[i] + 1.0 : exp(x[i]))
                                : map == ATTN_MAP_RELU ? fmax(x[i], 0.0) + 0.25
                                                       : x[i];
            assert_true(fabs(a[i] - want) <= 4e-7 * fabs(want) + 1e-37);
        }
        assert_true(a[0] == (map == ATTN_MAP_ELU1 ? 1.0f : map == ATTN_MAP_RELU ? 0.25f : 0.0f));
    }
    assert_string_equal(attn_fused_map_name(ATTN_MAP_ELU1), "elu1");
    assert_string_equal(attn_fused_map_name(ATTN_MAP_RELU), "relu");
}

/* elu1's exp on every path, against exp in double over a dense sweep of [-87, 0] (every 499th
 * float, about 2.2 million; the AVX-512 table form measured 1.07 ulp at most over every float
 * of the range, the AVX2 polynomial 1.26, the portable path is libm's expf), in ulps of the
 * exact value: a wrong table entry or polynomial coefficient shows as many ulps. */
static void test_elu1_exp_ulp(void **state)
{
    (void)state;
    enum { N = 4096 };
    static const double bound[LA_ISA_COUNT] = {[LA_ISA_SCALAR] = 1.0, [LA_ISA_AVX2] = 1.3,
                                                [LA_ISA_AVX512] = 1.1};
    float x[N], y[N];
    uint32_t lo, u = 0x80000000u; /* -0 */
    const float xlo = -87.0f;
    memcpy(&lo, &xlo, sizeof lo);
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (!la_simd_supported(isa))
            continue;
        double worst = 0.0;
        size_t count = 0;
        for (uint32_t v = u; v <= lo;) {
            int n = 0;
            for (; n < N && v <= lo; n++, v += 499)
                memcpy(&x[n], &v, sizeof v);
            la_elu1_rows(isa, x, y, n);
            for (int i = 0; i < n; i++) {
                const double want = exp((double)x[i]);
                int e;
                frexp(want, &e);
                const double err = fabs((double)y[i] - want) / ldexp(1.0, e - 24);
                worst = err > worst ? err : worst;
            }
            count += (size_t)n;
        }
        assert_true(count > 2000000);
        if (worst > bound[isa])
            fail_msg("%s: elu1's exp off by %.3f ulp (bound %.2f)", la_simd_name(isa), worst,
                     bound[isa]);
    }
}

/* The path names round-trip, the portable path always exists, a bad name is refused. */
static void test_simd_choice(void **state)
{
    (void)state;
    for (int isa = 0; isa < LA_ISA_COUNT; isa++)
        assert_int_equal(la_simd_parse(la_simd_name(isa)), isa);
    assert_int_equal(la_simd_parse("sse9"), -1);
    assert_int_equal(la_simd_parse(NULL), -1);
    assert_true(la_simd_supported(LA_ISA_SCALAR));
    assert_int_equal(la_simd_force(LA_ISA_COUNT), -1);
    assert_int_equal(la_simd_force(LA_ISA_SCALAR), 0);
    assert_int_equal(la_simd_isa(), LA_ISA_SCALAR);
    la_simd_force(-1);
    assert_true(la_simd_supported(la_simd_isa()));
}

/* la_pack_t against its definition, element by element (it only copies, so exactly): keys not a
 * multiple of 4 or of the panel, columns not a multiple of 4 (1, 3, 5, 66), a row stride past
 * the columns, a first key j0 > 0, several panels, and the zero padding of the last panel. */
static void test_pack_t(void **state)
{
    (void)state;
    static const int cases[][5] = {/* n, cols, ldx, j0, nr */
                                   {1, 1, 1, 0, 16},   {7, 3, 5, 2, 16},  {64, 64, 64, 0, 64},
                                   {65, 5, 9, 3, 64},  {130, 66, 70, 1, 32}, {19, 8, 8, 0, 8}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const int n = cases[ci][0], cols = cases[ci][1], ldx = cases[ci][2], j0 = cases[ci][3];
        const int nr = cases[ci][4], npan = (n + nr - 1) / nr;
        const size_t nx = (size_t)(j0 + n) * ldx, np = (size_t)npan * cols * nr;
        float *x = malloc(sizeof(float) * nx), *pk = malloc(sizeof(float) * np);
        for (size_t i = 0; i < nx; i++)
            x[i] = (float)i + 0.25f;
        for (size_t i = 0; i < np; i++)
            pk[i] = -1.0f;
        la_pack_t(x, ldx, j0, n, cols, nr, pk);
        for (int p = 0; p < npan; p++)
            for (int c = 0; c < cols; c++)
                for (int jj = 0; jj < nr; jj++) {
                    const int j = p * nr + jj;
                    const float want = j < n ? x[(size_t)(j0 + j) * ldx + c] : 0.0f;
                    const float got = pk[(size_t)p * cols * nr + (size_t)c * nr + jj];
                    if (got != want)
                        print_error("pack n=%d cols=%d ldx=%d j0=%d nr=%d: panel %d col %d key %d: "
                                    "%g, want %g\n",
                                    n, cols, ldx, j0, nr, p, c, jj, got, want);
                    assert_true(got == want);
                }
        free(x);
        free(pk);
    }
}

/* la_gemm on every path against a double loop: odd M, N, K (K past the K-block), transposed A,
 * row scales, beta = 0 and 1, N past one register tile and not a multiple of any width. */
static void test_simd_gemm(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 1},   {7, 13, 5},  {6, 64, 64}, {13, 65, 129},
                                    {25, 17, 300}, {64, 130, 48}, {3, 200, 0}};
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (!la_simd_supported(isa))
            continue;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            const int M = shapes[sh][0], N = shapes[sh][1], K = shapes[sh][2];
            const int ldc = N + 3, kk = K > 0 ? K : 1;
            float *A = malloc(sizeof(float) * M * kk), *B = malloc(sizeof(float) * kk * N);
            float *C = malloc(sizeof(float) * M * ldc), *rs = malloc(sizeof(float) * M);
            float *C0 = malloc(sizeof(float) * M * ldc), *C2 = malloc(sizeof(float) * M * ldc);
            double *R = malloc(sizeof(double) * M * N);
            tu_fill(A, (size_t)M * kk, 1.0f, 31 + sh);
            tu_fill(B, (size_t)kk * N, 1.0f, 41 + sh);
            tu_fill(C0, (size_t)M * ldc, 1.0f, 51 + sh);
            tu_fill(rs, (size_t)M, 2.0f, 61 + sh);
            for (int trans = 0; trans <= 1; trans++)
                for (int beta = 0; beta <= 1; beta++)
                    for (int scaled = 0; scaled <= 1; scaled++) {
                        /* A as (M, K) row-major, or the same numbers read as the transpose of a
                         * (K, M) array. */
                        const ptrdiff_t rsa = trans ? 1 : kk, csa = trans ? M : 1;
                        memcpy(C, C0, sizeof(float) * M * ldc);
                        la_gemm(isa, M, N, K, A, rsa, csa, B, N, C, ldc, 0.75f,
                                scaled ? rs : NULL, beta);
                        double num = 0, den = 0;
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < N; j++) {
                                double acc = 0;
                                for (int k = 0; k < K; k++)
                                    acc += (double)A[i * rsa + k * csa] * B[k * N + j];
                                acc *= 0.75 * (scaled ? rs[i] : 1.0);
                                if (beta)
                                    acc += C0[i * ldc + j];
                                const double e = C[i * ldc + j] - acc;
                                num += e * e;
                                den += acc * acc;
                            }
                        if (!(sqrt(num) <= 1e-6 * sqrt(den) + 1e-30))
                            print_error("gemm [%s] M=%d N=%d K=%d trans=%d beta=%d scaled=%d: "
                                        "%.3g\n",
                                        la_simd_name(isa), M, N, K, trans, beta, scaled,
                                        sqrt(num / (den > 0 ? den : 1)));
                        assert_true(sqrt(num) <= 1e-6 * sqrt(den) + 1e-30);
                        /* Columns past N (the row padding) are never written. */
                        for (int i = 0; i < M; i++)
                            for (int j = N; j < ldc; j++)
                                assert_true(C[i * ldc + j] == C0[i * ldc + j]);
                        /* With prefetch regions (A's bytes then B's; more lines than the tiles
                         * have steps; one region empty) the same floats, bit for bit. */
                        const size_t ab = sizeof(float) * M * kk, bb = sizeof(float) * kk * N;
                        const struct {
                            const void *p1;
                            size_t n1;
                            const void *p2;
                            size_t n2;
                        } pfs[] = {{A, ab, B, bb}, {NULL, 0, B, bb}, {A, ab, NULL, 0},
                                   {B, 1, A, 3}};
                        for (size_t f = 0; f < sizeof pfs / sizeof pfs[0]; f++) {
                            memcpy(C2, C0, sizeof(float) * M * ldc);
                            la_gemm_pf(isa, M, N, K, A, rsa, csa, B, N, C2, ldc, 0.75f,
                                       scaled ? rs : NULL, beta, pfs[f].p1, pfs[f].n1, pfs[f].p2,
                                       pfs[f].n2);
                            assert_memory_equal(C2, C, sizeof(float) * M * ldc);
                        }
                    }
            free(A), free(B), free(C), free(rs), free(C0), free(C2), free(R);
        }
    }
}

/* The seed baseline takes raw q, k and applies elu+1 inside: against the reference on elu1
 * features computed in double. */
static void test_seed_baseline(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 4, 4}, {77, 16, 9}, {300, 64, 64}, {129, 5, 33}};
    const struct attn_kernel *kn = &attn_linear_causal_seed;
    assert_int_equal(kn->input, ATTN_IN_QK_ELU1);
    assert_string_equal(kn->ref->name, "linear_elu1");
    assert_null(attn_kernel_lookup(kn->name)); /* not in the table */
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        const int T = shapes[sh][0], d = shapes[sh][1], dv = shapes[sh][2];
        float *q = malloc(sizeof(float) * T * d), *k = malloc(sizeof(float) * T * d);
        float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
        double *pq = malloc(sizeof(double) * T * d), *pk = malloc(sizeof(double) * T * d);
        double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
        float *w = malloc(sizeof(float) * attn_workspace_floats(kn, T, d, dv, 1, 0, 1));
        tu_fill(q, (size_t)T * d, 2.5f, 71 + sh);
        tu_fill(k, (size_t)T * d, 2.5f, 81 + sh);
        tu_fill(v, (size_t)T * dv, 1.0f, 91 + sh);
        for (size_t i = 0; i < (size_t)T * d; i++) {
            pq[i] = q[i] >= 0 ? q[i] + 1.0 : exp((double)q[i]);
            pk[i] = k[i] >= 0 ? k[i] + 1.0 : exp((double)k[i]);
        }
        tu_to_double(v, vd, (size_t)T * dv);
        struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = d, .dv = dv,
                              .causal = 1, .eps = 1e-6f, .work = w};
        kn->run(&a);
        const long small = attn_linear_ref(pq, pk, vd, yd, T, d, dv, 1, 1e-6);
        assert_true(tu_all_finite(y, (size_t)T * dv));
        assert_true(tu_rel_err(y, yd, (size_t)T * dv) <= ATTN_TOL_LINEAR);
        assert_int_equal(a.n_small_den, small);
        /* Its table reference, on the raw q, k, is the same computation. */
        double *qd = malloc(sizeof(double) * T * d), *kd = malloc(sizeof(double) * T * d);
        double *yr = malloc(sizeof(double) * T * dv);
        double *scr = malloc(sizeof(double) * (kn->ref->scratch(T, d, dv) + 1));
        tu_to_double(q, qd, (size_t)T * d);
        tu_to_double(k, kd, (size_t)T * d);
        struct attn_ref_args ra = {.q = qd, .k = kd, .v = vd, .y = yr, .T = T, .dk = d, .dv = dv,
                                   .causal = 1, .eps = 1e-6, .scratch = scr};
        kn->ref->run(&ra);
        assert_int_equal(ra.n_small_den, small);
        for (size_t i = 0; i < (size_t)T * dv; i++)
            assert_true(fabs(yr[i] - yd[i]) <= 1e-12 * (1.0 + fabs(yd[i])));
        free(qd), free(kd), free(yr), free(scr);
        free(q), free(k), free(v), free(y), free(pq), free(pk), free(vd), free(yd), free(w);
    }
}

/* A kernel of plain linear attention (the sum rule) that takes features, runs this causality
 * and computes the T rows of one sequence: a forward kernel, or a prefill (from the empty state of new_state, it is the causal forward
 * pass). */
static int linear_for(const struct attn_kernel *kn, int causal)
{
    return kn->input == ATTN_IN_FEATURES &&
           (kn->op == ATTN_OP_FORWARD || kn->op == ATTN_OP_PREFILL) &&
           kn->update == ATTN_UPD_SUM &&
           (kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK));
}

/* An empty state for one call of kn on one head (NULL when kn has none); free() it. */
static float *new_state(const struct attn_kernel *kn, int T, int dk, int dv)
{
    const size_t n = attn_call_state_floats(kn, T, dk, dv);
    return n ? calloc(n, sizeof(float)) : NULL;
}

/* Seeded positive features and values for one head. */
static void features(float *pq, float *pk, float *v, int T, int m, int dv, uint64_t seed)
{
    tu_fill(pq, (size_t)T * m, 1.3f, seed);
    tu_fill(pk, (size_t)T * m, 1.3f, seed + 1);
    tu_fill(v, (size_t)T * dv, 1.0f, seed + 2);
    for (size_t i = 0; i < (size_t)T * m; i++) {
        pq[i] = expf(pq[i]);
        pk[i] = expf(pk[i]);
    }
}

/* Rows whose normaliser is 0 (a zero query row) are counted, on every path and thread count,
 * and come out finite. */
static void test_small_normalisers_counted(void **state)
{
    (void)state;
    /* dv = 16 and 5: a single line of columns, fewer than the threads. */
    static const int shapes[][2] = {{20, 37}, {16, 16}, {7, 5}};
    const int T = 301;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        const int m = shapes[sh][0], dv = shapes[sh][1];
        float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
        float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
        double *pqd = malloc(sizeof(double) * T * m), *pkd = malloc(sizeof(double) * T * m);
        double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
        features(pq, pk, v, T, m, dv, 123 + sh);
        for (int t = 0; t < T; t += 5)
            memset(pq + (size_t)t * m, 0, sizeof(float) * m);
        tu_to_double(pq, pqd, (size_t)T * m);
        tu_to_double(pk, pkd, (size_t)T * m);
        tu_to_double(v, vd, (size_t)T * dv);
        for (int causal = 0; causal <= 1; causal++) {
            const long want = attn_linear_ref(pqd, pkd, vd, yd, T, m, dv, causal, 1e-6);
            assert_int_equal(want, (T + 4) / 5);
            for (size_t k = 0; attn_kernels[k].name; k++) {
                const struct attn_kernel *kn = &attn_kernels[k];
                if (!linear_for(kn, causal))
                    continue;
                for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
                    if (la_simd_force(isa) != 0)
                        continue;
                    for (int th = 1; th <= 3; th++) {
                        const size_t ws = attn_workspace_floats(kn, T, m, dv, causal, 0, th);
                        float *w = malloc(sizeof(float) * ws);
                        float *st = new_state(kn, T, m, dv);
                        struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y, .T = T, .dk = m,
                                              .dv = dv, .causal = causal, .eps = 1e-6f,
                                              .state = st};
                        const long got = attn_run_heads(kn, &a, 1, th, w, ws);
                        free(st);
                        if (got != want)
                            print_error("%s [%s] m=%d dv=%d threads=%d: %ld small, want %ld\n",
                                        kn->name, la_simd_name(isa), m, dv, th, got, want);
                        assert_int_equal(got, want);
                        assert_true(tu_all_finite(y, (size_t)T * dv));
                        assert_true(tu_rel_err(y, yd, (size_t)T * dv) <= ATTN_TOL_LINEAR);
                        free(w);
                    }
                }
                la_simd_force(-1);
            }
        }
        free(pq), free(pk), free(v), free(y), free(pqd), free(pkd), free(vd), free(yd);
    }
}

/* Without keys (the non-causal normaliser) la_lin_den only reads z, which threads share: z on a
 * read-only page must not fault, on every path and width (registers and memory forms). */
static void test_den_without_keys_reads_z_only(void **state)
{
    (void)state;
    const long page = sysconf(_SC_PAGESIZE);
    const int T = 9;
    float *q = malloc(sizeof(float) * T * 200), inv[9];
    tu_fill(q, (size_t)T * 200, 1.0f, 4242);
    float *z = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(z != MAP_FAILED);
    for (int i = 0; i < 200; i++)
        z[i] = 0.5f + 0.001f * (float)i;
    assert_int_equal(mprotect(z, (size_t)page, PROT_READ), 0);
    static const int ms[] = {1, 16, 64, 100, 128, 130, 200};
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (!la_simd_supported(isa))
            continue;
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
            la_lin_den(isa, T, ms[i], q, NULL, ms[i], 1e-6f, NULL, z, inv);
            double den = 0.0;
            for (int c = 0; c < ms[i]; c++)
                den += (double)q[(size_t)(T - 1) * ms[i] + c] * z[c];
            assert_true(fabs(1.0 / inv[T - 1] - 1e-6 - den) <= 1e-4 * (1.0 + fabs(den)));
        }
    }
    munmap(z, (size_t)page);
    free(q);
}

/* Threads inside one head, with the output at a cache-line-aligned address and one 16 bytes
 * past it (the recurrent kernel writes whole lines of Y from each thread only in the first
 * case), on every path: against the reference, and nothing written outside Y. */
static void test_threads_output_layout(void **state)
{
    (void)state;
    static const int shapes[][3] = {{333, 64, 64}, {200, 20, 32}, {129, 8, 48}, {257, 40, 17}};
    const float guard = -7.25f;
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        const int T = shapes[sh][0], m = shapes[sh][1], dv = shapes[sh][2];
        const size_t ny = (size_t)T * dv;
        float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
        float *v = malloc(sizeof(float) * ny);
        float *ybuf = aligned_alloc(64, ((ny + 32) * sizeof(float) + 63) / 64 * 64);
        double *pqd = malloc(sizeof(double) * T * m), *pkd = malloc(sizeof(double) * T * m);
        double *vd = malloc(sizeof(double) * ny), *yd = malloc(sizeof(double) * ny);
        features(pq, pk, v, T, m, dv, 500 + sh);
        tu_to_double(pq, pqd, (size_t)T * m);
        tu_to_double(pk, pkd, (size_t)T * m);
        tu_to_double(v, vd, ny);
        for (int causal = 0; causal <= 1; causal++) {
            const long want = attn_linear_ref(pqd, pkd, vd, yd, T, m, dv, causal, 1e-6);
            for (size_t k = 0; attn_kernels[k].name; k++) {
                const struct attn_kernel *kn = &attn_kernels[k];
                if (!linear_for(kn, causal))
                    continue;
                for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
                    if (la_simd_force(isa) != 0)
                        continue;
                    for (int th = 2; th <= 3; th++)
                        for (int off = 0; off <= 4; off += 4) {
                            float *y = ybuf + off;
                            for (size_t i = 0; i < ny + 32; i++)
                                ybuf[i] = guard;
                            const size_t ws = attn_workspace_floats(kn, T, m, dv, causal, 0, th);
                            float *w = malloc(sizeof(float) * ws);
                            float *st = new_state(kn, T, m, dv);
                            struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y, .T = T,
                                                  .dk = m, .dv = dv, .causal = causal,
                                                  .eps = 1e-6f, .state = st};
                            assert_int_equal(attn_run_heads(kn, &a, 1, th, w, ws), want);
                            free(st);
                            const double e = tu_rel_err(y, yd, ny);
                            if (!(e <= ATTN_TOL_LINEAR))
                                print_error("%s [%s] T=%d m=%d dv=%d threads=%d offset=%d: %.3g\n",
                                            kn->name, la_simd_name(isa), T, m, dv, th, off, e);
                            assert_true(tu_all_finite(y, ny));
                            assert_true(e <= ATTN_TOL_LINEAR);
                            for (int i = 0; i < off; i++)
                                assert_true(ybuf[i] == guard);
                            for (size_t i = off + ny; i < ny + 32; i++)
                                assert_true(ybuf[i] == guard);
                            free(w);
                        }
                }
                la_simd_force(-1);
            }
        }
        free(pq), free(pk), free(v), free(ybuf), free(pqd), free(pkd), free(vd), free(yd);
    }
}

static void test_recurrent_equals_chunked(void **state)
{
    (void)state;
    const int T = 517, m = 24, dv = 20;
    float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
    float *v = malloc(sizeof(float) * T * dv);
    float *y1 = malloc(sizeof(float) * T * dv), *y2 = malloc(sizeof(float) * T * dv);
    features(pq, pk, v, T, m, dv, 77);
    const struct attn_kernel *rec = attn_kernel_lookup("linear_causal_recurrent");
    const struct attn_kernel *chk = attn_kernel_lookup("linear_causal_chunked");
    assert_non_null(rec);
    assert_non_null(chk);
    int chunks[] = {1, 7, 64, 100, 517, 600};
    float *w1 = malloc(sizeof(float) * attn_workspace_floats(rec, T, m, dv, 1, 0, 1));
    struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y1, .T = T, .dk = m, .dv = dv,
                          .causal = 1, .eps = 1e-6f, .work = w1};
    rec->run(&a);
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        float *w2 = malloc(sizeof(float) * attn_workspace_floats(chk, T, m, dv, 1, chunks[c], 1));
        struct attn_args b = a;
        b.y = y2;
        b.chunk = chunks[c];
        b.work = w2;
        chk->run(&b);
        double num = 0, den = 0;
        for (int i = 0; i < T * dv; i++) {
            num += ((double)y1[i] - y2[i]) * ((double)y1[i] - y2[i]);
            den += (double)y1[i] * y1[i];
        }
        assert_true(sqrt(num / den) < 2e-5);
        free(w2);
    }
    free(pq), free(pk), free(v), free(y1), free(y2), free(w1);
}

/* Causal output row i equals the non-causal formula on the prefix 0..i, computed the slow way. */
static void test_causal_is_prefix_of_noncausal(void **state)
{
    (void)state;
    const int T = 150, m = 12, dv = 9;
    float *pq = malloc(sizeof(float) * T * m), *pk = malloc(sizeof(float) * T * m);
    float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
    double *pqd = malloc(sizeof(double) * T * m), *pkd = malloc(sizeof(double) * T * m);
    double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
    features(pq, pk, v, T, m, dv, 99);
    tu_to_double(pq, pqd, (size_t)T * m);
    tu_to_double(pk, pkd, (size_t)T * m);
    tu_to_double(v, vd, (size_t)T * dv);
    for (size_t k = 0; attn_kernels[k].name; k++) {
        const struct attn_kernel *kn = &attn_kernels[k];
        if (!linear_for(kn, 1))
            continue;
        float *w = malloc(sizeof(float) * attn_workspace_floats(kn, T, m, dv, 1, 0, 1));
        float *st = new_state(kn, T, m, dv);
        struct attn_args a = {.q = pq, .k = pk, .v = v, .y = y, .T = T, .dk = m, .dv = dv,
                              .causal = 1, .eps = 1e-6f, .work = w, .state = st};
        kn->run(&a);
        free(st);
        for (int i = 0; i < T; i += 7) {
            /* Non-causal reference on the first i+1 rows; its last row is causal row i. */
            attn_linear_ref(pqd, pkd, vd, yd, i + 1, m, dv, 0, 1e-6);
            for (int c = 0; c < dv; c++)
                assert_true(fabs(y[(size_t)i * dv + c] - yd[(size_t)i * dv + c]) <=
                            2e-5 * (1.0 + fabs(yd[(size_t)i * dv + c])));
        }
        free(w);
    }
    free(pq), free(pk), free(v), free(y), free(pqd), free(pkd), free(vd), free(yd);
}

/* Scores of ±1000: q·k/√d = ±1000 would overflow exp in any unstabilised form. */
static void test_softmax_extreme_scores(void **state)
{
    (void)state;
    const int T = 300, d = 4, dv = 5;
    float *q = malloc(sizeof(float) * T * d), *k = malloc(sizeof(float) * T * d);
    float *v = malloc(sizeof(float) * T * dv), *y = malloc(sizeof(float) * T * dv);
    double *qd = malloc(sizeof(double) * T * d), *kd = malloc(sizeof(double) * T * d);
    double *vd = malloc(sizeof(double) * T * dv), *yd = malloc(sizeof(double) * T * dv);
    double *scores = malloc(sizeof(double) * T);
    /* q = ±(a, 0, 0, 0) and k = (b, 0, 0, 0) with a·b/2 = ±1000 for |a| = 40, |b| = 50. */
    memset(q, 0, sizeof(float) * T * d);
    memset(k, 0, sizeof(float) * T * d);
    for (int i = 0; i < T; i++) {
        q[(size_t)i * d] = (i % 3 == 0 ? -40.0f : 40.0f);
        k[(size_t)i * d] = (i % 5 == 0 ? -50.0f : 50.0f) * (1.0f - 0.001f * (float)(i % 7));
    }
    tu_fill(v, (size_t)T * dv, 1.0f, 5);
    tu_to_double(q, qd, (size_t)T * d);
    tu_to_double(k, kd, (size_t)T * d);
    tu_to_double(v, vd, (size_t)T * dv);
    const struct attn_kernel *kn = attn_kernel_lookup("softmax_flash");
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (la_simd_force(isa) != 0)
            continue;
        for (int causal = 0; causal <= 1; causal++) {
            float *w = malloc(sizeof(float) * attn_workspace_floats(kn, T, d, dv, causal, 0, 1));
            struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = d, .dv = dv,
                                  .causal = causal, .work = w};
            kn->run(&a);
            attn_softmax_ref(qd, kd, vd, yd, T, d, dv, causal, scores);
            assert_true(tu_all_finite(y, (size_t)T * dv));
            assert_true(tu_rel_err(y, yd, (size_t)T * dv) < 1e-4);
            free(w);
        }
    }
    la_simd_force(-1);
    free(q), free(k), free(v), free(y), free(qd), free(kd), free(vd), free(yd), free(scores);
}

/* The reference itself against a hand-computed case: T = 2, d = 1, causal and not. */
static void test_softmax_ref_by_hand(void **state)
{
    (void)state;
    double Q[2] = {0.5, -1.25}, K[2] = {2.0, 0.75}, V[2] = {3.0, -1.0}, Y[2], sc[2];
    attn_softmax_ref(Q, K, V, Y, 2, 1, 1, 0, sc);
    double w00 = exp(0.5 * 2.0), w01 = exp(0.5 * 0.75);
    assert_true(fabs(Y[0] - (w00 * 3.0 - w01) / (w00 + w01)) < 1e-14);
    attn_softmax_ref(Q, K, V, Y, 2, 1, 1, 1, sc);
    assert_true(fabs(Y[0] - 3.0) < 1e-14);
    double w10 = exp(-1.25 * 2.0), w11 = exp(-1.25 * 0.75);
    assert_true(fabs(Y[1] - (w10 * 3.0 - w11) / (w10 + w11)) < 1e-14);
}

/* One head of kn at (T, dk, dv) on one thread with chunk size `chunk`, into y. */
/* One call of kn on one head; a kernel with a state starts from an empty one (a prefill of T
 * tokens is then the causal forward pass, a step of T sequences T one-token sequences).  The
 * recurrences get the gate 0.875 and sum-normalised q, k (which keep the delta rule stable on
 * these positive features); the other kernels do not read those fields. */
static void run_one(const struct attn_kernel *kn, const float *q, const float *k, const float *v,
                    float *y, int T, int dk, int dv, int causal, int chunk)
{
    float *w = malloc(sizeof(float) * attn_workspace_floats(kn, T, dk, dv, causal, chunk, 1));
    const size_t ns = attn_call_state_floats(kn, T, dk, dv);
    float *st = ns ? calloc(ns, sizeof *st) : NULL;
    struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = dk, .dv = dv,
                          .causal = causal, .eps = 1e-6f, .chunk = chunk, .threads = 1, .work = w,
                          .state = st, .gate_const = 0.875f, .recur_norm = ATTN_RN_SUM};
    kn->run(&a);
    free(w), free(st);
}

/* Largest |a_i − b_i| / (1 + |b_i|) over rows [r0, r1) of two (T, dv) outputs. */
static double rows_diff(const float *a, const float *b, int r0, int r1, int dv)
{
    double worst = 0.0;
    for (size_t i = (size_t)r0 * dv; i < (size_t)r1 * dv; i++) {
        const double e = fabs((double)a[i] - b[i]) / (1.0 + fabs((double)b[i]));
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* The table's fields against what the kernels do, on positive (feature-like) inputs every kernel
 * accepts:
 *  - causal_support: a causal run's rows before the last do not move when the last key and value
 *    change; a non-causal run's first row does;
 *  - uses_chunk: the output changes with the chunk size (1 and 64 sum in different orders) if
 *    and only if the kernel says it reads it;
 *  - input: doubling one query row leaves linear attention on features unchanged (φ(q)ᵀS over
 *    φ(q)ᵀz, up to eps) and changes softmax attention on raw Q, K (a sharper softmax);
 *    (a step from an empty state sees its own key only, whatever q: not checked there);
 *  - op: forward with no carried state, or prefill and step, causal: on features with the
 *    linear state S (dk × dv) and z (dk) whatever T, on raw Q, K with a KV cache of whole
 *    blocks of ATTN_KV_BLOCK tokens (run from an empty state here: a prefill is then the causal
 *    forward pass, a step T one-token sequences); a name that looks up to its own entry. */
static void test_table_capabilities(void **state)
{
    (void)state;
    const int T = 150, dk = 12, dv = 9;
    const size_t nq = (size_t)T * dk, ny = (size_t)T * dv;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
    float *v = malloc(sizeof(float) * ny), *k2 = malloc(sizeof(float) * nq);
    float *v2 = malloc(sizeof(float) * ny), *q2 = malloc(sizeof(float) * nq);
    float *y0 = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    features(q, k, v, T, dk, dv, 4711);
    memcpy(k2, k, sizeof(float) * nq);
    memcpy(v2, v, sizeof(float) * ny);
    for (int c = 0; c < dk; c++)
        k2[(size_t)(T - 1) * dk + c] *= 3.5f;
    for (int c = 0; c < dv; c++)
        v2[(size_t)(T - 1) * dv + c] = -4.25f + 0.5f * (float)c;
    memcpy(q2, q, sizeof(float) * nq);
    const int row = T / 3;
    for (int c = 0; c < dk; c++)
        q2[(size_t)row * dk + c] *= 2.0f;
    for (size_t i = 0; attn_kernels[i].name; i++) {
        const struct attn_kernel *kn = &attn_kernels[i];
        if (kn->op == ATTN_OP_FORWARD || kn->op == ATTN_OP_BACKWARD) {
            assert_null(kn->state_floats);
            assert_int_equal(attn_state_floats(kn, T, dk, dv), 0);
            assert_int_equal(attn_call_state_floats(kn, T, dk, dv), 0);
        } else {
            assert_true(kn->op == ATTN_OP_PREFILL || kn->op == ATTN_OP_STEP);
            assert_true(kn->input == ATTN_IN_FEATURES || kn->input == ATTN_IN_QK);
            assert_int_equal(kn->causal_support, ATTN_CAUSAL_OK);
            assert_non_null(kn->state_floats);
            const int cache = kn->input == ATTN_IN_QK;
            /* One sequence's state at t tokens: constant, or whole blocks of the cache. */
            for (int t = 1; t <= 1000; t *= 10) {
                const size_t blocks = ((size_t)t + ATTN_KV_BLOCK - 1) / ATTN_KV_BLOCK;
                assert_int_equal(attn_state_floats(kn, t, dk, dv),
                                 cache ? blocks * ATTN_KV_BLOCK * (dk + dv) : (size_t)dk * dv + dk);
            }
            for (int t = 0; t < 300; t++)
                assert_true(attn_state_floats(kn, t + 1, dk, dv) >=
                            attn_state_floats(kn, t, dk, dv));
            assert_int_equal(attn_call_state_floats(kn, T, dk, dv),
                             (kn->op == ATTN_OP_STEP ? T : 1) * attn_state_floats(kn, T, dk, dv));
        }
        assert_true(kn->causal_support != 0 &&
                    !(kn->causal_support & ~(ATTN_CAUSAL_OK | ATTN_NONCAUSAL_OK)));
        assert_true(kn->uses_chunk == 0 || kn->uses_chunk == 1);
        assert_true(kn->ref && kn->flops && kn->bytes && kn->workspace && kn->run);
        assert_ptr_equal(attn_kernel_lookup(kn->name), kn);
        if (kn->op == ATTN_OP_BACKWARD)
            continue; /* what it computes: la_check_kernel against its reference */
        for (int causal = 0; causal <= 1; causal++) {
            if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            run_one(kn, q, k, v, y0, T, dk, dv, causal, 64);
            /* Causality. */
            run_one(kn, q, k2, v2, y1, T, dk, dv, causal, 64);
            if (causal)
                assert_true(rows_diff(y1, y0, 0, T - 1, dv) <= 1e-6);
            else
                assert_true(rows_diff(y1, y0, 0, 1, dv) > 1e-4);
            /* The chunk size. */
            run_one(kn, q, k, v, y1, T, dk, dv, causal, 1);
            const int changed = memcmp(y0, y1, sizeof(float) * ny) != 0;
            if (changed != kn->uses_chunk)
                print_error("%s causal=%d: uses_chunk %d, output %s with the chunk size\n",
                            kn->name, causal, kn->uses_chunk,
                            changed ? "changes" : "does not change");
            assert_int_equal(changed, kn->uses_chunk);
            /* What q holds. */
            run_one(kn, q2, k, v, y1, T, dk, dv, causal, 64);
            const double moved = rows_diff(y1, y0, row, row + 1, dv);
            if (kn->input == ATTN_IN_FEATURES)
                assert_true(moved <= 1e-5);
            else if (kn->op != ATTN_OP_STEP)
                assert_true(moved > 1e-4);
        }
    }
    free(q), free(k), free(v), free(k2), free(v2), free(q2), free(y0), free(y1);
}

/* An entry with alias_of runs the named entry's algorithm: that entry exists and is no alias
 * itself, the two agree on every field that describes what runs, and their outputs are equal bit
 * for bit at both chunk sizes of test_table_capabilities.  linear_causal is the one alias. */
static void test_aliases(void **state)
{
    (void)state;
    const int T = 97, dk = 10, dv = 7;
    const size_t nq = (size_t)T * dk, ny = (size_t)T * dv;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
    float *v = malloc(sizeof(float) * ny);
    float *y0 = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    features(q, k, v, T, dk, dv, 2385);
    size_t naliases = 0;
    for (size_t i = 0; attn_kernels[i].name; i++) {
        const struct attn_kernel *kn = &attn_kernels[i];
        if (!kn->alias_of)
            continue;
        naliases++;
        const struct attn_kernel *to = attn_kernel_lookup(kn->alias_of);
        assert_non_null(to);
        assert_ptr_not_equal(to, kn);
        assert_null(to->alias_of);
        assert_int_equal(kn->op, to->op);
        assert_int_equal(kn->input, to->input);
        assert_int_equal(kn->causal_support, to->causal_support);
        assert_int_equal(kn->uses_chunk, to->uses_chunk);
        assert_ptr_equal(kn->ref, to->ref);
        assert_ptr_equal(kn->flops, to->flops);
        assert_ptr_equal(kn->bytes, to->bytes);
        for (int causal = 0; causal <= 1; causal++) {
            if (!(kn->causal_support & (causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)))
                continue;
            assert_true(attn_workspace_floats(kn, T, dk, dv, causal, 0, 2) ==
                        attn_workspace_floats(to, T, dk, dv, causal, 0, 2));
            for (int chunk = 1; chunk <= 64; chunk += 63) {
                run_one(kn, q, k, v, y0, T, dk, dv, causal, chunk);
                run_one(to, q, k, v, y1, T, dk, dv, causal, chunk);
                assert_memory_equal(y0, y1, sizeof(float) * ny);
            }
        }
    }
    assert_int_equal(naliases, 1);
    assert_string_equal(attn_kernel_lookup("linear_causal")->alias_of, "linear_causal_recurrent");
    free(q), free(k), free(v), free(y0), free(y1);
}

/* attn_kernel_find picks the table's kernels of a kind; nothing for operations not in it. */
static void test_find_by_kind(void **state)
{
    (void)state;
    assert_string_equal(attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_FEATURES, 0)->name,
                        "linear_noncausal");
    assert_string_equal(attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_FEATURES, 1)->name,
                        "linear_causal");
    assert_string_equal(attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_QK, 0)->name, "softmax_flash");
    assert_string_equal(attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_QK, 1)->name, "softmax_flash");
    assert_null(attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_QK_ELU1, 1)); /* the seed: not listed */
    assert_string_equal(attn_kernel_find(ATTN_OP_PREFILL, ATTN_IN_FEATURES, 1)->name,
                        "linear_prefill");
    assert_string_equal(attn_kernel_find(ATTN_OP_STEP, ATTN_IN_FEATURES, 1)->name, "linear_step");
    assert_null(attn_kernel_find(ATTN_OP_STEP, ATTN_IN_FEATURES, 0));
    assert_string_equal(attn_kernel_find(ATTN_OP_PREFILL, ATTN_IN_QK, 1)->name, "softmax_prefill");
    assert_string_equal(attn_kernel_find(ATTN_OP_STEP, ATTN_IN_QK, 1)->name, "softmax_step");
    assert_null(attn_kernel_find(ATTN_OP_STEP, ATTN_IN_QK, 0));
    assert_string_equal(attn_kernel_find(ATTN_OP_BACKWARD, ATTN_IN_FEATURES, 0)->name,
                        "linear_noncausal_backward");
    assert_string_equal(attn_kernel_find(ATTN_OP_BACKWARD, ATTN_IN_FEATURES, 1)->name,
                        "linear_causal_backward");
    assert_string_equal(attn_kernel_find(ATTN_OP_BACKWARD, ATTN_IN_QK, 1)->name,
                        "softmax_flash_backward");
    assert_null(attn_kernel_find(ATTN_OP_BACKWARD, ATTN_IN_QK_ELU1, 1));
    /* The backward that trains a forward kernel's cells: a chunked forward gets the chunked
     * backward, the others the first of their kind. */
    static const char *const pairs[][3] = {
        {"linear_causal_chunked", "1", "linear_causal_chunked_backward"},
        {"linear_causal_recurrent", "1", "linear_causal_backward"},
        {"linear_causal", "1", "linear_causal_backward"},
        {"linear_noncausal", "0", "linear_noncausal_backward"},
        {"softmax_flash", "0", "softmax_flash_backward"},
        {"softmax_flash", "1", "softmax_flash_backward"},
    };
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++)
        assert_string_equal(
            attn_kernel_backward_of(attn_kernel_lookup(pairs[i][0]), pairs[i][1][0] == '1')->name,
            pairs[i][2]);
    assert_null(attn_kernel_backward_of(&attn_linear_causal_seed, 1)); /* no elu1-inside backward */
}

/* The flop and byte models of every entry on small shapes, against the formulas attention.h
 * states; softmax's also by hand. */
static void test_flop_and_byte_models(void **state)
{
    (void)state;
    assert_null(attn_kernel_lookup("softmax_slow"));
    const struct attn_kernel *s = attn_kernel_lookup("softmax_flash");
    const struct attn_kernel *l = attn_kernel_lookup("linear_noncausal");
    assert_true(fabs(attn_nominal_flops(s, 100, 8, 8, 0) - 4.0 * 100 * 100 * 8) < 1e-6);
    assert_true(fabs(attn_nominal_flops(s, 100, 8, 8, 1) - 2.0 * 100 * 100 * 8) < 1e-6);
    /* dv != d: QKᵀ costs 2·T²·d, PV 2·T²·dv. */
    assert_true(fabs(attn_nominal_flops(s, 100, 8, 24, 0) - 2.0 * 100 * 100 * (8 + 24)) < 1e-6);
    assert_true(fabs(attn_nominal_flops(s, 100, 8, 24, 1) - 100.0 * 100 * (8 + 24)) < 1e-6);
    assert_true(fabs(attn_nominal_flops(l, 100, 8, 6, 0) - (4.0 * 100 * 8 * 6 + 4.0 * 100 * 8)) <
                1e-6);
    static const int shapes[][3] = {{1, 1, 1}, {7, 3, 5}, {100, 8, 24}, {333, 65, 17}};
    const size_t nk = attn_kernel_count();
    for (size_t i = 0; i <= nk; i++) {
        const struct attn_kernel *kn = i < nk ? &attn_kernels[i] : &attn_linear_causal_seed;
        for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
            const double T = shapes[sh][0], dk = shapes[sh][1], dv = shapes[sh][2];
            for (int causal = 0; causal <= 1; causal++) {
                /* Backward: 2.5× softmax's forward model, 2× linear's.  The recurrences
                 * (attention.h): delta 6·T·m·dv + 2·T·dv, decay and gated 5·T·m·dv + 4·T·m,
                 * plus their gate read once (delta T, gated T·m floats). */
                const double bw = kn->op != ATTN_OP_BACKWARD ? 1.0
                                  : kn->input == ATTN_IN_QK ? 2.5
                                                            : 2.0;
                const double want_flops =
                    bw * (kn->input == ATTN_IN_QK           ? (causal ? 1.0 : 2.0) * T * T * (dk + dv)
                          : kn->update == ATTN_UPD_DELTA    ? 6.0 * T * dk * dv + 2.0 * T * dv
                          : kn->update == ATTN_UPD_SUM      ? 4.0 * T * dk * dv + 4.0 * T * dk
                                                            : 5.0 * T * dk * dv + 4.0 * T * dk);
                const double gate = kn->update == ATTN_UPD_DELTA   ? T
                                    : kn->update == ATTN_UPD_GATED ? T * dk
                                                                   : 0.0;
                /* q, k, v read once and y written once, in fp32; a state (S, z) read and
                 * written once per sequence: one for a prefill, T for a step. */
                const double nstate = kn->op == ATTN_OP_PREFILL ? 1.0
                                      : kn->op == ATTN_OP_STEP  ? T
                                                                : 0.0;
                /* Backward: q, k, v, grad_y read, grad_q, grad_k, grad_v written. */
                const double want_bytes = kn->op == ATTN_OP_BACKWARD
                                              ? 4.0 * (4.0 * T * dk + 4.0 * T * dv)
                                              : 4.0 * (2.0 * T * dk + 2.0 * T * dv) +
                                                    2.0 * 4.0 * nstate * (dk * dv + dk) + 4.0 * gate;
                if (kn->input == ATTN_IN_QK &&
                    (kn->op == ATTN_OP_PREFILL || kn->op == ATTN_OP_STEP)) {
                    /* A KV cache at pos: token i of a prefill sees pos + i + 1 keys, each of a
                     * step's T sequences pos + 1; the tokens' traffic, the cached keys and
                     * values read once and the new ones written once.  The table's flops and
                     * bytes are the pos = 0 case. */
                    assert_non_null(kn->flops_at), assert_non_null(kn->bytes_at);
                    for (int pos = 0; pos <= 1000; pos += 1000) {
                        const double p = pos, io = 4.0 * (2.0 * T * dk + 2.0 * T * dv);
                        const int pf = kn->op == ATTN_OP_PREFILL;
                        const double wf = pf ? 2.0 * (dk + dv) * (T * p + T * (T + 1.0) / 2.0)
                                             : 2.0 * T * (p + 1.0) * (dk + dv);
                        const double wb = pf ? io + 4.0 * (p + T) * (dk + dv)
                                             : io + 4.0 * T * (p + 1.0) * (dk + dv);
                        const double f =
                            attn_nominal_flops_at(kn, (int)T, pos, (int)dk, (int)dv, causal);
                        const double b =
                            attn_nominal_bytes_at(kn, (int)T, pos, (int)dk, (int)dv, causal);
                        assert_true(fabs(f - wf) <= 1e-9 * wf);
                        assert_true(fabs(b - wb) <= 1e-9 * wb);
                        if (pos == 0) {
                            assert_true(f == attn_nominal_flops(kn, (int)T, (int)dk, (int)dv,
                                                                causal));
                            assert_true(b == attn_nominal_bytes(kn, (int)T, (int)dk, (int)dv,
                                                                causal));
                        }
                    }
                    continue;
                }
                assert_null(kn->flops_at), assert_null(kn->bytes_at);
                assert_true(attn_nominal_flops_at(kn, (int)T, 77, (int)dk, (int)dv, causal) ==
                            attn_nominal_flops(kn, (int)T, (int)dk, (int)dv, causal));
                const double f = attn_nominal_flops(kn, (int)T, (int)dk, (int)dv, causal);
                const double b = attn_nominal_bytes(kn, (int)T, (int)dk, (int)dv, causal);
                assert_true(f == kn->flops((int)T, (int)dk, (int)dv, causal));
                assert_true(b == kn->bytes((int)T, (int)dk, (int)dv, causal));
                assert_true(fabs(f - want_flops) <= 1e-9 * want_flops);
                assert_true(fabs(b - want_bytes) <= 1e-9 * want_bytes);
            }
        }
    }
}

/* A prefill kernel that loses what it appends: its outputs are right, the state it leaves is the
 * one it was given (the mutation a chain check must catch). */
static void prefill_keeps_state(struct attn_args *a)
{
    const size_t n = (size_t)a->dk * a->dv + (size_t)a->dk;
    float *keep = malloc(n * sizeof *keep);
    memcpy(keep, a->state, n * sizeof *keep);
    attn_linear_prefill(a);
    memcpy(a->state, keep, n * sizeof *keep);
    free(keep);
}

/* A step kernel that forgets the normaliser's update of the last sequence's state. */
static void step_skips_z(struct attn_args *a)
{
    const size_t sf = (size_t)a->dk * a->dv + (size_t)a->dk;
    float *z = a->state + (size_t)(a->T - 1) * sf + (size_t)a->dk * a->dv;
    const float *k = a->k + (size_t)(a->T - 1) * a->dk;
    attn_linear_step(a);
    for (int i = 0; i < a->dk; i++)
        z[i] -= k[i];
}

/* Prefill and step on their own terms:
 *  - a prefill in pieces (0, 1, 17 and the rest of the tokens) leaves the same state and the
 *    same outputs, bit for bit, as one prefill (a prefill continues from the state it is given);
 *  - a prefill from an empty state reproduces the causal forward kernel's rows;
 *  - a step with threads equals a step without, bit for bit;
 *  - la_check_kernel fails a prefill that drops its state and a step that skips z's update, so
 *    the chain check can fail. */
static void test_decode_ops(void **state)
{
    (void)state;
    const struct attn_kernel *pf = attn_kernel_lookup("linear_prefill");
    const struct attn_kernel *st = attn_kernel_lookup("linear_step");
    const struct attn_kernel *fw = attn_kernel_lookup("linear_causal");
    assert_non_null(pf), assert_non_null(st), assert_non_null(fw);
    const int T = 83, dk = 13, dv = 21;
    const size_t nq = (size_t)T * dk, ny = (size_t)T * dv, sf = (size_t)dk * dv + dk;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
    float *v = malloc(sizeof(float) * ny), *y0 = malloc(sizeof(float) * ny);
    float *y1 = malloc(sizeof(float) * ny), *s0 = calloc(T * sf, sizeof(float));
    float *s1 = calloc(T * sf, sizeof(float));
    features(q, k, v, T, dk, dv, 9001);
    struct attn_args a = {.q = q, .k = k, .v = v, .y = y0, .T = T, .dk = dk, .dv = dv,
                          .causal = 1, .eps = 1e-6f, .threads = 1, .state = s0};
    pf->run(&a);
    static const int cuts[] = {0, 0, 1, 18, T};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        const int t0 = cuts[i], n = cuts[i + 1] - cuts[i];
        struct attn_args b = {.q = q + (size_t)t0 * dk, .k = k + (size_t)t0 * dk,
                              .v = v + (size_t)t0 * dv, .y = y1 + (size_t)t0 * dv, .T = n,
                              .dk = dk, .dv = dv, .causal = 1, .eps = 1e-6f, .threads = 1,
                              .state = s1, .pos = t0};
        pf->run(&b);
    }
    assert_memory_equal(y0, y1, sizeof(float) * ny);
    assert_memory_equal(s0, s1, sizeof(float) * sf);
    run_one(fw, q, k, v, y1, T, dk, dv, 1, 0);
    assert_true(rows_diff(y0, y1, 0, T, dv) <= 1e-5);
    /* T sequences, one token each, from different states (each the one-token prefill of its
     * own key and value), on 1 and 3 threads. */
    for (int b = 0; b < T; b++)
        for (size_t i = 0; i < sf; i++)
            s0[(size_t)b * sf + i] = s1[(size_t)b * sf + i] = 0.25f + 0.01f * (float)((b + i) % 7);
    struct attn_args c1 = {.q = q, .k = k, .v = v, .y = y0, .T = T, .dk = dk, .dv = dv,
                           .causal = 1, .eps = 1e-6f, .threads = 1, .state = s0};
    struct attn_args c3 = c1;
    c3.y = y1, c3.state = s1, c3.threads = 3;
    st->run(&c1);
    st->run(&c3);
    assert_memory_equal(y0, y1, sizeof(float) * ny);
    assert_memory_equal(s0, s1, sizeof(float) * T * sf);
    /* Mutations. */
    struct attn_kernel bad_pf = *pf, bad_st = *st;
    bad_pf.run = prefill_keeps_state;
    bad_st.run = step_skips_z;
    const struct la_check_case c = {50, 24, 40, 3, 1, 0, 1, 1.0, 9};
    struct la_check_result r;
    struct la_error err;
    assert_int_equal(la_check_kernel(pf, &c, 77, &r, &err), LA_OK);
    assert_true(r.finite && r.rel_err <= r.tol);
    assert_int_equal(la_check_kernel(&bad_pf, &c, 77, &r, &err), LA_OK);
    assert_true(r.rel_err > 100 * r.tol);
    assert_int_equal(la_check_kernel(&bad_st, &c, 77, &r, &err), LA_OK);
    assert_true(r.rel_err > 100 * r.tol);
    free(q), free(k), free(v), free(y0), free(y1), free(s0), free(s1);
}

/* Softmax steps that go wrong in the ways a chain check must catch: a step that stores its key
 * and value one position early (over the last cached token), and a prefill whose last value
 * never reaches the cache (zeroed after it ran; its own outputs are right). */
static void softmax_step_pos_early(struct attn_args *a)
{
    struct attn_args b = *a;
    if (b.pos > 0)
        b.pos--;
    attn_softmax_step(&b);
}

static void softmax_prefill_drops_last(struct attn_args *a)
{
    attn_softmax_prefill(a);
    if (a->T < 1)
        return;
    const int t = a->pos + a->T - 1, d = a->dk, dv = a->dv;
    float *blk = a->state + (size_t)(t / ATTN_KV_BLOCK) * ATTN_KV_BLOCK * (d + dv);
    memset(blk + (size_t)ATTN_KV_BLOCK * d + (size_t)(t % ATTN_KV_BLOCK) * dv, 0,
           sizeof(float) * dv);
}

/* Softmax prefill and step over a KV cache on their own terms:
 *  - a prefill in pieces (0, 1, 63, 70 and the rest of the tokens: pieces that start inside a
 *    block and cross block ends) gives the same outputs and cache, bit for bit, as one prefill,
 *    and from an empty cache it is softmax_flash's causal forward pass;
 *  - steps of B = 3 sequences with a cache grown by attn_kv_reserve as the tokens come (so it
 *    moves while it holds tokens) give the outputs, bit for bit, of a cache allocated once at
 *    its final size, and a step of B sequences equals the B one-sequence steps;
 *  - one sequence's step split across 2 and 3 threads (flash-decoding's merge) matches the
 *    step on one thread to the tolerance, at contexts of 1 block, 1 block + 1 and several;
 *  - la_check_kernel fails a step that appends at the wrong position and a prefill that loses
 *    its last value. */
static void test_softmax_decode_ops(void **state)
{
    (void)state;
    const struct attn_kernel *pf = attn_kernel_lookup("softmax_prefill");
    const struct attn_kernel *st = attn_kernel_lookup("softmax_step");
    const struct attn_kernel *fw = attn_kernel_lookup("softmax_flash");
    assert_non_null(pf), assert_non_null(st), assert_non_null(fw);
    const int T = 300, dk = 13, dv = 21, B = 3;
    const size_t nq = (size_t)B * T * dk, ny = (size_t)B * T * dv;
    const size_t sf = attn_state_floats(pf, T, dk, dv);
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
    float *v = malloc(sizeof(float) * ny), *y0 = malloc(sizeof(float) * ny);
    float *y1 = malloc(sizeof(float) * ny), *s0 = calloc(B * sf, sizeof(float));
    float *s1 = calloc(B * sf, sizeof(float));
    float *w = malloc(sizeof(float) * attn_workspace_floats(pf, T, dk, dv, 1, 0, 3));
    tu_fill(q, nq, 1.5f, 31), tu_fill(k, nq, 1.5f, 32), tu_fill(v, ny, 1.0f, 33);
    struct attn_args a = {.q = q, .k = k, .v = v, .y = y0, .T = T, .dk = dk, .dv = dv,
                          .causal = 1, .threads = 1, .work = w, .state = s0};
    pf->run(&a);
    static const int cuts[] = {0, 0, 1, 64, 134, T};
    for (size_t i = 0; i + 1 < sizeof cuts / sizeof cuts[0]; i++) {
        const int t0 = cuts[i], n = cuts[i + 1] - cuts[i];
        struct attn_args b = {.q = q + (size_t)t0 * dk, .k = k + (size_t)t0 * dk,
                              .v = v + (size_t)t0 * dv, .y = y1 + (size_t)t0 * dv, .T = n,
                              .dk = dk, .dv = dv, .causal = 1, .threads = 1 + (int)i % 3,
                              .work = w, .state = s1, .pos = t0};
        pf->run(&b);
    }
    assert_memory_equal(y0, y1, sizeof(float) * T * dv);
    assert_memory_equal(s0, s1, sizeof(float) * sf);
    run_one(fw, q, k, v, y1, T, dk, dv, 1, 0);
    assert_true(rows_diff(y0, y1, 0, T, dv) <= 1e-5);

    /* B sequences: prefill of P tokens, then steps, in a cache allocated once (s0, cap = T) and
     * in one grown as needed from nothing (g). */
    const int P = 37;
    float *g = NULL;
    int gcap = 0;
    memset(s0, 0, sizeof(float) * B * sf);
    for (int b = 0; b < B; b++) {
        const size_t oq = (size_t)b * T * dk, ov = (size_t)b * T * dv;
        struct attn_args c = {.q = q + oq, .k = k + oq, .v = v + ov, .y = y0 + ov, .T = P,
                              .dk = dk, .dv = dv, .causal = 1, .threads = 1, .work = w,
                              .state = s0 + b * sf};
        pf->run(&c);
    }
    assert_int_equal(attn_kv_reserve(pf, &g, &gcap, P, B, dk, dv), 0);
    assert_true(gcap >= P);
    for (int b = 0; b < B; b++) {
        const size_t oq = (size_t)b * T * dk, ov = (size_t)b * T * dv;
        struct attn_args c = {.q = q + oq, .k = k + oq, .v = v + ov, .y = y1 + ov, .T = P,
                              .dk = dk, .dv = dv, .causal = 1, .threads = 1, .work = w,
                              .state = g + b * attn_state_floats(pf, gcap, dk, dv), .cap = gcap};
        pf->run(&c);
    }
    float *gq = malloc(sizeof(float) * B * dk), *gk = malloc(sizeof(float) * B * dk);
    float *gv = malloc(sizeof(float) * B * dv), *gy = malloc(sizeof(float) * B * dv);
    int grew = 0;
    for (int t = P; t < T; t++) {
        for (int b = 0; b < B; b++) {
            memcpy(gq + (size_t)b * dk, q + ((size_t)b * T + t) * dk, sizeof(float) * dk);
            memcpy(gk + (size_t)b * dk, k + ((size_t)b * T + t) * dk, sizeof(float) * dk);
            memcpy(gv + (size_t)b * dv, v + ((size_t)b * T + t) * dv, sizeof(float) * dv);
        }
        struct attn_args c = {.q = gq, .k = gk, .v = gv, .y = gy, .T = B, .dk = dk, .dv = dv,
                              .causal = 1, .threads = 1 + t % 3, .work = w, .state = s0,
                              .pos = t, .cap = T};
        st->run(&c);
        for (int b = 0; b < B; b++)
            memcpy(y0 + ((size_t)b * T + t) * dv, gy + (size_t)b * dv, sizeof(float) * dv);
        const int before = gcap;
        assert_int_equal(attn_kv_reserve(st, &g, &gcap, t + 1, B, dk, dv), 0);
        grew += gcap != before;
        c.state = g, c.cap = gcap;
        st->run(&c);
        for (int b = 0; b < B; b++)
            memcpy(y1 + ((size_t)b * T + t) * dv, gy + (size_t)b * dv, sizeof(float) * dv);
        /* Sequence by sequence (B = 1, one thread: no split below a block's context). */
        if (t % 50 == 0)
            for (int b = 0; b < B; b++) {
                float *sb = malloc(sizeof(float) * sf), yb[21];
                memcpy(sb, s0 + b * sf, sizeof(float) * sf);
                struct attn_args o = {.q = gq + (size_t)b * dk, .k = gk + (size_t)b * dk,
                                      .v = gv + (size_t)b * dv, .y = yb, .T = 1, .dk = dk,
                                      .dv = dv, .causal = 1, .threads = 1, .work = w,
                                      .state = sb, .pos = t};
                st->run(&o);
                assert_memory_equal(yb, y0 + ((size_t)b * T + t) * dv, sizeof(float) * dv);
                free(sb);
            }
    }
    assert_true(grew >= 2); /* 64 → 128 → 256 → 512 */
    assert_memory_equal(y0, y1, sizeof(float) * ny);

    /* One sequence split across threads: contexts of 1 block, 1 block + 1, several blocks. */
    static const int ctx[] = {64, 65, 200, 300};
    for (size_t i = 0; i < sizeof ctx / sizeof ctx[0]; i++) {
        const int pos = ctx[i] - 1;
        float *ws = malloc(sizeof(float) * attn_workspace_floats(st, 1, dk, dv, 1, 0, 3));
        float ya[21], yb[21];
        for (int th = 2; th <= 3; th++) {
            memcpy(s1, s0, sizeof(float) * sf); /* sequence 0's cache, all T tokens */
            struct attn_args o = {.q = q + (size_t)pos * dk, .k = k + (size_t)pos * dk,
                                  .v = v + (size_t)pos * dv, .y = ya, .T = 1, .dk = dk, .dv = dv,
                                  .causal = 1, .threads = 1, .work = ws, .state = s1,
                                  .pos = pos};
            st->run(&o);
            o.y = yb, o.threads = th;
            st->run(&o);
            for (int c = 0; c < dv; c++)
                assert_true(fabsf(ya[c] - yb[c]) <= 1e-5f * (1.0f + fabsf(ya[c])));
            /* And it is row pos of the causal forward pass. */
            for (int c = 0; c < dv; c++)
                assert_true(fabsf(yb[c] - y1[(size_t)pos * dv + c]) <=
                            1e-5f * (1.0f + fabsf(yb[c])));
        }
        free(ws);
    }

    /* Mutations. */
    struct attn_kernel bad_pf = *pf, bad_st = *st;
    bad_pf.run = softmax_prefill_drops_last;
    bad_st.run = softmax_step_pos_early;
    const struct la_check_case cc = {150, 24, 40, 2, 1, 0, 1, 1.0, 60};
    struct la_check_result r;
    struct la_error err;
    assert_int_equal(la_check_kernel(pf, &cc, 78, &r, &err), LA_OK);
    assert_true(r.finite && r.rel_err <= r.tol);
    assert_int_equal(la_check_kernel(&bad_pf, &cc, 78, &r, &err), LA_OK);
    assert_true(r.rel_err > 100 * r.tol);
    assert_int_equal(la_check_kernel(&bad_st, &cc, 78, &r, &err), LA_OK);
    assert_true(r.rel_err > 100 * r.tol);
    free(q), free(k), free(v), free(y0), free(y1), free(s0), free(s1), free(w), free(g);
    free(gq), free(gk), free(gv), free(gy);
}

/* ---- recurrences (kernels/recurrence.c, recurrence_ref.c) ---- */

/* The references on m = 2, dv = 1 by hand, two tokens, from an empty state:
 *   k_0 = (1, 0), v_0 = 2; k_1 = (1, 1), v_1 = 1; q_0 = q_1 = (1, 2).
 *   delta, β = 0.5: S_0 = 0.5·k_0·2 = (1, 0); u_1 = S_0ᵀk_1 = 1, S_1 = S_0 + 0.5·k_1·(1 − 1) =
 *     (1, 0); y_0 = y_1 = 1.
 *   decay, γ = 0.5: S_0 = (2, 0), z_0 = (1, 0): y_0 = 2/1 = 2; S_1 = (1 + 1, 0 + 1) = (2, 1),
 *     z_1 = (0.5 + 1, 1) = (1.5, 1): y_1 = (2 + 2)/(1.5 + 2) = 8/7.
 *   gated, α_1 = (0.25, 1): S_1 = (0.5 + 1, 1), z_1 = (1.25, 1): y_1 = 3.5/3.25 = 14/13.
 *   sum normalisation (delta, β = 1): k̂_0 = (1, 0), k̂_1 = (0.5, 0.5), q̂ = (1/3, 2/3);
 *     S_0 = (2, 0), y_0 = 2/3; u_1 = 1, S_1 = S_0 + k̂_1·(1 − 1) = (2, 0), y_1 = 2/3. */
static void test_recur_ref_by_hand(void **state)
{
    (void)state;
    const double q[] = {1, 2, 1, 2}, k[] = {1, 0, 1, 1}, v[] = {2, 1};
    double y[2], st[4], w[3];
    memset(st, 0, sizeof st);
    assert_int_equal(attn_recur_ref(ATTN_UPD_DELTA, q, k, v, y, 2, 2, 1, 0.0, NULL, 0.5,
                                    ATTN_RN_RULE, st, w), 0);
    assert_true(fabs(y[0] - 1.0) < 1e-15 && fabs(y[1] - 1.0) < 1e-15);
    memset(st, 0, sizeof st);
    attn_recur_ref(ATTN_UPD_DECAY, q, k, v, y, 2, 2, 1, 0.0, NULL, 0.5, ATTN_RN_RULE, st, w);
    assert_true(fabs(y[0] - 2.0) < 1e-15 && fabs(y[1] - 8.0 / 7.0) < 1e-15);
    assert_true(fabs(st[2] - 1.5) < 1e-15 && fabs(st[3] - 1.0) < 1e-15); /* z_1 */
    const double alpha[] = {0.9, 0.9, 0.25, 1.0};
    memset(st, 0, sizeof st);
    attn_recur_ref(ATTN_UPD_GATED, q, k, v, y, 2, 2, 1, 0.0, alpha, 0.0, ATTN_RN_RULE, st, w);
    assert_true(fabs(y[0] - 2.0) < 1e-15 && fabs(y[1] - 14.0 / 13.0) < 1e-15);
    memset(st, 0, sizeof st);
    attn_recur_ref(ATTN_UPD_DELTA, q, k, v, y, 2, 2, 1, 0.0, NULL, 1.0, ATTN_RN_SUM, st, w);
    assert_true(fabs(y[0] - 2.0 / 3.0) < 1e-15 && fabs(y[1] - 2.0 / 3.0) < 1e-15);
}

/* Every recurrence entry (forward, prefill, step) at every normaliser, with the gate per token
 * and as a constant, on every vector path, T not a multiple of any block, m != dv, threads:
 * against its reference through la_check_kernel's own runs (rule + per token, sum + constant)
 * and directly here for the other two combinations (none + per token, rule + constant; the
 * constant 0.875, and 0.03, below where the decay rule's pass keeps its tiles rescaled).  Y on
 * a cache line, so that threads over whole lines of columns take the non-temporal stores:
 * dv = 64 on 2 and 3 threads (the delta rule's one AVX-512 block split in two), 48 on 3; T = 1
 * and 2 on 2 and 3 threads; m = 300; per-token gates of 1e-30 here and there, and on four
 * tokens in a row of one state row (the gated rule's products of them leave fp32's range). */
static void test_recur_modes(void **state)
{
    (void)state;
    static const int shapes[][4] = {{1, 5, 3, 1},    {131, 20, 37, 1}, {77, 64, 64, 2},
                                    {50, 1, 70, 3},  {61, 64, 64, 3},  {40, 9, 48, 3},
                                    {33, 16, 32, 2}, {1, 8, 32, 2},   {2, 5, 48, 3},
                                    {40, 300, 20, 1}};
    for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
        if (la_simd_force(isa) != 0)
            continue;
        for (size_t i = 0; attn_kernels[i].name; i++) {
            const struct attn_kernel *kn = &attn_kernels[i];
            if (kn->update == ATTN_UPD_SUM || kn->op != ATTN_OP_FORWARD)
                continue;
            for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
                const int T = shapes[sh][0], m = shapes[sh][1], dv = shapes[sh][2];
                const int th = shapes[sh][3];
                const size_t nq = (size_t)T * m, ny = (size_t)T * dv;
                float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
                float *v = malloc(sizeof(float) * ny);
                float *y = aligned_alloc(64, (sizeof(float) * ny + 63) / 64 * 64);
                float *g = malloc(sizeof(float) * (nq + 1));
                double *qd = malloc(sizeof(double) * nq), *kd = malloc(sizeof(double) * nq);
                double *vd = malloc(sizeof(double) * ny), *yd = malloc(sizeof(double) * ny);
                double *gd = malloc(sizeof(double) * (nq + 1));
                double *scr = malloc(sizeof(double) * kn->ref->scratch(T, m, dv));
                features(q, k, v, T, m, dv, 31 + sh);
                /* Keys of norm about 1 (the delta rule without a normaliser needs β‖k‖² <= 2),
                 * gates in (0.5, 1). */
                for (size_t j = 0; j < nq; j++)
                    k[j] /= 1.5f * sqrtf((float)m);
                tu_fill(g, nq + 1, 0.2f, 900 + sh);
                for (size_t j = 0; j <= nq; j++)
                    g[j] = 0.75f + g[j];
                /* Some gates near nothing (not the first, which the decay rule reads), and one
                 * row's gates on four tokens in a row, whose product leaves fp32's range. */
                for (size_t j = 5; j <= nq; j += 97)
                    g[j] = 1e-30f;
                for (size_t t = 7; t < 11 && t < (size_t)T; t++)
                    g[t * m + (m > 1)] = 1e-30f;
                tu_to_double(q, qd, nq), tu_to_double(k, kd, nq), tu_to_double(v, vd, ny);
                tu_to_double(g, gd, nq + 1);
                for (int mode = 0; mode < 3; mode++) {
                    const int norm = mode ? ATTN_RN_RULE : ATTN_RN_NONE, per_token = !mode;
                    const float gc = mode == 2 ? 0.03f : 0.875f;
                    const size_t ws = attn_workspace_floats(kn, T, m, dv, 1, 0, th);
                    float *w = malloc(sizeof(float) * ws);
                    struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = m,
                                          .dv = dv, .causal = 1, .eps = 1e-6f,
                                          .gate = per_token ? g : NULL, .gate_const = gc,
                                          .recur_norm = norm};
                    const long small = attn_run_heads(kn, &a, 1, th, w, ws);
                    struct attn_ref_args ra = {.q = qd, .k = kd, .v = vd, .y = yd, .T = T,
                                               .dk = m, .dv = dv, .causal = 1, .eps = 1e-6,
                                               .scratch = scr, .gate = per_token ? gd : NULL,
                                               .gate_const = gc, .recur_norm = norm};
                    kn->ref->run(&ra);
                    const double e = tu_rel_err(y, yd, ny);
                    if (!(e <= ATTN_TOL_RECUR))
                        print_error("%s [%s] T=%d m=%d dv=%d thr=%d norm=%d per_token=%d: %.3g\n",
                                    kn->name, la_simd_name(isa), T, m, dv, th, norm, per_token, e);
                    assert_true(tu_all_finite(y, ny));
                    assert_true(e <= ATTN_TOL_RECUR);
                    assert_int_equal(small, ra.n_small_den);
                    free(w);
                }
                free(q), free(k), free(v), free(y), free(g);
                free(qd), free(kd), free(vd), free(yd), free(gd), free(scr);
            }
        }
    }
    la_simd_force(-1);
}

/* The chunked decay and gated kernels at chunk sizes 1, 5, 64 and T, against the reference,
 * with gates that multiply down to nothing inside a chunk (α = 1e-6 and 1e-30 on some tokens
 * and rows; a gated chunk ends before its products leave fp32's range), γ = 0.5. */
static void test_recur_chunked_gates(void **state)
{
    (void)state;
    const int T = 300, m = 20, dv = 24;
    const size_t nq = (size_t)T * m, ny = (size_t)T * dv;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
    float *v = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny);
    float *g = malloc(sizeof(float) * nq);
    double *qd = malloc(sizeof(double) * nq), *kd = malloc(sizeof(double) * nq);
    double *vd = malloc(sizeof(double) * ny), *yd = malloc(sizeof(double) * ny);
    double *gd = malloc(sizeof(double) * nq);
    features(q, k, v, T, m, dv, 4040);
    tu_fill(g, nq, 0.24f, 4041);
    for (size_t j = 0; j < nq; j++)
        g[j] = 0.75f + g[j];
    for (int t = 3; t < T; t += 37)
        for (int f = 0; f < m; f += 3)
            g[(size_t)t * m + f] = t % 2 ? 1e-6f : 1e-30f;
    tu_to_double(q, qd, nq), tu_to_double(k, kd, nq), tu_to_double(v, vd, ny);
    tu_to_double(g, gd, nq);
    static const char *const names[] = {"linear_decay_chunked", "linear_gated_chunked"};
    static const int chunks[] = {1, 5, 64, 300};
    for (size_t n = 0; n < 2; n++) {
        const struct attn_kernel *kn = attn_kernel_lookup(names[n]);
        assert_non_null(kn);
        assert_int_equal(kn->uses_chunk, 1);
        const int gated = kn->update == ATTN_UPD_GATED;
        double *scr = malloc(sizeof(double) * kn->ref->scratch(T, m, dv));
        struct attn_ref_args ra = {.q = qd, .k = kd, .v = vd, .y = yd, .T = T, .dk = m,
                                   .dv = dv, .causal = 1, .eps = 1e-6, .scratch = scr,
                                   .gate = gated ? gd : NULL, .gate_const = 0.5};
        kn->ref->run(&ra);
        for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
            if (la_simd_force(isa) != 0)
                continue;
            for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
                float *w = malloc(sizeof(float) *
                                  attn_workspace_floats(kn, T, m, dv, 1, chunks[c], 1));
                struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = m, .dv = dv,
                                      .causal = 1, .eps = 1e-6f, .chunk = chunks[c],
                                      .threads = 1, .work = w, .gate = gated ? g : NULL,
                                      .gate_const = 0.5f};
                kn->run(&a);
                const double e = tu_rel_err(y, yd, ny);
                if (!(e <= ATTN_TOL_RECUR))
                    print_error("%s [%s] chunk=%d: %.3g\n", kn->name, la_simd_name(isa),
                                chunks[c], e);
                assert_true(tu_all_finite(y, ny));
                assert_true(e <= ATTN_TOL_RECUR);
                free(w);
            }
        }
        la_simd_force(-1);
        free(scr);
    }
    free(q), free(k), free(v), free(y), free(g), free(qd), free(kd), free(vd), free(yd), free(gd);
}

/* The chunked delta rule (the WY/UT representation) at chunk sizes 1, 5, 64 and T on every
 * vector path, against the reference: β per token in (0.2, 1] with unit-norm keys and no
 * normaliser, and one constant β under sum normalisation. */
static void test_delta_chunked_chunks(void **state)
{
    (void)state;
    const int T = 300, m = 20, dv = 24;
    const size_t nq = (size_t)T * m, ny = (size_t)T * dv;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nq);
    float *v = malloc(sizeof(float) * ny), *y = malloc(sizeof(float) * ny);
    float *g = malloc(sizeof(float) * T);
    double *qd = malloc(sizeof(double) * nq), *kd = malloc(sizeof(double) * nq);
    double *vd = malloc(sizeof(double) * ny), *yd = malloc(sizeof(double) * ny);
    double *gd = malloc(sizeof(double) * T);
    features(q, k, v, T, m, dv, 5050);
    for (int t = 0; t < T; t++) {
        double n2 = 0.0;
        for (int f = 0; f < m; f++)
            n2 += (double)k[(size_t)t * m + f] * k[(size_t)t * m + f];
        for (int f = 0; f < m; f++)
            k[(size_t)t * m + f] = (float)(k[(size_t)t * m + f] / sqrt(n2));
    }
    tu_fill(g, (size_t)T, 0.39f, 5051);
    for (int t = 0; t < T; t++)
        g[t] = 0.605f + g[t];
    tu_to_double(q, qd, nq), tu_to_double(k, kd, nq), tu_to_double(v, vd, ny);
    tu_to_double(g, gd, (size_t)T);
    const struct attn_kernel *kn = attn_kernel_lookup("linear_delta_chunked");
    assert_non_null(kn);
    assert_int_equal(kn->uses_chunk, 1);
    assert_int_equal(kn->update, ATTN_UPD_DELTA);
    double *scr = malloc(sizeof(double) * kn->ref->scratch(T, m, dv));
    static const int chunks[] = {1, 5, 64, 300};
    for (int mode = 0; mode < 2; mode++) {
        const int norm = mode ? ATTN_RN_SUM : ATTN_RN_NONE, per_token = !mode;
        struct attn_ref_args ra = {.q = qd, .k = kd, .v = vd, .y = yd, .T = T, .dk = m,
                                   .dv = dv, .causal = 1, .eps = 1e-6, .scratch = scr,
                                   .gate = per_token ? gd : NULL, .gate_const = 0.7,
                                   .recur_norm = norm};
        kn->ref->run(&ra);
        for (int isa = 0; isa < LA_ISA_COUNT; isa++) {
            if (la_simd_force(isa) != 0)
                continue;
            for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
                float *w = malloc(sizeof(float) *
                                  attn_workspace_floats(kn, T, m, dv, 1, chunks[c], 1));
                struct attn_args a = {.q = q, .k = k, .v = v, .y = y, .T = T, .dk = m, .dv = dv,
                                      .causal = 1, .eps = 1e-6f, .chunk = chunks[c],
                                      .threads = 1, .work = w, .gate = per_token ? g : NULL,
                                      .gate_const = 0.7f, .recur_norm = norm};
                kn->run(&a);
                const double e = tu_rel_err(y, yd, ny);
                if (!(e <= ATTN_TOL_RECUR))
                    print_error("%s [%s] chunk=%d norm=%d: %.3g\n", kn->name, la_simd_name(isa),
                                chunks[c], norm, e);
                assert_true(tu_all_finite(y, ny));
                assert_true(e <= ATTN_TOL_RECUR);
                assert_int_equal(a.n_small_den, ra.n_small_den);
                free(w);
            }
        }
        la_simd_force(-1);
    }
    free(scr);
    free(q), free(k), free(v), free(y), free(g), free(qd), free(kd), free(vd), free(yd), free(gd);
}

/* Mutations the recurrence checks must fail: a delta rule that forgets the −Sᵀk correction
 * (the sum rule scaled by β), a decay kernel that ignores γ, a gated step that ignores α, and a
 * delta prefill that leaves the state as it was. */
static void delta_without_correction(struct attn_args *a)
{
    struct attn_args b = *a;
    b.gate = NULL, b.gate_const = 1.0f, b.recur_norm = ATTN_RN_NONE;
    attn_decay_recurrent(&b); /* S += k vᵀ */
    a->n_small_den = 0;
}

static void decay_ignores_gamma(struct attn_args *a)
{
    struct attn_args b = *a;
    b.gate = NULL, b.gate_const = 1.0f;
    attn_decay_recurrent(&b);
    a->n_small_den = b.n_small_den;
}

static void gated_step_ignores_alpha(struct attn_args *a)
{
    struct attn_args b = *a;
    b.gate = NULL, b.gate_const = 1.0f;
    attn_gated_step(&b);
    a->n_small_den = b.n_small_den;
}

static void delta_prefill_keeps_state(struct attn_args *a)
{
    const size_t n = (size_t)a->dk * a->dv + (size_t)a->dk;
    float *keep = malloc(n * sizeof *keep);
    memcpy(keep, a->state, n * sizeof *keep);
    attn_delta_prefill(a);
    memcpy(a->state, keep, n * sizeof *keep);
    free(keep);
}

static void test_recur_mutations(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        void (*run)(struct attn_args *);
    } bad[] = {{"linear_delta_recurrent", delta_without_correction},
               {"linear_decay_recurrent", decay_ignores_gamma},
               {"linear_gated_step", gated_step_ignores_alpha},
               {"linear_delta_prefill", delta_prefill_keeps_state}};
    const struct la_check_case c = {60, 24, 40, 3, 1, 0, 1, 1.0, 9};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const struct attn_kernel *kn = attn_kernel_lookup(bad[i].name);
        assert_non_null(kn);
        struct la_check_result r;
        struct la_error err;
        assert_int_equal(la_check_kernel(kn, &c, 55, &r, &err), LA_OK);
        assert_true(r.finite && r.rel_err <= r.tol);
        struct attn_kernel m = *kn;
        m.run = bad[i].run;
        assert_int_equal(la_check_kernel(&m, &c, 55, &r, &err), LA_OK);
        if (!(r.rel_err > 100 * r.tol))
            print_error("mutation of %s passed: rel_err %.3g\n", bad[i].name, r.rel_err);
        assert_true(r.rel_err > 100 * r.tol);
    }
}

/* The rule's entries find each other (what a chain check pairs), and the sum rule's are the
 * plain ones. */
static void test_recur_find(void **state)
{
    (void)state;
    static const char *const names[] = {"delta", "decay", "gated"};
    for (int u = ATTN_UPD_DELTA; u <= ATTN_UPD_GATED; u++) {
        assert_string_equal(attn_update_name(u), names[u - 1]);
        char want[64];
        snprintf(want, sizeof want, "linear_%s_recurrent", names[u - 1]);
        assert_string_equal(attn_kernel_find_update(ATTN_OP_FORWARD, ATTN_IN_FEATURES, 1, u)->name,
                            want);
        snprintf(want, sizeof want, "linear_%s_step", names[u - 1]);
        assert_string_equal(attn_kernel_find_update(ATTN_OP_STEP, ATTN_IN_FEATURES, 1, u)->name,
                            want);
        assert_null(attn_kernel_find_update(ATTN_OP_FORWARD, ATTN_IN_FEATURES, 0, u));
    }
    assert_string_equal(
        attn_kernel_find_update(ATTN_OP_PREFILL, ATTN_IN_FEATURES, 1, ATTN_UPD_SUM)->name,
        "linear_prefill");
    const struct attn_kernel *g = attn_kernel_lookup("linear_gated_step");
    assert_int_equal(attn_gate_floats(g, 7, 5), 35);
    assert_int_equal(attn_gate_floats(attn_kernel_lookup("linear_decay_prefill"), 7, 5), 1);
    assert_int_equal(attn_gate_floats(attn_kernel_lookup("linear_delta_recurrent"), 7, 5), 7);
    assert_int_equal(attn_gate_floats(attn_kernel_lookup("linear_causal"), 7, 5), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simd_choice),
        cmocka_unit_test(test_pack_t),
        cmocka_unit_test(test_simd_gemm),
        cmocka_unit_test(test_every_kernel_odd_shapes),
        cmocka_unit_test(test_seed_baseline),
        cmocka_unit_test(test_fused_maps),
        cmocka_unit_test(test_noncausal_prefetch),
        cmocka_unit_test(test_chunked_backward_threads),
        cmocka_unit_test(test_map_rows),
        cmocka_unit_test(test_elu1_exp_ulp),
        cmocka_unit_test(test_small_normalisers_counted),
        cmocka_unit_test(test_den_without_keys_reads_z_only),
        cmocka_unit_test(test_threads_output_layout),
        cmocka_unit_test(test_recurrent_equals_chunked),
        cmocka_unit_test(test_causal_is_prefix_of_noncausal),
        cmocka_unit_test(test_softmax_extreme_scores),
        cmocka_unit_test(test_softmax_ref_by_hand),
        cmocka_unit_test(test_table_capabilities),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_find_by_kind),
        cmocka_unit_test(test_flop_and_byte_models),
        cmocka_unit_test(test_decode_ops),
        cmocka_unit_test(test_softmax_decode_ops),
        cmocka_unit_test(test_recur_ref_by_hand),
        cmocka_unit_test(test_recur_modes),
        cmocka_unit_test(test_recur_chunked_gates),
        cmocka_unit_test(test_delta_chunked_chunks),
        cmocka_unit_test(test_recur_mutations),
        cmocka_unit_test(test_recur_find),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
