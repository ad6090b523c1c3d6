/* status.c — error recording (la_fail), status names, exit codes and "did you mean" hints.
 * It holds no global state; tests: tests/cli_errors.sh exercises the messages end to end.
 */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int la_fail(struct la_error *err, int status, const char *src_file, int src_line,
            const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->status = status;
        err->src_file = src_file;
        err->src_line = src_line;
    }
    return status;
}

void la_error_clear(struct la_error *err)
{
    if (!err)
        return;
    err->status = LA_OK;
    err->msg[0] = '\0';
    err->src_file = NULL;
    err->src_line = 0;
}

const char *la_status_name(int status)
{
    switch (status) {
    case LA_OK: return "OK";
    case LA_EINVAL: return "EINVAL";
    case LA_ENOMEM: return "ENOMEM";
    case LA_EIO: return "EIO";
    case LA_EFORMAT: return "EFORMAT";
    case LA_ENAME: return "ENAME";
    case LA_ENUMERIC: return "ENUMERIC";
    case LA_EINTR: return "EINTR";
    default: return "EINTERNAL";
    }
}

int la_exit_code(int status)
{
    switch (status) {
    case LA_OK: return 0;
    case LA_EINVAL:
    case LA_EIO:
    case LA_EFORMAT:
    case LA_ENAME:
    case LA_ENOMEM: /* a size whose workspace cannot be allocated is a user error too */
        return 2;
    default: return 1;
    }
}

const char *la_join_names(char *buf, size_t cap, const char *const *names, size_t n)
{
    size_t used = 0;
    if (cap == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < n && names[i]; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    return buf;
}

/* Levenshtein distance, bounded to short words (names and keys are short). */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return 64;
    size_t prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

const char *la_did_you_mean(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n && names[i]; i++) {
        size_t dist = edit_distance(word, names[i]);
        if (dist < best_d) {
            best_d = dist;
            best = names[i];
        }
    }
    /* Close enough: at most a third of the word's letters changed (and at least one allowed). */
    size_t len = strlen(word);
    size_t limit = len / 3 > 0 ? len / 3 : 1;
    return best_d <= limit ? best : NULL;
}

const char *la_choices_msg(char *buf, size_t cap, const char *word, const char *const *names,
                           size_t n, const char *label)
{
    if (cap == 0)
        return buf;
    const char *hint = word ? la_did_you_mean(word, names, n) : NULL;
    int w = hint ? snprintf(buf, cap, " (did you mean '%s'?); %s: ", hint, label)
                 : snprintf(buf, cap, "; %s: ", label);
    if (w < 0 || (size_t)w >= cap)
        return buf;
    if (n == 0 || !names[0])
        snprintf(buf + w, cap - (size_t)w, "none");
    else
        la_join_names(buf + w, cap - (size_t)w, names, n);
    return buf;
}
