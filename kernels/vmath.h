/* vmath.h — vectorised elementwise exp, sin and cos over fp32 arrays, for feature maps.
 *
 * Each function evaluates y[i] = f(x[i]) for i < n.  Arrays need no alignment; x and y may be
 * the same array (in place).  The accuracy bound over the stated input range is documented and
 * tested against libm (double) in tests/test_vmath.c:
 *   la_vexpf:    |x| <= 88: relative error <= LA_VEXPF_ULP ulp; x < -88 gives 0 or a
 *                subnormal, x > 88.7 gives +Inf; NaN propagates.
 *   la_vsincosf: |x| <= LA_VSINCOS_RANGE: absolute error <= LA_VSINCOS_ABS.
 * The implementation is chosen once at run time (AVX-512, AVX2+FMA, or portable C);
 * la_vmath_isa() names it.  No -ffast-math: the code is written to be exact under IEEE rules.
 */
#ifndef LA_VMATH_H
#define LA_VMATH_H

#include <stddef.h>

#define LA_VEXPF_ULP 4.0
#define LA_VSINCOS_RANGE 1.0e4f
#define LA_VSINCOS_ABS 4.0e-7

void la_vexpf(const float *x, float *y, size_t n);
void la_vsincosf(const float *x, float *s, float *c, size_t n);
/* Name of the implementation selected on this CPU: "avx512", "avx2" or "scalar". */
const char *la_vmath_isa(void);

#endif
