/* columns.c — the columns of /runs (results.h) and the canonical form of a row.
 *
 * The column table (name, offset, size and kind of every field of struct la_row, in cell.h's
 * order), the layout hash that tells a journal of another build apart, the canonical form a
 * row takes in the journal, the .h5 and every comparison, the values of columns a file lacks,
 * la_row_is_softmax and la_row_is_step.  Touches no file and no HDF5: memory and the kernel
 * table only.
 * A new column is a field of struct la_row (cell.h) and one COL() entry here.
 * Shared with the other files of harness/store/ through store_impl.h.
 * Test: make build/tests/test_results && build/tests/test_results.
 */
#include "store_impl.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../core/util.h"

/* ---- the column table ----------------------------------------------------------------- */

/* The kind is derived from the field's C type, so the table cannot disagree with cell.h;
 * a char array decays to char * in the controlling expression. */
#define LA_KIND_OF(f)                                                                           \
    _Generic((((struct la_row *)0)->f), int32_t: LA_COL_INT32, int64_t: LA_COL_INT64,          \
             uint64_t: LA_COL_UINT64, double: LA_COL_DOUBLE, char *: LA_COL_STRING)
#define COL(f) {#f, offsetof(struct la_row, f), sizeof(((struct la_row *)0)->f), LA_KIND_OF(f)}

static const struct la_column columns[] = {
    COL(index), COL(key), COL(kernel), COL(map), COL(m), COL(draw), COL(A), COL(causal),
    COL(chunk), COL(eps), COL(pass), COL(nu), COL(beta), COL(gamma), COL(alpha), COL(recur_norm),
    COL(T), COL(d), COL(dv), COL(batch), COL(heads), COL(threads),
    COL(data), COL(sigma), COL(layer), COL(head), COL(trial), COL(seed), COL(weights),
    COL(status), COL(message), COL(host),
    COL(time_median_s), COL(time_min_s), COL(time_max_s), COL(time_p20_s), COL(time_p80_s),
    COL(repeats), COL(flops), COL(gflops), COL(fm_time_median_s), COL(workspace_bytes),
    COL(step_bytes), COL(peak_rss_bytes), COL(bytes), COL(state_bytes),
    COL(err_rows), COL(err_rel_fro), COL(err_max_abs), COL(cos_mean), COL(kl_mean), COL(kl_rows),
    COL(kl_nonpos_frac), COL(kernel_mse), COL(kernel_pairs), COL(n_small_den), COL(err_impl),
    COL(entropy_mean), COL(err_grad),
    COL(model_positions), COL(model_kl), COL(model_kl_max), COL(model_top1), COL(model_ppl),
    COL(model_ppl_softmax),
};
#define N_COLUMNS (sizeof columns / sizeof columns[0])

const struct la_column *la_row_columns(size_t *n)
{
    *n = N_COLUMNS;
    return columns;
}

const struct la_column *la_row_column(const char *name)
{
    for (size_t i = 0; i < N_COLUMNS; i++)
        if (!strcmp(columns[i].name, name))
            return &columns[i];
    return NULL;
}

/* Changes whenever struct la_row or the table changes: a journal of another build is
 * recognised instead of misread. */
uint64_t layout_hash(void)
{
    uint64_t h = LA_FNV1A_SEED;
    for (size_t i = 0; i < N_COLUMNS; i++) {
        char buf[128];
        int w = snprintf(buf, sizeof buf, "%s:%zu:%zu:%d;", columns[i].name, columns[i].offset,
                         columns[i].size, columns[i].kind);
        h = la_fnv1a(buf, (size_t)w, h);
    }
    size_t size = sizeof(struct la_row);
    return la_fnv1a(&size, sizeof size, h);
}

/* ---- rows ----------------------------------------------------------------------------- */

/* Cuts a multi-byte UTF-8 sequence left incomplete at the end of s (a field truncated by the
 * caller's snprintf), so every stored string decodes. */
static void utf8_trim_tail(char *s)
{
    size_t len = strlen(s);
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > 1 && back + 1 < need)
        s[i - 1] = '\0';
}

/* The canonical form of a row: padding zero, strings terminated, valid UTF-8 at the end and
 * zero after their NUL (NUL-padded strings would otherwise carry the caller's stale bytes
 * into h5py).  Journal, .h5 and comparisons all use it. */
void canon_row(struct la_row *dst, const struct la_row *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < N_COLUMNS; i++) {
        const struct la_column *c = &columns[i];
        const char *from = (const char *)src + c->offset;
        char *to = (char *)dst + c->offset;
        if (c->kind == LA_COL_STRING) {
            size_t len = strnlen(from, c->size - 1);
            memcpy(to, from, len);
            utf8_trim_tail(to);
        } else {
            memcpy(to, from, c->size);
        }
    }
}

/* Values a row has where the file lacks a column (a file from an older linattn). */
void row_defaults(struct la_row *row)
{
    memset(row, 0, sizeof *row);
    for (size_t i = 0; i < N_COLUMNS; i++)
        if (columns[i].kind == LA_COL_DOUBLE)
            *(double *)(void *)((char *)row + columns[i].offset) = NAN;
    /* Files without a pass column timed forward passes only. */
    la_copy_text(row->pass, sizeof row->pass, "forward");
}

/* ---- what a row measured ---------------------------------------------------------------- */

int la_row_is_softmax(const struct la_row *r)
{
    const struct attn_kernel *kn = attn_kernel_lookup(r->kernel);
    if (kn)
        return kn->input == ATTN_IN_QK;
    return !r->map[0] || !strcmp(r->map, "none") || !strcmp(r->map, "-");
}

int la_row_is_step(const struct la_row *r)
{
    if (!strcmp(r->data, "model"))
        return 0; /* a model cell names the step kernel its decoder runs; it is no decode cell */
    const struct attn_kernel *kn = attn_kernel_lookup(r->kernel);
    if (kn)
        return kn->op == ATTN_OP_STEP;
    return r->state_bytes > 0.0;
}

double la_row_value(const struct la_row *r, const struct la_column *c)
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
