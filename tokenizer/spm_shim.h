/* The only C++ in mtla-st: a C interface to the parts of SentencePiece the tokenizer uses.
 * Functions return 0 on success; on failure they write a one-line reason into `message`. */
#ifndef MTLA_TOKENIZER_SPM_SHIM_H
#define MTLA_TOKENIZER_SPM_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spm_shim spm_shim;

/* Loads a SentencePiece model file (tokenizer.model). */
int spm_shim_load(const char *path, spm_shim **out, char *message, size_t message_size);

/* Encodes UTF-8 `text` into pieces: *pieces receives `*count` malloc'ed NUL-terminated strings
 * in a malloc'ed array; release them with spm_shim_free_pieces. */
int spm_shim_encode(const spm_shim *shim, const char *text, char ***pieces, size_t *count,
                    char *message, size_t message_size);

void spm_shim_free_pieces(char **pieces, size_t count);
void spm_shim_free(spm_shim *shim);

#ifdef __cplusplus
}
#endif

#endif
