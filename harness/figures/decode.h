/* decode.h — the decode figures, from the rows of step cells (la_row_is_step: a cell whose
 * kernel is a step kernel times one decode step at context T, runner.c): the step latency
 * against the context t, the generation speedup (softmax time / linear time to generate N
 * tokens after a prompt of P) against N, the state or cache bytes against t, and the decode
 * crossover t* (where a linear step becomes cheaper than a softmax step) beside the flop and
 * byte models' prediction.  `linattn plot` draws them (harness/cli/cmd_plot.c,
 * plots/decode_*.gp) and writes the t* table (STEM_decode_tstar.tsv).
 *
 * A series is the step rows of one setting across T: kernel, map, m, draw, A, d, dv, batch,
 * heads, threads, σ.  At each T its step time is the median of its rows' time_median_s (several
 * trials), the spread the lowest p20 and the highest p80.  A step time at a context between two
 * measured T is interpolated linearly in t (a softmax step is linear in t; a linear step is
 * flat), and is not defined outside the measured range.
 *
 * Generation: the cell at T times the step that appends token number T (T − 1 tokens already in
 * the state), so generating N tokens after a prompt of P takes G(P, N) = Σ_{t=P+1}^{P+N} step(t),
 * summed over every integer t of the interpolated step times.  A pair is a linear series and the
 * softmax series of the same d, dv, batch, heads and threads; P is the first T both measured and
 * N runs up to the last such T minus P.
 * Not here: files, gnuplot.  Tests: tests/test_decode_figures.c.
 */
#ifndef LA_DECODE_H
#define LA_DECODE_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "figure.h"

#define LA_DECODE_MAX_T 64 /* contexts per series (further ones are left out) */

struct la_decode_series {
    /* its setting, as its first row has it */
    char kernel[LA_NAME_LEN];
    char map[LA_NAME_LEN]; /* "none" for softmax */
    char draw[LA_NAME_LEN];
    int m, d, dv, batch, heads, threads;
    double A, sigma;
    int softmax; /* la_row_is_softmax */
    int npoints;
    double T[LA_DECODE_MAX_T];    /* ascending */
    double step[LA_DECODE_MAX_T]; /* median step time (s): B sequences of each of H heads */
    double lo[LA_DECODE_MAX_T];   /* lowest p20 and highest p80 of the rows at this T */
    double hi[LA_DECODE_MAX_T];
    double state[LA_DECODE_MAX_T]; /* state_bytes (B·H sequences) */
    size_t rows[LA_DECODE_MAX_T];  /* rows behind each point */
};

/* The series of the step rows of rows[0..n) that are ok and timed, in the order of their
 * first row; *out is malloc'd (NULL and 0 when none).  LA_OK or LA_ENOMEM. */
int la_decode_series(const struct la_row *rows, size_t n, struct la_decode_series **out,
                     size_t *nout, struct la_error *err);

/* The step time at context t, interpolated linearly in t; NaN outside [T[0], T[npoints−1]]. */
double la_decode_step_at(const struct la_decode_series *s, double t);

/* G(P, N) = Σ_{t=P+1}^{P+N} step(t) (seconds); NaN where a t is outside the measured range. */
double la_decode_generation(const struct la_decode_series *s, long P, long N);

enum la_decode_status { LA_DECODE_FOUND = 0, LA_DECODE_BELOW, LA_DECODE_BEYOND, LA_DECODE_NONE };

/* One linear series against its softmax series. */
struct la_decode_pair {
    size_t lin, soft; /* indices into the series */
    /* The measured crossover: FOUND with t_star between the measured contexts t_lo < t_hi (the
     * first sign change of log(step_lin / step_soft), interpolated in log t); BELOW: the linear
     * step is already cheaper at the first common T (t_star = that T); BEYOND: not cheaper up
     * to the last (t_star = NaN); NONE: fewer than 2 common T. */
    int status;
    double t_star, t_lo, t_hi;
    /* The models' crossover: the smallest context t at which the softmax step's nominal flops
     * (bytes) reach the linear step's, the map's flops (bytes) over the B new query and key
     * rows included (attention.h, featuremap.h); NaN when the models never cross. */
    double t_flops, t_bytes;
    /* Generation after a prompt of P: N up to n_max; speedup at n_max; the first N at which
     * the speedup reaches 100 and 1000 (NaN when it does not within n_max). */
    long P, n_max;
    double speedup_max, n_100, n_1000;
};

/* The pairs of the series (one per linear series that has a softmax partner); *out is malloc'd
 * (NULL and 0 when none).  LA_OK or LA_ENOMEM. */
int la_decode_pairs(const struct la_decode_series *s, size_t ns, struct la_decode_pair **out,
                    size_t *nout, struct la_error *err);

/* The figures (docs/FIGURES.md), each initialised here (la_figure_free frees it); fig->fits = 0
 * when the series hold nothing for it: latency and memory need a series with >= 2 contexts (1
 * when forced), speedup a pair with n_max >= 1.  Panels: one per (d, dv, batch, heads,
 * threads), in the order of the series.
 *   latency  step time vs t, every series (softmax black), spread p20–p80;
 *   speedup  G_softmax(P, N) / G_linear(P, N) vs N for every pair, and the 100× and 1000× lines;
 *   memory   state_bytes vs t, every series. */
int la_decode_latency_figure(const struct la_decode_series *s, size_t ns, int forced,
                             struct la_figure *fig, struct la_error *err);
int la_decode_speedup_figure(const struct la_decode_series *s, size_t ns,
                             const struct la_decode_pair *p, size_t np, struct la_figure *fig,
                             struct la_error *err);
int la_decode_memory_figure(const struct la_decode_series *s, size_t ns, int forced,
                            struct la_figure *fig, struct la_error *err);

/* "found", "below_range", "beyond_range", "none" (the TSV's status column). */
const char *la_decode_status_name(int status);

#endif
