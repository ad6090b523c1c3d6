/* param_options.h — command-line options built from the parameter schema
 * (harness/experiment/params.c): one option row per schema row a command picks, read by the
 * schema's parser (its range or choices, messages naming the option), stored into a cell, with
 * the row's help and the default the cell holds.  A new parameter with a flag needs no edit in
 * the commands that use this (`linattn bench`, `linattn generate`).
 * Not here: the commands' own options and their checks across options (cmd_*.c).
 * Tests: tests/cli_errors.sh, tests/cli_small.sh (bench), tests/test_generate.c (generate).
 */
#ifndef LA_PARAM_OPTIONS_H
#define LA_PARAM_OPTIONS_H

#include <stddef.h>

#include "../experiment/cell.h"
#include "../experiment/params.h"
#include "options.h"

/* The option of one schema row: its parameter, the cell it sets, whether it was given. */
struct la_param_opt {
    const struct la_param *p;
    struct la_cell *c;
    int given;
};

/* Room for the rows built from the schema (the option rows point into it: it must outlive the
 * parse). */
struct la_param_rows {
    struct la_param_opt po[LA_NPARAMS];
    char argname[LA_NPARAMS][96]; /* "N", "X|auto", "iid|orthogonal" */
    char help[LA_NPARAMS][256];   /* the row's help and its default */
};

/* One option row per schema row with a flag for which want(row) is true (want NULL: every row
 * with a flag), in table order, into opts (room for LA_NPARAMS rows); returns how many.  Row i
 * of opts has pr->po[i] as its target unless it is a switch.  bool_switch: a boolean whose
 * default is false is a flag that sets it (a switch, setting the cell directly, not counted in
 * `given`); otherwise booleans take true|false.  Every other row takes a value; a path must be
 * readable.  The help is the row's, with the default the cell holds, unless the row leaves it
 * to be derived (dv = d), it is empty (weights) or it is a value the option cannot take (m's 0:
 * the map's own, which the help says). */
size_t la_param_options(struct la_cell *c, int (*want)(const struct la_param *), int bool_switch,
                        struct la_param_rows *pr, struct la_option *opts);

#endif
