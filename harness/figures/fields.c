/* fields.c — the legend fields of results rows (fields.h): the schema's parameters with a
 * results column and a legend label, in the curve and legend orders; generic equality, value,
 * order and text by the column's type and the label, and the few fields whose settings need
 * their own rule.  Also the row facts (softmax or not, map parameters, the key reader).
 * Pure functions of rows: no I/O, no state.  Tests: tests/test_figures.c.
 */
#include "fields.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "../experiment/params.h"

/* ---- facts about a row ------------------------------------------------------------------ */

int la_fig_map_reads(const char *name, const char *p)
{
    struct la_error err;
    const struct featuremap_type *t = featuremap_lookup(name, &err);
    if (!t || !t->params)
        return !strcmp(p, "m") || !strcmp(p, "draw");
    return featuremap_type_reads(t, p);
}

void la_fig_fmt_T(double T, char *buf, size_t cap)
{
    if (T >= 1024 * 1024)
        snprintf(buf, cap, "%.3gM", T / (1024.0 * 1024.0));
    else if (T >= 1024)
        snprintf(buf, cap, "%.3gK", T / 1024.0);
    else
        snprintf(buf, cap, "%.0f", T);
}

const char *la_fig_plural(long long n)
{
    return n == 1 ? "" : "s";
}

int la_fig_same_real(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* gerf's A chosen from the data: the row holds the fitted value, the key says "A=auto". */
static int A_auto(const struct la_row *r)
{
    char v[16];
    return la_key_get(r->key, "A", v, sizeof v) == LA_OK && !strcmp(v, "auto");
}

/* A kernel that reads `chunk` records the one it used (others 0); the default depends on
 * (m, dv). */
static int chunk_default(const struct la_row *r)
{
    return r->chunk <= 0 || r->chunk == attn_default_chunk(r->m, r->dv);
}

/* Real (h5) inputs: the row's σ is the RMS measured on that head. */
static int sigma_measured(const struct la_row *r)
{
    return !strcmp(r->data, "h5");
}

/* The update rule of the row's kernel (attention.h), -1 for a kernel this build lacks. */
static int row_update(const struct la_row *r)
{
    const struct attn_kernel *kn = attn_kernel_lookup(r->kernel);
    return kn ? kn->update : -1;
}

/* ---- the fields' own rules -------------------------------------------------------------- */

static int same_A(const struct la_row *a, const struct la_row *b)
{
    return A_auto(a) == A_auto(b) && (A_auto(a) || la_fig_same_real(a->A, b->A));
}

/* Numbers ascending, NaN last. */
static int cmp_num(double x, double y)
{
    if (isnan(x) || isnan(y))
        return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

/* A=auto sorts first; two autos are one value. */
static int cmp_A(const struct la_row *a, const struct la_row *b)
{
    if (A_auto(a) != A_auto(b))
        return A_auto(b) - A_auto(a);
    return A_auto(a) ? 0 : cmp_num(a->A, b->A);
}

/* The kernel's default chunk changes with m: one setting, "default". */
static int same_chunk(const struct la_row *a, const struct la_row *b)
{
    return (chunk_default(a) && chunk_default(b)) || a->chunk == b->chunk;
}

/* The default chunk is an implementation detail, not a setting. */
static int applies_chunk(const struct la_row *r)
{
    return !chunk_default(r);
}

static int same_sigma(const struct la_row *a, const struct la_row *b)
{
    return (sigma_measured(a) && sigma_measured(b)) || la_fig_same_real(a->sigma, b->sigma);
}

static int applies_sigma(const struct la_row *r)
{
    return !sigma_measured(r);
}

/* The recurrences' parameters apply to the rows whose rule reads them. */
static int applies_beta(const struct la_row *r)
{
    return row_update(r) == ATTN_UPD_DELTA;
}

static int applies_gamma(const struct la_row *r)
{
    return row_update(r) == ATTN_UPD_DECAY;
}

static int applies_alpha(const struct la_row *r)
{
    return row_update(r) == ATTN_UPD_GATED;
}

static int applies_recur(const struct la_row *r)
{
    return row_update(r) > ATTN_UPD_SUM;
}

/* A gate read from the data file (`beta: data`) is NaN in the row: "β=data". */
static void text_gate(const char *label, double x, char *buf, size_t cap)
{
    if (isnan(x))
        snprintf(buf, cap, "%s=data", label);
    else
        snprintf(buf, cap, "%s=%g", label, x);
}

static void text_beta(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    text_gate(label, r->beta, buf, cap);
}

static void text_alpha(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    text_gate(label, r->alpha, buf, cap);
}

/* Text with the schema's legend label. */
static void text_causal(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s", r->causal ? "" : "non-", label);
}

static void text_T(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    char t[32];
    la_fig_fmt_T(r->T, t, sizeof t);
    snprintf(buf, cap, "%s=%s", label, t);
}

static void text_A(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    if (isnan(r->A) || A_auto(r))
        snprintf(buf, cap, "%s=auto", label);
    else
        snprintf(buf, cap, "%s=%g", label, r->A);
}

static void text_threads(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    (void)label;
    snprintf(buf, cap, "%d thread%s", (int)r->threads, la_fig_plural(r->threads));
}

static void text_layer(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %d", label, (int)r->layer);
}

static void text_head(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    if (r->head < 0)
        snprintf(buf, cap, "all %ss", label);
    else
        snprintf(buf, cap, "%s %d", label, (int)r->head);
}

/* A weights file by its base name: the directory tells no curve apart. */
static void text_weights(const struct la_row *r, const char *label, char *buf, size_t cap)
{
    const char *slash = strrchr(r->weights, '/');
    snprintf(buf, cap, "%s=%s", label, slash ? slash + 1 : r->weights);
}

/* ---- the fields ------------------------------------------------------------------------- */

/* The fields are the parameters of the schema (harness/experiment/params.c) that have a results
 * column and a legend label: their name is the column's, their value the row's, their text the
 * label and the value ("m=64"; a label "" is the value alone: "prf", "iid").  Which rows they
 * apply to follows the parameter's scope: the map's and the kernel's parameters (scope linear,
 * chunk, map or kernel) only to linear rows, a map's own parameter only to rows whose map reads
 * it, and a recurrence's gate (β, γ, α) or normaliser only to rows whose rule reads it.
 * What runs (the kernel and those parameters) tells the series of a panel apart.
 *
 * A parameter gets a field with no edit here; this file only places it in the two orders and
 * gives the few fields that need them their own rules. */

/* The order curves and panels sort by, which is also the fields' numbering.  Fields not listed
 * (a parameter added to the schema) follow, in table order. */
static const int sort_order[] = {
    LA_PARAM_CAUSAL, LA_PARAM_D,          LA_PARAM_MAP,    LA_PARAM_DRAW,  LA_PARAM_M,
    LA_PARAM_A,      LA_PARAM_NU,         LA_PARAM_KERNEL, LA_PARAM_BETA,  LA_PARAM_GAMMA,
    LA_PARAM_ALPHA,  LA_PARAM_RECUR_NORM, LA_PARAM_DV,     LA_PARAM_SIGMA, LA_PARAM_T,
    LA_PARAM_DATA,   LA_PARAM_CHUNK,      LA_PARAM_EPS,    LA_PARAM_BATCH, LA_PARAM_HEADS,
    LA_PARAM_THREADS, LA_PARAM_LAYER,     LA_PARAM_HEAD,
};
#define NSORT ((int)(sizeof sort_order / sizeof sort_order[0]))

/* The order of legend and title text: the map's parameters first, then the shape.  Fields not
 * listed follow, in field order. */
static const int legend_order[] = {
    LA_PARAM_M,     LA_PARAM_DRAW,    LA_PARAM_A,     LA_PARAM_NU,     LA_PARAM_KERNEL,
    LA_PARAM_BETA,  LA_PARAM_GAMMA,   LA_PARAM_ALPHA, LA_PARAM_RECUR_NORM, LA_PARAM_CHUNK,
    LA_PARAM_EPS,   LA_PARAM_CAUSAL,  LA_PARAM_D,     LA_PARAM_DV,     LA_PARAM_T,
    LA_PARAM_SIGMA, LA_PARAM_DATA,    LA_PARAM_LAYER, LA_PARAM_HEAD,   LA_PARAM_BATCH,
    LA_PARAM_HEADS, LA_PARAM_THREADS,
};
#define NLEGEND ((int)(sizeof legend_order / sizeof legend_order[0]))

/* A field's own rules, where the generic ones (equal values, ascending order, label=value, the
 * scope) do not say what a figure means. */
struct rule {
    int silent; /* never written: the map names each curve's colour and key already */
    int (*same)(const struct la_row *a, const struct la_row *b); /* NULL: equal values */
    int (*cmp)(const struct la_row *a, const struct la_row *b);  /* NULL: by value */
    void (*text)(const struct la_row *r, const char *label, char *buf, size_t cap);
    int (*applies)(const struct la_row *r); /* NULL: the scope decides; else also this */
};

static const struct rule rules[LA_NPARAMS] = {
    [LA_PARAM_MAP] = {.silent = 1},
    [LA_PARAM_A] = {.same = same_A, .cmp = cmp_A, .text = text_A},
    [LA_PARAM_CAUSAL] = {.text = text_causal},
    [LA_PARAM_CHUNK] = {.same = same_chunk, .applies = applies_chunk},
    [LA_PARAM_T] = {.text = text_T},
    [LA_PARAM_SIGMA] = {.same = same_sigma, .applies = applies_sigma},
    [LA_PARAM_THREADS] = {.text = text_threads},
    [LA_PARAM_LAYER] = {.text = text_layer},
    [LA_PARAM_HEAD] = {.text = text_head},
    [LA_PARAM_BETA] = {.text = text_beta, .applies = applies_beta},
    [LA_PARAM_GAMMA] = {.applies = applies_gamma},
    [LA_PARAM_ALPHA] = {.text = text_alpha, .applies = applies_alpha},
    [LA_PARAM_RECUR_NORM] = {.applies = applies_recur},
    [LA_PARAM_WEIGHTS] = {.text = text_weights},
};

/* One field, as the schema's row describes it. */
struct field {
    const struct la_param *p; /* the schema's row */
    const struct rule *rule;
    const char *name; /* the results column */
    size_t offset;    /* in struct la_row */
    int kind;         /* enum la_col_kind, as la_params_fill_row stores the type */
    int linear;       /* applies to linear rows only */
    int series;       /* what runs: the kernel, its parameters and the map's */
};

static int is_field(const struct la_param *p)
{
    return p->col && p->legend;
}

static int in_list(const int *list, int n, int id)
{
    for (int k = 0; k < n; k++)
        if (list[k] == id)
            return 1;
    return 0;
}

/* The schema row of field f, -1 past the last field. */
static int field_param(int f)
{
    if (f < NSORT)
        return f >= 0 ? sort_order[f] : -1;
    for (int id = 0, k = NSORT; id < LA_NPARAMS; id++)
        if (is_field(&la_params[id]) && !in_list(sort_order, NSORT, id) && k++ == f)
            return id;
    return -1;
}

/* The field of schema row id, -1 when it is none. */
static int param_field(int id)
{
    for (int f = 0; f < NSORT; f++)
        if (sort_order[f] == id)
            return f;
    if (!is_field(&la_params[id]))
        return -1;
    int f = NSORT;
    for (int j = 0; j < id; j++)
        f += is_field(&la_params[j]) && !in_list(sort_order, NSORT, j);
    return f;
}

static struct field get(int f)
{
    const int id = field_param(f);
    const struct la_param *p = &la_params[id];
    const int scope = p->scope;
    struct field F = {
        .p = p,
        .rule = &rules[id],
        .name = p->col,
        .offset = p->row_off,
        .kind = p->type == LA_PT_REAL                           ? LA_COL_DOUBLE
                : p->type == LA_PT_INT || p->type == LA_PT_BOOL ? LA_COL_INT32
                                                                : LA_COL_STRING,
        .linear = scope == LA_SCOPE_LINEAR || scope == LA_SCOPE_CHUNK || scope == LA_SCOPE_MAP ||
                  scope == LA_SCOPE_KERNEL,
    };
    F.series = F.linear || id == LA_PARAM_KERNEL;
    return F;
}

int la_field_count(void)
{
    int n = NSORT;
    for (int id = 0; id < LA_NPARAMS; id++)
        n += is_field(&la_params[id]) && !in_list(sort_order, NSORT, id);
    return n;
}

unsigned la_fields_all(void)
{
    const int n = la_field_count();
    return n >= 32 ? ~0u : (1u << n) - 1;
}

int la_field_find(const char *name)
{
    for (int f = 0, n = la_field_count(); f < n; f++)
        if (!strcmp(get(f).name, name))
            return f;
    return -1;
}

const char *la_field_name(int f)
{
    return f >= 0 && f < la_field_count() ? get(f).name : NULL;
}

int la_fields_mask(const char *names, unsigned *mask, struct la_error *err)
{
    *mask = 0;
    for (const char *s = names ? names : ""; *s;) {
        size_t n = strcspn(s, " ");
        if (n) {
            char word[32];
            snprintf(word, sizeof word, "%.*s", (int)n, s);
            int f = n < sizeof word ? la_field_find(word) : -1;
            if (f < 0)
                return LA_FAIL(err, LA_EINVAL, "unknown figure field '%.*s'", (int)n, s);
            *mask |= LA_FIELD_BIT(f);
        }
        s += n;
        s += *s == ' ';
    }
    return LA_OK;
}

/* ---- one field ---------------------------------------------------------------------------- */

static const char *text_of(const struct la_row *r, const struct field *F)
{
    return (const char *)r + F->offset;
}

static double num_of(const struct la_row *r, const struct field *F)
{
    struct la_column c = {F->name, F->offset, 0, F->kind};
    return la_row_value(r, &c);
}

int la_field_eq(const struct la_row *a, const struct la_row *b, int f)
{
    const struct field F = get(f);
    if (F.rule->same)
        return F.rule->same(a, b);
    if (F.kind == LA_COL_STRING)
        return !strcmp(text_of(a, &F), text_of(b, &F));
    return la_fig_same_real(num_of(a, &F), num_of(b, &F));
}

double la_field_num(const struct la_row *r, int f)
{
    const struct field F = get(f);
    return num_of(r, &F);
}

int la_field_cmp(const struct la_row *a, const struct la_row *b, int f)
{
    const struct field F = get(f);
    if (F.rule->cmp)
        return F.rule->cmp(a, b);
    if (F.kind == LA_COL_STRING)
        return strcmp(text_of(a, &F), text_of(b, &F));
    return cmp_num(num_of(a, &F), num_of(b, &F));
}

void la_field_text(const struct la_row *r, int f, char *buf, size_t cap)
{
    const struct field F = get(f);
    const char *label = F.p->legend, *eq = label[0] ? "=" : "";
    if (F.rule->text)
        F.rule->text(r, label, buf, cap);
    else if (F.kind == LA_COL_STRING)
        snprintf(buf, cap, "%s%s%s", label, eq, text_of(r, &F));
    else if (F.kind == LA_COL_DOUBLE)
        snprintf(buf, cap, "%s%s%g", label, eq, num_of(r, &F));
    else
        snprintf(buf, cap, "%s%s%d", label, eq, (int)num_of(r, &F));
}

int la_field_applies(const struct la_row *r, int f)
{
    const struct field F = get(f);
    if (F.linear) {
        if (la_row_is_softmax(r))
            return 0;
        if (F.p->scope == LA_SCOPE_MAP && !la_fig_map_reads(r->map, F.p->entry))
            return 0;
    }
    return F.rule->applies ? F.rule->applies(r) : 1;
}

/* ---- sets of fields ----------------------------------------------------------------------- */

/* Appends field f's text to buf when mask has it and it applies to r. */
static void append_one(const struct la_row *r, int f, unsigned mask, const char *sep, char *buf,
                       size_t cap)
{
    if (f < 0 || !(mask & LA_FIELD_BIT(f)) || !la_field_applies(r, f))
        return;
    char t[96];
    la_field_text(r, f, t, sizeof t);
    size_t len = strlen(buf);
    if (len + 1 < cap)
        snprintf(buf + len, cap - len, "%s%s", len ? sep : "", t);
}

void la_fields_append(const struct la_row *r, unsigned mask, const char *sep, char *buf, size_t cap)
{
    for (int k = 0; k < NLEGEND; k++)
        append_one(r, param_field(legend_order[k]), mask, sep, buf, cap);
    for (int f = 0, n = la_field_count(); f < n; f++) {
        const int id = field_param(f);
        if (!in_list(legend_order, NLEGEND, id) && !rules[id].silent)
            append_one(r, f, mask, sep, buf, cap);
    }
}

unsigned la_fields_varying(const struct la_row *rows, const size_t *sel, size_t ns, unsigned mask)
{
    unsigned v = 0;
    for (int f = 0, n = la_field_count(); f < n; f++) {
        if (!(mask & LA_FIELD_BIT(f)))
            continue;
        const struct la_row *first = NULL;
        for (size_t i = 0; i < ns && !(v & LA_FIELD_BIT(f)); i++) {
            const struct la_row *r = &rows[sel[i]];
            if (!la_field_applies(r, f))
                continue;
            if (!first)
                first = r;
            else if (!la_field_eq(first, r, f))
                v |= LA_FIELD_BIT(f);
        }
    }
    return v;
}

int la_fields_same_except(const struct la_row *a, const struct la_row *b, unsigned skip)
{
    for (int f = 0, n = la_field_count(); f < n; f++)
        if (!(skip & LA_FIELD_BIT(f)) && !la_field_eq(a, b, f))
            return 0;
    return 1;
}

int la_fields_cmp_curve(const struct la_row *a, const struct la_row *b)
{
    int sa = la_row_is_softmax(a), sb = la_row_is_softmax(b), c;
    if (sa != sb)
        return sb - sa;
    for (int f = 0, n = la_field_count(); f < n; f++)
        if ((c = la_field_cmp(a, b, f)))
            return c;
    return 0;
}

int la_fields_cmp_panel(const struct la_row *a, const struct la_row *b)
{
    int c;
    for (int f = 0, n = la_field_count(); f < n; f++)
        if (!get(f).series && (c = la_field_cmp(a, b, f)))
            return c;
    return 0;
}

int la_field_rank(const struct la_row *rows, const size_t *sel, size_t ns, int f,
                  const struct la_row *rep)
{
    int rank = 0;
    for (size_t i = 0; i < ns; i++) {
        const struct la_row *r = &rows[sel[i]];
        if (la_field_cmp(r, rep, f) >= 0)
            continue;
        size_t j;
        for (j = 0; j < i; j++)
            if (la_field_eq(&rows[sel[j]], r, f))
                break;
        rank += j == i;
    }
    return rank;
}
