/* softmax_flash.c — fast fp32 softmax attention that never forms the T×T matrix.
 *   Q, K: (T, d); V, Y: (T, dv), row-major.  Scale 1/√d.
 * Tiled online softmax (flash-attention style): for a tile of BR query rows, walk key tiles
 * of BC keys; S = scale·Q_t K_tᵀ through CBLAS; per row keep the running max m and sum l;
 * P = exp(S − m_new) (vectorised exp over the tile); O ← O·exp(m_old − m_new) + P V_t (CBLAS);
 * finally O /= l.  Causal skips key tiles that start after the query tile's last row and masks
 * the diagonal tile with −∞, so it does about half the work.  Memory: O(BR·BC + BR·dv) per
 * thread besides the inputs.  Threads (a->threads > 1) split the query tiles.
 * Tests: tests/test_kernels.c against softmax_ref.c, including scores of ±1000.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "vmath.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#define BR 64  /* query rows per tile */
#define BC 256 /* keys per tile */

static size_t per_thread_floats(void)
{
    return la_pad16((size_t)BR * BC) + 2 * la_pad16(BR);
}

size_t attn_softmax_flash_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    return per_thread_floats() * (size_t)(threads > 1 ? threads : 1);
}

/* One query tile [i0, i0+rows): accumulates into Y's rows directly. */
static void query_tile(const struct attn_args *a, int i0, int rows, float *work)
{
    const int T = a->T, d = a->dk, dv = a->dv;
    const float scale = 1.0f / sqrtf((float)d);
    float *S = work;
    float *mrow = S + la_pad16((size_t)BR * BC);
    float *lrow = mrow + la_pad16(BR);
    float *O = a->y + (size_t)i0 * dv;
    const float *Qt = a->q + (size_t)i0 * d;

    for (int r = 0; r < rows; r++) {
        mrow[r] = -INFINITY;
        lrow[r] = 0.0f;
    }
    memset(O, 0, (size_t)rows * dv * sizeof *O);
    const int jend = a->causal ? i0 + rows : T; /* keys this tile can see */

    for (int j0 = 0; j0 < jend; j0 += BC) {
        const int cols = jend - j0 < BC ? jend - j0 : BC;
        /* Scores: S = scale · Q_t K_tᵀ  (rows × cols). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, d, scale, Qt, d,
                    a->k + (size_t)j0 * d, d, 0.0f, S, cols);
        /* Causal mask on the tile that crosses the diagonal: key j > query i is −∞. */
        if (a->causal && j0 + cols - 1 > i0)
            for (int r = 0; r < rows; r++)
                for (int c = i0 + r - j0 + 1; c < cols; c++)
                    if (c >= 0)
                        S[(size_t)r * cols + c] = -INFINITY;
        /* Online softmax: new row max, rescale what was accumulated, exponentiate the tile. */
        for (int r = 0; r < rows; r++) {
            float *s = S + (size_t)r * cols;
            float mx = mrow[r];
            for (int c = 0; c < cols; c++)
                mx = s[c] > mx ? s[c] : mx;
            /* mx is finite: every processed row sees key 0 in the first tile. */
            const float alpha = expf(mrow[r] - mx); /* exp(−∞) = 0 on the first tile */
            mrow[r] = mx;
            for (int c = 0; c < cols; c++)
                s[c] -= mx;
            lrow[r] *= alpha;
            if (alpha != 1.0f) {
                float *o = O + (size_t)r * dv;
                for (int c = 0; c < dv; c++)
                    o[c] *= alpha;
            }
        }
        la_vexpf(S, S, (size_t)rows * cols);
        for (int r = 0; r < rows; r++) {
            const float *s = S + (size_t)r * cols;
            float sum = 0.0f;
            for (int c = 0; c < cols; c++)
                sum += s[c];
            lrow[r] += sum;
        }
        /* O += P V_t  (rows × cols)(cols × dv). */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, dv, cols, 1.0f, S, cols,
                    a->v + (size_t)j0 * dv, dv, 1.0f, O, dv);
    }
    for (int r = 0; r < rows; r++) {
        const float inv = 1.0f / lrow[r];
        float *o = O + (size_t)r * dv;
        for (int c = 0; c < dv; c++)
            o[c] *= inv;
    }
}

void attn_softmax_flash(struct attn_args *a)
{
    const int ntiles = (a->T + BR - 1) / BR;
    const int nth = a->threads > 1 ? a->threads : 1;
    if (nth == 1) {
        for (int t = 0; t < ntiles; t++) {
            const int i0 = t * BR;
            query_tile(a, i0, a->T - i0 < BR ? a->T - i0 : BR, a->work);
        }
    } else {
        /* Dynamic schedule: causal tiles grow with i, so static halves would be unbalanced. */
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1)
        for (int t = 0; t < ntiles; t++) {
            const int i0 = t * BR;
            float *w = a->work + per_thread_floats() * (size_t)omp_get_thread_num();
            query_tile(a, i0, a->T - i0 < BR ? a->T - i0 : BR, w);
        }
    }
    a->n_small_den = 0;
}
