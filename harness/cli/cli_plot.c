/* cli_plot.c — `linattn plot FILE.h5 [-o DIR]`: draws the figures that fit a results file.
 *
 * How: the rows are read (la_results_read) and every figure of the table below whose data is
 * present is prepared here, in C, into a temporary directory: a data file of TSV blocks (one
 * block per curve, blocks separated by two blank lines, so gnuplot's `index` picks a curve) and
 * a meta file of gnuplot variables (output path, caption, panel layout and titles, and per curve
 * its legend title, colour key, dash and point type).  Then `gnuplot META plots/FIG.gp` is
 * spawned (posix_spawnp, no shell: file names need no shell quoting; strings in META use
 * gnuplot's own double-quote escapes).  The scripts only draw; everything that needs joins or
 * statistics is done here: means/min/max over trials, the softmax/linear join and T*
 * (crossover.c), the Lemma 2 theory lines (theory.c).  Output: DIR/STEM_FIG.png and .pdf, where
 * STEM is the experiment name (just DIR/FIG.* when the experiment is named after the figure).
 *
 * Figures and when they fit (rows with status OK only):
 *   crossover  time (kernel + feature map) vs T, softmax against every linear series, one panel
 *              per (causal, d), T* in the legend and marked: timed softmax and linear rows with
 *              >= 2 common T, and a median of >= 3 timed repeats among the rows at the largest
 *              T (a memory run times its big cells once: too noisy for a crossover; --only
 *              crossover forces it)
 *   speedup    heatmap of t_softmax / t_linear over (T, d), one panel per (causal, linear series)
 *   features   kernel MSE and output error vs m (output dimension), Lemma 2 theory lines: error
 *              rows of random maps with >= 2 values of m
 *   error_T    output error and attention KL vs T (error rows, >= 2 T; at one σ when σ varies)
 *   error_sigma  the same vs σ (error rows, >= 2 σ; at one T when T varies)
 *   memory     kernel workspace and process peak RSS vs T (>= 2 T); every row has a workspace,
 *              so by default only for files no other figure fits (a memory experiment)
 *
 * Exit status: 0 when a figure was drawn, 1 when none was (one stderr line gives the reason and
 * the ok/failed row counts), 2 for every other error (arguments, files, gnuplot).
 * Not here: running experiments, the TSV export (cli_results.c), the styles (plots/style.gp).
 * Tests: tests/figures_e2e.sh (run → export → plot; PNG/PDF magic bytes and sizes).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/sysinfo.h"
#include "../experiment/params.h"
#include "../figures/crossover.h"
#include "../figures/theory.h"
#include "../store/results.h"
#include "commands.h"
#include "../core/util.h"

extern char **environ;

#define MAX_FILES 64
#define MIN_REPEATS_FOR_TIMING 3

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
};

/* ---- small helpers ----------------------------------------------------------------------- */

/* "s" unless n is 1: "1 thread", "2 threads". */
static const char *plural(long long n)
{
    return n == 1 ? "" : "s";
}

static int same_real(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

static int is_softmax_row(const struct la_row *r)
{
    const struct attn_kernel *kn = attn_kernel_lookup(r->kernel);
    if (kn)
        return kn->family == ATTN_SOFTMAX;
    return !strncmp(r->kernel, "softmax", 7) || !strcmp(r->map, "none");
}

/* Does map `name` read parameter p (a word of its params list)?  Unknown maps: assume m and
 * draw, the common random-map parameters. */
static int map_reads(const char *name, const char *p)
{
    struct la_error err;
    const struct featuremap_type *t = featuremap_lookup(name, &err);
    if (!t || !t->params)
        return !strcmp(p, "m") || !strcmp(p, "draw");
    return featuremap_type_reads(t, p);
}

/* Writes s as a gnuplot double-quoted string (backslash and quote escaped; control characters
 * become spaces, so one string stays on one line). */
static void gp_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fputc('\\', f), fputc(c, f);
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

/* T axis labels in the scripts are powers of two; here T values print as 1234 or 1.2K. */
static void fmt_T(double T, char *buf, size_t cap)
{
    if (T >= 1024 * 1024)
        snprintf(buf, cap, "%.3gM", T / (1024.0 * 1024.0));
    else if (T >= 1024)
        snprintf(buf, cap, "%.3gK", T / 1024.0);
    else
        snprintf(buf, cap, "%.0f", T);
}

/* ---- fields: what identifies a curve, a panel, a title ------------------------------------ */

enum field {
    F_KERNEL,
    F_MAP,
    F_M,
    F_DRAW,
    F_A,
    F_CAUSAL,
    F_CHUNK,
    F_EPS,
    F_T,
    F_D,
    F_DV,
    F_BATCH,
    F_HEADS,
    F_THREADS,
    F_DATA,
    F_SIGMA,
    F_LAYER,
    F_HEAD,
    F_NFIELDS
};
#define BIT(f) (1u << (f))
#define ALL_FIELDS ((1u << F_NFIELDS) - 1)
/* Fields that only mean something for linear rows. */
#define MAP_FIELDS (BIT(F_MAP) | BIT(F_M) | BIT(F_DRAW) | BIT(F_A) | BIT(F_CHUNK) | BIT(F_EPS))

/* gerf's A chosen from the data: the row holds the fitted value, the key says "A=auto"; all
 * such rows are one setting. */
static int A_auto(const struct la_row *r)
{
    char A[16];
    return la_key_get(r->key, "A", A, sizeof A) == LA_OK && !strcmp(A, "auto");
}

/* A kernel that reads `chunk` records the one it used (others 0); the default depends on
 * (m, dv). */
static int chunk_default(const struct la_row *r)
{
    return r->chunk <= 0 || r->chunk == attn_default_chunk(r->m, r->dv);
}

/* Real (h5) inputs: the row's σ is the RMS measured on that head. */
static int sigma_measured(const struct la_row *r)
{
    return !strcmp(r->data, "h5");
}

static int field_eq(const struct la_row *a, const struct la_row *b, int f)
{
    switch (f) {
    case F_KERNEL:
        return !strcmp(a->kernel, b->kernel);
    case F_MAP:
        return !strcmp(a->map, b->map);
    case F_M:
        return a->m == b->m;
    case F_DRAW:
        return !strcmp(a->draw, b->draw);
    case F_A:
        return A_auto(a) == A_auto(b) && (A_auto(a) || same_real(a->A, b->A));
    case F_CAUSAL:
        return a->causal == b->causal;
    case F_CHUNK: /* the kernel's default chunk changes with m: one setting, "default" */
        return (chunk_default(a) && chunk_default(b)) || a->chunk == b->chunk;
    case F_EPS:
        return same_real(a->eps, b->eps);
    case F_T:
        return a->T == b->T;
    case F_D:
        return a->d == b->d;
    case F_DV:
        return a->dv == b->dv;
    case F_BATCH:
        return a->batch == b->batch;
    case F_HEADS:
        return a->heads == b->heads;
    case F_THREADS:
        return a->threads == b->threads;
    case F_DATA:
        return !strcmp(a->data, b->data);
    case F_SIGMA: /* for h5 data σ is the measured RMS of each head, not a setting */
        return (sigma_measured(a) && sigma_measured(b)) || same_real(a->sigma, b->sigma);
    case F_LAYER:
        return a->layer == b->layer;
    case F_HEAD:
        return a->head == b->head;
    }
    return 1;
}

static double field_num(const struct la_row *r, int f)
{
    switch (f) {
    case F_M:
        return r->m;
    case F_A:
        return r->A;
    case F_CAUSAL:
        return r->causal;
    case F_CHUNK:
        return r->chunk;
    case F_EPS:
        return r->eps;
    case F_T:
        return r->T;
    case F_D:
        return r->d;
    case F_DV:
        return r->dv;
    case F_BATCH:
        return r->batch;
    case F_HEADS:
        return r->heads;
    case F_THREADS:
        return r->threads;
    case F_SIGMA:
        return r->sigma;
    case F_LAYER:
        return r->layer;
    case F_HEAD:
        return r->head;
    }
    return NAN;
}

static int field_cmp(const struct la_row *a, const struct la_row *b, int f)
{
    switch (f) {
    case F_KERNEL:
        return strcmp(a->kernel, b->kernel);
    case F_MAP:
        return strcmp(a->map, b->map);
    case F_DRAW:
        return strcmp(a->draw, b->draw);
    case F_DATA:
        return strcmp(a->data, b->data);
    case F_A:
        if (A_auto(a) != A_auto(b))
            return A_auto(b) - A_auto(a);
        if (A_auto(a))
            return 0;
        break;
    }
    double x = field_num(a, f), y = field_num(b, f);
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

/* Text of one field for titles: "m=64", "causal", "d=64", "σ=0.5", ... */
static void field_text(const struct la_row *r, int f, char *buf, size_t cap)
{
    char t[32];
    switch (f) {
    case F_KERNEL:
        snprintf(buf, cap, "%s", r->kernel);
        break;
    case F_MAP:
        snprintf(buf, cap, "%s", r->map);
        break;
    case F_M:
        snprintf(buf, cap, "m=%d", (int)r->m);
        break;
    case F_DRAW:
        snprintf(buf, cap, "%s", r->draw);
        break;
    case F_A:
        if (isnan(r->A) || A_auto(r))
            snprintf(buf, cap, "A=auto");
        else
            snprintf(buf, cap, "A=%g", r->A);
        break;
    case F_CAUSAL:
        snprintf(buf, cap, "%s", r->causal ? "causal" : "non-causal");
        break;
    case F_CHUNK:
        snprintf(buf, cap, "C=%d", (int)r->chunk);
        break;
    case F_EPS:
        snprintf(buf, cap, "eps=%g", r->eps);
        break;
    case F_T:
        fmt_T(r->T, t, sizeof t);
        snprintf(buf, cap, "T=%s", t);
        break;
    case F_D:
        snprintf(buf, cap, "d=%d", (int)r->d);
        break;
    case F_DV:
        snprintf(buf, cap, "dv=%d", (int)r->dv);
        break;
    case F_BATCH:
        snprintf(buf, cap, "B=%d", (int)r->batch);
        break;
    case F_HEADS:
        snprintf(buf, cap, "H=%d", (int)r->heads);
        break;
    case F_THREADS:
        snprintf(buf, cap, "%d thread%s", (int)r->threads, plural(r->threads));
        break;
    case F_DATA:
        snprintf(buf, cap, "%s", r->data);
        break;
    case F_SIGMA:
        snprintf(buf, cap, "σ=%g", r->sigma);
        break;
    case F_LAYER:
        snprintf(buf, cap, "layer %d", (int)r->layer);
        break;
    case F_HEAD:
        if (r->head < 0)
            snprintf(buf, cap, "all heads");
        else
            snprintf(buf, cap, "head %d", (int)r->head);
        break;
    default:
        buf[0] = '\0';
    }
}

/* Does field f apply to row r?  Map fields only to linear rows; m, draw, A only to maps that
 * read them; chunk only to kernels that have one. */
static int field_applies(const struct la_row *r, int f)
{
    if (f == F_SIGMA)
        return !sigma_measured(r);
    if (!(MAP_FIELDS & BIT(f)))
        return 1;
    if (is_softmax_row(r))
        return 0;
    if (f == F_M)
        return map_reads(r->map, "m");
    if (f == F_DRAW)
        return map_reads(r->map, "draw");
    if (f == F_A)
        return map_reads(r->map, "A");
    if (f == F_CHUNK) /* the default chunk is an implementation detail, not a setting */
        return !chunk_default(r);
    return 1;
}

/* Appends the text of every field of mask that applies to r, space-separated, to buf. */
static void append_fields(const struct la_row *r, unsigned mask, const char *sep, char *buf,
                          size_t cap)
{
    static const int order[] = {F_M,      F_DRAW, F_A,     F_KERNEL, F_CHUNK,  F_EPS,
                                F_CAUSAL, F_D,    F_DV,    F_T,      F_SIGMA,  F_DATA,
                                F_LAYER,  F_HEAD, F_BATCH, F_HEADS,  F_THREADS};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int f = order[i];
        if (!(mask & BIT(f)) || !field_applies(r, f))
            continue;
        char t[96];
        field_text(r, f, t, sizeof t);
        size_t len = strlen(buf);
        if (len + 1 < cap)
            snprintf(buf + len, cap - len, "%s%s", len ? sep : "", t);
    }
}

/* Fields of mask whose value differs between two selected rows where the field applies. */
static unsigned varying(const struct la_row *rows, const size_t *sel, size_t ns, unsigned mask)
{
    unsigned v = 0;
    for (int f = 0; f < F_NFIELDS; f++) {
        if (!(mask & BIT(f)))
            continue;
        const struct la_row *first = NULL;
        for (size_t i = 0; i < ns && !(v & BIT(f)); i++) {
            const struct la_row *r = &rows[sel[i]];
            if (!field_applies(r, f))
                continue;
            if (!first)
                first = r;
            else if (!field_eq(first, r, f))
                v |= BIT(f);
        }
    }
    return v;
}

/* Number of distinct values of field f among the selected rows that sort below rep's value. */
static int value_rank(const struct la_row *rows, const size_t *sel, size_t ns, int f,
                      const struct la_row *rep)
{
    int rank = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct la_row *r = &rows[sel[i]];
        if (field_cmp(r, rep, f) >= 0)
            continue;
        size_t j;
        for (j = 0; j < i; j++)
            if (field_eq(&rows[sel[j]], r, f))
                break;
        rank += j == i;
    }
    return rank;
}

/* Value of a metric column of a row, as a double (NaN if the column is unknown). */
static double metric(const struct la_row *r, const char *col)
{
    const struct la_column *c = la_row_column(col);
    if (!c)
        return NAN;
    const char *p = (const char *)r + c->offset;
    switch (c->kind) {
    case LA_COL_DOUBLE: {
        double x;
        memcpy(&x, p, sizeof x);
        return x;
    }
    case LA_COL_INT32: {
        int32_t x;
        memcpy(&x, p, sizeof x);
        return x;
    }
    case LA_COL_INT64: {
        int64_t x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    case LA_COL_UINT64: {
        uint64_t x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    }
    return NAN;
}

/* ---- blocks and panels: what the meta file tells the scripts -------------------------------- */

/* One curve (one data block). */
struct block {
    char title[160];       /* legend entry; "" for none (it appeared before) */
    char map[LA_NAME_LEN]; /* colour key: a map name, or "softmax" */
    int dash;              /* 1 solid, 2 dashed, 3 dash-dot, 4 dotted (theory) */
    int pt;                /* point type index 1..8; 0 none; -1 a crossover mark */
};

struct curve_meta {
    struct block *b;
    size_t n, cap;
    int every_panel; /* 1: legends in every panel (crossover: T* differs by panel) */
};

static int cm_push(struct curve_meta *cm, struct block *b)
{
    /* A legend entry appears once per figure, at the first curve with that title (unless
     * every panel has its own legend). */
    for (size_t i = 0; i < cm->n && b->title[0] && !cm->every_panel; i++)
        if (!strcmp(cm->b[i].title, b->title))
            b->title[0] = '\0';
    if (cm->n == cm->cap) {
        size_t nc = cm->cap ? 2 * cm->cap : 32;
        struct block *nb = realloc(cm->b, nc * sizeof *nb);
        if (!nb)
            return LA_ENOMEM;
        cm->b = nb;
        cm->cap = nc;
    }
    cm->b[cm->n++] = *b;
    return LA_OK;
}

struct panel_meta {
    char title[160];
    char xlabel[160];
    char ylabel[160];
    char note[200];  /* a line inside the panel (e.g. "no data") */
    int first, last; /* 1-based block range; first > last: no curve */
};

static void write_meta_arrays(FILE *meta, const struct panel_meta *pm, int np, int nrows, int ncols,
                              const struct curve_meta *cm)
{
    int n = np ? np : 1;
    fprintf(meta, "npanels = %d\nnrows = %d\nncols = %d\n", np, nrows, ncols);
    fprintf(meta,
            "array ptitle[%d]\narray pxlabel[%d]\narray pylabel[%d]\narray pnote[%d]\n"
            "array pfirst[%d]\narray plast[%d]\n",
            n, n, n, n, n, n);
    for (int p = 0; p < np; p++) {
        fprintf(meta, "ptitle[%d] = ", p + 1);
        gp_string(meta, pm[p].title);
        fprintf(meta, "; pxlabel[%d] = ", p + 1);
        gp_string(meta, pm[p].xlabel);
        fprintf(meta, "; pylabel[%d] = ", p + 1);
        gp_string(meta, pm[p].ylabel);
        fprintf(meta, "; pnote[%d] = ", p + 1);
        gp_string(meta, pm[p].note);
        fprintf(meta, "; pfirst[%d] = %d; plast[%d] = %d\n", p + 1, pm[p].first, p + 1, pm[p].last);
    }
    size_t nb = cm->n ? cm->n : 1;
    fprintf(meta,
            "nblocks = %zu\narray btitle[%zu]\narray bmap[%zu]\narray bdash[%zu]\n"
            "array bpt[%zu]\n",
            cm->n, nb, nb, nb, nb);
    for (size_t i = 0; i < cm->n; i++) {
        fprintf(meta, "btitle[%zu] = ", i + 1);
        gp_string(meta, cm->b[i].title);
        fprintf(meta, "; bmap[%zu] = ", i + 1);
        gp_string(meta, cm->b[i].map);
        fprintf(meta, "; bdash[%zu] = %d; bpt[%zu] = %d\n", i + 1, cm->b[i].dash, i + 1,
                cm->b[i].pt);
    }
}

/* Writes one point line: x, y, lo, hi, n (and optional extra columns by the caller). */
static void put_point(FILE *data, double x, double y, double lo, double hi, size_t n)
{
    put_num(data, x);
    fputc('\t', data);
    put_num(data, y);
    fputc('\t', data);
    put_num(data, lo);
    fputc('\t', data);
    put_num(data, hi);
    fprintf(data, "\t%zu\n", n);
}

static void end_block(FILE *data)
{
    fputs("\n\n", data);
}

/* ---- curves: the generic figure (one x field, metrics as panel rows or columns) ----------- */

struct plot;
struct curve_spec;
/* Extra curves of one panel (theory lines): may add blocks and set the panel's note. */
typedef int (*extra_fn)(struct plot *P, const struct la_row *panel_rep, int metric_k, FILE *data,
                        struct curve_meta *cm, struct panel_meta *pm);

struct curve_spec {
    int xfield;             /* the x axis */
    const char *metrics[2]; /* one panel row (or column) per metric */
    const char *ylabels[2]; /* short axis label (quantity and unit) */
    const char *mtitles[2]; /* what the metric is, prefixed to the panel title ("" for none) */
    int nmetrics;
    const char *xlabel;
    unsigned panel_fields; /* fields that split panels (those of them that vary) */
    int metrics_across;    /* 1: metrics are the columns, panel values the rows */
    int fixed_field;       /* pinned to one value when it varies (-1: none) */
    int dash_field;        /* dash by this field's value rank (-1: by variant of the map) */
    unsigned avg_fields;   /* fields averaged over like trials (a real model's layers, heads) */
    int (*row_ok)(const struct la_row *r);
    extra_fn extra;
};

static int cmp_rep(const void *pa, const void *pb, void *ctx)
{
    const struct la_row *rows = ctx;
    const struct la_row *a = &rows[*(const size_t *)pa], *b = &rows[*(const size_t *)pb];
    int sa = is_softmax_row(a), sb = is_softmax_row(b), c;
    if (sa != sb)
        return sb - sa; /* softmax first */
    static const int order[] = {F_CAUSAL, F_D,     F_MAP,   F_DRAW,    F_M,     F_A,
                                F_KERNEL, F_DV,    F_SIGMA, F_T,       F_DATA,  F_CHUNK,
                                F_EPS,    F_BATCH, F_HEADS, F_THREADS, F_LAYER, F_HEAD};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((c = field_cmp(a, b, order[i])))
            return c;
    return 0;
}

/* Panels in order of causality, then d, σ, T, data, ... (whatever the representative is). */
static int cmp_panel(const void *pa, const void *pb, void *ctx)
{
    const struct la_row *rows = ctx;
    const struct la_row *a = &rows[*(const size_t *)pa], *b = &rows[*(const size_t *)pb];
    static const int order[] = {F_CAUSAL, F_D,     F_DV,      F_SIGMA, F_T,   F_DATA,
                                F_BATCH,  F_HEADS, F_THREADS, F_LAYER, F_HEAD};
    int c;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if ((c = field_cmp(a, b, order[i])))
            return c;
    return 0;
}

static int same_except(const struct la_row *a, const struct la_row *b, unsigned skip)
{
    for (int f = 0; f < F_NFIELDS; f++)
        if (!(skip & BIT(f)) && !field_eq(a, b, f))
            return 0;
    return 1;
}

/* Distinct representatives (indices into rows) of sel under equality of every field not in
 * skip, sorted (softmax first, then causality, d, map, draw, m, ...).  *out is malloc'd. */
static int distinct(const struct la_row *rows, const size_t *sel, size_t ns, unsigned skip,
                    size_t **out, size_t *nout)
{
    size_t *r = malloc((ns ? ns : 1) * sizeof *r), k = 0;
    if (!r)
        return LA_ENOMEM;
    for (size_t i = 0; i < ns; i++) {
        size_t j;
        for (j = 0; j < k; j++)
            if (same_except(&rows[r[j]], &rows[sel[i]], skip))
                break;
        if (j == k)
            r[k++] = sel[i];
    }
    qsort_r(r, k, sizeof *r, cmp_rep, (void *)rows);
    *out = r;
    *nout = k;
    return LA_OK;
}

/* Number of distinct x values of the curve of rep (xs: scratch of ns doubles); skip: the
 * fields that do not identify a curve (x, and the fields averaged over). */
static size_t curve_nx(const struct la_row *rows, const size_t *sel, size_t ns,
                       const struct la_row *rep, int xfield, unsigned skip, double *xs)
{
    size_t nx = 0, nd = 0;
    for (size_t i = 0; i < ns; i++)
        if (same_except(&rows[sel[i]], rep, skip))
            xs[nx++] = field_num(&rows[sel[i]], xfield);
    qsort(xs, nx, sizeof *xs, la_cmp_double);
    for (size_t j = 0; j < nx; j++)
        nd += j == 0 || xs[j] != xs[j - 1];
    return nd;
}

/* Writes the points of one curve for one metric: x, mean, min, max, count over the rows at that
 * x (trials, and the fields averaged over).  Returns the number of points written (the block is
 * ended when > 0). */
static size_t write_curve(FILE *data, const struct la_row *rows, const size_t *sel, size_t ns,
                          const struct la_row *rep, int xfield, unsigned skip, const char *col,
                          double *xs, double *ys)
{
    size_t nx = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct la_row *r = &rows[sel[i]];
        if (same_except(r, rep, skip) && isfinite(metric(r, col)))
            xs[nx++] = field_num(r, xfield);
    }
    qsort(xs, nx, sizeof *xs, la_cmp_double);
    size_t written = 0;
    for (size_t i = 0; i < nx; i++) {
        if (i > 0 && xs[i] == xs[i - 1])
            continue;
        size_t ny = 0;
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t j = 0; j < ns; j++) {
            const struct la_row *r = &rows[sel[j]];
            double y = metric(r, col);
            if (same_except(r, rep, skip) && isfinite(y) && field_num(r, xfield) == xs[i]) {
                ys[ny++] = y;
                sum += y;
                lo = y < lo ? y : lo;
                hi = y > hi ? y : hi;
            }
        }
        put_point(data, xs[i], sum / ny, lo, hi, ny);
        written++;
    }
    if (written)
        end_block(data);
    return written;
}

/* The value of field f to pin: the one whose rows have the most distinct x values; ties go to
 * σ closest to 1 (f = σ) or to the largest value.  Returns a row holding it. */
static const struct la_row *pick_fixed(const struct la_row *rows, const size_t *sel, size_t ns,
                                       int f, int xfield, double *xs)
{
    const struct la_row *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct la_row *c = &rows[sel[i]];
        size_t nx = 0, nd = 0;
        for (size_t j = 0; j < ns; j++)
            if (field_eq(&rows[sel[j]], c, f))
                xs[nx++] = field_num(&rows[sel[j]], xfield);
        qsort(xs, nx, sizeof *xs, la_cmp_double);
        for (size_t j = 0; j < nx; j++)
            nd += j == 0 || xs[j] != xs[j - 1];
        int better = nd > best_n;
        if (!better && nd == best_n && best) {
            double v = field_num(c, f), bv = field_num(best, f);
            better = f == F_SIGMA ? fabs(log(v)) < fabs(log(bv)) : v > bv;
        }
        if (better) {
            best = c;
            best_n = nd;
        }
    }
    return best;
}

static int row_ok_any(const struct la_row *r)
{
    (void)r;
    return 1;
}

/* σ as a setting (error_sigma): not on real inputs, where it is each head's measured RMS. */
static int row_ok_sigma_setting(const struct la_row *r)
{
    return !sigma_measured(r);
}

/* Random maps only (features figure): the maps whose type says it draws from the rng. */
static int row_ok_random_map(const struct la_row *r)
{
    if (is_softmax_row(r))
        return 0;
    struct la_error err;
    const struct featuremap_type *t = featuremap_lookup(r->map, &err);
    return t ? t->random : map_reads(r->map, "draw");
}

/* The fields a legend title names in the panel of prep (panel fields pf): the map (or softmax
 * kernel) always, m for maps that read it, and every other field that varies inside the panel,
 * except x.  The linear kernel is named only when two linear kernels of the same causality
 * share the panel (`kernel: linear` picks one per causality, and `causal` says which). */
static unsigned title_fields(const struct la_row *rows, const size_t *sel, size_t ns,
                             const struct la_row *prep, unsigned pf, int xfield, unsigned avg)
{
    size_t *in = malloc((ns ? ns : 1) * sizeof *in), k = 0;
    if (!in)
        return BIT(F_M);
    for (size_t i = 0; i < ns; i++)
        if (same_except(&rows[sel[i]], prep, ALL_FIELDS & ~pf))
            in[k++] = sel[i];
    unsigned tf =
        varying(rows, in, k, ALL_FIELDS & ~BIT(xfield) & ~avg & ~BIT(F_MAP) & ~BIT(F_KERNEL));
    if (xfield != F_M)
        tf |= BIT(F_M);
    tf |= BIT(F_A); /* gerf's A is as much its identity as m */
    for (size_t i = 0; i < k && !(tf & BIT(F_KERNEL)); i++)
        for (size_t j = 0; j < i; j++) {
            const struct la_row *a = &rows[in[i]], *b = &rows[in[j]];
            if (!is_softmax_row(a) && !is_softmax_row(b) && a->causal == b->causal &&
                strcmp(a->kernel, b->kernel)) {
                tf |= BIT(F_KERNEL);
                break;
            }
        }
    free(in);
    return tf;
}

/* Prepares a curve figure; *fits = 0 when no curve has two x values (and not forced). */
static int prepare_curves(struct plot *P, const struct curve_spec *s, FILE *meta, FILE *data,
                          int *fits, struct la_error *err)
{
    const struct la_row *rows = P->rows;
    const size_t cap = P->n ? P->n : 1;
    size_t ns = 0, *sel = calloc(cap, sizeof *sel);
    size_t *cols = NULL, *curves = NULL, ncols = 0, ncurves = 0;
    double *xs = malloc(cap * sizeof *xs), *ys = malloc(cap * sizeof *ys);
    struct panel_meta *pm = NULL;
    struct curve_meta cm = {0};
    int st = LA_OK;
    *fits = 0;
    if (!sel || !xs || !ys)
        goto nomem;
    for (size_t i = 0; i < P->n; i++) {
        const struct la_row *r = &rows[i];
        if (r->status != LA_ROW_OK || !s->row_ok(r))
            continue;
        int any = 0;
        for (int k = 0; k < s->nmetrics; k++)
            any |= isfinite(metric(r, s->metrics[k]));
        if (any)
            sel[ns++] = i;
    }
    char pinned[96] = "";
    if (s->fixed_field >= 0 && varying(rows, sel, ns, BIT(s->fixed_field))) {
        const struct la_row *pin = pick_fixed(rows, sel, ns, s->fixed_field, s->xfield, xs);
        size_t k = 0;
        for (size_t i = 0; i < ns; i++)
            if (field_eq(&rows[sel[i]], pin, s->fixed_field))
                sel[k++] = sel[i];
        ns = k;
        field_text(pin, s->fixed_field, pinned, sizeof pinned);
    }
    if (!ns)
        goto done;
    /* Curves: every field but x and the averaged ones identifies a curve (trials of one cell
     * share a curve, and so do the heads of a real model in a curve figure). */
    const unsigned skip = BIT(s->xfield) | s->avg_fields;
    const unsigned averaged = varying(rows, sel, ns, s->avg_fields);
    if (distinct(rows, sel, ns, skip, &curves, &ncurves) != LA_OK)
        goto nomem;
    for (size_t c = 0; c < ncurves && !*fits; c++)
        *fits = curve_nx(rows, sel, ns, &rows[curves[c]], s->xfield, skip, xs) >= 2;
    if (!*fits && !P->forced)
        goto done;
    *fits = 1;
    /* Panels: the distinct values of the panel fields that vary. */
    unsigned pf = varying(rows, sel, ns, s->panel_fields) & ~skip;
    if (distinct(rows, sel, ns, ALL_FIELDS & ~pf, &cols, &ncols) != LA_OK)
        goto nomem;
    qsort_r(cols, ncols, sizeof *cols, cmp_panel, (void *)rows);
    int np = (int)ncols * s->nmetrics;
    pm = calloc((size_t)np, sizeof *pm);
    if (!pm)
        goto nomem;
    int nblocks = 0;
    for (int p = 0; p < np; p++) {
        int k = s->metrics_across ? p % s->nmetrics : p / (int)ncols;
        size_t col = s->metrics_across ? (size_t)(p / s->nmetrics) : (size_t)p % ncols;
        const struct la_row *prep = &rows[cols[col]];
        struct panel_meta *m = &pm[p];
        unsigned tf = title_fields(rows, sel, ns, prep, pf, s->xfield, s->avg_fields);
        if (s->mtitles[k] && s->mtitles[k][0])
            snprintf(m->title, sizeof m->title, "%s", s->mtitles[k]);
        append_fields(prep, pf, ", ", m->title, sizeof m->title);
        if (pinned[0]) {
            size_t len = strlen(m->title);
            snprintf(m->title + len, sizeof m->title - len, "%s%s", len ? ", " : "", pinned);
        }
        if (averaged) {
            size_t len = strlen(m->title);
            snprintf(m->title + len, sizeof m->title - len, "%smean over %s", len ? ", " : "",
                     averaged & BIT(F_LAYER) ? "layers and heads" : "heads");
        }
        snprintf(m->xlabel, sizeof m->xlabel, "%s", s->xlabel);
        snprintf(m->ylabel, sizeof m->ylabel, "%s", s->ylabels[k]);
        m->first = nblocks + 1;
        for (size_t c = 0; c < ncurves; c++) {
            const struct la_row *rep = &rows[curves[c]];
            if (!same_except(rep, prep, ALL_FIELDS & ~pf))
                continue;
            if (!write_curve(data, rows, sel, ns, rep, s->xfield, skip, s->metrics[k], xs, ys))
                continue;
            struct block b = {0};
            int sm = is_softmax_row(rep);
            snprintf(b.title, sizeof b.title, "%s", sm ? rep->kernel : rep->map);
            append_fields(rep, tf & ~(sm ? BIT(F_KERNEL) : 0u), " ", b.title, sizeof b.title);
            snprintf(b.map, sizeof b.map, "%s", sm ? "softmax" : rep->map);
            /* Variant: position among the panel's earlier curves with the same colour. */
            int variant = 0;
            for (size_t c2 = 0; c2 < c; c2++) {
                const struct la_row *o = &rows[curves[c2]];
                if (same_except(o, prep, ALL_FIELDS & ~pf) &&
                    !strcmp(is_softmax_row(o) ? "softmax" : o->map, b.map))
                    variant++;
            }
            int dashv =
                s->dash_field >= 0 ? value_rank(rows, sel, ns, s->dash_field, rep) : variant;
            b.dash = 1 + dashv % 3;
            b.pt = 1 + variant % 8;
            if (cm_push(&cm, &b) != LA_OK)
                goto nomem;
            nblocks++;
        }
        if (s->extra && (st = s->extra(P, prep, k, data, &cm, m)) != LA_OK) {
            st = LA_FAIL(err, st, "plot: out of memory");
            goto done;
        }
        m->last = nblocks = (int)cm.n;
        if (m->first > m->last)
            snprintf(m->note, sizeof m->note, "no data");
    }
    int nr = s->metrics_across ? (int)ncols : s->nmetrics;
    int nc = s->metrics_across ? s->nmetrics : (int)ncols;
    write_meta_arrays(meta, pm, np, nr, nc, &cm);
    goto done;
nomem:
    st = LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
done:
    free(sel);
    free(xs);
    free(ys);
    free(cols);
    free(curves);
    free(pm);
    free(cm.b);
    return st;
}

/* ---- features: Lemma 2 theory lines -------------------------------------------------------- */

/* Kernel-MSE panels (metric 0) of the features figure: one theory curve per random map with a
 * Lemma 2 formula present in the panel (IID, and the ORF bound for orthogonal prf), over the
 * panel's m range, for Gaussian inputs at the panel's σ (theory.h).  x is the output dimension
 * m; the formulas take draws (m/2 for rff and hyp). */
static int features_theory(struct plot *P, const struct la_row *prep, int metric_k, FILE *data,
                           struct curve_meta *cm, struct panel_meta *pm)
{
    if (metric_k != 0)
        return LA_OK;
    static const char *const maps[] = {"rff", "prf", "hyp"};
    for (size_t mi = 0; mi < 3; mi++) {
        for (int orth = 0; orth <= 1; orth++) {
            if (orth && strcmp(maps[mi], "prf"))
                continue;
            double mlo = INFINITY, mhi = 0;
            int found = 0;
            for (size_t i = 0; i < P->n; i++) {
                const struct la_row *r = &P->rows[i];
                if (r->status != LA_ROW_OK || strcmp(r->map, maps[mi]) ||
                    (strcmp(r->draw, "orthogonal") == 0) != orth || !isfinite(r->kernel_mse) ||
                    r->d != prep->d || !same_real(r->sigma, prep->sigma) ||
                    strcmp(r->data, prep->data) || r->causal != prep->causal || r->T != prep->T)
                    continue;
                found = 1;
                mlo = r->m < mlo ? r->m : mlo;
                mhi = r->m > mhi ? r->m : mhi;
            }
            if (!found || strcmp(prep->data, "gaussian") || !(mhi > mlo))
                continue;
            double c = la_lemma2_mean_c(maps[mi], prep->d, prep->sigma);
            if (isinf(c)) {
                size_t len = strlen(pm->note);
                if (!strstr(pm->note, maps[mi]))
                    snprintf(pm->note + len, sizeof pm->note - len, "%s%s", len ? ", " : "",
                             maps[mi]);
                continue;
            }
            if (!isfinite(c))
                continue;
            const int npts = 40;
            for (int j = 0; j < npts; j++) {
                double m = mlo * pow(mhi / mlo, (double)j / (npts - 1));
                double draws = strcmp(maps[mi], "rff") && strcmp(maps[mi], "hyp") ? m : m / 2;
                double y = la_lemma2_mse(maps[mi], orth, prep->d, prep->sigma, draws);
                if (!(y > 0))
                    y = NAN;
                put_point(data, m, y, y, y, 0);
            }
            end_block(data);
            struct block b = {0};
            snprintf(b.title, sizeof b.title, "%s %s", maps[mi],
                     orth ? "ORF bound (Performer Thm 2)" : "IID theory (Lemma 2)");
            snprintf(b.map, sizeof b.map, "%s", maps[mi]);
            b.dash = orth ? 3 : 4;
            b.pt = 0;
            if (cm_push(cm, &b) != LA_OK)
                return LA_ENOMEM;
        }
    }
    if (pm->note[0] && !strstr(pm->note, "infinite")) {
        char t[sizeof pm->note];
        snprintf(t, sizeof t,
                 "Lemma 2: the mean MSE over Gaussian inputs diverges at this σ for %.100s",
                 pm->note);
        snprintf(pm->note, sizeof pm->note, "%s", t);
    }
    return LA_OK;
}

/* ---- crossover and speedup ------------------------------------------------------------------ */

/* Median repeats of the timed rows at the largest timed T: a crossover is drawn only from real
 * timings (a memory run times each big cell once). */
static double median_repeats(const struct la_row *rows, size_t n)
{
    double *v = malloc((n ? n : 1) * sizeof *v), Tmax = 0;
    size_t k = 0;
    if (!v)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].status == LA_ROW_OK && isfinite(rows[i].time_median_s) && rows[i].T > Tmax)
            Tmax = rows[i].T;
    for (size_t i = 0; i < n; i++)
        if (rows[i].status == LA_ROW_OK && isfinite(rows[i].time_median_s) && rows[i].T == Tmax)
            v[k++] = rows[i].repeats;
    qsort(v, k, sizeof *v, la_cmp_double);
    double m = k ? v[k / 2] : 0;
    free(v);
    return m;
}

static int timing_fits(const struct plot *P)
{
    int pts = 0;
    for (size_t i = 0; i < P->nxo; i++)
        pts |= P->xo[i].npoints >= 2;
    if (!pts)
        return 0;
    return P->forced || median_repeats(P->rows, P->n) >= MIN_REPEATS_FOR_TIMING;
}

/* Same panel of the crossover figure: softmax kernel and context. */
static int ctx_eq(const struct la_crossover *a, const struct la_crossover *b)
{
    return !strcmp(a->softmax, b->softmax) && a->causal == b->causal && a->d == b->d &&
           a->dv == b->dv && a->batch == b->batch && a->heads == b->heads &&
           a->threads == b->threads;
}

/* Same panel of the speedup figure: the linear configuration across d (m = d is one
 * configuration, a fixed m another). */
static int same_cfg(const struct la_crossover *a, const struct la_crossover *b)
{
    if (strcmp(a->softmax, b->softmax) || a->causal != b->causal || strcmp(a->kernel, b->kernel) ||
        strcmp(a->map, b->map) || strcmp(a->draw, b->draw) || !same_real(a->A, b->A) ||
        a->dv - a->d != b->dv - b->d || a->batch != b->batch || a->heads != b->heads ||
        a->threads != b->threads)
        return 0;
    if (!map_reads(a->map, "m"))
        return 1;
    if ((a->m == a->d) != (b->m == b->d))
        return 0;
    return a->m == a->d || a->m == b->m;
}

/* A linear series as text: "prf m=64 orthogonal (linear_causal_chunked)". */
static void xo_name(const struct la_crossover *x, int with_kernel, int with_draw, int m_as_d,
                    char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", x->map);
    size_t len = strlen(buf);
    if (map_reads(x->map, "m") && len + 1 < cap) {
        if (m_as_d && x->m == x->d)
            snprintf(buf + len, cap - len, " m=d");
        else
            snprintf(buf + len, cap - len, " m=%d", x->m);
    }
    len = strlen(buf);
    if (with_draw && map_reads(x->map, "draw") && len + 1 < cap)
        snprintf(buf + len, cap - len, " %s", x->draw);
    len = strlen(buf);
    if (with_kernel && len + 1 < cap)
        snprintf(buf + len, cap - len, " (%s)", x->kernel);
}

/* Whether several linear kernels (for one causality) or draws appear: titles then name them. */
static void xo_variety(const struct plot *P, int *kernels, int *draws)
{
    *kernels = *draws = 0;
    for (size_t i = 0; i < P->nxo; i++)
        for (size_t j = 0; j < i; j++) {
            if (P->xo[i].causal == P->xo[j].causal && strcmp(P->xo[i].kernel, P->xo[j].kernel))
                *kernels = 1;
            if (map_reads(P->xo[i].map, "draw") && map_reads(P->xo[j].map, "draw") &&
                strcmp(P->xo[i].draw, P->xo[j].draw))
                *draws = 1;
        }
}

/* Adds x to the sorted distinct values v[0..*n) (at most cap). */
static void add_distinct(double *v, int *n, int cap, double x)
{
    for (int i = 0; i < *n; i++)
        if (v[i] == x)
            return;
    if (*n >= cap)
        return;
    int i = (*n)++;
    while (i > 0 && v[i - 1] > x) {
        v[i] = v[i - 1];
        i--;
    }
    v[i] = x;
}

/* The softmax curve of a panel: medians over its rows at every T it was timed at (also where no
 * linear series was). */
static size_t write_softmax_curve(const struct plot *P, const struct la_crossover *c0, FILE *data)
{
    double Ts[128];
    int nT = 0;
    for (size_t i = 0; i < P->n; i++) {
        const struct la_row *r = &P->rows[i];
        if (r->status == LA_ROW_OK && isfinite(r->time_median_s) && is_softmax_row(r) &&
            !strcmp(r->kernel, c0->softmax) && r->causal == c0->causal && r->d == c0->d &&
            r->dv == c0->dv && r->batch == c0->batch && r->heads == c0->heads &&
            r->threads == c0->threads)
            add_distinct(Ts, &nT, 128, r->T);
    }
    double v[3][64];
    for (int j = 0; j < nT; j++) {
        size_t k = 0;
        for (size_t i = 0; i < P->n && k < 64; i++) {
            const struct la_row *r = &P->rows[i];
            if (r->status == LA_ROW_OK && isfinite(r->time_median_s) && is_softmax_row(r) &&
                !strcmp(r->kernel, c0->softmax) && r->causal == c0->causal && r->d == c0->d &&
                r->dv == c0->dv && r->batch == c0->batch && r->heads == c0->heads &&
                r->threads == c0->threads && r->T == Ts[j]) {
                v[0][k] = r->time_median_s;
                v[1][k] = isfinite(r->time_p20_s) ? r->time_p20_s : r->time_median_s;
                v[2][k] = isfinite(r->time_p80_s) ? r->time_p80_s : r->time_median_s;
                k++;
            }
        }
        for (int q = 0; q < 3; q++)
            qsort(v[q], k, sizeof(double), la_cmp_double);
        put_point(data, Ts[j], v[0][k / 2], v[1][k / 2], v[2][k / 2], k);
    }
    if (nT)
        end_block(data);
    return (size_t)nT;
}

/* Crossover: one panel per context (rows: causality, columns: d); softmax in black, each linear
 * series (kernel + feature map) with its T* in the legend and a ring at the crossing.  Columns of
 * a linear block: T, total, p20, p80 (kernel percentile + feature map), n, kernel, feature map. */
static int prepare_crossover(struct plot *P, const struct curve_spec *s, FILE *meta, FILE *data,
                             int *fits, struct la_error *err)
{
    (void)s;
    *fits = timing_fits(P);
    if (!*fits)
        return LA_OK;
    size_t np = 0, *first = malloc(P->nxo * sizeof *first);
    struct panel_meta *pm = calloc(P->nxo, sizeof *pm);
    struct curve_meta cm = {.every_panel = 1};
    int st = LA_OK;
    if (!first || !pm)
        goto nomem;
    double ds[32];
    int nd = 0;
    for (size_t i = 0; i < P->nxo; i++) {
        add_distinct(ds, &nd, 32, P->xo[i].d);
        size_t j;
        for (j = 0; j < np; j++)
            if (ctx_eq(&P->xo[first[j]], &P->xo[i]))
                break;
        if (j == np)
            first[np++] = i;
    }
    int kernels, draws;
    xo_variety(P, &kernels, &draws);
    for (size_t p = 0; p < np; p++) {
        const struct la_crossover *c0 = &P->xo[first[p]];
        struct panel_meta *m = &pm[p];
        snprintf(m->title, sizeof m->title, "d = %d, %s", c0->d,
                 c0->causal ? "causal" : "non-causal");
        if (c0->threads != 1) {
            size_t len = strlen(m->title);
            snprintf(m->title + len, sizeof m->title - len, ", %d thread%s", c0->threads,
                     plural(c0->threads));
        }
        snprintf(m->xlabel, sizeof m->xlabel, "sequence length T (tokens)");
        snprintf(m->ylabel, sizeof m->ylabel, "time per call, all heads (s)");
        m->first = (int)cm.n + 1;
        if (write_softmax_curve(P, c0, data)) {
            struct block b = {.dash = 1, .pt = 1};
            snprintf(b.title, sizeof b.title, "%s", c0->softmax);
            snprintf(b.map, sizeof b.map, "softmax");
            if (cm_push(&cm, &b) != LA_OK)
                goto nomem;
        }
        char seen[16][LA_NAME_LEN];
        int nseen = 0, nvar[16] = {0};
        for (size_t i = 0; i < P->nxo; i++) {
            const struct la_crossover *x = &P->xo[i];
            if (!ctx_eq(x, c0))
                continue;
            for (size_t j = 0; j < x->npoints; j++) {
                const struct la_xo_point *q = &x->pts[j];
                fprintf(data, "%.0f\t%.9g\t%.9g\t%.9g\t1\t%.9g\t%.9g\n", q->T, q->t_linear,
                        q->t_linear_p20, q->t_linear_p80, q->t_kernel, q->t_fm);
            }
            end_block(data);
            struct block b = {0};
            char name[96], tst[32];
            xo_name(x, kernels, draws, 0, name, sizeof name);
            if (x->status == LA_XO_FOUND) {
                fmt_T(x->T_star, tst, sizeof tst);
                snprintf(b.title, sizeof b.title, "%s: T* = %s", name, tst);
            } else {
                fmt_T(x->status == LA_XO_BELOW ? x->T_min : x->T_max, tst, sizeof tst);
                snprintf(b.title, sizeof b.title, "%s: T* %s %s", name,
                         x->status == LA_XO_BELOW ? "<" : ">", tst);
            }
            snprintf(b.map, sizeof b.map, "%s", x->map);
            int k;
            for (k = 0; k < nseen; k++)
                if (!strcmp(seen[k], x->map))
                    break;
            if (k == nseen && nseen < 16)
                snprintf(seen[nseen++], LA_NAME_LEN, "%s", x->map);
            int v = k < 16 ? nvar[k]++ : 0;
            b.dash = 1 + v % 3;
            b.pt = 1 + v % 8;
            if (cm_push(&cm, &b) != LA_OK)
                goto nomem;
        }
        for (size_t i = 0; i < P->nxo; i++) {
            const struct la_crossover *x = &P->xo[i];
            if (!ctx_eq(x, c0) || x->status != LA_XO_FOUND)
                continue;
            /* The ring sits on the linear curve at T*, interpolated in log-log. */
            double y = NAN;
            for (size_t j = 1; j < x->npoints; j++)
                if (x->pts[j - 1].T == x->T_lo) {
                    double a = log(x->pts[j - 1].t_linear), bb = log(x->pts[j].t_linear);
                    double u = (log(x->T_star) - log(x->T_lo)) / (log(x->T_hi) - log(x->T_lo));
                    y = exp(a + u * (bb - a));
                }
            put_point(data, x->T_star, y, y, y, 1);
            end_block(data);
            struct block b = {.dash = 1, .pt = -1};
            snprintf(b.map, sizeof b.map, "%s", x->map);
            if (cm_push(&cm, &b) != LA_OK)
                goto nomem;
        }
        m->last = (int)cm.n;
    }
    int ncols = nd ? nd : 1;
    write_meta_arrays(meta, pm, (int)np, (int)((np + (size_t)ncols - 1) / (size_t)ncols), ncols,
                      &cm);
    goto done;
nomem:
    st = LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
done:
    free(first);
    free(pm);
    free(cm.b);
    return st;
}

/* Speedup heatmap: one panel per linear configuration (non-causal row, then causal row);
 * x = log2 T, y = index of d, value t_softmax / t_linear (NaN where not measured). */
static int prepare_speedup(struct plot *P, const struct curve_spec *s, FILE *meta, FILE *data,
                           int *fits, struct la_error *err)
{
    (void)s;
    *fits = timing_fits(P);
    if (!*fits)
        return LA_OK;
    double ds[32], Ts[64];
    int nd = 0, nT = 0;
    for (size_t i = 0; i < P->nxo; i++) {
        add_distinct(ds, &nd, 32, P->xo[i].d);
        for (size_t j = 0; j < P->xo[i].npoints; j++)
            add_distinct(Ts, &nT, 64, P->xo[i].pts[j].T);
    }
    size_t ncfg = 0, *cfg = malloc(P->nxo * sizeof *cfg);
    struct panel_meta *grid = NULL;
    struct curve_meta cm = {0};
    int st = LA_OK;
    if (!cfg)
        goto nomem;
    for (int pass = 0; pass < 2; pass++) /* non-causal configurations first */
        for (size_t i = 0; i < P->nxo; i++) {
            if (P->xo[i].causal != pass)
                continue;
            size_t j;
            for (j = 0; j < ncfg; j++)
                if (same_cfg(&P->xo[cfg[j]], &P->xo[i]))
                    break;
            if (j == ncfg)
                cfg[ncfg++] = i;
        }
    size_t nnc = 0;
    for (size_t j = 0; j < ncfg; j++)
        nnc += !P->xo[cfg[j]].causal;
    size_t nc = ncfg - nnc, ncols = nnc > nc ? nnc : nc, nrows = (nnc > 0) + (nc > 0);
    size_t np = nrows * ncols;
    grid = calloc(np ? np : 1, sizeof *grid);
    if (!grid)
        goto nomem;
    for (size_t p = 0; p < np; p++)
        grid[p].first = 1, grid[p].last = 0; /* empty slot until filled */
    int kernels, draws;
    xo_variety(P, &kernels, &draws);
    double vmax = 1;
    for (size_t j = 0; j < ncfg; j++) {
        const struct la_crossover *c = &P->xo[cfg[j]];
        size_t slot = j < nnc ? j : (nnc ? ncols : 0) + (j - nnc);
        struct panel_meta *m = &grid[slot];
        char name[96];
        xo_name(c, kernels, draws, 1, name, sizeof name);
        snprintf(m->title, sizeof m->title, "%s, %s", name, c->causal ? "causal" : "non-causal");
        snprintf(m->xlabel, sizeof m->xlabel, "sequence length T (tokens)");
        snprintf(m->ylabel, sizeof m->ylabel, "head dimension d");
        for (int di = 0; di < nd; di++)
            for (int ti = 0; ti < nT; ti++) {
                double v = NAN;
                for (size_t i = 0; i < P->nxo; i++) {
                    const struct la_crossover *x = &P->xo[i];
                    if (x->d != ds[di] || !same_cfg(x, c))
                        continue;
                    for (size_t q = 0; q < x->npoints; q++)
                        if (x->pts[q].T == Ts[ti])
                            v = x->pts[q].t_softmax / x->pts[q].t_linear;
                }
                if (isfinite(v) && v > 0) {
                    double a = v > 1 ? v : 1 / v;
                    vmax = a > vmax ? a : vmax;
                }
                put_point(data, log2(Ts[ti]), di, v, v, 1);
            }
        end_block(data);
        struct block b = {.dash = 1, .pt = 0};
        snprintf(b.map, sizeof b.map, "%s", c->map);
        if (cm_push(&cm, &b) != LA_OK)
            goto nomem;
        m->first = m->last = (int)cm.n;
    }
    write_meta_arrays(meta, grid, (int)np, (int)nrows, (int)ncols, &cm);
    fprintf(meta, "nd = %d\narray dvals[%d]\n", nd, nd ? nd : 1);
    for (int i = 0; i < nd; i++)
        fprintf(meta, "dvals[%d] = %g\n", i + 1, ds[i]);
    /* The colour range: symmetric in log2 around 1, at least 2x and at most 64x either way
     * (beyond, colours saturate; the numbers in the cells still say). */
    double e = ceil(log2(vmax));
    fprintf(meta, "cbmax = %g\n", pow(2, e < 1 ? 1 : e > 6 ? 6 : e));
    fprintf(meta, "log2Tmin = %g\nlog2Tmax = %g\n", nT ? log2(Ts[0]) : 0,
            nT ? log2(Ts[nT - 1]) : 1);
    goto done;
nomem:
    st = LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
done:
    free(cfg);
    free(grid);
    free(cm.b);
    return st;
}

#define ERR_LABEL "output error ‖Y − Y_sm‖_F / ‖Y_sm‖_F  (err_rel_fro)"
#define KL_LABEL "attention KL, nats  (kl_mean)"

/* ---- real heads: error per head, heads sorted by softmax attention entropy ------------------
 * For files of `data: h5` rows with single heads (experiments/real-stories260k.yaml): one
 * curve per map (random maps at m = 64 outputs when measured, else their largest m), x = the
 * head's mean softmax-row entropy in nats (low = peaky), y = output error (left panel) and
 * attention KL (right panel); points are means over trials, bars min–max. */

struct head_stat {
    int layer, head;
    double entropy; /* mean over the head's rows */
    size_t n;
};

static int cmp_head_entropy(const void *a, const void *b)
{
    const struct head_stat *x = a, *y = b;
    return (x->entropy > y->entropy) - (x->entropy < y->entropy);
}

static int real_row(const struct la_row *r)
{
    return r->status == LA_ROW_OK && !strcmp(r->data, "h5") && r->head >= 0 &&
           strcmp(r->map, "none") != 0 && isfinite(r->err_rel_fro);
}

static int prepare_real_heads(struct plot *P, const struct curve_spec *s, FILE *meta, FILE *data,
                              int *fits, struct la_error *err)
{
    (void)s;
    struct head_stat *hs = calloc(P->n ? P->n : 1, sizeof *hs);
    char(*maps)[LA_NAME_LEN] = calloc(P->n ? P->n : 1, sizeof *maps);
    int *mchoice = calloc(P->n ? P->n : 1, sizeof *mchoice);
    struct curve_meta cm = {0};
    struct panel_meta grid[2];
    size_t nh = 0, nm = 0;
    int st = LA_OK;
    *fits = 0;
    if (!hs || !maps || !mchoice) {
        st = LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
        goto done;
    }
    for (size_t i = 0; i < P->n; i++) {
        const struct la_row *r = &P->rows[i];
        if (!real_row(r))
            continue;
        size_t h = 0;
        while (h < nh && !(hs[h].layer == r->layer && hs[h].head == r->head))
            h++;
        if (h == nh) {
            hs[nh].layer = r->layer, hs[nh].head = r->head;
            nh++;
        }
        if (isfinite(r->entropy_mean)) {
            hs[h].entropy += r->entropy_mean;
            hs[h].n++;
        }
        size_t k = 0;
        while (k < nm && strcmp(maps[k], r->map) != 0)
            k++;
        if (k == nm) {
            snprintf(maps[nm], LA_NAME_LEN, "%s", r->map);
            mchoice[nm++] = r->m;
        } else if (mchoice[k] != 64 && (r->m == 64 || r->m > mchoice[k])) {
            mchoice[k] = r->m;
        }
    }
    if (nh < 2 || nm == 0)
        goto done;
    *fits = 1;
    for (size_t h = 0; h < nh; h++)
        hs[h].entropy = hs[h].n ? hs[h].entropy / (double)hs[h].n : NAN;
    qsort(hs, nh, sizeof *hs, cmp_head_entropy);
    for (int p = 0; p < 2; p++) {
        memset(&grid[p], 0, sizeof grid[p]);
        snprintf(grid[p].title, sizeof grid[p].title, "%zu head%s, sorted by softmax entropy",
                 nh, plural((long long)nh));
        snprintf(grid[p].xlabel, sizeof grid[p].xlabel,
                 "head's mean softmax attention entropy, nats (left: peaky)");
        snprintf(grid[p].ylabel, sizeof grid[p].ylabel, "%s", p ? KL_LABEL : ERR_LABEL);
        grid[p].first = (int)cm.n + 1;
        for (size_t k = 0; k < nm; k++) {
            for (size_t h = 0; h < nh; h++) {
                double sum = 0, lo = INFINITY, hi = -INFINITY;
                size_t n = 0;
                for (size_t i = 0; i < P->n; i++) {
                    const struct la_row *r = &P->rows[i];
                    if (!real_row(r) || strcmp(r->map, maps[k]) || r->m != mchoice[k] ||
                        r->layer != hs[h].layer || r->head != hs[h].head)
                        continue;
                    const double v = p ? r->kl_mean : r->err_rel_fro;
                    if (!isfinite(v))
                        continue;
                    sum += v, n++;
                    lo = v < lo ? v : lo, hi = v > hi ? v : hi;
                }
                if (n)
                    put_point(data, hs[h].entropy, sum / (double)n, lo, hi, n);
            }
            end_block(data);
            struct block b = {.dash = 1, .pt = (int)k + 1};
            snprintf(b.map, sizeof b.map, "%s", maps[k]);
            snprintf(b.title, sizeof b.title, "%s (m = %d)", maps[k], mchoice[k]);
            if (cm_push(&cm, &b) != LA_OK) {
                st = LA_FAIL(err, LA_ENOMEM, "plot: out of memory");
                goto done;
            }
        }
        grid[p].last = (int)cm.n;
    }
    write_meta_arrays(meta, grid, 2, 1, 2, &cm);
done:
    free(hs);
    free(maps);
    free(mchoice);
    free(cm.b);
    return st;
}

/* ---- the figure table ----------------------------------------------------------------------- */

typedef int (*prepare_fn)(struct plot *P, const struct curve_spec *s, FILE *meta, FILE *data,
                          int *fits, struct la_error *err);

struct figure {
    const char *name; /* file name part, --only value, plots/NAME.gp */
    const char *what;
    prepare_fn prepare;
    struct curve_spec spec;
};


static const struct figure figures[] = {
    {"crossover",
     "time (kernel + feature map) vs T, softmax vs linear, T* marked",
     prepare_crossover,
     {.xfield = F_T}},
    {"speedup", "heatmap of t_softmax / t_linear over (T, d)", prepare_speedup, {.xfield = F_T}},
    {"features",
     "kernel MSE and output error vs m, with Lemma 2 theory",
     prepare_curves,
     {.xfield = F_M,
      .metrics = {"kernel_mse", "err_rel_fro"},
      .ylabels = {"kernel MSE of φ(q)ᵀφ(k)  (kernel_mse)", ERR_LABEL},
      .nmetrics = 2,
      .xlabel = "features m (output dimension of φ; rff, hyp: 2 per draw)",
      .panel_fields = BIT(F_D) | BIT(F_SIGMA) | BIT(F_T) | BIT(F_CAUSAL) | BIT(F_DATA),
      .fixed_field = -1,
      .dash_field = F_DRAW,
      .avg_fields = BIT(F_LAYER) | BIT(F_HEAD),
      .row_ok = row_ok_random_map,
      .extra = features_theory}},
    {"error_T",
     "output error and attention KL vs T (at one σ)",
     prepare_curves,
     {.xfield = F_T,
      .metrics = {"err_rel_fro", "kl_mean"},
      .ylabels = {ERR_LABEL, KL_LABEL},
      .nmetrics = 2,
      .xlabel = "sequence length T (tokens)",
      .panel_fields = BIT(F_CAUSAL) | BIT(F_D) | BIT(F_DATA),
      .fixed_field = F_SIGMA,
      .dash_field = -1,
      .avg_fields = BIT(F_LAYER) | BIT(F_HEAD),
      .row_ok = row_ok_any}},
    {"error_sigma",
     "output error and attention KL vs input scale σ (at one T)",
     prepare_curves,
     {.xfield = F_SIGMA,
      .metrics = {"err_rel_fro", "kl_mean"},
      .ylabels = {ERR_LABEL, KL_LABEL},
      .nmetrics = 2,
      .xlabel = "input scale σ (q, k, v ~ N(0, σ²))",
      .panel_fields = BIT(F_CAUSAL) | BIT(F_D),
      .fixed_field = F_T,
      .dash_field = -1,
      .avg_fields = BIT(F_LAYER) | BIT(F_HEAD),
      .row_ok = row_ok_sigma_setting}},
    {"memory",
     "kernel workspace and process peak RSS vs T (when nothing else fits)",
     prepare_curves,
     {.xfield = F_T,
      .metrics = {"workspace_bytes", "peak_rss_bytes"},
      .ylabels = {"kernel workspace + φ(Q), φ(K)  (workspace_bytes)",
                  "process peak RSS  (peak_rss_bytes)"},
      .nmetrics = 2,
      .xlabel = "sequence length T (tokens)",
      .panel_fields = BIT(F_D) | BIT(F_DATA),
      .metrics_across = 1,
      .fixed_field = -1,
      .dash_field = F_CAUSAL,
      .row_ok = row_ok_any}},
    {"real_heads",
     "output error and attention KL per real head, heads sorted by softmax entropy",
     prepare_real_heads,
     {.xfield = F_T}},
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
    la_results_attr(P->h5, "git_commit", commit, sizeof commit, &e);
    la_results_attr(P->h5, "tool_version", ver, sizeof ver, &e);
    la_results_attr(P->h5, "cpu_model", cpu, sizeof cpu, &e);
    la_results_attr(P->h5, "threads", thr, sizeof thr, &e);
    la_results_attr(P->h5, "created_utc", utc, sizeof utc, &e);
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
    fprintf(f, "softmax\tkernel\tmap\tm\tdraw\td\tdv\tcausal\tthreads\tstatus\tT_star\tT_lo\t"
               "T_hi\tT_min\tT_max\tT_model\tT_flops\tratio_at_T_max\tn_cross\n");
    static const char *const stname[] = {"found", "below_range", "beyond_range"};
    for (size_t i = 0; i < P->nxo; i++) {
        const struct la_crossover *x = &P->xo[i];
        fprintf(f, "%s\t%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\t%s\t", x->softmax, x->kernel, x->map, x->m,
                x->draw, x->d, x->dv, x->causal, x->threads, stname[x->status]);
        double v[] = {x->T_star, x->T_lo,    x->T_hi,    x->T_min,
                      x->T_max,  x->T_model, x->T_flops, x->ratio_max};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++) {
            put_num(f, v[k]);
            fputc('\t', f);
        }
        fprintf(f, "%d\n", x->n_cross);
    }
    return close_checked(f, path, err);
}

/* ---- the command -------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: linattn plot FILE.h5 [-o DIR] [--only FIG[,FIG...]] [--format png|pdf|both]\n"
            "                    [--png-dpi N] [--keep DIR] [--scripts DIR] [--quiet]\n\n"
            "Draws the figures that fit the results in FILE.h5 with gnuplot, as PNG and PDF, into\n"
            "DIR (default plots/out), named STEM_FIGURE.png/.pdf where STEM is the experiment's\n"
            "name (just FIGURE.png when the experiment is named after the figure).  Every figure\n"
            "carries a caption with the experiment, the git commit, the CPU and the date.\n"
            "Prints the crossover table (T*) when the file has timings, writes it to\n"
            "DIR/STEM_tstar.tsv, and prints the path of every file written.\n\n"
            "figures (drawn when the data fits; --only forces the named ones):\n");
    for (size_t i = 0; i < N_FIGURES; i++)
        fprintf(out, "  %-12s %s\n", figures[i].name, figures[i].what);
    fprintf(out,
            "\n  -o, --output DIR   where the figures go (created)\n"
            "  --only LIST        draw only these figures (comma-separated)\n"
            "  --format F         png, pdf or both (default both)\n"
            "  --png-dpi N        PNG pixels per inch (default 110; docs use 80)\n"
            "  --keep DIR         write gnuplot's inputs (data.tsv, meta.gp per figure) into DIR\n"
            "                     and keep them: rerun `gnuplot DIR/FIG.meta.gp plots/FIG.gp`\n"
            "  --scripts DIR      the gnuplot scripts (default: ./plots, $LINATTN_PLOTS, or next\n"
            "                     to the linattn binary)\n"
            "  -q, --quiet        print only the files written\n\n"
            "Needs gnuplot with the cairo terminals (Debian: gnuplot-nox).  Timing figures need\n"
            "rows with >= %d timed repeats; see docs/FIGURES.md for how to read each figure.\n\n"
            "Exit status: 0 when at least one figure was drawn; 1 when none was (no row is ok,\n"
            "or no figure fits the ok rows; one line on stderr says which, with the counts of\n"
            "ok and failed rows); 2 with the message for any other error (a bad option, an\n"
            "unreadable results file, gnuplot missing or failing, an unwritable DIR).\n",
            MIN_REPEATS_FOR_TIMING);
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
    const char *h5 = NULL, *outdir = "plots/out", *only = NULL, *keep = NULL, *scripts = NULL;
    const char *format = "both";
    int quiet = 0, P_png_dpi = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && more) {
            outdir = argv[++i];
        } else if (!strcmp(a, "--only") && more) {
            only = argv[++i];
        } else if (!strcmp(a, "--format") && more) {
            format = argv[++i];
        } else if (!strcmp(a, "--png-dpi") && more) {
            char *end;
            long v = strtol(argv[++i], &end, 10);
            if (*end || v < 30 || v > 600) {
                fprintf(stderr, "linattn plot: --png-dpi must be an integer in 30..600, got '%s'\n",
                        argv[i]);
                return 2;
            }
            P_png_dpi = (int)v;
        } else if (!strcmp(a, "--keep") && more) {
            keep = argv[++i];
        } else if (!strcmp(a, "--scripts") && more) {
            scripts = argv[++i];
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "linattn plot: unknown option or missing value: '%s' (see --help)\n",
                    a);
            return 2;
        } else if (!h5) {
            h5 = a;
        } else {
            fprintf(stderr, "linattn plot: one results file at a time (got '%s' and '%s')\n", h5,
                    a);
            return 2;
        }
    }
    if (!h5) {
        usage(stderr);
        return 2;
    }
    struct la_error err;
    la_error_clear(&err);
    struct plot P;
    memset(&P, 0, sizeof P);
    P.h5 = h5;
    P.quiet = quiet;
    P.png_dpi = P_png_dpi;
    P.forced = only != NULL;
    int st = LA_OK, drawn = 0;
    if (!strcmp(format, "both"))
        snprintf(P.formats, sizeof P.formats, "png pdf");
    else if (!strcmp(format, "png") || !strcmp(format, "pdf"))
        snprintf(P.formats, sizeof P.formats, "%s", format);
    else {
        fprintf(stderr, "linattn plot: --format must be png, pdf or both, got '%s'\n", format);
        return 2;
    }
    if (only && (st = check_only(only, &err)) != LA_OK)
        goto fail;
    if ((st = find_scripts(P.scripts, sizeof P.scripts, scripts, &err)) != LA_OK)
        goto fail;
    if ((st = la_results_read(h5, &P.rows, &P.n, &err)) != LA_OK)
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
    if ((st = la_crossover_compute(P.rows, P.n, &P.xo, &P.nxo, &err)) != LA_OK)
        goto fail;

    for (size_t f = 0; f < N_FIGURES; f++) {
        const struct figure *fig = &figures[f];
        if (!want_figure(only, fig->name))
            continue;
        /* Every row has a workspace size, so memory fits everything: by default it is drawn
         * only for files no other figure fits (a memory experiment), or when asked for. */
        if (!strcmp(fig->name, "memory") && !only && drawn)
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
        st = fig->prepare(&P, &fig->spec, meta, data, &fits, &err);
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
    }
    if (P.keep && !quiet)
        printf("gnuplot inputs kept in %s\n", P.tmpdir);
    if (!drawn) {
        /* Nothing drawn is a failure (exit 1), whatever the reason; say which. */
        size_t ok = 0, failed = 0;
        for (size_t i = 0; i < P.n; i++) {
            ok += P.rows[i].status == LA_ROW_OK;
            failed += P.rows[i].status == LA_ROW_FAILED;
        }
        fprintf(stderr, "linattn plot: no figure drawn: %s %s (%zu ok of %zu row%s; %zu failed)%s\n",
                ok ? (only ? "the figures asked for do not fit" : "no figure fits")
                   : "no row is ok in",
                h5, ok, P.n, plural((long long)P.n), failed,
                ok ? "; see `linattn plot --help`"
                   : failed ? "; see `linattn info` for why they failed" : "");
    }
    cleanup(&P);
    la_crossover_free(P.xo);
    free(P.rows);
    return drawn ? 0 : 1;
fail:
    fprintf(stderr, "linattn plot: %s\n", err.msg);
    cleanup(&P);
    la_crossover_free(P.xo);
    free(P.rows);
    return la_exit_code(st);
}
