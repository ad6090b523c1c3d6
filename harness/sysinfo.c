/* sysinfo.c — start-up settings and provenance strings (see sysinfo.h). */
#include "sysinfo.h"

#include <cblas.h>
#include <gsl/gsl_errno.h>
#include <hdf5.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifndef LA_GIT_COMMIT
#define LA_GIT_COMMIT "unknown"
#endif
#ifndef LA_CFLAGS
#define LA_CFLAGS "unknown"
#endif

void la_startup(void)
{
    gsl_set_error_handler_off();
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    openblas_set_num_threads(1);
}

const char *la_version(void) { return "0.1.0"; }
const char *la_git_commit(void) { return LA_GIT_COMMIT; }
const char *la_cflags(void) { return LA_CFLAGS; }

const char *la_compiler(void)
{
#if defined(__clang__)
    return "clang " __clang_version__;
#elif defined(__GNUC__)
    return "gcc " __VERSION__;
#else
    return "unknown";
#endif
}

const char *la_blas_name(void) { return openblas_get_config(); }
const char *la_blas_core(void) { return openblas_get_corename(); }

void la_cpu_model(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                p[strcspn(p, "\n")] = '\0';
                snprintf(buf, cap, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

void la_hostname(char *buf, size_t cap)
{
    if (gethostname(buf, cap) != 0)
        snprintf(buf, cap, "unknown");
    buf[cap - 1] = '\0';
}

void la_utc_now(char *buf, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

long la_peak_rss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return -1;
    return ru.ru_maxrss * 1024L; /* Linux reports KiB */
}

int la_default_threads(void)
{
    const char *e = getenv("OMP_NUM_THREADS");
    if (e && atoi(e) > 0)
        return atoi(e);
    return omp_get_num_procs();
}
