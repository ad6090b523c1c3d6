/* registry.c — the list of feature maps, lookup by name, and the generic layer that checks
 * arguments once before dispatching to a map (see featuremap.h).
 * Adding a map: write featuremaps/NAME.c exporting `const struct featuremap_type fm_NAME` (with
 * its cost models, featuremap.h), add one extern line and one array entry below.
 * Tests: tests/test_featuremaps.c.
 */
#include "featuremap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

extern const struct featuremap_type fm_elu1;
extern const struct featuremap_type fm_relu;
extern const struct featuremap_type fm_taylor2;
extern const struct featuremap_type fm_rff;
extern const struct featuremap_type fm_prf;
extern const struct featuremap_type fm_hyp;
extern const struct featuremap_type fm_gerf;
extern const struct featuremap_type fm_learned;
extern const struct featuremap_type fm_dpfp;

const struct featuremap_type *const featuremap_types[] = {
    &fm_elu1,
    &fm_relu,
    &fm_taylor2,
    &fm_rff,
    &fm_prf,
    &fm_hyp,
    &fm_gerf,
    &fm_learned,
    &fm_dpfp,
    NULL,
};

size_t featuremap_count(void)
{
    size_t n = 0;
    while (featuremap_types[n])
        n++;
    return n;
}

const char *const *featuremap_names(void)
{
    static const char *names[64];
    size_t n = featuremap_count();
    for (size_t i = 0; i < n && i < 63; i++)
        names[i] = featuremap_types[i]->name;
    names[n < 63 ? n : 63] = NULL;
    return names;
}

const struct featuremap_type *featuremap_lookup(const char *name, struct la_error *err)
{
    for (size_t i = 0; featuremap_types[i]; i++)
        if (name && strcmp(featuremap_types[i]->name, name) == 0)
            return featuremap_types[i];
    char msg[640];
    LA_FAIL(err, LA_ENAME, "unknown feature map '%s'%s", name ? name : "(null)",
            la_choices_msg(msg, sizeof msg, name, featuremap_names(), featuremap_count(),
                           "valid maps"));
    return NULL;
}

int featuremap_type_reads(const struct featuremap_type *t, const char *p)
{
    if (!t || !t->params)
        return 0;
    const size_t len = strlen(p);
    for (const char *s = t->params; *s;) {
        while (*s == ' ' || *s == ',')
            s++;
        const char *w = s;
        while (*s && *s != ' ' && *s != ',')
            s++;
        if ((size_t)(s - w) == len && !memcmp(w, p, len))
            return 1;
    }
    return 0;
}

void featuremap_params_default(struct fm_params *p, int d)
{
    memset(p, 0, sizeof *p);
    p->d = d;
    p->m = 0;
    p->draw = FM_DRAW_IID;
    p->norm_fixed = 0;
    p->A = 0.0;
    p->A_auto = 0;
    p->eps = 1e-3;
    p->weights = NULL;
    p->nu = 1;
    p->layer = -1;
    p->head = -1;
    p->seed = 1;
}

struct featuremap *featuremap_alloc(const char *name, const struct fm_params *p, gsl_rng *rng,
                                    struct la_error *err)
{
    const struct featuremap_type *t = featuremap_lookup(name, err);
    if (!t)
        return NULL;
    if (!p || p->d < 1) {
        LA_FAIL(err, LA_EINVAL, "feature map '%s': d must be >= 1, got %d", name, p ? p->d : 0);
        return NULL;
    }
    if (p->m < 0) {
        LA_FAIL(err, LA_EINVAL, "feature map '%s': m must be >= 1, got %d", name, p->m);
        return NULL;
    }
    if (t->random && !rng) {
        LA_FAIL(err, LA_EINVAL, "feature map '%s' is random and needs a seeded rng", name);
        return NULL;
    }
    struct featuremap *fm = calloc(1, sizeof *fm);
    if (!fm) {
        LA_FAIL(err, LA_ENOMEM, "out of memory allocating feature map '%s'", name);
        return NULL;
    }
    fm->type = t;
    fm->params = *p;
    fm->d = p->d;
    if (t->state_size) {
        fm->state = calloc(1, t->state_size);
        if (!fm->state) {
            free(fm);
            LA_FAIL(err, LA_ENOMEM, "out of memory allocating feature map '%s'", name);
            return NULL;
        }
    }
    if (t->init(fm->state, p, rng, err) != LA_OK) {
        if (t->release)
            t->release(fm->state);
        free(fm->state);
        free(fm);
        return NULL;
    }
    fm->m = t->out_dim(fm->state);
    if (fm->m < 1) {
        LA_FAIL(err, LA_EINTERNAL, "feature map '%s' reported m = %d", name, fm->m);
        featuremap_free(fm);
        return NULL;
    }
    return fm;
}

void featuremap_free(struct featuremap *fm)
{
    if (!fm)
        return;
    if (fm->type->release)
        fm->type->release(fm->state);
    free(fm->state);
    free(fm);
}

size_t featuremap_work_floats(const struct featuremap *fm, size_t n)
{
    return fm->type->work_floats ? fm->type->work_floats(fm->state, n) : 0;
}

int featuremap_apply_shift(const struct featuremap *fm, enum fm_role role, const float *x,
                           size_t n, float *phi, float *work, float *shift)
{
    if (!fm || !x || !phi || n == 0 ||
        (role != FM_QUERY && role != FM_KEY && role != FM_RAW && role != FM_RAW_KEY))
        return LA_EINVAL;
    if (role == FM_RAW_KEY && !fm->type->two_sided)
        role = FM_RAW;
    if (!work && featuremap_work_floats(fm, n) > 0)
        return LA_EINVAL;
    fm->type->apply(fm->state, role, x, n, phi, work, shift);
    return LA_OK;
}

int featuremap_apply(const struct featuremap *fm, enum fm_role role, const float *x, size_t n,
                     float *phi, float *work)
{
    return featuremap_apply_shift(fm, role, x, n, phi, work, NULL);
}

int featuremap_fit(struct featuremap *fm, const float *q, size_t nq, const float *k, size_t nk,
                   struct la_error *err)
{
    if (!fm->type->fit)
        return LA_OK;
    if (!q || !k || nq == 0 || nk == 0)
        return LA_FAIL(err, LA_EINVAL, "feature map '%s': fit needs rows", fm->type->name);
    return fm->type->fit(fm->state, q, nq, k, nk, err);
}

double featuremap_kernel(const struct featuremap *fm, const double *q, const double *k)
{
    if (fm->type->kernel)
        return fm->type->kernel(fm->state, q, k, fm->d);
    double dot = 0.0;
    for (int i = 0; i < fm->d; i++)
        dot += q[i] * k[i];
    return exp(dot / sqrt((double)fm->d));
}

double featuremap_param(const struct featuremap *fm, const char *name)
{
    return fm->type->param ? fm->type->param(fm->state, name) : NAN;
}

double featuremap_nominal_flops(const struct featuremap_type *t, size_t n, int d, int m)
{
    return t && d >= 1 && m >= 1 ? t->flops(n, d, m) : NAN;
}

double featuremap_nominal_bytes(const struct featuremap_type *t, size_t n, int d, int m)
{
    return t && d >= 1 && m >= 1 ? t->bytes(n, d, m) : NAN;
}

double featuremap_nominal_dim(const struct featuremap_type *t, int d, int m)
{
    return t && d >= 1 && m >= 0 ? t->nominal_dim(d, m) : NAN;
}

double featuremap_params_dim(const struct featuremap_type *t, const struct fm_params *p)
{
    if (!t || !p || p->d < 1 || p->m < 0)
        return NAN;
    return t->params_dim ? t->params_dim(p) : t->nominal_dim(p->d, p->m);
}
