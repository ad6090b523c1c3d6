/* progress.c — the progress line with ETA of `linattn run` (see progress.h for the model).
 * Reads time only through la_now() (timing.h).  Tests: tests/test_runner.c.
 */
#include "progress.h"

#include <math.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../core/timing.h"

void la_progress_init(struct la_progress *p, FILE *out, int enabled, size_t total, size_t todo,
                      double todo_flops)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->enabled = enabled && out;
    p->total = total;
    p->cells_left = todo;
    p->flops_left = todo_flops > 0.0 ? todo_flops : 0.0;
    p->t0 = la_now();
    p->width = 80;
    struct winsize w;
    if (p->enabled && ioctl(fileno(out), TIOCGWINSZ, &w) == 0 && w.ws_col >= 20)
        p->width = w.ws_col;
}

void la_format_duration(double seconds, char *buf, size_t cap)
{
    if (!(seconds >= 0.0) || seconds > 3.6e8) {
        snprintf(buf, cap, "--:--");
        return;
    }
    const long s = lround(seconds);
    if (s >= 3600)
        snprintf(buf, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%02ld:%02ld", s / 60, s % 60);
}

double la_progress_eta(const struct la_progress *p)
{
    if (p->cells_left == 0)
        return 0.0;
    if (p->n < 1.0)
        return NAN;
    const double left = (double)p->cells_left, fl = p->flops_left;
    if (p->n >= 3.0) {
        const double det = p->n * p->sff - p->sf * p->sf;
        if (det > 1e-12 * p->n * p->sff) {
            const double b = (p->n * p->sft - p->sf * p->st) / det;
            const double a = (p->st - b * p->sf) / p->n;
            if (a >= 0.0 && b >= 0.0)
                return a * left + b * fl;
        }
    }
    const double by_count = p->st / p->n * left;
    const double by_flops = p->sf > 0.0 ? p->st / p->sf * fl : 0.0;
    return by_count > by_flops ? by_count : by_flops;
}

void la_progress_start(struct la_progress *p, size_t pos, const struct la_cell *c)
{
    if (!p->enabled)
        return;
    char el[32], eta[32], line[512];
    la_format_duration(la_now() - p->t0, el, sizeof el);
    la_format_duration(la_progress_eta(p), eta, sizeof eta);
    int n = snprintf(line, sizeof line, "[%zu/%zu] kernel=%s map=%s T=%d d=%d  elapsed %s  ETA %s",
                     pos, p->total, c->kernel, c->map, c->T, c->d, el, eta);
    if (n < 0)
        return;
    /* Cut to the terminal width so the line never wraps (a wrapped line cannot be rewritten). */
    const int maxw = p->width - 1;
    if (n > maxw)
        n = maxw;
    fprintf(p->out, "\r%.*s\033[K", n, line);
    fflush(p->out);
    p->drawn = 1;
}

void la_progress_done(struct la_progress *p, double flops, double seconds)
{
    if (!(flops >= 0.0))
        flops = 0.0;
    p->n += 1.0;
    p->sf += flops;
    p->st += seconds;
    p->sff += flops * flops;
    p->sft += flops * seconds;
    if (p->cells_left)
        p->cells_left--;
    p->flops_left -= flops;
    if (p->flops_left < 0.0)
        p->flops_left = 0.0;
}

void la_progress_clear(struct la_progress *p)
{
    if (!p->enabled || !p->drawn)
        return;
    fprintf(p->out, "\r\033[K");
    fflush(p->out);
    p->drawn = 0;
}
