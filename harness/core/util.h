/* util.h — small pure helpers shared across linattn: the splitmix64 mixer, FNV-1a hashing, a
 * truncating string copy and the qsort comparison for doubles.
 *
 * Not a place for anything with state, I/O or error reporting (status.h holds the error and
 * "did you mean" helpers).  Header-safe for kernels/ and featuremaps/.  Tested through their
 * users: the cell seeds (tests/test_experiment.c), the results journal checksums
 * (tests/test_results.c) and the medians (tests/test_crossover.c, tests/test_runner.c).
 */
#ifndef LA_CORE_UTIL_H
#define LA_CORE_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* splitmix64's output function on x + 0x9E3779B97F4A7C15: a 64-bit mix with full avalanche. */
uint64_t la_splitmix64(uint64_t x);

/* The splitmix64 generator: returns the next value of the stream whose state is *s (and steps
 * the state).  la_splitmix64_next(&s) == la_splitmix64(s before the call). */
uint64_t la_splitmix64_next(uint64_t *s);

/* A uniform double in [0, 1) from the top 53 bits of la_splitmix64_next(s). */
double la_splitmix64_unit(uint64_t *s);

/* The FNV-1a offset basis: the h to start a fresh hash with. */
#define LA_FNV1A_SEED 0xcbf29ce484222325ull

/* FNV-1a (64-bit) of n bytes at p, continuing from h (LA_FNV1A_SEED for a fresh hash). */
uint64_t la_fnv1a(const void *p, size_t n, uint64_t h);

/* Copies the NUL-terminated src into dst (cap >= 1 bytes), truncated to cap - 1 bytes; dst is
 * always NUL-terminated. */
void la_copy_text(char *dst, size_t cap, const char *src);

/* qsort comparison for doubles, ascending (NaNs compare equal to everything). */
int la_cmp_double(const void *a, const void *b);

#endif
