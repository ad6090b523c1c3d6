/* experiment.c — experiment files: YAML → validated settings → the expanded grid of cells.
 *
 * The schema is documented key by key in experiments/README.md; this file is its only reader.
 * Loading runs in phases, and the first problem found stops it with one line
 * "FILE:LINE:COL: message" (nothing is run, nothing is printed):
 *   1. parse (libfyaml, experiment_yaml.c): syntax, one document, no aliases or tags;
 *   2. read every section with strict key checks ("did you mean") and typed values;
 *   3. cross-checks: maps entries against sweep axes, data-source-specific axes, files that
 *      must exist (weights, HDF5 data), the shape of an HDF5 data file, the output directory;
 *   4. expand: Cartesian product of the axes × trials, each combination collapsed to the
 *      parameters that apply to it (softmax kernels have no map; a map without `m` gets m = 0,
 *      ...), identified by its canonical key; repeats of a key are merged, combinations a
 *      kernel cannot run (causal vs non-causal) and those removed by exclude/only are dropped;
 *   5. order: by increasing estimated flops (ties: grid order), so cheap cells report first.
 * Cell seeds are a hash of (experiment seed, the cell's data fields and trial): independent of
 * the grid order, of the other cells and of which process runs a cell, and shared by every
 * kernel, map and thread count at the same data point, so comparisons across maps and kernels
 * are paired (the same Q, K, V; the same draws for the same map parameters).
 *
 * Not here: running cells (runner), the results file (results.c).
 * Tests: tests/test_experiment.c; fuzzing: `make fuzz` (tests/fuzz_experiment.c).
 */
#include "experiment.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <hdf5.h>
#include <nettle/sha2.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/h5util.h"
#include "../core/util.h"
#include "experiment_yaml.h"

#define MAX_CELLS 100000 /* combinations × trials an experiment may expand to */
#define MAX_FILE_BYTES (4 << 20)

/* Upper bounds of the counts (experiments/README.md, "Bounds", gives the reasons).  A value
 * over its bound is refused with its position, never clamped. */
#define MAX_T (1 << 24)          /* T; also max_ref_rows, kl_rows and chunk (at most T rows) */
#define MAX_DIM (1 << 14)        /* d, dv */
#define MAX_M (1 << 20)          /* m: taylor2's 1 + d + d² at d = 1023 still fits */
#define MAX_BATCH_HEADS (1 << 16) /* batch, heads */
#define MAX_THREADS 1024         /* as --threads: more only ends in libgomp aborting */
#define MAX_LAYER_HEAD 65535     /* layer, head of an h5 data file (checked against it too) */
#define MAX_REPEATS 1000         /* the timer keeps at most 1000 samples (timing.c) */
#define MAX_WARMUP 1000
#define MAX_KERNEL_PAIRS (1 << 20) /* the MSE's standard error is ~0.1 % of its spread here */
#define MAX_TIME_BUDGET_S 86400.0  /* one day per cell */
#define MAX_CELL_BYTES 1099511627776.0 /* 1 TiB: la_cell_bytes of one cell (one process) */

/* Defaults of the axes that are not swept (see experiments/README.md). */
#define DEFAULT_T 1024
#define DEFAULT_D 64
#define DEFAULT_EPS 1e-6
#define DEFAULT_SIGMA 1.0

/* ---- the axes ---------------------------------------------------------------------------- */

enum ax_id {
    AX_KERNEL,
    AX_MAP,
    AX_M,
    AX_DRAW,
    AX_A,
    AX_CAUSAL,
    AX_CHUNK,
    AX_EPS,
    AX_T,
    AX_D,
    AX_DV,
    AX_BATCH,
    AX_HEADS,
    AX_THREADS,
    AX_SIGMA,
    AX_NORM,
    AX_LAYER,
    AX_HEAD,
    AX_COUNT
};

enum ax_kind {
    K_INT,  /* integer >= lo */
    K_REAL, /* real > 0 (or >= 0 when lo_closed) */
    K_BOOL,
    K_KERNEL, /* a kernel table name or the alias `linear` */
    K_MAP,    /* a feature map name (`none` only in exclude/only rules) */
    K_DRAW,   /* iid | orthogonal */
    K_A,      /* a real < 1/4, or `auto` */
    K_HEAD    /* an integer >= 0, or `all` */
};

struct ax_def {
    const char *name;
    int kind;
    long long lo; /* K_INT, K_HEAD: smallest value */
    int closed;   /* K_REAL: 1 if 0 is allowed */
    long long hi; /* K_INT, K_HEAD: largest value */
};

static const struct ax_def ax_defs[AX_COUNT] = {
    [AX_KERNEL] = {"kernel", K_KERNEL, 0, 0, 0},
    [AX_MAP] = {"map", K_MAP, 0, 0, 0},
    [AX_M] = {"m", K_INT, 1, 0, MAX_M},
    [AX_DRAW] = {"draw", K_DRAW, 0, 0, 0},
    [AX_A] = {"A", K_A, 0, 0, 0},
    [AX_CAUSAL] = {"causal", K_BOOL, 0, 0, 0},
    [AX_CHUNK] = {"chunk", K_INT, 0, 0, MAX_T},
    [AX_EPS] = {"eps", K_REAL, 0, 1, 0},
    [AX_T] = {"T", K_INT, 1, 0, MAX_T},
    [AX_D] = {"d", K_INT, 1, 0, MAX_DIM},
    [AX_DV] = {"dv", K_INT, 1, 0, MAX_DIM},
    [AX_BATCH] = {"batch", K_INT, 1, 0, MAX_BATCH_HEADS},
    [AX_HEADS] = {"heads", K_INT, 1, 0, MAX_BATCH_HEADS},
    [AX_THREADS] = {"threads", K_INT, 1, 0, MAX_THREADS},
    [AX_SIGMA] = {"sigma", K_REAL, 0, 0, 0},
    [AX_NORM] = {"norm", K_REAL, 0, 0, 0},
    [AX_LAYER] = {"layer", K_INT, 0, 0, MAX_LAYER_HEAD},
    [AX_HEAD] = {"head", K_HEAD, 0, 0, MAX_LAYER_HEAD},
};

static const char *const axis_names[] = {
    "kernel", "map",   "m",     "draw",    "A",     "causal", "chunk", "eps",  "T",  "d",
    "dv",     "batch", "heads", "threads", "sigma", "norm",   "layer", "head", NULL,
};

static const char *const top_keys[] = {
    "name", "description", "seed",    "output",  "trials", "sweep",
    "maps", "data",        "measure", "exclude", "only",   NULL,
};
static const char *const data_keys[] = {"source", "path", NULL};
static const char *const measure_keys[] = {
    "time",         "error",   "time_budget_s", "min_repeats", "warmup",
    "max_ref_rows", "kl_rows", "kernel_pairs",  NULL,
};
static const char *const range_keys[] = {"from", "to", "factor", "step", NULL};
static const char *const cmp_keys[] = {"lt", "le", "gt", "ge", NULL};
static const char *const draw_names[] = {"iid", "orthogonal", NULL};
static const char *const source_names[] = {"gaussian", "sphere", "h5", NULL};
/* Parameters a maps: entry may set (those of featuremap_type.params the user controls). */
static const char *const map_param_names[] = {"m",   "draw",    "norm_fixed", "A",
                                              "eps", "weights", NULL};

/* One value of an axis (or of an exclude/only condition). */
struct axval {
    long long i;      /* K_INT, K_BOOL, K_DRAW; K_HEAD (-1 = all) */
    double x;         /* K_REAL, K_A */
    int is_auto;      /* K_A: `auto` */
    const char *name; /* K_KERNEL, K_MAP: static storage (table or registry) */
    struct fy_node *node;
};

struct axis {
    struct fy_node *key; /* NULL: not swept (one default value) */
    struct axval *v;
    size_t n, cap;
};

/* A maps: entry: fixed parameters of one feature map. */
struct mapcfg {
    struct fy_node *key;
    int has_m, m;
    struct fy_node *m_key;
    int has_draw, draw;
    struct fy_node *draw_key;
    int has_norm_fixed, norm_fixed;
    int has_A, A_auto;
    double A;
    struct fy_node *A_key;
    int has_eps;
    double eps;
    char weights[LA_PATH_LEN];
};

/* One condition of an exclude/only rule: axis ∈ values, and every comparison holds. */
enum cmp_op { CMP_LT, CMP_LE, CMP_GT, CMP_GE };
struct cond {
    int ax;
    struct axval *v;
    size_t n, cap;
    int ncmp;
    int op[4];
    double x[4];
};
struct rule {
    struct cond c[AX_COUNT];
    int n;
};

struct loader {
    struct ly y;
    struct la_error *err;
    struct la_experiment *e;
    struct axis ax[AX_COUNT];
    struct mapcfg *maps; /* one per registered map, same index as featuremap_types[] */
    size_t nmaps;
    int trials;
    int source;
    char data_path[LA_PATH_LEN];
    struct fy_node *data_key, *source_node, *path_node;
    long long h5_L, h5_H, h5_T, h5_hs, h5_hsv; /* shape of an h5 data file */
    struct la_cell proto;                      /* measure settings, copied into every cell */
    struct fy_node *measure_key, *sweep_key, *output_node, *name_node;
    struct rule *excl, *only;
    size_t nexcl, nonly;
    int has_only;
    size_t long_path_len; /* the longest weights or data path, for key-length errors */
    struct fy_node *long_path_node;
};

/* ---- small helpers ---------------------------------------------------------------------- */

/* The cell seed: splitmix64 chained over the key's bytes, 8 at a time, from the experiment
 * seed.  Depends on nothing but (seed, key). */
static uint64_t seed_from_key(uint64_t seed, const char *key)
{
    uint64_t h = la_splitmix64(seed);
    size_t len = strlen(key);
    for (size_t i = 0; i < len; i += 8) {
        uint64_t w = 0;
        for (size_t j = 0; j < 8 && i + j < len; j++)
            w |= (uint64_t)(unsigned char)key[i + j] << (8 * j);
        h = la_splitmix64(h ^ w);
    }
    return la_splitmix64(h ^ (uint64_t)len);
}

/* Shortest "%g" text that reads back as exactly x, so keys are short and still exact. */
static void fmt_real(char *buf, size_t cap, double x)
{
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(buf, cap, "%.*g", prec, x);
        if (strtod(buf, NULL) == x)
            return;
    }
}

/* The seed of a cell: from the fields that identify its data (shape, source and its
 * parameters, trial), not from kernel, map or threads, so every map and kernel measured at one
 * data point sees the same inputs. */
static uint64_t data_seed(uint64_t seed, const struct la_cell *c)
{
    char k[LA_KEY_LEN + 128];
    snprintf(k, sizeof k, "T=%d d=%d dv=%d batch=%d heads=%d data=%d sigma=%.17g norm=%.17g "
             "layer=%d head=%d trial=%d path=%s",
             c->T, c->d, c->dv, c->batch, c->heads, c->source, c->sigma, c->norm, c->layer,
             c->head, c->trial, c->data_path);
    return seed_from_key(seed, k);
}

static const struct featuremap_type *find_map(const char *name, size_t *idx)
{
    for (size_t i = 0; featuremap_types[i]; i++)
        if (!strcmp(featuremap_types[i]->name, name)) {
            if (idx)
                *idx = i;
            return featuremap_types[i];
        }
    return NULL;
}

/* The map used when `map` is not swept: elu1 (the example map), else the first one. */
static const struct featuremap_type *default_map(void)
{
    const struct featuremap_type *t = find_map("elu1", NULL);
    return t ? t : featuremap_types[0];
}

/* `linear` means the non-causal or the causal linear kernel, whichever the cell needs. */
static const struct attn_kernel *resolve_kernel(const char *name, int causal)
{
    if (strcmp(name, "linear"))
        return attn_kernel_lookup(name);
    const struct attn_kernel *k = attn_kernel_lookup(causal ? "linear_causal" : "linear_noncausal");
    return k ? k : attn_kernel_find(ATTN_OP_FORWARD, ATTN_IN_FEATURES, causal);
}

static int axis_id(const char *name)
{
    for (int i = 0; i < AX_COUNT; i++)
        if (!strcmp(ax_defs[i].name, name))
            return i;
    return -1;
}

static int push_val(struct axval **v, size_t *n, size_t *cap, const struct axval *x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct axval *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return LA_ENOMEM;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = *x;
    return LA_OK;
}

/* ---- values ----------------------------------------------------------------------------- */

/* Reads one scalar value of axis `id` (rules may also name map `none`). */
static int parse_value(struct loader *L, int id, struct fy_node *n, struct fy_node *fb, int in_rule,
                       struct axval *out)
{
    const struct ax_def *def = &ax_defs[id];
    const struct ly *y = &L->y;
    char what[48], buf[LA_NAME_LEN + 8], show[48], list[1024];
    snprintf(what, sizeof what, "'%s'", def->name);
    memset(out, 0, sizeof *out);
    out->node = n;
    int st;
    long long iv;
    switch (def->kind) {
    case K_INT:
        st = ly_int(y, n, fb, what, def->lo, def->hi, &iv);
        out->i = iv;
        return st;
    case K_REAL:
        if ((st = ly_real(y, n, fb, what, &out->x)) != LA_OK)
            return st;
        if (def->closed ? out->x < 0 : out->x <= 0)
            return LY_FAIL(y, n, fb, LA_EINVAL, "%s must be %s 0, got %s", what,
                           def->closed ? ">=" : ">", ly_show(n, show, sizeof show));
        return LA_OK;
    case K_BOOL: {
        int b = 0;
        st = ly_bool(y, n, fb, what, &b);
        out->i = b;
        return st;
    }
    case K_A:
        if (ly_is_scalar(n) && !ly_is_null(n) && !strcmp(ly_show(n, show, sizeof show), "auto")) {
            out->is_auto = 1;
            return LA_OK;
        }
        if ((st = ly_real(y, n, fb, "'A' (a number or auto)", &out->x)) != LA_OK)
            return st;
        if (!(out->x < 0.25))
            return LY_FAIL(y, n, fb, LA_EINVAL, "'A' must be < 0.25 (1 - 4A > 0), got %s",
                           ly_show(n, show, sizeof show));
        return LA_OK;
    case K_HEAD:
        if (ly_is_scalar(n) && !ly_is_null(n) && !strcmp(ly_show(n, show, sizeof show), "all")) {
            out->i = -1;
            return LA_OK;
        }
        st = ly_int(y, n, fb, "'head' (an integer or all)", 0, def->hi, &iv);
        out->i = iv;
        return st;
    default:
        break;
    }
    /* Names. */
    if ((st = ly_str(y, n, fb, what, buf, sizeof buf)) != LA_OK) {
        if (ly_is_scalar(n) && !ly_is_null(n)) /* too long: it cannot be a valid name */
            snprintf(buf, sizeof buf, "%s", ly_show(n, show, sizeof show));
        else
            return st;
    }
    if (def->kind == K_KERNEL) {
        if (!strcmp(buf, "linear")) {
            out->name = "linear";
            return LA_OK;
        }
        const struct attn_kernel *k = attn_kernel_lookup(buf);
        if (k) {
            out->name = k->name;
            return LA_OK;
        }
        const char *names[40];
        size_t nn = 0;
        names[nn++] = "linear";
        for (size_t i = 0; attn_kernels[i].name && nn < 39; i++)
            names[nn++] = attn_kernels[i].name;
        names[nn] = NULL;
        return LY_FAIL(y, n, fb, LA_ENAME, "unknown kernel '%s'%s", buf,
                       la_choices_msg(list, sizeof list, buf, names, nn, "valid kernels"));
    }
    if (def->kind == K_MAP) {
        if (in_rule && !strcmp(buf, "none")) {
            out->name = "none";
            return LA_OK;
        }
        const struct featuremap_type *t = find_map(buf, NULL);
        if (t) {
            out->name = t->name;
            return LA_OK;
        }
        return LY_FAIL(y, n, fb, LA_ENAME, "unknown feature map '%s'%s%s", buf,
                       la_choices_msg(list, sizeof list, buf, featuremap_names(),
                                      featuremap_count(), "valid maps"),
                       in_rule ? ", none" : "");
    }
    /* K_DRAW */
    for (int i = 0; draw_names[i]; i++)
        if (!strcmp(buf, draw_names[i])) {
            out->i = i == 0 ? FM_DRAW_IID : FM_DRAW_ORTHOGONAL;
            return LA_OK;
        }
    return LY_FAIL(y, n, fb, LA_ENAME, "unknown draw '%s'%s", buf,
                   la_choices_msg(list, sizeof list, buf, draw_names, 2, "valid draws"));
}

/* A range {from, to, factor} (geometric) or {from, to, step} (arithmetic), `to` included when
 * hit (within a relative 1e-9, so 0.1-steps end where they should). */
static int parse_range(struct loader *L, int id, struct fy_node *m, struct fy_node *key,
                       struct axis *a)
{
    const struct ly *y = &L->y;
    const struct ax_def *def = &ax_defs[id];
    int st;
    if (def->kind != K_INT && def->kind != K_REAL && def->kind != K_A)
        return LY_FAIL(y, m, key, LA_EINVAL, "'%s' takes a value or a list of values, not a range",
                       def->name);
    if ((st = ly_check_keys(y, m, "a range ({from, to, factor} or {from, to, step})",
                            range_keys)) != LA_OK)
        return st;
    struct fy_node *kfrom, *kto, *kfac, *kstep;
    struct fy_node *nfrom = ly_get(m, "from", &kfrom), *nto = ly_get(m, "to", &kto);
    struct fy_node *nfac = ly_get(m, "factor", &kfac), *nstep = ly_get(m, "step", &kstep);
    if (!kfrom || !kto)
        return LY_FAIL(y, m, key, LA_EINVAL, "the range of '%s' needs both 'from' and 'to'",
                       def->name);
    if (!!kfac == !!kstep)
        return LY_FAIL(y, m, key, LA_EINVAL,
                       "the range of '%s' needs exactly one of 'factor' (geometric) or 'step'",
                       def->name);
    struct axval from, to;
    if ((st = parse_value(L, id, nfrom, kfrom, 0, &from)) != LA_OK ||
        (st = parse_value(L, id, nto, kto, 0, &to)) != LA_OK)
        return st;
    if (from.is_auto || to.is_auto)
        return LY_FAIL(y, from.is_auto ? nfrom : nto, key, LA_EINVAL,
                       "a range of 'A' takes numbers, not auto");
    int integer = def->kind == K_INT;
    double lo = integer ? (double)from.i : from.x, hi = integer ? (double)to.i : to.x;
    if (lo > hi)
        return LY_FAIL(y, nfrom, kfrom, LA_EINVAL, "the range of '%s' has from > to (%g > %g)",
                       def->name, lo, hi);
    double f = 0, step = 0, count;
    if (kfac) {
        if ((st = ly_real(y, nfac, kfac, "'factor'", &f)) != LA_OK)
            return st;
        if (!(f > 1))
            return LY_FAIL(y, nfac, kfac, LA_EINVAL, "'factor' must be > 1, got %g", f);
        if (!(lo > 0))
            return LY_FAIL(y, nfrom, kfrom, LA_EINVAL, "a geometric range of '%s' needs from > 0",
                           def->name);
        count = floor(log(hi / lo) / log(f) + 1e-9) + 1;
    } else {
        if ((st = ly_real(y, nstep, kstep, "'step'", &step)) != LA_OK)
            return st;
        if (!(step > 0))
            return LY_FAIL(y, nstep, kstep, LA_EINVAL, "'step' must be > 0, got %g", step);
        if (integer && step != floor(step))
            return LY_FAIL(y, nstep, kstep, LA_EINVAL,
                           "'step' of integer axis '%s' must be an integer, got %g", def->name,
                           step);
        count = floor((hi - lo) / step + 1e-9) + 1;
    }
    if (!(count <= MAX_CELLS))
        return LY_FAIL(y, m, key, LA_EINVAL, "the range of '%s' has %.3g points (at most %d)",
                       def->name, count, MAX_CELLS);
    long long last = LLONG_MIN;
    for (long long k = 0; k < (long long)count + 1; k++) {
        double x = kfac ? lo * pow(f, (double)k) : lo + (double)k * step;
        if (x > hi + 1e-9 * fabs(hi) + (kfac ? 0 : 1e-9 * step))
            break;
        if (x > hi)
            x = hi;
        struct axval v = from;
        if (integer) {
            v.i = llround(x);
            if (v.i == last)
                continue; /* a small factor rounds several points to one integer */
            last = v.i;
        } else {
            /* 0.1 + 2·0.1 is 0.30000000000000004: keep 12 digits so keys read 0.3. */
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%.12g", x);
            v.x = strtod(tmp, NULL);
        }
        if (push_val(&a->v, &a->n, &a->cap, &v) != LA_OK)
            return LY_FAIL(y, m, key, LA_ENOMEM, "out of memory expanding '%s'", def->name);
    }
    return LA_OK;
}

/* An axis: a scalar, a list of scalars, or a range. */
static int parse_axis(struct loader *L, int id, struct fy_node *key, struct fy_node *n)
{
    const struct ly *y = &L->y;
    struct axis *a = &L->ax[id];
    struct axval v;
    int st;
    a->key = key;
    if (ly_is_map(n))
        return parse_range(L, id, n, key, a);
    if (ly_is_seq(n)) {
        void *it = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(n, &it))) {
            if (!ly_is_scalar(item) || ly_is_null(item))
                return LY_FAIL(y, item, key, LA_EINVAL,
                               "each value of '%s' must be a scalar, got %s", ax_defs[id].name,
                               ly_kind(item));
            if ((st = parse_value(L, id, item, key, 0, &v)) != LA_OK)
                return st;
            if (a->n >= MAX_CELLS)
                return LY_FAIL(y, item, key, LA_EINVAL, "'%s' has more than %d values",
                               ax_defs[id].name, MAX_CELLS);
            if (push_val(&a->v, &a->n, &a->cap, &v) != LA_OK)
                return LY_FAIL(y, item, key, LA_ENOMEM, "out of memory");
        }
        if (a->n == 0)
            return LY_FAIL(y, n, key, LA_EINVAL, "'%s' is an empty list", ax_defs[id].name);
        return LA_OK;
    }
    if ((st = parse_value(L, id, n, key, 0, &v)) != LA_OK)
        return st;
    if (push_val(&a->v, &a->n, &a->cap, &v) != LA_OK)
        return LY_FAIL(y, n, key, LA_ENOMEM, "out of memory");
    return LA_OK;
}

/* ---- sections --------------------------------------------------------------------------- */

static int parse_sweep(struct loader *L, struct fy_node *key, struct fy_node *n)
{
    const struct ly *y = &L->y;
    int st;
    L->sweep_key = key;
    if (ly_is_null(n))
        return LA_OK;
    if (!ly_is_map(n))
        return LY_FAIL(y, n, key, LA_EINVAL, "'sweep' must be a mapping of axes, got %s",
                       ly_kind(n));
    if ((st = ly_check_keys(y, n, "sweep", axis_names)) != LA_OK)
        return st;
    void *it = NULL;
    struct ly_pair p;
    int r;
    while ((r = ly_next_pair(y, n, &it, &p)) > 0)
        if ((st = parse_axis(L, axis_id(p.key), p.knode, p.vnode)) != LA_OK)
            return st;
    return r < 0 ? LA_EINVAL : LA_OK;
}

/* A file the experiment needs (weights, data): a readable regular file, checked now so a long
 * sweep does not fail at its first cell that needs it. */
static int check_input_file(struct loader *L, struct fy_node *n, struct fy_node *fb,
                            const char *what, const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0)
        return LY_FAIL(&L->y, n, fb, LA_EIO, "%s '%s': %s", what, path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return LY_FAIL(&L->y, n, fb, LA_EIO, "%s '%s' is not a regular file", what, path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return LY_FAIL(&L->y, n, fb, LA_EIO, "%s '%s' cannot be read: %s", what, path,
                       strerror(errno));
    fclose(f);
    return LA_OK;
}

static int parse_maps(struct loader *L, struct fy_node *key, struct fy_node *n)
{
    const struct ly *y = &L->y;
    int st, r;
    if (ly_is_null(n))
        return LA_OK;
    if (!ly_is_map(n))
        return LY_FAIL(y, n, key, LA_EINVAL,
                       "'maps' must be a mapping of map name -> parameters, got %s", ly_kind(n));
    void *it = NULL;
    struct ly_pair p;
    while ((r = ly_next_pair(y, n, &it, &p)) > 0) {
        size_t idx = 0;
        const struct featuremap_type *t = find_map(p.key, &idx);
        if (!t) {
            char msg[1024];
            return LY_FAIL(y, p.knode, NULL, LA_ENAME, "unknown feature map '%s' in maps%s",
                           p.key,
                           la_choices_msg(msg, sizeof msg, p.key, featuremap_names(),
                                          featuremap_count(), "valid maps"));
        }
        struct mapcfg *mc = &L->maps[idx];
        mc->key = p.knode;
        if (ly_is_null(p.vnode))
            continue;
        if (!ly_is_map(p.vnode))
            return LY_FAIL(y, p.vnode, p.knode, LA_EINVAL,
                           "maps: '%s' must be a mapping of parameters, got %s", t->name,
                           ly_kind(p.vnode));
        /* The keys this map accepts: the user-settable words of its params list. */
        const char *valid[8];
        size_t nv = 0;
        for (size_t i = 0; map_param_names[i]; i++)
            if (featuremap_type_reads(t, map_param_names[i]))
                valid[nv++] = map_param_names[i];
        valid[nv] = NULL;
        void *it2 = NULL;
        struct ly_pair q;
        while ((r = ly_next_pair(y, p.vnode, &it2, &q)) > 0) {
            size_t i;
            for (i = 0; i < nv; i++)
                if (!strcmp(q.key, valid[i]))
                    break;
            if (i == nv) {
                char msg[256];
                return LY_FAIL(y, q.knode, NULL, LA_EINVAL, "map '%s' has no parameter '%s'%s",
                               t->name, q.key,
                               la_choices_msg(msg, sizeof msg, q.key, valid, nv,
                                              "its parameters"));
            }
            struct axval v;
            char what[96];
            snprintf(what, sizeof what, "'%s' of map '%s'", q.key, t->name);
            if (!strcmp(q.key, "m")) {
                if ((st = parse_value(L, AX_M, q.vnode, q.knode, 0, &v)) != LA_OK)
                    return st;
                mc->has_m = 1;
                mc->m = (int)v.i;
                mc->m_key = q.knode;
            } else if (!strcmp(q.key, "draw")) {
                if ((st = parse_value(L, AX_DRAW, q.vnode, q.knode, 0, &v)) != LA_OK)
                    return st;
                mc->has_draw = 1;
                mc->draw = (int)v.i;
                mc->draw_key = q.knode;
            } else if (!strcmp(q.key, "A")) {
                if ((st = parse_value(L, AX_A, q.vnode, q.knode, 0, &v)) != LA_OK)
                    return st;
                mc->has_A = 1;
                mc->A = v.x;
                mc->A_auto = v.is_auto;
                mc->A_key = q.knode;
            } else if (!strcmp(q.key, "norm_fixed")) {
                if ((st = ly_bool(y, q.vnode, q.knode, what, &mc->norm_fixed)) != LA_OK)
                    return st;
                mc->has_norm_fixed = 1;
            } else if (!strcmp(q.key, "eps")) {
                if ((st = ly_real(y, q.vnode, q.knode, what, &mc->eps)) != LA_OK)
                    return st;
                if (mc->eps < 0)
                    return LY_FAIL(y, q.vnode, q.knode, LA_EINVAL, "%s must be >= 0", what);
                mc->has_eps = 1;
            } else { /* weights */
                if ((st = ly_str(y, q.vnode, q.knode, what, mc->weights, sizeof mc->weights)) !=
                    LA_OK)
                    return st;
                if ((st = check_input_file(L, q.vnode, q.knode, "weights file", mc->weights)) !=
                    LA_OK)
                    return st;
                if (strlen(mc->weights) > L->long_path_len) {
                    L->long_path_len = strlen(mc->weights);
                    L->long_path_node = q.vnode;
                }
            }
        }
        if (r < 0)
            return LA_EINVAL;
    }
    return r < 0 ? LA_EINVAL : LA_OK;
}

static int parse_data(struct loader *L, struct fy_node *key, struct fy_node *n)
{
    const struct ly *y = &L->y;
    int st;
    L->data_key = key;
    if (ly_is_null(n))
        return LA_OK;
    if (!ly_is_map(n))
        return LY_FAIL(y, n, key, LA_EINVAL, "'data' must be a mapping (source, path), got %s",
                       ly_kind(n));
    if ((st = ly_check_keys(y, n, "data", data_keys)) != LA_OK)
        return st;
    struct fy_node *ks, *kp;
    struct fy_node *ns = ly_get(n, "source", &ks), *np = ly_get(n, "path", &kp);
    if (ks) {
        char buf[LA_NAME_LEN], show[48];
        if ((st = ly_str(y, ns, ks, "'source'", buf, sizeof buf)) != LA_OK)
            snprintf(buf, sizeof buf, "%s", ly_show(ns, show, sizeof show));
        if (ly_is_null(ns) || !ly_is_scalar(ns))
            return st;
        int i;
        for (i = 0; source_names[i]; i++)
            if (!strcmp(buf, source_names[i]))
                break;
        if (!source_names[i]) {
            char msg[128];
            return LY_FAIL(y, ns, ks, LA_ENAME, "unknown data source '%s'%s", buf,
                           la_choices_msg(msg, sizeof msg, buf, source_names, 3,
                                          "valid sources"));
        }
        L->source = i == 0 ? LA_DATA_GAUSSIAN : i == 1 ? LA_DATA_SPHERE : LA_DATA_H5;
        L->source_node = ns;
    }
    if (kp) {
        if (L->source != LA_DATA_H5)
            return LY_FAIL(y, kp, NULL, LA_EINVAL,
                           "'path' applies to data source h5 only (source is %s)",
                           source_names[L->source]);
        if ((st = ly_str(y, np, kp, "'path'", L->data_path, sizeof L->data_path)) != LA_OK)
            return st;
        L->path_node = np;
        if (strlen(L->data_path) > L->long_path_len) {
            L->long_path_len = strlen(L->data_path);
            L->long_path_node = np;
        }
    } else if (L->source == LA_DATA_H5) {
        return LY_FAIL(y, ns, ks, LA_EINVAL, "data source h5 needs 'path' (an HDF5 file)");
    }
    return LA_OK;
}

static int parse_measure(struct loader *L, struct fy_node *key, struct fy_node *n)
{
    const struct ly *y = &L->y;
    struct la_cell *c = &L->proto;
    int st;
    L->measure_key = key;
    if (ly_is_null(n))
        return LA_OK;
    if (!ly_is_map(n))
        return LY_FAIL(y, n, key, LA_EINVAL, "'measure' must be a mapping, got %s", ly_kind(n));
    if ((st = ly_check_keys(y, n, "measure", measure_keys)) != LA_OK)
        return st;
    void *it = NULL;
    struct ly_pair p;
    int r;
    while ((r = ly_next_pair(y, n, &it, &p)) > 0) {
        char what[96];
        long long v;
        snprintf(what, sizeof what, "'%s'", p.key);
        if (!strcmp(p.key, "time")) {
            st = ly_bool(y, p.vnode, p.knode, what, &c->measure_time);
        } else if (!strcmp(p.key, "error")) {
            st = ly_bool(y, p.vnode, p.knode, what, &c->measure_error);
        } else if (!strcmp(p.key, "time_budget_s")) {
            st = ly_real(y, p.vnode, p.knode, what, &c->time_budget_s);
            if (st == LA_OK && !(c->time_budget_s > 0 && c->time_budget_s <= MAX_TIME_BUDGET_S))
                st = LY_FAIL(y, p.vnode, p.knode, LA_EINVAL,
                             "'time_budget_s' must be > 0 and at most %.0f, got %g",
                             MAX_TIME_BUDGET_S, c->time_budget_s);
        } else {
            long long lo = !strcmp(p.key, "min_repeats") || !strcmp(p.key, "max_ref_rows");
            long long hi = !strcmp(p.key, "min_repeats")    ? MAX_REPEATS
                           : !strcmp(p.key, "warmup")       ? MAX_WARMUP
                           : !strcmp(p.key, "kernel_pairs") ? MAX_KERNEL_PAIRS
                                                            : MAX_T;
            st = ly_int(y, p.vnode, p.knode, what, lo, hi, &v);
            if (st == LA_OK) {
                if (!strcmp(p.key, "min_repeats"))
                    c->min_repeats = (int)v;
                else if (!strcmp(p.key, "warmup"))
                    c->warmup = (int)v;
                else if (!strcmp(p.key, "max_ref_rows"))
                    c->max_ref_rows = (int)v;
                else if (!strcmp(p.key, "kl_rows"))
                    c->kl_rows = (int)v;
                else
                    c->kernel_pairs = (int)v;
            }
        }
        if (st != LA_OK)
            return st;
    }
    if (r < 0)
        return LA_EINVAL;
    if (!c->measure_time && !c->measure_error)
        return LY_FAIL(y, n, key, LA_EINVAL,
                       "measure: time and error are both false: nothing would be measured");
    return LA_OK;
}

/* One exclude/only rule: {axis: value | [values] | {lt|le|gt|ge: number}, ...}. */
static int parse_rule(struct loader *L, struct fy_node *n, struct fy_node *key, struct rule *ru)
{
    const struct ly *y = &L->y;
    int st, r;
    if (!ly_is_map(n))
        return LY_FAIL(y, n, key, LA_EINVAL, "a rule must be a mapping of axis -> values, got %s",
                       ly_kind(n));
    if ((st = ly_check_keys(y, n, "a rule", axis_names)) != LA_OK)
        return st;
    void *it = NULL;
    struct ly_pair p;
    while ((r = ly_next_pair(y, n, &it, &p)) > 0) {
        int id = axis_id(p.key);
        struct cond *c = &ru->c[ru->n++];
        c->ax = id;
        const struct ax_def *def = &ax_defs[id];
        struct axval v;
        if (ly_is_map(p.vnode)) {
            if (def->kind != K_INT && def->kind != K_REAL && def->kind != K_A &&
                def->kind != K_HEAD)
                return LY_FAIL(y, p.vnode, p.knode, LA_EINVAL,
                               "comparisons apply to numeric axes; '%s' is not one", p.key);
            if ((st = ly_check_keys(y, p.vnode, "a comparison", cmp_keys)) != LA_OK)
                return st;
            void *it2 = NULL;
            struct ly_pair q;
            while ((r = ly_next_pair(y, p.vnode, &it2, &q)) > 0) {
                int op = !strcmp(q.key, "lt")   ? CMP_LT
                         : !strcmp(q.key, "le") ? CMP_LE
                         : !strcmp(q.key, "gt") ? CMP_GT
                                                : CMP_GE;
                char what[160];
                snprintf(what, sizeof what, "'%s' of '%s'", q.key, p.key);
                if ((st = ly_real(y, q.vnode, q.knode, what, &c->x[c->ncmp])) != LA_OK)
                    return st;
                c->op[c->ncmp++] = op;
            }
            if (r < 0)
                return LA_EINVAL;
            if (c->ncmp == 0)
                return LY_FAIL(y, p.vnode, p.knode, LA_EINVAL, "an empty comparison for '%s'",
                               p.key);
        } else if (ly_is_seq(p.vnode)) {
            void *it2 = NULL;
            struct fy_node *item;
            while ((item = fy_node_sequence_iterate(p.vnode, &it2))) {
                if (!ly_is_scalar(item) || ly_is_null(item))
                    return LY_FAIL(y, item, p.knode, LA_EINVAL,
                                   "each value of '%s' must be a scalar, got %s", p.key,
                                   ly_kind(item));
                if ((st = parse_value(L, id, item, p.knode, 1, &v)) != LA_OK)
                    return st;
                if (push_val(&c->v, &c->n, &c->cap, &v) != LA_OK)
                    return LY_FAIL(y, item, p.knode, LA_ENOMEM, "out of memory");
            }
            if (c->n == 0)
                return LY_FAIL(y, p.vnode, p.knode, LA_EINVAL, "'%s' is an empty list", p.key);
        } else {
            if ((st = parse_value(L, id, p.vnode, p.knode, 1, &v)) != LA_OK)
                return st;
            if (push_val(&c->v, &c->n, &c->cap, &v) != LA_OK)
                return LY_FAIL(y, p.vnode, p.knode, LA_ENOMEM, "out of memory");
        }
    }
    if (r < 0)
        return LA_EINVAL;
    if (ru->n == 0)
        return LY_FAIL(y, n, key, LA_EINVAL, "an empty rule would match every cell");
    return LA_OK;
}

/* exclude: / only: a list of rules (a single rule mapping is accepted as a list of one). */
static int parse_rules(struct loader *L, const char *section, struct fy_node *key,
                       struct fy_node *n, struct rule **out, size_t *nout)
{
    const struct ly *y = &L->y;
    if (ly_is_null(n))
        return LY_FAIL(y, n, key, LA_EINVAL, "'%s' needs a list of rules", section);
    size_t count = ly_is_seq(n) ? (size_t)fy_node_sequence_item_count(n) : 1;
    if (!ly_is_seq(n) && !ly_is_map(n))
        return LY_FAIL(y, n, key, LA_EINVAL, "'%s' must be a list of rules, got %s", section,
                       ly_kind(n));
    if (count == 0)
        return LY_FAIL(y, n, key, LA_EINVAL, "'%s' is an empty list", section);
    *out = calloc(count, sizeof **out);
    if (!*out)
        return LY_FAIL(y, n, key, LA_ENOMEM, "out of memory");
    *nout = count;
    if (ly_is_map(n))
        return parse_rule(L, n, key, &(*out)[0]);
    void *it = NULL;
    struct fy_node *item;
    size_t i = 0;
    while ((item = fy_node_sequence_iterate(n, &it)) && i < count) {
        int st = parse_rule(L, item, key, &(*out)[i++]);
        if (st != LA_OK)
            return st;
    }
    return LA_OK;
}

static void free_rules(struct rule *r, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        for (int j = 0; j < r[i].n; j++)
            free(r[i].c[j].v);
    free(r);
}

/* ---- cross-checks ----------------------------------------------------------------------- */

/* Rank and dims of one dataset (-1 when it cannot be read). */
static int h5_dataset_dims(hid_t f, const char *name, hsize_t dims[8])
{
    int rank = -1;
    hid_t d =
        H5Lexists(f, name, H5P_DEFAULT) > 0 ? H5Dopen2(f, name, H5P_DEFAULT) : H5I_INVALID_HID;
    hid_t s = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
    if (s >= 0)
        rank = H5Sget_simple_extent_ndims(s);
    if (rank >= 1 && rank <= 8)
        H5Sget_simple_extent_dims(s, dims, NULL);
    if (s >= 0)
        H5Sclose(s);
    if (d >= 0)
        H5Dclose(d);
    return rank;
}

/* Reads the shape of an h5 data file the way data.c does: /Q is (L, H, T, hs), (H, T, hs) or
 * (T, hs); dv is the last dimension of /V. */
static int read_h5_dims(struct loader *L)
{
    const struct ly *y = &L->y;
    H5E_auto2_t efn = NULL;
    void *edata = NULL;
    H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* failures are reported below, not printed */
    int st = LA_OK, rank = -1, vrank = -1;
    hsize_t dims[8] = {0}, vdims[8] = {0};
    hid_t f = la_h5_open_readonly(L->data_path);
    if (f >= 0) {
        rank = h5_dataset_dims(f, "/Q", dims);
        vrank = h5_dataset_dims(f, "/V", vdims);
        H5Fclose(f);
    }
    H5Eset_auto2(H5E_DEFAULT, efn, edata);
    if (f < 0)
        return LY_FAIL(y, L->path_node, NULL, LA_EFORMAT, "data file '%s' is not an HDF5 file",
                       L->data_path);
    if (rank < 0 || vrank < 0)
        return LY_FAIL(y, L->path_node, NULL, LA_EFORMAT,
                       "data file '%s' lacks dataset %s (see docs/data-layout.md)", L->data_path,
                       rank < 0 ? "/Q" : "/V");
    if (rank < 2 || rank > 4)
        return LY_FAIL(y, L->path_node, NULL, LA_EFORMAT,
                       "data file '%s': /Q has rank %d; expected (L, H, T, hs), (H, T, hs) or "
                       "(T, hs)",
                       L->data_path, rank);
    L->h5_L = rank == 4 ? (long long)dims[0] : 1;
    L->h5_H = rank >= 3 ? (long long)dims[rank - 3] : 1;
    L->h5_T = (long long)dims[rank - 2];
    L->h5_hs = (long long)dims[rank - 1];
    L->h5_hsv = (long long)vdims[vrank - 1];
    if (L->h5_L < 1 || L->h5_H < 1 || L->h5_T < 1 || L->h5_hs < 1 || L->h5_hsv < 1 ||
        L->h5_L > INT_MAX || L->h5_H > INT_MAX || L->h5_T > INT_MAX || L->h5_hs > INT_MAX ||
        L->h5_hsv > INT_MAX)
        st = LY_FAIL(y, L->path_node, NULL, LA_EFORMAT, "data file '%s': /Q or /V is empty",
                     L->data_path);
    return st;
}

/* Each value of axis id must satisfy value <= hi (or == eq when eq >= 0). */
static int check_axis_bound(struct loader *L, int id, long long hi, long long eq, const char *why)
{
    const struct axis *a = &L->ax[id];
    for (size_t i = 0; i < a->n; i++) {
        long long v = a->v[i].i;
        if ((eq >= 0 && v != eq) || (eq < 0 && v > hi))
            return LY_FAIL(&L->y, a->v[i].node, a->key, LA_EINVAL,
                           "'%s' = %lld does not fit the data file: %s", ax_defs[id].name, v, why);
    }
    return LA_OK;
}

static int cross_checks(struct loader *L)
{
    const struct ly *y = &L->y;
    int st;
    /* A map parameter is either swept or fixed in maps:, never both. */
    for (size_t i = 0; i < L->nmaps; i++) {
        const struct mapcfg *mc = &L->maps[i];
        struct {
            int has;
            struct fy_node *k;
            int ax;
        } both[3] = {
            {mc->has_m, mc->m_key, AX_M},
            {mc->has_draw, mc->draw_key, AX_DRAW},
            {mc->has_A, mc->A_key, AX_A},
        };
        for (int j = 0; j < 3; j++)
            if (both[j].has && L->ax[both[j].ax].key) {
                int line, col;
                ly_where(L->ax[both[j].ax].key, NULL, &line, &col);
                return LY_FAIL(y, both[j].k, NULL, LA_EINVAL,
                               "'%s' of map '%s' is also a sweep axis (line %d); set it in one "
                               "place",
                               ax_defs[both[j].ax].name, featuremap_types[i]->name, line);
            }
    }
    /* A map that needs a weights file must have one, if any kernel that takes features will
     * use it. */
    int any_linear = !L->ax[AX_KERNEL].key;
    for (size_t i = 0; i < L->ax[AX_KERNEL].n; i++) {
        const struct attn_kernel *k = resolve_kernel(L->ax[AX_KERNEL].v[i].name, 0);
        any_linear |= !k || k->input == ATTN_IN_FEATURES;
    }
    if (any_linear) {
        const struct axis *a = &L->ax[AX_MAP];
        size_t n = a->key ? a->n : 1;
        for (size_t i = 0; i < n; i++) {
            size_t idx = 0;
            const struct featuremap_type *t = a->key ? find_map(a->v[i].name, &idx) : default_map();
            if (!a->key)
                find_map(t->name, &idx);
            if (featuremap_type_reads(t, "weights") && !L->maps[idx].weights[0])
                return LY_FAIL(y, a->key ? a->v[i].node : NULL, a->key, LA_EINVAL,
                               "map '%s' needs a weights file: add maps: {%s: {weights: FILE}}",
                               t->name, t->name);
        }
    }
    /* Axes that belong to one data source. */
    static const struct {
        int ax, source;
    } owned[] = {
        {AX_SIGMA, LA_DATA_GAUSSIAN},
        {AX_NORM, LA_DATA_SPHERE},
        {AX_LAYER, LA_DATA_H5},
        {AX_HEAD, LA_DATA_H5},
    };
    for (size_t i = 0; i < sizeof owned / sizeof owned[0]; i++)
        if (L->ax[owned[i].ax].key && L->source != owned[i].source)
            return LY_FAIL(y, L->ax[owned[i].ax].key, NULL, LA_EINVAL,
                           "'%s' applies to data source %s only (source is %s)",
                           ax_defs[owned[i].ax].name, source_names[owned[i].source],
                           source_names[L->source]);
    if (L->source == LA_DATA_H5) {
        if ((st = check_input_file(L, L->path_node, NULL, "data file", L->data_path)) != LA_OK ||
            (st = read_h5_dims(L)) != LA_OK)
            return st;
        if (L->ax[AX_HEADS].key)
            return LY_FAIL(y, L->ax[AX_HEADS].key, NULL, LA_EINVAL,
                           "'heads' comes from the data file with source h5; select with "
                           "'head' (an index or all)");
        char why[LA_PATH_LEN + 128];
        snprintf(why, sizeof why, "%s has %lld layers, %lld heads, T = %lld, head size %lld",
                 L->data_path, L->h5_L, L->h5_H, L->h5_T, L->h5_hs);
        if ((st = check_axis_bound(L, AX_T, L->h5_T, -1, why)) != LA_OK ||
            (st = check_axis_bound(L, AX_D, 0, L->h5_hs, why)) != LA_OK ||
            (st = check_axis_bound(L, AX_DV, 0, L->h5_hsv, why)) != LA_OK ||
            (st = check_axis_bound(L, AX_BATCH, 0, 1, why)) != LA_OK ||
            (st = check_axis_bound(L, AX_LAYER, L->h5_L - 1, -1, why)) != LA_OK ||
            (st = check_axis_bound(L, AX_HEAD, L->h5_H - 1, -1, why)) != LA_OK)
            return st;
        if (!L->ax[AX_LAYER].key) {
            /* Every layer of the file. */
            for (long long l = 0; l < L->h5_L && l < MAX_CELLS; l++) {
                struct axval v = {.i = l};
                if (push_val(&L->ax[AX_LAYER].v, &L->ax[AX_LAYER].n, &L->ax[AX_LAYER].cap, &v) !=
                    LA_OK)
                    return LY_FAIL(y, L->path_node, NULL, LA_ENOMEM, "out of memory");
            }
        }
    }
    return LA_OK;
}

/* The output file must be creatable: its directory exists and is writable, or can be made
 * (its nearest existing ancestor is a writable directory).  Nothing is created here. */
static int check_output(struct loader *L)
{
    const struct ly *y = &L->y;
    const char *out = L->e->output;
    struct fy_node *n = L->output_node ? L->output_node : L->name_node;
    size_t len = strlen(out);
    struct stat sb;
    if (len == 0 || out[len - 1] == '/')
        return LY_FAIL(y, n, NULL, LA_EINVAL, "output '%s' is not a file name", out);
    if (stat(out, &sb) == 0) {
        if (S_ISDIR(sb.st_mode))
            return LY_FAIL(y, n, NULL, LA_EIO, "output '%s' is a directory", out);
        if (access(out, W_OK) != 0)
            return LY_FAIL(y, n, NULL, LA_EIO, "output '%s' exists and is not writable", out);
        return LA_OK;
    }
    char dir[LA_PATH_LEN];
    snprintf(dir, sizeof dir, "%s", out);
    for (int guard = 0; guard < 4096; guard++) {
        char *slash = strrchr(dir, '/');
        if (!slash)
            snprintf(dir, sizeof dir, ".");
        else if (slash == dir)
            dir[1] = '\0';
        else
            *slash = '\0';
        if (stat(dir, &sb) == 0) {
            if (!S_ISDIR(sb.st_mode))
                return LY_FAIL(y, n, NULL, LA_EIO, "output '%s': '%s' is not a directory", out,
                               dir);
            if (access(dir, W_OK | X_OK) != 0)
                return LY_FAIL(y, n, NULL, LA_EIO,
                               "output '%s' cannot be created: directory '%s' is not writable", out,
                               dir);
            return LA_OK;
        }
        if (errno != ENOENT)
            return LY_FAIL(y, n, NULL, LA_EIO, "output '%s': '%s': %s", out, dir, strerror(errno));
        if (!strcmp(dir, ".") || !strcmp(dir, "/"))
            break;
    }
    return LY_FAIL(y, n, NULL, LA_EIO, "output '%s': no existing parent directory", out);
}

/* ---- expansion -------------------------------------------------------------------------- */

static const char *draw_text(const struct la_cell *c, const struct featuremap_type *t)
{
    if (!t || !featuremap_type_reads(t, "draw"))
        return "-";
    return c->draw == FM_DRAW_ORTHOGONAL ? "orthogonal" : "iid";
}

/* Builds the canonical key; returns the length it needs (>= LA_KEY_LEN: too long). */
static int build_key(struct la_cell *c, const struct featuremap_type *t)
{
    char A[32], eps[32], reps[32], sigma[32], norm[32];
    if (c->A_auto)
        snprintf(A, sizeof A, "auto");
    else
        fmt_real(A, sizeof A, c->A);
    fmt_real(eps, sizeof eps, c->eps);
    fmt_real(reps, sizeof reps, c->relu_eps);
    fmt_real(sigma, sizeof sigma, c->sigma);
    fmt_real(norm, sizeof norm, c->norm);
    return snprintf(c->key, sizeof c->key,
                    "kernel=%s map=%s m=%d draw=%s norm_fixed=%d A=%s relu_eps=%s causal=%d "
                    "chunk=%d eps=%s T=%d d=%d dv=%d batch=%d heads=%d threads=%d data=%s "
                    "sigma=%s norm=%s layer=%d head=%d trial=%d weights=%s path=%s",
                    c->kernel, c->map, c->m, draw_text(c, t), c->norm_fixed, A, reps, c->causal,
                    c->chunk, eps, c->T, c->d, c->dv, c->batch, c->heads, c->threads,
                    source_names[c->source], sigma, norm, c->layer, c->head, c->trial, c->weights,
                    c->data_path);
}

/* One combination → a cell with only the parameters that apply to it (the rest at their
 * neutral values, so equivalent combinations get equal keys).  *kn is NULL when the kernel
 * cannot run this causality. */
static void build_cell(const struct loader *L, const struct axval *const *v, int trial,
                       struct la_cell *c, const struct attn_kernel **kn,
                       const struct featuremap_type **tp)
{
    memcpy(c, &L->proto, sizeof *c);
    c->causal = v[AX_CAUSAL] ? (int)v[AX_CAUSAL]->i : 0;
    const char *kname = v[AX_KERNEL] ? v[AX_KERNEL]->name : "linear";
    const struct attn_kernel *k = resolve_kernel(kname, c->causal);
    *kn = k && (k->causal_support & (c->causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)) ? k : NULL;
    snprintf(c->kernel, sizeof c->kernel, "%s", k ? k->name : kname);

    const int h5 = L->source == LA_DATA_H5;
    c->T = v[AX_T] ? (int)v[AX_T]->i : h5 ? (int)L->h5_T : DEFAULT_T;
    c->d = v[AX_D] ? (int)v[AX_D]->i : h5 ? (int)L->h5_hs : DEFAULT_D;
    c->dv = v[AX_DV] ? (int)v[AX_DV]->i : h5 ? (int)L->h5_hsv : c->d;
    c->batch = v[AX_BATCH] ? (int)v[AX_BATCH]->i : 1;
    c->heads = v[AX_HEADS] ? (int)v[AX_HEADS]->i : 1;
    c->threads = v[AX_THREADS] ? (int)v[AX_THREADS]->i : 1;
    c->trial = trial;

    *tp = NULL;
    if (k && k->input != ATTN_IN_FEATURES) {
        snprintf(c->map, sizeof c->map, "none");
    } else {
        size_t idx = 0;
        const struct featuremap_type *t =
            v[AX_MAP] ? find_map(v[AX_MAP]->name, &idx) : default_map();
        find_map(t->name, &idx);
        const struct mapcfg *mc = &L->maps[idx];
        struct fm_params def;
        featuremap_params_default(&def, c->d);
        *tp = t;
        snprintf(c->map, sizeof c->map, "%s", t->name);
        if (featuremap_type_reads(t, "m"))
            c->m = mc->has_m ? mc->m : v[AX_M] ? (int)v[AX_M]->i : 0;
        if (featuremap_type_reads(t, "draw"))
            c->draw = mc->has_draw ? mc->draw : v[AX_DRAW] ? (int)v[AX_DRAW]->i : def.draw;
        if (featuremap_type_reads(t, "norm_fixed") && c->draw == FM_DRAW_ORTHOGONAL)
            c->norm_fixed = mc->has_norm_fixed ? mc->norm_fixed : def.norm_fixed;
        if (featuremap_type_reads(t, "A")) {
            if (mc->has_A) {
                c->A = mc->A;
                c->A_auto = mc->A_auto;
            } else if (v[AX_A]) {
                c->A = v[AX_A]->x;
                c->A_auto = v[AX_A]->is_auto;
            } else {
                c->A = def.A;
                c->A_auto = def.A_auto;
            }
        }
        if (featuremap_type_reads(t, "eps"))
            c->relu_eps = mc->has_eps ? mc->eps : def.eps;
        if (featuremap_type_reads(t, "weights"))
            snprintf(c->weights, sizeof c->weights, "%s", mc->weights);
        c->eps = v[AX_EPS] ? v[AX_EPS]->x : DEFAULT_EPS;
        if (k && k->uses_chunk)
            c->chunk = v[AX_CHUNK] ? (int)v[AX_CHUNK]->i : 0;
    }

    c->source = L->source;
    c->head = -1;
    if (L->source == LA_DATA_GAUSSIAN) {
        c->sigma = v[AX_SIGMA] ? v[AX_SIGMA]->x : DEFAULT_SIGMA;
    } else if (L->source == LA_DATA_SPHERE) {
        c->norm = v[AX_NORM] ? v[AX_NORM]->x : sqrt((double)c->d);
    } else {
        snprintf(c->data_path, sizeof c->data_path, "%s", L->data_path);
        c->layer = v[AX_LAYER] ? (int)v[AX_LAYER]->i : 0;
        c->head = v[AX_HEAD] ? (int)v[AX_HEAD]->i : -1;
        c->heads = c->head < 0 ? (int)L->h5_H : 1;
    }
}

static int cmp_holds(int op, double a, double b)
{
    switch (op) {
    case CMP_LT:
        return a < b;
    case CMP_LE:
        return a <= b;
    case CMP_GT:
        return a > b;
    default:
        return a >= b;
    }
}

static int real_eq(double a, double b)
{
    return a == b || fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

/* Does the (collapsed) cell satisfy one condition of a rule? */
static int cond_matches(const struct cond *cd, const struct la_cell *c,
                        const struct attn_kernel *kn, const struct featuremap_type *t)
{
    double num = 0;
    int comparable = 1;
    switch (cd->ax) {
    case AX_M:
        num = c->m;
        break;
    case AX_CHUNK:
        num = c->chunk;
        break;
    case AX_T:
        num = c->T;
        break;
    case AX_D:
        num = c->d;
        break;
    case AX_DV:
        num = c->dv;
        break;
    case AX_BATCH:
        num = c->batch;
        break;
    case AX_HEADS:
        num = c->heads;
        break;
    case AX_THREADS:
        num = c->threads;
        break;
    case AX_LAYER:
        num = c->layer;
        break;
    case AX_HEAD:
        num = c->head;
        comparable = c->head >= 0;
        break;
    case AX_EPS:
        num = c->eps;
        break;
    case AX_SIGMA:
        num = c->sigma;
        break;
    case AX_NORM:
        num = c->norm;
        break;
    case AX_A:
        num = c->A;
        comparable = !c->A_auto && featuremap_type_reads(t, "A");
        break;
    default:
        comparable = 0;
        break;
    }
    for (int i = 0; i < cd->ncmp; i++)
        if (!comparable || !cmp_holds(cd->op[i], num, cd->x[i]))
            return 0;
    if (cd->ncmp)
        return 1;
    for (size_t i = 0; i < cd->n; i++) {
        const struct axval *v = &cd->v[i];
        switch (cd->ax) {
        case AX_KERNEL:
            if (!strcmp(v->name, "linear") ? kn && kn->input == ATTN_IN_FEATURES
                                           : !strcmp(v->name, c->kernel))
                return 1;
            break;
        case AX_MAP:
            if (!strcmp(v->name, c->map))
                return 1;
            break;
        case AX_DRAW:
            if (featuremap_type_reads(t, "draw") && v->i == c->draw)
                return 1;
            break;
        case AX_CAUSAL:
            if (v->i == c->causal)
                return 1;
            break;
        case AX_A:
            if (featuremap_type_reads(t, "A") &&
                (v->is_auto ? c->A_auto : !c->A_auto && real_eq(v->x, c->A)))
                return 1;
            break;
        case AX_EPS:
        case AX_SIGMA:
        case AX_NORM:
            if (real_eq(v->x, num))
                return 1;
            break;
        default:
            if ((double)v->i == num)
                return 1;
            break;
        }
    }
    return 0;
}

static int rule_matches(const struct rule *r, const struct la_cell *c, const struct attn_kernel *kn,
                        const struct featuremap_type *t)
{
    for (int i = 0; i < r->n; i++)
        if (!cond_matches(&r->c[i], c, kn, t))
            return 0;
    return 1;
}

/* A set of keys (open addressing, FNV-1a), to merge combinations that collapse to one cell. */
struct keyset {
    char **slot;
    size_t cap;
};

/* 1: inserted, 0: already there, -1: out of memory. */
static int keyset_insert(struct keyset *s, const char *key)
{
    size_t i = (size_t)la_fnv1a(key, strlen(key), LA_FNV1A_SEED) & (s->cap - 1);
    while (s->slot[i]) {
        if (!strcmp(s->slot[i], key))
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = strdup(key);
    return s->slot[i] ? 1 : -1;
}

struct order {
    double cost;
    size_t seq;
};

static int order_cmp(const void *a, const void *b)
{
    const struct order *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int expand(struct loader *L)
{
    const struct ly *y = &L->y;
    struct la_experiment *e = L->e;
    struct fy_node *where = L->sweep_key;
    double total = L->trials;
    char dims[512] = "";
    size_t dl = 0;
    for (int i = 0; i < AX_COUNT; i++) {
        if (!L->ax[i].n)
            continue;
        total *= (double)L->ax[i].n;
        if (L->ax[i].n > 1 && dl < sizeof dims - 64)
            dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%s%zu %s", dl ? " x " : "",
                                   L->ax[i].n, ax_defs[i].name);
    }
    if (total > MAX_CELLS)
        return LY_FAIL(y, where, NULL, LA_EINVAL,
                       "the grid has %.0f combinations (%s%s%d trials), more than the limit of "
                       "%d; narrow an axis or split the experiment",
                       total, dims, dl ? " x " : "", L->trials, MAX_CELLS);

    int st = LA_OK;
    size_t ncomb = (size_t)total, cap = 0;
    struct keyset ks = {NULL, 1};
    while (ks.cap < 2 * ncomb + 16)
        ks.cap *= 2;
    ks.slot = calloc(ks.cap, sizeof *ks.slot);
    struct la_cell *cells = NULL, *cell = malloc(sizeof *cell);
    struct order *ord = NULL;
    if (!ks.slot || !cell) {
        st = LY_FAIL(y, where, NULL, LA_ENOMEM, "out of memory expanding the grid");
        goto done;
    }
    size_t pos[AX_COUNT] = {0};
    const struct axval *v[AX_COUNT];
    size_t seq = 0;
    for (size_t comb = 0; comb < ncomb / (size_t)L->trials; comb++) {
        for (int i = 0; i < AX_COUNT; i++)
            v[i] = L->ax[i].n ? &L->ax[i].v[pos[i]] : NULL;
        for (int trial = 0; trial < L->trials; trial++, seq++) {
            const struct attn_kernel *kn;
            const struct featuremap_type *t;
            build_cell(L, v, trial, cell, &kn, &t);
            int klen = build_key(cell, t);
            if (klen >= LA_KEY_LEN) {
                st = LY_FAIL(y, L->long_path_node, where, LA_EINVAL,
                             "a cell key would be %d characters (at most %d): shorten the "
                             "weights or data paths",
                             klen, LA_KEY_LEN - 1);
                goto done;
            }
            int ins = keyset_insert(&ks, cell->key);
            if (ins < 0) {
                st = LY_FAIL(y, where, NULL, LA_ENOMEM, "out of memory expanding the grid");
                goto done;
            }
            if (ins == 0) {
                e->n_merged++;
                continue;
            }
            int keep = kn != NULL;
            for (size_t r = 0; keep && r < L->nexcl; r++)
                if (rule_matches(&L->excl[r], cell, kn, t))
                    keep = 0;
            if (keep && L->has_only) {
                keep = 0;
                for (size_t r = 0; !keep && r < L->nonly; r++)
                    keep = rule_matches(&L->only[r], cell, kn, t);
            }
            if (!keep) {
                e->n_dropped++;
                continue;
            }
            const double bytes = la_cell_bytes(cell);
            if (bytes > MAX_CELL_BYTES) {
                st = LY_FAIL(y, v[AX_T] ? v[AX_T]->node : NULL, where, LA_EINVAL,
                             "the cell %s T=%d d=%d dv=%d m=%d batch=%d heads=%d would need "
                             "%.1f GiB, more than the %.0f GiB one cell may use",
                             cell->kernel, cell->T, cell->d, cell->dv, cell->m, cell->batch,
                             cell->heads, bytes / 1073741824.0, MAX_CELL_BYTES / 1073741824.0);
                goto done;
            }
            if (e->ncells == cap) {
                size_t nc = cap ? cap * 2 : 64;
                struct la_cell *ncl = realloc(cells, nc * sizeof *ncl);
                if (!ncl) {
                    st = LY_FAIL(y, where, NULL, LA_ENOMEM, "out of memory expanding the grid");
                    goto done;
                }
                cells = ncl;
                cap = nc;
            }
            cell->seed = data_seed(e->seed, cell);
            cell->index = (int)seq;
            cells[e->ncells++] = *cell;
        }
        /* Odometer: the last axis turns fastest. */
        for (int i = AX_COUNT - 1; i >= 0; i--) {
            if (!L->ax[i].n)
                continue;
            if (++pos[i] < L->ax[i].n)
                break;
            pos[i] = 0;
        }
    }
    if (e->ncells == 0) {
        st = LY_FAIL(y, where, NULL, LA_EINVAL,
                     "no cells left to run: %zu combination(s) dropped (kernels that cannot run "
                     "the requested causality, or exclude/only)",
                     e->n_dropped);
        goto done;
    }
    /* Run order: cheapest first, grid order among equals. */
    ord = malloc(e->ncells * sizeof *ord);
    e->cells = malloc(e->ncells * sizeof *e->cells);
    if (!ord || !e->cells) {
        st = LY_FAIL(y, where, NULL, LA_ENOMEM, "out of memory ordering the grid");
        goto done;
    }
    for (size_t i = 0; i < e->ncells; i++) {
        ord[i].cost = la_cell_flops(&cells[i]);
        ord[i].seq = i;
    }
    qsort(ord, e->ncells, sizeof *ord, order_cmp);
    for (size_t i = 0; i < e->ncells; i++) {
        e->cells[i] = cells[ord[i].seq];
        e->cells[i].index = (int)i;
    }
done:
    if (st != LA_OK) {
        free(e->cells);
        e->cells = NULL;
        e->ncells = 0;
    }
    for (size_t i = 0; ks.slot && i < ks.cap; i++)
        free(ks.slot[i]);
    free(ks.slot);
    free(cells);
    free(cell);
    free(ord);
    return st;
}

/* ---- the top level ---------------------------------------------------------------------- */

/* An experiment name must be usable as a file name (results/<name>.h5). */
static int valid_name(const char *s)
{
    if (!s[0] || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-' || *s == '.' || *s == '+'))
            return 0;
    return 1;
}

/* The default name: the origin's file stem, with characters a file name should not have
 * replaced by '_'. */
static void stem_name(char *buf, size_t cap, const char *origin)
{
    const char *base = origin ? strrchr(origin, '/') : NULL;
    base = base ? base + 1 : origin;
    if (!base || !*base)
        base = "experiment";
    snprintf(buf, cap, "%s", base);
    char *dot = strrchr(buf, '.');
    if (dot && dot != buf)
        *dot = '\0';
    for (char *c = buf; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.' || *c == '+'))
            *c = '_';
    if (!valid_name(buf))
        snprintf(buf, cap, "experiment");
}

static int parse_top(struct loader *L)
{
    const struct ly *y = &L->y;
    struct la_experiment *e = L->e;
    struct fy_node *root = ly_root(y);
    int st;
    if (root && !ly_is_null(root) && !ly_is_map(root))
        return LY_FAIL(y, root, NULL, LA_EINVAL,
                       "an experiment file is a mapping of keys (name, sweep, data, ...), got %s",
                       ly_kind(root));
    if (ly_is_map(root)) {
        /* The commonest slip: an axis written at the top level instead of under sweep:. */
        void *it = NULL;
        struct ly_pair p;
        int r;
        while ((r = ly_next_pair(y, root, &it, &p)) > 0)
            if (axis_id(p.key) >= 0)
                return LY_FAIL(y, p.knode, NULL, LA_EINVAL,
                               "'%s' is a sweep axis: write it under 'sweep:'", p.key);
        if (r < 0)
            return LA_EINVAL;
        if ((st = ly_check_keys(y, root, "the experiment", top_keys)) != LA_OK)
            return st;
    }
    struct fy_node *k, *n;
    char show[48];
    n = ly_get(root, "name", &k);
    if (k) {
        if ((st = ly_str(y, n, k, "'name'", e->name, sizeof e->name)) != LA_OK)
            return st;
        if (!valid_name(e->name))
            return LY_FAIL(y, n, k, LA_EINVAL,
                           "'name' '%s' must be letters, digits, '_', '-', '.' or '+' (it names "
                           "the results file)",
                           ly_show(n, show, sizeof show));
        L->name_node = n;
    }
    n = ly_get(root, "description", &k);
    if (k && !ly_is_null(n) && !ly_is_scalar(n))
        return LY_FAIL(y, n, k, LA_EINVAL, "'description' must be text, got %s", ly_kind(n));
    n = ly_get(root, "seed", &k);
    if (k && (st = ly_u64(y, n, k, "'seed'", &e->seed)) != LA_OK)
        return st;
    n = ly_get(root, "trials", &k);
    if (k) {
        long long t;
        if ((st = ly_int(y, n, k, "'trials'", 1, MAX_CELLS, &t)) != LA_OK)
            return st;
        L->trials = (int)t;
    }
    n = ly_get(root, "output", &k);
    if (k) {
        if ((st = ly_str(y, n, k, "'output'", e->output, sizeof e->output)) != LA_OK)
            return st;
        L->output_node = n;
    } else {
        snprintf(e->output, sizeof e->output, "results/%s.h5", e->name);
    }
    n = ly_get(root, "data", &k);
    if (k && (st = parse_data(L, k, n)) != LA_OK)
        return st;
    n = ly_get(root, "maps", &k);
    if (k && (st = parse_maps(L, k, n)) != LA_OK)
        return st;
    n = ly_get(root, "sweep", &k);
    if (k && (st = parse_sweep(L, k, n)) != LA_OK)
        return st;
    n = ly_get(root, "measure", &k);
    if (k && (st = parse_measure(L, k, n)) != LA_OK)
        return st;
    n = ly_get(root, "exclude", &k);
    if (k && (st = parse_rules(L, "exclude", k, n, &L->excl, &L->nexcl)) != LA_OK)
        return st;
    n = ly_get(root, "only", &k);
    if (k) {
        L->has_only = 1;
        if ((st = parse_rules(L, "only", k, n, &L->only, &L->nonly)) != LA_OK)
            return st;
    }
    return LA_OK;
}

static int load_string(const char *origin, const char *text, size_t len, const char *output,
                       struct la_experiment **out, struct la_error *err);

int la_experiment_load_string(const char *origin, const char *text, size_t len,
                              struct la_experiment **out, struct la_error *err)
{
    return load_string(origin, text, len, NULL, out, err);
}

/* output: when not NULL, replaces the file's `output:` (the command line's -o); the loader then
 * leaves checking it to the results file's opener, which names the path. */
static int load_string(const char *origin, const char *text, size_t len, const char *output,
                       struct la_experiment **out, struct la_error *err)
{
    *out = NULL;
    if (!text && len)
        return LA_FAIL(err, LA_EINVAL, "la_experiment_load_string: NULL text");
    if (!featuremap_types[0] || !attn_kernels[0].name)
        return LA_FAIL(err, LA_EINTERNAL, "no feature maps or no kernels are registered");
    struct loader L;
    memset(&L, 0, sizeof L);
    L.err = err;
    struct la_experiment *e = calloc(1, sizeof *e);
    L.nmaps = featuremap_count();
    L.maps = calloc(L.nmaps, sizeof *L.maps);
    if (e)
        e->text = malloc(len + 1);
    if (!e || !L.maps || !e->text) {
        free(L.maps);
        la_experiment_free(e);
        return LA_FAIL(err, LA_ENOMEM, "%s: out of memory loading the experiment",
                       origin ? origin : "<string>");
    }
    if (len)
        memcpy(e->text, text, len);
    e->text[len] = '\0';
    e->text_len = len;
    e->seed = 1;
    stem_name(e->name, sizeof e->name, origin);
    L.e = e;
    L.trials = 1;
    L.source = LA_DATA_GAUSSIAN;
    la_cell_measure_defaults(&L.proto);

    int st = ly_open(&L.y, origin, e->text, len, err);
    if (st != LA_OK)
        goto fail_noyaml;
    if ((st = parse_top(&L)) != LA_OK || (st = cross_checks(&L)) != LA_OK)
        goto fail;
    if (output)
        snprintf(e->output, sizeof e->output, "%s", output);
    else if ((st = check_output(&L)) != LA_OK)
        goto fail;
    if ((st = expand(&L)) != LA_OK)
        goto fail;
    ly_close(&L.y);
    for (int i = 0; i < AX_COUNT; i++)
        free(L.ax[i].v);
    free(L.maps);
    free_rules(L.excl, L.nexcl);
    free_rules(L.only, L.nonly);
    *out = e;
    return LA_OK;
fail:
    ly_close(&L.y);
fail_noyaml:
    for (int i = 0; i < AX_COUNT; i++)
        free(L.ax[i].v);
    free(L.maps);
    free_rules(L.excl, L.nexcl);
    free_rules(L.only, L.nonly);
    la_experiment_free(e);
    return st;
}

int la_experiment_load(const char *path, struct la_experiment **out, struct la_error *err)
{
    return la_experiment_load_to(path, NULL, out, err);
}

int la_experiment_load_to(const char *path, const char *output, struct la_experiment **out,
                          struct la_error *err)
{
    *out = NULL;
    if (!path || !*path)
        return LA_FAIL(err, LA_EINVAL, "no experiment file given");
    if (strlen(path) >= LA_PATH_LEN)
        return LA_FAIL(err, LA_EINVAL, "%s: path too long", path);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return LA_FAIL(err, LA_EIO, "%s: cannot read the experiment file: %s", path,
                       strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return LA_FAIL(err, LA_EIO, "%s: not a regular file", path);
    if (sb.st_size > MAX_FILE_BYTES)
        return LA_FAIL(err, LA_EINVAL, "%s: %lld bytes is too large for an experiment file", path,
                       (long long)sb.st_size);
    FILE *f = fopen(path, "rb");
    if (!f)
        return LA_FAIL(err, LA_EIO, "%s: cannot read the experiment file: %s", path,
                       strerror(errno));
    char *buf = malloc((size_t)sb.st_size + 1);
    if (!buf) {
        fclose(f);
        return LA_FAIL(err, LA_ENOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, (size_t)sb.st_size, f);
    int rerr = ferror(f);
    fclose(f);
    if (rerr) {
        free(buf);
        return LA_FAIL(err, LA_EIO, "%s: read error", path);
    }
    if (output && strlen(output) >= LA_PATH_LEN) {
        free(buf);
        return LA_FAIL(err, LA_EINVAL, "output path too long: %s", output);
    }
    int st = load_string(path, buf, n, output, out, err);
    free(buf);
    if (st == LA_OK)
        snprintf((*out)->path, sizeof(*out)->path, "%s", path);
    return st;
}

void la_experiment_free(struct la_experiment *e)
{
    if (!e)
        return;
    free(e->cells);
    free(e->text);
    free(e);
}

/* ---- the cell context ------------------------------------------------------------------ */

/* "sha256:HEX" of a file's content. */
static int file_sha256(const char *path, char out[8 + 2 * SHA256_DIGEST_SIZE],
                       struct la_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return LA_FAIL(err, LA_EIO, "cannot read input file '%s': %s", path, strerror(errno));
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    unsigned char *buf = malloc(1 << 20);
    if (!buf) {
        fclose(f);
        return LA_FAIL(err, LA_ENOMEM, "out of memory hashing '%s'", path);
    }
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, f)) > 0)
        sha256_update(&ctx, got, buf);
    const int bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad)
        return LA_FAIL(err, LA_EIO, "read error hashing input file '%s'", path);
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(&ctx, sizeof d, d);
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", d[i]);
    return LA_OK;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int la_experiment_context(const struct la_experiment *e, char **out, struct la_error *err)
{
    *out = NULL;
    if (!e || !e->ncells)
        return LA_FAIL(err, LA_EINVAL, "la_experiment_context: no cells");
    const struct la_cell *c = &e->cells[0]; /* measure settings are the same in every cell */
    char budget[32];
    fmt_real(budget, sizeof budget, c->time_budget_s);
    /* Input files, each once, sorted: "data_file:PATH" and "weights_file:PATH". */
    const char **files = malloc(2 * e->ncells * sizeof *files);
    char *s = NULL;
    int st = LA_OK;
    if (!files) {
        st = LA_FAIL(err, LA_ENOMEM, "out of memory");
        goto done;
    }
    size_t nf = 0, nd = 0;
    for (size_t i = 0; i < e->ncells; i++) {
        if (e->cells[i].data_path[0])
            files[nf++] = e->cells[i].data_path;
        if (e->cells[i].weights[0])
            files[nf++] = e->cells[i].weights;
    }
    qsort(files, nf, sizeof *files, cmp_cstr);
    for (size_t i = 0; i < nf; i++)
        if (!i || strcmp(files[i], files[i - 1]))
            files[nd++] = files[i];
    const size_t cap = 1024 + nd * (LA_PATH_LEN + 96);
    if (!(s = malloc(cap))) {
        st = LA_FAIL(err, LA_ENOMEM, "out of memory");
        goto done;
    }
    size_t len = (size_t)snprintf(
        s, cap,
        "seed=%llu\nmeasure.time=%d\nmeasure.error=%d\nmeasure.time_budget_s=%s\n"
        "measure.min_repeats=%d\nmeasure.warmup=%d\nmeasure.max_ref_rows=%d\n"
        "measure.kl_rows=%d\nmeasure.kernel_pairs=%d\n",
        (unsigned long long)e->seed, c->measure_time, c->measure_error, budget, c->min_repeats,
        c->warmup, c->max_ref_rows, c->kl_rows, c->kernel_pairs);
    for (size_t i = 0; i < nd; i++) {
        int is_data = 0;
        for (size_t k = 0; k < e->ncells && !is_data; k++)
            is_data = !strcmp(e->cells[k].data_path, files[i]);
        char hash[8 + 2 * SHA256_DIGEST_SIZE];
        if ((st = file_sha256(files[i], hash, err)) != LA_OK)
            goto done;
        len += (size_t)snprintf(s + len, cap - len, "%s_file:%s=%s\n",
                                is_data ? "data" : "weights", files[i], hash);
    }
done:
    free(files);
    if (st != LA_OK) {
        free(s);
        return st;
    }
    *out = s;
    return LA_OK;
}

/* ---- estimates and the plan ------------------------------------------------------------- */

/* Output dimension the cell's map will have: its m, or d when the map's default is unknown
 * here (deterministic maps such as elu1 and relu have m = d).  An estimate for ordering and
 * ETAs, not a promise. */
static double est_m(const struct la_cell *c)
{
    return c->m > 0 ? c->m : c->d;
}

double la_cell_flops(const struct la_cell *c)
{
    const struct attn_kernel *kn = attn_kernel_lookup(c->kernel);
    if (!kn)
        return 0;
    const double bh = (double)c->batch * c->heads;
    if (kn->input != ATTN_IN_FEATURES)
        return bh * attn_nominal_flops(kn, c->T, c->d, c->dv, c->causal);
    double m = est_m(c), fm;
    const struct featuremap_type *t = find_map(c->map, NULL);
    if (t && t->random)
        fm = 2.0 * 2.0 * c->T * (double)c->d * m; /* W·x for queries and keys */
    else
        fm = 2.0 * 2.0 * c->T * m; /* elementwise, a few flops per output */
    return bh * (attn_nominal_flops(kn, c->T, (int)m, c->dv, c->causal) + fm);
}

double la_cell_bytes(const struct la_cell *c)
{
    const struct attn_kernel *kn = attn_kernel_lookup(c->kernel);
    const double bh = (double)c->batch * c->heads, T = c->T, d = c->d, dv = c->dv;
    double bytes, m = d;
    if (!kn) {
        bytes = bh * (2 * T * d + 2 * T * dv) * sizeof(float); /* Q, K, V, Y */
    } else {
        /* The kernel's inputs and output, as its byte model counts them (a forward kernel reads
         * and writes each once, so that is their size), plus raw Q, K when it takes features
         * (the map's input); then its workspace slices. */
        const int feat = kn->input == ATTN_IN_FEATURES;
        m = feat ? est_m(c) : d;
        bytes = bh * (attn_nominal_bytes(kn, c->T, (int)m, c->dv, c->causal) +
                      (feat ? 2 * T * d * sizeof(float) : 0.0));
        double par = bh < c->threads ? bh : c->threads;
        bytes += par * sizeof(float) *
                 (double)attn_workspace_floats(kn, c->T, (int)m, c->dv, c->causal, c->chunk,
                                               c->threads);
    }
    if (c->measure_error) {
        /* One head in double at a time: Q, K, V, the reference and the fast output rows on
         * the sampled rows, one row of scores, and the linear reference's features. */
        double rows = c->max_ref_rows < c->T ? c->max_ref_rows : T;
        bytes += sizeof(double) * (2 * T * d + T * dv + 2 * rows * dv + T + 2 * T * m);
    }
    return bytes;
}

void la_experiment_print_plan(const struct la_experiment *e, FILE *out)
{
    double flops = 0, peak = 0;
    for (size_t i = 0; i < e->ncells; i++) {
        flops += la_cell_flops(&e->cells[i]);
        double b = la_cell_bytes(&e->cells[i]);
        peak = b > peak ? b : peak;
    }
    fprintf(out, "experiment %s%s%s%s: %zu cells (%zu dropped, %zu merged), seed %llu\n", e->name,
            e->path[0] ? " (" : "", e->path, e->path[0] ? ")" : "", e->ncells, e->n_dropped,
            e->n_merged, (unsigned long long)e->seed);
    fprintf(out, "output: %s\n", e->output);
    fprintf(out, "estimated: %.4g GFLOP for one call of every cell; largest cell ~%.1f MiB\n",
            flops / 1e9, peak / (1024.0 * 1024.0));
    fprintf(out, "%6s  %-16s %10s %10s  %s\n", "index", "seed", "GFLOP", "MiB", "key");
    for (size_t i = 0; i < e->ncells; i++) {
        const struct la_cell *c = &e->cells[i];
        fprintf(out, "%6d  %016llx %10.4g %10.1f  %s\n", c->index, (unsigned long long)c->seed,
                la_cell_flops(c) / 1e9, la_cell_bytes(c) / (1024.0 * 1024.0), c->key);
    }
}
