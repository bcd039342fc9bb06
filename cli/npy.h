/* Writing NumPy .npy files (format version 1.0), little-endian float32, C order. */
#ifndef MTLA_CLI_NPY_H
#define MTLA_CLI_NPY_H

#include <stddef.h>

/* Writes a rows x cols matrix to `path` atomically: into a temporary file in the same
 * directory, then renamed over `path`, so a failure (full disk, Ctrl-C) never leaves a
 * half-written file. `path` "-" writes to standard output. Returns 0 on success; on failure
 * fills `message` and returns -1. */
int npy_write_f32(const char *path, const float *data, size_t rows, size_t cols, char *message,
                  size_t message_size);

/* Reads a 2-D little-endian float32 C-order .npy file (what npy_write_f32 and NumPy write).
 * *data is malloc'ed. Returns 0 on success; on failure fills `message` and returns -1. */
int npy_read_f32(const char *path, float **data, size_t *rows, size_t *cols, char *message,
                 size_t message_size);

#endif
