/* A whole model directory through the public loader (mtla_model_open: core/model_dir.c, then
 * the tokenizer): the input split at FUZZ_SEPARATOR into config.json, vocab.txt,
 * model.safetensors and tokenizer.model (a missing part is a missing file). */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "mtla-st.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"config.json", "vocab.txt", "model.safetensors",
                                        "tokenizer.model"};
    fuzz_part parts[4];
    size_t n = fuzz_split(data, size, FUZZ_SEPARATOR, parts, 4);
    const char *dir = fuzz_fresh_dir("model");
    for (size_t k = 0; k < n; k++)
        free(fuzz_write_file(dir, names[k], parts[k].data, parts[k].size));
    mtla_model *model = NULL;
    mtla_error err;
    if (mtla_model_open(dir, &model, &err) == MTLA_OK) {
        mtla_fbank_params fbank = mtla_model_fbank_params(model);
        (void)fbank;
        (void)mtla_model_frontend_type(model);
        (void)mtla_model_max_input_ms(model);
        mtla_model_close(model);
    }
    return 0;
}
