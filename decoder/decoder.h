/* The decoder-only prompt decoder (SPEC.md 4 and 5, docs/architecture.md 3 and 4): the speech
 * prompt P is the first part of every layer's key/value input, text tokens follow, and the
 * self-attention is MHA, GQA/MQA, MLA or MTLA as the model's config says.
 *
 * A decoding state holds the caches of up to `hyps` hypotheses of one utterance:
 * - shared: the keys that only prompt rows make (MHA/GQA: the prompt's K and V; MLA: one slot
 *   per prompt frame; MTLA: the floor(S/s) complete prompt chunks). Stored once, read by every
 *   hypothesis, never reordered.
 * - own: per hypothesis, the slots (or K/V rows) that the start token and text tokens touch;
 *   reordering moves only these.
 * Every hypothesis of a state is at the same step, so they all own the same number of slots.
 *
 * Log-probabilities come back in host memory, [hyps, vocab]. */
#ifndef MTLA_DECODER_DECODER_H
#define MTLA_DECODER_DECODER_H

#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/weights.h"

typedef struct mtla_decoder mtla_decoder;
typedef struct mtla_decoder_state mtla_decoder_state;

mtla_status mtla_decoder_create(const mtla_ops *ops, mtla_weights *weights,
                                const mtla_model_config *config, mtla_decoder **out,
                                mtla_error *err);
void mtla_decoder_free(mtla_decoder *decoder);

mtla_status mtla_decoder_state_create(mtla_decoder *decoder, mtla_decoder_state **out,
                                      mtla_error *err);
void mtla_decoder_state_free(mtla_decoder_state *state);

/* First step of an utterance: prompt P ([prompt_frames, D], backend memory) and the start
 * token (EOS) at position S, for `hyps` identical hypotheses that may then take up to
 * `max_steps` more tokens each. Writes the start token's log-probabilities ([vocab], host). */
mtla_status mtla_decoder_start(mtla_decoder_state *state, const float *prompt,
                               int64_t prompt_frames, int32_t hyps, int32_t max_steps,
                               float *logprobs, mtla_error *err);

/* Feeds one token per hypothesis (host memory) and writes [hyps, vocab] log-probabilities. */
mtla_status mtla_decoder_step(mtla_decoder_state *state, const int32_t *tokens, float *logprobs,
                              mtla_error *err);

/* Hypothesis b takes over the cache of hypothesis source[b] (host memory, `hyps` entries). */
void mtla_decoder_reorder(mtla_decoder_state *state, const int32_t *source);

/* Cache memory now in use: bytes shared by all hypotheses, and bytes per hypothesis (slots or
 * K/V rows actually filled, over all layers). */
void mtla_decoder_cache_bytes(const mtla_decoder_state *state, int64_t *shared,
                              int64_t *per_hypothesis);

/* The special token ids and vocabulary size of the model the decoder runs. */
const mtla_vocab_config *mtla_decoder_vocab(const mtla_decoder_state *state);

#endif
