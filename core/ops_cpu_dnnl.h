/* The CPU backend's oneDNN products (core/ops.h mtla_ops_cpu_create_reduced): float32 gemm and
 * Linear with float32, bfloat16 or int8 weights, all on one oneDNN CPU engine whose OpenMP
 * threads are the only pool the reduced-precision backend uses. Weights are read in place in
 * their plain row-major layout (no reordered copy), activations are converted per call.
 *
 * Compiled only where CMake found oneDNN (MTLA_ST_HAVE_DNNL); core/ops_cpu.c falls back to its
 * own float32 products otherwise, or when a primitive cannot be made. */
#ifndef MTLA_CORE_OPS_CPU_DNNL_H
#define MTLA_CORE_OPS_CPU_DNNL_H

#include <stdint.h>

#include "core/ops.h"

typedef struct mtla_dnnl mtla_dnnl;

/* `threads` <= 0: OpenMP's default (all cores). NULL when the engine cannot be made. */
mtla_dnnl *mtla_dnnl_create(int threads);
void mtla_dnnl_free(mtla_dnnl *dnnl);

/* Row-major C = alpha op(A) op(B) + beta C (dnnl_sgemm). Returns 0, or -1 when oneDNN refused
 * (the caller computes it another way). */
int mtla_dnnl_sgemm(mtla_dnnl *dnnl, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc);

/* ops->linear (core/ops.h) for a w of any mtla_matrix_type. Returns 0, or -1 when no primitive
 * could be made or memory ran out (the caller computes it another way). */
int mtla_dnnl_linear(mtla_dnnl *dnnl, const float *x, int64_t rows, int64_t in,
                     const mtla_matrix *w, const float *bias, int64_t out, float *y);

#endif
