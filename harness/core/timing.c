/* timing.c — repeat calibration and robust statistics of call times (see timing.h), and the
 * cancellation check points.
 * Uses CLOCK_MONOTONIC; nothing else in linattn reads a clock.
 * State: the watched cancellation flag (a pointer, set once by the run command before any cell)
 * and the HDF5 mutex; both are process-wide by nature (a signal is).
 * Tests: tests/test_runner.c, tests/run_signals.sh.
 */
#include "timing.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

#define LA_MAX_SAMPLES 1000

static volatile sig_atomic_t *cancel_flag;
static pthread_mutex_t io_mutex = PTHREAD_MUTEX_INITIALIZER;

void la_cancel_watch(volatile sig_atomic_t *flag)
{
    cancel_flag = flag;
}

int la_cancelled(void)
{
    return cancel_flag ? (int)*cancel_flag : 0;
}

/* Locking a default mutex fails only on misuse (EDEADLK is not detected for default
 * mutexes, EINVAL needs an uninitialised one), so the results are not checked further. */
void la_io_lock(void)
{
    (void)pthread_mutex_lock(&io_mutex);
}

void la_io_unlock(void)
{
    (void)pthread_mutex_unlock(&io_mutex);
}

double la_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

double la_quantile_sorted(const double *sorted, int n, double q)
{
    if (n <= 0)
        return 0.0;
    /* Linear interpolation between order statistics (type 7, as numpy's default). */
    double pos = q * (n - 1);
    int lo = (int)pos;
    if (lo >= n - 1)
        return sorted[n - 1];
    double frac = pos - lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

static void summarise(double *samples, int n, struct la_timing *out)
{
    qsort(samples, (size_t)n, sizeof samples[0], la_cmp_double);
    out->repeats = n;
    out->min_s = samples[0];
    out->max_s = samples[n - 1];
    out->median_s = la_quantile_sorted(samples, n, 0.5);
    out->p20_s = la_quantile_sorted(samples, n, 0.2);
    out->p80_s = la_quantile_sorted(samples, n, 0.8);
}

static void clamp_repeats(int *min_repeats, int *max_repeats)
{
    if (*max_repeats <= 0 || *max_repeats > LA_MAX_SAMPLES)
        *max_repeats = LA_MAX_SAMPLES;
    if (*min_repeats < 1)
        *min_repeats = 1;
    if (*min_repeats > *max_repeats)
        *min_repeats = *max_repeats;
}

void la_time(la_timed_fn fn, void *ctx, int warmup, int min_repeats, int max_repeats,
             double budget_s, struct la_timing *out)
{
    double samples[LA_MAX_SAMPLES];
    clamp_repeats(&min_repeats, &max_repeats);
    for (int i = 0; i < warmup && !la_cancelled(); i++)
        fn(ctx);
    int n = 0;
    double spent = 0.0;
    while (n < max_repeats && (n < min_repeats || spent < budget_s) && !la_cancelled()) {
        double t0 = la_now();
        fn(ctx);
        double dt = la_now() - t0;
        samples[n++] = dt;
        spent += dt;
    }
    if (n == 0) { /* cancelled before the first timed call */
        *out = (struct la_timing){0};
        return;
    }
    summarise(samples, n, out);
}

void la_time_rotate(int k, const la_timed_fn *fns, void *const *ctxs, int warmup, int block,
                    double lead_s, int min_repeats, int max_repeats, double budget_s,
                    struct la_timing *out)
{
    double samples[LA_ROTATE_MAX][LA_MAX_SAMPLES];
    if (k < 1)
        return;
    if (k > LA_ROTATE_MAX) { /* not timed: zeros, so a caller never reads garbage */
        for (int i = 0; i < k; i++)
            out[i] = (struct la_timing){0};
        return;
    }
    if (block < 1)
        block = 1;
    const int timed = block > 1 ? block - 1 : 1; /* samples per function per round */
    clamp_repeats(&min_repeats, &max_repeats);
    for (int w = 0; w < warmup && !la_cancelled(); w++)
        for (int i = 0; i < k; i++)
            fns[i](ctxs[i]);
    int n = 0, rounds = 0;
    double spent = 0.0;
    while (n + timed <= max_repeats && (rounds < min_repeats || spent < budget_s) &&
           !la_cancelled()) {
        for (int i = 0; i < k; i++) {
            if (block > 1) { /* the untimed lead: at least one call, at least lead_s */
                const double t0 = la_now();
                double dt;
                do {
                    fns[i](ctxs[i]);
                    dt = la_now() - t0;
                } while (dt < lead_s && !la_cancelled());
                spent += dt;
            }
            for (int b = 0; b < timed; b++) {
                const double t0 = la_now();
                fns[i](ctxs[i]);
                const double dt = la_now() - t0;
                spent += dt;
                samples[i][n + b] = dt;
            }
        }
        n += timed;
        rounds++;
    }
    if (n == 0) { /* max_repeats below one round's samples, or cancelled */
        for (int i = 0; i < k; i++)
            out[i] = (struct la_timing){0};
        return;
    }
    for (int i = 0; i < k; i++)
        summarise(samples[i], n, &out[i]);
}
