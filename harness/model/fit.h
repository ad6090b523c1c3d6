/* fit.h — distillation of the `learned` feature map (featuremaps/learned.c) onto one attention
 * head: separate query and key maps, trained by Adam so that linear attention with them mimics
 * the head's causal softmax attention (Hedgehog, Zhang et al. 2024; LoLCATs, Zhang et al. 2025).
 *
 * Per head, with u = W x + b and φ one of the learned map's activations (exp_pair, softmax_pair,
 * relu), s = 1/√d, on sequences of T rows q_i, k_i, v_i:
 *     P_ij = softmax_j≤i(s·q_iᵀk_j)                (the teacher, causal)
 *     S_ij = φ_q(q_i)ᵀφ_k(k_j),  A_ij = S_ij / Σ_j'≤i S_ij'  (the student's weights)
 *     xent = −(1/T) Σ_i Σ_j≤i P_ij log A_ij        (Hedgehog; = KL(P‖A) + the entropy of P)
 *     mse  = (1/(T·dv)) Σ_i ‖Σ_j A_ij v_j − Σ_j P_ij v_j‖²   (LoLCATs: the attention outputs)
 *     both = xent + mse_weight·mse
 * averaged over the training sequences.  The gradients are exact: ∂L/∂S_ij (below, fit.c) then
 * ∂L/∂φ_q = G·Φ_k, ∂L/∂φ_k = Gᵀ·Φ_q, then each map's vector–Jacobian product for dW, db (the
 * formulas of learned.c's backward, for both maps).  Everything is double; exp_pair's features
 * are stabilised like the map's (a per-row constant for queries, one constant for all keys of a
 * sequence), which changes neither A nor the gradient.
 *
 * Parameters θ, in the layout of the weights file's entry (docs/data-layout.md): W_q (m, d)
 * row-major, b_q (m), W_k (m, d), b_k (m): la_fit_nparams(m, d) doubles.
 *
 * Adam (β1 = 0.9, β2 = 0.999, ε = 1e-8, full batch) with a learning-rate schedule: a linear
 * warm-up over the first w = max(1, steps/20) steps (lr·(t+1)/w), then a cosine decay from lr
 * to lr/10 over the remaining steps.  Deterministic: no randomness but the initial draw.
 *
 * Not here: reading captures and writing weights (harness/cli/cmd_fit.c).
 * Tests: tests/test_fit.c (gradients against central differences, recovery of a known map).
 */
#ifndef LA_FIT_H
#define LA_FIT_H

#include <stddef.h>

#include "../core/status.h"

enum la_fit_act { LA_FIT_EXP_PAIR = 0, LA_FIT_SOFTMAX_PAIR = 1, LA_FIT_RELU = 2 };
enum la_fit_loss { LA_FIT_XENT = 0, LA_FIT_MSE = 1, LA_FIT_BOTH = 2 };
enum la_fit_init { LA_FIT_INIT_RANDOM = 0, LA_FIT_INIT_IDENTITY = 1 };

/* One sequence of one head: q, k (T, d) and v (T, dv), fp32 row-major.  teacher: NULL for the
 * causal softmax attention of q and k (the head's own); otherwise (T, T) row-major weights to
 * mimic instead, row i a distribution over j <= i (tests: the attention of a known map). */
struct la_fit_seq {
    const float *q, *k, *v;
    int T;
    const double *teacher;
};

struct la_fit_opts {
    int act;            /* enum la_fit_act (learned.c's activation of the same name) */
    int loss;           /* enum la_fit_loss */
    int m;              /* units per map: 2m features for the pair activations, m for relu */
    int steps;          /* Adam steps */
    double lr;          /* peak learning rate */
    double mse_weight;  /* loss both: the weight of mse */
    int init;           /* enum la_fit_init */
    unsigned long seed; /* the initial draw (random init) */
};

/* Measures of a fitted map on sequences (means over sequences; rows: over every row). */
struct la_fit_eval {
    double loss; /* the training objective */
    double kl;   /* mean over rows of KL(P_i ‖ A_i), nats */
    double out_err; /* relative Frobenius error of the outputs ‖Y − Y_softmax‖ / ‖Y_softmax‖ */
};

/* Called after each step (step = 1..steps) with the training loss; a nonzero return stops the
 * fit with LA_EINTR. */
typedef int (*la_fit_step_fn)(void *ctx, int step, double loss);

/* One head's problem: its sequences with the teacher precomputed. */
struct la_fit_problem;

/* Doubles in θ for m units of input dimension d. */
size_t la_fit_nparams(int m, int d);

/* Builds the problem for nseq sequences of dimension d, dv (the teacher in double).  NULL with
 * err filled when out of memory or a sequence is empty. */
struct la_fit_problem *la_fit_problem_new(const struct la_fit_seq *seqs, int nseq, int d, int dv,
                                          struct la_error *err);
void la_fit_problem_free(struct la_fit_problem *pb); /* NULL is fine */

/* The objective of opts (act, loss, m, mse_weight) at θ, into ev (ev->loss, kl, out_err); the
 * gradient into grad (la_fit_nparams doubles, overwritten) when grad is not NULL.  Returns LA_OK,
 * LA_ENOMEM, or LA_EFORMAT when the loss is not finite (features that vanish or overflow). */
int la_fit_objective(struct la_fit_problem *pb, const struct la_fit_opts *o, const double *theta,
                     double *grad, struct la_fit_eval *ev, struct la_error *err);

/* The initial θ of opts.init: random: W_q = W_k with entries N(0, 1)·d^{-1/4} from a mt19937
 * seeded with opts.seed, b = 0; identity: row i of W_q = W_k is d^{-1/4}·e_{i mod d}, b = 0. */
void la_fit_init(const struct la_fit_opts *o, int d, double *theta);

/* Runs opts.steps Adam steps from θ (updated in place); ev gets the measures at the final θ.
 * step (may be NULL) is called after each step.  Returns LA_OK, LA_EINTR (stopped by step or
 * la_cancelled()), or la_fit_objective's errors. */
int la_fit_run(struct la_fit_problem *pb, const struct la_fit_opts *o, double *theta,
               la_fit_step_fn step, void *ctx, struct la_fit_eval *ev, struct la_error *err);

/* The learning rate at step t (0-based) of opts (the schedule above). */
double la_fit_lr(const struct la_fit_opts *o, int t);

#endif
