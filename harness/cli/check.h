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
};

struct la_check_result {
    double rel_err;   /* ‖Y − Y_ref‖_F / ‖Y_ref‖_F over all heads */
    double tol;       /* the stated fp32 tolerance against the kernel's reference */
    int finite;       /* 1 if every output is finite */
    long small_fast, small_ref; /* linear: rows with |normaliser| <= eps */
};

/* Runs kernel kn on seeded inputs of the case's shape (kernels that take features get positive
 * elu1-like ones, so the normaliser is well away from 0) and compares it with its reference
 * (kn->ref, at kn->ref->tol). */
int la_check_kernel(const struct attn_kernel *kn, const struct la_check_case *c, uint64_t seed,
                    struct la_check_result *res, struct la_error *err);

#endif
