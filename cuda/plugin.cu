/* The one symbol libmtla-st-cuda.so exports (core/cuda_backend.h): the table through which
 * core/cuda_backend.c reaches cuda/ops_cuda.h after dlopen(). Everything else in the plugin,
 * the static CUDA runtime included, is hidden (CMakeLists.txt). */
#include "core/cuda_backend.h"
#include "cuda/ops_cuda.h"
#include "mtla-st.h"

#define MTLA_STRINGIFY2(x) #x
#define MTLA_STRINGIFY(x) MTLA_STRINGIFY2(x)

static const mtla_cuda_backend backend = {
    MTLA_CUDA_BACKEND_ABI,
    (uint32_t)sizeof(mtla_ops),
    MTLA_STRINGIFY(MTLA_ST_VERSION_MAJOR) "." MTLA_STRINGIFY(
        MTLA_ST_VERSION_MINOR) "." MTLA_STRINGIFY(MTLA_ST_VERSION_PATCH),
    mtla_ops_cuda_create,
    mtla_ops_cuda_check,
    mtla_ops_cuda_free,
    mtla_ops_cuda_device_count,
};

extern "C" __attribute__((visibility("default"))) const mtla_cuda_backend *
mtla_cuda_backend_v1(void)
{
    return &backend;
}
