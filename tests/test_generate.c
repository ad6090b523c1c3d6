/* test_generate.c — tests of token-by-token generation with step kernels and of model-level
 * fidelity (harness/model/generate.c, harness/cli/cmd_generate.c), and of the prompt encoder
 * (harness/model/llama.c): linear attention through the decoder equals causal linear attention
 * from its definition in double (stabilised maps, eps, grouped-query heads); generation is
 * deterministic for a map seed and a sampling seed; the prompt encoder gives the tokens the
 * model generated; the command's bad input exits 2 with one line.
 *
 * The real model is found through $LINATTN_DATA (the Makefile sets it), else ../shared/data;
 * the tests skip with a message when it is absent.  Run: make build/tests/test_generate &&
 * build/tests/test_generate (from the repository root, where ./linattn lives).
 */
#include <math.h>
#include <unistd.h>

#include "../harness/core/sysinfo.h"
#include "../harness/model/generate.h"
#include "../harness/model/llama.h"
#include "testutil.h"

struct fixture {
    char ckpt[512]; /* stories260K.bin, or "" when the data is absent */
    char tok[512];
    struct la_llama *m;
    struct la_tokenizer *t;
    char dir[64]; /* mkdtemp directory for the CLI's outputs */
};

static int setup(void **state)
{
    la_startup();
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/linattn_generate_XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    const char *data = getenv("LINATTN_DATA");
    data = data && *data ? data : "../shared/data";
    char path[512];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin", data);
    if (access(path, R_OK) == 0) {
        snprintf(fx->ckpt, sizeof fx->ckpt, "%s", path);
        snprintf(fx->tok, sizeof fx->tok, "%s/stories260K/tok512.bin", data);
        struct la_error err;
        la_error_clear(&err);
        if (la_llama_load(fx->ckpt, &fx->m, NULL, &err) ||
            la_tokenizer_load(fx->tok, la_llama_config(fx->m)->vocab_size, &fx->t, NULL, &err))
            return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    la_tokenizer_free(fx->t);
    la_llama_free(fx->m);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void need_data(const struct fixture *fx)
{
    if (!fx->m) {
        print_message("stories260K not found under $LINATTN_DATA or ../shared/data: "
                      "skipping the real-model test\n");
        skip();
    }
}

static struct la_attn_spec linear_spec(const char *map, int m, unsigned long seed, double eps)
{
    struct la_attn_spec s;
    memset(&s, 0, sizeof s);
    s.map = map;
    featuremap_params_default(&s.fm, 8);
    s.fm.m = m;
    s.fm.seed = seed;
    s.eps = eps;
    return s;
}

static void generate(const struct fixture *fx, const struct la_attn_spec *spec,
                     const struct la_sampling *s, int steps, int32_t *tokens, int *n)
{
    struct la_error err;
    la_error_clear(&err);
    struct la_decoder *d = NULL;
    assert_int_equal(la_decoder_new(fx->m, spec, steps, &d, &err), LA_OK);
    const int32_t bos = LA_TOKEN_BOS;
    double secs;
    assert_int_equal(la_decoder_generate(d, &bos, 1, steps, s, tokens, n, &secs, &err), LA_OK);
    la_decoder_free(d);
}

/* ---- softmax attention: the known story -------------------------------------------------- */

static const char *const known_story =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball.";

/* Greedy decoding with the softmax step kernel gives the model's own greedy story
 * (la_llama_generate, the reference forward pass) token for token, and its known text. */
static void test_softmax_story(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    struct la_error err;
    la_error_clear(&err);
    struct la_capture *cap = NULL;
    const int steps = 256;
    const struct la_gen_opts opts = {.steps = steps, .greedy = 1};
    assert_int_equal(la_llama_generate(fx->m, fx->t, &opts, &cap, &err), LA_OK);
    assert_int_equal(strncmp(cap->text, known_story, strlen(known_story)), 0);

    const struct la_attn_spec spec = {.map = "softmax"};
    struct la_decoder *d = NULL;
    assert_int_equal(la_decoder_new(fx->m, &spec, steps, &d, &err), LA_OK);
    assert_string_equal(la_decoder_kernel(d), "softmax_step");
    assert_null(la_decoder_map(d));
    int32_t tokens[257];
    int n = 0;
    double secs;
    const int32_t bos = LA_TOKEN_BOS;
    const struct la_sampling greedy = {.greedy = 1};
    assert_int_equal(la_decoder_generate(d, &bos, 1, steps, &greedy, tokens, &n, &secs, &err),
                     LA_OK);
    /* The capture holds the T tokens fed; the decoder also the last one predicted (unless the
     * story ended with BOS). */
    assert_true(n >= cap->T);
    assert_memory_equal(tokens, cap->tokens, (size_t)cap->T * sizeof *tokens);
    if (cap->next_token != LA_TOKEN_BOS)
        assert_int_equal(tokens[cap->T], cap->next_token);
    la_decoder_free(d);
    la_capture_free(cap);

    /* The command prints the same text. */
    char out[16384];
    assert_int_equal(tu_run(out, sizeof out, "generate '%s' --greedy --steps 64", fx->ckpt), 0);
    assert_int_equal(strncmp(out, known_story, strlen(known_story)), 0);
    assert_non_null(strstr(out, "tokens/s; attention softmax_step, greedy"));
}

/* ---- fidelity ----------------------------------------------------------------------------- */

/* Softmax against itself: KL 0 and agreement 1 exactly, the same perplexity; a linear map:
 * KL > 0, agreement below 1, finite perplexities; the CLI's table and TSV. */
static void test_fidelity(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    struct la_error err;
    la_error_clear(&err);
    const int nseq = 2, steps = 64;
    int32_t buf[2][65];
    const int32_t *seqs[2] = {buf[0], buf[1]};
    int lens[2];
    const struct la_attn_spec sm = {.map = "softmax"};
    for (int s = 0; s < nseq; s++) {
        const struct la_sampling smp = {.temperature = 1.0, .seed = 1 + (uint64_t)s};
        generate(fx, &sm, &smp, steps, buf[s], &lens[s]);
    }
    double *logp = NULL;
    assert_int_equal(la_fidelity_reference(fx->m, seqs, lens, nseq, &logp, &err), LA_OK);
    struct la_fidelity f;
    assert_int_equal(la_fidelity_run(fx->m, &sm, seqs, lens, nseq, logp, &f, &err), LA_OK);
    assert_int_equal(f.positions, lens[0] - 1 + lens[1] - 1);
    assert_true(f.kl_mean == 0.0 && f.kl_max == 0.0);
    assert_true(f.top1 == 1.0);
    assert_true(f.ppl == f.ppl_ref && f.ppl > 1.0 && isfinite(f.ppl));

    const struct la_attn_spec lin = linear_spec("prf", 32, 1, 1e-6);
    struct la_fidelity g;
    assert_int_equal(la_fidelity_run(fx->m, &lin, seqs, lens, nseq, logp, &g, &err), LA_OK);
    print_message("prf m=32: KL %.4f (max %.4f), top-1 %.3f, ppl %.3f (softmax %.3f)\n",
                  g.kl_mean, g.kl_max, g.top1, g.ppl, g.ppl_ref);
    assert_int_equal(g.positions, f.positions);
    assert_true(g.kl_mean > 0.0 && g.kl_max >= g.kl_mean && isfinite(g.kl_max));
    assert_true(g.top1 > 0.0 && g.top1 < 1.0);
    assert_true(isfinite(g.ppl) && g.ppl_ref == f.ppl_ref);
    free(logp);

    char out[8192], tsv[128], cmd[512];
    snprintf(tsv, sizeof tsv, "%s/fid.tsv", fx->dir);
    assert_int_equal(tu_run(out, sizeof out,
                            "generate '%s' --fidelity --attention softmax,elu1,prf --m 16 "
                            "--sequences 2 --steps 48 --tsv '%s'",
                            fx->ckpt, tsv),
                     0);
    assert_non_null(strstr(out, "softmax        8         -          0          0   1.0000"));
    assert_non_null(strstr(out, "\nprf           16"));
    snprintf(cmd, sizeof cmd, "awk -F'\t' 'NR == 1 && $1 == \"attention\" && $9 == \"kl_mean\" "
                              "{ h = 1 } NR == 2 && $1 == \"softmax\" && $9 == 0 && $11 == 1 "
                              "{ s = 1 } END { exit !(h && s && NR == 4) }' '%s'",
             tsv);
    assert_int_equal(system(cmd), 0);
}

/* ---- linear attention through the decoder against its definition ----------------------- */

/* T tokens of one layer through la_decoder_attention, against
 *   y = Σ_j φ(q)ᵀφ(k_j) v_j / (Σ_j φ(q)ᵀφ(k_j) + eps),  j <= t,
 * in double from the map's unstabilised (FM_RAW) features, query head h reading KV head h/2.
 * The keys' norms vary from token to token, so a stabilised map's key shift rises and falls
 * and the state is rescaled both ways; eps is large enough to matter. */
static void check_linear_attention(const struct fixture *fx, const char *map, int m, double eps)
{
    const struct la_llama_config *cfg = la_llama_config(fx->m);
    const int T = 48, H = cfg->n_heads, KV = cfg->n_kv_heads, hs = cfg->head_size;
    const int group = H / KV;
    struct la_attn_spec spec = linear_spec(map, m, 3, eps);
    struct la_error err;
    la_error_clear(&err);
    struct la_decoder *d = NULL;
    assert_int_equal(la_decoder_new(fx->m, &spec, T, &d, &err), LA_OK);
    const struct featuremap *fm = la_decoder_map(d);
    assert_non_null(fm);
    const int M = fm->m;
    float *q = malloc((size_t)T * H * hs * sizeof *q), *k = malloc((size_t)T * KV * hs * sizeof *k);
    float *v = malloc((size_t)T * KV * hs * sizeof *v), *y = malloc((size_t)T * H * hs * sizeof *y);
    float *pq = malloc((size_t)T * H * M * sizeof *pq), *pk = malloc((size_t)T * KV * M * sizeof *pk);
    float *work = malloc((featuremap_work_floats(fm, (size_t)T * H) + 1) * sizeof *work);
    assert_true(q && k && v && y && pq && pk && work);
    tu_fill(q, (size_t)T * H * hs, 1.0f, 11);
    tu_fill(k, (size_t)T * KV * hs, 1.0f, 12);
    tu_fill(v, (size_t)T * KV * hs, 1.0f, 13);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < KV * hs; i++)
            k[(size_t)t * KV * hs + i] *= (float)(0.5 + (t * 7 % 5)); /* norms 0.5x .. 4.5x */
    for (int t = 0; t < T; t++)
        assert_int_equal(la_decoder_attention(d, 0, t, q + (size_t)t * H * hs,
                                              k + (size_t)t * KV * hs, v + (size_t)t * KV * hs,
                                              y + (size_t)t * H * hs, &err),
                         LA_OK);
    assert_int_equal(featuremap_apply(fm, FM_RAW, q, (size_t)T * H, pq, work), LA_OK);
    assert_int_equal(featuremap_apply(fm, FM_RAW, k, (size_t)T * KV, pk, work), LA_OK);
    double e2 = 0.0, r2 = 0.0;
    for (int t = 0; t < T; t++)
        for (int h = 0; h < H; h++) {
            const float *fq = pq + ((size_t)t * H + h) * M;
            double num[64] = {0}, den = 0.0;
            for (int j = 0; j <= t; j++) {
                const float *fk = pk + ((size_t)j * KV + h / group) * M;
                const float *vj = v + ((size_t)j * KV + h / group) * hs;
                double s = 0.0;
                for (int i = 0; i < M; i++)
                    s += (double)fq[i] * fk[i];
                den += s;
                for (int c = 0; c < hs; c++)
                    num[c] += s * vj[c];
            }
            for (int c = 0; c < hs; c++) {
                const double ref = num[c] / (den + eps);
                const double got = y[((size_t)t * H + h) * hs + c];
                e2 += (got - ref) * (got - ref);
                r2 += ref * ref;
            }
        }
    const double rel = sqrt(e2 / r2);
    print_message("%s m=%d eps=%g: relative error %.2e against the definition\n", map, M, eps, rel);
    assert_true(rel < 1e-4);
    free(q), free(k), free(v), free(y), free(pq), free(pk), free(work);
    la_decoder_free(d);
}

static void test_linear_attention_definition(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    check_linear_attention(fx, "prf", 32, 0.1);  /* stabilised (a shift per row and per key) */
    check_linear_attention(fx, "prf", 16, 1e-6);
    check_linear_attention(fx, "hyp", 16, 0.05); /* stabilised, two exponentials */
    check_linear_attention(fx, "elu1", 0, 0.1);  /* no stabiliser */
}

/* ---- generation ------------------------------------------------------------------------- */

static void test_linear_deterministic(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    const struct la_attn_spec spec = linear_spec("prf", 32, 5, 1e-6);
    const struct la_sampling s = {.temperature = 1.0, .seed = 9};
    int32_t a[101], b[101];
    int na = 0, nb = 0;
    generate(fx, &spec, &s, 100, a, &na);
    generate(fx, &spec, &s, 100, b, &nb);
    assert_true(na > 1);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, (size_t)na * sizeof *a);

    /* Another map seed draws another map: the logits of BOS differ. */
    struct la_error err;
    la_error_clear(&err);
    const struct la_attn_spec other = linear_spec("prf", 32, 6, 1e-6);
    struct la_decoder *d1 = NULL, *d2 = NULL;
    assert_int_equal(la_decoder_new(fx->m, &spec, 4, &d1, &err), LA_OK);
    assert_int_equal(la_decoder_new(fx->m, &other, 4, &d2, &err), LA_OK);
    const float *l1 = NULL, *l2 = NULL;
    assert_int_equal(la_decoder_feed(d1, LA_TOKEN_BOS, &l1, &err), LA_OK);
    assert_int_equal(la_decoder_feed(d2, LA_TOKEN_BOS, &l2, &err), LA_OK);
    const int V = la_llama_config(fx->m)->vocab_size;
    int differ = 0;
    assert_int_equal(la_decoder_feed(d1, 100, &l1, &err), LA_OK);
    float first[512];
    memcpy(first, l1, (size_t)V * sizeof *first);
    assert_int_equal(la_decoder_feed(d2, 100, &l2, &err), LA_OK);
    for (int i = 0; i < V; i++)
        differ |= first[i] != l2[i];
    assert_true(differ);
    la_decoder_free(d1);
    la_decoder_free(d2);
}

/* A full decoder refuses another token; a reset empties it. */
static void test_decoder_capacity(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    const struct la_attn_spec spec = linear_spec("elu1", 0, 1, 1e-6);
    struct la_error err;
    la_error_clear(&err);
    struct la_decoder *d = NULL;
    assert_int_equal(la_decoder_new(fx->m, &spec, 2, &d, &err), LA_OK);
    const float *l;
    assert_int_equal(la_decoder_feed(d, LA_TOKEN_BOS, &l, &err), LA_OK);
    assert_int_equal(la_decoder_feed(d, 100, &l, &err), LA_OK);
    assert_int_equal(la_decoder_feed(d, 100, &l, &err), LA_EINVAL);
    la_decoder_reset(d);
    assert_int_equal(la_decoder_pos(d), 0);
    assert_int_equal(la_decoder_feed(d, LA_TOKEN_BOS, &l, &err), LA_OK);
    la_decoder_free(d);

    struct la_attn_spec bad = linear_spec("nosuchmap", 0, 1, 1e-6);
    assert_int_equal(la_decoder_new(fx->m, &bad, 2, &d, &err), LA_ENAME);
    assert_non_null(strstr(err.msg, "prf"));
    bad = linear_spec("gerf", 16, 1, 1e-6);
    bad.fm.A_auto = 1;
    assert_int_equal(la_decoder_new(fx->m, &bad, 2, &d, &err), LA_EINVAL);
}

/* ---- the prompt encoder ----------------------------------------------------------------- */

/* The tokens of the greedy story's first sentence, encoded from its text, are the tokens the
 * model generated for it; an empty prompt is BOS alone; bytes without a piece of their own go
 * through the byte pieces. */
static void test_encode(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    struct la_error err;
    la_error_clear(&err);
    struct la_capture *cap = NULL;
    const struct la_gen_opts opts = {.steps = 40, .greedy = 1};
    assert_int_equal(la_llama_generate(fx->m, fx->t, &opts, &cap, &err), LA_OK);
    const char *sentence = "Once upon a time, there was a little girl named Lily.";
    const size_t len = strlen(sentence);
    assert_int_equal(strncmp(cap->text, sentence, len), 0);
    /* The generated tokens that spell the sentence. */
    int n_gen = 1;
    size_t at = 0;
    while (at < len && n_gen < cap->T) {
        at += strlen(la_tokenizer_piece(fx->t, cap->tokens[n_gen - 1], cap->tokens[n_gen]));
        n_gen++;
    }
    assert_int_equal(at, len);
    int32_t tok[64];
    int n = 0;
    assert_int_equal(la_tokenizer_encode(fx->t, sentence, tok, 64, &n, &err), LA_OK);
    assert_int_equal(n, n_gen);
    assert_memory_equal(tok, cap->tokens, (size_t)n * sizeof *tok);
    la_capture_free(cap);

    assert_int_equal(la_tokenizer_encode(fx->t, "", tok, 64, &n, &err), LA_OK);
    assert_int_equal(n, 1);
    assert_int_equal(tok[0], LA_TOKEN_BOS);
    /* é (two bytes) and a tab: byte pieces, decoded back to the same bytes. */
    assert_int_equal(la_tokenizer_encode(fx->t, "a\xc3\xa9\tb", tok, 64, &n, &err), LA_OK);
    char back[64] = "";
    for (int i = 1; i < n; i++)
        strcat(back, la_tokenizer_piece(fx->t, tok[i - 1], tok[i]));
    assert_string_equal(back, "a\xc3\xa9\tb");
    /* Too long for the room given. */
    assert_int_equal(la_tokenizer_encode(fx->t, sentence, tok, 4, &n, &err), LA_EINVAL);
}

/* ---- the command line ------------------------------------------------------------------- */

static void expect_bad(const char *args, const char *needle)
{
    char out[4096];
    const int rc = tu_run(out, sizeof out, "generate %s", args);
    if (rc != 2 || !strstr(out, needle) || strchr(out, '\n') != out + strlen(out) - 1)
        fail_msg("generate %s: exit %d, output '%s' (expected exit 2, one line with '%s')", args,
                 rc, out, needle);
}

static void test_cli_errors(void **state)
{
    struct fixture *fx = *state;
    expect_bad("", "no checkpoint given");
    expect_bad("/nonexistent/model.bin", "cannot open checkpoint");
    expect_bad("a.bin b.bin", "one checkpoint expected");
    need_data(fx);
    char a[1024];
#define BAD(fmt, needle)                                                                          \
    do {                                                                                          \
        snprintf(a, sizeof a, "'%s' " fmt, fx->ckpt);                                             \
        expect_bad(a, needle);                                                                    \
    } while (0)
    BAD("--attention gerff", "unknown attention 'gerff' (did you mean 'gerf'?)");
    BAD("--attention nosuch", "valid (softmax or a feature map): softmax, elu1");
    BAD("--attention elu1 --m 16", "map 'elu1' does not take --m");
    BAD("--attention prf --relu-eps 0.1", "map 'prf' does not take --relu-eps (it reads: m,");
    BAD("--attention elu1 --seed-map 3", "map 'elu1' does not take --seed-map");
    BAD("--m 16", "--m applies to none of the attentions given (softmax)");
    BAD("--eps 0.1", "--eps applies to none");
    BAD("--attention prf --m 0", "--m must be in 1..");
    BAD("--attention prf --draw diagonal", "valid draws: iid, orthogonal");
    BAD("--attention gerf --A auto", "give A a number");
    BAD("--attention gerf --A 0.3", "--A must be");
    BAD("--attention prf,elu1", "a list needs --fidelity");
    BAD("--greedy --seed 3", "exclude each other");
    BAD("--temperature 0.5", "add --seed S");
    BAD("--temperature 0", "--temperature");
    BAD("--steps 0", "--steps");
    BAD("--steps 100000", "exceeds the model's seq_len 512");
    BAD("--steps 3 --prompt 'Once upon a time'", "it does not fit in --steps 3");
    BAD("--tsv x.tsv", "--tsv applies to --fidelity");
    BAD("--fidelity --prompt hi", "neither --greedy nor --prompt");
    BAD("--fidelity --attention prf,prf", "lists 'prf' twice");
    BAD("--tokenizer /nonexistent/tok.bin", "cannot open tokenizer");
    BAD("--heads x.h5", "--heads applies to --fidelity");
    BAD("--fidelity --sequences 1 --steps 8 --heads /nonexistent/r.h5", "cannot open");
#undef BAD
}

/* Cuts the last line of out (tu_run's output ends with the speed line on stderr). */
static void cut_last_line(char *out)
{
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n')
        out[--n] = '\0';
    char *nl = strrchr(out, '\n');
    if (nl)
        nl[1] = '\0';
}

/* The command prints the text on stdout and the speed on stderr; linear generation is
 * deterministic for its seeds. */
static void test_cli_linear(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    char o1[8192], o2[8192];
    assert_int_equal(tu_run(o1, sizeof o1,
                            "generate '%s' --attention prf --m 32 --seed-map 4 --seed 2 "
                            "--steps 80",
                            fx->ckpt),
                     0);
    assert_int_equal(tu_run(o2, sizeof o2,
                            "generate '%s' --attention prf --m 32 --seed-map 4 --seed 2 "
                            "--steps 80",
                            fx->ckpt),
                     0);
    assert_non_null(strstr(o1, "tokens/s; attention linear_step, map prf m=32"));
    cut_last_line(o1);
    cut_last_line(o2);
    assert_true(strlen(o1) > 20);
    assert_string_equal(o1, o2);
    assert_int_equal(tu_run(o1, sizeof o1,
                            "generate '%s' --attention elu1 --steps 20 --prompt 'Once upon'",
                            fx->ckpt),
                     0);
    assert_non_null(strstr(o1, "tokens/s; attention linear_step, map elu1"));
    assert_non_null(strstr(o1, "(3 prompt,"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_story),
        cmocka_unit_test(test_fidelity),
        cmocka_unit_test(test_linear_attention_definition),
        cmocka_unit_test(test_linear_deterministic),
        cmocka_unit_test(test_decoder_capacity),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_cli_linear),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
