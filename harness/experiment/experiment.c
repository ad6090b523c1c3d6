/* experiment.c — experiment files: YAML → validated settings → the expanded grid of cells.
 *
 * The file format is documented key by key in experiments/README.md; this file is its only
 * reader.  What a parameter is (its name, type, range, default, which cells it applies to, where
 * it is stored, how it prints in keys) is a row of the parameter schema (params.c): sweep axes,
 * maps: parameters, data: and measure: keys, rules, the collapse and the keys are driven by the
 * table, so this file names a parameter only where the data file decides its value (the h5
 * shape, dv = d, norm = √d).  Loading runs in phases, and the first problem found stops it with one line
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
 * Not here: the parameter table and cell keys (params.c), running cells (runner), the results
 * file (results.c).
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
#include "../model/llama.h"
#include "experiment_yaml.h"
#include "params.h"

#define MAX_CELLS 100000 /* combinations × trials an experiment may expand to */
#define MAX_FILE_BYTES (4 << 20)
#define MAX_CELL_BYTES 1099511627776.0 /* 1 TiB: la_cell_bytes of one cell (one process) */

static const char *const top_keys[] = {
    "name", "description", "seed",    "output",  "trials", "sweep",
    "maps", "data",        "measure", "exclude", "only",   NULL,
};
static const char *const range_keys[] = {"from", "to", "factor", "step", NULL};
static const char *const cmp_keys[] = {"lt", "le", "gt", "ge", NULL};

/* One value of an axis, a maps: parameter or an exclude/only condition, and where it was
 * written. */
struct axval {
    struct la_value val; /* PATH values point to text the loader owns (axval_free) */
    struct fy_node *node;
};

/* A sweep axis, indexed by enum la_param_id like everything below. */
struct axis {
    struct fy_node *key; /* NULL: not swept (one default value) */
    struct axval *v;
    size_t n, cap;
};

/* A maps: entry: fixed parameters of one feature map (has[id] says which). */
struct mapcfg {
    struct fy_node *key;
    int has[LA_NPARAMS];
    struct axval v[LA_NPARAMS]; /* v[id].node: the parameter's key node */
};

/* One condition of an exclude/only rule: parameter ∈ values, and every comparison holds. */
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
    struct cond c[LA_NPARAMS];
    int n;
};

struct loader {
    struct ly y;
    struct la_error *err;
    struct la_experiment *e;
    struct axis ax[LA_NPARAMS];
    struct mapcfg *maps; /* one per registered map, same index as featuremap_types[] */
    size_t nmaps;
    int trials;
    int source;
    char data_path[LA_PATH_LEN];
    struct fy_node *data_key, *source_node, *path_node;
    long long h5_L, h5_H, h5_T, h5_hs, h5_hsv; /* shape of an h5 data file, or of a model
                                                  checkpoint (layers, query heads, seq_len,
                                                  head size twice) */
    struct la_cell proto;                      /* measure settings, copied into every cell */
    struct fy_node *measure_key, *sweep_key, *output_node, *name_node;
    struct rule *excl, *only;
    size_t nexcl, nonly;
    int has_only;
    size_t long_path_len; /* the longest weights or data path, for key-length errors */
    struct fy_node *long_path_node;
    /* The keys of each section, from the schema (la_param_names), and every row's default and
     * neutral value, read once. */
    const char *axis_names[LA_NPARAMS + 1], *data_keys[LA_NPARAMS + 1];
    const char *measure_keys[LA_NPARAMS + 1];
    struct la_value def[LA_NPARAMS], neutral[LA_NPARAMS];
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

/* The map used when `map` is not swept: the schema's default (elu1), else the first one. */
static const struct featuremap_type *default_map(void)
{
    const struct featuremap_type *t = find_map(la_params[LA_PARAM_MAP].def, NULL);
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

/* The schema row of a sweep axis, -1 when name is not one. */
static int axis_id(const char *name)
{
    const struct la_param *p = la_param_find(name, LA_PF_AXIS);
    return p ? (int)(p - la_params) : -1;
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

/* Frees the text a PATH value owns. */
static void axval_free(int id, struct axval *v)
{
    if (la_params[id].type == LA_PT_PATH)
        free((char *)v->val.s);
    v->val.s = NULL;
}

/* ---- values ----------------------------------------------------------------------------- */

/* Reads one scalar value of parameter id; `what` names it in messages (NULL: "'NAME'").  Rules
 * may also name map `none`. */
static int parse_value(struct loader *L, int id, struct fy_node *n, struct fy_node *fb,
                       const char *what, int in_rule, struct axval *out)
{
    const struct la_param *p = &la_params[id];
    const struct ly *y = &L->y;
    char name[96], hint[128], buf[LA_PATH_LEN], show[48], msg[1280];
    if (!what) {
        snprintf(name, sizeof name, "'%s'", la_param_key(p));
        what = name;
    }
    la_param_what(p, what, hint, sizeof hint);
    memset(out, 0, sizeof *out);
    out->node = n;
    struct la_value *v = &out->val;
    int st;
    if (p->word && ly_is_scalar(n) && !ly_is_null(n) &&
        !strcmp(ly_show(n, show, sizeof show), p->word))
        return la_param_parse(p, p->word, 0, v, msg, sizeof msg);
    switch (p->type) {
    case LA_PT_INT:
        if ((st = ly_int(y, n, fb, hint, LLONG_MIN, LLONG_MAX, &v->i)) != LA_OK)
            return st;
        break;
    case LA_PT_REAL:
        if ((st = ly_real(y, n, fb, hint, &v->x)) != LA_OK)
            return st;
        break;
    case LA_PT_BOOL: {
        int b = 0;
        st = ly_bool(y, n, fb, what, &b);
        v->i = b;
        return st;
    }
    case LA_PT_PATH: {
        if ((st = ly_str(y, n, fb, what, buf, p->cell_size < sizeof buf ? p->cell_size
                                                                          : sizeof buf)) != LA_OK)
            return st;
        if (!(v->s = strdup(buf)))
            return LY_FAIL(y, n, fb, LA_ENOMEM, "out of memory");
        return LA_OK;
    }
    default: /* names */
        if ((st = ly_str(y, n, fb, what, buf, LA_NAME_LEN + 8)) != LA_OK) {
            if (ly_is_scalar(n) && !ly_is_null(n)) /* too long: it cannot be a valid name */
                snprintf(buf, sizeof buf, "%s", ly_show(n, show, sizeof show));
            else
                return st;
        }
        if ((st = la_param_parse(p, buf, in_rule ? LA_PARSE_RULE : 0, v, msg, sizeof msg)) !=
            LA_OK)
            return LY_FAIL(y, n, fb, st, "%s", msg);
        return LA_OK;
    }
    if ((st = la_param_check(p, v, what, ly_show(n, show, sizeof show), msg, sizeof msg)) != LA_OK)
        return LY_FAIL(y, n, fb, st, "%s", msg);
    return LA_OK;
}

/* A range {from, to, factor} (geometric) or {from, to, step} (arithmetic), `to` included when
 * hit (within a relative 1e-9, so 0.1-steps end where they should). */
static int parse_range(struct loader *L, int id, struct fy_node *m, struct fy_node *key,
                       struct axis *a)
{
    const struct ly *y = &L->y;
    const struct la_param *def = &la_params[id];
    int st;
    if (!(def->flags & LA_PF_RANGE))
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
    if ((st = parse_value(L, id, nfrom, kfrom, NULL, 0, &from)) != LA_OK ||
        (st = parse_value(L, id, nto, kto, NULL, 0, &to)) != LA_OK)
        return st;
    if (from.val.word || to.val.word)
        return LY_FAIL(y, from.val.word ? nfrom : nto, key, LA_EINVAL,
                       "a range of '%s' takes numbers, not %s", def->name, def->word);
    int integer = def->type == LA_PT_INT;
    double lo = la_value_num(def, &from.val), hi = la_value_num(def, &to.val);
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
            v.val.i = llround(x);
            if (v.val.i == last)
                continue; /* a small factor rounds several points to one integer */
            last = v.val.i;
        } else {
            /* 0.1 + 2·0.1 is 0.30000000000000004: keep 12 digits so keys read 0.3. */
            char tmp[32];
            snprintf(tmp, sizeof tmp, "%.12g", x);
            v.val.x = strtod(tmp, NULL);
        }
        if (push_val(&a->v, &a->n, &a->cap, &v) != LA_OK)
            return LY_FAIL(y, m, key, LA_ENOMEM, "out of memory expanding '%s'", def->name);
    }
    return LA_OK;
}

static int check_input_file(struct loader *L, struct fy_node *n, struct fy_node *fb,
                            const char *what, const char *path);

/* A PATH value of parameter id read at node n (a swept weights file, a maps: entry): the file
 * is checked now, and the longest path is kept for the key-length error. */
static int input_path(struct loader *L, int id, struct fy_node *n, struct fy_node *fb,
                      const char *path)
{
    int st = check_input_file(L, n, fb, la_params[id].noun, path);
    if (st == LA_OK && strlen(path) > L->long_path_len) {
        L->long_path_len = strlen(path);
        L->long_path_node = n;
    }
    return st;
}

/* One value of an axis, parsed (a path checked) and appended. */
static int axis_value(struct loader *L, int id, struct fy_node *key, struct fy_node *n,
                      struct axis *a)
{
    struct axval v;
    int st;
    if ((st = parse_value(L, id, n, key, NULL, 0, &v)) != LA_OK)
        return st;
    if (a->n >= MAX_CELLS) {
        axval_free(id, &v);
        return LY_FAIL(&L->y, n, key, LA_EINVAL, "'%s' has more than %d values",
                       la_params[id].name, MAX_CELLS);
    }
    if (push_val(&a->v, &a->n, &a->cap, &v) != LA_OK) {
        axval_free(id, &v);
        return LY_FAIL(&L->y, n, key, LA_ENOMEM, "out of memory");
    }
    return la_params[id].type == LA_PT_PATH ? input_path(L, id, n, key, v.val.s) : LA_OK;
}

/* An axis: a scalar, a list of scalars, or a range. */
static int parse_axis(struct loader *L, int id, struct fy_node *key, struct fy_node *n)
{
    const struct ly *y = &L->y;
    struct axis *a = &L->ax[id];
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
                               "each value of '%s' must be a scalar, got %s", la_params[id].name,
                               ly_kind(item));
            if ((st = axis_value(L, id, key, item, a)) != LA_OK)
                return st;
        }
        if (a->n == 0)
            return LY_FAIL(y, n, key, LA_EINVAL, "'%s' is an empty list", la_params[id].name);
        return LA_OK;
    }
    return axis_value(L, id, key, n, a);
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
    if ((st = ly_check_keys(y, n, "sweep", L->axis_names)) != LA_OK)
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
        /* The keys this map accepts: the maps: parameters of the schema that it reads. */
        const char *valid[LA_NPARAMS + 1];
        int ids[LA_NPARAMS];
        size_t nv = 0;
        for (int i = 0; i < LA_NPARAMS; i++) {
            const struct la_param *pp = &la_params[i];
            if ((pp->flags & LA_PF_ENTRY) && featuremap_type_reads(t, pp->entry)) {
                ids[nv] = i;
                valid[nv++] = pp->entry;
            }
        }
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
            const int id = ids[i];
            const struct la_param *pp = &la_params[id];
            /* A parameter that is also a sweep axis is named as the axis; the others with
             * their map. */
            char what[96];
            if (pp->flags & LA_PF_AXIS)
                snprintf(what, sizeof what, "'%s'", pp->name);
            else
                snprintf(what, sizeof what, "'%s' of map '%s'", q.key, t->name);
            struct axval v;
            if ((st = parse_value(L, id, q.vnode, q.knode, what, 0, &v)) != LA_OK)
                return st;
            v.node = q.knode;
            if (mc->has[id])
                axval_free(id, &mc->v[id]);
            mc->v[id] = v;
            mc->has[id] = 1;
            if (pp->type == LA_PT_PATH &&
                (st = input_path(L, id, q.vnode, q.knode, v.val.s)) != LA_OK)
                return st;
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
    if ((st = ly_check_keys(y, n, "data", L->data_keys)) != LA_OK)
        return st;
    struct fy_node *ks, *kp;
    struct fy_node *ns = ly_get(n, "source", &ks), *np = ly_get(n, "path", &kp);
    if (ks) {
        struct axval v;
        if ((st = parse_value(L, LA_PARAM_DATA, ns, ks, NULL, 0, &v)) != LA_OK)
            return st;
        L->source = (int)v.val.i;
        L->source_node = ns;
    }
    if (kp) {
        if (L->source != LA_DATA_H5 && L->source != LA_DATA_MODEL)
            return LY_FAIL(y, kp, NULL, LA_EINVAL,
                           "'path' applies to data sources h5 and model only (source is %s)",
                           la_params[LA_PARAM_DATA].choices[L->source]);
        if ((st = ly_str(y, np, kp, "'path'", L->data_path, sizeof L->data_path)) != LA_OK)
            return st;
        L->path_node = np;
        if (strlen(L->data_path) > L->long_path_len) {
            L->long_path_len = strlen(L->data_path);
            L->long_path_node = np;
        }
    } else if (L->source == LA_DATA_H5) {
        return LY_FAIL(y, ns, ks, LA_EINVAL, "data source h5 needs 'path' (an HDF5 file)");
    } else if (L->source == LA_DATA_MODEL) {
        return LY_FAIL(y, ns, ks, LA_EINVAL,
                       "data source model needs 'path' (a Llama-2 checkpoint, e.g. "
                       "stories260K.bin)");
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
    if ((st = ly_check_keys(y, n, "measure", L->measure_keys)) != LA_OK)
        return st;
    void *it = NULL;
    struct ly_pair p;
    int r;
    while ((r = ly_next_pair(y, n, &it, &p)) > 0) {
        const struct la_param *pp = la_param_find(p.key, LA_PF_MEASURE);
        struct axval v;
        if ((st = parse_value(L, (int)(pp - la_params), p.vnode, p.knode, NULL, 0, &v)) != LA_OK)
            return st;
        la_param_set(pp, c, &v.val);
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
    if ((st = ly_check_keys(y, n, "a rule", L->axis_names)) != LA_OK)
        return st;
    void *it = NULL;
    struct ly_pair p;
    while ((r = ly_next_pair(y, n, &it, &p)) > 0) {
        int id = axis_id(p.key);
        struct cond *c = &ru->c[ru->n++];
        c->ax = id;
        struct axval v;
        if (ly_is_map(p.vnode)) {
            if (!la_param_numeric(&la_params[id]))
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
                if ((st = parse_value(L, id, item, p.knode, NULL, 1, &v)) != LA_OK)
                    return st;
                if (push_val(&c->v, &c->n, &c->cap, &v) != LA_OK)
                    return LY_FAIL(y, item, p.knode, LA_ENOMEM, "out of memory");
            }
            if (c->n == 0)
                return LY_FAIL(y, p.vnode, p.knode, LA_EINVAL, "'%s' is an empty list", p.key);
        } else {
            if ((st = parse_value(L, id, p.vnode, p.knode, NULL, 1, &v)) != LA_OK)
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
        for (int j = 0; j < r[i].n; j++) {
            for (size_t k = 0; r[i].c[j].v && k < r[i].c[j].n; k++)
                axval_free(r[i].c[j].ax, &r[i].c[j].v[k]);
            free(r[i].c[j].v);
        }
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

/* Reads the shape of a model checkpoint: layers, query heads, seq_len and head size. */
static int read_model_dims(struct loader *L)
{
    struct la_llama *m = NULL;
    struct la_error err;
    la_error_clear(&err);
    if (la_llama_load(L->data_path, &m, NULL, &err) != LA_OK)
        return LY_FAIL(&L->y, L->path_node, NULL, err.status, "%s", err.msg);
    const struct la_llama_config *cfg = la_llama_config(m);
    L->h5_L = cfg->n_layers;
    L->h5_H = cfg->n_heads;
    L->h5_T = cfg->seq_len;
    L->h5_hs = L->h5_hsv = cfg->head_size;
    la_llama_free(m);
    return LA_OK;
}

/* Each value of axis id must satisfy value <= hi (or == eq when eq >= 0). */
static int check_axis_bound(struct loader *L, int id, long long hi, long long eq, const char *why)
{
    const struct axis *a = &L->ax[id];
    for (size_t i = 0; i < a->n; i++) {
        long long v = a->v[i].val.i;
        if ((eq >= 0 && v != eq) || (eq < 0 && v > hi))
            return LY_FAIL(&L->y, a->v[i].node, a->key, LA_EINVAL,
                           "'%s' = %lld does not fit the data file: %s", la_params[id].name, v,
                           why);
    }
    return LA_OK;
}

/* `beta: data` and `alpha: data` (docs/data-layout.md, "Gates"): the data source must be an h5
 * file holding /beta with /Q's shape less its last dimension (one β per token of each head) or
 * /alpha with /Q's leading dimensions (α per token and state row; its last dimension, the
 * feature dimension m, is checked against the built map when a cell runs).  Errors point at the
 * value's line in the experiment file. */
static int check_data_gates(struct loader *L)
{
    static const struct {
        int id;
        const char *ds;
        int less; /* dimensions /Q has that the gate dataset has not */
    } gates[] = {{LA_PARAM_BETA, "/beta", 1}, {LA_PARAM_ALPHA, "/alpha", 0}};
    const char *const *sources = la_params[LA_PARAM_DATA].choices;
    for (size_t g = 0; g < sizeof gates / sizeof gates[0]; g++) {
        const struct axis *a = &L->ax[gates[g].id];
        const char *name = la_params[gates[g].id].name;
        for (size_t i = 0; i < a->n; i++) {
            if (!a->v[i].val.word)
                continue;
            if (L->source != LA_DATA_H5)
                return LY_FAIL(&L->y, a->v[i].node, a->key, LA_EINVAL,
                               "'%s: data' reads %s from an h5 data file; the data source is %s",
                               name, gates[g].ds, sources[L->source]);
            hsize_t q[8] = {0}, dims[8] = {0};
            int qrank = -1, rank = -1;
            H5E_auto2_t efn = NULL;
            void *edata = NULL;
            H5Eget_auto2(H5E_DEFAULT, &efn, &edata);
            H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
            hid_t f = la_h5_open_readonly(L->data_path);
            if (f >= 0) {
                qrank = h5_dataset_dims(f, "/Q", q);
                rank = h5_dataset_dims(f, gates[g].ds, dims);
                H5Fclose(f);
            }
            H5Eset_auto2(H5E_DEFAULT, efn, edata);
            if (rank < 0)
                return LY_FAIL(&L->y, a->v[i].node, a->key, LA_EFORMAT,
                               "'%s: data': data file '%s' lacks dataset %s (see "
                               "docs/data-layout.md, \"Gates\")",
                               name, L->data_path, gates[g].ds);
            int same = qrank >= 2 && rank == qrank - gates[g].less;
            for (int j = 0; same && j < qrank - 1; j++)
                same = dims[j] == q[j];
            if (!same)
                return LY_FAIL(&L->y, a->v[i].node, a->key, LA_EFORMAT,
                               "'%s: data': dataset %s of '%s' must have /Q's dimensions up to "
                               "T (%s), got rank %d",
                               name, gates[g].ds, L->data_path,
                               gates[g].less ? "one β per token of each head"
                                             : "then m, one α per token and state row",
                               rank);
            break; /* one check per parameter */
        }
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
        for (int j = 0; j < LA_NPARAMS; j++)
            if (mc->has[j] && L->ax[j].key) {
                int line, col;
                ly_where(L->ax[j].key, NULL, &line, &col);
                return LY_FAIL(y, mc->v[j].node, NULL, LA_EINVAL,
                               "'%s' of map '%s' is also a sweep axis (line %d); set it in one "
                               "place",
                               la_params[j].name, featuremap_types[i]->name, line);
            }
    }
    /* A map parameter without a default (a weights file) must be set in maps: or swept for
     * every map that reads it, if any linear kernel will use the map. */
    int any_linear = !L->ax[LA_PARAM_KERNEL].key;
    for (size_t i = 0; i < L->ax[LA_PARAM_KERNEL].n; i++) {
        const struct attn_kernel *k = resolve_kernel(L->ax[LA_PARAM_KERNEL].v[i].val.s, 0);
        any_linear |= !k || k->input == ATTN_IN_FEATURES;
    }
    if (any_linear) {
        const struct axis *a = &L->ax[LA_PARAM_MAP];
        size_t n = a->key ? a->n : 1;
        for (size_t i = 0; i < n; i++) {
            size_t idx = 0;
            const struct featuremap_type *t =
                a->key ? find_map(a->v[i].val.s, &idx) : default_map();
            if (!a->key)
                find_map(t->name, &idx);
            for (int j = 0; j < LA_NPARAMS; j++) {
                const struct la_param *p = &la_params[j];
                if ((p->flags & LA_PF_REQUIRED) && featuremap_type_reads(t, p->entry) &&
                    !L->maps[idx].has[j] && !L->ax[j].key)
                    return LY_FAIL(y, a->key ? a->v[i].node : NULL, a->key, LA_EINVAL,
                                   "map '%s' needs a %s: add maps: {%s: {%s: %s}}%s%s%s",
                                   t->name, p->noun ? p->noun : p->name, t->name, p->entry,
                                   p->type == LA_PT_PATH ? "FILE" : "VALUE",
                                   p->flags & LA_PF_AXIS ? " or sweep: {" : "",
                                   p->flags & LA_PF_AXIS ? p->name : "",
                                   p->flags & LA_PF_AXIS ? ": [...]}" : "");
            }
        }
    }
    /* Axes that belong to one data source. */
    const char *const *sources = la_params[LA_PARAM_DATA].choices;
    for (int j = 0; j < LA_NPARAMS; j++) {
        const int sc = la_params[j].scope;
        const int owner = sc == LA_SCOPE_GAUSSIAN ? LA_DATA_GAUSSIAN
                          : sc == LA_SCOPE_SPHERE ? LA_DATA_SPHERE
                          : sc == LA_SCOPE_H5     ? LA_DATA_H5
                          : sc == LA_SCOPE_MODEL  ? LA_DATA_MODEL
                                                  : -1;
        if (owner >= 0 && L->ax[j].key && L->source != owner)
            return LY_FAIL(y, L->ax[j].key, NULL, LA_EINVAL,
                           "'%s' applies to data source %s only (source is %s)",
                           la_params[j].name, sources[owner], sources[L->source]);
    }
    if (L->source == LA_DATA_MODEL) {
        if ((st = check_input_file(L, L->path_node, NULL, "checkpoint", L->data_path)) !=
                LA_OK ||
            (st = read_model_dims(L)) != LA_OK)
            return st;
        if (L->ax[LA_PARAM_HEADS].key)
            return LY_FAIL(y, L->ax[LA_PARAM_HEADS].key, NULL, LA_EINVAL,
                           "'heads' comes from the checkpoint with source model");
        char why[LA_PATH_LEN + 128];
        snprintf(why, sizeof why, "%s has seq_len %lld, head size %lld", L->data_path, L->h5_T,
                 L->h5_hs);
        if ((st = check_axis_bound(L, LA_PARAM_T, L->h5_T, -1, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_D, 0, L->h5_hs, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_DV, 0, L->h5_hsv, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_BATCH, 0, 1, why)) != LA_OK)
            return st;
    }
    if (L->source == LA_DATA_H5) {
        if ((st = check_input_file(L, L->path_node, NULL, la_params[LA_PARAM_PATH].noun,
                                   L->data_path)) != LA_OK ||
            (st = read_h5_dims(L)) != LA_OK)
            return st;
        if (L->ax[LA_PARAM_HEADS].key)
            return LY_FAIL(y, L->ax[LA_PARAM_HEADS].key, NULL, LA_EINVAL,
                           "'heads' comes from the data file with source h5; select with "
                           "'head' (an index or all)");
        char why[LA_PATH_LEN + 128];
        snprintf(why, sizeof why, "%s has %lld layers, %lld heads, T = %lld, head size %lld",
                 L->data_path, L->h5_L, L->h5_H, L->h5_T, L->h5_hs);
        if ((st = check_axis_bound(L, LA_PARAM_T, L->h5_T, -1, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_D, 0, L->h5_hs, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_DV, 0, L->h5_hsv, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_BATCH, 0, 1, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_LAYER, L->h5_L - 1, -1, why)) != LA_OK ||
            (st = check_axis_bound(L, LA_PARAM_HEAD, L->h5_H - 1, -1, why)) != LA_OK)
            return st;
        struct axis *layer = &L->ax[LA_PARAM_LAYER];
        if (!layer->key) {
            /* Every layer of the file. */
            for (long long l = 0; l < L->h5_L && l < MAX_CELLS; l++) {
                struct axval v = {.val = {.i = l}};
                if (push_val(&layer->v, &layer->n, &layer->cap, &v) != LA_OK)
                    return LY_FAIL(y, L->path_node, NULL, LA_ENOMEM, "out of memory");
            }
        }
    }
    return check_data_gates(L);
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

/* The value of parameter id in this combination: fixed in the map's maps: entry, else swept,
 * else NULL (its default applies). */
static const struct la_value *chosen(const struct mapcfg *mc, const struct axval *const *v, int id)
{
    if (mc && mc->has[id])
        return &mc->v[id].val;
    return v[id] ? &v[id]->val : NULL;
}

/* One combination → a cell with only the parameters that apply to it (the rest at their
 * neutral values, so equivalent combinations get equal keys).  *kn is NULL when the kernel
 * cannot run this causality. */
static void build_cell(const struct loader *L, const struct axval *const *v, int trial,
                       struct la_cell *c, const struct attn_kernel **kn,
                       const struct featuremap_type **tp)
{
    memcpy(c, &L->proto, sizeof *c);
    c->causal = v[LA_PARAM_CAUSAL] ? (int)v[LA_PARAM_CAUSAL]->val.i : 0;
    const char *kname =
        v[LA_PARAM_KERNEL] ? v[LA_PARAM_KERNEL]->val.s : la_params[LA_PARAM_KERNEL].def;
    const struct attn_kernel *k = resolve_kernel(kname, c->causal);
    *kn = k && (k->causal_support & (c->causal ? ATTN_CAUSAL_OK : ATTN_NONCAUSAL_OK)) ? k : NULL;
    snprintf(c->kernel, sizeof c->kernel, "%s", k ? k->name : kname);
    c->source = L->source;
    c->trial = trial;

    struct la_applies a = {0, 0, NULL};
    const struct mapcfg *mc = NULL;
    *tp = NULL;
    if (k && k->input != ATTN_IN_FEATURES) {
        snprintf(c->map, sizeof c->map, "none");
    } else {
        size_t idx = 0;
        const struct featuremap_type *t =
            v[LA_PARAM_MAP] ? find_map(v[LA_PARAM_MAP]->val.s, &idx) : default_map();
        find_map(t->name, &idx);
        mc = &L->maps[idx];
        *tp = t;
        snprintf(c->map, sizeof c->map, "%s", t->name);
        a.linear = 1;
        a.uses_chunk = k && k->uses_chunk;
        a.map = t;
    }

    /* Every other axis and map parameter, in table order (norm_fixed looks at draw): where it
     * applies its chosen value or its default, elsewhere its neutral value. */
    for (int id = 0; id < LA_NPARAMS; id++) {
        const struct la_param *p = &la_params[id];
        if (id == LA_PARAM_KERNEL || id == LA_PARAM_MAP || id == LA_PARAM_CAUSAL ||
            !(p->flags & (LA_PF_AXIS | LA_PF_ENTRY)))
            continue;
        struct la_value val;
        const struct la_value *x = chosen(mc, v, id);
        if (!la_param_applies(p, c, &a)) {
            if (!p->neutral)
                continue;
            val = L->neutral[id];
        } else if (x) {
            val = *x;
        } else if (p->def) {
            val = L->def[id];
        } else {
            continue; /* computed below */
        }
        la_param_set(p, c, &val);
    }

    /* A training pass needs a backward kernel for this forward kernel: the sum rule's forward
     * kernels have one; a recurrence or a decode cell does not (dropped, as a causality the
     * kernel cannot run is). */
    if (*kn && c->pass != LA_PASS_FORWARD &&
        ((*kn)->op != ATTN_OP_FORWARD || (*kn)->update != ATTN_UPD_SUM ||
         !attn_kernel_find(ATTN_OP_BACKWARD, (*kn)->input, c->causal)))
        *kn = NULL;

    /* Defaults that depend on the data file or on other parameters. */
    /* A model checkpoint gives T (seq_len), d, dv and heads as an h5 file does. */
    const int h5 = L->source == LA_DATA_H5 || L->source == LA_DATA_MODEL;
    if (h5 && !v[LA_PARAM_T])
        c->T = (int)L->h5_T;
    if (h5 && !v[LA_PARAM_D])
        c->d = (int)L->h5_hs;
    if (!v[LA_PARAM_DV])
        c->dv = h5 ? (int)L->h5_hsv : c->d;
    if (L->source == LA_DATA_SPHERE && !v[LA_PARAM_NORM])
        c->norm = sqrt((double)c->d);
    if (h5) {
        snprintf(c->data_path, sizeof c->data_path, "%s", L->data_path);
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

/* Does the (collapsed) cell satisfy one condition of a rule? */
static int cond_matches(const struct cond *cd, const struct la_cell *c,
                        const struct attn_kernel *kn, const struct featuremap_type *t)
{
    const struct la_param *p = &la_params[cd->ax];
    struct la_value cv;
    la_param_get(p, c, &cv);
    /* Some map parameters mean nothing on cells whose map does not read them; a word (A: auto,
     * head: all) satisfies no comparison. */
    const int read = !(p->flags & LA_PF_RULE_IF_READ) || la_param_reads(p, t);
    const int comparable = read && la_param_numeric(p) && !cv.word;
    for (int i = 0; i < cd->ncmp; i++)
        if (!comparable || !cmp_holds(cd->op[i], la_value_num(p, &cv), cd->x[i]))
            return 0;
    if (cd->ncmp)
        return 1;
    for (size_t i = 0; i < cd->n; i++) {
        const struct la_value *v = &cd->v[i].val;
        if (cd->ax == LA_PARAM_KERNEL) {
            if (!strcmp(v->s, "linear") ? kn && kn->input == ATTN_IN_FEATURES
                                        : !strcmp(v->s, c->kernel))
                return 1;
        } else if (read && la_value_eq(p, v, &cv)) {
            return 1;
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
    for (int i = 0; i < LA_NPARAMS; i++) {
        if (!L->ax[i].n)
            continue;
        total *= (double)L->ax[i].n;
        if (L->ax[i].n > 1 && dl < sizeof dims - 64)
            dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%s%zu %s", dl ? " x " : "",
                                   L->ax[i].n, la_params[i].name);
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
    size_t pos[LA_NPARAMS] = {0};
    const struct axval *v[LA_NPARAMS];
    size_t seq = 0;
    for (size_t comb = 0; comb < ncomb / (size_t)L->trials; comb++) {
        for (int i = 0; i < LA_NPARAMS; i++)
            v[i] = L->ax[i].n ? &L->ax[i].v[pos[i]] : NULL;
        for (int trial = 0; trial < L->trials; trial++, seq++) {
            const struct attn_kernel *kn;
            const struct featuremap_type *t;
            build_cell(L, v, trial, cell, &kn, &t);
            int klen = la_key_format(cell, cell->key, sizeof cell->key);
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
                st = LY_FAIL(y, v[LA_PARAM_T] ? v[LA_PARAM_T]->node : NULL, where, LA_EINVAL,
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
        for (int i = LA_NPARAMS - 1; i >= 0; i--) {
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

/* Everything the loader allocated (not the experiment). */
static void loader_free(struct loader *L)
{
    for (int i = 0; i < LA_NPARAMS; i++) {
        for (size_t k = 0; k < L->ax[i].n; k++)
            axval_free(i, &L->ax[i].v[k]);
        free(L->ax[i].v);
    }
    for (size_t m = 0; L->maps && m < L->nmaps; m++)
        for (int i = 0; i < LA_NPARAMS; i++)
            if (L->maps[m].has[i])
                axval_free(i, &L->maps[m].v[i]);
    free(L->maps);
    free_rules(L->excl, L->nexcl);
    free_rules(L->only, L->nonly);
}

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
    la_param_names(LA_PF_AXIS, L.axis_names);
    la_param_names(LA_PF_DATA, L.data_keys);
    la_param_names(LA_PF_MEASURE, L.measure_keys);
    for (int i = 0; i < LA_NPARAMS; i++) {
        la_param_default(&la_params[i], &L.def[i]);
        la_param_neutral(&la_params[i], &L.neutral[i]);
    }

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
    loader_free(&L);
    *out = e;
    return LA_OK;
fail:
    ly_close(&L.y);
fail_noyaml:
    loader_free(&L);
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

/* An input file of the cell context: its path and the noun of the schema row that names it
 * ("data file" is written "data_file:PATH"). */
struct input_file {
    const char *path, *noun;
};

static int cmp_input(const void *a, const void *b)
{
    const struct input_file *x = a, *y = b;
    const int c = strcmp(x->path, y->path);
    return c ? c : strcmp(x->noun, y->noun);
}

int la_experiment_context(const struct la_experiment *e, char **out, struct la_error *err)
{
    *out = NULL;
    if (!e || !e->ncells)
        return LA_FAIL(err, LA_EINVAL, "la_experiment_context: no cells");
    const struct la_cell *c = &e->cells[0]; /* measure settings are the same in every cell */
    /* Input files (every PATH parameter), each once, sorted: "data_file:PATH",
     * "weights_file:PATH"; a path named twice keeps the first noun in order. */
    size_t npath = 0;
    for (int j = 0; j < LA_NPARAMS; j++)
        npath += la_params[j].type == LA_PT_PATH;
    struct input_file *files = malloc((npath * e->ncells + 1) * sizeof *files);
    char *s = NULL;
    int st = LA_OK;
    if (!files) {
        st = LA_FAIL(err, LA_ENOMEM, "out of memory");
        goto done;
    }
    size_t nf = 0, nd = 0;
    for (size_t i = 0; i < e->ncells; i++)
        for (int j = 0; j < LA_NPARAMS; j++) {
            struct la_value v;
            if (la_params[j].type != LA_PT_PATH)
                continue;
            la_param_get(&la_params[j], &e->cells[i], &v);
            if (v.s[0])
                files[nf++] = (struct input_file){v.s, la_params[j].noun};
        }
    qsort(files, nf, sizeof *files, cmp_input);
    for (size_t i = 0; i < nf; i++)
        if (!i || strcmp(files[i].path, files[nd - 1].path))
            files[nd++] = files[i];
    const size_t cap = 1024 + nd * (LA_PATH_LEN + 96);
    if (!(s = malloc(cap))) {
        st = LA_FAIL(err, LA_ENOMEM, "out of memory");
        goto done;
    }
    size_t len = (size_t)snprintf(s, cap, "seed=%llu\n", (unsigned long long)e->seed);
    la_params_measure_text(c, s, cap, &len);
    for (size_t i = 0; i < nd; i++) {
        char hash[8 + 2 * SHA256_DIGEST_SIZE], kind[64];
        if ((st = file_sha256(files[i].path, hash, err)) != LA_OK)
            goto done;
        snprintf(kind, sizeof kind, "%s", files[i].noun);
        for (char *k = kind; *k; k++)
            *k = *k == ' ' ? '_' : *k;
        len += (size_t)snprintf(s + len, cap - len, "%s:%s=%s\n", kind, files[i].path, hash);
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

/* The output dimension the cell's map will have, from its type's dimension for the cell's map
 * parameters (featuremap_params_dim: dpfp's 2·d·ν; no map is built here; for learned maps it is
 * an estimate), or m (d when 0) for a map this build does not know.  An estimate for ordering,
 * ETAs and memory, not a promise. */
static double est_m(const struct la_cell *c, const struct featuremap_type *t)
{
    if (!t)
        return c->m > 0 ? c->m : c->d;
    struct fm_params p;
    featuremap_params_default(&p, c->d);
    la_params_to_fm(c, &p);
    return featuremap_params_dim(t, &p);
}

/* The backward kernel a training pass runs for forward kernel kn (engine/train.h), or NULL. */
static const struct attn_kernel *backward_of(const struct attn_kernel *kn, const struct la_cell *c)
{
    return c->pass == LA_PASS_FORWARD ? NULL : attn_kernel_backward_of(kn, c->causal);
}

double la_cell_flops(const struct la_cell *c)
{
    const struct attn_kernel *kn = attn_kernel_lookup(c->kernel);
    if (!kn)
        return 0;
    const double bh = (double)c->batch * c->heads;
    const struct attn_kernel *bk = backward_of(kn, c);
    const int feat = kn->input == ATTN_IN_FEATURES;
    const struct featuremap_type *t = feat ? find_map(c->map, NULL) : NULL;
    const double m = feat ? est_m(c, t) : c->d;
    /* The map over the T queries and the T keys of a head. */
    const double fm = t ? 2.0 * featuremap_nominal_flops(t, (size_t)c->T, c->d, (int)m) : 0.0;
    if (kn->op == ATTN_OP_STEP) {
        /* A decode cell: the prefill of T − 1 tokens of every sequence, then one step of the B
         * sequences of each head.  A key-value cache is filled by storing its tokens (no flops
         * counted); a linear state by the prefill of its rule. */
        const struct attn_kernel *pf =
            attn_kernel_find_update(ATTN_OP_PREFILL, kn->input, 1, kn->update);
        const double pre = pf && c->T > 1 && kn->input != ATTN_IN_QK
                               ? attn_nominal_flops(pf, c->T - 1, (int)m, c->dv, 1)
                               : 0.0;
        return bh * (pre + fm) +
               c->heads * attn_nominal_flops_at(kn, c->batch, c->T - 1, (int)m, c->dv, 1);
    }
    /* The kernel on the features, and the map; a training pass adds the backward (pass
     * backward also runs the forward once, untimed) and the map's backward. */
    double f = attn_nominal_flops(kn, c->T, (int)m, c->dv, c->causal) + fm;
    if (bk) {
        const double fb =
            t ? 2.0 * featuremap_nominal_backward_flops(t, (size_t)c->T, c->d, (int)m) : 0.0;
        f += attn_nominal_flops(bk, c->T, (int)m, c->dv, c->causal) + (isfinite(fb) ? fb : 0.0);
    }
    return bh * f;
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
         * and writes each once, so that is their size); then its workspace slices. */
        const int feat = kn->input == ATTN_IN_FEATURES;
        const struct featuremap_type *t = feat ? find_map(c->map, NULL) : NULL;
        m = feat ? est_m(c, t) : d;
        if (kn->op == ATTN_OP_STEP) /* a decode cell: T tokens of each sequence, its state */
            bytes = bh * sizeof(float) *
                    (2 * T * m + 2 * T * dv + (double)attn_state_floats(kn, c->T, (int)m, c->dv));
        else
            bytes = bh * attn_nominal_bytes(kn, c->T, (int)m, c->dv, c->causal);
        if (feat) {
            /* And the map's, from its byte model over the T queries and T keys of a head: the
             * raw rows it reads (the features it writes are the kernel's inputs, counted
             * above), and its parameters (the model at n = 0) once: one map serves the cell. */
            const double params = t ? featuremap_nominal_bytes(t, 0, c->d, (int)m) : 0.0;
            const double io = t ? featuremap_nominal_bytes(t, 2 * (size_t)c->T, c->d, (int)m)
                                : 2 * T * (d + m) * sizeof(float);
            bytes += bh * (io - params - 2 * T * m * sizeof(float)) + params;
        }
        double par = bh < c->threads ? bh : c->threads;
        if (kn->op != ATTN_OP_STEP) /* a step's workspace is for B tokens: negligible */
            bytes += par * sizeof(float) *
                     (double)attn_workspace_floats(kn, c->T, (int)m, c->dv, c->causal, c->chunk,
                                                   c->threads);
    }
    if (kn && backward_of(kn, c)) {
        /* A training pass: dY, the gradients (of the features and of the raw Q, K for linear
         * kernels), the backward's workspace slices; its errors' double head (4·T·m + 2·T·dv). */
        const struct attn_kernel *bk = backward_of(kn, c);
        const int feat = kn->input == ATTN_IN_FEATURES;
        double par = bh < c->threads ? bh : c->threads;
        bytes += bh * sizeof(float) * (2 * T * dv + 2 * T * m + (feat ? 2 * T * d : 0.0));
        bytes += par * sizeof(float) *
                 (double)attn_workspace_floats(bk, c->T, (int)m, c->dv, c->causal, 0, c->threads);
        if (c->measure_error)
            bytes += sizeof(double) * (4 * T * m + 2 * T * dv);
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
