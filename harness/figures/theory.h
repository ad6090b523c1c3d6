/* theory.h — closed-form theory curves drawn beside measurements: the mean over input pairs of
 * the Performer Lemma 2 estimator MSE, for Gaussian inputs, and the theory lines of the features
 * figure built from it (la_theory_lines, curves.h).  Not here: sampling, drawing.
 * Tests: tests/test_theory.c (the formulas, against Monte Carlo), tests/test_figures.c (the
 * lines).
 *
 * Setting.  q, k ~ N(0, σ²·I_d) independent (the `gaussian` data source), x̃ = x·d^{-1/4}, so
 * x̃_q, x̃_k ~ N(0, τ²·I) with τ² = σ²/√d.  With u = x̃_q + x̃_k and w = x̃_q − x̃_k (independent,
 * N(0, s²·I), s² = 2τ²): Δ = ‖u‖², δ = ‖w‖², x̃_qᵀx̃_k = (Δ − δ)/4, ‖x̃_q‖² + ‖x̃_k‖² = (Δ + δ)/2.
 * Every Lemma 2 MSE (REFERENCES.md) is then a sum of terms exp(a·Δ + b·δ), whose means are
 * E[exp(a‖u‖²)] = (1 − 2·a·s²)^{-d/2}, finite only when 2·a·s² < 1.  Hence, with m draws:
 *   m·MSE(trig)  = ½·exp(Δ/2)·(exp(δ/2) − 2·exp(−δ/2) + exp(−3δ/2))
 *   m·MSE(SM⁺)   = exp(3Δ/2 − δ/2) − exp(Δ/2 − δ/2)
 *   m·MSE(hyp)   = ½·(exp(3Δ/2 − δ/2) − 2·exp(Δ/2 − δ/2) + exp(−Δ/2 − δ/2))
 *   ORF term G   = (SM − exp(−(‖x̃_q‖²+‖x̃_k‖²)/2))²
 *                = exp(Δ/2 − δ/2) − 2·exp(−δ/2) + exp(−Δ/2 − δ/2)
 * and the mean over pairs of the ORF bound (Performer Thm 2, for one block of m <= d orthogonal
 * rows) is C_pos/m − 2(m−1)/(m(d+2))·E[G].  With m > d the rows come in independent blocks of d
 * (featuremaps/draws.c), whose variances add: C_pos/m − 2(d−1)/(m(d+2))·E[G]; so in general
 * C_pos/m − 2(min(m, d) − 1)/(m(d+2))·E[G] (a partial last block is counted as a full one).
 * The positive maps need 3·s² < 1 (σ² < √d/6), trig needs s² < 1: beyond that the mean MSE over
 * Gaussian pairs is infinite (a few pairs dominate any measured average), and the constant is
 * returned as +Inf.  The same means computed by sampling agree (tests/test_theory.c).
 */
#ifndef LA_THEORY_H
#define LA_THEORY_H

#include <stddef.h>

#include "../experiment/cell.h"
#include "figure.h"

/* Mean over pairs of m·MSE for m IID draws, Gaussian inputs of standard deviation sigma in
 * dimension d.  map: "rff" (trig), "prf" (SM⁺; gerf at A = 0 is the same map), "hyp".
 * +Inf where the mean diverges, NaN for a map without a formula. */
double la_lemma2_mean_c(const char *map, int d, double sigma);

/* E over pairs of the ORF correction term G (see above); +Inf where it diverges. */
double la_lemma2_mean_orf_g(int d, double sigma);

/* The theory value at m draws: C/m for IID, and for orthogonal prf the bound above
 * (orthogonal = 1; other maps have no orthogonal formula: NaN).  NaN for a map without one. */
double la_lemma2_mse(const char *map, int orthogonal, int d, double sigma, double m);

/* Number of independent draws behind an output dimension m: m/2 for rff and hyp (2 outputs per
 * draw), m otherwise. */
double la_map_draws(const char *map, double m);

/* The theory lines of one kernel-MSE panel of the features figure (metric 0; other metrics get
 * none), a la_curves_extra_fn: for each random map with a formula (rff, prf, hyp) whose rows
 * (status OK, finite kernel_mse) share the panel's d, σ, data, causality and T and span two
 * values of m, one curve of 40 points log-spaced over that m range: the IID value
 * la_lemma2_mse at m's draws (dotted, "MAP IID theory (Lemma 2)"), and for orthogonal prf rows
 * the ORF bound (dash-dot, "prf ORF bound (Performer Thm 2)").  Gaussian data only.  Where the
 * mean diverges at the panel's σ no line is drawn and the panel's note names the maps.  x is the
 * output dimension m; a value that is not positive is NaN.  Returns LA_OK or LA_ENOMEM. */
int la_theory_lines(const struct la_row *rows, size_t n, const struct la_row *panel, int metric,
                    struct la_figure *fig, struct la_fig_panel *p);

#endif
