/* File and text helpers of the model loader (core/model_dir.c, core/safetensors.c): whole-file
 * reads with a size bound, paths inside a directory, strict UTF-8 checking. */
#ifndef MTLA_CORE_FILEIO_H
#define MTLA_CORE_FILEIO_H

#include <stddef.h>

#include "mtla-st.h"

/* "dir/name", malloc'ed; NULL when out of memory. */
char *mtla_path_join(const char *dir, const char *name);

/* Reads the regular file `name` of model directory `dir` whole into a malloc'ed buffer with a
 * NUL after the last byte (*data, *size). A file larger than `max_size` is refused. Messages
 * read "model directory 'DIR': NAME not found", "NAME is larger than ...". */
mtla_status mtla_dir_read_file(const char *dir, const char *name, size_t max_size, char **data,
                               size_t *size, mtla_error *err);

/* Non-zero when `bytes` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF). Otherwise 0, with the offset of the first bad byte in *bad_at. */
int mtla_utf8_valid(const char *bytes, size_t size, size_t *bad_at);

/* `s` made fit for a one-line message: at most 80 bytes shown (then "..."), control characters
 * replaced by '?'. Writes into `buf` (`size` >= 96 recommended) and returns it. */
const char *mtla_printable(const char *s, char *buf, size_t size);

#endif
