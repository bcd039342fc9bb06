/* Reduced-precision number formats of the CPU engine (docs/engine.md "Reduced precision"):
 * float32 -> bfloat16 rounding and symmetric int8 quantisation with one scale per row. The
 * loader uses them to convert weights once, the CPU backend to convert activations per call. */
#ifndef MTLA_CORE_REDUCED_H
#define MTLA_CORE_REDUCED_H

#include <stddef.h>
#include <stdint.h>

/* bfloat16 bits of `x`, rounded to nearest even (torch's float -> bfloat16); NaN stays a quiet
 * NaN of the same sign. */
uint16_t mtla_f32_to_bf16(float x);
/* dst[i] = mtla_f32_to_bf16(src[i]) for i < count. */
void mtla_f32_to_bf16_n(const float *src, size_t count, uint16_t *dst);

/* Symmetric int8 quantisation of one row of `count` values: scale = max|x| / 127 (1 for a row
 * of zeros), q[i] = round-half-even(x[i] / scale) in [-127, 127]. Returns the scale. Non-finite
 * values are not expected (the model's activations and weights are finite). */
float mtla_quantize_row_int8(const float *x, size_t count, int8_t *q);
/* Its two halves: the scale of a row, and one value quantised with 1 / scale. */
float mtla_int8_row_scale(const float *x, size_t count);
int8_t mtla_int8_quantize(float x, float inverse_scale);

#endif
