/* kv_cache.c — growing the carried states of prefill and step kernels (attn_kv_reserve,
 * attention.h): a buffer of B sequences' states, each with room for `cap` tokens, reallocated to
 * at least twice the capacity when an append would not fit, the sequences moved to their new
 * offsets.  It allocates, so it is never called inside a kernel or a timed region.
 * Tests: tests/test_kernels.c (a cache grown token by token gives the outputs of one allocated
 * once).
 */
#include "attention.h"

#include <stdlib.h>
#include <string.h>

int attn_kv_reserve(const struct attn_kernel *kn, float **buf, int *cap, int need, int B, int dk,
                    int dv)
{
    if (need <= *cap)
        return 0;
    long grown = 2L * *cap;
    if (grown < need)
        grown = need;
    if (grown < ATTN_KV_BLOCK)
        grown = ATTN_KV_BLOCK;
    if (grown > 0x7fffffffL)
        return -1;
    const int ncap = (int)grown;
    const size_t olds = attn_state_floats(kn, *cap, dk, dv),
                 news = attn_state_floats(kn, ncap, dk, dv);
    const size_t nb = B > 0 ? (size_t)B : 1;
    if (news > (size_t)-1 / sizeof(float) / nb)
        return -1;
    float *p = realloc(*buf, nb * news * sizeof *p);
    if (!p)
        return -1;
    /* Sequence b moves from b·olds to b·news (>= it): last first, so nothing is overwritten
     * before it is moved; sequence 0 stays where realloc put it. */
    if (news != olds)
        for (size_t b = nb; b-- > 1;)
            memmove(p + b * news, p + b * olds, olds * sizeof *p);
    *buf = p;
    *cap = ncap;
    return 0;
}
