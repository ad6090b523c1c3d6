/* cmd_capacity.c — `linattn capacity -o FILE.h5`: Schlag et al.'s capacity experiment (how many
 * associations one linear-attention state holds, per feature map and update rule) over a grid of
 * maps, rules, key and value kinds, settings and S, one row per cell into a capacity file that
 * `linattn plot` draws (the capacity figure).  The experiment itself is
 * harness/engine/capacity.h; this file parses the lists, runs the grid and prints the table.
 * Not here: the figure (harness/figures/capacity.c).  Tests: tests/test_capacity.c (the
 * experiment, the command through the binary, the figure), tests/figures_e2e.sh (its plot).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../core/status.h"
#include "../engine/capacity.h"
#include "commands.h"
#include "options.h"

#define MAX_LIST 64

/* The two sizes: the quick one of `make figures` and the paper's (docs/FIGURES.md). */
static const char *const sizes[] = {"quick", "paper", NULL};
static const struct {
    const char *maps, *S, *keys, *values, *settings, *norms;
    int trials;
} presets[] = {
    {"elu1,dpfp1,dpfp2,dpfp3,prf64,prf256,taylor2", "20,40,64,96,128,192,256,384,512,640",
     "gauss", "onehot", "unique,overwrite", "sum,l2", 2},
    {"elu1,dpfp1,dpfp2,dpfp3,prf64,prf256,prf1024,taylor2",
     "20,32,48,64,96,128,160,192,256,320,384,448,512,640,768,1024", "gauss,sphere",
     "onehot,gauss", "unique,overwrite", "sum,l2", 5},
};

/* Splits a comma-separated list into at most MAX_LIST words of buf (modified in place). */
static int split(char *buf, char **words, const char *opt, struct la_error *err)
{
    int n = 0;
    for (char *s = buf; s && *s;) {
        char *e = strchr(s, ',');
        if (e)
            *e = '\0';
        if (!*s)
            return LA_FAIL(err, LA_EINVAL, "--%s: an empty item in the list", opt);
        if (n == MAX_LIST)
            return LA_FAIL(err, LA_EINVAL, "--%s: more than %d items", opt, MAX_LIST);
        words[n++] = s;
        s = e ? e + 1 : NULL;
    }
    if (!n)
        return LA_FAIL(err, LA_EINVAL, "--%s: an empty list", opt);
    return n;
}

/* Checks every word of a list against the valid ones. */
static int check_words(char **w, int n, const char *const *valid, const char *opt,
                       struct la_error *err)
{
    for (int i = 0; i < n; i++) {
        int ok = 0;
        for (const char *const *v = valid; *v; v++)
            ok |= !strcmp(w[i], *v);
        if (!ok)
            return LA_FAIL(err, LA_ENAME, "--%s: unknown value '%s' (valid: %s%s%s)", opt, w[i],
                           valid[0], valid[1] ? ", " : "", valid[1] ? valid[1] : "");
    }
    return LA_OK;
}

/* A map word: "dpfpN" (dpfp, ν = N), "prfM" (prf, m = M), or a registry name with its
 * defaults. */
static int parse_map(const char *w, struct la_cap_cell *c, struct la_error *err)
{
    char *end;
    c->nu = 0;
    c->m = 0;
    if (!strncmp(w, "dpfp", 4) && w[4]) {
        long nu = strtol(w + 4, &end, 10);
        if (*end || nu < 1 || nu > 3)
            return LA_FAIL(err, LA_EINVAL, "--maps: '%s': dpfpN needs N in 1..3", w);
        snprintf(c->map, sizeof c->map, "dpfp");
        c->nu = (int)nu;
        return LA_OK;
    }
    if (!strncmp(w, "prf", 3) && w[3] >= '0' && w[3] <= '9') {
        long m = strtol(w + 3, &end, 10);
        if (*end || m < 1 || m > 65536)
            return LA_FAIL(err, LA_EINVAL, "--maps: '%s': prfM needs M in 1..65536", w);
        snprintf(c->map, sizeof c->map, "prf");
        c->m = (int)m;
        return LA_OK;
    }
    if (snprintf(c->map, sizeof c->map, "%s", w) >= (int)sizeof c->map)
        return LA_FAIL(err, LA_EINVAL, "--maps: '%s' is too long", w);
    return LA_OK;
}

static void print_row(const struct la_cap_row *r)
{
    printf("%-12s %-5s %-6s %-6s %-4s %-9s %5d %5d %11.4e %6.3f\n", r->label, r->c.rule,
           r->c.keys, r->c.values, r->c.norm, r->c.overwrite ? "overwrite" : "unique", r->c.S,
           r->dim, r->mse, r->acc);
}

int cmd_capacity(int argc, char **argv)
{
    const char *out = NULL, *maps = NULL, *Slist = NULL, *keys = NULL, *values = NULL;
    const char *settings = NULL, *norms = NULL, *rules = "sum,delta";
    int size = 0, trials = 0, dk = 64, dv = 64, seed = 1, quiet = 0;
    const struct la_option opts[] = {
        LA_OPT_STRING("output", 'o', &out, "FILE.h5", "the capacity file written (required)"),
        LA_OPT_CHOICE("size", 0, &size, sizes,
                      "the defaults of the lists below (default quick: minutes on 2 cores; "
                      "paper: prf1024, sphere keys, gauss values, S up to 1024 and 5 trials)"),
        LA_OPT_STRING("maps", 0, &maps, "LIST",
                      "feature maps: dpfpN (ν = N), prfM (m = M), or any map name with its "
                      "defaults (elu1, taylor2, ...)"),
        LA_OPT_STRING("rules", 0, &rules, "LIST", "update rules: sum, delta (default both)"),
        LA_OPT_STRING("S", 0, &Slist, "LIST", "numbers of distinct keys"),
        LA_OPT_STRING("keys", 0, &keys, "LIST",
                      "key distributions: gauss (N(0, I)), sphere (unit norm)"),
        LA_OPT_STRING("values", 0, &values, "LIST",
                      "value kinds: onehot (a random index of dv), gauss (N(0, I))"),
        LA_OPT_STRING("settings", 0, &settings, "LIST",
                      "unique (each key written once), overwrite (each key written 3 times "
                      "with fresh values; the latest is the target)"),
        LA_OPT_STRING("norm", 0, &norms, "LIST",
                      "normalisation of φ(k) before the writes: sum (Schlag et al.), l2"),
        LA_OPT_INT("trials", 0, &trials, "N", 1, 1000, "independent draws per cell"),
        LA_OPT_INT("dk", 0, &dk, "N", 1, 1024, "key dimension (default 64)"),
        LA_OPT_INT("dv", 0, &dv, "N", 1, 4096, "value dimension (default 64)"),
        LA_OPT_INT("seed", 0, &seed, "N", 0, 2147483647, "seed of the draws (default 1)"),
        LA_OPT_FLAG("quiet", 'q', &quiet, "print only the file written"),
        LA_OPT_END,
    };
    const struct la_command cmd = {
        .prog = "linattn capacity",
        .args = NULL,
        .intro =
            "Schlag et al.'s capacity experiment, without training: writes S key-value pairs "
            "into one linear-attention state per (feature map, update rule) with the table's "
            "fp32 prefill kernel (linear_prefill: the sum rule; delta_prefill: the delta rule, "
            "β = 1), reads every key back directly from the state, y = Sᵀφ̂(k) / ‖φ̂(k)‖², and "
            "records the mean squared error against the stored value (and the argmax accuracy "
            "for one-hot values), the mean over trials with the smallest and largest trial.  "
            "The lists' defaults come from --size.  Draw the rows with `linattn plot FILE.h5`.",
        .opts = opts,
        .outro = "Exit status: 0 when every cell ran, 1 when one failed (its message is printed), "
                 "2 for a bad option.  See docs/FIGURES.md (capacity) for how to read the rows.",
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (!out) {
        fprintf(stderr, "linattn capacity: -o FILE.h5 is required\n");
        return 2;
    }
    if (!maps)
        maps = presets[size].maps;
    if (!Slist)
        Slist = presets[size].S;
    if (!keys)
        keys = presets[size].keys;
    if (!values)
        values = presets[size].values;
    if (!settings)
        settings = presets[size].settings;
    if (!norms)
        norms = presets[size].norms;
    if (!trials)
        trials = presets[size].trials;

    struct la_error err;
    la_error_clear(&err);
    char bm[1024], br[64], bS[1024], bk[64], bv[64], bs[64], bn[64];
    char *wm[MAX_LIST], *wr[MAX_LIST], *wS[MAX_LIST], *wk[MAX_LIST], *wv[MAX_LIST];
    char *ws[MAX_LIST], *wn[MAX_LIST];
    int nm, nr, nS, nk, nv, ns, nn, st = LA_OK;
    struct la_cap_row *rows = NULL;
    snprintf(bm, sizeof bm, "%s", maps);
    snprintf(br, sizeof br, "%s", rules);
    snprintf(bS, sizeof bS, "%s", Slist);
    snprintf(bk, sizeof bk, "%s", keys);
    snprintf(bv, sizeof bv, "%s", values);
    snprintf(bs, sizeof bs, "%s", settings);
    snprintf(bn, sizeof bn, "%s", norms);
    static const char *const v_rules[] = {"sum", "delta", NULL};
    static const char *const v_keys[] = {"gauss", "sphere", NULL};
    static const char *const v_values[] = {"onehot", "gauss", NULL};
    static const char *const v_settings[] = {"unique", "overwrite", NULL};
    static const char *const v_norms[] = {"sum", "l2", NULL};
    if ((nm = split(bm, wm, "maps", &err)) < 0 || (nr = split(br, wr, "rules", &err)) < 0 ||
        (nS = split(bS, wS, "S", &err)) < 0 || (nk = split(bk, wk, "keys", &err)) < 0 ||
        (nv = split(bv, wv, "values", &err)) < 0 || (ns = split(bs, ws, "settings", &err)) < 0 ||
        (nn = split(bn, wn, "norm", &err)) < 0) {
        st = err.status;
        goto bad;
    }
    if ((st = check_words(wr, nr, v_rules, "rules", &err)) != LA_OK ||
        (st = check_words(wk, nk, v_keys, "keys", &err)) != LA_OK ||
        (st = check_words(wv, nv, v_values, "values", &err)) != LA_OK ||
        (st = check_words(ws, ns, v_settings, "settings", &err)) != LA_OK ||
        (st = check_words(wn, nn, v_norms, "norm", &err)) != LA_OK)
        goto bad;
    int Svals[MAX_LIST];
    for (int i = 0; i < nS; i++) {
        char *end;
        errno = 0;
        long v = strtol(wS[i], &end, 10);
        if (*end || errno || v < 1 || v > 1000000) {
            st = LA_FAIL(&err, LA_EINVAL, "--S: '%s' is not an integer in 1..1000000", wS[i]);
            goto bad;
        }
        Svals[i] = (int)v;
    }
    struct la_cap_cell proto;
    la_cap_cell_default(&proto);
    for (int i = 0; i < nm; i++)
        if ((st = parse_map(wm[i], &proto, &err)) != LA_OK ||
            (!featuremap_lookup(proto.map, &err) && (st = err.status) != LA_OK))
            goto bad;
    const size_t ncells = (size_t)nm * nr * nS * nk * nv * ns * nn;
    rows = calloc(ncells, sizeof *rows);
    if (!rows) {
        fprintf(stderr, "linattn capacity: out of memory\n");
        return 1;
    }
    proto.trials = trials;
    proto.dk = dk;
    proto.dv = dv;
    proto.seed = (unsigned long)seed;
    if (!quiet)
        printf("%-12s %-5s %-6s %-6s %-4s %-9s %5s %5s %11s %6s\n", "map", "rule", "keys",
               "values", "norm", "setting", "S", "dim", "mse", "acc");
    size_t n = 0;
    for (int a = 0; a < nm; a++)
        for (int b = 0; b < nr; b++)
            for (int kk = 0; kk < nk; kk++)
                for (int vv = 0; vv < nv; vv++)
                    for (int no = 0; no < nn; no++)
                        for (int se = 0; se < ns; se++)
                            for (int s = 0; s < nS; s++) {
                                struct la_cap_cell c = proto;
                                parse_map(wm[a], &c, &err);
                                snprintf(c.rule, sizeof c.rule, "%s", wr[b]);
                                snprintf(c.keys, sizeof c.keys, "%s", wk[kk]);
                                snprintf(c.values, sizeof c.values, "%s", wv[vv]);
                                snprintf(c.norm, sizeof c.norm, "%s", wn[no]);
                                c.overwrite = !strcmp(ws[se], "overwrite");
                                c.S = Svals[s];
                                if ((st = la_capacity_run(&c, &rows[n], &err)) != LA_OK) {
                                    fprintf(stderr, "linattn capacity: %s\n", err.msg);
                                    free(rows);
                                    return 1;
                                }
                                if (!quiet) {
                                    print_row(&rows[n]);
                                    fflush(stdout);
                                }
                                n++;
                            }
    if ((st = la_capacity_write(out, rows, n, &err)) != LA_OK) {
        fprintf(stderr, "linattn capacity: %s\n", err.msg);
        free(rows);
        return 1;
    }
    free(rows);
    printf("%s\n", out);
    return 0;
bad:
    fprintf(stderr, "linattn capacity: %s\n", err.msg);
    free(rows);
    return la_exit_code(st);
}
