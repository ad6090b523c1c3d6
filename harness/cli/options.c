/* options.c — the table-driven option parser and help printer of options.h.
 * Two passes over argv: the first only looks for -h/--help among the options (so help wins over
 * any mistake elsewhere on the line); the second converts and stores the values, stopping at
 * the first error.  Messages are built here, one line each, and printed with the command's
 * prefix.  Tests: tests/test_options.c.
 */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"

#define HELP_WIDTH 100 /* the longest line of the help (.clang-format's column limit) */
#define LEFT_MAX 30    /* an option column wider than this puts its help on the next line */
#define MSG_CAP 4096

static int at_end(const struct la_option *o)
{
    return o->kind == LA_OPTK_END;
}

static int takes_value(const struct la_option *o)
{
    return o->kind != LA_OPTK_FLAG;
}

/* The row for "--name" (len characters of name), or NULL. */
static const struct la_option *find_long(const struct la_option *opts, const char *name, size_t len)
{
    for (const struct la_option *o = opts; !at_end(o); o++)
        if (o->name && strlen(o->name) == len && !strncmp(o->name, name, len))
            return o;
    return NULL;
}

static const struct la_option *find_short(const struct la_option *opts, char c)
{
    for (const struct la_option *o = opts; !at_end(o); o++)
        if (o->short_name && o->short_name == c)
            return o;
    return NULL;
}

/* -h and --help: reserved for the help in every table. */
static int is_help(const char *a)
{
    return !strcmp(a, "--help") || !strcmp(a, "-h");
}

/* ---- values ------------------------------------------------------------------------------- */

/* A strict integer: the whole string, decimal, no leading space, inside [lo, hi]. */
static int parse_integer(const char *s, long long lo, long long hi, long long *out)
{
    if (!*s || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    const long long v = strtoll(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "a number in [lo, hi]", "a number > lo", "a finite number", ... */
static void real_range(const struct la_option *o, char *buf, size_t cap)
{
    const int open = (o->flags & LA_OPT_ABOVE_MIN) != 0;
    const int has_lo = isfinite(o->min), has_hi = isfinite(o->max);
    if (has_lo && has_hi)
        snprintf(buf, cap, "a number in %c%.10g, %.10g]", open ? '(' : '[', o->min, o->max);
    else if (has_lo)
        snprintf(buf, cap, "a number %s %.10g", open ? ">" : ">=", o->min);
    else if (has_hi)
        snprintf(buf, cap, "a number <= %.10g", o->max);
    else
        snprintf(buf, cap, "a finite number");
}

/* Converts value for row o into its target; 0, or -1 with msg filled.  label: the option as
 * the user spelled it. */
static int store(const struct la_option *o, const char *label, const char *value, char *msg,
                 size_t cap)
{
    long long i;
    switch (o->kind) {
    case LA_OPTK_INT:
    case LA_OPTK_INT64:
        if (parse_integer(value, o->imin, o->imax, &i)) {
            snprintf(msg, cap, "%s expects an integer in %lld..%lld, got '%s'", label, o->imin,
                     o->imax, value);
            return -1;
        }
        if (o->kind == LA_OPTK_INT)
            *(int *)o->target = (int)i;
        else
            *(long long *)o->target = i;
        return 0;
    case LA_OPTK_REAL: {
        char *end;
        errno = 0;
        const double x = strtod(value, &end);
        const int ok = *value && !isspace((unsigned char)*value) && !*end && errno == 0 &&
                       isfinite(x) && x <= o->max &&
                       ((o->flags & LA_OPT_ABOVE_MIN) ? x > o->min : x >= o->min);
        if (!ok) {
            char range[96];
            real_range(o, range, sizeof range);
            snprintf(msg, cap, "%s expects %s, got '%s'", label, range, value);
            return -1;
        }
        *(double *)o->target = x;
        return 0;
    }
    case LA_OPTK_STRING:
        *(const char **)o->target = value;
        return 0;
    case LA_OPTK_CHOICE:
        for (size_t k = 0; o->choices[k]; k++)
            if (!strcmp(value, o->choices[k])) {
                *(int *)o->target = (int)k;
                return 0;
            }
        {
            char list[MSG_CAP / 2];
            snprintf(msg, cap, "%s '%s' is unknown%s", label, value,
                     la_choices_msg(list, sizeof list, value, o->choices, SIZE_MAX, "valid"));
        }
        return -1;
    case LA_OPTK_CALLBACK:
        msg[0] = '\0';
        return o->fn(o, value, msg, cap) ? -1 : 0;
    case LA_OPTK_FLAG:
    case LA_OPTK_END:
        break;
    }
    snprintf(msg, cap, "%s: a row of kind %d takes no value (options.h)", label, (int)o->kind);
    return -1;
}

int la_opt_store(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    char label[64];
    if (opt->name)
        snprintf(label, sizeof label, "--%.60s", opt->name);
    else
        snprintf(label, sizeof label, "-%c", opt->short_name);
    return store(opt, label, value, msg, cap) ? 1 : 0;
}

/* "unknown option 'X' (did you mean 'Y'?); valid options: ..." into msg. */
static void unknown_option(const struct la_option *opts, const char *word, size_t len, char *msg,
                           size_t cap)
{
    size_t n = 1;
    for (const struct la_option *o = opts; !at_end(o); o++)
        n += !!o->name + !!o->short_name;
    const char **names = malloc((n + 1) * sizeof *names);
    char *buf = malloc(n * 48 + 2);
    char *list = malloc(MSG_CAP);
    if (!names || !buf || !list) {
        snprintf(msg, cap, "unknown option '%.*s'", (int)len, word);
        free(names), free(buf), free(list);
        return;
    }
    size_t k = 0, used = 0;
    for (const struct la_option *o = opts; !at_end(o); o++) {
        if (o->flags & LA_OPT_HIDDEN)
            continue;
        if (o->name) {
            names[k++] = buf + used;
            used += (size_t)snprintf(buf + used, 48, "--%.40s", o->name) + 1;
        }
        if (o->short_name) {
            names[k++] = buf + used;
            used += (size_t)snprintf(buf + used, 48, "-%c", o->short_name) + 1;
        }
    }
    names[k++] = "--help";
    names[k] = NULL;
    char spelled[64];
    snprintf(spelled, sizeof spelled, "%.*s", (int)(len < 63 ? len : 63), word);
    snprintf(msg, cap, "unknown option '%s'%s", spelled,
             la_choices_msg(list, MSG_CAP, spelled, names, k, "valid options"));
    free(names), free(buf), free(list);
}

/* ---- the parser ----------------------------------------------------------------------------- */

/* One walk over argv.  dry: only says whether -h/--help is among the options (1) or not (0),
 * touching nothing.  Otherwise stores values, marks the rows given in seen[] and collects the
 * positionals, returning LA_OPT_GO, or 2 with msg filled (left empty when a callback printed
 * its own line). */
static int walk(const struct la_command *cmd, int argc, char **argv, int *nargs, int dry,
                unsigned char *seen, char *msg, size_t cap)
{
    const struct la_option *opts = cmd->opts;
    int npos = 0, after_dashes = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (after_dashes || a[0] != '-' || a[1] == '\0') {
            if (dry)
                continue;
            if (!cmd->args) {
                snprintf(msg, cap, "unexpected argument '%s'", a);
                return 2;
            }
            argv[npos++] = a; /* npos < i: that slot has been read already */
            continue;
        }
        if (!strcmp(a, "--")) {
            after_dashes = 1;
            continue;
        }
        if (is_help(a)) {
            if (dry)
                return 1;
            continue;
        }
        const struct la_option *o;
        const char *value = NULL; /* given inside the argument: --name=value, -xvalue */
        size_t len;               /* of the option's name as spelled, dashes included */
        if (a[1] == '-') {
            const char *eq = strchr(a + 2, '=');
            len = eq ? (size_t)(eq - a) : strlen(a);
            o = find_long(opts, a + 2, len - 2);
            if (o && eq)
                value = eq + 1;
        } else {
            len = 2;
            o = find_short(opts, a[1]);
            if (o && a[2]) {
                if (takes_value(o))
                    value = a + 2;
                else /* "-qx": no bundling of short flags */
                    o = NULL, len = strlen(a);
            }
        }
        if (dry) {
            if (o && takes_value(o) && !value)
                i++; /* its value, whatever it looks like */
            continue;
        }
        if (!o) {
            unknown_option(opts, a, len, msg, cap);
            return 2;
        }
        seen[o - opts] = 1;
        char label[64];
        snprintf(label, sizeof label, "%.*s", (int)(len < 63 ? len : 63), a);
        if (!takes_value(o)) {
            if (value) {
                snprintf(msg, cap, "%s takes no value", label);
                return 2;
            }
            *(int *)o->target = 1;
            continue;
        }
        if (!value) {
            if (i + 1 >= argc) {
                snprintf(msg, cap, "%s needs a value", label);
                return 2;
            }
            value = argv[++i];
        }
        if (store(o, label, value, msg, cap))
            return 2;
    }
    if (dry)
        return 0;
    *nargs = npos;
    return LA_OPT_GO;
}

/* Appends " ARG" to an option that takes a value: its argname, else its choices "a|b|c". */
static void append_arg(const struct la_option *o, char *buf, size_t cap, int w)
{
    if (!takes_value(o) || w < 0 || (size_t)w >= cap)
        return;
    if (o->argname || !o->choices) {
        snprintf(buf + w, cap - (size_t)w, " %s", o->argname ? o->argname : "VALUE");
        return;
    }
    for (size_t k = 0; o->choices[k] && (size_t)w < cap; k++)
        w += snprintf(buf + w, cap - (size_t)w, "%c%s", k ? '|' : ' ', o->choices[k]);
}

/* "-o FILE", "--name N", "--flag": an option as the usage line and the required-option message
 * show it (short when it takes a value and has a short form, so the usage line stays short; a
 * flag by its long name, which says what it does). */
static void opt_usage(const struct la_option *o, char *buf, size_t cap)
{
    const int use_short = o->short_name && (takes_value(o) || !o->name);
    append_arg(o, buf, cap,
               use_short ? snprintf(buf, cap, "-%c", o->short_name)
                         : snprintf(buf, cap, "--%s", o->name));
}

int la_opt_parse_to(const struct la_command *cmd, int argc, char **argv, int *nargs, FILE *out,
                    FILE *err)
{
    size_t nrows = 0;
    while (!at_end(&cmd->opts[nrows]))
        nrows++;
    char *msg = malloc(MSG_CAP);
    unsigned char *seen = calloc(nrows + 1, 1);
    int rc = 2;
    if (!msg || !seen) {
        fprintf(err, "%s: out of memory\n", cmd->prog);
        goto done;
    }
    msg[0] = '\0';
    if (walk(cmd, argc, argv, nargs, 1, NULL, msg, MSG_CAP) == 1) {
        la_opt_help(out, cmd);
        rc = 0;
        goto done;
    }
    rc = walk(cmd, argc, argv, nargs, 0, seen, msg, MSG_CAP);
    for (size_t k = 0; rc == LA_OPT_GO && k < nrows; k++)
        if ((cmd->opts[k].flags & LA_OPT_REQUIRED) && !seen[k]) {
            char u[96];
            opt_usage(&cmd->opts[k], u, sizeof u);
            snprintf(msg, MSG_CAP, "%s is required", u);
            rc = 2;
        }
    if (rc == 2 && msg[0])
        fprintf(err, "%s: %s\n", cmd->prog, msg);
done:
    free(msg);
    free(seen);
    return rc;
}

int la_opt_parse(const struct la_command *cmd, int argc, char **argv, int *nargs)
{
    return la_opt_parse_to(cmd, argc, argv, nargs, stdout, stderr);
}

/* ---- help ----------------------------------------------------------------------------------- */

/* The usage line of one form: "PROG ARGS [-o FILE] [--name N] ...", wrapped before HELP_WIDTH
 * with continuation lines indented under the first option.  lead: "usage: " or its indent. */
static void usage_line(FILE *out, const struct la_command *cmd, const char *lead)
{
    int col = fprintf(out, "%s%s", lead, cmd->prog);
    if (cmd->args && cmd->args[0])
        col += fprintf(out, " %s", cmd->args);
    const int indent = (int)(strlen(lead) + strlen(cmd->prog)) + 1;
    for (const struct la_option *o = cmd->opts; !at_end(o); o++) {
        if (o->flags & LA_OPT_HIDDEN)
            continue;
        char u[256];
        opt_usage(o, u, sizeof u);
        const int req = (o->flags & LA_OPT_REQUIRED) != 0;
        const int w = (int)strlen(u) + (req ? 0 : 2);
        if (col + 1 + w > HELP_WIDTH && col > indent) {
            fprintf(out, "\n%*s", indent - 1, "");
            col = indent - 1;
        }
        col += fprintf(out, req ? " %s" : " [%s]", u);
    }
    fputc('\n', out);
}

/* text from column col to HELP_WIDTH, words wrapped, continuation lines starting at col, and
 * a newline at the end; an explicit '\n' starts a new line (at col too, keeping the spaces that
 * follow it).  The cursor is at col when called. */
static void wrapped(FILE *out, const char *text, int col)
{
    int x = col;
    for (const char *p = text; *p;) {
        if (*p == '\n' && p[1] == '\0')
            break;
        if (*p == '\n') {
            fprintf(out, "\n%*s", col, "");
            x = col;
            p++;
            continue;
        }
        const size_t spaces = strspn(p, " ");
        const char *word = p + spaces;
        const size_t wl = strcspn(word, " \n");
        if (x > col && x + (int)(spaces + wl) > HELP_WIDTH) {
            fprintf(out, "\n%*s", col, "");
            x = col;
        } else if (x > col || spaces) {
            x += fprintf(out, "%*s", (int)spaces, "");
        }
        x += fprintf(out, "%.*s", (int)wl, word);
        p = word + wl;
    }
    fputc('\n', out);
}

/* "-o, --output FILE", "--name N", "-o FILE": an option in the left column of the help. */
static void opt_left(const struct la_option *o, char *buf, size_t cap)
{
    append_arg(o, buf, cap,
               o->short_name && o->name ? snprintf(buf, cap, "-%c, --%s", o->short_name, o->name)
               : o->name                ? snprintf(buf, cap, "--%s", o->name)
                                        : snprintf(buf, cap, "-%c", o->short_name));
}

static void options_table(FILE *out, const struct la_option *opts)
{
    char left[256];
    int width = (int)strlen("-h, --help");
    for (const struct la_option *o = opts; !at_end(o); o++) {
        if (o->flags & LA_OPT_HIDDEN)
            continue;
        opt_left(o, left, sizeof left);
        const int w = (int)strlen(left);
        if (w <= LEFT_MAX && w > width)
            width = w;
    }
    const int col = 2 + width + 2;
    for (const struct la_option *o = opts; !at_end(o); o++) {
        if (o->flags & LA_OPT_HIDDEN)
            continue;
        opt_left(o, left, sizeof left);
        int x = fprintf(out, "  %s", left);
        if (x + 2 > col) {
            fprintf(out, "\n%*s", col, "");
        } else {
            fprintf(out, "%*s", col - x, "");
        }
        wrapped(out, o->help ? o->help : "", col);
    }
    fprintf(out, "  %-*s  ", width, "-h, --help");
    wrapped(out, "this text", col);
}

void la_opt_help(FILE *out, const struct la_command *cmd)
{
    const struct la_command *alone[2] = {cmd, NULL};
    const struct la_command *const *forms = cmd->forms ? cmd->forms : alone;
    for (size_t f = 0; forms[f]; f++)
        usage_line(out, forms[f], f ? "       " : "usage: ");
    for (size_t f = 0; forms[f]; f++) {
        if (forms[f]->intro) {
            fputc('\n', out);
            wrapped(out, forms[f]->intro, 0);
        }
        fputc('\n', out);
        options_table(out, forms[f]->opts);
        if (forms[f]->outro) {
            fputc('\n', out);
            wrapped(out, forms[f]->outro, 0);
        }
    }
}
