/* llama.c — checkpoint and tokenizer readers and a minimal fp32 Llama-2 forward pass that
 * captures attention inputs (see llama.h).  Written from the format description in
 * docs/data-layout.md; it is not a port of llama2.c.
 *
 * Why plain loops: the models this is for (stories260K: D = 64, 5 layers) take microseconds per
 * token, and readable code is easier to check against the format than a tuned one.  The forward
 * pass accumulates in fp32 like the model's reference implementation; RoPE angles are computed in
 * double so they do not drift at long positions.  The checkpoint is assumed little-endian, and so
 * is the host (checked at compile time).
 *
 * Tests: tests/test_capture.c (greedy text from NOTICE.md, attention recomputed from the capture,
 * malformed checkpoints).
 */
#include "llama.h"

#include <errno.h>
#include <gsl/gsl_rng.h>
#include <limits.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llama.c reads little-endian checkpoints directly; add byte swapping for this host"
#endif

struct la_llama {
    struct la_llama_config cfg;
    float *data;            /* every float of the file after the header, in file order */
    const float *tok_emb;   /* (V, D) */
    const float *rms_att;   /* (L, D) */
    const float *wq;        /* (L, D, D) */
    const float *wk;        /* (L, KV*hs, D) */
    const float *wv;        /* (L, KV*hs, D) */
    const float *wo;        /* (L, D, D) */
    const float *rms_ffn;   /* (L, D) */
    const float *w1;        /* (L, Hf, D) */
    const float *w2;        /* (L, D, Hf) */
    const float *w3;        /* (L, Hf, D) */
    const float *rms_final; /* (D) */
    const float *cls;       /* (V, D): tok_emb when shared */
};

struct la_tokenizer {
    int vocab_size;
    char **piece; /* vocab_size NUL-terminated pieces, pointing into arena */
    float *score; /* vocab_size merge scores (the encoder merges the highest first) */
    int *sorted;  /* token ids ordered by piece (strcmp), then id: the encoder's lookup */
    size_t max_len; /* the longest piece, bytes */
    char *arena;
    char byte_piece[512]; /* byte b as the string byte_piece + 2b ("\xHH\0") */
};

/* ---- small helpers -------------------------------------------------------------------- */

/* Finishes a SHA-256 and writes it as 64 lowercase hex digits plus NUL. */
static void hex_digest(struct sha256_ctx *ctx, char *hex)
{
    uint8_t d[SHA256_DIGEST_SIZE];
    sha256_digest(ctx, sizeof d, d);
    for (size_t i = 0; i < sizeof d; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int32_t read_i32(const unsigned char *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Opens a regular file for reading and returns its size; LA_EIO with a message otherwise. */
static int open_regular(const char *path, const char *what, FILE **f, long long *size,
                        struct la_error *err)
{
    *f = fopen(path, "rb");
    if (!*f)
        return LA_FAIL(err, LA_EIO, "cannot open %s '%s': %s", what, path, strerror(errno));
    struct stat st;
    if (fstat(fileno(*f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(*f);
        *f = NULL;
        return LA_FAIL(err, LA_EIO, "%s '%s' is not a regular file", what, path);
    }
    *size = (long long)st.st_size;
    return LA_OK;
}

/* a * b into *r, 0 on overflow of the uint64 range. */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_mul_overflow(a, b, r);
}
static int add_ok(uint64_t a, uint64_t b, uint64_t *r)
{
    return !__builtin_add_overflow(a, b, r);
}

/* ---- checkpoint ------------------------------------------------------------------------- */

/* Validates the header fields and computes the number of floats the file must hold after it.
 * Returns LA_OK or LA_EFORMAT with a message. */
static int check_header(const char *path, const int32_t h[7], struct la_llama_config *c,
                        uint64_t *n_floats, struct la_error *err)
{
    const char *names[7] = {"dim",        "hidden_dim", "n_layers", "n_heads",
                            "n_kv_heads", "vocab_size", "seq_len"};
    for (int i = 0; i < 7; i++) {
        if (i == 5 ? (h[i] == 0 || h[i] == INT32_MIN) : h[i] <= 0)
            return LA_FAIL(err, LA_EFORMAT,
                           "%s: impossible checkpoint header: %s = %d (header: dim=%d "
                           "hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d "
                           "seq_len=%d)",
                           path, names[i], h[i], h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    }
    c->dim = h[0];
    c->hidden_dim = h[1];
    c->n_layers = h[2];
    c->n_heads = h[3];
    c->n_kv_heads = h[4];
    c->shared_classifier = h[5] > 0;
    c->vocab_size = h[5] > 0 ? h[5] : -h[5];
    c->seq_len = h[6];
    if (c->dim % c->n_heads != 0)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s: impossible checkpoint header: dim = %d is not divisible by "
                       "n_heads = %d",
                       path, c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s: impossible checkpoint header: n_heads = %d is not divisible by "
                       "n_kv_heads = %d",
                       path, c->n_heads, c->n_kv_heads);
    c->head_size = c->dim / c->n_heads;
    if (c->head_size % 2 != 0)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s: impossible checkpoint header: head size dim/n_heads = %d is odd "
                       "(RoPE rotates pairs)",
                       path, c->head_size);

    /* Count floats in uint64 with overflow checks: a corrupt header must not wrap around to a
     * size that happens to match the file. */
    uint64_t D = (uint64_t)c->dim, Hf = (uint64_t)c->hidden_dim, L = (uint64_t)c->n_layers,
             V = (uint64_t)c->vocab_size, S = (uint64_t)c->seq_len;
    uint64_t kvd = (uint64_t)c->n_kv_heads * (uint64_t)c->head_size;
    uint64_t t = 0, total = 0;
    int ok = 1;
    /* token embedding, classifier when separate */
    ok &= mul_ok(V, D, &t) && add_ok(total, t, &total);
    if (!c->shared_classifier)
        ok &= add_ok(total, t, &total);
    /* per layer: two RMSNorm vectors, wq, wk, wv, wo, w1, w2, w3 */
    uint64_t per = 0, dd = 0, kd = 0, hd = 0;
    ok &= mul_ok(D, D, &dd) && mul_ok(kvd, D, &kd) && mul_ok(Hf, D, &hd);
    ok &= add_ok(per, 2 * D, &per) && add_ok(per, dd, &per) && add_ok(per, dd, &per);
    ok &= add_ok(per, kd, &per) && add_ok(per, kd, &per);
    ok &= add_ok(per, hd, &per) && add_ok(per, hd, &per) && add_ok(per, hd, &per);
    ok &= mul_ok(per, L, &t) && add_ok(total, t, &total);
    /* final RMSNorm, then the two RoPE tables (seq_len x hs/2 each) */
    ok &= add_ok(total, D, &total);
    ok &= mul_ok(S, (uint64_t)c->head_size, &t) && add_ok(total, t, &total);
    /* The byte count must fit in a file offset too. */
    ok &= total <= (uint64_t)(LLONG_MAX - LA_LLAMA_HEADER_BYTES) / sizeof(float);
    if (!ok)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s: impossible checkpoint header: sizes overflow (dim=%d hidden_dim=%d "
                       "n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d)",
                       path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
    *n_floats = total;
    return LA_OK;
}

int la_llama_load(const char *path, struct la_llama **out, char *sha256_hex, struct la_error *err)
{
    *out = NULL;
    FILE *f = NULL;
    long long size = 0;
    struct la_llama *m = NULL;
    int rc = open_regular(path, "checkpoint", &f, &size, err);
    if (rc)
        return rc;
    unsigned char hdr[LA_LLAMA_HEADER_BYTES];
    if (size == 0) {
        rc = LA_FAIL(err, LA_EFORMAT, "%s: empty checkpoint file (0 bytes)", path);
        goto fail;
    }
    size_t want = size < (long long)sizeof hdr ? (size_t)size : sizeof hdr;
    if (fread(hdr, 1, want, f) != want) {
        rc = LA_FAIL(err, LA_EIO, "%s: read error: %s", path, strerror(errno));
        goto fail;
    }
    if (want >= 4) {
        uint32_t magic;
        memcpy(&magic, hdr, sizeof magic);
        if (magic == LA_LLAMA_MAGIC_V1) {
            rc = LA_FAIL(err, LA_EFORMAT,
                         "%s: newer llama2.c checkpoint format (magic \"ak42\"); linattn reads "
                         "only the legacy v0 format (export with --version 0)",
                         path);
            goto fail;
        }
    }
    if (want < sizeof hdr) {
        rc = LA_FAIL(err, LA_EFORMAT,
                     "%s: truncated checkpoint: %lld bytes, shorter than the %d-byte header", path,
                     size, LA_LLAMA_HEADER_BYTES);
        goto fail;
    }
    int32_t h[7];
    for (int i = 0; i < 7; i++)
        h[i] = read_i32(hdr + 4 * i);
    m = calloc(1, sizeof *m);
    if (!m) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory loading %s", path);
        goto fail;
    }
    uint64_t n = 0;
    rc = check_header(path, h, &m->cfg, &n, err);
    if (rc)
        goto fail;
    long long expect = LA_LLAMA_HEADER_BYTES + (long long)(n * sizeof(float));
    if (size != expect) {
        rc = LA_FAIL(err, LA_EFORMAT,
                     "%s: %s checkpoint: expected %lld bytes for dim=%d hidden_dim=%d "
                     "n_layers=%d n_heads=%d n_kv_heads=%d vocab_size=%d seq_len=%d, file has "
                     "%lld bytes",
                     path, size < expect ? "truncated" : "oversized", expect, h[0], h[1], h[2],
                     h[3], h[4], h[5], h[6], size);
        goto fail;
    }
    m->data = malloc(n * sizeof(float));
    if (!m->data) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory loading %s (%lld bytes)", path, size);
        goto fail;
    }
    if (fread(m->data, sizeof(float), n, f) != n) {
        rc = LA_FAIL(err, LA_EIO, "%s: read error: %s", path,
                     ferror(f) ? strerror(errno) : "file shrank while reading");
        goto fail;
    }
    if (sha256_hex) {
        struct sha256_ctx ctx;
        sha256_init(&ctx);
        sha256_update(&ctx, sizeof hdr, hdr);
        sha256_update(&ctx, n * sizeof(float), (const uint8_t *)m->data);
        hex_digest(&ctx, sha256_hex);
    }
    fclose(f);
    f = NULL;

    /* Point each tensor into the buffer, in file order. */
    const struct la_llama_config *c = &m->cfg;
    size_t D = (size_t)c->dim, Hf = (size_t)c->hidden_dim, L = (size_t)c->n_layers;
    size_t V = (size_t)c->vocab_size, kvd = (size_t)c->n_kv_heads * (size_t)c->head_size;
    const float *p = m->data;
    m->tok_emb = p, p += V * D;
    m->rms_att = p, p += L * D;
    m->wq = p, p += L * D * D;
    m->wk = p, p += L * kvd * D;
    m->wv = p, p += L * kvd * D;
    m->wo = p, p += L * D * D;
    m->rms_ffn = p, p += L * D;
    m->w1 = p, p += L * Hf * D;
    m->w2 = p, p += L * D * Hf;
    m->w3 = p, p += L * Hf * D;
    m->rms_final = p, p += D;
    p += (size_t)c->seq_len * (size_t)c->head_size; /* RoPE tables: recomputed, not read */
    m->cls = c->shared_classifier ? m->tok_emb : p;
    *out = m;
    return LA_OK;
fail:
    if (f)
        fclose(f);
    la_llama_free(m);
    return rc;
}

void la_llama_free(struct la_llama *m)
{
    if (!m)
        return;
    free(m->data);
    free(m);
}

const struct la_llama_config *la_llama_config(const struct la_llama *m)
{
    return &m->cfg;
}

/* ---- tokenizer -------------------------------------------------------------------------- */

/* qsort_r's order of token ids: by piece, then by id. */
static int cmp_piece(const void *a, const void *b, void *tok)
{
    const struct la_tokenizer *t = tok;
    const int i = *(const int *)a, j = *(const int *)b;
    const int c = strcmp(t->piece[i], t->piece[j]);
    return c ? c : (i > j) - (i < j);
}

/* The lowest id whose piece is the n bytes at s, or -1. */
static int find_piece(const struct la_tokenizer *t, const char *s, size_t n)
{
    int lo = 0, hi = t->vocab_size; /* the first sorted entry whose piece is >= s[0..n) */
    while (lo < hi) {
        const int mid = lo + (hi - lo) / 2;
        const char *p = t->piece[t->sorted[mid]];
        int c = strncmp(p, s, n);
        if (c == 0 && p[n] != '\0')
            c = 1; /* p extends s: after it */
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < t->vocab_size) {
        const char *p = t->piece[t->sorted[lo]];
        if (strncmp(p, s, n) == 0 && p[n] == '\0')
            return t->sorted[lo];
    }
    return -1;
}

int la_tokenizer_load(const char *path, int vocab_size, struct la_tokenizer **out, char *sha256_hex,
                      struct la_error *err)
{
    *out = NULL;
    FILE *f = NULL;
    long long size = 0;
    unsigned char *buf = NULL;
    struct la_tokenizer *t = NULL;
    int rc = open_regular(path, "tokenizer", &f, &size, err);
    if (rc)
        return rc;
    if (size < 4) {
        rc = LA_FAIL(err, LA_EFORMAT, "%s: %s tokenizer file (%lld bytes)", path,
                     size ? "truncated" : "empty", size);
        goto fail;
    }
    if (vocab_size <= 0 || size > (1ll << 30)) {
        rc = LA_FAIL(err, LA_EFORMAT, "%s: implausible tokenizer (%lld bytes, vocab %d)", path,
                     size, vocab_size);
        goto fail;
    }
    buf = malloc((size_t)size);
    t = calloc(1, sizeof *t);
    if (!buf || !t) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory loading %s", path);
        goto fail;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = LA_FAIL(err, LA_EIO, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    f = NULL;
    if (sha256_hex) {
        struct sha256_ctx ctx;
        sha256_init(&ctx);
        sha256_update(&ctx, (size_t)size, buf);
        hex_digest(&ctx, sha256_hex);
    }
    int32_t max_len = read_i32(buf);
    if (max_len <= 0) {
        rc = LA_FAIL(err, LA_EFORMAT, "%s: bad tokenizer header: max_token_length = %d", path,
                     max_len);
        goto fail;
    }
    /* Every piece needs at most its length + 1 bytes in the arena; the file bounds the sum. */
    t->vocab_size = vocab_size;
    t->piece = calloc((size_t)vocab_size, sizeof *t->piece);
    t->score = calloc((size_t)vocab_size, sizeof *t->score);
    t->sorted = calloc((size_t)vocab_size, sizeof *t->sorted);
    t->arena = malloc((size_t)size + (size_t)vocab_size);
    if (!t->piece || !t->score || !t->sorted || !t->arena) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory loading %s", path);
        goto fail;
    }
    size_t off = 4, used = 0, end = (size_t)size;
    for (int i = 0; i < vocab_size; i++) {
        if (end - off < 8) {
            rc = LA_FAIL(err, LA_EFORMAT,
                         "%s: truncated tokenizer: %d of %d tokens read (%lld bytes)", path, i,
                         vocab_size, size);
            goto fail;
        }
        memcpy(&t->score[i], buf + off, sizeof(float));
        int32_t len = read_i32(buf + off + 4);
        off += 8;
        if (len < 0 || len > max_len || (size_t)len > end - off) {
            rc = LA_FAIL(err, LA_EFORMAT,
                         "%s: %s tokenizer: token %d has length %d (max_token_length %d)", path,
                         (len >= 0 && len <= max_len) ? "truncated" : "corrupt", i, len, max_len);
            goto fail;
        }
        t->piece[i] = t->arena + used;
        t->max_len = (size_t)len > t->max_len ? (size_t)len : t->max_len;
        memcpy(t->arena + used, buf + off, (size_t)len);
        t->arena[used + (size_t)len] = '\0';
        used += (size_t)len + 1;
        off += (size_t)len;
    }
    if (off != end) {
        rc = LA_FAIL(err, LA_EFORMAT,
                     "%s: tokenizer has %zu bytes after its %d tokens: not the vocabulary of "
                     "this checkpoint?",
                     path, end - off, vocab_size);
        goto fail;
    }
    for (int b = 0; b < 256; b++) {
        t->byte_piece[2 * b] = (char)b;
        t->byte_piece[2 * b + 1] = '\0';
    }
    for (int i = 0; i < vocab_size; i++)
        t->sorted[i] = i;
    qsort_r(t->sorted, (size_t)vocab_size, sizeof *t->sorted, cmp_piece, t);
    free(buf);
    *out = t;
    return LA_OK;
fail:
    if (f)
        fclose(f);
    free(buf);
    la_tokenizer_free(t);
    return rc;
}

void la_tokenizer_free(struct la_tokenizer *t)
{
    if (!t)
        return;
    free(t->piece);
    free(t->score);
    free(t->sorted);
    free(t->arena);
    free(t);
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

const char *la_tokenizer_piece(const struct la_tokenizer *t, int prev, int token)
{
    if (token < 0 || token >= t->vocab_size)
        return NULL;
    const char *p = t->piece[token];
    /* SentencePiece marks a word start with a space; the first word of a text has none. */
    if (prev == LA_TOKEN_BOS && p[0] == ' ')
        p++;
    if (strlen(p) == 6 && !strncmp(p, "<0x", 3) && p[5] == '>') {
        int hi = hex_value(p[3]), lo = hex_value(p[4]);
        if (hi >= 0 && lo >= 0)
            return t->byte_piece + 2 * (hi * 16 + lo);
    }
    return p;
}

/* Bytes of the UTF-8 character whose lead byte is c (1 for a byte that does not start one:
 * the encoder then takes it alone, through its byte piece). */
static size_t utf8_len(unsigned char c)
{
    return c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xC2 && c <= 0xDF ? 2 : 1;
}

int la_tokenizer_encode(const struct la_tokenizer *t, const char *text, int32_t *tokens, int cap,
                        int *n, struct la_error *err)
{
    *n = 0;
    if (cap < 1)
        return LA_FAIL(err, LA_EINVAL, "no room for the BOS token");
    tokens[0] = LA_TOKEN_BOS;
    const size_t len = strlen(text);
    if (len == 0) {
        *n = 1;
        return LA_OK;
    }
    /* The text with its leading space, and at most one piece per byte of it. */
    char *buf = malloc(len + 2), *pair = malloc(2 * t->max_len + 1);
    int *ids = malloc((len + 1) * sizeof *ids);
    int rc = LA_OK;
    if (!buf || !pair || !ids) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory encoding a prompt of %zu bytes", len);
        goto done;
    }
    buf[0] = ' ';
    memcpy(buf + 1, text, len + 1);
    size_t count = 0;
    for (size_t i = 0; i < len + 1;) {
        size_t cl = utf8_len((unsigned char)buf[i]);
        for (size_t k = 1; k < cl; k++)
            if (i + k >= len + 1 || ((unsigned char)buf[i + k] & 0xC0) != 0x80)
                cl = 1; /* a truncated or malformed character: its bytes one by one */
        int id = find_piece(t, buf + i, cl);
        if (id >= 0) {
            ids[count++] = id;
        } else {
            for (size_t k = 0; k < cl; k++) {
                char hex[8];
                snprintf(hex, sizeof hex, "<0x%02X>", (unsigned char)buf[i + k]);
                id = find_piece(t, hex, strlen(hex));
                if (id < 0) {
                    rc = LA_FAIL(err, LA_EINVAL,
                                 "the prompt's byte 0x%02X has no piece in the tokenizer (no %s)",
                                 (unsigned char)buf[i + k], hex);
                    goto done;
                }
                ids[count++] = id;
            }
        }
        i += cl;
    }
    /* Merge the best-scoring adjacent pair (the first of equals) until none merges. */
    for (;;) {
        float best = -INFINITY;
        int best_id = -1;
        size_t best_at = 0;
        for (size_t i = 0; i + 1 < count; i++) {
            const size_t la = strlen(t->piece[ids[i]]), lb = strlen(t->piece[ids[i + 1]]);
            memcpy(pair, t->piece[ids[i]], la);
            memcpy(pair + la, t->piece[ids[i + 1]], lb);
            const int id = find_piece(t, pair, la + lb);
            if (id >= 0 && (best_id < 0 || t->score[id] > best)) {
                best = t->score[id];
                best_id = id;
                best_at = i;
            }
        }
        if (best_id < 0)
            break;
        ids[best_at] = best_id;
        memmove(ids + best_at + 1, ids + best_at + 2, (count - best_at - 2) * sizeof *ids);
        count--;
    }
    if (count + 1 > (size_t)cap) {
        rc = LA_FAIL(err, LA_EINVAL, "the prompt is %zu tokens, more than the %d that fit", count,
                     cap - 1);
        goto done;
    }
    for (size_t i = 0; i < count; i++)
        tokens[1 + i] = ids[i];
    *n = (int)count + 1;
done:
    free(buf);
    free(pair);
    free(ids);
    return rc;
}

/* Copies src (n bytes) to dst as valid UTF-8: each malformed byte and each NUL becomes U+FFFD, so
 * the text attribute is always a string h5py can decode.  dst needs 3n + 1 bytes. */
static void utf8_sanitize(char *dst, const unsigned char *src, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = src[i];
        size_t len = c < 0x80                   ? 1
                     : (c >= 0xC2 && c <= 0xDF) ? 2
                     : (c >= 0xE0 && c <= 0xEF) ? 3
                     : (c >= 0xF0 && c <= 0xF4) ? 4
                                                : 0;
        int ok = len > 0 && c != 0 && len <= n - i;
        for (size_t k = 1; ok && k < len; k++)
            ok = (src[i + k] & 0xC0) == 0x80;
        if (ok && len >= 3) {
            /* Reject overlong forms, surrogates and code points above U+10FFFF. */
            unsigned char c1 = src[i + 1];
            if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 > 0x9F) || (c == 0xF0 && c1 < 0x90) ||
                (c == 0xF4 && c1 > 0x8F))
                ok = 0;
        }
        if (ok) {
            memcpy(dst + o, src + i, len);
            o += len;
            i += len;
        } else {
            memcpy(dst + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i += 1;
        }
    }
    dst[o] = '\0';
}

/* ---- forward pass ----------------------------------------------------------------------- */

int la_llama_act_alloc(const struct la_llama *m, struct la_llama_act *a)
{
    const struct la_llama_config *c = &m->cfg;
    size_t D = (size_t)c->dim, kvd = (size_t)c->n_kv_heads * (size_t)c->head_size;
    memset(a, 0, sizeof *a);
    a->x = malloc(D * sizeof(float));
    a->xb = malloc(D * sizeof(float));
    a->xb2 = malloc(D * sizeof(float));
    a->q = malloc(D * sizeof(float));
    a->k = malloc(kvd * sizeof(float));
    a->v = malloc(kvd * sizeof(float));
    a->hb = malloc((size_t)c->hidden_dim * sizeof(float));
    a->hb2 = malloc((size_t)c->hidden_dim * sizeof(float));
    a->logits = malloc((size_t)c->vocab_size * sizeof(float));
    if (!a->x || !a->xb || !a->xb2 || !a->q || !a->k || !a->v || !a->hb || !a->hb2 ||
        !a->logits) {
        la_llama_act_free(a);
        return LA_ENOMEM;
    }
    return LA_OK;
}

void la_llama_act_free(struct la_llama_act *a)
{
    free(a->x);
    free(a->xb);
    free(a->xb2);
    free(a->q);
    free(a->k);
    free(a->v);
    free(a->hb);
    free(a->hb2);
    free(a->logits);
    memset(a, 0, sizeof *a);
}

/* Scratch for one capture: the activations of the current token, the scores of one head, and
 * the KV cache of every position so far, (L, steps, KV*hs); the capture being filled. */
struct run_state {
    struct la_llama_act act;
    float *scores;
    float *kcache, *vcache;
    int steps;
    const struct la_llama *m;
    struct la_capture *cap;
};

static void run_state_free(struct run_state *s)
{
    la_llama_act_free(&s->act);
    free(s->scores);
    free(s->kcache);
    free(s->vcache);
}

static int run_state_alloc(struct run_state *s, const struct la_llama *m, int steps)
{
    const struct la_llama_config *c = &m->cfg;
    size_t kvd = (size_t)c->n_kv_heads * (size_t)c->head_size;
    memset(s, 0, sizeof *s);
    s->steps = steps;
    s->m = m;
    int rc = la_llama_act_alloc(m, &s->act);
    s->scores = malloc((size_t)steps * sizeof(float));
    s->kcache = malloc((size_t)c->n_layers * (size_t)steps * kvd * sizeof(float));
    s->vcache = malloc((size_t)c->n_layers * (size_t)steps * kvd * sizeof(float));
    if (rc != LA_OK || !s->scores || !s->kcache || !s->vcache) {
        run_state_free(s);
        return LA_ENOMEM;
    }
    return LA_OK;
}

/* y = W x with W (n_out, n_in) row-major. */
static void matvec(float *restrict y, const float *restrict W, const float *restrict x,
                   size_t n_out, size_t n_in)
{
    for (size_t i = 0; i < n_out; i++) {
        const float *w = W + i * n_in;
        float acc = 0.0f;
        for (size_t j = 0; j < n_in; j++)
            acc += w[j] * x[j];
        y[i] = acc;
    }
}

/* y = x * w / sqrt(mean(x^2) + 1e-5); y may alias x. */
static void rmsnorm(float *y, const float *x, const float *w, size_t n)
{
    float ss = 0.0f;
    for (size_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    float inv = 1.0f / sqrtf(ss / (float)n + 1e-5f);
    for (size_t i = 0; i < n; i++)
        y[i] = w[i] * (x[i] * inv);
}

/* Rotates adjacent pairs of each head of x (n floats, heads of hs) by the position's angles. */
static void rope(float *x, size_t n, int hs, int pos)
{
    for (size_t i = 0; i < n; i += 2) {
        int head_dim = (int)(i % (size_t)hs);
        double freq = 1.0 / pow(10000.0, (double)head_dim / (double)hs);
        double angle = (double)pos * freq;
        float c = (float)cos(angle), s = (float)sin(angle);
        float x0 = x[i], x1 = x[i + 1];
        x[i] = x0 * c - x1 * s;
        x[i + 1] = x0 * s + x1 * c;
    }
}

/* The capture's attention (struct la_llama_attn): appends k, v to the KV cache, attends
 * causally per query head in fp32 as the model's reference implementation does, and records
 * q, k, v (expanded to query heads) and the output at position pos. */
static int capture_attention(void *ctx, int layer, int pos, const float *q, const float *k,
                             const float *v, float *xout, struct la_error *err)
{
    (void)err;
    struct run_state *s = ctx;
    const struct la_llama_config *c = &s->m->cfg;
    struct la_capture *cap = s->cap;
    size_t hs = (size_t)c->head_size, H = (size_t)c->n_heads;
    size_t kvd = (size_t)c->n_kv_heads * hs, l = (size_t)layer;
    size_t group = H / (size_t)c->n_kv_heads, S = (size_t)s->steps;
    float scale = 1.0f / sqrtf((float)hs);
    float *kc = s->kcache + l * S * kvd, *vc = s->vcache + l * S * kvd;
    memcpy(kc + (size_t)pos * kvd, k, kvd * sizeof(float));
    memcpy(vc + (size_t)pos * kvd, v, kvd * sizeof(float));
    for (size_t h = 0; h < H; h++) {
        const float *qh = q + h * hs;
        size_t kvh = h / group;
        /* scores and max */
        float mx = -INFINITY;
        for (int t = 0; t <= pos; t++) {
            const float *kt = kc + (size_t)t * kvd + kvh * hs;
            float dot = 0.0f;
            for (size_t i = 0; i < hs; i++)
                dot += qh[i] * kt[i];
            s->scores[t] = dot * scale;
            mx = s->scores[t] > mx ? s->scores[t] : mx;
        }
        /* exp and sum, normalise */
        float sum = 0.0f;
        for (int t = 0; t <= pos; t++) {
            s->scores[t] = expf(s->scores[t] - mx);
            sum += s->scores[t];
        }
        for (int t = 0; t <= pos; t++)
            s->scores[t] /= sum;
        /* weighted sum of v */
        float *out = xout + h * hs;
        for (size_t i = 0; i < hs; i++)
            out[i] = 0.0f;
        for (int t = 0; t <= pos; t++) {
            const float *vt = vc + (size_t)t * kvd + kvh * hs;
            for (size_t i = 0; i < hs; i++)
                out[i] += s->scores[t] * vt[i];
        }
        size_t at = ((l * H + h) * S + (size_t)pos) * hs;
        memcpy(cap->q + at, qh, hs * sizeof(float));
        memcpy(cap->k + at, k + kvh * hs, hs * sizeof(float));
        memcpy(cap->v + at, v + kvh * hs, hs * sizeof(float));
        memcpy(cap->att + at, out, hs * sizeof(float));
    }
    return LA_OK;
}

int la_llama_forward(const struct la_llama *m, struct la_llama_act *a, int token, int pos,
                     const struct la_llama_attn *attn, struct la_error *err)
{
    const struct la_llama_config *c = &m->cfg;
    if (token < 0 || token >= c->vocab_size)
        return LA_FAIL(err, LA_EINVAL, "token %d is outside the vocabulary (0..%d)", token,
                       c->vocab_size - 1);
    if (pos < 0 || pos >= c->seq_len)
        return LA_FAIL(err, LA_EINVAL, "position %d is outside the model's 0..%d", pos,
                       c->seq_len - 1);
    size_t D = (size_t)c->dim, Hf = (size_t)c->hidden_dim, hs = (size_t)c->head_size;
    size_t kvd = (size_t)c->n_kv_heads * hs;

    memcpy(a->x, m->tok_emb + (size_t)token * D, D * sizeof(float));
    for (size_t l = 0; l < (size_t)c->n_layers; l++) {
        /* Attention: project, rotate q and k, attend (the caller's attention) into xb. */
        rmsnorm(a->xb, a->x, m->rms_att + l * D, D);
        matvec(a->q, m->wq + l * D * D, a->xb, D, D);
        matvec(a->k, m->wk + l * kvd * D, a->xb, kvd, D);
        matvec(a->v, m->wv + l * kvd * D, a->xb, kvd, D);
        rope(a->q, D, (int)hs, pos);
        rope(a->k, kvd, (int)hs, pos);
        int rc = attn->run(attn->ctx, (int)l, pos, a->q, a->k, a->v, a->xb, err);
        if (rc)
            return rc;
        matvec(a->xb2, m->wo + l * D * D, a->xb, D, D);
        for (size_t i = 0; i < D; i++)
            a->x[i] += a->xb2[i];

        /* SwiGLU feed-forward: w2(silu(w1 x) * (w3 x)). */
        rmsnorm(a->xb, a->x, m->rms_ffn + l * D, D);
        matvec(a->hb, m->w1 + l * Hf * D, a->xb, Hf, D);
        matvec(a->hb2, m->w3 + l * Hf * D, a->xb, Hf, D);
        for (size_t i = 0; i < Hf; i++) {
            float v = a->hb[i];
            a->hb[i] = v / (1.0f + expf(-v)) * a->hb2[i];
        }
        matvec(a->xb, m->w2 + l * D * Hf, a->hb, D, Hf);
        for (size_t i = 0; i < D; i++)
            a->x[i] += a->xb[i];
    }
    rmsnorm(a->x, a->x, m->rms_final, D);
    matvec(a->logits, m->cls, a->x, (size_t)c->vocab_size, D);
    return LA_OK;
}

/* ---- generation ------------------------------------------------------------------------- */

int la_logits_argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int la_logits_sample(const float *logits, int n, double temperature, gsl_rng *rng)
{
    double mx = logits[la_logits_argmax(logits, n)], sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp(((double)logits[i] - mx) / temperature);
    double r = gsl_rng_uniform(rng) * sum, cdf = 0.0;
    for (int i = 0; i < n; i++) {
        cdf += exp(((double)logits[i] - mx) / temperature);
        if (r < cdf)
            return i;
    }
    return n - 1; /* rounding left r at or above the last partial sum */
}

void la_capture_free(struct la_capture *c)
{
    if (!c)
        return;
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->att);
    free(c->tokens);
    free(c->text);
    free(c);
}

/* Closes the gap left by an early stop: blocks of `stride` positions become blocks of T. */
static void compact(float *x, size_t blocks, size_t stride, size_t T, size_t hs)
{
    for (size_t b = 1; b < blocks; b++)
        memmove(x + b * T * hs, x + b * stride * hs, T * hs * sizeof(float));
}

static int build_text(struct la_capture *c, const struct la_tokenizer *tok, struct la_error *err)
{
    size_t n = 0;
    for (int t = 1; t < c->T; t++)
        n += strlen(la_tokenizer_piece(tok, c->tokens[t - 1], c->tokens[t]));
    char *raw = malloc(n + 1);
    c->text = malloc(3 * n + 1);
    if (!raw || !c->text) {
        free(raw);
        return LA_FAIL(err, LA_ENOMEM, "out of memory decoding the text");
    }
    size_t o = 0;
    for (int t = 1; t < c->T; t++) {
        const char *p = la_tokenizer_piece(tok, c->tokens[t - 1], c->tokens[t]);
        size_t len = strlen(p);
        memcpy(raw + o, p, len);
        o += len;
    }
    utf8_sanitize(c->text, (const unsigned char *)raw, n);
    free(raw);
    return LA_OK;
}

int la_llama_generate(const struct la_llama *m, const struct la_tokenizer *tok,
                      const struct la_gen_opts *opts, struct la_capture **out, struct la_error *err)
{
    *out = NULL;
    const struct la_llama_config *cfg = &m->cfg;
    if (opts->steps < 1 || opts->steps > cfg->seq_len)
        return LA_FAIL(err, LA_EINVAL, "steps must be in 1..%d (the model's seq_len), got %d",
                       cfg->seq_len, opts->steps);
    if (!opts->greedy && !(opts->temperature > 0.0 && isfinite(opts->temperature)))
        return LA_FAIL(err, LA_EINVAL,
                       "temperature must be a positive number when sampling, got %g",
                       opts->temperature);
    if (tok->vocab_size != cfg->vocab_size)
        return LA_FAIL(err, LA_EINVAL, "tokenizer has %d tokens, the model %d", tok->vocab_size,
                       cfg->vocab_size);

    int rc = LA_OK;
    struct run_state s;
    gsl_rng *rng = NULL;
    struct la_capture *c = calloc(1, sizeof *c);
    if (!c || run_state_alloc(&s, m, opts->steps) != LA_OK) {
        free(c);
        return LA_FAIL(err, LA_ENOMEM, "out of memory for %d steps", opts->steps);
    }
    size_t S = (size_t)opts->steps, hs = (size_t)cfg->head_size;
    size_t blocks = (size_t)cfg->n_layers * (size_t)cfg->n_heads, n = blocks * S * hs;
    c->n_layers = cfg->n_layers;
    c->n_heads = cfg->n_heads;
    c->n_kv_heads = cfg->n_kv_heads;
    c->head_size = cfg->head_size;
    c->dim = cfg->dim;
    c->vocab_size = cfg->vocab_size;
    c->q = malloc(n * sizeof(float));
    c->k = malloc(n * sizeof(float));
    c->v = malloc(n * sizeof(float));
    c->att = malloc(n * sizeof(float));
    c->tokens = malloc(S * sizeof(int32_t));
    if (!c->q || !c->k || !c->v || !c->att || !c->tokens) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory for %d steps", opts->steps);
        goto fail;
    }
    if (!opts->greedy) {
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng) {
            rc = LA_FAIL(err, LA_ENOMEM, "cannot allocate the GSL RNG");
            goto fail;
        }
        gsl_rng_set(rng, (unsigned long)opts->seed);
    }

    s.cap = c;
    const struct la_llama_attn attn = {.run = capture_attention, .ctx = &s};
    int token = LA_TOKEN_BOS, T = 0;
    for (int pos = 0; pos < opts->steps; pos++) {
        c->tokens[pos] = token;
        rc = la_llama_forward(m, &s.act, token, pos, &attn, err);
        if (rc)
            goto fail;
        T = pos + 1;
        const float *logits = s.act.logits;
        for (int i = 0; i < cfg->vocab_size; i++)
            if (!isfinite(logits[i])) {
                rc = LA_FAIL(err, LA_ENUMERIC, "non-finite logit at position %d", pos);
                goto fail;
            }
        int next = opts->greedy ? la_logits_argmax(logits, cfg->vocab_size)
                                : la_logits_sample(logits, cfg->vocab_size, opts->temperature, rng);
        c->next_token = next;
        /* BOS starts a new story: the current one is over. */
        if (next == LA_TOKEN_BOS && !opts->through_bos)
            break;
        token = next;
    }
    c->T = T;
    if ((size_t)T < S) {
        compact(c->q, blocks, S, (size_t)T, hs);
        compact(c->k, blocks, S, (size_t)T, hs);
        compact(c->v, blocks, S, (size_t)T, hs);
        compact(c->att, blocks, S, (size_t)T, hs);
    }
    for (size_t i = 0; i < blocks * (size_t)T * hs; i++)
        if (!isfinite(c->q[i]) || !isfinite(c->k[i]) || !isfinite(c->v[i]) ||
            !isfinite(c->att[i])) {
            rc = LA_FAIL(err, LA_ENUMERIC, "non-finite attention input captured");
            goto fail;
        }
    rc = build_text(c, tok, err);
    if (rc)
        goto fail;
    gsl_rng_free(rng);
    run_state_free(&s);
    *out = c;
    return LA_OK;
fail:
    gsl_rng_free(rng);
    run_state_free(&s);
    la_capture_free(c);
    return rc;
}
