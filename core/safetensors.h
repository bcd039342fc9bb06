/* safetensors tensor files (docs/model-format.md, "Tensor files").
 *
 * A file is mapped read-only and its header checked in full before anything else: header
 * length (at most 100 MiB, inside the file), UTF-8 JSON with nothing after it, every entry's
 * dtype (F32, F16, BF16), shape (non-negative, product and byte size not overflowing) and
 * data_offsets (ordered, inside the data area, equal to shape x dtype size), no two tensors
 * overlapping, no name twice. Data pointers are made only from offsets checked against the
 * file's size, so no header can make the loader read out of bounds.
 *
 * A set is what a model directory holds: model.safetensors, or the shards listed by
 * model.safetensors.index.json ({"weight_map": {name: file}, "metadata": {...}}), each
 * checked as above, with every tensor in exactly one shard and in the shard the index names.
 */
#ifndef MTLA_CORE_SAFETENSORS_H
#define MTLA_CORE_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "mtla-st.h"

#define MTLA_TENSOR_MAX_DIMS 8
#define MTLA_SAFETENSORS_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
#define MTLA_SAFETENSORS_SINGLE "model.safetensors"
#define MTLA_SAFETENSORS_INDEX "model.safetensors.index.json"

typedef enum mtla_dtype {
    MTLA_DTYPE_F32 = 0, /* "F32": IEEE binary32, little-endian */
    MTLA_DTYPE_F16,     /* "F16": IEEE binary16 */
    MTLA_DTYPE_BF16     /* "BF16": bfloat16, the top half of a binary32 */
} mtla_dtype;

size_t mtla_dtype_size(mtla_dtype dtype);
const char *mtla_dtype_name(mtla_dtype dtype);

/* Exact conversions (every binary16 and bfloat16 value is a binary32 value): subnormals,
 * infinities and signed zeros kept, NaNs stay NaN with their payload. */
float mtla_f16_to_f32(uint16_t bits);
float mtla_bf16_to_f32(uint16_t bits);

/* Converts `count` little-endian elements of `dtype` at `src` (any alignment) to fp32. */
void mtla_convert_to_f32(mtla_dtype dtype, const unsigned char *src, uint64_t count, float *dst);

/* "[2048, 256]" into `buf`; returns buf. */
const char *mtla_shape_format(const int64_t *shape, int32_t ndim, char *buf, size_t size);

/* One tensor as its header describes it. */
typedef struct mtla_st_tensor {
    char *name;
    mtla_dtype dtype;
    int32_t ndim;
    int64_t shape[MTLA_TENSOR_MAX_DIMS];
    uint64_t count; /* elements: the product of shape (1 for a scalar) */
    uint64_t begin; /* data_offsets, relative to the data area */
    uint64_t end;
    const unsigned char *data; /* the bytes [begin, end) in the mapping; NULL once unmapped */
    const char *file;          /* label of the file holding it, for messages */
    size_t file_index;         /* index of that file in its set (0 for a lone file) */
} mtla_st_tensor;

typedef struct mtla_safetensors {
    char *label;        /* the file's name in messages, e.g. "model-00001-of-00002.safetensors" */
    unsigned char *map; /* the whole file, PROT_READ; NULL once unmapped */
    size_t map_size;
    uint64_t header_size;    /* N, the JSON's length */
    mtla_st_tensor *tensors; /* sorted by name */
    size_t count;
} mtla_safetensors;

/* Maps and checks the file at `path`; messages start with `label`. */
mtla_status mtla_safetensors_open(const char *path, const char *label, mtla_safetensors **out,
                                  mtla_error *err);
const mtla_st_tensor *mtla_safetensors_find(const mtla_safetensors *file, const char *name);
void mtla_safetensors_close(mtla_safetensors *file);

/* The tensors of a model directory: one file or the shards of an index. When both
 * model.safetensors and the index exist, model.safetensors is read (as tools/reference does). */
typedef struct mtla_safetensors_set {
    const char *label; /* MTLA_SAFETENSORS_SINGLE or MTLA_SAFETENSORS_INDEX */
    int sharded;
    mtla_safetensors **files;
    size_t file_count;
    const mtla_st_tensor **tensors; /* across all files, sorted by name */
    size_t count;
} mtla_safetensors_set;

mtla_status mtla_safetensors_set_open(const char *dir, mtla_safetensors_set **out, mtla_error *err);
const mtla_st_tensor *mtla_safetensors_set_find(const mtla_safetensors_set *set, const char *name);
/* Releases the mapping of files[index] once nothing points into it; its tensors keep their
 * names and shapes, their data becomes NULL. */
void mtla_safetensors_set_unmap(mtla_safetensors_set *set, size_t index);
void mtla_safetensors_set_close(mtla_safetensors_set *set);

#endif
