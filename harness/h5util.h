/* h5util.h — reading HDF5 string attributes in every form other tools write (h5util.c).
 * Not here: writing attributes (results.c, cli_featuremap.c write their own).
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

#endif
