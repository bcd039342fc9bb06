/* Beam search with fairseq SequenceGenerator + BeamSearch semantics at batch size 1 (SPEC.md 6,
 * docs/architecture.md 5); greedy decoding is beam 1. Runs on the host over the log-probs the
 * decoder returns; the decoder's caches are reordered by each step's surviving hypotheses. */
#ifndef MTLA_DECODER_BEAM_H
#define MTLA_DECODER_BEAM_H

#include <stdint.h>

#include "core/error.h"
#include "decoder/decoder.h"

typedef struct mtla_beam_params {
    int32_t beam;      /* B >= 1 */
    int32_t max_len;   /* tokens before EOS is forced: min(int(a * frames + b), 1023) */
    int32_t min_len;   /* EOS is -inf before this step (fairseq default 1) */
    float lenpen;      /* finalised score = cumulative log-prob / (length incl. EOS)^lenpen */
    float unk_penalty; /* subtracted from <unk>'s log-prob (fairseq --unkpen, default 0) */
    /* Forced prefix (fairseq's prefix_tokens): the first prefix_length tokens of every
     * hypothesis are these, scored with their own log-probs; the search is free from the step
     * after them. 0 <= prefix_length <= max_len; no EOS or pad among them. NULL/0: none. */
    const int32_t *prefix;
    int32_t prefix_length;
    /* With a prefix, when not NULL ([V]): the token after it must have a non-zero entry here,
     * or be EOS (a stream's committed words are not continued mid-word). */
    const unsigned char *next_allowed;
} mtla_beam_params;

/* One finalised hypothesis: tokens exclude the start token and the final EOS. */
typedef struct mtla_beam_hypothesis {
    int32_t *tokens;
    int32_t length;
    float score;       /* length-normalised */
    float *positional; /* per-token log-probs, EOS included (length + 1 values) */
} mtla_beam_hypothesis;

typedef struct mtla_beam_result {
    mtla_beam_hypothesis *hyps; /* finalised, best first */
    int32_t count;
    int32_t steps; /* decoder steps run, the start step included */
} mtla_beam_result;

/* fairseq's max_len for an input of `frames` fbank frames. */
int32_t mtla_beam_max_len(double max_len_a, int32_t max_len_b, int64_t frames);

mtla_status mtla_beam_search(mtla_decoder_state *state, const float *prompt, int64_t prompt_frames,
                             const mtla_beam_params *params, mtla_beam_result *result,
                             mtla_error *err);
void mtla_beam_result_free(mtla_beam_result *result);

#endif
