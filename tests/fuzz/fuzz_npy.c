/* .npy feature files (cli/npy.c, mtla-st --input-features), then written back and read again:
 * what the reader accepts the writer reproduces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/npy.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir("npy");
    char *path = fuzz_write_file(dir, "features.npy", data, size);
    float *frames = NULL;
    size_t rows = 0, cols = 0;
    char message[512];
    if (npy_read_f32(path, &frames, &rows, &cols, message, sizeof message) == 0) {
        char *copy = fuzz_write_file(dir, "copy.npy", "", 0);
        float *again = NULL;
        size_t rows2 = 0, cols2 = 0;
        if (npy_write_f32(copy, frames, rows, cols, message, sizeof message) != 0 ||
            npy_read_f32(copy, &again, &rows2, &cols2, message, sizeof message) != 0 ||
            rows2 != rows || cols2 != cols ||
            (rows * cols && memcmp(again, frames, rows * cols * sizeof *frames) != 0))
            abort();
        free(again);
        free(copy);
        free(frames);
    }
    free(path);
    return 0;
}
