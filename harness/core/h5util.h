/* h5util.h — HDF5 helpers below every other module (h5util.c): reading string attributes in
 * every form other tools write, and opening files without HDF5's file lock.
 * Not here: writing attributes (store/h5io.c, cli/cmd_featuremap.c write their own).
 * Tests: tests/h5strings.sh (files written by h5py), tests/test_results.c.
 */
#ifndef LA_H5UTIL_H
#define LA_H5UTIL_H

#include <hdf5.h>

/* Reads the string attribute `name` of loc (one value: scalar or a one-element array) into a
 * fresh NUL-terminated string *out (free()).  Accepts variable- and fixed-length strings,
 * ASCII or UTF-8, null-terminated, null-padded or space-padded (trailing spaces dropped).
 * Returns 0, -1 when the attribute is missing, not a string, not one value or does not read
 * (*out NULL), -2 when out of memory.  Prints no HDF5 error stack on its own failures. */
int la_h5_read_str_attr(hid_t loc, const char *name, char **out);

/* A file-access property list that takes no HDF5 file lock (H5Pclose it); negative on failure. */
hid_t la_h5_nolock_fapl(void);
/* Opens any HDF5 file read-only without HDF5's file lock (so a file another process has open
 * for writing still reads, as h5py does); a negative id on failure. */
hid_t la_h5_open_readonly(const char *path);

#endif
