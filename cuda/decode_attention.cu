/* Decode attention (core/ops.h decode_attention): one query per (batch entry b, head h) over
 * the keys of up to MTLA_CUDA_MAX_KV_BLOCKS blocks, in block order:
 *   o[b, h, :dv] = sum_j p_j v_j,  p = softmax_j(scale * q[b, h, :dk] . k_j),
 * kv head g = h / (heads / kv_heads); key j of block i for (b, g) starts at
 * k + b * batch_stride + g * head_stride + j * row_stride (v alike; v may point into k's rows).
 *
 * Layout: q [batch, heads, dk] and o [batch, heads, dv] contiguous; blocks as mtla_kv_block
 * describes them, passed by value in the kernel argument (their k/v pointers are device
 * memory; cuda/ops_cuda.cu drops empty blocks before the launch).
 * Launch: one block of MTLA_CUDA_THREADS threads per (b, h) (grid-stride over batch * heads),
 * dk floats of dynamic shared memory for the query. Keys are taken TILE at a time: each warp
 * computes the dot products of keys warp, warp + 8, ... of the tile (lanes over dk, butterfly
 * shuffle sum), the scores go to shared memory, and an online softmax (running maximum m,
 * running sum l, accumulators rescaled by e^(m_old - m_new)) folds the tile into the output.
 * Thread t owns output elements t, t + THREADS, ... (ACC of them, in registers), so dv up to
 * MTLA_OPS_MAX_HEAD_DIM = 16 * THREADS. The tile's maximum and sum are taken by every thread
 * in the same sequential order: deterministic, no atomics.
 *
 * This is the plain version: every (b, h) block reads a shared block's keys again. Reading
 * shared prompt slots once for all hypotheses, with split-K over slots, is future work
 * (docs/cuda.md). */
#include "cuda/kernels.h"
#include "cuda/reduce.cuh"

#define TILE 64
#define WARPS_PER_BLOCK (MTLA_CUDA_THREADS / MTLA_CUDA_WARP)
#define MAX_ACC (MTLA_OPS_MAX_HEAD_DIM / MTLA_CUDA_THREADS)

static_assert(MAX_ACC * MTLA_CUDA_THREADS >= MTLA_OPS_MAX_HEAD_DIM,
              "accumulators must cover MTLA_OPS_MAX_HEAD_DIM");
static_assert(TILE <= MTLA_CUDA_THREADS, "one thread per key of a tile for the exponentials");

template <int ACC>
__global__ void __launch_bounds__(MTLA_CUDA_THREADS)
    decode_attention_kernel(int64_t batch, int64_t heads, int64_t group, int64_t dk, int64_t dv,
                            float scale, const float *q, mtla_cuda_kv_blocks blocks, float *o)
{
    extern __shared__ float q_s[]; /* [dk] */
    __shared__ float p_s[TILE];    /* scores, then probabilities, of the current tile */
    const int tid = threadIdx.x, lane = tid % MTLA_CUDA_WARP, warp = tid / MTLA_CUDA_WARP;

    for (int64_t bh = blockIdx.x; bh < batch * heads; bh += gridDim.x) {
        int64_t b = bh / heads, h = bh - b * heads, g = h / group;
        for (int64_t e = tid; e < dk; e += MTLA_CUDA_THREADS)
            q_s[e] = q[bh * dk + e];
        __syncthreads();

        float acc[ACC];
#pragma unroll
        for (int a = 0; a < ACC; a++)
            acc[a] = 0.0f;
        float m = -INFINITY, l = 0.0f;

        for (int i = 0; i < blocks.count; i++) {
            const mtla_kv_block blk = blocks.block[i];
            const float *kb = blk.k + b * blk.batch_stride + g * blk.head_stride;
            const float *vb = blk.v + b * blk.batch_stride + g * blk.head_stride;
            for (int64_t j0 = 0; j0 < blk.n; j0 += TILE) {
                int tile = blk.n - j0 < TILE ? (int)(blk.n - j0) : TILE;
                for (int jj = warp; jj < tile; jj += WARPS_PER_BLOCK) {
                    const float *kj = kb + (j0 + jj) * blk.row_stride;
                    float dot = 0.0f;
                    for (int64_t e = lane; e < dk; e += MTLA_CUDA_WARP)
                        dot += q_s[e] * kj[e];
                    dot = mtla_warp_sum(dot);
                    if (lane == 0)
                        p_s[jj] = scale * dot;
                }
                __syncthreads();

                float tile_max = -INFINITY;
                for (int jj = 0; jj < tile; jj++)
                    tile_max = fmaxf(tile_max, p_s[jj]);
                float m_new = fmaxf(m, tile_max);
                float shrink = m == -INFINITY ? 0.0f : expf(m - m_new);
                __syncthreads(); /* every thread has read the scores */
                if (tid < tile)
                    p_s[tid] = expf(p_s[tid] - m_new);
                __syncthreads();

                float tile_sum = 0.0f;
                for (int jj = 0; jj < tile; jj++)
                    tile_sum += p_s[jj];
                l = l * shrink + tile_sum;
#pragma unroll
                for (int a = 0; a < ACC; a++)
                    acc[a] *= shrink;
                for (int jj = 0; jj < tile; jj++) {
                    float p = p_s[jj];
                    const float *vj = vb + (j0 + jj) * blk.row_stride;
#pragma unroll
                    for (int a = 0; a < ACC; a++) {
                        int64_t e = tid + (int64_t)a * MTLA_CUDA_THREADS;
                        if (e < dv)
                            acc[a] += p * vj[e];
                    }
                }
                m = m_new;
                __syncthreads(); /* p_s is rewritten by the next tile */
            }
        }

#pragma unroll
        for (int a = 0; a < ACC; a++) {
            int64_t e = tid + (int64_t)a * MTLA_CUDA_THREADS;
            if (e < dv)
                o[bh * dv + e] = acc[a] / l;
        }
        __syncthreads(); /* q_s is rewritten for the next (b, h) */
    }
}

template <int ACC>
static cudaError_t launch(cudaStream_t stream, int64_t batch, int64_t heads, int64_t group,
                          int64_t dk, int64_t dv, float scale, const float *q,
                          const mtla_cuda_kv_blocks *blocks, float *o, size_t max_shared_bytes)
{
    size_t shared = (size_t)dk * sizeof(float);
    size_t fixed = TILE * sizeof(float); /* p_s */
    if (shared + fixed > max_shared_bytes)
        return cudaErrorInvalidValue;
    if (shared + fixed > 48 * 1024) {
        /* above the default 48 KiB a kernel must opt in to more dynamic shared memory */
        cudaError_t st = cudaFuncSetAttribute(
            decode_attention_kernel<ACC>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)shared);
        if (st != cudaSuccess)
            return st;
    }
    decode_attention_kernel<ACC>
        <<<mtla_cuda_row_grid(batch * heads), MTLA_CUDA_THREADS, shared, stream>>>(
            batch, heads, group, dk, dv, scale, q, *blocks, o);
    return cudaGetLastError();
}

cudaError_t mtla_cuda_decode_attention(cudaStream_t stream, int64_t batch, int64_t heads,
                                       int64_t kv_heads, int64_t dk, int64_t dv, float scale,
                                       const float *q, const mtla_cuda_kv_blocks *blocks, float *o,
                                       size_t max_shared_bytes)
{
    if (batch <= 0 || heads <= 0)
        return cudaSuccess;
    if (kv_heads <= 0 || heads % kv_heads != 0 || dk <= 0 || dv <= 0 ||
        dv > MTLA_OPS_MAX_HEAD_DIM || blocks->count < 1 || blocks->count > MTLA_CUDA_MAX_KV_BLOCKS)
        return cudaErrorInvalidValue;
    int64_t group = heads / kv_heads;
    /* the fewest accumulators per thread that cover dv */
    if (dv <= 1 * MTLA_CUDA_THREADS)
        return launch<1>(stream, batch, heads, group, dk, dv, scale, q, blocks, o,
                         max_shared_bytes);
    if (dv <= 2 * MTLA_CUDA_THREADS)
        return launch<2>(stream, batch, heads, group, dk, dv, scale, q, blocks, o,
                         max_shared_bytes);
    if (dv <= 4 * MTLA_CUDA_THREADS)
        return launch<4>(stream, batch, heads, group, dk, dv, scale, q, blocks, o,
                         max_shared_bytes);
    if (dv <= 8 * MTLA_CUDA_THREADS)
        return launch<8>(stream, batch, heads, group, dk, dv, scale, q, blocks, o,
                         max_shared_bytes);
    return launch<MAX_ACC>(stream, batch, heads, group, dk, dv, scale, q, blocks, o,
                           max_shared_bytes);
}
