/* generate.c — token-by-token generation with attention through the kernel table's step
 * operation (softmax over a KV cache, or linear attention with a feature map), and the
 * model-level fidelity of a linearised model under teacher forcing (see generate.h).
 *
 * Each layer's attention is one step call of B = n_heads sequences: row h of q is query head h,
 * rows h of k and v are its KV head's, copied (grouped-query attention), and sequence h's state
 * is head h's.  The model's own projections, RoPE and feed-forward are llama.c's
 * (la_llama_forward); only the attention is run here.  la_decoder_generate reports the wall
 * time of its loop (prompt and generated tokens, sampling included); nothing else is timed.
 */
#include "generate.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../core/timing.h"

struct la_decoder {
    const struct la_llama *m;
    struct la_llama_config cfg;
    const struct attn_kernel *kn;
    struct featuremap *fm; /* NULL: softmax attention */
    double eps;
    int capacity, pos;
    int H, group, hs, dk; /* query heads, query heads per KV head, head size, kernel's dk */
    size_t sf;            /* state floats of one sequence (one head) */
    float *state;         /* (L, H, sf) */
    double *key_shift;    /* linear, (L, H): the constant c each state's sums are divided by
                             (exp(c)); meaningful once the state holds a token */
    float *pq, *pk;       /* linear: φ of the H queries (H, m) and of the KV heads' keys (KV, m) */
    float *sq, *sk;       /* linear: their stabiliser shifts */
    float *kin, *vin;     /* the step's k (H, dk) and v (H, hs) rows */
    float *eps_row;       /* linear: the step's per-sequence eps */
    float *fm_work, *work;
    struct la_llama_act act;
};

void la_decoder_free(struct la_decoder *d)
{
    if (!d)
        return;
    featuremap_free(d->fm);
    free(d->state);
    free(d->key_shift);
    free(d->pq);
    free(d->pk);
    free(d->sq);
    free(d->sk);
    free(d->kin);
    free(d->vin);
    free(d->eps_row);
    free(d->fm_work);
    free(d->work);
    la_llama_act_free(&d->act);
    free(d);
}

/* Builds the map of spec for head size hs: its rng seeded with fm.seed. */
static struct featuremap *build_map(const struct la_attn_spec *spec, int hs, struct la_error *err)
{
    if (spec->fm.A_auto) {
        LA_FAIL(err, LA_EINVAL,
                "A = auto is chosen from sampled queries and keys, which generation does not "
                "have; give A a number");
        return NULL;
    }
    gsl_rng *rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!rng) {
        LA_FAIL(err, LA_ENOMEM, "out of memory allocating a random number generator");
        return NULL;
    }
    gsl_rng_set(rng, spec->fm.seed);
    struct fm_params p = spec->fm;
    p.d = hs;
    struct featuremap *fm = featuremap_alloc(spec->map, &p, rng, err);
    gsl_rng_free(rng);
    return fm;
}

int la_decoder_new(const struct la_llama *m, const struct la_attn_spec *spec, int capacity,
                   struct la_decoder **out, struct la_error *err)
{
    *out = NULL;
    const struct la_llama_config *cfg = la_llama_config(m);
    if (capacity < 1 || capacity > cfg->seq_len)
        return LA_FAIL(err, LA_EINVAL, "capacity must be in 1..%d (the model's seq_len), got %d",
                       cfg->seq_len, capacity);
    const int linear = spec->map && strcmp(spec->map, "softmax") != 0;
    if (linear && !(spec->eps >= 0.0 && isfinite(spec->eps)))
        return LA_FAIL(err, LA_EINVAL, "eps must be a finite number >= 0, got %g", spec->eps);
    struct la_decoder *d = calloc(1, sizeof *d);
    if (!d)
        return LA_FAIL(err, LA_ENOMEM, "out of memory for a decoder");
    d->m = m;
    d->cfg = *cfg;
    d->eps = spec->eps;
    d->capacity = capacity;
    d->H = cfg->n_heads;
    d->group = cfg->n_heads / cfg->n_kv_heads;
    d->hs = cfg->head_size;
    d->dk = d->hs;
    int rc = LA_OK;
    if (linear) {
        d->fm = build_map(spec, d->hs, err);
        if (!d->fm) {
            rc = err && err->status != LA_OK ? err->status : LA_EINTERNAL;
            goto fail;
        }
        d->dk = d->fm->m;
    }
    d->kn = attn_kernel_find(ATTN_OP_STEP, linear ? ATTN_IN_FEATURES : ATTN_IN_QK, 1);
    if (!d->kn) {
        rc = LA_FAIL(err, LA_EINTERNAL, "the kernel table has no causal %s step kernel",
                     linear ? "linear (features)" : "softmax");
        goto fail;
    }
    const size_t L = (size_t)cfg->n_layers, H = (size_t)d->H, KV = (size_t)cfg->n_kv_heads;
    const size_t dk = (size_t)d->dk, hs = (size_t)d->hs;
    d->sf = attn_state_floats(d->kn, capacity, d->dk, d->hs);
    const size_t ws = attn_workspace_floats(d->kn, d->H, d->dk, d->hs, 1, 0, 1);
    d->state = malloc(L * H * d->sf * sizeof(float));
    d->kin = malloc(H * dk * sizeof(float));
    d->vin = malloc(H * hs * sizeof(float));
    d->work = malloc((ws ? ws : 1) * sizeof(float));
    int ok = d->state && d->kin && d->vin && d->work;
    if (linear) {
        const size_t fw = featuremap_work_floats(d->fm, H > KV ? H : KV);
        d->key_shift = malloc(L * H * sizeof(double));
        d->pq = malloc(H * dk * sizeof(float));
        d->pk = malloc(KV * dk * sizeof(float));
        d->sq = malloc(H * sizeof(float));
        d->sk = malloc(KV * sizeof(float));
        d->eps_row = malloc(H * sizeof(float));
        d->fm_work = malloc((fw ? fw : 1) * sizeof(float));
        ok = ok && d->key_shift && d->pq && d->pk && d->sq && d->sk && d->eps_row && d->fm_work;
    }
    if (!ok || la_llama_act_alloc(m, &d->act) != LA_OK) {
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory for a decoder of %d tokens", capacity);
        goto fail;
    }
    la_decoder_reset(d);
    *out = d;
    return LA_OK;
fail:
    la_decoder_free(d);
    return rc;
}

void la_decoder_reset(struct la_decoder *d)
{
    d->pos = 0;
    /* A linear state starts at zero; a KV cache is read only below pos, zeroed for tidiness. */
    memset(d->state, 0, (size_t)d->cfg.n_layers * (size_t)d->H * d->sf * sizeof(float));
}

int la_decoder_pos(const struct la_decoder *d)
{
    return d->pos;
}

const char *la_decoder_kernel(const struct la_decoder *d)
{
    return d->kn->name;
}

const struct featuremap *la_decoder_map(const struct la_decoder *d)
{
    return d->fm;
}

/* Linear attention's features for one layer: φ(q) of every query head into pq (row shifts sq),
 * φ(k) of every KV head into head h's row of kin, brought to the state's constant c (which a
 * larger key shift raises, rescaling the state), and the per-sequence eps that keeps eps's
 * meaning for the unstabilised features. */
static void linear_features(struct la_decoder *d, int layer, int pos, const float *q,
                            const float *k, float *state)
{
    const int H = d->H, KV = d->cfg.n_kv_heads, m = d->dk, hs = d->hs;
    featuremap_apply_shift(d->fm, FM_QUERY, q, (size_t)H, d->pq, d->fm_work, d->sq);
    /* One key per call: its own stabiliser constant, so no head's feature underflows because
     * of another head's. */
    for (int g = 0; g < KV; g++)
        featuremap_apply_shift(d->fm, FM_KEY, k + (size_t)g * hs, 1, d->pk + (size_t)g * m,
                               d->fm_work, d->sk + g);
    for (int h = 0; h < H; h++) {
        const int g = h / d->group;
        double *c = d->key_shift + (size_t)layer * H + h;
        const double s = d->sk[g];
        float *kh = d->kin + (size_t)h * m;
        memcpy(kh, d->pk + (size_t)g * m, (size_t)m * sizeof(float));
        if (pos == 0) {
            *c = s;
        } else if (s > *c) {
            /* The state's sums were divided by exp(c): divide them by exp(s) instead. */
            const float r = (float)exp(*c - s);
            float *st = state + (size_t)h * d->sf;
            for (size_t i = 0; i < d->sf; i++)
                st[i] *= r;
            *c = s;
        } else if (s < *c) {
            const float r = (float)exp(s - *c);
            for (int i = 0; i < m; i++)
                kh[i] *= r;
        }
        /* Not below 1e-20 (as the runner): where the shifts are huge, fp32 features can
         * underflow to a normaliser of exactly 0, and 0/0 must not become NaN. */
        const double e = d->eps * exp(-(double)d->sq[h] - *c);
        d->eps_row[h] = (float)(d->eps > 0.0 && e < 1e-20 ? 1e-20 : e);
    }
}

/* The decoder's attention (struct la_llama_attn): one step call of H sequences. */
static int step_attention(void *ctx, int layer, int pos, const float *q, const float *k,
                          const float *v, float *out, struct la_error *err)
{
    return la_decoder_attention(ctx, layer, pos, q, k, v, out, err);
}

int la_decoder_attention(struct la_decoder *d, int layer, int pos, const float *q, const float *k,
                         const float *v, float *out, struct la_error *err)
{
    if (layer < 0 || layer >= d->cfg.n_layers || pos < 0 || pos >= d->capacity)
        return LA_FAIL(err, LA_EINVAL, "layer %d, position %d: outside 0..%d, 0..%d", layer, pos,
                       d->cfg.n_layers - 1, d->capacity - 1);
    const int H = d->H, hs = d->hs;
    float *state = d->state + (size_t)layer * (size_t)H * d->sf;
    for (int h = 0; h < H; h++)
        memcpy(d->vin + (size_t)h * hs, v + (size_t)(h / d->group) * hs,
               (size_t)hs * sizeof(float));
    struct attn_args a;
    memset(&a, 0, sizeof a);
    if (d->fm) {
        linear_features(d, layer, pos, q, k, state);
        a.q = d->pq;
        a.eps = (float)d->eps;
        a.eps_row = d->eps_row;
    } else {
        for (int h = 0; h < H; h++)
            memcpy(d->kin + (size_t)h * hs, k + (size_t)(h / d->group) * hs,
                   (size_t)hs * sizeof(float));
        a.q = q;
    }
    a.k = d->kin;
    a.v = d->vin;
    a.y = out;
    a.T = H;
    a.dk = d->dk;
    a.dv = hs;
    a.causal = 1;
    a.threads = 1;
    a.work = d->work;
    a.state = state;
    a.pos = pos;
    a.cap = d->capacity; /* a KV cache's room, so sequence h's cache is at h·sf */
    d->kn->run(&a);
    return LA_OK;
}

int la_decoder_feed(struct la_decoder *d, int token, const float **logits, struct la_error *err)
{
    if (d->pos >= d->capacity)
        return LA_FAIL(err, LA_EINVAL, "the decoder is full (%d tokens)", d->capacity);
    const struct la_llama_attn attn = {.run = step_attention, .ctx = d};
    int rc = la_llama_forward(d->m, &d->act, token, d->pos, &attn, err);
    if (rc)
        return rc;
    for (int i = 0; i < d->cfg.vocab_size; i++)
        if (!isfinite(d->act.logits[i]))
            return LA_FAIL(err, LA_ENUMERIC, "non-finite logit at position %d (attention %s%s%s)",
                           d->pos, d->kn->name, d->fm ? ", map " : "",
                           d->fm ? d->fm->type->name : "");
    d->pos++;
    *logits = d->act.logits;
    return LA_OK;
}

int la_decoder_generate(struct la_decoder *d, const int32_t *prompt, int n_prompt, int steps,
                        const struct la_sampling *s, int32_t *tokens, int *n, double *seconds,
                        struct la_error *err)
{
    *n = 0;
    *seconds = 0.0;
    if (steps < 1 || steps > d->capacity)
        return LA_FAIL(err, LA_EINVAL, "steps must be in 1..%d, got %d", d->capacity, steps);
    if (n_prompt < 1 || n_prompt > steps)
        return LA_FAIL(err, LA_EINVAL, "the prompt is %d tokens (BOS included); steps = %d",
                       n_prompt, steps);
    if (!s->greedy && !(s->temperature > 0.0 && isfinite(s->temperature)))
        return LA_FAIL(err, LA_EINVAL, "temperature must be a positive number when sampling, got %g",
                       s->temperature);
    gsl_rng *rng = NULL;
    if (!s->greedy) {
        rng = gsl_rng_alloc(gsl_rng_mt19937);
        if (!rng)
            return LA_FAIL(err, LA_ENOMEM, "cannot allocate the GSL RNG");
        gsl_rng_set(rng, (unsigned long)s->seed);
    }
    la_decoder_reset(d);
    memcpy(tokens, prompt, (size_t)n_prompt * sizeof *tokens);
    int count = n_prompt, rc = LA_OK;
    const double t0 = la_now();
    for (int pos = 0; pos < steps; pos++) {
        const float *logits = NULL;
        rc = la_decoder_feed(d, tokens[pos], &logits, err);
        if (rc)
            break;
        if (pos + 1 < n_prompt)
            continue; /* the prompt's next token is given */
        const int V = d->cfg.vocab_size;
        const int next = s->greedy ? la_logits_argmax(logits, V)
                                   : la_logits_sample(logits, V, s->temperature, rng);
        if (next == LA_TOKEN_BOS)
            break; /* the story is over */
        tokens[count++] = next;
    }
    *seconds = la_now() - t0;
    gsl_rng_free(rng);
    *n = count;
    return rc;
}

/* ---- model-level fidelity ---------------------------------------------------------------- */

/* log softmax of n logits into out, in double. */
static void log_softmax(const float *logits, int n, double *out)
{
    double mx = logits[0];
    for (int i = 1; i < n; i++)
        mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0.0;
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - mx);
    const double lse = mx + log(sum);
    for (int i = 0; i < n; i++)
        out[i] = (double)logits[i] - lse;
}

static int check_sequences(const struct la_llama_config *cfg, const int32_t *const *seqs,
                           const int *lens, int nseq, struct la_error *err)
{
    if (nseq < 1)
        return LA_FAIL(err, LA_EINVAL, "no sequences to compare on");
    for (int s = 0; s < nseq; s++)
        if (lens[s] < 1 || lens[s] > cfg->seq_len)
            return LA_FAIL(err, LA_EINVAL, "sequence %d has %d tokens; 1..%d expected", s,
                           lens[s], cfg->seq_len);
    for (int s = 0; s < nseq; s++)
        for (int t = 0; t < lens[s]; t++)
            if (seqs[s][t] < 0 || seqs[s][t] >= cfg->vocab_size)
                return LA_FAIL(err, LA_EINVAL, "sequence %d: token %d at position %d is outside "
                               "the vocabulary (0..%d)", s, seqs[s][t], t, cfg->vocab_size - 1);
    return LA_OK;
}

static int max_len(const int *lens, int nseq)
{
    int mx = 1;
    for (int s = 0; s < nseq; s++)
        mx = lens[s] > mx ? lens[s] : mx;
    return mx;
}

int la_fidelity_reference(const struct la_llama *m, const int32_t *const *seqs, const int *lens,
                          int nseq, double **logp, struct la_error *err)
{
    *logp = NULL;
    const struct la_llama_config *cfg = la_llama_config(m);
    int rc = check_sequences(cfg, seqs, lens, nseq, err);
    if (rc)
        return rc;
    size_t rows = 0;
    for (int s = 0; s < nseq; s++)
        rows += (size_t)lens[s] - 1;
    const size_t V = (size_t)cfg->vocab_size;
    double *lp = malloc((rows ? rows : 1) * V * sizeof *lp);
    if (!lp)
        return LA_FAIL(err, LA_ENOMEM, "out of memory for %zu reference distributions", rows);
    const struct la_attn_spec softmax = {.map = "softmax"};
    struct la_decoder *d = NULL;
    rc = la_decoder_new(m, &softmax, max_len(lens, nseq), &d, err);
    size_t row = 0;
    for (int s = 0; rc == LA_OK && s < nseq; s++) {
        la_decoder_reset(d);
        for (int t = 0; rc == LA_OK && t + 1 < lens[s]; t++) {
            const float *logits = NULL;
            rc = la_decoder_feed(d, seqs[s][t], &logits, err);
            if (rc == LA_OK)
                log_softmax(logits, (int)V, lp + row++ * V);
        }
    }
    la_decoder_free(d);
    if (rc) {
        free(lp);
        return rc;
    }
    *logp = lp;
    return LA_OK;
}

int la_fidelity_run(const struct la_llama *m, const struct la_attn_spec *spec,
                    const int32_t *const *seqs, const int *lens, int nseq, const double *logp,
                    struct la_fidelity *out, struct la_error *err)
{
    memset(out, 0, sizeof *out);
    const struct la_llama_config *cfg = la_llama_config(m);
    int rc = check_sequences(cfg, seqs, lens, nseq, err);
    if (rc)
        return rc;
    const int V = cfg->vocab_size;
    double *lq = malloc((size_t)V * sizeof *lq);
    if (!lq)
        return LA_FAIL(err, LA_ENOMEM, "out of memory");
    struct la_decoder *d = NULL;
    rc = la_decoder_new(m, spec, max_len(lens, nseq), &d, err);
    long n = 0, agree = 0;
    double kl_sum = 0.0, kl_max = 0.0, nll = 0.0, nll_ref = 0.0;
    size_t row = 0;
    for (int s = 0; rc == LA_OK && s < nseq; s++) {
        la_decoder_reset(d);
        for (int t = 0; rc == LA_OK && t + 1 < lens[s]; t++) {
            const float *logits = NULL;
            rc = la_decoder_feed(d, seqs[s][t], &logits, err);
            if (rc)
                break;
            log_softmax(logits, V, lq);
            const double *lp = logp + row++ * (size_t)V;
            double kl = 0.0;
            int ap = 0, aq = 0;
            for (int i = 0; i < V; i++) {
                kl += exp(lp[i]) * (lp[i] - lq[i]);
                ap = lp[i] > lp[ap] ? i : ap;
                aq = lq[i] > lq[aq] ? i : aq;
            }
            /* A sum of terms of both signs may round below its true value, which is >= 0. */
            kl = kl > 0.0 ? kl : 0.0;
            kl_sum += kl;
            kl_max = kl > kl_max ? kl : kl_max;
            agree += ap == aq;
            const int next = seqs[s][t + 1];
            nll -= lq[next];
            nll_ref -= lp[next];
            n++;
        }
    }
    la_decoder_free(d);
    free(lq);
    if (rc)
        return rc;
    out->positions = n;
    out->kl_mean = n ? kl_sum / (double)n : NAN;
    out->kl_max = kl_max;
    out->top1 = n ? (double)agree / (double)n : NAN;
    out->ppl = n ? exp(nll / (double)n) : NAN;
    out->ppl_ref = n ? exp(nll_ref / (double)n) : NAN;
    return LA_OK;
}
