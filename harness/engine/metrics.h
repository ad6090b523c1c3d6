/* metrics.h — the error metrics of a row: pure functions on small arrays, no allocation, no I/O.
 *
 * An fp32 output is compared with a double reference; attention rows are compared as
 * probability distributions.  The runner (runner.c) feeds them sampled rows of sampled heads;
 * the accumulator lets it add rows head by head and read the totals at the end.
 * Not here: sampling, references, feature maps (runner.c).  Tests: tests/test_runner.c.
 */
#ifndef LA_METRICS_H
#define LA_METRICS_H

#include <stddef.h>

/* ‖y − ref‖_F / ‖ref‖_F over n values (0 when both are zero; +Inf when only ref is zero). */
double la_rel_fro(const float *y, const double *ref, size_t n);

/* max |y − ref| over n values. */
double la_max_abs(const float *y, const double *ref, size_t n);

/* cos(y, ref) of one row of n values: 1 when both are zero, 0 when exactly one is. */
double la_cosine(const float *y, const double *ref, size_t n);

/* KL(p ‖ q) = Σ p_j log(p_j / q_j) in nats over n entries; p and q are distributions (each sums
 * to 1; not checked).  Terms with p_j = 0 are 0; q_j <= 0 where p_j > 0 gives +Inf. */
double la_kl(const double *p, const double *q, size_t n);

/* Entropy −Σ p_j log p_j in nats of a distribution of n entries (terms with p_j = 0 are 0). */
double la_entropy(const double *p, size_t n);

/* Running sums for the output errors over rows added one block at a time. */
struct la_err_acc {
    double num2;    /* Σ (y − ref)² */
    double den2;    /* Σ ref² */
    double max_abs; /* max |y − ref| */
    double cos_sum; /* Σ over rows of cos(y_i, ref_i) */
    long rows;      /* rows added */
};

void la_err_acc_init(struct la_err_acc *a);
/* Adds nrows rows of dv values each (y and ref row-major with the same layout). */
void la_err_acc_add(struct la_err_acc *a, const float *y, const double *ref, size_t nrows,
                    size_t dv);
double la_err_acc_rel_fro(const struct la_err_acc *a); /* NaN when no rows were added */
double la_err_acc_cos_mean(const struct la_err_acc *a);

#endif
