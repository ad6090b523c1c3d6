/* journal.c — the crash-recovery journal PATH.journal of a results file: its format, reading
 * it and writing it whole.
 *
 * Format (native byte order, same machine and build): header = "LAJRNL1\n", u32 header
 * bytes, u32 sizeof(struct la_row), u64 layout hash, u32 attribute count, attributes (u8 kind,
 * u16 name length, name, u32 value length, value), u64 FNV-1a of all of it; then records =
 * u32 "LROW", u32 0, u64 FNV-1a of the row, the row (canonical: zero padding).
 * Why there is a journal, appending a record, and keeping journal and .h5 in agreement:
 * results.c.  Touches only the journal descriptor it is given; the locks are results.c's.
 * Shared with the other files of harness/store/ through store_impl.h.
 * Test: make build/tests/test_results && build/tests/test_results (crash points, torn records).
 */
#include "store_impl.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/util.h"

#define J_ROW_MAGIC 0x574F524Cu /* "LROW" */

/* ---- the journal ---------------------------------------------------------------------- */

void journal_free(struct journal *j)
{
    attrs_free(&j->attrs);
    free(j->rows);
    memset(j, 0, sizeof *j);
}

void buf_put(struct buf *b, const void *p, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        while (ncap < b->n + n)
            ncap *= 2;
        unsigned char *np = realloc(b->p, ncap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Writes all of p at offset off of fd; 0 or -1 with errno. */
int pwrite_all(int fd, const void *p, size_t n, off_t off)
{
    const char *s = p;
    while (n) {
        ssize_t w = pwrite(fd, s, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

/* The header as one buffer (written with one write()). */
static int journal_header(const struct attr_set *attrs, struct buf *b)
{
    uint32_t hdr_len = 0, row_size = sizeof(struct la_row), nattrs = (uint32_t)attrs->n;
    uint64_t lh = layout_hash();
    buf_put(b, J_MAGIC, 8);
    buf_put(b, &hdr_len, 4); /* patched below */
    buf_put(b, &row_size, 4);
    buf_put(b, &lh, 8);
    buf_put(b, &nattrs, 4);
    for (size_t i = 0; i < attrs->n; i++) {
        const struct attr *a = &attrs->a[i];
        uint8_t kind = (uint8_t)a->kind;
        uint16_t nl = (uint16_t)strlen(a->name);
        int32_t i32 = (int32_t)a->i;
        const void *v;
        uint32_t vl;
        switch (a->kind) {
        case AK_STR: v = a->s; vl = (uint32_t)strlen(a->s); break;
        case AK_I32: v = &i32; vl = 4; break;
        case AK_I64: v = &a->i; vl = 8; break;
        case AK_U64: v = &a->u; vl = 8; break;
        default: v = &a->f; vl = 8; break;
        }
        buf_put(b, &kind, 1);
        buf_put(b, &nl, 2);
        buf_put(b, a->name, nl);
        buf_put(b, &vl, 4);
        buf_put(b, v, vl);
    }
    if (b->oom)
        return -1;
    hdr_len = (uint32_t)(b->n + 8);
    memcpy(b->p + 8, &hdr_len, 4);
    uint64_t sum = la_fnv1a(b->p, b->n, LA_FNV1A_SEED);
    buf_put(b, &sum, 8);
    return b->oom ? -1 : 0;
}

void journal_record(struct journal_record *rec, const struct la_row *canon)
{
    memset(rec, 0, sizeof *rec);
    rec->magic = J_ROW_MAGIC;
    rec->zero = 0;
    rec->row = *canon;
    rec->sum = la_fnv1a(&rec->row, sizeof rec->row, LA_FNV1A_SEED);
}

/* Parses the header at p[0..n); returns its length, 0 if incomplete or invalid. */
static size_t journal_parse_header(const unsigned char *p, size_t n, struct journal *j)
{
    uint32_t hdr_len, row_size, nattrs;
    uint64_t lh, sum;
    if (n < 36 || memcmp(p, J_MAGIC, 8))
        return 0;
    memcpy(&hdr_len, p + 8, 4);
    if (hdr_len < 36 || hdr_len > n)
        return 0;
    memcpy(&sum, p + hdr_len - 8, 8);
    if (la_fnv1a(p, hdr_len - 8, LA_FNV1A_SEED) != sum)
        return 0;
    memcpy(&row_size, p + 12, 4);
    memcpy(&lh, p + 16, 8);
    memcpy(&nattrs, p + 24, 4);
    if (row_size != sizeof(struct la_row) || lh != layout_hash()) {
        j->foreign = 1;
        return 0;
    }
    size_t off = 28, end = hdr_len - 8;
    for (uint32_t i = 0; i < nattrs; i++) {
        uint8_t kind;
        uint16_t nl;
        uint32_t vl;
        if (off + 3 > end)
            return 0;
        memcpy(&kind, p + off, 1);
        memcpy(&nl, p + off + 1, 2);
        off += 3;
        if (off + nl + 4 > end)
            return 0;
        char name[256];
        if (nl >= sizeof name)
            return 0;
        memcpy(name, p + off, nl);
        name[nl] = '\0';
        off += nl;
        memcpy(&vl, p + off, 4);
        off += 4;
        if (off + vl > end)
            return 0;
        int oom;
        const unsigned char *v = p + off;
        int32_t i32;
        int64_t i64;
        uint64_t u64;
        double f;
        switch (kind) {
        case AK_STR: oom = attrs_add(&j->attrs, name, AK_STR, (const char *)v, vl, 0, 0, 0); break;
        case AK_I32:
            if (vl != 4)
                return 0;
            memcpy(&i32, v, 4);
            oom = attrs_add(&j->attrs, name, AK_I32, NULL, 0, i32, 0, 0);
            break;
        case AK_I64:
            if (vl != 8)
                return 0;
            memcpy(&i64, v, 8);
            oom = attrs_add(&j->attrs, name, AK_I64, NULL, 0, i64, 0, 0);
            break;
        case AK_U64:
            if (vl != 8)
                return 0;
            memcpy(&u64, v, 8);
            oom = attrs_add(&j->attrs, name, AK_U64, NULL, 0, 0, u64, 0);
            break;
        case AK_F64:
            if (vl != 8)
                return 0;
            memcpy(&f, v, 8);
            oom = attrs_add(&j->attrs, name, AK_F64, NULL, 0, 0, 0, f);
            break;
        default: return 0;
        }
        if (oom)
            return 0;
        off += vl;
    }
    return hdr_len;
}

/* Reads the journal on fd: header and the good records before the first bad or short one.
 * A missing, empty or torn header leaves j->valid 0 (not an error). */
int journal_load(int fd, const char *jpath, struct journal *j, struct la_error *err)
{
    memset(j, 0, sizeof *j);
    struct stat st;
    if (fstat(fd, &st) != 0)
        return LA_FAIL(err, LA_EIO, "cannot read %s: %s", jpath, strerror(errno));
    size_t size = (size_t)st.st_size;
    if (size == 0)
        return LA_OK;
    unsigned char *p = malloc(size);
    if (!p)
        return LA_FAIL(err, LA_ENOMEM, "out of memory reading %s", jpath);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, p + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    size_t off = journal_parse_header(p, got, j);
    if (off == 0) {
        attrs_free(&j->attrs);
        free(p);
        return LA_OK;
    }
    j->valid = 1;
    size_t recsize = sizeof(struct journal_record);
    j->cap = (got - off) / recsize + 1;
    j->rows = malloc(j->cap * sizeof *j->rows);
    if (!j->rows) {
        free(p);
        journal_free(j);
        return LA_FAIL(err, LA_ENOMEM, "out of memory reading %s", jpath);
    }
    while (off + recsize <= got) {
        struct journal_record rec;
        memcpy(&rec, p + off, recsize);
        if (rec.magic != J_ROW_MAGIC || rec.zero != 0 ||
            la_fnv1a(&rec.row, sizeof rec.row, LA_FNV1A_SEED) != rec.sum)
            break;
        j->rows[j->n++] = rec.row;
        off += recsize;
    }
    j->end = (off_t)off;
    free(p);
    return LA_OK;
}

/* Replaces the journal's content by a header and rows (the journal stays the same file, so the
 * writer's lock on it holds).  It is only ever called with rows of a healthy .h5, so a crash
 * halfway is repaired by the next open: a torn header makes the journal invalid and a short
 * one a prefix of the .h5, and either way the journal is regenerated from the .h5 again. */
int journal_rewrite(int fd, const char *jpath, const struct attr_set *attrs,
                    const struct la_row *rows, size_t n, off_t *end, struct la_error *err)
{
    struct buf b = {0};
    if (journal_header(attrs, &b) != 0) {
        free(b.p);
        return LA_FAIL(err, LA_ENOMEM, "out of memory writing %s", jpath);
    }
    for (size_t i = 0; i < n && !b.oom; i++) {
        struct journal_record rec;
        journal_record(&rec, &rows[i]);
        buf_put(&b, &rec, sizeof rec);
    }
    int rc = LA_OK;
    if (b.oom)
        rc = LA_FAIL(err, LA_ENOMEM, "out of memory writing %s", jpath);
    else if (ftruncate(fd, 0) != 0 || pwrite_all(fd, b.p, b.n, 0) != 0)
        rc = LA_FAIL(err, LA_EIO, "cannot write %s: %s", jpath, strerror(errno));
    else
        *end = (off_t)b.n;
    free(b.p);
    return rc;
}

int journal_path(const char *path, char *jpath, size_t cap, struct la_error *err)
{
    if (snprintf(jpath, cap, "%s%s", path, JOURNAL_SUFFIX) >= (int)cap)
        return LA_FAIL(err, LA_EINVAL, "results path too long: %s", path);
    return LA_OK;
}
