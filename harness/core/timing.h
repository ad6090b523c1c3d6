/* timing.h — the only module that reads the clock.  Calibrates a repeat count to a time budget,
 * runs untimed warm-ups first, and reports median, min, max, p20 and p80 of the timed repeats
 * (zstd benchfn / STREAM style).  The timed function must not allocate.  Also the cancellation
 * check points that long loops poll (a SIGINT/SIGTERM flag) and the HDF5 mutex.
 * Tests: tests/test_runner.c (timing through cells), tests/run_signals.sh (cancellation).
 */
#ifndef LA_TIMING_H
#define LA_TIMING_H

#include <signal.h>

struct la_timing {
    double median_s, min_s, max_s, p20_s, p80_s; /* seconds per call */
    int repeats;                                  /* timed calls */
};

typedef void (*la_timed_fn)(void *ctx);

/* Runs fn(ctx) `warmup` times untimed, then times single calls until both min_repeats calls
 * and budget_s seconds of timed calls are done (never more than max_repeats calls, and never
 * fewer than min_repeats even past the budget).  max_repeats <= 0 means 1000. */
void la_time(la_timed_fn fn, void *ctx, int warmup, int min_repeats, int max_repeats,
             double budget_s, struct la_timing *out);

/* k functions (k <= LA_ROTATE_MAX) timed in rotation after `warmup` untimed rounds, until
 * min_repeats rounds and budget_s seconds (all calls together) are done: a slow spell of a
 * shared machine then falls on all of them alike, which is what a ratio between them needs.
 * Each function runs in a block of calls per round (f0 f0 f0 f1 f1 f1 ...).  With block > 1
 * a block starts with untimed calls, one or as many as it takes to spend lead_s seconds, so
 * that data the previous function moved to other cores' caches is back where this one keeps
 * it, then block − 1 timed calls (each round adds block − 1 samples).  out[i] gets the
 * statistics of fns[i]. */
#define LA_ROTATE_MAX 8
void la_time_rotate(int k, const la_timed_fn *fns, void *const *ctxs, int warmup, int block,
                    double lead_s, int min_repeats, int max_repeats, double budget_s,
                    struct la_timing *out);

/* Cancellation.  la_cancel_watch(flag) makes la_cancelled() return *flag (a signal number set
 * by a handler; NULL: never cancelled).  la_time and la_time_rotate stop after the call in
 * flight once it is set (the statistics then cover the calls made; repeats 0 when none), and
 * the runner checks it between its phases.  A single kernel call is never cut short.
 * la_io_lock/la_io_unlock: one process-wide mutex around every use of HDF5 while cells run, so
 * that a thread which records an interrupted cell (cmd_run.c's watchdog) never uses HDF5 at the
 * same time as the thread that runs cells. */
void la_cancel_watch(volatile sig_atomic_t *flag);
int la_cancelled(void);
void la_io_lock(void);
void la_io_unlock(void);

/* Monotonic seconds since an arbitrary origin: for progress lines and ETAs only. */
double la_now(void);

/* Median and quantiles of n values (sorts a copy in place: v is reordered). q in [0, 1]. */
double la_quantile_sorted(const double *sorted, int n, double q);

#endif
