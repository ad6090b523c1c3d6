/* vmath.h — vectorised elementwise exp, sin and cos over fp32 arrays, for feature maps.
 *
 * Each function evaluates y[i] = f(x[i]) for i < n.  Arrays need no alignment; x and y may be
 * the same array (in place; for sincos, s or c may be x).  n = 0 reads and writes nothing (the
 * pointers may then be NULL).  Every element's result depends only on its input, never on n or
 * its position in the array.  Accuracy (measured against libm in double, exhaustively over
 * every float of the stated ranges for each path; re-checked on dense sweeps in
 * tests/test_vmath.c):
 *   la_vexpf:    normal results (x in [-87.33, 88.72]): error <= LA_VEXPF_ULP ulp of the exact
 *                result (measured max 1.014).  Subnormal results (x in (-103.98, -87.33)):
 *                absolute error <= LA_VEXPF_SUBNORMAL_ABS, one subnormal step (measured
 *                0.75 step).  x < -103.98 and -Inf give +0; x > 88.7228 and +Inf give +Inf;
 *                NaN gives NaN.  If the caller has set flush-to-zero/denormals-are-zero in
 *                MXCSR, subnormal results become 0.
 *   la_vsincosf: |x| <= LA_VSINCOS_RANGE: absolute error <= LA_VSINCOS_ABS for sin and cos
 *                (measured max 7.2e-8 on FMA hardware, 8.7e-8 for the portable path built
 *                without FMA; sin(±0) = ±0, cos(0) = 1, sin x = x for tiny x).  Beyond that
 *                range, and for ±Inf and NaN, each element falls back to libm sinf/cosf (so
 *                results stay correct, only slower); ±Inf and NaN give NaN.
 * The implementation is chosen once per process at run time: the best this CPU supports of
 * AVX-512F ("avx512", 16 lanes), AVX2+FMA ("avx2", 8 lanes) and portable C ("scalar", the same
 * algorithm element by element).  The environment variable LINATTN_VMATH=avx512|avx2|scalar
 * (any case) forces one (read at the first call).  The linattn command refuses a name that is
 * unknown or that this CPU cannot run at start-up (la_vmath_env_check); the library itself
 * then runs the best one, and la_vmath_isa() says what actually runs.  No -ffast-math: the
 * code relies on IEEE rounding.
 */
#ifndef LA_VMATH_H
#define LA_VMATH_H

#include <stddef.h>

#define LA_VEXPF_ULP 1.02
#define LA_VEXPF_SUBNORMAL_ABS 0x1p-149
#define LA_VSINCOS_RANGE 1.0e4f
#define LA_VSINCOS_ABS 9.0e-8

void la_vexpf(const float *x, float *y, size_t n);
/* y[i] = exp((x[i] − sub) + add) · scale for i < n, with the subtraction, the addition and the
 * product each rounded in fp32 in that order: bit for bit what a loop forming (x[i] − sub) +
 * add, then la_vexpf, then a loop multiplying by scale gives, in one pass over the data (the
 * random feature maps' stabilised exp: sub a row's max, add a key row's offset, scale
 * m^{-1/2}).  In place is allowed. */
void la_vexpf_affine(const float *x, float *y, size_t n, float sub, float add, float scale);
/* The pair of la_vexpf_affine for x and −x: yp[i] = exp((x[i] − sub) + add)·scale and
 * ym[i] = exp((−x[i] − sub) + add)·scale, bit for bit what la_vexpf_affine gives for x and for
 * its negation (hyperbolic random features: both halves of a row from one read of the
 * projection).  yp may be x (in place); ym must overlap neither x nor yp. */
void la_vexpf_pair(const float *x, float *yp, float *ym, size_t n, float sub, float add,
                   float scale);
void la_vsincosf(const float *x, float *s, float *c, size_t n);
/* Name of the implementation selected on this CPU: "avx512", "avx2" or "scalar". */
const char *la_vmath_isa(void);

/* One implementation, for tests and benchmarks that compare paths; its functions have the same
 * contract as la_vexpf, la_vsincosf, la_vexpf_affine and la_vexpf_pair. */
struct la_vmath_impl {
    const char *name; /* "avx512", "avx2" or "scalar" */
    void (*vexpf)(const float *x, float *y, size_t n);
    void (*vsincosf)(const float *x, float *s, float *c, size_t n);
    void (*vexpf_affine)(const float *x, float *y, size_t n, float sub, float add, float scale);
    void (*vexpf_pair)(const float *x, float *yp, float *ym, size_t n, float sub, float add,
                       float scale);
};

/* The implementation called isa (any case), or NULL when the name is unknown or this CPU
 * cannot run it.  "scalar" is always available. */
const struct la_vmath_impl *la_vmath_get(const char *isa);

/* 0 when LINATTN_VMATH is unset, empty, or names an implementation this CPU runs; else -1 and
 * msg gets a one-line reason that lists the valid names (and those this CPU runs). */
int la_vmath_env_check(char *msg, size_t cap);

#endif
