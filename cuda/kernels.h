/* Host-side launchers of the CUDA backend's kernels, one family per file (named beside each
 * group). Each enqueues its kernel on `stream` and returns the launch status
 * (cudaGetLastError); none waits for the device. Pointers are device memory unless a comment
 * says otherwise; shapes are as in core/ops.h. cuda/ops_cuda.cu turns these into the
 * mtla_ops table, records failures and does the host-to-device staging. */
#ifndef MTLA_CUDA_KERNELS_H
#define MTLA_CUDA_KERNELS_H

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"

/* cuda/layer_norm.cu */
cudaError_t mtla_cuda_layer_norm(cudaStream_t stream, const float *x, int64_t rows, int64_t dim,
                                 const float *gamma, const float *beta, float eps, float *y);

/* cuda/softmax.cu */
cudaError_t mtla_cuda_softmax(cudaStream_t stream, float *x, int64_t rows, int64_t cols,
                              int64_t ld);
cudaError_t mtla_cuda_log_softmax(cudaStream_t stream, float *x, int64_t rows, int64_t cols);

/* cuda/elementwise.cu */
cudaError_t mtla_cuda_fill(cudaStream_t stream, float *x, float value, size_t count);
cudaError_t mtla_cuda_relu(cudaStream_t stream, float *x, size_t count);
cudaError_t mtla_cuda_silu(cudaStream_t stream, float *x, size_t count);
cudaError_t mtla_cuda_gelu(cudaStream_t stream, float *x, size_t count);
cudaError_t mtla_cuda_scale(cudaStream_t stream, float *x, float alpha, size_t count);
cudaError_t mtla_cuda_axpy(cudaStream_t stream, float alpha, const float *x, float *y,
                           size_t count);
cudaError_t mtla_cuda_add_bias(cudaStream_t stream, float *x, const float *bias, int64_t rows,
                               int64_t cols);
cudaError_t mtla_cuda_glu(cudaStream_t stream, const float *x, int64_t rows, int64_t half,
                          float *y);
cudaError_t mtla_cuda_scale_rows(cudaStream_t stream, float *x, int64_t rows, int64_t cols,
                                 int64_t ld, const float *w);

/* cuda/rows.cu; `index` is device memory here (ops_cuda.cu stages the host array). */
cudaError_t mtla_cuda_copy2d(cudaStream_t stream, float *dst, int64_t ld_dst, const float *src,
                             int64_t ld_src, int64_t rows, int64_t cols, int accumulate);
cudaError_t mtla_cuda_gather_rows(cudaStream_t stream, float *dst, int64_t ld_dst, const float *src,
                                  int64_t ld_src, const int32_t *index, int64_t rows, int64_t cols);

/* cuda/merge.cu */
cudaError_t mtla_cuda_row_dot_sigmoid(cudaStream_t stream, const float *a, int64_t lda,
                                      const float *b, int64_t ldb, int64_t rows, int64_t dim,
                                      float *out);

/* cuda/conv1d.cu: the im2col matrix [t_out, c_in * k] of conv1d (ops_cuda.cu multiplies it by
 * the weight with cuBLAS), and the depthwise convolution. */
cudaError_t mtla_cuda_im2col(cudaStream_t stream, const float *x, int64_t t, int64_t c_in,
                             int64_t k, int64_t stride, int64_t pad, int64_t t_out, float *cols);
cudaError_t mtla_cuda_depthwise_conv1d(cudaStream_t stream, const float *x, int64_t t,
                                       int64_t channels, const float *w, int64_t k, int64_t pad,
                                       float *y);

/* cuda/embed.cu; `ids` is device memory here. */
cudaError_t mtla_cuda_embed(cudaStream_t stream, const float *table, int64_t dim,
                            const int32_t *ids, int64_t n, float scale, float *y);

/* cuda/rope.cu. mtla_cuda_rope_frequencies is host code: freq[i] = 1 / theta^(2i/dim) for
 * i < dim/2, computed with the host's powf exactly as core/ops_cpu.c does. `positions` and
 * `freq` are device memory in mtla_cuda_rope. */
void mtla_cuda_rope_frequencies(float *freq, int64_t dim, float theta);
cudaError_t mtla_cuda_rope(cudaStream_t stream, float *x, int64_t rows, int64_t ld, int64_t dim,
                           const float *positions, const float *freq);

/* cuda/rel_shift.cu */
cudaError_t mtla_cuda_rel_shift_add(cudaStream_t stream, float *scores, int64_t t, const float *bd,
                                    int64_t ld_bd);

/* cuda/decode_attention.cu. At most MTLA_CUDA_MAX_KV_BLOCKS non-empty blocks, passed by value
 * (the block descriptors are host data; the k and v pointers in them are device memory).
 * `max_shared_bytes` is the device's opt-in limit of dynamic shared memory per block. */
#define MTLA_CUDA_MAX_KV_BLOCKS 4
typedef struct mtla_cuda_kv_blocks {
    mtla_kv_block block[MTLA_CUDA_MAX_KV_BLOCKS];
    int count;
} mtla_cuda_kv_blocks;
cudaError_t mtla_cuda_decode_attention(cudaStream_t stream, int64_t batch, int64_t heads,
                                       int64_t kv_heads, int64_t dk, int64_t dv, float scale,
                                       const float *q, const mtla_cuda_kv_blocks *blocks, float *o,
                                       size_t max_shared_bytes);

#endif
