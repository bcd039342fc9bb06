/* Token embedding lookup (core/ops.h embed): y[i, :] = scale * table[ids[i], :].
 *
 * Layout: table [V, dim] and y [n, dim] row-major; ids [n] int32 in device memory
 * (cuda/ops_cuda.cu copies the caller's host ids into its device scratch first).
 * Launch: MTLA_CUDA_THREADS threads per block, a grid-stride loop over n * dim outputs,
 * consecutive threads on consecutive columns (coalesced reads of each table row). */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

__global__ void embed_kernel(const float *table, int64_t dim, const int32_t *ids, int64_t n,
                             float scale, float *y)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n * dim;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t row = i / dim, d = i - row * dim;
        y[i] = scale * table[(int64_t)ids[row] * dim + d];
    }
}

cudaError_t mtla_cuda_embed(cudaStream_t stream, const float *table, int64_t dim,
                            const int32_t *ids, int64_t n, float scale, float *y)
{
    if (n <= 0 || dim <= 0)
        return cudaSuccess;
    embed_kernel<<<mtla_cuda_grid(n * dim), MTLA_CUDA_THREADS, 0, stream>>>(table, dim, ids, n,
                                                                            scale, y);
    return cudaGetLastError();
}
