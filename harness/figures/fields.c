/* fields.c — the legend fields of results rows (fields.h): one table row per field, generic
 * equality, value, order and text by the column's type, and the few fields whose settings need
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

double la_fig_value(const struct la_row *r, const struct la_column *c)
{
    const char *p = (const char *)r + c->offset;
    switch (c->kind) {
    case LA_COL_DOUBLE: {
        double x;
        memcpy(&x, p, sizeof x);
        return x;
    }
    case LA_COL_INT32: {
        int32_t x;
        memcpy(&x, p, sizeof x);
        return x;
    }
    case LA_COL_INT64: {
        int64_t x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    case LA_COL_UINT64: {
        uint64_t x;
        memcpy(&x, p, sizeof x);
        return (double)x;
    }
    }
    return NAN;
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

static void text_A(const struct la_row *r, char *buf, size_t cap)
{
    if (isnan(r->A) || A_auto(r))
        snprintf(buf, cap, "A=auto");
    else
        snprintf(buf, cap, "A=%g", r->A);
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

static void text_causal(const struct la_row *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", r->causal ? "causal" : "non-causal");
}

static void text_T(const struct la_row *r, char *buf, size_t cap)
{
    char t[32];
    la_fig_fmt_T(r->T, t, sizeof t);
    snprintf(buf, cap, "T=%s", t);
}

static void text_threads(const struct la_row *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%d thread%s", (int)r->threads, la_fig_plural(r->threads));
}

static void text_head(const struct la_row *r, char *buf, size_t cap)
{
    if (r->head < 0)
        snprintf(buf, cap, "all heads");
    else
        snprintf(buf, cap, "head %d", (int)r->head);
}

/* ---- the table -------------------------------------------------------------------------- */

/* Scope of a field. */
#define SERIES 1u /* tells linear series apart (kernel, map fields): not a panel field's order */
#define LINEAR 2u /* applies to linear rows only */
#define PARAM 4u  /* applies only when the row's map reads the parameter of this name */

struct field {
    const char *name;   /* the results column */
    size_t offset;      /* offsetof(struct la_row, name) */
    int kind;           /* enum la_col_kind (tests/test_figures.c checks both against columns.c) */
    const char *prefix; /* text: prefix and value ("m=64", "layer 3"); text() instead if set */
    unsigned scope;
    int legend; /* position in legend and title text (1 first); 0: never written */
    int (*same)(const struct la_row *a, const struct la_row *b); /* NULL: equal values */
    int (*cmp)(const struct la_row *a, const struct la_row *b);  /* NULL: by value */
    void (*text)(const struct la_row *r, char *buf, size_t cap); /* NULL: prefix + value */
    int (*applies)(const struct la_row *r); /* NULL: the scope decides; else also this */
};

/* The column's kind from its C type, as columns.c derives it. */
#define KIND_OF(f)                                                                                 \
    _Generic((((struct la_row *)0)->f), int32_t: LA_COL_INT32, int64_t: LA_COL_INT64,         \
             uint64_t: LA_COL_UINT64, double: LA_COL_DOUBLE, char *: LA_COL_STRING)
#define COL(f) #f, offsetof(struct la_row, f), KIND_OF(f)

/* One row per field, in the order curves and panels sort by: the column, the text prefix, the
 * scope, the legend position, then the field's own rules (same, cmp, text, applies) or NULL.  A
 * new setting that should tell curves apart is one row here (its column exists in columns.c). */
static const struct field fields[] = {
    {COL(causal), "", 0, 7, NULL, NULL, text_causal, NULL},
    {COL(d), "d=", 0, 8, NULL, NULL, NULL, NULL},
    {COL(map), "", SERIES | LINEAR, 0, NULL, NULL, NULL, NULL},
    {COL(draw), "", SERIES | LINEAR | PARAM, 2, NULL, NULL, NULL, NULL},
    {COL(m), "m=", SERIES | LINEAR | PARAM, 1, NULL, NULL, NULL, NULL},
    {COL(A), "A=", SERIES | LINEAR | PARAM, 3, same_A, cmp_A, text_A, NULL},
    {COL(kernel), "", SERIES, 4, NULL, NULL, NULL, NULL},
    {COL(dv), "dv=", 0, 9, NULL, NULL, NULL, NULL},
    {COL(sigma), "σ=", 0, 11, same_sigma, NULL, NULL, applies_sigma},
    {COL(T), "T=", 0, 10, NULL, NULL, text_T, NULL},
    {COL(data), "", 0, 12, NULL, NULL, NULL, NULL},
    {COL(chunk), "C=", SERIES | LINEAR, 5, same_chunk, NULL, NULL, applies_chunk},
    {COL(eps), "eps=", SERIES | LINEAR, 6, NULL, NULL, NULL, NULL},
    {COL(batch), "B=", 0, 15, NULL, NULL, NULL, NULL},
    {COL(heads), "H=", 0, 16, NULL, NULL, NULL, NULL},
    {COL(threads), "", 0, 17, NULL, NULL, text_threads, NULL},
    {COL(layer), "layer ", 0, 13, NULL, NULL, NULL, NULL},
    {COL(head), "", 0, 14, NULL, NULL, text_head, NULL},
};
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))
_Static_assert(sizeof fields / sizeof fields[0] <= 32, "field masks are 32-bit");

int la_field_count(void)
{
    return NFIELDS;
}

unsigned la_fields_all(void)
{
    return NFIELDS == 32 ? ~0u : (1u << NFIELDS) - 1;
}

int la_field_find(const char *name)
{
    for (int f = 0; f < NFIELDS; f++)
        if (!strcmp(fields[f].name, name))
            return f;
    return -1;
}

const char *la_field_name(int f)
{
    return f >= 0 && f < NFIELDS ? fields[f].name : NULL;
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
    return la_fig_value(r, &c);
}

int la_field_eq(const struct la_row *a, const struct la_row *b, int f)
{
    const struct field *F = &fields[f];
    if (F->same)
        return F->same(a, b);
    if (F->kind == LA_COL_STRING)
        return !strcmp(text_of(a, F), text_of(b, F));
    return la_fig_same_real(num_of(a, F), num_of(b, F));
}

double la_field_num(const struct la_row *r, int f)
{
    return num_of(r, &fields[f]);
}

int la_field_cmp(const struct la_row *a, const struct la_row *b, int f)
{
    const struct field *F = &fields[f];
    if (F->cmp)
        return F->cmp(a, b);
    if (F->kind == LA_COL_STRING)
        return strcmp(text_of(a, F), text_of(b, F));
    return cmp_num(num_of(a, F), num_of(b, F));
}

void la_field_text(const struct la_row *r, int f, char *buf, size_t cap)
{
    const struct field *F = &fields[f];
    if (F->text)
        F->text(r, buf, cap);
    else if (F->kind == LA_COL_STRING)
        snprintf(buf, cap, "%s%s", F->prefix, text_of(r, F));
    else if (F->kind == LA_COL_DOUBLE)
        snprintf(buf, cap, "%s%g", F->prefix, num_of(r, F));
    else
        snprintf(buf, cap, "%s%d", F->prefix, (int)num_of(r, F));
}

int la_field_applies(const struct la_row *r, int f)
{
    const struct field *F = &fields[f];
    if (F->scope & LINEAR) {
        if (la_row_is_softmax(r))
            return 0;
        if ((F->scope & PARAM) && !la_fig_map_reads(r->map, F->name))
            return 0;
    }
    return F->applies ? F->applies(r) : 1;
}

/* ---- sets of fields ----------------------------------------------------------------------- */

void la_fields_append(const struct la_row *r, unsigned mask, const char *sep, char *buf, size_t cap)
{
    for (int pos = 1; pos <= NFIELDS; pos++)
        for (int f = 0; f < NFIELDS; f++) {
            if (fields[f].legend != pos || !(mask & LA_FIELD_BIT(f)) || !la_field_applies(r, f))
                continue;
            char t[96];
            la_field_text(r, f, t, sizeof t);
            size_t len = strlen(buf);
            if (len + 1 < cap)
                snprintf(buf + len, cap - len, "%s%s", len ? sep : "", t);
        }
}

unsigned la_fields_varying(const struct la_row *rows, const size_t *sel, size_t ns, unsigned mask)
{
    unsigned v = 0;
    for (int f = 0; f < NFIELDS; f++) {
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
    for (int f = 0; f < NFIELDS; f++)
        if (!(skip & LA_FIELD_BIT(f)) && !la_field_eq(a, b, f))
            return 0;
    return 1;
}

int la_fields_cmp_curve(const struct la_row *a, const struct la_row *b)
{
    int sa = la_row_is_softmax(a), sb = la_row_is_softmax(b), c;
    if (sa != sb)
        return sb - sa;
    for (int f = 0; f < NFIELDS; f++)
        if ((c = la_field_cmp(a, b, f)))
            return c;
    return 0;
}

int la_fields_cmp_panel(const struct la_row *a, const struct la_row *b)
{
    int c;
    for (int f = 0; f < NFIELDS; f++)
        if (!(fields[f].scope & SERIES) && (c = la_field_cmp(a, b, f)))
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
