/* experiment_yaml.c — helpers of the experiment loader for walking a libfyaml document (see
 * experiment_yaml.h).  libfyaml does all the parsing; this file captures its diagnostics into
 * one "FILE:LINE:COL: message" line (nothing is printed), finds node positions, and reads
 * typed scalars with messages that name the key and the position.
 *
 * Positions: libfyaml 0.7 exposes marks only on tokens, so a scalar is located by its token and
 * a collection by the first scalar inside it (or by the key it is the value of).  Marks are
 * 0-based; messages print 1-based lines and columns like every compiler.
 * Not here: the schema (experiment.c).  Tests: tests/test_experiment.c.
 */
#include "experiment_yaml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "params.h"

/* Walks every node once, refusing aliases (they would let a small file expand into a huge
 * one) and tags (a file that says !!str 3 means something this loader would not honour). */
static int check_plain_yaml(const struct ly *y, struct fy_node *n, int depth)
{
    if (!n)
        return LA_OK;
    if (depth > 200)
        return LY_FAIL(y, n, NULL, LA_EINVAL, "YAML nested too deeply");
    if (fy_node_is_alias(n))
        return LY_FAIL(y, n, NULL, LA_EINVAL,
                       "YAML aliases (*name) are not supported in experiment files");
    size_t tlen = 0;
    if (fy_node_get_tag(n, &tlen))
        return LY_FAIL(y, n, NULL, LA_EINVAL,
                       "YAML tags (!tag) are not supported in experiment files");
    void *it = NULL;
    if (ly_is_seq(n)) {
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(n, &it))) {
            int st = check_plain_yaml(y, item, depth + 1);
            if (st != LA_OK)
                return st;
        }
    } else if (ly_is_map(n)) {
        struct fy_node_pair *p;
        while ((p = fy_node_mapping_iterate(n, &it))) {
            int st = check_plain_yaml(y, fy_node_pair_key(p), depth + 1);
            if (st == LA_OK)
                st = check_plain_yaml(y, fy_node_pair_value(p), depth + 1);
            if (st != LA_OK)
                return st;
        }
    }
    return LA_OK;
}

/* Formats libfyaml's first collected error (its line and column are 1-based already). */
static int syntax_error(const struct ly *y)
{
    void *it = NULL;
    struct fy_diag_error *e;
    while ((e = fy_diag_errors_iterate(y->diag, &it))) {
        if (e->type < FYET_ERROR)
            continue;
        int line = e->line > 0 ? e->line : 1, col = e->column > 0 ? e->column : 1;
        char msg[LA_ERRMSG_MAX / 2];
        snprintf(msg, sizeof msg, "%s", e->msg ? e->msg : "syntax error");
        for (char *c = msg; *c; c++)
            if ((unsigned char)*c < 0x20)
                *c = ' ';
        return la_fail(y->err, LA_EINVAL, __FILE__, __LINE__, "%s:%d:%d: YAML syntax error: %s",
                       y->origin, line, col, msg);
    }
    return la_fail(y->err, LA_EINVAL, __FILE__, __LINE__, "%s:1:1: YAML syntax error", y->origin);
}

/* Length of the UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or code points above
 * U+10FFFF), 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    if (s[0] < 0x80)
        return 1;
    size_t len = s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3 : s[0] >= 0xC2 ? 2 : 0;
    if (len == 0 || len > n || s[0] > 0xF4)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((s[0] == 0xE0 && s[1] < 0xA0) || (s[0] == 0xED && s[1] >= 0xA0) ||
        (s[0] == 0xF0 && s[1] < 0x90) || (s[0] == 0xF4 && s[1] >= 0x90))
        return 0;
    return len;
}

/* The text must be UTF-8 without NUL bytes before libfyaml sees it: YAML requires it, and
 * libfyaml 0.7.12 loops forever on some invalid bytes (e.g. inside a %directive). */
static int check_text(const struct ly *y, const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    int line = 1, col = 1;
    for (size_t i = 0; i < len;) {
        size_t n = s[i] ? utf8_len(s + i, len - i) : 0;
        if (n == 0)
            return la_fail(y->err, LA_EINVAL, __FILE__, __LINE__,
                           "%s:%d:%d: %s (byte 0x%02x); experiment files are UTF-8 text", y->origin,
                           line, col, s[i] ? "invalid UTF-8" : "a NUL byte", s[i]);
        if (s[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return LA_OK;
}

int ly_open(struct ly *y, const char *origin, const char *text, size_t len, struct la_error *err)
{
    memset(y, 0, sizeof *y);
    y->origin = origin && *origin ? origin : "<string>";
    y->err = err;
    int tst = check_text(y, text, len);
    if (tst != LA_OK)
        return tst;

    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL; /* with output_fn NULL too and errors collected, nothing is printed */
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    y->diag = fy_diag_create(&dcfg);
    if (!y->diag)
        return LA_FAIL(err, LA_ENOMEM, "%s:1:1: out of memory creating the YAML parser", y->origin);
    fy_diag_set_collect_errors(y->diag, true);

    struct fy_parse_cfg pcfg;
    memset(&pcfg, 0, sizeof pcfg);
    pcfg.flags = FYPCF_QUIET;
    pcfg.diag = y->diag;
    y->fyp = fy_parser_create(&pcfg);
    if (!y->fyp) {
        ly_close(y);
        return LA_FAIL(err, LA_ENOMEM, "%s:1:1: out of memory creating the YAML parser", y->origin);
    }
    if (fy_parser_set_string(y->fyp, text, len) != 0) {
        ly_close(y);
        return LA_FAIL(err, LA_ENOMEM, "%s:1:1: cannot hand the text to the YAML parser",
                       y->origin);
    }
    y->doc = fy_parse_load_document(y->fyp);
    if (fy_diag_got_error(y->diag) || (!y->doc && fy_parser_get_stream_error(y->fyp))) {
        int st = syntax_error(y);
        ly_close(y);
        return st;
    }
    if (y->doc) {
        /* A second document would be silently ignored; refuse it instead. */
        struct fy_document *more = fy_parse_load_document(y->fyp);
        if (more || fy_diag_got_error(y->diag)) {
            int st;
            if (more) {
                int line = 1, col = 1;
                struct fy_document_state *ds = fy_document_get_document_state(more);
                const struct fy_mark *mk = ds ? fy_document_state_start_mark(ds) : NULL;
                if (mk) {
                    line = mk->line + 1;
                    col = mk->column + 1;
                }
                fy_parse_document_destroy(y->fyp, more);
                st = la_fail(err, LA_EINVAL, __FILE__, __LINE__,
                             "%s:%d:%d: a second YAML document; an experiment file holds one",
                             y->origin, line, col);
            } else {
                st = syntax_error(y);
            }
            ly_close(y);
            return st;
        }
        int st = check_plain_yaml(y, fy_document_root(y->doc), 0);
        if (st != LA_OK) {
            ly_close(y);
            return st;
        }
    }
    return LA_OK;
}

void ly_close(struct ly *y)
{
    if (y->doc)
        fy_parse_document_destroy(y->fyp, y->doc);
    if (y->fyp)
        fy_parser_destroy(y->fyp);
    if (y->diag)
        fy_diag_destroy(y->diag);
    y->doc = NULL;
    y->fyp = NULL;
    y->diag = NULL;
}

struct fy_node *ly_root(const struct ly *y)
{
    return y->doc ? fy_document_root(y->doc) : NULL;
}

/* Position of the first scalar token at or inside n; 0 when there is none. */
static int token_pos(struct fy_node *n, int *line, int *col)
{
    for (int depth = 0; n && depth < 256; depth++) {
        if (fy_node_get_type(n) == FYNT_SCALAR) {
            struct fy_token *t = fy_node_get_scalar_token(n);
            const struct fy_mark *mk = t ? fy_token_start_mark(t) : NULL;
            if (!mk)
                return 0;
            *line = mk->line + 1;
            *col = mk->column + 1;
            return 1;
        }
        void *it = NULL;
        if (fy_node_get_type(n) == FYNT_SEQUENCE) {
            n = fy_node_sequence_iterate(n, &it);
        } else {
            struct fy_node_pair *p = fy_node_mapping_iterate(n, &it);
            n = p ? fy_node_pair_key(p) : NULL;
        }
    }
    return 0;
}

void ly_where(struct fy_node *n, struct fy_node *fallback, int *line, int *col)
{
    *line = 1;
    *col = 1;
    if (token_pos(n, line, col))
        return;
    token_pos(fallback, line, col);
}

int ly_fail(const struct ly *y, struct fy_node *n, struct fy_node *fallback, int status,
            const char *src_file, int src_line, const char *fmt, ...)
{
    char msg[LA_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *c = msg; *c; c++)
        if ((unsigned char)*c < 0x20)
            *c = ' ';
    int line, col;
    ly_where(n, fallback, &line, &col);
    return la_fail(y->err, status, src_file, src_line, "%s:%d:%d: %s", y->origin, line, col, msg);
}

int ly_is_scalar(struct fy_node *n)
{
    return n && fy_node_get_type(n) == FYNT_SCALAR && !fy_node_is_alias(n);
}

int ly_is_map(struct fy_node *n)
{
    return n && fy_node_get_type(n) == FYNT_MAPPING;
}

int ly_is_seq(struct fy_node *n)
{
    return n && fy_node_get_type(n) == FYNT_SEQUENCE;
}

int ly_is_null(struct fy_node *n)
{
    if (!n)
        return 1;
    if (!ly_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN)
        return 0;
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s || len == 0)
        return 1;
    return (len == 1 && s[0] == '~') ||
           (len == 4 && (!memcmp(s, "null", 4) || !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

const char *ly_kind(struct fy_node *n)
{
    if (ly_is_null(n))
        return "an empty value";
    if (ly_is_map(n))
        return "a mapping";
    if (ly_is_seq(n))
        return "a list";
    return "a scalar";
}

const char *ly_show(struct fy_node *n, char *buf, size_t cap)
{
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    if (!ly_is_scalar(n))
        return buf;
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s)
        return buf;
    size_t lim = cap - 1 < 40 ? cap - 1 : 40, o = 0;
    for (size_t i = 0; i < len && o < lim; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[o] = '\0';
    if (len > lim && cap > 4 && o >= 3)
        memcpy(buf + o - 3, "...", 4);
    return buf;
}

/* Copies a scalar's text into buf; 0 if it does not fit or holds a NUL byte. */
static int scalar_copy(struct fy_node *n, char *buf, size_t cap, size_t *lenp)
{
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s || len >= cap || memchr(s, '\0', len))
        return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    return 1;
}

int ly_next_pair(const struct ly *y, struct fy_node *m, void **iter, struct ly_pair *p)
{
    struct fy_node_pair *fp = fy_node_mapping_iterate(m, iter);
    if (!fp)
        return 0;
    p->knode = fy_node_pair_key(fp);
    p->vnode = fy_node_pair_value(fp);
    if (!ly_is_scalar(p->knode) || ly_is_null(p->knode)) {
        LY_FAIL(y, p->knode, p->vnode, LA_EINVAL, "a key must be a plain name, got %s",
                ly_kind(p->knode));
        return -1;
    }
    if (!scalar_copy(p->knode, p->key, sizeof p->key, NULL)) {
        char show[48];
        LY_FAIL(y, p->knode, NULL, LA_EINVAL, "key '%s' is too long to be a valid key",
                ly_show(p->knode, show, sizeof show));
        return -1;
    }
    return 1;
}

int ly_check_keys(const struct ly *y, struct fy_node *m, const char *section,
                  const char *const *valid)
{
    void *it = NULL;
    struct ly_pair p;
    int r;
    size_t nvalid = 0;
    uint64_t seen = 0;
    while (valid[nvalid])
        nvalid++;
    while ((r = ly_next_pair(y, m, &it, &p)) > 0) {
        size_t i;
        for (i = 0; i < nvalid; i++)
            if (!strcmp(p.key, valid[i]))
                break;
        if (i < nvalid) {
            /* libfyaml refuses duplicate keys, but "T" and 'T' are two different scalars. */
            if (i < 64 && (seen >> i & 1))
                return LY_FAIL(y, p.knode, NULL, LA_EINVAL, "key '%s' appears twice in %s", p.key,
                               section);
            if (i < 64)
                seen |= (uint64_t)1 << i;
            continue;
        }
        char msg[640], show[48];
        return LY_FAIL(y, p.knode, NULL, LA_EINVAL, "unknown key '%s' in %s%s",
                       ly_show(p.knode, show, sizeof show), section,
                       la_choices_msg(msg, sizeof msg, p.key, valid, nvalid, "valid keys"));
    }
    return r < 0 ? LA_EINVAL : LA_OK;
}

struct fy_node *ly_get(struct fy_node *m, const char *key, struct fy_node **knode)
{
    if (knode)
        *knode = NULL;
    if (!ly_is_map(m))
        return NULL;
    void *it = NULL;
    struct fy_node_pair *fp;
    size_t klen = strlen(key);
    while ((fp = fy_node_mapping_iterate(m, &it))) {
        struct fy_node *k = fy_node_pair_key(fp);
        if (!ly_is_scalar(k))
            continue;
        size_t len = 0;
        const char *s = fy_node_get_scalar(k, &len);
        if (s && len == klen && !memcmp(s, key, len)) {
            if (knode)
                *knode = k;
            return fy_node_pair_value(fp);
        }
    }
    return NULL;
}

/* Common checks of a scalar value: present, a scalar, and for numbers/booleans unquoted.
 * Copies the text into buf. */
static int value_text(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
                      const char *expected, int plain_only, char *buf, size_t cap)
{
    char show[48];
    if (ly_is_null(n))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected %s, got an empty value", what, expected);
    if (!ly_is_scalar(n))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected %s, got %s", what, expected, ly_kind(n));
    if (plain_only && fy_node_get_style(n) != FYNS_PLAIN)
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected %s, got the quoted string \"%s\"", what,
                       expected, ly_show(n, show, sizeof show));
    if (!scalar_copy(n, buf, cap, NULL))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected %s, got '%s'", what, expected,
                       ly_show(n, show, sizeof show));
    return LA_OK;
}

int ly_int(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
           long long lo, long long hi, long long *out)
{
    char buf[64], show[48];
    int st = value_text(y, n, fb, what, "an integer", 1, buf, sizeof buf);
    if (st != LA_OK)
        return st;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (end == buf || *end || errno) {
        /* 1e4 or 4096.0 are integers too, written as reals. */
        double x;
        if (!la_decimal(buf, &x) || x != floor(x) || fabs(x) > 0x1p53)
            return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected an integer, got '%s'", what,
                           ly_show(n, show, sizeof show));
        v = (long long)x;
    }
    if (v < lo || v > hi)
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s must be in %lld..%lld, got %lld", what, lo, hi, v);
    *out = v;
    return LA_OK;
}

int ly_u64(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
           uint64_t *out)
{
    char buf[64], show[48];
    int st = value_text(y, n, fb, what, "a non-negative integer", 1, buf, sizeof buf);
    if (st != LA_OK)
        return st;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (buf[0] < '0' || buf[0] > '9' || end == buf || *end || errno)
        return LY_FAIL(y, n, fb, LA_EINVAL,
                       "%s: expected a non-negative integer below 2^64, got '%s'", what,
                       ly_show(n, show, sizeof show));
    *out = (uint64_t)v;
    return LA_OK;
}

int ly_real(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what,
            double *out)
{
    char buf[64], show[48];
    int st = value_text(y, n, fb, what, "a number", 1, buf, sizeof buf);
    if (st != LA_OK)
        return st;
    double x;
    if (!la_decimal(buf, &x))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected a number, got '%s'", what,
                       ly_show(n, show, sizeof show));
    *out = x == 0 ? 0.0 : x; /* -0 is 0: one value, one cell key */
    return LA_OK;
}

int ly_bool(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what, int *out)
{
    char buf[16], show[48];
    if (ly_is_scalar(n) && !ly_is_null(n) && fy_node_get_style(n) == FYNS_PLAIN &&
        scalar_copy(n, buf, sizeof buf, NULL)) {
        if (!strcmp(buf, "true") || !strcmp(buf, "True") || !strcmp(buf, "TRUE")) {
            *out = 1;
            return LA_OK;
        }
        if (!strcmp(buf, "false") || !strcmp(buf, "False") || !strcmp(buf, "FALSE")) {
            *out = 0;
            return LA_OK;
        }
    }
    if (ly_is_scalar(n) && !ly_is_null(n))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected true or false, got '%s'", what,
                       ly_show(n, show, sizeof show));
    return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected true or false, got %s", what, ly_kind(n));
}

int ly_str(const struct ly *y, struct fy_node *n, struct fy_node *fb, const char *what, char *buf,
           size_t cap)
{
    char show[48];
    if (ly_is_null(n) || !ly_is_scalar(n))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected a string, got %s", what, ly_kind(n));
    size_t len = 0;
    const char *s = fy_node_get_scalar(n, &len);
    if (!s || len == 0)
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: expected a non-empty string", what);
    if (len >= cap)
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s is too long (%zu characters, at most %zu)", what,
                       len, cap - 1);
    if (memchr(s, '\0', len))
        return LY_FAIL(y, n, fb, LA_EINVAL, "%s: '%s' contains a NUL character", what,
                       ly_show(n, show, sizeof show));
    memcpy(buf, s, len);
    buf[len] = '\0';
    return LA_OK;
}
