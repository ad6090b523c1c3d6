/* test_options.c — the option-table parser of the commands (harness/cli/options.c) on good and
 * bad input: --name=value and --name value, short options (-x value, -xvalue), integer and real
 * ranges, choices, an unknown option with its suggestion, `--`, a missing value, a flag given a
 * value, repeated options and flags, callbacks (their message, their own line, once per
 * occurrence), required options, positionals, a table built at run time, and the generated help
 * (usage line, one aligned line per option, wrapped at 100 columns, help winning over errors).
 * Every parse runs with memory streams for stdout and stderr, so messages are checked exactly.
 * Run: make build/tests/test_options && build/tests/test_options
 */
#include "testutil.h"

#include "../harness/cli/options.h"

/* The targets of the test table, and what its callback saw. */
struct vals {
    int threads, causal, quiet, draw, ncb;
    long long seed;
    double sigma, temp, A;
    const char *out, *name;
    char cb_seen[4][32];
};

/* A callback that records each value; "bad" is refused with a message, "loud" is refused after
 * printing its own line (to stderr, which the parse under test does not capture). */
static int record(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    struct vals *v = opt->target;
    if (!strcmp(value, "bad")) {
        snprintf(msg, cap, "--tag: '%s' is not a tag", value);
        return 1;
    }
    if (!strcmp(value, "loud"))
        return 1;
    if (v->ncb < 4)
        snprintf(v->cb_seen[v->ncb], sizeof v->cb_seen[0], "%s", value);
    v->ncb++;
    return 0;
}

static const char *const draws[] = {"iid", "orthogonal", NULL};

/* The result of one parse: its return value, the positionals and both streams. */
struct result {
    int rc, nargs;
    char *args[16];
    char out[8192], err[8192];
};

/* Parses the words of line (split at spaces; "~" stands for an empty argument) with cmd. */
static void parse(const struct la_command *cmd, const char *line, struct result *r)
{
    static char buf[1024]; /* string targets and positionals point into it until the next parse */
    snprintf(buf, sizeof buf, "prog %s", line);
    char *argv[64];
    int argc = 0;
    for (char *s = buf, *tok; (tok = strtok(s, " ")) && argc < 63; s = NULL)
        argv[argc++] = strcmp(tok, "~") ? tok : tok + 1;
    argv[argc] = NULL;
    char *ob = NULL, *eb = NULL;
    size_t on = 0, en = 0;
    FILE *out = open_memstream(&ob, &on), *err = open_memstream(&eb, &en);
    assert_non_null(out);
    assert_non_null(err);
    r->nargs = -1;
    r->rc = la_opt_parse_to(cmd, argc, argv, &r->nargs, out, err);
    fclose(out);
    fclose(err);
    snprintf(r->out, sizeof r->out, "%s", ob);
    snprintf(r->err, sizeof r->err, "%s", eb);
    free(ob);
    free(eb);
    for (int i = 0; r->rc == LA_OPT_GO && i < r->nargs && i < 16; i++)
        r->args[i] = argv[i];
}

/* The test command: every kind, a short-only row, a hidden row, positionals allowed. */
/* clang-format off */
#define TABLE(v) { \
    LA_OPT_INT("threads", 't', &(v)->threads, "N", 1, 1024, "threads (default 1)"), \
    LA_OPT_INT64("seed", 0, &(v)->seed, "S", 0, 9223372036854775807LL, "the seed"), \
    LA_OPT_REAL("sigma", 0, &(v)->sigma, "X", 1e-6, 1e6, "standard deviation"), \
    LA_OPT_REAL("A", 0, &(v)->A, "X", -HUGE_VAL, HUGE_VAL, "any finite number"), \
    {.name = "temperature", .kind = LA_OPTK_REAL, .flags = LA_OPT_ABOVE_MIN, \
     .target = &(v)->temp, .argname = "X", .min = 0.0, .max = HUGE_VAL, \
     .help = "sampling temperature"}, \
    LA_OPT_FLAG("causal", 0, &(v)->causal, "causal attention"), \
    LA_OPT_FLAG("quiet", 'q', &(v)->quiet, "no progress line"), \
    LA_OPT_CHOICE("draw", 0, &(v)->draw, draws, "how W is drawn"), \
    LA_OPT_STRING(NULL, 'o', &(v)->out, "FILE", "output file"), \
    LA_OPT_CALLBACK("tag", 0, record, (v), "WORD", "a tag; repeat for more"), \
    {.name = "secret", .kind = LA_OPTK_STRING, .flags = LA_OPT_HIDDEN, .target = &(v)->name, \
     .argname = "X"}, \
    LA_OPT_END}
/* clang-format on */

static void setup_vals(struct vals *v)
{
    memset(v, 0, sizeof *v);
    v->threads = 1;
    v->seed = -1;
    v->sigma = 1.0;
    v->temp = NAN;
}

static void test_good_input(void **state)
{
    (void)state;
    struct vals v;
    setup_vals(&v);
    const struct la_option opts[] = TABLE(&v);
    const struct la_command cmd = {.prog = "linattn t", .args = "FILE...", .opts = opts};
    struct result r;
    parse(&cmd,
          "a.yaml --threads=8 --seed 12345678901234 --sigma=0.5 --A -0.25 --causal -q "
          "--draw orthogonal -o out.h5 b.yaml --temperature 1e-300 --secret s",
          &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_string_equal(r.err, "");
    assert_string_equal(r.out, "");
    assert_int_equal(v.threads, 8);
    assert_true(v.seed == 12345678901234LL);
    assert_true(v.sigma == 0.5);
    assert_true(v.A == -0.25); /* a value that starts with '-' is still the value */
    assert_true(v.temp == 1e-300);
    assert_int_equal(v.causal, 1);
    assert_int_equal(v.quiet, 1);
    assert_int_equal(v.draw, 1);
    assert_string_equal(v.out, "out.h5");
    assert_string_equal(v.name, "s"); /* hidden rows still parse */
    assert_int_equal(r.nargs, 2);
    assert_string_equal(r.args[0], "a.yaml");
    assert_string_equal(r.args[1], "b.yaml");

    /* Short options: -t 3 and -t3, -oFILE; a lone "-" is a positional. */
    setup_vals(&v);
    parse(&cmd, "-t 3 -oX.h5 - -t4", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(v.threads, 4);
    assert_string_equal(v.out, "X.h5");
    assert_int_equal(r.nargs, 1);
    assert_string_equal(r.args[0], "-");

    /* `--` ends the options: what follows is positional, dashes or not. */
    setup_vals(&v);
    parse(&cmd, "--causal -- --threads 0 -q --frobnicate", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(v.causal, 1);
    assert_int_equal(v.threads, 1);
    assert_int_equal(v.quiet, 0);
    assert_int_equal(r.nargs, 4);
    assert_string_equal(r.args[0], "--threads");
    assert_string_equal(r.args[3], "--frobnicate");

    /* An empty string value is a value (a STRING takes it; an INT refuses it). */
    setup_vals(&v);
    parse(&cmd, "-o ~", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_string_equal(v.out, "");
    parse(&cmd, "--threads ~", &r);
    assert_int_equal(r.rc, 2);
    assert_string_equal(r.err, "linattn t: --threads expects an integer in 1..1024, got ''\n");
}

/* One bad line: exit 2, nothing on stdout, exactly want on stderr. */
static void expect_error(const struct la_command *cmd, const char *line, const char *want)
{
    struct result r;
    parse(cmd, line, &r);
    if (r.rc != 2 || strcmp(r.err, want) || r.out[0])
        fail_msg("'%s': rc %d, stderr '%s' (want 2, '%s'), stdout '%s'", line, r.rc, r.err, want,
                 r.out);
}

static void test_ranges(void **state)
{
    (void)state;
    struct vals v;
    setup_vals(&v);
    const struct la_option opts[] = TABLE(&v);
    const struct la_command cmd = {.prog = "linattn t", .args = "FILE", .opts = opts};
    const char *int_msg = "linattn t: --threads expects an integer in 1..1024, got '%s'\n";
    const char *bad_ints[] = {"0", "1025", "abc", "12x", "1.5", "+", "-1", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad_ints / sizeof bad_ints[0]; i++) {
        char line[64], want[128];
        snprintf(line, sizeof line, "--threads=%s", bad_ints[i]);
        snprintf(want, sizeof want, int_msg, bad_ints[i]);
        expect_error(&cmd, line, want);
    }
    /* The ends of the range are valid. */
    struct result r;
    parse(&cmd, "--threads 1024 --seed 9223372036854775807", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(v.threads, 1024);
    assert_true(v.seed == 9223372036854775807LL);
    expect_error(&cmd, "--seed 9223372036854775808",
                 "linattn t: --seed expects an integer in 0..9223372036854775807, got "
                 "'9223372036854775808'\n");
    /* The short form is named as the user wrote it. */
    expect_error(&cmd, "-t 0", "linattn t: -t expects an integer in 1..1024, got '0'\n");

    expect_error(&cmd, "--sigma nan",
                 "linattn t: --sigma expects a number in [1e-06, 1000000], got 'nan'\n");
    expect_error(&cmd, "--sigma 2e6",
                 "linattn t: --sigma expects a number in [1e-06, 1000000], got '2e6'\n");
    expect_error(&cmd, "--sigma 0.5x",
                 "linattn t: --sigma expects a number in [1e-06, 1000000], got '0.5x'\n");
    expect_error(&cmd, "--A inf", "linattn t: --A expects a finite number, got 'inf'\n");
    expect_error(&cmd, "--temperature 0",
                 "linattn t: --temperature expects a number > 0, got '0'\n");
    expect_error(&cmd, "--temperature -1",
                 "linattn t: --temperature expects a number > 0, got '-1'\n");
    parse(&cmd, "--sigma 1e6 --A -1e300", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_true(v.sigma == 1e6);
    assert_true(v.A == -1e300);
}

static void test_choices_and_unknown(void **state)
{
    (void)state;
    struct vals v;
    setup_vals(&v);
    const struct la_option opts[] = TABLE(&v);
    const struct la_command cmd = {.prog = "linattn t", .args = "FILE", .opts = opts};
    struct result r;
    parse(&cmd, "--draw=iid", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(v.draw, 0);
    expect_error(&cmd, "--draw orthogonl",
                 "linattn t: --draw 'orthogonl' is unknown (did you mean 'orthogonal'?); "
                 "valid: iid, orthogonal\n");
    expect_error(&cmd, "--draw gaussian",
                 "linattn t: --draw 'gaussian' is unknown; valid: iid, orthogonal\n");

    /* Unknown options: a suggestion when one is close, and every valid option (the hidden
     * one left out, --help in). */
    const char *valid = "valid options: --threads, -t, --seed, --sigma, --A, --temperature, "
                        "--causal, --quiet, -q, --draw, -o, --tag, --help\n";
    char want[512];
    snprintf(want, sizeof want,
             "linattn t: unknown option '--thraeds' (did you mean "
             "'--threads'?); %s",
             valid);
    expect_error(&cmd, "--thraeds 4", want);
    snprintf(want, sizeof want, "linattn t: unknown option '--frobnicate'; %s", valid);
    expect_error(&cmd, "--frobnicate=3", want); /* named without its value */
    snprintf(want, sizeof want, "linattn t: unknown option '-x' (did you mean '-t'?); %s", valid);
    expect_error(&cmd, "-x", want);
    snprintf(want, sizeof want, "linattn t: unknown option '-qq' (did you mean '-q'?); %s", valid);
    expect_error(&cmd, "-qq", want); /* short flags are not bundled */
    /* One dash is a short option, whose value may follow at once (-t4): "-threads" is -t
     * with the value "hreads". */
    expect_error(&cmd, "-threads 2", "linattn t: -t expects an integer in 1..1024, got 'hreads'\n");
}

static void test_missing_and_flags(void **state)
{
    (void)state;
    struct vals v;
    setup_vals(&v);
    const struct la_option opts[] = TABLE(&v);
    const struct la_command cmd = {.prog = "linattn t", .args = "FILE", .opts = opts};
    expect_error(&cmd, "a.yaml --threads", "linattn t: --threads needs a value\n");
    expect_error(&cmd, "-o", "linattn t: -o needs a value\n");
    expect_error(&cmd, "--causal=1", "linattn t: --causal takes no value\n");
    expect_error(&cmd, "--quiet=", "linattn t: --quiet takes no value\n");

    /* Repeated: a flag stays set, the last value wins. */
    struct result r;
    parse(&cmd, "--causal --causal -q --quiet --threads 2 --threads=5 -o a -o b", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(v.causal, 1);
    assert_int_equal(v.quiet, 1);
    assert_int_equal(v.threads, 5);
    assert_string_equal(v.out, "b");
    assert_int_equal(r.nargs, 0);

    /* No positionals allowed: the first one is an error. */
    const struct la_command none = {.prog = "linattn n", .opts = opts};
    expect_error(&none, "--causal extra", "linattn n: unexpected argument 'extra'\n");
    expect_error(&none, "-- --causal", "linattn n: unexpected argument '--causal'\n");
    parse(&none, "--causal", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(r.nargs, 0);
}

static void test_callback(void **state)
{
    (void)state;
    struct vals v;
    setup_vals(&v);
    const struct la_option opts[] = TABLE(&v);
    const struct la_command cmd = {.prog = "linattn t", .args = "FILE", .opts = opts};
    struct result r;
    parse(&cmd, "--tag one f.h5 --tag=two --tag -3", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(v.ncb, 3); /* once per occurrence, in order */
    assert_string_equal(v.cb_seen[0], "one");
    assert_string_equal(v.cb_seen[1], "two");
    assert_string_equal(v.cb_seen[2], "-3");
    assert_int_equal(r.nargs, 1);
    expect_error(&cmd, "--tag ok --tag bad", "linattn t: --tag: 'bad' is not a tag\n");
    /* A callback that printed its own line: the parser adds nothing. */
    expect_error(&cmd, "--tag loud", "");
}

static void test_required_and_runtime_table(void **state)
{
    (void)state;
    /* A table built at run time, as a command adding one row per parameter does. */
    const char *names[] = {"alpha", "beta", "gamma"};
    int vals[3] = {0, 0, 0};
    const char *out = NULL;
    struct la_option *opts = calloc(5, sizeof *opts);
    assert_non_null(opts);
    for (int i = 0; i < 3; i++)
        opts[i] = (struct la_option)LA_OPT_INT(names[i], 0, &vals[i], "N", -5, 5, "a parameter");
    opts[3] = (struct la_option){.short_name = 'o',
                                 .kind = LA_OPTK_STRING,
                                 .flags = LA_OPT_REQUIRED,
                                 .target = &out,
                                 .argname = "OUT.h5",
                                 .help = "output (required)"};
    opts[4] = (struct la_option)LA_OPT_END;
    const struct la_command cmd = {.prog = "linattn r", .args = "CKPT", .opts = opts};
    struct result r;
    parse(&cmd, "--beta -5 --gamma=5 c.bin -o x.h5", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_int_equal(vals[0], 0);
    assert_int_equal(vals[1], -5);
    assert_int_equal(vals[2], 5);
    assert_string_equal(out, "x.h5");
    expect_error(&cmd, "--beta 1 c.bin", "linattn r: -o OUT.h5 is required\n");
    expect_error(&cmd, "--gama 1",
                 "linattn r: unknown option '--gama' (did you mean '--gamma'?); valid options: "
                 "--alpha, --beta, --gamma, -o, --help\n");
    parse(&cmd, "--help", &r); /* help needs no required option */
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: linattn r CKPT [--alpha N] [--beta N] [--gamma N] "
                                  "-o OUT.h5\n"));
    free(opts);
}

/* The column where the help text of the option line "  OPT  help" begins (-1: no such line). */
static int help_column(const char *help, const char *opt)
{
    char key[64];
    snprintf(key, sizeof key, "\n  %s ", opt);
    const char *p = strstr(help, key);
    if (!p)
        return -1;
    const char *line = p + 1, *q = line + 2 + strlen(opt);
    q += strspn(q, " ");
    return (int)(q - line);
}

static void test_help(void **state)
{
    (void)state;
    struct vals v;
    setup_vals(&v);
    const struct la_option opts[] = TABLE(&v);
    const struct la_command cmd = {
        .prog = "linattn t",
        .args = "FILE",
        .intro = "Does a test thing.\n",
        .opts = opts,
        .outro = "Exit status: 0 ok.\n",
    };
    struct result r;
    /* -h or --help anywhere among the options wins, even over an error before it. */
    const char *lines[] = {"--help", "-h", "--threads 0 --help", "--frobnicate -h", "f --help"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        parse(&cmd, lines[i], &r);
        assert_int_equal(r.rc, 0);
        assert_string_equal(r.err, "");
        assert_non_null(strstr(r.out, "usage: linattn t FILE [-t N] [--seed S]"));
    }
    /* ... but not as an option's value or after `--`. */
    parse(&cmd, "-o --help", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_string_equal(v.out, "--help");
    parse(&cmd, "-- -h", &r);
    assert_int_equal(r.rc, LA_OPT_GO);
    assert_string_equal(r.args[0], "-h");

    parse(&cmd, "--help", &r);
    const char *h = r.out;
    /* Every shown option has a line, hidden ones none; choices print as a|b. */
    const char *shown[] = {"-t, --threads N", "--seed S",   "--sigma X",   "--A X",
                           "--temperature X", "--causal",   "-q, --quiet", "--draw iid|orthogonal",
                           "-o FILE",         "--tag WORD", "-h, --help"};
    const int col = help_column(h, shown[0]);
    assert_true(col > 0);
    for (size_t i = 0; i < sizeof shown / sizeof shown[0]; i++)
        if (help_column(h, shown[i]) != col)
            fail_msg("option '%s' not aligned at column %d:\n%s", shown[i], col, h);
    assert_null(strstr(h, "secret"));
    assert_non_null(strstr(h, "\nDoes a test thing.\n"));
    assert_non_null(strstr(h, "\nExit status: 0 ok.\n"));
    assert_non_null(strstr(h, "[--draw iid|orthogonal]"));
    assert_non_null(strstr(h, "[-o FILE]"));
    /* No line is longer than 100 columns (the usage line wraps). */
    for (const char *p = h; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 100)
            fail_msg("help line of %zu columns: %.*s", len, (int)len, p);
        p += len + (p[len] == '\n');
    }

    /* Long help wraps under its column; two forms print both usage lines. */
    const struct la_option one[] = {
        LA_OPT_FLAG("wordy", 0, &v.causal,
                    "a long help text that goes on and on, word after word, until it has to be "
                    "wrapped onto a second line at the right place\nand a line of its own"),
        LA_OPT_END};
    const struct la_option two[] = {LA_OPT_INT("n", 0, &v.threads, "N", 1, 9, "how many"),
                                    LA_OPT_END};
    struct la_command f1 = {.prog = "linattn w", .intro = "First form.\n", .opts = one};
    struct la_command f2 = {
        .prog = "linattn w", .args = "--other", .intro = "Second form.\n", .opts = two};
    const struct la_command *forms[] = {&f1, &f2, NULL};
    f1.forms = forms;
    f2.forms = forms;
    parse(&f2, "-h", &r);
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: linattn w [--wordy]\n"
                                  "       linattn w --other [--n N]\n"));
    const char *first = strstr(r.out, "First form."), *second = strstr(r.out, "Second form.");
    assert_non_null(first);
    assert_non_null(second);
    assert_true(first < second);
    const char *wordy = strstr(r.out, "  --wordy");
    assert_non_null(wordy);
    const int wc = help_column(r.out, "--wordy");
    const char *next = strchr(wordy, '\n') + 1; /* the continuation line */
    assert_int_equal((int)strspn(next, " "), wc);
    assert_non_null(strstr(next, "\n"));
    assert_true(strstr(r.out, "and a line of its own") > next);
    for (const char *p = r.out; *p;) {
        size_t len = strcspn(p, "\n");
        if (len > 100)
            fail_msg("help line of %zu columns: %.*s", len, (int)len, p);
        p += len + (p[len] == '\n');
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_input),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_choices_and_unknown),
        cmocka_unit_test(test_missing_and_flags),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_required_and_runtime_table),
        cmocka_unit_test(test_help),
    };
    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
