/* main.c — the linattn command line: a table of subcommands (name, function, one-line help).
 * `linattn X --help` and `linattn help X` print the same text.  Nothing else lives here.
 */
#include <stdio.h>
#include <string.h>

#include "../../kernels/attention.h"
#include "../core/status.h"
#include "../core/sysinfo.h"
#include "commands.h"

struct subcommand {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
};

static const struct subcommand subcommands[] = {
    {"list", cmd_list, "list kernels and feature maps, one line each"},
    {"check", cmd_check, "test every fast kernel against its reference on this machine"},
    {"bench", cmd_bench, "time one kernel (or --suite: the benchmark table) against peak, SGEMM"},
    {"capture", cmd_capture, "run a small Llama-2 and save its real Q, K, V to HDF5"},
    {"fit", cmd_fit, "train learned feature maps per layer and head on captured attention"},
    {"generate", cmd_generate, "run a small Llama-2 with softmax or linear attention; --fidelity"},
    {"featuremap", cmd_featuremap, "write learned-map weights; print one map's diagnostics"},
    {"run", cmd_run, "run an experiment file: every cell, one results row each (resumable)"},
    {"export", cmd_export, "print a results file's rows as TSV (--where, --columns)"},
    {"info", cmd_info, "describe a results file: provenance, experiment, failures"},
    {"plot", cmd_plot, "draw the figures of a results file with gnuplot (PNG and PDF)"},
    {"capacity", cmd_capacity, "how many associations a state holds, per map and rule (-o FILE)"},
};
#define N_SUBCOMMANDS (sizeof subcommands / sizeof subcommands[0])

static void usage(FILE *out)
{
    fprintf(out, "linattn %s — linear attention against softmax: accuracy and speed\n\n",
            la_version());
    fprintf(out, "usage: linattn <command> [options]   (linattn <command> --help for details)\n\n");
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", subcommands[i].name, subcommands[i].help);
}

int main(int argc, char **argv)
{
    la_startup();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (!strcmp(name, "--help") || !strcmp(name, "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(name, "--version")) {
        printf("linattn %s (%s)\n", la_version(), la_git_commit());
        return 0;
    }
    /* Every command may run kernels: a bad code-path variable is refused before any does. */
    char envmsg[256];
    if (la_env_check(envmsg, sizeof envmsg)) {
        fprintf(stderr, "linattn: %s\n", envmsg);
        return 2;
    }
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            usage(stdout);
            return 0;
        }
        /* `linattn help X` is `linattn X --help`. */
        for (size_t i = 0; i < N_SUBCOMMANDS; i++)
            if (!strcmp(argv[2], subcommands[i].name)) {
                char *hargv[] = {argv[2], "--help", NULL};
                return subcommands[i].fn(2, hargv);
            }
        name = argv[2];
    } else {
        for (size_t i = 0; i < N_SUBCOMMANDS; i++)
            if (!strcmp(name, subcommands[i].name))
                return subcommands[i].fn(argc - 1, argv + 1);
    }
    const char *names[N_SUBCOMMANDS + 1];
    for (size_t i = 0; i < N_SUBCOMMANDS; i++)
        names[i] = subcommands[i].name;
    names[N_SUBCOMMANDS] = NULL;
    char msg[384];
    fprintf(stderr, "linattn: unknown command '%s'%s\n", name,
            la_choices_msg(msg, sizeof msg, name, names, N_SUBCOMMANDS, "valid commands"));
    return 2;
}
