/* fit.c — the distillation of fit.h: the teacher (causal softmax attention in double), the
 * objective and its exact gradient through both learned maps, and Adam with its schedule.
 *
 * ∂L/∂S_ij for j ≤ i (0 above the diagonal), with z_i = Σ_j≤i S_ij and y_i = Σ_j A_ij v_j:
 *     xent:  −(1/T)·(P_ij / S_ij − 1/z_i)             (Σ_j P_ij = 1)
 *     mse:   (ȳ_i·v_j − ȳ_i·y_i) / z_i,   ȳ_i = ∂L/∂y_i = 2/(T·dv)·(y_i − y_softmax,i)
 * then ∂L/∂Φ_q = G·Φ_k and ∂L/∂Φ_k = Gᵀ·Φ_q (cblas_dgemm), then through each activation:
 *     exp_pair:      ∂L/∂u_i = g_i·φ_i − g_{m+i}·φ_{m+i}
 *     softmax_pair:  ∂L/∂u_i = p_i·(g_i − p·g) − p_{m+i}·(g_{m+i} − p·g)
 *     relu:          ∂L/∂u_i = g_i where u_i > 0, else 0
 * and dW = (∂L/∂U)ᵀ·X, db = Σ_rows ∂L/∂U.  Cost per sequence and step: five T×T products with
 * F = 2m (or m) or dv columns, O(T²·(F + dv)).
 */
#include "fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* OpenBLAS's cblas.h first; GSL's gsl_cblas.h declares the same enums (featuremaps/draws.c). */
#include <cblas.h>
#define __GSL_CBLAS_H__
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "../core/timing.h"

struct seqd {
    int T;
    double *q, *k, *v;  /* (T, d), (T, d), (T, dv) */
    double *P;          /* (T, T) teacher weights, 0 above the diagonal */
    double *ys;         /* (T, dv) teacher outputs */
    double neg_entropy; /* (1/T) Σ_i Σ_j P_ij log P_ij */
    double ys_norm2;    /* ‖Y_softmax‖² */
};

struct la_fit_problem {
    int nseq, d, dv, tmax;
    struct seqd *s;
    /* work, sized for tmax rows and the largest m seen (grown on demand) */
    int mcap;
    double *uq, *uk, *fq, *fk, *gq, *gk, *duq, *duk; /* (T, m) or (T, 2m) */
    double *S, *G, *tmp;                             /* (T, T) */
    double *y, *dy, *z;                              /* (T, dv), (T, dv), (T) */
};

size_t la_fit_nparams(int m, int d)
{
    return 2 * ((size_t)m * (size_t)d + (size_t)m);
}

static void seq_free(struct seqd *s)
{
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->P);
    free(s->ys);
}

void la_fit_problem_free(struct la_fit_problem *pb)
{
    if (!pb)
        return;
    for (int i = 0; i < pb->nseq; i++)
        seq_free(&pb->s[i]);
    free(pb->s);
    double *w[] = {pb->uq,  pb->uk, pb->fq, pb->fk,  pb->gq, pb->gk, pb->duq,
                   pb->duk, pb->S,  pb->G,  pb->tmp, pb->y,  pb->dy, pb->z};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        free(w[i]);
    free(pb);
}

/* The teacher of one sequence: P by rows (the given weights, or the softmax with its row max
 * subtracted), Y = P·V, and the entropy term. */
static void teacher(struct seqd *s, const double *given, int d, int dv)
{
    const int T = s->T;
    const double scale = 1.0 / sqrt((double)d);
    s->neg_entropy = 0.0;
    s->ys_norm2 = 0.0;
    for (int i = 0; i < T; i++) {
        double *p = s->P + (size_t)i * T, mx = -INFINITY;
        for (int j = 0; j <= i && given; j++)
            p[j] = given[(size_t)i * T + j];
        for (int j = 0; j <= i && !given; j++) {
            double dot = 0.0;
            for (int c = 0; c < d; c++)
                dot += s->q[(size_t)i * d + c] * s->k[(size_t)j * d + c];
            p[j] = dot * scale;
            mx = fmax(mx, p[j]);
        }
        double sum = 0.0;
        for (int j = 0; j <= i; j++) {
            p[j] = given ? p[j] : exp(p[j] - mx);
            sum += p[j];
        }
        for (int j = 0; j <= i; j++) {
            p[j] /= sum;
            if (p[j] > 0.0)
                s->neg_entropy += p[j] * log(p[j]);
        }
        for (int j = i + 1; j < T; j++)
            p[j] = 0.0;
        for (int c = 0; c < dv; c++) {
            double acc = 0.0;
            for (int j = 0; j <= i; j++)
                acc += p[j] * s->v[(size_t)j * dv + c];
            s->ys[(size_t)i * dv + c] = acc;
            s->ys_norm2 += acc * acc;
        }
    }
    s->neg_entropy /= T;
}

struct la_fit_problem *la_fit_problem_new(const struct la_fit_seq *seqs, int nseq, int d, int dv,
                                          struct la_error *err)
{
    if (nseq < 1 || d < 1 || dv < 1) {
        LA_FAIL(err, LA_EINVAL, "fit: no sequences, or d = %d, dv = %d", d, dv);
        return NULL;
    }
    struct la_fit_problem *pb = calloc(1, sizeof *pb);
    if (!pb || !(pb->s = calloc((size_t)nseq, sizeof *pb->s))) {
        free(pb);
        LA_FAIL(err, LA_ENOMEM, "fit: out of memory");
        return NULL;
    }
    pb->nseq = nseq;
    pb->d = d;
    pb->dv = dv;
    for (int i = 0; i < nseq; i++) {
        const int T = seqs[i].T;
        if (T < 1) {
            la_fit_problem_free(pb);
            LA_FAIL(err, LA_EINVAL, "fit: sequence %d is empty", i);
            return NULL;
        }
        struct seqd *s = &pb->s[i];
        s->T = T;
        pb->tmax = T > pb->tmax ? T : pb->tmax;
        s->q = malloc((size_t)T * d * sizeof *s->q);
        s->k = malloc((size_t)T * d * sizeof *s->k);
        s->v = malloc((size_t)T * dv * sizeof *s->v);
        s->P = malloc((size_t)T * T * sizeof *s->P);
        s->ys = malloc((size_t)T * dv * sizeof *s->ys);
        if (!s->q || !s->k || !s->v || !s->P || !s->ys) {
            la_fit_problem_free(pb);
            LA_FAIL(err, LA_ENOMEM, "fit: out of memory for a sequence of %d rows", T);
            return NULL;
        }
        for (size_t j = 0; j < (size_t)T * d; j++) {
            s->q[j] = seqs[i].q[j];
            s->k[j] = seqs[i].k[j];
        }
        for (size_t j = 0; j < (size_t)T * dv; j++)
            s->v[j] = seqs[i].v[j];
        teacher(s, seqs[i].teacher, d, dv);
    }
    const size_t T = (size_t)pb->tmax;
    pb->S = malloc(T * T * sizeof(double));
    pb->G = malloc(T * T * sizeof(double));
    pb->tmp = malloc(T * T * sizeof(double));
    pb->y = malloc(T * (size_t)dv * sizeof(double));
    pb->dy = malloc(T * (size_t)dv * sizeof(double));
    pb->z = malloc(T * sizeof(double));
    if (!pb->S || !pb->G || !pb->tmp || !pb->y || !pb->dy || !pb->z) {
        la_fit_problem_free(pb);
        LA_FAIL(err, LA_ENOMEM, "fit: out of memory for %zu x %zu work", T, T);
        return NULL;
    }
    return pb;
}

/* Grows the per-feature work to m units (2m features). */
static int reserve_m(struct la_fit_problem *pb, int m, struct la_error *err)
{
    if (m <= pb->mcap)
        return LA_OK;
    const size_t n = (size_t)pb->tmax * 2 * (size_t)m;
    double **w[] = {&pb->uq, &pb->uk, &pb->fq, &pb->fk, &pb->gq, &pb->gk, &pb->duq, &pb->duk};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        free(*w[i]);
        *w[i] = malloc(n * sizeof(double));
        if (!*w[i]) {
            pb->mcap = 0;
            return LA_FAIL(err, LA_ENOMEM, "fit: out of memory for m = %d", m);
        }
    }
    pb->mcap = m;
    return LA_OK;
}

/* U = X·Wᵀ + b: (T, m). */
static void units(const double *x, int T, int d, const double *W, const double *b, int m, double *u)
{
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, m, d, 1.0, x, d, W, d, 0.0, u, m);
    for (int r = 0; r < T; r++)
        for (int i = 0; i < m; i++)
            u[(size_t)r * m + i] += b[i];
}

/* Φ (T, F) from U (T, m); key: exp_pair's stabiliser is one constant for all rows. */
static void features(int act, const double *u, int T, int m, int key, double *f)
{
    if (act == LA_FIT_RELU) {
        for (size_t i = 0; i < (size_t)T * m; i++)
            f[i] = u[i] > 0.0 ? u[i] : 0.0;
        return;
    }
    const int F = 2 * m;
    double cmax = 0.0;
    if (act == LA_FIT_EXP_PAIR && key)
        for (size_t i = 0; i < (size_t)T * m; i++)
            cmax = fmax(cmax, fabs(u[i]));
    for (int r = 0; r < T; r++) {
        const double *ur = u + (size_t)r * m;
        double *fr = f + (size_t)r * F, c = cmax;
        if (!(act == LA_FIT_EXP_PAIR && key)) {
            c = 0.0;
            for (int i = 0; i < m; i++)
                c = fmax(c, fabs(ur[i]));
        }
        double sum = 0.0;
        for (int i = 0; i < m; i++) {
            fr[i] = exp(ur[i] - c);
            fr[m + i] = exp(-ur[i] - c);
            sum += fr[i] + fr[m + i];
        }
        if (act == LA_FIT_SOFTMAX_PAIR)
            for (int i = 0; i < F; i++)
                fr[i] /= sum;
    }
}

/* ∂L/∂U (T, m) from ∂L/∂Φ (g), Φ (f) and U. */
static void features_vjp(int act, const double *u, const double *f, const double *g, int T, int m,
                         double *du)
{
    if (act == LA_FIT_RELU) {
        for (size_t i = 0; i < (size_t)T * m; i++)
            du[i] = u[i] > 0.0 ? g[i] : 0.0;
        return;
    }
    const int F = 2 * m;
    for (int r = 0; r < T; r++) {
        const double *fr = f + (size_t)r * F, *gr = g + (size_t)r * F;
        double *dr = du + (size_t)r * m;
        double dot = 0.0;
        if (act == LA_FIT_SOFTMAX_PAIR)
            for (int i = 0; i < F; i++)
                dot += fr[i] * gr[i];
        for (int i = 0; i < m; i++)
            dr[i] = fr[i] * (gr[i] - dot) - fr[m + i] * (gr[m + i] - dot);
    }
}

/* dW += dUᵀ·X, db += Σ_rows dU. */
static void params_vjp(const double *du, const double *x, int T, int m, int d, double *dW,
                       double *db)
{
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, d, T, 1.0, du, m, x, d, 1.0, dW, d);
    for (int r = 0; r < T; r++)
        for (int i = 0; i < m; i++)
            db[i] += du[(size_t)r * m + i];
}

int la_fit_objective(struct la_fit_problem *pb, const struct la_fit_opts *o, const double *theta,
                     double *grad, struct la_fit_eval *ev, struct la_error *err)
{
    const int m = o->m, d = pb->d, dv = pb->dv, act = o->act;
    const int F = act == LA_FIT_RELU ? m : 2 * m;
    int st = reserve_m(pb, m, err);
    if (st != LA_OK)
        return st;
    const size_t md = (size_t)m * d;
    const double *Wq = theta, *bq = theta + md, *Wk = bq + m, *bk = Wk + md;
    const double wx = o->loss == LA_FIT_MSE ? 0.0 : 1.0;
    const double wm = o->loss == LA_FIT_XENT ? 0.0 : o->loss == LA_FIT_MSE ? 1.0 : o->mse_weight;
    if (grad)
        memset(grad, 0, la_fit_nparams(m, d) * sizeof *grad);
    double loss = 0.0, kl = 0.0, oerr = 0.0;
    for (int n = 0; n < pb->nseq; n++) {
        const struct seqd *s = &pb->s[n];
        const int T = s->T;
        units(s->q, T, d, Wq, bq, m, pb->uq);
        units(s->k, T, d, Wk, bk, m, pb->uk);
        features(act, pb->uq, T, m, 0, pb->fq);
        features(act, pb->uk, T, m, 1, pb->fk);
        double *S = pb->S, *G = pb->G;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, F, 1.0, pb->fq, F, pb->fk, F,
                    0.0, S, T);
        double xent = 0.0;
        for (int i = 0; i < T; i++) {
            double *Si = S + (size_t)i * T, zi = 0.0;
            for (int j = i + 1; j < T; j++)
                Si[j] = 0.0;
            for (int j = 0; j <= i; j++)
                zi += Si[j];
            pb->z[i] = zi;
            const double *Pi = s->P + (size_t)i * T;
            const double lz = log(zi);
            for (int j = 0; j <= i; j++)
                if (Pi[j] > 0.0)
                    xent -= Pi[j] * (log(Si[j]) - lz);
        }
        xent /= T;
        /* Y = A·V = diag(1/z)·S·V */
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dv, T, 1.0, S, T, s->v, dv, 0.0,
                    pb->y, dv);
        double mse = 0.0, e2 = 0.0;
        for (int i = 0; i < T; i++)
            for (int c = 0; c < dv; c++) {
                double *yi = pb->y + (size_t)i * dv;
                yi[c] /= pb->z[i];
                const double e = yi[c] - s->ys[(size_t)i * dv + c];
                e2 += e * e;
                pb->dy[(size_t)i * dv + c] = 2.0 * wm / ((double)T * dv) * e;
            }
        mse = e2 / ((double)T * dv);
        const double l = wx * xent + wm * mse;
        if (!isfinite(l))
            return LA_FAIL(err, LA_EFORMAT,
                           "fit: the loss is not finite (xent %g, mse %g on sequence %d): the "
                           "features vanish or overflow for some rows (relu features that are "
                           "all zero give log 0; try --loss mse or other --lr, --init)",
                           xent, mse, n);
        loss += l;
        kl += xent + s->neg_entropy;
        oerr += s->ys_norm2 > 0.0 ? sqrt(e2 / s->ys_norm2) : sqrt(e2);
        if (!grad)
            continue;
        /* G = ∂L/∂S, lower triangle. */
        if (wm != 0.0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dv, 1.0, pb->dy, dv, s->v,
                        dv, 0.0, pb->tmp, T);
        for (int i = 0; i < T; i++) {
            const double *Si = S + (size_t)i * T, *Pi = s->P + (size_t)i * T;
            double *Gi = G + (size_t)i * T;
            const double zi = pb->z[i];
            double dyy = 0.0;
            if (wm != 0.0)
                for (int c = 0; c < dv; c++)
                    dyy += pb->dy[(size_t)i * dv + c] * pb->y[(size_t)i * dv + c];
            for (int j = 0; j <= i; j++) {
                double g = 0.0;
                if (wx != 0.0)
                    g -= wx / T * ((Pi[j] > 0.0 ? Pi[j] / Si[j] : 0.0) - 1.0 / zi);
                if (wm != 0.0)
                    g += (pb->tmp[(size_t)i * T + j] - dyy) / zi;
                Gi[j] = g;
            }
            for (int j = i + 1; j < T; j++)
                Gi[j] = 0.0;
        }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, F, T, 1.0, G, T, pb->fk, F, 0.0,
                    pb->gq, F);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, F, T, 1.0, G, T, pb->fq, F, 0.0,
                    pb->gk, F);
        features_vjp(act, pb->uq, pb->fq, pb->gq, T, m, pb->duq);
        features_vjp(act, pb->uk, pb->fk, pb->gk, T, m, pb->duk);
        params_vjp(pb->duq, s->q, T, m, d, grad, grad + md);
        params_vjp(pb->duk, s->k, T, m, d, grad + md + m, grad + 2 * md + m);
    }
    const double inv = 1.0 / pb->nseq;
    if (grad)
        for (size_t i = 0; i < la_fit_nparams(m, d); i++)
            grad[i] *= inv;
    ev->loss = loss * inv;
    ev->kl = kl * inv;
    ev->out_err = oerr * inv;
    return LA_OK;
}

void la_fit_init(const struct la_fit_opts *o, int d, double *theta)
{
    const int m = o->m;
    const size_t md = (size_t)m * d;
    const double scale = pow((double)d, -0.25);
    memset(theta, 0, la_fit_nparams(m, d) * sizeof *theta);
    if (o->init == LA_FIT_INIT_IDENTITY) {
        for (int i = 0; i < m; i++)
            theta[(size_t)i * d + (size_t)(i % d)] = scale;
    } else {
        gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
        if (r) {
            gsl_rng_set(r, o->seed);
            for (size_t i = 0; i < md; i++)
                theta[i] = gsl_ran_gaussian(r, 1.0) * scale;
            gsl_rng_free(r);
        }
    }
    memcpy(theta + md + m, theta, md * sizeof *theta);
}

double la_fit_lr(const struct la_fit_opts *o, int t)
{
    const int w = o->steps / 20 > 1 ? o->steps / 20 : 1;
    if (t < w)
        return o->lr * (t + 1) / w;
    const int rest = o->steps - w > 1 ? o->steps - w : 1;
    const double c = 0.5 * (1.0 + cos(M_PI * (double)(t - w) / rest));
    return o->lr * (0.1 + 0.9 * c);
}

int la_fit_run(struct la_fit_problem *pb, const struct la_fit_opts *o, double *theta,
               la_fit_step_fn step, void *ctx, struct la_fit_eval *ev, struct la_error *err)
{
    const size_t np = la_fit_nparams(o->m, pb->d);
    double *g = malloc(np * sizeof *g), *m1 = calloc(np, sizeof *m1), *m2 = calloc(np, sizeof *m2);
    int st = LA_OK;
    if (!g || !m1 || !m2) {
        st = LA_FAIL(err, LA_ENOMEM, "fit: out of memory for %zu parameters", np);
        goto done;
    }
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    double p1 = 1.0, p2 = 1.0;
    for (int t = 0; t < o->steps; t++) {
        st = la_fit_objective(pb, o, theta, g, ev, err);
        if (st != LA_OK)
            goto done;
        p1 *= b1;
        p2 *= b2;
        const double lr = la_fit_lr(o, t);
        for (size_t i = 0; i < np; i++) {
            m1[i] = b1 * m1[i] + (1.0 - b1) * g[i];
            m2[i] = b2 * m2[i] + (1.0 - b2) * g[i] * g[i];
            theta[i] -= lr * (m1[i] / (1.0 - p1)) / (sqrt(m2[i] / (1.0 - p2)) + eps);
        }
        if ((step && step(ctx, t + 1, ev->loss)) || la_cancelled()) {
            st = LA_FAIL(err, LA_EINTR, "fit: interrupted at step %d of %d", t + 1, o->steps);
            goto done;
        }
    }
    st = la_fit_objective(pb, o, theta, NULL, ev, err);
done:
    free(g);
    free(m1);
    free(m2);
    return st;
}
