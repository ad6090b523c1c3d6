/* generate.h — a Llama-2 (llama.h) generating token by token with each layer's attention run by
 * the kernel table's step operation: softmax attention over a KV cache, or linear attention
 * with a feature map (a state S, z per layer and query head), and the model-level fidelity of
 * a linearised model against the softmax one under teacher forcing.
 *
 * A decoder holds the model (borrowed), the attention (kernel, map) and one state per layer and
 * query head; la_decoder_feed runs one token at the next position.  Grouped-query attention is
 * the model's: query head h reads KV head h / (n_heads / n_kv_heads), whose k and v are copied
 * into head h's state, so each layer is one step call of B = n_heads sequences.
 *
 * Linear attention: one map instance for every layer and head, drawn from a gsl_rng seeded with
 * fm.seed.  q rows are mapped with FM_QUERY, k rows with FM_KEY; a stabilised map divides a row
 * by exp(shift), and the state keeps the sum of the unstabilised φ(k_j) v_jᵀ divided by
 * exp(c), one constant c per state: a key with a larger shift rescales the state to it, a key
 * with a smaller one is scaled down to c before the step.  Passing eps·exp(−shift_q − c) as the
 * step's per-row eps makes y exactly num/(den + eps) of the unstabilised features, as the runner
 * does for forward kernels (harness/engine/runner.c).
 *
 * Not here: the command line (harness/cli/cmd_generate.c), the kernels
 * (kernels/), the maps (featuremaps/).  Tests: tests/test_generate.c.
 */
#ifndef LA_GENERATE_H
#define LA_GENERATE_H

#include <stdint.h>

#include "../../featuremaps/featuremap.h"
#include "../core/status.h"
#include "llama.h"

/* The attention a decoder runs. */
struct la_attn_spec {
    const char *map;     /* NULL or "softmax": softmax attention; else a feature map's name */
    struct fm_params fm; /* the map's parameters (fm.d is set to the head size; fm.seed seeds
                            the map's draws); A_auto is refused (nothing to fit it on) */
    double eps;          /* linear attention's normaliser eps (>= 0) */
};

struct la_decoder;

/* A decoder for model m (borrowed: it must outlive the decoder) holding up to capacity tokens
 * (1..seq_len).  LA_ENAME for an unknown map (the message lists the valid ones), LA_EINVAL for
 * parameters the map refuses, LA_EINTERNAL when the kernel table has no step kernel for it. */
int la_decoder_new(const struct la_llama *m, const struct la_attn_spec *spec, int capacity,
                   struct la_decoder **out, struct la_error *err);
void la_decoder_free(struct la_decoder *d); /* NULL is fine */

/* Empties every state: the next token is at position 0. */
void la_decoder_reset(struct la_decoder *d);

/* Runs `token` at the next position; *logits (vocab_size floats, valid until the next call)
 * receives its logits.  LA_EINVAL when the decoder is full, LA_ENUMERIC on a non-finite logit. */
int la_decoder_feed(struct la_decoder *d, int token, const float **logits, struct la_error *err);

/* The attention of one layer alone, as la_decoder_feed runs it for each layer: q (n_heads·hs),
 * k and v (n_kv_heads·hs) of one token in, each query head's output into out (n_heads·hs);
 * layer's states, holding pos tokens (la_decoder_feed passes its position), take the token.
 * Exposed so that tests can check the attention against its definition. */
int la_decoder_attention(struct la_decoder *d, int layer, int pos, const float *q, const float *k,
                         const float *v, float *out, struct la_error *err);

/* Tokens fed since the last reset; the kernel running the attention; the map (NULL: softmax). */
int la_decoder_pos(const struct la_decoder *d);
const char *la_decoder_kernel(const struct la_decoder *d);
const struct featuremap *la_decoder_map(const struct la_decoder *d);

/* How to choose each next token. */
struct la_sampling {
    int greedy;         /* 1: argmax; 0: sample softmax(logits / temperature) */
    double temperature; /* > 0 when sampling */
    uint64_t seed;      /* gsl_rng_mt19937 seed when sampling */
};

/* From an empty state: feeds prompt[0 .. n_prompt) (prompt[0] is BOS), then generates until
 * steps positions have run or the model predicts BOS (the story is over).  tokens (steps + 1
 * entries) receives the prompt and every generated token, *n their count; *seconds the time
 * spent feeding tokens (the prompt included).  LA_EINVAL when n_prompt is not in 1..steps. */
int la_decoder_generate(struct la_decoder *d, const int32_t *prompt, int n_prompt, int steps,
                        const struct la_sampling *s, int32_t *tokens, int *n, double *seconds,
                        struct la_error *err);

/* ---- model-level fidelity ---------------------------------------------------------------- */

/* Teacher-forced comparison of a linearised model with the softmax model on the same token
 * sequences: at every position t of every sequence (t + 1 < its length) both models have read
 * tokens 0..t, and with p the softmax model's and q the linearised model's next-token
 * distributions (softmax of the logits, in double):
 *   kl    KL(p || q) = Σ_v p_v (log p_v − log q_v), in nats;
 *   top1  argmax p = argmax q;
 *   nll   −log q(token t+1), and nll_ref the same under p.
 * Means are over all positions of all sequences. */
struct la_fidelity {
    long positions;
    double kl_mean, kl_max;
    double top1;           /* fraction of positions whose argmax agrees */
    double ppl, ppl_ref;   /* exp(mean nll) of the linearised and of the softmax model */
};

/* The softmax model's log-probabilities at every position of every sequence (the reference of
 * la_fidelity_run), Σ_s (lens[s] − 1) · vocab_size doubles in sequence order. */
int la_fidelity_reference(const struct la_llama *m, const int32_t *const *seqs, const int *lens,
                          int nseq, double **logp, struct la_error *err);

/* The fidelity of the model with attention spec against the reference logp of the same
 * sequences.  A decoder with spec softmax gives kl 0 and top1 1 exactly. */
int la_fidelity_run(const struct la_llama *m, const struct la_attn_spec *spec,
                    const int32_t *const *seqs, const int *lens, int nseq, const double *logp,
                    struct la_fidelity *out, struct la_error *err);

#endif
