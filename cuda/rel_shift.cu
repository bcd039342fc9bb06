/* The relative-position term of ESPnet rel_pos attention (core/ops.h rel_shift_add,
 * docs/architecture.md 2.4): scores[i * t + j] += bd[i * ld_bd + (t - 1 - i + j)] for
 * i, j < t, bd row i holding relative positions t-1 .. -(t-1).
 *
 * Layout: scores [t, t] contiguous; bd [t, >= 2t-1] with row stride ld_bd.
 * Launch: MTLA_CUDA_THREADS threads per block, a grid-stride loop over the t * t scores,
 * consecutive threads on consecutive j (coalesced in both scores and bd). */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

__global__ void rel_shift_add_kernel(float *scores, int64_t t, const float *bd, int64_t ld_bd)
{
    for (int64_t n = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; n < t * t;
         n += (int64_t)gridDim.x * blockDim.x) {
        int64_t i = n / t, j = n - i * t;
        scores[n] += bd[i * ld_bd + (t - 1 - i + j)];
    }
}

cudaError_t mtla_cuda_rel_shift_add(cudaStream_t stream, float *scores, int64_t t, const float *bd,
                                    int64_t ld_bd)
{
    if (t <= 0)
        return cudaSuccess;
    rel_shift_add_kernel<<<mtla_cuda_grid(t * t), MTLA_CUDA_THREADS, 0, stream>>>(scores, t, bd,
                                                                                  ld_bd);
    return cudaGetLastError();
}
