/* config.json of a model directory (docs/model-format.md, format_version 1) as plain structs.
 *
 * mtla_model_config_parse reads the JSON: required keys, JSON types, unknown keys (rejected),
 * keys that do not apply to the chosen type (rejected), then calls
 * mtla_model_config_validate, which checks every value and every rule between values on the
 * struct, so a config built in code is held to the same rules. Every message names the field
 * by its JSON path: "config.json: decoder.attention.down_rate must be an integer >= 1 (got 0)".
 */
#ifndef MTLA_CORE_CONFIG_H
#define MTLA_CORE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"
#include "mtla-st.h"

#define MTLA_FORMAT_NAME "mtla-st"
#define MTLA_FORMAT_VERSION 1

/* Bounds of this reader beyond docs/model-format.md's rules (the format itself sets none): they
 * keep every tensor size computable in 64 bits and reject absurd configs before any allocation. */
#define MTLA_CONFIG_MAX_LAYERS 1024
#define MTLA_CONFIG_MAX_DIM 65536      /* d_model, ffn_dim, heads, hyper_rank, kernels */
#define MTLA_CONFIG_MAX_VOCAB 16777216 /* 2^24 */
/* Attention head sizes (head_dim, qk_nope_head_dim, qk_rope_head_dim, v_head_dim) and the MLA
 * latent rank kv_lora_rank: the attention kernels keep a per-head accumulator of this many
 * values (core/ops.h; with MLA/MTLA the values attended over are the r-dim latents). */
#define MTLA_CONFIG_MAX_HEAD_DIM MTLA_OPS_MAX_HEAD_DIM
#define MTLA_SUBSAMPLER_MAX_LAYERS 4
#define MTLA_LANGUAGE_MAX 64 /* bytes of a language name, NUL included */

typedef enum mtla_cmvn_type {
    MTLA_CMVN_UTTERANCE = 0, /* "utterance": per-utterance mean and variance (SPEC.md 2) */
    MTLA_CMVN_GLOBAL,        /* "global": frontend.cmvn.mean / .std stored with the model */
    MTLA_CMVN_NONE           /* "none" */
} mtla_cmvn_type;

typedef enum mtla_frontend_type {
    MTLA_FRONTEND_KALDI_FBANK = 0, /* "kaldi_fbank" (the default when frontend.type is absent) */
    MTLA_FRONTEND_WHISPER          /* "whisper": Whisper's log-mel (frontend/whisper_mel.c) */
} mtla_frontend_type;

/* Largest encoder.max_positions (whisper): keeps the position table's size computable. */
#define MTLA_CONFIG_MAX_POSITIONS (1 << 20)

typedef struct mtla_frontend_config {
    mtla_frontend_type type;
    /* kaldi_fbank: sample_rate, num_mel_bins, frame_length_ms, frame_shift_ms, preemphasis,
     * remove_dc_offset, low_freq, high_freq, input_scale. dither 0, window "povey" and
     * snip_edges true are the only values accepted, so they are not stored.
     * whisper: sample_rate and num_mel_bins; frame_length_ms and frame_shift_ms are n_fft and
     * hop_length in milliseconds (25, 10: frame timing for callers), the rest 0. */
    mtla_fbank_params fbank;
    int32_t n_fft;      /* whisper: 400; kaldi_fbank: 0 */
    int32_t hop_length; /* whisper: 160; kaldi_fbank: 0 */
    mtla_cmvn_type cmvn;
} mtla_frontend_config;

typedef enum mtla_encoder_type {
    MTLA_ENCODER_TRANSFORMER = 0, /* "transformer" (fairseq S2TTransformerEncoder) */
    MTLA_ENCODER_CONFORMER,       /* "conformer" (fairseq S2TConformerEncoder) */
    MTLA_ENCODER_WHISPER          /* "whisper" (Whisper's AudioEncoder, encoder/whisper.c) */
} mtla_encoder_type;

typedef enum mtla_positions {
    MTLA_POSITIONS_SINUSOIDAL = 0, /* "sinusoidal": transformer */
    MTLA_POSITIONS_ABS,            /* "abs": conformer, fairseq MultiheadAttention */
    MTLA_POSITIONS_REL_POS         /* "rel_pos": conformer, RelPositionMultiHeadedAttention */
} mtla_positions;

typedef struct mtla_subsampler_config {
    int32_t channels;   /* C: even; each GLU halves it */
    int32_t num_layers; /* entries of kernel_sizes, 1..MTLA_SUBSAMPLER_MAX_LAYERS */
    int32_t kernel_sizes[MTLA_SUBSAMPLER_MAX_LAYERS]; /* odd */
} mtla_subsampler_config;

typedef struct mtla_encoder_config {
    mtla_encoder_type type;
    int32_t layers;
    int32_t d_model; /* E */
    int32_t heads;
    int32_t ffn_dim; /* F */
    mtla_subsampler_config subsampler;
    mtla_positions positions;
    int32_t conv_kernel; /* conformer: odd; transformer: 0 (ignored, whatever the file says) */
    /* whisper only (otherwise 0): rows P of encoder.embed_positions, the longest encoder
     * output it accepts (1500 = 30 s for Whisper's models). subsampler and positions are
     * unused (zero) for whisper: its two convolutions are fixed by the architecture. */
    int32_t max_positions;
} mtla_encoder_config;

typedef enum mtla_attention_type {
    MTLA_ATTENTION_MHA = 0, /* "mha": rotary multi-head attention */
    MTLA_ATTENTION_GQA,     /* "gqa": grouped K/V heads (1 = MQA) */
    MTLA_ATTENTION_MLA,     /* "mla": latent KV cache, one slot per token */
    MTLA_ATTENTION_MTLA     /* "mtla": latent KV cache merged over time by a hyper-network */
} mtla_attention_type;

typedef struct mtla_attention_config {
    mtla_attention_type type;
    int32_t heads;            /* H */
    int32_t kv_heads;         /* mha, gqa: H_kv; mla, mtla: H */
    int32_t head_dim;         /* mha, gqa: d_h (even); otherwise 0 */
    int32_t kv_lora_rank;     /* mla, mtla: r; otherwise 0 */
    int32_t qk_nope_head_dim; /* mla, mtla: d_n */
    int32_t qk_rope_head_dim; /* mla, mtla: d_r (even) */
    int32_t v_head_dim;       /* mla, mtla: d_v */
    int32_t down_rate;        /* mtla: s; otherwise 0 */
    int32_t hyper_rank;       /* mtla: h_r; otherwise 0 */
    double rope_theta;
} mtla_attention_config;

typedef struct mtla_decoder_config {
    int32_t layers;
    int32_t d_model;         /* D: even, the projector's hidden size is D/2 */
    int32_t ffn_dim;         /* G */
    int32_t projector_stack; /* k: encoder frames stacked before the projector */
    mtla_attention_config attention;
} mtla_decoder_config;

typedef struct mtla_vocab_config {
    int32_t size; /* V */
    int32_t bos;
    int32_t pad;
    int32_t eos;
    int32_t unk;
} mtla_vocab_config;

typedef struct mtla_generation_config {
    int32_t beam;
    double lenpen;
    double max_len_a; /* max_len = max_len_a * source frames + max_len_b */
    int32_t max_len_b;
    int32_t min_len; /* 1 when absent */
} mtla_generation_config;

typedef struct mtla_languages_config {
    char source[MTLA_LANGUAGE_MAX];
    char target[MTLA_LANGUAGE_MAX];
} mtla_languages_config;

typedef struct mtla_model_config {
    int32_t format_version;
    mtla_frontend_config frontend;
    mtla_encoder_config encoder;
    mtla_decoder_config decoder;
    mtla_vocab_config vocab;
    mtla_generation_config generation;
    mtla_languages_config languages;
} mtla_model_config;

/* Parses and validates config.json text (`size` bytes, need not be NUL-terminated). On
 * failure *config is left zeroed. */
mtla_status mtla_model_config_parse(const char *text, size_t size, mtla_model_config *config,
                                    mtla_error *err);

/* Checks every field and every rule between fields of docs/model-format.md. */
mtla_status mtla_model_config_validate(const mtla_model_config *config, mtla_error *err);

/* The names config.json uses, e.g. "mtla" for MTLA_ATTENTION_MTLA. */
const char *mtla_cmvn_type_name(mtla_cmvn_type type);
const char *mtla_frontend_type_name(mtla_frontend_type type);
const char *mtla_encoder_type_name(mtla_encoder_type type);
const char *mtla_positions_name(mtla_positions positions);
const char *mtla_attention_type_name(mtla_attention_type type);

/* The longest input the model's encoder accepts, in feature frames (whisper: 2 P, since
 * S = floor((T - 1) / 2) + 1 <= P); 0 when it has no limit of its own. */
int64_t mtla_model_config_max_frames(const mtla_model_config *config);

#endif
