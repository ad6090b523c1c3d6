/* softmax_flash.c — fast fp32 softmax attention that never forms the T×T matrix.
 *   Q, K: (T, d); V, Y: (T, dv), row-major.  Scale 1/√d.
 * Tiled online softmax (flash-attention style), with register-blocked vector code from simd.h
 * instead of BLAS calls (the blocks are too small for BLAS to reach its rate, and the fused
 * pass needs the scores of a few rows at a time in L1):
 *   - Kᵀ is packed once into panels of nr keys (simd.h's la_pack_t), so every score tile is a
 *     GEMM with contiguous B rows; this is the O(T·d) workspace.
 *   - Query rows go in blocks of BR; key tiles of BC keys are the outer loop of a block, so the
 *     tile's K panels and V rows stay in L2 while the block's register blocks (mr rows) pass.
 *   - Per register block: S = scale·Q Kᵀ (mr × BC), then per row one pass for the max and one
 *     fused pass exp(S − m) + sum (inline vector exp); the output row is rescaled only when the
 *     row max grew; then O += P V.  Finally O /= l.
 *   - Causal: key tiles after a block's last row are skipped and, per register block, only keys
 *     up to its last row are computed; masked entries are never exponentiated.
 * Memory: O(T·d) (packed K) + O(mr·BC + BR1) per thread besides the inputs.  Threads
 * (a->threads > 1) split the packing, then the query blocks (dynamic: causal blocks differ).
 * BR and BC: on a Zen 5 host (AVX-512 path, d = 64, T = 8192) every BR in {48, 96, 192, 384} ×
 * BC in {128, 256, 512, 1024} ran within 3% of ~100 GFLOP/s (the GEMM tiles run near the
 * core's FMA limit and the fused exp pass is ~10% of the time).  On a Zen 4 host (2026-12-05,
 * one thread, % of the run's fp32 peak) BR in {48, 96, 192} made no difference, and BC did on
 * short causal rows: causal T = 1024 82.1-82.4% at BC = 128, 83.6-83.7% at 256, 84.1-84.7% at
 * 512 (768 and 1024: the same as 512); T = 8192 86.5 / 87.0-87.3 / 87.4-87.6%.  Fewer, longer
 * tiles mean fewer per-row max and rescale passes.  96 × 512 keeps a tile's K panels and V rows
 * (256 KiB at d = dv = 64) in L2 and a register block's scores (6 × 512 floats) in L1.
 * One thread takes blocks of BR1 = 4·BR rows: each block reads all of K and V (from L3 or
 * memory once they outgrow L2), so longer blocks read them a quarter as often.  Same Zen 4 host
 * (2026-12-06, a driver alternating BR = 96 and 384, medians of 5 calls, when a neighbour
 * loaded the shared L3: the suite's non-causal T = 16384 row had fallen to 76.9% of the peak
 * from 86.6% at T = 4096): T = 16384, d = 64, non-causal 1.03-1.10x faster over five runs,
 * causal 0.99-1.04x over four; d = 32 1.03x and 1.05x causal, d = 128 1.07x both; T <= 4096
 * within 2.5% either way.  Threads keep BR: their dynamic schedule needs many blocks to finish
 * together.  A row's output does not depend on its block (tests/test_backward.c compares the
 * backward's forward pass, in blocks of BR, with this kernel bit for bit).
 * Tests: tests/test_kernels.c against softmax_ref.c on every vector path, including scores of
 * ±1000.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define BR ATTN_SOFTMAX_BR /* query rows per block (kernel_impl.h) */
#define BC ATTN_SOFTMAX_BC /* keys per tile */
#define BR1 (4 * BR)       /* query rows per block with one thread */

static size_t per_thread_floats(void)
{
    return la_pad16((size_t)LA_SIMD_MR_MAX * BC) + la_pad16(2 * (size_t)BR1);
}

static size_t packed_floats(int T, int d)
{
    return la_pad16(((size_t)T + LA_SIMD_NR_MAX - 1) / LA_SIMD_NR_MAX * LA_SIMD_NR_MAX * d);
}

size_t attn_softmax_flash_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    return packed_floats(T, dk) + per_thread_floats() * (size_t)(threads > 1 ? threads : 1);
}

void attn_softmax_flash(struct attn_args *a)
{
    const int T = a->T, d = a->dk, isa = la_simd_isa(), nr = la_simd_nr(isa);
    const int nth = a->threads > 1 ? a->threads : 1;
    const int nblocks = (T + BR - 1) / BR, npan = (T + nr - 1) / nr;
    const float scale = 1.0f / sqrtf((float)d);
    float *Kp = la_align_work(a->work), *priv = Kp + packed_floats(T, d);
    if (nth == 1) {
        la_pack_t(a->k, d, 0, T, d, nr, Kp);
        for (int i0 = 0; i0 < T; i0 += BR1) {
            const int rows = T - i0 < BR1 ? T - i0 : BR1;
            la_softmax_rows(isa, a->q, Kp, a->v, a->y, T, d, a->dv, a->causal, scale, i0, rows, BC,
                            priv, priv + la_pad16((size_t)LA_SIMD_MR_MAX * BC));
        }
    } else {
#pragma omp parallel num_threads(nth)
        {
            float *w = priv + per_thread_floats() * (size_t)omp_get_thread_num();
#pragma omp for schedule(static)
            for (int p = 0; p < npan; p++) {
                const int n = T - p * nr < nr ? T - p * nr : nr;
                la_pack_t(a->k, d, p * nr, n, d, nr, Kp + (size_t)p * d * nr);
            }
            /* The implicit barrier above: every panel is packed before any block reads it.
             * Dynamic schedule: causal blocks grow with i, so static halves would be unequal. */
#pragma omp for schedule(dynamic, 1)
            for (int bi = 0; bi < nblocks; bi++) {
                /* Causal: the longest blocks (last rows) first, so the tail of the loop is short
                 * blocks and the threads finish together. */
                const int b = a->causal ? nblocks - 1 - bi : bi;
                const int i0 = b * BR, rows = T - i0 < BR ? T - i0 : BR;
                la_softmax_rows(isa, a->q, Kp, a->v, a->y, T, d, a->dv, a->causal, scale, i0, rows,
                                BC, w, w + la_pad16((size_t)LA_SIMD_MR_MAX * BC));
            }
        }
    }
    a->n_small_den = 0;
}
