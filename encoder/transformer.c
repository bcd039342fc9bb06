/* The fairseq S2T Transformer encoder layer, pre-LN (SPEC.md 3, docs/architecture.md 2.3):
 *   x = x + SelfAttn(self_attn_layer_norm(x))
 *   x = x + fc2(ReLU(fc1(final_layer_norm(x))))
 * Oracle: tools/reference/encoder.py encode(), transformer branch. */
#include "encoder/encoder_internal.h"

void enc_transformer_layer_forward(const mtla_ops *ops, const enc_transformer_layer *layer,
                                   int64_t t, int64_t dim, int64_t heads, int64_t ffn,
                                   enc_workspace *ws)
{
    size_t n = (size_t)(t * dim);

    ops->layer_norm(ops, ws->x, t, dim, layer->self_attn_layer_norm.weight,
                    layer->self_attn_layer_norm.bias, ENC_LN_EPS, ws->a);
    enc_self_attention(ops, &layer->self_attn, MTLA_POSITIONS_SINUSOIDAL, t, dim, heads, ws->a, ws,
                       ws->o);
    ops->axpy(ops, 1.0f, ws->o, ws->x, n);

    ops->layer_norm(ops, ws->x, t, dim, layer->final_layer_norm.weight,
                    layer->final_layer_norm.bias, ENC_LN_EPS, ws->a);
    ops->linear(ops, ws->a, t, dim, &layer->fc1.weight, layer->fc1.bias, ffn, ws->hidden);
    ops->relu(ops, ws->hidden, (size_t)(t * ffn));
    ops->linear(ops, ws->hidden, t, ffn, &layer->fc2.weight, layer->fc2.bias, dim, ws->o);
    ops->axpy(ops, 1.0f, ws->o, ws->x, n);
}
