/* Helpers for the Criterion suites: fixture paths, .npy files, audio loading, running the
 * mtla-st executable with a given standard input. */
#ifndef MTLA_TEST_SUPPORT_H
#define MTLA_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "mtla-st.h"

/* Absolute path of a file in the source tree, e.g. fixture("tests/golden/frontend/x.npy").
 * Returns a static buffer per call slot (rotating over 8), enough for one expression. */
const char *fixture(const char *relative);

/* A float32 2-D array loaded from a .npy file (as NumPy writes them). */
typedef struct npy_array {
    float *data;
    size_t rows;
    size_t cols;
} npy_array;

/* Loads `path`; aborts the current test with a message on any problem. */
npy_array npy_load(const char *path);
/* Parses a .npy image held in memory (e.g. captured from standard output). */
npy_array npy_parse(const unsigned char *bytes, size_t size);
void npy_free(npy_array *a);

/* Decodes a whole input to 16 kHz mono with the library; aborts the test on failure. */
float *load_audio(const char *path, size_t *count);

/* Largest |a[i] - b[i]|. */
double max_abs_diff(const float *a, const float *b, size_t n);

/* Runs the mtla-st executable with `argv` (argv[0] is ignored), feeding `input` (may be NULL
 * for an empty standard input) and capturing stdout and stderr. Returns the exit status, or
 * 128 + signal number when it died from a signal. */
typedef struct cli_result {
    int status;
    unsigned char *out; /* NUL-terminated after out_size bytes */
    size_t out_size;
    char *err; /* NUL-terminated */
} cli_result;

cli_result run_cli(const char *const *argv, const void *input, size_t input_size);
/* The same with files limited to `file_size_limit` bytes (RLIMIT_FSIZE): writing past it
 * fails as on a full disk. */
cli_result run_cli_limited(const char *const *argv, const void *input, size_t input_size,
                           long file_size_limit);
void cli_result_free(cli_result *r);

/* A running mtla-st whose standard input, output and error are pipes held by the test (for
 * live streams, closed pipes and kills). SIGPIPE is ignored in the test process, so writing to
 * a child that has gone fails instead of killing the test. */
/* In a forked child: replaces it with mtla-st (argv[0] is ignored), or exits 127. */
_Noreturn void exec_cli(const char *const *argv);

typedef struct cli_child {
    int pid;
    int in, out, err; /* write to `in`; read `out` and `err` */
} cli_child;

enum {
    CLI_SPAWN_IGNORE_SIGPIPE = 1 /* the child starts with SIGPIPE ignored (as under some
                                    supervisors), so a write to a closed pipe fails with EPIPE */
};

/* Starts mtla-st with `argv` (argv[0] is ignored); `flags`: CLI_SPAWN_*. */
cli_child cli_spawn(const char *const *argv, int flags);
/* Closes `in` if still open, reads stdout (returned, NUL-terminated) and stderr (into *err when
 * not NULL, else dropped) until the child closes them, and reaps it: *status is its exit
 * status, or 128 + signal number. */
char *cli_child_finish(cli_child *c, int *status, char **err);

/* Resident set size of process `pid` in KiB (VmRSS), or -1 when it is gone. */
long process_rss_kib(int pid);

/* A new empty directory /tmp/mtla-test-XXXXXX (malloc'ed path); aborts the test on failure. */
char *make_temp_dir(void);
/* "dir/name", malloc'ed. */
char *path_join(const char *dir, const char *name);

/* Reads a whole file into memory; aborts the test on failure. */
unsigned char *read_file(const char *path, size_t *size);

#endif
