/* One safetensors file (core/safetensors.c): the header checks, then every tensor converted to
 * fp32 the way the model loader does, so a header that passes can only point inside the file. */
#include <stdint.h>
#include <stdlib.h>

#include "core/safetensors.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_fresh_dir("safetensors");
    char *path = fuzz_write_file(dir, "model.safetensors", data, size);
    mtla_safetensors *file = NULL;
    mtla_error err;
    if (mtla_safetensors_open(path, "model.safetensors", &file, &err) == MTLA_OK) {
        for (size_t i = 0; i < file->count; i++) {
            const mtla_st_tensor *t = &file->tensors[i];
            if (mtla_safetensors_find(file, t->name) != t)
                abort(); /* names are unique and sorted: lookup must find this very entry */
            if (t->count > 0 && t->count <= (1u << 20)) {
                float *out = malloc(t->count * sizeof *out);
                if (out)
                    mtla_convert_to_f32(t->dtype, t->data, t->count, out);
                free(out);
            }
            char shape[256];
            mtla_shape_format(t->shape, t->ndim, shape, sizeof shape);
        }
        mtla_safetensors_close(file);
    }
    free(path);
    return 0;
}
