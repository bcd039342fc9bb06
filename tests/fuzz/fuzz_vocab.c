/* vocab.txt through the tokenizer (tokenizer/tokenizer.c) with a valid SentencePiece model
 * beside it: loading, then decoding every id and encoding a sentence. */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "tokenizer/tokenizer.h"

#ifndef MTLA_FUZZ_SPM_MODEL
#error "MTLA_FUZZ_SPM_MODEL: path of a valid tokenizer.model (tests/fuzz/CMakeLists.txt)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir("vocab");
    char *path = fuzz_write_file(dir, "vocab.txt", data, size);
    const mtla_special_ids specials = {0, 1, 2, 3};
    mtla_tokenizer *tok = NULL;
    mtla_error err;
    if (mtla_tokenizer_open(MTLA_FUZZ_SPM_MODEL, path, &specials, &tok, &err) == MTLA_OK) {
        int32_t n = mtla_tokenizer_size(tok);
        int32_t ids[64];
        size_t count = 0;
        for (int32_t id = 0; id < n && count < 64; id++)
            ids[count++] = id;
        char *text = NULL;
        if (mtla_tokenizer_decode(tok, ids, count, &text, &err) == MTLA_OK)
            free(text);
        int32_t *encoded = NULL;
        if (mtla_tokenizer_encode(tok, "hello world, this is a test", &encoded, &count, &err) ==
            MTLA_OK)
            free(encoded);
        mtla_tokenizer_free(tok);
    }
    free(path);
    return 0;
}
