/* The translation entry points of include/mtla-st.h: the pipeline put together.
 * features -> CMVN -> encoder -> projector -> beam search over the decoder -> detokenise. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/translator_internal.h"
#include "core/cuda_backend.h"
#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "decoder/beam.h"
#include "decoder/decoder.h"
#include "encoder/encoder.h"
#include "mtla-st.h"
#include "tokenizer/tokenizer.h"

struct mtla_translator {
    const mtla_model *model;
    const mtla_model_config *config;
    mtla_ops *ops;
    const mtla_cuda_backend *cuda; /* the plugin that made ops; NULL for the CPU */
    mtla_weights *weights;
    mtla_encoder *encoder;
    mtla_decoder *decoder;
    mtla_decoder_state *state;
    mtla_tokenizer *tokenizer;
    mtla_whisper_mel *whisper_mel; /* frontend "whisper": its FFT plan, made once */
    float *host_features;          /* Whisper log-mel of the current input, grown on demand */
    size_t host_features_cap;
    /* backend buffers, grown on demand */
    float *features, *encoded, *prompt;
    int64_t features_cap, encoded_cap, prompt_cap;
};

mtla_translator_params mtla_translator_default_params(void)
{
    mtla_translator_params p = {.threads = 0, .device = -1, .dtype = MTLA_COMPUTE_FP32};
    return p;
}

mtla_fbank_params mtla_model_fbank_params(const mtla_model *model)
{
    return model->dir->config.frontend.fbank;
}

const char *mtla_model_frontend_type(const mtla_model *model)
{
    return mtla_frontend_type_name(model->dir->config.frontend.type);
}

int64_t mtla_model_max_input_ms(const mtla_model *model)
{
    const mtla_model_config *c = &model->dir->config;
    /* frames are hop_length samples apart: 10 ms at 16 kHz */
    return mtla_model_config_max_frames(c) * 1000 * c->frontend.hop_length /
           c->frontend.fbank.sample_rate;
}

mtla_status mtla_model_features(const mtla_model *model, const float *samples, size_t count,
                                float **frames, size_t *num_frames, mtla_error *err)
{
    if (!model || (!samples && count) || !frames || !num_frames)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_model_features: NULL argument");
    *frames = NULL;
    *num_frames = 0;
    const mtla_frontend_config *f = &model->dir->config.frontend;
    if (f->type == MTLA_FRONTEND_KALDI_FBANK)
        return mtla_fbank_compute(&f->fbank, samples, count, frames, num_frames, err);
    mtla_whisper_mel *mel;
    mtla_status st = mtla_whisper_mel_create(f->fbank.num_mel_bins, &mel, err);
    if (st != MTLA_OK)
        return st;
    size_t n = mtla_whisper_mel_frames(count);
    *frames = malloc((n ? n : 1) * (size_t)f->fbank.num_mel_bins * sizeof(float));
    if (*frames) {
        mtla_whisper_mel_compute(mel, samples, count, *frames);
        *num_frames = n;
    }
    mtla_whisper_mel_free(mel);
    return *frames ? MTLA_OK
                   : mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for %zu frames", n);
}

mtla_decode_params mtla_decode_default_params(const mtla_model *model)
{
    const mtla_generation_config *g = &model->dir->config.generation;
    mtla_decode_params p = {
        .beam = g->beam,
        .lenpen = (float)g->lenpen,
        .max_len_a = g->max_len_a,
        .max_len_b = g->max_len_b,
        .min_len = g->min_len,
    };
    return p;
}

/* The CPU backend, or CUDA device params->device from the plugin, loaded only now so that a
 * CPU translator never maps the CUDA libraries (core/cuda_backend.h). */
static mtla_status create_backend(mtla_translator *t, const mtla_translator_params *params,
                                  mtla_error *err)
{
    if (params->device < 0) {
        t->ops = params->dtype == MTLA_COMPUTE_FP32 ? mtla_ops_cpu_create(params->threads)
                                                    : mtla_ops_cpu_create_reduced(params->threads);
        return t->ops ? MTLA_OK
                      : mtla_fail(err, MTLA_ERR_NO_MEMORY,
                                  params->dtype == MTLA_COMPUTE_FP32
                                      ? "out of memory for the backend"
                                      : "out of memory for the backend, or no oneDNN CPU engine");
    }
    if (params->dtype != MTLA_COMPUTE_FP32)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "dtype %s is for the CPU; CUDA device %d computes in fp32",
                         mtla_compute_dtype_name(params->dtype), (int)params->device);
    char message[1024];
    const mtla_cuda_backend *cuda = mtla_cuda_backend_load(message, sizeof message);
    if (cuda)
        t->ops = cuda->create(params->device, message, sizeof message);
    if (!t->ops)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED, "CUDA device %d: %s", (int)params->device,
                         message);
    t->cuda = cuda;
    return MTLA_OK;
}

/* Ops cannot fail; a device backend records errors, checked once per translation. */
static mtla_status check_backend(const mtla_translator *t, mtla_error *err)
{
    char message[256];
    if (t->cuda && t->cuda->check(t->ops, message, sizeof message) != 0)
        return mtla_fail(err, MTLA_ERR_INTERNAL, "CUDA: %s", message);
    return MTLA_OK;
}

mtla_status mtla_translator_create(const mtla_model *model, const mtla_translator_params *params,
                                   mtla_translator **out, mtla_error *err)
{
    if (!out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_translator_create: no output");
    *out = NULL;
    if (!model)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_translator_create: no model");
    mtla_translator_params defaults = mtla_translator_default_params();
    if (!params)
        params = &defaults;
    if (params->threads < 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "threads must be >= 0 (got %d)",
                         (int)params->threads);
    if (!mtla_compute_dtype_name(params->dtype)[0])
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "dtype must be MTLA_COMPUTE_FP32, _BF16 or _INT8 (got %d)",
                         (int)params->dtype);
    mtla_translator *t = calloc(1, sizeof *t);
    if (!t)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a translator");
    t->model = model;
    t->config = &model->dir->config;
    mtla_status st = create_backend(t, params, err);
    if (st == MTLA_OK && t->config->frontend.type == MTLA_FRONTEND_WHISPER)
        st = mtla_whisper_mel_create(t->config->frontend.fbank.num_mel_bins, &t->whisper_mel, err);
    if (st == MTLA_OK)
        st = mtla_weights_create_dtype(t->ops, model->dir, params->dtype, &t->weights, err);
    if (st == MTLA_OK)
        st = mtla_encoder_create(t->ops, t->weights, t->config, &t->encoder, err);
    if (st == MTLA_OK)
        st = mtla_decoder_create(t->ops, t->weights, t->config, &t->decoder, err);
    if (st == MTLA_OK)
        st = mtla_decoder_state_create(t->decoder, &t->state, err);
    if (st == MTLA_OK) {
        char vocab[4096];
        int n = snprintf(vocab, sizeof vocab, "%s/vocab.txt", model->dir->path);
        const mtla_vocab_config *v = &t->config->vocab;
        mtla_special_ids specials = {v->bos, v->pad, v->eos, v->unk};
        st = n < 0 || (size_t)n >= sizeof vocab
                 ? mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "model path too long")
                 : mtla_tokenizer_open(model->dir->tokenizer_path, vocab, &specials, &t->tokenizer,
                                       err);
    }
    if (st != MTLA_OK) {
        mtla_translator_free(t);
        return st;
    }
    *out = t;
    return MTLA_OK;
}

void mtla_translator_free(mtla_translator *t)
{
    if (!t)
        return;
    if (t->ops) {
        if (t->features)
            t->ops->free(t->ops, t->features);
        if (t->encoded)
            t->ops->free(t->ops, t->encoded);
        if (t->prompt)
            t->ops->free(t->ops, t->prompt);
    }
    mtla_tokenizer_free(t->tokenizer);
    mtla_whisper_mel_free(t->whisper_mel);
    free(t->host_features);
    mtla_decoder_state_free(t->state);
    mtla_decoder_free(t->decoder);
    mtla_encoder_free(t->encoder);
    mtla_weights_free(t->weights);
    if (t->cuda)
        t->cuda->free(t->ops);
    else if (t->ops)
        mtla_ops_cpu_free(t->ops);
    free(t);
}

void mtla_translation_free(mtla_translation *tr)
{
    if (!tr)
        return;
    free(tr->text);
    free(tr->tokens);
    memset(tr, 0, sizeof *tr);
}

static mtla_status reserve(mtla_translator *t, float **buf, int64_t *cap, int64_t count,
                           mtla_error *err)
{
    if (count <= *cap)
        return MTLA_OK;
    if (*buf)
        t->ops->free(t->ops, *buf);
    *buf = t->ops->alloc(t->ops, (size_t)count);
    *cap = *buf ? count : 0;
    if (!*buf)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of %s memory for %" PRId64 " values",
                         t->ops->name, count);
    return MTLA_OK;
}

static mtla_status check_params(const mtla_decode_params *p, mtla_error *err)
{
    if (p->beam < 1 || p->beam > 4096)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "beam must be 1..4096 (got %d)",
                         (int)p->beam);
    if (!isfinite(p->lenpen))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "lenpen must be finite");
    if (!(p->max_len_a >= 0.0) || !isfinite(p->max_len_a) || p->max_len_b < 1)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "max_len_a must be >= 0 and max_len_b >= 1 (got %g, %d)", p->max_len_a,
                         (int)p->max_len_b);
    if (p->min_len < 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "min_len must be >= 0");
    return MTLA_OK;
}

const mtla_tokenizer *mtla_translator_tokenizer(const mtla_translator *t)
{
    return t->tokenizer;
}

const mtla_model *mtla_translator_model(const mtla_translator *t)
{
    return t->model;
}

/* mtla_translate_features with a forced prefix and per-token log-probs (translator_internal.h);
 * `out` and `logprobs` are cleared by the caller. */
static mtla_status translate_features(mtla_translator *t, const float *features, int64_t frames,
                                      const mtla_decode_params *params, const int32_t *prefix,
                                      int32_t prefix_length, const unsigned char *next_allowed,
                                      mtla_translation *out, float **logprobs, mtla_error *err)
{
    mtla_decode_params defaults = mtla_decode_default_params(t->model);
    if (!params)
        params = &defaults;
    mtla_status st = check_params(params, err);
    if (st != MTLA_OK)
        return st;
    if (frames < 1)
        return mtla_fail(err, MTLA_ERR_EMPTY, "no audio frames to translate");
    const mtla_model_config *c = t->config;
    int64_t max_frames = mtla_model_config_max_frames(c);
    if (max_frames > 0 && frames > max_frames)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                         "an input of %" PRId64 " frames (%.2f s) is longer than this model's "
                         "%s encoder accepts (%" PRId64 " frames, %.2f s)",
                         frames, (double)frames * c->frontend.fbank.frame_shift_ms / 1000.0,
                         mtla_encoder_type_name(c->encoder.type), max_frames,
                         (double)max_frames * c->frontend.fbank.frame_shift_ms / 1000.0);
    int32_t bins = c->frontend.fbank.num_mel_bins;

    /* CMVN on a host copy (SPEC.md 2), then to the backend. */
    size_t n = (size_t)frames * (size_t)bins;
    float *x = malloc(n * sizeof *x);
    if (!x)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for %" PRId64 " frames", frames);
    memcpy(x, features, n * sizeof *x);
    if (c->frontend.cmvn == MTLA_CMVN_UTTERANCE) {
        mtla_cmvn_utterance(x, (size_t)frames, bins);
    } else if (c->frontend.cmvn == MTLA_CMVN_GLOBAL) {
        const mtla_tensor *mean = mtla_model_dir_tensor(t->model->dir, "frontend.cmvn.mean");
        const mtla_tensor *std = mtla_model_dir_tensor(t->model->dir, "frontend.cmvn.std");
        st = mtla_cmvn_global(x, (size_t)frames, bins, mean->data, std->data, err);
    }
    if (st == MTLA_OK)
        st = reserve(t, &t->features, &t->features_cap, (int64_t)n, err);
    if (st == MTLA_OK)
        t->ops->upload(t->ops, t->features, x, n);
    free(x);

    int64_t s_enc = mtla_encoder_output_frames(t->encoder, frames);
    int64_t s_prompt = 0;
    if (st == MTLA_OK)
        st = reserve(t, &t->encoded, &t->encoded_cap, s_enc * c->encoder.d_model, err);
    if (st == MTLA_OK)
        st = reserve(t, &t->prompt, &t->prompt_cap, s_enc * c->decoder.d_model, err);
    if (st == MTLA_OK)
        st = mtla_encoder_forward(t->encoder, t->features, frames, t->encoded, err);
    if (st == MTLA_OK)
        st = mtla_encoder_project(t->encoder, t->encoded, s_enc, t->prompt, &s_prompt, err);
    if (st != MTLA_OK)
        return st;

    mtla_beam_params bp = {
        .beam = params->beam,
        .max_len = mtla_beam_max_len(params->max_len_a, params->max_len_b, frames),
        .min_len = params->min_len,
        .lenpen = params->lenpen,
        .prefix = prefix,
        .prefix_length = prefix_length,
        .next_allowed = next_allowed,
    };
    if (prefix_length >= bp.max_len) {
        /* A prefix committed earlier may outgrow the budget of this input: room for EOS. */
        if (prefix_length >= 1023)
            return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT,
                             "a forced prefix of %d tokens leaves no room in 1023",
                             (int)prefix_length);
        bp.max_len = prefix_length + 1;
    }
    if (bp.min_len > bp.max_len)
        bp.min_len = bp.max_len;
    mtla_beam_result res;
    st = mtla_beam_search(t->state, t->prompt, s_prompt, &bp, &res, err);
    if (st == MTLA_OK && (st = check_backend(t, err)) != MTLA_OK)
        mtla_beam_result_free(&res);
    if (st != MTLA_OK)
        return st;
    if (res.count == 0) {
        mtla_beam_result_free(&res);
        return mtla_fail(err, MTLA_ERR_INTERNAL, "beam search finished without a hypothesis");
    }
    const mtla_beam_hypothesis *best = &res.hyps[0];
    out->frames = frames;
    out->score = best->score;
    out->token_count = best->length;
    out->tokens = malloc((size_t)(best->length > 0 ? best->length : 1) * sizeof *out->tokens);
    if (!out->tokens) {
        mtla_beam_result_free(&res);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a translation");
    }
    memcpy(out->tokens, best->tokens, (size_t)best->length * sizeof *out->tokens);
    if (logprobs) {
        *logprobs = malloc((size_t)(best->length + 1) * sizeof **logprobs);
        if (!*logprobs) {
            mtla_beam_result_free(&res);
            mtla_translation_free(out);
            return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for a translation");
        }
        memcpy(*logprobs, best->positional, (size_t)(best->length + 1) * sizeof **logprobs);
    }
    mtla_beam_result_free(&res);
    st =
        mtla_tokenizer_decode(t->tokenizer, out->tokens, (size_t)out->token_count, &out->text, err);
    if (st != MTLA_OK) {
        mtla_translation_free(out);
        if (logprobs) {
            free(*logprobs);
            *logprobs = NULL;
        }
    }
    return st;
}

mtla_status mtla_translate_features(mtla_translator *t, const float *features, int64_t frames,
                                    const mtla_decode_params *params, mtla_translation *out,
                                    mtla_error *err)
{
    if (!t || !features || !out)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_translate_features: NULL argument");
    memset(out, 0, sizeof *out);
    return translate_features(t, features, frames, params, NULL, 0, NULL, out, NULL, err);
}

mtla_status mtla_translate_samples(mtla_translator *t, const float *samples, size_t count,
                                   const mtla_decode_params *params, mtla_translation *out,
                                   mtla_error *err)
{
    return mtla_translator_run(t, samples, count, params, NULL, 0, NULL, out, NULL, err);
}

mtla_status mtla_translator_run(mtla_translator *t, const float *samples, size_t count,
                                const mtla_decode_params *params, const int32_t *prefix,
                                int32_t prefix_length, const unsigned char *next_allowed,
                                mtla_translation *out, float **logprobs, mtla_error *err)
{
    if (!t || (!samples && count) || !out || (!prefix && prefix_length))
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "mtla_translate_samples: NULL argument");
    memset(out, 0, sizeof *out);
    if (logprobs)
        *logprobs = NULL;
    if (t->whisper_mel) {
        /* The clamp is over these samples: one utterance (docs/frontend.md). */
        size_t n = mtla_whisper_mel_frames(count);
        if (n == 0)
            return mtla_fail(err, MTLA_ERR_EMPTY,
                             "audio of %zu samples is shorter than one 10 ms Whisper frame", count);
        size_t need = n * (size_t)t->config->frontend.fbank.num_mel_bins;
        if (need > t->host_features_cap) {
            free(t->host_features);
            t->host_features_cap = 0;
            t->host_features = malloc(need * sizeof(float));
            if (!t->host_features)
                return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory for %zu frames", n);
            t->host_features_cap = need;
        }
        mtla_whisper_mel_compute(t->whisper_mel, samples, count, t->host_features);
        return translate_features(t, t->host_features, (int64_t)n, params, prefix, prefix_length,
                                  next_allowed, out, logprobs, err);
    }
    float *frames = NULL;
    size_t n = 0;
    mtla_status st =
        mtla_fbank_compute(&t->config->frontend.fbank, samples, count, &frames, &n, err);
    if (st != MTLA_OK)
        return st;
    if (n == 0) {
        free(frames);
        return mtla_fail(err, MTLA_ERR_EMPTY,
                         "audio of %zu samples is shorter than one 25 ms frame", count);
    }
    st = translate_features(t, frames, (int64_t)n, params, prefix, prefix_length, next_allowed, out,
                            logprobs, err);
    free(frames);
    return st;
}
