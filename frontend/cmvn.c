/* Cepstral mean and variance normalisation (SPEC.md section 2). Statistics are accumulated
 * in double so long utterances lose no precision. */
#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "mtla-st.h"

void mtla_cmvn_utterance(float *frames, size_t num_frames, int32_t dim)
{
    if (!frames || num_frames == 0 || dim <= 0)
        return;
    for (int32_t d = 0; d < dim; d++) {
        double sum = 0.0, sum_sq = 0.0;
        for (size_t t = 0; t < num_frames; t++) {
            double x = frames[t * (size_t)dim + (size_t)d];
            sum += x;
            sum_sq += x * x;
        }
        double mean = sum / (double)num_frames;
        double var = sum_sq / (double)num_frames - mean * mean;
        double inv_std = 1.0 / sqrt(fmax(var, 1e-10));
        for (size_t t = 0; t < num_frames; t++) {
            float *x = &frames[t * (size_t)dim + (size_t)d];
            *x = (float)((*x - mean) * inv_std);
        }
    }
}

mtla_status mtla_cmvn_global(float *frames, size_t num_frames, int32_t dim, const float *mean,
                             const float *std, mtla_error *err)
{
    if (!mean || !std || dim <= 0)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "global CMVN needs mean and std");
    for (int32_t d = 0; d < dim; d++)
        if (!(std[d] > 0.0f) || !isfinite(std[d]) || !isfinite(mean[d]))
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "global CMVN statistics are invalid at dimension %d (std %g)", (int)d,
                             std[d]);
    for (size_t t = 0; t < num_frames; t++)
        for (int32_t d = 0; d < dim; d++) {
            float *x = &frames[t * (size_t)dim + (size_t)d];
            *x = (*x - mean[d]) / std[d];
        }
    return MTLA_OK;
}
