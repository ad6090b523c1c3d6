/* cmd_info.c — `linattn info FILE.h5`: a results file for people: its provenance (every root
 * attribute), the experiment text(s) it was run from, row counts, every failure with its
 * message, and the measured crossover T* when the rows allow it (harness/figures/crossover.h).
 * It reads through results.c, so a damaged file is one line saying how to recover it (exit 2).
 * Not here: the rows themselves (cmd_export.c).
 * Tests: tests/test_results.c runs it through the binary; tests/h5strings.sh (attributes as h5py
 * writes them); tests/corrupt_e2e.sh on damaged files.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/status.h"
#include "../figures/crossover.h"
#include "../store/results.h"
#include "commands.h"
#include "options.h"

int cmd_info(int argc, char **argv)
{
    const struct la_option opts[] = {LA_OPT_END};
    const struct la_command cmd = {
        .prog = "linattn info",
        .args = "FILE.h5",
        .intro = "Describes a results file: its provenance (every root attribute: tool version, "
                 "git commit, host, CPU, BLAS, compiler, flags, threads, seed, ...), the "
                 "experiment text it was run from, the number of rows (ok and failed) and every "
                 "failure with its message.\nFor the rows themselves: linattn export FILE.h5 "
                 "(TSV).",
        .opts = opts,
    };
    int nargs;
    const int prc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (prc != LA_OPT_GO)
        return prc;
    if (nargs > 1) {
        fprintf(stderr, "linattn info: one results file at a time (got also '%s')\n", argv[1]);
        return 2;
    }
    if (nargs == 0) {
        fprintf(stderr, "linattn info: no results file given (linattn info --help)\n");
        return 2;
    }
    const char *file = argv[0];

    struct la_error err;
    la_error_clear(&err);
    char **names = NULL;
    size_t nnames = 0, n = 0;
    struct la_row *rows = NULL;
    char *value = NULL, *text = NULL;
    const size_t vcap = (4 << 20) + 1; /* experiment files are at most 4 MiB (experiment.c) */
    int rc = la_results_attr_names(file, &names, &nnames, &err);
    if (!rc)
        rc = la_results_read(file, &rows, &n, &err);
    if (!rc && (!(value = malloc(vcap)) || !(text = malloc(vcap))))
        rc = LA_FAIL(&err, LA_ENOMEM, "out of memory");
    if (rc) {
        fprintf(stderr, "linattn info: %s\n", err.msg);
        goto done;
    }

    /* One-line attributes go into the provenance table; the experiment texts (the first, and
     * experiment_text_N for each later text that extended the sweep) and multi-line values
     * such as cell_context follow it as indented blocks. */
    printf("%s\n\nprovenance\n", file);
    size_t width = 0;
    for (size_t i = 0; i < nnames; i++)
        if (strncmp(names[i], "experiment_text", 15) && strlen(names[i]) > width)
            width = strlen(names[i]);
    int nblocks = 0;
    for (size_t i = 0; i < nnames; i++) {
        if (!strncmp(names[i], "experiment_text", 15)) {
            nblocks++;
            continue;
        }
        if ((rc = la_results_attr(file, names[i], value, vcap, &err))) {
            fprintf(stderr, "linattn info: %s\n", err.msg);
            goto done;
        }
        if (strchr(value, '\n'))
            nblocks++;
        else
            printf("  %-*s  %s\n", (int)width, names[i], value);
    }
    for (size_t i = 0; nblocks && i < nnames; i++) {
        const int is_text = !strncmp(names[i], "experiment_text", 15);
        if ((rc = la_results_attr(file, names[i], text, vcap, &err))) {
            fprintf(stderr, "linattn info: %s\n", err.msg);
            goto done;
        }
        if (!is_text && !strchr(text, '\n'))
            continue;
        if (!strcmp(names[i], "experiment_text"))
            printf("\nexperiment text\n");
        else if (is_text)
            printf("\n%s (a later text that extended the sweep)\n", names[i]);
        else
            printf("\n%s\n", names[i]);
        for (const char *p = text; *p;) {
            size_t len = strcspn(p, "\n");
            printf("  | %.*s\n", (int)len, p);
            p += len + (p[len] == '\n');
        }
    }

    size_t ok = 0, failed = 0, intr = 0;
    for (size_t i = 0; i < n; i++) {
        ok += rows[i].status == LA_ROW_OK;
        failed += rows[i].status == LA_ROW_FAILED;
        intr += rows[i].status == LA_ROW_INTERRUPTED;
    }
    printf("\nrows: %zu total, %zu ok, %zu failed", n, ok, failed);
    if (intr)
        printf(", %zu interrupted (rerun to finish them)", intr);
    if (n - ok - failed - intr)
        printf(", %zu with another status", n - ok - failed - intr);
    printf("\n");
    if (failed) {
        printf("\nfailures\n");
        for (size_t i = 0; i < n; i++) {
            if (rows[i].status != LA_ROW_FAILED)
                continue;
            /* A failed cell is retried on resume; say when the retry succeeded. */
            int retried = 0;
            for (size_t j = i + 1; j < n && !retried; j++)
                retried = rows[j].status == LA_ROW_OK && !strcmp(rows[j].key, rows[i].key);
            printf("  %s%s\n    %s\n", rows[i].key, retried ? "  (retried: ok)" : "",
                   rows[i].message[0] ? rows[i].message : "(no message)");
        }
    }
    /* Timed softmax and linear rows at several T: the measured crossover T* per
     * configuration, next to the flop-model prediction (harness/figures/crossover.h). */
    {
        char *buf = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&buf, &len);
        if (mem) {
            size_t lines = la_crossover_print(rows, n, mem);
            fclose(mem);
            if (lines > 0)
                printf("\ncrossover\n%s", buf);
            free(buf);
        }
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "linattn info: writing stdout: %s\n", strerror(errno));
        rc = LA_EINTERNAL;
    }
done:
    free(value);
    free(text);
    free(rows);
    la_results_names_free(names, nnames);
    return la_exit_code(rc);
}
