/* simd_tmpl.h — the body of simd.c's vector blocks, written once and included once per path
 * (AVX-512, AVX2, portable C) with these macros defined by the includer:
 *   SFX                 suffix of every function name here (avx512, avx2, scalar)
 *   VW, VEC, MASK       lanes, vector type, lane-mask type
 *   GEMM_MR, GEMM_NV    GEMM register tile: GEMM_MR rows × GEMM_NV vectors (nr = GEMM_NV·VW)
 *   GEMM_CASES          `LA_TC(r, v)` for every 1 <= r <= GEMM_MR, 1 <= v <= GEMM_NV
 *   REC_NV, REC_TB(nv)  recurrent form: vectors per column block, tokens per pass for nv
 *   vmask(n)            mask with lanes 0..n-1 on (1 <= n <= VW)
 *   vld, vst            unaligned load/store;  vldm, vstm: masked (off lanes read as 0, are
 *                       not written, and are never touched in memory)
 *   vst_nt, vsfence     non-temporal store of a full vector to an address aligned to it (the
 *                       line goes to memory without being read into the caches), and the
 *                       fence that orders such stores before the ones after it
 *   vldm_ninf(p, k)     masked load whose off lanes read as -inf
 *   vkeep(x, k)         x with off lanes set to 0
 *   vset1, vzero, vfma (a·b + c, one rounding), vmul, vadd, vsub, vmax, vhsum, vhmax
 *   vexp(x)             e^x for x <= 0 (x < -87 gives about 1e-38 instead of less)
 * Not a header to include anywhere else.  Tests: tests/test_kernels.c runs every path.
 */

#define LA_CAT2(a, b) a##_##b
#define LA_CAT(a, b) LA_CAT2(a, b)
#define FN(x) LA_CAT(x, SFX)

#define LA_INLINE static inline __attribute__((always_inline))

/* ---- GEMM register tile: C[mr × nv·VW] = alpha·A·B (+ C) ---------------------------------- */

/* tile_acc forms the products acc = A·B of one register tile (K terms, an FMA chain per
 * element), for tile (the GEMM's store) and proj_tile (the projection's); with dopf (a
 * compile-time constant too) it also prefetches line k of pf at its k steps below npf.  mr and
 * nv are compile-time constants at every call (through tile_any's and proj_any's switches), so the
 * loops unroll fully and acc stays in registers.  The last vector of a row is masked (mk),
 * which lets one tile serve any number of columns. */
LA_INLINE void FN(tile_acc)(const int mr, const int nv, int K, const float *restrict A,
                            ptrdiff_t rsa, ptrdiff_t csa, const float *restrict B, ptrdiff_t ldb,
                            MASK mk, VEC acc[GEMM_MR][GEMM_NV], const int dopf, const char *pf,
                            int npf)
{
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++)
            acc[r][v] = vzero();
    for (int k = 0; k < K; k++) {
        const float *b = B + k * ldb;
        const float *a = A + k * csa;
        if (dopf && k < npf)
            __builtin_prefetch(pf + 64 * k, 0, 3);
        VEC bv[GEMM_NV];
#pragma GCC unroll 4
        for (int v = 0; v < nv - 1; v++)
            bv[v] = vld(b + v * VW);
        bv[nv - 1] = vldm(b + (nv - 1) * VW, mk);
#pragma GCC unroll 8
        for (int r = 0; r < mr; r++) {
            const VEC ar = vset1(a[r * rsa]);
#pragma GCC unroll 4
            for (int v = 0; v < nv; v++)
                acc[r][v] = vfma(ar, bv[v], acc[r][v]);
        }
    }
}

/* One register tile: C[0:mr, 0:nv vectors] = (beta ? C : 0) + alpha·rs[r]·(A·B), the products
 * accumulated by tile_acc. */
LA_INLINE void FN(tile)(const int mr, const int nv, int K, const float *restrict A, ptrdiff_t rsa,
                        ptrdiff_t csa, const float *restrict B, ptrdiff_t ldb, float *restrict C,
                        ptrdiff_t ldc, MASK mk, float alpha, const float *rs, int beta,
                        const int dopf, const char *pf, int npf)
{
    VEC acc[GEMM_MR][GEMM_NV];
    FN(tile_acc)(mr, nv, K, A, rsa, csa, B, ldb, mk, acc, dopf, pf, npf);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        const VEC al = vset1(rs ? rs[r] * alpha : alpha);
        float *c = C + r * ldc;
#pragma GCC unroll 4
        for (int v = 0; v < nv - 1; v++) {
            VEC x = vmul(acc[r][v], al);
            if (beta)
                x = vadd(x, vld(c + v * VW));
            vst(c + v * VW, x);
        }
        VEC x = vmul(acc[r][nv - 1], al);
        if (beta)
            x = vadd(x, vldm(c + (nv - 1) * VW, mk));
        vstm(c + (nv - 1) * VW, x, mk);
    }
}

/* tile for any mr <= GEMM_MR and nv <= GEMM_NV, dopf a constant at each call (so tile_any
 * and tile_any_pf each get their own tiles, and tile_any's have no prefetch test). */
LA_INLINE void FN(tile_sw)(const int dopf, int mr, int nv, int K, const float *A, ptrdiff_t rsa,
                           ptrdiff_t csa, const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc,
                           MASK mk, float alpha, const float *rs, int beta, const char *pf, int npf)
{
#define LA_TC(r_, v_)                                                                          \
    case (r_) * 8 + (v_):                                                                      \
        FN(tile)(r_, v_, K, A, rsa, csa, B, ldb, C, ldc, mk, alpha, rs, beta, dopf, pf, npf);  \
        return;
    switch (mr * 8 + nv) {
        GEMM_CASES
    default:
        return;
    }
#undef LA_TC
}

static void FN(tile_any)(int mr, int nv, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                         const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, MASK mk,
                         float alpha, const float *rs, int beta)
{
    FN(tile_sw)(0, mr, nv, K, A, rsa, csa, B, ldb, C, ldc, mk, alpha, rs, beta, NULL, 0);
}

/* tile_any that prefetches line k of pf at each of its k steps below npf (gemm_pf). */
static void FN(tile_any_pf)(int mr, int nv, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                            const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, MASK mk,
                            float alpha, const float *rs, int beta, const char *pf, int npf)
{
    FN(tile_sw)(1, mr, nv, K, A, rsa, csa, B, ldb, C, ldc, mk, alpha, rs, beta, pf, npf);
}

/* K is split in blocks of KC so that a B panel (KC × nr) stays in L1 while the row tiles of A
 * stream past it.  gemm_pf (simd.h la_gemm_pf) also fetches up to two regions of memory, one
 * line per k step of each tile (tile_acc's pf, npf): spread over the products, the fetches
 * overlap them; issued a tile's worth at once (tens of lines after each tile) they measured no
 * faster than none. */
#define LA_GEMM_KC 128

static void FN(gemm_pf)(int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                        const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
                        const float *rs, int beta, const void *p1, size_t bytes1,
                        const void *p2, size_t bytes2)
{
    const int NR = GEMM_NV * VW;
    /* The lines to fetch, one per k step of each tile: region 1's, then region 2's. */
    const char *pf = p1, *pf2 = p2;
    size_t pfl = (bytes1 + 63) / 64, pfl2 = (bytes2 + 63) / 64;
    if (pfl == 0) {
        pf = pf2;
        pfl = pfl2;
        pfl2 = 0;
    }
    if (M <= 0 || N <= 0)
        return;
    if (K <= 0) {
        if (!beta)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++)
                    C[i * ldc + j] = 0.0f;
        return;
    }
    for (int k0 = 0; k0 < K; k0 += LA_GEMM_KC) {
        const int kc = K - k0 < LA_GEMM_KC ? K - k0 : LA_GEMM_KC;
        const int b = k0 ? 1 : beta;
        for (int j0 = 0; j0 < N; j0 += NR) {
            const int nc = N - j0 < NR ? N - j0 : NR, nv = (nc + VW - 1) / VW;
            const MASK mk = vmask(nc - (nv - 1) * VW);
            for (int i0 = 0; i0 < M; i0 += GEMM_MR) {
                const int mr = M - i0 < GEMM_MR ? M - i0 : GEMM_MR;
                const int npf = pfl < (size_t)kc ? (int)pfl : kc;
                if (npf > 0)
                    FN(tile_any_pf)(mr, nv, kc, A + i0 * rsa + k0 * csa, rsa, csa,
                                    B + k0 * ldb + j0, ldb, C + i0 * ldc + j0, ldc, mk, alpha,
                                    rs ? rs + i0 : NULL, b, pf, npf);
                else
                    FN(tile_any)(mr, nv, kc, A + i0 * rsa + k0 * csa, rsa, csa, B + k0 * ldb + j0,
                                 ldb, C + i0 * ldc + j0, ldc, mk, alpha, rs ? rs + i0 : NULL, b);
                pf += 64 * (size_t)npf;
                pfl -= (size_t)npf;
                if (pfl == 0 && pfl2) {
                    pf = pf2;
                    pfl = pfl2;
                    pfl2 = 0;
                }
            }
        }
    }
}

static void FN(gemm)(int M, int N, int K, const float *A, ptrdiff_t rsa, ptrdiff_t csa,
                     const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc, float alpha,
                     const float *rs, int beta)
{
    FN(gemm_pf)(M, N, K, A, rsa, csa, B, ldb, C, ldc, alpha, rs, beta, NULL, 0, NULL, 0);
}

/* ---- random-feature projection: U = A·B (+ off) and its row maxima ----------------------- */

/* Zeros whose masked load (vldm_ninf) gives 0 in a tail's lanes and -inf past them. */
static const float FN(proj_zeros)[VW] = {0.0f};

/* One register tile of proj_rows: rows [0, mr) × the caller's nv vectors of columns.  The
 * products are tile_acc's (the same FMA chain over k as the GEMM's), then the offsets added,
 * u stored, and the tile row's largest u (pair: largest of u and −u) folded into mx[r].  The
 * max runs over lanes that hold columns only: the tail's other lanes are set to -inf first.
 * A NaN is never selected (vmax returns its second operand when either is NaN). */
LA_INLINE void FN(proj_tile)(const int mr, const int nv, int K, const float *restrict A,
                             ptrdiff_t lda, const float *restrict B, ptrdiff_t ldb,
                             const float *restrict off, int pair, float *restrict C,
                             ptrdiff_t ldc, MASK mk, float *restrict mx)
{
    VEC acc[GEMM_MR][GEMM_NV];
    FN(tile_acc)(mr, nv, K, A, lda, 1, B, ldb, mk, acc, 0, NULL, 0);
    VEC o[GEMM_NV];
#pragma GCC unroll 4
    for (int v = 0; v < nv; v++)
        o[v] = vzero();
    if (off) {
#pragma GCC unroll 4
        for (int v = 0; v < nv - 1; v++)
            o[v] = vld(off + v * VW);
        o[nv - 1] = vldm(off + (nv - 1) * VW, mk);
    }
    const VEC pad = vldm_ninf(FN(proj_zeros), mk), neg1 = vset1(-1.0f);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
        float *c = C + r * ldc;
        VEC hi = vset1(-INFINITY);
#pragma GCC unroll 4
        for (int v = 0; v < nv; v++) {
            const VEC u = off ? vadd(acc[r][v], o[v]) : acc[r][v];
            const int last = v == nv - 1;
            if (last)
                vstm(c + v * VW, u, mk);
            else
                vst(c + v * VW, u);
            hi = vmax(last ? vadd(vkeep(u, mk), pad) : u, hi);
            if (pair) {
                const VEC w = vmul(u, neg1); /* −u exactly */
                hi = vmax(last ? vadd(vkeep(w, mk), pad) : w, hi);
            }
        }
        const float t = vhmax(hi);
        mx[r] = t > mx[r] ? t : mx[r];
    }
}

static void FN(proj_any)(int mr, int nv, int K, const float *A, ptrdiff_t lda, const float *B,
                         ptrdiff_t ldb, const float *off, int pair, float *C, ptrdiff_t ldc,
                         MASK mk, float *mx)
{
#define LA_TC(r_, v_)                                                                          \
    case (r_) * 8 + (v_):                                                                      \
        FN(proj_tile)(r_, v_, K, A, lda, B, ldb, off, pair, C, ldc, mk, mx);                   \
        return;
    switch (mr * 8 + nv) {
        GEMM_CASES
    default:
        return;
    }
#undef LA_TC
}

/* simd.h la_proj_rows: column panels of B outside (a panel stays in cache while every row
 * tile passes it), row tiles inside, as gemm's loops. */
static void FN(proj_rows)(int M, int N, int K, const float *A, ptrdiff_t lda, const float *B,
                          ptrdiff_t ldb, const float *off, int pair, float *C, ptrdiff_t ldc,
                          float *mx)
{
    const int NR = GEMM_NV * VW;
    for (int i = 0; i < M; i++)
        mx[i] = -INFINITY;
    for (int j0 = 0; j0 < N; j0 += NR) {
        const int nc = N - j0 < NR ? N - j0 : NR, nv = (nc + VW - 1) / VW;
        const MASK mk = vmask(nc - (nv - 1) * VW);
        for (int i0 = 0; i0 < M; i0 += GEMM_MR) {
            const int mr = M - i0 < GEMM_MR ? M - i0 : GEMM_MR;
            FN(proj_any)(mr, nv, K, A + i0 * lda, lda, B + j0, ldb, off ? off + j0 : NULL, pair,
                         C + i0 * ldc + j0, ldc, mk, mx + i0);
        }
    }
}

/* ---- causal normaliser --------------------------------------------------------------------- */

/* z lives in registers for the whole pass when it fits in DEN_NV vectors (nvm a compile-time
 * constant through the switch below), so no token's sum waits on the store and reload of the
 * previous token's z (den_wide's form, kept for wider z).  Only a partial last vector is
 * masked: a masked store is a poor source for store-to-load forwarding. */
#define DEN_NV 8

/* One token's normaliser: inv = 1/(den + e); returns 1 when |den| <= e. */
LA_INLINE long FN(den_out)(float den, float e, float *inv)
{
    *inv = 1.0f / (den + e);
    return fabsf(den) <= e;
}

/* gk: how z decays before each token's key is added: 0 not at all (the sum rule), 1 by g, 2 by
 * the token's row of G (the gated rule; row stride ld as Q's and K's). */
LA_INLINE long FN(den_fixed)(const int nvm, const int gk, int T, int m, const float *restrict Q,
                             const float *restrict K, const float *restrict G, float g,
                             ptrdiff_t ld, float eps, const float *restrict epsr,
                             float *restrict z, float *restrict inv)
{
    const VEC gv = vset1(g);
    const MASK mk = vmask(m - (nvm - 1) * VW);
    const int part = m != nvm * VW;
    VEC zr[DEN_NV];
#pragma GCC unroll 8
    for (int c = 0; c < nvm; c++)
        zr[c] = c == nvm - 1 && part ? vldm(z + c * VW, mk) : vld(z + c * VW);
    long small = 0;
    for (int t = 0; t < T; t++) {
        const float *q = Q + t * ld, *k = K ? K + t * ld : NULL;
        const float *gr = gk == 2 ? G + t * ld : NULL;
        VEC acc = vzero();
#pragma GCC unroll 8
        for (int c = 0; c < nvm; c++) {
            const int pc = c == nvm - 1 && part;
            if (k) {
                const VEC kc = pc ? vldm(k + c * VW, mk) : vld(k + c * VW);
                if (gk == 0)
                    zr[c] = vadd(zr[c], kc);
                else
                    zr[c] = vfma(gk == 1 ? gv : pc ? vldm(gr + c * VW, mk) : vld(gr + c * VW),
                                 zr[c], kc);
            }
            acc = vfma(pc ? vldm(q + c * VW, mk) : vld(q + c * VW), zr[c], acc);
        }
        small += FN(den_out)(vhsum(acc), epsr ? epsr[t] : eps, inv + t);
    }
    if (K) /* without keys z is only read (threads may share it) */
#pragma GCC unroll 8
        for (int c = 0; c < nvm; c++) {
            if (c == nvm - 1 && part)
                vstm(z + c * VW, zr[c], mk);
            else
                vst(z + c * VW, zr[c]);
        }
    return small;
}

/* Wider than DEN_NV vectors: z in memory, full vectors except a partial last one. */
static long FN(den_wide)(const int gk, int T, int m, const float *Q, const float *K,
                         const float *G, float g, ptrdiff_t ld, float eps, const float *epsr,
                         float *z, float *inv)
{
    const int nvm = (m + VW - 1) / VW;
    const MASK mk = vmask(m - (nvm - 1) * VW);
    long small = 0;
    for (int t = 0; t < T; t++) {
        const float *q = Q + t * ld;
        VEC acc = vzero();
        for (int c = 0; c < nvm; c++) {
            const int pc = c == nvm - 1 && m != nvm * VW;
            VEC zc = pc ? vldm(z + c * VW, mk) : vld(z + c * VW);
            if (K) {
                const VEC kc = pc ? vldm(K + t * ld + c * VW, mk) : vld(K + t * ld + c * VW);
                if (gk == 0)
                    zc = vadd(zc, kc);
                else if (gk == 1)
                    zc = vfma(vset1(g), zc, kc);
                else
                    zc = vfma(pc ? vldm(G + t * ld + c * VW, mk) : vld(G + t * ld + c * VW), zc,
                              kc);
                if (pc)
                    vstm(z + c * VW, zc, mk);
                else
                    vst(z + c * VW, zc);
            }
            acc = vfma(pc ? vldm(q + c * VW, mk) : vld(q + c * VW), zc, acc);
        }
        small += FN(den_out)(vhsum(acc), epsr ? epsr[t] : eps, inv + t);
    }
    return small;
}

LA_INLINE long FN(den_any)(const int gk, int T, int m, const float *Q, const float *K,
                           const float *G, float g, ptrdiff_t ld, float eps, const float *epsr,
                           float *z, float *inv)
{
    switch ((m + VW - 1) / VW) {
#define LA_DEN_CASE(n)                                                                         \
    case n:                                                                                    \
        return FN(den_fixed)(n, gk, T, m, Q, K, G, g, ld, eps, epsr, z, inv);
        LA_DEN_CASE(1) LA_DEN_CASE(2) LA_DEN_CASE(3) LA_DEN_CASE(4)
        LA_DEN_CASE(5) LA_DEN_CASE(6) LA_DEN_CASE(7) LA_DEN_CASE(8)
#undef LA_DEN_CASE
    default:
        return FN(den_wide)(gk, T, m, Q, K, G, g, ld, eps, epsr, z, inv);
    }
}

static long FN(lin_den)(int T, int m, const float *Q, const float *K, ptrdiff_t ld, float eps,
                        const float *epsr, float *z, float *inv)
{
    return FN(den_any)(0, T, m, Q, K, NULL, 1.0f, ld, eps, epsr, z, inv);
}

/* The decay (G = NULL: by g) and gated rules' normalisers (simd.h la_gate_den). */
static long FN(gate_den)(int T, int m, const float *Q, const float *K, const float *G, float g,
                         ptrdiff_t ld, float eps, const float *epsr, float *z, float *inv)
{
    if (G)
        return FN(den_any)(2, T, m, Q, K, G, g, ld, eps, epsr, z, inv);
    return FN(den_any)(1, T, m, Q, K, NULL, g, ld, eps, epsr, z, inv);
}

/* ---- elu+1 of a block of rows (the fused map) ---------------------------------------------- */

/* y = max(x, 0) + e^{x − max(x, 0)} in one pass: x − max(x, 0) is min(x, 0) exactly, and the
 * exp of 0 is exactly 1, so x >= 0 gives x + 1.  max(0, x) passes a NaN x through (vmax
 * returns its second operand then), so a NaN stays NaN. */
static void FN(elu1_rows)(const float *x, float *y, ptrdiff_t n)
{
    ptrdiff_t i = 0;
    for (; i + VW <= n; i += VW) {
        const VEC v = vld(x + i), p = vmax(vzero(), v);
        vst(y + i, vadd(p, vexp(vsub(v, p))));
    }
    if (i < n) {
        const MASK mt = vmask((int)(n - i));
        const VEC v = vldm(x + i, mt), p = vmax(vzero(), v);
        vstm(y + i, vadd(p, vexp(vsub(v, p))), mt);
    }
}

/* ---- causal recurrent form: one fused pass over the state per tb tokens --------------------- */

/* For tb tokens and one column block of nv vectors: per state row i, load S_i once, then for
 * each token in order S_i += k_t[i]·v_t and y_t += q_t[i]·S_i (so y_t sees the state after its
 * own update and before the next token's, as in the per-token loop), store S_i.  v_t and y_t
 * live in registers for the whole pass; S (m rows × nv·VW) stays in L1.  The first nvs vectors
 * of each output row go to ys (stride ldys) instead of y (stride ldy).  stream: the rows of y
 * are written with non-temporal stores (every vector full and aligned; nvs = 0). */
LA_INLINE void FN(rec_tile)(const int nv, const int tb, int m, const float *restrict q,
                            const float *restrict k, const float *restrict v, int dv,
                            float *restrict y, ptrdiff_t ldy, float *restrict ys, ptrdiff_t ldys,
                            int nvs, const float *restrict inv, float *restrict S, MASK mk,
                            const int stream)
{
    VEC vv[REC_TBMAX][REC_NV], yy[REC_TBMAX][REC_NV];
#pragma GCC unroll 16
    for (int t = 0; t < tb; t++) {
#pragma GCC unroll 4
        for (int c = 0; c < nv - 1; c++)
            vv[t][c] = vld(v + t * dv + c * VW);
        vv[t][nv - 1] = vldm(v + t * dv + (nv - 1) * VW, mk);
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            yy[t][c] = vzero();
    }
    const int ws = nv * VW;
    for (int i = 0; i < m; i++) {
        float *s = S + i * ws;
        VEC sv[REC_NV];
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            sv[c] = vld(s + c * VW);
#pragma GCC unroll 16
        for (int t = 0; t < tb; t++) {
            const VEC kt = vset1(k[t * m + i]);
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++)
                sv[c] = vfma(kt, vv[t][c], sv[c]);
            const VEC qt = vset1(q[t * m + i]);
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++)
                yy[t][c] = vfma(qt, sv[c], yy[t][c]);
        }
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            vst(s + c * VW, sv[c]);
    }
#pragma GCC unroll 16
    for (int t = 0; t < tb; t++) {
        const VEC iv = vset1(inv[t]);
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++) {
            float *dst = c < nvs ? ys + t * ldys + c * VW : y + t * ldy + c * VW;
            if (stream)
                vst_nt(dst, vmul(yy[t][c], iv));
            else if (c < nv - 1)
                vst(dst, vmul(yy[t][c], iv));
            else
                vstm(dst, vmul(yy[t][c], iv), mk);
        }
    }
}

/* Asks for the n floats from p in the caches, one prefetch per 64-byte line (and the line of
 * the last float when p does not start a line); write: they are about to be written (the line
 * is fetched for writing, so the store does not wait for it). */
LA_INLINE void FN(pf_span)(const float *p, int n, const int write)
{
    if (n <= 0)
        return;
    for (int o = 0; o < n; o += 16) {
        if (write)
            __builtin_prefetch(p + o, 1, 3);
        else
            __builtin_prefetch(p + o, 0, 3);
    }
    if ((uintptr_t)p & 63) {
        if (write)
            __builtin_prefetch(p + n - 1, 1, 3);
        else
            __builtin_prefetch(p + n - 1, 0, 3);
    }
}

/* The normalisers come in batches of 16 token blocks (lin_den, z in registers), just before
 * the blocks that use them, while those rows of Q and K are in L1: no separate pass over Q and
 * K, and no barrier between threads that each run their own columns (each with its own z and
 * inv).  With have_inv, inv already holds them (an earlier column block computed them).
 * Before each tb tokens, the rows of V and Y of the next tb tokens (the columns of them this
 * call reads and writes) are prefetched: on a long sequence they come from memory, and a store
 * that misses holds up the state's stores queued behind it (measured on one thread at
 * T = 16384, m = dv = 64, the caches flushed between calls: with V and the next batch's rows
 * of Q and K (linear.c) about 3% faster on a quiet machine and 8-10% while other processes
 * loaded its memory, where the prefetch of Y alone gave about 4%).  nc: the columns of V and
 * Y to prefetch (0: none).  stream: Y is written with non-temporal stores (rec_tile), fenced
 * at the end. */
LA_INLINE long FN(rec_run)(const int nv, int T, int m, int dv, const float *Q, const float *K,
                           const float *V, float *Y, ptrdiff_t ldy, float *Ys, ptrdiff_t ldys,
                           int nvs, float eps, const float *epsr, float *z, float *inv,
                           int have_inv, float *S, int nc, MASK mk, const float *pfq,
                           const float *pfk, const int stream)
{
    const int tb = REC_TB(nv), db = 16 * REC_TB(nv);
    const int yc0 = Ys != Y ? nvs * VW : 0; /* the first column written to Y */
    long small = 0;
    for (int t0 = 0; t0 < T; t0 += db) {
        const int nb = T - t0 < db ? T - t0 : db;
        if (!have_inv)
            small += FN(lin_den)(nb, m, Q + (ptrdiff_t)t0 * m, K + (ptrdiff_t)t0 * m, m, eps,
                                 epsr ? epsr + t0 : NULL, z, inv + t0);
        int t = t0;
        for (; t + tb <= t0 + nb; t += tb) {
            if (pfq && pfk) /* rows t .. t + tb − 1 of both, one line at a time */
                for (ptrdiff_t o = (ptrdiff_t)t * m; o < (ptrdiff_t)(t + tb) * m; o += 16) {
                    __builtin_prefetch(pfq + o, 0, 2);
                    __builtin_prefetch(pfk + o, 0, 2);
                }
            /* The next block's rows of V and of Y (only the columns written to Y). */
            for (int u = t + tb; u < t + 2 * tb && u < T; u++) {
                FN(pf_span)(V + (ptrdiff_t)u * dv, nc, 0);
                FN(pf_span)(Y + (ptrdiff_t)u * ldy + yc0, nc - yc0, 1);
            }
            FN(rec_tile)(nv, tb, m, Q + (ptrdiff_t)t * m, K + (ptrdiff_t)t * m,
                         V + (ptrdiff_t)t * dv, dv, Y + t * ldy, ldy, Ys + t * ldys, ldys, nvs,
                         inv + t, S, mk, stream);
        }
        for (; t < t0 + nb; t++)
            FN(rec_tile)(nv, 1, m, Q + (ptrdiff_t)t * m, K + (ptrdiff_t)t * m,
                         V + (ptrdiff_t)t * dv, dv, Y + t * ldy, ldy, Ys + t * ldys, ldys, nvs,
                         inv + t, S, mk, stream);
    }
    if (stream)
        vsfence();
    return small;
}

/* rec_run for nv = 1 .. REC_NV vectors, stream a constant at each call (so the tile's stores
 * need no test). */
LA_INLINE long FN(rec_nv)(const int stream, int nv, int T, int m, int dv, const float *Q,
                          const float *K, const float *V, float *Y, ptrdiff_t ldy, float *Ys,
                          ptrdiff_t ldys, int nvs, float eps, const float *epsr, float *z,
                          float *inv, int have_inv, float *S, int npf, MASK mk, const float *pfq,
                          const float *pfk)
{
#define LA_REC_CASE(n)                                                                         \
    case n:                                                                                    \
        return FN(rec_run)(n, T, m, dv, Q, K, V, Y, ldy, Ys, ldys, nvs, eps, epsr, z, inv,     \
                           have_inv, S, npf, mk, pfq, pfk, stream);
    switch (nv) {
        LA_REC_CASE(1)
#if REC_NV >= 2
        LA_REC_CASE(2)
#endif
#if REC_NV >= 3
        LA_REC_CASE(3)
#endif
#if REC_NV >= 4
        LA_REC_CASE(4)
#endif
    default:
        return 0;
    }
#undef LA_REC_CASE
}

/* The streaming instance, apart, so the plain one's code is laid out as on its own. */
static __attribute__((noinline)) long
FN(rec_nv_stream)(int nv, int T, int m, int dv, const float *Q, const float *K, const float *V,
                  float *Y, ptrdiff_t ldy, float *Ys, ptrdiff_t ldys, int nvs, float eps,
                  const float *epsr, float *z, float *inv, int have_inv, float *S, int npf,
                  MASK mk, const float *pfq, const float *pfk)
{
    return FN(rec_nv)(1, nv, T, m, dv, Q, K, V, Y, ldy, Ys, ldys, nvs, eps, epsr, z, inv,
                      have_inv, S, npf, mk, pfq, pfk);
}

static long FN(linrec_cols)(int T, int m, int dv, const float *Q, const float *K, const float *V,
                            float *Y, ptrdiff_t ldy, float *Ys, ptrdiff_t ldys, int side,
                            float eps, const float *epsr, float *z, float *inv, int have_inv,
                            float *S, int c0, int nc, const float *pfq, const float *pfk,
                            int flags)
{
    const int nv = (nc + VW - 1) / VW, nvs = (side + VW - 1) / VW;
    const MASK mk = vmask(nc - (nv - 1) * VW);
    const int npf = flags & LA_REC_PF_ROWS ? nc : 0;
    V += c0;
    Y += c0;
    if (!Ys)
        Ys = Y;
    /* Non-temporal stores need whole vectors at addresses aligned to them, in every row. */
    if ((flags & LA_REC_STREAM_Y) && VW > 1 && side == 0 && nc % VW == 0 &&
        ((uintptr_t)Y % (VW * sizeof *Y)) == 0 && ldy % VW == 0)
        return FN(rec_nv_stream)(nv, T, m, dv, Q, K, V, Y, ldy, Ys, ldys, nvs, eps, epsr, z, inv,
                                 have_inv, S, npf, mk, pfq, pfk);
    return FN(rec_nv)(0, nv, T, m, dv, Q, K, V, Y, ldy, Ys, ldys, nvs, eps, epsr, z, inv,
                      have_inv, S, npf, mk, pfq, pfk);
}

/* ---- causal chunked form: the output of one chunk ----------------------------------------- */

static void FN(linchunk_out)(int n, int m, int dv, const float *Qc, const float *Kc,
                             const float *Vc, float *Yc, const float *S, ptrdiff_t lds,
                             const float *inv, float *Kt, float *A)
{
    const int NR = GEMM_NV * VW;
    const int cpad = (n + NR - 1) / NR * NR;
    const MASK full = vmask(VW);
    /* Inter-chunk: Yc = Qc·S, the state of all earlier chunks. */
    FN(gemm)(n, dv, m, Qc, m, 1, S, lds, Yc, dv, 1.0f, inv, 0);
    /* Intra-chunk, one register block of rows at a time: only keys j < i0 + mr are needed, so
     * the upper triangle is skipped except inside the diagonal block, where it is zeroed. */
    la_pack_t(Kc, m, 0, n, m, NR, Kt);
    for (int i0 = 0; i0 < n; i0 += GEMM_MR) {
        const int mr = n - i0 < GEMM_MR ? n - i0 : GEMM_MR, nk = i0 + mr;
        const int npan = (nk + NR - 1) / NR;
        for (int p = 0; p < npan; p++) {
            /* Only the vectors that hold keys j < nk (the panel's zero padding makes them full). */
            const int cols = nk - p * NR < NR ? nk - p * NR : NR;
            FN(tile_any)(mr, (cols + VW - 1) / VW, m, Qc + i0 * m, m, 1, Kt + p * m * NR, NR,
                         A + p * NR, cpad, full, 1.0f, NULL, 0);
        }
        for (int r = 0; r < mr; r++)
            for (int j = i0 + r + 1; j < nk; j++)
                A[r * cpad + j] = 0.0f;
        /* Both products are scaled by the row's 1/(den + eps), so Yc needs no extra pass. */
        FN(gemm)(mr, dv, nk, A, cpad, 1, Vc, dv, Yc + i0 * dv, dv, 1.0f, inv + i0, 1);
    }
}

/* ---- fused online softmax over one block of query rows ------------------------------------ */

static float FN(row_max)(const float *s, int n)
{
    VEC mx = vset1(-INFINITY);
    int c = 0;
    for (; c + VW <= n; c += VW)
        mx = vmax(mx, vld(s + c));
    if (c < n)
        mx = vmax(mx, vldm_ninf(s + c, vmask(n - c)));
    return vhmax(mx);
}

/* s[c] = exp(s[c] − mx) for c < n; returns the sum. */
static float FN(row_exp_sum)(float *s, int n, float mx)
{
    const VEC m = vset1(mx);
    VEC sum = vzero();
    int c = 0;
    for (; c + VW <= n; c += VW) {
        const VEC e = vexp(vsub(vld(s + c), m));
        vst(s + c, e);
        sum = vadd(sum, e);
    }
    if (c < n) {
        const MASK mt = vmask(n - c);
        const VEC e = vkeep(vexp(vsub(vldm(s + c, mt), m)), mt);
        vstm(s + c, e, mt);
        sum = vadd(sum, e);
    }
    return vhsum(sum);
}

static void FN(scale_row)(float *y, int n, float a)
{
    const VEC av = vset1(a);
    int c = 0;
    for (; c + VW <= n; c += VW)
        vst(y + c, vmul(vld(y + c), av));
    if (c < n) {
        const MASK mt = vmask(n - c);
        vstm(y + c, vmul(vldm(y + c, mt), av), mt);
    }
}

static void FN(softmax_rows)(const float *Q, const float *Kp, const float *V, float *Y, int T,
                             int d, int dv, int causal, float scale, int i0, int rows, int bc,
                             float *S, float *ml)
{
    const int NR = GEMM_NV * VW;
    const MASK full = vmask(VW);
    float *mrow = ml, *lrow = ml + rows;
    for (int r = 0; r < rows; r++) {
        mrow[r] = -INFINITY;
        lrow[r] = 0.0f;
    }
    memset(Y + (size_t)i0 * dv, 0, (size_t)rows * dv * sizeof *Y);
    const int jmax = causal ? i0 + rows : T;
    /* Key tiles outside, register blocks of rows inside: the tile's K panels and V rows stay in
     * L2 while every row block of the query block uses them. */
    for (int j0 = 0; j0 < jmax; j0 += bc) {
        for (int rb = 0; rb < rows; rb += GEMM_MR) {
            const int mr = rows - rb < GEMM_MR ? rows - rb : GEMM_MR, ib = i0 + rb;
            const int jend = causal ? ib + mr : T;
            if (j0 >= jend)
                continue;
            const int nk = jend - j0 < bc ? jend - j0 : bc, npan = (nk + NR - 1) / NR;
            /* Scores S = scale · Q_rb K_tileᵀ, of the last panel only the vectors that hold keys
             * j < j0 + nk (the panel's zero padding past T makes them full): a causal register
             * block's keys end at its last row, mid-panel. */
            for (int p = 0; p < npan; p++) {
                const int cols = nk - p * NR < NR ? nk - p * NR : NR;
                FN(tile_any)(mr, (cols + VW - 1) / VW, d, Q + (size_t)ib * d, d, 1,
                             Kp + (size_t)(j0 / NR + p) * d * NR, NR, S + p * NR, bc, full, scale,
                             NULL, 0);
            }
            /* Online softmax per row: new max, rescale what was accumulated only when the max
             * grew, exponentiate and sum in one pass.  Causal rows see keys j <= i only. */
            for (int r = 0; r < mr; r++) {
                float *s = S + r * bc;
                const int i = ib + r;
                int n = nk;
                if (causal && i - j0 + 1 < n)
                    n = i - j0 + 1;
                if (n <= 0) {
                    memset(s, 0, (size_t)nk * sizeof *s);
                    continue;
                }
                const float mold = mrow[rb + r];
                const float mt = FN(row_max)(s, n);
                if (mt > mold) {
                    if (mold != -INFINITY) {
                        const float alpha = expf(mold - mt);
                        lrow[rb + r] *= alpha;
                        FN(scale_row)(Y + (size_t)i * dv, dv, alpha);
                    }
                    mrow[rb + r] = mt;
                }
                lrow[rb + r] += FN(row_exp_sum)(s, n, mrow[rb + r]);
                if (n < nk)
                    memset(s + n, 0, (size_t)(nk - n) * sizeof *s);
            }
            /* O_rb += P V_tile. */
            FN(gemm)(mr, dv, nk, S, bc, 1, V + (size_t)j0 * dv, dv, Y + (size_t)ib * dv, dv, 1.0f,
                     NULL, 1);
        }
    }
    for (int r = 0; r < rows; r++)
        FN(scale_row)(Y + (size_t)(i0 + r) * dv, dv, 1.0f / lrow[r]);
}

/* ---- query rows over a blocked key-value cache -------------------------------------------- */

/* Online softmax of `rows` query rows over the cache tokens [j0, j1) (j0 a multiple of
 * ATTN_KV_BLOCK), row r at position p0 + r seeing tokens j <= p0 + r: mrow, lrow (the running
 * max and sum of each row) and the unnormalised output Y (rows of stride ldy) carry over
 * between calls; S: rows × ATTN_KV_BLOCK floats of work.  Per cache block: the scores of the
 * rows that see any of its tokens (one GEMM with the block's transposed keys, contiguous), the
 * online update of the row's part of that shared with softmax_rows (new max, rescale of what
 * was accumulated only when it grew, exp and sum in one pass; masked keys never exponentiated),
 * then Y += P·V with the block's value rows.  Only the block's filled tokens are read (masked
 * loads), so a cache's tail past j1 may hold anything. */
static void FN(kv_attend)(const float *Q, ptrdiff_t ldq, int rows, const float *C, int d, int dv,
                          int j0, int j1, int p0, float scale, float *S, float *mrow, float *lrow,
                          float *Y, ptrdiff_t ldy)
{
    const int BS = ATTN_KV_BLOCK;
    const size_t bf = (size_t)BS * ((size_t)d + (size_t)dv);
    for (int jb = j0; jb < j1; jb += BS) {
        const float *Kt = C + (size_t)(jb / BS) * bf, *Vb = Kt + (size_t)BS * d;
        const int nk = j1 - jb < BS ? j1 - jb : BS;
        const int r0 = jb - p0 > 0 ? jb - p0 : 0; /* the first row that sees this block */
        if (r0 >= rows)
            break; /* later blocks are later still */
        const int nr = rows - r0;
        float *Sr = S + (size_t)r0 * BS;
        FN(gemm)(nr, nk, d, Q + r0 * ldq, ldq, 1, Kt, BS, Sr, BS, scale, NULL, 0);
        for (int r = r0; r < rows; r++) {
            float *s = S + (size_t)r * BS;
            const int n = p0 + r - jb + 1 < nk ? p0 + r - jb + 1 : nk; /* >= 1: r >= r0 */
            const float mold = mrow[r], mt = FN(row_max)(s, n);
            if (mt > mold) {
                if (mold != -INFINITY) {
                    const float alpha = expf(mold - mt);
                    lrow[r] *= alpha;
                    FN(scale_row)(Y + r * ldy, dv, alpha);
                }
                mrow[r] = mt;
            }
            lrow[r] += FN(row_exp_sum)(s, n, mrow[r]);
            if (n < nk)
                memset(s + n, 0, (size_t)(nk - n) * sizeof *s);
        }
        FN(gemm)(nr, dv, nk, Sr, BS, 1, Vb, dv, Y + r0 * ldy, ldy, 1.0f, NULL, 1);
    }
}

/* ---- recurrences with a gate, and the delta rule (kernels/recurrence.c) ------------------ */

/* Decay and gated rules, tb tokens, one column block of nv vectors: per state row i, for each
 * token in order S_i = a·S_i + k_t[i]·(ks_t v_t) with a = g (decay) or G[t·m + i] (gated), then
 * y_t += q_t[i]·S_i; store S_i.  The product k·v is independent of S, so each row's chain per
 * token is one FMA.  ks_t (sum-normalised keys) scales v_t once per token; ys_t scales y_t.
 * resc (decay only, |g| not small: gate_run): the tile's states are kept as S̃_j = S_{-1} +
 * Σ_{l<=j} g^-(l+1) k_l v_lᵀ, so that S_j = g^(j+1) S̃_j: v_l carries g^-(l+1), y_j takes
 * g^(j+1) with ys_j, and S = g^tb S̃ is stored at the end.  Per row and token that is two FMAs
 * (update, query) where the plain form takes a multiply and two FMAs, plus one multiply per row
 * a tile. */
LA_INLINE void FN(gate_tile)(const int nv, const int tb, const int gated, const int resc, int m,
                             const float *restrict q, const float *restrict k,
                             const float *restrict v, int dv, float *restrict y, ptrdiff_t ldy,
                             const float *restrict ys, const float *restrict ks, float g,
                             const float *restrict G, float *restrict S, MASK mk,
                             const int stream)
{
    VEC vv[REC_TBMAX][REC_NV], yy[REC_TBMAX][REC_NV];
    float gp[REC_TBMAX + 1]; /* resc: g^j */
    gp[0] = 1.0f;
#pragma GCC unroll 16
    for (int t = 0; t < tb; t++)
        gp[t + 1] = gp[t] * g;
#pragma GCC unroll 16
    for (int t = 0; t < tb; t++) {
        const VEC sc = vset1(resc ? ks[t] / gp[t + 1] : ks[t]);
#pragma GCC unroll 4
        for (int c = 0; c < nv - 1; c++)
            vv[t][c] = vmul(sc, vld(v + t * dv + c * VW));
        vv[t][nv - 1] = vmul(sc, vldm(v + t * dv + (nv - 1) * VW, mk));
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            yy[t][c] = vzero();
    }
    const VEC gv = vset1(g), gtb = vset1(gp[tb]);
    const int ws = nv * VW;
    for (int i = 0; i < m; i++) {
        float *s = S + i * ws;
        VEC sv[REC_NV];
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            sv[c] = vld(s + c * VW);
#pragma GCC unroll 16
        for (int t = 0; t < tb; t++) {
            const VEC kt = vset1(k[t * m + i]);
            if (resc) {
#pragma GCC unroll 4
                for (int c = 0; c < nv; c++)
                    sv[c] = vfma(kt, vv[t][c], sv[c]);
            } else {
                const VEC at = gated ? vset1(G[t * m + i]) : gv;
#pragma GCC unroll 4
                for (int c = 0; c < nv; c++)
                    sv[c] = vfma(at, sv[c], vmul(kt, vv[t][c]));
            }
            const VEC qt = vset1(q[t * m + i]);
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++)
                yy[t][c] = vfma(qt, sv[c], yy[t][c]);
        }
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            vst(s + c * VW, resc ? vmul(gtb, sv[c]) : sv[c]);
    }
#pragma GCC unroll 16
    for (int t = 0; t < tb; t++) {
        const VEC sc = vset1(resc ? ys[t] * gp[t + 1] : ys[t]);
#pragma GCC unroll 4
        for (int c = 0; c < nv - 1; c++) {
            if (stream)
                vst_nt(y + t * ldy + c * VW, vmul(yy[t][c], sc));
            else
                vst(y + t * ldy + c * VW, vmul(yy[t][c], sc));
        }
        if (stream)
            vst_nt(y + t * ldy + (nv - 1) * VW, vmul(yy[t][nv - 1], sc));
        else
            vstm(y + t * ldy + (nv - 1) * VW, vmul(yy[t][nv - 1], sc), mk);
    }
}

/* The decay rule keeps its tiles' states rescaled (gate_tile's resc) where g^-tb stays well
 * inside fp32's range and rounding: |g| >= GATE_RESC_MIN. */
#define GATE_RESC_MIN 0.0625f

LA_INLINE void FN(gate_run_as)(const int nv, const int gated, const int resc, int T, int m,
                               int dv, const float *Q, const float *K, const float *V, float *Y,
                               ptrdiff_t ldy, const float *ys, const float *ks, float g,
                               const float *G, float *S, MASK mk, const int stream)
{
    const int tb = REC_TB(nv);
    int t = 0;
    for (; t + tb <= T; t += tb)
        FN(gate_tile)(nv, tb, gated, resc, m, Q + (ptrdiff_t)t * m, K + (ptrdiff_t)t * m,
                      V + (ptrdiff_t)t * dv, dv, Y + t * ldy, ldy, ys + t, ks + t, g,
                      gated ? G + (ptrdiff_t)t * m : NULL, S, mk, stream);
    for (; t < T; t++)
        FN(gate_tile)(nv, 1, gated, resc, m, Q + (ptrdiff_t)t * m, K + (ptrdiff_t)t * m,
                      V + (ptrdiff_t)t * dv, dv, Y + t * ldy, ldy, ys + t, ks + t, g,
                      gated ? G + (ptrdiff_t)t * m : NULL, S, mk, stream);
}

LA_INLINE void FN(gate_run)(const int nv, const int gated, int T, int m, int dv, const float *Q,
                            const float *K, const float *V, float *Y, ptrdiff_t ldy,
                            const float *ys, const float *ks, float g, const float *G, float *S,
                            MASK mk, const int stream)
{
    if (!gated && fabsf(g) >= GATE_RESC_MIN)
        FN(gate_run_as)(nv, 0, 1, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, mk, stream);
    else
        FN(gate_run_as)(nv, gated, 0, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, mk, stream);
}

/* The delta rule, one column block of nv vectors, all T tokens: token t needs
 * u_t = S_{t−1}ᵀ k̂_t over every row before its update can start (w_t = β_t (v_t − u_t)), so
 * the tokens cannot share a pass over the state as the sum rule's do.  Instead the pass of token
 * t computes, row by row, S_i += k̂_t[i]·w_t, y_t += q_t[i]·S_i and u_{t+1} += k_{t+1}[i]·S_i
 * (the new S_i is S_t's row): one load and store of S per token, three FMAs per element.  The
 * two accumulators of y and u (even and odd rows) halve their FMA chains.  k̂_t = ks_t·k_t: u
 * and the update take the factor through w (u = ks·(Sᵀk), update k_t[i]·(ks·w)). */
LA_INLINE void FN(delta_run)(const int nv, int T, int m, int dv, const float *Q, const float *K,
                             const float *V, float *Y, ptrdiff_t ldy, const float *ys,
                             const float *ks, float g, const float *G, float *S, MASK mk,
                             const int stream)
{
    const int ws = nv * VW;
    VEC u[4], w[4], y0[4], y1[4], u0[4], u1[4];
#pragma GCC unroll 4
    for (int c = 0; c < nv; c++)
        u[c] = vzero();
    /* u_0 = S_{-1}ᵀ k_0 (the state on entry: zero for a forward pass). */
    for (int i = 0; i < m && T > 0; i++) {
        const VEC kt = vset1(K[i]);
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++)
            u[c] = vfma(kt, vld(S + i * ws + c * VW), u[c]);
    }
    for (int t = 0; t < T; t++) {
        const float *q = Q + (ptrdiff_t)t * m, *k = K + (ptrdiff_t)t * m;
        const float *kn = K + (ptrdiff_t)(t + 1 < T ? t + 1 : t) * m;
        const float *v = V + (ptrdiff_t)t * dv;
        const VEC kv = vset1(ks[t]), bv = vset1((G ? G[t] : g) * ks[t]);
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++) {
            const VEC vt = c < nv - 1 ? vld(v + c * VW) : vldm(v + c * VW, mk);
            w[c] = vmul(bv, vsub(vt, vmul(kv, u[c])));
            y0[c] = y1[c] = u0[c] = u1[c] = vzero();
        }
        int i = 0;
        for (; i + 2 <= m; i += 2) {
            float *s = S + i * ws;
            const VEC ka = vset1(k[i]), qa = vset1(q[i]), na = vset1(kn[i]);
            const VEC kb = vset1(k[i + 1]), qb = vset1(q[i + 1]), nb = vset1(kn[i + 1]);
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++) {
                const VEC sa = vfma(ka, w[c], vld(s + c * VW));
                const VEC sb = vfma(kb, w[c], vld(s + ws + c * VW));
                vst(s + c * VW, sa);
                vst(s + ws + c * VW, sb);
                y0[c] = vfma(qa, sa, y0[c]);
                u0[c] = vfma(na, sa, u0[c]);
                y1[c] = vfma(qb, sb, y1[c]);
                u1[c] = vfma(nb, sb, u1[c]);
            }
        }
        if (i < m) {
            float *s = S + i * ws;
            const VEC ka = vset1(k[i]), qa = vset1(q[i]), na = vset1(kn[i]);
#pragma GCC unroll 4
            for (int c = 0; c < nv; c++) {
                const VEC sa = vfma(ka, w[c], vld(s + c * VW));
                vst(s + c * VW, sa);
                y0[c] = vfma(qa, sa, y0[c]);
                u0[c] = vfma(na, sa, u0[c]);
            }
        }
        const VEC sc = vset1(ys[t]);
        float *y = Y + t * ldy;
#pragma GCC unroll 4
        for (int c = 0; c < nv; c++) {
            u[c] = vadd(u0[c], u1[c]);
            const VEC yt = vmul(vadd(y0[c], y1[c]), sc);
            if (stream)
                vst_nt(y + c * VW, yt);
            else if (c < nv - 1)
                vst(y + c * VW, yt);
            else
                vstm(y + c * VW, yt, mk);
        }
    }
}

/* The recurrence's pass for nv = 1 .. 4 vectors, stream a constant at each call.  nv is at most
 * la_recur_block's: up to 4 vectors for the delta rule, up to REC_NV (la_linrec_block) for the
 * gated rules, so the gate_run cases past REC_NV are never taken (they instantiate nv = 1). */
LA_INLINE void FN(recur_nv)(const int stream, int update, int nv, int T, int m, int dv,
                            const float *Q, const float *K, const float *V, float *Y,
                            ptrdiff_t ldy, const float *ys, const float *ks, float g,
                            const float *G, float *S, MASK mk)
{
#define LA_RC_CASE(n)                                                                          \
    case n:                                                                                    \
        if (update == 1)                                                                       \
            FN(delta_run)(n, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, mk, stream);          \
        else if (n <= REC_NV)                                                                  \
            FN(gate_run)(n <= REC_NV ? n : 1, update == 3, T, m, dv, Q, K, V, Y, ldy, ys, ks,  \
                         g, G, S, mk, stream);                                                 \
        break;
    switch (nv) {
        LA_RC_CASE(1)
        LA_RC_CASE(2)
        LA_RC_CASE(3)
        LA_RC_CASE(4)
    default:
        break;
    }
#undef LA_RC_CASE
}

/* The streaming instance, apart, so the plain one's code is laid out as on its own. */
static __attribute__((noinline)) void
FN(recur_nv_stream)(int update, int nv, int T, int m, int dv, const float *Q, const float *K,
                    const float *V, float *Y, ptrdiff_t ldy, const float *ys, const float *ks,
                    float g, const float *G, float *S, MASK mk)
{
    FN(recur_nv)(1, update, nv, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, mk);
    vsfence();
}

/* Columns [c0, c0 + nc) of a recurrence (simd.h la_recur_cols; flags: LA_REC_STREAM_Y as
 * la_linrec_cols's). */
static void FN(recur_cols)(int update, int T, int m, int dv, const float *Q, const float *K,
                           const float *V, float *Y, ptrdiff_t ldy, const float *ys,
                           const float *ks, float g, const float *G, float *S, int c0, int nc,
                           int flags)
{
    const int nv = (nc + VW - 1) / VW;
    const MASK mk = vmask(nc - (nv - 1) * VW);
    V += c0;
    Y += c0;
    if ((flags & LA_REC_STREAM_Y) && VW > 1 && nc % VW == 0 &&
        ((uintptr_t)Y % (VW * sizeof *Y)) == 0 && ldy % VW == 0)
        FN(recur_nv_stream)(update, nv, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, mk);
    else
        FN(recur_nv)(0, update, nv, T, m, dv, Q, K, V, Y, ldy, ys, ks, g, G, S, mk);
}

#undef FN
#undef LA_INLINE
#undef DEN_NV
#undef GATE_RESC_MIN

/* The template's parameters, undefined so the next instantiation can set them again. */
#undef SFX
#undef VW
#undef VEC
#undef MASK
#undef GEMM_MR
#undef GEMM_NV
#undef REC_NV
#undef REC_TBMAX
#undef REC_TB
#undef vmask
#undef vld
#undef vldm
#undef vldm_ninf
#undef vkeep
#undef vst
#undef vstm
#undef vst_nt
#undef vsfence
#undef vset1
#undef vzero
#undef vfma
#undef vmul
#undef vadd
#undef vsub
#undef vmax
#undef vhsum
#undef vhmax
#undef vexp
#undef GEMM_CASES
