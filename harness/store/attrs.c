/* attrs.c — attribute sets: the root attributes of a results file (its provenance) in memory.
 *
 * A set is an ordered list of named values (string, int32, int64, uint64, double): made from
 * a run's provenance for a new file (attrs_provenance; results.h lists the attributes), read
 * from an .h5 (h5io.c) or a journal header (journal.c), updated by the resume decision
 * (resume.c) and written back by those two.  Also the documented attributes in the order
 * `info` prints them.  Writes no file: memory, plus the build and machine facts a new file
 * records (sysinfo.h, the SIMD and vector-math paths).  Shared with the other files of
 * harness/store/ through store_impl.h.
 * Test: make build/tests/test_results && build/tests/test_results.
 */
#include "store_impl.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../../kernels/attention.h"
#include "../../kernels/vmath.h"
#include "../core/sysinfo.h"
#include "../core/util.h"

/* ---- attribute sets: provenance in memory, in the .h5 and in the journal header -------- */

/* The documented root attributes, in the order `info` prints them. */
static const char *const known_attrs[] = {
    "tool_version", "git_commit", "created_utc", "host", "cpu_model", "threads", "mpi_ranks", "blas",
    "blas_core", "compiler", "cflags", "simd_isa", "vmath_isa", "experiment_name", "seed", ID_ATTR,
    "experiment_text", "text_count", "cell_context",
};
#define N_KNOWN_ATTRS (sizeof known_attrs / sizeof known_attrs[0])

/* known_attrs for the other files of harness/store/ (count in *n). */
const char *const *known_attr_names(size_t *n)
{
    *n = N_KNOWN_ATTRS;
    return known_attrs;
}

void attrs_free(struct attr_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        free(set->a[i].name);
        free(set->a[i].s);
    }
    free(set->a);
    memset(set, 0, sizeof *set);
}

/* Appends an attribute (the string is copied); 0 on success, -1 out of memory. */
int attrs_add(struct attr_set *set, const char *name, int kind, const char *s, size_t slen,
              int64_t i, uint64_t u, double f)
{
    if (set->n == set->cap) {
        size_t ncap = set->cap ? 2 * set->cap : 16;
        struct attr *na = realloc(set->a, ncap * sizeof *na);
        if (!na)
            return -1;
        set->a = na;
        set->cap = ncap;
    }
    struct attr *a = &set->a[set->n];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->i = i;
    a->u = u;
    a->f = f;
    a->name = strdup(name);
    if (kind == AK_STR) {
        a->s = malloc(slen + 1);
        if (a->s) {
            memcpy(a->s, s, slen);
            a->s[slen] = '\0';
        }
    }
    if (!a->name || (kind == AK_STR && !a->s)) {
        free(a->name);
        free(a->s);
        return -1;
    }
    set->n++;
    return 0;
}

int attrs_add_str(struct attr_set *set, const char *name, const char *s)
{
    s = s ? s : "";
    return attrs_add(set, name, AK_STR, s, strlen(s), 0, 0, 0);
}

const struct attr *attrs_find(const struct attr_set *set, const char *name)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->a[i].name, name))
            return &set->a[i];
    return NULL;
}

/* An attribute as text (malloc'd): strings as they are, numbers in decimal. */
char *attr_text(const struct attr *a)
{
    char num[64];
    switch (a->kind) {
    case AK_STR: return strdup(a->s);
    case AK_I32:
    case AK_I64: snprintf(num, sizeof num, "%" PRId64, a->i); break;
    case AK_U64: snprintf(num, sizeof num, "%" PRIu64, a->u); break;
    default: snprintf(num, sizeof num, "%.17g", a->f); break;
    }
    return strdup(num);
}

int is_known_attr(const char *name)
{
    for (size_t i = 0; i < N_KNOWN_ATTRS; i++)
        if (!strcmp(name, known_attrs[i]))
            return 1;
    return 0;
}

/* The provenance of a new file (results.h lists the attributes). */
int attrs_provenance(struct attr_set *set, const struct la_provenance *prov)
{
    char utc[64], host[256], cpu[256], id[32];
    la_utc_now(utc, sizeof utc);
    la_hostname(host, sizeof host);
    la_cpu_model(cpu, sizeof cpu);
    uint64_t rnd;
    if (getrandom(&rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rnd = la_fnv1a(&ts, sizeof ts, LA_FNV1A_SEED) ^ (uint64_t)getpid();
    }
    snprintf(id, sizeof id, "%016" PRIx64, rnd);
    if (attrs_add_str(set, "tool_version", la_version()) ||
        attrs_add_str(set, "git_commit", la_git_commit()) ||
        attrs_add_str(set, "created_utc", utc) || attrs_add_str(set, "host", host) ||
        attrs_add_str(set, "cpu_model", cpu) ||
        attrs_add(set, "threads", AK_I32, NULL, 0, prov->threads, 0, 0) ||
        attrs_add(set, "mpi_ranks", AK_I32, NULL, 0, prov->ranks > 0 ? prov->ranks : 1, 0, 0) ||
        attrs_add_str(set, "blas", la_blas_name()) ||
        attrs_add_str(set, "blas_core", la_blas_core()) ||
        attrs_add_str(set, "compiler", la_compiler()) ||
        attrs_add_str(set, "cflags", la_cflags()) ||
        attrs_add_str(set, "simd_isa", la_simd_path()) ||
        attrs_add_str(set, "vmath_isa", la_vmath_isa()) ||
        attrs_add_str(set, "experiment_name", prov->experiment_name) ||
        attrs_add(set, "seed", AK_U64, NULL, 0, 0, prov->seed, 0) ||
        attrs_add_str(set, ID_ATTR, id) ||
        attrs_add_str(set, "experiment_text", prov->experiment_text) ||
        (prov->cell_context && attrs_add_str(set, "cell_context", prov->cell_context)))
        return -1;
    return 0;
}

/* A copy of every attribute of src appended to dst; 0 or -1 out of memory. */
int attrs_copy(struct attr_set *dst, const struct attr_set *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct attr *a = &src->a[i];
        if (attrs_add(dst, a->name, a->kind, a->s, a->s ? strlen(a->s) : 0, a->i, a->u, a->f))
            return -1;
    }
    return 0;
}

/* Sets string attribute name to s (replacing its value, or appending it). */
int attrs_set_str(struct attr_set *set, const char *name, const char *s)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->a[i].name, name)) {
            char *v = strdup(s);
            if (!v)
                return -1;
            free(set->a[i].s);
            set->a[i].s = v;
            set->a[i].kind = AK_STR;
            return 0;
        }
    return attrs_add_str(set, name, s);
}

int attrs_set_i32(struct attr_set *set, const char *name, int32_t v)
{
    for (size_t i = 0; i < set->n; i++)
        if (!strcmp(set->a[i].name, name)) {
            free(set->a[i].s);
            set->a[i].s = NULL;
            set->a[i].kind = AK_I32;
            set->a[i].i = v;
            return 0;
        }
    return attrs_add(set, name, AK_I32, NULL, 0, v, 0, 0);
}
