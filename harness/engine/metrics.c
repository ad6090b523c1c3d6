/* metrics.c — error metrics on small arrays (see metrics.h): relative Frobenius, max abs,
 * cosine, KL divergence, entropy, and a row accumulator.  Everything in double, whatever the
 * input precision, so the metric adds no error of its own to what it measures.
 * Tests: tests/test_runner.c (known inputs).
 */
#include "metrics.h"

#include <math.h>

double la_rel_fro(const float *y, const double *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)y[i] - ref[i];
        num += e * e;
        den += ref[i] * ref[i];
    }
    if (den == 0.0)
        return num == 0.0 ? 0.0 : INFINITY;
    return sqrt(num / den);
}

double la_max_abs(const float *y, const double *ref, size_t n)
{
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double e = fabs((double)y[i] - ref[i]);
        /* A NaN difference must not be lost by the comparison. */
        if (e > mx || isnan(e))
            mx = e;
    }
    return mx;
}

double la_cosine(const float *y, const double *ref, size_t n)
{
    double dot = 0.0, yy = 0.0, rr = 0.0;
    for (size_t i = 0; i < n; i++) {
        dot += (double)y[i] * ref[i];
        yy += (double)y[i] * y[i];
        rr += ref[i] * ref[i];
    }
    if (yy == 0.0 && rr == 0.0)
        return 1.0;
    if (yy == 0.0 || rr == 0.0)
        return 0.0;
    return dot / (sqrt(yy) * sqrt(rr));
}

double la_kl(const double *p, const double *q, size_t n)
{
    double kl = 0.0;
    for (size_t j = 0; j < n; j++) {
        if (p[j] <= 0.0)
            continue;
        if (q[j] <= 0.0)
            return INFINITY;
        kl += p[j] * log(p[j] / q[j]);
    }
    return kl;
}

double la_entropy(const double *p, size_t n)
{
    double h = 0.0;
    for (size_t j = 0; j < n; j++)
        if (p[j] > 0.0)
            h -= p[j] * log(p[j]);
    return h;
}

void la_err_acc_init(struct la_err_acc *a)
{
    a->num2 = 0.0;
    a->den2 = 0.0;
    a->max_abs = 0.0;
    a->cos_sum = 0.0;
    a->rows = 0;
}

void la_err_acc_add(struct la_err_acc *a, const float *y, const double *ref, size_t nrows,
                    size_t dv)
{
    for (size_t r = 0; r < nrows; r++) {
        const float *yr = y + r * dv;
        const double *rr = ref + r * dv;
        for (size_t c = 0; c < dv; c++) {
            const double e = (double)yr[c] - rr[c];
            a->num2 += e * e;
            a->den2 += rr[c] * rr[c];
        }
        const double m = la_max_abs(yr, rr, dv);
        if (m > a->max_abs || isnan(m))
            a->max_abs = m;
        a->cos_sum += la_cosine(yr, rr, dv);
        a->rows++;
    }
}

double la_err_acc_rel_fro(const struct la_err_acc *a)
{
    if (a->rows == 0)
        return NAN;
    if (a->den2 == 0.0)
        return a->num2 == 0.0 ? 0.0 : INFINITY;
    return sqrt(a->num2 / a->den2);
}

double la_err_acc_cos_mean(const struct la_err_acc *a)
{
    return a->rows ? a->cos_sum / (double)a->rows : NAN;
}
