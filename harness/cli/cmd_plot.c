/* cmd_plot.c — `linattn plot FILE.h5 [-o DIR]`: draws the figures that fit a results file.
 *
 * How: the rows are read (la_results_read) and every figure of the table below is prepared from
 * them by harness/figures/ into an in-memory figure (figure.h: panels, curves, points; the
 * preparation, its rules and its tests live there).  This file writes it into a temporary
 * directory: a data file of TSV blocks (one block per curve, blocks separated by two blank
 * lines, so gnuplot's `index` picks a curve) and a meta file of gnuplot variables (output path,
 * caption, panel layout and titles, and per curve its legend title, colour key, dash and point
 * type).  Then `gnuplot META plots/FIG.gp` is spawned (posix_spawnp, no shell: file names need
 * no shell quoting; strings in META use gnuplot's own double-quote escapes).  The scripts only
 * draw.  Output: DIR/STEM_FIG.png and .pdf, where STEM is the experiment name (just DIR/FIG.*
 * when the experiment is named after the figure), and the T* table DIR/STEM_tstar.tsv.
 *
 * Figures and when they fit (rows with status OK only):
 *   crossover  time (kernel + feature map) vs T, softmax against every linear series, one panel
 *              per (causal, d), T* in the legend and marked (crossover.h): timed softmax and
 *              linear rows with >= 2 common T, and a median of >= 3 timed repeats among the rows
 *              at the largest T (a memory run times its big cells once: too noisy for a
 *              crossover; --only crossover forces it)
 *   speedup    heatmap of t_softmax / t_linear over (T, d), one panel per (causal, linear
 *              series) (speedup.h)
 *   features   kernel MSE and output error vs m (output dimension), Lemma 2 theory lines: error
 *              rows of random maps with >= 2 values of m (curves.h, theory.h)
 *   error_T    output error and attention KL vs T (error rows, >= 2 T; at one σ when σ varies)
 *   error_sigma  the same vs σ (error rows, >= 2 σ; at one T when T varies)
 *   memory     kernel workspace and process peak RSS vs T (>= 2 T); every row has a workspace,
 *              so by default only for files no other figure fits (a memory experiment)
 *   train_memory  bytes a pass holds (step_bytes) vs T, forward solid, training dashed; by default
 *              only for files with training rows (pass: backward or forward+backward)
 *   real_heads error and KL per head of a real model, heads sorted by entropy (realheads.h)
 *   fidelity   model-level KL and top-1 agreement of a linearised model vs m, per map, with the
 *              map's attention-level KL on the model's heads from --heads FILE (fidelity.h):
 *              rows of data source model with a map
 *   fit_m      test attention KL and output error vs m: fitted learned maps (one weights file
 *              per m) against the other maps of the file (fitsweep.h): h5 rows of single heads
 *              whose learned map has two values of m; the weights files' train_tokens
 *              attributes are read (paths as the rows name them) to pick the fitted set
 *   fit_tokens the same vs the tokens each weights file was trained on (fitsweep.h): some m of
 *              the learned map with two token counts
 *   decode_latency  step time vs context t, every step series (decode.h): step rows, a series
 *              with >= 2 contexts; decode_memory: their state or KV cache bytes vs t
 *   decode_speedup  softmax / linear time to generate N tokens after a prompt vs N, with the
 *              100x and 1000x lines: a linear and a softmax step series of one shape; the decode
 *              t* table DIR/STEM_decode_tstar.tsv is written with it
 *   capacity   retrieval error vs stored keys S per (map, rule), dim φ marked, unique and
 *              overwrite panels (harness/figures/capacity.h): the rows of a capacity file
 *              (`linattn capacity`, harness/engine/capacity.h), read instead of results rows
 * Step rows (decode cells, la_row_is_step) go to the decode figures only, every other row to the
 * others.
 *
 * Exit status: 0 when a figure was drawn, 1 when none was (one stderr line gives the reason and
 * the ok/failed row counts), 2 for every other error (arguments, files, gnuplot).
 * Not here: preparing the figures (harness/figures/), running experiments, the TSV export
 * (cmd_export.c), the styles (plots/style.gp).
 * Tests: tests/figures_e2e.sh (run → export → plot; PNG/PDF magic bytes and sizes); the
 * preparation: tests/test_figures.c, tests/test_crossover.c.
 */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../figures/capacity.h"
#include "../figures/crossover.h"
#include "../figures/curves.h"
#include "../figures/decode.h"
#include "../figures/fidelity.h"
#include "../figures/fields.h"
#include "../figures/figure.h"
#include "../figures/fitsweep.h"
#include "../figures/realheads.h"
#include "../figures/speedup.h"
#include "../core/h5util.h"
#include "../store/results.h"
#include "commands.h"
#include "options.h"

extern char **environ;

#define MAX_FILES 64

/* ---- the plot session --------------------------------------------------------------------- */

struct plot {
    const char *h5;
    struct la_row *rows;
    size_t n;
    char outdir[LA_PATH_LEN];
    char tmpdir[LA_PATH_LEN];
    char scripts[LA_PATH_LEN];
    char caption[1024];
    char stem[128];
    char formats[16];
    int png_dpi; /* 0: the style's default */
    int keep;    /* the temporary directory was given (--keep) and is left in place */
    int quiet;
    int forced; /* --only named figures: draw them even when a fit test says no */
    char *tmpfiles[MAX_FILES];
    size_t ntmp;
    struct la_crossover *xo;
    size_t nxo;
    size_t nstep; /* step rows, after the n others in rows */
    struct la_decode_series *ds;
    size_t nds;
    struct la_decode_pair *dp;
    size_t ndp;
    struct la_row *heads; /* --heads: the same maps on the model's heads (NULL: not given) */
    size_t nheads;
    struct la_cap_row *cap; /* a capacity file's rows (then rows is empty) */
    size_t ncap;
    struct la_fit_weights *fw; /* the learned rows' weights files and their training tokens */
    size_t nfw;
    int fw_read; /* fw has been read */
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* Writes s as a gnuplot double-quoted string (backslash and quote escaped; a newline becomes
 * gnuplot's \n escape, a line break in the drawn text; other control characters become spaces,
 * so one string stays on one line of the meta file). */
static void gp_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fputc('\\', f), fputc(c, f);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20)
            fputc(' ', f);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void meta_str(FILE *f, const char *name, const char *v)
{
    fprintf(f, "%s = ", name);
    gp_string(f, v);
    fputc('\n', f);
}

/* A number for gnuplot ("NaN" for NaN: gnuplot reads it). */
static void put_num(FILE *f, double x)
{
    if (isnan(x))
        fputs("NaN", f);
    else if (isinf(x))
        fputs(x > 0 ? "1e308" : "-1e308", f);
    else
        fprintf(f, "%.9g", x);
}

/* mkdir -p. */
static int make_dirs(const char *path, struct la_error *err)
{
    char buf[LA_PATH_LEN];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return LA_FAIL(err, LA_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return LA_FAIL(err, LA_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return LA_FAIL(err, LA_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    struct stat st;
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
        return LA_FAIL(err, LA_EIO, "%s is not a directory", buf);
    return LA_OK;
}

/* Opens TMPDIR/name for writing and remembers it for the cleanup. */
static FILE *tmp_open(struct plot *P, const char *name, char *path, size_t cap,
                      struct la_error *err)
{
    if (snprintf(path, cap, "%s/%s", P->tmpdir, name) >= (int)cap) {
        LA_FAIL(err, LA_EINVAL, "temporary path too long");
        return NULL;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        LA_FAIL(err, LA_EIO, "cannot write %s: %s", path, strerror(errno));
        return NULL;
    }
    if (P->ntmp < MAX_FILES)
        P->tmpfiles[P->ntmp++] = strdup(path);
    return f;
}

static int close_checked(FILE *f, const char *path, struct la_error *err)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return LA_FAIL(err, LA_EIO, "cannot write %s", path);
    return LA_OK;
}

/* ---- writing a prepared figure for gnuplot ------------------------------------------------ */

/* The meta arrays: panel layout, and per panel its title, labels, note and 1-based curve range;
 * per curve its legend title, colour key, dash and point type. */
static void write_meta_arrays(FILE *meta, const struct la_figure *fig)
{
    int np = (int)fig->npanels, n = np ? np : 1;
    fprintf(meta, "npanels = %d\nnrows = %d\nncols = %d\n", np, fig->nrows, fig->ncols);
    meta_str(meta, "fig_stats", fig->stats);
    fprintf(meta,
            "array ptitle[%d]\narray pxlabel[%d]\narray pylabel[%d]\narray pnote[%d]\n"
            "array pfirst[%d]\narray plast[%d]\n",
            n, n, n, n, n, n);
    for (int p = 0; p < np; p++) {
        const struct la_fig_panel *pm = &fig->panels[p];
        fprintf(meta, "ptitle[%d] = ", p + 1);
        gp_string(meta, pm->title);
        fprintf(meta, "; pxlabel[%d] = ", p + 1);
        gp_string(meta, pm->xlabel);
        fprintf(meta, "; pylabel[%d] = ", p + 1);
        gp_string(meta, pm->ylabel);
        fprintf(meta, "; pnote[%d] = ", p + 1);
        gp_string(meta, pm->note);
        fprintf(meta, "; pfirst[%d] = %d; plast[%d] = %d\n", p + 1, (int)pm->first + 1, p + 1,
                (int)(pm->first + pm->count));
    }
    size_t nb = fig->ncurves ? fig->ncurves : 1;
    fprintf(meta,
            "nblocks = %zu\narray btitle[%zu]\narray bmap[%zu]\narray bdash[%zu]\n"
            "array bpt[%zu]\narray bshade[%zu]\n",
            fig->ncurves, nb, nb, nb, nb, nb);
    for (size_t i = 0; i < fig->ncurves; i++) {
        const struct la_fig_curve *c = &fig->curves[i];
        fprintf(meta, "btitle[%zu] = ", i + 1);
        gp_string(meta, c->title);
        fprintf(meta, "; bmap[%zu] = ", i + 1);
        gp_string(meta, c->map);
        fprintf(meta, "; bdash[%zu] = %d; bpt[%zu] = %d; bshade[%zu] = %d\n", i + 1, c->dash,
                i + 1, c->pt, i + 1, c->shade ? c->shade : c->pt);
    }
}

/* The data file: one block per curve (its points, then two blank lines, so gnuplot's `index`
 * picks a curve).  A point line: x, y, lo, hi, n; a timing curve adds the kernel and feature
 * map times. */
static void write_blocks(FILE *data, const struct la_figure *fig)
{
    for (size_t i = 0; i < fig->ncurves; i++) {
        const struct la_fig_curve *c = &fig->curves[i];
        for (size_t j = 0; j < c->npoints; j++) {
            const struct la_fig_point *q = &c->pts[j];
            if (c->kind == LA_CURVE_TIMING) {
                fprintf(data, "%.0f\t%.9g\t%.9g\t%.9g\t%zu\t%.9g\t%.9g\n", q->x, q->y, q->lo, q->hi,
                        q->n, q->kernel, q->fm);
                continue;
            }
            put_num(data, q->x);
            fputc('\t', data);
            put_num(data, q->y);
            fputc('\t', data);
            put_num(data, q->lo);
            fputc('\t', data);
            put_num(data, q->hi);
            fprintf(data, "\t%zu\n", q->n);
        }
        fputs("\n\n", data);
    }
}

/* Writes a prepared figure that fits (nothing for one that does not). */
static void write_figure(FILE *meta, FILE *data, const struct la_figure *fig)
{
    if (!fig->fits)
        return;
    write_meta_arrays(meta, fig);
    write_blocks(data, fig);
}

/* ---- the figures: preparing each (harness/figures/) and writing it ------------------------- */

struct figure;
typedef int (*draw_fn)(struct plot *P, const struct figure *fig, FILE *meta, FILE *data, int *fits,
                       struct la_error *err);

struct figure {
    const char *name; /* file name part, --only value, plots/NAME.gp */
    const char *what;
    draw_fn prepare;                  /* prepares the figure and writes gnuplot's inputs */
    const struct la_curve_spec *spec; /* curve figures: the specification (curves.h) */
};

static int draw_curves(struct plot *P, const struct figure *f, FILE *meta, FILE *data, int *fits,
                       struct la_error *err)
{
    struct la_figure fig;
    int st = la_curves_prepare(P->rows, P->n, f->spec, P->forced, &fig, err);
    if (st == LA_OK)
        write_figure(meta, data, &fig);
    *fits = fig.fits;
    la_figure_free(&fig);
    return st;
}

static int draw_crossover(struct plot *P, const struct figure *f, FILE *meta, FILE *data, int *fits,
                          struct la_error *err)
{
    struct la_figure fig;
    const int sel = la_crossover_selection(P->xo, P->nxo, !strcmp(f->name, "crossover_recurrences"));
    int st = la_crossover_figure_of(P->rows, P->n, P->xo, P->nxo, P->forced, sel, &fig, err);
    if (st == LA_OK)
        write_figure(meta, data, &fig);
    *fits = fig.fits;
    la_figure_free(&fig);
    return st;
}

/* The heatmap's own variables: the d values (y axis), the colour range, the log2 T range. */
static int draw_speedup(struct plot *P, const struct figure *f, FILE *meta, FILE *data, int *fits,
                        struct la_error *err)
{
    struct la_speedup sp;
    int st = la_speedup_prepare(P->rows, P->n, P->xo, P->nxo, P->forced, &sp, err);
    if (st == LA_OK && sp.fig.fits) {
        write_figure(meta, data, &sp.fig);
        fprintf(meta, "nd = %d\narray dvals[%d]\n", sp.nd, sp.nd ? sp.nd : 1);
        for (int i = 0; i < sp.nd; i++)
            fprintf(meta, "dvals[%d] = %g\n", i + 1, sp.ds[i]);
        fprintf(meta, "cbmax = %g\npanel_w = %g\n", sp.cbmax, sp.panel_w);
        fprintf(meta, "log2Tmin = %g\nlog2Tmax = %g\n", sp.nT ? log2(sp.Ts[0]) : 0,
                sp.nT ? log2(sp.Ts[sp.nT - 1]) : 1);
    }
    *fits = sp.fig.fits;
    la_speedup_free(&sp);
    return st;
}

static int draw_real_heads(struct plot *P, const struct figure *f, FILE *meta, FILE *data,
                           int *fits, struct la_error *err)
{
    struct la_realheads rh;
    int st = la_realheads_prepare(P->rows, P->n, &rh, err);
    if (st == LA_OK)
        write_figure(meta, data, &rh.fig);
    *fits = rh.fig.fits;
    la_realheads_free(&rh);
    return st;
}

static int draw_decode(struct plot *P, const struct figure *f, FILE *meta, FILE *data, int *fits,
                       struct la_error *err)
{
    struct la_figure fig;
    int st;
    if (!strcmp(f->name, "decode_latency"))
        st = la_decode_latency_figure(P->ds, P->nds, P->forced, &fig, err);
    else if (!strcmp(f->name, "decode_memory"))
        st = la_decode_memory_figure(P->ds, P->nds, P->forced, &fig, err);
    else
        st = la_decode_speedup_figure(P->ds, P->nds, P->dp, P->ndp, &fig, err);
    if (st == LA_OK)
        write_figure(meta, data, &fig);
    *fits = st == LA_OK && fig.fits;
    la_figure_free(&fig);
    return st;
}

/* Whether some row of the file is a training pass (pass other than forward). */
static int has_training_rows(const struct plot *P)
{
    for (size_t i = 0; i < P->n; i++)
        if (P->rows[i].pass[0] && strcmp(P->rows[i].pass, "forward"))
            return 1;
    return 0;
}

static int draw_fidelity(struct plot *P, const struct figure *f, FILE *meta, FILE *data,
                         int *fits, struct la_error *err)
{
    struct la_figure fig;
    int st = la_fidelity_figure(P->rows, P->n, P->heads, P->nheads, &fig, err);
    if (st == LA_OK)
        write_figure(meta, data, &fig);
    *fits = st == LA_OK && fig.fits;
    la_figure_free(&fig);
    return st;
}

static int draw_capacity(struct plot *P, const struct figure *f, FILE *meta, FILE *data,
                         int *fits, struct la_error *err)
{
    (void)f;
    struct la_figure fig;
    int st = la_capacity_figure(P->cap, P->ncap, &fig, err);
    if (st == LA_OK)
        write_figure(meta, data, &fig);
    *fits = st == LA_OK && fig.fits;
    la_figure_free(&fig);
    return st;
}

/* The training tokens a weights file records (its train_tokens attribute, `linattn fit`); NaN
 * when the file cannot be read or has none (a file from init-learned, or fit before it wrote
 * the attribute).  Paths are the rows' own, relative to the directory plot runs in. */
static double weights_tokens(const char *path)
{
    double t = NAN;
    H5E_BEGIN_TRY
    {
        hid_t f = la_h5_open_readonly(path);
        if (f >= 0) {
            hid_t a = H5Aexists(f, "train_tokens") > 0 ? H5Aopen(f, "train_tokens", H5P_DEFAULT)
                                                       : H5I_INVALID_HID;
            double x;
            if (a >= 0 && H5Aread(a, H5T_NATIVE_DOUBLE, &x) >= 0 && isfinite(x) && x > 0)
                t = x;
            if (a >= 0)
                H5Aclose(a);
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    return t;
}

/* P->fw: each weights file the learned rows name, once, with its training tokens. */
static int read_fit_weights(struct plot *P, struct la_error *err)
{
    if (P->fw_read)
        return LA_OK;
    P->fw_read = 1;
    P->fw = calloc(P->n ? P->n : 1, sizeof *P->fw);
    if (!P->fw)
        return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
    for (size_t i = 0; i < P->n; i++) {
        const char *w = P->rows[i].weights;
        size_t k = 0;
        while (k < P->nfw && strcmp(P->fw[k].path, w))
            k++;
        if (!w[0] || k < P->nfw)
            continue;
        snprintf(P->fw[k].path, sizeof P->fw[k].path, "%s", w);
        P->fw[k].tokens = weights_tokens(w);
        P->nfw++;
    }
    return LA_OK;
}

static int draw_fit(struct plot *P, const struct figure *f, FILE *meta, FILE *data, int *fits,
                    struct la_error *err)
{
    struct la_figure fig;
    int st = read_fit_weights(P, err);
    if (st != LA_OK)
        return st;
    if (!strcmp(f->name, "fit_m"))
        st = la_fit_m_figure(P->rows, P->n, P->fw, P->nfw, &fig, err);
    else
        st = la_fit_tokens_figure(P->rows, P->n, P->fw, P->nfw, &fig, err);
    if (st == LA_OK)
        write_figure(meta, data, &fig);
    *fits = st == LA_OK && fig.fits;
    la_figure_free(&fig);
    return st;
}

/* ---- the figure table ----------------------------------------------------------------------- */

static const struct figure figures[] = {
    {"crossover", "time (kernel + feature map) vs T, softmax vs linear, T* marked", draw_crossover,
     NULL},
    {"crossover_recurrences",
     "the same for the recurrences (delta, decay, gated) when the file also has plain linear",
     draw_crossover, NULL},
    {"speedup", "heatmap of t_softmax / t_linear over (T, d)", draw_speedup, NULL},
    {"features", "kernel MSE and output error vs m, with Lemma 2 theory", draw_curves,
     &la_curves_features},
    {"error_T", "output error and attention KL vs T (at one σ)", draw_curves, &la_curves_error_T},
    {"error_sigma", "output error and attention KL vs input scale σ (at one T)", draw_curves,
     &la_curves_error_sigma},
    {"memory", "kernel workspace and process peak RSS vs T (when nothing else fits)", draw_curves,
     &la_curves_memory},
    {"train_memory", "bytes a forward pass and a training step hold vs T (files with pass rows)",
     draw_curves, &la_curves_train_memory},
    {"real_heads", "output error and attention KL per real head, heads sorted by softmax entropy",
     draw_real_heads, NULL},
    {"fidelity", "model-level KL and top-1 of a linearised model vs m (model cells; --heads)",
     draw_fidelity, NULL},
    {"fit_m", "test attention KL and output error vs m, fitted learned maps beside the others",
     draw_fit, NULL},
    {"fit_tokens", "test attention KL and output error vs the learned map's training tokens",
     draw_fit, NULL},
    {"decode_latency", "decode step time vs context t, softmax vs linear (step cells)", draw_decode,
     NULL},
    {"decode_speedup", "softmax / linear time to generate N tokens after a prompt, vs N",
     draw_decode, NULL},
    {"decode_memory", "state or KV cache bytes vs context t (step cells)", draw_decode, NULL},
    {"capacity", "retrieval error vs stored keys S per map and rule (`linattn capacity` files)",
     draw_capacity, NULL},
};
#define N_FIGURES (sizeof figures / sizeof figures[0])

/* ---- running gnuplot -------------------------------------------------------------------- */

static int run_gnuplot(const char *meta, const char *script, struct la_error *err)
{
    char *argv[] = {"gnuplot", (char *)meta, (char *)script, NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc == ENOENT)
        return LA_FAIL(err, LA_EIO,
                       "gnuplot is not installed (not found on PATH); install it with "
                       "`apt-get install gnuplot-nox` (Debian/Ubuntu, or `sudo "
                       "scripts/install-deps.sh`), `dnf install gnuplot` or `brew install "
                       "gnuplot`, then rerun");
    if (rc != 0)
        return LA_FAIL(err, LA_EIO, "cannot start gnuplot: %s", strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return LA_FAIL(err, LA_EIO, "waiting for gnuplot: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return LA_FAIL(err, LA_EIO,
                       "gnuplot failed on %s (%s %d); rerun with --keep DIR to inspect its "
                       "input",
                       script, WIFEXITED(status) ? "exit" : "signal",
                       WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return LA_OK;
}

static int file_ok(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
}

/* The directory holding style.gp: --scripts, $LINATTN_PLOTS, ./plots, next to the executable,
 * ../share/linattn/plots from it. */
static int find_scripts(char *out, size_t cap, const char *given, struct la_error *err)
{
    char cand[5][LA_PATH_LEN + 32];
    int nc = 0;
    char probe[LA_PATH_LEN + 64];
    if (given) {
        snprintf(probe, sizeof probe, "%s/style.gp", given);
        if (!file_ok(probe))
            return LA_FAIL(err, LA_EINVAL, "--scripts %s: no style.gp there", given);
        snprintf(out, cap, "%s", given);
        return LA_OK;
    }
    const char *env = getenv("LINATTN_PLOTS");
    if (env && *env)
        snprintf(cand[nc++], sizeof cand[0], "%.500s", env);
    snprintf(cand[nc++], sizeof cand[0], "plots");
    char exe[LA_PATH_LEN];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            snprintf(cand[nc++], sizeof cand[0], "%.400s/plots", exe);
            snprintf(cand[nc++], sizeof cand[0], "%.400s/../plots", exe);
            snprintf(cand[nc++], sizeof cand[0], "%.400s/../share/linattn/plots", exe);
        }
    }
    for (int i = 0; i < nc; i++) {
        snprintf(probe, sizeof probe, "%.500s/style.gp", cand[i]);
        if (file_ok(probe)) {
            snprintf(out, cap, "%.500s", cand[i]);
            return LA_OK;
        }
    }
    return LA_FAIL(err, LA_EIO,
                   "cannot find the gnuplot scripts (plots/style.gp): run from the repository "
                   "root, set LINATTN_PLOTS, or pass --scripts DIR");
}

/* The experiment name as a file-name stem: letters, digits, '-', '_', '.'. */
static void make_stem(const char *name, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *s = name; *s && k + 1 < cap; s++) {
        char c = *s;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.';
        out[k++] = ok ? c : '_';
    }
    out[k] = '\0';
    if (!k || out[0] == '.')
        snprintf(out, cap, "results");
}

/* The caption under every figure: file, experiment, commit, tool, CPU, threads, date. */
static void make_caption(struct plot *P, const char *name)
{
    char commit[128] = "?", ver[64] = "", cpu[160] = "", thr[32] = "", utc[64] = "";
    struct la_error e;
    /* A capacity file has the same provenance attributes but is not a results file. */
    int (*attr)(const char *, const char *, char *, size_t, struct la_error *) =
        P->cap ? la_capacity_attr : la_results_attr;
    attr(P->h5, "git_commit", commit, sizeof commit, &e);
    attr(P->h5, "tool_version", ver, sizeof ver, &e);
    attr(P->h5, "cpu_model", cpu, sizeof cpu, &e);
    attr(P->h5, "threads", thr, sizeof thr, &e);
    attr(P->h5, "created_utc", utc, sizeof utc, &e);
    const char *base = strrchr(P->h5, '/');
    base = base ? base + 1 : P->h5;
    const char *thr_word = !thr[0] ? "" : strcmp(thr, "1") ? " threads" : " thread";
    snprintf(P->caption, sizeof P->caption,
             "experiment %s (%s) · linattn %s, commit %s · %s%s%s%s · %s", name, base,
             ver[0] ? ver : "?", commit, cpu[0] ? cpu : "unknown CPU", thr[0] ? ", " : "", thr,
             thr_word, utc);
}

static void cleanup(struct plot *P)
{
    for (size_t i = 0; i < P->ntmp; i++) {
        if (!P->keep && P->tmpfiles[i])
            unlink(P->tmpfiles[i]);
        free(P->tmpfiles[i]);
    }
    P->ntmp = 0;
    if (!P->keep && P->tmpdir[0])
        rmdir(P->tmpdir);
}

/* Writes the T* table as TSV next to the figures (for papers and `linattn info`-like use). */
static int write_tstar(const struct plot *P, const char *path, struct la_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return LA_FAIL(err, LA_EIO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "softmax\tkernel\tmap\tm\tA\tdraw\td\tdv\tcausal\tthreads\tstatus\tT_star\t"
               "T_lo\tT_hi\tT_min\tT_max\tT_model\tT_flops\tratio_at_T_max\tn_cross\t"
               "crossings\tpass\trule\n");
    static const char *const stname[] = {"found", "below_range", "beyond_range"};
    for (size_t i = 0; i < P->nxo; i++) {
        const struct la_crossover *x = &P->xo[i];
        char A[24], cross[160];
        fprintf(f, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t", x->softmax, x->kernel, x->map,
                x->m, la_crossover_A_text(x, A, sizeof A), x->draw, x->d, x->dv, x->causal,
                x->threads, stname[x->status]);
        double v[] = {x->T_star, x->T_lo,    x->T_hi,    x->T_min,
                      x->T_max,  x->T_model, x->T_flops, x->ratio_max};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            put_num(f, v[k]);
            fputc('\t', f);
        }
        fprintf(f, "%d\t%s\t%s\t%s\n", x->n_cross, la_crossover_cross_text(x, cross, sizeof cross),
                x->pass[0] ? x->pass : "forward", x->rule[0] ? x->rule : "-");
    }
    return close_checked(f, path, err);
}

/* Writes the decode t* table as TSV next to the decode figures. */
static int write_decode_tstar(const struct plot *P, const char *path, struct la_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return LA_FAIL(err, LA_EIO, "cannot write %s: %s", path, strerror(errno));
    fprintf(f, "softmax\tkernel\tmap\tm\td\tdv\tbatch\theads\tthreads\tstatus\tt_star\tt_lo\t"
               "t_hi\tt_flops\tt_bytes\tP\tN_max\tspeedup_at_N_max\tN_100x\tN_1000x\n");
    for (size_t i = 0; i < P->ndp; i++) {
        const struct la_decode_pair *x = &P->dp[i];
        const struct la_decode_series *l = &P->ds[x->lin], *s = &P->ds[x->soft];
        fprintf(f, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t", s->kernel, l->kernel, l->map, l->m,
                l->d, l->dv, l->batch, l->heads, l->threads, la_decode_status_name(x->status));
        double v[] = {x->t_star, x->t_lo, x->t_hi, x->t_flops, x->t_bytes};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            put_num(f, v[k]);
            fputc('\t', f);
        }
        fprintf(f, "%ld\t%ld\t", x->P, x->n_max);
        put_num(f, x->speedup_max);
        fputc('\t', f);
        put_num(f, x->n_100);
        fputc('\t', f);
        put_num(f, x->n_1000);
        fputc('\n', f);
    }
    return close_checked(f, path, err);
}

/* Moves the step rows after the others (each group in its order): P->n others, P->nstep steps. */
static int split_step_rows(struct plot *P, struct la_error *err)
{
    struct la_row *tmp = malloc((P->n ? P->n : 1) * sizeof *tmp);
    if (!tmp)
        return LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
    size_t k = 0;
    for (int step = 0; step <= 1; step++)
        for (size_t i = 0; i < P->n; i++)
            if (la_row_is_step(&P->rows[i]) == step)
                tmp[k++] = P->rows[i];
    size_t nstep = 0;
    for (size_t i = 0; i < P->n; i++)
        nstep += la_row_is_step(&P->rows[i]) != 0;
    if (P->n) /* a capacity file has no results rows (P->rows NULL) */
        memcpy(P->rows, tmp, P->n * sizeof *tmp);
    free(tmp);
    P->n -= nstep;
    P->nstep = nstep;
    return LA_OK;
}

/* ---- the command -------------------------------------------------------------------------- */

/* Appends to buf (cap bytes, NUL-terminated, never overrun; a text too long is cut). */
static void append(char *buf, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    const size_t len = strlen(buf);
    if (len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
}

/* The text of --help before the options: what plot does, and the figures of the table. */
static void help_intro(char *buf, size_t cap)
{
    buf[0] = '\0';
    append(buf, cap,
           "Draws the figures that fit the results in FILE.h5 with gnuplot, as PNG and PDF, into "
           "DIR (default plots/out), named STEM_FIGURE.png/.pdf where STEM is the experiment's "
           "name (just FIGURE.png when the experiment is named after the figure).  Every figure "
           "carries a caption with the experiment, the git commit, the CPU and the date.  Prints "
           "the crossover table (T*) when the file has timings, writes it to DIR/STEM_tstar.tsv, "
           "and prints the path of every file written.\n\n"
           "figures (drawn when the data fits; --only forces the named ones):");
    for (size_t i = 0; i < N_FIGURES; i++)
        append(buf, cap, "\n  %-14s %s", figures[i].name, figures[i].what);
}

/* The text of --help after the options: what plot needs, and its exit status. */
static void help_outro(char *buf, size_t cap)
{
    buf[0] = '\0';
    append(buf, cap,
           "Needs gnuplot with the cairo terminals (Debian: gnuplot-nox).  Timing figures need "
           "rows with >= %d timed repeats; see docs/FIGURES.md for how to read each figure.\n\n"
           "Exit status: 0 when at least one figure was drawn; 1 when none was (no row is ok, or "
           "no figure fits the ok rows; one line on stderr says which, with the counts of ok and "
           "failed rows); 2 with the message for any other error (a bad option, an unreadable "
           "results file, gnuplot missing or failing, an unwritable DIR).",
           LA_XO_MIN_REPEATS);
}

static int want_figure(const char *only, const char *name)
{
    if (!only)
        return 1;
    size_t len = strlen(name);
    for (const char *s = only; *s;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == len && !strncmp(s, name, len))
            return 1;
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

/* Checks that every name of --only is a figure (a miss lists the valid names). */
static int check_only(const char *only, struct la_error *err)
{
    const char *names[N_FIGURES + 1];
    for (size_t i = 0; i < N_FIGURES; i++)
        names[i] = figures[i].name;
    names[N_FIGURES] = NULL;
    for (const char *s = only; *s;) {
        const char *e = strchr(s, ',');
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(e ? e - s : (long)strlen(s)), s);
        size_t i;
        for (i = 0; i < N_FIGURES; i++)
            if (!strcmp(word, names[i]))
                break;
        if (i == N_FIGURES) {
            char msg[384];
            return LA_FAIL(err, LA_ENAME, "unknown figure '%s'%s", word,
                           la_choices_msg(msg, sizeof msg, word, names, N_FIGURES,
                                          "valid figures"));
        }
        if (!e)
            break;
        s = e + 1;
    }
    return LA_OK;
}

int cmd_plot(int argc, char **argv)
{
    const char *outdir = "plots/out", *only = NULL, *keep = NULL, *scripts = NULL,
               *heads = NULL;
    enum { FORMAT_PNG, FORMAT_PDF, FORMAT_BOTH };
    static const char *const formats[] = {"png", "pdf", "both", NULL}; /* in that order */
    int format = FORMAT_BOTH;
    int quiet = 0, P_png_dpi = 0;
    const struct la_option opts[] = {
        LA_OPT_STRING("output", 'o', &outdir, "DIR",
                      "where the figures go (created; default plots/out)"),
        LA_OPT_STRING("only", 0, &only, "FIG[,FIG...]",
                      "draw only these figures (comma-separated; the figures above)"),
        LA_OPT_CHOICE("format", 0, &format, formats, "the files drawn (default both)"),
        LA_OPT_INT("png-dpi", 0, &P_png_dpi, "N", 30, 600,
                   "PNG pixels per inch (default 110; docs use 80)"),
        LA_OPT_STRING("keep", 0, &keep, "DIR",
                      "write gnuplot's inputs (data.tsv, meta.gp per figure) into DIR and keep "
                      "them: rerun `gnuplot DIR/FIG.meta.gp plots/FIG.gp`"),
        LA_OPT_STRING("scripts", 0, &scripts, "DIR",
                      "the gnuplot scripts (default: $LINATTN_PLOTS, ./plots, or next to the "
                      "linattn binary)"),
        LA_OPT_STRING("heads", 0, &heads, "FILE.h5",
                      "fidelity: results of the same maps on the model's own heads (h5 rows, "
                      "e.g. results/real-stories260k.h5), drawn beside the model-level KL"),
        LA_OPT_FLAG("quiet", 'q', &quiet, "print only the files written"),
        LA_OPT_END,
    };
    char intro[2048], outro[1024];
    help_intro(intro, sizeof intro);
    help_outro(outro, sizeof outro);
    const struct la_command cmd = {
        .prog = "linattn plot",
        .args = "FILE.h5",
        .intro = intro,
        .opts = opts,
        .outro = outro,
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (nargs > 1) {
        fprintf(stderr, "linattn plot: one results file at a time (got also '%s')\n", argv[1]);
        return 2;
    }
    if (nargs == 0) {
        fprintf(stderr, "linattn plot: no results file given (linattn plot --help)\n");
        return 2;
    }
    const char *h5 = argv[0];
    struct la_error err;
    la_error_clear(&err);
    struct plot P;
    memset(&P, 0, sizeof P);
    P.h5 = h5;
    P.quiet = quiet;
    P.png_dpi = P_png_dpi;
    P.forced = only != NULL;
    int st = LA_OK, drawn = 0;
    snprintf(P.formats, sizeof P.formats, "%s",
             format == FORMAT_BOTH ? "png pdf" : formats[format]);
    if (only && (st = check_only(only, &err)) != LA_OK)
        goto fail;
    if ((st = find_scripts(P.scripts, sizeof P.scripts, scripts, &err)) != LA_OK)
        goto fail;
    if (la_capacity_is_file(h5)) {
        if ((st = la_capacity_read(h5, &P.cap, &P.ncap, &err)) != LA_OK)
            goto fail;
    } else if ((st = la_results_read(h5, &P.rows, &P.n, &err)) != LA_OK) {
        goto fail;
    }
    if (heads && (st = la_results_read(heads, &P.heads, &P.nheads, &err)) != LA_OK)
        goto fail;
    char name[LA_PATH_LEN] = "";
    if (la_results_attr(h5, "experiment_name", name, sizeof name, &err) != LA_OK || !name[0]) {
        const char *base = strrchr(h5, '/');
        snprintf(name, sizeof name, "%s", base ? base + 1 : h5);
        char *dot = strrchr(name, '.');
        if (dot)
            *dot = '\0';
    }
    la_error_clear(&err);
    make_stem(name, P.stem, sizeof P.stem);
    make_caption(&P, name);
    snprintf(P.outdir, sizeof P.outdir, "%s", outdir);
    if ((st = make_dirs(P.outdir, &err)) != LA_OK)
        goto fail;
    if (keep) {
        if ((st = make_dirs(keep, &err)) != LA_OK)
            goto fail;
        snprintf(P.tmpdir, sizeof P.tmpdir, "%s", keep);
        P.keep = 1;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(P.tmpdir, sizeof P.tmpdir, "%s/linattn-plot-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(P.tmpdir)) {
            st = LA_FAIL(&err, LA_EIO, "cannot create a temporary directory %s: %s", P.tmpdir,
                         strerror(errno));
            P.tmpdir[0] = '\0';
            goto fail;
        }
    }
    if ((st = split_step_rows(&P, &err)) != LA_OK)
        goto fail;
    if ((st = la_crossover_compute(P.rows, P.n, &P.xo, &P.nxo, &err)) != LA_OK)
        goto fail;
    if ((st = la_decode_series(P.rows + P.n, P.nstep, &P.ds, &P.nds, &err)) != LA_OK ||
        (st = la_decode_pairs(P.ds, P.nds, &P.dp, &P.ndp, &err)) != LA_OK)
        goto fail;

    for (size_t f = 0; f < N_FIGURES; f++) {
        const struct figure *fig = &figures[f];
        if (!want_figure(only, fig->name))
            continue;
        /* Every row has a workspace size, so memory fits everything: by default it is drawn
         * only for files no other figure fits (a memory experiment), or when asked for. */
        if (!strcmp(fig->name, "memory") && !only && drawn)
            continue;
        /* Every row has step_bytes too: train_memory is drawn for files that hold training
         * passes (pass: backward or forward+backward), or when asked for. */
        if (!strcmp(fig->name, "train_memory") && !only && !has_training_rows(&P))
            continue;
        char metapath[LA_PATH_LEN + 64], datapath[LA_PATH_LEN + 64], fname[96];
        char base[LA_PATH_LEN + 256];
        snprintf(fname, sizeof fname, "%s.data.tsv", fig->name);
        FILE *data = tmp_open(&P, fname, datapath, sizeof datapath, &err);
        if (!data) {
            st = err.status;
            goto fail;
        }
        snprintf(fname, sizeof fname, "%s.meta.gp", fig->name);
        FILE *meta = tmp_open(&P, fname, metapath, sizeof metapath, &err);
        if (!meta) {
            fclose(data);
            st = err.status;
            goto fail;
        }
        if (!strcmp(P.stem, fig->name))
            snprintf(base, sizeof base, "%s/%s", P.outdir, fig->name);
        else
            snprintf(base, sizeof base, "%s/%s_%s", P.outdir, P.stem, fig->name);
        fprintf(meta, "# %s: written by `linattn plot %s`; read by %s/%s.gp\n", fig->name, h5,
                P.scripts, fig->name);
        meta_str(meta, "figure", fig->name);
        meta_str(meta, "data", datapath);
        meta_str(meta, "out", base);
        meta_str(meta, "formats", P.formats);
        meta_str(meta, "plotdir", P.scripts);
        meta_str(meta, "caption", P.caption);
        if (P.png_dpi > 0)
            fprintf(meta, "png_dpi = %d\n", P.png_dpi);
        int fits = 0;
        st = fig->prepare(&P, fig, meta, data, &fits, &err);
        int st2 = close_checked(data, datapath, &err);
        int st3 = close_checked(meta, metapath, &err);
        if (st == LA_OK)
            st = st2 != LA_OK ? st2 : st3;
        if (st != LA_OK)
            goto fail;
        if (!fits) {
            if (only && !quiet)
                printf("%s: no data for this figure in %s\n", fig->name, h5);
            continue;
        }
        char script[LA_PATH_LEN + 32];
        snprintf(script, sizeof script, "%s/%s.gp", P.scripts, fig->name);
        if ((st = run_gnuplot(metapath, script, &err)) != LA_OK)
            goto fail;
        const char *fmts[2] = {"png", "pdf"};
        for (int k = 0; k < 2; k++) {
            if (!strstr(P.formats, fmts[k]))
                continue;
            char path[LA_PATH_LEN + 300];
            snprintf(path, sizeof path, "%s.%s", base, fmts[k]);
            if (!file_ok(path)) {
                st = LA_FAIL(&err, LA_EIO, "gnuplot did not write %s", path);
                goto fail;
            }
            printf("%s\n", path);
        }
        drawn++;
        if (!strcmp(fig->name, "crossover")) {
            char path[LA_PATH_LEN + 300];
            snprintf(path, sizeof path, "%s/%s_tstar.tsv", P.outdir, P.stem);
            if ((st = write_tstar(&P, path, &err)) != LA_OK)
                goto fail;
            printf("%s\n", path);
            if (!quiet)
                la_crossover_print(P.rows, P.n, stdout);
        }
        if (!strcmp(fig->name, "decode_speedup")) {
            char path[LA_PATH_LEN + 300];
            snprintf(path, sizeof path, "%s/%s_decode_tstar.tsv", P.outdir, P.stem);
            if ((st = write_decode_tstar(&P, path, &err)) != LA_OK)
                goto fail;
            printf("%s\n", path);
        }
    }
    if (P.keep && !quiet)
        printf("gnuplot inputs kept in %s\n", P.tmpdir);
    if (!drawn) {
        /* Nothing drawn is a failure (exit 1), whatever the reason; say which. */
        size_t ok = 0, failed = 0;
        P.n += P.nstep;
        for (size_t i = 0; i < P.n; i++) {
            ok += P.rows[i].status == LA_ROW_OK;
            failed += P.rows[i].status == LA_ROW_FAILED;
        }
        fprintf(stderr, "linattn plot: no figure drawn: %s %s (%zu ok of %zu row%s; %zu failed)%s\n",
                ok ? (only ? "the figures asked for do not fit" : "no figure fits")
                   : "no row is ok in",
                h5, ok, P.n, la_fig_plural((long long)P.n), failed,
                ok ? "; see `linattn plot --help`"
                   : failed ? "; see `linattn info` for why they failed" : "");
    }
    cleanup(&P);
    la_crossover_free(P.xo);
    free(P.ds);
    free(P.dp);
    free(P.rows);
    free(P.heads);
    free(P.fw);
    free(P.cap);
    return drawn ? 0 : 1;
fail:
    fprintf(stderr, "linattn plot: %s\n", err.msg);
    cleanup(&P);
    la_crossover_free(P.xo);
    free(P.ds);
    free(P.dp);
    free(P.rows);
    free(P.heads);
    free(P.fw);
    free(P.cap);
    return la_exit_code(st);
}
