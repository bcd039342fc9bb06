/* What the translator offers the rest of the library (api/stream.c) beyond include/mtla-st.h:
 * decoding with a forced prefix, the per-token log-probs of the result, and its tokenizer. */
#ifndef MTLA_API_TRANSLATOR_INTERNAL_H
#define MTLA_API_TRANSLATOR_INTERNAL_H

#include <stdint.h>

#include "mtla-st.h"
#include "tokenizer/tokenizer.h"

/* mtla_translate_samples whose hypotheses all start with prefix[0..prefix_length) (the beam
 * search's forced prefix, decoder/beam.h; max_len grows to fit it), the token after it one
 * that `next_allowed` ([vocab], may be NULL) allows, or EOS. When `logprobs` is not
 * NULL it receives the log-prob of each token of the result and of its final EOS
 * (token_count + 1 values, malloc'ed; the caller frees it). */
mtla_status mtla_translator_run(mtla_translator *translator, const float *samples, size_t count,
                                const mtla_decode_params *params, const int32_t *prefix,
                                int32_t prefix_length, const unsigned char *next_allowed,
                                mtla_translation *out, float **logprobs, mtla_error *err);

const mtla_tokenizer *mtla_translator_tokenizer(const mtla_translator *translator);
const mtla_model *mtla_translator_model(const mtla_translator *translator);

#endif
