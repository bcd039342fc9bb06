/* Position tables, computed on the host in float32 with the same operations, in the same
 * order, as the PyTorch oracle (tools/reference/nn.py fairseq_sinusoid, encoder.py
 * rel_positional_encoding), so that angles of a few hundred radians agree to the last bit
 * before sin/cos. A torch op between a float32 tensor and a Python float rounds the Python
 * float to float32 first; the casts below do the same. */
#include <math.h>

#include "encoder/encoder_internal.h"

/* fairseq SinusoidalPositionalEmbedding (SPEC.md 3, docs/architecture.md 2.2): with
 * half = dim / 2 and f_k = exp(k * -(ln 10000 / (half - 1))), row p = [sin(p f) | cos(p f)]
 * (halves, not interleaved), plus a zero column when dim is odd. */
void enc_fairseq_sinusoid(float *table, int64_t n, int64_t dim, int64_t start)
{
    int64_t half = dim / 2;
    float neg_step = (float)-(log(10000.0) / (double)(half - 1));
    for (int64_t i = 0; i < n; i++) {
        float p = (float)(start + i);
        float *row = table + i * dim;
        for (int64_t k = 0; k < half; k++) {
            float freq = expf((float)k * neg_step);
            float angle = p * freq;
            row[k] = sinf(angle);
            row[half + k] = cosf(angle);
        }
        if (dim % 2)
            row[dim - 1] = 0.0f;
    }
}

/* ESPnet RelPositionalEncoding (docs/architecture.md 2.4): row r holds relative position
 * rel = t - 1 - r; PE[2m] = sin(rel w_m), PE[2m + 1] = cos(rel w_m),
 * w_m = exp(2m * -(ln 10000 / dim)) (interleaved, unlike the fairseq table). */
void enc_relative_positions(float *table, int64_t t, int64_t dim)
{
    float neg_step = (float)-(log(10000.0) / (double)dim);
    for (int64_t r = 0; r < 2 * t - 1; r++) {
        float rel = (float)(t - 1 - r);
        float *row = table + r * dim;
        for (int64_t c = 0; c < dim; c += 2) {
            float angle = rel * expf((float)c * neg_step);
            row[c] = sinf(angle);
            if (c + 1 < dim)
                row[c + 1] = cosf(angle);
        }
    }
}
