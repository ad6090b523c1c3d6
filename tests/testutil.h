/* testutil.h — small helpers shared by the cmocka test files: cmocka includes, seeded
 * high-entropy inputs, relative errors, running the linattn binary and capturing its output.
 * Header-only (static functions) so each test file stays one translation unit.
 */
#ifndef LA_TESTUTIL_H
#define LA_TESTUTIL_H

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

/* A small deterministic generator (splitmix64) so tests do not depend on GSL's stream. */
static inline uint64_t tu_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [-scale, scale): high-entropy values, never round numbers. */
static inline void tu_fill(float *x, size_t n, float scale, uint64_t seed)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i++)
        x[i] = scale * (float)((double)(tu_next(&s) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

static inline void tu_to_double(const float *x, double *y, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
}

/* ‖a − b‖_F / max(‖b‖_F, tiny), a in float, b in double. */
static inline double tu_rel_err(const float *a, const double *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        num += e * e;
        den += b[i] * b[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1.0);
}

static inline int tu_all_finite(const float *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return 0;
    return 1;
}

/* The linattn binary under test ($LINATTN_BIN, default ./linattn). */
static inline const char *tu_bin(void)
{
    const char *b = getenv("LINATTN_BIN");
    return b && *b ? b : "./linattn";
}

/* Runs `linattn ARGS` through the shell, stdout+stderr into out (cap bytes); returns the exit
 * status (or -1 if it did not exit normally, e.g. crashed). */
static inline int tu_run(char *out, size_t cap, const char *fmt, ...)
{
    char args[2048], cmd[2304];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", tu_bin(), args);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t used = 0;
    if (cap)
        out[0] = '\0';
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, p)) > 0) {
        if (cap && used + 1 < cap) {
            size_t take = got < cap - 1 - used ? got : cap - 1 - used;
            memcpy(out + used, buf, take);
            used += take;
            out[used] = '\0';
        }
    }
    int st = pclose(p);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    return WEXITSTATUS(st);
}

#endif
