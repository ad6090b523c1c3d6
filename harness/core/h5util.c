/* h5util.c — one reader for HDF5 string attributes (h5util.h), used by every place that reads
 * one (store/h5io.c, featuremaps/learned.c), so a file written by h5py, pandas or the HDF5
 * tools reads the same everywhere; and the lock-free file access every reader and the results
 * writer use (la_h5_nolock_fapl, la_h5_open_readonly).
 *
 * The forms: h5py stores a Python str as a variable-length UTF-8 string, np.bytes_ as a
 * fixed-length null-padded ASCII string, and the C API defaults to null-terminated; Fortran
 * and some tools pad with spaces.  A variable-length string is read with a memory type of the
 * file's character set (HDF5 refuses to convert between ASCII and UTF-8); a fixed-length one
 * is read as its raw bytes (the file's own type) and cut here: at the first NUL, and for
 * space padding before the trailing spaces.  Converting to a fixed C string instead would drop
 * the last character of a null-padded string that fills its size.
 * Not here: numeric attributes, writing attributes.  Also here: the LeakSanitizer suppression for libhdf5.
 * Tests: tests/h5strings.sh (every form, written by Debian's python3-h5py).
 */
#include "h5util.h"

#include <stdlib.h>
#include <string.h>

static int read_str(hid_t loc, const char *name, char **out)
{
    int rc = -1;
    hid_t a = -1, ft = -1, mt = -1, sp = -1;
    if (H5Aexists(loc, name) <= 0)
        return -1;
    if ((a = H5Aopen(loc, name, H5P_DEFAULT)) < 0 || (ft = H5Aget_type(a)) < 0 ||
        H5Tget_class(ft) != H5T_STRING || (sp = H5Aget_space(a)) < 0 ||
        H5Sget_simple_extent_npoints(sp) != 1)
        goto done;
    const H5T_cset_t cset = H5Tget_cset(ft);
    if (cset < 0)
        goto done;
    const htri_t vlen = H5Tis_variable_str(ft);
    if (vlen < 0)
        goto done;
    if (vlen) {
        char *v = NULL;
        if ((mt = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(mt, H5T_VARIABLE) < 0 ||
            H5Tset_cset(mt, cset) < 0 || H5Aread(a, mt, &v) < 0)
            goto done;
        *out = strdup(v ? v : "");
        H5free_memory(v);
        rc = *out ? 0 : -2;
        goto done;
    }
    const size_t size = H5Tget_size(ft);
    const H5T_str_t pad = H5Tget_strpad(ft);
    if (size == 0 || pad < 0)
        goto done;
    char *v = calloc(size + 1, 1);
    if (!v) {
        rc = -2;
        goto done;
    }
    if ((mt = H5Tcopy(ft)) < 0 || H5Aread(a, mt, v) < 0) {
        free(v);
        goto done;
    }
    size_t len = strlen(v); /* v[size] is 0: stops at the first NUL or the end */
    if (pad == H5T_STR_SPACEPAD)
        while (len > 0 && v[len - 1] == ' ')
            len--;
    v[len] = '\0';
    *out = v;
    rc = 0;
done:
    if (mt >= 0)
        H5Tclose(mt);
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0)
        H5Tclose(ft);
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

int la_h5_read_str_attr(hid_t loc, const char *name, char **out)
{
    int rc = -1;
    *out = NULL;
    H5E_BEGIN_TRY
    {
        rc = read_str(loc, name, out);
    }
    H5E_END_TRY;
    if (rc) {
        free(*out);
        *out = NULL;
    }
    return rc;
}

/* Sanitizer builds (make asan): libhdf5 1.10.8 leaks on its own error paths (a failed H5Fopen
 * of a damaged file keeps a few hundred bytes), and its frames carry no symbols, so
 * LeakSanitizer is told to ignore what libhdf5 allocated.  Other builds never call this.  Weak,
 * so a program with its own list (tests/fuzz_experiment.c) replaces it. */
const char *__lsan_default_suppressions(void);
__attribute__((weak)) const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5_serial.so\n";
}

/* ... and not to list the suppressed leaks on stderr, which must stay one line on errors. */
const char *__lsan_default_options(void);
const char *__lsan_default_options(void)
{
    return "print_suppressions=0";
}

/* Neither readers nor the writer take HDF5's file lock.  One writer at a time is ensured by
 * the writer's lock on the journal; without an HDF5 lock held by the writer, h5py and pandas
 * can read a file that a run is still appending to (HDF5's lock would refuse them), and no
 * filesystem without flock (some cluster filesystems) trips HDF5. */
hid_t la_h5_nolock_fapl(void)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_file_locking(fapl, 0, 1) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

hid_t la_h5_open_readonly(const char *path)
{
    hid_t fapl = la_h5_nolock_fapl();
    if (fapl < 0)
        return -1;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    return f;
}
