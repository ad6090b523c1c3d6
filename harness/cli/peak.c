/* peak.c — the fp32 peak of this machine's cores, measured: independent multiply-add chains
 * that live in registers, on the widest vector of the SIMD path the kernels use (AVX-512:
 * 512-bit FMA, AVX2: 256-bit FMA, scalar: scalar fmaf).  There are enough chains to cover the
 * FMA latency times its throughput (4 cycles × 2 units = 8 in flight on current x86 cores);
 * more would spill: 16 of the 32 zmm registers, 12 of the 16 ymm/xmm ones.
 * What it is: `bench`'s denominator for "efficiency against the core's peak" (one run, one
 * machine: the hosts behind one VM class differ by more than 2x) and the threads section's
 * control loop.  What it is not: a check of anything; it prints a number.
 * Tested by running it: `linattn bench --suite` and `linattn bench` print the peak (the
 * benchmark is where speed is looked at; there are no timed unit tests).
 */
#include <math.h>
#include <omp.h>

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
