/* cmd_export.c — `linattn export`: a results file's /runs as TSV, for gnuplot, awk, pandas.
 *
 * export prints a header line of column names, then one line per row: integers in decimal,
 * doubles with %.9g ("nan", "inf", "-inf"), strings as stored with tabs and newlines turned
 * into spaces.  --where COL OP VALUE (OP one of = == != < <= > >=) compares numerically for
 * numeric columns (integers exactly, so seeds match) and as strings for string columns;
 * boolean columns (causal) take true/false/yes/no as well as 1/0; a word of the parameter
 * schema stored as a number is that number (head=all).  COL may also be a parameter of the
 * schema (harness/experiment/params.c) that has no column (relu_eps, norm_fixed, weights,
 * ...): its value is read from each row's key and compared as the schema reads it; so is a
 * word kept beside its column's number (A=auto, where the column holds the fitted A).  Several
 * --where are ANDed.
 * A --where COL=VALUE that no row of the file has gets a one-line warning on stderr listing the
 * values COL does have (the header is still printed and the exit code is 0).  It reads through
 * results.c, so a file that a run is still appending to exports too (from the journal when the
 * .h5 is mid-write), and a damaged file is one line that says how to recover it (exit 2), never
 * a crash.
 * Not here: plotting (plots/), the description of a file for people (cmd_info.c).
 * Tests: tests/test_results.c runs it through the binary; tests/cli_small.sh (--where warnings,
 * booleans, parameters read from keys); tests/corrupt_e2e.sh on damaged files.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/status.h"
#include "../experiment/params.h"
#include "../store/results.h"
#include "commands.h"
#include "options.h"

/* ---- columns and parameters ------------------------------------------------------------ */

/* A parameter of the schema that a row holds only in its key (no results column of its own:
 * norm_fixed, relu_eps, weights, ...). */
static int key_only(const struct la_param *p)
{
    return !p->col && (p->flags & (LA_PF_KEY | LA_PF_KEY_IF_SET));
}

/* "unknown column 'x' (did you mean 'y'?); valid columns: a, b, ..." → stderr, exit 2.  With
 * params (--where), the parameters read from the key are valid too: "did you mean" looks at
 * both, and they are listed after the columns. */
static int unknown_column(const char *cmd, const char *name, int params)
{
    size_t n, np = 0;
    const struct la_column *cols = la_row_columns(&n);
    const char **names = malloc((n + LA_NPARAMS + 1) * sizeof *names);
    const size_t cap = (n + LA_NPARAMS) * 40 + 64;
    char *list = malloc(cap);
    if (!names || !list) {
        free(names);
        free(list);
        fprintf(stderr, "linattn %s: unknown column '%s'\n", cmd, name);
        return 2;
    }
    for (size_t i = 0; i < n; i++)
        names[i] = cols[i].name;
    for (size_t i = 0; params && i < LA_NPARAMS; i++)
        if (key_only(&la_params[i]))
            names[n + np++] = la_params[i].name;
    names[n + np] = NULL;
    const char *hint = la_did_you_mean(name, names, n + np);
    fprintf(stderr, "linattn %s: unknown column '%s'", cmd, name);
    if (hint)
        fprintf(stderr, " (did you mean '%s'?)", hint);
    fprintf(stderr, "; valid columns: %s", la_join_names(list, cap, names, n));
    if (np)
        fprintf(stderr, "; parameters read from the key: %s",
                la_join_names(list, cap, names + n, np));
    fputc('\n', stderr);
    free(names);
    free(list);
    return 2;
}

/* ---- --where -------------------------------------------------------------------------- */

enum op { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };

/* One condition.  A results column compares its stored value; a schema parameter without one
 * (and a parameter's word with a flag of its own, A=auto) compares the text of the row's key,
 * read by the schema. */
struct filter {
    const char *name;            /* COL as given */
    const struct la_column *col; /* the column, or NULL: the key */
    const struct la_param *par;  /* the schema's row of COL, or NULL */
    enum op op;
    const char *text; /* the value as given */
    int exact;        /* integer column and integer value: compare as integers */
    int64_t i;
    uint64_t u;
    double x;
    struct la_value val; /* key: the value, read by the schema */
};

/* Columns that hold a boolean as int32 0/1 (the experiment files write them true/false): the
 * schema's boolean parameters. */
static int is_bool_column(const struct filter *f)
{
    return f->par && f->par->type == LA_PT_BOOL;
}

/* true/yes → 1, false/no → 0 (any case); -1 for anything else. */
static int parse_bool_word(const char *s)
{
    static const char *const t[] = {"true", "yes"}, *const f[] = {"false", "no"};
    for (int i = 0; i < 2; i++) {
        if (!strcasecmp(s, t[i]))
            return 1;
        if (!strcasecmp(s, f[i]))
            return 0;
    }
    return -1;
}

static int cmp_result(enum op op, int c) /* c: <0, 0, >0 */
{
    switch (op) {
    case OP_EQ: return c == 0;
    case OP_NE: return c != 0;
    case OP_LT: return c < 0;
    case OP_LE: return c <= 0;
    case OP_GT: return c > 0;
    default: return c >= 0;
    }
}

/* A value of parameter p read from text as a key holds it: a word stored as a number (head=-1)
 * is the word.  LA_OK or the parser's status with msg. */
static int key_value(const struct la_param *p, const char *text, struct la_value *v, char *msg,
                     size_t cap)
{
    const int b = p->type == LA_PT_BOOL ? parse_bool_word(text) : -1;
    if (b >= 0) {
        memset(v, 0, sizeof *v);
        v->i = b;
        return LA_OK;
    }
    const int st = la_param_parse(p, text, LA_PARSE_UNCHECKED | LA_PARSE_RULE, v, msg, cap);
    if (st == LA_OK && p->word && !p->word_off && !v->word && v->i == (long long)p->word_value)
        v->word = 1;
    return st;
}

/* The text of f's parameter in row's key (buf holds LA_KEY_LEN); a field the key does not have
 * (a parameter added after the file was written, or one at its default in a key that leaves
 * defaults out) is the parameter's default. */
static void key_text(const struct filter *f, const struct la_row *row, char *buf, size_t cap)
{
    if (la_key_get(row->key, f->par->name, buf, cap) == LA_OK)
        return;
    struct la_value v;
    la_param_default(f->par, &v);
    la_param_format(f->par, &v, buf, cap);
}

/* Parses "COL OP VALUE" into f; prints the error and returns 2 when it is not one. */
static int parse_where(const char *expr, struct filter *f)
{
    size_t nlen = strspn(expr, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
    const char *p = expr + nlen;
    static const struct { const char *s; enum op op; } ops[] = {
        {"==", OP_EQ}, {"!=", OP_NE}, {"<=", OP_LE}, {">=", OP_GE},
        {"=", OP_EQ},  {"<", OP_LT},  {">", OP_GT},
    };
    size_t k = 0, nops = sizeof ops / sizeof ops[0];
    while (k < nops && strncmp(p, ops[k].s, strlen(ops[k].s)))
        k++;
    if (nlen == 0 || k == nops) {
        fprintf(stderr,
                "linattn export: --where '%s' is not COLUMN OP VALUE (OP: = != < <= > >=), "
                "e.g. --where map=prf --where 'T>=1024'\n",
                expr);
        return 2;
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(nlen < 63 ? nlen : 63), expr);
    memset(f, 0, sizeof *f);
    f->op = ops[k].op;
    f->text = p + strlen(ops[k].s);
    f->col = la_row_column(name);
    f->par = la_param_find(name, 0);
    if (f->par && f->par->col) {
        f->col = la_row_column(f->par->col); /* data's YAML name, source, is the column data */
    } else if (f->par && !key_only(f->par)) {
        /* A measure setting: one value per file.  kl_rows and kernel_pairs are also columns
         * (what a row used), which they then mean. */
        if (!f->col) {
            fprintf(stderr,
                    "linattn export: --where %s: %s is a measure setting, one value for the "
                    "whole file (linattn info shows it), not a column\n",
                    expr, name);
            return 2;
        }
        f->par = NULL;
    }
    if (!f->col && !f->par)
        return unknown_column("export", name, 1);
    f->name = f->col ? f->col->name : f->par->name;
    /* A word: stored as a number in the column (head=all is -1), or as a flag of its own beside
     * it (A=auto: the column holds the fitted A), then read from the key. */
    int word = f->par && f->par->word && !strcmp(f->text, f->par->word);
    if (word && f->par->word_off)
        f->col = NULL;
    if (!f->col) {
        char msg[1280];
        if (key_value(f->par, f->text, &f->val, msg, sizeof msg) != LA_OK) {
            fprintf(stderr, "linattn export: --where %s: %s\n", expr, msg);
            return 2;
        }
        return 0;
    }
    if (word) {
        f->i = (int64_t)f->par->word_value;
        f->exact = 1;
        return 0;
    }
    if (f->col->kind == LA_COL_STRING)
        return 0;
    char *end;
    errno = 0;
    int b = is_bool_column(f) ? parse_bool_word(f->text) : -1;
    if (b >= 0) {
        f->i = b;
        f->exact = 1;
        return 0;
    }
    if (f->col->kind == LA_COL_UINT64 && f->text[0] != '-') {
        f->u = strtoull(f->text, &end, 0);
        f->exact = *f->text && !*end && errno == 0;
    } else if (f->col->kind == LA_COL_INT32 || f->col->kind == LA_COL_INT64) {
        f->i = strtoll(f->text, &end, 0);
        f->exact = *f->text && !*end && errno == 0;
    }
    if (f->exact)
        return 0;
    f->x = strtod(f->text, &end);
    if (!*f->text || *end) {
        if (is_bool_column(f))
            fprintf(stderr,
                    "linattn export: --where %s: column %s is boolean: use true, false, yes, "
                    "no, 1 or 0, not '%s'\n",
                    expr, f->col->name, f->text);
        else
            fprintf(stderr,
                    "linattn export: --where %s: column %s is numeric, '%s' is not a number%s%s\n",
                    expr, f->col->name, f->text, f->par && f->par->word ? " or " : "",
                    f->par && f->par->word ? f->par->word : "");
        return 2;
    }
    return 0;
}

/* A key filter: the row's value of the parameter, read from its key by the schema, against
 * f's: equality as the schema compares values (reals within a relative 1e-12), order by number
 * (names and paths as strings; a word has no order).  A text the schema does not read ("-": a
 * map that does not read the parameter) equals only the same text. */
static int key_pass(const struct filter *f, const struct la_row *row)
{
    const struct la_param *p = f->par;
    char text[LA_KEY_LEN], msg[256];
    struct la_value v;
    key_text(f, row, text, sizeof text);
    if (key_value(p, text, &v, msg, sizeof msg) != LA_OK)
        return (f->op == OP_EQ || f->op == OP_NE) && cmp_result(f->op, strcmp(text, f->text));
    if (f->op == OP_EQ || f->op == OP_NE)
        return cmp_result(f->op, !la_value_eq(p, &v, &f->val));
    if (v.word || f->val.word)
        return 0;
    if (!la_param_numeric(p) && p->type != LA_PT_BOOL && p->type != LA_PT_CHOICE)
        return cmp_result(f->op, strcmp(v.s ? v.s : "", f->val.s ? f->val.s : ""));
    const double a = la_value_num(p, &v), b = la_value_num(p, &f->val);
    return cmp_result(f->op, (a > b) - (a < b));
}

static int filter_pass(const struct filter *f, const struct la_row *row)
{
    if (!f->col)
        return key_pass(f, row);
    const char *p = (const char *)row + f->col->offset;
    if (f->col->kind == LA_COL_STRING)
        return cmp_result(f->op, strcmp(p, f->text));
    if (f->exact && f->col->kind == LA_COL_UINT64) {
        uint64_t v;
        memcpy(&v, p, sizeof v);
        return cmp_result(f->op, (v > f->u) - (v < f->u));
    }
    if (f->exact) {
        int64_t v;
        if (f->col->kind == LA_COL_INT32) {
            int32_t v32;
            memcpy(&v32, p, sizeof v32);
            v = v32;
        } else {
            memcpy(&v, p, sizeof v);
        }
        return cmp_result(f->op, (v > f->i) - (v < f->i));
    }
    double v = la_row_value(row, f->col);
    if (isnan(v) || isnan(f->x)) /* nan = nan holds, so `--where kl_mean=nan` finds them */
        return f->op == OP_EQ ? isnan(v) && isnan(f->x)
                              : f->op == OP_NE ? !(isnan(v) && isnan(f->x)) : 0;
    return cmp_result(f->op, (v > f->x) - (v < f->x));
}

/* ---- printing ------------------------------------------------------------------------- */

static void print_value(FILE *out, const struct la_row *row, const struct la_column *c, int exact)
{
    const char *p = (const char *)row + c->offset;
    int32_t i32;
    int64_t i64;
    uint64_t u64;
    double x;
    switch (c->kind) {
    case LA_COL_INT32: memcpy(&i32, p, sizeof i32); fprintf(out, "%" PRId32, i32); break;
    case LA_COL_INT64: memcpy(&i64, p, sizeof i64); fprintf(out, "%" PRId64, i64); break;
    case LA_COL_UINT64: memcpy(&u64, p, sizeof u64); fprintf(out, "%" PRIu64, u64); break;
    case LA_COL_DOUBLE:
        memcpy(&x, p, sizeof x);
        if (isnan(x))
            fputs("nan", out); /* %g would print "-nan" for some NaNs */
        else
            fprintf(out, exact ? "%.17g" : "%.9g", x); /* %.17g round-trips a double */
        break;
    default:
        /* A tab or newline inside a field would split the row. */
        for (size_t i = 0; i < c->size && p[i]; i++)
            fputc(p[i] == '\t' || p[i] == '\n' || p[i] == '\r' ? ' ' : p[i], out);
        break;
    }
}

/* ---- a --where that matches nothing ---------------------------------------------------- */

/* For COL=VALUE that no row of the file has (a misspelt map, a T that was not run): one warning
 * line on stderr with the values COL does have, the first WARN_LIST distinct ones in file order,
 * each cut to WARN_WIDTH characters.  Other operators select ranges, where no match is no hint
 * of a typo, so they get no warning. */
#define WARN_LIST 12
#define WARN_WIDTH 40

static void warn_unmatched(const char *file, const struct filter *f, const struct la_row *rows,
                           size_t n)
{
    if (f->op != OP_EQ)
        return;
    for (size_t r = 0; r < n; r++)
        if (filter_pass(f, &rows[r]))
            return;
    if (n == 0) {
        fprintf(stderr, "linattn export: warning: no row has %s=%s; %s has no rows\n", f->name,
                f->text, file);
        return;
    }
    char seen[WARN_LIST][LA_KEY_LEN + 64];
    size_t nseen = 0;
    int more = 0;
    for (size_t r = 0; r < n && !more; r++) {
        char buf[sizeof seen[0]] = "";
        if (f->col) {
            FILE *m = fmemopen(buf, sizeof buf - 1, "w");
            if (!m)
                return; /* only a warning: without memory it is left out */
            print_value(m, &rows[r], f->col, 0);
            fclose(m);
        } else {
            key_text(f, &rows[r], buf, sizeof buf);
        }
        size_t k = 0;
        while (k < nseen && strcmp(seen[k], buf))
            k++;
        if (k < nseen)
            continue;
        if (nseen == WARN_LIST)
            more = 1;
        else
            memcpy(seen[nseen++], buf, sizeof buf);
    }
    fprintf(stderr, "linattn export: warning: no row has %s=%s; %s values in %s: ", f->name,
            f->text, f->name, file);
    for (size_t k = 0; k < nseen; k++) {
        int cut = strlen(seen[k]) > WARN_WIDTH;
        fprintf(stderr, "%s%.*s%s", k ? ", " : "", cut ? WARN_WIDTH - 3 : WARN_WIDTH, seen[k],
                cut ? "..." : "");
    }
    fprintf(stderr, "%s\n", more ? ", ..." : "");
}

/* ---- export --------------------------------------------------------------------------- */

static int export_usage_error(const char *fmt, const char *arg)
{
    fputs("linattn export: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (linattn export --help)\n", stderr);
    return 2;
}

/* The --where filters so far (room for one per argument). */
struct filters {
    struct filter *f;
    size_t n;
};

/* --where EXPR: one more filter; parse_where prints its own error. */
static int add_where(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    struct filters *fs = opt->target;
    if (parse_where(value, &fs->f[fs->n]))
        return 1;
    fs->n++;
    return 0;
}

int cmd_export(int argc, char **argv)
{
    const char *file = NULL, *columns_arg = NULL;
    int exact = 0, status_choice = 3;
    static const char *const statuses[] = {"ok", "failed", "interrupted", "all", NULL};
    static const int status_of[] = {LA_ROW_OK, LA_ROW_FAILED, LA_ROW_INTERRUPTED, -1};
    struct filters fs = {calloc((size_t)argc + 1, sizeof *fs.f), 0};
    struct filter *filters = fs.f;
    const struct la_column **sel = NULL;
    struct la_row *rows = NULL;
    int code = 2;
    if (!filters) {
        fprintf(stderr, "linattn export: out of memory\n");
        return 1;
    }
    /* The parameters read from keys, named in the help as the schema has them. */
    const char *key_params[LA_NPARAMS + 1];
    size_t nkp = 0;
    for (size_t i = 0; i < LA_NPARAMS; i++)
        if (key_only(&la_params[i]))
            key_params[nkp++] = la_params[i].name;
    key_params[nkp] = NULL;
    char kp_list[512], where_help[1280];
    snprintf(where_help, sizeof where_help,
             "keep the rows where EXPR holds: COL OP VALUE, OP one of = == != < <= > >=; numeric "
             "columns compare as numbers (integers exactly), string columns as strings; causal "
             "takes true/false (or yes/no, 1/0), head takes all; COL may also be a parameter "
             "without a column (%s), read from each row's key, and A=auto is read from the key "
             "too; repeat to AND several, e.g.\n--where map=prf --where 'T>=1024' --where "
             "causal=true --where A=auto\nCOL=VALUE that no row has: a warning on stderr listing "
             "the values COL has (the header is still printed, exit 0)",
             la_join_names(kp_list, sizeof kp_list, key_params, nkp));
    const struct la_option opts[] = {
        LA_OPT_CALLBACK("where", 0, add_where, &fs, "EXPR", where_help),
        LA_OPT_STRING("columns", 0, &columns_arg, "a,b,c",
                      "print only these columns, in this order (default: all)"),
        LA_OPT_CHOICE("status", 0, &status_choice, statuses, "the rows to print (default: all)"),
        LA_OPT_FLAG("exact", 0, &exact,
                    "doubles with 17 significant digits (%.17g: read back, they give the stored "
                    "double bit for bit)"),
        LA_OPT_END,
    };
    const struct la_command cmd = {
        .prog = "linattn export",
        .args = "FILE.h5",
        .intro = "Prints the rows of a results file as TSV on stdout: a header line of column "
                 "names, then one line per row (doubles with 9 significant digits, NaN as 'nan').",
        .opts = opts,
        .outro = "Column names are the fields of struct la_row (harness/experiment/cell.h); "
                 "results/README.md describes each.  Example: linattn export results/x.h5 "
                 "--columns map,T,time_median_s",
    };
    int nargs;
    code = la_opt_parse(&cmd, argc, argv, &nargs);
    if (code != LA_OPT_GO)
        goto done;
    code = 2;
    const size_t nf = fs.n;
    if (nargs > 1) {
        code = export_usage_error("one results file at a time (got also '%s')", argv[1]);
        goto done;
    }
    if (nargs == 0) {
        code = export_usage_error("%s", "no results file given");
        goto done;
    }
    file = argv[0];
    const int want_status = status_of[status_choice]; /* -1: all */

    /* The selected columns, checked before the file is read. */
    size_t ncols, nsel = 0;
    const struct la_column *cols = la_row_columns(&ncols);
    if (columns_arg) {
        size_t cap = 1;
        for (const char *p = columns_arg; *p; p++)
            cap += *p == ',';
        sel = calloc(cap, sizeof *sel);
        if (!sel) {
            fprintf(stderr, "linattn export: out of memory\n");
            code = 1;
            goto done;
        }
        for (const char *p = columns_arg; *p;) {
            size_t len = strcspn(p, ",");
            char name[64];
            snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
            if (len) {
                const struct la_column *c = la_row_column(name);
                if (!c) {
                    code = unknown_column("export", name, 0);
                    goto done;
                }
                sel[nsel++] = c;
            }
            p += len + (p[len] == ',');
        }
        if (nsel == 0) {
            code = export_usage_error("%s", "--columns lists no column");
            goto done;
        }
    }

    size_t n = 0;
    struct la_error err;
    la_error_clear(&err);
    int rc = la_results_read(file, &rows, &n, &err);
    if (rc) {
        fprintf(stderr, "linattn export: %s\n", err.msg);
        code = la_exit_code(rc);
        goto done;
    }
    for (size_t k = 0; k < nf; k++)
        warn_unmatched(file, &filters[k], rows, n);
    size_t nout = columns_arg ? nsel : ncols;
    for (size_t c = 0; c < nout; c++)
        printf("%s%s", c ? "\t" : "", columns_arg ? sel[c]->name : cols[c].name);
    putchar('\n');
    for (size_t r = 0; r < n; r++) {
        if (want_status >= 0 && rows[r].status != want_status)
            continue;
        int pass = 1;
        for (size_t k = 0; k < nf && pass; k++)
            pass = filter_pass(&filters[k], &rows[r]);
        if (!pass)
            continue;
        for (size_t c = 0; c < nout; c++) {
            if (c)
                putchar('\t');
            print_value(stdout, &rows[r], columns_arg ? sel[c] : &cols[c], exact);
        }
        putchar('\n');
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "linattn export: writing stdout: %s\n", strerror(errno));
        code = 1;
        goto done;
    }
    code = 0;
done:
    free(rows);
    free(sel);
    free(filters);
    return code;
}
