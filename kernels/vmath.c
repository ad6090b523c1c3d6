/* vmath.c — PLACEHOLDER scalar implementation of vmath.h (libm per element).
 * To be replaced by the vectorised implementation with run-time dispatch.
 */
#include "vmath.h"

#include <math.h>

void la_vexpf(const float *x, float *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = expf(x[i]);
}

void la_vsincosf(const float *x, float *s, float *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        s[i] = sinf(v);
        c[i] = cosf(v);
    }
}

const char *la_vmath_isa(void) { return "scalar"; }
