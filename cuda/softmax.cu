/* Softmax and log-softmax over rows, in place (core/ops.h softmax, log_softmax):
 *   softmax:     x_i = e^(x_i - max) / sum_j e^(x_j - max)
 *   log_softmax: x_i = x_i - (max + log sum_j e^(x_j - max))
 * subtracting the row maximum first, as core/ops_cpu.c (which sums in double; here float).
 *
 * Layout: rows of `cols` values, row r at x + r * ld (log_softmax: ld = cols).
 * Launch: one block of MTLA_CUDA_THREADS threads per row (grid-stride over rows): a block tree
 * for the maximum, another for the sum (cuda/reduce.cuh), then every thread writes its strided
 * elements. */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

template <int LOG>
__global__ void __launch_bounds__(MTLA_CUDA_THREADS)
    softmax_kernel(float *x, int64_t rows, int64_t cols, int64_t ld)
{
    __shared__ float buf[MTLA_CUDA_THREADS];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        float *xr = x + r * ld;
        float max = -INFINITY;
        for (int64_t i = threadIdx.x; i < cols; i += MTLA_CUDA_THREADS)
            max = fmaxf(max, xr[i]);
        max = mtla_block_max(max, buf);
        float sum = 0.0f;
        for (int64_t i = threadIdx.x; i < cols; i += MTLA_CUDA_THREADS)
            sum += expf(xr[i] - max);
        sum = mtla_block_sum(sum, buf);
        if (LOG) {
            float log_sum = max + logf(sum);
            for (int64_t i = threadIdx.x; i < cols; i += MTLA_CUDA_THREADS)
                xr[i] = xr[i] - log_sum;
        } else {
            for (int64_t i = threadIdx.x; i < cols; i += MTLA_CUDA_THREADS)
                xr[i] = expf(xr[i] - max) / sum;
        }
    }
}

cudaError_t mtla_cuda_softmax(cudaStream_t stream, float *x, int64_t rows, int64_t cols, int64_t ld)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    softmax_kernel<0>
        <<<mtla_cuda_row_grid(rows), MTLA_CUDA_THREADS, 0, stream>>>(x, rows, cols, ld);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_log_softmax(cudaStream_t stream, float *x, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    softmax_kernel<1>
        <<<mtla_cuda_row_grid(rows), MTLA_CUDA_THREADS, 0, stream>>>(x, rows, cols, cols);
    return cudaGetLastError();
}
