/* bench.h — benchmark helpers shared by the bench commands: the SGEMM reference rate, the
 * measured fp32 peak of the cores (peak.c) and the `make bench` suite.  Benchmarks, not tests:
 * they print numbers and check nothing.
 */
#ifndef LA_BENCH_H
#define LA_BENCH_H

#include "../core/timing.h"

/* GFLOP/s of an n×n×n SGEMM with `threads` BLAS threads: 2n³ over the p20 time of at least 10
 * calls and 1 s (the rate the BLAS reaches when the machine is not disturbed: a peak). */
double la_sgemm_gflops(int n, int threads, struct la_timing *t);

/* The fp32 peak: the multiply-add loop of peak.c on the widest vector of SIMD path isa
 * (enum la_isa), at `threads` threads each running the whole loop, in GFLOP/s from the best of
 * 10 calls of ~50 ms (t gets their statistics).  About 0.6 s. */
double la_fp32_peak_gflops(int isa, int threads, struct la_timing *t);
/* That loop alone: `iters` rounds of independent FMA chains in registers, no memory traffic;
 * returns their sum (use it, so the loop is kept).  la_fma_loop_flops: its flop count;
 * la_fma_loop_desc: e.g. "16 chains of 512-bit FMA". */
float la_fma_loop(int isa, long iters);
double la_fma_loop_flops(int isa, long iters);
const char *la_fma_loop_desc(int isa);

/* The read bandwidth of one core in GB/s (1e9 bytes/s): a streaming sum of a float buffer of
 * about `bytes` bytes with vector loads on SIMD path isa, repeated so that a call reads at least
 * 256 MiB, from the best of 10 calls (t gets their statistics).  NAN when out of memory.  A
 * buffer far larger than la_llc_bytes() measures memory; one within la_l2_bytes() measures L2.
 * The cache sizes are the system's (sysconf), with 1 MiB for an unknown L2 and L2's size for
 * an unknown last level. */
double la_read_bandwidth_gbs(int isa, size_t bytes, struct la_timing *t);
size_t la_l2_bytes(void);
size_t la_llc_bytes(void);

/* The decode rows of the suite (bench_decode.c): softmax_step at contexts 1K, 16K and 64K and
 * linear_step with elu1 (m = 64) and prf (m = 256) features, d = 64, B = 1 and 16, one thread;
 * time per step, nominal bytes per second against the read bandwidth of memory and of L2
 * measured at its start, nominal flops per second against peak_gflops (the fp32 peak at one
 * thread; NAN: measured here).  Returns an exit code. */
int la_bench_decode(double peak_gflops, double budget, int tsv);

/* The benchmark table for d in ds and T = Tmin, 2·Tmin, … Tmax, then the other sections; the
 * threads section runs threads_runs times, with a summary of each row over the runs
 * (threads_only: that section alone).  Returns an exit code. */
int la_bench_suite(const int *ds, int nd, int Tmin, int Tmax, int threads, double budget, int tsv,
                   int threads_runs, int threads_only);

/* The suite's backward rows (bench_backward.c): every backward kernel at d = m = dv = d, one
 * head, softmax at T = min(Tmax, 8192), linear at T = min(Tmax, 16384), rated against the
 * suite's peak and SGEMM rates (GFLOP/s).  Returns an exit code. */
int la_bench_backward(int d, int Tmax, int threads, double budget, int tsv, double peak,
                      double sgemm);
/* The "kernel + feature map" rows (bench_maps.c): prf, gerf and hyp at m = 256 features and
 * taylor2, at d and T = Tmax, one head: the map alone, the kernel alone and the two together,
 * with the map's share of the time, against `peak` and `sgemm` (GFLOP/s, measured by the caller
 * in the same run).  Returns an exit code. */
int la_bench_maps(int d, int Tmax, int threads, double budget, int tsv, double peak, double sgemm);
/* The recurrences' rows (bench_recur.c): sum, decay, gated and delta in recurrent form at
 * m = dv = 64, T = 16384, one thread, against `peak` (GFLOP/s, measured by the caller in the same
 * run).  Returns an exit code. */
int la_bench_recur(double peak, double budget, int tsv);

#endif
