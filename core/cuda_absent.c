/* Build information for a library built without the CUDA backend (no nvcc at configure time,
 * or -DMTLA_ST_CUDA=OFF). */
#include <stdio.h>

#include "mtla-st.h"

int32_t mtla_cuda_device_count(char *detail, size_t detail_size)
{
    if (detail && detail_size > 0)
        snprintf(detail, detail_size, "built without CUDA");
    return 0;
}
