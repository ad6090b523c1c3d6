/* figure.c — building and freeing the in-memory figure of figure.h.  No I/O.
 * Tests: tests/test_figures.c.
 */
#include "figure.h"

#include <stdlib.h>
#include <string.h>

void la_figure_init(struct la_figure *f)
{
    memset(f, 0, sizeof *f);
}

int la_figure_panels(struct la_figure *f, size_t n)
{
    f->panels = calloc(n ? n : 1, sizeof *f->panels);
    if (!f->panels)
        return LA_ENOMEM;
    f->npanels = n;
    return LA_OK;
}

int la_fig_curve_alloc(struct la_fig_curve *c, size_t n)
{
    c->npoints = 0;
    c->pts = calloc(n ? n : 1, sizeof *c->pts);
    return c->pts ? LA_OK : LA_ENOMEM;
}

int la_figure_add_curve(struct la_figure *f, struct la_fig_curve *c)
{
    for (size_t i = 0; i < f->ncurves && c->title[0] && !f->legend_every_panel; i++)
        if (!strcmp(f->curves[i].title, c->title))
            c->title[0] = '\0';
    if (f->ncurves == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 32;
        struct la_fig_curve *ncv = realloc(f->curves, nc * sizeof *ncv);
        if (!ncv) {
            free(c->pts);
            c->pts = NULL;
            return LA_ENOMEM;
        }
        f->curves = ncv;
        f->cap = nc;
    }
    f->curves[f->ncurves++] = *c;
    c->pts = NULL;
    return LA_OK;
}

void la_figure_free(struct la_figure *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->ncurves; i++)
        free(f->curves[i].pts);
    free(f->curves);
    free(f->panels);
    la_figure_init(f);
}
