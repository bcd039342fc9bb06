/* Model tensors as the backend sees them. The CPU backend reads the loaded fp32 tensors of
 * core/model_dir.h in place; a device backend gets its own copies, made once here, so that
 * encoder/ and decoder/ bind every weight the same way whatever runs them.
 *
 * Derived weights (e.g. a BatchNorm folded into the preceding convolution) are made on the host
 * and handed to mtla_weights_add, which keeps them alive as long as the set. */
#ifndef MTLA_CORE_WEIGHTS_H
#define MTLA_CORE_WEIGHTS_H

#include <stddef.h>

#include "core/error.h"
#include "core/model_dir.h"
#include "core/ops.h"

typedef struct mtla_weights mtla_weights;

/* Float32 weights throughout (the reference). */
mtla_status mtla_weights_create(const mtla_ops *ops, const mtla_model_dir *dir, mtla_weights **out,
                                mtla_error *err);
/* Linear weights (mtla_weights_matrix) in `dtype`, which `ops` must accept (matrix_types):
 * BF16 tensors stored as bf16 are used in place in the mapping, others are converted once to
 * bfloat16 (rounded to nearest even); INT8 quantises each row once (core/reduced.h). Neither
 * makes an fp32 copy of an fp16 or bf16 tensor. */
mtla_status mtla_weights_create_dtype(const mtla_ops *ops, const mtla_model_dir *dir,
                                      mtla_compute_dtype dtype, mtla_weights **out,
                                      mtla_error *err);
void mtla_weights_free(mtla_weights *weights);

/* The backend copy of tensor `name` (printf-style), or NULL with a message in *err when the
 * model has no such tensor (the loader has already checked names and shapes against the config,
 * so NULL means a bug in the caller). */
const float *mtla_weights_get(mtla_weights *weights, mtla_error *err, const char *format, ...)
    MTLA_PRINTF(3, 4);

/* The weight [rows, cols] of a Linear (or any matrix that only ops->linear reads) named
 * `name`, in the set's dtype; .data is NULL with a message in *err when the model has no such
 * tensor or memory ran out. A 1-d tensor is one row. */
mtla_matrix mtla_weights_matrix(mtla_weights *weights, mtla_error *err, const char *format, ...)
    MTLA_PRINTF(3, 4);

/* Bytes of weight memory the set owns: converted or quantised matrices, device copies. */
size_t mtla_weights_owned_bytes(const mtla_weights *weights);

/* Uploads `count` host floats as a weight owned by the set; NULL when out of memory. */
const float *mtla_weights_add(mtla_weights *weights, const float *host, size_t count,
                              mtla_error *err);

const mtla_model_dir *mtla_weights_model(const mtla_weights *weights);

#endif
