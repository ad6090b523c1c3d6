/* draws.h — what the random feature maps (rff, prf, hyp, gerf) share: drawing the projection W
 * (IID Gaussian or orthogonal blocks), the projection u = W·x̃ (one SGEMM, or, for the
 * exponential maps, fm_proj_exp: row blocks of the kernels' register tiles with the exp applied
 * to each block while it is in cache), and the max-shift stabiliser that keeps exponential
 * features finite.  learned.c uses the SGEMM and the stabiliser too.
 *
 * Not a feature map and not in the registry: internal to featuremaps/.  Everything random is
 * drawn in fm_draw_w from the caller's gsl_rng in a fixed order, so the same seed gives the same
 * W bit for bit; everything after that is deterministic and allocation-free.
 * Tests: tests/test_featuremaps.c (orthogonality of blocks, row norms, bit-identical φ).
 */
#ifndef LA_FM_DRAWS_H
#define LA_FM_DRAWS_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

#include "featuremap.h"

/* Draws W (m, d), row-major, into W.
 *  FM_DRAW_IID:        every entry N(0, 1), drawn row by row.
 *  FM_DRAW_ORTHOGONAL: ceil(m/d) blocks; each block is Q from the QR decomposition of a d×d
 *                      N(0,1) matrix, with Q's columns multiplied by sign(diag R) so Q is Haar
 *                      distributed; its first rows (all d, or what is left of m) are taken and
 *                      each is rescaled to a norm drawn from χ(d) (the norm an N(0, I_d) row
 *                      has), or to exactly √d when norm_fixed.  With χ(d) norms every row is
 *                      marginally N(0, I_d), so the estimators stay unbiased; with norm_fixed
 *                      they are slightly biased (the Performer's "regularised" variant).
 * who names the map in error messages.  Returns LA_OK, LA_EINVAL (bad draw) or LA_ENOMEM /
 * LA_ENUMERIC (GSL failure) with err filled. */
int fm_draw_w(double *W, int m, int d, int draw, int norm_fixed, gsl_rng *rng, const char *who,
              struct la_error *err);

/* The projection shared by the random maps: ω_i (rows of W) and its fp32 copy scaled for the
 * GEMM.  x̃ = x·d^{-1/4} is never formed: the factor d^{-1/4} is folded into Ws. */
struct fm_proj {
    int d, m;
    double *W; /* (m, d) the draws ω_i, unscaled */
    float *Ws;  /* (m, d) fp32 of W·d^{-1/4}·factor (factor = 1 except gerf's B) */
    float *WsT; /* (d, m) the same values transposed: the B operand of fm_proj_exp's GEMM */
};

/* Validates p->m (0 means d) and p->draw, allocates and draws.  On failure everything is
 * released.  who names the map in messages. */
int fm_proj_init(struct fm_proj *P, const struct fm_params *p, gsl_rng *rng, const char *who,
                 struct la_error *err);
/* Recomputes Ws = fp32(W·d^{-1/4}·factor), rounding once from double, and WsT from it. */
void fm_proj_scale(struct fm_proj *P, double factor);
void fm_proj_release(struct fm_proj *P);

/* u[r·ldu + i] = Σ_j x[r·d + j]·Ws[i·d + j] for r < n, i < m: one cblas_sgemm (in row blocks
 * that fit an int).  Deterministic for a given OpenBLAS build and thread count; linattn runs
 * OpenBLAS single-threaded (la_startup), so φ does not depend on OpenMP's thread count. */
void fm_proj_gemm(const struct fm_proj *P, const float *x, size_t n, float *u, int ldu);

/* u[r·ldu + i] = Σ_j x[r·d + j]·Wt[i·d + j] (+ b[i] when b is not NULL): the same SGEMM for any
 * fp32 weight matrix Wt (m, d) — learned.c's. */
void fm_gemm_rows(const float *x, size_t n, int d, const float *Wt, int m, const float *b, float *u,
                  int ldu);

/* ‖x̃‖² = ‖x‖²/√d of one row, in double. */
double fm_sqnorm_tilde(const float *x, int d);

/* Exponential features with the max-shift stabiliser.  On entry phi (n rows of `cols` floats,
 * contiguous) holds exponents v_ri without the row's norm term; on exit
 *     phi_ri = scale · exp(v_ri − h_r − c_r)          with h_r = hcoef·‖x_r‖²
 * where the stabiliser c_r depends on the role:
 *     FM_QUERY: c_r = max_i v_ri − h_r  (per row: the row's largest entry becomes `scale`)
 *     FM_KEY:   c_r = c = max_r (max_i v_ri − h_r)  (one constant for the whole call: the
 *               largest entry of the sequence becomes `scale`)
 *     FM_RAW:   c_r = 0  (the defining formula; may overflow or underflow)
 * A per-row factor on φ(q) and a per-sequence factor on φ(K) cancel in the attention ratio, so
 * the output is unchanged up to rounding and the normaliser's eps.  The norm term cancels from
 * the query stabiliser, so queries never need ‖x‖².  x (n, d) is read for h_r only (hcoef may be
 * 0: learned maps have no norm term, and x may then be NULL).  Never allocates; the exp runs
 * through la_vexpf over the whole block.  shift (n floats, or NULL) receives c_r: row r was
 * divided by exp(c_r) relative to the defining formula. */
void fm_exp_stabilised(float *phi, size_t n, int cols, const float *x, int d, double hcoef,
                       enum fm_role role, float scale, float *shift);

/* Exponential random features of n rows x (n, d), written to phi (n rows of `cols` floats,
 * cols = m, or 2m when pair):
 *     u_ri = Ws_i·x_r (+ off[i] when off is not NULL);   v_r = u_r, or [u_r, −u_r] when pair;
 *     phi_ri = scale · exp(v_ri − h_r − c_r),   h_r = hcoef·‖x_r‖²,
 * with c_r the stabiliser of `role`, exactly as fm_exp_stabilised forms it (same arithmetic per
 * row, so the same phi and shift from the same u).  Speed: the product runs in row blocks of
 * about 128 KiB of features through simd.h's la_proj_rows (the kernels' register tiles, on the
 * SIMD path of la_simd_isa()), which adds the offsets and finds each row's max in registers as
 * it stores u, so no pass over the block precedes the exp; each row's shifts, exp and scale
 * follow in one pass while the block is still in L2 (a row in L1), and meanwhile the next
 * block's rows of phi and x are prefetched for the GEMM.  With pair only u is stored, and
 * la_vexpf_pair writes both halves from it.  FM_KEY needs the call's largest exponent before
 * any exp: its first pass projects every block and keeps the running maximum, the second finds
 * each row's max again and applies the exp to the rows as written, last row first, prefetching
 * a few rows ahead (re-read from cache or memory; projecting twice would cost more than
 * reading T·m floats back).  Every element depends only on its own row (and, for keys, on c):
 * not on n, the block boundaries or the thread.  Never allocates. */
void fm_proj_exp(const struct fm_proj *P, const float *off, int pair, const float *x, size_t n,
                 double hcoef, enum fm_role role, float scale, float *phi, float *shift);

/* ---- Backward (the VJP of the maps above; featuremap.h documents the method) ----
 * Rows per block of a backward pass: its workspace holds one block's G and t, whatever n. */
#define FM_GRAD_ROWS 256

/* How φ is built from the projections u = Wt·x (p of them) and the norm term h(x):
 *   FM_GRAD_EXP:  φ_i = s·exp(u_i − h − c)                     (p features: prf, gerf)
 *   FM_GRAD_PAIR: φ = s·[exp(u_i − h − c), exp(−u_i − h − c)]  (2p: hyp, learned exp_pair)
 *   FM_GRAD_TRIG: φ = s·[cos u_i, sin u_i]·exp(h − c)          (2p: rff)
 * With c held constant, ∂L/∂u_i = G_i and ∂L/∂h = ±t, t = Σ_c g_c·φ_c over the row's features:
 *   EXP:  G_i = g_i·φ_i;   PAIR: G_i = g_i·φ_i − g_{p+i}·φ_{p+i};
 *   TRIG: G_i = g_{p+i}·φ_i − g_i·φ_{p+i}  (∂cos = −sin, ∂sin = cos, times the same factor). */
enum fm_grad_kind { FM_GRAD_EXP = 0, FM_GRAD_PAIR = 1, FM_GRAD_TRIG = 2 };

/* G (nr, p) and t (nr) of nr rows from phi and dphi (nr rows of p or 2p features, by kind);
 * t summed in double per row, or not formed when t is NULL (maps without a norm term). */
void fm_grad_G(enum fm_grad_kind kind, const float *phi, const float *dphi, size_t nr, int p,
               float *G, float *t);

/* dx (nr, d) = G (nr, p)·Wt (p, d), plus hgrad·t_r·x_r when t is not NULL (∇h = x times a
 * scalar: the norm term's part).  One cblas_sgemm. */
void fm_grad_rows(const float *G, size_t nr, int p, const float *Wt, int d, const float *t,
                  float hgrad, const float *x, float *dx);

/* dW (p, d) += Gᵀ·x (G: (nr, p), x: (nr, d)), one cblas_sgemm; db (p) += Σ_r G_r when db is
 * not NULL (column sums in double). */
void fm_grad_params(const float *G, size_t nr, int p, const float *x, int d, float *dW, float *db);

/* The whole backward of a random map of the kinds above: blocks of FM_GRAD_ROWS rows through
 * fm_grad_G and fm_grad_rows with Wt = the map's Ws; hgrad = ∂h/∂x ÷ x times the kind's sign
 * (prf: −1/√d, since h = ‖x‖²/(2√d) enters with a minus; rff: +1/√d).  work: the floats
 * fm_grad_work_floats gives. */
void fm_proj_backward(const struct fm_proj *P, enum fm_grad_kind kind, float hgrad, const float *x,
                      size_t n, const float *phi, const float *dphi, float *dx, float *work);
/* Workspace of one block: min(n, FM_GRAD_ROWS)·(p + 1) floats (G and t). */
size_t fm_grad_work_floats(int p, size_t n);

#endif
