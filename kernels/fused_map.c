/* fused_map.c — the elementwise feature maps the linear kernels can apply themselves
 * (attention.h, enum attn_fused_map): attn_map_rows, their one definition, called by the fused
 * kernels (kernels/linear.c) on blocks of rows in their workspace and by the feature maps
 * featuremaps/elu1.c and relu.c on whole sequences, so both give the same floats.
 * elu1 is one vector pass with the SIMD path's exp (simd.h la_elu1_rows: max(x, 0) +
 * e^{min(x, 0)}, within 1.07 ulp of the exact value on AVX-512, 1.26 on AVX2; below x = -87
 * about 1e-38 instead of less); relu is max(x, 0) + eps, which the compiler vectorises.
 * Touches nothing but its arguments.  Tests: tests/test_kernels.c (fused against unfused,
 * bit for bit) and tests/test_featuremaps.c (the maps' definitions).
 */
#include "attention.h"
#include "simd.h"

#include <string.h>

/* max(x, 0) + eps; a NaN propagates. */
static void map_relu(const float *x, float *phi, size_t n, float eps)
{
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        phi[i] = (v < 0.0f ? 0.0f : v) + eps;
    }
}

void attn_map_rows(int map, float map_eps, const float *x, float *phi, size_t n)
{
    switch (map) {
    case ATTN_MAP_ELU1:
        la_elu1_rows(la_simd_isa(), x, phi, (ptrdiff_t)n);
        return;
    case ATTN_MAP_RELU:
        map_relu(x, phi, n, map_eps);
        return;
    default:
        if (phi != x && n)
            memmove(phi, x, n * sizeof *phi);
        return;
    }
}

const char *attn_fused_map_name(int map)
{
    switch (map) {
    case ATTN_MAP_ELU1:
        return "elu1";
    case ATTN_MAP_RELU:
        return "relu";
    default:
        return "none";
    }
}
