/* theory.c — closed-form means of the Performer Lemma 2 MSE over Gaussian input pairs (see
 * theory.h for the derivation), and the features figure's theory lines drawn from them.  Pure
 * arithmetic, no state.  Tests: tests/test_theory.c, tests/test_figures.c (the lines).
 */
#include "theory.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fields.h"

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

double la_map_draws(const char *map, double m)
{
    if (!strcmp(map, "rff") || !strcmp(map, "hyp"))
        return m / 2.0;
    return m;
}

/* ---- the theory lines of the features figure ------------------------------------------------ */

#define THEORY_POINTS 40

int la_theory_lines(const struct la_row *rows, size_t n, const struct la_row *panel, int metric,
                    struct la_figure *fig, struct la_fig_panel *p)
{
    if (metric != 0)
        return LA_OK;
    static const char *const maps[] = {"rff", "prf", "hyp"};
    for (size_t mi = 0; mi < sizeof maps / sizeof maps[0]; mi++) {
        for (int orth = 0; orth <= 1; orth++) {
            if (orth && strcmp(maps[mi], "prf"))
                continue;
            double mlo = INFINITY, mhi = 0;
            int found = 0;
            for (size_t i = 0; i < n; i++) {
                const struct la_row *r = &rows[i];
                if (r->status != LA_ROW_OK || strcmp(r->map, maps[mi]) ||
                    (strcmp(r->draw, "orthogonal") == 0) != orth || !isfinite(r->kernel_mse) ||
                    r->d != panel->d || !la_fig_same_real(r->sigma, panel->sigma) ||
                    strcmp(r->data, panel->data) || r->causal != panel->causal || r->T != panel->T)
                    continue;
                found = 1;
                mlo = r->m < mlo ? r->m : mlo;
                mhi = r->m > mhi ? r->m : mhi;
            }
            if (!found || strcmp(panel->data, "gaussian") || !(mhi > mlo))
                continue;
            double c = la_lemma2_mean_c(maps[mi], panel->d, panel->sigma);
            if (isinf(c)) {
                size_t len = strlen(p->note);
                if (!strstr(p->note, maps[mi]))
                    snprintf(p->note + len, sizeof p->note - len, "%s%s", len ? ", " : "",
                             maps[mi]);
                continue;
            }
            if (!isfinite(c))
                continue;
            struct la_fig_curve cv = {.kind = LA_CURVE_POINTS, .dash = orth ? 3 : 4, .pt = 0};
            if (la_fig_curve_alloc(&cv, THEORY_POINTS) != LA_OK)
                return LA_ENOMEM;
            for (int j = 0; j < THEORY_POINTS; j++) {
                double m = mlo * pow(mhi / mlo, (double)j / (THEORY_POINTS - 1));
                double y = la_lemma2_mse(maps[mi], orth, panel->d, panel->sigma,
                                         la_map_draws(maps[mi], m));
                if (!(y > 0))
                    y = NAN;
                cv.pts[cv.npoints++] = (struct la_fig_point){.x = m, .y = y, .lo = y, .hi = y};
            }
            snprintf(cv.title, sizeof cv.title, "%s %s", maps[mi],
                     orth ? "ORF bound (Performer Thm 2)" : "IID theory (Lemma 2)");
            snprintf(cv.map, sizeof cv.map, "%s", maps[mi]);
            if (la_figure_add_curve(fig, &cv) != LA_OK)
                return LA_ENOMEM;
        }
    }
    if (p->note[0] && !strstr(p->note, "infinite")) {
        char t[sizeof p->note];
        snprintf(t, sizeof t,
                 "Lemma 2: the mean MSE over Gaussian inputs\ndiverges at this σ for %.100s",
                 p->note);
        snprintf(p->note, sizeof p->note, "%s", t);
    }
    return LA_OK;
}
