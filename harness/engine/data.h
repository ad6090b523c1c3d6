/* data.h — the inputs Q, K, V of a cell: synthetic (gaussian, sphere) or read from HDF5.
 *
 * Deterministic: a cell's data depend on the cell alone (its seed, shape and source), never on
 * the order cells run in, the process that runs them or the thread count.  Head h of a
 * synthetic cell is drawn from its own mt19937 stream seeded from (cell.seed, h), so heads can
 * be generated in parallel and give the same bits.
 *
 * Layout (row-major fp32, heads back to back): Q, K: (nheads, T, d); V: (nheads, T, dv).
 * Not here: feature maps, references, timing (runner.c).  Tests: tests/test_runner.c.
 */
#ifndef LA_DATA_H
#define LA_DATA_H

#include <stdint.h>

#include "../core/status.h"
#include "../experiment/cell.h"

/* The shape of a cell's data.  Synthetic sources: the cell's batch·heads, T, d, dv.  HDF5: the
 * selected heads of the file (one head, or every head of the layer when cell.head = -1, with
 * batch = 1), the cell's T, and d, dv as stored in the file. */
struct la_data_shape {
    int batch, heads; /* nheads = batch · heads */
    int nheads;
    int T, d, dv;
};

/* Works out the shape (for HDF5: opens the file and checks the datasets: ranks, float type,
 * matching Q/K shapes, T within the stored positions, layer and head in range).  Errors:
 * LA_EIO (cannot open), LA_EFORMAT (missing dataset, wrong rank or type), LA_EINVAL (T, layer
 * or head out of range); the message names the file and the dataset. */
int la_data_shape(const struct la_cell *c, struct la_data_shape *s, struct la_error *err);

/* Fills q, k (nheads·T·d floats) and v (nheads·T·dv floats) for the shape la_data_shape gave.
 * HDF5 data with NaN or Inf is LA_EFORMAT.  Uses up to c->threads threads. */
int la_data_fill(const struct la_cell *c, const struct la_data_shape *s, float *q, float *k,
                 float *v, struct la_error *err);

/* Per-token gates of the recurrences from an h5 data file (docs/data-layout.md, "Gates"):
 * dataset `name` ("/beta" or "/alpha") for the heads and first T positions la_data_shape
 * selected, into g as (nheads, T, n) floats, head after head.  n = 0: one gate per token, the
 * dataset has /Q's shape less its last dimension (/beta); n > 0: n gates per token, /Q's
 * leading dimensions then n (/alpha, n = the cell's feature dimension m).  Every gate must lie
 * in (0, 1].  Errors: LA_EINVAL (not an h5 source), LA_EIO, LA_EFORMAT (missing dataset, wrong
 * shape, a gate out of range or not finite); the message names the file and the dataset. */
int la_data_gate(const struct la_cell *c, const struct la_data_shape *s, const char *name, int n,
                 float *g, struct la_error *err);

/* The seed of one random stream of a cell: a 64-bit mix of (seed, stream) folded to the 32 bits
 * gsl_rng_set uses (mt19937 ignores the upper half of an unsigned long, so cell seeds that
 * differ only there would otherwise collide).  Streams used: 0..: data heads (runner uses
 * LA_STREAM_* below for its own draws). */
unsigned long la_stream_seed(uint64_t seed, uint64_t stream);

#define LA_STREAM_FEATUREMAP (1ull << 32)   /* feature-map draws */
#define LA_STREAM_SAMPLE ((1ull << 32) + 1) /* sampled rows and pairs for the errors */
#define LA_STREAM_GRAD ((1ull << 32) + 2)   /* training passes: dY and the gradient rows */

/* Name of a source ("gaussian", "sphere", "h5"; "?" if out of range). */
const char *la_data_source_name(int source);

#endif
