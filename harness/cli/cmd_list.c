/* cmd_list.c — `linattn list`: the attention kernels and the feature maps, one line each with a
 * summary (kernels say whether they are causal, non-causal or both, and whether they apply an
 * elementwise map themselves; maps list the parameters they read, and whether those kernels can
 * apply them).  Reads the two registries only.  Tests: tests/cli_errors.sh.
 */
#include <stdio.h>
#include <string.h>

#include "../../featuremaps/featuremap.h"
#include "../../kernels/attention.h"
#include "commands.h"
#include "options.h"

int cmd_list(int argc, char **argv)
{
    const struct la_option opts[] = {LA_OPT_END};
    const struct la_command cmd = {
        .prog = "linattn list",
        .intro = "Lists the attention kernels and the feature maps with a one-line summary each "
                 "(maps also list the parameters they read).",
        .opts = opts,
    };
    int nargs;
    const int rc = la_opt_parse(&cmd, argc, argv, &nargs);
    if (rc != LA_OPT_GO)
        return rc;
    /* One name column for both tables, as wide as the longest name. */
    int w = 8;
    for (size_t i = 0; attn_kernels[i].name; i++)
        w = (int)strlen(attn_kernels[i].name) > w ? (int)strlen(attn_kernels[i].name) : w;
    for (size_t i = 0; featuremap_types[i]; i++)
        w = (int)strlen(featuremap_types[i]->name) > w ? (int)strlen(featuremap_types[i]->name) : w;
    printf("kernels:\n");
    for (size_t i = 0; attn_kernels[i].name; i++)
        printf("  %-*s %-8s %s%s%s\n", w, attn_kernels[i].name, attn_op_name(attn_kernels[i].op),
               attn_kernels[i].summary,
               attn_kernels[i].causal_support == ATTN_CAUSAL_OK      ? " [causal]"
               : attn_kernels[i].causal_support == ATTN_NONCAUSAL_OK ? " [non-causal]"
                                                                      : " [causal, non-causal]",
               attn_kernels[i].fuses_map ? " [fuses elu1, relu]" : "");
    printf("feature maps:\n");
    for (size_t i = 0; featuremap_types[i]; i++)
        printf("  %-*s %s; params: %s%s\n", w, featuremap_types[i]->name,
               featuremap_types[i]->summary, featuremap_types[i]->params,
               featuremap_types[i]->fused_map ? "; fused into the linear forward kernels" : "");
    return 0;
}
