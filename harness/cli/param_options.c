/* param_options.c — command-line options built from the parameter schema (param_options.h):
 * the option rows and the callback that parses one value into the cell.
 * May touch: the schema (harness/experiment/params.h), the option parser (options.h).
 */
#include "param_options.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* --FLAG VALUE of a schema row: read by the schema's parser (its range or choices, and the
 * experiment loader's messages, naming the option), stored into the cell; a path must be
 * readable. */
static int set_param(const struct la_option *opt, const char *value, char *msg, size_t cap)
{
    struct la_param_opt *po = opt->target;
    char what[64];
    struct la_value v;
    snprintf(what, sizeof what, "--%s", po->p->flag);
    if (la_param_parse_as(po->p, what, value, 0, &v, msg, cap) != LA_OK)
        return 1;
    if (po->p->type == LA_PT_PATH && access(value, R_OK) != 0) {
        snprintf(msg, cap, "%s: cannot read '%s': %s", what, value, strerror(errno));
        return 1;
    }
    la_param_set(po->p, po->c, &v);
    po->given = 1;
    return 0;
}

size_t la_param_options(struct la_cell *c, int (*want)(const struct la_param *), int bool_switch,
                        struct la_param_rows *pr, struct la_option *opts)
{
    size_t n = 0;
    for (size_t i = 0; i < LA_NPARAMS; i++) {
        const struct la_param *p = &la_params[i];
        if (!p->flag || (want && !want(p)))
            continue;
        struct la_value v;
        char text[64], def[80] = "", msg[256];
        la_param_get(p, c, &v);
        la_param_format(p, &v, text, sizeof text);
        if (p->def && text[0] && la_param_check(p, &v, "", NULL, msg, sizeof msg) == LA_OK)
            snprintf(def, sizeof def, " (default %s)", text);
        pr->po[n] = (struct la_param_opt){p, c, 0};
        if (bool_switch && p->type == LA_PT_BOOL && !v.i) {
            opts[n++] = (struct la_option){.name = p->flag,
                                           .kind = LA_OPTK_FLAG,
                                           .target = (char *)c + p->cell_off,
                                           .help = p->help};
            continue;
        }
        /* The value's name: its choices, else what kind of value it is. */
        char *arg = pr->argname[n];
        const size_t acap = sizeof pr->argname[n];
        snprintf(arg, acap, "%s",
                 p->type == LA_PT_INT    ? "N"
                 : p->type == LA_PT_REAL ? "X"
                 : p->type == LA_PT_BOOL ? "true|false"
                 : p->type == LA_PT_PATH ? "FILE"
                                         : "NAME");
        for (size_t k = 0; p->type == LA_PT_CHOICE && p->choices[k]; k++)
            snprintf(arg + (k ? strlen(arg) : 0), acap - (k ? strlen(arg) : 0), "%s%s",
                     k ? "|" : "", p->choices[k]);
        if (p->word)
            snprintf(arg + strlen(arg), acap - strlen(arg), "|%s", p->word);
        snprintf(pr->help[n], sizeof pr->help[n], "%s%s", p->help, def);
        opts[n] = (struct la_option){.name = p->flag,
                                     .kind = LA_OPTK_CALLBACK,
                                     .target = &pr->po[n],
                                     .argname = arg,
                                     .help = pr->help[n],
                                     .fn = set_param};
        n++;
    }
    return n;
}
