/* cli_run.c — `linattn run FILE.yaml`: every cell of an experiment through the runner, one row
 * per cell appended (and flushed) to the results file as it finishes.
 *
 * Resume: cells whose key already has an OK row in the file are skipped, so rerunning the same
 * command after a crash, a kill -9 or Ctrl-C finishes the sweep; failed rows are retried.  The
 * file must have been written from the same experiment text (else --fresh).
 * Exit codes: 0 every cell ok; 1 some cell failed (its row has status FAILED and the reason), or
 * the file could not be written mid-run; 2 bad input (bad arguments, an invalid experiment, an
 * output that cannot be opened) — nothing is written then.  128 + signal after SIGINT/SIGTERM.
 * Output: progress line on stderr only when stderr is a terminal and not --quiet; failed cells
 * and errors on stderr; one summary line on stdout.
 * Tests: tests/run_e2e.sh (CLI, resume after SIGKILL), tests/test_runner.c (the runner).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cell.h"
#include "commands.h"
#include "experiment.h"
#include "mpi_run.h"
#include "progress.h"
#include "results.h"
#include "runner.h"
#include "sysinfo.h"
#include "timing.h"

static const char run_help[] =
    "usage: linattn run FILE.yaml [-o OUT.h5] [--fresh] [--dry-run] [--threads N] [--quiet]\n"
    "\n"
    "Runs every cell of the experiment FILE.yaml (see experiments/README.md) and appends one row\n"
    "per cell to OUT.h5 (default: the experiment's `output:`, else results/NAME.h5), flushed as\n"
    "each cell finishes.  Rerunning resumes: cells already done are skipped, failed ones retried.\n"
    "\n"
    "  -o, --output OUT.h5  results file\n"
    "  --fresh              start OUT.h5 over (needed when the experiment text has changed)\n"
    "  --dry-run            print the plan (cells, estimated flops and memory) and exit\n"
    "  --threads N          run every cell with N threads, whatever the experiment says\n"
    "  --quiet              no progress line (it is shown only when stderr is a terminal)\n"
    "  --share-nodes        MPI: let timing cells share a node with other cells (default: a\n"
    "                       timing cell runs alone on its node)\n"
    "\n"
    "Under MPI (a `make MPI=1` build started by mpirun), rank 0 writes the file and hands cells\n"
    "to all ranks, most expensive first; see README \"Clusters\".\n"
    "\n"
    "Exit status: 0 all cells ok, 1 some cells failed (see their rows' message), 2 bad input.\n";

/* The one piece of mutable static state: the number of the SIGINT or SIGTERM received, set by
 * the handler and read between cells.  A signal handler can only talk to the program through
 * such a flag. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

/* SIGINT (Ctrl-C) and SIGTERM (what batch schedulers send first) stop the sweep between cells:
 * the cell in flight finishes and is written, the file is closed, the exit status is 128 + the
 * signal.  A second signal kills at once (SA_RESETHAND); rows already written are safe, since
 * each is flushed.  A signal ignored at start (nohup, a background job) stays ignored. */
static void catch_signals(struct sigaction old[2])
{
    static const int sigs[2] = {SIGINT, SIGTERM};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = (int)SA_RESETHAND;
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

struct run_opts {
    const char *yaml, *output;
    int fresh, dry_run, quiet, threads, share_nodes;
};

static int parse_args(int argc, char **argv, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--fresh")) {
            o->fresh = 1;
        } else if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) {
            o->dry_run = 1;
        } else if (!strcmp(a, "--share-nodes")) {
            o->share_nodes = 1;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            o->quiet = 1;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "linattn run: %s needs a file name\n", a);
                return 0;
            }
            o->output = argv[++i];
        } else if (!strncmp(a, "--output=", 9)) {
            o->output = a + 9;
        } else if (!strcmp(a, "--threads") || !strncmp(a, "--threads=", 10)) {
            const char *v = a[9] == '=' ? a + 10 : i + 1 < argc ? argv[++i] : NULL;
            char *end;
            errno = 0;
            long n = v ? strtol(v, &end, 10) : 0;
            if (!v || errno || end == v || *end || n < 1 || n > 1024) {
                fprintf(stderr, "linattn run: --threads expects an integer in 1..1024, got '%s'\n",
                        v ? v : "");
                return 0;
            }
            o->threads = (int)n;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "linattn run: unknown option '%s' (see linattn run --help)\n", a);
            return 0;
        } else if (o->yaml) {
            fprintf(stderr, "linattn run: one experiment file at a time ('%s' and '%s')\n", o->yaml,
                    a);
            return 0;
        } else {
            o->yaml = a;
        }
    }
    if (!o->yaml) {
        fprintf(stderr, "linattn run: missing experiment file\n%s", run_help);
        return 0;
    }
    return 1;
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
    c->threads = threads;
    char *at = strstr(c->key, " threads=");
    if (!at)
        return;
    char *end = at + 9;
    while (*end >= '0' && *end <= '9')
        end++;
    char tail[LA_KEY_LEN];
    snprintf(tail, sizeof tail, "%s", end);
    const size_t head = (size_t)(at - c->key);
    snprintf(at, sizeof c->key - head, " threads=%d%s", threads, tail);
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

static int run_main(int argc, char **argv, int rank, int nranks)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(run_help, stdout);
            return 0;
        }
    struct run_opts o;
    if (!parse_args(argc, argv, &o))
        return 2;

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
    if (o.dry_run) {
        la_experiment_print_plan(e, stdout);
        const size_t done = count_done(out, e);
        printf("output %s: %zu of %zu cells already done (would be skipped)\n", out, done,
               e->ncells);
        la_experiment_free(e);
        return 0;
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
    struct la_provenance prov = {e->name, e->text, e->seed, threads_max, nranks};
    struct la_results *res = NULL;
    if (la_results_open(out, &prov, o.fresh, &res, &err) != LA_OK) {
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
    size_t ran = 0, skipped = 0, failed = 0;
    int rc = 0;
    const double t0 = la_now();
    if (nranks > 1) {
        struct la_mpi_stats ms = {0, 0};
        if (la_mpi_coordinate(e, res, o.share_nodes, &interrupted, &ms, &err) != LA_OK) {
            fprintf(stderr, "linattn run: %s\n", err.msg);
            rc = 1;
        }
        ran = ms.ran;
        failed = ms.failed;
        skipped = e->ncells - todo;
    }
    for (size_t i = 0; nranks == 1 && i < e->ncells && !interrupted; i++) {
        const struct la_cell *c = &e->cells[i];
        if (la_results_has_key(res, c->key)) {
            skipped++;
            continue;
        }
        la_progress_start(&prog, i + 1, c);
        const double c0 = la_now();
        struct la_row row;
        struct la_error cerr;
        la_error_clear(&cerr);
        const int st = la_run_cell(ws, c, &row, &cerr);
        snprintf(row.host, sizeof row.host, "%s", host);
        la_progress_done(&prog, la_cell_flops(c), la_now() - c0);
        if (la_results_append(res, &row, &err) != LA_OK) {
            la_progress_clear(&prog);
            fprintf(stderr, "linattn run: %s\n", err.msg);
            rc = 1;
            break;
        }
        ran++;
        if (st != LA_OK || row.status != LA_ROW_OK) {
            failed++;
            la_progress_clear(&prog);
            fprintf(stderr, "linattn run: cell %d failed: %s\n", c->index, row.message);
        }
    }
    la_progress_clear(&prog);
    restore_signals(old_sa);
    la_results_close(res);
    la_runner_ws_free(ws);

    char took[32];
    const double secs = la_now() - t0;
    if (secs < 60.0)
        snprintf(took, sizeof took, "%.1f s", secs);
    else
        la_format_duration(secs, took, sizeof took);
    printf("%s: %zu cells: %zu run, %zu skipped (resumed), %zu failed; results in %s (%s)\n",
           e->name, e->ncells, ran, skipped, failed, out, took);
    if (interrupted) {
        fprintf(stderr,
                "linattn run: interrupted (%s) after %zu cells; rerun the same command "
                "to resume\n",
                interrupted == SIGINT ? "SIGINT" : "SIGTERM", ran);
        rc = 128 + (int)interrupted;
    } else if (rc == 0 && failed) {
        rc = 1;
    }
    la_experiment_free(e);
    return rc;
}

int cmd_run(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(run_help, stdout);
            return 0;
        }
    const int rank = la_mpi_init(NULL, NULL);
    const int nranks = la_mpi_size();
    if (nranks > 1)
        la_mpi_pin();
    const int rc = run_main(argc, argv, rank, nranks);
    la_mpi_finalize();
    return rc;
}
