#include "core/weights.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/reduced.h"

typedef struct weight_copy {
    const mtla_tensor *tensor; /* NULL for derived weights */
    float *data;               /* backend memory, owned */
    size_t count;
} weight_copy;

/* A linear weight converted for a reduced dtype (host memory, CPU backends only). */
typedef struct weight_matrix {
    const mtla_tensor *tensor;
    mtla_matrix matrix;
    void *owned;   /* the converted elements; NULL when used in place */
    float *scales; /* INT8 */
    size_t bytes;
} weight_matrix;

struct mtla_weights {
    const mtla_ops *ops;
    const mtla_model_dir *dir;
    mtla_compute_dtype dtype;
    weight_copy *copies; /* device backends: one per tensor uploaded so far, plus derived ones */
    size_t count, capacity;
    weight_matrix *matrices; /* reduced dtypes: one per matrix bound so far */
    size_t matrix_count, matrix_capacity;
};

mtla_status mtla_weights_create_dtype(const mtla_ops *ops, const mtla_model_dir *dir,
                                      mtla_compute_dtype dtype, mtla_weights **out,
                                      mtla_error *err)
{
    *out = NULL;
    mtla_matrix_type type = dtype == MTLA_COMPUTE_BF16   ? MTLA_MATRIX_BF16
                            : dtype == MTLA_COMPUTE_INT8 ? MTLA_MATRIX_INT8
                                                         : MTLA_MATRIX_F32;
    if (dtype != MTLA_COMPUTE_FP32 && dtype != MTLA_COMPUTE_BF16 && dtype != MTLA_COMPUTE_INT8)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "unknown compute dtype %d", (int)dtype);
    if (!(ops->matrix_types & (1u << type)) || (type != MTLA_MATRIX_F32 && !ops->host_memory))
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED, "the %s backend does not compute in %s",
                         ops->name, mtla_compute_dtype_name(dtype));
    mtla_weights *w = calloc(1, sizeof *w);
    if (!w)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the weight table");
    w->ops = ops;
    w->dir = dir;
    w->dtype = dtype;
    *out = w;
    return MTLA_OK;
}

mtla_status mtla_weights_create(const mtla_ops *ops, const mtla_model_dir *dir, mtla_weights **out,
                                mtla_error *err)
{
    return mtla_weights_create_dtype(ops, dir, MTLA_COMPUTE_FP32, out, err);
}

void mtla_weights_free(mtla_weights *weights)
{
    if (!weights)
        return;
    for (size_t i = 0; i < weights->count; i++)
        weights->ops->free(weights->ops, weights->copies[i].data);
    for (size_t i = 0; i < weights->matrix_count; i++) {
        free(weights->matrices[i].owned);
        free(weights->matrices[i].scales);
    }
    free(weights->copies);
    free(weights->matrices);
    free(weights);
}

static weight_copy *weights_push(mtla_weights *w, mtla_error *err)
{
    if (w->count == w->capacity) {
        size_t capacity = w->capacity ? 2 * w->capacity : 64;
        weight_copy *grown = realloc(w->copies, capacity * sizeof *grown);
        if (!grown) {
            mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the weight table");
            return NULL;
        }
        w->copies = grown;
        w->capacity = capacity;
    }
    return &w->copies[w->count];
}

const float *mtla_weights_add(mtla_weights *weights, const float *host, size_t count,
                              mtla_error *err)
{
    weight_copy *slot = weights_push(weights, err);
    if (!slot)
        return NULL;
    float *data = weights->ops->alloc(weights->ops, count);
    if (!data) {
        mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of %s memory for %zu weights", weights->ops->name,
                  count);
        return NULL;
    }
    weights->ops->upload(weights->ops, data, host, count);
    slot->tensor = NULL;
    slot->data = data;
    slot->count = count;
    weights->count++;
    return data;
}

static const float *weights_get_tensor(mtla_weights *weights, const char *name, mtla_error *err)
{
    const mtla_tensor *t = mtla_model_dir_tensor(weights->dir, name);
    if (!t) {
        if (mtla_model_dir_stored(weights->dir, name))
            mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory converting tensor '%s' to fp32",
                      name);
        else
            mtla_fail(err, MTLA_ERR_INTERNAL, "model has no tensor '%s'", name);
        return NULL;
    }
    if (weights->ops->host_memory)
        return t->data;
    for (size_t i = 0; i < weights->count; i++)
        if (weights->copies[i].tensor == t)
            return weights->copies[i].data;
    const float *data = mtla_weights_add(weights, t->data, t->count, err);
    if (data)
        weights->copies[weights->count - 1].tensor = t;
    return data;
}

const float *mtla_weights_get(mtla_weights *weights, mtla_error *err, const char *format, ...)
{
    char name[MTLA_TENSOR_NAME_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);
    return weights_get_tensor(weights, name, err);
}

/* Elements [begin, begin + count) of a stored tensor as float32, into dst (a row at a time, so
 * that no whole fp32 copy is made). */
static void stored_row(const mtla_tensor *t, size_t begin, size_t count, float *dst)
{
    mtla_convert_to_f32(t->stored, t->raw + begin * mtla_dtype_size(t->stored), count, dst);
}

/* t converted to the set's reduced dtype into m (owned memory). */
static mtla_status convert_matrix(const mtla_weights *weights, const mtla_tensor *t,
                                  weight_matrix *m, mtla_error *err)
{
    size_t rows = (size_t)m->matrix.rows, cols = (size_t)m->matrix.cols;
    const uint16_t probe = 1;
    unsigned char first_byte;
    memcpy(&first_byte, &probe, 1);
    if (m->matrix.type == MTLA_MATRIX_BF16 && t->stored == MTLA_DTYPE_BF16 && first_byte == 1 &&
        (uintptr_t)t->raw % _Alignof(uint16_t) == 0) {
        m->matrix.data = t->raw; /* in place in the mapping */
        return MTLA_OK;
    }
    float *row = malloc((cols ? cols : 1) * sizeof *row);
    size_t element = m->matrix.type == MTLA_MATRIX_BF16 ? 2 : 1;
    m->bytes = rows * cols * element;
    m->owned = malloc(m->bytes ? m->bytes : 1);
    if (m->matrix.type == MTLA_MATRIX_INT8) {
        m->scales = malloc((rows ? rows : 1) * sizeof *m->scales);
        m->bytes += rows * sizeof *m->scales;
    }
    if (!row || !m->owned || (m->matrix.type == MTLA_MATRIX_INT8 && !m->scales)) {
        free(row);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory converting tensor '%s' to %s",
                         t->name, mtla_compute_dtype_name(weights->dtype));
    }
    for (size_t r = 0; r < rows; r++) {
        stored_row(t, r * cols, cols, row);
        if (m->matrix.type == MTLA_MATRIX_BF16)
            mtla_f32_to_bf16_n(row, cols, (uint16_t *)m->owned + r * cols);
        else
            m->scales[r] = mtla_quantize_row_int8(row, cols, (int8_t *)m->owned + r * cols);
    }
    free(row);
    mtla_model_dir_release(t);
    m->matrix.data = m->owned;
    m->matrix.scales = m->scales;
    return MTLA_OK;
}

mtla_matrix mtla_weights_matrix(mtla_weights *weights, mtla_error *err, const char *format, ...)
{
    char name[MTLA_TENSOR_NAME_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);

    mtla_matrix none = {0};
    const mtla_tensor *t = mtla_model_dir_stored(weights->dir, name);
    if (!t) {
        mtla_fail(err, MTLA_ERR_INTERNAL, "model has no tensor '%s'", name);
        return none;
    }
    int64_t rows = t->ndim >= 2 ? t->shape[0] : 1;
    int64_t cols = rows > 0 ? (int64_t)t->count / rows : 0;
    if (weights->dtype == MTLA_COMPUTE_FP32) {
        const float *data = weights_get_tensor(weights, name, err);
        return data ? mtla_matrix_f32(data, rows, cols) : none;
    }
    for (size_t i = 0; i < weights->matrix_count; i++)
        if (weights->matrices[i].tensor == t)
            return weights->matrices[i].matrix;
    if (weights->matrix_count == weights->matrix_capacity) {
        size_t capacity = weights->matrix_capacity ? 2 * weights->matrix_capacity : 64;
        weight_matrix *grown = realloc(weights->matrices, capacity * sizeof *grown);
        if (!grown) {
            mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the weight table");
            return none;
        }
        weights->matrices = grown;
        weights->matrix_capacity = capacity;
    }
    weight_matrix *m = &weights->matrices[weights->matrix_count];
    memset(m, 0, sizeof *m);
    m->tensor = t;
    m->matrix.type = weights->dtype == MTLA_COMPUTE_BF16 ? MTLA_MATRIX_BF16 : MTLA_MATRIX_INT8;
    m->matrix.rows = rows;
    m->matrix.cols = cols;
    if (convert_matrix(weights, t, m, err) != MTLA_OK) {
        free(m->owned);
        free(m->scales);
        return none;
    }
    weights->matrix_count++;
    return m->matrix;
}

size_t mtla_weights_owned_bytes(const mtla_weights *weights)
{
    size_t bytes = 0;
    for (size_t i = 0; i < weights->count; i++)
        bytes += weights->copies[i].count * sizeof(float);
    for (size_t i = 0; i < weights->matrix_count; i++)
        bytes += weights->matrices[i].bytes;
    return bytes;
}

const mtla_model_dir *mtla_weights_model(const mtla_weights *weights)
{
    return weights->dir;
}
