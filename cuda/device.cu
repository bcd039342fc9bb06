/* CUDA device discovery for the build information of mtla-st (`mtla-st --version`), reached
 * through the plugin's table (mtla_cuda_device_count in core/cuda_backend.c). */
#include <cuda_runtime.h>
#include <stdio.h>

#include "cuda/ops_cuda.h"

extern "C" int32_t mtla_ops_cuda_device_count(char *detail, size_t detail_size)
{
    int runtime = 0;
    cudaRuntimeGetVersion(&runtime);
    int count = 0;
    cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (detail && detail_size > 0)
            snprintf(detail, detail_size, "CUDA runtime %d.%d built in; no usable device (%s)",
                     runtime / 1000, (runtime % 1000) / 10, cudaGetErrorString(status));
        cudaGetLastError(); /* clear the sticky error for later callers */
        return 0;
    }
    if (detail && detail_size > 0) {
        struct cudaDeviceProp prop;
        if (count > 0 && cudaGetDeviceProperties(&prop, 0) == cudaSuccess)
            snprintf(detail, detail_size, "CUDA runtime %d.%d; %d device(s), first: %s (sm_%d%d)",
                     runtime / 1000, (runtime % 1000) / 10, count, prop.name, prop.major,
                     prop.minor);
        else
            snprintf(detail, detail_size, "CUDA runtime %d.%d; %d device(s)", runtime / 1000,
                     (runtime % 1000) / 10, count);
    }
    return (int32_t)count;
}
