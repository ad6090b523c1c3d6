/* fields.h — the legend fields of results rows: the settings that tell one curve, panel or title
 * from another (kernel, map, m, draw, A, causal, chunk, eps, T, d, dv, batch, heads, threads,
 * data, σ, layer, head), and the facts about a row the figures need (is it softmax, which map
 * parameters apply, what its key says).  Used by every figure preparation (curves.c,
 * crossover.c, speedup.c, realheads.c).
 *
 * The fields are the parameters of the schema (harness/experiment/params.c) that have a results
 * column and a legend label: a parameter added there with both is a field, sorted and written
 * after those below, with no edit in fields.c.  A field is a results column (results.h:
 * la_row_column, same name) with how figures treat it:
 *   equality   equal values; three fields have settings that are one setting whatever the
 *              row holds: gerf's A chosen from the data ("A=auto" in the key, the fitted value
 *              in the row), the kernel's default chunk (it changes with m and dv), and σ of
 *              real (h5) inputs (each head's measured RMS, not a setting);
 *   applies    map fields (map, m, draw, A, chunk, eps) only to linear rows; m, draw and A only
 *              to maps whose parameter list has them; chunk only when not the default; σ only
 *              when it is a setting;
 *   text       the schema's label and the value: "m=64", "d=64", "σ=0.5", "iid" (label ""),
 *              and "causal", "T=1K", "2 threads", "layer 3", "head 3" by their own rules; the
 *              map is never written (each curve's colour and key name it);
 *   order      curves sort by causality, d, map, draw, m, A, kernel, dv, σ, T, data, chunk, eps,
 *              batch, heads, threads, layer, head (softmax first); panels by the same order
 *              without the series fields (kernel and the map fields); legend and title text
 *              names m, draw, A, kernel, chunk, eps, causal, d, dv, T, σ, data, layer, head,
 *              batch, heads, threads, in that order.
 * Fields are numbered 0 .. la_field_count() − 1 in the curve order (fields.c); a set of fields
 * is a mask of bits 1 << f (at most 32 fields), written in figure specifications as names
 * ("d sigma T").
 * Not here: which figure uses which field (curves.c and the others).  No I/O.
 * Tests: tests/test_figures.c.
 */
#ifndef LA_FIELDS_H
#define LA_FIELDS_H

#include <stddef.h>

#include "../core/status.h"
#include "../experiment/cell.h"
#include "../store/results.h"

#define LA_FIELD_BIT(f) (1u << (f))

/* Number of fields; every field mask lies within la_fields_all(). */
int la_field_count(void);
unsigned la_fields_all(void);

/* The field called name (its column name), or -1. */
int la_field_find(const char *name);
const char *la_field_name(int f);

/* The mask of space-separated field names ("d sigma T"; NULL or "" is 0).  An unknown name is
 * LA_EINVAL, naming it. */
int la_fields_mask(const char *names, unsigned *mask, struct la_error *err);

/* ---- one field of one or two rows ---- */

int la_field_eq(const struct la_row *a, const struct la_row *b, int f);
/* The value as a number; NaN for a text field (kernel, map, draw, data). */
double la_field_num(const struct la_row *r, int f);
/* <0, 0, >0 in the field's order: text by strcmp, numbers ascending with NaN last, A=auto
 * first. */
int la_field_cmp(const struct la_row *a, const struct la_row *b, int f);
/* The text of a title: "m=64", "causal", "σ=0.5", ... */
void la_field_text(const struct la_row *r, int f, char *buf, size_t cap);
int la_field_applies(const struct la_row *r, int f);

/* ---- sets of fields, over rows ---- */

/* Appends the text of every field of mask that applies to r, in legend order, separated by sep,
 * to the string in buf (truncated at cap). */
void la_fields_append(const struct la_row *r, unsigned mask, const char *sep, char *buf,
                      size_t cap);

/* The fields of mask whose value differs between two selected rows (rows[sel[i]], i < ns) where
 * the field applies. */
unsigned la_fields_varying(const struct la_row *rows, const size_t *sel, size_t ns, unsigned mask);

/* Whether a and b agree on every field not in skip. */
int la_fields_same_except(const struct la_row *a, const struct la_row *b, unsigned skip);

/* The order of curves (softmax rows first, then the field order above) and of panels (the field
 * order without the series fields). */
int la_fields_cmp_curve(const struct la_row *a, const struct la_row *b);
int la_fields_cmp_panel(const struct la_row *a, const struct la_row *b);

/* Number of distinct values of field f among the selected rows that sort below rep's. */
int la_field_rank(const struct la_row *rows, const size_t *sel, size_t ns, int f,
                  const struct la_row *rep);

/* ---- facts about a row ---- */

/* Whether map `name` reads parameter p (a word of its parameter list).  Unknown maps: m and
 * draw, the parameters of the random maps. */
int la_fig_map_reads(const char *name, const char *p);

/* Equality of two settings with NaN as a value (a map without A stores NaN). */
int la_fig_same_real(double a, double b);

/* T for titles: 1234, 1.2K, 1.5M (the scripts label their T axes with powers of two). */
void la_fig_fmt_T(double T, char *buf, size_t cap);

/* "s" unless n is 1: "1 thread", "2 threads". */
const char *la_fig_plural(long long n);

#endif
