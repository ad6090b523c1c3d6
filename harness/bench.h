/* bench.h — benchmark helpers shared by the bench commands: the SGEMM reference rate and the
 * `make bench` suite.  Benchmarks, not tests: they print numbers and check nothing.
 */
#ifndef LA_BENCH_H
#define LA_BENCH_H

#include "timing.h"

/* GFLOP/s of an n×n×n SGEMM with `threads` BLAS threads: 2n³ over the p20 time of at least 10
 * calls and 1 s (the rate the BLAS reaches when the machine is not disturbed: a peak). */
double la_sgemm_gflops(int n, int threads, struct la_timing *t);

/* The benchmark table for d in ds and T = Tmin, 2·Tmin, … Tmax.  Returns an exit code. */
int la_bench_suite(const int *ds, int nd, int Tmin, int Tmax, int threads, double budget, int tsv);

#endif
