/* theory.c — closed-form means of the Performer Lemma 2 MSE over Gaussian input pairs (see
 * theory.h for the derivation).  Pure arithmetic, no state.  Tests: tests/test_theory.c.
 */
#include "theory.h"

#include <math.h>
#include <string.h>

/* E[exp(a‖u‖²)] for u ~ N(0, s²·I_d): (1 − 2·a·s²)^{-d/2}, +Inf where it diverges. */
static double mgf(double a, double s2, int d)
{
    double base = 1.0 - 2.0 * a * s2;
    if (base <= 0)
        return INFINITY;
    return exp(-0.5 * d * log(base));
}

/* E[exp(a‖u‖² + b‖w‖²)] with u, w independent: the product of the two. */
static double term(double a, double b, double s2, int d)
{
    return mgf(a, s2, d) * mgf(b, s2, d);
}

static double s2_of(int d, double sigma)
{
    return 2.0 * sigma * sigma / sqrt((double)d);
}

double la_lemma2_mean_c(const char *map, int d, double sigma)
{
    if (d < 1 || !(sigma > 0))
        return NAN;
    double s2 = s2_of(d, sigma);
    if (!strcmp(map, "rff")) {
        if (isinf(mgf(0.5, s2, d)))
            return INFINITY;
        double e = term(0.5, 0.5, s2, d) - 2.0 * term(0.5, -0.5, s2, d) + term(0.5, -1.5, s2, d);
        return 0.5 * e;
    }
    if (!strcmp(map, "prf")) {
        double a = term(1.5, -0.5, s2, d);
        return isinf(a) ? INFINITY : a - term(0.5, -0.5, s2, d);
    }
    if (!strcmp(map, "hyp")) {
        double a = term(1.5, -0.5, s2, d);
        if (isinf(a))
            return INFINITY;
        return 0.5 * (a - 2.0 * term(0.5, -0.5, s2, d) + term(-0.5, -0.5, s2, d));
    }
    return NAN;
}

double la_lemma2_mean_orf_g(int d, double sigma)
{
    if (d < 1 || !(sigma > 0))
        return NAN;
    double s2 = s2_of(d, sigma);
    double a = term(0.5, -0.5, s2, d);
    if (isinf(a))
        return INFINITY;
    return a - 2.0 * mgf(-0.5, s2, d) + term(-0.5, -0.5, s2, d);
}

double la_lemma2_mse(const char *map, int orthogonal, int d, double sigma, double m)
{
    if (!(m > 0))
        return NAN;
    double c = la_lemma2_mean_c(map, d, sigma);
    if (!orthogonal)
        return c / m;
    if (strcmp(map, "prf"))
        return NAN;
    double g = la_lemma2_mean_orf_g(d, sigma);
    double blk = m < d ? m : d;
    return c / m - 2.0 * (blk - 1.0) / (m * (d + 2.0)) * g;
}

double la_map_draws(const char *map, int m)
{
    if (!strcmp(map, "rff") || !strcmp(map, "hyp"))
        return m / 2.0;
    return m;
}
