/* resume.c — whether an existing results file may be resumed by a run: the file's experiment
 * texts and cell context against the caller's, and the attributes a resume adds to it.
 *
 * One decision (resume_verdict) for `run` (recover_and_open in results.c) and for
 * `run --dry-run` (la_results_resume_check), so both say the same.  Works on attribute sets
 * (attrs.c) only: reads and writes no file.  Shared with the other files of harness/store/
 * through store_impl.h.
 * Test: make build/tests/test_results && build/tests/test_results; tests/sweep_extend.sh
 * (new texts and context entries, refusals).
 */
#include "store_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- may an existing file be resumed? ----------------------------------------------- */

/* One "name=value" line of a cell context (the value follows the line's last '='). */
struct ctx_entry {
    const char *name, *val;
    size_t nlen, vlen;
};

/* Splits a context into its entries (pointers into text); the count, or -1 out of memory. */
static long ctx_parse(const char *text, struct ctx_entry **out)
{
    size_t n = 0, cap = 0;
    struct ctx_entry *e = NULL;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        const size_t len = nl ? (size_t)(nl - p) : strlen(p);
        const char *eq = NULL;
        for (size_t i = 0; i < len; i++)
            if (p[i] == '=')
                eq = p + i;
        if (len) {
            if (n == cap) {
                size_t ncap = cap ? 2 * cap : 32;
                struct ctx_entry *ne = realloc(e, ncap * sizeof *ne);
                if (!ne) {
                    free(e);
                    return -1;
                }
                e = ne;
                cap = ncap;
            }
            e[n].name = p;
            e[n].nlen = eq ? (size_t)(eq - p) : len;
            e[n].val = eq ? eq + 1 : p + len;
            e[n].vlen = eq ? (size_t)(p + len - eq - 1) : 0;
            n++;
        }
        p += len + (nl != NULL);
    }
    *out = e;
    return (long)n;
}

static const struct ctx_entry *ctx_find(const struct ctx_entry *e, long n, const char *name,
                                        size_t nlen)
{
    for (long i = 0; i < n; i++)
        if (e[i].nlen == nlen && !memcmp(e[i].name, name, nlen))
            return &e[i];
    return NULL;
}

/* A context value for a message: content hashes shortened to 12 hex digits. */
static int ctx_show_len(const struct ctx_entry *e)
{
    return (int)(e->vlen > 19 && !strncmp(e->val, "sha256:", 7) ? 19 : e->vlen);
}

/* The resume decision, used by `run` (recover_and_open) and by `run --dry-run`
 * (la_results_resume_check) alike.  attrs are the file's root attributes.  The file may be
 * resumed when prov's experiment text is one of the file's texts and no context says
 * otherwise, or when both carry a cell context (seed, measure settings, input file hashes:
 * everything that gives a cell key its meaning) and every entry they share is equal; entries
 * only in prov's are inputs of new cells.  When upd is given and the file must record a new
 * text or new context entries, upd receives the file's attributes with them added. */
int resume_verdict(const struct attr_set *attrs, const struct la_provenance *prov, const char *path,
                   struct la_resume *v, struct attr_set *upd, struct la_error *err)
{
    memset(v, 0, sizeof *v);
    v->exists = 1;
    const struct attr *t = attrs_find(attrs, "experiment_text");
    if (!t || t->kind != AK_STR)
        return LA_FAIL(err, LA_EFORMAT,
                       "%s has no experiment_text (not a linattn results file?); use --fresh to "
                       "overwrite it",
                       path);
    const char *text = prov->experiment_text ? prov->experiment_text : "";
    const struct attr *nt = attrs_find(attrs, "text_count");
    int ntexts = 1;
    if (nt && (nt->kind == AK_I32 || nt->kind == AK_I64) && nt->i > 1 && nt->i < 1000000)
        ntexts = (int)nt->i;
    int known = !strcmp(t->s, text);
    for (int k = 2; !known && k <= ntexts; k++) {
        char name[40];
        snprintf(name, sizeof name, "experiment_text_%d", k);
        const struct attr *a = attrs_find(attrs, name);
        known = a && a->kind == AK_STR && !strcmp(a->s, text);
    }
    v->ntexts = ntexts;
    const struct attr *n = attrs_find(attrs, "experiment_name");
    char name[256] = "";
    if (n && n->kind == AK_STR)
        snprintf(name, sizeof name, " (experiment '%s')", n->s);
    const struct attr *oc = attrs_find(attrs, "cell_context");
    const char *octx = oc && oc->kind == AK_STR ? oc->s : NULL, *nctx = prov->cell_context;
    if (!octx || !nctx) {
        if (known)
            return LA_OK;
        if (!octx)
            return LA_FAIL(err, LA_EINVAL,
                           "%s holds results of a different experiment text%s and records no "
                           "cell context (written by an older linattn), so whether its cells "
                           "still mean the same cannot be checked; use --fresh to overwrite it, "
                           "or choose another output file",
                           path, name);
        return LA_FAIL(err, LA_EINVAL,
                       "%s holds results of a different experiment text%s; use --fresh to "
                       "overwrite it, or choose another output file",
                       path, name);
    }
    struct ctx_entry *oe = NULL, *ne = NULL;
    long on = ctx_parse(octx, &oe), nn = on < 0 ? -1 : ctx_parse(nctx, &ne);
    if (on < 0 || nn < 0) {
        free(oe);
        return LA_FAIL(err, LA_ENOMEM, "out of memory comparing the cell context of %s", path);
    }
    char diff[LA_ERRMSG_MAX];
    size_t dl = 0;
    int ndiff = 0, nnew = 0;
    diff[0] = '\0';
    for (long i = 0; i < nn; i++) {
        const struct ctx_entry *o = ctx_find(oe, on, ne[i].name, ne[i].nlen);
        if (!o) {
            nnew++;
            continue;
        }
        if (o->vlen == ne[i].vlen && !memcmp(o->val, ne[i].val, o->vlen))
            continue;
        ndiff++;
        if (dl < sizeof diff - 1)
            dl += (size_t)snprintf(diff + dl, sizeof diff - dl, "%s%.*s %.*s -> %.*s",
                                   ndiff > 1 ? ", " : "", (int)ne[i].nlen, ne[i].name,
                                   ctx_show_len(o), o->val, ctx_show_len(&ne[i]), ne[i].val);
    }
    int rc = LA_OK;
    if (ndiff) {
        rc = LA_FAIL(err, LA_EINVAL,
                     "%s holds results%s whose cells this experiment would change: %s; use "
                     "--fresh to start over, or choose another output file",
                     path, name, diff);
        goto done;
    }
    v->add_text = !known;
    v->new_context = nnew;
    if (!upd || (known && !nnew))
        goto done;
    /* The updated attributes: the new text numbered after the others, new context entries
     * appended to the old ones (so later runs still check every input of every cell). */
    size_t olen = strlen(octx);
    struct buf m = {0};
    buf_put(&m, octx, olen);
    if (olen && octx[olen - 1] != '\n')
        buf_put(&m, "\n", 1);
    for (long i = 0; i < nn; i++)
        if (!ctx_find(oe, on, ne[i].name, ne[i].nlen)) {
            buf_put(&m, ne[i].name, (size_t)(ne[i].val - ne[i].name) + ne[i].vlen);
            buf_put(&m, "\n", 1);
        }
    buf_put(&m, "", 1);
    char tname[40];
    snprintf(tname, sizeof tname, "experiment_text_%d", ntexts + 1);
    if (m.oom || attrs_copy(upd, attrs) || attrs_set_str(upd, "cell_context", (char *)m.p) ||
        (!known && (attrs_add_str(upd, tname, text) ||
                    attrs_set_i32(upd, "text_count", ntexts + 1))))
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory updating the attributes of %s", path);
    free(m.p);
done:
    free(oe);
    free(ne);
    return rc;
}
