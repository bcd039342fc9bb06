/* tokenizer.model through the C++ shim (tokenizer/spm_shim.cc): SentencePiece's loader on any
 * bytes must fail with a message, never crash or throw into C; a model that loads encodes. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "tokenizer/spm_shim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir("spm");
    char *path = fuzz_write_file(dir, "tokenizer.model", data, size);
    spm_shim *shim = NULL;
    char message[256];
    if (spm_shim_load(path, &shim, message, sizeof message) == 0) {
        char **pieces = NULL;
        size_t count = 0;
        if (spm_shim_encode(shim, "hello world, this is a test", &pieces, &count, message,
                            sizeof message) == 0)
            spm_shim_free_pieces(pieces, count);
        spm_shim_free(shim);
    }
    free(path);
    return 0;
}
