/* cmd_featuremap.c — `linattn featuremap`: tools around feature maps.
 *   init-learned  writes a valid weights file for the `learned` map (identity or random init),
 *                 in the layout featuremaps/README.md documents and featuremaps/learned.c reads.
 *   info          builds one map from flags (the same checks an experiment runs) and prints its
 *                 output dimension and, on seeded random rows, how well φ(q)ᵀφ(k) matches its
 *                 kernel; a bad map, parameter or weights file exits 2 with the message, a
 *                 check that cannot be measured (non-finite values, a kernel zero on every pair)
 *                 exits 1 with the message.
 * Not here: training learned weights (done elsewhere, e.g. Hedgehog distillation in Python).
 * Tests: tests/test_featuremaps.c (round trip through the CLI, exit codes of bad files).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <hdf5.h>

#include "../../featuremaps/featuremap.h"
#include "../core/status.h"
#include "commands.h"

static const char *const activations[] = {"exp_pair", "softmax_pair", "relu", NULL};
static const char *const inits[] = {"identity", "random", NULL};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: linattn featuremap init-learned -o FILE --d D [--m M]\n"
            "                  [--activation exp_pair|softmax_pair|relu] [--init identity|random]\n"
            "                  [--seed S]\n"
            "       linattn featuremap info MAP [--d D] [--m M] [--draw iid|orthogonal]\n"
            "                  [--norm-fixed] [--A A] [--A-auto] [--eps E] [--weights FILE]\n"
            "                  [--seed S]\n"
            "\n"
            "init-learned  writes weights for the `learned` map: /W float32 (M, D) (identity:\n"
            "              W = I padded or truncated to M x D; random: N(0, 1/D) from --seed),\n"
            "              /b float32 (M) zeros, root attribute activation (default exp_pair).\n"
            "              M defaults to D.  Layout: featuremaps/README.md.\n"
            "info          builds MAP (default d = 16) and prints its output dimension and the\n"
            "              relative RMS error of phi(q).phi(k) against its kernel on 64 seeded\n"
            "              pairs (unstabilised features).\n"
            "              Exit 2 on a bad map, parameter or weights file; exit 1 when the\n"
            "              check cannot be measured (non-finite values, kernel 0 on every pair).\n");
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s ? s : "", &end, 10);
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        fprintf(stderr, "linattn featuremap: %s needs an integer in [%ld, %ld], got '%s'\n", flag,
                lo, hi, s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

static int parse_double(const char *flag, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s ? s : "", &end);
    if (!s || !*s || *end || errno || !isfinite(v)) {
        fprintf(stderr, "linattn featuremap: %s needs a finite number, got '%s'\n", flag,
                s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

static int choice(const char *flag, const char *s, const char *const *names)
{
    for (size_t i = 0; names[i]; i++)
        if (s && !strcmp(s, names[i]))
            return (int)i;
    char msg[384];
    fprintf(stderr, "linattn featuremap: %s '%s' is unknown%s\n", flag, s ? s : "",
            la_choices_msg(msg, sizeof msg, s, names, SIZE_MAX, "valid"));
    return -1;
}

/* Writes the learned-weights file; returns LA_OK or LA_EIO/LA_ENOMEM with err filled. */
static int write_learned(const char *path, const float *W, const float *b, int m, int d,
                         const char *activation, const char *init, unsigned long seed,
                         struct la_error *err)
{
    int st = LA_OK;
    hid_t f = -1, sp = -1, ds = -1, str = -1, asp = -1, at = -1;
    f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0)
        return LA_FAIL(err, LA_EIO,
                       "featuremap init-learned: cannot create '%s' (does the "
                       "directory exist and is it writable?)",
                       path);
    hsize_t dims[2] = {(hsize_t)m, (hsize_t)d};
    sp = H5Screate_simple(2, dims, NULL);
    ds = sp >= 0 ? H5Dcreate2(f, "W", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                 : -1;
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, W) < 0)
        goto io;
    H5Dclose(ds);
    H5Sclose(sp);
    ds = sp = -1;
    sp = H5Screate_simple(1, dims, NULL);
    ds = sp >= 0 ? H5Dcreate2(f, "b", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                 : -1;
    if (ds < 0 || H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b) < 0)
        goto io;
    /* String attributes: fixed length, NUL-terminated (h5py reads them as str). */
    const char *names[2] = {"activation", "init"};
    const char *values[2] = {activation, init};
    asp = H5Screate(H5S_SCALAR);
    if (asp < 0)
        goto io;
    for (int i = 0; i < 2; i++) {
        str = H5Tcopy(H5T_C_S1);
        if (str < 0 || H5Tset_size(str, strlen(values[i]) + 1) < 0 ||
            H5Tset_strpad(str, H5T_STR_NULLTERM) < 0)
            goto io;
        at = H5Acreate2(f, names[i], str, asp, H5P_DEFAULT, H5P_DEFAULT);
        if (at < 0 || H5Awrite(at, str, values[i]) < 0)
            goto io;
        H5Aclose(at);
        H5Tclose(str);
        at = str = -1;
    }
    unsigned long long s64 = seed;
    at = H5Acreate2(f, "seed", H5T_STD_U64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
    if (at < 0 || H5Awrite(at, H5T_NATIVE_ULLONG, &s64) < 0)
        goto io;
    goto done;
io:
    st = LA_FAIL(err, LA_EIO, "featuremap init-learned: cannot write '%s'", path);
done:
    if (at >= 0)
        H5Aclose(at);
    if (str >= 0)
        H5Tclose(str);
    if (asp >= 0)
        H5Sclose(asp);
    if (ds >= 0)
        H5Dclose(ds);
    if (sp >= 0)
        H5Sclose(sp);
    if (f >= 0 && H5Fclose(f) < 0 && st == LA_OK)
        st = LA_FAIL(err, LA_EIO, "featuremap init-learned: cannot close '%s'", path);
    return st;
}

static int action_init_learned(int argc, char **argv)
{
    const char *out = NULL, *act = "exp_pair", *init = "identity";
    long d = 0, m = 0, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        int takes = !strcmp(a, "-o") || !strcmp(a, "--d") || !strcmp(a, "--m") ||
                    !strcmp(a, "--activation") || !strcmp(a, "--init") || !strcmp(a, "--seed");
        if (!takes) {
            fprintf(stderr,
                    "linattn featuremap init-learned: unknown option '%s' "
                    "(linattn featuremap --help)\n",
                    a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "linattn featuremap init-learned: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "-o"))
            out = v;
        else if (!strcmp(a, "--d") && !parse_long(a, v, 1, 65536, &d))
            return 2;
        else if (!strcmp(a, "--m") && !parse_long(a, v, 1, 1L << 20, &m))
            return 2;
        else if (!strcmp(a, "--seed") && !parse_long(a, v, 0, LONG_MAX, &seed))
            return 2;
        else if (!strcmp(a, "--activation")) {
            if (choice(a, v, activations) < 0)
                return 2;
            act = v;
        } else if (!strcmp(a, "--init")) {
            if (choice(a, v, inits) < 0)
                return 2;
            init = v;
        }
    }
    if (!out || !d) {
        fprintf(stderr, "linattn featuremap init-learned: -o FILE and --d D are required "
                        "(linattn featuremap --help)\n");
        return 2;
    }
    if (!m)
        m = d;
    if ((size_t)m * (size_t)d > ((size_t)1 << 28)) {
        fprintf(stderr, "linattn featuremap init-learned: m x d = %ld x %ld is too large\n", m, d);
        return 2;
    }
    struct la_error err;
    la_error_clear(&err);
    int st = LA_OK;
    float *W = calloc((size_t)m * (size_t)d, sizeof *W);
    float *b = calloc((size_t)m, sizeof *b);
    gsl_rng *rng = NULL;
    if (!W || !b) {
        st = LA_FAIL(&err, LA_ENOMEM, "featuremap init-learned: out of memory");
        goto done;
    }
    if (!strcmp(init, "identity")) {
        for (long i = 0; i < m && i < d; i++)
            W[(size_t)i * (size_t)d + (size_t)i] = 1.0f;
    } else {
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            st = LA_FAIL(&err, LA_ENOMEM, "featuremap init-learned: out of memory");
            goto done;
        }
        gsl_rng_set(rng, (unsigned long)seed);
        double sd = 1.0 / sqrt((double)d);
        for (size_t i = 0; i < (size_t)m * (size_t)d; i++)
            W[i] = (float)gsl_ran_gaussian(rng, sd);
    }
    st = write_learned(out, W, b, (int)m, (int)d, act, init, (unsigned long)seed, &err);
done:
    free(W);
    free(b);
    gsl_rng_free(rng);
    if (st != LA_OK) {
        fprintf(stderr, "linattn: %s\n", err.msg);
        return la_exit_code(st);
    }
    printf("wrote %s: learned weights W (%ld x %ld), b (%ld), activation %s, init %s\n", out, m, d,
           m, act, init);
    return 0;
}

/* Relative RMS error of the unstabilised φ(q)ᵀφ(k) against the map's kernel on npair seeded
 * pairs of N(0, 0.5²) rows, and the mean of estimate/kernel over the pairs whose |kernel| is at
 * least 1e-12 of the largest value (*nratio of them; a smaller kernel makes the ratio noise).  Both are computed in double after scaling by the largest |value|, so
 * squares do not overflow.  A non-finite estimate or kernel, or a kernel that is zero on every
 * pair (no relative error exists), is an LA_ENUMERIC error.  Returns LA_OK or an error. */
static int kernel_check(struct featuremap *fm, gsl_rng *rng, double *rel_rms, double *mean_ratio,
                        int *nratio, struct la_error *err)
{
    enum { NPAIR = 64 };
    int d = fm->d, m = fm->m;
    int st = LA_OK;
    float *x = malloc(2 * NPAIR * (size_t)d * sizeof *x);
    float *phi = malloc(2 * NPAIR * (size_t)m * sizeof *phi);
    double *xd = malloc(2 * (size_t)d * sizeof *xd);
    size_t wf = featuremap_work_floats(fm, NPAIR);
    float *work = wf ? malloc(wf * sizeof *work) : NULL;
    if (!x || !phi || !xd || (wf && !work)) {
        st = LA_FAIL(err, LA_ENOMEM, "featuremap info: out of memory");
        goto done;
    }
    for (size_t i = 0; i < 2 * NPAIR * (size_t)d; i++)
        x[i] = (float)gsl_ran_gaussian(rng, 0.5);
    float *q = x, *k = x + NPAIR * (size_t)d;
    st = featuremap_fit(fm, q, NPAIR, k, NPAIR, err);
    if (st != LA_OK)
        goto done;
    if (featuremap_apply(fm, FM_RAW, q, NPAIR, phi, work) != LA_OK ||
        featuremap_apply(fm, FM_RAW, k, NPAIR, phi + NPAIR * (size_t)m, work) != LA_OK) {
        st = LA_FAIL(err, LA_EINTERNAL, "featuremap info: apply refused its arguments");
        goto done;
    }
    double est[NPAIR], kern[NPAIR], scale = 0.0;
    for (int p = 0; p < NPAIR; p++) {
        const float *pq = phi + (size_t)p * (size_t)m, *pk = phi + (size_t)(NPAIR + p) * (size_t)m;
        est[p] = 0.0;
        for (int i = 0; i < m; i++)
            est[p] += (double)pq[i] * (double)pk[i];
        for (int j = 0; j < d; j++) {
            xd[j] = q[(size_t)p * (size_t)d + (size_t)j];
            xd[d + j] = k[(size_t)p * (size_t)d + (size_t)j];
        }
        kern[p] = featuremap_kernel(fm, xd, xd + d);
        if (!isfinite(est[p]) || !isfinite(kern[p])) {
            st = LA_FAIL(err, LA_ENUMERIC,
                         "featuremap info: %s: phi(q).phi(k) = %g against kernel %g on test pair "
                         "%d: not finite, so no error can be measured (weights or parameters "
                         "too large for fp32?)",
                         fm->type->name, est[p], kern[p], p);
            goto done;
        }
        scale = fmax(scale, fmax(fabs(est[p]), fabs(kern[p])));
    }
    double se = 0.0, sk = 0.0, ratio = 0.0;
    int n = 0;
    for (int p = 0; p < NPAIR; p++) {
        double e = scale > 0.0 ? est[p] / scale : 0.0, c = scale > 0.0 ? kern[p] / scale : 0.0;
        se += (e - c) * (e - c);
        sk += c * c;
        if (fabs(kern[p]) >= 1e-12 * scale) {
            ratio += est[p] / kern[p];
            n++;
        }
    }
    if (!(sk > 0.0)) {
        st = LA_FAIL(err, LA_ENUMERIC,
                     "featuremap info: %s: the kernel is zero on all %d test pairs, so no "
                     "relative error exists (all features zero on these inputs?)",
                     fm->type->name, NPAIR);
        goto done;
    }
    *rel_rms = sqrt(se / sk);
    *mean_ratio = n ? ratio / n : NAN;
    *nratio = n;
done:
    free(x);
    free(phi);
    free(xd);
    free(work);
    return st;
}

static int action_info(int argc, char **argv)
{
    const char *name = NULL;
    struct fm_params p;
    featuremap_params_default(&p, 16);
    long d = 16, m = 0, seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (name) {
                fprintf(stderr, "linattn featuremap info: one map only ('%s', then '%s')\n", name,
                        a);
                return 2;
            }
            name = a;
            continue;
        }
        if (!strcmp(a, "--norm-fixed")) {
            p.norm_fixed = 1;
            continue;
        }
        if (!strcmp(a, "--A-auto")) {
            p.A_auto = 1;
            continue;
        }
        int takes = !strcmp(a, "--d") || !strcmp(a, "--m") || !strcmp(a, "--draw") ||
                    !strcmp(a, "--A") || !strcmp(a, "--eps") || !strcmp(a, "--weights") ||
                    !strcmp(a, "--seed");
        if (!takes) {
            fprintf(stderr,
                    "linattn featuremap info: unknown option '%s' "
                    "(linattn featuremap --help)\n",
                    a);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "linattn featuremap info: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--d") && !parse_long(a, v, 1, 65536, &d))
            return 2;
        else if (!strcmp(a, "--m") && !parse_long(a, v, 1, 1L << 24, &m))
            return 2;
        else if (!strcmp(a, "--seed") && !parse_long(a, v, 0, LONG_MAX, &seed))
            return 2;
        else if (!strcmp(a, "--A") && !parse_double(a, v, &p.A))
            return 2;
        else if (!strcmp(a, "--eps") && !parse_double(a, v, &p.eps))
            return 2;
        else if (!strcmp(a, "--weights"))
            p.weights = v;
        else if (!strcmp(a, "--draw")) {
            static const char *const draws[] = {"iid", "orthogonal", NULL};
            int c = choice(a, v, draws);
            if (c < 0)
                return 2;
            p.draw = c;
        }
    }
    if (!name) {
        fprintf(stderr, "linattn featuremap info: which map? (linattn list shows them)\n");
        return 2;
    }
    p.d = (int)d;
    p.m = (int)m;
    p.seed = (unsigned long)seed;
    struct la_error err;
    la_error_clear(&err);
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        fprintf(stderr, "linattn: out of memory\n");
        return 1;
    }
    gsl_rng_set(rng, p.seed);
    struct featuremap *fm = featuremap_alloc(name, &p, rng, &err);
    int st = fm ? LA_OK : err.status;
    double rel = 0.0, ratio = 0.0;
    int nratio = 0;
    if (fm)
        st = kernel_check(fm, rng, &rel, &ratio, &nratio, &err);
    if (st == LA_OK) {
        printf("map:          %s\n", fm->type->name);
        printf("summary:      %s\n", fm->type->summary);
        printf("parameters:   %s\n", fm->type->params);
        printf("random:       %s\n", fm->type->random ? "yes (estimates exp(q.k/sqrt(d)))"
                                                      : "no (defines its own kernel)");
        printf("d:            %d\n", fm->d);
        printf("output m:     %d\n", fm->m);
        size_t wf = featuremap_work_floats(fm, 64);
        printf("workspace:    %zu float%s per row block of 64\n", wf, wf == 1 ? "" : "s");
        printf("kernel check: relative RMS error %.3e, mean estimate/kernel %.4f", rel, ratio);
        if (nratio < 64)
            printf(" over the %d pairs with kernel >= 1e-12 of the largest", nratio);
        printf(" (64 pairs, N(0, 0.25) entries, seed %lu)\n", p.seed);
    }
    featuremap_free(fm);
    gsl_rng_free(rng);
    if (st != LA_OK) {
        fprintf(stderr, "linattn: %s\n", err.msg);
        return la_exit_code(st);
    }
    return 0;
}

int cmd_featuremap(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "linattn featuremap: which action? init-learned or info "
                        "(linattn featuremap --help)\n");
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "init-learned"))
        return action_init_learned(argc - 1, argv + 1);
    if (!strcmp(argv[1], "info"))
        return action_info(argc - 1, argv + 1);
    static const char *const subs[] = {"init-learned", "info", NULL};
    char msg[128];
    fprintf(stderr, "linattn featuremap: unknown action '%s'%s\n", argv[1],
            la_choices_msg(msg, sizeof msg, argv[1], subs, 2, "valid"));
    return 2;
}
