/* Inside the encoder: the bound weights of each block, the workspace, and the blocks that
 * encoder/encoder.c chains together. Only the encoder's own sources include this header.
 *
 * Activations are row-major and time-major, [T, channels], in backend memory. Each weight
 * field names the PyTorch tensor it holds (docs/model-format.md); "{l}" is the layer index. */
#ifndef MTLA_ENCODER_INTERNAL_H
#define MTLA_ENCODER_INTERNAL_H

#include <stdint.h>

#include "core/config.h"
#include "core/ops.h"

#define ENC_LN_EPS 1e-5f /* every LayerNorm of the authors' encoders (torch default) */
#define ENC_BN_EPS 1e-5  /* BatchNorm1d (torch default) */

/* torch Linear: weight [out, in] (in the translator's dtype), bias [out] or NULL. */
typedef struct enc_linear {
    mtla_matrix weight;
    const float *bias;
} enc_linear;

typedef struct enc_norm {
    const float *weight; /* gamma [E] */
    const float *bias;   /* beta [E] */
} enc_norm;

/* ---------------------------------------------------------------- subsampler */

typedef struct enc_subsampler {
    int32_t layers;
    int32_t kernel[MTLA_SUBSAMPLER_MAX_LAYERS];
    int32_t c_in[MTLA_SUBSAMPLER_MAX_LAYERS];        /* num_mel_bins, then channels / 2 */
    int32_t c_out[MTLA_SUBSAMPLER_MAX_LAYERS];       /* channels; the last layer 2E */
    const float *weight[MTLA_SUBSAMPLER_MAX_LAYERS]; /* encoder.subsample.conv_layers.{i}.weight
                                                        [c_out, c_in, kernel] */
    const float *bias[MTLA_SUBSAMPLER_MAX_LAYERS];   /* encoder.subsample.conv_layers.{i}.bias */
} enc_subsampler;

/* Frames after layer `layer` (0-based) for `frames` input frames. */
int64_t enc_subsampler_frames_after(const enc_subsampler *sub, int32_t layer, int64_t frames);

/* features [t, c_in[0]] -> out [S, c_out[last] / 2]; conv holds the widest convolution output,
 * glu the GLU output of every layer but the last (NULL with one layer). */
void enc_subsampler_forward(const mtla_ops *ops, const enc_subsampler *sub, const float *features,
                            int64_t t, float *conv, float *glu, float *out);

/* ---------------------------------------------------------------- positions (host, float32) */

/* Rows start .. start + n - 1 of fairseq's SinusoidalPositionalEmbedding, [n, dim]. */
void enc_fairseq_sinusoid(float *table, int64_t n, int64_t dim, int64_t start);

/* ESPnet RelPositionalEncoding for relative positions t-1 down to -(t-1), [2t - 1, dim]. */
void enc_relative_positions(float *table, int64_t t, int64_t dim);

/* ---------------------------------------------------------------- workspace */

/* One allocation carved into these buffers (sizes for S encoder frames); unused ones are NULL. */
typedef struct enc_workspace {
    float *sub_conv; /* subsampler convolution output */
    float *sub_glu;  /* subsampler GLU output of the non-last layers */
    float *x;        /* residual stream [S, E] */
    float *y;        /* its alternate (encoder.linear and per-layer final norm outputs) [S, E] */
    float *a;        /* normalised block input [S, E] */
    float *o;        /* block output, before the residual add [S, E] */
    float *hidden;   /* FFN hidden [S, F]; conformer pointwise_conv1 output [S, 2E] */
    float *q, *k, *v, *ctx;    /* attention [S, E]; ctx = per-head outputs side by side */
    float *scores;             /* one head's attention matrix [S, S] */
    float *pos;                /* sinusoid [S, E] (transformer, abs), or relative PE [2S - 1, E] */
    float *pos_proj;           /* rel_pos: linear_pos(pos) [2S - 1, E] */
    float *q_u, *q_v;          /* rel_pos: q + pos_bias_u, q + pos_bias_v [S, E] */
    float *bd;                 /* rel_pos: one head's position scores [S, 2S - 1] */
    float *conv_glu, *conv_dw; /* conformer convolution module [S, E] */
} enc_workspace;

/* ---------------------------------------------------------------- self-attention */

/* fairseq MultiheadAttention: q_proj, k_proj, v_proj, out_proj. ESPnet
 * RelPositionMultiHeadedAttention: linear_q, linear_k, linear_v, linear_out, and: */
typedef struct enc_attention {
    enc_linear q, k, v, out;
    mtla_matrix pos_weight;  /* rel_pos: self_attn.linear_pos.weight [E, E], no bias */
    const float *pos_bias_u; /* rel_pos: self_attn.pos_bias_u [H, E / H] */
    const float *pos_bias_v; /* rel_pos: self_attn.pos_bias_v [H, E / H] */
} enc_attention;

/* out[t, E] = self-attention of x[t, E] (already normalised). rel_pos reads ws->pos. */
void enc_self_attention(const mtla_ops *ops, const enc_attention *w, mtla_positions positions,
                        int64_t t, int64_t dim, int64_t heads, const float *x, enc_workspace *ws,
                        float *out);

/* ---------------------------------------------------------------- transformer layer */

typedef struct enc_transformer_layer {
    enc_norm self_attn_layer_norm; /* encoder.transformer_layers.{l}.self_attn_layer_norm */
    enc_attention self_attn;       /* encoder.transformer_layers.{l}.self_attn.{q,k,v,out}_proj */
    enc_norm final_layer_norm;     /* encoder.transformer_layers.{l}.final_layer_norm (FFN's) */
    enc_linear fc1;                /* encoder.transformer_layers.{l}.fc1 [F, E] */
    enc_linear fc2;                /* encoder.transformer_layers.{l}.fc2 [E, F] */
} enc_transformer_layer;

/* Pre-LN layer, in place on ws->x [t, E] (docs/architecture.md 2.3). */
void enc_transformer_layer_forward(const mtla_ops *ops, const enc_transformer_layer *layer,
                                   int64_t t, int64_t dim, int64_t heads, int64_t ffn,
                                   enc_workspace *ws);

/* ---------------------------------------------------------------- whisper */

/* Whisper's ResidualAttentionBlock (encoder, no cross-attention), under the names
 * tools/convert_ctranslate2_whisper.py writes (Hugging Face WhisperEncoderLayer's). */
typedef struct enc_whisper_layer {
    enc_norm self_attn_layer_norm; /* encoder.layers.{l}.self_attn_layer_norm (attn_ln) */
    enc_attention self_attn;       /* encoder.layers.{l}.self_attn.{q,k,v,out}_proj; k_proj has
                                      no bias (k.bias NULL) */
    enc_norm final_layer_norm;     /* encoder.layers.{l}.final_layer_norm (mlp_ln) */
    enc_linear fc1;                /* encoder.layers.{l}.fc1 [F, E] (mlp.0) */
    enc_linear fc2;                /* encoder.layers.{l}.fc2 [E, F] (mlp.2) */
} enc_whisper_layer;

/* Whisper's AudioEncoder. */
typedef struct enc_whisper {
    int32_t num_mel_bins;
    int32_t max_positions;        /* P */
    const float *conv1_weight;    /* encoder.conv1.weight [E, num_mel_bins, 3] */
    const float *conv1_bias;      /* encoder.conv1.bias [E] */
    const float *conv2_weight;    /* encoder.conv2.weight [E, E, 3] */
    const float *conv2_bias;      /* encoder.conv2.bias [E] */
    const float *embed_positions; /* encoder.embed_positions.weight [P, E] */
    enc_whisper_layer *layers;    /* encoder.layers.{l} */
    enc_norm layer_norm;          /* encoder.layer_norm (ln_post) */
} enc_whisper;

/* S = floor((T - 1) / 2) + 1: conv2's stride 2 with padding 1 and kernel 3. */
int64_t enc_whisper_frames(int64_t frames);

/* log-mel [t, num_mel_bins] -> out [S, E] (docs/architecture.md "Whisper encoder"); ws->sub_conv
 * holds conv1's output [t, E]; the caller has checked S <= P. */
void enc_whisper_forward(const mtla_ops *ops, const enc_whisper *w, const mtla_encoder_config *c,
                         const float *features, int64_t t, enc_workspace *ws, float *out);

/* ---------------------------------------------------------------- conformer layer */

typedef struct enc_conformer_ffn {
    enc_norm layer_norm; /* ffn{1,2}.layer_norm */
    enc_linear w_1;      /* ffn{1,2}.w_1 [F, E] */
    enc_linear w_2;      /* ffn{1,2}.w_2 [E, F] */
} enc_conformer_ffn;

typedef struct enc_conformer_conv {
    enc_norm layer_norm;          /* conv_module.layer_norm */
    mtla_matrix pointwise_conv1;  /* conv_module.pointwise_conv1.weight [2E, E, 1], no bias */
    /* conv_module.depthwise_conv.weight [E, 1, K] times BatchNorm's gamma / sqrt(var + eps),
     * and BatchNorm's beta - mean * gamma / sqrt(var + eps) (conv_module.batch_norm.*): the
     * inference BatchNorm folded at load (derived weights). */
    const float *depthwise_conv;
    const float *depthwise_bias;
    mtla_matrix pointwise_conv2;  /* conv_module.pointwise_conv2.weight [E, E, 1], no bias */
} enc_conformer_conv;

typedef struct enc_conformer_layer {
    enc_conformer_ffn ffn1;         /* encoder.conformer_layers.{l}.ffn1 */
    enc_norm self_attn_layer_norm;  /* encoder.conformer_layers.{l}.self_attn_layer_norm */
    enc_attention self_attn;        /* encoder.conformer_layers.{l}.self_attn */
    enc_conformer_conv conv_module; /* encoder.conformer_layers.{l}.conv_module */
    enc_conformer_ffn ffn2;         /* encoder.conformer_layers.{l}.ffn2 */
    enc_norm final_layer_norm;      /* encoder.conformer_layers.{l}.final_layer_norm */
} enc_conformer_layer;

/* One layer (docs/architecture.md 2.4): updates ws->x [t, E] in place through the four
 * residual blocks, then writes final_layer_norm(x) to out (which is not ws->x). */
void enc_conformer_layer_forward(const mtla_ops *ops, const enc_conformer_layer *layer,
                                 mtla_positions positions, int64_t t, int64_t dim, int64_t heads,
                                 int64_t ffn, int64_t kernel, enc_workspace *ws, float *out);

/* BatchNorm folding on the host: w_out[c, j] = w[c, j] * s_c and b_out[c] = beta_c - mean_c s_c
 * with s_c = gamma_c / sqrt(var_c + eps), for `channels` channels of `kernel` taps. */
void enc_fold_batch_norm(const float *w, const float *gamma, const float *beta, const float *mean,
                         const float *var, int64_t channels, int64_t kernel, float *w_out,
                         float *b_out);

#endif
