/* A model directory (docs/model-format.md) loaded and checked: the config, every tensor as
 * fp32, the vocabulary and the path of the SentencePiece model. The engine reads its weights
 * from here; include/mtla-st.h exposes it as the opaque mtla_model.
 *
 * mtla_model_dir_open checks, in this order: the directory, config.json (core/config.h),
 * vocab.txt (vocab.size lines of UTF-8, no NUL, no CR, none empty, final newline optional),
 * tokenizer.model (a non-empty regular file), the tensor files (core/safetensors.h), and that
 * the tensors are exactly those mtla_model_tensor_specs lists for the config, with the same
 * shapes. F32 tensors are used in place in the read-only mapping when aligned (copied
 * otherwise). F16 and BF16 tensors are converted to fp32 the first time they are looked up
 * (mtla_model_dir_tensor), so that a translator computing in bf16 or int8 (core/weights.h),
 * which reads the stored bytes (`raw`), never makes an fp32 copy of them. The mappings stay
 * open while the model is. */
#ifndef MTLA_CORE_MODEL_DIR_H
#define MTLA_CORE_MODEL_DIR_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/safetensors.h"
#include "mtla-st.h"

#define MTLA_TENSOR_NAME_MAX 96

/* A tensor a config requires: its PyTorch state-dict name and shape. */
typedef struct mtla_tensor_spec {
    char name[MTLA_TENSOR_NAME_MAX];
    int32_t ndim;
    int64_t shape[MTLA_TENSOR_MAX_DIMS];
    int buffer; /* a statistic (BatchNorm running mean/var, global CMVN), not a parameter */
} mtla_tensor_spec;

/* Every tensor `config` (already validated) requires, as the tables of docs/model-format.md
 * list them: *specs is malloc'ed, sorted by name. */
mtla_status mtla_model_tensor_specs(const mtla_model_config *config, mtla_tensor_spec **specs,
                                    size_t *count, mtla_error *err);

/* Trained parameters among `specs`, as fairseq counts them (buffers excluded). */
int64_t mtla_model_parameter_count(const mtla_tensor_spec *specs, size_t count);

/* One line such as "transformer 12x512 encoder, mtla s=2 9x512 decoder, 78.1M parameters". */
void mtla_model_describe(const mtla_model_config *config, int64_t parameters, char *buf,
                         size_t size);

/* A loaded tensor, fp32 and row-major. */
typedef struct mtla_tensor {
    const char *name; /* the PyTorch state-dict name */
    int32_t ndim;
    int64_t shape[MTLA_TENSOR_MAX_DIMS];
    size_t count;      /* elements */
    const float *data; /* count floats; for F16/BF16 NULL until looked up (see above) */
    float *owned; /* data, when converted or copied; NULL when data is in the mapping */
    mtla_dtype stored;        /* dtype in the file */
    const unsigned char *raw; /* the stored bytes in the mapping: count elements of `stored`,
                                 little-endian, any alignment */
} mtla_tensor;

typedef struct mtla_model_dir {
    char *path;
    mtla_model_config config;
    mtla_tensor_spec *specs; /* sorted by name; the tensors' names point here */
    mtla_tensor *tensors;    /* one per spec, in the same order */
    size_t tensor_count;
    int64_t parameter_count;
    char **pieces; /* vocab.txt: pieces[id], config.vocab.size of them */
    char *vocab_text;
    char *tokenizer_path;          /* the SentencePiece model */
    mtla_safetensors_set *weights; /* the mappings `raw` (and in-place F32 data) point into */
    pthread_mutex_t convert_lock;  /* serialises the fp32 conversion of a lookup */
    int convert_lock_made;
} mtla_model_dir;

mtla_status mtla_model_dir_open(const char *path, mtla_model_dir **out, mtla_error *err);
void mtla_model_dir_close(mtla_model_dir *dir);

/* The tensor named `name` with its fp32 data (converted now if it was not yet), or NULL when
 * there is no such tensor or no memory for its conversion. Any thread may call it. */
const mtla_tensor *mtla_model_dir_tensor(const mtla_model_dir *dir, const char *name);
/* The tensor named `name` as stored, without converting it: `data` may be NULL, `raw` is set. */
const mtla_tensor *mtla_model_dir_stored(const mtla_model_dir *dir, const char *name);
/* Drops the whole pages of t's stored bytes from the process's memory once a converted copy
 * is made: the mapping is read-only, so a later read of `raw` (or of in-place F32 data) reads
 * them from the file again. Keeps the resident size at the converted copies' size. */
void mtla_model_dir_release(const mtla_tensor *t);
/* The same with a printf-style name, e.g. ("decoder.layers.%d.fc1.weight", layer). */
const mtla_tensor *mtla_model_dir_tensorf(const mtla_model_dir *dir, const char *format, ...)
    MTLA_PRINTF(2, 3);
/* The piece of model id `id` (vocab.txt line id + 1), or NULL when out of range. */
const char *mtla_model_dir_piece(const mtla_model_dir *dir, int32_t id);

/* The public handle of include/mtla-st.h. */
struct mtla_model {
    mtla_model_dir *dir;
    char description[192];
};

#endif
