/* capacity.c — the capacity figure of capacity.h: grouping the rows into panels and curves, and
 * the dim φ marks.  Not here: the rows (harness/engine/capacity.c), gnuplot.
 */
#include "capacity.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The (keys, values, norm) of a row, as one comparable text. */
static void group_of(const struct la_cap_row *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s keys, %s values, %s norm", r->c.keys, r->c.values, r->c.norm);
}

static int same_curve(const struct la_cap_row *a, const struct la_cap_row *b)
{
    return !strcmp(a->label, b->label) && !strcmp(a->c.rule, b->c.rule);
}

/* Rank of r's label among the distinct labels of its map, in row order (1-based). */
static int label_rank(const struct la_cap_row *rows, size_t n, const struct la_cap_row *r)
{
    int rank = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rows[i].c.map, r->c.map))
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = !strcmp(rows[j].label, rows[i].label);
        if (seen)
            continue;
        rank++;
        if (!strcmp(rows[i].label, r->label))
            return rank;
    }
    return 1;
}

static int cmp_x(const void *a, const void *b)
{
    const double x = ((const struct la_fig_point *)a)->x, y = ((const struct la_fig_point *)b)->x;
    return (x > y) - (x < y);
}

/* The curves of one panel: rows of setting ow and group g. */
static int add_panel(const struct la_cap_row *rows, size_t n, int ow, const char *g,
                     struct la_figure *fig, struct la_fig_panel *p)
{
    char gb[LA_FIG_TEXT_LEN];
    double ylo = INFINITY, yhi = -INFINITY, xlo = INFINITY, xhi = -INFINITY;
    p->first = fig->ncurves;
    for (size_t i = 0; i < n; i++) {
        const struct la_cap_row *r = &rows[i];
        group_of(r, gb, sizeof gb);
        if (r->c.overwrite != ow || strcmp(gb, g))
            continue;
        int first = 1;
        for (size_t j = 0; j < i && first; j++) {
            char gj[LA_FIG_TEXT_LEN];
            group_of(&rows[j], gj, sizeof gj);
            first = !(rows[j].c.overwrite == ow && !strcmp(gj, g) && same_curve(&rows[j], r));
        }
        if (!first)
            continue;
        struct la_fig_curve c;
        memset(&c, 0, sizeof c);
        if (la_fig_curve_alloc(&c, n - i) != LA_OK) /* at most the rows from here on */
            return LA_ENOMEM;
        for (size_t j = i; j < n; j++) {
            const struct la_cap_row *s = &rows[j];
            group_of(s, gb, sizeof gb);
            if (s->c.overwrite != ow || strcmp(gb, g) || !same_curve(s, r) || !isfinite(s->mse))
                continue;
            struct la_fig_point *q = &c.pts[c.npoints++];
            q->x = s->c.S;
            q->y = s->mse;
            q->lo = s->mse_lo;
            q->hi = s->mse_hi;
            q->n = (size_t)s->c.trials;
            if (s->mse_lo > 0)
                ylo = fmin(ylo, s->mse_lo);
            yhi = fmax(yhi, s->mse_hi);
            xlo = fmin(xlo, q->x);
            xhi = fmax(xhi, q->x);
        }
        qsort(c.pts, c.npoints, sizeof *c.pts, cmp_x);
        snprintf(c.title, sizeof c.title, "%s, %s rule", r->label, r->c.rule);
        snprintf(c.map, sizeof c.map, "%s", r->c.map);
        c.dash = strcmp(r->c.rule, "delta") ? 1 : 2;
        c.pt = label_rank(rows, n, r);
        c.kind = LA_CURVE_POINTS;
        if (la_figure_add_curve(fig, &c) != LA_OK)
            return LA_ENOMEM;
    }
    /* The dim φ marks, one per label, within the panel's S range. */
    for (size_t i = 0; i < n && isfinite(ylo) && yhi >= ylo; i++) {
        const struct la_cap_row *r = &rows[i];
        group_of(r, gb, sizeof gb);
        if (r->c.overwrite != ow || strcmp(gb, g) || r->dim < xlo || r->dim > xhi)
            continue;
        int first = 1;
        for (size_t j = 0; j < i && first; j++) {
            char gj[LA_FIG_TEXT_LEN];
            group_of(&rows[j], gj, sizeof gj);
            first = !(rows[j].c.overwrite == ow && !strcmp(gj, g) &&
                      !strcmp(rows[j].label, r->label));
        }
        if (!first)
            continue;
        struct la_fig_curve c;
        memset(&c, 0, sizeof c);
        if (la_fig_curve_alloc(&c, 2) != LA_OK)
            return LA_ENOMEM;
        c.pts[0] = (struct la_fig_point){.x = r->dim, .y = ylo, .lo = ylo, .hi = ylo};
        c.pts[1] = (struct la_fig_point){.x = r->dim, .y = yhi, .lo = yhi, .hi = yhi};
        c.npoints = 2;
        snprintf(c.title, sizeof c.title, "dim φ (dotted)");
        snprintf(c.map, sizeof c.map, "%s", r->c.map);
        c.dash = 4;
        c.pt = 0;
        c.kind = LA_CURVE_POINTS;
        if (la_figure_add_curve(fig, &c) != LA_OK)
            return LA_ENOMEM;
    }
    p->count = fig->ncurves - p->first;
    snprintf(p->title, sizeof p->title, "%s: %.100s", ow ? "overwrite (latest value)" : "unique keys",
             g);
    snprintf(p->xlabel, sizeof p->xlabel, "S (distinct keys stored)");
    snprintf(p->ylabel, sizeof p->ylabel, "retrieval MSE");
    if (!p->count)
        snprintf(p->note, sizeof p->note, "no data");
    return LA_OK;
}

int la_capacity_figure(const struct la_cap_row *rows, size_t n, struct la_figure *fig,
                       struct la_error *err)
{
    la_figure_init(fig);
    if (!n)
        return LA_OK;
    char groups[LA_CAP_MAX_GROUPS][LA_FIG_TEXT_LEN];
    int ng = 0, more = 0, has[2] = {0, 0};
    for (size_t i = 0; i < n; i++) {
        char g[LA_FIG_TEXT_LEN];
        group_of(&rows[i], g, sizeof g);
        has[rows[i].c.overwrite != 0] = 1;
        int k = 0;
        while (k < ng && strcmp(groups[k], g))
            k++;
        if (k < ng)
            continue;
        if (ng == LA_CAP_MAX_GROUPS) {
            more++;
            continue;
        }
        snprintf(groups[ng++], sizeof groups[0], "%s", g);
    }
    const int ncols = has[0] + has[1];
    if (la_figure_panels(fig, (size_t)ng * ncols) != LA_OK)
        return LA_FAIL(err, LA_ENOMEM, "capacity figure: out of memory");
    fig->nrows = ng;
    fig->ncols = ncols;
    size_t p = 0;
    for (int g = 0; g < ng; g++)
        for (int ow = 0; ow <= 1; ow++) {
            if (!has[ow])
                continue;
            if (add_panel(rows, n, ow, groups[g], fig, &fig->panels[p++]) != LA_OK) {
                la_figure_free(fig);
                return LA_FAIL(err, LA_ENOMEM, "capacity figure: out of memory");
            }
        }
    snprintf(fig->stats, sizeof fig->stats,
             "points: mean over trials of the retrieval MSE, bars: smallest and largest trial; "
             "solid: sum rule, dashed: delta rule (β = 1)%s",
             more ? "; more key/value/norm combinations in the file are not drawn" : "");
    fig->fits = 1;
    return LA_OK;
}
