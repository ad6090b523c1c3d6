/* experiment_yaml.h — private helpers of the experiment loader (experiment.c) for walking a
 * libfyaml document: loading one document with every diagnostic captured (never printed),
 * node positions, one-line "FILE:LINE:COL: message" errors, and typed scalar reads.
 *
 * Not a public API: only experiment.c includes it.  It is not a YAML parser either; libfyaml
 * parses, this file only interprets nodes.  Tests: tests/test_experiment.c (through the loader).
 */
#ifndef LA_EXPERIMENT_YAML_H
#define LA_EXPERIMENT_YAML_H

#include <stddef.h>
#include <stdint.h>

#include <libfyaml.h>

#include "../core/status.h"

/* A loaded document and where its errors go. */
struct ly {
    const char *origin;   /* file name used in messages */
    struct la_error *err; /* filled by ly_fail */
    struct fy_diag *diag; /* collects libfyaml's diagnostics instead of printing them */
    struct fy_parser *fyp;
    struct fy_document *doc; /* NULL for an empty stream (no document at all) */
};

/* Parses text (len bytes, kept alive by the caller until ly_close) as exactly one YAML
 * document.  A syntax error, a second document, an alias or a tag becomes one error line.
 * On failure everything is released already. */
int ly_open(struct ly *y, const char *origin, const char *text, size_t len, struct la_error *err);
void ly_close(struct ly *y);

/* The root node (NULL for an empty document). */
struct fy_node *ly_root(const struct ly *y);

/* 1-based position of a node: a scalar's own token; a collection's first scalar inside it;
 * otherwise (NULL, empty or null value) the fallback's position; 1:1 when nothing is known. */
void ly_where(struct fy_node *n, struct fy_node *fallback, int *line, int *col);

/* Records "ORIGIN:LINE:COL: message" (one line: control characters become spaces) into y->err
 * and returns status.  n is the node the message is about, fallback is used when n has no
 * position of its own (usually the key whose value n is). */
int ly_fail(const struct ly *y, struct fy_node *n, struct fy_node *fallback, int status,
            const char *src_file, int src_line, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
#define LY_FAIL(y, n, fb, status, ...)                                                             \
    ly_fail((y), (n), (fb), (status), __FILE__, __LINE__, __VA_ARGS__)

/* Node tests. */
int ly_is_null(struct fy_node *n);   /* NULL, or a plain "", "~", "null", "Null", "NULL" */
int ly_is_scalar(struct fy_node *n); /* a scalar (never an alias: ly_open refuses those) */
int ly_is_map(struct fy_node *n);
int ly_is_seq(struct fy_node *n);
const char *ly_kind(struct fy_node *n); /* "a mapping", "a list", "a string", "an empty value" */

/* A printable excerpt of a scalar for messages (at most 40 characters, control characters
 * replaced, "..." when cut). */
const char *ly_show(struct fy_node *n, char *buf, size_t cap);

/* One key of a mapping: the key's text (keys must be plain scalars), its node and its value. */
struct ly_pair {
    char key[64];
    struct fy_node *knode, *vnode;
};

/* Iterates the pairs of mapping m: returns 1 with *p filled, 0 at the end, or -1 with an error
 * recorded (a key that is not a short scalar).  *iter starts NULL. */
int ly_next_pair(const struct ly *y, struct fy_node *m, void **iter, struct ly_pair *p);

/* Checks every key of mapping m against valid[] (NULL-terminated); an unknown key is LA_EINVAL
 * "unknown key 'X' in SECTION (did you mean 'Y'?); valid keys: ...". */
int ly_check_keys(const struct ly *y, struct fy_node *m, const char *section,
                  const char *const *valid);

/* The value of key in mapping m (NULL if absent); *knode gets the key node when present. */
struct fy_node *ly_get(struct fy_node *m, const char *key, struct fy_node **knode);

/* Typed reads of a scalar value; `what` names it in messages ("'T'", "'from' of 'T'").
 * Numbers and booleans must be plain (unquoted) scalars.  fallback: see ly_fail.
 * ly_int refuses a value outside lo..hi with "WHAT must be in LO..HI, got V". */
int ly_int(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
           long long lo, long long hi, long long *out);
int ly_u64(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
           uint64_t *out);
int ly_real(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
            double *out);
int ly_bool(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what, int *out);
/* Any non-empty scalar (quoted or not), copied into buf; too long for cap is an error. */
int ly_str(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what, char *buf,
           size_t cap);

#endif
