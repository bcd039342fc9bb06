/* The ops interface: every numerical operation the model code performs, behind a table of
 * function pointers, so that encoder/ and decoder/ are written once and run on any backend.
 * core/ops_cpu.c is the readable reference (plain C loops, OpenBLAS for matrix products); the
 * CUDA backend (cuda/) implements the same table and is tested against it.
 *
 * Conventions, for every op:
 * - Pointers are to float32 buffers in the backend's memory (host memory for the CPU backend,
 *   device memory for CUDA), allocated with ops->alloc. Matrices are row-major.
 * - Outputs never alias inputs unless an op says "in place".
 * - Shapes are int64_t counts; callers guarantee they are positive and buffers large enough.
 * - Ops do not fail: allocation is the only fallible call, and it returns NULL.
 */
#ifndef MTLA_CORE_OPS_H
#define MTLA_CORE_OPS_H

#include <stddef.h>
#include <stdint.h>

typedef struct mtla_ops mtla_ops;

/* Element types of weight matrices (docs/engine.md "Reduced precision"). */
typedef enum mtla_matrix_type {
    MTLA_MATRIX_F32 = 0, /* float32 */
    MTLA_MATRIX_BF16,    /* bfloat16 bits (uint16_t), the top half of a float32 */
    MTLA_MATRIX_INT8     /* int8_t with one float32 scale per row: w[r, c] = scales[r] q[r, c] */
} mtla_matrix_type;

/* A weight matrix [rows, cols], row-major and contiguous, in backend memory (model tensors
 * used in place on the CPU). Only `linear` takes one; every other op reads float32.
 * A backend announces the types it accepts in mtla_ops.matrix_types. */
typedef struct mtla_matrix {
    mtla_matrix_type type;
    const void *data;    /* rows * cols elements of `type` */
    const float *scales; /* INT8: rows scales; NULL otherwise */
    int64_t rows, cols;
} mtla_matrix;

/* A float32 matrix view of `data`. */
static inline mtla_matrix mtla_matrix_f32(const float *data, int64_t rows, int64_t cols)
{
    mtla_matrix m = {MTLA_MATRIX_F32, data, NULL, rows, cols};
    return m;
}

/* Rows [first, first + count) of `m`, a view sharing its memory. */
static inline mtla_matrix mtla_matrix_rows(const mtla_matrix *m, int64_t first, int64_t count)
{
    size_t element = m->type == MTLA_MATRIX_F32 ? 4 : m->type == MTLA_MATRIX_BF16 ? 2 : 1;
    mtla_matrix v = *m;
    v.data = (const unsigned char *)m->data + (size_t)(first * m->cols) * element;
    v.scales = m->scales ? m->scales + first : NULL;
    v.rows = count;
    return v;
}

/* Largest dv decode_attention accepts (the model loader refuses bigger heads / latent ranks). */
#define MTLA_OPS_MAX_HEAD_DIM 4096

/* Keys and values for decode_attention: `n` rows per kv head. Row j of kv head g for query
 * batch entry b starts at k + b * batch_stride + g * head_stride + j * row_stride (same for v).
 * batch_stride 0 means one block shared by every batch entry (the speech prompt's keys); v may
 * point into k's rows (MLA/MTLA: the value is the first r floats of the key [slot | rope key]).
 */
typedef struct mtla_kv_block {
    const float *k;
    const float *v;
    int64_t n;
    int64_t row_stride;
    int64_t head_stride;
    int64_t batch_stride;
} mtla_kv_block;

struct mtla_ops {
    const char *name; /* "cpu", "cuda" */
    void *state;      /* the backend's own (thread count, cuBLAS handle, stream, ...) */
    int host_memory;  /* buffers are host memory: model tensors are used in place */
    unsigned matrix_types; /* bit (1u << t) for each mtla_matrix_type that linear accepts */

    /* ---- memory */
    float *(*alloc)(const mtla_ops *ops, size_t count); /* count floats, uninitialised */
    void (*free)(const mtla_ops *ops, float *buffer);
    void (*upload)(const mtla_ops *ops, float *dst, const float *host, size_t count);
    void (*download)(const mtla_ops *ops, float *host, const float *src, size_t count);
    void (*copy)(const mtla_ops *ops, float *dst, const float *src, size_t count);
    void (*fill)(const mtla_ops *ops, float *dst, float value, size_t count);

    /* ---- matrix products */
    /* C[m,n] = alpha * op(A) op(B) + beta * C, op(X) = X or X^T (trans_* non-zero), with
     * leading dimensions as in BLAS row-major: A is m x k (or k x m if trans_a), etc. */
    void (*gemm)(const mtla_ops *ops, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                 float alpha, const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                 float *c, int64_t ldc);
    /* y[rows, out] = x[rows, in] w[out, in]^T + bias[out] (bias may be NULL): torch Linear.
     * w is [out, in]. With a BF16 w, x is rounded to bfloat16 and products are summed in
     * float32 (torch's bf16 Linear); with INT8, each row of x is quantised symmetrically to
     * int8 with its own scale max|x|/127, products summed exactly in int32, then scaled. */
    void (*linear)(const mtla_ops *ops, const float *x, int64_t rows, int64_t in,
                   const mtla_matrix *w, const float *bias, int64_t out, float *y);

    /* ---- row-wise */
    /* y = (x - mean) / sqrt(var + eps) * gamma + beta over each row of `dim` (torch LayerNorm). */
    void (*layer_norm)(const mtla_ops *ops, const float *x, int64_t rows, int64_t dim,
                       const float *gamma, const float *beta, float eps, float *y);
    /* In place, each row of `cols` (row stride `ld`): softmax, or log-softmax. */
    void (*softmax)(const mtla_ops *ops, float *x, int64_t rows, int64_t cols, int64_t ld);
    void (*log_softmax)(const mtla_ops *ops, float *x, int64_t rows, int64_t cols);
    /* y[rows, half] = x[:, :half] * sigmoid(x[:, half:]) for x[rows, 2*half] (torch GLU, dim -1).
     */
    void (*glu)(const mtla_ops *ops, const float *x, int64_t rows, int64_t half, float *y);

    /* ---- element-wise, in place on `count` values */
    void (*relu)(const mtla_ops *ops, float *x, size_t count);
    void (*silu)(const mtla_ops *ops, float *x, size_t count);
    /* x = 0.5 x (1 + erf(x / sqrt 2)): the exact GELU (torch.nn.functional.gelu, Whisper). */
    void (*gelu)(const mtla_ops *ops, float *x, size_t count);
    void (*scale)(const mtla_ops *ops, float *x, float alpha, size_t count);
    /* y = y + alpha * x */
    void (*axpy)(const mtla_ops *ops, float alpha, const float *x, float *y, size_t count);
    /* x[r, c] += bias[c] for rows x cols */
    void (*add_bias)(const mtla_ops *ops, float *x, const float *bias, int64_t rows, int64_t cols);

    /* ---- convolutions over time; x is time-major [T, channels] */
    /* y[T_out, c_out] = conv1d(x[T, c_in], w[c_out, c_in, k]) + bias, stride, zero padding `pad`
     * on both sides; T_out = (T + 2 pad - k) / stride + 1 (torch Conv1d). */
    void (*conv1d)(const mtla_ops *ops, const float *x, int64_t t, int64_t c_in, const float *w,
                   const float *bias, int64_t c_out, int64_t k, int64_t stride, int64_t pad,
                   float *y);
    /* Depthwise: y[t, c] = sum_j w[c, 0, j] x[t + j - pad, c] (groups = channels, no bias). */
    void (*depthwise_conv1d)(const mtla_ops *ops, const float *x, int64_t t, int64_t channels,
                             const float *w, int64_t k, int64_t pad, float *y);

    /* ---- strided rows and small reductions (decoder caches) */
    /* dst[r * ld_dst + c] = src[r * ld_src + c] (or += when accumulate), rows x cols. */
    void (*copy2d)(const mtla_ops *ops, float *dst, int64_t ld_dst, const float *src,
                   int64_t ld_src, int64_t rows, int64_t cols, int accumulate);
    /* dst[b * ld_dst + c] = src[index[b] * ld_src + c] for b < rows, c < cols (index in host
     * memory); dst and src do not overlap. Beam reordering. */
    void (*gather_rows)(const mtla_ops *ops, float *dst, int64_t ld_dst, const float *src,
                        int64_t ld_src, const int32_t *index, int64_t rows, int64_t cols);
    /* out[r] = sigmoid(sum_c a[r * lda + c] * b[r * ldb + c]) for rows x dim; ldb may be 0
     * (one b for every row). The MTLA hyper-network weight (SPEC.md 5). */
    void (*row_dot_sigmoid)(const mtla_ops *ops, const float *a, int64_t lda, const float *b,
                            int64_t ldb, int64_t rows, int64_t dim, float *out);
    /* x[r * ld + c] *= w[r], rows x cols. In place. */
    void (*scale_rows)(const mtla_ops *ops, float *x, int64_t rows, int64_t cols, int64_t ld,
                       const float *w);

    /* ---- attention */
    /* One query per batch entry and head over the keys of `nblocks` blocks, in order:
     * o[b, h, :dv] = sum_j p_j v_j with p = softmax_j(scale * q[b, h, :dk] . k_j), kv head
     * g = h / (heads / kv_heads). q is [batch, heads, dk], o is [batch, heads, dv], contiguous.
     * Blocks with n = 0 are skipped; at least one key in all; dv <= MTLA_OPS_MAX_HEAD_DIM. */
    void (*decode_attention)(const mtla_ops *ops, int64_t batch, int64_t heads, int64_t kv_heads,
                             int64_t dk, int64_t dv, float scale, const float *q,
                             const mtla_kv_block *blocks, int nblocks, float *o);
    /* scores[i * t + j] += bd[i * ld_bd + (t - 1 - i + j)] for i, j < t: the relative-position
     * term of ESPnet rel_pos attention, bd holding relative positions t-1 .. -(t-1) per row
     * (docs/architecture.md 2.4, "rel_shift"). */
    void (*rel_shift_add)(const mtla_ops *ops, float *scores, int64_t t, const float *bd,
                          int64_t ld_bd);

    /* ---- lookups and positions */
    /* y[i, :] = scale * table[ids[i], :] for n ids (ids in host memory). */
    void (*embed)(const mtla_ops *ops, const float *table, int64_t dim, const int32_t *ids,
                  int64_t n, float scale, float *y);
    /* Rotates interleaved pairs (x[2i], x[2i+1]) of the `dim` values at x + r * ld for each of
     * `rows` rows, by angle positions[r] * theta^(-2i/dim), computed in float32 as the authors
     * do (positions in host memory). In place. */
    void (*rope)(const mtla_ops *ops, float *x, int64_t rows, int64_t ld, int64_t dim,
                 const float *positions, float theta);
};

/* The CPU backend; `threads` <= 0 means all cores. The table is owned by the caller and
 * released with mtla_ops_cpu_free. Returns NULL when out of memory. Its products are OpenBLAS
 * sgemm, the float32 reference, and it accepts float32 matrices only. */
mtla_ops *mtla_ops_cpu_create(int threads);
/* The CPU backend for reduced-precision weights: linear also accepts BF16 and INT8 matrices,
 * and, where the build has oneDNN (MTLA_ST_HAVE_DNNL), every matrix product (float32 gemm
 * included) runs on oneDNN, so that one OpenMP thread pool does all of them. Without oneDNN the
 * same products are computed by converting weight blocks to float32 for OpenBLAS. */
mtla_ops *mtla_ops_cpu_create_reduced(int threads);
/* 1 when this build computes reduced-precision products with oneDNN. */
int mtla_ops_cpu_has_dnnl(void);
void mtla_ops_cpu_free(mtla_ops *ops);

#endif
