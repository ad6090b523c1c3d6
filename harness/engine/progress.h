/* progress.h — the progress line of `linattn run` on a terminal:
 *     [12/96] kernel=linear_causal map=prf T=4096 d=64  elapsed 00:12  ETA 01:05
 * rewritten in place (carriage return) before each cell, cleared at the end.
 *
 * ETA model: a cell takes about a + b·flops seconds (a: the fixed part — timing budget, data,
 * references; b: the part that grows with the cell's estimated flops, la_cell_flops), fitted by
 * least squares to the cells run so far; with fewer than three cells, or a fit that makes a
 * or b negative, the larger of (mean seconds per cell × cells left) and (seconds per flop ×
 * flops left).  The estimate is for the cells still to run, the current one included.
 * Not here: deciding whether stderr is a terminal (the caller passes enabled).
 * Tests: tests/test_runner.c (ETA and time formatting).
 */
#ifndef LA_PROGRESS_H
#define LA_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

#include "../experiment/cell.h"

struct la_progress {
    FILE *out;
    int enabled;
    int width;                  /* terminal columns (the line is cut to width − 1) */
    size_t total;               /* cells in the experiment */
    size_t cells_left;          /* cells still to run (current one included) */
    double flops_left;          /* their estimated flops */
    double t0;                  /* la_now() at init */
    double n, sf, st, sff, sft; /* least-squares sums over cells done: flops f, seconds t */
    int drawn;                  /* a line is on the screen */
};

/* todo cells with todo_flops estimated flops in total will run, out of total cells. */
void la_progress_init(struct la_progress *p, FILE *out, int enabled, size_t total, size_t todo,
                      double todo_flops);

/* Shows "[pos/total] ..." for cell c about to run (pos is 1-based among all cells). */
void la_progress_start(struct la_progress *p, size_t pos, const struct la_cell *c);

/* Records that a cell of `flops` estimated flops took `seconds`. */
void la_progress_done(struct la_progress *p, double flops, double seconds);

/* Clears the line (call before printing anything else on the same stream, and at the end). */
void la_progress_clear(struct la_progress *p);

/* Seconds the cells left should take by the model above; NaN before any cell has finished. */
double la_progress_eta(const struct la_progress *p);

/* "mm:ss", or "h:mm:ss" from one hour on; "--:--" for NaN or negative. */
void la_format_duration(double seconds, char *buf, size_t cap);

#endif
