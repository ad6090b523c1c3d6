/* cmd_fit.c — `linattn fit`: trains the `learned` feature map per layer and head of captured
 * attention (`linattn capture`, docs/data-layout.md) so that linear attention mimics each head's
 * causal softmax attention, and writes a per-head weights file (docs/data-layout.md, "Learned
 * feature-map weights") that the `learned` map reads.
 *
 * Reads the training captures (one or more: each sequence is one capture) and the optional test
 * capture, fits the selected heads one after another with harness/model/fit.c (the objective,
 * its gradient, Adam and the schedule are documented in fit.h), prints train and test measures
 * per head on stdout and a progress line with an ETA on stderr, and writes the weights to
 * OUT.tmpPID, renamed to OUT when complete.  Bad input (a capture that lacks a requested layer
 * or head, captures of different shapes, a non-finite loss, an output that cannot be created)
 * gives one line on stderr and exit 2 with no output file; SIGINT or SIGTERM stops at the next
 * step, removes the temporary file and exits 128 + the signal.
 *
 * Not here: the fitting itself (harness/model/fit.c), reading the weights (featuremaps/
 * learned.c).  Tests: tests/fit_cli.sh (errors, SIGINT, the written layout, a head-matched run
 * through the h5 data source), tests/test_fit.c (the numerics).
 */
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/h5util.h"
#include "../core/status.h"
#include "../core/sysinfo.h"
#include "../core/timing.h"
#include "../engine/progress.h"
#include "../model/fit.h"
#include "commands.h"
#include "options.h"

#define MAX_TRAIN 64 /* training captures */

/* ---- captures ----------------------------------------------------------------------------- */

struct capture {
    const char *path;
    int L, H, T, d;
    float *q, *k, *v; /* (L, H, T, d) */
};

static void capture_free(struct capture *c)
{
    free(c->q);
    free(c->k);
    free(c->v);
    c->q = c->k = c->v = NULL;
}

static int read_tensor(hid_t f, const char *path, const char *name, struct capture *c, float **out,
                       struct la_error *err)
{
    hid_t ds = H5Dopen2(f, name, H5P_DEFAULT);
    if (ds < 0)
        return LA_FAIL(err, LA_EFORMAT,
                       "capture '%s' has no dataset /%s (linattn capture writes "
                       "/Q, /K, /V of shape (L, H, T, head_size))",
                       path, name);
    hid_t sp = H5Dget_space(ds);
    hsize_t g[4] = {0, 0, 0, 0};
    const int rank = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    if (rank == 4)
        H5Sget_simple_extent_dims(sp, g, NULL);
    int st = LA_OK;
    if (rank != 4 || g[0] < 1 || g[1] < 1 || g[2] < 1 || g[3] < 1 || g[2] > 1 << 16 ||
        g[3] > 1 << 12 || g[0] * g[1] > 1 << 16) {
        st = LA_FAIL(err, LA_EFORMAT,
                     "capture '%s': /%s must have shape (L, H, T, head_size) (rank %d found)", path,
                     name, rank);
    } else if (c->L &&
               ((int)g[0] != c->L || (int)g[1] != c->H || (int)g[2] != c->T || (int)g[3] != c->d)) {
        st =
            LA_FAIL(err, LA_EFORMAT,
                    "capture '%s': /%s has shape (%d, %d, %d, %d), /Q (%d, %d, "
                    "%d, %d)",
                    path, name, (int)g[0], (int)g[1], (int)g[2], (int)g[3], c->L, c->H, c->T, c->d);
    } else {
        c->L = (int)g[0];
        c->H = (int)g[1];
        c->T = (int)g[2];
        c->d = (int)g[3];
        const size_t n = (size_t)g[0] * g[1] * g[2] * g[3];
        *out = malloc(n * sizeof **out);
        if (!*out)
            st = LA_FAIL(err, LA_ENOMEM, "out of memory reading /%s of '%s'", name, path);
        else if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
            st = LA_FAIL(err, LA_EIO, "capture '%s': cannot read /%s", path, name);
        for (size_t i = 0; st == LA_OK && i < n; i++)
            if (!isfinite((*out)[i]))
                st = LA_FAIL(err, LA_EFORMAT, "capture '%s': /%s has a non-finite value", path,
                             name);
    }
    if (sp >= 0)
        H5Sclose(sp);
    H5Dclose(ds);
    return st;
}

static int capture_read(const char *path, struct capture *c, struct la_error *err)
{
    memset(c, 0, sizeof *c);
    c->path = path;
    if (access(path, R_OK) != 0)
        return LA_FAIL(err, LA_EIO, "cannot read capture '%s': %s", path, strerror(errno));
    int st = LA_OK;
    H5E_BEGIN_TRY
    {
        if (H5Fis_hdf5(path) <= 0) {
            st = LA_FAIL(err, LA_EFORMAT, "capture '%s' is not an HDF5 file", path);
        } else {
            hid_t f = la_h5_open_readonly(path);
            if (f < 0) {
                st = LA_FAIL(err, LA_EIO, "cannot open capture '%s' with HDF5", path);
            } else {
                st = read_tensor(f, path, "Q", c, &c->q, err);
                if (st == LA_OK)
                    st = read_tensor(f, path, "K", c, &c->k, err);
                if (st == LA_OK)
                    st = read_tensor(f, path, "V", c, &c->v, err);
                H5Fclose(f);
            }
        }
    }
    H5E_END_TRY;
    if (st != LA_OK)
        capture_free(c);
    return st;
}

/* The sequence of (layer, head) in capture c. */
static struct la_fit_seq capture_seq(const struct capture *c, int l, int h)
{
    const size_t off = ((size_t)l * c->H + (size_t)h) * (size_t)c->T * (size_t)c->d;
    return (struct la_fit_seq){c->q + off, c->k + off, c->v + off, c->T, NULL};
}

/* ---- index lists: "0,2,5", "0-3", "all" --------------------------------------------------- */

/* Parses spec into sel[0..n) (a 0/1 mask); entries must be < n.  Returns 0 or 1 with msg. */
static int parse_list(const char *spec, int n, const char *what, char *sel, char *msg, size_t cap)
{
    memset(sel, 0, (size_t)n);
    if (!spec || !strcmp(spec, "all")) {
        memset(sel, 1, (size_t)n);
        return 0;
    }
    const char *p = spec;
    while (*p) {
        char *end;
        errno = 0;
        long a = strtol(p, &end, 10), b = a;
        if (end == p || errno || a < 0)
            goto bad;
        p = end;
        if (*p == '-') {
            const char *q = p + 1;
            b = strtol(q, &end, 10);
            if (end == q || errno || b < a)
                goto bad;
            p = end;
        }
        if (b >= n) {
            snprintf(msg, cap, "the captures have %d %s%s (0..%d): no %s %ld", n, what,
                     n == 1 ? "" : "s", n - 1, what, b);
            return 1;
        }
        for (long i = a; i <= b; i++)
            sel[i] = 1;
        if (*p == ',')
            p++;
        else if (*p)
            goto bad;
    }
    return 0;
bad:
    snprintf(msg, cap, "--%ss '%s': expected indices and ranges like 0,2,4-7 or 'all'", what, spec);
    return 1;
}

/* ---- the weights file ----------------------------------------------------------------------- */

static int attr_write(hid_t obj, const char *name, hid_t ftype, hid_t mtype, const void *v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = sp >= 0 ? H5Acreate2(obj, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT) : -1;
    herr_t st = a < 0 ? -1 : H5Awrite(a, mtype, v);
    if (a >= 0 && H5Aclose(a) < 0)
        st = -1;
    if (sp >= 0)
        H5Sclose(sp);
    return st < 0 ? -1 : 0;
}

static int attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    int rc = -1;
    if (t >= 0 && H5Tset_size(t, H5T_VARIABLE) >= 0 && H5Tset_cset(t, H5T_CSET_UTF8) >= 0)
        rc = attr_write(obj, name, t, t, &value);
    if (t >= 0)
        H5Tclose(t);
    return rc;
}

static int write_ds(hid_t f, const char *name, int rank, const hsize_t *dims, hid_t ftype,
                    hid_t mtype, const void *data, const char *axes)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t ds = sp >= 0 ? H5Dcreate2(f, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT) : -1;
    int rc = ds >= 0 && H5Dwrite(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0 &&
                     attr_str(ds, "axes", axes) == 0
                 ? 0
                 : -1;
    if (ds >= 0 && H5Dclose(ds) < 0)
        rc = -1;
    if (sp >= 0)
        H5Sclose(sp);
    return rc;
}

struct fit_out {
    int L, H, m, d;
    float *Wq, *bq, *Wk, *bk; /* (L, H, m, d), (L, H, m) */
    int32_t *fitted;          /* (L, H) */
    double *meas[6];          /* (L, H) each: train loss, kl, err; test loss, kl, err */
};

static const char *const meas_names[6] = {"train_loss", "train_kl", "train_err",
                                          "test_loss",  "test_kl",  "test_err"};

struct fit_meta {
    const char *activation, *loss, *init, *train, *test;
    int steps;
    int64_t train_tokens; /* positions of every training capture together */
    double lr, mse_weight, seconds;
    uint64_t seed;
};

static int write_contents(hid_t f, const struct fit_out *o, const struct fit_meta *mt)
{
    const hsize_t w[4] = {(hsize_t)o->L, (hsize_t)o->H, (hsize_t)o->m, (hsize_t)o->d};
    const char *wax = "layer, head, unit, channel", *bax = "layer, head, unit",
               *hax = "layer, head";
    if (write_ds(f, "W_q", 4, w, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, o->Wq, wax) ||
        write_ds(f, "b_q", 3, w, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, o->bq, bax) ||
        write_ds(f, "W_k", 4, w, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, o->Wk, wax) ||
        write_ds(f, "b_k", 3, w, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, o->bk, bax) ||
        write_ds(f, "fitted", 2, w, H5T_STD_I32LE, H5T_NATIVE_INT32, o->fitted, hax))
        return -1;
    for (int i = 0; i < 6; i++)
        if (write_ds(f, meas_names[i], 2, w, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, o->meas[i], hax))
            return -1;
    char utc[64];
    la_utc_now(utc, sizeof utc);
    const int32_t m = o->m, steps = mt->steps;
    if (attr_str(f, "activation", mt->activation) || attr_str(f, "loss", mt->loss) ||
        attr_str(f, "init", mt->init) || attr_str(f, "train", mt->train) ||
        attr_str(f, "test", mt->test) || attr_write(f, "m", H5T_STD_I32LE, H5T_NATIVE_INT32, &m) ||
        attr_write(f, "steps", H5T_STD_I32LE, H5T_NATIVE_INT32, &steps) ||
        attr_write(f, "train_tokens", H5T_STD_I64LE, H5T_NATIVE_INT64, &mt->train_tokens) ||
        attr_write(f, "lr", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &mt->lr) ||
        attr_write(f, "mse_weight", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &mt->mse_weight) ||
        attr_write(f, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &mt->seed) ||
        attr_write(f, "fit_seconds", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &mt->seconds) ||
        attr_str(f, "tool_version", la_version()) || attr_str(f, "git_commit", la_git_commit()) ||
        attr_str(f, "created_utc", utc))
        return -1;
    return 0;
}

/* ---- signals and progress ----------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    interrupted = sig;
}

struct progress {
    int tty;
    double t0, last;
    long done, total; /* steps over all heads */
    int head, nheads, layer, hidx, steps, step;
};

static void show(struct progress *p, double loss, int final)
{
    const double now = la_now(), el = now - p->t0;
    char eta[32], elapsed[32];
    la_format_duration(el, elapsed, sizeof elapsed);
    la_format_duration(p->done > 0 ? el / (double)p->done * (double)(p->total - p->done) : NAN, eta,
                       sizeof eta);
    if (p->tty)
        fprintf(stderr, "\r[%d/%d] layer %d head %d  step %ld/%d  loss %.4g  elapsed %s  ETA %s ",
                p->head, p->nheads, p->layer, p->hidx, (long)p->step, p->steps, loss, elapsed, eta);
    else if (final)
        fprintf(stderr, "[%d/%d] layer %d head %d fitted  elapsed %s  ETA %s\n", p->head, p->nheads,
                p->layer, p->hidx, elapsed, eta);
    p->last = now;
}

static int on_step(void *ctx, int step, double loss)
{
    struct progress *p = ctx;
    p->done++;
    p->step = step;
    if (p->tty && (la_now() - p->last > 0.25 || step == p->steps))
        show(p, loss, 0);
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

static const char *const act_words[] = {"exp_pair", "softmax_pair", "relu", NULL};
static const char *const loss_words[] = {"xent", "mse", "both", NULL};
static const char *const init_words[] = {"random", "identity", NULL};

int cmd_fit(int argc, char **argv)
{
    const char *layers = NULL, *heads = NULL, *test_path = NULL, *out_path = NULL;
    int act = -1, loss = -1, init = LA_FIT_INIT_RANDOM, m = 0, steps = 1000;
    double lr = 0.05, mse_weight = 1.0;
    long long seed = 1;
    const struct la_option options[] = {
        LA_OPT_STRING("layers", 0, &layers, "L..",
                      "layers to fit: indices and ranges like 0,2-4, or all (default all)"),
        LA_OPT_STRING("heads", 0, &heads, "H..",
                      "query heads to fit in each of those layers (default all)"),
        {.name = "activation",
         .kind = LA_OPTK_CHOICE,
         .flags = LA_OPT_REQUIRED,
         .target = &act,
         .choices = act_words,
         .help = "the learned map's activation (required): exp_pair (Hedgehog), softmax_pair, "
                 "relu (T2R)"},
        {.name = "m",
         .kind = LA_OPTK_INT,
         .flags = LA_OPT_REQUIRED,
         .target = &m,
         .argname = "M",
         .imin = 1,
         .imax = 4096,
         .help = "units per map (required): 2M features for the pair activations, M for relu"},
        {.name = "loss",
         .kind = LA_OPTK_CHOICE,
         .flags = LA_OPT_REQUIRED,
         .target = &loss,
         .choices = loss_words,
         .help = "xent (Hedgehog: cross-entropy of the attention weights), mse (LoLCATs: of the "
                 "attention outputs) or both (xent + W·mse, W = --mse-weight) (required)"},
        LA_OPT_INT("steps", 0, &steps, "N", 1, 10000000, "Adam steps per head (default 1000)"),
        LA_OPT_REAL("lr", 0, &lr, "LR", 1e-12, 100.0,
                    "peak learning rate (default 0.05): linear warm-up over steps/20, then "
                    "cosine decay to LR/10"),
        LA_OPT_REAL("mse-weight", 0, &mse_weight, "W", 0.0, 1e12,
                    "--loss both: the weight of the mse term (default 1)"),
        LA_OPT_CHOICE("init", 0, &init, init_words,
                      "initial weights: random (N(0, 1)·d^-1/4, the default) or identity; the "
                      "query and key maps start equal"),
        LA_OPT_INT64("seed", 0, &seed, "S", 0, 4294967295LL,
                     "seed of the random initial weights (default 1)"),
        LA_OPT_STRING("test", 0, &test_path, "CAPTURE2.h5",
                      "a capture made with another seed: test loss, attention KL and output error "
                      "per head"),
        {.name = "output",
         .short_name = 'o',
         .kind = LA_OPTK_STRING,
         .flags = LA_OPT_REQUIRED,
         .target = &out_path,
         .argname = "WEIGHTS.h5",
         .help = "the weights file (required), written to a temporary name and renamed when "
                 "complete"},
        LA_OPT_END,
    };
    const struct la_command cmd = {
        .prog = "linattn fit",
        .args = "CAPTURE.h5 [CAPTURE.h5 ...]",
        .intro = "Fits the learned feature map, separate query and key maps per layer and head, "
                 "so that linear attention mimics each head's causal softmax attention in the "
                 "captures (linattn capture; each capture is one training sequence), by Adam on "
                 "the whole training set per head. Prints train (and with --test, test) loss, "
                 "attention KL (nats, mean over rows) and relative output error per head, and "
                 "writes /W_q, /b_q, /W_k, /b_k (L, H, m, d) for the learned map "
                 "(docs/data-layout.md). Deterministic for a seed.",
        .opts = options,
        .outro = "Exit status: 0 ok, 2 bad input (a missing layer or head, captures of "
                 "different shapes, a non-finite loss, an output that cannot be created), 1 "
                 "other, 128 + N after signal N (130 SIGINT).",
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (nargs == 0) {
        fprintf(stderr, "linattn fit: no capture given (linattn fit --help)\n");
        return 2;
    }
    if (nargs > MAX_TRAIN) {
        fprintf(stderr, "linattn fit: at most %d training captures (%d given)\n", MAX_TRAIN, nargs);
        return 2;
    }

    struct la_error err;
    la_error_clear(&err);
    struct capture train[MAX_TRAIN], test;
    memset(&test, 0, sizeof test);
    int ntrain = 0, rc = LA_OK, have_tmp = 0, nsel = 0;
    char tmp[PATH_MAX], *lsel = NULL, *hsel = NULL, msg[256];
    struct fit_out o;
    memset(&o, 0, sizeof o);
    double *theta = NULL;
    struct sigaction old[2], sa;
    const int sigs[2] = {SIGINT, SIGTERM};
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = (int)(SA_RESETHAND | SA_RESTART);
    interrupted = 0;
    for (int i = 0; i < 2; i++)
        if (sigaction(sigs[i], NULL, &old[i]) != 0 || old[i].sa_handler == SIG_IGN)
            old[i].sa_handler = SIG_IGN;
        else
            sigaction(sigs[i], &sa, NULL);
    la_cancel_watch(&interrupted);

    for (int i = 0; i < nargs; i++) {
        rc = capture_read(argv[i], &train[i], &err);
        if (rc)
            goto fail;
        ntrain++;
        if (train[i].L != train[0].L || train[i].H != train[0].H || train[i].d != train[0].d) {
            rc = LA_FAIL(&err, LA_EFORMAT,
                         "captures '%s' (%d layers x %d heads x head_size %d) and '%s' (%d x %d "
                         "x %d) differ in shape",
                         argv[0], train[0].L, train[0].H, train[0].d, argv[i], train[i].L,
                         train[i].H, train[i].d);
            goto fail;
        }
    }
    const int L = train[0].L, H = train[0].H, d = train[0].d;
    if (test_path) {
        rc = capture_read(test_path, &test, &err);
        if (rc)
            goto fail;
        if (test.L != L || test.H != H || test.d != d) {
            rc = LA_FAIL(&err, LA_EFORMAT,
                         "test capture '%s' (%d layers x %d heads x head_size %d) differs in "
                         "shape from '%s' (%d x %d x %d)",
                         test_path, test.L, test.H, test.d, argv[0], L, H, d);
            goto fail;
        }
    }
    lsel = malloc((size_t)L);
    hsel = malloc((size_t)H);
    if (!lsel || !hsel) {
        rc = LA_FAIL(&err, LA_ENOMEM, "out of memory");
        goto fail;
    }
    if (parse_list(layers, L, "layer", lsel, msg, sizeof msg) ||
        parse_list(heads, H, "head", hsel, msg, sizeof msg)) {
        rc = LA_FAIL(&err, LA_EINVAL, "%s", msg);
        goto fail;
    }
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++)
            nsel += lsel[l] && hsel[h];

    /* The output: created now (so that an unwritable path fails before any fitting), filled
     * and renamed at the end. */
    int w = snprintf(tmp, sizeof tmp, "%s.tmp%ld", out_path, (long)getpid());
    if (w < 0 || (size_t)w >= sizeof tmp) {
        rc = LA_FAIL(&err, LA_EINVAL, "output path too long: %s", out_path);
        goto fail;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
    if (fd < 0) {
        rc = LA_FAIL(&err, LA_EIO, "cannot create the weights file '%s' (as '%s'): %s", out_path,
                     tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    have_tmp = 1;

    o.L = L;
    o.H = H;
    o.m = m;
    o.d = d;
    const size_t nw = (size_t)L * H * m * d, nb = (size_t)L * H * m, nh = (size_t)L * H;
    o.Wq = calloc(nw, sizeof *o.Wq);
    o.Wk = calloc(nw, sizeof *o.Wk);
    o.bq = calloc(nb, sizeof *o.bq);
    o.bk = calloc(nb, sizeof *o.bk);
    o.fitted = calloc(nh, sizeof *o.fitted);
    int oom = !o.Wq || !o.Wk || !o.bq || !o.bk || !o.fitted;
    for (int i = 0; i < 6; i++) {
        o.meas[i] = malloc(nh * sizeof *o.meas[i]);
        oom |= !o.meas[i];
        for (size_t j = 0; !oom && j < nh; j++)
            o.meas[i][j] = NAN;
    }
    theta = malloc(la_fit_nparams(m, d) * sizeof *theta);
    if (oom || !theta) {
        rc = LA_FAIL(&err, LA_ENOMEM, "out of memory for the weights");
        goto fail;
    }

    const struct la_fit_opts fo = {.act = act,
                                   .loss = loss,
                                   .m = m,
                                   .steps = steps,
                                   .lr = lr,
                                   .mse_weight = mse_weight,
                                   .init = init,
                                   .seed = (unsigned long)seed};
    struct progress pg = {.tty = isatty(STDERR_FILENO),
                          .t0 = la_now(),
                          .total = (long)nsel * steps,
                          .nheads = nsel,
                          .steps = steps};
    printf("fitting %d head%s (%d layer%s x %d head%s, head_size %d) on %d capture%s of %d "
           "positions: %s, m = %d, loss %s, %d steps, lr %g%s%s\n",
           nsel, nsel == 1 ? "" : "s", L, L == 1 ? "" : "s", H, H == 1 ? "" : "s", d, ntrain,
           ntrain == 1 ? "" : "s", train[0].T, act_words[act], m, loss_words[loss], steps, lr,
           test_path ? ", test " : "", test_path ? test_path : "");
    printf("%5s %4s  %10s %10s %10s  %10s %10s %10s\n", "layer", "head", "train_loss", "train_kl",
           "train_err", "test_loss", "test_kl", "test_err");
    fflush(stdout);
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            if (!lsel[l] || !hsel[h])
                continue;
            pg.head++;
            pg.layer = l;
            pg.hidx = h;
            struct la_fit_seq seqs[MAX_TRAIN];
            for (int i = 0; i < ntrain; i++)
                seqs[i] = capture_seq(&train[i], l, h);
            struct la_fit_problem *pb = la_fit_problem_new(seqs, ntrain, d, d, &err);
            if (!pb) {
                rc = err.status;
                goto fail;
            }
            struct la_fit_eval ev, et = {NAN, NAN, NAN};
            la_fit_init(&fo, d, theta);
            rc = la_fit_run(pb, &fo, theta, on_step, &pg, &ev, &err);
            la_fit_problem_free(pb);
            if (rc == LA_OK && test_path) {
                struct la_fit_seq ts = capture_seq(&test, l, h);
                pb = la_fit_problem_new(&ts, 1, d, d, &err);
                rc = pb ? la_fit_objective(pb, &fo, theta, NULL, &et, &err) : err.status;
                la_fit_problem_free(pb);
            }
            if (rc != LA_OK) {
                if (rc != LA_EINTR) {
                    char inner[sizeof err.msg];
                    snprintf(inner, sizeof inner, "%s", err.msg);
                    LA_FAIL(&err, rc, "layer %d, head %d: %s", l, h, inner);
                }
                goto fail;
            }
            const size_t e = (size_t)l * H + h, md = (size_t)m * d;
            for (size_t i = 0; i < md; i++) {
                o.Wq[e * md + i] = (float)theta[i];
                o.Wk[e * md + i] = (float)theta[md + m + i];
            }
            for (int i = 0; i < m; i++) {
                o.bq[e * m + i] = (float)theta[md + i];
                o.bk[e * m + i] = (float)theta[2 * md + m + i];
            }
            o.fitted[e] = 1;
            const double v[6] = {ev.loss, ev.kl, ev.out_err, et.loss, et.kl, et.out_err};
            for (int i = 0; i < 6; i++)
                o.meas[i][e] = v[i];
            show(&pg, ev.loss, 1);
            if (pg.tty)
                fprintf(stderr, "\r\033[K");
            printf("%5d %4d  %10.4g %10.4g %10.4g  %10.4g %10.4g %10.4g\n", l, h, ev.loss, ev.kl,
                   ev.out_err, et.loss, et.kl, et.out_err);
            fflush(stdout);
        }
    const double seconds = la_now() - pg.t0;

    char trainlist[4096] = "";
    for (int i = 0; i < ntrain; i++) {
        size_t used = strlen(trainlist);
        snprintf(trainlist + used, sizeof trainlist - used, "%s%s", i ? ", " : "", argv[i]);
    }
    const struct fit_meta meta = {.activation = act_words[act],
                                  .loss = loss_words[loss],
                                  .init = init_words[init],
                                  .train = trainlist,
                                  .test = test_path ? test_path : "",
                                  .steps = steps,
                                  .train_tokens = (int64_t)ntrain * train[0].T,
                                  .lr = lr,
                                  .mse_weight = mse_weight,
                                  .seconds = seconds,
                                  .seed = (uint64_t)seed};
    int bad = 0;
    H5E_BEGIN_TRY
    {
        hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        bad = f < 0 || write_contents(f, &o, &meta);
        if (f >= 0 && H5Fclose(f) < 0)
            bad = 1;
    }
    H5E_END_TRY;
    if (bad) {
        rc = LA_FAIL(&err, LA_EIO, "cannot write the weights file '%s' (disk full?)", tmp);
        goto fail;
    }
    if (interrupted) {
        rc = LA_FAIL(&err, LA_EINTR, "interrupted");
        goto fail;
    }
    if (rename(tmp, out_path) != 0) {
        rc =
            LA_FAIL(&err, LA_EIO, "cannot rename '%s' to '%s': %s", tmp, out_path, strerror(errno));
        goto fail;
    }
    have_tmp = 0;
    printf("fitted %d head%s in %.1f s (%.3g s per head) -> %s\n", nsel, nsel == 1 ? "" : "s",
           seconds, nsel ? seconds / nsel : 0.0, out_path);
fail:
    if (have_tmp)
        unlink(tmp);
    const int sig = (int)interrupted;
    la_cancel_watch(NULL);
    for (int i = 0; i < 2; i++)
        if (old[i].sa_handler != SIG_IGN)
            sigaction(sigs[i], &old[i], NULL);
    if (rc == LA_EINTR || (rc != LA_OK && sig)) {
        fprintf(stderr, "%slinattn fit: interrupted by %s; no weights file written\n",
                isatty(STDERR_FILENO) ? "\r\033[K" : "", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    } else if (rc != LA_OK) {
        fprintf(stderr, "%slinattn fit: %s\n", isatty(STDERR_FILENO) ? "\r\033[K" : "", err.msg);
    }
    for (int i = 0; i < ntrain; i++)
        capture_free(&train[i]);
    capture_free(&test);
    free(lsel);
    free(hsel);
    free(theta);
    free(o.Wq);
    free(o.Wk);
    free(o.bq);
    free(o.bk);
    free(o.fitted);
    for (int i = 0; i < 6; i++)
        free(o.meas[i]);
    if (rc == LA_EINTR || (rc != LA_OK && sig))
        return 128 + (sig ? sig : SIGINT);
    return la_exit_code(rc);
}
