/* The model's vocabulary: model ids <-> SentencePiece pieces (vocab.txt, line i = id i), text
 * out as fairseq prints it, and text in (for forced decoding) through SentencePiece. */
#ifndef MTLA_TOKENIZER_H
#define MTLA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "mtla-st.h"

/* The fairseq dictionary's special ids (config.json "vocab"). */
typedef struct mtla_special_ids {
    int32_t bos;
    int32_t pad;
    int32_t eos;
    int32_t unk;
} mtla_special_ids;

typedef struct mtla_tokenizer mtla_tokenizer;

/* Loads vocab.txt and tokenizer.model. Every line of vocab.txt must be a non-empty UTF-8 piece
 * without control characters; a piece may appear once only. */
mtla_status mtla_tokenizer_open(const char *model_path, const char *vocab_path,
                                const mtla_special_ids *specials, mtla_tokenizer **out,
                                mtla_error *err);
void mtla_tokenizer_free(mtla_tokenizer *tok);

/* Number of model ids (lines of vocab.txt). */
int32_t mtla_tokenizer_size(const mtla_tokenizer *tok);
/* The piece of model id `id`, or NULL when out of range. */
const char *mtla_tokenizer_piece(const mtla_tokenizer *tok, int32_t id);

/* The text fairseq prints for `ids` (SentencepieceBPE.decode): bos, pad and eos are skipped,
 * the pieces are joined, U+2581 becomes a space and the ends are stripped. *text is malloc'ed. */
mtla_status mtla_tokenizer_decode(const mtla_tokenizer *tok, const int32_t *ids, size_t count,
                                  char **text, mtla_error *err);

/* Encodes UTF-8 text to model ids: SentencePiece pieces looked up in vocab.txt, unknown pieces
 * becoming unk. *ids is malloc'ed (never NULL on success, even for no ids). */
mtla_status mtla_tokenizer_encode(const mtla_tokenizer *tok, const char *text, int32_t **ids,
                                  size_t *count, mtla_error *err);

#endif
