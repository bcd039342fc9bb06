/* The pieces of api/stream.c that the tests check on their own. */
#ifndef MTLA_API_STREAM_INTERNAL_H
#define MTLA_API_STREAM_INTERNAL_H

#include <stdint.h>

/* The repetition guard: 1 when some n-gram of 1..max_ngram tokens occurs more than `limit`
 * times in a row in tokens[0..count) (a decoder looping), 0 otherwise or when limit is 0. */
int mtla_stream_repeats(const int32_t *tokens, int32_t count, int32_t max_ngram, int32_t limit);

#endif
