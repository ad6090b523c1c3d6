/* peak.c — the fp32 peak of this machine's cores, measured: independent multiply-add chains
 * that live in registers, on the widest vector of the SIMD path the kernels use (AVX-512:
 * 512-bit FMA, AVX2: 256-bit FMA, scalar: scalar fmaf).  There are enough chains to cover the
 * FMA latency times its throughput (4 cycles × 2 units = 8 in flight on current x86 cores);
 * more would spill: 16 of the 32 zmm registers, 12 of the 16 ymm/xmm ones.
 * What it is: `bench`'s denominator for "efficiency against the core's peak" (one run, one
 * machine: the hosts behind one VM class differ by more than 2x) and the threads section's
 * control loop.  What it is not: a check of anything; it prints a number.
 * Also the read bandwidth of one core, measured the same way (la_read_bandwidth_gbs): a
 * streaming sum over a float buffer with vector loads into 8 independent sums (enough loads in
 * flight for the core's load ports; the adds are not the limit), over a buffer much larger
 * than the last-level cache (memory) or one that fits in L2 (repeated passes): the
 * denominators of the decode rows' bytes per second.
 * Tested by running it: `linattn bench --suite` and `linattn bench` print the peak (the
 * benchmark is where speed is looked at; there are no timed unit tests).
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../kernels/simd.h"
#include "bench.h"

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define LA_PEAK_X86 1
#include <immintrin.h>
#else
#define LA_PEAK_X86 0
#endif

#define CHAINS_512 16
#define CHAINS_256 12
#define CHAINS_1 12
/* acc = acc·B + C converges to C / (1 − B) = 0.1: no overflow and no subnormals. */
#define FMA_B 0.999999f
#define FMA_C 1e-7f

#if LA_PEAK_X86
#pragma GCC push_options
#pragma GCC target("avx512f")
static float fma_loop_avx512(long iters)
{
    __m512 acc[CHAINS_512];
    const __m512 b = _mm512_set1_ps(FMA_B), c = _mm512_set1_ps(FMA_C);
    for (int i = 0; i < CHAINS_512; i++)
        acc[i] = _mm512_set1_ps(0.001f * (float)i);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 16
        for (int i = 0; i < CHAINS_512; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    }
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS_512; i++)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma")
static float fma_loop_avx2(long iters)
{
    __m256 acc[CHAINS_256];
    const __m256 b = _mm256_set1_ps(FMA_B), c = _mm256_set1_ps(FMA_C);
    for (int i = 0; i < CHAINS_256; i++)
        acc[i] = _mm256_set1_ps(0.001f * (float)i);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS_256; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], b, c);
    }
    float lanes[8], s = 0.0f;
    for (int i = 0; i < CHAINS_256; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        for (int j = 0; j < 8; j++)
            s += lanes[j];
    }
    return s;
}
#pragma GCC pop_options
#endif

/* One lane per chain: the compiler must not pack the chains into vectors (SLP vectorisation
 * would turn this into the AVX loop above). */
#pragma GCC push_options
#pragma GCC optimize("no-tree-vectorize", "no-tree-slp-vectorize")
static float fma_loop_scalar(long iters)
{
    float acc[CHAINS_1];
    for (int i = 0; i < CHAINS_1; i++)
        acc[i] = 0.001f * (float)i;
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS_1; i++)
            acc[i] = fmaf(acc[i], FMA_B, FMA_C);
    }
    float s = 0.0f;
    for (int i = 0; i < CHAINS_1; i++)
        s += acc[i];
    return s;
}
#pragma GCC pop_options

float la_fma_loop(int isa, long iters)
{
#if LA_PEAK_X86
    if (isa == LA_ISA_AVX512)
        return fma_loop_avx512(iters);
    if (isa == LA_ISA_AVX2)
        return fma_loop_avx2(iters);
#endif
    return fma_loop_scalar(iters);
}

static int fma_chains(int isa)
{
    return isa == LA_ISA_AVX512 ? CHAINS_512 : isa == LA_ISA_AVX2 ? CHAINS_256 : CHAINS_1;
}

static int fma_lanes(int isa)
{
    return isa == LA_ISA_AVX512 ? 16 : isa == LA_ISA_AVX2 ? 8 : 1;
}

double la_fma_loop_flops(int isa, long iters)
{
    return 2.0 * fma_chains(isa) * fma_lanes(isa) * (double)iters;
}

const char *la_fma_loop_desc(int isa)
{
    return isa == LA_ISA_AVX512 ? "16 chains of 512-bit FMA"
           : isa == LA_ISA_AVX2 ? "12 chains of 256-bit FMA"
                                : "12 chains of scalar FMA";
}

struct peak_ctx {
    int isa, threads;
    long iters;
    float sink; /* keeps the loops' results, so the compiler keeps the loops */
};

/* Every thread runs the whole loop: `threads` times the work in the same wall time when the
 * cores are there. */
static void peak_call(void *p)
{
    struct peak_ctx *c = p;
    float s = 0.0f;
    if (c->threads <= 1) {
        s = la_fma_loop(c->isa, c->iters);
    } else {
#pragma omp parallel num_threads(c->threads) reduction(+ : s)
        s += la_fma_loop(c->isa, c->iters);
    }
    c->sink += s;
}

#define PEAK_SAMPLE_S 0.05    /* the length of one sample */
#define PEAK_CALIBRATE_S 0.01 /* calibration stops growing the loop at calls this long */
#define PEAK_SAMPLES 10

double la_fp32_peak_gflops(int isa, int threads, struct la_timing *t)
{
    /* Calibrate at one thread, on the fastest of three calls: grow the loop until such a call
     * takes PEAK_CALIBRATE_S, then scale it to PEAK_SAMPLE_S.  A call that the scheduler
     * delays (or, at several threads, that waits for a thread not running yet) looks long;
     * calibrated on it, the loop would stay so short that such delays fill every sample. */
    struct peak_ctx c = {isa, 1, 1L << 12, 0.0f};
    la_time(peak_call, &c, 1, 3, 3, 0.0, t);
    while (t->min_s < PEAK_CALIBRATE_S && c.iters < (1L << 40)) {
        c.iters *= 4;
        la_time(peak_call, &c, 0, 3, 3, 0.0, t);
    }
    const double scale = PEAK_SAMPLE_S / t->min_s;
    c.iters = (long)((double)c.iters * (scale > 1.0 ? scale : 1.0));
    c.threads = threads < 1 ? 1 : threads;
    /* The best of the samples: a slow spell of a shared machine lowers some of them, never
     * raises one. */
    la_time(peak_call, &c, 1, PEAK_SAMPLES, PEAK_SAMPLES, 0.0, t);
    if (!(c.sink == c.sink)) /* NaN cannot happen (see FMA_B); this only uses the sink */
        return NAN;
    return la_fma_loop_flops(isa, c.iters) * c.threads / t->min_s / 1e9;
}

/* ---- read bandwidth ------------------------------------------------------------------------ */

#define SUM_ACC 8 /* independent sums: loads in flight, not add latency, set the rate */

#if LA_PEAK_X86
#pragma GCC push_options
#pragma GCC target("avx512f")
static float sum_avx512(const float *x, size_t n)
{
    __m512 acc[SUM_ACC];
    for (int i = 0; i < SUM_ACC; i++)
        acc[i] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 * SUM_ACC <= n; i += 16 * SUM_ACC) {
#pragma GCC unroll 8
        for (int a = 0; a < SUM_ACC; a++)
            acc[a] = _mm512_add_ps(acc[a], _mm512_load_ps(x + i + 16 * a));
    }
    __m512 s = acc[0];
    for (int a = 1; a < SUM_ACC; a++)
        s = _mm512_add_ps(s, acc[a]);
    float r = _mm512_reduce_add_ps(s);
    for (; i < n; i++)
        r += x[i];
    return r;
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2")
static float sum_avx2(const float *x, size_t n)
{
    __m256 acc[SUM_ACC];
    for (int i = 0; i < SUM_ACC; i++)
        acc[i] = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 * SUM_ACC <= n; i += 8 * SUM_ACC) {
#pragma GCC unroll 8
        for (int a = 0; a < SUM_ACC; a++)
            acc[a] = _mm256_add_ps(acc[a], _mm256_load_ps(x + i + 8 * a));
    }
    float lanes[8], r = 0.0f;
    for (int a = 0; a < SUM_ACC; a++) {
        _mm256_storeu_ps(lanes, acc[a]);
        for (int j = 0; j < 8; j++)
            r += lanes[j];
    }
    for (; i < n; i++)
        r += x[i];
    return r;
}
#pragma GCC pop_options
#endif

static float sum_scalar(const float *x, size_t n)
{
    float acc[SUM_ACC] = {0};
    size_t i = 0;
    for (; i + SUM_ACC <= n; i += SUM_ACC)
        for (int a = 0; a < SUM_ACC; a++)
            acc[a] += x[i + a];
    float r = 0.0f;
    for (int a = 0; a < SUM_ACC; a++)
        r += acc[a];
    for (; i < n; i++)
        r += x[i];
    return r;
}

static float stream_sum(int isa, const float *x, size_t n)
{
#if LA_PEAK_X86
    if (isa == LA_ISA_AVX512)
        return sum_avx512(x, n);
    if (isa == LA_ISA_AVX2)
        return sum_avx2(x, n);
#endif
    return sum_scalar(x, n);
}

struct bw_ctx {
    int isa, passes;
    const float *x;
    size_t n;
    float sink;
};

static void bw_call(void *p)
{
    struct bw_ctx *c = p;
    for (int k = 0; k < c->passes; k++)
        c->sink += stream_sum(c->isa, c->x, c->n);
}

static size_t cache_bytes(int name, size_t fallback)
{
    const long v = sysconf(name);
    return v > 0 ? (size_t)v : fallback;
}

size_t la_l2_bytes(void)
{
    return cache_bytes(_SC_LEVEL2_CACHE_SIZE, 1u << 20);
}

size_t la_llc_bytes(void)
{
    const size_t l3 = cache_bytes(_SC_LEVEL3_CACHE_SIZE, 0);
    return l3 ? l3 : la_l2_bytes();
}

#define BW_SAMPLE_BYTES (256.0 * 1024 * 1024) /* bytes read per sample, at least */

double la_read_bandwidth_gbs(int isa, size_t bytes, struct la_timing *t)
{
    const size_t n = bytes / sizeof(float) / 64 * 64;
    float *x = n ? aligned_alloc(64, n * sizeof *x) : NULL;
    if (!x)
        return NAN;
    for (size_t i = 0; i < n; i++) /* touched (and finite) before any timing */
        x[i] = (float)(i % 7) * 0.125f;
    const double one = (double)n * sizeof *x;
    struct bw_ctx c = {isa, one >= BW_SAMPLE_BYTES ? 1 : (int)(BW_SAMPLE_BYTES / one) + 1, x, n,
                       0.0f};
    /* The best of the samples, as the peak: a busy neighbour only ever lowers one. */
    la_time(bw_call, &c, 1, 10, 10, 0.0, t);
    free(x);
    if (!(c.sink == c.sink))
        return NAN;
    return one * c.passes / t->min_s / 1e9;
}
