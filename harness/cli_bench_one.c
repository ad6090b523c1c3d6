/* cli_bench_one.c — `linattn bench`: argument parsing; --suite runs the benchmark table
 * (cli_bench.c), otherwise one kernel at one shape (through the runner, with errors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "commands.h"
#include "sysinfo.h"

static const char bench_help[] =
    "usage: linattn bench --suite [--d 32,64,128] [--Tmin 256] [--Tmax 16384] [--threads N]\n"
    "                     [--budget SECONDS] [--tsv]\n";

int cmd_bench(int argc, char **argv)
{
    int suite = 0, tsv = 0, threads = 1, Tmin = 256, Tmax = 16384;
    int ds[8] = {32, 64, 128}, nd = 3;
    double budget = 0.3;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(bench_help, stdout);
            return 0;
        } else if (!strcmp(o, "--suite")) {
            suite = 1;
        } else if (!strcmp(o, "--tsv")) {
            tsv = 1;
        } else if (!strcmp(o, "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else if (!strcmp(o, "--Tmin") && i + 1 < argc) {
            Tmin = atoi(argv[++i]);
        } else if (!strcmp(o, "--Tmax") && i + 1 < argc) {
            Tmax = atoi(argv[++i]);
        } else if (!strcmp(o, "--budget") && i + 1 < argc) {
            budget = atof(argv[++i]);
        } else if (!strcmp(o, "--d") && i + 1 < argc) {
            nd = 0;
            for (char *s = argv[++i], *tok; (tok = strtok(s, ",")) && nd < 8; s = NULL)
                ds[nd++] = atoi(tok);
        } else {
            fprintf(stderr, "linattn bench: unknown option '%s'\n%s", o, bench_help);
            return 2;
        }
    }
    if (!suite) {
        fprintf(stderr, "linattn bench: single-cell bench not wired yet\n");
        return 2;
    }
    return la_bench_suite(ds, nd, Tmin, Tmax, threads > 0 ? threads : 1, budget, tsv);
}
