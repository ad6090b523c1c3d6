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
#include "options.h"

static const char *const activations[] = {"exp_pair", "softmax_pair", "relu", NULL};
static const char *const inits[] = {"identity", "random", NULL};

/* The options of the two actions, as parsed. */
struct init_args {
    const char *out;
    int d, m, activation, init; /* activation, init: indices into activations[], inits[] */
    long long seed;
};

struct info_args {
    const char *name; /* the map */
    struct fm_params p;
    int d, m;
    long long seed;
};

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

static int action_init_learned(const struct init_args *args)
{
    const char *out = args->out, *act = activations[args->activation], *init = inits[args->init];
    long d = args->d, m = args->m, seed = (long)args->seed;
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
        featuremap_apply(fm, FM_RAW_KEY, k, NPAIR, phi + NPAIR * (size_t)m, work) != LA_OK) {
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

static int action_info(const struct info_args *args)
{
    const char *name = args->name;
    struct fm_params p = args->p;
    long d = args->d, m = args->m, seed = (long)args->seed;
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
    static const char *const draws[] = {"iid", "orthogonal", NULL}; /* enum fm_draw */
    struct init_args ia = {.seed = 1};
    struct info_args fa = {.d = 16, .seed = 1};
    featuremap_params_default(&fa.p, 16);
    const struct la_option init_opts[] = {
        {.short_name = 'o', .kind = LA_OPTK_STRING, .flags = LA_OPT_REQUIRED, .target = &ia.out,
         .argname = "FILE", .help = "the weights file to write (its directory must exist)"},
        {.name = "d", .kind = LA_OPTK_INT, .flags = LA_OPT_REQUIRED, .target = &ia.d,
         .argname = "D", .imin = 1, .imax = 65536, .help = "input dimension (the head's d)"},
        LA_OPT_INT("m", 0, &ia.m, "M", 1, 1 << 20, "output dimension (default: D)"),
        LA_OPT_CHOICE("activation", 0, &ia.activation, activations,
                      "the activation recorded in the file (default exp_pair)"),
        LA_OPT_CHOICE("init", 0, &ia.init, inits,
                      "identity: W = I padded or truncated to M x D; random: N(0, 1/D) from "
                      "--seed (default identity)"),
        LA_OPT_INT64("seed", 0, &ia.seed, "S", 0, LONG_MAX, "seed of the random init (default 1)"),
        LA_OPT_END,
    };
    const struct la_option info_opts[] = {
        LA_OPT_INT("d", 0, &fa.d, "D", 1, 65536, "input dimension (default 16)"),
        LA_OPT_INT("m", 0, &fa.m, "M", 1, 1 << 24, "output dimension (default: the map's own)"),
        LA_OPT_CHOICE("draw", 0, &fa.p.draw, draws, "random maps: how W is drawn (default iid)"),
        LA_OPT_FLAG("norm-fixed", 0, &fa.p.norm_fixed,
                    "orthogonal draws: row norms fixed at sqrt(d) instead of chi(d) draws"),
        LA_OPT_REAL("A", 0, &fa.p.A, "A", -HUGE_VAL, HUGE_VAL,
                    "gerf: the parameter A, 1 - 4A > 0 (default 0)"),
        LA_OPT_FLAG("A-auto", 0, &fa.p.A_auto, "gerf: choose A from the data"),
        LA_OPT_REAL("eps", 0, &fa.p.eps, "E", -HUGE_VAL, HUGE_VAL,
                    "relu: the constant added to max(x, 0) (default 1e-3)"),
        LA_OPT_STRING("weights", 0, &fa.p.weights, "FILE", "learned: the weights file"),
        LA_OPT_INT64("seed", 0, &fa.seed, "S", 0, LONG_MAX,
                     "seed of the map's draws and of the test pairs (default 1)"),
        LA_OPT_END,
    };
    struct la_command init_cmd = {
        .prog = "linattn featuremap init-learned",
        .intro = "init-learned writes weights for the `learned` map: /W float32 (M, D), /b "
                 "float32 (M) zeros, root attributes activation, init and seed.  Layout: "
                 "featuremaps/README.md.",
        .opts = init_opts,
    };
    struct la_command info_cmd = {
        .prog = "linattn featuremap info",
        .args = "MAP",
        .intro = "info builds MAP (with the checks an experiment runs) and prints its output "
                 "dimension and the relative RMS error of phi(q).phi(k) against its kernel on 64 "
                 "seeded pairs (unstabilised features).  Exit 2 on a bad map, parameter or "
                 "weights file; exit 1 when the check cannot be measured (non-finite values, "
                 "kernel 0 on every pair).",
        .opts = info_opts,
    };
    const struct la_option no_opts[] = {LA_OPT_END};
    const struct la_command *forms[] = {&init_cmd, &info_cmd, NULL};
    const struct la_command top = {.prog = "linattn featuremap", .opts = no_opts, .forms = forms};
    init_cmd.forms = info_cmd.forms = forms;
    int nargs;
    if (argc < 2) {
        fprintf(stderr, "linattn featuremap: which action? init-learned or info "
                        "(linattn featuremap --help)\n");
        return 2;
    }
    if (argv[1][0] == '-') /* --help, or a mistake the parser names */
        return la_opt_parse(&top, argc, argv, &nargs);
    if (!strcmp(argv[1], "init-learned")) {
        const int rc = la_opt_parse(&init_cmd, argc - 1, argv + 1, &nargs);
        return rc != LA_OPT_GO ? rc : action_init_learned(&ia);
    }
    if (!strcmp(argv[1], "info")) {
        char **maps = argv + 1; /* the parser leaves the positionals there */
        const int rc = la_opt_parse(&info_cmd, argc - 1, maps, &nargs);
        if (rc != LA_OPT_GO)
            return rc;
        if (nargs == 0) {
            fprintf(stderr, "linattn featuremap info: which map? (linattn list shows them)\n");
            return 2;
        }
        if (nargs > 1) {
            fprintf(stderr, "linattn featuremap info: one map only ('%s', then '%s')\n", maps[0],
                    maps[1]);
            return 2;
        }
        fa.name = maps[0];
        return action_info(&fa);
    }
    static const char *const subs[] = {"init-learned", "info", NULL};
    char msg[128];
    fprintf(stderr, "linattn featuremap: unknown action '%s'%s\n", argv[1],
            la_choices_msg(msg, sizeof msg, argv[1], subs, 2, "valid"));
    return 2;
}
