/* options.h — the option tables of the linattn commands, in the style of git's parse-options: a
 * command lists its options as an array of rows (long name, short letter, kind, target, argument
 * name, help), and one parser reads argv against that array and prints `--help` from it.  Every
 * command parses its arguments here (harness/cli/cmd_*.c).
 *
 * What the parser accepts: `--name=value`, `--name value`, `-x value` and `-xvalue`; a flag as
 * `--name` or `-x` (a flag given `=value` is an error; short flags are not bundled); `--` ends
 * the options; every other argument, `-` included, is a positional, kept in order.  The argument
 * after an option that takes a value is its value whatever it looks like, so `--A -0.5` works.  A
 * repeated option is read each time: the last value wins, a flag stays set, a callback runs once
 * per occurrence.  `-h` and `--help` are reserved: anywhere among the options they print the help
 * on stdout and nothing else happens, even when other arguments are wrong.
 * Errors are one line on stderr, "PROG: ...", naming the option, the value given and the valid
 * range or choices; an unknown option gets "did you mean" (la_choices_msg) and the valid ones; a
 * missing LA_OPT_REQUIRED option is named with its argument ("-o FILE is required").
 *
 * Tables may be built at run time (a command can add one row per parameter): the parser only
 * reads the array, up to its LA_OPT_END row.  Targets are usually the command's local variables.
 *
 * Not here: what an option means, defaults, and checks across options (the command's own file).
 * Tests: tests/test_options.c.
 */
#ifndef LA_OPTIONS_H
#define LA_OPTIONS_H

#include <math.h>
#include <stddef.h>
#include <stdio.h>

struct la_option;

/* A callback row's handler: reads value (never NULL) for the option `opt`, whose target is the
 * handler's data.  Returns 0, or nonzero after writing the reason into msg (cap bytes; the parser
 * prints it after "PROG: ") or, when it leaves msg empty, after printing a line itself. */
typedef int (*la_opt_fn)(const struct la_option *opt, const char *value, char *msg, size_t cap);

enum la_opt_kind {
    LA_OPTK_END = 0,  /* the row that ends a table */
    LA_OPTK_FLAG,     /* no value: *(int *)target = 1 */
    LA_OPTK_INT,      /* an integer in [imin, imax]: *(int *)target */
    LA_OPTK_INT64,    /* an integer in [imin, imax]: *(long long *)target */
    LA_OPTK_REAL,     /* a finite number in [min, max]: *(double *)target */
    LA_OPTK_STRING,   /* *(const char **)target = the argument itself (argv's string) */
    LA_OPTK_CHOICE,   /* one of choices[]: *(int *)target = its index */
    LA_OPTK_CALLBACK, /* fn(row, value, ...) does what the value says; target is fn's data */
};

/* Row flags. */
enum {
    LA_OPT_HIDDEN = 1,    /* accepted, but not shown in the help */
    LA_OPT_REQUIRED = 2,  /* an error when absent; shown without brackets in the usage line */
    LA_OPT_ABOVE_MIN = 4, /* REAL: min itself is excluded (a number > min) */
};

struct la_option {
    const char *name;           /* long name without the dashes ("threads"); NULL: short only */
    char short_name;            /* 'o' for -o; 0: long only */
    enum la_opt_kind kind;      /* what the value is and where it goes */
    int flags;                  /* LA_OPT_* above */
    void *target;               /* where the value goes (see the kinds); a callback's data */
    const char *argname;        /* the value in the help ("N", "FILE"); NULL for a choice:
                                 * its choices joined by '|' */
    const char *help;           /* what it does, for people; '\n' starts a new line */
    long long imin, imax;       /* INT, INT64: the valid range, both ends included */
    double min, max;            /* REAL: the valid range (±HUGE_VAL: unbounded) */
    const char *const *choices; /* CHOICE: the valid words, NULL-terminated */
    la_opt_fn fn;               /* CALLBACK */
};

/* Rows, one macro per kind (designated initialisers, so a table reads as a list).  The
 * target's type is checked at compile time: a pointer of another type is an error. */
#define LA_OPT_PTR_(type, p) ((void *)(1 ? (p) : (type *)0))
/* clang-format off */
#define LA_OPT_FLAG(l, s, p, h) {.name = (l), .short_name = (s), .kind = LA_OPTK_FLAG, \
    .target = LA_OPT_PTR_(int, p), .help = (h)}
#define LA_OPT_INT(l, s, p, arg, lo, hi, h) {.name = (l), .short_name = (s), \
    .kind = LA_OPTK_INT, .target = LA_OPT_PTR_(int, p), .argname = (arg), .imin = (lo), \
    .imax = (hi), .help = (h)}
#define LA_OPT_INT64(l, s, p, arg, lo, hi, h) {.name = (l), .short_name = (s), \
    .kind = LA_OPTK_INT64, .target = LA_OPT_PTR_(long long, p), .argname = (arg), \
    .imin = (lo), .imax = (hi), .help = (h)}
#define LA_OPT_REAL(l, s, p, arg, lo, hi, h) {.name = (l), .short_name = (s), \
    .kind = LA_OPTK_REAL, .target = LA_OPT_PTR_(double, p), .argname = (arg), .min = (lo), \
    .max = (hi), .help = (h)}
#define LA_OPT_STRING(l, s, p, arg, h) {.name = (l), .short_name = (s), \
    .kind = LA_OPTK_STRING, .target = LA_OPT_PTR_(const char *, p), .argname = (arg), \
    .help = (h)}
#define LA_OPT_CHOICE(l, s, p, words, h) {.name = (l), .short_name = (s), \
    .kind = LA_OPTK_CHOICE, .target = LA_OPT_PTR_(int, p), .choices = (words), .help = (h)}
#define LA_OPT_CALLBACK(l, s, f, data, arg, h) {.name = (l), .short_name = (s), \
    .kind = LA_OPTK_CALLBACK, .fn = (f), .target = (data), .argname = (arg), .help = (h)}
#define LA_OPT_END {.kind = LA_OPTK_END}
/* clang-format on */

/* One command (or one form of a command, e.g. `bench` and `bench --suite`). */
struct la_command {
    const char *prog;             /* "linattn bench": starts every message and the usage line */
    const char *args;             /* positionals in the usage line ("FILE.h5"); NULL: none are
                                   * allowed (one is an "unexpected argument" error) */
    const char *intro;            /* text between the usage line(s) and the options (wrapped
                                   * like an option's help); may be NULL */
    const struct la_option *opts; /* ends with LA_OPT_END */
    const char *outro;            /* text after the options (wrapped); may be NULL */
    const struct la_command *const *forms; /* NULL-terminated: `--help` shows each of these in
                                            * turn (usage lines together, then each one's text and
                                            * options); NULL: this command alone */
};

/* la_opt_parse's result when the command goes on (any other result is its exit code). */
#define LA_OPT_GO (-1)

/* Reads argv[1..argc-1] (argv[0] is the command's name) against cmd->opts and stores the values
 * in the targets.  Returns LA_OPT_GO with the positionals moved to argv[0..*nargs-1], in order;
 * 0 after printing the help (-h, --help) on stdout; 2 after printing one error line on stderr
 * (targets may then be partly set).  la_opt_parse_to does the same with other streams (tests). */
int la_opt_parse(const struct la_command *cmd, int argc, char **argv, int *nargs);
int la_opt_parse_to(const struct la_command *cmd, int argc, char **argv, int *nargs, FILE *out,
                    FILE *err);

/* Converts value as row opt says (its kind, range or choices) into opt's target: 0, or 1 with
 * the message in msg, naming the option by its long name.  For callbacks that accept something
 * besides a plain value, e.g. a number or the word "auto". */
int la_opt_store(const struct la_option *opt, const char *value, char *msg, size_t cap);

/* The help of cmd (or of its forms): usage line(s), intro, one line per option (aligned), outro;
 * texts are wrapped at 100 columns.  What `--help` prints. */
void la_opt_help(FILE *out, const struct la_command *cmd);

#endif
