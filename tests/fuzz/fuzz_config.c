/* config.json: parsing and validation (core/config.c), then the tensor table and description
 * a valid config leads to (core/model_dir.c), as mtla_model_dir_open uses them. */
#include <stdint.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/model_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mtla_model_config config;
    mtla_error err;
    if (mtla_model_config_parse((const char *)data, size, &config, &err) != MTLA_OK)
        return 0;
    mtla_tensor_spec *specs = NULL;
    size_t count = 0;
    if (mtla_model_tensor_specs(&config, &specs, &count, &err) == MTLA_OK) {
        char line[256];
        mtla_model_describe(&config, mtla_model_parameter_count(specs, count), line, sizeof line);
        free(specs);
    }
    (void)mtla_model_config_max_frames(&config);
    return 0;
}
