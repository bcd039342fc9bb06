/* Launch shapes and deterministic reductions shared by the kernels of the CUDA backend.
 *
 * Every reduction here combines partial values in a fixed tree (shared memory for a block,
 * butterfly shuffles for a warp), so that a result depends only on the input and the launch
 * shape, never on scheduling: the same call gives the same bits every time. The CPU reference
 * accumulates in double; these accumulate in float, which the tests allow for (docs/cuda.md). */
#ifndef MTLA_CUDA_REDUCE_CUH
#define MTLA_CUDA_REDUCE_CUH

#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

/* Threads per block of every kernel (a power of two: the block trees below halve it). */
#define MTLA_CUDA_THREADS 256
#define MTLA_CUDA_WARP 32

/* Blocks for a grid-stride loop over `items` (one item per thread per round): enough to fill
 * any current device, capped so the grid size stays a small int. */
static inline unsigned mtla_cuda_grid(int64_t items)
{
    int64_t blocks = (items + MTLA_CUDA_THREADS - 1) / MTLA_CUDA_THREADS;
    const int64_t cap = (int64_t)1 << 16;
    return (unsigned)(blocks < 1 ? 1 : blocks > cap ? cap : blocks);
}

/* Blocks for a kernel that gives each block one row at a time (grid-stride over rows). */
static inline unsigned mtla_cuda_row_grid(int64_t rows)
{
    const int64_t cap = (int64_t)1 << 20;
    return (unsigned)(rows < 1 ? 1 : rows > cap ? cap : rows);
}

/* Sum of `v` over the block, every thread receiving it. `buf` is MTLA_CUDA_THREADS floats of
 * shared memory; every thread of the block must call this (it synchronises). */
__device__ __forceinline__ float mtla_block_sum(float v, float *buf)
{
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = MTLA_CUDA_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    float r = buf[0];
    __syncthreads(); /* buf may be reused at once */
    return r;
}

/* Maximum of `v` over the block; as mtla_block_sum. */
__device__ __forceinline__ float mtla_block_max(float v, float *buf)
{
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = MTLA_CUDA_THREADS / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            buf[threadIdx.x] = fmaxf(buf[threadIdx.x], buf[threadIdx.x + s]);
        __syncthreads();
    }
    float r = buf[0];
    __syncthreads();
    return r;
}

/* Sum of `v` over the warp by butterfly shuffles: every lane ends with the same bits (each
 * level adds the same pairs, and float addition is commutative). */
__device__ __forceinline__ float mtla_warp_sum(float v)
{
    for (int offset = MTLA_CUDA_WARP / 2; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

/* 1 / (1 + e^-x) in float (the CPU reference rounds the double expression; a few ulp apart). */
__device__ __forceinline__ float mtla_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

#endif
