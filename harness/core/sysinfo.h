/* sysinfo.h — start-up settings and provenance: version, git commit, CPU model, BLAS name and
 * core, compiler and flags, host, UTC time, peak resident memory.  Results files and `bench`
 * record these so a figure can be reproduced.  Not here: the kernels' SIMD path and the check
 * of the code-path variables (la_simd_path, la_env_check in kernels/attention.h).  No mutable
 * globals: everything is read on demand.
 */
#ifndef LA_SYSINFO_H
#define LA_SYSINFO_H

#include <stddef.h>

/* Process start-up: GSL's aborting error handler and HDF5's automatic error printing off,
 * OpenBLAS single-threaded (linattn parallelises with OpenMP itself). */
void la_startup(void);

const char *la_version(void);
const char *la_git_commit(void);
const char *la_compiler(void);  /* e.g. "gcc 12.2.0" */
const char *la_cflags(void);    /* the optimisation flags linattn was built with */
const char *la_blas_name(void); /* e.g. "OpenBLAS 0.3.21 ..." (its config string) */
void la_blas_set_threads(int n); /* BLAS threads (linattn keeps 1 and uses OpenMP itself) */
const char *la_blas_core(void); /* e.g. "Haswell" */
/* "AMD EPYC (family 25, model 17)": /proc/cpuinfo's model name, cpu family and model (x86). */
void la_cpu_model(char *buf, size_t cap);
void la_hostname(char *buf, size_t cap);
void la_utc_now(char *buf, size_t cap); /* ISO 8601, e.g. 2026-11-28T04:05:06Z */
long la_peak_rss_bytes(void);            /* VmHWM of this process */
int la_default_threads(void);            /* OMP_NUM_THREADS if set, else the core count */

#endif
