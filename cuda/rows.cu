/* Strided row copies for the decoder's caches (core/ops.h copy2d, gather_rows):
 *   copy2d:      dst[r * ld_dst + c] (+)= src[r * ld_src + c]
 *   gather_rows: dst[b * ld_dst + c] = src[index[b] * ld_src + c]   (beam reordering)
 * for r, b < rows and c < cols. ld_src may be 0 (one source row for every row).
 *
 * Layout: row-major with the given row strides; `index` is `rows` int32 in device memory
 * (cuda/ops_cuda.cu copies the caller's host array into its device scratch first).
 * Launch: MTLA_CUDA_THREADS threads per block, a grid-stride loop over rows * cols elements,
 * consecutive threads on consecutive columns of a row (coalesced). Rows are assumed not to
 * overlap between dst and src (core/ops.h: outputs never alias inputs). */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

template <int ACCUMULATE>
__global__ void copy2d_kernel(float *dst, int64_t ld_dst, const float *src, int64_t ld_src,
                              int64_t rows, int64_t cols)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * cols;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        float v = src[r * ld_src + c];
        if (ACCUMULATE)
            dst[r * ld_dst + c] += v;
        else
            dst[r * ld_dst + c] = v;
    }
}

__global__ void gather_rows_kernel(float *dst, int64_t ld_dst, const float *src, int64_t ld_src,
                                   const int32_t *index, int64_t rows, int64_t cols)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < rows * cols;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / cols, c = i - r * cols;
        dst[r * ld_dst + c] = src[(int64_t)index[r] * ld_src + c];
    }
}

cudaError_t mtla_cuda_copy2d(cudaStream_t stream, float *dst, int64_t ld_dst, const float *src,
                             int64_t ld_src, int64_t rows, int64_t cols, int accumulate)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    unsigned grid = mtla_cuda_grid(rows * cols);
    if (accumulate)
        copy2d_kernel<1>
            <<<grid, MTLA_CUDA_THREADS, 0, stream>>>(dst, ld_dst, src, ld_src, rows, cols);
    else
        copy2d_kernel<0>
            <<<grid, MTLA_CUDA_THREADS, 0, stream>>>(dst, ld_dst, src, ld_src, rows, cols);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_gather_rows(cudaStream_t stream, float *dst, int64_t ld_dst, const float *src,
                                  int64_t ld_src, const int32_t *index, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    gather_rows_kernel<<<mtla_cuda_grid(rows * cols), MTLA_CUDA_THREADS, 0, stream>>>(
        dst, ld_dst, src, ld_src, index, rows, cols);
    return cudaGetLastError();
}
