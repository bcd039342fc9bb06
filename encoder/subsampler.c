/* The fairseq Conv1dSubsampler (SPEC.md 3, docs/architecture.md 2.1): per layer,
 * Conv1d(kernel K, stride 2, padding K / 2, bias) then GLU over channels, each layer halving
 * the frame rate. Oracle: tools/reference/encoder.py subsample(). */
#include "encoder/encoder_internal.h"

int64_t enc_subsampler_frames_after(const enc_subsampler *sub, int32_t layer, int64_t frames)
{
    for (int32_t i = 0; i <= layer && i < sub->layers; i++)
        frames = frames > 0 ? (frames - 1) / 2 + 1 : 0;
    return frames;
}

void enc_subsampler_forward(const mtla_ops *ops, const enc_subsampler *sub, const float *features,
                            int64_t t, float *conv, float *glu, float *out)
{
    const float *in = features;
    int64_t len = t;
    for (int32_t i = 0; i < sub->layers; i++) {
        int64_t k = sub->kernel[i];
        /* odd k: (len + 2 (k / 2) - k) / 2 + 1 = floor((len - 1) / 2) + 1 */
        int64_t len_out = (len - 1) / 2 + 1;
        float *dst = i + 1 == sub->layers ? out : glu;
        ops->conv1d(ops, in, len, sub->c_in[i], sub->weight[i], sub->bias[i], sub->c_out[i], k, 2,
                    k / 2, conv);
        ops->glu(ops, conv, len_out, sub->c_out[i] / 2, dst);
        in = dst;
        len = len_out;
    }
}
