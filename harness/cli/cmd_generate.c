/* cmd_generate.c — `linattn generate`: a Llama-2 checkpoint (stories260K) generating text with
 * its attention run by the kernel table's step operation, softmax or linear with a feature map
 * (harness/model/generate.c), reporting tokens per second; and, with --fidelity, the
 * model-level fidelity table of linearised models against the softmax one under teacher
 * forcing on sequences the softmax model sampled.
 *
 * The map parameters are options built from the parameter schema (harness/experiment/params.c):
 * one per map parameter row with a `bench` flag, plus eps, read by the schema's parser as
 * `linattn bench` reads them; a parameter the chosen map does not read is refused with the
 * ones it reads.  Errors are one line on stderr and exit 2, as `linattn capture`'s.
 * Tests: tests/test_generate.c.  By hand:
 *   ./linattn generate ../shared/data/stories260K/stories260K.bin --greedy
 *   ./linattn generate ../shared/data/stories260K/stories260K.bin --attention prf --m 64
 *   ./linattn generate ../shared/data/stories260K/stories260K.bin --fidelity --m 64 --tsv f.tsv
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "../experiment/params.h"
#include "../model/generate.h"
#include "../model/llama.h"
#include "../store/results.h"
#include "commands.h"
#include "options.h"
#include "param_options.h"

#define DEFAULT_STEPS 256
#define MAX_MAPS 32
#define PROG "linattn generate"

/* ---- the map parameters, from the schema ------------------------------------------------ */

/* Rows of the schema that are options here: map parameters with a flag, and eps. */
static int is_attn_param(const struct la_param *p)
{
    return p->flag && (p->scope == LA_SCOPE_MAP || p == &la_params[LA_PARAM_EPS]);
}

/* ---- the attention choices -------------------------------------------------------------- */

/* "softmax" and every map name, NULL-terminated (names holds MAX_MAPS + 2). */
static size_t attention_names(const char **names)
{
    size_t n = 0;
    names[n++] = "softmax";
    for (const char *const *m = featuremap_names(); *m && n < MAX_MAPS + 1; m++)
        names[n++] = *m;
    names[n] = NULL;
    return n;
}

/* Splits the comma list `text` into the names it holds (static storage), each checked: 0, or 2
 * after printing the error. */
static int parse_attention(const char *text, const char **out, int *n_out)
{
    const char *names[MAX_MAPS + 2];
    const size_t nn = attention_names(names);
    *n_out = 0;
    for (const char *s = text;;) {
        const char *e = strchr(s, ',');
        const size_t len = e ? (size_t)(e - s) : strlen(s);
        char word[64];
        snprintf(word, sizeof word, "%.*s", (int)(len < 63 ? len : 63), s);
        size_t k = 0;
        while (k < nn && (strlen(names[k]) != len || strncmp(names[k], s, len) != 0))
            k++;
        if (k == nn || len >= 63) {
            char buf[512];
            fprintf(stderr, PROG ": unknown attention '%s'%s\n", word,
                    la_choices_msg(buf, sizeof buf, word, names, nn, "valid (softmax or a feature map)"));
            return 2;
        }
        for (int j = 0; j < *n_out; j++)
            if (out[j] == names[k]) {
                fprintf(stderr, PROG ": --attention lists '%s' twice\n", names[k]);
                return 2;
            }
        if (*n_out == MAX_MAPS) {
            fprintf(stderr, PROG ": --attention lists more than %d entries\n", MAX_MAPS);
            return 2;
        }
        out[(*n_out)++] = names[k];
        if (!e)
            break;
        s = e + 1;
    }
    return 0;
}

/* Refuses a given parameter that no listed attention reads: 0, or 2 after the error naming
 * what the map reads. */
static int check_params(const struct la_param_rows *pr, size_t np, const char *const *att, int na,
                        int seed_map_given)
{
    for (size_t i = 0; i < np + 1; i++) {
        const int given = i < np ? pr->po[i].given : seed_map_given;
        if (!given)
            continue;
        const struct la_param *p = i < np ? pr->po[i].p : NULL;
        const char *flag = p ? p->flag : "seed-map";
        int read = 0;
        for (int a = 0; a < na && !read; a++) {
            if (!strcmp(att[a], "softmax"))
                continue;
            const struct featuremap_type *t = la_cell_map(att[a]);
            read = !p ? t && t->random : p->scope == LA_SCOPE_MAP ? la_param_reads(p, t) : 1;
        }
        if (read)
            continue;
        if (na == 1 && strcmp(att[0], "softmax") != 0) {
            const struct featuremap_type *t = la_cell_map(att[0]);
            fprintf(stderr, PROG ": map '%s' does not take --%s (it reads: %s)\n", att[0], flag,
                    t ? t->params : "?");
        } else {
            fprintf(stderr, PROG ": --%s applies to none of the attentions given (%s%s)\n", flag,
                    att[0], na > 1 ? ", ..." : "");
        }
        return 2;
    }
    return 0;
}

/* The attention spec of name from the parsed cell: the map parameters it reads (the others at
 * their defaults, as a list of maps shares one set of options). */
static void make_spec(const char *name, const struct la_cell *c, unsigned long seed_map, int hs,
                      struct la_attn_spec *spec)
{
    memset(spec, 0, sizeof *spec);
    spec->map = name;
    struct la_cell own = *c;
    const struct featuremap_type *t = la_cell_map(name);
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (p->scope == LA_SCOPE_MAP && !la_param_reads(p, t)) {
            struct la_value v;
            la_param_default(p, &v);
            la_param_set(p, &own, &v);
        }
    }
    featuremap_params_default(&spec->fm, hs);
    la_params_to_fm(&own, &spec->fm);
    spec->fm.d = hs;
    spec->fm.seed = seed_map;
    spec->eps = c->eps;
}

/* ---- output ----------------------------------------------------------------------------- */

/* Writes a piece, leaving out single bytes that are control characters other than whitespace
 * (a byte piece may be anything). */
static void put_piece(FILE *f, const char *p)
{
    if (p[0] && !p[1] && !isprint((unsigned char)p[0]) && !isspace((unsigned char)p[0]))
        return;
    fputs(p, f);
}

/* 1 when results row r measured the attention spec describes (output dimension m): the same
 * map, m, eps, and the draw and A where the map reads them (A given as a number). */
static int same_attention(const struct la_row *r, const struct la_attn_spec *spec, int m)
{
    const struct featuremap_type *t = la_cell_map(spec->map);
    if (strcmp(r->map, spec->map) != 0 || r->m != m || fabs(r->eps - spec->eps) > 1e-12 * spec->eps)
        return 0;
    if (featuremap_type_reads(t, "draw") &&
        strcmp(r->draw, la_params[LA_PARAM_DRAW].choices[spec->fm.draw]) != 0)
        return 0;
    if (featuremap_type_reads(t, "A")) {
        char a[32];
        if (la_key_get(r->key, "A", a, sizeof a) == LA_OK && !strcmp(a, "auto"))
            return 0;
        if (fabs(r->A - spec->fm.A) > 1e-12)
            return 0;
    }
    return 1;
}

/* The attention-level error of the same attention on the model's own heads: the mean of
 * kl_mean (KL of each softmax attention row against the linear one, experiments/README.md)
 * over the rows of a results file (experiments/real-stories260k.yaml) that measured it and
 * succeeded; *count the rows averaged (0: NaN). */
static double heads_kl(const struct la_row *rows, size_t n, const struct la_attn_spec *spec, int m,
                       int *count)
{
    double sum = 0.0;
    *count = 0;
    for (size_t i = 0; i < n; i++)
        if (rows[i].status == LA_ROW_OK && same_attention(&rows[i], spec, m) &&
            isfinite(rows[i].kl_mean)) {
            sum += rows[i].kl_mean;
            ++*count;
        }
    return *count ? sum / *count : NAN;
}

static int tsv_write(const char *path, const char *const *att, int na,
                     const struct la_attn_spec *specs, const struct la_fidelity *rows,
                     const int *ok, const int *dims, const double *hkl, int nseq, int steps,
                     double temperature, const char *ck_sha, struct la_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return LA_FAIL(err, LA_EIO, "cannot write '%s': %s", path, strerror(errno));
    fprintf(f, "attention\tm\teps\tseed_map\tsequences\tsteps\ttemperature\tpositions\tkl_mean\t"
               "kl_max\ttop1\tppl\tppl_softmax\tattn_kl_mean\tcheckpoint_sha256\n");
    for (int a = 0; a < na; a++) {
        const struct la_fidelity *r = &rows[a];
        const int sm = !strcmp(att[a], "softmax");
        fprintf(f, "%s\t%d\t%.17g\t%lu\t%d\t%d\t%.17g\t%ld\t%.17g\t%.17g\t%.17g\t%.17g\t%.17g\t"
                   "%.17g\t%s\n",
                att[a], dims[a], sm ? 0.0 : specs[a].eps, sm ? 0ul : specs[a].fm.seed, nseq,
                steps, temperature, ok[a] ? r->positions : 0L, ok[a] ? r->kl_mean : NAN,
                ok[a] ? r->kl_max : NAN, ok[a] ? r->top1 : NAN, ok[a] ? r->ppl : NAN,
                ok[a] ? r->ppl_ref : NAN, hkl[a], ck_sha);
    }
    if (fclose(f) != 0)
        return LA_FAIL(err, LA_EIO, "cannot write '%s' (disk full?)", path);
    return LA_OK;
}

/* --fidelity: samples nseq sequences from the softmax model (seeds seed .. seed + nseq − 1),
 * then compares each attention with it. */
static int run_fidelity(const struct la_llama *model, const char *const *att, int na,
                        const struct la_cell *c, unsigned long seed_map, int steps, int nseq,
                        unsigned long seed, double temperature, const char *tsv,
                        const char *heads, const char *ck_sha, struct la_error *err)
{
    const struct la_llama_config *cfg = la_llama_config(model);
    int32_t **seqs = calloc((size_t)nseq, sizeof *seqs);
    int *lens = calloc((size_t)nseq, sizeof *lens);
    struct la_attn_spec *specs = calloc((size_t)na, sizeof *specs);
    struct la_fidelity *rows = calloc((size_t)na, sizeof *rows);
    int *ok = calloc((size_t)na, sizeof *ok), *dims = calloc((size_t)na, sizeof *dims);
    double *hkl = calloc((size_t)na, sizeof *hkl);
    struct la_row *hrows = NULL;
    size_t nh = 0;
    double *logp = NULL;
    struct la_decoder *d = NULL;
    int rc = LA_OK;
    if (!seqs || !lens || !specs || !rows || !ok || !dims || !hkl) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory");
        goto done;
    }
    if (heads && (rc = la_results_read(heads, &hrows, &nh, err)) != LA_OK)
        goto done;
    const struct la_attn_spec softmax = {.map = "softmax"};
    rc = la_decoder_new(model, &softmax, steps, &d, err);
    const int32_t bos = LA_TOKEN_BOS;
    long total = 0;
    for (int s = 0; rc == LA_OK && s < nseq; s++) {
        seqs[s] = malloc(((size_t)steps + 1) * sizeof **seqs);
        if (!seqs[s]) {
            rc = LA_FAIL(err, LA_ENOMEM, "out of memory");
            break;
        }
        const struct la_sampling smp = {.temperature = temperature, .seed = seed + (unsigned long)s};
        double secs;
        rc = la_decoder_generate(d, &bos, 1, steps, &smp, seqs[s], &lens[s], &secs, err);
        total += lens[s] - 1;
    }
    la_decoder_free(d);
    if (rc)
        goto done;
    rc = la_fidelity_reference(model, (const int32_t *const *)seqs, lens, nseq, &logp, err);
    if (rc)
        goto done;
    printf("model-level fidelity against softmax attention, teacher-forced on %d sequence%s the "
           "softmax model sampled (seeds %lu..%lu, temperature %g, up to %d positions): %ld "
           "positions\n",
           nseq, nseq == 1 ? "" : "s", seed, seed + (unsigned long)nseq - 1, temperature, steps,
           total);
    printf("%-10s %5s %9s %10s %10s %8s %9s %11s%s\n", "attention", "m", "eps", "KL_mean",
           "KL_max", "top1", "ppl", "ppl_softmax", heads ? "  attn_KL (heads)" : "");
    for (int a = 0; a < na; a++) {
        make_spec(att[a], c, seed_map, cfg->head_size, &specs[a]);
        struct la_error e;
        la_error_clear(&e);
        const int r = la_fidelity_run(model, &specs[a], (const int32_t *const *)seqs, lens, nseq,
                                      logp, &rows[a], &e);
        const int sm = !strcmp(att[a], "softmax");
        dims[a] = sm ? cfg->head_size
                     : (int)featuremap_params_dim(la_cell_map(att[a]), &specs[a].fm);
        int nk = 0;
        hkl[a] = sm ? 0.0 : heads ? heads_kl(hrows, nh, &specs[a], dims[a], &nk) : NAN;
        char hk[48] = "";
        if (heads && (sm || nk))
            snprintf(hk, sizeof hk, "  %10.4g (%d)", hkl[a], sm ? 0 : nk);
        else if (heads)
            snprintf(hk, sizeof hk, "  %10s", "-");
        if (r != LA_OK) {
            if (r != LA_ENUMERIC) {
                *err = e;
                rc = r;
                goto done;
            }
            printf("%-10s %5d %9s   failed: %s%s\n", att[a], dims[a], "", e.msg, hk);
            continue;
        }
        ok[a] = 1;
        char eps[32];
        snprintf(eps, sizeof eps, "%g", specs[a].eps);
        printf("%-10s %5d %9s %10.4g %10.4g %8.4f %9.4f %11.4f%s\n", att[a], dims[a],
               sm ? "-" : eps, rows[a].kl_mean, rows[a].kl_max, rows[a].top1, rows[a].ppl,
               rows[a].ppl_ref, hk);
    }
    if (tsv)
        rc = tsv_write(tsv, att, na, specs, rows, ok, dims, hkl, nseq, steps, temperature, ck_sha,
                       err);
done:
    for (int s = 0; seqs && s < nseq; s++)
        free(seqs[s]);
    free(seqs);
    free(lens);
    free(specs);
    free(rows);
    free(ok);
    free(dims);
    free(hkl);
    free(hrows);
    free(logp);
    return rc;
}

/* ---- the command ------------------------------------------------------------------------ */

int cmd_generate(int argc, char **argv)
{
    const char *tok_path = NULL, *attention = NULL, *prompt = NULL, *tsv = NULL, *heads = NULL;
    long long steps = -1, seed = -1, seed_map = -1, sequences = -1;
    int greedy_flag = 0, fidelity = 0;
    double temperature = NAN; /* NaN: not given, 1.0 */
    struct la_cell cell;
    la_cell_defaults(&cell);
    static struct la_param_rows pr;
    struct la_option opts[LA_NPARAMS + 16];
    size_t n = 0;
    opts[n++] = (struct la_option)LA_OPT_STRING(
        "tokenizer", 0, &tok_path, "PATH", "tokenizer file (default: tok512.bin beside the checkpoint)");
    opts[n++] = (struct la_option)LA_OPT_STRING(
        "attention", 0, &attention, "softmax|MAP",
        "softmax attention (the step kernel over a KV cache) or linear attention with this "
        "feature map (`linattn list`); default softmax.  With --fidelity a comma list, default "
        "softmax and every map that needs no file");
    const size_t first_param = n;
    n += la_param_options(&cell, is_attn_param, 0, &pr, opts + n);
    const size_t n_params = n - first_param;
    opts[n++] = (struct la_option)LA_OPT_INT64(
        "seed-map", 0, &seed_map, "S", 0, 4294967295LL,
        "seed of the map's random draws, one map for every layer and head (default 1)");
    opts[n++] = (struct la_option)LA_OPT_INT64(
        "steps", 0, &steps, "N", 1, INT_MAX,
        "positions to run, the prompt included, 1..seq_len (default 256 or seq_len if "
        "smaller); fewer if the model starts a new story (predicts BOS)");
    opts[n++] = (struct la_option)LA_OPT_FLAG(
        "greedy", 0, &greedy_flag, "next token = argmax of the logits (the default without --seed)");
    opts[n++] = (struct la_option)LA_OPT_INT64(
        "seed", 0, &seed, "S", 0, 4294967295LL,
        "sample from softmax(logits / temperature) with GSL's mt19937 seeded by S; with "
        "--fidelity the first of the sequences' seeds (default 1)");
    opts[n++] = (struct la_option){
        .name = "temperature", .kind = LA_OPTK_REAL, .flags = LA_OPT_ABOVE_MIN,
        .target = &temperature, .argname = "X", .min = 0.0, .max = HUGE_VAL,
        .help = "sampling temperature > 0 (default 1.0; needs --seed, or --fidelity)"};
    opts[n++] = (struct la_option)LA_OPT_STRING(
        "prompt", 0, &prompt, "TEXT", "start the text with TEXT (encoded with the tokenizer's "
        "merges, fed through the same attention)");
    opts[n++] = (struct la_option)LA_OPT_FLAG(
        "fidelity", 0, &fidelity,
        "instead of generating: sample sequences with softmax attention and compare each "
        "attention with it under teacher forcing (KL, top-1 agreement, perplexity)");
    opts[n++] = (struct la_option)LA_OPT_INT64(
        "sequences", 0, &sequences, "K", 1, 1000, "--fidelity: sequences to sample (default 4)");
    opts[n++] = (struct la_option)LA_OPT_STRING(
        "tsv", 0, &tsv, "FILE", "--fidelity: also write the table as TSV to FILE");
    opts[n++] = (struct la_option)LA_OPT_STRING(
        "heads", 0, &heads, "RESULTS.h5",
        "--fidelity: a results file of the same maps on the model's own heads "
        "(experiments/real-stories260k.yaml); adds each map's mean attention KL there at the "
        "same m (attn_kl_mean)");
    opts[n++] = (struct la_option)LA_OPT_END;
    const struct la_command cmd = {
        .prog = PROG,
        .args = "CHECKPOINT.bin",
        .intro = "Runs a Llama-2 checkpoint (llama2.c legacy v0 format, e.g. stories260K.bin) "
                 "token by token from BOS (and the prompt) with each layer's attention computed "
                 "by the kernel table's step operation: softmax over a KV cache, or linear "
                 "attention with a feature map and a state per layer and head.  Prints the text "
                 "on stdout and the speed (tokens per second) on stderr.",
        .opts = opts,
        .outro = "Exit status: 0 ok, 2 bad arguments or a malformed checkpoint/tokenizer, 1 other.",
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (nargs > 1) {
        fprintf(stderr, PROG ": one checkpoint expected, got '%s' and '%s'\n", argv[0], argv[1]);
        return 2;
    }
    if (nargs == 0) {
        fprintf(stderr, PROG ": no checkpoint given (" PROG " --help)\n");
        return 2;
    }
    const char *ckpt = argv[0];
    const int have_temp = !isnan(temperature);
    if (!have_temp)
        temperature = 1.0;
    if (greedy_flag && seed >= 0) {
        fprintf(stderr, PROG ": --greedy and --seed exclude each other\n");
        return 2;
    }
    if (fidelity && (greedy_flag || prompt)) {
        fprintf(stderr, PROG ": --fidelity samples its sequences from BOS: it takes neither "
                        "--greedy nor --prompt\n");
        return 2;
    }
    if (!fidelity && have_temp && seed < 0) {
        fprintf(stderr, PROG ": --temperature applies to sampling: add --seed S\n");
        return 2;
    }
    if (!fidelity && (sequences >= 0 || tsv || heads)) {
        fprintf(stderr, PROG ": --%s applies to --fidelity\n",
                tsv ? "tsv" : heads ? "heads" : "sequences");
        return 2;
    }
    const char *att[MAX_MAPS];
    int na = 0;
    if (attention) {
        if (parse_attention(attention, att, &na))
            return 2;
        if (!fidelity && na > 1) {
            fprintf(stderr, PROG ": --attention takes one name (a list needs --fidelity)\n");
            return 2;
        }
    } else if (fidelity) {
        att[na++] = "softmax";
        for (const char *const *m = featuremap_names(); *m && na < MAX_MAPS; m++) {
            const struct la_param *w = &la_params[LA_PARAM_WEIGHTS];
            if (!la_param_reads(w, la_cell_map(*m)))
                att[na++] = *m;
        }
    } else {
        att[na++] = "softmax";
    }
    if (check_params(&pr, n_params, att, na, seed_map >= 0))
        return 2;
    if (cell.A_auto) {
        fprintf(stderr, PROG ": --A auto is fitted to sampled queries and keys, which generation "
                        "does not have: give A a number\n");
        return 2;
    }

    char tok_default[PATH_MAX];
    if (!tok_path) {
        const char *slash = strrchr(ckpt, '/');
        int w = slash ? snprintf(tok_default, sizeof tok_default, "%.*s/tok512.bin",
                                 (int)(slash - ckpt), ckpt)
                      : snprintf(tok_default, sizeof tok_default, "tok512.bin");
        if (w < 0 || (size_t)w >= sizeof tok_default) {
            fprintf(stderr, PROG ": checkpoint path too long\n");
            return 2;
        }
        tok_path = tok_default;
    }

    struct la_error err;
    la_error_clear(&err);
    struct la_llama *model = NULL;
    struct la_tokenizer *tok = NULL;
    struct la_decoder *dec = NULL;
    int32_t *prompt_tok = NULL, *tokens = NULL;
    char ck_sha[65] = "";
    int rc = la_llama_load(ckpt, &model, ck_sha, &err);
    if (rc)
        goto fail;
    const struct la_llama_config *cfg = la_llama_config(model);
    rc = la_tokenizer_load(tok_path, cfg->vocab_size, &tok, NULL, &err);
    if (rc)
        goto fail;
    if (steps < 0)
        steps = cfg->seq_len < DEFAULT_STEPS ? cfg->seq_len : DEFAULT_STEPS;
    if (steps > cfg->seq_len) {
        rc = LA_FAIL(&err, LA_EINVAL, "--steps %lld exceeds the model's seq_len %d", steps,
                     cfg->seq_len);
        goto fail;
    }
    const unsigned long smap = seed_map < 0 ? 1ul : (unsigned long)seed_map;
    if (fidelity) {
        rc = run_fidelity(model, att, na, &cell, smap, (int)steps,
                          sequences < 0 ? 4 : (int)sequences, seed < 0 ? 1ul : (unsigned long)seed,
                          temperature, tsv, heads, ck_sha, &err);
        if (rc)
            goto fail;
        la_tokenizer_free(tok);
        la_llama_free(model);
        return 0;
    }

    /* The prompt: BOS and at most one token per byte of the text with its leading space. */
    const size_t prompt_cap = prompt ? strlen(prompt) + 2 : 1;
    if (prompt_cap > INT_MAX) {
        rc = LA_FAIL(&err, LA_EINVAL, "--prompt is too long (%zu bytes)", prompt_cap);
        goto fail;
    }
    prompt_tok = malloc(prompt_cap * sizeof *prompt_tok);
    tokens = malloc(((size_t)steps + 1) * sizeof *tokens);
    if (!prompt_tok || !tokens) {
        rc = LA_FAIL(&err, LA_ENOMEM, "out of memory for %lld steps", steps);
        goto fail;
    }
    int n_prompt = 1;
    prompt_tok[0] = LA_TOKEN_BOS;
    if (prompt) {
        rc = la_tokenizer_encode(tok, prompt, prompt_tok, (int)prompt_cap, &n_prompt, &err);
        if (rc)
            goto fail;
        if (n_prompt > steps) {
            rc = LA_FAIL(&err, LA_EINVAL,
                         "--prompt is %d tokens with BOS: it does not fit in --steps %lld",
                         n_prompt, steps);
            goto fail;
        }
    }
    struct la_attn_spec spec;
    make_spec(att[0], &cell, smap, cfg->head_size, &spec);
    rc = la_decoder_new(model, &spec, (int)steps, &dec, &err);
    if (rc)
        goto fail;
    const struct la_sampling smp = {
        .greedy = seed < 0, .temperature = temperature, .seed = seed < 0 ? 0 : (uint64_t)seed};
    int nt = 0;
    double secs = 0.0;
    rc = la_decoder_generate(dec, prompt_tok, n_prompt, (int)steps, &smp, tokens, &nt, &secs, &err);
    if (rc)
        goto fail;
    for (int t = 1; t < nt; t++)
        put_piece(stdout, la_tokenizer_piece(tok, tokens[t - 1], tokens[t]));
    putchar('\n');
    fflush(stdout);
    const int fed = la_decoder_pos(dec);
    const struct featuremap *fm = la_decoder_map(dec);
    fprintf(stderr, "%d tokens (%d prompt, %d generated) in %.4f s: %.0f tokens/s; attention %s",
            fed, n_prompt, nt - n_prompt, secs, secs > 0 ? fed / secs : 0.0, la_decoder_kernel(dec));
    if (fm)
        fprintf(stderr, ", map %s m=%d eps=%g seed-map=%lu", fm->type->name, fm->m, spec.eps, smap);
    fprintf(stderr, ", %s\n", smp.greedy ? "greedy" : "sampled");
    free(prompt_tok);
    free(tokens);
    la_decoder_free(dec);
    la_tokenizer_free(tok);
    la_llama_free(model);
    return 0;
fail:
    fprintf(stderr, PROG ": %s\n", err.msg);
    free(prompt_tok);
    free(tokens);
    la_decoder_free(dec);
    la_tokenizer_free(tok);
    la_llama_free(model);
    return la_exit_code(rc);
}
