#include "core/reduced.h"

#include "mtla-st.h"

#include <math.h>
#include <string.h>

uint16_t mtla_f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x0040u); /* NaN: keep it quiet */
    u += 0x7fffu + ((u >> 16) & 1u);            /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

void mtla_f32_to_bf16_n(const float *src, size_t count, uint16_t *dst)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = mtla_f32_to_bf16(src[i]);
}

float mtla_int8_row_scale(const float *x, size_t count)
{
    float max = 0.0f;
    for (size_t i = 0; i < count; i++) {
        float a = fabsf(x[i]);
        max = a > max ? a : max;
    }
    return max > 0.0f ? max / 127.0f : 1.0f;
}

int8_t mtla_int8_quantize(float x, float inverse_scale)
{
    float v = nearbyintf(x * inverse_scale);
    return (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
}

float mtla_quantize_row_int8(const float *x, size_t count, int8_t *q)
{
    float scale = mtla_int8_row_scale(x, count);
    float inverse = 1.0f / scale;
    for (size_t i = 0; i < count; i++)
        q[i] = mtla_int8_quantize(x[i], inverse);
    return scale;
}

const char *mtla_compute_dtype_name(mtla_compute_dtype dtype)
{
    switch (dtype) {
    case MTLA_COMPUTE_FP32:
        return "fp32";
    case MTLA_COMPUTE_BF16:
        return "bf16";
    case MTLA_COMPUTE_INT8:
        return "int8";
    }
    return "";
}
