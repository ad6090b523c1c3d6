/* registry.c (kernels) — the table of attention kernels, lookup by name, nominal flop counts,
 * attn_run_heads (batch × heads with OpenMP), and the public view of the code-path choice
 * (la_env_check, la_simd_path).  Names in the table are the strings written to results files
 * and shown by `linattn list`.
 */
#include "attention.h"
#include "kernel_impl.h"
#include "simd.h"
#include "vmath.h"

#include <omp.h>
#include <string.h>

/* The default causal linear kernel: the faster of the two causal algorithms, as measured by
 * `linattn bench --suite` on the development machine (Zen 5, AVX-512 path, 1 thread, d = m =
 * dv = 64, T = 16384): recurrent ~98 GFLOP/s, chunked ~58 GFLOP/s (SGEMM ~105).  The recurrent
 * form does exactly the nominal flops with the state in L1; the chunked form adds the
 * intra-chunk products.  The chunked form stays available by name. */
static void linear_causal_default(struct attn_args *a)
{
    attn_linear_causal_recurrent(a);
}
static size_t linear_causal_default_ws(int T, int dk, int dv, int causal, int chunk, int threads)
{
    return attn_linear_causal_recurrent_ws(T, dk, dv, causal, chunk, threads);
}

const struct attn_kernel attn_kernels[] = {
    {"softmax_flash", "softmax attention, fp32, tiled online softmax, fused exp (no T×T buffer)",
     ATTN_SOFTMAX, ATTN_NONCAUSAL_OK | ATTN_CAUSAL_OK, attn_softmax_flash_ws, attn_softmax_flash},
    {"linear_noncausal", "linear attention, fp32, φ(K)ᵀV first, then φ(Q)·S (SIMD GEMM tiles)",
     ATTN_LINEAR, ATTN_NONCAUSAL_OK, attn_linear_noncausal_ws, attn_linear_noncausal},
    {"linear_causal", "causal linear attention, fp32: the default algorithm (recurrent)",
     ATTN_LINEAR, ATTN_CAUSAL_OK, linear_causal_default_ws, linear_causal_default},
    {"linear_causal_recurrent",
     "causal linear attention, fp32, per-token state update and query in one pass (SIMD)",
     ATTN_LINEAR, ATTN_CAUSAL_OK, attn_linear_causal_recurrent_ws, attn_linear_causal_recurrent},
    {"linear_causal_chunked",
     "causal linear attention, fp32, chunks: triangular intra-chunk + state GEMMs (SIMD)",
     ATTN_LINEAR, ATTN_CAUSAL_OK, attn_linear_causal_chunked_ws, attn_linear_causal_chunked},
    {NULL, NULL, 0, 0, NULL, NULL},
};

int attn_kernel_uses_chunk(const struct attn_kernel *kn)
{
    return kn && (kn->run == attn_linear_causal_chunked ||
                  (kn->run == linear_causal_default &&
                   linear_causal_default_ws == attn_linear_causal_chunked_ws));
}

size_t attn_kernel_count(void)
{
    size_t n = 0;
    while (attn_kernels[n].name)
        n++;
    return n;
}

const struct attn_kernel *attn_kernel_lookup(const char *name)
{
    for (size_t i = 0; name && attn_kernels[i].name; i++)
        if (!strcmp(attn_kernels[i].name, name))
            return &attn_kernels[i];
    return NULL;
}

const char *const *attn_kernel_names(void)
{
    static const char *names[32];
    size_t n = attn_kernel_count();
    for (size_t i = 0; i < n && i < 31; i++)
        names[i] = attn_kernels[i].name;
    names[n < 31 ? n : 31] = NULL;
    return names;
}

size_t attn_workspace_floats(const struct attn_kernel *kn, int T, int dk, int dv, int causal,
                             int chunk, int threads)
{
    return kn->workspace(T, dk, dv, causal, chunk, threads) + LA_WS_SLACK;
}

double attn_nominal_flops(const struct attn_kernel *kn, int T, int dk, int dv, int causal)
{
    const double t = T, k = dk, v = dv;
    if (kn->family == ATTN_SOFTMAX)
        return (causal ? 2.0 : 4.0) * t * t * (k + v) / 2.0;
    return 4.0 * t * k * v + 4.0 * t * k;
}

/* Runs head h of proto's batch on `threads` threads with workspace work; its n_small_den. */
static long run_head(const struct attn_kernel *kn, const struct attn_args *proto, int h,
                     int threads, float *work)
{
    const size_t qstride = (size_t)proto->T * proto->dk, vstride = (size_t)proto->T * proto->dv;
    struct attn_args a = *proto;
    a.q += h * qstride;
    a.k += h * qstride;
    a.v += h * vstride;
    a.y += h * vstride;
    if (a.eps_row)
        a.eps_row += (size_t)h * proto->T;
    a.threads = threads;
    a.work = work;
    kn->run(&a);
    return a.n_small_den;
}

long attn_run_heads(const struct attn_kernel *kn, const struct attn_args *proto, int H,
                    int nthreads, float *work, size_t ws)
{
    long small = 0;
    if (nthreads < 1)
        nthreads = 1;
    if (H < nthreads || nthreads == 1) {
        /* Fewer heads than threads: heads one after another, every thread inside each. */
        for (int h = 0; h < H; h++)
            small += run_head(kn, proto, h, nthreads, work);
        return small;
    }
    const int nth = nthreads < H ? nthreads : H;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1) reduction(+ : small)
    for (int h = 0; h < H; h++)
        small += run_head(kn, proto, h, 1, work + ws * (size_t)omp_get_thread_num());
    return small;
}

int la_env_check(char *msg, size_t cap)
{
    return la_simd_env_check(msg, cap) || la_vmath_env_check(msg, cap) ? -1 : 0;
}

const char *la_simd_path(void) { return la_simd_name(la_simd_isa()); }
