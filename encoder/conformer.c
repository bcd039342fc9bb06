/* The fairseq S2T Conformer encoder layer (ESPnet-style; SPEC.md 3, docs/architecture.md 2.4):
 *   x = x + 0.5 FFN1(x)              FFN = w_2(SiLU(w_1(layer_norm(x))))
 *   x = x + MHSA(self_attn_layer_norm(x))
 *   x = x + Conv(x)                  Conv = pointwise_conv2(SiLU(BN(depthwise(GLU(
 *                                             pointwise_conv1(layer_norm(x)))))))
 *   x = x + 0.5 FFN2(x)
 *   out = final_layer_norm(x)
 * All three convolutions are bias-free; the k = 1 pointwise convolutions are Linear layers on
 * the [T, channels] layout; BatchNorm is folded into the depthwise weights at load.
 * Oracle: tools/reference/encoder.py encode(), conformer branch, conformer_ffn, conformer_conv. */
#include <math.h>

#include "encoder/encoder_internal.h"

/* x += 0.5 FFN(x) */
static void half_step_ffn(const mtla_ops *ops, const enc_conformer_ffn *f, int64_t t, int64_t dim,
                          int64_t ffn, enc_workspace *ws)
{
    ops->layer_norm(ops, ws->x, t, dim, f->layer_norm.weight, f->layer_norm.bias, ENC_LN_EPS,
                    ws->a);
    ops->linear(ops, ws->a, t, dim, &f->w_1.weight, f->w_1.bias, ffn, ws->hidden);
    ops->silu(ops, ws->hidden, (size_t)(t * ffn));
    ops->linear(ops, ws->hidden, t, ffn, &f->w_2.weight, f->w_2.bias, dim, ws->o);
    ops->axpy(ops, 0.5f, ws->o, ws->x, (size_t)(t * dim));
}

/* x += Conv(x) */
static void convolution_module(const mtla_ops *ops, const enc_conformer_conv *c, int64_t t,
                               int64_t dim, int64_t kernel, enc_workspace *ws)
{
    ops->layer_norm(ops, ws->x, t, dim, c->layer_norm.weight, c->layer_norm.bias, ENC_LN_EPS,
                    ws->a);
    ops->linear(ops, ws->a, t, dim, &c->pointwise_conv1, NULL, 2 * dim, ws->hidden);
    ops->glu(ops, ws->hidden, t, dim, ws->conv_glu);
    ops->depthwise_conv1d(ops, ws->conv_glu, t, dim, c->depthwise_conv, kernel, (kernel - 1) / 2,
                          ws->conv_dw);
    ops->add_bias(ops, ws->conv_dw, c->depthwise_bias, t, dim);
    ops->silu(ops, ws->conv_dw, (size_t)(t * dim));
    ops->linear(ops, ws->conv_dw, t, dim, &c->pointwise_conv2, NULL, dim, ws->o);
    ops->axpy(ops, 1.0f, ws->o, ws->x, (size_t)(t * dim));
}

void enc_conformer_layer_forward(const mtla_ops *ops, const enc_conformer_layer *layer,
                                 mtla_positions positions, int64_t t, int64_t dim, int64_t heads,
                                 int64_t ffn, int64_t kernel, enc_workspace *ws, float *out)
{
    half_step_ffn(ops, &layer->ffn1, t, dim, ffn, ws);

    ops->layer_norm(ops, ws->x, t, dim, layer->self_attn_layer_norm.weight,
                    layer->self_attn_layer_norm.bias, ENC_LN_EPS, ws->a);
    enc_self_attention(ops, &layer->self_attn, positions, t, dim, heads, ws->a, ws, ws->o);
    ops->axpy(ops, 1.0f, ws->o, ws->x, (size_t)(t * dim));

    convolution_module(ops, &layer->conv_module, t, dim, kernel, ws);
    half_step_ffn(ops, &layer->ffn2, t, dim, ffn, ws);

    ops->layer_norm(ops, ws->x, t, dim, layer->final_layer_norm.weight,
                    layer->final_layer_norm.bias, ENC_LN_EPS, out);
}

void enc_fold_batch_norm(const float *w, const float *gamma, const float *beta, const float *mean,
                         const float *var, int64_t channels, int64_t kernel, float *w_out,
                         float *b_out)
{
    for (int64_t c = 0; c < channels; c++) {
        double s = (double)gamma[c] / sqrt((double)var[c] + ENC_BN_EPS);
        for (int64_t j = 0; j < kernel; j++)
            w_out[c * kernel + j] = (float)((double)w[c * kernel + j] * s);
        b_out[c] = (float)((double)beta[c] - (double)mean[c] * s);
    }
}
