/* Convolutions over time, x time-major [T, channels] (core/ops.h conv1d, depthwise_conv1d).
 *
 * conv1d is one matrix product, as in core/ops_cpu.c: mtla_cuda_im2col lays the input windows
 * out as rows of cols[T_out, c_in * k] in the weight's (c_in, k) order,
 *   cols[(o * c_in + ci) * k + j] = x[(o * stride + j - pad) * c_in + ci]  (0 outside [0, T)),
 * and cuda/ops_cuda.cu multiplies it by w[c_out, c_in * k]^T with cuBLAS and adds the bias.
 * depthwise_conv1d: y[t, c] = sum_j w[c, j] x[t + j - pad, c], zero padding, same length,
 * the taps summed in order j = 0 .. k-1 (float; the CPU sums in double).
 *
 * Launch: MTLA_CUDA_THREADS threads per block, grid-stride loops over the output elements
 * (im2col: T_out * c_in * k; depthwise: T * channels), consecutive threads on consecutive
 * elements of the innermost index. */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

__global__ void im2col_kernel(const float *x, int64_t t, int64_t c_in, int64_t k, int64_t stride,
                              int64_t pad, int64_t t_out, float *cols)
{
    int64_t n = t_out * c_in * k;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i % k, rest = i / k;
        int64_t ci = rest % c_in, o = rest / c_in;
        int64_t ti = o * stride + j - pad;
        cols[i] = ti >= 0 && ti < t ? x[ti * c_in + ci] : 0.0f;
    }
}

__global__ void depthwise_conv1d_kernel(const float *x, int64_t t, int64_t channels, const float *w,
                                        int64_t k, int64_t pad, float *y)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < t * channels;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t o = i / channels, c = i - o * channels;
        float acc = 0.0f;
        for (int64_t j = 0; j < k; j++) {
            int64_t ti = o + j - pad;
            if (ti >= 0 && ti < t)
                acc += w[c * k + j] * x[ti * channels + c];
        }
        y[i] = acc;
    }
}

cudaError_t mtla_cuda_im2col(cudaStream_t stream, const float *x, int64_t t, int64_t c_in,
                             int64_t k, int64_t stride, int64_t pad, int64_t t_out, float *cols)
{
    if (t_out <= 0 || c_in <= 0 || k <= 0)
        return cudaSuccess;
    im2col_kernel<<<mtla_cuda_grid(t_out * c_in * k), MTLA_CUDA_THREADS, 0, stream>>>(
        x, t, c_in, k, stride, pad, t_out, cols);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_depthwise_conv1d(cudaStream_t stream, const float *x, int64_t t,
                                       int64_t channels, const float *w, int64_t k, int64_t pad,
                                       float *y)
{
    if (t <= 0 || channels <= 0)
        return cudaSuccess;
    depthwise_conv1d_kernel<<<mtla_cuda_grid(t * channels), MTLA_CUDA_THREADS, 0, stream>>>(
        x, t, channels, w, k, pad, y);
    return cudaGetLastError();
}
