/* capacity.c — the capacity experiment of capacity.h: drawing a trial's keys and values, the
 * writes through the table's fp32 prefill kernel of the rule, the direct reads from the state,
 * the errors, and the capacity file (HDF5 compound dataset "capacity").
 * Not here: options (harness/cli/cmd_capacity.c), figures (harness/figures/capacity.c).
 */
#include "capacity.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/h5util.h"
#include "../core/sysinfo.h"
#include "../core/util.h"

#define CAP_EPS 1e-6f /* linear_prefill's output normaliser eps (its outputs are not read) */

void la_cap_cell_default(struct la_cap_cell *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->map, sizeof c->map, "elu1");
    snprintf(c->rule, sizeof c->rule, "sum");
    snprintf(c->keys, sizeof c->keys, "gauss");
    snprintf(c->values, sizeof c->values, "onehot");
    snprintf(c->norm, sizeof c->norm, "sum");
    c->S = 64;
    c->dk = 64;
    c->dv = 64;
    c->trials = 3;
    c->seed = 1;
}

static int check_cell(const struct la_cap_cell *c, struct la_error *err)
{
    if (strcmp(c->rule, "sum") && strcmp(c->rule, "delta"))
        return LA_FAIL(err, LA_ENAME, "capacity: rule must be sum or delta, got '%s'", c->rule);
    if (strcmp(c->keys, "gauss") && strcmp(c->keys, "sphere"))
        return LA_FAIL(err, LA_ENAME, "capacity: keys must be gauss or sphere, got '%s'",
                       c->keys);
    if (strcmp(c->values, "onehot") && strcmp(c->values, "gauss"))
        return LA_FAIL(err, LA_ENAME, "capacity: values must be onehot or gauss, got '%s'",
                       c->values);
    if (strcmp(c->norm, "sum") && strcmp(c->norm, "l2"))
        return LA_FAIL(err, LA_ENAME, "capacity: norm must be sum or l2, got '%s'", c->norm);
    if (c->S < 1 || c->S > 1000000)
        return LA_FAIL(err, LA_EINVAL, "capacity: S must be in 1..1000000, got %d", c->S);
    if (c->dk < 1 || c->dk > 4096 || c->dv < 1 || c->dv > 4096)
        return LA_FAIL(err, LA_EINVAL, "capacity: dk and dv must be in 1..4096, got %d, %d",
                       c->dk, c->dv);
    if (c->trials < 1)
        return LA_FAIL(err, LA_EINVAL, "capacity: trials must be >= 1, got %d", c->trials);
    return LA_OK;
}

/* The stream of trial t's data (keys, values, order), and of its feature map's draws: the
 * same keys for every map and rule of one trial. */
static unsigned long trial_seed(unsigned long seed, int trial, int stream)
{
    return (unsigned long)la_splitmix64(la_splitmix64((uint64_t)seed) ^
                                        (((uint64_t)trial << 8) | (uint64_t)stream));
}

static struct featuremap *make_map(const struct la_cap_cell *c, int trial, struct la_error *err)
{
    struct fm_params p;
    featuremap_params_default(&p, c->dk);
    if (c->nu > 0)
        p.nu = c->nu;
    if (c->m > 0)
        p.m = c->m;
    p.seed = trial_seed(c->seed, trial, 2);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        LA_FAIL(err, LA_ENOMEM, "capacity: out of memory");
        return NULL;
    }
    gsl_rng_set(rng, p.seed);
    struct featuremap *fm = featuremap_alloc(c->map, &p, rng, err);
    gsl_rng_free(rng);
    return fm;
}

int la_capacity_trial_state(const struct la_cap_cell *c, int trial, float **phi_out,
                            float **vals_out, float **state_out, int *writes_out, int *dim_out,
                            struct la_error *err)
{
    *phi_out = *vals_out = *state_out = NULL;
    int st = check_cell(c, err);
    if (st != LA_OK)
        return st;
    const int update = strcmp(c->rule, "delta") ? ATTN_UPD_SUM : ATTN_UPD_DELTA;
    const struct attn_kernel *kn =
        attn_kernel_find_update(ATTN_OP_PREFILL, ATTN_IN_FEATURES, 1, update);
    if (!kn)
        return LA_FAIL(err, LA_EINTERNAL, "capacity: no prefill kernel for the %s rule",
                       c->rule);
    struct featuremap *fm = make_map(c, trial, err);
    if (!fm)
        return err ? err->status : LA_EINVAL;
    const int S = c->S, dk = c->dk, dv = c->dv, m = fm->m;
    const int rounds = c->overwrite ? LA_CAP_ROUNDS : 1, W = rounds * S;
    float *keys = malloc((size_t)S * dk * sizeof *keys);
    float *wk = malloc((size_t)W * dk * sizeof *wk);
    float *phi = malloc((size_t)W * m * sizeof *phi);
    float *vals = malloc((size_t)W * dv * sizeof *vals);
    float *y = malloc((size_t)W * dv * sizeof *y);
    float *fwork = malloc((featuremap_work_floats(fm, (size_t)W) + 1) * sizeof *fwork);
    const size_t sf = attn_state_floats(kn, W, m, dv);
    const size_t wsf = attn_workspace_floats(kn, W, m, dv, 1, 0, 1);
    float *state = calloc(sf, sizeof *state);
    float *work = malloc((wsf + 1) * sizeof *work);
    int *order = malloc((size_t)S * sizeof *order);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!keys || !wk || !phi || !vals || !y || !fwork || !state || !work || !order || !rng) {
        st = LA_FAIL(err, LA_ENOMEM, "capacity: out of memory (S = %d, dim φ = %d)", S, m);
        goto done;
    }
    gsl_rng_set(rng, trial_seed(c->seed, trial, 1));
    /* The S distinct keys. */
    for (int i = 0; i < S; i++) {
        double nrm = 0.0;
        for (int j = 0; j < dk; j++) {
            const double x = gsl_ran_gaussian_ziggurat(rng, 1.0);
            keys[(size_t)i * dk + j] = (float)x;
            nrm += x * x;
        }
        if (!strcmp(c->keys, "sphere"))
            for (int j = 0; j < dk; j++)
                keys[(size_t)i * dk + j] = (float)(keys[(size_t)i * dk + j] / sqrt(nrm));
    }
    /* The writes: round r writes every key once with a fresh value (round 0 in key order,
     * later rounds shuffled). */
    for (int i = 0; i < S; i++)
        order[i] = i;
    for (int r = 0; r < rounds; r++) {
        if (r > 0)
            gsl_ran_shuffle(rng, order, (size_t)S, sizeof *order);
        for (int i = 0; i < S; i++) {
            const size_t w = (size_t)r * S + i;
            memcpy(wk + w * dk, keys + (size_t)order[i] * dk, (size_t)dk * sizeof *wk);
            float *v = vals + w * dv;
            if (!strcmp(c->values, "onehot")) {
                memset(v, 0, (size_t)dv * sizeof *v);
                v[gsl_rng_uniform_int(rng, (unsigned long)dv)] = 1.0f;
            } else {
                for (int j = 0; j < dv; j++)
                    v[j] = (float)gsl_ran_gaussian_ziggurat(rng, 1.0);
            }
        }
    }
    if ((st = featuremap_apply(fm, FM_KEY, wk, (size_t)W, phi, fwork)) != LA_OK) {
        st = LA_FAIL(err, st, "capacity: feature map %s failed", c->map);
        goto done;
    }
    /* φ̂ = φ / N(φ), N the sum of the entries or the Euclidean norm. */
    const int l2 = !strcmp(c->norm, "l2");
    for (int w = 0; w < W; w++) {
        float *f = phi + (size_t)w * m;
        double s = 0.0;
        for (int i = 0; i < m; i++)
            s += l2 ? (double)f[i] * f[i] : f[i];
        const double nrm = l2 ? sqrt(s) : s;
        if (!(nrm > 0.0) || !isfinite(nrm)) {
            st = LA_FAIL(err, LA_ENUMERIC,
                         "capacity: %s features of write %d have %s %g: cannot normalise", c->map,
                         w, l2 ? "norm" : "sum", nrm);
            goto done;
        }
        for (int i = 0; i < m; i++)
            f[i] = (float)(f[i] / nrm);
    }
    struct attn_args a;
    memset(&a, 0, sizeof a);
    a.q = phi;
    a.k = phi;
    a.v = vals;
    a.y = y;
    a.T = W;
    a.dk = m;
    a.dv = dv;
    a.causal = 1;
    a.eps = CAP_EPS;
    a.threads = 1;
    a.work = work;
    a.state = state;
    a.gate = NULL;
    a.gate_const = 1.0f; /* β = 1 */
    a.recur_norm = ATTN_RN_NONE;
    kn->run(&a);
    *writes_out = W;
    *dim_out = m;
    *phi_out = phi;
    *vals_out = vals;
    *state_out = state;
    phi = vals = state = NULL;
done:
    gsl_rng_free(rng);
    featuremap_free(fm);
    free(keys);
    free(wk);
    free(phi);
    free(vals);
    free(y);
    free(fwork);
    free(state);
    free(work);
    free(order);
    return st;
}

/* The reads of one trial: the last round's writes are the targets (each key's latest value). */
static int trial_errors(const struct la_cap_cell *c, const float *phi, const float *vals,
                        const float *state, int W, int m, double *mse, double *acc,
                        struct la_error *err)
{
    const int S = c->S, dv = c->dv;
    double *yv = malloc((size_t)dv * sizeof *yv);
    if (!yv)
        return LA_FAIL(err, LA_ENOMEM, "capacity: out of memory");
    double se = 0.0;
    long hits = 0;
    for (int w = W - S; w < W; w++) {
        const float *f = phi + (size_t)w * m, *v = vals + (size_t)w * dv;
        double ff = 0.0;
        for (int c2 = 0; c2 < dv; c2++)
            yv[c2] = 0.0;
        for (int i = 0; i < m; i++) {
            const double fi = f[i];
            if (fi == 0.0)
                continue;
            ff += fi * fi;
            const float *row = state + (size_t)i * dv;
            for (int c2 = 0; c2 < dv; c2++)
                yv[c2] += fi * row[c2];
        }
        int best = 0, target = 0;
        for (int c2 = 0; c2 < dv; c2++) {
            yv[c2] /= ff;
            const double d = yv[c2] - v[c2];
            se += d * d;
            if (yv[c2] > yv[best])
                best = c2;
            if (v[c2] > v[target])
                target = c2;
        }
        hits += best == target;
    }
    free(yv);
    *mse = se / ((double)S * dv);
    *acc = (double)hits / S;
    if (!isfinite(*mse))
        return LA_FAIL(err, LA_ENUMERIC, "capacity: %s %s reads are not finite at S = %d",
                       c->map, c->rule, S);
    return LA_OK;
}

int la_capacity_run(const struct la_cap_cell *c, struct la_cap_row *row, struct la_error *err)
{
    memset(row, 0, sizeof *row);
    row->c = *c;
    if (c->nu > 0)
        snprintf(row->label, sizeof row->label, "%.16s nu=%d", c->map, c->nu);
    else if (c->m > 0)
        snprintf(row->label, sizeof row->label, "%.16s m=%d", c->map, c->m);
    else
        snprintf(row->label, sizeof row->label, "%s", c->map);
    double sum = 0.0, lo = INFINITY, hi = -INFINITY, accsum = 0.0;
    for (int t = 0; t < c->trials; t++) {
        float *phi, *vals, *state;
        int W, m;
        int st = la_capacity_trial_state(c, t, &phi, &vals, &state, &W, &m, err);
        if (st != LA_OK)
            return st;
        double mse = NAN, acc = NAN;
        st = trial_errors(c, phi, vals, state, W, m, &mse, &acc, err);
        free(phi);
        free(vals);
        free(state);
        if (st != LA_OK)
            return st;
        row->dim = m;
        row->writes = W;
        sum += mse;
        accsum += acc;
        lo = fmin(lo, mse);
        hi = fmax(hi, mse);
    }
    row->mse = sum / c->trials;
    row->mse_lo = lo;
    row->mse_hi = hi;
    row->acc = strcmp(c->values, "onehot") ? NAN : accsum / c->trials;
    return LA_OK;
}

/* ---- the capacity file ---------------------------------------------------------------------- */

#define CAP_DSET "capacity"

static hid_t str_type(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t >= 0 && (H5Tset_size(t, n) < 0 || H5Tset_strpad(t, H5T_STR_NULLTERM) < 0)) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

/* The row's compound type (memory layout = file layout). */
static hid_t row_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(struct la_cap_row));
    hid_t name = str_type(LA_NAME_LEN), word = str_type(LA_CAP_WORD);
    herr_t e = t < 0 || name < 0 || word < 0 ? -1 : 0;
#define INS(nm, field, type)                                                                     \
    if (e >= 0)                                                                                  \
    e = H5Tinsert(t, nm, offsetof(struct la_cap_row, field), type)
    INS("map", c.map, name);
    INS("label", label, name);
    INS("nu", c.nu, H5T_NATIVE_INT);
    INS("m", c.m, H5T_NATIVE_INT);
    INS("dim", dim, H5T_NATIVE_INT);
    INS("rule", c.rule, word);
    INS("keys", c.keys, word);
    INS("values", c.values, word);
    INS("norm", c.norm, word);
    INS("overwrite", c.overwrite, H5T_NATIVE_INT);
    INS("S", c.S, H5T_NATIVE_INT);
    INS("writes", writes, H5T_NATIVE_INT);
    INS("dk", c.dk, H5T_NATIVE_INT);
    INS("dv", c.dv, H5T_NATIVE_INT);
    INS("trials", c.trials, H5T_NATIVE_INT);
    INS("seed", c.seed, H5T_NATIVE_ULONG);
    INS("mse", mse, H5T_NATIVE_DOUBLE);
    INS("mse_lo", mse_lo, H5T_NATIVE_DOUBLE);
    INS("mse_hi", mse_hi, H5T_NATIVE_DOUBLE);
    INS("acc", acc, H5T_NATIVE_DOUBLE);
#undef INS
    if (name >= 0)
        H5Tclose(name);
    if (word >= 0)
        H5Tclose(word);
    if (e < 0) {
        if (t >= 0)
            H5Tclose(t);
        return -1;
    }
    return t;
}

/* A fixed-length string attribute of loc; negative on failure. */
static int put_str_attr(hid_t loc, const char *name, const char *value)
{
    hid_t sp = H5Screate(H5S_SCALAR), t = str_type(strlen(value) + 1), a = -1;
    int rc = -1;
    if (sp >= 0 && t >= 0 && (a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
        rc = H5Awrite(a, t, value) < 0 ? -1 : 0;
    if (a >= 0)
        H5Aclose(a);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

int la_capacity_write(const char *path, const struct la_cap_row *rows, size_t n,
                      struct la_error *err)
{
    hid_t f = -1, sp = -1, t = -1, ds = -1;
    int st = LA_OK;
    H5E_BEGIN_TRY
    {
        f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    }
    H5E_END_TRY;
    if (f < 0)
        return LA_FAIL(err, LA_EIO, "capacity: cannot create %s", path);
    const hsize_t dims[1] = {(hsize_t)n};
    sp = H5Screate_simple(1, dims, NULL);
    t = row_type();
    ds = sp >= 0 && t >= 0 ? H5Dcreate2(f, CAP_DSET, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                           : -1;
    if (ds < 0 || (n && H5Dwrite(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0))
        st = LA_FAIL(err, LA_EIO, "capacity: cannot write the rows of %s", path);
    /* Provenance, read by `linattn plot` for the caption. */
    char cpu[160], utc[32];
    la_cpu_model(cpu, sizeof cpu);
    const time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || !strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(utc, sizeof utc, "?");
    const char *const attrs[][2] = {
        {"kind", "capacity"},        {"tool_version", la_version()}, {"git_commit", la_git_commit()},
        {"created_utc", utc},        {"cpu_model", cpu},             {"threads", "1"},
    };
    for (size_t i = 0; st == LA_OK && i < sizeof attrs / sizeof attrs[0]; i++)
        if (put_str_attr(f, attrs[i][0], attrs[i][1]) < 0)
            st = LA_FAIL(err, LA_EIO, "capacity: cannot write the attribute %s of %s", attrs[i][0],
                         path);
    if (ds >= 0)
        H5Dclose(ds);
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (H5Fclose(f) < 0 && st == LA_OK)
        st = LA_FAIL(err, LA_EIO, "capacity: cannot close %s", path);
    return st;
}

/* Whether path holds the capacity dataset, read in this process (see la_capacity_is_file). */
static int is_capacity_here(const char *path)
{
    int yes = 0;
    H5E_BEGIN_TRY
    {
        hid_t f = la_h5_open_readonly(path);
        if (f >= 0) {
            yes = H5Lexists(f, CAP_DSET, H5P_DEFAULT) > 0;
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    return yes;
}

/* libhdf5 crashes or loops on some damaged files (harness/store/h5io.c, "probing"), and plot
 * asks this of any file it is given: the open and the full read run first in a forked child,
 * bounded in time, and only a child that finished with the rows read lets this process say yes.
 * A file that fails the probe is "not a capacity file", and the results store then reports it
 * the way it reports every damaged file. */
int la_capacity_is_file(const char *path)
{
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    struct sigaction chld, old_chld;
    memset(&chld, 0, sizeof chld);
    chld.sa_handler = SIG_DFL;
    sigemptyset(&chld.sa_mask);
    const int chld_set = sigaction(SIGCHLD, &chld, &old_chld) == 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, STDERR_FILENO);
        signal(SIGALRM, SIG_DFL);
        alarm(5 + (unsigned)(sb.st_size / (20 << 20)));
        struct la_cap_row *rows = NULL;
        size_t n = 0;
        const int ok = is_capacity_here(path) && la_capacity_read(path, &rows, &n, NULL) == LA_OK;
        _exit(ok ? 0 : 1);
    }
    int status = 0, yes = 0;
    if (pid > 0) {
        pid_t w;
        while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
            ;
        yes = w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    }
    if (chld_set)
        sigaction(SIGCHLD, &old_chld, NULL);
    return yes;
}

int la_capacity_attr(const char *path, const char *name, char *buf, size_t cap,
                     struct la_error *err)
{
    if (cap)
        buf[0] = '\0';
    char *v = NULL;
    int rc = -1;
    H5E_BEGIN_TRY
    {
        hid_t f = la_h5_open_readonly(path);
        if (f >= 0) {
            rc = la_h5_read_str_attr(f, name, &v);
            H5Fclose(f);
        }
    }
    H5E_END_TRY;
    if (rc != 0 || !v) {
        free(v);
        return LA_FAIL(err, LA_EFORMAT, "%s: no attribute '%s'", path, name);
    }
    if (cap)
        snprintf(buf, cap, "%s", v);
    free(v);
    return LA_OK;
}

int la_capacity_read(const char *path, struct la_cap_row **rows_out, size_t *n_out,
                     struct la_error *err)
{
    *rows_out = NULL;
    *n_out = 0;
    int st = LA_OK;
    hid_t f = -1, ds = -1, sp = -1, t = -1;
    H5E_BEGIN_TRY
    {
        f = la_h5_open_readonly(path);
        ds = f >= 0 ? H5Dopen2(f, CAP_DSET, H5P_DEFAULT) : -1;
    }
    H5E_END_TRY;
    if (ds < 0) {
        st = LA_FAIL(err, LA_EFORMAT, "%s: not a capacity file (no dataset '%s')", path,
                     CAP_DSET);
        goto done;
    }
    sp = H5Dget_space(ds);
    hsize_t n = 0;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1 ||
        H5Sget_simple_extent_dims(sp, &n, NULL) < 0) {
        st = LA_FAIL(err, LA_EFORMAT, "%s: the capacity dataset is not one row list", path);
        goto done;
    }
    struct la_cap_row *rows = calloc(n ? (size_t)n : 1, sizeof *rows);
    t = row_type();
    if (!rows || t < 0) {
        free(rows);
        st = LA_FAIL(err, LA_ENOMEM, "capacity: out of memory reading %s", path);
        goto done;
    }
    herr_t e = 0;
    H5E_BEGIN_TRY
    {
        e = n ? H5Dread(ds, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) : 0;
    }
    H5E_END_TRY;
    if (e < 0) {
        free(rows);
        st = LA_FAIL(err, LA_EFORMAT, "%s: cannot read the capacity rows", path);
        goto done;
    }
    *rows_out = rows;
    *n_out = (size_t)n;
done:
    if (t >= 0)
        H5Tclose(t);
    if (sp >= 0)
        H5Sclose(sp);
    if (ds >= 0)
        H5Dclose(ds);
    if (f >= 0)
        H5Fclose(f);
    return st;
}
