/* cmd_run.c — `linattn run FILE.yaml`: every cell of an experiment through the runner, one row
 * per cell appended (and flushed) to the results file as it finishes.
 *
 * Resume: cells whose key already has an OK row in the file are skipped, so rerunning the same
 * command after a crash, a kill -9 or Ctrl-C finishes the sweep; failed and interrupted rows are
 * retried.  An extended experiment (more values, cells, comments) resumes the file too, when its
 * cell context (la_experiment_context: seed, measure settings, input file hashes) agrees with the
 * file's; otherwise la_results_open refuses it, naming what changed.  --dry-run prints the
 * verdict of the same decision (la_results_resume_check) and exits 2 where run would refuse.
 * --fresh starts over, and replaces only a results file: never the experiment file or another
 * file.
 * Exit codes: 0 every cell ok; 1 some cell failed (its row has status FAILED and the reason);
 * 2 bad input (bad arguments, an invalid experiment, an output that cannot be opened or is not
 * a results file) — nothing is written then; 3 the results file could not be written mid-run
 * (disk full, file size limit): the run stops at once and says how many rows are stored, which
 * is what a resume and `linattn export` find; 128 + signal after SIGINT/SIGTERM.
 * Signals (single process): SIGINT and SIGTERM set a flag that the runner polls between its
 * phases and timed repeats (timing.h); the cell in flight is then recorded as INTERRUPTED and
 * the run ends.  One kernel call can last many seconds, so a watchdog thread, woken by the
 * handler, waits WATCHDOG_GRACE_MS for the main thread to reach a check point; if it does not,
 * the watchdog records the interrupted row itself (under la_io_lock, the mutex the main thread
 * holds whenever it uses HDF5), prints the message (on stderr; no summary line then) and _exits
 * with 128 + signal, whatever that last append gave.  A second signal kills at once
 * (SA_RESETHAND).  Under MPI there is no watchdog: cells in flight finish; a write error there
 * (exit 3 too) stops the recording of rows while those cells finish.
 * Output: progress line on stderr only when stderr is a terminal and not --quiet; failed cells
 * and errors on stderr; one summary line on stdout.
 * Tests: tests/run_e2e.sh (CLI, resume after SIGKILL), tests/run_signals.sh (SIGINT/SIGTERM
 * inside a long cell), tests/run_lock.sh (links, locks, --fresh), tests/run_diskfull.sh (write
 * errors), tests/sweep_extend.sh (extending a finished sweep, refusals, --dry-run agreeing with
 * run), tests/test_runner.c (the runner).
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../core/sysinfo.h"
#include "../core/timing.h"
#include "../engine/mpi_run.h"
#include "../engine/progress.h"
#include "../engine/runner.h"
#include "../experiment/cell.h"
#include "../experiment/experiment.h"
#include "../experiment/params.h"
#include "../store/results.h"
#include "commands.h"
#include "options.h"

/* The mutable static state, both for the signal handler, which can only talk to the program
 * through such objects: the number of the SIGINT or SIGTERM received, and the semaphore that
 * wakes the watchdog (sem_post is async-signal-safe). */
static volatile sig_atomic_t interrupted;
static sem_t wake;

static void on_signal(int sig)
{
    interrupted = sig;
    sem_post(&wake);
}

static const char *signame(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

/* SIGINT (Ctrl-C) and SIGTERM (what batch schedulers send first) set `interrupted`; the handler
 * may run on any thread (OpenMP and BLAS threads included), it only stores and posts.  A second
 * signal kills at once (SA_RESETHAND); rows already written are safe, since each is flushed.
 * A signal ignored at start (nohup, a background job) stays ignored. */
static void catch_signals(struct sigaction old[2])
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = (int)(SA_RESETHAND | SA_RESTART);
    interrupted = 0;
    for (int i = 0; i < 2; i++) {
        if (sigaction(sigs[i], NULL, &old[i]) != 0) {
            old[i].sa_handler = SIG_IGN; /* unknown: leave it alone */
            continue;
        }
        if (old[i].sa_handler != SIG_IGN)
            sigaction(sigs[i], &sa, NULL);
    }
}

static void restore_signals(const struct sigaction old[2])
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++)
        if (old[i].sa_handler != SIG_IGN)
            sigaction(sigs[i], &old[i], NULL);
}

/* How long the main thread has, after a signal, to reach a check point itself. */
#define WATCHDOG_GRACE_MS 500

/* The watchdog's view of the run; every field but the thread is read and written under
 * la_io_lock. */
struct watchdog {
    pthread_t thread;
    int started;
    int done;                   /* the main thread has finished, or is handling the signal */
    struct la_results *res;
    const struct la_cell *cell; /* the cell in flight, NULL between cells */
    const char *host, *out;
};

/* The line every interrupted run ends with (main thread or watchdog). */
static void say_interrupted(int sig, const struct la_cell *c, size_t stored, const char *out)
{
    char in[48] = "";
    if (c)
        snprintf(in, sizeof in, " during cell %d", c->index);
    fprintf(stderr,
            "linattn run: interrupted by %s%s; %zu rows are stored in %s; rerun the same "
            "command to resume\n",
            signame(sig), in, stored, out);
}

static void *watchdog_main(void *arg)
{
    struct watchdog *w = arg;
    while (sem_wait(&wake) != 0)
        if (errno != EINTR)
            return NULL;
    const int sig = (int)interrupted;
    if (!sig)
        return NULL; /* woken by the end of the run */
    /* Give the main thread WATCHDOG_GRACE_MS to reach a check point (it then sets done). */
    const struct timespec tick = {0, 10 * 1000 * 1000};
    for (int i = 0; i < WATCHDOG_GRACE_MS / 10; i++) {
        la_io_lock();
        const int done = w->done;
        la_io_unlock();
        if (done)
            return NULL;
        nanosleep(&tick, NULL);
    }
    la_io_lock(); /* held until _exit: the main thread never uses HDF5 again */
    if (w->done) {
        la_io_unlock();
        return NULL;
    }
    if (w->cell) {
        struct la_row row;
        struct la_error err;
        la_error_clear(&err);
        la_row_from_cell(w->cell, &row);
        row.status = LA_ROW_INTERRUPTED;
        snprintf(row.message, sizeof row.message, "interrupted by %s during a kernel call",
                 signame(sig));
        snprintf(row.host, sizeof row.host, "%s", w->host);
        if (la_results_append(w->res, &row, &err) != LA_OK)
            fprintf(stderr, "linattn run: %s\n", err.msg);
    }
    say_interrupted(sig, w->cell, la_results_nrows(w->res), w->out);
    _exit(128 + sig);
}

/* Starts the watchdog: 0, or pthread_create's error (the check points then still work). */
static int watchdog_start(struct watchdog *w)
{
    const int e = pthread_create(&w->thread, NULL, watchdog_main, w);
    w->started = e == 0;
    return e;
}

static void watchdog_stop(struct watchdog *w)
{
    if (!w->started)
        return;
    la_io_lock();
    w->done = 1;
    la_io_unlock();
    sem_post(&wake);
    pthread_join(w->thread, NULL);
    w->started = 0;
}

struct run_opts {
    const char *yaml, *output;
    int fresh, dry_run, quiet, threads, share_nodes;
};

/* Reads the command line into o: LA_OPT_GO, or the exit code (help printed, or an error). */
static int parse_args(int argc, char **argv, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    const struct la_option opts[] = {
        LA_OPT_STRING("output", 'o', &o->output, "OUT.h5",
                      "results file (default: the experiment's `output:`, else results/NAME.h5)"),
        LA_OPT_FLAG("fresh", 0, &o->fresh,
                    "start OUT.h5 over (needed when the experiment changes what its existing "
                    "cells mean: seed, measure settings, input files)"),
        LA_OPT_FLAG("dry-run", 'n', &o->dry_run,
                    "print the plan (cells, estimated flops and memory) and what run would do "
                    "with OUT.h5, and exit (2 where run would refuse it)"),
        LA_OPT_INT("threads", 0, &o->threads, "N", 1, 1024,
                   "run every cell with N threads, whatever the experiment says"),
        LA_OPT_FLAG("quiet", 'q', &o->quiet,
                    "no progress line (it is shown only when stderr is a terminal)"),
        LA_OPT_FLAG("share-nodes", 0, &o->share_nodes,
                    "MPI: let timing cells share a node with other cells (default: a timing cell "
                    "runs alone on its node)"),
        LA_OPT_END,
    };
    const struct la_command cmd = {
        .prog = "linattn run",
        .args = "FILE.yaml",
        .intro = "Runs every cell of the experiment FILE.yaml (see experiments/README.md) and "
                 "appends one row per cell to OUT.h5, flushed as each cell finishes.  Rerunning "
                 "resumes: cells already done are skipped, failed ones retried.",
        .opts = opts,
        .outro = "Under MPI (a `make MPI=1` build started by mpirun), rank 0 writes the file and "
                 "hands cells to all ranks, most expensive first; see README \"Clusters\".\n\n"
                 "SIGINT (Ctrl-C) or SIGTERM stops the run within about a second, also inside a "
                 "long cell: that cell gets a row with status 2 (interrupted), the message says "
                 "how many rows are stored, and rerunning the same command resumes.  A second "
                 "signal kills at once.\n\n"
                 "Exit status: 0 all cells ok; 1 some cells failed (see their rows' message); 2 "
                 "bad input, nothing written (also: OUT.h5 is the experiment file or not a "
                 "results file); 3 the results file could not be written (disk full): the run "
                 "stopped, the rows it says are stored are what a resume finds; 128+N after "
                 "signal N (130 SIGINT, 143 SIGTERM).",
    };
    int nargs;
    const int rc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (rc != LA_OPT_GO)
        return rc;
    if (nargs > 1) {
        fprintf(stderr, "linattn run: one experiment file at a time ('%s' and '%s')\n", argv[0],
                argv[1]);
        return 2;
    }
    if (nargs == 0) {
        fprintf(stderr, "linattn run: missing experiment file (linattn run --help)\n");
        return 2;
    }
    o->yaml = argv[0];
    return LA_OPT_GO;
}

/* Keys of OK rows already in an existing results file (read-only), sorted; for --dry-run. */
static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static size_t count_done(const char *path, const struct la_experiment *e)
{
    struct la_row *rows = NULL;
    size_t n = 0, done = 0;
    struct la_error err;
    char jpath[LA_PATH_LEN + 16];
    snprintf(jpath, sizeof jpath, "%s.journal", path);
    if (access(path, F_OK) != 0 && access(jpath, F_OK) != 0)
        return 0;
    int from_journal = 0;
    la_error_clear(&err);
    if (la_results_read_resumable(path, &rows, &n, &from_journal, &err) != LA_OK) {
        printf("output %s: the run would stop: %s\n", path, err.msg);
        return 0;
    }
    if (from_journal)
        printf("output %s: %s\n", path, err.msg);
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    size_t nk = 0;
    for (size_t i = 0; keys && i < n; i++)
        if (rows[i].status == LA_ROW_OK)
            keys[nk++] = rows[i].key;
    if (keys) {
        qsort(keys, nk, sizeof *keys, cmp_str);
        for (size_t c = 0; c < e->ncells; c++) {
            const char *k = e->cells[c].key;
            if (bsearch(&k, keys, nk, sizeof *keys, cmp_str))
                done++;
        }
    }
    free(keys);
    free(rows);
    return done;
}

/* --threads N: the cell runs with N threads, and its key says so (the experiment's keys carry
 * " threads=K "), so a resume with another --threads measures again instead of skipping
 * timings taken at a different thread count.  The seed stays the experiment's: the data and the
 * feature draws, and so the errors, are those of the cell as written. */
static void override_threads(struct la_cell *c, int threads)
{
    char text[16];
    c->threads = threads;
    snprintf(text, sizeof text, "%d", threads);
    la_key_set(c->key, sizeof c->key, "threads", text); /* a key too long to take it stays */
}

static int cmp_cell_key(const void *a, const void *b)
{
    const struct la_cell *const *x = a, *const *y = b;
    int c = strcmp((*x)->key, (*y)->key);
    return c ? c : ((*x)->index > (*y)->index) - ((*x)->index < (*y)->index);
}

/* After --threads rewrote the keys, cells that differed only in their thread count are the same
 * measurement: keep the first in run order, drop the others.  Returns how many were dropped
 * (or (size_t)-1 when out of memory). */
static size_t merge_same_keys(struct la_experiment *e)
{
    if (e->ncells < 2)
        return 0;
    struct la_cell **by = malloc(e->ncells * sizeof *by);
    char *drop = calloc(e->ncells, 1);
    if (!by || !drop) {
        free(by), free(drop);
        return (size_t)-1;
    }
    for (size_t i = 0; i < e->ncells; i++)
        by[i] = &e->cells[i];
    qsort(by, e->ncells, sizeof *by, cmp_cell_key);
    for (size_t i = 1; i < e->ncells; i++)
        if (!strcmp(by[i]->key, by[i - 1]->key))
            drop[by[i] - e->cells] = 1;
    size_t kept = 0;
    for (size_t i = 0; i < e->ncells; i++)
        if (!drop[i])
            e->cells[kept++] = e->cells[i];
    const size_t merged = e->ncells - kept;
    e->ncells = kept;
    free(by), free(drop);
    return merged;
}

/* Creates the missing parent directories of path (mkdir -p), as the experiment loader allows
 * an output whose directories do not exist yet (it checks that the nearest existing one is
 * writable).  Failures are left to la_results_open to report. */
static void make_parents(const char *path)
{
    char dir[LA_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        (void)mkdir(dir, 0777);
        *p = '/';
    }
    (void)mkdir(dir, 0777);
}

static int run_main(const struct run_opts *opts, int rank, int nranks)
{
    const struct run_opts o = *opts;

    struct la_error err;
    la_error_clear(&err);
    struct la_experiment *e = NULL;
    const int load_st = la_experiment_load_to(o.yaml, o.output, &e, &err);
    /* Under MPI every rank loads the file itself; if any rank fails (a data file missing on
     * one node), all stop, and each failing rank says why. */
    if (la_mpi_max_int(load_st != LA_OK) != 0) {
        const int root_failed = la_mpi_bcast_int(load_st != LA_OK); /* then it alone reports */
        if (load_st != LA_OK) {
            if (rank == 0)
                fprintf(stderr, "linattn run: %s\n", err.msg);
            else if (!root_failed)
                fprintf(stderr, "linattn run (rank %d): %s\n", rank, err.msg);
        }
        la_experiment_free(e);
        return 2;
    }
    if (o.threads) {
        for (size_t i = 0; i < e->ncells; i++)
            override_threads(&e->cells[i], o.threads);
        const size_t merged = merge_same_keys(e);
        if (merged == (size_t)-1) {
            fprintf(stderr, "linattn run: out of memory\n");
            la_experiment_free(e);
            return 1;
        }
        if (merged && rank == 0 && !o.quiet && isatty(fileno(stderr)))
            fprintf(stderr, "linattn run: --threads %d makes %zu cells the same as others; each "
                            "runs once\n", o.threads, merged);
    }
    int threads_max = 0;
    for (size_t i = 0; i < e->ncells; i++) {
        const int t = e->cells[i].threads > 0 ? e->cells[i].threads : la_default_threads();
        if (t > threads_max)
            threads_max = t;
    }
    const char *out = o.output ? o.output : e->output;
    if (o.dry_run && rank > 0) {
        la_experiment_free(e);
        return 0;
    }
    /* The experiment file itself is never an output (stat follows links, so a link to it is
     * caught too); --dry-run says so as run would. */
    struct stat ys, os;
    if (rank == 0 && stat(o.yaml, &ys) == 0 && stat(out, &os) == 0 && ys.st_dev == os.st_dev &&
        ys.st_ino == os.st_ino) {
        fprintf(stderr, "linattn run: the output %s is the experiment file %s itself; choose "
                        "another output file\n", out, o.yaml);
        if (nranks > 1 && !o.dry_run)
            la_mpi_bcast_int(0);
        la_experiment_free(e);
        return 2;
    }
    /* What the cells' results depend on beyond their keys (rank 0 writes the file). */
    char *context = NULL;
    if (rank == 0 && la_experiment_context(e, &context, &err) != LA_OK) {
        fprintf(stderr, "linattn run: %s\n", err.msg);
        if (nranks > 1 && !o.dry_run)
            la_mpi_bcast_int(0);
        la_experiment_free(e);
        return 2;
    }
    struct la_provenance prov = {e->name, e->text, e->seed, threads_max, nranks, context};
    if (o.dry_run) {
        /* The verdict run would reach on this file (la_results_open decides the same way). */
        la_experiment_print_plan(e, stdout);
        struct la_resume v = {0};
        const int st = o.fresh ? la_results_fresh_check(out, &err)
                               : la_results_resume_check(out, &prov, &v, &err);
        int rc = 0;
        if (st != LA_OK) {
            printf("output %s: run would refuse it: %s\n", out, err.msg);
            rc = 2;
        } else if (!v.exists) {
            printf("output %s: %s; %zu cells to run\n", out,
                   o.fresh ? "--fresh: would start it over" : "a new file", e->ncells);
        } else {
            const size_t done = count_done(out, e);
            printf("output %s: %zu of %zu cells already done (would be skipped), %zu to run\n",
                   out, done, e->ncells, e->ncells - done);
            if (v.add_text)
                printf("output %s: this experiment text would be recorded as "
                       "experiment_text_%d\n",
                       out, v.ntexts + 1);
        }
        free(context);
        la_experiment_free(e);
        return rc;
    }

    if (rank > 0) {
        /* MPI worker: wait for rank 0 to open the file, then run what it sends. */
        int go = la_mpi_bcast_int(0);
        struct sigaction wsa[2];
        catch_signals(wsa);
        int rc = go ? (la_mpi_work(e, &interrupted) == LA_OK ? 0 : 1) : 2;
        restore_signals(wsa);
        la_experiment_free(e);
        return rc;
    }
    make_parents(out);
    struct la_results *res = NULL;
    const int open_st = la_results_open(out, &prov, o.fresh, &res, &err);
    free(context);
    prov.cell_context = NULL;
    if (open_st != LA_OK) {
        fprintf(stderr, "linattn run: %s\n", err.msg);
        if (nranks > 1)
            la_mpi_bcast_int(0);
        la_experiment_free(e);
        return 2;
    }
    if (nranks > 1)
        la_mpi_bcast_int(1);
    struct la_runner_ws *ws = la_runner_ws_alloc();
    if (!ws) {
        fprintf(stderr, "linattn run: out of memory\n");
        la_results_close(res);
        la_experiment_free(e);
        return 1;
    }

    /* What is left to do, for the ETA. */
    size_t todo = 0;
    double todo_flops = 0.0;
    for (size_t i = 0; i < e->ncells; i++)
        if (!la_results_has_key(res, e->cells[i].key)) {
            todo++;
            todo_flops += la_cell_flops(&e->cells[i]);
        }
    struct la_progress prog;
    la_progress_init(&prog, stderr, !o.quiet && isatty(fileno(stderr)), e->ncells, todo,
                     todo_flops);

    struct sigaction old_sa[2];
    catch_signals(old_sa);

    char host[LA_HOST_LEN];
    la_hostname(host, sizeof host);
    struct watchdog wd = {.res = res, .host = host, .out = out};
    if (nranks == 1) {
        la_cancel_watch(&interrupted);
        const int e_wd = watchdog_start(&wd);
        if (e_wd)
            fprintf(stderr, "linattn run: no watchdog thread (%s): a signal is honoured when the "
                            "cell in flight reaches a check point\n", strerror(e_wd));
    }
    size_t ran = 0, skipped = 0, failed = 0;
    int rc = 0, write_error = 0;
    const struct la_cell *cut = NULL; /* the cell the signal interrupted */
    const double t0 = la_now();
    if (nranks > 1) {
        struct la_mpi_stats ms = {0, 0};
        if (la_mpi_coordinate(e, res, o.share_nodes, &interrupted, &ms, &err) != LA_OK) {
            fprintf(stderr, "linattn run: %s\n", err.msg);
            rc = 1;
            write_error = err.status == LA_EIO; /* an append failed: as in a serial run */
        }
        ran = ms.ran;
        failed = ms.failed;
        skipped = e->ncells - todo;
    }
    size_t next = 0; /* cells before this one were run, skipped or stopped at */
    for (; nranks == 1 && next < e->ncells && !interrupted; next++) {
        const struct la_cell *c = &e->cells[next];
        if (la_results_has_key(res, c->key)) {
            skipped++;
            continue;
        }
        la_progress_start(&prog, next + 1, c);
        la_io_lock();
        wd.cell = c;
        la_io_unlock();
        const double c0 = la_now();
        struct la_row row;
        struct la_error cerr;
        la_error_clear(&cerr);
        const int st = la_run_cell(ws, c, &row, &cerr);
        snprintf(row.host, sizeof row.host, "%s", host);
        la_progress_done(&prog, la_cell_flops(c), la_now() - c0);
        la_io_lock();
        if (interrupted) { /* this thread ends the run: the watchdog stands down */
            wd.done = 1;
            if (row.status == LA_ROW_INTERRUPTED)
                cut = c;
        }
        const int wst = la_results_append(res, &row, &err);
        wd.cell = NULL;
        la_io_unlock();
        if (wst != LA_OK) {
            la_progress_clear(&prog);
            fprintf(stderr, "linattn run: %s\n", err.msg);
            write_error = 1;
            break;
        }
        if (row.status == LA_ROW_INTERRUPTED) {
            next++;
            break;
        }
        ran++;
        if (st != LA_OK || row.status != LA_ROW_OK) {
            failed++;
            la_progress_clear(&prog);
            fprintf(stderr, "linattn run: cell %d failed: %s\n", c->index, row.message);
        }
    }
    watchdog_stop(&wd);
    la_cancel_watch(NULL);
    la_progress_clear(&prog);
    restore_signals(old_sa);
    const size_t stored = write_error ? la_results_settle(res) : la_results_nrows(res);
    /* Cells neither done nor run after a stop (single process). */
    size_t left = cut ? 1 : 0;
    for (size_t i = next; (nranks == 1 || write_error) && i < e->ncells; i++)
        left += !la_results_has_key(res, e->cells[i].key);
    la_results_close(res);
    la_runner_ws_free(ws);

    char took[32];
    const double secs = la_now() - t0;
    if (secs < 60.0)
        snprintf(took, sizeof took, "%.1f s", secs);
    else
        la_format_duration(secs, took, sizeof took);
    char stop[96] = "";
    if (write_error)
        snprintf(stop, sizeof stop, "; stopped: results file not writable, %zu cell%s not run",
                 left, left == 1 ? "" : "s");
    else if (interrupted && nranks == 1)
        snprintf(stop, sizeof stop, "; stopped by %s, %zu cell%s not run",
                 signame(interrupted), left, left == 1 ? "" : "s");
    printf("%s: %zu cell%s: %zu run, %zu skipped (resumed), %zu failed; results in %s (%s)%s\n",
           e->name, e->ncells, e->ncells == 1 ? "" : "s", ran, skipped, failed, out, took, stop);
    if (write_error) {
        fprintf(stderr,
                "linattn run: stopped: %zu rows are stored in %s; once it can be written "
                "(free space), rerun the same command to resume\n",
                stored, out);
        rc = 3;
    } else if (interrupted) {
        say_interrupted(interrupted, cut, stored, out);
        rc = 128 + (int)interrupted;
    } else if (rc == 0 && failed) {
        rc = 1;
    }
    la_experiment_free(e);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    /* Before MPI starts: --help and bad arguments need no MPI. */
    struct run_opts o;
    const int prc = parse_args(argc, argv, &o);
    if (prc != LA_OPT_GO)
        return prc;
    /* Past a file size limit (ulimit -f) a write fails with EFBIG instead of killing the
     * process, so it is reported like a full disk. */
    (void)signal(SIGXFSZ, SIG_IGN);
    if (sem_init(&wake, 0, 0) != 0) {
        fprintf(stderr, "linattn run: cannot create a semaphore: %s\n", strerror(errno));
        return 1;
    }
    const int rank = la_mpi_init(NULL, NULL);
    const int nranks = la_mpi_size();
    if (nranks > 1)
        la_mpi_pin();
    const int rc = run_main(&o, rank, nranks);
    la_mpi_finalize();
    sem_destroy(&wake);
    if (rc == 3) {
        /* After a write error HDF5 may hold a file whose close failed, and its exit handler
         * would crash on it (la_results_settle): every file of ours is closed, so end here. */
        fflush(stdout);
        fflush(stderr);
        _exit(rc);
    }
    return rc;
}
