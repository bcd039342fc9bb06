/* The speech encoder (SPEC.md 3, docs/architecture.md 2) and the projector that turns its
 * output into the decoder's speech prompt (SPEC.md 4, docs/architecture.md 3.1).
 *
 *   features [T, num_mel_bins] (CMVN applied)
 *     -> conv1d+GLU subsampler, x * sqrt(E)            encoder/subsampler.c
 *     -> positions                                      encoder/positions.c
 *     -> "transformer" layers + encoder.layer_norm      encoder/transformer.c
 *        or encoder.linear + "conformer" layers         encoder/conformer.c
 *     -> encoder output [S_enc, E]
 *   projector: stack k frames -> Linear -> ReLU -> Linear -> prompt [S_enc / k, D]
 *
 * tools/reference/encoder.py is the PyTorch oracle of every line here. All arithmetic on
 * activations goes through the ops table (core/ops.h), so the same code runs on any backend;
 * pointers named "backend memory" are buffers of that backend (ops->alloc).
 *
 * An encoder holds a workspace, grown on demand and kept between calls: one encoder serves one
 * thread at a time; make one per thread (they can share the weights). */
#ifndef MTLA_ENCODER_ENCODER_H
#define MTLA_ENCODER_ENCODER_H

#include <stdint.h>

#include "core/config.h"
#include "core/error.h"
#include "core/ops.h"
#include "core/weights.h"

typedef struct mtla_encoder mtla_encoder;

/* Longest input mtla_encoder_forward accepts (about 186 hours of 10 ms frames): it keeps every
 * buffer size computable; memory runs out long before. */
#define MTLA_ENCODER_MAX_FRAMES ((int64_t)1 << 26)

/* Binds every encoder and projector weight of `weights` (which must outlive the encoder) and
 * folds each conformer BatchNorm into its depthwise convolution (a derived weight added to
 * `weights`). `config` is copied. */
mtla_status mtla_encoder_create(const mtla_ops *ops, mtla_weights *weights,
                                const mtla_model_config *config, mtla_encoder **out,
                                mtla_error *err);

/* S_enc for `input_frames` fbank frames: floor((L - 1) / 2) + 1 per subsampler layer; 0 when
 * input_frames <= 0. */
int64_t mtla_encoder_output_frames(const mtla_encoder *enc, int64_t input_frames);

/* Encoder output dimension E. */
int32_t mtla_encoder_dim(const mtla_encoder *enc);

/* Prompt rows for `s_enc` encoder frames: floor(s_enc / k) (0 when fewer than k). */
int64_t mtla_encoder_prompt_frames(const mtla_encoder *enc, int64_t s_enc);

/* features: backend memory, [frames, num_mel_bins], normalised; not modified.
 * out: backend memory, [mtla_encoder_output_frames(frames), E]. */
mtla_status mtla_encoder_forward(mtla_encoder *enc, const float *features, int64_t frames,
                                 float *out, mtla_error *err);

/* The projector (decoder.projector.linear1/2): enc_out [s_enc, E] (backend memory) ->
 * prompt [floor(s_enc / k), D] (backend memory); the trailing s_enc mod k frames are dropped.
 * Fails when s_enc < k. *s_out receives the prompt length. */
mtla_status mtla_encoder_project(mtla_encoder *enc, const float *enc_out, int64_t s_enc,
                                 float *prompt, int64_t *s_out, mtla_error *err);

void mtla_encoder_free(mtla_encoder *enc);

#endif
