/* test_capture.c — tests of `linattn capture` and the Llama-2 forward pass behind it (llama.c,
 * cmd_capture.c): the trained stories260K model reproduces its known greedy story (library and
 * CLI), the captured Q, K, V reproduce the captured attention output when attention is recomputed
 * in double, sampling is deterministic per seed, and every malformed checkpoint or tokenizer exits
 * 2 with one line on stderr and leaves no output file.
 *
 * The real model is found through $LINATTN_DATA (the Makefile sets it), else ../shared/data; the
 * tests that need it skip with a message when it is absent.  A tiny random model that this file
 * writes itself covers the same paths without the data.  Run: make build/tests/test_capture &&
 * build/tests/test_capture (from the repository root, where ./linattn lives).
 */
#include <dirent.h>
#include <errno.h>
#include <hdf5.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../harness/core/sysinfo.h"
#include "../harness/model/llama.h"
#include "testutil.h"

static const char *const known_story =
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
    "park. One day, she saw a big, red ball.";

struct fixture {
    char dir[64];   /* mkdtemp directory for everything this file writes */
    char ckpt[512]; /* stories260K.bin, or "" when the data is absent */
    char tok[512];
    char h5[128];        /* the CLI's greedy capture of the real model (64 steps) */
    char tiny_ckpt[128]; /* a tiny random model written by the test */
    char tiny_tok[128];
    char tiny_h5[128];
    int cli_rc; /* exit code of the real-model CLI capture */
    char cli_out[4096];
};

/* ---- small files ------------------------------------------------------------------------ */

static int write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    return (fclose(f) == 0 && w == n) ? 0 : -1;
}

/* Floats a legacy checkpoint with header h holds after the header. */
static size_t model_floats(const int32_t h[7])
{
    size_t D = (size_t)h[0], Hf = (size_t)h[1], L = (size_t)h[2], hs = D / (size_t)h[3];
    size_t kvd = (size_t)h[4] * hs, V = (size_t)(h[5] < 0 ? -h[5] : h[5]), S = (size_t)h[6];
    size_t per = 2 * D + 2 * D * D + 2 * kvd * D + 3 * Hf * D;
    return V * D * (h[5] < 0 ? 2 : 1) + L * per + D + S * hs;
}

/* Writes header h and n_floats high-entropy floats (RMSNorm weights are floats too: fine). */
static int write_model(const char *path, const int32_t h[7], size_t n_floats, uint64_t seed)
{
    size_t n = 28 + n_floats * sizeof(float);
    unsigned char *buf = malloc(n);
    if (!buf)
        return -1;
    memcpy(buf, h, 28);
    float *w = malloc(n_floats * sizeof(float) + 1);
    if (!w) {
        free(buf);
        return -1;
    }
    tu_fill(w, n_floats, 0.4f, seed);
    memcpy(buf + 28, w, n_floats * sizeof(float));
    int rc = write_bytes(path, buf, n);
    free(w);
    free(buf);
    return rc;
}

/* A tokenizer of V tokens: <unk>, BOS, EOS, three byte pieces, then short made-up words. */
static int write_tokenizer(const char *path, int V, int extra_bytes)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int32_t max_len = 8;
    int ok = fwrite(&max_len, 4, 1, f) == 1;
    for (int i = 0; i < V; i++) {
        char piece[16];
        if (i == 0)
            snprintf(piece, sizeof piece, "<unk>");
        else if (i == 1)
            snprintf(piece, sizeof piece, "\n<s>\n");
        else if (i == 2)
            snprintf(piece, sizeof piece, "\n</s>\n");
        else if (i < 6) /* 0xC3 0xA9 is "é" in UTF-8; 0xFF is never valid UTF-8 */
            snprintf(piece, sizeof piece, "<0x%02X>", i == 3 ? 0xC3 : i == 4 ? 0xA9 : 0xFF);
        else
            snprintf(piece, sizeof piece, " w%d", i);
        float score = -(float)i;
        int32_t len = (int32_t)strlen(piece);
        ok &= fwrite(&score, 4, 1, f) == 1 && fwrite(&len, 4, 1, f) == 1 &&
              fwrite(piece, 1, (size_t)len, f) == (size_t)len;
    }
    for (int i = 0; i < extra_bytes; i++)
        ok &= fputc('x', f) != EOF;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static const int32_t tiny_header[7] = {16, 24, 2, 4, 2, -32, 40}; /* unshared classifier */

/* ---- HDF5 reading ----------------------------------------------------------------------- */

static char *read_str_attr(hid_t f, const char *name)
{
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0)
        return NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char *s = NULL, *copy = NULL;
    if (H5Aread(a, mt, &s) >= 0 && s) {
        copy = strdup(s);
        H5free_memory(s);
    }
    H5Tclose(mt);
    H5Aclose(a);
    return copy;
}

static long long read_int_attr(hid_t f, const char *name)
{
    long long v = -999;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT);
    if (a < 0)
        return v;
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0)
        v = -999;
    H5Aclose(a);
    return v;
}

/* Reads a float dataset of rank 4 into a new buffer; dims out. */
static float *read_tensor(hid_t f, const char *name, hsize_t dims[4])
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0)
        return NULL;
    hid_t s = H5Dget_space(d);
    float *x = NULL;
    if (H5Sget_simple_extent_ndims(s) == 4) {
        H5Sget_simple_extent_dims(s, dims, NULL);
        x = malloc(dims[0] * dims[1] * dims[2] * dims[3] * sizeof(float));
        if (x && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) < 0) {
            free(x);
            x = NULL;
        }
    }
    H5Sclose(s);
    H5Dclose(d);
    return x;
}

/* ---- attention recomputed in double ---------------------------------------------------- */

/* For every layer and head: softmax(q kᵀ / √hs, causal) v in double from the file's Q, K, V,
 * compared with its attn_out; returns the worst relative Frobenius error over (layer, head). */
static double worst_attention_error(const char *h5, int *T_out)
{
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hsize_t dq[4], dk[4], dv[4], da[4];
    float *Q = read_tensor(f, "Q", dq), *K = read_tensor(f, "K", dk);
    float *V = read_tensor(f, "V", dv), *A = read_tensor(f, "attn_out", da);
    assert_non_null(Q);
    assert_non_null(K);
    assert_non_null(V);
    assert_non_null(A);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(dq[i], dk[i]);
        assert_int_equal(dq[i], dv[i]);
        assert_int_equal(dq[i], da[i]);
    }
    assert_int_equal(dq[0], read_int_attr(f, "n_layers"));
    assert_int_equal(dq[1], read_int_attr(f, "n_heads"));
    assert_int_equal(dq[3], read_int_attr(f, "head_size"));
    assert_int_equal(dq[2], read_int_attr(f, "n_positions"));
    size_t L = dq[0], H = dq[1], T = dq[2], hs = dq[3];
    size_t group = H / (size_t)read_int_attr(f, "n_kv_heads");
    *T_out = (int)T;
    double *y = malloc(T * hs * sizeof(double)), *p = malloc(T * sizeof(double));
    assert_non_null(y);
    assert_non_null(p);
    double worst = 0.0;
    for (size_t l = 0; l < L; l++)
        for (size_t h = 0; h < H; h++) {
            size_t base = (l * H + h) * T * hs;
            const float *q = Q + base, *k = K + base, *v = V + base;
            /* Heads sharing a KV head carry identical K and V. */
            size_t first = (l * H + h / group * group) * T * hs;
            assert_memory_equal(k, K + first, T * hs * sizeof(float));
            assert_memory_equal(v, V + first, T * hs * sizeof(float));
            for (size_t i = 0; i < T; i++) {
                /* scores and max */
                double mx = -INFINITY;
                for (size_t j = 0; j <= i; j++) {
                    double s = 0.0;
                    for (size_t c = 0; c < hs; c++)
                        s += (double)q[i * hs + c] * (double)k[j * hs + c];
                    p[j] = s / sqrt((double)hs);
                    mx = p[j] > mx ? p[j] : mx;
                }
                /* exp and sum, normalise, weighted sum */
                double sum = 0.0;
                for (size_t j = 0; j <= i; j++)
                    sum += (p[j] = exp(p[j] - mx));
                for (size_t c = 0; c < hs; c++) {
                    double acc = 0.0;
                    for (size_t j = 0; j <= i; j++)
                        acc += p[j] * (double)v[j * hs + c];
                    y[i * hs + c] = acc / sum;
                }
            }
            double e = tu_rel_err(A + base, y, T * hs);
            worst = e > worst ? e : worst;
        }
    free(y);
    free(p);
    free(Q);
    free(K);
    free(V);
    free(A);
    H5Fclose(f);
    return worst;
}

/* ---- fixture ---------------------------------------------------------------------------- */

static int setup(void **state)
{
    la_startup();
    struct fixture *fx = calloc(1, sizeof *fx);
    if (!fx)
        return -1;
    snprintf(fx->dir, sizeof fx->dir, "/tmp/linattn_capture_XXXXXX");
    if (!mkdtemp(fx->dir))
        return -1;
    const char *data = getenv("LINATTN_DATA");
    char path[512];
    snprintf(path, sizeof path, "%s/stories260K/stories260K.bin",
             data && *data ? data : "../shared/data");
    if (access(path, R_OK) == 0) {
        snprintf(fx->ckpt, sizeof fx->ckpt, "%s", path);
        snprintf(fx->tok, sizeof fx->tok, "%s/stories260K/tok512.bin",
                 data && *data ? data : "../shared/data");
        snprintf(fx->h5, sizeof fx->h5, "%s/real.h5", fx->dir);
        fx->cli_rc = tu_run(fx->cli_out, sizeof fx->cli_out, "capture '%s' --steps 64 -o '%s'",
                            fx->ckpt, fx->h5);
    }
    snprintf(fx->tiny_ckpt, sizeof fx->tiny_ckpt, "%s/tiny.bin", fx->dir);
    snprintf(fx->tiny_tok, sizeof fx->tiny_tok, "%s/tiny_tok.bin", fx->dir);
    snprintf(fx->tiny_h5, sizeof fx->tiny_h5, "%s/tiny.h5", fx->dir);
    if (write_model(fx->tiny_ckpt, tiny_header, model_floats(tiny_header), 0x5eed) ||
        write_tokenizer(fx->tiny_tok, 32, 0))
        return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
    int rc = system(cmd);
    free(fx);
    return rc == 0 ? 0 : -1;
}

static void need_data(const struct fixture *fx)
{
    if (!fx->ckpt[0]) {
        print_message("stories260K not found under $LINATTN_DATA or ../shared/data: "
                      "skipping the real-model test\n");
        skip();
    }
}

/* ---- tests: the real model -------------------------------------------------------------- */

static void test_greedy_story_library(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    struct la_error err;
    la_error_clear(&err);
    struct la_llama *m = NULL;
    struct la_tokenizer *tok = NULL;
    struct la_capture *cap = NULL;
    char sha[65];
    assert_int_equal(la_llama_load(fx->ckpt, &m, sha, &err), LA_OK);
    assert_string_equal(sha, "b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696");
    const struct la_llama_config *c = la_llama_config(m);
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->n_layers, 5);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 4);
    assert_int_equal(c->head_size, 8);
    assert_int_equal(c->shared_classifier, 1);
    assert_int_equal(la_tokenizer_load(fx->tok, c->vocab_size, &tok, sha, &err), LA_OK);
    struct la_gen_opts o = {.steps = 48, .greedy = 1};
    assert_int_equal(la_llama_generate(m, tok, &o, &cap, &err), LA_OK);
    assert_int_equal(cap->T, 48);
    assert_int_equal(cap->tokens[0], LA_TOKEN_BOS);
    /* 48 positions decode to well over the 30 tokens of the known opening. */
    assert_true(strncmp(cap->text, known_story, strlen(known_story)) == 0);
    la_capture_free(cap);
    la_tokenizer_free(tok);
    la_llama_free(m);
}

static void test_greedy_story_cli(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    if (fx->cli_rc != 0)
        print_message("capture output: %s\n", fx->cli_out);
    assert_int_equal(fx->cli_rc, 0);
    hid_t f = H5Fopen(fx->h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    char *text = read_str_attr(f, "text");
    assert_non_null(text);
    assert_true(strncmp(text, known_story, strlen(known_story)) == 0);
    free(text);
    char *sha = read_str_attr(f, "tokenizer_sha256");
    assert_string_equal(sha, "037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312");
    free(sha);
    assert_int_equal(read_int_attr(f, "greedy"), 1);
    assert_int_equal(read_int_attr(f, "steps"), 64);
    assert_int_equal(read_int_attr(f, "dim"), 64);
    assert_int_equal(read_int_attr(f, "vocab_size"), 512);
    /* tokens: int32 (T), BOS first */
    hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT);
    assert_true(d >= 0);
    int32_t tokens[64];
    assert_true(H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens) >= 0);
    assert_int_equal(tokens[0], 1);
    H5Dclose(d);
    H5Fclose(f);
}

static void test_real_attention_reproduced(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    assert_int_equal(fx->cli_rc, 0);
    int T = 0;
    double e = worst_attention_error(fx->h5, &T);
    print_message("stories260K, %d positions: worst relative error of attn_out vs double "
                  "recomputation %.3g\n",
                  T, e);
    assert_int_equal(T, 64);
    assert_true(e < 1e-4);
}

/* Greedy decoding ends the story (predicts BOS) before 400 positions: the capture stops there
 * and its tensors, compacted from 400 slots to T, still reproduce attention. */
static void test_real_early_stop(void **state)
{
    struct fixture *fx = *state;
    need_data(fx);
    char out[4096], h5[160];
    snprintf(h5, sizeof h5, "%s/real400.h5", fx->dir);
    assert_int_equal(tu_run(out, sizeof out, "capture '%s' --steps 400 -o '%s'", fx->ckpt, h5), 0);
    int T = 0;
    double e = worst_attention_error(h5, &T);
    print_message("greedy story: %d positions, worst relative error %.3g\n", T, e);
    assert_true(T > 64 && T < 400);
    assert_true(e < 1e-4);
    hid_t f = H5Fopen(h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_int_equal(read_int_attr(f, "next_token"), LA_TOKEN_BOS);
    assert_int_equal(read_int_attr(f, "steps"), 400);
    H5Fclose(f);
}

/* ---- tests: a tiny model written here (no data needed) ----------------------------------- */

static void test_tiny_model_cli(void **state)
{
    struct fixture *fx = *state;
    char out[4096];
    int rc = tu_run(out, sizeof out,
                    "capture '%s' --tokenizer '%s' --steps 40 --seed 2 --temperature 20 "
                    "--through-bos -o '%s'",
                    fx->tiny_ckpt, fx->tiny_tok, fx->tiny_h5);
    if (rc != 0)
        print_message("%s\n", out);
    assert_int_equal(rc, 0);
    int T = 0;
    double e = worst_attention_error(fx->tiny_h5, &T);
    assert_int_equal(T, 40);
    assert_true(e < 1e-4);
    hid_t f = H5Fopen(fx->tiny_h5, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_int_equal(read_int_attr(f, "seed"), 2);
    assert_int_equal(read_int_attr(f, "greedy"), 0);
    assert_int_equal(read_int_attr(f, "n_kv_heads"), 2);
    /* The text attribute is valid UTF-8 even when the model emits a stray byte 0xFF. */
    char *text = read_str_attr(f, "text");
    assert_non_null(text);
    assert_null(strchr(text, '\xFF'));
    hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT);
    int32_t tokens[40];
    assert_true(d >= 0 && H5Dread(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens) >= 0);
    H5Dclose(d);
    int n_ff = 0;
    for (int t = 1; t < 40; t++)
        n_ff += tokens[t] == 5;
    print_message("tiny model: %d stray 0xFF bytes in the sampled text\n", n_ff);
    if (n_ff)
        assert_non_null(strstr(text, "\xEF\xBF\xBD"));
    free(text);
    H5Fclose(f);
}

static void test_tiny_sampling_deterministic(void **state)
{
    struct fixture *fx = *state;
    struct la_error err;
    struct la_llama *m = NULL;
    struct la_tokenizer *tok = NULL;
    assert_int_equal(la_llama_load(fx->tiny_ckpt, &m, NULL, &err), LA_OK);
    assert_int_equal(la_llama_config(m)->shared_classifier, 0);
    assert_int_equal(la_tokenizer_load(fx->tiny_tok, 32, &tok, NULL, &err), LA_OK);
    /* Byte pieces decode to their byte; a leading space goes after BOS only. */
    assert_string_equal(la_tokenizer_piece(tok, 7, 4), "\xA9");
    assert_string_equal(la_tokenizer_piece(tok, 7, 5), "\xFF");
    assert_string_equal(la_tokenizer_piece(tok, 7, 9), " w9");
    assert_string_equal(la_tokenizer_piece(tok, LA_TOKEN_BOS, 9), "w9");
    assert_null(la_tokenizer_piece(tok, 7, 32));
    struct la_gen_opts o = {.steps = 40, .temperature = 1.0, .seed = 2385, .through_bos = 1};
    struct la_capture *a = NULL, *b = NULL, *c = NULL;
    assert_int_equal(la_llama_generate(m, tok, &o, &a, &err), LA_OK);
    assert_int_equal(la_llama_generate(m, tok, &o, &b, &err), LA_OK);
    o.seed = 2386;
    assert_int_equal(la_llama_generate(m, tok, &o, &c, &err), LA_OK);
    assert_memory_equal(a->tokens, b->tokens, 40 * sizeof(int32_t));
    assert_memory_equal(a->q, b->q, (size_t)2 * 4 * 40 * 4 * sizeof(float)); /* L H T hs */
    assert_true(memcmp(a->tokens, c->tokens, 40 * sizeof(int32_t)) != 0);
    /* Bad options are refused, not clamped. */
    struct la_capture *d = NULL;
    o.steps = 41;
    assert_int_equal(la_llama_generate(m, tok, &o, &d, &err), LA_EINVAL);
    o.steps = 8;
    o.temperature = 0.0;
    assert_int_equal(la_llama_generate(m, tok, &o, &d, &err), LA_EINVAL);
    assert_null(d);
    la_capture_free(a);
    la_capture_free(b);
    la_capture_free(c);
    la_tokenizer_free(tok);
    la_llama_free(m);
}

/* ---- tests: malformed inputs -------------------------------------------------------------- */

/* Runs capture on a bad input and checks: exit 2, exactly one output line naming the file, and
 * nothing written into the output directory. */
static void expect_rejected(const struct fixture *fx, const char *ckpt, const char *tok,
                            const char *needle)
{
    char outdir[128], out[4096];
    snprintf(outdir, sizeof outdir, "%s/out", fx->dir);
    assert_int_equal(mkdir(outdir, 0777) == 0 || errno == EEXIST, 1);
    int rc =
        tu_run(out, sizeof out, "capture '%s' --tokenizer '%s' -o '%s/x.h5'", ckpt, tok, outdir);
    print_message("  %s -> exit %d: %s", strrchr(ckpt, '/') + 1, rc, out);
    assert_int_equal(rc, 2);
    size_t lines = 0;
    for (const char *p = out; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 1);
    assert_non_null(strstr(out, needle));
    DIR *d = opendir(outdir);
    assert_non_null(d);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        entries += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    assert_int_equal(entries, 0);
}

static void test_bad_checkpoints(void **state)
{
    struct fixture *fx = *state;
    char p[160];
    size_t n = model_floats(tiny_header);

    snprintf(p, sizeof p, "%s/empty.bin", fx->dir);
    assert_int_equal(write_bytes(p, "", 0), 0);
    expect_rejected(fx, p, fx->tiny_tok, "empty");

    snprintf(p, sizeof p, "%s/short_header.bin", fx->dir);
    assert_int_equal(write_bytes(p, tiny_header, 17), 0);
    expect_rejected(fx, p, fx->tiny_tok, "truncated");

    snprintf(p, sizeof p, "%s/truncated.bin", fx->dir);
    assert_int_equal(write_model(p, tiny_header, n - 1, 1), 0);
    expect_rejected(fx, p, fx->tiny_tok, "truncated");

    snprintf(p, sizeof p, "%s/oversized.bin", fx->dir);
    assert_int_equal(write_model(p, tiny_header, n + 3, 1), 0);
    expect_rejected(fx, p, fx->tiny_tok, "expected");

    snprintf(p, sizeof p, "%s/magic.bin", fx->dir);
    int32_t v1[7] = {0x616b3432, 1, 16, 24, 2, 4, 2};
    assert_int_equal(write_model(p, v1, n, 1), 0);
    expect_rejected(fx, p, fx->tiny_tok, "ak42");

    /* Impossible headers: a zero size, dim not divisible by heads, heads not divisible by KV
     * heads, sizes whose product overflows 64 bits. */
    static const int32_t bad[][7] = {
        {16, 24, 0, 4, 2, 32, 40},
        {18, 24, 2, 4, 2, 32, 40},
        {16, 24, 2, 4, 3, 32, 40},
        {16, 24, -2, 4, 2, 32, 40},
        {0x40000000, 0x7fffffff, 0x7fffffff, 1, 1, 0x7fffffff, 0x7fffffff},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(p, sizeof p, "%s/impossible%zu.bin", fx->dir, i);
        assert_int_equal(write_model(p, bad[i], 64, 1), 0);
        expect_rejected(fx, p, fx->tiny_tok, "impossible");
    }

    snprintf(p, sizeof p, "%s/missing.bin", fx->dir);
    expect_rejected(fx, p, fx->tiny_tok, "cannot open");
}

static void test_bad_tokenizers(void **state)
{
    struct fixture *fx = *state;
    char p[160];
    snprintf(p, sizeof p, "%s/tok_extra.bin", fx->dir); /* 33 bytes too many: vocab mismatch */
    assert_int_equal(write_tokenizer(p, 32, 33), 0);
    expect_rejected(fx, fx->tiny_ckpt, p, "after its 32 tokens");
    snprintf(p, sizeof p, "%s/tok_short.bin", fx->dir);
    assert_int_equal(write_tokenizer(p, 20, 0), 0);
    expect_rejected(fx, fx->tiny_ckpt, p, "truncated");
    snprintf(p, sizeof p, "%s/tok_empty.bin", fx->dir);
    assert_int_equal(write_bytes(p, "", 0), 0);
    expect_rejected(fx, fx->tiny_ckpt, p, "empty");
}

static void test_bad_arguments(void **state)
{
    struct fixture *fx = *state;
    char out[4096];
    const char *c = fx->tiny_ckpt, *t = fx->tiny_tok;
    assert_int_equal(tu_run(out, sizeof out, "capture --help"), 0);
    assert_non_null(strstr(out, "usage: linattn capture"));
    assert_int_equal(tu_run(out, sizeof out,
                            "capture '%s' --tokenizer '%s' --greedy --seed 3 "
                            "-o '%s/a.h5'",
                            c, t, fx->dir),
                     2);
    assert_int_equal(tu_run(out, sizeof out,
                            "capture '%s' --tokenizer '%s' --stpes 3 -o "
                            "'%s/a.h5'",
                            c, t, fx->dir),
                     2);
    assert_non_null(strstr(out, "did you mean '--steps'"));
    assert_int_equal(tu_run(out, sizeof out,
                            "capture '%s' --tokenizer '%s' --steps 0 -o "
                            "'%s/a.h5'",
                            c, t, fx->dir),
                     2);
    assert_int_equal(tu_run(out, sizeof out,
                            "capture '%s' --tokenizer '%s' --steps 41 -o "
                            "'%s/a.h5'",
                            c, t, fx->dir),
                     2);
    assert_non_null(strstr(out, "seq_len 40"));
    assert_int_equal(tu_run(out, sizeof out,
                            "capture '%s' --tokenizer '%s' --seed 1 "
                            "--temperature 0 -o '%s/a.h5'",
                            c, t, fx->dir),
                     2);
    assert_int_equal(tu_run(out, sizeof out, "capture '%s' --tokenizer '%s'", c, t), 2);
    assert_int_equal(access("a.h5", F_OK) != 0, 1);
    char a[160];
    snprintf(a, sizeof a, "%s/a.h5", fx->dir);
    assert_int_equal(access(a, F_OK) != 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_story_library),
        cmocka_unit_test(test_greedy_story_cli),
        cmocka_unit_test(test_real_attention_reproduced),
        cmocka_unit_test(test_real_early_stop),
        cmocka_unit_test(test_tiny_model_cli),
        cmocka_unit_test(test_tiny_sampling_deterministic),
        cmocka_unit_test(test_bad_checkpoints),
        cmocka_unit_test(test_bad_tokenizers),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests_name("capture", tests, setup, teardown);
}
