/* Helpers shared by the libFuzzer harnesses (tests/fuzz/, docs/fuzzing.md): a private scratch
 * directory per process, files written into it, and the input split into parts. */
#ifndef MTLA_FUZZ_COMMON_H
#define MTLA_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* What separates the parts of a multi-file input (model directory, shard index, CLI argv
 * uses NUL instead). Listed in tests/fuzz/json.dict so that mutations can insert it. */
#define FUZZ_SEPARATOR "\n--mtla-fuzz-part--\n"

/* The process's scratch directory (made on first use under $TMPDIR or /tmp, removed with
 * everything in it at exit). Aborts if it cannot be made: a harness without it tests nothing. */
const char *fuzz_scratch_dir(void);

/* A subdirectory `name` of the scratch directory, emptied (made if missing); its path. */
const char *fuzz_fresh_dir(const char *name);

/* Writes `size` bytes to dir/name (replacing it); returns the malloc'ed path. Aborts on I/O
 * failure, since that is the harness's problem, not the code under test's. */
char *fuzz_write_file(const char *dir, const char *name, const void *data, size_t size);

/* Removes everything inside `dir` (not `dir` itself). */
void fuzz_empty_dir(const char *dir);

typedef struct fuzz_part {
    const uint8_t *data;
    size_t size;
} fuzz_part;

/* Splits data at each occurrence of `sep` into at most `max` parts (the last one keeps any
 * further separators); returns the number of parts (1 when `sep` does not occur). */
size_t fuzz_split(const uint8_t *data, size_t size, const char *sep, fuzz_part *parts, size_t max);

#endif
