/* kernel_impl.h — internal to kernels/: workspace-size functions of each fast kernel, the flop
 * and byte models table entries share, and small shared helpers.  Not part of the public API
 * (attention.h is).
 */
#ifndef LA_KERNEL_IMPL_H
#define LA_KERNEL_IMPL_H

#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

size_t attn_softmax_flash_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_linear_noncausal_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_linear_causal_recurrent_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_linear_causal_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_linear_decode_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_softmax_prefill_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_softmax_step_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_softmax_flash_backward_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_linear_noncausal_backward_ws(int T, int dk, int dv, int causal, int chunk,
                                         int threads);
size_t attn_linear_causal_backward_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_linear_causal_chunked_backward_ws(int T, int dk, int dv, int causal, int chunk,
                                              int threads);

/* The recurrences' forward and prefill workspace, and their step's (recurrence.c). */
size_t attn_recur_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_recur_step_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_recur_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads);
size_t attn_delta_chunked_ws(int T, int dk, int dv, int causal, int chunk, int threads);

/* Floats of one sequence's linear state: S (dk × dv) and z (dk), whatever T (linear_decode.c). */
size_t attn_linear_state_floats(int T, int dk, int dv);
/* Floats of one sequence's KV cache with room for T tokens (softmax_decode.c; attention.h's
 * layout). */
size_t attn_softmax_cache_floats(int T, int dk, int dv);

/* The flop and byte models entries share (registry.c; attention.h states them): linear
 * attention's nominal flops, and a forward kernel's compulsory traffic. */
double attn_linear_flops(int T, int dk, int dv, int causal);
double attn_forward_bytes(int T, int dk, int dv, int causal);

/* softmax_flash's tiles, which the backward's forward pass repeats so that its output is bit for
 * bit softmax_flash's (the online softmax rescales at tile boundaries): query rows per block (a
 * multiple of every path's mr) and keys per tile (a multiple of every path's nr); the measured
 * choice is in softmax_flash.c. */
#define ATTN_SOFTMAX_BR 96
#define ATTN_SOFTMAX_BC 512

/* Floats between the buffers of two threads that split one head's state by columns (4 KiB, a
 * page: a core's hardware prefetchers stay within a page), so no prefetch for one thread's
 * state slice, rewritten every few tokens, reaches another's (linear.c REC_SIDE has the
 * measurement). */
#define LA_THREAD_GUARD 1024

/* One turn of a spin-wait on another thread (the x86 pause hint; nothing elsewhere). */
static inline void la_spin_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until *x >= v (acquire): spins with the pause hint, then from the LA_SPIN_TURNS-th turn
 * on yields the core at every turn.  With more threads than free cores (another program, or
 * more threads asked for than there are cores) the thread waited for may be waiting for this
 * one's core, and a pure spin would hold it for the rest of its time slice: on a 2-core VM,
 * 3 threads on one head of linear_causal_chunked (T = 16384, segments dealt in turn, no yield)
 * took 108 ms a call against 4.2 ms on one thread. */
#define LA_SPIN_TURNS 4096
static inline void la_wait_at_least(atomic_int *x, int v)
{
    for (int i = 0; atomic_load_explicit(x, memory_order_acquire) < v; i++) {
        if (i < LA_SPIN_TURNS)
            la_spin_pause();
        else
            sched_yield();
    }
}

/* Rounds n up to a multiple of 16 floats (one 64-byte line), so rows stay aligned. */
static inline size_t la_pad16(size_t n) { return (n + 15) & ~(size_t)15; }

/* out[j] = Σ_{l<n} x[l·ld + j] for j < w (n >= 1): blocks of 64 columns summed in registers
 * over the n rows, so each row is read once and out written once (the chunked kernels' sums of
 * a segment's stored per-chunk products, one product a row). */
static inline void la_sum_rows(int n, size_t w, const float *x, size_t ld, float *restrict out)
{
    size_t j0 = 0;
    for (; j0 + 64 <= w; j0 += 64) {
        float acc[64];
        for (int j = 0; j < 64; j++)
            acc[j] = x[j0 + j];
        for (int l = 1; l < n; l++) {
            const float *restrict r = x + (size_t)l * ld + j0;
            for (int j = 0; j < 64; j++)
                acc[j] += r[j];
        }
        for (int j = 0; j < 64; j++)
            out[j0 + j] = acc[j];
    }
    for (size_t j = j0; j < w; j++) {
        float acc = x[j];
        for (int l = 1; l < n; l++)
            acc += x[(size_t)l * ld + j];
        out[j] = acc;
    }
}

/* Every workspace is attn_workspace_floats() = the kernel's own size + LA_WS_SLACK floats, and a
 * threaded kernel starts its buffers at la_align_work(a->work), the first 64-byte boundary: a
 * caller's malloc'd (16-byte aligned) buffer would otherwise put the boundary between two
 * threads' private buffers inside one cache line, which both cores then write in turn. */
#define LA_WS_SLACK 16
static inline float *la_align_work(float *w)
{
    return (float *)(((uintptr_t)w + 63) & ~(uintptr_t)63);
}

#endif
