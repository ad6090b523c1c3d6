/* learned.c — feature maps with trained weights read from an HDF5 file (fm_params.weights):
 *     u = W x + b   (W: (m, d), b: (m); x itself, no d^{-1/4} scaling: the weights absorb it)
 *     exp_pair     (Hedgehog, Zhang et al. 2024):  φ(x) = [exp(u), exp(−u)]            2m outputs
 *     softmax_pair (Hedgehog's normalised form):   φ(x) = softmax([u, −u]) per row     2m outputs
 *     relu         (T2R, Kasai et al. 2021):        φ(x) = max(u, 0)                     m outputs
 * The map defines its own kernel φ(q)ᵀφ(k) (unstabilised, evaluated in double from the fp32
 * weights).  exp_pair is stabilised like prf (draws.h): the row max is subtracted for queries,
 * the call's max for keys, nothing for FM_RAW; softmax_pair is shift-invariant by definition.
 * relu can give an all-zero row, and then a zero normaliser (counted by the kernels).
 *
 * File layouts (docs/data-layout.md, "Learned feature-map weights"):
 *   single map (`linattn featuremap init-learned` writes one), for queries, keys and every head:
 *     /W                    dataset, float32 (float64 accepted), shape (m, d)
 *     /b                    optional dataset, float32 (float64 accepted), shape (m); 0 if absent
 *   per layer and head (`linattn fit` writes one), separate query and key maps:
 *     /W_q, /W_k            datasets, float32, shape (L, H, m, d)
 *     /b_q, /b_k            datasets, float32, shape (L, H, m)
 *     /fitted               optional, shape (L, H): 0 marks an entry that holds no weights
 *     the entry is fm_params.layer, .head; a file of one layer and one head serves any cell
 *   both:  / attribute activation  string: exp_pair | softmax_pair | relu
 * Queries (FM_QUERY, FM_RAW) use the query map, keys (FM_KEY, FM_RAW_KEY) the key map.
 * Every error names the file and the dataset or attribute: a missing or unreadable file (LA_EIO),
 * not HDF5, /W missing, not a dataset, wrong dtype (integer, string, ...), wrong rank or column
 * count (≠ d), more rows than supported (m·d < 2^30), /b of the wrong length, NaN/Inf or a value
 * beyond fp32 range, a missing or unknown activation (the message lists the valid ones), relu
 * features that are zero for every input, relu or exp_pair features that overflow fp32 at a
 * unit input (check_features) (LA_EFORMAT).  fm_params.m, when not 0,
 * must equal W's row count (LA_EINVAL).  The backward differentiates the query map for query
 * rows and the key map for key rows and adds dW, db in the file's layout (learned_param_count).
 * Training the weights is not done here.
 * Tests: tests/test_featuremaps.c (round trip, every error case, CLI exit codes);
 * tests/test_fmgrad.c (the backward against finite differences, both maps of a per-head file);
 * tests/h5strings.sh (the activation in every string form h5py writes).
 */
#include "featuremap.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

#include "../harness/core/h5util.h"
#include "../kernels/vmath.h"
#include "draws.h"

enum learned_act { ACT_EXP_PAIR = 0, ACT_SOFTMAX_PAIR = 1, ACT_RELU = 2 };
static const char *const act_names[] = {"exp_pair", "softmax_pair", "relu", NULL};
#define N_ACT 3

struct learned_state {
    int d, m;  /* W and Wk are (m, d) */
    int act;   /* enum learned_act */
    float *W;  /* the query map's (m, d) */
    float *b;  /* (m) zeros when the file has none */
    float *Wk; /* the key map's (m, d): W itself for a single-map file */
    float *bk; /* (m): b itself for a single-map file */
};

/* Reads a float dataset of the expected rank into a fresh double array, checking class, size,
 * rank, the column count (rank 2: dims[1] == cols; rank 1: dims[0] == cols) and finiteness. */
static int read_floats(hid_t f, const char *file, const char *name, int rank, int cols,
                       hsize_t dims[2], double **out, struct la_error *err)
{
    int st = LA_OK;
    hid_t ds = -1, type = -1, space = -1;
    double *buf = NULL;
    *out = NULL;
    ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) {
        st =
            LA_FAIL(err, LA_EFORMAT, "learned: weights file '%s': %s is not a dataset", file, name);
        goto done;
    }
    type = H5Dget_type(ds);
    H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    size_t size = type >= 0 ? H5Tget_size(type) : 0;
    if (cls != H5T_FLOAT || (size != 4 && size != 8)) {
        const char *what = cls == H5T_INTEGER  ? "integer"
                           : cls == H5T_STRING ? "string"
                           : cls == H5T_FLOAT  ? "float of unsupported size"
                                               : "non-numeric";
        st = LA_FAIL(err, LA_EFORMAT,
                     "learned: weights file '%s': dataset %s has type %s "
                     "(%zu bytes); expected float32 (float64 is accepted too)",
                     file, name, what, size);
        goto done;
    }
    space = H5Dget_space(ds);
    int got_rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    hsize_t d2[2] = {0, 0};
    if (got_rank == rank)
        H5Sget_simple_extent_dims(space, d2, NULL);
    hsize_t c = rank == 2 ? d2[1] : d2[0];
    /* The largest m: m·d below 2^30 (m·d <= INT_MAX / 2), the bound the random maps keep too,
     * so that the 2m outputs and every index into W fit in an int (cblas, the kernels). */
    hsize_t mmax = rank == 2 ? (hsize_t)(INT_MAX / 2) / (hsize_t)cols : (hsize_t)cols;
    if (got_rank != rank || c != (hsize_t)cols || d2[0] < 1 || d2[0] > mmax) {
        char shape[64] = "?";
        if (got_rank >= 0 && got_rank <= 2) {
            hsize_t g[2] = {0, 0};
            H5Sget_simple_extent_dims(space, g, NULL);
            if (got_rank == 0)
                snprintf(shape, sizeof shape, "() (a scalar)");
            else if (got_rank == 1)
                snprintf(shape, sizeof shape, "(%llu)", (unsigned long long)g[0]);
            else
                snprintf(shape, sizeof shape, "(%llu, %llu)", (unsigned long long)g[0],
                         (unsigned long long)g[1]);
        } else if (got_rank > 2) {
            snprintf(shape, sizeof shape, "of rank %d", got_rank);
        }
        if (rank == 2)
            st = LA_FAIL(err, LA_EFORMAT,
                         "learned: weights file '%s': dataset %s has shape %s; "
                         "expected (m, d) with d = %d (the head dimension) and "
                         "1 <= m <= %llu (m*d < 2^30)",
                         file, name, shape, cols, (unsigned long long)mmax);
        else
            st = LA_FAIL(err, LA_EFORMAT,
                         "learned: weights file '%s': dataset %s has shape %s; "
                         "expected (%d) (one bias per row of /W)",
                         file, name, shape, cols);
        goto done;
    }
    size_t total = (size_t)d2[0] * (rank == 2 ? (size_t)d2[1] : 1);
    buf = malloc(total * sizeof *buf);
    if (!buf) {
        st = LA_FAIL(err, LA_ENOMEM, "learned: out of memory reading %s from '%s'", name, file);
        goto done;
    }
    if (H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
        st = LA_FAIL(err, LA_EIO, "learned: weights file '%s': cannot read dataset %s", file, name);
        goto done;
    }
    for (size_t i = 0; i < total; i++)
        if (!isfinite(buf[i]) || fabs(buf[i]) > FLT_MAX) {
            size_t row = rank == 2 ? i / (size_t)cols : i, col = rank == 2 ? i % (size_t)cols : 0;
            if (rank == 2)
                st = LA_FAIL(err, LA_EFORMAT,
                             "learned: weights file '%s': dataset %s has a "
                             "non-finite or out-of-fp32-range value (%g) at [%zu, %zu]",
                             file, name, buf[i], row, col);
            else
                st = LA_FAIL(err, LA_EFORMAT,
                             "learned: weights file '%s': dataset %s has a "
                             "non-finite or out-of-fp32-range value (%g) at [%zu]",
                             file, name, buf[i], row);
            goto done;
        }
    dims[0] = d2[0];
    dims[1] = d2[1];
    *out = buf;
    buf = NULL;
done:
    free(buf);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (ds >= 0)
        H5Dclose(ds);
    return st;
}

/* Reads the root attribute `activation` (any string form h5util.h accepts) into act. */
static int read_activation(hid_t f, const char *file, int *act, struct la_error *err)
{
    char list[128];
    la_join_names(list, sizeof list, act_names, N_ACT);
    if (H5Aexists(f, "activation") <= 0)
        return LA_FAIL(err, LA_EFORMAT,
                       "learned: weights file '%s' has no string attribute "
                       "'activation' on / (valid: %s)",
                       file, list);
    hid_t a = H5Aopen(f, "activation", H5P_DEFAULT);
    hid_t type = a >= 0 ? H5Aget_type(a) : -1;
    const int is_str = type >= 0 && H5Tget_class(type) == H5T_STRING;
    if (type >= 0)
        H5Tclose(type);
    if (a >= 0)
        H5Aclose(a);
    if (!is_str)
        return LA_FAIL(err, LA_EFORMAT,
                       "learned: weights file '%s': attribute 'activation' on / "
                       "is not a string (valid: %s)",
                       file, list);
    char *v = NULL;
    const int got = la_h5_read_str_attr(f, "activation", &v);
    if (got == -2)
        return LA_FAIL(err, LA_ENOMEM, "learned: out of memory reading 'activation'");
    if (got != 0)
        return LA_FAIL(err, LA_EFORMAT,
                       "learned: weights file '%s': cannot read attribute 'activation' "
                       "(one string value expected)",
                       file);
    for (int i = 0; i < N_ACT; i++)
        if (!strcmp(v, act_names[i])) {
            *act = i;
            free(v);
            return LA_OK;
        }
    char msg[192];
    int st = LA_FAIL(err, LA_EFORMAT,
                     "learned: weights file '%s': attribute 'activation' = '%s' is unknown%s",
                     file, v, la_choices_msg(msg, sizeof msg, v, act_names, N_ACT,
                                             "valid activations"));
    free(v);
    return st;
}

/* Refuses weights whose features are useless for fp32 attention, whatever the input:
 *   relu with every row dead (W_i = 0 and b_i <= 0): φ(x) = 0 for every x, so every normaliser
 *   is zero;
 *   relu or exp_pair whose own kernel overflows fp32 at a unit input: φ(x)ᵀφ(x) > FLT_MAX for
 *   some x = ±e_j (evaluated in double from the fp32 weights, unstabilised).
 * softmax_pair's features lie in [0, 1] and sum to 1 for every input, so nothing is refused. */
static int check_side(const struct learned_state *s, const float *W, const float *b,
                      const char *file, const char *wname, struct la_error *err)
{
    const char *act = act_names[s->act];
    if (s->act == ACT_SOFTMAX_PAIR)
        return LA_OK;
    if (s->act == ACT_RELU) {
        int live = 0;
        for (int i = 0; i < s->m && !live; i++) {
            live = b[i] > 0.0f;
            for (int j = 0; j < s->d && !live; j++)
                live = W[(size_t)i * (size_t)s->d + (size_t)j] != 0.0f;
        }
        if (!live)
            return LA_FAIL(err, LA_EFORMAT,
                           "learned: weights file '%s': the relu features are zero for every "
                           "input (every row of %s is zero and every bias <= 0)",
                           file, wname);
    }
    for (int j = 0; j < s->d; j++)
        for (int sign = 1; sign >= -1; sign -= 2) {
            double self = 0.0;
            for (int i = 0; i < s->m; i++) {
                double u = sign * (double)W[(size_t)i * (size_t)s->d + (size_t)j] + b[i];
                if (s->act == ACT_RELU)
                    self += u > 0.0 ? u * u : 0.0;
                else
                    self += exp(2.0 * u) + exp(-2.0 * u);
            }
            if (!(self <= FLT_MAX))
                return LA_FAIL(err, LA_EFORMAT,
                               "learned: weights file '%s': the %s features overflow fp32 at the "
                               "unit input x = %se_%d (phi(x).phi(x) = %.3g > %.3g); the weights "
                               "(%s) are too large",
                               file, act, sign > 0 ? "+" : "-", j, self, (double)FLT_MAX, wname);
        }
    return LA_OK;
}

static int check_features(const struct learned_state *s, const char *file, const char *wq,
                          const char *wk, struct la_error *err)
{
    int st = check_side(s, s->W, s->b, file, wq, err);
    if (st == LA_OK && s->Wk != s->W)
        st = check_side(s, s->Wk, s->bk, file, wk, err);
    return st;
}

/* Reads one (layer, head) entry of a per-head dataset into fresh floats: rank 4 (L, H, m, d) for
 * a weight, rank 3 (L, H, m) for a bias, rank 2 (L, H) for /fitted.  Checks the class, the shape
 * against ref (L, H, m, d: the first dataset read fixes it; ref[2] = 0 takes m from this one)
 * and finiteness. */
static int read_head(hid_t f, const char *file, const char *name, int rank, int layer, int head,
                     hsize_t ref[4], float **out, struct la_error *err)
{
    int st = LA_OK;
    hid_t ds = -1, type = -1, space = -1, mem = -1;
    double *buf = NULL;
    *out = NULL;
    ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0) {
        st =
            LA_FAIL(err, LA_EFORMAT, "learned: weights file '%s': %s is not a dataset", file, name);
        goto done;
    }
    type = H5Dget_type(ds);
    const H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    const size_t size = type >= 0 ? H5Tget_size(type) : 0;
    space = H5Dget_space(ds);
    hsize_t g[4] = {0, 0, 0, 0};
    const int got = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (got == rank)
        H5Sget_simple_extent_dims(space, g, NULL);
    if (ref[2] == 0 && got == rank && rank >= 3)
        ref[2] = g[2];
    const hsize_t mmax = (hsize_t)(INT_MAX / 2) / ref[3];
    const int shape_ok = got == rank && g[0] == ref[0] && g[1] == ref[1] &&
                         (rank == 2 || (g[2] == ref[2] && g[2] >= 1 && g[2] <= mmax)) &&
                         (rank != 4 || g[3] == ref[3]);
    if (rank == 2 && (cls == H5T_INTEGER || cls == H5T_FLOAT) && shape_ok) {
        /* /fitted: any numeric type */
    } else if (cls != H5T_FLOAT || (size != 4 && size != 8) || !shape_ok) {
        if (rank == 2) {
            st = LA_FAIL(err, LA_EFORMAT,
                         "learned: weights file '%s': dataset %s must be numeric of shape "
                         "(L, H) = (%llu, %llu)",
                         file, name, (unsigned long long)ref[0], (unsigned long long)ref[1]);
            goto done;
        }
        st = LA_FAIL(err, LA_EFORMAT,
                     "learned: weights file '%s': dataset %s must be float32 of shape "
                     "(L, H, m%s) = (%llu, %llu, %llu%s) with d = %llu the head dimension "
                     "(rank %d found)",
                     file, name, rank == 4 ? ", d" : "", (unsigned long long)ref[0],
                     (unsigned long long)ref[1], (unsigned long long)ref[2], rank == 4 ? ", d" : "",
                     (unsigned long long)ref[3], got);
        goto done;
    }
    if ((hsize_t)layer >= g[0] || (hsize_t)head >= g[1]) {
        st = LA_FAIL(err, LA_EINVAL,
                     "learned: weights file '%s' has no entry for layer %d, head %d (%s holds "
                     "%llu layers x %llu heads)",
                     file, layer, head, name, (unsigned long long)g[0], (unsigned long long)g[1]);
        goto done;
    }
    const size_t n = rank == 2 ? 1 : (size_t)g[2] * (rank == 4 ? (size_t)g[3] : 1);
    hsize_t start[4] = {(hsize_t)layer, (hsize_t)head, 0, 0};
    hsize_t count[4] = {1, 1, g[2], rank == 4 ? g[3] : 1};
    hsize_t mdim[1] = {(hsize_t)n};
    buf = malloc(n * sizeof *buf);
    *out = malloc(n * sizeof **out);
    if (!buf || !*out) {
        st = LA_FAIL(err, LA_ENOMEM, "learned: out of memory reading %s from '%s'", name, file);
        goto done;
    }
    mem = H5Screate_simple(1, mdim, NULL);
    if (mem < 0 || H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(ds, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, buf) < 0) {
        st = LA_FAIL(err, LA_EIO, "learned: weights file '%s': cannot read dataset %s", file, name);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(buf[i]) || fabs(buf[i]) > FLT_MAX) {
            st = LA_FAIL(err, LA_EFORMAT,
                         "learned: weights file '%s': dataset %s has a non-finite or "
                         "out-of-fp32-range value (%g) for layer %d, head %d",
                         file, name, buf[i], layer, head);
            goto done;
        }
        (*out)[i] = (float)buf[i];
    }
done:
    if (st != LA_OK) {
        free(*out);
        *out = NULL;
    }
    free(buf);
    if (mem >= 0)
        H5Sclose(mem);
    if (space >= 0)
        H5Sclose(space);
    if (type >= 0)
        H5Tclose(type);
    if (ds >= 0)
        H5Dclose(ds);
    return st;
}

/* The per-head layout (/W_q present): picks the entry of p->layer, p->head; a file of one layer
 * and one head serves any cell, including one not on a captured head (layer, head = -1). */
static int load_per_head(struct learned_state *s, hid_t f, const char *file,
                         const struct fm_params *p, struct la_error *err)
{
    hid_t ds = H5Dopen2(f, "W_q", H5P_DEFAULT);
    hid_t space = ds >= 0 ? H5Dget_space(ds) : -1;
    hsize_t ref[4] = {0, 0, 0, (hsize_t)p->d}, g[4] = {0, 0, 0, 0};
    const int rank = space >= 0 ? H5Sget_simple_extent_ndims(space) : -1;
    if (rank == 4)
        H5Sget_simple_extent_dims(space, g, NULL);
    if (space >= 0)
        H5Sclose(space);
    if (ds >= 0)
        H5Dclose(ds);
    if (rank != 4 || g[0] < 1 || g[1] < 1 || g[3] != (hsize_t)p->d)
        return LA_FAIL(err, LA_EFORMAT,
                       "learned: weights file '%s': dataset /W_q must have shape (L, H, m, d) "
                       "with d = %d the head dimension",
                       file, p->d);
    ref[0] = g[0];
    ref[1] = g[1];
    int layer = p->layer, head = p->head;
    if (g[0] == 1 && g[1] == 1) {
        layer = head = 0;
    } else if (layer < 0 || head < 0) {
        return LA_FAIL(err, LA_EINVAL,
                       "learned: weights file '%s' holds weights per layer and head "
                       "(%llu x %llu); they apply to one captured head at a time (data "
                       "source h5 with one layer and one head per cell)",
                       file, (unsigned long long)g[0], (unsigned long long)g[1]);
    }
    if (H5Lexists(f, "fitted", H5P_DEFAULT) > 0) {
        hsize_t fref[4] = {ref[0], ref[1], 1, (hsize_t)p->d};
        float *fit = NULL;
        int st = read_head(f, file, "/fitted", 2, layer, head, fref, &fit, err);
        const int ok = st == LA_OK && fit[0] != 0.0f;
        free(fit);
        if (st != LA_OK)
            return st;
        if (!ok)
            return LA_FAIL(err, LA_EINVAL,
                           "learned: weights file '%s' has no fitted weights for layer %d, "
                           "head %d (/fitted is 0 there)",
                           file, layer, head);
    }
    int st = read_head(f, file, "/W_q", 4, layer, head, ref, &s->W, err);
    if (st == LA_OK)
        st = read_head(f, file, "/W_k", 4, layer, head, ref, &s->Wk, err);
    if (st == LA_OK)
        st = read_head(f, file, "/b_q", 3, layer, head, ref, &s->b, err);
    if (st == LA_OK)
        st = read_head(f, file, "/b_k", 3, layer, head, ref, &s->bk, err);
    if (st != LA_OK)
        return st;
    s->m = (int)ref[2];
    if (p->m != 0 && p->m != s->m)
        return LA_FAIL(err, LA_EINVAL,
                       "learned: m = %d was given but dataset /W_q in '%s' has %d rows per "
                       "head (leave m at 0 to take it from the file)",
                       p->m, file, s->m);
    return LA_OK;
}

/* The single-map layout (/W, optional /b): one map for queries and keys and every head. */
static int load_single(struct learned_state *s, hid_t f, const char *file,
                       const struct fm_params *p, struct la_error *err)
{
    int st = LA_OK;
    double *W = NULL, *b = NULL;
    hsize_t dims[2], bdims[2];
    if (H5Lexists(f, "W", H5P_DEFAULT) <= 0) {
        st = LA_FAIL(err, LA_EFORMAT,
                     "learned: weights file '%s' has no dataset /W (float32, "
                     "shape (m, d) with d = %d) nor the per-head /W_q (L, H, m, d)",
                     file, p->d);
        goto done;
    }
    st = read_floats(f, file, "/W", 2, p->d, dims, &W, err);
    if (st != LA_OK)
        goto done;
    int m = (int)dims[0];
    if (p->m != 0 && p->m != m) {
        st = LA_FAIL(err, LA_EINVAL,
                     "learned: m = %d was given but dataset /W in '%s' has %d "
                     "rows (leave m at 0 to take it from the file)",
                     p->m, file, m);
        goto done;
    }
    if (H5Lexists(f, "b", H5P_DEFAULT) > 0) {
        st = read_floats(f, file, "/b", 1, m, bdims, &b, err);
        if (st != LA_OK)
            goto done;
    }
    s->m = m;
    s->W = malloc((size_t)m * (size_t)p->d * sizeof *s->W);
    s->b = calloc((size_t)m, sizeof *s->b);
    if (!s->W || !s->b) {
        st = LA_FAIL(err, LA_ENOMEM, "learned: out of memory for weights (%d x %d)", m, p->d);
        goto done;
    }
    for (size_t i = 0; i < (size_t)m * (size_t)p->d; i++)
        s->W[i] = (float)W[i];
    if (b)
        for (int i = 0; i < m; i++)
            s->b[i] = (float)b[i];
    s->Wk = s->W;
    s->bk = s->b;
done:
    free(W);
    free(b);
    return st;
}

static int learned_load(struct learned_state *s, const struct fm_params *p, struct la_error *err)
{
    const char *file = p->weights;
    if (access(file, R_OK) != 0)
        return LA_FAIL(err, LA_EIO, "learned: cannot read weights file '%s': %s", file,
                       strerror(errno));
    if (H5Fis_hdf5(file) <= 0)
        return LA_FAIL(err, LA_EFORMAT, "learned: weights file '%s' is not an HDF5 file", file);
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return LA_FAIL(err, LA_EIO, "learned: cannot open weights file '%s' with HDF5", file);
    s->d = p->d;
    const int per_head = H5Lexists(f, "W_q", H5P_DEFAULT) > 0;
    int st = per_head ? load_per_head(s, f, file, p, err) : load_single(s, f, file, p, err);
    if (st == LA_OK)
        st = read_activation(f, file, &s->act, err);
    if (st == LA_OK)
        st = per_head ? check_features(s, file, "/W_q", "/W_k", err)
                      : check_features(s, file, "/W", "/W", err);
    H5Fclose(f);
    return st;
}

static void learned_release(void *state)
{
    struct learned_state *s = state;
    if (s->Wk != s->W)
        free(s->Wk);
    if (s->bk != s->b)
        free(s->bk);
    free(s->W);
    free(s->b);
    s->W = s->b = s->Wk = s->bk = NULL;
}

static int learned_init(void *state, const struct fm_params *p, gsl_rng *rng, struct la_error *err)
{
    (void)rng;
    struct learned_state *s = state;
    if (!p->weights || !*p->weights)
        return LA_FAIL(err, LA_EINVAL,
                       "learned: needs a weights file (fm_params.weights, "
                       "--weights FILE); `linattn featuremap init-learned` writes one");
    int st;
    /* HDF5 prints its own error stack unless told not to; our message says it all. */
    H5E_BEGIN_TRY
    {
        st = learned_load(s, p, err);
    }
    H5E_END_TRY;
    if (st != LA_OK)
        learned_release(s);
    return st;
}

static int learned_out_dim(const void *state)
{
    const struct learned_state *s = state;
    return s->act == ACT_RELU ? s->m : 2 * s->m;
}

static void learned_apply(const void *state, enum fm_role role, const float *x, size_t n,
                          float *phi, float *work, float *shift)
{
    (void)work;
    const struct learned_state *s = state;
    int m = s->m, d = s->d;
    const int key = role == FM_KEY || role == FM_RAW_KEY;
    const float *W = key ? s->Wk : s->W, *b = key ? s->bk : s->b;
    if (role == FM_RAW_KEY)
        role = FM_RAW;
    if (s->act == ACT_RELU) {
        fm_gemm_rows(x, n, d, W, m, b, phi, m);
        size_t total = n * (size_t)m;
        for (size_t i = 0; i < total; i++)
            phi[i] = phi[i] < 0.0f ? 0.0f : phi[i];
        fm_zero_shift(shift, n);
        return;
    }
    size_t ld = (size_t)(2 * m);
    fm_gemm_rows(x, n, d, W, m, b, phi, 2 * m);
    for (size_t r = 0; r < n; r++) {
        float *row = phi + r * ld;
        for (int i = 0; i < m; i++)
            row[m + i] = -row[i];
    }
    if (s->act == ACT_EXP_PAIR) {
        fm_exp_stabilised(phi, n, 2 * m, NULL, d, 0.0, role, 1.0f, shift);
        return;
    }
    /* softmax_pair: the row max out first (it is the definition's own invariance), one exp
     * over the block, then each row divided by its sum. */
    /* The row sum divides the shift out again: the definition itself. */
    fm_exp_stabilised(phi, n, 2 * m, NULL, d, 0.0, FM_QUERY, 1.0f, NULL);
    fm_zero_shift(shift, n);
    for (size_t r = 0; r < n; r++) {
        float *row = phi + r * ld;
        double sum = 0.0;
        for (size_t i = 0; i < ld; i++)
            sum += row[i];
        float inv = (float)(1.0 / sum);
        for (size_t i = 0; i < ld; i++)
            row[i] *= inv;
    }
}

/* Backward (featuremap.h) of the query map (learned_backward: FM_QUERY, FM_RAW rows) or the key
 * map (learned_backward_key: FM_KEY, FM_RAW_KEY rows), W and b below being that map's.  With
 * u = W x + b, ∂L/∂u (G, one row of m units per input row):
 *   relu:          G_i = g_i where φ_i > 0 (u_i > 0), else 0 (the subgradient 0 at u_i = 0);
 *   exp_pair:      G_i = g_i·φ_i − g_{m+i}·φ_{m+i}   (the stabiliser's c held constant);
 *   softmax_pair:  with p = φ the softmax of v = [u, −u], ∂L/∂v_c = p_c·(g_c − Σ_l p_l·g_l),
 *                  G_i = ∂L/∂v_i − ∂L/∂v_{m+i}  (exact: the row max it subtracts is the
 *                  definition's own invariance).
 * Then dx = G·W, and into dparams (when not NULL) the parameters' gradients are added in the
 * weights file's order (learned_param_count): dW += Gᵀ·x (m, d) row-major (dparams[i·d + j] =
 * ∂L/∂W_ij), then db += Σ_rows G (m).  A single-map file has one such block, which queries and
 * keys share; a per-head file has the query map's block then the key map's, as its /W_q, /b_q,
 * /W_k, /b_k.  Blocks of FM_GRAD_ROWS rows; workspace: one block's G. */
static void backward_side(const struct learned_state *s, int key, const float *x, size_t n,
                          const float *phi, const float *dphi, float *dx, float *dparams,
                          float *work)
{
    const int m = s->m, d = s->d;
    const float *W = key ? s->Wk : s->W;
    if (dparams && key && s->Wk != s->W)
        dparams += (size_t)m * (size_t)d + (size_t)m;
    const size_t cols = s->act == ACT_RELU ? (size_t)m : 2 * (size_t)m;
    float *G = work;
    for (size_t r0 = 0; r0 < n; r0 += FM_GRAD_ROWS) {
        const size_t nr = n - r0 < FM_GRAD_ROWS ? n - r0 : FM_GRAD_ROWS;
        const float *f = phi + r0 * cols, *g = dphi + r0 * cols;
        if (s->act == ACT_EXP_PAIR) {
            fm_grad_G(FM_GRAD_PAIR, f, g, nr, m, G, NULL);
        } else if (s->act == ACT_RELU) {
            for (size_t i = 0; i < nr * (size_t)m; i++)
                G[i] = f[i] > 0.0f ? g[i] : 0.0f;
        } else {
            for (size_t r = 0; r < nr; r++) {
                const float *fr = f + r * cols, *gr = g + r * cols;
                float *Gr = G + r * (size_t)m;
                double dot = 0.0;
                for (size_t c = 0; c < cols; c++)
                    dot += (double)fr[c] * (double)gr[c];
                const float sd = (float)dot;
                for (int i = 0; i < m; i++)
                    Gr[i] = fr[i] * (gr[i] - sd) - fr[m + i] * (gr[m + i] - sd);
            }
        }
        const float *xr = x + r0 * (size_t)d;
        fm_grad_rows(G, nr, m, W, d, NULL, 0.0f, NULL, dx + r0 * (size_t)d);
        if (dparams)
            fm_grad_params(G, nr, m, xr, d, dparams, dparams + (size_t)m * (size_t)d);
    }
}

static void learned_backward(const void *state, const float *x, size_t n, const float *phi,
                             const float *dphi, float *dx, float *dparams, float *work)
{
    backward_side(state, 0, x, n, phi, dphi, dx, dparams, work);
}

static void learned_backward_key(const void *state, const float *x, size_t n, const float *phi,
                                 const float *dphi, float *dx, float *dparams, float *work)
{
    backward_side(state, 1, x, n, phi, dphi, dx, dparams, work);
}

static size_t learned_backward_work_floats(const void *state, size_t n)
{
    const size_t rows = n < FM_GRAD_ROWS ? n : FM_GRAD_ROWS;
    return rows * (size_t)((const struct learned_state *)state)->m;
}

/* dW (m, d) then db (m), the layout of the weights file's /W and /b; a per-head file's entry
 * (separate key map) has two such blocks, query map then key map (/W_q, /b_q, /W_k, /b_k). */
static size_t learned_param_count(const void *state)
{
    const struct learned_state *s = state;
    const size_t one = (size_t)s->m * (size_t)s->d + (size_t)s->m;
    return s->Wk != s->W ? 2 * one : one;
}

/* u_i = W_i·x + b_i in double from the fp32 weights of the query map (key = 0) or the key map. */
static double unit(const struct learned_state *s, int key, const double *x, int i)
{
    double acc = (key ? s->bk : s->b)[i];
    const float *w = (key ? s->Wk : s->W) + (size_t)i * (size_t)s->d;
    for (int j = 0; j < s->d; j++)
        acc += (double)w[j] * x[j];
    return acc;
}

/* The softmax_pair normaliser Σ_i (e^{u_i} + e^{−u_i}) after shifting by max|u_i|. */
static double pair_sum(const struct learned_state *s, int key, const double *x, double *shift)
{
    double mx = 0.0;
    for (int i = 0; i < s->m; i++)
        mx = fmax(mx, fabs(unit(s, key, x, i)));
    double sum = 0.0;
    for (int i = 0; i < s->m; i++) {
        double u = unit(s, key, x, i);
        sum += exp(u - mx) + exp(-u - mx);
    }
    *shift = mx;
    return sum;
}

static double learned_kernel(const void *state, const double *q, const double *k, int d)
{
    (void)d;
    const struct learned_state *s = state;
    double acc = 0.0;
    if (s->act == ACT_RELU) {
        for (int i = 0; i < s->m; i++)
            acc += fmax(unit(s, 0, q, i), 0.0) * fmax(unit(s, 1, k, i), 0.0);
        return acc;
    }
    if (s->act == ACT_EXP_PAIR) {
        for (int i = 0; i < s->m; i++) {
            double a = unit(s, 0, q, i), c = unit(s, 1, k, i);
            acc += exp(a + c) + exp(-a - c);
        }
        return acc;
    }
    double sq, sk;
    double zq = pair_sum(s, 0, q, &sq), zk = pair_sum(s, 1, k, &sk);
    for (int i = 0; i < s->m; i++) {
        double a = unit(s, 0, q, i), c = unit(s, 1, k, i);
        acc += exp(a - sq + c - sk) + exp(-a - sq - c - sk);
    }
    return acc / (zq * zk);
}

/* Cost (featuremap.h).  The activation is in the weights file, which a cost model does not read,
 * so the model counts the pair activations at m = 2p features from p = m/2 units, the form of
 * exp_pair (init-learned's default): per row the product 2·d·p = d·m, the bias p = m/2 (the
 * "−" half is a negated copy), and over all m features the row max, the two shifts and the exp
 * (the scale is 1 and skipped): d·m + 4.5·m.  softmax_pair adds a sum and a scale, 2·m;
 * relu has m units for its m features, 2·d·m + 2·m, twice the product at the same m.
 * Parameters: W (p·d) and b (p) in fp32.  nominal_dim: 2·m (m = d when 0), the pair form. */
static double learned_flops(size_t n, int d, int m)
{
    return (double)n * ((double)d * m + 4.5 * m);
}

static double learned_bytes(size_t n, int d, int m)
{
    return fm_rows_bytes(n, d, m) + sizeof(float) * 0.5 * m * ((double)d + 1.0);
}

/* Backward, in the pair model of learned_flops (p = m/2 units for m features): per row the
 * products g·φ (m) and the differences G_i (m/2), dx = G·W (2·d·p = d·m), dW += Gᵀx (d·m) and
 * db += G (m/2): 2·d·m + 2·m.  softmax_pair adds the dot Σ p·g and the subtracts of it (2·m);
 * relu has m units: a select each, 2·d·m twice and m adds, 4·d·m + 2·m. */
static double learned_backward_flops(size_t n, int d, int m)
{
    return (double)n * (2.0 * d * (double)m + 2.0 * m);
}

static double learned_nominal_dim(int d, int m)
{
    return 2.0 * (m > 0 ? m : d);
}

const struct featuremap_type fm_learned = {
    .name = "learned",
    .summary = "trained weights from HDF5: exp_pair (Hedgehog), softmax_pair, relu (T2R)",
    .params = "weights",
    .state_size = sizeof(struct learned_state),
    .random = 0,
    .two_sided = 1,
    .flops = learned_flops,
    .bytes = learned_bytes,
    .nominal_dim = learned_nominal_dim,
    .init = learned_init,
    .out_dim = learned_out_dim,
    .work_floats = NULL,
    .fit = NULL,
    .apply = learned_apply,
    .release = learned_release,
    .kernel = learned_kernel,
    .backward_work_floats = learned_backward_work_floats,
    .backward = learned_backward,
    .backward_key = learned_backward_key,
    .param_count = learned_param_count,
    .backward_flops = learned_backward_flops,
};
