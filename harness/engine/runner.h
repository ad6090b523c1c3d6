/* runner.h — one cell in, one row out: data, feature map, attention kernel, timing, errors.
 *
 * A struct la_runner_ws holds every buffer a cell needs.  It grows (and touches each new page
 * once) when a cell needs more, and is reused by the next cell and by every timed repeat: page
 * faults cost 11–15 µs per 4 KiB page on the machines this was built on, so fresh memory must
 * never be timed.  One workspace per thread of control; not thread-safe.
 *
 * A cell that fails (bad data file, allocation failure, unknown map, NaN output) still gives a
 * row, with status LA_ROW_FAILED and the reason in message; the sweep goes on.
 * Tests: tests/test_runner.c.  The command is `linattn run` (cmd_run.c).
 */
#ifndef LA_RUNNER_H
#define LA_RUNNER_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"

/* Query heads the errors are measured on: all heads up to this many, else this many spread
 * evenly over batch × heads (head i·nheads/LA_ERR_MAX_HEADS).  The message says which. */
#define LA_ERR_MAX_HEADS 4

struct la_runner_ws;

/* The share of physical memory one cell's buffers may take: the rest stays for the OS, the
 * process's libraries and HDF5 caches.  Beyond it touching the buffers would end in the OOM
 * killer instead of an error message, so the runner and `bench` refuse such a cell first. */
#define LA_RAM_CEILING 0.85

struct la_runner_ws *la_runner_ws_alloc(void);            /* NULL when out of memory */
void la_runner_ws_free(struct la_runner_ws *ws);          /* NULL is fine */
size_t la_runner_ws_bytes(const struct la_runner_ws *ws); /* bytes held now */

/* Fills the identity columns of row from the cell (measurements NaN, counts 0, status OK,
 * empty message and host).  la_run_cell calls it; so can a caller that only plans. */
void la_row_from_cell(const struct la_cell *c, struct la_row *row);

/* Runs one cell and fills row (host is left empty: the caller knows it).  Returns LA_OK when
 * the row's status is LA_ROW_OK, else the LA_E* code of the failure (the row then has status
 * LA_ROW_FAILED and the message; LA_EINTR and status LA_ROW_INTERRUPTED when la_cancelled()
 * turned true during the cell).  err may be NULL.  A cell of data source model is a whole
 * model's fidelity (fidelity_cell.h); ws keeps its checkpoint and reference between cells. */
int la_run_cell(struct la_runner_ws *ws, const struct la_cell *c, struct la_row *row,
                struct la_error *err);

#endif
