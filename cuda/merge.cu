/* The MTLA hyper-network merge weight (SPEC.md 5; core/ops.h row_dot_sigmoid):
 *   out[r] = sigmoid(sum_c a[r * lda + c] * b[r * ldb + c])
 * for `rows` rows of `dim` values; ldb = 0 means one b row for every r.
 *
 * Layout: a, b row-major with row strides lda, ldb; out [rows].
 * Launch: MTLA_CUDA_THREADS threads per block, one warp per row (grid-stride over rows in
 * warps). Lane l sums columns l, l + 32, ... in order, then butterfly shuffles
 * (mtla_warp_sum) combine the lanes; lane 0 writes. */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

#define WARPS_PER_BLOCK (MTLA_CUDA_THREADS / MTLA_CUDA_WARP)

__global__ void __launch_bounds__(MTLA_CUDA_THREADS)
    row_dot_sigmoid_kernel(const float *a, int64_t lda, const float *b, int64_t ldb, int64_t rows,
                           int64_t dim, float *out)
{
    int lane = threadIdx.x % MTLA_CUDA_WARP;
    int64_t warp = (int64_t)blockIdx.x * WARPS_PER_BLOCK + threadIdx.x / MTLA_CUDA_WARP;
    for (int64_t r = warp; r < rows; r += (int64_t)gridDim.x * WARPS_PER_BLOCK) {
        const float *ar = a + r * lda, *br = b + r * ldb;
        float dot = 0.0f;
        for (int64_t c = lane; c < dim; c += MTLA_CUDA_WARP)
            dot += ar[c] * br[c];
        dot = mtla_warp_sum(dot);
        if (lane == 0)
            out[r] = mtla_sigmoid(dot);
    }
}

cudaError_t mtla_cuda_row_dot_sigmoid(cudaStream_t stream, const float *a, int64_t lda,
                                      const float *b, int64_t ldb, int64_t rows, int64_t dim,
                                      float *out)
{
    if (rows <= 0)
        return cudaSuccess;
    /* one warp per row: rows * 32 threads in all */
    row_dot_sigmoid_kernel<<<mtla_cuda_grid(rows * MTLA_CUDA_WARP), MTLA_CUDA_THREADS, 0, stream>>>(
        a, lda, b, ldb, rows, dim, out);
    return cudaGetLastError();
}
