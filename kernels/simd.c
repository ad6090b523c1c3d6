/* simd.c — the run-time choice of vector path and the three compiled copies of simd_tmpl.h
 * (see simd.h for the contract).
 *
 * Each copy is compiled inside `#pragma GCC target(...)`, so this file builds under any -march
 * and the CPU check (__builtin_cpu_supports) happens before a vector function runs.  The
 * portable copy is plain C with one lane per "vector"; the compiler may still vectorise it
 * under -march=native, which changes nothing in the results' contract.
 * Choice: LINATTN_SIMD=avx512|avx2|scalar (any case), read once at the first call, else the
 * best the CPU supports.  la_simd_force() overrides both (tests).  la_simd_env_check() is the
 * CLI's start-up check of the variable.
 * Tests: tests/test_kernels.c (GEMM against a loop on every path; every kernel on every path);
 * tests/cli_env.sh (a bad LINATTN_SIMD is refused, a valid one runs).
 */
#include "simd.h"

#include "attention.h" /* ATTN_KV_BLOCK: the cache layout kv_attend reads */

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define LA_SIMD_X86 1
#include <immintrin.h>
#else
#define LA_SIMD_X86 0
#endif

/* ---- packing (not path-specific) --------------------------------------------------------- */

/* Panel by panel, four columns of X at a time: 4 × 4 blocks of X are transposed in SSE registers
 * (x86-64's baseline, no run-time check needed) and stored as four contiguous runs of the panel,
 * the rest element by element.  (Measured on Zen 4, T = 1024 keys at d = 64: 8.2-8.5 µs,
 * against 37 µs storing one float to each panel row in turn, which was 2.7% of a causal
 * softmax_flash call at T = 1024.) */
void la_pack_t(const float *X, ptrdiff_t ldx, int j0, int n, int cols, int nr, float *P)
{
    const int npan = (n + nr - 1) / nr;
    for (int p = 0; p < npan; p++) {
        float *dst = P + (ptrdiff_t)p * cols * nr;
        const int jn = n - p * nr < nr ? n - p * nr : nr;
        const float *src = X + (ptrdiff_t)(j0 + p * nr) * ldx;
        int c = 0;
#if LA_SIMD_X86
        for (; c + 4 <= cols; c += 4) {
            float *d0 = dst + (ptrdiff_t)c * nr, *d1 = d0 + nr, *d2 = d1 + nr, *d3 = d2 + nr;
            int jj = 0;
            for (; jj + 4 <= jn; jj += 4) {
                const float *s = src + (ptrdiff_t)jj * ldx + c;
                __m128 r0 = _mm_loadu_ps(s), r1 = _mm_loadu_ps(s + ldx);
                __m128 r2 = _mm_loadu_ps(s + 2 * ldx), r3 = _mm_loadu_ps(s + 3 * ldx);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(d0 + jj, r0);
                _mm_storeu_ps(d1 + jj, r1);
                _mm_storeu_ps(d2 + jj, r2);
                _mm_storeu_ps(d3 + jj, r3);
            }
            for (; jj < jn; jj++) {
                const float *s = src + (ptrdiff_t)jj * ldx + c;
                d0[jj] = s[0];
                d1[jj] = s[1];
                d2[jj] = s[2];
                d3[jj] = s[3];
            }
            for (; jj < nr; jj++)
                d0[jj] = d1[jj] = d2[jj] = d3[jj] = 0.0f;
        }
#endif
        for (; c < cols; c++) {
            float *d = dst + (ptrdiff_t)c * nr;
            for (int jj = 0; jj < jn; jj++)
                d[jj] = src[(ptrdiff_t)jj * ldx + c];
            for (int jj = jn; jj < nr; jj++)
                d[jj] = 0.0f;
        }
    }
}

/* The constants of the vector e^x below: the clamp (both x86 paths); for the AVX2 path log2 e,
 * ln 2 in two parts (Cody-Waite) and the polynomial for e^r on |r| <= ln2/2. */
#define EXP_LO -87.0f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0.693359375f
#define EXP_LN2_LO -2.12194440e-4f
#define EXP_P0 1.9875691500e-4f
#define EXP_P1 1.3981999507e-3f
#define EXP_P2 8.3334519073e-3f
#define EXP_P3 4.1665795894e-2f
#define EXP_P4 1.6666665459e-1f
#define EXP_P5 5.0000001201e-1f
/* The AVX-512 path's table form: 16/ln2, and ln2/16 in two parts (the first with 21 significant
 * bits, so x − n·hi is exact for |n| <= 2008). */
#define EXP_16_LOG2E 23.0831203f
#define EXP_LN2_16_HI 0x1.62e43p-5f
#define EXP_LN2_16_LO -0x1.05c61p-33f

/* ---- AVX-512F ----------------------------------------------------------------------------- */
#if LA_SIMD_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx2,fma")

#define SFX avx512
#define VW 16
#define VEC __m512
#define MASK __mmask16
#define GEMM_MR 6
#define GEMM_NV 4
/* Recurrent blocks of 2 vectors × 3 tokens: measured on Zen 5 (T = 16384, m = 64) at 0.63-0.71
 * ms per 16 columns, against 0.72-0.87 for 4 vectors × 3 tokens and 0.66-0.77 for 3 × 3-4. */
#define REC_NV 2
#define REC_TBMAX 8
#define REC_TB(nv) ((nv) == 2 ? 3 : 8)
#define vmask(n) ((__mmask16)((1u << (n)) - 1u))
#define vld(p) _mm512_loadu_ps(p)
#define vldm(p, k) _mm512_maskz_loadu_ps(k, p)
#define vldm_ninf(p, k) _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, p)
#define vkeep(x, k) _mm512_maskz_mov_ps(k, x)
#define vst(p, x) _mm512_storeu_ps(p, x)
#define vstm(p, x, k) _mm512_mask_storeu_ps(p, k, x)
#define vst_nt(p, x) _mm512_stream_ps(p, x)
#define vsfence() _mm_sfence()
#define vset1(x) _mm512_set1_ps(x)
#define vzero() _mm512_setzero_ps()
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vmul(a, b) _mm512_mul_ps(a, b)
#define vadd(a, b) _mm512_add_ps(a, b)
#define vsub(a, b) _mm512_sub_ps(a, b)
#define vmax(a, b) _mm512_max_ps(a, b)
#define vhsum(x) _mm512_reduce_add_ps(x)
#define vhmax(x) _mm512_reduce_max_ps(x)
#define vexp(x) exp_avx512(x)

/* e^x for x <= 0, from a 16-entry table: n = round(x·16/ln2), r = x − n·ln2/16 (two-part
 * Cody-Waite; |r| <= ln2/32), e^x = 2^⌊n/16⌋ · 2^{(n mod 16)/16} · e^r with the table entry
 * picked by the low 4 bits of n (vpermps reads only those, and the shifter leaves n in them), e^r
 * as 1 + r + r²/2 + r³/6 (truncation below 1e-8 relative), and 2^⌊n/16⌋ added to the table
 * entry's exponent field (integer ops, which leave the FMA pipes to the rest).  At most 1.07
 * ulp from the exact value over every float of [-87, 0] (tests/test_kernels.c
 * test_elu1_exp_ulp checks a dense sweep); x < -87 gives e^-87. */
static inline __m512 exp_avx512(__m512 x)
{
    const __m512 tab = _mm512_setr_ps(
        0x1.000000p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f, 0x1.306fe0p+0f,
        0x1.3dea64p+0f, 0x1.4bfdaep+0f, 0x1.5ab07ep+0f, 0x1.6a09e6p+0f, 0x1.7a1148p+0f,
        0x1.8ace54p+0f, 0x1.9c4918p+0f, 0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f,
        0x1.ea4afap+0f);
    const __m512 sh = _mm512_set1_ps(0x1.8p23f);
    x = _mm512_max_ps(x, _mm512_set1_ps(EXP_LO));
    const __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(EXP_16_LOG2E), sh);
    const __m512 n = _mm512_sub_ps(t, sh);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_16_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(EXP_LN2_16_LO), r);
    /* tj·2^⌊n/16⌋: the table entry's exponent field plus ⌊n/16⌋.  t's low 23 bits hold
     * 2^22 + n, so shifted left by 19 they leave n·2^19 (mod 2^32), and clearing bits 0-22
     * leaves ⌊n/16⌋·2^23.  n >= -2008 after the clamp, so ⌊n/16⌋ = -126 only with n mod 16
     * >= 8 (tj >= √2), and tj·2^⌊n/16⌋·e^r is a normal number: the same float as scaling
     * the rounded tj·e^r. */
    const __m512i ti = _mm512_castps_si512(t);
    const __m512i e = _mm512_and_si512(_mm512_slli_epi32(ti, 19), _mm512_set1_epi32(-0x800000));
    const __m512 tj = _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_castps_si512(_mm512_permutexvar_ps(ti, tab)), e));
    __m512 p = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_fmadd_ps(tj, _mm512_mul_ps(p, r), tj); /* tj·2^⌊n/16⌋·e^r */
}

/* clang-format off */
#define GEMM_CASES                                                                             \
    LA_TC(1, 1) LA_TC(1, 2) LA_TC(1, 3) LA_TC(1, 4) LA_TC(2, 1) LA_TC(2, 2) LA_TC(2, 3)         \
    LA_TC(2, 4) LA_TC(3, 1) LA_TC(3, 2) LA_TC(3, 3) LA_TC(3, 4) LA_TC(4, 1) LA_TC(4, 2)         \
    LA_TC(4, 3) LA_TC(4, 4) LA_TC(5, 1) LA_TC(5, 2) LA_TC(5, 3) LA_TC(5, 4) LA_TC(6, 1)         \
    LA_TC(6, 2) LA_TC(6, 3) LA_TC(6, 4)
/* clang-format on */

#include "simd_tmpl.h" /* undefines its parameters at the end */
#pragma GCC pop_options

/* ---- AVX2 + FMA --------------------------------------------------------------------------- */
#pragma GCC push_options
#pragma GCC target("avx2,fma")

#define SFX avx2
#define VW 8
#define VEC __m256
#define MASK __m256i
#define GEMM_MR 6
#define GEMM_NV 2
#define REC_NV 2
#define REC_TBMAX 6
#define REC_TB(nv) ((nv) == 2 ? 3 : 6)
#define vmask(n) _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define vld(p) _mm256_loadu_ps(p)
#define vldm(p, k) _mm256_maskload_ps(p, k)
#define vldm_ninf(p, k)                                                                            \
    _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(p, k), _mm256_castsi256_ps(k))
#define vkeep(x, k) _mm256_and_ps(x, _mm256_castsi256_ps(k))
#define vst(p, x) _mm256_storeu_ps(p, x)
#define vstm(p, x, k) _mm256_maskstore_ps(p, k, x)
#define vst_nt(p, x) _mm256_stream_ps(p, x)
#define vsfence() _mm_sfence()
#define vset1(x) _mm256_set1_ps(x)
#define vzero() _mm256_setzero_ps()
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vmul(a, b) _mm256_mul_ps(a, b)
#define vadd(a, b) _mm256_add_ps(a, b)
#define vsub(a, b) _mm256_sub_ps(a, b)
#define vmax(a, b) _mm256_max_ps(a, b)
#define vhsum(x) hsum_avx2(x)
#define vhmax(x) hmax_avx2(x)
#define vexp(x) exp_avx2(x)

static inline float hsum_avx2(__m256 x)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float hmax_avx2(__m256 x)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The same algorithm as exp_avx512; 2^n is built in the exponent field (n >= -126 after the
 * clamp, so it is a normal number). */
static inline __m256 exp_avx2(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(EXP_LO));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 p = _mm256_set1_ps(EXP_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(EXP_P5));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* clang-format off */
#define GEMM_CASES                                                                             \
    LA_TC(1, 1) LA_TC(1, 2) LA_TC(2, 1) LA_TC(2, 2) LA_TC(3, 1) LA_TC(3, 2) LA_TC(4, 1)         \
    LA_TC(4, 2) LA_TC(5, 1) LA_TC(5, 2) LA_TC(6, 1) LA_TC(6, 2)
/* clang-format on */

#include "simd_tmpl.h" /* undefines its parameters at the end */
#pragma GCC pop_options
#endif /* LA_SIMD_X86 */

/* ---- portable C (one lane) ---------------------------------------------------------------- */
#define SFX scalar
#define VW 1
#define VEC float
#define MASK int
#define GEMM_MR 4
#define GEMM_NV 4
#define REC_NV 4
#define REC_TBMAX 2
#define REC_TB(nv) 2
#define vmask(n) (n)
#define vld(p) (*(p))
#define vldm(p, k) ((void)(k), *(p))
#define vldm_ninf(p, k) ((void)(k), *(p))
#define vkeep(x, k) ((void)(k), (x))
#define vst(p, x) (*(p) = (x))
#define vstm(p, x, k) ((void)(k), *(p) = (x))
#define vst_nt(p, x) (*(p) = (x))
#define vsfence() ((void)0)
#define vset1(x) (x)
#define vzero() 0.0f
#define vfma(a, b, c) fmaf(a, b, c)
#define vmul(a, b) ((a) * (b))
#define vadd(a, b) ((a) + (b))
#define vsub(a, b) ((a) - (b))
#define vmax(a, b) ((a) > (b) ? (a) : (b))
#define vhsum(x) (x)
#define vhmax(x) (x)
#define vexp(x) expf(x)
/* clang-format off */
#define GEMM_CASES                                                                             \
    LA_TC(1, 1) LA_TC(1, 2) LA_TC(1, 3) LA_TC(1, 4) LA_TC(2, 1) LA_TC(2, 2) LA_TC(2, 3)         \
    LA_TC(2, 4) LA_TC(3, 1) LA_TC(3, 2) LA_TC(3, 3) LA_TC(3, 4) LA_TC(4, 1) LA_TC(4, 2)         \
    LA_TC(4, 3) LA_TC(4, 4)
/* clang-format on */

#include "simd_tmpl.h"

/* ---- the choice ----------------------------------------------------------------------------- */

static const char *const isa_names[LA_ISA_COUNT] = {"scalar", "avx2", "avx512"};

const char *la_simd_name(int isa)
{
    return isa >= 0 && isa < LA_ISA_COUNT ? isa_names[isa] : "?";
}

int la_simd_parse(const char *name)
{
    for (int i = 0; name && i < LA_ISA_COUNT; i++)
        if (!strcasecmp(name, isa_names[i]))
            return i;
    return -1;
}

int la_simd_supported(int isa)
{
    if (isa == LA_ISA_SCALAR)
        return 1;
#if LA_SIMD_X86
    __builtin_cpu_init();
    if (isa == LA_ISA_AVX2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (isa == LA_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return 0;
}

/* The automatic choice depends only on the CPU and the environment, so every thread that races
 * to compute it computes the same value: plain atomics suffice.  -1 = not chosen yet. */
static atomic_int auto_isa = -1;
static atomic_int forced_isa = -1;

int la_simd_isa(void)
{
    const int f = atomic_load_explicit(&forced_isa, memory_order_relaxed);
    if (f >= 0)
        return f;
    int a = atomic_load_explicit(&auto_isa, memory_order_relaxed);
    if (a < 0) {
        a = LA_ISA_SCALAR;
        for (int i = LA_ISA_COUNT - 1; i > 0; i--)
            if (la_simd_supported(i)) {
                a = i;
                break;
            }
        const int want = la_simd_parse(getenv("LINATTN_SIMD"));
        if (want >= 0 && la_simd_supported(want))
            a = want;
        atomic_store_explicit(&auto_isa, a, memory_order_relaxed);
    }
    return a;
}

int la_simd_env_check(char *msg, size_t cap)
{
    const char *v = getenv("LINATTN_SIMD");
    if (!v || !*v)
        return 0;
    const int want = la_simd_parse(v);
    if (want >= 0 && la_simd_supported(want))
        return 0;
    char here[64] = "";
    for (int i = LA_ISA_COUNT - 1; i >= 0; i--)
        if (la_simd_supported(i)) {
            const size_t n = strlen(here);
            snprintf(here + n, sizeof here - n, "%s%s", n ? ", " : "", isa_names[i]);
        }
    if (want < 0)
        snprintf(msg, cap, "LINATTN_SIMD='%s' is not a SIMD path; valid: avx512, avx2, scalar "
                           "(any case; this CPU runs %s)", v, here);
    else
        snprintf(msg, cap, "LINATTN_SIMD='%s': this CPU cannot run %s; valid here: %s", v,
                 isa_names[want], here);
    return -1;
}

int la_simd_force(int isa)
{
    if (isa >= LA_ISA_COUNT || (isa >= 0 && !la_simd_supported(isa)))
        return -1;
    atomic_store_explicit(&forced_isa, isa < 0 ? -1 : isa, memory_order_relaxed);
    return 0;
}

int la_simd_mr(int isa)
{
    return isa == LA_ISA_SCALAR ? 4 : 6;
}

int la_simd_nr(int isa)
{
    return isa == LA_ISA_AVX512 ? 64 : isa == LA_ISA_AVX2 ? 16 : 4;
}

int la_linrec_block(int isa)
{
    return isa == LA_ISA_AVX512 ? 32 : isa == LA_ISA_AVX2 ? 16 : 4;
}

int la_linrec_width(int isa, int nc)
{
    const int vw = isa == LA_ISA_AVX512 ? 16 : isa == LA_ISA_AVX2 ? 8 : 1;
    return (nc + vw - 1) / vw * vw;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

#if LA_SIMD_X86
#define LA_DISPATCH(call)                                                                          \
    switch (isa) {                                                                                 \
    case LA_ISA_AVX512:                                                                            \
        return call##_avx512;                                                                      \
    case LA_ISA_AVX2:                                                                              \
        return call##_avx2;                                                                        \
    default:                                                                                       \
        return call##_scalar;                                                                      \
    }
#else
#define LA_DISPATCH(call) return call##_scalar;
#endif

typedef void (*gemm_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                        ptrdiff_t, float *, ptrdiff_t, float, const float *, int);
static gemm_fn gemm_for(int isa)
{
    LA_DISPATCH(gemm)
}

void la_gemm(int isa, int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
             const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
             const float *rowscale, int beta)
{
    gemm_for(isa)(M, N, K, A, rsa, csa, B, ldb, C, ldc, alpha, rowscale, beta);
}

typedef void (*gemm_pf_fn)(int, int, int, const float *, ptrdiff_t, ptrdiff_t, const float *,
                           ptrdiff_t, float *, ptrdiff_t, float, const float *, int, const void *,
                           size_t, const void *, size_t);
static gemm_pf_fn gemm_pf_for(int isa)
{
    LA_DISPATCH(gemm_pf)
}

void la_gemm_pf(int isa, int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
                const float *rowscale, int beta, const void *p1, size_t bytes1, const void *p2,
                size_t bytes2)
{
    gemm_pf_for(isa)(M, N, K, A, rsa, csa, B, ldb, C, ldc, alpha, rowscale, beta, p1, bytes1, p2,
                     bytes2);
}

typedef void (*proj_fn)(int, int, int, const float *, ptrdiff_t, const float *, ptrdiff_t,
                        const float *, int, float *, ptrdiff_t, float *);
static proj_fn proj_for(int isa)
{
    LA_DISPATCH(proj_rows)
}

void la_proj_rows(int isa, int M, int N, int K, const float *A, ptrdiff_t lda, const float *B,
                  ptrdiff_t ldb, const float *off, int pair, float *C, ptrdiff_t ldc, float *mx)
{
    proj_for(isa)(M, N, K, A, lda, B, ldb, off, pair, C, ldc, mx);
}

typedef void (*elu1_fn)(const float *, float *, ptrdiff_t);
static elu1_fn elu1_for(int isa)
{
    LA_DISPATCH(elu1_rows)
}

void la_elu1_rows(int isa, const float *x, float *y, ptrdiff_t n)
{
    elu1_for(isa)(x, y, n);
}

typedef long (*den_fn)(int, int, const float *, const float *, ptrdiff_t, float, const float *,
                       float *, float *);
static den_fn den_for(int isa)
{
    LA_DISPATCH(lin_den)
}

long la_lin_den(int isa, int T, int m, const float *Q, const float *K, ptrdiff_t ld, float eps,
                const float *epsr, float *z, float *inv)
{
    return den_for(isa)(T, m, Q, K, ld, eps, epsr, z, inv);
}

typedef long (*gate_den_fn)(int, int, const float *, const float *, const float *, float,
                            ptrdiff_t, float, const float *, float *, float *);
static gate_den_fn gate_den_for(int isa)
{
    LA_DISPATCH(gate_den)
}

long la_gate_den(int isa, int T, int m, const float *Q, const float *K, const float *G, float g,
                 ptrdiff_t ld, float eps, const float *epsr, float *z, float *inv)
{
    return gate_den_for(isa)(T, m, Q, K, G, g, ld, eps, epsr, z, inv);
}

typedef long (*rec_fn)(int, int, int, const float *, const float *, const float *, float *,
                       ptrdiff_t, float *, ptrdiff_t, int, float, const float *, float *, float *,
                       int, float *, int, int, const float *, const float *, int);
static rec_fn rec_for(int isa)
{
    LA_DISPATCH(linrec_cols)
}

long la_linrec_cols(int isa, int T, int m, int dv, const float *Q, const float *K, const float *V,
                    float *Y, ptrdiff_t ldy, float *Ys, ptrdiff_t ldys, int side, float eps,
                    const float *epsr, float *z, float *inv, int have_inv, float *S, int c0,
                    int nc, const float *pfq, const float *pfk, int flags)
{
    return rec_for(isa)(T, m, dv, Q, K, V, Y, ldy, Ys, ldys, side, eps, epsr, z, inv, have_inv, S,
                        c0, nc, pfq, pfk, flags);
}

typedef void (*chunk_fn)(int, int, int, const float *, const float *, const float *, float *,
                         const float *, ptrdiff_t, const float *, float *, float *);
static chunk_fn chunk_for(int isa)
{
    LA_DISPATCH(linchunk_out)
}

void la_linchunk_out(int isa, int n, int m, int dv, const float *Qc, const float *Kc,
                     const float *Vc, float *Yc, const float *S, ptrdiff_t lds, const float *inv,
                     float *Kt, float *A)
{
    chunk_for(isa)(n, m, dv, Qc, Kc, Vc, Yc, S, lds, inv, Kt, A);
}

typedef void (*softmax_fn)(const float *, const float *, const float *, float *, int, int, int, int,
                           float, int, int, int, float *, float *);
static softmax_fn softmax_for(int isa)
{
    LA_DISPATCH(softmax_rows)
}

void la_softmax_rows(int isa, const float *Q, const float *Kp, const float *V, float *Y, int T,
                     int d, int dv, int causal, float scale, int i0, int rows, int bc, float *S,
                     float *ml)
{
    softmax_for(isa)(Q, Kp, V, Y, T, d, dv, causal, scale, i0, rows, bc, S, ml);
}

typedef void (*kv_fn)(const float *, ptrdiff_t, int, const float *, int, int, int, int, int, float,
                      float *, float *, float *, float *, ptrdiff_t);
static kv_fn kv_for(int isa)
{
    LA_DISPATCH(kv_attend)
}

void la_kv_attend(int isa, const float *Q, ptrdiff_t ldq, int rows, const float *C, int d, int dv,
                  int j0, int j1, int p0, float scale, float *S, float *m, float *l, float *Y,
                  ptrdiff_t ldy)
{
    kv_for(isa)(Q, ldq, rows, C, d, dv, j0, j1, p0, scale, S, m, l, Y, ldy);
}

typedef void (*recur_fn)(int, int, int, int, const float *, const float *, const float *, float *,
                         ptrdiff_t, const float *, const float *, float, const float *, float *,
                         int, int, int);
static recur_fn recur_for(int isa)
{
    LA_DISPATCH(recur_cols)
}

/* The delta rule's pass keeps six accumulators per vector of columns (u, w, two of y, two of
 * u_next): four vectors on AVX-512 (24 of its 32 registers), two on AVX2 (12 of 16).  The
 * gated rules run the sum rule's blocks (la_linrec_block). */
int la_recur_block(int isa, int update)
{
    if (update != 1)
        return la_linrec_block(isa);
    return isa == LA_ISA_AVX512 ? 64 : isa == LA_ISA_AVX2 ? 16 : 4;
}

void la_recur_cols(int isa, int update, int T, int m, int dv, const float *Q, const float *K,
                   const float *V, float *Y, ptrdiff_t ldy, const float *ys, const float *ks,
                   float g, const float *G, float *S, int c0, int nc, int flags)
{
    recur_for(isa)(update, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, c0, nc, flags);
}
