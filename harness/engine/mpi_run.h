/* mpi_run.h — `linattn run` across MPI ranks (built with `make MPI=1`; without it these
 * functions are stubs that report one rank, and `run` is serial).
 *
 * Rank 0 owns the results file and is the coordinator: it hands out cells one at a time,
 * most expensive first (by la_cell_flops), writes each row as it arrives (flushed, exactly as a
 * serial run), and runs cells itself on a second thread.  Other ranks only run cells and send
 * rows back.  So the file format, provenance and resume are those of a serial run.
 *
 * Timing policy: a cell with `measure: time` runs alone on its node (no other cell of this job
 * runs on that node meanwhile), so timings are not disturbed by neighbours; accuracy-only cells
 * may share a node with each other.  `--share-nodes` lifts the rule.
 * Pinning: each rank is bound to its own slice of the node's cores (ranks per node split the
 * cores evenly), so OpenMP threads of ranks on one node do not oversubscribe; LINATTN_MPI_PIN=0
 * turns it off.
 */
#ifndef LA_MPI_RUN_H
#define LA_MPI_RUN_H

#include <signal.h>
#include <stddef.h>

#include "../experiment/experiment.h"
#include "../store/results.h"

/* Initialises MPI when built with it (a no-op otherwise); returns this rank (0 without MPI). */
int la_mpi_init(int *argc, char ***argv);
int la_mpi_size(void);       /* 1 without MPI */
void la_mpi_finalize(void);  /* no-op without MPI */
/* Aborts every rank (used when rank 0 cannot go on, e.g. a bad experiment seen only there). */
void la_mpi_abort(int code);
/* The largest v over all ranks (v without MPI). */
int la_mpi_max_int(int v);
/* Broadcasts rank 0's int to every rank (for "go on" / exit codes); identity without MPI. */
int la_mpi_bcast_int(int v);
/* Binds this rank to its slice of the node's cores (see above); returns the cores it got. */
int la_mpi_pin(void);

struct la_mpi_stats {
    size_t ran, failed;
};

/* Rank 0: runs every cell of e not yet in res across all ranks, appending rows to res.
 * `interrupted` is the SIGINT/SIGTERM flag: when set, no new cell is handed out, the rows of
 * cells in flight are awaited, and every cell still in flight is named on stderr.
 * Returns LA_OK, or the status of a results-file write failure. */
int la_mpi_coordinate(const struct la_experiment *e, struct la_results *res, int share_nodes,
                      volatile sig_atomic_t *interrupted, struct la_mpi_stats *st,
                      struct la_error *err);

/* Ranks > 0: run the cells rank 0 sends until told to stop. */
int la_mpi_work(const struct la_experiment *e, volatile sig_atomic_t *interrupted);

#endif
