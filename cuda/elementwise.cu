/* Element-wise ops (core/ops.h): fill, relu, silu (x sigmoid(x)), gelu (0.5 x (1 + erf(x /
 * sqrt 2)), CUDA's erff, 2 ulp), scale (x *= alpha),
 * axpy (y += alpha x), add_bias (x[r, c] += bias[c]), glu (y = a sigmoid(g) for x = [a | g]
 * per row), scale_rows (x[r * ld + c] *= w[r]). All in place except glu.
 *
 * Layout: flat arrays of `count` floats, or rows x cols row-major (row stride ld for
 * scale_rows, 2 * half in and half out for glu).
 * Launch: MTLA_CUDA_THREADS threads per block, a grid-stride loop over all elements
 * (mtla_cuda_grid), one element per thread per round; no reductions. */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

#define GRID_STRIDE_LOOP(i, n)                                                                     \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (int64_t)(n);             \
         i += (int64_t)gridDim.x * blockDim.x)

__global__ void fill_kernel(float *x, float value, int64_t n)
{
    GRID_STRIDE_LOOP(i, n)
    x[i] = value;
}

__global__ void relu_kernel(float *x, int64_t n)
{
    GRID_STRIDE_LOOP(i, n)
    x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void silu_kernel(float *x, int64_t n)
{
    GRID_STRIDE_LOOP(i, n)
    x[i] = x[i] * mtla_sigmoid(x[i]);
}

__global__ void gelu_kernel(float *x, int64_t n)
{
    GRID_STRIDE_LOOP(i, n)
    x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}

__global__ void scale_kernel(float *x, float alpha, int64_t n)
{
    GRID_STRIDE_LOOP(i, n)
    x[i] *= alpha;
}

__global__ void axpy_kernel(float alpha, const float *x, float *y, int64_t n)
{
    GRID_STRIDE_LOOP(i, n)
    y[i] += alpha * x[i];
}

__global__ void add_bias_kernel(float *x, const float *bias, int64_t rows, int64_t cols)
{
    GRID_STRIDE_LOOP(i, rows * cols)
    x[i] += bias[i % cols];
}

__global__ void glu_kernel(const float *x, int64_t rows, int64_t half, float *y)
{
    GRID_STRIDE_LOOP(i, rows * half)
    {
        int64_t r = i / half, c = i - r * half;
        const float *xr = x + r * 2 * half;
        y[i] = xr[c] * mtla_sigmoid(xr[half + c]);
    }
}

__global__ void scale_rows_kernel(float *x, int64_t rows, int64_t cols, int64_t ld, const float *w)
{
    GRID_STRIDE_LOOP(i, rows * cols)
    {
        int64_t r = i / cols, c = i - r * cols;
        x[r * ld + c] *= w[r];
    }
}

cudaError_t mtla_cuda_fill(cudaStream_t stream, float *x, float value, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    fill_kernel<<<mtla_cuda_grid((int64_t)count), MTLA_CUDA_THREADS, 0, stream>>>(x, value,
                                                                                  (int64_t)count);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_relu(cudaStream_t stream, float *x, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    relu_kernel<<<mtla_cuda_grid((int64_t)count), MTLA_CUDA_THREADS, 0, stream>>>(x,
                                                                                  (int64_t)count);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_silu(cudaStream_t stream, float *x, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    silu_kernel<<<mtla_cuda_grid((int64_t)count), MTLA_CUDA_THREADS, 0, stream>>>(x,
                                                                                  (int64_t)count);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_gelu(cudaStream_t stream, float *x, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    gelu_kernel<<<mtla_cuda_grid((int64_t)count), MTLA_CUDA_THREADS, 0, stream>>>(x,
                                                                                  (int64_t)count);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_scale(cudaStream_t stream, float *x, float alpha, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    scale_kernel<<<mtla_cuda_grid((int64_t)count), MTLA_CUDA_THREADS, 0, stream>>>(x, alpha,
                                                                                   (int64_t)count);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_axpy(cudaStream_t stream, float alpha, const float *x, float *y, size_t count)
{
    if (count == 0)
        return cudaSuccess;
    axpy_kernel<<<mtla_cuda_grid((int64_t)count), MTLA_CUDA_THREADS, 0, stream>>>(alpha, x, y,
                                                                                  (int64_t)count);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_add_bias(cudaStream_t stream, float *x, const float *bias, int64_t rows,
                               int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    add_bias_kernel<<<mtla_cuda_grid(rows * cols), MTLA_CUDA_THREADS, 0, stream>>>(x, bias, rows,
                                                                                   cols);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_glu(cudaStream_t stream, const float *x, int64_t rows, int64_t half, float *y)
{
    if (rows <= 0 || half <= 0)
        return cudaSuccess;
    glu_kernel<<<mtla_cuda_grid(rows * half), MTLA_CUDA_THREADS, 0, stream>>>(x, rows, half, y);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_scale_rows(cudaStream_t stream, float *x, int64_t rows, int64_t cols,
                                 int64_t ld, const float *w)
{
    if (rows <= 0 || cols <= 0)
        return cudaSuccess;
    scale_rows_kernel<<<mtla_cuda_grid(rows * cols), MTLA_CUDA_THREADS, 0, stream>>>(x, rows, cols,
                                                                                     ld, w);
    return cudaGetLastError();
}
