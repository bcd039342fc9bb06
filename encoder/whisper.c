/* Whisper's audio encoder (openai-whisper model.py AudioEncoder; docs/architecture.md
 * "Whisper encoder"), unpadded: the input is not padded to 30 s, the positions are the stored
 * table's first S rows.
 *   x = GELU(conv1(mel))                  Conv1d(n_mels, E, 3, padding 1)
 *   x = GELU(conv2(x))                    Conv1d(E, E, 3, stride 2, padding 1)
 *   x = x + embed_positions[0 .. S-1]
 *   per layer (pre-LN):
 *     x = x + out_proj(MHA(self_attn_layer_norm(x)))   k_proj without bias, scale d_h^-1/2
 *     x = x + fc2(GELU(fc1(final_layer_norm(x))))
 *   out = layer_norm(x)
 * GELU is the exact erf form; every LayerNorm has eps 1e-5. Whisper scales q and k by
 * d_h^-1/4 each; enc_self_attention scales q by d_h^-1/2, the same product.
 * Oracles: training/whisper.py WhisperEncoder (PyTorch) and CTranslate2's Whisper.encode
 * (tests/golden/whisper, tools/golden/make_whisper_golden.py). */
#include "encoder/encoder_internal.h"

int64_t enc_whisper_frames(int64_t frames)
{
    return frames > 0 ? (frames - 1) / 2 + 1 : 0;
}

static void whisper_layer_forward(const mtla_ops *ops, const enc_whisper_layer *layer, int64_t s,
                                  int64_t dim, int64_t heads, int64_t ffn, enc_workspace *ws)
{
    size_t n = (size_t)(s * dim);

    ops->layer_norm(ops, ws->x, s, dim, layer->self_attn_layer_norm.weight,
                    layer->self_attn_layer_norm.bias, ENC_LN_EPS, ws->a);
    enc_self_attention(ops, &layer->self_attn, MTLA_POSITIONS_SINUSOIDAL, s, dim, heads, ws->a, ws,
                       ws->o);
    ops->axpy(ops, 1.0f, ws->o, ws->x, n);

    ops->layer_norm(ops, ws->x, s, dim, layer->final_layer_norm.weight,
                    layer->final_layer_norm.bias, ENC_LN_EPS, ws->a);
    ops->linear(ops, ws->a, s, dim, &layer->fc1.weight, layer->fc1.bias, ffn, ws->hidden);
    ops->gelu(ops, ws->hidden, (size_t)(s * ffn));
    ops->linear(ops, ws->hidden, s, ffn, &layer->fc2.weight, layer->fc2.bias, dim, ws->o);
    ops->axpy(ops, 1.0f, ws->o, ws->x, n);
}

void enc_whisper_forward(const mtla_ops *ops, const enc_whisper *w, const mtla_encoder_config *c,
                         const float *features, int64_t t, enc_workspace *ws, float *out)
{
    int64_t dim = c->d_model, s = enc_whisper_frames(t);

    ops->conv1d(ops, features, t, w->num_mel_bins, w->conv1_weight, w->conv1_bias, dim, 3, 1, 1,
                ws->sub_conv);
    ops->gelu(ops, ws->sub_conv, (size_t)(t * dim));
    ops->conv1d(ops, ws->sub_conv, t, dim, w->conv2_weight, w->conv2_bias, dim, 3, 2, 1, ws->x);
    ops->gelu(ops, ws->x, (size_t)(s * dim));
    /* rows 0 .. S-1 of [P, E] are contiguous */
    ops->axpy(ops, 1.0f, w->embed_positions, ws->x, (size_t)(s * dim));

    for (int32_t l = 0; l < c->layers; l++)
        whisper_layer_forward(ops, &w->layers[l], s, dim, c->heads, c->ffn_dim, ws);
    ops->layer_norm(ops, ws->x, s, dim, w->layer_norm.weight, w->layer_norm.bias, ENC_LN_EPS, out);
}
