/* draws.c — drawing W for the random feature maps (IID or orthogonal blocks through GSL's QR),
 * the SGEMM projection, the blocked projection + exp of the exponential maps (fm_proj_exp), and
 * the max-shift stabiliser for exponential features (see draws.h).
 * Not a feature map; rff.c, prf.c, hyp.c, gerf.c and learned.c call it.
 * Tests: tests/test_featuremaps.c.
 */
#include "draws.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS's cblas.h and GSL's gsl_cblas.h (pulled in by gsl_linalg.h) declare the same enums.
 * OpenBLAS's comes first and GSL's is marked as already included; GSL's own typedefs
 * (gsl_blas_types.h) only need the enum tags and CBLAS_INDEX, which cblas.h defines alike. */
#include <cblas.h>
#define __GSL_CBLAS_H__
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_vector.h>

#include "../kernels/simd.h"
#include "../kernels/vmath.h"

/* One orthogonal block: Q of a d×d Gaussian, sign-corrected to be Haar, its first `rows` rows
 * rescaled and written to W.  G, tau, Q, R are caller-owned scratch. */
static int orthogonal_block(double *W, int rows, int d, int norm_fixed, gsl_rng *rng, gsl_matrix *G,
                            gsl_vector *tau, gsl_matrix *Q, gsl_matrix *R, const char *who,
                            struct la_error *err)
{
    for (int i = 0; i < d; i++)
        for (int j = 0; j < d; j++)
            gsl_matrix_set(G, (size_t)i, (size_t)j, gsl_ran_gaussian(rng, 1.0));
    int st = gsl_linalg_QR_decomp(G, tau);
    if (st == 0)
        st = gsl_linalg_QR_unpack(G, tau, Q, R);
    if (st != 0)
        return LA_FAIL(err, LA_ENUMERIC,
                       "%s: QR decomposition of a %dx%d Gaussian block failed "
                       "(GSL error %d)",
                       who, d, d, st);
    /* Q·diag(sign(R_jj)) is Haar distributed; Q alone is not (the QR convention biases it). */
    for (int j = 0; j < d; j++)
        if (gsl_matrix_get(R, (size_t)j, (size_t)j) < 0.0)
            for (int i = 0; i < d; i++)
                gsl_matrix_set(Q, (size_t)i, (size_t)j, -gsl_matrix_get(Q, (size_t)i, (size_t)j));
    for (int i = 0; i < rows; i++) {
        /* A row of a Haar Q is uniform on the sphere; a χ(d) length makes it N(0, I_d). */
        double len = norm_fixed ? sqrt((double)d) : sqrt(gsl_ran_chisq(rng, (double)d));
        for (int j = 0; j < d; j++)
            W[(size_t)i * (size_t)d + (size_t)j] = len * gsl_matrix_get(Q, (size_t)i, (size_t)j);
    }
    return LA_OK;
}

int fm_draw_w(double *W, int m, int d, int draw, int norm_fixed, gsl_rng *rng, const char *who,
              struct la_error *err)
{
    if (draw == FM_DRAW_IID) {
        size_t total = (size_t)m * (size_t)d;
        for (size_t i = 0; i < total; i++)
            W[i] = gsl_ran_gaussian(rng, 1.0);
        return LA_OK;
    }
    if (draw != FM_DRAW_ORTHOGONAL)
        return LA_FAIL(err, LA_EINVAL, "%s: draw must be iid (%d) or orthogonal (%d), got %d", who,
                       FM_DRAW_IID, FM_DRAW_ORTHOGONAL, draw);
    int st = LA_OK;
    gsl_matrix *G = gsl_matrix_alloc((size_t)d, (size_t)d);
    gsl_matrix *Q = gsl_matrix_alloc((size_t)d, (size_t)d);
    gsl_matrix *R = gsl_matrix_alloc((size_t)d, (size_t)d);
    gsl_vector *tau = gsl_vector_alloc((size_t)d);
    if (!G || !Q || !R || !tau) {
        st = LA_FAIL(err, LA_ENOMEM, "%s: out of memory for %dx%d orthogonal blocks", who, d, d);
        goto done;
    }
    for (int row = 0; row < m; row += d) {
        int rows = m - row < d ? m - row : d;
        st = orthogonal_block(W + (size_t)row * (size_t)d, rows, d, norm_fixed, rng, G, tau, Q, R,
                              who, err);
        if (st != LA_OK)
            goto done;
    }
done:
    gsl_matrix_free(G);
    gsl_matrix_free(Q);
    gsl_matrix_free(R);
    gsl_vector_free(tau);
    return st;
}

int fm_proj_init(struct fm_proj *P, const struct fm_params *p, gsl_rng *rng, const char *who,
                 struct la_error *err)
{
    memset(P, 0, sizeof *P);
    int d = p->d, m = p->m ? p->m : p->d;
    if (m < 1)
        return LA_FAIL(err, LA_EINVAL, "%s: m must be >= 1, got %d", who, m);
    if (p->draw != FM_DRAW_IID && p->draw != FM_DRAW_ORTHOGONAL)
        return LA_FAIL(err, LA_EINVAL, "%s: draw must be iid or orthogonal, got %d", who, p->draw);
    /* m·d must index fine and each row must fit cblas's int leading dimension. */
    if ((size_t)m > (size_t)INT_MAX / 2 / (size_t)d)
        return LA_FAIL(err, LA_EINVAL, "%s: m = %d with d = %d is too large", who, m, d);
    P->d = d;
    P->m = m;
    size_t total = (size_t)m * (size_t)d;
    P->W = malloc(total * sizeof *P->W);
    P->Ws = malloc(total * sizeof *P->Ws);
    P->WsT = malloc(total * sizeof *P->WsT);
    if (!P->W || !P->Ws || !P->WsT) {
        fm_proj_release(P);
        return LA_FAIL(err, LA_ENOMEM, "%s: out of memory for W (%d x %d)", who, m, d);
    }
    int st = fm_draw_w(P->W, m, d, p->draw, p->norm_fixed, rng, who, err);
    if (st != LA_OK) {
        fm_proj_release(P);
        return st;
    }
    fm_proj_scale(P, 1.0);
    return LA_OK;
}

void fm_proj_scale(struct fm_proj *P, double factor)
{
    double f = factor * pow((double)P->d, -0.25);
    size_t total = (size_t)P->m * (size_t)P->d;
    for (size_t i = 0; i < total; i++)
        P->Ws[i] = (float)(P->W[i] * f);
    for (int i = 0; i < P->m; i++)
        for (int j = 0; j < P->d; j++)
            P->WsT[(size_t)j * (size_t)P->m + (size_t)i] = P->Ws[(size_t)i * (size_t)P->d + (size_t)j];
}

void fm_proj_release(struct fm_proj *P)
{
    free(P->W);
    free(P->Ws);
    free(P->WsT);
    P->W = NULL;
    P->Ws = NULL;
    P->WsT = NULL;
}

void fm_gemm_rows(const float *x, size_t n, int d, const float *Wt, int m, const float *b, float *u,
                  int ldu)
{
    /* Row blocks keep cblas's int M in range; one block in any realistic call. */
    const size_t block = (size_t)1 << 24;
    for (size_t r0 = 0; r0 < n; r0 += block) {
        size_t rows = n - r0 < block ? n - r0 : block;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, m, d, 1.0f,
                    x + r0 * (size_t)d, d, Wt, d, 0.0f, u + r0 * (size_t)ldu, ldu);
    }
    if (b)
        for (size_t r = 0; r < n; r++) {
            float *row = u + r * (size_t)ldu;
            for (int i = 0; i < m; i++)
                row[i] += b[i];
        }
}

void fm_proj_gemm(const struct fm_proj *P, const float *x, size_t n, float *u, int ldu)
{
    fm_gemm_rows(x, n, P->d, P->Ws, P->m, NULL, u, ldu);
}

/* Largest entry of a row.  Independent lanes let the compiler vectorise the max without
 * reassociating anything (a plain reduction would need -ffast-math): 64 of them (four 512-bit
 * vectors, so four maxima run in parallel) over whole groups of 64, then 16.  NaN entries are
 * never selected (a comparison with NaN is false). */
static float row_max(const float *v, int cols)
{
    float lane[64];
    int i = 0;
    for (int j = 0; j < 64; j++)
        lane[j] = -INFINITY;
    for (; i + 64 <= cols; i += 64)
        for (int j = 0; j < 64; j++)
            lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
    for (; i + 16 <= cols; i += 16)
        for (int j = 0; j < 16; j++)
            lane[j] = v[i + j] > lane[j] ? v[i + j] : lane[j];
    for (int j = 0; j < 16; j++) {
        const float a = lane[j] > lane[16 + j] ? lane[j] : lane[16 + j];
        const float b = lane[32 + j] > lane[48 + j] ? lane[32 + j] : lane[48 + j];
        lane[j] = a > b ? a : b;
    }
    float mx = -INFINITY;
    for (int j = 0; j < 16; j++)
        mx = lane[j] > mx ? lane[j] : mx;
    for (; i < cols; i++)
        mx = v[i] > mx ? v[i] : mx;
    return mx;
}

/* The largest |v_i| of a row: the max over the row [v, −v] of a hyperbolic map, from its "+"
 * half.  Lanes as in row_max; NaN entries are never selected. */
static float row_max_abs(const float *v, int cols)
{
    float lane[16];
    int i = 0;
    for (int j = 0; j < 16; j++)
        lane[j] = -INFINITY;
    for (; i + 16 <= cols; i += 16)
        for (int j = 0; j < 16; j++) {
            const float a = fabsf(v[i + j]);
            lane[j] = a > lane[j] ? a : lane[j];
        }
    float mx = -INFINITY;
    for (int j = 0; j < 16; j++)
        mx = lane[j] > mx ? lane[j] : mx;
    for (; i < cols; i++)
        mx = fabsf(v[i]) > mx ? fabsf(v[i]) : mx;
    return mx;
}

/* hcoef·‖x‖² in double, in eight lanes for the same reason (a fixed order: deterministic). */
static double row_h(const float *x, int d, double hcoef)
{
    if (hcoef == 0.0)
        return 0.0;
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0}, acc = 0.0;
    int j = 0;
    for (; j + 8 <= d; j += 8)
        for (int l = 0; l < 8; l++)
            lane[l] += (double)x[j + l] * (double)x[j + l];
    for (; j < d; j++)
        acc += (double)x[j] * (double)x[j];
    for (int l = 0; l < 8; l++)
        acc += lane[l];
    return hcoef * acc;
}

double fm_sqnorm_tilde(const float *x, int d)
{
    return row_h(x, d, 1.0 / sqrt((double)d));
}

/* One row of fm_exp_stabilised and fm_proj_exp: v (cols floats, exponents without the norm
 * term; mx its largest entry, unused for FM_RAW) becomes scale·exp(v − h − c_r); c is the key
 * constant (FM_KEY only); *shift (when not NULL) gets c_r.  pair: v holds u in its first
 * cols/2 floats on entry, and the row is [u, −u] (both halves written from u in one pass). */
static void exp_row_mx(float *v, int cols, int pair, double h, float mx, enum fm_role role,
                       double c, float scale, float *shift)
{
    float sub = (float)h, off = 0.0f;
    if (role == FM_RAW) {
        if (shift)
            *shift = 0.0f;
    } else {
        /* Subtract the row's own max first (exact-ish, small numbers), then the key row's
         * offset from the sequence max, which is <= 0 and small when norms are alike. */
        if (role == FM_KEY)
            off = (float)((double)mx - h - c);
        if (!isfinite(mx))
            mx = 0.0f; /* a row of -Inf or NaN: leave it to exp (0 or NaN), never Inf - Inf */
        /* Relative to exp(v − h): queries were shifted by mx − h, keys by c. */
        if (shift)
            *shift = role == FM_KEY ? (float)c : (float)((double)mx - h);
        sub = mx;
    }
    /* Shifts, exp and scale in one pass over the row (vmath.h). */
    if (pair)
        la_vexpf_pair(v, v, v + cols / 2, (size_t)(cols / 2), sub, off, scale);
    else
        la_vexpf_affine(v, v, (size_t)cols, sub, off, scale);
}

static void exp_row(float *v, int cols, double h, enum fm_role role, double c, float scale,
                    float *shift)
{
    exp_row_mx(v, cols, 0, h, role == FM_RAW ? 0.0f : row_max(v, cols), role, c, scale, shift);
}

void fm_exp_stabilised(float *phi, size_t n, int cols, const float *x, int d, double hcoef,
                       enum fm_role role, float scale, float *shift)
{
    /* The key constant c needs every row's largest exponent first (one extra pass). */
    double c = -INFINITY;
    if (role == FM_KEY)
        for (size_t r = 0; r < n; r++) {
            double t = (double)row_max(phi + r * (size_t)cols, cols) -
                       row_h(x ? x + r * (size_t)d : NULL, d, hcoef);
            c = t > c ? t : c;
        }
    for (size_t r = 0; r < n; r++)
        exp_row(phi + r * (size_t)cols, cols, row_h(x ? x + r * (size_t)d : NULL, d, hcoef), role,
                c, scale, shift ? shift + r : NULL);
}

/* Rows ahead that the keys' second pass of fm_proj_exp prefetches (measured: 3 and 8 alike,
 * both faster than none). */
#define KEY_AHEAD 4

/* Most rows of one block of fm_proj_exp: its row maxima live on the stack. */
#define PROJ_ROWS_MAX 252

/* Rows per block of fm_proj_exp: about 128 KiB of features, which stays in a 1 MiB L2 beside
 * WsT (64 KiB at d = 64, m = 256) and the block's rows of x; a multiple of 6 (the rows
 * of the AVX-512 and AVX2 GEMM tiles); at least one tile, at most PROJ_ROWS_MAX. */
static size_t proj_block_rows(int cols)
{
    size_t rows = ((size_t)32768 / (size_t)cols) / 6 * 6;
    return rows < 6 ? 6 : rows > PROJ_ROWS_MAX ? PROJ_ROWS_MAX : rows;
}

void fm_proj_exp(const struct fm_proj *P, const float *off, int pair, const float *x, size_t n,
                 double hcoef, enum fm_role role, float scale, float *phi, float *shift)
{
    const int m = P->m, d = P->d, cols = pair ? 2 * m : m;
    const int isa = la_simd_isa();
    const size_t R = proj_block_rows(cols);
    float mx[PROJ_ROWS_MAX];
    double c = -INFINITY;
    for (size_t r0 = 0; r0 < n; r0 += R) {
        const size_t nr = n - r0 < R ? n - r0 : R;
        float *blk = phi + r0 * (size_t)cols;
        /* u (+ offsets) into each row's first m floats, and the rows' maxima (pair: of ±u),
         * from the register tiles. */
        la_proj_rows(isa, (int)nr, m, d, x + r0 * (size_t)d, d, P->WsT, m, off, pair, blk,
                     cols, mx);
        for (size_t r = 0; r < nr; r++) {
            /* Ask for the next block's row of φ (to be written) and of x while this one's
             * exp runs, so the GEMM's stores and loads there find them in cache. */
            if (r0 + R + r < n) {
                const char *pw = (const char *)(phi + (r0 + R + r) * (size_t)cols);
                const char *px = (const char *)(x + (r0 + R + r) * (size_t)d);
                for (size_t b = 0; b < (size_t)m * sizeof(float); b += 64)
                    __builtin_prefetch(pw + b, 1);
                for (size_t b = 0; b < (size_t)d * sizeof(float); b += 64)
                    __builtin_prefetch(px + b, 0);
            }
            const double h = row_h(x + (r0 + r) * (size_t)d, d, hcoef);
            if (role == FM_KEY) {
                const double t = (double)mx[r] - h;
                c = t > c ? t : c;
            } else {
                exp_row_mx(blk + r * (size_t)cols, cols, pair, h, mx[r], role, 0.0, scale,
                           shift ? shift + r0 + r : NULL);
            }
        }
    }
    /* Keys' second pass from the last row back: it starts on the rows the first pass wrote
     * last, which are still in cache.  A row's max is found again (it is the same value).
     * The rows further back mostly come from memory, in an order the hardware prefetchers
     * follow poorly: the u of the row KEY_AHEAD rows on is requested before each row. */
    if (role == FM_KEY)
        for (size_t r = n; r-- > 0;) {
            float *v = phi + r * (size_t)cols;
            if (r >= KEY_AHEAD) {
                const char *pf = (const char *)(v - KEY_AHEAD * (size_t)cols);
                for (size_t b = 0; b < (size_t)m * sizeof(float); b += 64)
                    __builtin_prefetch(pf + b, 1);
            }
            exp_row_mx(v, cols, pair, row_h(x + r * (size_t)d, d, hcoef),
                       pair ? row_max_abs(v, m) : row_max(v, cols), role, c, scale,
                       shift ? shift + r : NULL);
        }
}

size_t fm_grad_work_floats(int p, size_t n)
{
    size_t rows = n < FM_GRAD_ROWS ? n : FM_GRAD_ROWS;
    return rows * ((size_t)p + 1);
}

void fm_grad_G(enum fm_grad_kind kind, const float *phi, const float *dphi, size_t nr, int p,
               float *G, float *t)
{
    const size_t cols = kind == FM_GRAD_EXP ? (size_t)p : 2 * (size_t)p;
    for (size_t r = 0; r < nr; r++) {
        const float *f = phi + r * cols, *g = dphi + r * cols;
        float *Gr = G + r * (size_t)p;
        if (t) {
            double acc = 0.0;
            for (size_t c = 0; c < cols; c++)
                acc += (double)g[c] * (double)f[c];
            t[r] = (float)acc;
        }
        if (kind == FM_GRAD_EXP)
            for (int i = 0; i < p; i++)
                Gr[i] = g[i] * f[i];
        else if (kind == FM_GRAD_PAIR)
            for (int i = 0; i < p; i++)
                Gr[i] = g[i] * f[i] - g[p + i] * f[p + i];
        else
            for (int i = 0; i < p; i++)
                Gr[i] = g[p + i] * f[i] - g[i] * f[p + i];
    }
}

void fm_grad_rows(const float *G, size_t nr, int p, const float *Wt, int d, const float *t,
                  float hgrad, const float *x, float *dx)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, d, p, 1.0f, G, p, Wt, d, 0.0f,
                dx, d);
    if (!t)
        return;
    for (size_t r = 0; r < nr; r++) {
        const float a = hgrad * t[r];
        const float *xr = x + r * (size_t)d;
        float *o = dx + r * (size_t)d;
        for (int j = 0; j < d; j++)
            o[j] += a * xr[j];
    }
}

void fm_grad_params(const float *G, size_t nr, int p, const float *x, int d, float *dW, float *db)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, p, d, (int)nr, 1.0f, G, p, x, d, 1.0f, dW,
                d);
    if (!db)
        return;
    for (int i = 0; i < p; i++) {
        double acc = 0.0;
        for (size_t r = 0; r < nr; r++)
            acc += G[r * (size_t)p + (size_t)i];
        db[i] += (float)acc;
    }
}

void fm_proj_backward(const struct fm_proj *P, enum fm_grad_kind kind, float hgrad, const float *x,
                      size_t n, const float *phi, const float *dphi, float *dx, float *work)
{
    const int p = P->m, d = P->d;
    const size_t cols = kind == FM_GRAD_EXP ? (size_t)p : 2 * (size_t)p;
    float *G = work, *t = work + (size_t)FM_GRAD_ROWS * (size_t)p;
    if (n < FM_GRAD_ROWS)
        t = work + n * (size_t)p; /* the workspace is sized for min(n, FM_GRAD_ROWS) rows */
    for (size_t r0 = 0; r0 < n; r0 += FM_GRAD_ROWS) {
        const size_t nr = n - r0 < FM_GRAD_ROWS ? n - r0 : FM_GRAD_ROWS;
        fm_grad_G(kind, phi + r0 * cols, dphi + r0 * cols, nr, p, G, t);
        fm_grad_rows(G, nr, p, P->Ws, d, t, hgrad, x + r0 * (size_t)d, dx + r0 * (size_t)d);
    }
}
