/* vmath.c — vectorised fp32 exp and sincos with one-time run-time dispatch (see vmath.h).
 *
 * What it is: three implementations of one algorithm — AVX-512F (16 lanes, masked tails),
 * AVX2+FMA (8 lanes, masked tails) and portable C (element-wise and branch-free, so the
 * compiler may vectorise it for whatever -march it is given) — and a dispatcher that picks the
 * best the CPU supports on the first call (or the one LINATTN_VMATH names, in any case;
 * la_vmath_env_check is the CLI's start-up check of that variable).
 * Each vector function carries its own target attribute, so this file compiles under any
 * -march; the CPU check happens before any of them runs.
 * What it is not: a libm.  There is no Payne-Hanek reduction (arguments of sincos beyond
 * LA_VSINCOS_RANGE go to libm element by element) and no errno/exception-flag contract.
 * Test: make build/tests/test_vmath && build/tests/test_vmath; tests/cli_env.sh (the CLI's
 * refusal of a bad LINATTN_VMATH).
 *
 * expf.  x is clamped to [-104, 89] (NaN passes through the clamps), n = round(x·log2 e) and
 * r = x − n·ln2 by a two-part Cody-Waite split whose first part has 15 significant bits, so
 * n·L1 is exact for |n| <= 2^8 with or without FMA; |r| <= ln2/2 + tiny.  exp(r) = 1 + (r +
 * r²·q(r)) with q a degree-4 polynomial fitted by Remez (minimax relative error of the fitted
 * polynomial 3e-9, i.e. 0.03 ulp, so the error is dominated by the last two roundings).  The
 * result is p·2^n formed as (p·2^⌊n/2⌋)·2^(n−⌊n/2⌋): the first product is exact and normal,
 * the second rounds once, so overflow gives +Inf and subnormal results are rounded correctly
 * (AVX-512's vscalefps computes the same single rounding in one instruction).
 *
 * sincos.  n = round(x·2/π) and r = x − n·π/2 with a three-part Cody-Waite split (P1: 8 bits,
 * P2: 11 bits, P3: a full float; residual 2e-15): n·P1 and n·P2 are exact for |n| < 2^13 and
 * x − n·P1 is exact by Sterbenz's lemma, so r carries two roundings (<= 2^-24 absolute) for
 * |x| <= 1e4 (|n| <= 6367).  sin r = r + r³·s(r²) (Remez, degree 7, error 8e-9) and cos r =
 * 1 + r²·c(r²) (Remez, degree 8, error 1e-10) on |r| <= π/4; the quadrant n mod 4 swaps the
 * pair and sets signs.  Lanes with |x| > 1e4, ±Inf or NaN are redone with libm sinf/cosf.
 *
 * The portable path uses fmaf only when the compiler says it is fast (FP_FAST_FMAF); then it
 * is bit-identical to the vector paths, otherwise within an ulp of them.  The code is
 * written for IEEE round-to-nearest (-std=c11 keeps GCC from contracting a·b + c by itself).
 *
 * Measured (exhaustively, every float of the ranges, against libm in double; the throwaway
 * programs are not kept): expf max 1.014 ulp for normal results with FMA (0.989 without),
 * subnormal results within 0.75·2^-149; sincos max absolute error 7.19e-8 with FMA (8.7e-8
 * without) over |x| <= 1e4.  Throughput on an AMD Zen 5 core (2.6 GHz VM), n = 4096, in
 * ns/element (sincos: one element = both outputs): avx512 expf 0.17, sincos 0.31; avx2 0.32,
 * 0.38; portable path 0.31, 0.41 under -march=native (the compiler vectorises it) and 1.2,
 * 1.6 for plain x86-64 (SSE2); glibc expf 3.2, sinf+cosf 6.4.
 */
#include "vmath.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#define LA_VMATH_X86 1
#include <immintrin.h>
#else
#define LA_VMATH_X86 0
#endif

/* ---- constants shared by every path (hex floats: exact) ----------------------------------- */

/* Adding 1.5·2^23 rounds a float of magnitude < 2^22 to an integer (ties to even), and the
 * integer appears in the low bits of the sum's representation. */
#define VM_SHIFTER 0x1.8p23f
#define VM_SHIFTER_BITS 0x4B400000u

#define VM_EXP_HI 89.0f   /* n = 128 here: p·2^128 overflows to +Inf for every x > 88.7228 */
#define VM_EXP_LO -104.0f /* n = -150 here: the result rounds to +0 for every x < -103.98 */
#define VM_LOG2E 0x1.715476p+0f
#define VM_LN2_1 0x1.62e4p-1f    /* 15 significant bits: n·VM_LN2_1 is exact for |n| <= 256 */
#define VM_LN2_2 0x1.7f7d1cp-20f /* ln 2 − VM_LN2_1 rounded; the residual is 5.5e-14 */
/* exp(r) − 1 − r ≈ r²·(E2 + r·(E3 + r·(E4 + r·(E5 + r·E6)))) on |r| <= ln2/2 (Remez). */
#define VM_E2 0x1.fffffcp-2f
#define VM_E3 0x1.555492p-3f
#define VM_E4 0x1.5558f2p-5f
#define VM_E5 0x1.1239d4p-7f
#define VM_E6 0x1.6a244cp-10f

#define VM_TWO_OVER_PI 0x1.45f306p-1f
#define VM_PIO2_1 0x1.92p+0f      /* 8 significant bits */
#define VM_PIO2_2 0x1.fb4p-12f    /* 11 significant bits: n·VM_PIO2_2 exact for |n| < 2^13 */
#define VM_PIO2_3 0x1.4442d2p-24f /* π/2 − P1 − P2 rounded; the residual is −1.7e-15 */
/* sin r ≈ r + r³·(S3 + r²·(S5 + r²·S7)), cos r ≈ 1 + r²·(−1/2 + r²·(C4 + r²·(C6 + r²·C8))) */
#define VM_S3 -0x1.555552p-3f
#define VM_S5 0x1.110b5p-7f
#define VM_S7 -0x1.9a591ap-13f
#define VM_C4 0x1.55554ap-5f
#define VM_C6 -0x1.6c0c8cp-10f
#define VM_C8 0x1.9a025ap-16f

/* ---- portable C path ---------------------------------------------------------------------- */

static inline float vm_fma(float a, float b, float c)
{
#ifdef FP_FAST_FMAF
    return fmaf(a, b, c);
#else
    return a * b + c;
#endif
}

static inline uint32_t vm_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float vm_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline float vm_expf1(float x)
{
    /* A NaN x fails both comparisons and passes through.  Selecting with masks keeps the loop
     * free of branches (which compilers turn a plain ?: into), so it vectorises. */
    uint32_t above = 0u - (uint32_t)(x > VM_EXP_HI), below = 0u - (uint32_t)(x < VM_EXP_LO);
    x = vm_float((vm_bits(x) & ~(above | below)) | (vm_bits(VM_EXP_HI) & above) |
                 (vm_bits(VM_EXP_LO) & below));
    float t = vm_fma(x, VM_LOG2E, VM_SHIFTER);
    float n = t - VM_SHIFTER;
    /* n in [-150, 128]; the bias keeps the shift arithmetic on non-negative numbers (for a NaN
     * x the bits are garbage, but unsigned, and the NaN in p wins). */
    uint32_t ni = vm_bits(t) - VM_SHIFTER_BITS + 256u;
    uint32_t n1 = (ni >> 1) - 128u; /* ⌊n/2⌋ */
    uint32_t n2 = ni - 256u - n1;   /* n − ⌊n/2⌋ */
    /* n·(−L), not (−n)·L: negating n would flip the sign of a NaN, and which NaN an
     * operation returns depends on operand order, so results would depend on code generation. */
    float r = vm_fma(n, -VM_LN2_1, x);
    r = vm_fma(n, -VM_LN2_2, r);
    float q = vm_fma(VM_E6, r, VM_E5);
    q = vm_fma(q, r, VM_E4);
    q = vm_fma(q, r, VM_E3);
    q = vm_fma(q, r, VM_E2);
    float p = vm_fma(q, r * r, r) + 1.0f;
    return p * vm_float((n1 + 127u) << 23) * vm_float((n2 + 127u) << 23);
}

static void vm_vexpf_scalar(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = vm_expf1(x[i]);
}

static void vm_vexpf_affine_scalar(const float *x, float *y, size_t n, float sub, float add,
                                   float scale)
{
    for (size_t i = 0; i < n; i++)
        y[i] = vm_expf1((x[i] - sub) + add) * scale;
}

static void vm_vexpf_pair_scalar(const float *x, float *yp, float *ym, size_t n, float sub,
                                 float add, float scale)
{
    for (size_t i = 0; i < n; i++) {
        const float u = x[i];
        ym[i] = vm_expf1((-u - sub) + add) * scale;
        yp[i] = vm_expf1((u - sub) + add) * scale;
    }
}

static inline int vm_sincos_out_of_range(float x)
{
    return !(fabsf(x) <= LA_VSINCOS_RANGE);
}

/* The polynomial path for one element, valid for |x| <= LA_VSINCOS_RANGE (garbage, but no
 * trap, otherwise).  Written without branches so that compilers can vectorise the loop. */
static inline void vm_sincosf1(float x, float *sp, float *cp)
{
    float t = vm_fma(x, VM_TWO_OVER_PI, VM_SHIFTER);
    float n = t - VM_SHIFTER;
    uint32_t q = vm_bits(t); /* low bits: n mod 4 (VM_SHIFTER_BITS is a multiple of 4) */
    float r = vm_fma(n, -VM_PIO2_1, x);
    r = vm_fma(n, -VM_PIO2_2, r);
    r = vm_fma(n, -VM_PIO2_3, r);
    float r2 = r * r;
    float ps = vm_fma(VM_S7, r2, VM_S5);
    ps = vm_fma(ps, r2, VM_S3);
    /* The r³ term has the opposite sign of r, so it would turn sin(−0) into +0; |s| <= |r|
     * keeps the sign of r otherwise, so or-ing that sign in changes nothing else. */
    uint32_t sb = vm_bits(vm_fma(ps, r2 * r, r)) | (vm_bits(r) & 0x80000000u);
    float pc = vm_fma(VM_C8, r2, VM_C6);
    pc = vm_fma(pc, r2, VM_C4);
    pc = vm_fma(pc, r2, -0.5f);
    uint32_t cb = vm_bits(vm_fma(pc, r2, 1.0f));
    /* Odd quadrants swap the pair; bit 1 of n (of n + 1) is the sign of sin (of cos). */
    uint32_t odd = 0u - (q & 1u);
    uint32_t sv = (sb & ~odd) | (cb & odd), cv = (cb & ~odd) | (sb & odd);
    *sp = vm_float(sv ^ ((q & 2u) << 30));
    *cp = vm_float(cv ^ (((q + 1u) & 2u) << 30));
}

static void vm_vsincosf_scalar(const float *x, float *s, float *c, size_t n)
{
    /* Chunks through a local copy: s or c may alias x, and the rare out-of-range elements are
     * redone with libm after the branch-free loop. */
    float xs[64];
    for (size_t i = 0; i < n; i += 64) {
        size_t k = n - i < 64 ? n - i : 64;
        int bad = 0;
        memcpy(xs, x + i, k * sizeof *xs);
        for (size_t j = 0; j < k; j++) {
            vm_sincosf1(xs[j], &s[i + j], &c[i + j]);
            bad |= vm_sincos_out_of_range(xs[j]);
        }
        if (bad) {
            for (size_t j = 0; j < k; j++) {
                if (vm_sincos_out_of_range(xs[j])) {
                    s[i + j] = sinf(xs[j]);
                    c[i + j] = cosf(xs[j]);
                }
            }
        }
    }
}

#if LA_VMATH_X86
/* ---- AVX-512F path ------------------------------------------------------------------------ */

#define VM_AVX512 __attribute__((target("avx512f,avx512dq")))

VM_AVX512 static inline __m512 vm_exp16(__m512 x)
{
    /* max/min return their second operand when either is NaN, so NaN x passes through. */
    x = _mm512_max_ps(_mm512_set1_ps(VM_EXP_LO), x);
    x = _mm512_min_ps(_mm512_set1_ps(VM_EXP_HI), x);
    __m512 sh = _mm512_set1_ps(VM_SHIFTER);
    __m512 n = _mm512_sub_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(VM_LOG2E), sh), sh);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-VM_LN2_1), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-VM_LN2_2), r);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(VM_E6), r, _mm512_set1_ps(VM_E5));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(VM_E4));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(VM_E3));
    q = _mm512_fmadd_ps(q, r, _mm512_set1_ps(VM_E2));
    __m512 p = _mm512_add_ps(_mm512_fmadd_ps(q, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    /* p·2^n rounded once: +Inf on overflow, correctly rounded subnormals. */
    return _mm512_scalef_ps(p, n);
}

VM_AVX512 static void vm_vexpf_avx512(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(y + i, vm_exp16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        /* Masked-off lanes are neither read nor written (no fault past the end). */
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(y + i, m, vm_exp16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

VM_AVX512 static void vm_vexpf_affine_avx512(const float *x, float *y, size_t n, float sub,
                                             float add, float scale)
{
    const __m512 vs = _mm512_set1_ps(sub), va = _mm512_set1_ps(add), vc = _mm512_set1_ps(scale);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 a = _mm512_add_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i), vs), va);
        _mm512_storeu_ps(y + i, _mm512_mul_ps(vm_exp16(a), vc));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512 a = _mm512_add_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vs), va);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(vm_exp16(a), vc));
    }
}

VM_AVX512 static void vm_vexpf_pair_avx512(const float *x, float *yp, float *ym, size_t n,
                                           float sub, float add, float scale)
{
    const __m512 vs = _mm512_set1_ps(sub), va = _mm512_set1_ps(add), vc = _mm512_set1_ps(scale);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 u = _mm512_loadu_ps(x + i);
        const __m512 a = _mm512_add_ps(_mm512_sub_ps(u, vs), va);
        const __m512 b = _mm512_add_ps(_mm512_sub_ps(_mm512_xor_ps(u, sign), vs), va);
        _mm512_storeu_ps(yp + i, _mm512_mul_ps(vm_exp16(a), vc));
        _mm512_storeu_ps(ym + i, _mm512_mul_ps(vm_exp16(b), vc));
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        const __m512 u = _mm512_maskz_loadu_ps(m, x + i);
        const __m512 a = _mm512_add_ps(_mm512_sub_ps(u, vs), va);
        const __m512 b = _mm512_add_ps(_mm512_sub_ps(_mm512_xor_ps(u, sign), vs), va);
        _mm512_mask_storeu_ps(yp + i, m, _mm512_mul_ps(vm_exp16(a), vc));
        _mm512_mask_storeu_ps(ym + i, m, _mm512_mul_ps(vm_exp16(b), vc));
    }
}

VM_AVX512 static inline void vm_sincos16(__m512 x, __m512 *so, __m512 *co)
{
    __m512 sh = _mm512_set1_ps(VM_SHIFTER);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps(VM_TWO_OVER_PI), sh);
    __m512 n = _mm512_sub_ps(t, sh);
    __m512i q = _mm512_castps_si512(t);
    __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-VM_PIO2_1), x);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-VM_PIO2_2), r);
    r = _mm512_fmadd_ps(n, _mm512_set1_ps(-VM_PIO2_3), r);
    __m512 r2 = _mm512_mul_ps(r, r);
    __m512 ps = _mm512_fmadd_ps(_mm512_set1_ps(VM_S7), r2, _mm512_set1_ps(VM_S5));
    ps = _mm512_fmadd_ps(ps, r2, _mm512_set1_ps(VM_S3));
    __m512 s = _mm512_fmadd_ps(ps, _mm512_mul_ps(r2, r), r);
    /* s | (r & sign): keeps sin(−0) = −0 (see the portable path). */
    s = _mm512_castsi512_ps(_mm512_ternarylogic_epi32(
        _mm512_castps_si512(s), _mm512_castps_si512(r), _mm512_set1_epi32((int)0x80000000u), 0xF8));
    __m512 pc = _mm512_fmadd_ps(_mm512_set1_ps(VM_C8), r2, _mm512_set1_ps(VM_C6));
    pc = _mm512_fmadd_ps(pc, r2, _mm512_set1_ps(VM_C4));
    pc = _mm512_fmadd_ps(pc, r2, _mm512_set1_ps(-0.5f));
    __m512 c = _mm512_fmadd_ps(pc, r2, _mm512_set1_ps(1.0f));
    __mmask16 odd = _mm512_test_epi32_mask(q, _mm512_set1_epi32(1));
    __m512i two = _mm512_set1_epi32(2);
    __m512i ssign = _mm512_slli_epi32(_mm512_and_si512(q, two), 30);
    __m512i csign =
        _mm512_slli_epi32(_mm512_and_si512(_mm512_add_epi32(q, _mm512_set1_epi32(1)), two), 30);
    __m512 sv = _mm512_mask_blend_ps(odd, s, c);
    __m512 cv = _mm512_mask_blend_ps(odd, c, s);
    *so = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(sv), ssign));
    *co = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(cv), csign));
}

/* A block of up to 16 elements (mask m) holding arguments out of range: the vector results,
 * with those lanes redone by libm.  Kept out of line so the hot loop holds no libm call. */
VM_AVX512 __attribute__((noinline, cold)) static void vm_sincos_slow16(const float *x, float *s,
                                                                       float *c, __mmask16 m)
{
    float xs[16], ss[16], cs[16];
    __m512 vx = _mm512_maskz_loadu_ps(m, x), sv, cv;
    __mmask16 bad = _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(vx), _mm512_set1_ps(LA_VSINCOS_RANGE),
                                            _CMP_NLE_UQ);
    vm_sincos16(vx, &sv, &cv);
    /* Work on copies: s or c may alias x. */
    _mm512_storeu_ps(xs, vx);
    _mm512_storeu_ps(ss, sv);
    _mm512_storeu_ps(cs, cv);
    for (unsigned j = 0; j < 16; j++) {
        if (bad & (1u << j)) {
            ss[j] = sinf(xs[j]);
            cs[j] = cosf(xs[j]);
        }
    }
    _mm512_mask_storeu_ps(s, m, _mm512_loadu_ps(ss));
    _mm512_mask_storeu_ps(c, m, _mm512_loadu_ps(cs));
}

VM_AVX512 static inline __mmask16 vm_sincos_bad16(__mmask16 m, __m512 vx)
{
    return _mm512_mask_cmp_ps_mask(m, _mm512_abs_ps(vx), _mm512_set1_ps(LA_VSINCOS_RANGE),
                                   _CMP_NLE_UQ);
}

VM_AVX512 static void vm_vsincosf_avx512(const float *x, float *s, float *c, size_t n)
{
    size_t i = 0;
    __m512 sv, cv;
    /* Full blocks use plain loads and stores: masked stores are slow on some cores (Zen 4).
     * The range check only decides whether to store; the rare out-of-range block is redone
     * out of line (x is unchanged until the stores, even in place). */
    for (; i + 16 <= n; i += 16) {
        __m512 vx = _mm512_loadu_ps(x + i);
        vm_sincos16(vx, &sv, &cv);
        if (__builtin_expect(vm_sincos_bad16((__mmask16)0xFFFFu, vx) != 0, 0)) {
            vm_sincos_slow16(x + i, s + i, c + i, (__mmask16)0xFFFFu);
        } else {
            _mm512_storeu_ps(s + i, sv);
            _mm512_storeu_ps(c + i, cv);
        }
    }
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        __m512 vx = _mm512_maskz_loadu_ps(m, x + i);
        vm_sincos16(vx, &sv, &cv);
        if (vm_sincos_bad16(m, vx)) {
            vm_sincos_slow16(x + i, s + i, c + i, m);
        } else {
            _mm512_mask_storeu_ps(s + i, m, sv);
            _mm512_mask_storeu_ps(c + i, m, cv);
        }
    }
}

/* ---- AVX2+FMA path ------------------------------------------------------------------------ */

#define VM_AVX2 __attribute__((target("avx2,fma")))

/* Lane mask for the first k (< 8) lanes of a tail. */
VM_AVX2 static inline __m256i vm_tailmask8(size_t k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

VM_AVX2 static inline __m256 vm_exp8(__m256 x)
{
    x = _mm256_max_ps(_mm256_set1_ps(VM_EXP_LO), x);
    x = _mm256_min_ps(_mm256_set1_ps(VM_EXP_HI), x);
    __m256 sh = _mm256_set1_ps(VM_SHIFTER);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(VM_LOG2E), sh);
    __m256 n = _mm256_sub_ps(t, sh);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-VM_LN2_1), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-VM_LN2_2), r);
    __m256 q = _mm256_fmadd_ps(_mm256_set1_ps(VM_E6), r, _mm256_set1_ps(VM_E5));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(VM_E4));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(VM_E3));
    q = _mm256_fmadd_ps(q, r, _mm256_set1_ps(VM_E2));
    __m256 p = _mm256_add_ps(_mm256_fmadd_ps(q, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    /* 2^n as 2^⌊n/2⌋ · 2^(n−⌊n/2⌋), both normal for n in [-150, 128]. */
    __m256i ni = _mm256_sub_epi32(_mm256_castps_si256(t), _mm256_set1_epi32(VM_SHIFTER_BITS));
    __m256i n1 = _mm256_srai_epi32(ni, 1);
    __m256i n2 = _mm256_sub_epi32(ni, n1);
    __m256i bias = _mm256_set1_epi32(127);
    __m256 e1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 e2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(p, e1), e2);
}

VM_AVX2 static void vm_vexpf_avx2(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, vm_exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i m = vm_tailmask8(n - i);
        _mm256_maskstore_ps(y + i, m, vm_exp8(_mm256_maskload_ps(x + i, m)));
    }
}

VM_AVX2 static void vm_vexpf_affine_avx2(const float *x, float *y, size_t n, float sub,
                                         float add, float scale)
{
    const __m256 vs = _mm256_set1_ps(sub), va = _mm256_set1_ps(add), vc = _mm256_set1_ps(scale);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 a = _mm256_add_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vs), va);
        _mm256_storeu_ps(y + i, _mm256_mul_ps(vm_exp8(a), vc));
    }
    if (i < n) {
        __m256i m = vm_tailmask8(n - i);
        const __m256 a = _mm256_add_ps(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), vs), va);
        _mm256_maskstore_ps(y + i, m, _mm256_mul_ps(vm_exp8(a), vc));
    }
}

VM_AVX2 static void vm_vexpf_pair_avx2(const float *x, float *yp, float *ym, size_t n, float sub,
                                       float add, float scale)
{
    const __m256 vs = _mm256_set1_ps(sub), va = _mm256_set1_ps(add), vc = _mm256_set1_ps(scale);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 u = _mm256_loadu_ps(x + i);
        const __m256 a = _mm256_add_ps(_mm256_sub_ps(u, vs), va);
        const __m256 b = _mm256_add_ps(_mm256_sub_ps(_mm256_xor_ps(u, sign), vs), va);
        _mm256_storeu_ps(yp + i, _mm256_mul_ps(vm_exp8(a), vc));
        _mm256_storeu_ps(ym + i, _mm256_mul_ps(vm_exp8(b), vc));
    }
    if (i < n) {
        __m256i m = vm_tailmask8(n - i);
        const __m256 u = _mm256_maskload_ps(x + i, m);
        const __m256 a = _mm256_add_ps(_mm256_sub_ps(u, vs), va);
        const __m256 b = _mm256_add_ps(_mm256_sub_ps(_mm256_xor_ps(u, sign), vs), va);
        _mm256_maskstore_ps(yp + i, m, _mm256_mul_ps(vm_exp8(a), vc));
        _mm256_maskstore_ps(ym + i, m, _mm256_mul_ps(vm_exp8(b), vc));
    }
}

VM_AVX2 static inline void vm_sincos8(__m256 x, __m256 *so, __m256 *co)
{
    __m256 sh = _mm256_set1_ps(VM_SHIFTER);
    __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(VM_TWO_OVER_PI), sh);
    __m256 n = _mm256_sub_ps(t, sh);
    __m256i q = _mm256_castps_si256(t);
    __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-VM_PIO2_1), x);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-VM_PIO2_2), r);
    r = _mm256_fmadd_ps(n, _mm256_set1_ps(-VM_PIO2_3), r);
    __m256 r2 = _mm256_mul_ps(r, r);
    __m256 ps = _mm256_fmadd_ps(_mm256_set1_ps(VM_S7), r2, _mm256_set1_ps(VM_S5));
    ps = _mm256_fmadd_ps(ps, r2, _mm256_set1_ps(VM_S3));
    __m256 s = _mm256_fmadd_ps(ps, _mm256_mul_ps(r2, r), r);
    s = _mm256_or_ps(s, _mm256_and_ps(r, _mm256_set1_ps(-0.0f))); /* sin(−0) = −0 */
    __m256 pc = _mm256_fmadd_ps(_mm256_set1_ps(VM_C8), r2, _mm256_set1_ps(VM_C6));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(VM_C4));
    pc = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(-0.5f));
    __m256 c = _mm256_fmadd_ps(pc, r2, _mm256_set1_ps(1.0f));
    /* odd: all-ones where n is odd (swap sin and cos); signs from bit 1 of n and of n + 1. */
    __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
    __m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, one), one));
    __m256i ssign = _mm256_slli_epi32(_mm256_and_si256(q, two), 30);
    __m256i csign = _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, one), two), 30);
    __m256 sv = _mm256_blendv_ps(s, c, odd);
    __m256 cv = _mm256_blendv_ps(c, s, odd);
    *so = _mm256_xor_ps(sv, _mm256_castsi256_ps(ssign));
    *co = _mm256_xor_ps(cv, _mm256_castsi256_ps(csign));
}

/* Lanes (of the first k) whose argument is out of range, ±Inf or NaN, as a bit mask. */
VM_AVX2 static inline unsigned vm_sincos_bad8(__m256 vx, unsigned lanes_in)
{
    __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), vx);
    __m256 bad = _mm256_cmp_ps(ax, _mm256_set1_ps(LA_VSINCOS_RANGE), _CMP_NLE_UQ);
    return (unsigned)_mm256_movemask_ps(bad) & lanes_in;
}

/* A block of k <= 8 elements holding arguments out of range: the vector results, with those
 * lanes redone by libm.  Out of line, like vm_sincos_slow16. */
VM_AVX2 __attribute__((noinline, cold)) static void vm_sincos_slow8(const float *x, float *s,
                                                                    float *c, size_t k)
{
    float xs[8] = {0}, ss[8], cs[8];
    memcpy(xs, x, k * sizeof *xs);
    __m256 vx = _mm256_loadu_ps(xs), sv, cv;
    unsigned bad = vm_sincos_bad8(vx, (1u << k) - 1u);
    vm_sincos8(vx, &sv, &cv);
    _mm256_storeu_ps(ss, sv);
    _mm256_storeu_ps(cs, cv);
    for (unsigned j = 0; j < 8; j++) {
        if (bad & (1u << j)) {
            ss[j] = sinf(xs[j]);
            cs[j] = cosf(xs[j]);
        }
    }
    memcpy(s, ss, k * sizeof *ss);
    memcpy(c, cs, k * sizeof *cs);
}

VM_AVX2 static void vm_vsincosf_avx2(const float *x, float *s, float *c, size_t n)
{
    size_t i = 0;
    __m256 sv, cv;
    for (; i + 8 <= n; i += 8) {
        __m256 vx = _mm256_loadu_ps(x + i);
        vm_sincos8(vx, &sv, &cv);
        if (__builtin_expect(vm_sincos_bad8(vx, 0xFFu) != 0, 0)) {
            vm_sincos_slow8(x + i, s + i, c + i, 8);
        } else {
            _mm256_storeu_ps(s + i, sv);
            _mm256_storeu_ps(c + i, cv);
        }
    }
    if (i < n) {
        __m256i m = vm_tailmask8(n - i);
        __m256 vx = _mm256_maskload_ps(x + i, m);
        vm_sincos8(vx, &sv, &cv);
        if (vm_sincos_bad8(vx, (1u << (n - i)) - 1u)) {
            vm_sincos_slow8(x + i, s + i, c + i, n - i);
        } else {
            _mm256_maskstore_ps(s + i, m, sv);
            _mm256_maskstore_ps(c + i, m, cv);
        }
    }
}
#endif /* LA_VMATH_X86 */

/* ---- dispatch ----------------------------------------------------------------------------- */

/* Best first: the resolver takes the first one the CPU supports. */
static const struct la_vmath_impl vm_impls[] = {
#if LA_VMATH_X86
    {"avx512", vm_vexpf_avx512, vm_vsincosf_avx512, vm_vexpf_affine_avx512,
     vm_vexpf_pair_avx512},
    {"avx2", vm_vexpf_avx2, vm_vsincosf_avx2, vm_vexpf_affine_avx2, vm_vexpf_pair_avx2},
#endif
    {"scalar", vm_vexpf_scalar, vm_vsincosf_scalar, vm_vexpf_affine_scalar,
     vm_vexpf_pair_scalar},
};
#define VM_NIMPL (sizeof vm_impls / sizeof vm_impls[0])

static int vm_cpu_runs(const struct la_vmath_impl *impl)
{
#if LA_VMATH_X86
    /* libgcc's checks include the OS enabling the wide registers (XCR0). */
    __builtin_cpu_init();
    if (strcmp(impl->name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq");
    if (strcmp(impl->name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(impl->name, "scalar") == 0;
}

const struct la_vmath_impl *la_vmath_get(const char *isa)
{
    if (!isa)
        return NULL;
    for (size_t i = 0; i < VM_NIMPL; i++)
        if (strcasecmp(vm_impls[i].name, isa) == 0)
            return vm_cpu_runs(&vm_impls[i]) ? &vm_impls[i] : NULL;
    return NULL;
}

int la_vmath_env_check(char *msg, size_t cap)
{
    const char *v = getenv("LINATTN_VMATH");
    if (!v || !*v || la_vmath_get(v))
        return 0;
    char all[64] = "", here[64] = "";
    const char *known = NULL;
    for (size_t i = 0; i < VM_NIMPL; i++) {
        size_t n = strlen(all);
        snprintf(all + n, sizeof all - n, "%s%s", n ? ", " : "", vm_impls[i].name);
        if (strcasecmp(vm_impls[i].name, v) == 0)
            known = vm_impls[i].name;
        if (vm_cpu_runs(&vm_impls[i])) {
            n = strlen(here);
            snprintf(here + n, sizeof here - n, "%s%s", n ? ", " : "", vm_impls[i].name);
        }
    }
    if (!known)
        snprintf(msg, cap, "LINATTN_VMATH='%s' is not a vmath path; valid: %s (any case; this "
                           "CPU runs %s)", v, all, here);
    else
        snprintf(msg, cap, "LINATTN_VMATH='%s': this CPU cannot run %s; valid here: %s", v,
                 known, here);
    return -1;
}

static const struct la_vmath_impl *vm_resolve(void)
{
    const struct la_vmath_impl *impl = la_vmath_get(getenv("LINATTN_VMATH"));
    if (impl)
        return impl;
    for (size_t i = 0; i < VM_NIMPL; i++)
        if (vm_cpu_runs(&vm_impls[i]))
            return &vm_impls[i];
    return &vm_impls[VM_NIMPL - 1];
}

/* Resolved on first use and cached.  Threads racing on the first call all compute the same
 * answer (it depends only on the CPU and the environment), so a plain atomic store suffices. */
static const struct la_vmath_impl *vm_selected(void)
{
    static _Atomic(const struct la_vmath_impl *) chosen;
    const struct la_vmath_impl *impl = atomic_load_explicit(&chosen, memory_order_acquire);
    if (!impl) {
        impl = vm_resolve();
        atomic_store_explicit(&chosen, impl, memory_order_release);
    }
    return impl;
}

void la_vexpf(const float *x, float *y, size_t n)
{
    if (n)
        vm_selected()->vexpf(x, y, n);
}

void la_vexpf_affine(const float *x, float *y, size_t n, float sub, float add, float scale)
{
    if (n)
        vm_selected()->vexpf_affine(x, y, n, sub, add, scale);
}

void la_vexpf_pair(const float *x, float *yp, float *ym, size_t n, float sub, float add,
                   float scale)
{
    if (n)
        vm_selected()->vexpf_pair(x, yp, ym, n, sub, add, scale);
}

void la_vsincosf(const float *x, float *s, float *c, size_t n)
{
    if (n)
        vm_selected()->vsincosf(x, s, c, n);
}

const char *la_vmath_isa(void)
{
    return vm_selected()->name;
}
