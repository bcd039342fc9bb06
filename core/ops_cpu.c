/* The CPU backend of the ops interface (core/ops.h): the reference implementation. Matrix
 * products and convolutions go through OpenBLAS sgemm; everything else is a plain loop that
 * can be checked line by line against the torch definition named in core/ops.h. Reductions
 * accumulate in double so that results do not depend on vector width.
 *
 * The reduced-precision variant (mtla_ops_cpu_create_reduced) differs only in its products:
 * they run on oneDNN (core/ops_cpu_dnnl.c) where the build has it, and Linear accepts bfloat16
 * and int8 weights. linear_widened below is their definition in plain C and the fallback. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "core/reduced.h"
#ifdef MTLA_ST_HAVE_DNNL
#include "core/ops_cpu_dnnl.h"
#else
typedef struct mtla_dnnl mtla_dnnl;
#endif

typedef struct cpu_state {
    int threads;
    int reduced;       /* made by mtla_ops_cpu_create_reduced */
    mtla_dnnl *dnnl;   /* its oneDNN products; NULL without oneDNN */
    float *widened;    /* scratch of linear_widened: rounded activations, then weight rows */
    size_t widened_count;
    float *im2col; /* scratch for conv1d, grown on demand */
    size_t im2col_count;
    float *scores; /* scratch for decode_attention, grown on demand */
    size_t scores_count;
} cpu_state;

static float *cpu_alloc(const mtla_ops *ops, size_t count)
{
    (void)ops;
    /* 64-byte alignment for vector loads; at least one element so that NULL means failure. */
    size_t bytes = (count ? count : 1) * sizeof(float);
    bytes = (bytes + 63) / 64 * 64;
    return aligned_alloc(64, bytes);
}

static void cpu_free(const mtla_ops *ops, float *buffer)
{
    (void)ops;
    free(buffer);
}

static void cpu_copy(const mtla_ops *ops, float *dst, const float *src, size_t count)
{
    (void)ops;
    memmove(dst, src, count * sizeof(float));
}

static void cpu_fill(const mtla_ops *ops, float *dst, float value, size_t count)
{
    (void)ops;
    for (size_t i = 0; i < count; i++)
        dst[i] = value;
}

static void cpu_gemm(const mtla_ops *ops, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                     float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                     float beta, float *c, int64_t ldc)
{
#ifdef MTLA_ST_HAVE_DNNL
    cpu_state *s = ops->state;
    if (s->dnnl && mtla_dnnl_sgemm(s->dnnl, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta,
                                   c, ldc) == 0)
        return;
#else
    (void)ops;
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,
                (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

static void cpu_add_bias(const mtla_ops *ops, float *x, const float *bias, int64_t rows,
                         int64_t cols)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            x[r * cols + c] += bias[c];
}

static void linear_f32(const mtla_ops *ops, const float *x, int64_t rows, int64_t in,
                       const float *w, const float *bias, int64_t out, float *y)
{
    if (rows == 1) /* greedy decoding: a matrix-vector product streams w once */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (blasint)out, (blasint)in, 1.0f, w, (blasint)in,
                    x, 1, 0.0f, y, 1);
    else
        cpu_gemm(ops, 0, 1, rows, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
    if (bias)
        cpu_add_bias(ops, y, bias, rows, out);
}

/* w[r, c] of a reduced-precision w as a float32 value (int8: the integer, unscaled). */
static float weight_value(const mtla_matrix *w, int64_t r, int64_t c)
{
    if (w->type == MTLA_MATRIX_INT8)
        return (float)((const int8_t *)w->data)[r * w->cols + c];
    uint32_t bits = (uint32_t)((const uint16_t *)w->data)[r * w->cols + c] << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static void widen_row(const mtla_matrix *w, int64_t r, float *dst)
{
    for (int64_t c = 0; c < w->cols; c++)
        dst[c] = weight_value(w, r, c);
}

/* x[i] as the value the product sees: rounded to bfloat16, or the int8 integer for 1/scale. */
static float reduce_value(mtla_matrix_type type, float x, float inverse_scale)
{
    if (type == MTLA_MATRIX_INT8)
        return (float)mtla_int8_quantize(x, inverse_scale);
    uint32_t bits = (uint32_t)mtla_f32_to_bf16(x) << 16;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A BF16 or INT8 Linear (core/ops.h) in float32 arithmetic: x rounded to bfloat16 values
 * (int8: quantised, kept as integers with a scale per row), blocks of w widened to float32,
 * sgemm, then int8 sums scaled by sx[r] sw[o]. Products of two such values are exact in
 * float32; the sums are float32 as in oneDNN's bf16 kernels, though not in the same order
 * (int8 sums beyond 2^24 round, where oneDNN's int32 sums do not). Without scratch memory, one
 * dot product at a time. */
static void linear_widened(const mtla_ops *ops, const float *x, int64_t rows, int64_t in,
                           const mtla_matrix *w, const float *bias, int64_t out, float *y)
{
    enum { BLOCK = 64 }; /* weight rows widened at once */
    cpu_state *s = ops->state;
    int int8 = w->type == MTLA_MATRIX_INT8;
    size_t need = (size_t)((rows + BLOCK) * in + rows);
    if (need > s->widened_count) {
        free(s->widened);
        s->widened = malloc(need * sizeof(float));
        s->widened_count = s->widened ? need : 0;
    }
    if (!s->widened) {
        for (int64_t r = 0; r < rows; r++) {
            const float *xr = x + r * in;
            float sx = int8 ? mtla_int8_row_scale(xr, (size_t)in) : 1.0f;
            for (int64_t o = 0; o < out; o++) {
                float acc = 0.0f;
                for (int64_t c = 0; c < in; c++)
                    acc += reduce_value(w->type, xr[c], 1.0f / sx) * weight_value(w, o, c);
                y[r * out + o] = (int8 ? acc * sx * w->scales[o] : acc) + (bias ? bias[o] : 0.0f);
            }
        }
        return;
    }
    float *xq = s->widened, *wb = xq + rows * in, *sx = wb + BLOCK * in;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * in;
        sx[r] = int8 ? mtla_int8_row_scale(xr, (size_t)in) : 1.0f;
        float inverse = 1.0f / sx[r];
        for (int64_t c = 0; c < in; c++)
            xq[r * in + c] = reduce_value(w->type, xr[c], inverse);
    }
    for (int64_t o0 = 0; o0 < out; o0 += BLOCK) {
        int64_t nb = out - o0 < BLOCK ? out - o0 : BLOCK;
        for (int64_t o = 0; o < nb; o++)
            widen_row(w, o0 + o, wb + o * in);
        cpu_gemm(ops, 0, 1, rows, nb, in, 1.0f, xq, in, wb, in, 0.0f, y + o0, out);
    }
    if (int8)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t o = 0; o < out; o++)
                y[r * out + o] *= sx[r] * w->scales[o];
    if (bias)
        cpu_add_bias(ops, y, bias, rows, out);
}

static void cpu_linear(const mtla_ops *ops, const float *x, int64_t rows, int64_t in,
                       const mtla_matrix *w, const float *bias, int64_t out, float *y)
{
    if (w->type == MTLA_MATRIX_F32) {
#ifdef MTLA_ST_HAVE_DNNL
        cpu_state *s = ops->state;
        if (s->dnnl && mtla_dnnl_linear(s->dnnl, x, rows, in, w, bias, out, y) == 0)
            return;
#endif
        linear_f32(ops, x, rows, in, w->data, bias, out, y);
        return;
    }
#ifdef MTLA_ST_HAVE_DNNL
    cpu_state *s = ops->state;
    if (s->dnnl && mtla_dnnl_linear(s->dnnl, x, rows, in, w, bias, out, y) == 0)
        return;
#endif
    linear_widened(ops, x, rows, in, w, bias, out, y);
}

static void cpu_layer_norm(const mtla_ops *ops, const float *x, int64_t rows, int64_t dim,
                           const float *gamma, const float *beta, float eps, float *y)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * dim;
        float *yr = y + r * dim;
        double mean = 0.0, var = 0.0;
        for (int64_t i = 0; i < dim; i++)
            mean += xr[i];
        mean /= (double)dim;
        for (int64_t i = 0; i < dim; i++)
            var += ((double)xr[i] - mean) * ((double)xr[i] - mean);
        var /= (double)dim; /* biased, as torch */
        double inv = 1.0 / sqrt(var + (double)eps);
        for (int64_t i = 0; i < dim; i++)
            yr[i] = (float)(((double)xr[i] - mean) * inv) * gamma[i] + beta[i];
    }
}

/* Softmax and log-softmax in float32 as torch computes them on the CPU (max, exp, sum); the
 * exp loops are written for the compiler's vector math library (-fno-math-errno,
 * -fopenmp-simd: see CMakeLists.txt), which is what makes attention over hundreds of frames
 * cheap. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(MTLA_HAVE_LIBMVEC)
/* glibc's libmvec provides vector expf (within a few ulp); math.h declares it only under
 * -ffast-math, which we do not want for its other effects. */
float expf(float) __attribute__((simd("notinbranch")));
#endif

static float row_max(const float *x, int64_t n)
{
    float max = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        max = x[i] > max ? x[i] : max;
    return max;
}

static void cpu_softmax(const mtla_ops *ops, float *x, int64_t rows, int64_t cols, int64_t ld)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        float max = row_max(xr, cols);
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < cols; i++) {
            xr[i] = expf(xr[i] - max);
            sum += xr[i];
        }
        float inv = 1.0f / sum;
        for (int64_t i = 0; i < cols; i++)
            xr[i] *= inv;
    }
}

static void cpu_log_softmax(const mtla_ops *ops, float *x, int64_t rows, int64_t cols)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * cols;
        float max = row_max(xr, cols);
        float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
        for (int64_t i = 0; i < cols; i++)
            sum += expf(xr[i] - max);
        float log_sum = max + logf(sum);
        for (int64_t i = 0; i < cols; i++)
            xr[i] -= log_sum;
    }
}

static float sigmoid(float x)
{
    return (float)(1.0 / (1.0 + exp(-(double)x)));
}

static void cpu_glu(const mtla_ops *ops, const float *x, int64_t rows, int64_t half, float *y)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < half; c++)
            y[r * half + c] = x[r * 2 * half + c] * sigmoid(x[r * 2 * half + half + c]);
}

static void cpu_relu(const mtla_ops *ops, float *x, size_t count)
{
    (void)ops;
    for (size_t i = 0; i < count; i++)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void cpu_silu(const mtla_ops *ops, float *x, size_t count)
{
    (void)ops;
    for (size_t i = 0; i < count; i++)
        x[i] = x[i] * sigmoid(x[i]);
}

/* erf in double: the float erff of libm and torch's vectorised erf agree with it to an ulp. */
static void cpu_gelu(const mtla_ops *ops, float *x, size_t count)
{
    (void)ops;
    for (size_t i = 0; i < count; i++)
        x[i] = (float)(0.5 * (double)x[i] * (1.0 + erf((double)x[i] * 0.70710678118654752440)));
}

static void cpu_scale(const mtla_ops *ops, float *x, float alpha, size_t count)
{
    (void)ops;
    for (size_t i = 0; i < count; i++)
        x[i] *= alpha;
}

static void cpu_axpy(const mtla_ops *ops, float alpha, const float *x, float *y, size_t count)
{
    (void)ops;
    for (size_t i = 0; i < count; i++)
        y[i] += alpha * x[i];
}

/* conv1d as one matrix product: the input windows are laid out as rows of an
 * (T_out x c_in*k) matrix in the weight's (c_in, k) order, then multiplied by w^T. */
static void cpu_conv1d(const mtla_ops *ops, const float *x, int64_t t, int64_t c_in, const float *w,
                       const float *bias, int64_t c_out, int64_t k, int64_t stride, int64_t pad,
                       float *y)
{
    cpu_state *s = ops->state;
    int64_t t_out = (t + 2 * pad - k) / stride + 1;
    size_t need = (size_t)(t_out * c_in * k);
    if (need > s->im2col_count) {
        free(s->im2col);
        s->im2col = malloc(need * sizeof(float));
        s->im2col_count = s->im2col ? need : 0;
        if (!s->im2col) {
            /* Out of memory in an op that cannot fail: fall back to a direct loop. */
            for (int64_t o = 0; o < t_out; o++)
                for (int64_t co = 0; co < c_out; co++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int64_t ci = 0; ci < c_in; ci++)
                        for (int64_t j = 0; j < k; j++) {
                            int64_t ti = o * stride + j - pad;
                            if (ti >= 0 && ti < t)
                                acc += (double)w[(co * c_in + ci) * k + j] * x[ti * c_in + ci];
                        }
                    y[o * c_out + co] = (float)acc;
                }
            return;
        }
    }
    float *cols = s->im2col;
    for (int64_t o = 0; o < t_out; o++)
        for (int64_t ci = 0; ci < c_in; ci++)
            for (int64_t j = 0; j < k; j++) {
                int64_t ti = o * stride + j - pad;
                cols[(o * c_in + ci) * k + j] = ti >= 0 && ti < t ? x[ti * c_in + ci] : 0.0f;
            }
    mtla_matrix wm = mtla_matrix_f32(w, c_out, c_in * k);
    cpu_linear(ops, cols, t_out, c_in * k, &wm, bias, c_out, y);
}

static void cpu_depthwise_conv1d(const mtla_ops *ops, const float *x, int64_t t, int64_t channels,
                                 const float *w, int64_t k, int64_t pad, float *y)
{
    (void)ops;
    for (int64_t o = 0; o < t; o++)
        for (int64_t c = 0; c < channels; c++) {
            double acc = 0.0;
            for (int64_t j = 0; j < k; j++) {
                int64_t ti = o + j - pad;
                if (ti >= 0 && ti < t)
                    acc += (double)w[c * k + j] * x[ti * channels + c];
            }
            y[o * channels + c] = (float)acc;
        }
}

static void cpu_embed(const mtla_ops *ops, const float *table, int64_t dim, const int32_t *ids,
                      int64_t n, float scale, float *y)
{
    (void)ops;
    for (int64_t i = 0; i < n; i++)
        for (int64_t d = 0; d < dim; d++)
            y[i * dim + d] = scale * table[(int64_t)ids[i] * dim + d];
}

static void cpu_rope(const mtla_ops *ops, float *x, int64_t rows, int64_t ld, int64_t dim,
                     const float *positions, float theta)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * ld;
        for (int64_t i = 0; i < dim / 2; i++) {
            /* float32 throughout, in torch's order: theta^(2i/dim), its inverse, pos * f. */
            float freq = 1.0f / powf(theta, (float)(2 * i) / (float)dim);
            float angle = positions[r] * freq;
            float c = cosf(angle), s = sinf(angle);
            float re = xr[2 * i], im = xr[2 * i + 1];
            xr[2 * i] = re * c - im * s;
            xr[2 * i + 1] = re * s + im * c;
        }
    }
}

static void cpu_copy2d(const mtla_ops *ops, float *dst, int64_t ld_dst, const float *src,
                       int64_t ld_src, int64_t rows, int64_t cols, int accumulate)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++) {
        float *d = dst + r * ld_dst;
        const float *x = src + r * ld_src;
        if (accumulate)
            for (int64_t c = 0; c < cols; c++)
                d[c] += x[c];
        else
            memmove(d, x, (size_t)cols * sizeof(float));
    }
}

static void cpu_gather_rows(const mtla_ops *ops, float *dst, int64_t ld_dst, const float *src,
                            int64_t ld_src, const int32_t *index, int64_t rows, int64_t cols)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++)
        memcpy(dst + r * ld_dst, src + (int64_t)index[r] * ld_src, (size_t)cols * sizeof(float));
}

static void cpu_row_dot_sigmoid(const mtla_ops *ops, const float *a, int64_t lda, const float *b,
                                int64_t ldb, int64_t rows, int64_t dim, float *out)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++) {
        double dot = 0.0;
        for (int64_t c = 0; c < dim; c++)
            dot += (double)a[r * lda + c] * b[r * ldb + c];
        out[r] = sigmoid((float)dot);
    }
}

static void cpu_scale_rows(const mtla_ops *ops, float *x, int64_t rows, int64_t cols, int64_t ld,
                           const float *w)
{
    (void)ops;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            x[r * ld + c] *= w[r];
}

/* Scratch of at least `count` floats in s->scores (grown on demand); NULL when out of memory. */
static float *scores_scratch(cpu_state *s, size_t count)
{
    if (count > s->scores_count) {
        free(s->scores);
        s->scores = malloc(count * sizeof(float));
        s->scores_count = s->scores ? count : 0;
    }
    return s->scores;
}

/* The definition, one (batch entry, head) pair at a time with an online softmax: no scratch,
 * used when the scores matrix cannot be allocated. */
static void decode_attention_direct(int64_t batch, int64_t heads, int64_t kv_heads, int64_t dk,
                                    int64_t dv, float scale, const float *q,
                                    const mtla_kv_block *blocks, int nblocks, float *o)
{
    int64_t group = heads / kv_heads;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t h = 0; h < heads; h++) {
            const float *qh = q + (b * heads + h) * dk;
            float *oh = o + (b * heads + h) * dv;
            double acc[MTLA_OPS_MAX_HEAD_DIM];
            double max = -INFINITY, sum = 0.0;
            for (int64_t e = 0; e < dv; e++)
                acc[e] = 0.0;
            int64_t g = h / group;
            for (int i = 0; i < nblocks; i++) {
                const mtla_kv_block *blk = &blocks[i];
                const float *kb = blk->k + b * blk->batch_stride + g * blk->head_stride;
                const float *vb = blk->v + b * blk->batch_stride + g * blk->head_stride;
                for (int64_t j = 0; j < blk->n; j++) {
                    const float *kj = kb + j * blk->row_stride;
                    const float *vj = vb + j * blk->row_stride;
                    double dot = 0.0;
                    for (int64_t e = 0; e < dk; e++)
                        dot += (double)qh[e] * kj[e];
                    double score = dot * scale;
                    if (score > max) {
                        double shrink = exp(max - score);
                        sum *= shrink;
                        for (int64_t e = 0; e < dv; e++)
                            acc[e] *= shrink;
                        max = score;
                    }
                    double p = exp(score - max);
                    sum += p;
                    for (int64_t e = 0; e < dv; e++)
                        acc[e] += p * vj[e];
                }
            }
            for (int64_t e = 0; e < dv; e++)
                oh[e] = (float)(acc[e] / sum);
        }
}

/* Scores as matrix products, as torch does: a block shared by the whole batch (the speech
 * prompt's keys) is one product for every query row at once; a per-hypothesis block is one
 * product per hypothesis. Then a softmax over each row of the [batch*heads, keys] scores and
 * the same products against the values. With one kv head (MLA/MTLA) all batch*heads query
 * rows are contiguous; otherwise each query head multiplies its group's kv head. */
static void cpu_decode_attention(const mtla_ops *ops, int64_t batch, int64_t heads,
                                 int64_t kv_heads, int64_t dk, int64_t dv, float scale,
                                 const float *q, const mtla_kv_block *blocks, int nblocks,
                                 float *o)
{
    cpu_state *s = ops->state;
    int64_t keys = 0;
    for (int i = 0; i < nblocks; i++)
        keys += blocks[i].n;
    int64_t rows = batch * heads, group = heads / kv_heads;
    float *scores = scores_scratch(s, (size_t)(rows * keys));
    if (!scores) {
        decode_attention_direct(batch, heads, kv_heads, dk, dv, scale, q, blocks, nblocks, o);
        return;
    }
    /* pass 0: scores = q k^T; pass 1: o += p v */
    for (int pass = 0; pass < 2; pass++) {
        int64_t col = 0;
        int first = 1;
        for (int i = 0; i < nblocks; i++) {
            const mtla_kv_block *blk = &blocks[i];
            if (blk->n == 0)
                continue;
            float beta = pass == 1 && !first ? 1.0f : 0.0f;
            int64_t nb = blk->batch_stride == 0 ? 1 : batch; /* products per block */
            for (int64_t b = 0; b < nb; b++)
                for (int64_t g = 0; g < kv_heads; g++) {
                    /* query rows: heads g*group.. of batch entry b, or of every entry */
                    int64_t m, ld_rows, first_row;
                    if (blk->batch_stride == 0 && kv_heads == 1) {
                        m = rows, ld_rows = 1, first_row = 0;
                    } else if (blk->batch_stride == 0) {
                        m = batch, ld_rows = heads, first_row = 0;
                    } else {
                        m = group, ld_rows = 1, first_row = b * heads + g * group;
                    }
                    int64_t shared_grouped = blk->batch_stride == 0 && kv_heads > 1;
                    int64_t per_head = shared_grouped ? group : 1;
                    const float *kb = blk->k + b * blk->batch_stride + g * blk->head_stride;
                    const float *vb = blk->v + b * blk->batch_stride + g * blk->head_stride;
                    for (int64_t r = 0; r < per_head; r++) {
                        int64_t row = first_row + (shared_grouped ? g * group + r : 0);
                        float *sc = scores + row * keys + col;
                        if (pass == 0)
                            cpu_gemm(ops, 0, 1, m, blk->n, dk, scale, q + row * dk,
                                     ld_rows * dk, kb, blk->row_stride, 0.0f, sc,
                                     ld_rows * keys);
                        else
                            cpu_gemm(ops, 0, 0, m, dv, blk->n, 1.0f, sc, ld_rows * keys, vb,
                                     blk->row_stride, beta, o + row * dv, ld_rows * dv);
                    }
                }
            col += blk->n;
            first = 0;
        }
        if (pass == 0)
            cpu_softmax(ops, scores, rows, keys, keys);
    }
}

static void cpu_rel_shift_add(const mtla_ops *ops, float *scores, int64_t t, const float *bd,
                              int64_t ld_bd)
{
    (void)ops;
    for (int64_t i = 0; i < t; i++)
        for (int64_t j = 0; j < t; j++)
            scores[i * t + j] += bd[i * ld_bd + (t - 1 - i + j)];
}

static void cpu_transfer(const mtla_ops *ops, float *dst, const float *src, size_t count)
{
    cpu_copy(ops, dst, src, count);
}

static mtla_ops *cpu_create(int threads, int reduced)
{
    mtla_ops *ops = calloc(1, sizeof *ops);
    cpu_state *state = calloc(1, sizeof *state);
    if (!ops || !state) {
        free(ops);
        free(state);
        return NULL;
    }
    state->threads = threads;
    state->reduced = reduced;
    if (threads > 0)
        openblas_set_num_threads(threads);
#ifdef MTLA_ST_HAVE_DNNL
    if (reduced && !(state->dnnl = mtla_dnnl_create(threads))) {
        free(ops);
        free(state);
        return NULL;
    }
#endif
    ops->name = "cpu";
    ops->host_memory = 1;
    ops->matrix_types = 1u << MTLA_MATRIX_F32;
    if (reduced)
        ops->matrix_types |= 1u << MTLA_MATRIX_BF16 | 1u << MTLA_MATRIX_INT8;
    ops->state = state;
    ops->alloc = cpu_alloc;
    ops->free = cpu_free;
    ops->upload = cpu_transfer;
    ops->download = cpu_transfer;
    ops->copy = cpu_copy;
    ops->fill = cpu_fill;
    ops->gemm = cpu_gemm;
    ops->linear = cpu_linear;
    ops->layer_norm = cpu_layer_norm;
    ops->softmax = cpu_softmax;
    ops->log_softmax = cpu_log_softmax;
    ops->glu = cpu_glu;
    ops->relu = cpu_relu;
    ops->silu = cpu_silu;
    ops->gelu = cpu_gelu;
    ops->scale = cpu_scale;
    ops->axpy = cpu_axpy;
    ops->add_bias = cpu_add_bias;
    ops->conv1d = cpu_conv1d;
    ops->depthwise_conv1d = cpu_depthwise_conv1d;
    ops->copy2d = cpu_copy2d;
    ops->gather_rows = cpu_gather_rows;
    ops->row_dot_sigmoid = cpu_row_dot_sigmoid;
    ops->scale_rows = cpu_scale_rows;
    ops->decode_attention = cpu_decode_attention;
    ops->rel_shift_add = cpu_rel_shift_add;
    ops->embed = cpu_embed;
    ops->rope = cpu_rope;
    return ops;
}

mtla_ops *mtla_ops_cpu_create(int threads)
{
    return cpu_create(threads, 0);
}

mtla_ops *mtla_ops_cpu_create_reduced(int threads)
{
    return cpu_create(threads, 1);
}

int mtla_ops_cpu_has_dnnl(void)
{
#ifdef MTLA_ST_HAVE_DNNL
    return 1;
#else
    return 0;
#endif
}

void mtla_ops_cpu_free(mtla_ops *ops)
{
    if (!ops)
        return;
    cpu_state *s = ops->state;
#ifdef MTLA_ST_HAVE_DNNL
    mtla_dnnl_free(s->dnnl);
#endif
    free(s->widened);
    free(s->im2col);
    free(s->scores);
    free(s);
    free(ops);
}
