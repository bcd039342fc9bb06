#include "core/weights.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct weight_copy {
    const mtla_tensor *tensor; /* NULL for derived weights */
    float *data;               /* backend memory, owned */
} weight_copy;

struct mtla_weights {
    const mtla_ops *ops;
    const mtla_model_dir *dir;
    weight_copy *copies; /* device backends: one per tensor uploaded so far, plus derived ones */
    size_t count, capacity;
};

mtla_status mtla_weights_create(const mtla_ops *ops, const mtla_model_dir *dir, mtla_weights **out,
                                mtla_error *err)
{
    *out = NULL;
    mtla_weights *w = calloc(1, sizeof *w);
    if (!w)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for the weight table");
    w->ops = ops;
    w->dir = dir;
    *out = w;
    return MTLA_OK;
}

void mtla_weights_free(mtla_weights *weights)
{
    if (!weights)
        return;
    for (size_t i = 0; i < weights->count; i++)
        weights->ops->free(weights->ops, weights->copies[i].data);
    free(weights->copies);
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
    weights->count++;
    return data;
}

const float *mtla_weights_get(mtla_weights *weights, mtla_error *err, const char *format, ...)
{
    char name[MTLA_TENSOR_NAME_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);

    const mtla_tensor *t = mtla_model_dir_tensor(weights->dir, name);
    if (!t) {
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

const mtla_model_dir *mtla_weights_model(const mtla_weights *weights)
{
    return weights->dir;
}
