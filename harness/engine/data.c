/* data.c — a cell's Q, K, V (see data.h).
 *
 * gaussian: q, k, v ~ N(0, sigma²) iid (GSL's ziggurat).  sphere: q and k rows uniform on the
 * sphere of radius `norm` (normalised Gaussian vectors), v ~ N(0, 1).  h5: root datasets /Q, /K,
 * /V of shape (L, H, T, hs) as written by `linattn capture` (docs/data-layout.md), also (H, T, d)
 * or (T, d); the cell selects the layer and one head or all heads (head = -1), and the first T
 * positions.  Any floating-point dataset type is read and converted to fp32 by HDF5.  The
 * recurrences' per-token gates /beta and /alpha come from the same file (la_data_gate).
 *
 * Synthetic head h uses its own mt19937 seeded with la_stream_seed(cell.seed, h) and draws q,
 * then k, then v of that head, row by row.  Changing this order changes every synthetic result
 * ever recorded: don't.  Not here: what the runner does with the data.  Tests: test_runner.c.
 */
#include "data.h"

#include "../core/h5util.h"
#include "../core/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>

unsigned long la_stream_seed(uint64_t seed, uint64_t stream)
{
    const uint64_t z = la_splitmix64(la_splitmix64(seed) ^ stream);
    return (unsigned long)((z ^ (z >> 32)) & 0xffffffffull);
}

const char *la_data_source_name(int source)
{
    switch (source) {
    case LA_DATA_GAUSSIAN:
        return "gaussian";
    case LA_DATA_SPHERE:
        return "sphere";
    case LA_DATA_H5:
        return "h5";
    case LA_DATA_MODEL:
        return "model";
    default:
        return "?";
    }
}

/* ---- synthetic -------------------------------------------------------------------------- */

static void fill_gaussian(gsl_rng *r, float *x, size_t n, double sigma)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)gsl_ran_gaussian_ziggurat(r, sigma);
}

/* Rows of d entries uniform on the sphere of radius `norm`: a Gaussian vector, normalised
 * (norm in double, from the fp32 draws, so the stored row has the requested norm to fp32
 * rounding).  A zero vector (probability 0 in theory) is drawn again. */
static void fill_sphere(gsl_rng *r, float *x, size_t rows, int d, double norm)
{
    for (size_t i = 0; i < rows; i++) {
        float *row = x + i * (size_t)d;
        double ss;
        do {
            ss = 0.0;
            for (int c = 0; c < d; c++) {
                row[c] = (float)gsl_ran_gaussian_ziggurat(r, 1.0);
                ss += (double)row[c] * row[c];
            }
        } while (ss == 0.0);
        const double f = norm / sqrt(ss);
        for (int c = 0; c < d; c++)
            row[c] = (float)(row[c] * f);
    }
}

static int fill_synthetic(const struct la_cell *c, const struct la_data_shape *s, float *q,
                          float *k, float *v, struct la_error *err)
{
    const size_t nqk = (size_t)s->T * s->d, nv = (size_t)s->T * s->dv;
    const int nth = c->threads > 0 ? c->threads : 1;
    int failed = 0;
#pragma omp parallel for num_threads(nth) schedule(dynamic, 1) reduction(| : failed)
    for (int h = 0; h < s->nheads; h++) {
        gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
        if (!r) {
            failed |= 1;
            continue;
        }
        gsl_rng_set(r, la_stream_seed(c->seed, (uint64_t)h));
        float *qh = q + (size_t)h * nqk, *kh = k + (size_t)h * nqk, *vh = v + (size_t)h * nv;
        if (c->source == LA_DATA_SPHERE) {
            fill_sphere(r, qh, (size_t)s->T, s->d, c->norm);
            fill_sphere(r, kh, (size_t)s->T, s->d, c->norm);
            fill_gaussian(r, vh, nv, 1.0);
        } else {
            fill_gaussian(r, qh, nqk, c->sigma);
            fill_gaussian(r, kh, nqk, c->sigma);
            fill_gaussian(r, vh, nv, c->sigma);
        }
        gsl_rng_free(r);
    }
    if (failed)
        return LA_FAIL(err, LA_ENOMEM, "out of memory allocating a random number generator");
    return LA_OK;
}

/* ---- HDF5 ------------------------------------------------------------------------------- */

/* One opened dataset and what we know of its shape, normalised to (L, H, T, n). */
struct h5ds {
    hid_t id;
    int rank;
    hsize_t L, H, T, n;
};

static int h5ds_open(hid_t f, const char *path, const char *name, struct h5ds *ds,
                     struct la_error *err)
{
    ds->id = H5I_INVALID_HID;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0)
        return LA_FAIL(err, LA_EFORMAT, "%s: no dataset %s (expected /Q, /K, /V)", path, name);
    ds->id = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds->id < 0)
        return LA_FAIL(err, LA_EFORMAT, "%s: cannot open dataset %s", path, name);
    hid_t type = H5Dget_type(ds->id);
    const H5T_class_t cls = type >= 0 ? H5Tget_class(type) : H5T_NO_CLASS;
    if (type >= 0)
        H5Tclose(type);
    if (cls != H5T_FLOAT)
        return LA_FAIL(err, LA_EFORMAT, "%s: dataset %s is not floating point", path, name);
    hid_t sp = H5Dget_space(ds->id);
    if (sp < 0)
        return LA_FAIL(err, LA_EFORMAT, "%s: dataset %s has no dataspace", path, name);
    hsize_t dims[8];
    const int rank = H5Sget_simple_extent_ndims(sp);
    if (rank >= 2 && rank <= 4)
        H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (rank < 2 || rank > 4)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s: dataset %s has rank %d; expected (L, H, T, d), (H, T, d) or (T, d)",
                       path, name, rank);
    ds->rank = rank;
    ds->L = rank == 4 ? dims[0] : 1;
    ds->H = rank >= 3 ? dims[rank - 3] : 1;
    ds->T = dims[rank - 2];
    ds->n = dims[rank - 1];
    return LA_OK;
}

static void h5ds_close(struct h5ds *ds)
{
    if (ds->id >= 0)
        H5Dclose(ds->id);
    ds->id = H5I_INVALID_HID;
}

/* Opens the file and the three datasets and checks them against the cell.  On success the
 * caller closes *f and the datasets. */
static int h5_open_all(const struct la_cell *c, hid_t *f, struct h5ds ds[3], struct la_error *err)
{
    static const char *const names[3] = {"/Q", "/K", "/V"};
    const char *path = c->data_path;
    for (int i = 0; i < 3; i++)
        ds[i].id = H5I_INVALID_HID;
    *f = H5I_INVALID_HID;
    if (!path[0])
        return LA_FAIL(err, LA_EINVAL, "data source h5 needs a data file (data_path is empty)");
    /* Probing with fopen first separates "missing or unreadable" from "not HDF5" in the message. */
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return LA_FAIL(err, LA_EIO, "%s: cannot open data file", path);
    fclose(probe);
    *f = la_h5_open_readonly(path);
    if (*f < 0)
        return LA_FAIL(err, LA_EFORMAT, "%s: not an HDF5 file", path);
    for (int i = 0; i < 3; i++) {
        int st = h5ds_open(*f, path, names[i], &ds[i], err);
        if (st != LA_OK)
            return st;
    }
    for (int i = 1; i < 3; i++)
        if (ds[i].rank != ds[0].rank || ds[i].L != ds[0].L || ds[i].H != ds[0].H ||
            ds[i].T != ds[0].T || (i == 1 && ds[1].n != ds[0].n))
            return LA_FAIL(err, LA_EFORMAT, "%s: dataset %s's shape does not match /Q's", path,
                           names[i]);
    if (c->layer < 0 || (hsize_t)c->layer >= ds[0].L)
        return LA_FAIL(err, LA_EINVAL, "%s: layer %d out of range (/Q has %llu layer%s)", path,
                       c->layer, (unsigned long long)ds[0].L, ds[0].L == 1 ? "" : "s");
    if (c->head < -1 || (c->head >= 0 && (hsize_t)c->head >= ds[0].H))
        return LA_FAIL(err, LA_EINVAL, "%s: head %d out of range (/Q has %llu head%s)", path,
                       c->head, (unsigned long long)ds[0].H, ds[0].H == 1 ? "" : "s");
    if (c->T < 1 || (hsize_t)c->T > ds[0].T)
        return LA_FAIL(err, LA_EINVAL, "%s: T = %d but dataset /Q holds %llu positions", path, c->T,
                       (unsigned long long)ds[0].T);
    return LA_OK;
}

static void h5_close_all(hid_t f, struct h5ds ds[3])
{
    for (int i = 0; i < 3; i++)
        h5ds_close(&ds[i]);
    if (f >= 0)
        H5Fclose(f);
}

static void h5_shape(const struct la_cell *c, const struct h5ds ds[3], struct la_data_shape *s)
{
    s->batch = 1;
    s->heads = c->head < 0 ? (int)ds[0].H : 1;
    s->nheads = s->heads;
    s->T = c->T;
    s->d = (int)ds[0].n;
    s->dv = (int)ds[2].n;
}

/* Reads the selected heads' first T positions of one dataset into out (nheads, T, n). */
static int h5_read(const struct la_cell *c, const struct la_data_shape *s, struct h5ds *ds,
                   const char *name, float *out, struct la_error *err)
{
    hsize_t start[4] = {0, 0, 0, 0}, count[4] = {1, 1, 1, 1};
    const int r = ds->rank;
    if (r == 4)
        start[0] = (hsize_t)c->layer;
    if (r >= 3) {
        start[r - 3] = c->head < 0 ? 0 : (hsize_t)c->head;
        count[r - 3] = (hsize_t)s->nheads;
    }
    count[r - 2] = (hsize_t)s->T;
    count[r - 1] = ds->n;
    int st = LA_OK;
    hid_t fsp = H5Dget_space(ds->id);
    const hsize_t total = (hsize_t)s->nheads * (hsize_t)s->T * ds->n;
    hid_t msp = H5Screate_simple(1, &total, NULL);
    if (fsp < 0 || msp < 0 ||
        H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(ds->id, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, out) < 0)
        st = LA_FAIL(err, LA_EIO, "%s: cannot read dataset %s", c->data_path, name);
    if (msp >= 0)
        H5Sclose(msp);
    if (fsp >= 0)
        H5Sclose(fsp);
    if (st != LA_OK)
        return st;
    for (hsize_t i = 0; i < total; i++)
        if (!isfinite(out[i]))
            return LA_FAIL(err, LA_EFORMAT, "%s: dataset %s holds NaN or Inf (element %llu)",
                           c->data_path, name, (unsigned long long)i);
    return LA_OK;
}

/* ---- the API ---------------------------------------------------------------------------- */

int la_data_shape(const struct la_cell *c, struct la_data_shape *s, struct la_error *err)
{
    memset(s, 0, sizeof *s);
    if (c->source == LA_DATA_H5) {
        hid_t f;
        struct h5ds ds[3];
        int st = h5_open_all(c, &f, ds, err);
        if (st == LA_OK)
            h5_shape(c, ds, s);
        h5_close_all(f, ds);
        return st;
    }
    if (c->source != LA_DATA_GAUSSIAN && c->source != LA_DATA_SPHERE)
        return LA_FAIL(err, LA_EINVAL, "unknown data source %d", c->source);
    if (c->T < 1 || c->d < 1 || c->batch < 1 || c->heads < 1)
        return LA_FAIL(err, LA_EINVAL, "bad shape T=%d d=%d batch=%d heads=%d", c->T, c->d,
                       c->batch, c->heads);
    if ((long long)c->batch * c->heads > 1 << 20)
        return LA_FAIL(err, LA_EINVAL, "batch·heads = %lld is too many heads",
                       (long long)c->batch * c->heads);
    s->batch = c->batch;
    s->heads = c->heads;
    s->nheads = c->batch * c->heads;
    s->T = c->T;
    s->d = c->d;
    s->dv = c->dv > 0 ? c->dv : c->d;
    return LA_OK;
}

int la_data_fill(const struct la_cell *c, const struct la_data_shape *s, float *q, float *k,
                 float *v, struct la_error *err)
{
    if (c->source != LA_DATA_H5)
        return fill_synthetic(c, s, q, k, v, err);
    hid_t f;
    struct h5ds ds[3];
    int st = h5_open_all(c, &f, ds, err);
    if (st == LA_OK) {
        struct la_data_shape now;
        h5_shape(c, ds, &now);
        if (now.nheads != s->nheads || now.d != s->d || now.dv != s->dv || now.T != s->T)
            st = LA_FAIL(err, LA_EFORMAT, "%s: file changed while running", c->data_path);
    }
    if (st == LA_OK)
        st = h5_read(c, s, &ds[0], "/Q", q, err);
    if (st == LA_OK)
        st = h5_read(c, s, &ds[1], "/K", k, err);
    if (st == LA_OK)
        st = h5_read(c, s, &ds[2], "/V", v, err);
    h5_close_all(f, ds);
    return st;
}

int la_data_gate(const struct la_cell *c, const struct la_data_shape *s, const char *name, int n,
                 float *g, struct la_error *err)
{
    if (c->source != LA_DATA_H5)
        return LA_FAIL(err, LA_EINVAL, "gates from the data (%s) need data source h5, not %s",
                       name, la_data_source_name(c->source));
    hid_t f;
    struct h5ds ds[3];
    int st = h5_open_all(c, &f, ds, err);
    hid_t d = H5I_INVALID_HID, fsp = H5I_INVALID_HID, msp = H5I_INVALID_HID;
    if (st != LA_OK)
        goto done;
    const int qrank = ds[0].rank, rank = n > 0 ? qrank : qrank - 1;
    const hsize_t w = n > 0 ? (hsize_t)n : 1;
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0 || (d = H5Dopen2(f, name, H5P_DEFAULT)) < 0) {
        st = LA_FAIL(err, LA_EFORMAT, "%s: no dataset %s (docs/data-layout.md, \"Gates\")",
                     c->data_path, name);
        goto done;
    }
    /* /Q's dimensions normalised to (L, H, T), then n: the dataset's are the last `rank` of
     * (L, H, T, n) with n, of (L, H, T) without. */
    const hsize_t qd[4] = {ds[0].L, ds[0].H, ds[0].T, w};
    const int off = (n > 0 ? 4 : 3) - rank;
    hsize_t dims[8] = {0};
    fsp = H5Dget_space(d);
    const int r = fsp >= 0 ? H5Sget_simple_extent_ndims(fsp) : -1;
    if (r == rank && r >= 1 && r <= 4)
        H5Sget_simple_extent_dims(fsp, dims, NULL);
    int same = r == rank && r >= 1;
    for (int j = 0; same && j < rank; j++)
        same = dims[j] == qd[off + j];
    if (!same && n > 0) {
        st = LA_FAIL(err, LA_EFORMAT,
                     "%s: dataset %s must have /Q's dimensions up to T, then m = %d (one gate "
                     "per token and state row)",
                     c->data_path, name, n);
        goto done;
    }
    if (!same) {
        st = LA_FAIL(err, LA_EFORMAT,
                     "%s: dataset %s must have /Q's dimensions up to T (one gate per token)",
                     c->data_path, name);
        goto done;
    }
    hsize_t start[4] = {0, 0, 0, 0}, count[4] = {1, 1, 1, 1};
    /* Axes of the dataset: [layer,] [head,] T [, n]; the head axis is rank − 2 (with n) or
     * rank − 1 (without) counting from the T axis. */
    const int tax = n > 0 ? rank - 2 : rank - 1;
    if (qrank == 4)
        start[0] = (hsize_t)c->layer;
    if (qrank >= 3) {
        start[tax - 1] = c->head < 0 ? 0 : (hsize_t)c->head;
        count[tax - 1] = (hsize_t)s->nheads;
    }
    count[tax] = (hsize_t)s->T;
    if (n > 0)
        count[tax + 1] = w;
    const hsize_t total = (hsize_t)s->nheads * (hsize_t)s->T * w;
    msp = H5Screate_simple(1, &total, NULL);
    if (msp < 0 || H5Sselect_hyperslab(fsp, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        H5Dread(d, H5T_NATIVE_FLOAT, msp, fsp, H5P_DEFAULT, g) < 0) {
        st = LA_FAIL(err, LA_EIO, "%s: cannot read dataset %s", c->data_path, name);
        goto done;
    }
    for (hsize_t i = 0; i < total; i++)
        if (!(g[i] > 0.0f && g[i] <= 1.0f)) {
            st = LA_FAIL(err, LA_EFORMAT,
                         "%s: dataset %s holds %g at element %llu of the selection; gates lie "
                         "in (0, 1]",
                         c->data_path, name, (double)g[i], (unsigned long long)i);
            goto done;
        }
done:
    if (msp >= 0)
        H5Sclose(msp);
    if (fsp >= 0)
        H5Sclose(fsp);
    if (d >= 0)
        H5Dclose(d);
    h5_close_all(f, ds);
    return st;
}
