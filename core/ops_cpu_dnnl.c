/* oneDNN products of the reduced-precision CPU backend (core/ops_cpu_dnnl.h).
 *
 * Linear is a oneDNN matmul y[m, n] = x[m, k] W^T with W [n, k] described as a [k, n] matrix of
 * strides (1, k): the model tensor itself, in place. One primitive per (m, n, k, type, bias) is
 * made on first use and kept in a small least-recently-used cache (a decoding run uses a
 * handful of shapes; each new encoder length adds a few).
 *   F32:  float32 x and W, bias in the primitive.
 *   BF16: x rounded to bfloat16 here, W bfloat16, float32 accumulation and output, bias in the
 *         primitive (torch's bf16 Linear; oneDNN picks AVX512-BF16 or AMX kernels).
 *   INT8: each row of x quantised to int8 with its own scale (core/reduced.h), int8 W with one
 *         scale per output channel, exact int32 sums, then y = sum * sx[m] * sw[n] + bias[n]. */
#include "core/ops_cpu_dnnl.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/reduced.h"

enum { CACHE_SIZE = 64 };

typedef struct product {
    int64_t m, n, k;
    mtla_matrix_type type;
    int bias;
    dnnl_primitive_t prim; /* NULL: free entry */
    dnnl_memory_t src, weights, bias_mem, dst;
    uint64_t used;
} product;

struct mtla_dnnl {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;
    product cache[CACHE_SIZE];
    uint64_t clock;
    void *act; /* x converted to bfloat16 or int8 */
    size_t act_bytes;
    float *act_scales; /* int8: one per row of x */
    size_t act_scales_count;
    int32_t *acc; /* int8: the int32 sums */
    size_t acc_count;
};

mtla_dnnl *mtla_dnnl_create(int threads)
{
    mtla_dnnl *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->threads = threads;
    if (dnnl_engine_create(&d->engine, dnnl_cpu, 0) != dnnl_success) {
        free(d);
        return NULL;
    }
    if (dnnl_stream_create(&d->stream, d->engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(d->engine);
        free(d);
        return NULL;
    }
    return d;
}

static void product_clear(product *p)
{
    if (!p->prim)
        return;
    dnnl_primitive_destroy(p->prim);
    dnnl_memory_destroy(p->src);
    dnnl_memory_destroy(p->weights);
    if (p->bias_mem)
        dnnl_memory_destroy(p->bias_mem);
    dnnl_memory_destroy(p->dst);
    memset(p, 0, sizeof *p);
}

void mtla_dnnl_free(mtla_dnnl *d)
{
    if (!d)
        return;
    for (int i = 0; i < CACHE_SIZE; i++)
        product_clear(&d->cache[i]);
    dnnl_stream_destroy(d->stream);
    dnnl_engine_destroy(d->engine);
    free(d->act);
    free(d->act_scales);
    free(d->acc);
    free(d);
}

/* OpenMP's thread count is per calling thread: set it for the thread that runs this backend. */
static void use_threads(const mtla_dnnl *d)
{
    if (d->threads > 0 && omp_get_max_threads() != d->threads)
        omp_set_num_threads(d->threads);
}

int mtla_dnnl_sgemm(mtla_dnnl *d, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                    float beta, float *c, int64_t ldc)
{
    use_threads(d);
    return dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb,
                      beta, c, ldc) == dnnl_success
               ? 0
               : -1;
}

static dnnl_data_type_t element(mtla_matrix_type type)
{
    return type == MTLA_MATRIX_BF16 ? dnnl_bf16 : type == MTLA_MATRIX_INT8 ? dnnl_s8 : dnnl_f32;
}

static int memory(dnnl_memory_t *mem, const dnnl_engine_t engine, int64_t rows, int64_t cols,
                  int64_t row_stride, int64_t col_stride, dnnl_data_type_t type)
{
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {rows, cols}, strides = {row_stride, col_stride};
    if (dnnl_memory_desc_init_by_strides(&md, 2, dims, type, strides) != dnnl_success)
        return -1;
    return dnnl_memory_create(mem, &md, engine, DNNL_MEMORY_NONE) == dnnl_success ? 0 : -1;
}

/* A new primitive for `key` into *p (cleared on failure). */
static int product_make(mtla_dnnl *d, const product *key, product *p)
{
    *p = *key;
    p->prim = NULL;
    dnnl_data_type_t t = element(key->type);
    int64_t m = key->m, n = key->n, k = key->k;
    int bias = key->bias && key->type != MTLA_MATRIX_INT8; /* int8 adds it while scaling */
    if (memory(&p->src, d->engine, m, k, k, 1, t) || memory(&p->weights, d->engine, k, n, 1, k, t) ||
        (bias && memory(&p->bias_mem, d->engine, 1, n, n, 1, dnnl_f32)) ||
        memory(&p->dst, d->engine, m, n, n, 1,
               key->type == MTLA_MATRIX_INT8 ? dnnl_s32 : dnnl_f32))
        goto fail;
    const dnnl_memory_desc_t *src_md, *w_md, *b_md = NULL, *dst_md;
    dnnl_memory_get_memory_desc(p->src, &src_md);
    dnnl_memory_get_memory_desc(p->weights, &w_md);
    if (bias)
        dnnl_memory_get_memory_desc(p->bias_mem, &b_md);
    dnnl_memory_get_memory_desc(p->dst, &dst_md);
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, src_md, w_md, b_md, dst_md) != dnnl_success)
        goto fail;
    dnnl_primitive_desc_t pd;
    if (dnnl_primitive_desc_create(&pd, &desc, NULL, d->engine, NULL) != dnnl_success)
        goto fail;
    dnnl_status_t st = dnnl_primitive_create(&p->prim, pd);
    dnnl_primitive_desc_destroy(pd);
    if (st != dnnl_success) {
        p->prim = NULL;
        goto fail;
    }
    return 0;
fail:
    if (p->src)
        dnnl_memory_destroy(p->src);
    if (p->weights)
        dnnl_memory_destroy(p->weights);
    if (p->bias_mem)
        dnnl_memory_destroy(p->bias_mem);
    if (p->dst)
        dnnl_memory_destroy(p->dst);
    memset(p, 0, sizeof *p);
    return -1;
}

static product *product_get(mtla_dnnl *d, int64_t m, int64_t n, int64_t k, mtla_matrix_type type,
                            int bias)
{
    product *lru = &d->cache[0];
    for (int i = 0; i < CACHE_SIZE; i++) {
        product *p = &d->cache[i];
        if (p->prim && p->m == m && p->n == n && p->k == k && p->type == type && p->bias == bias) {
            p->used = ++d->clock;
            return p;
        }
        if (!p->prim || (lru->prim && p->used < lru->used))
            lru = p;
    }
    product_clear(lru);
    product key = {.m = m, .n = n, .k = k, .type = type, .bias = bias};
    if (product_make(d, &key, lru) != 0)
        return NULL;
    lru->used = ++d->clock;
    return lru;
}

static int grow(void **buf, size_t *have, size_t bytes)
{
    if (bytes <= *have)
        return 0;
    void *p = malloc(bytes);
    if (!p)
        return -1;
    free(*buf);
    *buf = p;
    *have = bytes;
    return 0;
}

int mtla_dnnl_linear(mtla_dnnl *d, const float *x, int64_t rows, int64_t in, const mtla_matrix *w,
                     const float *bias, int64_t out, float *y)
{
    product *p = product_get(d, rows, out, in, w->type, bias != NULL);
    if (!p)
        return -1;
    size_t n_x = (size_t)(rows * in);
    const void *src = x;
    void *dst = y;
    if (w->type == MTLA_MATRIX_BF16) {
        if (grow(&d->act, &d->act_bytes, n_x * sizeof(uint16_t)))
            return -1;
        mtla_f32_to_bf16_n(x, n_x, d->act);
        src = d->act;
    } else if (w->type == MTLA_MATRIX_INT8) {
        size_t bytes = (size_t)rows * sizeof(float);
        if (grow(&d->act, &d->act_bytes, n_x) ||
            grow((void **)&d->act_scales, &d->act_scales_count, bytes) ||
            grow((void **)&d->acc, &d->acc_count, (size_t)(rows * out) * sizeof(int32_t)))
            return -1;
        for (int64_t r = 0; r < rows; r++)
            d->act_scales[r] =
                mtla_quantize_row_int8(x + r * in, (size_t)in, (int8_t *)d->act + r * in);
        src = d->act;
        dst = d->acc;
    }
    dnnl_memory_set_data_handle(p->src, (void *)src);
    dnnl_memory_set_data_handle(p->weights, (void *)w->data);
    if (p->bias_mem)
        dnnl_memory_set_data_handle(p->bias_mem, (void *)bias);
    dnnl_memory_set_data_handle(p->dst, dst);
    dnnl_exec_arg_t args[4] = {
        {DNNL_ARG_SRC, p->src}, {DNNL_ARG_WEIGHTS, p->weights}, {DNNL_ARG_DST, p->dst}};
    int nargs = 3;
    if (p->bias_mem)
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bias_mem};
    use_threads(d);
    if (dnnl_primitive_execute(p->prim, d->stream, nargs, args) != dnnl_success ||
        dnnl_stream_wait(d->stream) != dnnl_success)
        return -1;
    if (w->type == MTLA_MATRIX_INT8)
        for (int64_t r = 0; r < rows; r++) {
            const int32_t *acc = d->acc + r * out;
            float sx = d->act_scales[r];
            for (int64_t o = 0; o < out; o++)
                y[r * out + o] = (float)acc[o] * (sx * w->scales[o]) + (bias ? bias[o] : 0.0f);
        }
    return 0;
}
