/* simd.h — internal to kernels/ (and to featuremaps/draws.c, whose random-feature projection
 * runs on la_proj_rows): run-time choice of the vector instruction set, and the small
 * vectorised building blocks the fast kernels are made of (register-blocked GEMM tiles, the
 * random maps' projection with its row maxima, the fused per-token recurrent update, the fused
 * online-softmax block, the causal normaliser).
 *
 * What it is: three implementations of each block — AVX-512F (16 lanes), AVX2+FMA (8 lanes)
 * and portable C (one lane) — compiled from one template (simd_tmpl.h) and chosen per call by
 * an `isa` argument.  la_simd_isa() is what the public kernels pass: the best this CPU runs,
 * or what the environment variable LINATTN_SIMD=avx512|avx2|scalar names (any case; read
 * once, at the first call).  The linattn command refuses an unknown name, or one the CPU
 * cannot run, at start-up (la_simd_env_check); the library itself then uses the best path.
 * la_simd_force() is for tests, which run every kernel under every path.
 * What it is not: a BLAS.  The GEMM here has no packing of A and only the blocking the
 * attention kernels need (operands of a few hundred rows that live in L1/L2).
 * Numerics: plain IEEE fp32 with FMA contraction written out; no -ffast-math.  Sums run in a
 * different order from the double references, which is what the tolerances allow for.
 * Tests: tests/test_kernels.c (every kernel on every path, odd shapes; GEMM against a loop);
 * tests/test_featuremaps.c (la_proj_rows against a loop on every path).
 */
#ifndef LA_SIMD_H
#define LA_SIMD_H

#include <stddef.h>

enum la_isa { LA_ISA_SCALAR = 0, LA_ISA_AVX2 = 1, LA_ISA_AVX512 = 2 };
#define LA_ISA_COUNT 3

/* The path the kernels use now (see above). */
int la_simd_isa(void);
/* Tests: force a path for every later call (isa < 0: back to the automatic choice).  Not to be
 * called while kernels run in other threads.  Returns 0, or -1 when this CPU cannot run isa. */
int la_simd_force(int isa);
/* 1 if this CPU can run isa (scalar: always). */
int la_simd_supported(int isa);
/* "avx512", "avx2" or "scalar"; la_simd_parse is the inverse, in any case (-1 when unknown). */
const char *la_simd_name(int isa);
int la_simd_parse(const char *name);
/* 0 when LINATTN_SIMD is unset, empty, or names a path this CPU runs; else -1 and msg gets a
 * one-line reason that lists the valid names (and those this CPU runs). */
int la_simd_env_check(char *msg, size_t cap);

/* Register-block sizes of a path: GEMM tiles are mr x nr (nr = lanes · vectors). */
int la_simd_mr(int isa);
int la_simd_nr(int isa);
/* The widest nr of any path; packed panels sized with it fit every path. */
#define LA_SIMD_NR_MAX 64
#define LA_SIMD_MR_MAX 8

/* C = s_i · A·B + (beta ? C : 0) row by row, s_i = alpha · (rowscale ? rowscale[i] : 1);
 * C: (M, N) with row stride ldc; A(i, k) = A[i·rsa + k·csa] (so a transposed A is rsa = 1,
 * csa = lda); B: (K, N) with row stride ldb.  beta is 0 or 1. */
void la_gemm(int isa, int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
             const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
             const float *rowscale, int beta);

/* la_gemm that also fetches bytes1 from p1, then bytes2 from p2, into cache as it goes (the
 * next block's rows of a kernel that reads its inputs block by block from memory): one 64-byte
 * line per step of each register tile's K loop, so at most ⌈M/mr⌉·⌈N/nr⌉·K lines (mr × nr: the
 * path's register tile; lines past that are not fetched).  Only hints: the products and C are
 * la_gemm's, bit for bit.  A region of 0 bytes fetches nothing (its pointer is not read). */
void la_gemm_pf(int isa, int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
                const float *rowscale, int beta, const void *p1, size_t bytes1, const void *p2,
                size_t bytes2);

/* The random feature maps' projection (featuremaps/draws.c, fm_proj_exp), for rows i < M and
 * columns j < N:
 *     u_ij = Σ_k A[i·lda + k]·B[k·ldb + j]  (+ off[j] when off is not NULL).
 * Writes C[i·ldc + j] = u_ij; mx[i] gets the row's largest u_ij, or with pair the largest of
 * u_ij and −u_ij (the hyperbolic maps' two halves; nothing else is written); a NaN is never
 * selected, -inf when every value is NaN.  The sum over k is one FMA chain in k order
 * (la_gemm's for K <= 128), then the offset is added: the same u as la_gemm followed by an
 * add.  Register tiles and loops as la_gemm's; the offsets and maxima are applied in registers
 * as each tile is stored, so no pass over C follows for them. */
void la_proj_rows(int isa, int M, int N, int K, const float *A, ptrdiff_t lda, const float *B,
                  ptrdiff_t ldb, const float *off, int pair, float *C, ptrdiff_t ldc, float *mx);

/* Packs rows [j0, j0+n) of X (row stride ldx, `cols` columns) transposed into panels of nr:
 * panel p holds P[p·cols·nr + c·nr + jj] = X[(j0 + p·nr + jj)·ldx + c], zero where
 * p·nr + jj >= n.  Makes Xᵀ a B operand with contiguous rows. */
void la_pack_t(const float *X, ptrdiff_t ldx, int j0, int n, int cols, int nr, float *P);

/* y[i] = elu(x[i]) + 1 = max(x, 0) + e^{min(x, 0)} for i < n, in one vector pass with this
 * path's exp (measured over every float of [-87, 0]: at most 1.07 ulp of the exact value on
 * AVX-512, 1.26 on AVX2, libm's expf on the portable path; below x = -87 about 1e-38 instead of
 * less).  attn_map_rows's elu1 (kernels/fused_map.c), which the fused kernels and the elu1
 * feature map both run.  x and y may be the same array. */
void la_elu1_rows(int isa, const float *x, float *y, ptrdiff_t n);

/* Causal normaliser: inv[t] = 1 / (q_t·z_t + eps) with z_t = z0 + Σ_{j<=t} k_j over rows
 * t < T of Q, K (row stride ld, m columns); z (m floats) holds z0 on entry and z_T on exit.
 * K = NULL: z stays z0 for every t (the non-causal normaliser).
 * epsr (T floats, or NULL): a per-row eps replacing eps (rows whose features were stabilised).
 * Returns the number of t with |q_t·z_t| <= that row's eps. */
long la_lin_den(int isa, int T, int m, const float *Q, const float *K, ptrdiff_t ld, float eps,
                const float *epsr, float *z, float *inv);

/* la_lin_den's normaliser for the decay and gated rules: z_t = g ⊙ z_{t−1} + k_t, with g the
 * scalar g (G = NULL) or row t of G (row stride ld, as Q's and K's); inv, epsr, z and the count
 * returned as la_lin_den's.  K must not be NULL. */
long la_gate_den(int isa, int T, int m, const float *Q, const float *K, const float *G, float g,
                 ptrdiff_t ld, float eps, const float *epsr, float *z, float *inv);

/* Causal recurrent form for state columns [c0, c0 + nc): for each token t, S += k_t v_tᵀ then
 * y_t = (q_tᵀ S) · inv[t], fused in one pass over S.  Unless have_inv, inv[t] = 1/(q_t·z_t +
 * eps_t) with z_t = z + Σ_{j<=t} k_j is computed on the way, a few tokens ahead of its use
 * (inv: T floats, written; eps_t = epsr[t] when epsr is not NULL, else eps; z: m floats, zero
 * at the first token), and the number of t with |q_t·z_t| <= eps_t is returned (else 0).
 * S: (m, ≥ nc rounded up to the lanes) state slice, contiguous rows of that width, zero at the
 * first token; S and z carry over between calls on consecutive token ranges.  V: (T, dv)
 * row-major; Y: rows of stride ldy, columns c0 .. c0+nc-1 written, except that the first
 * `side` of them (0 for none; rounded up to whole vectors) go to Ys (rows of stride ldys,
 * starting at its column 0) instead.  pfq, pfk (or NULL): rows of m floats to bring into the
 * caches as the tokens go, row t of each while token t runs (the next rows a caller will read
 * in a burst, e.g. the raw rows a fused map reads next: spread over the pass, the loads
 * overlap the arithmetic instead of stalling it).  flags:
 *   LA_REC_PF_ROWS   the rows of V and Y (its columns) of the next few tokens are prefetched
 *                    the same way (one thread: measured faster from memory);
 *   LA_REC_STREAM_Y  Y is written with non-temporal stores, fenced before the return, where
 *                    every row's columns are whole aligned vectors and side = 0 (else plain
 *                    stores): for threads that split the columns of Y's rows, whose lines
 *                    then neighbour another thread's (see linear.c).
 * On the vector paths' arithmetic the two give the same values. */
#define LA_REC_PF_ROWS 1
#define LA_REC_STREAM_Y 2
long la_linrec_cols(int isa, int T, int m, int dv, const float *Q, const float *K, const float *V,
                    float *Y, ptrdiff_t ldy, float *Ys, ptrdiff_t ldys, int side, float eps,
                    const float *epsr, float *z, float *inv, int have_inv, float *S, int c0,
                    int nc, const float *pfq, const float *pfk, int flags);
/* The width of the state slice la_linrec_cols needs for nc columns, and the widest block it
 * runs at once (callers split wider column ranges into blocks of at most this). */
int la_linrec_width(int isa, int nc);
int la_linrec_block(int isa);

/* Causal chunked form, the output of one chunk of n <= C rows:
 *   Yc = (Qc·S + tril(Qc·Kcᵀ)·Vc) scaled row-wise by inv, with S the state of the earlier
 *   chunks, (m, dv) with row stride lds.  Qc, Kc: (n, m); Vc, Yc: (n, dv).
 * Work: Kt ≥ m·(C rounded up to LA_SIMD_NR_MAX) floats, A ≥ LA_SIMD_MR_MAX·that floats.
 * Only the lower triangle (rounded up to the register block) of Qc·Kcᵀ is computed. */
void la_linchunk_out(int isa, int n, int m, int dv, const float *Qc, const float *Kc,
                     const float *Vc, float *Yc, const float *S, ptrdiff_t lds, const float *inv,
                     float *Kt, float *A);

/* Fused softmax attention for query rows [i0, i0 + rows): online softmax over key tiles of bc
 * (a multiple of la_simd_nr), scores scale·q·k, causal or not.  Kp: Kᵀ packed by la_pack_t
 * with this path's nr over all T rows.  Work: S ≥ LA_SIMD_MR_MAX·bc, ml ≥ 2·rows floats.
 * Writes Y rows i0 .. i0+rows-1. */
void la_softmax_rows(int isa, const float *Q, const float *Kp, const float *V, float *Y, int T,
                     int d, int dv, int causal, float scale, int i0, int rows, int bc, float *S,
                     float *ml);

/* Softmax attention of `rows` query rows (Q, row stride ldq, d columns) over the tokens
 * [j0, j1) of a key-value cache C in attention.h's blocked layout (ATTN_KV_BLOCK tokens a block:
 * the block's keys transposed, d × ATTN_KV_BLOCK, then its value rows, ATTN_KV_BLOCK × dv;
 * j0 a multiple of ATTN_KV_BLOCK).  Row r is at position p0 + r and sees tokens j <= p0 + r
 * only.  Online: m and l (rows floats: the running max, -inf at first, and sum, 0 at first of
 * each row's scale·q·k) and Y (rows × dv, row stride ldy, zero at first) carry over between
 * calls on consecutive or disjoint ranges; the output is Y / l.  S: rows × ATTN_KV_BLOCK floats
 * of work.  Reads only the tokens in [j0, j1). */
void la_kv_attend(int isa, const float *Q, ptrdiff_t ldq, int rows, const float *C, int d, int dv,
                  int j0, int j1, int p0, float scale, float *S, float *m, float *l, float *Y,
                  ptrdiff_t ldy);
/* Recurrences (kernels/recurrence.c; update = attention.h's enum attn_update: 1 delta, 2 decay,
 * 3 gated), state columns [c0, c0 + nc) over T tokens in order:
 *   decay, gated:  S = a ⊙ S + k_t (ks_t v_t)ᵀ with a = g (decay) or row t of G (T × m, gated),
 *   delta:         S += k_t (ks_t β_t (v_t − ks_t Sᵀk_t))ᵀ with β_t = G[t] (G: T floats) or g,
 *                  G = NULL: every gate is g;
 *   then y_t = (Sᵀq_t) · ys[t], written to columns c0 .. c0+nc-1 of Y (row stride ldy).
 * ys, ks: T floats (the output and key scales the normaliser asks for).  S: (m, la_linrec_width
 * of nc) slice, rows contiguous, holding the state's columns on entry and on return.  nc is at
 * most la_recur_block(isa, update).  flags: 0, or LA_REC_STREAM_Y (as la_linrec_cols's: for
 * threads that split the columns of Y's rows). */
void la_recur_cols(int isa, int update, int T, int m, int dv, const float *Q, const float *K,
                   const float *V, float *Y, ptrdiff_t ldy, const float *ys, const float *ks,
                   float g, const float *G, float *S, int c0, int nc, int flags);
int la_recur_block(int isa, int update);

#endif
