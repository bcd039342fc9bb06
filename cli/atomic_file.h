/* Output files that appear whole or not at all: written into a temporary file in the same
 * directory, flushed to disk, then renamed over the final name. A failure (full disk, Ctrl-C,
 * a crash) never leaves a half-written file under the final name.
 *
 * The temporary file is NAME.mtla-st.tmp.XXXXXX beside NAME, and its writer holds an flock()
 * on it until it is renamed or removed. The kernel drops that lock when the process dies,
 * however it dies (SIGKILL, a crash), so a temporary file whose lock can be taken belongs to
 * nobody: atomic_file_remove_stale() deletes those, and leaves alone the ones other processes
 * (another shard writing to the same directory) are still writing. */
#ifndef MTLA_CLI_ATOMIC_FILE_H
#define MTLA_CLI_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

typedef struct atomic_file {
    FILE *f;    /* write here */
    char *path; /* the final name */
    char *tmp;  /* the temporary name */
} atomic_file;

/* Creates the temporary file (missing parent directories are created too) and locks it.
 * Returns 0, or -1 with a message naming the path and the reason. */
int atomic_file_open(atomic_file *a, const char *path, char *message, size_t size);
/* Flushes, syncs and renames into place. Returns 0, or -1 with a message; the temporary file
 * is removed either way. */
int atomic_file_commit(atomic_file *a, char *message, size_t size);
/* Discards the temporary file. */
void atomic_file_abort(atomic_file *a);

/* Deletes the temporary files in `dir` left by writers that died before renaming them (their
 * lock is free); adds their number to *removed. A missing directory has none. Returns 0, or -1
 * with a message when `dir` cannot be read or a stale file cannot be removed. */
int atomic_file_remove_stale(const char *dir, size_t *removed, char *message, size_t size);

/* The temporary file currently open, for removal from a signal handler (or NULL). */
extern const char *volatile atomic_file_pending;

#endif
