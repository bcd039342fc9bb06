/* Output files that appear whole or not at all: written into a temporary file in the same
 * directory, flushed to disk, then renamed over the final name. A failure (full disk, Ctrl-C,
 * a crash) never leaves a half-written file under the final name. */
#ifndef MTLA_CLI_ATOMIC_FILE_H
#define MTLA_CLI_ATOMIC_FILE_H

#include <stdio.h>

typedef struct atomic_file {
    FILE *f;    /* write here */
    char *path; /* the final name */
    char *tmp;  /* the temporary name */
} atomic_file;

/* Creates the temporary file (missing parent directories are created too). Returns 0, or -1
 * with a message naming the path and the reason. */
int atomic_file_open(atomic_file *a, const char *path, char *message, size_t size);
/* Flushes, syncs and renames into place. Returns 0, or -1 with a message; the temporary file
 * is removed either way. */
int atomic_file_commit(atomic_file *a, char *message, size_t size);
/* Discards the temporary file. */
void atomic_file_abort(atomic_file *a);

/* The temporary file currently open, for removal from a signal handler (or NULL). */
extern const char *volatile atomic_file_pending;

#endif
