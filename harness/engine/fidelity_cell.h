/* fidelity_cell.h — a cell of data source model: a Llama-2 checkpoint run with the cell's
 * attention, compared with the same model under softmax attention (model-level fidelity).
 *
 * The sequences: `sequences` token sequences the softmax model samples from BOS at temperature
 * 1, sequence s (0-based) with la_decoder_generate's sampler seeded s + 1, each up to T
 * positions (a story ends early when the model predicts BOS); `linattn generate --fidelity
 * --steps T --sequences K` samples the same ones.  Teacher-forced on them, the cell's model
 * (softmax attention for a softmax kernel; linear attention with the cell's map, m, draw, eps
 * and map parameters otherwise, one map for every layer and head drawn from
 * la_stream_seed(cell.seed, LA_STREAM_FEATUREMAP)) is compared with the softmax model's
 * next-token distributions (la_fidelity_run): the row's model_* columns.
 *
 * The cache holds one checkpoint with its sequences and their softmax reference
 * (la_fidelity_reference), keyed by (path, T, sequences): a sweep over maps, m and trials
 * computes the reference once per worker.  The row's shape columns are the model's (d = dv =
 * head size, heads = query heads, batch 1, threads 1: the decoder runs on one thread); its
 * timing and attention-level error columns are NaN.
 *
 * Not here: the decoder and the fidelity arithmetic (harness/model/generate.c), which cells run
 * (cmd_run.c).  Tests: tests/test_fidelity_cell.c.
 */
#ifndef LA_FIDELITY_CELL_H
#define LA_FIDELITY_CELL_H

#include "../core/status.h"
#include "../experiment/cell.h"

struct la_fidelity_cache;

void la_fidelity_cache_free(struct la_fidelity_cache *fc); /* NULL is fine */

/* Runs model cell c into row (filled by la_row_from_cell first), using and filling *cache
 * (NULL: none yet).  Returns LA_OK, or the error that also stands in row->message with status
 * LA_ROW_FAILED (LA_ROW_INTERRUPTED and LA_EINTR when a signal asked the run to stop). */
int la_fidelity_cell(struct la_fidelity_cache **cache, const struct la_cell *c,
                     struct la_row *row, struct la_error *err);

#endif
