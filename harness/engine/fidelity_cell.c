/* fidelity_cell.c — model cells: the reference cache and one cell's fidelity row (see
 * fidelity_cell.h). */
#include "fidelity_cell.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/sysinfo.h"
#include "../core/timing.h"
#include "../core/util.h"
#include "../experiment/params.h"
#include "../model/generate.h"
#include "../model/llama.h"
#include "data.h"

/* One checkpoint, its softmax-sampled sequences and their reference log-probabilities. */
struct la_fidelity_cache {
    char path[LA_PATH_LEN];
    int T, nseq;
    struct la_llama *model;
    int32_t **seqs;
    int *lens;
    double *logp;
};

void la_fidelity_cache_free(struct la_fidelity_cache *fc)
{
    if (!fc)
        return;
    for (int s = 0; fc->seqs && s < fc->nseq; s++)
        free(fc->seqs[s]);
    free(fc->seqs);
    free(fc->lens);
    free(fc->logp);
    la_llama_free(fc->model);
    free(fc);
}

/* LA_EINTR once a signal has asked the run to stop (timing.h la_cancelled), as the runner's
 * cells say it. */
static int cancel_point(struct la_error *err)
{
    const int sig = la_cancelled();
    if (!sig)
        return LA_OK;
    return LA_FAIL(err, LA_EINTR, "interrupted by %s before the cell finished",
                   sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal");
}

/* The sequences of fidelity_cell.h and their reference, for checkpoint path. */
static int cache_build(const char *path, int T, int nseq, struct la_fidelity_cache **out,
                       struct la_error *err)
{
    struct la_fidelity_cache *fc = calloc(1, sizeof *fc);
    if (!fc)
        return LA_FAIL(err, LA_ENOMEM, "out of memory");
    la_copy_text(fc->path, sizeof fc->path, path);
    fc->T = T;
    fc->nseq = nseq;
    struct la_decoder *d = NULL;
    int st = la_llama_load(path, &fc->model, NULL, err);
    if (st == LA_OK && T > la_llama_config(fc->model)->seq_len)
        st = LA_FAIL(err, LA_EINVAL, "T = %d exceeds the checkpoint's seq_len %d", T,
                     la_llama_config(fc->model)->seq_len);
    if (st == LA_OK) {
        fc->seqs = calloc((size_t)nseq, sizeof *fc->seqs);
        fc->lens = calloc((size_t)nseq, sizeof *fc->lens);
        if (!fc->seqs || !fc->lens)
            st = LA_FAIL(err, LA_ENOMEM, "out of memory for %d sequences", nseq);
    }
    const struct la_attn_spec softmax = {.map = "softmax"};
    if (st == LA_OK)
        st = la_decoder_new(fc->model, &softmax, T, &d, err);
    const int32_t bos = LA_TOKEN_BOS;
    for (int s = 0; st == LA_OK && s < nseq; s++) {
        fc->seqs[s] = malloc(((size_t)T + 1) * sizeof **fc->seqs);
        if (!fc->seqs[s]) {
            st = LA_FAIL(err, LA_ENOMEM, "out of memory for a sequence");
            break;
        }
        const struct la_sampling smp = {.temperature = 1.0, .seed = (uint64_t)s + 1};
        double secs;
        st = la_decoder_generate(d, &bos, 1, T, &smp, fc->seqs[s], &fc->lens[s], &secs, err);
        if (st == LA_OK)
            st = cancel_point(err);
    }
    la_decoder_free(d);
    if (st == LA_OK)
        st = la_fidelity_reference(fc->model, (const int32_t *const *)fc->seqs, fc->lens, nseq,
                                   &fc->logp, err);
    if (st != LA_OK) {
        la_fidelity_cache_free(fc);
        return st;
    }
    *out = fc;
    return LA_OK;
}

/* The attention of cell c for a model of head size hs: softmax attention for a softmax
 * kernel, linear attention with the cell's map otherwise. */
static int cell_spec(const struct la_cell *c, int hs, struct la_attn_spec *spec,
                     struct la_error *err)
{
    memset(spec, 0, sizeof *spec);
    const struct attn_kernel *kn = attn_kernel_lookup(c->kernel);
    if (!kn) {
        char list[512];
        la_join_names(list, sizeof list, attn_kernel_names(), attn_kernel_count());
        return LA_FAIL(err, LA_ENAME, "unknown kernel '%s'; valid kernels: %s", c->kernel, list);
    }
    if (kn->input == ATTN_IN_QK) {
        spec->map = "softmax";
        return LA_OK;
    }
    spec->map = c->map;
    featuremap_params_default(&spec->fm, hs);
    la_params_to_fm(c, &spec->fm);
    spec->fm.d = hs;
    spec->fm.seed = la_stream_seed(c->seed, LA_STREAM_FEATUREMAP);
    spec->eps = c->eps;
    return LA_OK;
}

static int run(struct la_fidelity_cache **cache, const struct la_cell *c, struct la_row *row,
               struct la_error *err)
{
    struct la_fidelity_cache *fc = *cache;
    const int nseq = c->sequences > 0 ? c->sequences : 1;
    if (!fc || strcmp(fc->path, c->data_path) != 0 || fc->T != c->T || fc->nseq != nseq) {
        la_fidelity_cache_free(fc);
        *cache = NULL;
        int st = cache_build(c->data_path, c->T, nseq, cache, err);
        if (st != LA_OK)
            return st;
        fc = *cache;
    }
    const struct la_llama_config *cfg = la_llama_config(fc->model);
    row->d = row->dv = cfg->head_size;
    row->heads = cfg->n_heads;
    row->batch = 1;
    row->threads = 1;

    struct la_attn_spec spec;
    int st = cell_spec(c, cfg->head_size, &spec, err);
    if (st != LA_OK)
        return st;
    /* The map's output dimension as the decoder builds it (m = 0: the map's default). */
    struct la_decoder *probe = NULL;
    if ((st = la_decoder_new(fc->model, &spec, 1, &probe, err)) != LA_OK)
        return st;
    const struct featuremap *fm = la_decoder_map(probe);
    row->m = fm ? fm->m : 0;
    /* The cell names the kernel the decoder runs, so that its row says what ran. */
    if (strcmp(la_decoder_kernel(probe), c->kernel) != 0)
        st = LA_FAIL(err, LA_EINVAL,
                     "model cells run the decoder's step kernel, %s for this attention; kernel "
                     "%s is not it",
                     la_decoder_kernel(probe), c->kernel);
    la_decoder_free(probe);
    if (st != LA_OK)
        return st;

    struct la_fidelity f;
    st = la_fidelity_run(fc->model, &spec, (const int32_t *const *)fc->seqs, fc->lens, fc->nseq,
                         fc->logp, &f, err);
    if (st != LA_OK)
        return st;
    if ((st = cancel_point(err)) != LA_OK)
        return st;
    row->model_positions = (int32_t)f.positions;
    row->model_kl = f.kl_mean;
    row->model_kl_max = f.kl_max;
    row->model_top1 = f.top1;
    row->model_ppl = f.ppl;
    row->model_ppl_softmax = f.ppl_ref;
    return LA_OK;
}

int la_fidelity_cell(struct la_fidelity_cache **cache, const struct la_cell *c,
                     struct la_row *row, struct la_error *err)
{
    const int st = run(cache, c, row, err);
    if (st != LA_OK) {
        row->status = st == LA_EINTR ? LA_ROW_INTERRUPTED : LA_ROW_FAILED;
        la_copy_text(row->message, sizeof row->message, err->msg);
    }
    row->peak_rss_bytes = (double)la_peak_rss_bytes();
    return st;
}
