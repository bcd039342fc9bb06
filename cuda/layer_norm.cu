/* LayerNorm over rows (torch.nn.LayerNorm; core/ops.h layer_norm):
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta, var biased,
 * in two passes over the row (mean, then squared deviations from it), as core/ops_cpu.c.
 *
 * Layout: x, y [rows, dim] row-major and contiguous; gamma, beta [dim].
 * Launch: one block of MTLA_CUDA_THREADS threads per row (grid-stride over rows). Thread i
 * sums elements i, i + THREADS, ... in order; a shared-memory tree (cuda/reduce.cuh) combines
 * the partial sums. */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

__global__ void __launch_bounds__(MTLA_CUDA_THREADS)
    layer_norm_kernel(const float *x, int64_t rows, int64_t dim, const float *gamma,
                      const float *beta, float eps, float *y)
{
    __shared__ float buf[MTLA_CUDA_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        float sum = 0.0f;
        for (int64_t i = threadIdx.x; i < dim; i += MTLA_CUDA_THREADS)
            sum += xr[i];
        float mean = mtla_block_sum(sum, buf) / (float)dim;
        float dev = 0.0f;
        for (int64_t i = threadIdx.x; i < dim; i += MTLA_CUDA_THREADS) {
            float d = xr[i] - mean;
            dev += d * d;
        }
        float var = mtla_block_sum(dev, buf) / (float)dim;
        float inv = 1.0f / sqrtf(var + eps);
        for (int64_t i = threadIdx.x; i < dim; i += MTLA_CUDA_THREADS)
            yr[i] = (xr[i] - mean) * inv * gamma[i] + beta[i];
    }
}

cudaError_t mtla_cuda_layer_norm(cudaStream_t stream, const float *x, int64_t rows, int64_t dim,
                                 const float *gamma, const float *beta, float eps, float *y)
{
    if (rows <= 0 || dim <= 0)
        return cudaSuccess;
    layer_norm_kernel<<<mtla_cuda_row_grid(rows), MTLA_CUDA_THREADS, 0, stream>>>(
        x, rows, dim, gamma, beta, eps, y);
    return cudaGetLastError();
}
