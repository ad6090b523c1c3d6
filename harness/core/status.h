/* status.h — linattn's status codes and the one error-recording function.
 *
 * Every module below main reports failure by returning one of the LA_E* codes and filling a
 * struct la_error through la_fail(); nothing below main() calls exit().  A breakpoint on
 * la_fail catches every error the tool raises.  Exit codes of the CLI are derived here too:
 * user mistakes (bad input, bad file) exit 2, internal or resource failures exit 1.
 */
#ifndef LA_STATUS_H
#define LA_STATUS_H

#include <stddef.h>

enum la_status {
    LA_OK = 0,      /* success */
    LA_EINVAL = 1,  /* an argument or value is out of range or malformed (user error) */
    LA_ENOMEM = 2,  /* an allocation failed (workspace too large for this machine) */
    LA_EIO = 3,     /* a file could not be opened, read or written */
    LA_EFORMAT = 4, /* a file was read but its content is wrong (shape, dtype, magic, NaN) */
    LA_ENAME = 5,   /* an unknown map, kernel or key; the message lists the valid names */
    LA_ENUMERIC = 6,/* a computation produced NaN or Inf */
    LA_EINTERNAL = 7,/* a bug: an invariant did not hold */
    LA_EINTR = 8    /* cancelled: a signal asked the run to stop (timing.h la_cancelled) */
};

#define LA_ERRMSG_MAX 1024

/* An error: the status code, a one-line message, and where in linattn's source it was raised. */
struct la_error {
    int status;
    char msg[LA_ERRMSG_MAX];
    const char *src_file;
    int src_line;
};

/* Records an error into err (which may be NULL) and returns status, so callers can write
 * `return LA_FAIL(err, LA_EINVAL, "T must be >= 1, got %d", T);`. */
int la_fail(struct la_error *err, int status, const char *src_file, int src_line,
            const char *fmt, ...) __attribute__((format(printf, 5, 6)));
#define LA_FAIL(err, status, ...) la_fail((err), (status), __FILE__, __LINE__, __VA_ARGS__)

/* Clears an error record. */
void la_error_clear(struct la_error *err);

/* Name of a status code ("EINVAL", ...). */
const char *la_status_name(int status);

/* The CLI exit code for a status: 0 for LA_OK, 2 for user errors, 1 otherwise. */
int la_exit_code(int status);

/* Appends "a, b, c" (the names array, NULL-terminated or n entries) to buf for "valid choices"
 * messages.  Returns buf. */
const char *la_join_names(char *buf, size_t cap, const char *const *names, size_t n);

/* Suggests the entry of names[] closest to word by edit distance (NULL when nothing is close). */
const char *la_did_you_mean(const char *word, const char *const *names, size_t n);

/* The tail of every "unknown name" message: writes " (did you mean 'Z'?); LABEL: a, b, c" into
 * buf for word among names (n entries, or up to a NULL entry), without the parenthesis when no
 * name is close (or word is NULL) and with "none" for an empty list.  LABEL is e.g. "valid
 * keys", or "valid" for "; valid: a, b".  Returns buf, so it can be a printf argument:
 * "unknown map '%s'%s", word, la_choices_msg(buf, sizeof buf, word, names, n, "valid maps"). */
const char *la_choices_msg(char *buf, size_t cap, const char *word, const char *const *names,
                           size_t n, const char *label);

#endif
