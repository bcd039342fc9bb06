/* A sharded tensor set (core/safetensors.c): model.safetensors.index.json and its shards, the
 * input split at FUZZ_SEPARATOR into the index and up to 4 shards, written as
 * model-0000K-of-0000N.safetensors (N: the number of shards). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/safetensors.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part parts[5];
    size_t n = fuzz_split(data, size, FUZZ_SEPARATOR, parts, 5);
    const char *dir = fuzz_fresh_dir("index");
    free(fuzz_write_file(dir, MTLA_SAFETENSORS_INDEX, parts[0].data, parts[0].size));
    for (size_t k = 1; k < n; k++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", k, n - 1);
        free(fuzz_write_file(dir, name, parts[k].data, parts[k].size));
    }
    mtla_safetensors_set *set = NULL;
    mtla_error err;
    if (mtla_safetensors_set_open(dir, &set, &err) == MTLA_OK) {
        for (size_t i = 0; i < set->count; i++)
            if (mtla_safetensors_set_find(set, set->tensors[i]->name) != set->tensors[i])
                abort();
        for (size_t i = 0; i < set->file_count; i++)
            mtla_safetensors_set_unmap(set, i);
        mtla_safetensors_set_close(set);
    }
    return 0;
}
