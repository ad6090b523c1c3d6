/* util.c — splitmix64, FNV-1a, the truncating copy and the double comparison declared in util.h.
 * Pure functions, no state; tested through their users (see util.h).
 */
#include "util.h"

#include <string.h>

uint64_t la_splitmix64(uint64_t x)
{
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t la_splitmix64_next(uint64_t *s)
{
    const uint64_t z = la_splitmix64(*s);
    *s += 0x9E3779B97F4A7C15ull;
    return z;
}

double la_splitmix64_unit(uint64_t *s)
{
    return (double)(la_splitmix64_next(s) >> 11) * 0x1.0p-53;
}

uint64_t la_fnv1a(const void *p, size_t n, uint64_t h)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

int la_cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void la_copy_text(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}
