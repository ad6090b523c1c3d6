/* check.h — comparing one fast kernel with its double reference at one shape.  Used by
 * `linattn check` (the PASS/FAIL table) and by tests/test_kernels.c.
 */
#ifndef LA_CHECK_H
#define LA_CHECK_H

#include "../../kernels/attention.h"
#include <stdint.h>

#include "../core/status.h"

struct la_check_case {
    int T, dk, dv, heads, causal, chunk, threads;
    double scale; /* inputs uniform in [-scale, scale) */
    int steps;    /* prefill and step kernels: a prefill of P = T − steps tokens, then `steps`
                     steps (0 <= steps <= T); heads is the batch B of sequences.  Forward
                     kernels ignore it */
};

struct la_check_result {
    double rel_err;   /* ‖Y − Y_ref‖_F / ‖Y_ref‖_F over all heads (backward: of grad_q,
                         grad_k and grad_v taken together) */
    double tol;       /* the stated fp32 tolerance against the kernel's reference */
    int finite;       /* 1 if every output is finite */
    long small_fast, small_ref; /* linear: rows with |normaliser| <= eps */
    int fused_exact;  /* a fused-map case: 1 when y equals, bit for bit, the same kernel's
                         output on the features attn_map_rows writes (the unfused path), else 0;
                         -1 for any other case */
};

/* Runs kernel kn on seeded inputs of the case's shape (kernels that take features get positive
 * elu1-like ones, so the normaliser is well away from 0) and compares it with its reference
 * (kn->ref, at kn->ref->tol).  A prefill or step kernel runs in the chain it is used in: for
 * each of B = heads sequences of T tokens, the table's prefill of the first T − steps tokens
 * from an empty state, then `steps` batched steps over the B sequences (kn is one of the two;
 * the other is the table's kernel of that operation and input).  The chain's outputs are
 * compared with the same chain of double references, with the causal forward reference over
 * the T tokens, and with the table's causal forward fp32 kernel; rel_err is the largest of the
 * three. */
int la_check_kernel(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                    struct la_check_result *res, struct la_error *err);

/* A backward kernel (op ATTN_OP_BACKWARD; la_check_kernel calls it for those): seeded q, k, v
 * (positive features when the kernel takes them) and upstream gradient dY in [-1, 1), the
 * kernel over the case's heads and threads, its double reference per head; rel_err is the
 * relative Frobenius error of grad_q, grad_k and grad_v taken together (check_backward.c says
 * why), finite says all three are finite. */
/* A forward kernel with fuses_map applying the elementwise map `map` (enum attn_fused_map;
 * map_eps: relu's constant) itself to raw q, k in [-scale, scale) (dk = d), against its
 * reference on φ(q), φ(k) evaluated in double (the map applied first), and against itself
 * unfused on the features attn_map_rows writes (fused_exact).  LA_EINVAL for a kernel that
 * cannot fuse. */
int la_check_fused(const struct attn_kernel *kn, const struct la_check_case *c, int map,
                   double map_eps, uint64_t seed, struct la_check_result *res,
                   struct la_error *err);

int la_check_backward(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                      struct la_check_result *res, struct la_error *err);

#endif
