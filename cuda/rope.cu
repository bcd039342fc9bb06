/* Rotary position embedding, in place (core/ops.h rope): pair i of a row,
 * (x[2i], x[2i+1]), i < dim/2, is rotated by angle = positions[r] * freq[i] with
 * freq[i] = 1 / theta^(2i/dim), all in float32 as the authors (and core/ops_cpu.c) compute it.
 *
 * Parity with the CPU reference: the frequencies are computed on the host
 * (mtla_cuda_rope_frequencies, the same powf expression as core/ops_cpu.c, so the same bits)
 * because an ulp of difference in freq is multiplied by the position (up to ~1000) in the
 * angle. The angle is one float product, as on the CPU. cosf/sinf are CUDA's precise versions
 * (this code must never be built with --use_fast_math): within 2 ulp of glibc's, an absolute
 * difference of ~2e-7 in each factor. The rotation itself is written with __fmul_rn/__fadd_rn
 * so that nvcc cannot contract it into FMAs the CPU does not use.
 *
 * Layout: row r is x + r * ld (ld >= dim), only its first dim values change; positions [rows]
 * and freq [dim/2] are device memory (cuda/ops_cuda.cu stages both in one copy).
 * Launch: MTLA_CUDA_THREADS threads per block, a grid-stride loop over rows * dim/2 pairs,
 * consecutive threads on consecutive pairs of a row. */
#include <math.h>

#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

void mtla_cuda_rope_frequencies(float *freq, int64_t dim, float theta)
{
    for (int64_t i = 0; i < dim / 2; i++)
        freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)dim);
}

__global__ void rope_kernel(float *x, int64_t rows, int64_t ld, int64_t half,
                            const float *positions, const float *freq)
{
    for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < rows * half;
         p += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = p / half, i = p - r * half;
        float angle = __fmul_rn(positions[r], freq[i]);
        float c = cosf(angle), s = sinf(angle);
        float *xr = x + r * ld;
        float re = xr[2 * i], im = xr[2 * i + 1];
        xr[2 * i] = __fadd_rn(__fmul_rn(re, c), -__fmul_rn(im, s));
        xr[2 * i + 1] = __fadd_rn(__fmul_rn(re, s), __fmul_rn(im, c));
    }
}

cudaError_t mtla_cuda_rope(cudaStream_t stream, float *x, int64_t rows, int64_t ld, int64_t dim,
                           const float *positions, const float *freq)
{
    int64_t half = dim / 2;
    if (rows <= 0 || half <= 0)
        return cudaSuccess;
    rope_kernel<<<mtla_cuda_grid(rows * half), MTLA_CUDA_THREADS, 0, stream>>>(x, rows, ld, half,
                                                                               positions, freq);
    return cudaGetLastError();
}
