/* mpi_run.c — dynamic scheduling of an experiment's cells over MPI ranks (see mpi_run.h).
 * Compiled always; the MPI code is inside #ifdef LA_MPI (`make MPI=1`), the rest are stubs.
 *
 * Protocol (all messages to or from rank 0):
 *   worker → 0  TAG_READY  (no payload)        first request for work
 *   0 → worker  TAG_CELL   int cell index       run this cell
 *   worker → 0  TAG_ROW    struct la_row bytes  the finished cell (also asks for more work)
 *   0 → worker  TAG_STOP   (no payload)         no more work
 * Ranks run the same binary on the same experiment file, so a cell index names the same cell
 * everywhere and struct la_row travels as bytes.  Waiting uses MPI_Iprobe plus a short sleep
 * instead of blocking receives, which Open MPI implements by spinning: a spinning coordinator
 * would steal a core from the cells being timed.
 * Tests: tests/mpi/e2e.sh (`make check-mpi`).
 */
#include "mpi_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LA_MPI

int la_mpi_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}
int la_mpi_size(void) { return 1; }
void la_mpi_finalize(void) {}
void la_mpi_abort(int code) { exit(code); }
int la_mpi_bcast_int(int v) { return v; }
int la_mpi_max_int(int v) { return v; }
int la_mpi_pin(void) { return 0; }

int la_mpi_coordinate(const struct la_experiment *e, struct la_results *res, int share_nodes,
                      volatile sig_atomic_t *interrupted, struct la_mpi_stats *st,
                      struct la_error *err)
{
    (void)e, (void)res, (void)share_nodes, (void)interrupted, (void)st;
    return LA_FAIL(err, LA_EINTERNAL, "linattn was built without MPI (make MPI=1)");
}

int la_mpi_work(const struct la_experiment *e, volatile sig_atomic_t *interrupted)
{
    (void)e, (void)interrupted;
    return LA_EINTERNAL;
}

#else /* LA_MPI */

#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include "../core/sysinfo.h"
#include "runner.h"

enum { TAG_READY = 1, TAG_CELL = 2, TAG_ROW = 3, TAG_STOP = 4 };

int la_mpi_init(int *argc, char ***argv)
{
    int provided = 0, rank = 0, inited = 0;
    MPI_Initialized(&inited);
    if (!inited)
        MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    return rank;
}

int la_mpi_size(void)
{
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size;
}

void la_mpi_finalize(void)
{
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin)
        MPI_Finalize();
}

void la_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int la_mpi_max_int(int v)
{
    int out = v;
    MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return out;
}

int la_mpi_bcast_int(int v)
{
    MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return v;
}

int la_mpi_pin(void)
{
    MPI_Comm node;
    int lrank = 0, lsize = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &lrank);
    MPI_Comm_size(node, &lsize);
    MPI_Comm_free(&node);
    const char *env = getenv("LINATTN_MPI_PIN");
    cpu_set_t all;
    if ((env && !strcmp(env, "0")) || sched_getaffinity(0, sizeof all, &all) != 0)
        return 0;
    /* The CPUs this process may use, in order; rank lrank of lsize takes an even slice. */
    int cpus[CPU_SETSIZE], n = 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &all))
            cpus[n++] = c;
    if (n < sysconf(_SC_NPROCESSORS_ONLN))
        return n; /* the launcher (srun --cpu-bind, mpirun --bind-to) already gave a slice */
    if (n < lsize)
        return 0; /* more ranks than cores: pinning cannot help; leave it to the OS */
    const int lo = lrank * n / lsize, hi = (lrank + 1) * n / lsize;
    cpu_set_t mine;
    CPU_ZERO(&mine);
    for (int i = lo; i < hi; i++)
        CPU_SET(cpus[i], &mine);
    if (sched_setaffinity(0, sizeof mine, &mine) != 0)
        return 0;
    return hi - lo;
}

static void nap(void)
{
    struct timespec ts = {0, 200000}; /* 0.2 ms */
    nanosleep(&ts, NULL);
}

/* Runs one cell into row (host filled in). */
static void run_one(struct la_runner_ws *ws, const struct la_cell *c, struct la_row *row,
                    const char *host)
{
    struct la_error err;
    la_error_clear(&err);
    la_run_cell(ws, c, row, &err);
    snprintf(row->host, sizeof row->host, "%s", host);
}

/* ---- ranks > 0 ---------------------------------------------------------------------------- */

int la_mpi_work(const struct la_experiment *e, volatile sig_atomic_t *interrupted)
{
    char host[LA_HOST_LEN];
    la_hostname(host, sizeof host);
    MPI_Gather(host, LA_HOST_LEN, MPI_CHAR, NULL, LA_HOST_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    struct la_runner_ws *ws = la_runner_ws_alloc();
    if (!ws)
        return LA_ENOMEM;
    struct la_row *row = malloc(sizeof *row);
    if (!row) {
        la_runner_ws_free(ws);
        return LA_ENOMEM;
    }
    MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_READY, MPI_COMM_WORLD);
    for (;;) {
        int flag = 0;
        MPI_Status s;
        MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &s);
        if (!flag) {
            nap();
            continue;
        }
        if (s.MPI_TAG == TAG_STOP) {
            MPI_Recv(NULL, 0, MPI_BYTE, 0, TAG_STOP, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
            break;
        }
        int idx = -1;
        MPI_Recv(&idx, 1, MPI_INT, 0, TAG_CELL, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        /* A signal here (SIGINT forwarded by mpirun) still finishes and sends this cell. */
        run_one(ws, &e->cells[idx], row, host);
        MPI_Send(row, (int)sizeof *row, MPI_BYTE, 0, TAG_ROW, MPI_COMM_WORLD);
    }
    (void)interrupted;
    free(row);
    la_runner_ws_free(ws);
    return LA_OK;
}

/* ---- rank 0 -------------------------------------------------------------------------------- */

/* Rank 0's own worker thread: the main thread (which alone calls MPI and HDF5) gives it one
 * cell at a time through this mailbox and collects the row. */
struct local_worker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const struct la_experiment *e;
    const char *host;
    int cell;     /* cell to run, -1 none */
    int has_row;  /* row holds a finished cell */
    int stop;
    struct la_row row;
};

static void *local_main(void *arg)
{
    struct local_worker *w = arg;
    struct la_runner_ws *ws = la_runner_ws_alloc();
    struct la_row *row = malloc(sizeof *row);
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->cell < 0 && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->cell < 0 && w->stop)
            break;
        const int idx = w->cell;
        pthread_mutex_unlock(&w->mu);
        if (ws && row) {
            run_one(ws, &w->e->cells[idx], row, w->host);
        } else {
            la_row_from_cell(&w->e->cells[idx], row ? row : &w->row);
        }
        pthread_mutex_lock(&w->mu);
        if (row)
            w->row = *row;
        if (!ws || !row) {
            w->row.status = LA_ROW_FAILED;
            snprintf(w->row.message, sizeof w->row.message, "out of memory on rank 0");
        }
        w->has_row = 1;
        w->cell = -1;
    }
    pthread_mutex_unlock(&w->mu);
    free(row);
    la_runner_ws_free(ws);
    return NULL;
}

struct sched {
    const struct la_experiment *e;
    int *pending; /* cell indices still to hand out, most expensive first */
    size_t npending;
    int nranks;
    int *running;      /* per rank: cell index or -1 */
    int *idle;         /* per rank: 1 when it waits for work */
    int *host_of;      /* per rank: host id */
    int *host_cells;   /* per host: cells running */
    int *host_timing;  /* per host: timing cells running */
    char (*hosts)[LA_HOST_LEN];
    int share_nodes;
};

static const struct la_experiment *sort_exp; /* only valid during qsort below */
static int by_cost_desc(const void *a, const void *b)
{
    const double fa = la_cell_flops(&sort_exp->cells[*(const int *)a]);
    const double fb = la_cell_flops(&sort_exp->cells[*(const int *)b]);
    if (fa != fb)
        return fa < fb ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

/* The first pending cell rank r may run under the timing policy, removed from pending; -1 if
 * none may run now. */
static int pick(struct sched *s, int r)
{
    const int h = s->host_of[r];
    for (size_t i = 0; i < s->npending; i++) {
        const struct la_cell *c = &s->e->cells[s->pending[i]];
        int ok = s->share_nodes || (c->measure_time ? s->host_cells[h] == 0
                                                    : s->host_timing[h] == 0);
        if (!ok)
            continue;
        int idx = s->pending[i];
        memmove(s->pending + i, s->pending + i + 1, (s->npending - i - 1) * sizeof *s->pending);
        s->npending--;
        return idx;
    }
    return -1;
}

static void started(struct sched *s, int r, int idx)
{
    s->running[r] = idx;
    s->idle[r] = 0;
    s->host_cells[s->host_of[r]]++;
    s->host_timing[s->host_of[r]] += s->e->cells[idx].measure_time ? 1 : 0;
}

static void finished(struct sched *s, int r)
{
    const int idx = s->running[r];
    if (idx >= 0) {
        s->host_cells[s->host_of[r]]--;
        s->host_timing[s->host_of[r]] -= s->e->cells[idx].measure_time ? 1 : 0;
    }
    s->running[r] = -1;
    s->idle[r] = 1;
}

/* Appends a finished row (unless an earlier write failed) and counts it; a failed cell is
 * named on stderr, as in a serial run. */
static void record(struct la_results *res, const struct la_row *row, int *status,
                   struct la_mpi_stats *st, struct la_error *err)
{
    if (*status == LA_OK && la_results_append(res, row, err) != LA_OK)
        *status = err ? err->status : LA_EIO;
    st->ran++;
    if (row->status != LA_ROW_OK) {
        st->failed++;
        fprintf(stderr, "linattn run: cell %d failed (%s): %s\n", row->index, row->host,
                row->message);
    }
}

int la_mpi_coordinate(const struct la_experiment *e, struct la_results *res, int share_nodes,
                      volatile sig_atomic_t *interrupted, struct la_mpi_stats *st,
                      struct la_error *err)
{
    struct sched s = {.e = e, .nranks = la_mpi_size(), .share_nodes = share_nodes};
    const int R = s.nranks;
    s.pending = malloc((e->ncells ? e->ncells : 1) * sizeof *s.pending);
    s.running = malloc((size_t)R * sizeof *s.running);
    s.idle = calloc((size_t)R, sizeof *s.idle);
    s.host_of = malloc((size_t)R * sizeof *s.host_of);
    s.host_cells = calloc((size_t)R, sizeof *s.host_cells);
    s.host_timing = calloc((size_t)R, sizeof *s.host_timing);
    s.hosts = malloc((size_t)R * sizeof *s.hosts);
    struct la_row *row = malloc(sizeof *row);
    int status = LA_OK;
    char myhost[LA_HOST_LEN];
    la_hostname(myhost, sizeof myhost);
    /* Every rank takes part in the gather, even if allocation failed here. */
    char(*gathered)[LA_HOST_LEN] = malloc((size_t)R * sizeof *gathered);
    MPI_Gather(myhost, LA_HOST_LEN, MPI_CHAR, gathered, LA_HOST_LEN, MPI_CHAR, 0, MPI_COMM_WORLD);
    if (!s.pending || !s.running || !s.idle || !s.host_of || !s.host_cells || !s.host_timing ||
        !s.hosts || !row || !gathered) {
        status = LA_FAIL(err, LA_ENOMEM, "out of memory scheduling %zu cells", e->ncells);
        for (int r = 1; r < R; r++)
            MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
        goto done;
    }
    /* Host ids: ranks with the same host name share an id (and the timing rule). */
    int nhosts = 0;
    for (int r = 0; r < R; r++) {
        int h = 0;
        while (h < nhosts && strcmp(s.hosts[h], gathered[r]) != 0)
            h++;
        if (h == nhosts)
            memcpy(s.hosts[nhosts++], gathered[r], LA_HOST_LEN);
        s.host_of[r] = h;
        s.running[r] = -1;
    }
    for (size_t i = 0; i < e->ncells; i++)
        if (!la_results_has_key(res, e->cells[i].key))
            s.pending[s.npending++] = (int)i;
    sort_exp = e;
    qsort(s.pending, s.npending, sizeof *s.pending, by_cost_desc);
    sort_exp = NULL;

    struct local_worker lw = {.e = e, .host = myhost, .cell = -1};
    pthread_mutex_init(&lw.mu, NULL);
    pthread_cond_init(&lw.cv, NULL);
    pthread_t th;
    const int have_thread = pthread_create(&th, NULL, local_main, &lw) == 0;
    s.idle[0] = have_thread;

    int stopped_dispatch = 0;
    for (;;) {
        int busy = 0, progressed = 0;
        /* Rows (and first requests) from the other ranks. */
        for (;;) {
            int flag = 0;
            MPI_Status ms;
            MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &ms);
            if (!flag)
                break;
            progressed = 1;
            const int r = ms.MPI_SOURCE;
            if (ms.MPI_TAG == TAG_READY) {
                MPI_Recv(NULL, 0, MPI_BYTE, r, TAG_READY, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
                s.idle[r] = 1;
            } else if (ms.MPI_TAG == TAG_ROW) {
                MPI_Recv(row, (int)sizeof *row, MPI_BYTE, r, TAG_ROW, MPI_COMM_WORLD,
                         MPI_STATUS_IGNORE);
                finished(&s, r);
                record(res, row, &status, st, err);
            }
        }
        /* Rank 0's own worker. */
        pthread_mutex_lock(&lw.mu);
        if (lw.has_row) {
            *row = lw.row;
            lw.has_row = 0;
            pthread_mutex_unlock(&lw.mu);
            progressed = 1;
            finished(&s, 0);
            record(res, row, &status, st, err);
        } else {
            pthread_mutex_unlock(&lw.mu);
        }
        if (*interrupted || status != LA_OK)
            stopped_dispatch = 1;
        /* Hand out work to idle ranks. */
        for (int r = 0; r < R && !stopped_dispatch; r++) {
            if (!s.idle[r])
                continue;
            const int idx = pick(&s, r);
            if (idx < 0)
                continue;
            started(&s, r, idx);
            progressed = 1;
            if (r == 0) {
                pthread_mutex_lock(&lw.mu);
                lw.cell = idx;
                pthread_cond_signal(&lw.cv);
                pthread_mutex_unlock(&lw.mu);
            } else {
                MPI_Send(&idx, 1, MPI_INT, r, TAG_CELL, MPI_COMM_WORLD);
            }
        }
        for (int r = 0; r < R; r++)
            busy += s.running[r] >= 0;
        if (busy == 0 && (s.npending == 0 || stopped_dispatch))
            break;
        if (*interrupted == SIGTERM) {
            /* mpirun sends SIGTERM when a rank died: the job is ending; name the cells in
             * flight (one of them took its process down) and stop waiting for them. */
            for (int r = 0; r < R; r++)
                if (s.running[r] >= 0)
                    fprintf(stderr,
                            "linattn run: cell %d was running on rank %d (%s) when the job "
                            "stopped: %s\n",
                            s.running[r], r, s.hosts[s.host_of[r]], e->cells[s.running[r]].key);
            break;
        }
        if (!progressed)
            nap();
    }
    for (int r = 1; r < R; r++)
        if (*interrupted != SIGTERM)
            MPI_Send(NULL, 0, MPI_BYTE, r, TAG_STOP, MPI_COMM_WORLD);
    if (have_thread) {
        pthread_mutex_lock(&lw.mu);
        lw.stop = 1;
        pthread_cond_signal(&lw.cv);
        pthread_mutex_unlock(&lw.mu);
        if (*interrupted == SIGTERM && s.running[0] >= 0)
            pthread_detach(th); /* the process is about to be killed; do not wait */
        else
            pthread_join(th, NULL);
    }
done:
    free(s.pending), free(s.running), free(s.idle), free(s.host_of), free(s.host_cells);
    free(s.host_timing), free(s.hosts), free(row), free(gathered);
    return status;
}

#endif /* LA_MPI */
