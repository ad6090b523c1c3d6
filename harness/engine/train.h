/* train.h — the training passes of a cell (pass: backward, forward+backward): the backward
 * kernel that matches the cell's forward kernel, for linear kernels with the feature map's
 * backward of Q and K; its timing, the bytes a training step holds, and the gradients' error
 * against the double reference on sampled rows.
 *
 * The runner (runner.c) prepares the cell as for a forward pass (data, features, the checked
 * forward run and its errors) and hands the rest to la_train_cell.  Which backward row:
 * attn_kernel_backward_of, the first of the kernel table with ATTN_OP_BACKWARD, the forward
 * kernel's input, the cell's causality and the forward's uses_chunk: softmax_flash →
 * softmax_flash_backward; linear_noncausal → linear_noncausal_backward; linear_causal and
 * linear_causal_recurrent → linear_causal_backward; linear_causal_chunked →
 * linear_causal_chunked_backward, with the cell's chunk size.
 *
 * Not here: the forward pass, its errors, the results file.  Tests: tests/test_runner.c.
 */
#ifndef LA_TRAIN_H
#define LA_TRAIN_H

#include <stddef.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../core/status.h"
#include "../experiment/cell.h"

/* What the runner has ready when a training pass starts. */
struct la_train_in {
    const struct la_cell *c;
    const struct attn_kernel *fwd; /* the cell's forward kernel */
    struct featuremap *fm;         /* NULL for softmax kernels */
    int nh, T, d, dv, m, dk, nth;  /* heads, shape, features (dk = m for linear, else d) */
    const float *q, *k, *v;        /* raw inputs, all heads, (nh, T, d) and (nh, T, dv) */
    const float *pq, *pk;          /* φ(Q), φ(K) as the forward wrote them; NULL for softmax */
    const float *eps_row;          /* the forward's per-row eps, or NULL: c->eps */
    /* The forward pass as the runner times it (the map on Q and K, then the kernel). */
    void (*forward)(void *ctx);
    void *forward_ctx;
    double forward_flops;      /* its nominal flops: the kernel's and the map's, all heads */
    double features_bytes;     /* φ(Q), φ(K) of all heads (0 for softmax) */
    double forward_work_bytes; /* the forward kernel's workspace and the map's */
    int err_heads, err_rows;   /* errors: heads (spread as the forward errors) and rows per head;
                                  0 rows: no gradient error */
};

/* Runs, checks and (when c->measure_time) times the cell's pass, and fills row: time_*,
 * repeats, flops and gflops of the timed region (the map inside it for linear kernels, so
 * fm_time_median_s is NaN), step_bytes, err_grad.  Notes go to note (cap bytes, "; "-separated).
 * Returns LA_OK or the failure (a kernel without a backward row, out of memory, NaN gradients,
 * LA_EINTR when cancelled), with err set. */
int la_train_cell(const struct la_train_in *in, struct la_row *row, char *note, size_t cap,
                  struct la_error *err);

/* The gradients of L = Σ_{i in rows} dy_iᵀ y_i, in double, from the definitions: only the n
 * listed query rows (ascending, distinct) carry an upstream gradient dy (row r of dY is the
 * gradient of query rows[r]), so the work is O(n·T·(dk + dv)) whatever T.  dQ (T, dk), dK (T,
 * dk), dV (T, dv) are overwritten (rows of dQ not listed are zero).  scratch: T doubles.
 * Softmax (scale 1/√dk) as attn_softmax_backward_ref; linear on features as
 * attn_linear_backward_ref with row i's eps eps_row[i] (eps_row NULL: eps for every row). */
void la_grad_ref_rows_softmax(const double *Q, const double *K, const double *V, const double *dY,
                              const int *rows, int n, int T, int dk, int dv, int causal, double *dQ,
                              double *dK, double *dV, double *scratch);
void la_grad_ref_rows_linear(const double *PQ, const double *PK, const double *V, const double *dY,
                             const int *rows, int n, int T, int m, int dv, int causal, double eps,
                             const float *eps_row, double *dQ, double *dK, double *dV,
                             double *scratch);

#endif
