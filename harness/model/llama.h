/* llama.h — a minimal Llama-2 forward pass (fp32, one token at a time) for capturing real
 * attention inputs: the checkpoint reader (llama2.c "legacy v0" format), the tokenizer reader
 * (llama2.c tok*.bin format), and a generation loop that records, at every position, each
 * layer's and head's q and k (after RoPE), v and the head's attention output.
 *
 * It is not an inference engine: no batching, no quantisation, no speed work beyond plain
 * loops; stories260K runs 512 steps in well under a second.  Capture starts from BOS; the
 * forward pass of one token with the attention supplied by the caller (la_llama_forward) and
 * the prompt encoder serve `linattn generate` (harness/model/generate.c).  `linattn capture` (harness/cli/cmd_capture.c) writes what it records to HDF5
 * (docs/data-layout.md).  Tests: tests/test_capture.c.
 */
#ifndef LA_LLAMA_H
#define LA_LLAMA_H

#include <stdint.h>

#include <gsl/gsl_rng.h>

#include "../core/status.h"

/* The first uint32 of the newer llama2.c export formats (versions 1 and 2): "ak42". */
#define LA_LLAMA_MAGIC_V1 0x616b3432u
#define LA_LLAMA_HEADER_BYTES 28
#define LA_TOKEN_BOS 1
#define LA_TOKEN_EOS 2

/* The checkpoint header, validated, plus derived sizes. */
struct la_llama_config {
    int dim;               /* D: width of the residual stream */
    int hidden_dim;        /* H_ffn: width of the SwiGLU hidden layer */
    int n_layers;          /* L */
    int n_heads;           /* query heads */
    int n_kv_heads;        /* key/value heads (grouped-query attention when < n_heads) */
    int vocab_size;        /* V (absolute value of the header's field) */
    int seq_len;           /* longest sequence the model was trained for (RoPE table length) */
    int head_size;         /* hs = dim / n_heads */
    int shared_classifier; /* 1: logits use the token embedding (header vocab_size > 0) */
};

struct la_llama;     /* the weights (owned) */
struct la_tokenizer; /* the vocabulary (owned) */

/* Reads and validates a checkpoint: header sizes, exact file size, the "ak42" magic of the newer
 * format.  On failure returns LA_EIO (cannot open/read) or LA_EFORMAT (content wrong) with a
 * one-line message naming the file.  sha256_hex (65 bytes, may be NULL) receives the file's
 * SHA-256 as lowercase hex. */
int la_llama_load(const char *path, struct la_llama **out, char *sha256_hex, struct la_error *err);
void la_llama_free(struct la_llama *m);
const struct la_llama_config *la_llama_config(const struct la_llama *m);

/* Reads a tokenizer file for a vocabulary of vocab_size tokens; same error conventions. */
int la_tokenizer_load(const char *path, int vocab_size, struct la_tokenizer **out, char *sha256_hex,
                      struct la_error *err);
void la_tokenizer_free(struct la_tokenizer *t);

/* The text of token `token` following token `prev`: after BOS a leading space is dropped, and a
 * piece "<0xHH>" is the single byte 0xHH.  The pointer lives as long as the tokenizer; NULL when
 * token is out of range. */
const char *la_tokenizer_piece(const struct la_tokenizer *t, int prev, int token);

/* How to generate. */
struct la_gen_opts {
    int steps;          /* positions to run (1..seq_len); fewer if the model emits BOS */
    int greedy;         /* 1: argmax; 0: sample from softmax(logits / temperature) */
    double temperature; /* > 0 when sampling */
    uint64_t seed;      /* gsl_rng_mt19937 seed when sampling */
    int through_bos;    /* 1: when the model emits BOS (a new story), feed it and go on */
};

/* ---- one token at a time, attention supplied by the caller (harness/model/generate.c) ---- */

/* The attention of one layer at one position: q (n_heads·hs, after RoPE), k (n_kv_heads·hs,
 * after RoPE) and v (n_kv_heads·hs) of the current token in; out (n_heads·hs) receives each
 * query head's attention output, before the output projection wo.  Returns LA_OK or an LA_E*
 * code with err filled. */
struct la_llama_attn {
    int (*run)(void *ctx, int layer, int pos, const float *q, const float *k, const float *v,
               float *out, struct la_error *err);
    void *ctx;
};

/* The activations of one token (owned; logits holds vocab_size floats after a forward). */
struct la_llama_act {
    float *x, *xb, *xb2, *q, *k, *v, *hb, *hb2, *logits;
};
int la_llama_act_alloc(const struct la_llama *m, struct la_llama_act *a);
void la_llama_act_free(struct la_llama_act *a);

/* One token `token` at position pos (0..seq_len-1) through every layer, attention by attn;
 * a->logits receives the logits.  LA_EINVAL for a token or position out of range, else what
 * attn returned. */
int la_llama_forward(const struct la_llama *m, struct la_llama_act *a, int token, int pos,
                     const struct la_llama_attn *attn, struct la_error *err);

/* The index of the largest of n logits (the first on ties). */
int la_logits_argmax(const float *logits, int n);
/* A draw from softmax(logits / temperature) by inverting the CDF at one uniform draw of rng. */
int la_logits_sample(const float *logits, int n, double temperature, gsl_rng *rng);

/* Encodes text into tokens the way SentencePiece BPE does with llama2.c-format vocabularies:
 * a space is put before the text, each UTF-8 character becomes its piece (or, when the
 * vocabulary lacks it, the pieces "<0xHH>" of its bytes), then the adjacent pair whose joined
 * text is a piece with the highest merge score is merged, until no pair merges.  tokens
 * (cap entries) receives BOS then the pieces; *n the count.  LA_EINVAL when the text does not
 * fit in cap tokens or a byte has no piece. */
int la_tokenizer_encode(const struct la_tokenizer *t, const char *text, int32_t *tokens, int cap,
                        int *n, struct la_error *err);

/* What one generation captured.  The four tensors are (L, H, T, hs) row-major with H the number
 * of query heads; k and v are expanded per query head (query head h reads KV head
 * h / (n_heads / n_kv_heads), copied).  q and k are after RoPE; att is the head's softmax-weighted
 * sum of v, before the output projection wo. */
struct la_capture {
    int n_layers, n_heads, n_kv_heads, head_size, dim, vocab_size;
    int T; /* positions captured */
    float *q, *k, *v, *att;
    int32_t *tokens;    /* (T): the input token at each position; tokens[0] = BOS */
    int32_t next_token; /* the token predicted at the last position (BOS when it stopped there) */
    char *text;         /* decoded tokens[1..T-1], NUL-terminated valid UTF-8 */
};

/* Runs the model from BOS for opts->steps positions (stopping early when it predicts BOS, unless
 * opts->through_bos) and returns everything captured.  LA_EINVAL for bad opts, LA_ENOMEM,
 * LA_ENUMERIC if the forward pass produced NaN/Inf. */
int la_llama_generate(const struct la_llama *m, const struct la_tokenizer *tok,
                      const struct la_gen_opts *opts, struct la_capture **out,
                      struct la_error *err);
void la_capture_free(struct la_capture *c);

/* Writes a capture and its provenance to an HDF5 file (layout: docs/data-layout.md).  The file is
 * written under a temporary name beside path and renamed at the end; on failure nothing is left
 * at path.  harness/cli/cmd_capture.c implements it. */
struct la_capture_meta {
    const char *checkpoint; /* path as given */
    const char *checkpoint_sha256;
    const char *tokenizer; /* path as given */
    const char *tokenizer_sha256;
    const struct la_gen_opts *opts;
};
int la_capture_write_h5(const struct la_capture *c, const struct la_capture_meta *meta,
                        const char *path, struct la_error *err);

#endif
