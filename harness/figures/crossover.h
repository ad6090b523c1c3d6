/* crossover.h — where linear attention overtakes softmax: the measured crossover T* of each
 * linear series against the softmax kernel, next to two predictions, from the rows of a results
 * file; and the crossover figure built from them (la_crossover_figure).  Used by `linattn plot`
 * (the crossover and speedup figures, the T* table) and `linattn info`.
 * Not here: running anything, reading files, drawing.  Tests: tests/test_crossover.c (T*),
 * tests/test_figures.c (the figure).
 *
 * What is compared.  A *series* is one linear configuration (kernel, map, m, draw, A) in one
 * *context* (d, dv, causal, batch, heads, threads, pass); it is compared with every softmax
 * kernel timed in the same context, so a training step (pass forward+backward: both kernels'
 * backward, the map's inside the linear time) is compared with softmax's training step.  Only timed rows with status OK count.  The time of a linear row is
 * its total cost, kernel plus feature map (time_median_s + fm_time_median_s), because a
 * practitioner pays both; softmax has no feature map.  Several rows at one T (trials, sigmas,
 * data sources) are reduced to their median.  Only the T values where both sides were timed form
 * the series' grid.
 *
 * Crossings: every sign change of t_linear − t_softmax between neighbouring grid points, each
 * interpolated there: log t_linear − log t_softmax is taken as linear in log T (both times are
 * straight lines on the log-log plot between grid points), and the crossing is its zero.  Timing
 * noise at small T or a cache effect at large T can make the curves cross more than once, so
 * every crossing is kept (la_xo_cross: where, between which grid points, and which way).
 *
 * Measured T*: the crossing after which linear attention stays faster up to T_max, i.e. the last
 * crossing when linear is faster at T_max.  When linear is faster at every grid point, T* < T_min
 * (LA_XO_BELOW); when it is not faster at T_max there is no such crossing in the measured range,
 * T* > T_max (LA_XO_ABOVE), even if linear was faster somewhere before.  Examples: faster at 128,
 * slower at 256–1024, faster from 2048 on: crossings ≈ 181 (to softmax) and ≈ 1.5K (to linear),
 * T* ≈ 1.5K; faster from ≈ 800 but slower again at 8192: crossings ≈ 800 and ≈ 6K, T* > T_max.
 *
 * Model T* (the flop model at measured rates).  Each kernel runs its nominal flops (attention.h:
 * softmax 4·T²·d, causal 2·T²·d; linear 4·T·m·dv + 4·T·m) at the GFLOP/s rate it reached at the
 * largest common T, and the feature map runs its nominal flops (featuremap.h; over the T queries
 * and the T keys) at its own measured rate there.  All linear terms are proportional to T and
 * the softmax term to T², so this model is t_softmax(T) = t_softmax(T_max)·(T/T_max)² and
 * t_linear(T) = t_linear(T_max)·T/T_max, whose crossover is
 *     T*_model = T_max · t_linear(T_max) / t_softmax(T_max).
 * It is what one predicts from a single large-T benchmark of each kernel; the gap between it and
 * the measured T* is the cost of small-T overheads (thread start-up, tiling, the normaliser pass)
 * that the O() hides.  Below T_max it interpolates, above it extrapolates.
 *
 * Flop T* (pure counts: every flop at the same rate).  Nominal flops per token of linear,
 * kernel plus feature map, over nominal flops per token² of softmax.  Feature-map flops per token
 * are the map's nominal flops (featuremap_nominal_flops, featuremap.h) for one query row and one
 * key row at m outputs: 2·2·d·m for prf and gerf (the projection) and 2·d·m for rff and hyp (m/2
 * draws), each plus a few flops per feature (the stabiliser; an exp, sin or cos counts as one);
 * 2·4·m for elu1, 2·2·m for relu.  A map this build does not know has no model: its flop T* is
 * NaN.  The T² exponentials of softmax are not counted in attention.h while the map's are, which
 * leans this prediction slightly towards softmax.  With dv = d this is
 * m + m/d + fm/(4d) non-causal, twice that causal: about 2·m for prf (132.5 at m = d = 64), about
 * m for elu1 (67 at m = d = 64): the crossover pure arithmetic promises.  Training passes
 * count the backward kernels' models (softmax 2.5×, linear 2× the forward's) and the map's
 * backward (featuremap_nominal_backward_flops) per token, plus the forward's for
 * forward+backward.
 */
#ifndef LA_CROSSOVER_H
#define LA_CROSSOVER_H

#include <stddef.h>
#include <stdio.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "figure.h"

enum la_xo_status {
    LA_XO_FOUND = 0, /* linear overtakes softmax inside the grid; T_star interpolated */
    LA_XO_BELOW = 1, /* linear is already faster at the smallest T: T* < T_min */
    LA_XO_ABOVE = 2  /* linear is never faster: T* > T_max (beyond the measured range) */
};

/* One grid point of a series: medians over the rows at this T. */
struct la_xo_point {
    double T;
    double t_linear;                   /* kernel + feature map, seconds */
    double t_linear_p20, t_linear_p80; /* the kernel's 20th/80th percentiles + feature map */
    double t_kernel;                   /* the linear kernel alone */
    double t_fm;                       /* the feature map alone */
    double t_softmax;                  /* the softmax kernel */
    double t_softmax_p20, t_softmax_p80;
};

/* Crossings kept per series (n_cross counts all of them). */
#define LA_XO_MAX_CROSS 8

/* One crossing of the two curves between grid points T_lo and T_hi. */
struct la_xo_cross {
    double T;         /* interpolated in log-log (see above) */
    double T_lo, T_hi;
    int to_linear;    /* 1: linear is faster after it; 0: softmax is */
};

/* One linear series against one softmax kernel. */
struct la_crossover {
    /* the linear series */
    char kernel[LA_NAME_LEN];
    char map[LA_NAME_LEN];
    int m; /* the map's output dimension (row column m) */
    char draw[LA_NAME_LEN];
    int A_auto; /* gerf's `A: auto`: one series over the cells, whatever A each fitted */
    double A;   /* NaN when A_auto or the map has no A */
    /* the softmax kernel and the context */
    char softmax[LA_NAME_LEN];
    int d, dv, causal, batch, heads, threads;
    char pass[LA_NAME_LEN]; /* the rows' pass: forward, or a training step (train.h) */
    char rule[64]; /* a recurrence's parameters that differ between the series of its kernel
                      (β, γ, α, recur_norm) as legend text, "γ=0.9"; empty when none do */

    size_t npoints;          /* common T grid, ascending */
    struct la_xo_point *pts; /* npoints entries (owned by the array la_crossover_compute made) */
    double T_min, T_max;

    int status;        /* enum la_xo_status */
    double T_star;     /* measured crossover (NaN unless LA_XO_FOUND) */
    double T_lo, T_hi; /* the grid points that bracket it (NaN unless LA_XO_FOUND) */
    int n_cross;       /* sign changes of t_linear − t_softmax along the grid */
    struct la_xo_cross cross[LA_XO_MAX_CROSS]; /* the first min(n_cross, LA_XO_MAX_CROSS) */
    double ratio_max;  /* t_linear / t_softmax at T_max */
    double T_model;    /* T_max · ratio_max (see above) */
    double T_flops;    /* pure nominal-flop crossover (see above) */
};

/* Finds every series in rows and computes its crossover.  *out is one malloc'd block (free it
 * with la_crossover_free); *nout may be 0 (no timed softmax/linear pairs).  Series are sorted by
 * softmax kernel, causal, d, map, m, draw, kernel.  Returns LA_OK or LA_ENOMEM. */
int la_crossover_compute(const struct la_row *rows, size_t n, struct la_crossover **out,
                         size_t *nout, struct la_error *err);
void la_crossover_free(struct la_crossover *xo); /* NULL is fine */

/* The zero of log(lin) − log(soft) between (T0, lin0, soft0) and (T1, lin1, soft1), linear in
 * log T: the crossing of two straight lines on a log-log plot.  NaN if the two differences have
 * the same strict sign, or any input is not positive. */
double la_crossover_interp(double T0, double lin0, double soft0, double T1, double lin1,
                           double soft1);

/* Nominal flops per token of the feature map (Q and K together), as documented above. */
double la_crossover_fm_flops_per_token(const char *map, int m, int d);

/* The pure flop-count crossover of a linear kernel with map (m outputs) against a softmax
 * kernel at head dimension d (dv values), causal or not. */
double la_crossover_flop_T(const char *linear_kernel, const char *softmax_kernel, const char *map,
                           int m, int d, int dv, int causal);

/* gerf's A as text for tables: "auto" (fitted per cell), the value, or "-" (a map without A). */
const char *la_crossover_A_text(const struct la_crossover *x, char *buf, size_t cap);

/* Every crossing as text for tables: "181-,1536+" (T rounded; "+": linear is faster after it,
 * "-": softmax is), ",..." when there were more than LA_XO_MAX_CROSS, "-" for none. */
const char *la_crossover_cross_text(const struct la_crossover *x, char *buf, size_t cap);

/* Prints the crossover table of rows (a heading line, then one aligned line per series) to out.
 * Prints nothing and returns 0 when rows hold no timed softmax/linear pair; otherwise returns the
 * number of series printed.  On allocation failure prints one line saying so and returns 0. */
size_t la_crossover_print(const struct la_row *rows, size_t n, FILE *out);

/* The measured T* as text for tables and figure labels: "1234", "< 128" (LA_XO_BELOW) or
 * "> 16384" (LA_XO_ABOVE: linear is not faster at the largest T).  Returns buf. */
const char *la_crossover_star_text(const struct la_crossover *x, char *buf, size_t cap);

/* ---- the timing figures (crossover here, speedup in speedup.h) ---- */

/* Timed repeats the timing figures need: the median over the timed rows at the largest timed T
 * (a memory run times its big cells once, too noisy for a crossover). */
#define LA_XO_MIN_REPEATS 3

/* Whether the timing figures fit: some series has two grid points, and the rows have
 * LA_XO_MIN_REPEATS repeats (see above) unless forced. */
int la_crossover_fits(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                      size_t nxo, int forced);

/* A linear series as text: "prf m=64 orthogonal (linear_causal_chunked)": the map, m where it
 * reads m ("m=d" when m_as_d and m = d), A where it reads A ("A=auto" when fitted), the draw when
 * with_draw and it reads draw, the kernel when with_kernel. */
void la_crossover_name(const struct la_crossover *x, int with_kernel, int with_draw, int m_as_d,
                       char *buf, size_t cap);

/* Whether xo holds two linear kernels of one causality (*kernels) or two draws (*draws): the
 * titles then name them. */
void la_crossover_variety(const struct la_crossover *xo, size_t nxo, int *kernels, int *draws);

/* Adds x to the ascending distinct values v[0..*n) unless there or *n = cap. */
void la_crossover_add_distinct(double *v, int *n, int cap, double x);

/* The crossover figure (docs/FIGURES.md), into *fig (initialised here; la_figure_free frees it):
 * one panel per context (softmax kernel, causality, d, dv, batch, heads, threads; in xo's order,
 * d along the columns), each with the softmax curve (medians of time, p20, p80 over its rows at
 * every T it was timed at), one LA_CURVE_TIMING curve per linear series (its grid points: total,
 * p20, p80, kernel, feature map) titled "NAME: T* = 1.2K" (or "T* < 32", "T* > 16K"), and a
 * ring (point type −1) at each measured T* on its linear curve and a cross (point type −2) at
 * every other crossing; the title lists the crossings when there is more than one, or when the
 * one crossing is not T*.  Every panel has its own legend.
 * fig->fits = 0 unless la_crossover_fits.  LA_OK or LA_ENOMEM. */
int la_crossover_figure(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                        size_t nxo, int forced, struct la_figure *fig, struct la_error *err);

/* Which linear series a crossover figure draws.  A file with both plain linear attention and
 * recurrences (kernels whose update rule is not ATTN_UPD_SUM: delta, decay, gated) draws them
 * as two figures, `crossover` (plain) and `crossover_recurrences`, so that no panel's legend
 * grows past what its panel can hold; a file with one kind draws it all in `crossover`. */
enum la_xo_select {
    LA_XO_SELECT_ALL = 0, /* every series */
    LA_XO_SELECT_PLAIN,   /* plain linear attention only */
    LA_XO_SELECT_RECUR,   /* the recurrences only */
};

/* 1 if series x runs a recurrence (its kernel's update rule is not ATTN_UPD_SUM). */
int la_crossover_is_recurrence(const struct la_crossover *x);

/* What `crossover` (recurrences = 0) or `crossover_recurrences` (1) draws for these series:
 * LA_XO_SELECT_PLAIN or _RECUR when both kinds are present, otherwise ALL for `crossover` and
 * -1 (no figure) for `crossover_recurrences`. */
int la_crossover_selection(const struct la_crossover *xo, size_t nxo, int recurrences);

/* la_crossover_figure over the series that select picks (panels without one are left out;
 * fig->fits = 0 when none is left). */
int la_crossover_figure_of(const struct la_row *rows, size_t n, const struct la_crossover *xo,
                           size_t nxo, int forced, int select, struct la_figure *fig,
                           struct la_error *err);

#endif
