/* The CPU ops against their torch definitions: hand-computed values, and naive loops written
 * here from the definitions (independent of core/ops_cpu.c). The CUDA backend will be held to
 * the same tests. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/ops.h"
#include "test_support.h"

static mtla_ops *ops;

static void setup(void)
{
    ops = mtla_ops_cpu_create(1);
    cr_assert(ops);
}

static void teardown(void)
{
    mtla_ops_cpu_free(ops);
}

TestSuite(ops, .init = setup, .fini = teardown);

static float *random_values(size_t n, unsigned seed)
{
    float *x = ops->alloc(ops, n);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = ((float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f);
    }
    return x;
}

Test(ops, linear_is_x_times_w_transposed_plus_bias)
{
    const float x[] = {1, 2, 3, 4, 5, 6};           /* 2 x 3 */
    const float w[] = {1, 0, -1, 0.5f, 0.5f, 0.5f}; /* 2 x 3 */
    const float b[] = {10, 20};
    float y[4];
    mtla_matrix wm = mtla_matrix_f32(w, 2, 3);
    ops->linear(ops, x, 2, 3, &wm, b, 2, y);
    cr_expect_float_eq(y[0], 1 - 3 + 10, 1e-6);
    cr_expect_float_eq(y[1], 3 + 20, 1e-6);
    cr_expect_float_eq(y[2], 4 - 6 + 10, 1e-6);
    cr_expect_float_eq(y[3], 7.5f + 20, 1e-6);
    ops->linear(ops, x, 2, 3, &wm, NULL, 2, y);
    cr_expect_float_eq(y[1], 3, 1e-6);
}

Test(ops, gemm_transposes_and_accumulates)
{
    const float a[] = {1, 2, 3, 4}; /* 2 x 2 */
    const float b[] = {5, 6, 7, 8};
    float c[] = {1, 1, 1, 1};
    /* C = 2 A^T B + C: A^T = [[1,3],[2,4]], A^T B = [[26,30],[38,44]] */
    ops->gemm(ops, 1, 0, 2, 2, 2, 2.0f, a, 2, b, 2, 1.0f, c, 2);
    cr_expect_float_eq(c[0], 53, 1e-5);
    cr_expect_float_eq(c[1], 61, 1e-5);
    cr_expect_float_eq(c[2], 77, 1e-5);
    cr_expect_float_eq(c[3], 89, 1e-5);
}

Test(ops, layer_norm_uses_biased_variance)
{
    const float x[] = {1, 2, 3, 4};
    const float gamma[] = {1, 1, 2, 2}, beta[] = {0, 0, 0, 1};
    float y[4];
    ops->layer_norm(ops, x, 1, 4, gamma, beta, 0.0f, y);
    /* mean 2.5, biased variance 1.25 */
    double s = sqrt(1.25);
    cr_expect_float_eq(y[0], -1.5 / s, 1e-6);
    cr_expect_float_eq(y[1], -0.5 / s, 1e-6);
    cr_expect_float_eq(y[2], 2 * 0.5 / s, 1e-6);
    cr_expect_float_eq(y[3], 2 * 1.5 / s + 1, 1e-6);
}

Test(ops, softmax_and_log_softmax)
{
    float x[] = {0, 1, 2, 99, 1000, 1000, 1000, 99};
    ops->softmax(ops, x, 2, 3, 4); /* row stride 4: the 99s are untouched */
    double z = 1 + exp(1) + exp(2);
    cr_expect_float_eq(x[0], 1 / z, 1e-6);
    cr_expect_float_eq(x[2], exp(2) / z, 1e-6);
    cr_expect_float_eq(x[3], 99, 0);
    cr_expect_float_eq(x[4], 1.0f / 3, 1e-6); /* large values do not overflow */
    float l[] = {0, 1, 2};
    ops->log_softmax(ops, l, 1, 3);
    cr_expect_float_eq(l[1], 1 - log(z), 1e-6);
}

Test(ops, glu_relu_silu)
{
    const float x[] = {1, -2, 0, 3}; /* one row: a = (1, -2), gate = (0, 3) */
    float y[2];
    ops->glu(ops, x, 1, 2, y);
    cr_expect_float_eq(y[0], 0.5f, 1e-6);
    cr_expect_float_eq(y[1], -2 / (1 + exp(-3)), 1e-6);
    float r[] = {-1, 0, 2};
    ops->relu(ops, r, 3);
    cr_expect(r[0] == 0 && r[1] == 0 && r[2] == 2);
    float s[] = {-1, 2};
    ops->silu(ops, s, 2);
    cr_expect_float_eq(s[0], -1 / (1 + exp(1)), 1e-6);
    cr_expect_float_eq(s[1], 2 / (1 + exp(-2)), 1e-6);
}

/* Values of torch.nn.functional.gelu (approximate="none") in float64. */
Test(ops, gelu_is_the_exact_erf_form)
{
    float g[] = {-3.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 3.0f, 10.0f, -10.0f};
    const double want[] = {-0.0040496940949, -0.15865525393, -0.15426876936, 0.0, 0.34573123064,
                           0.84134474607,    2.9959503059,   10.0,           0.0};
    ops->gelu(ops, g, 9);
    for (int i = 0; i < 9; i++)
        cr_expect_float_eq(g[i], want[i], 1e-7, "gelu[%d] = %.9g, want %.9g", i, g[i], want[i]);
}

/* torch.nn.functional.conv1d, directly from its definition, time-major layout. */
static void naive_conv1d(const float *x, int64_t t, int64_t c_in, const float *w, const float *bias,
                         int64_t c_out, int64_t k, int64_t stride, int64_t pad, float *y)
{
    int64_t t_out = (t + 2 * pad - k) / stride + 1;
    for (int64_t o = 0; o < t_out; o++)
        for (int64_t co = 0; co < c_out; co++) {
            double acc = bias ? bias[co] : 0;
            for (int64_t ci = 0; ci < c_in; ci++)
                for (int64_t j = 0; j < k; j++) {
                    int64_t ti = o * stride - pad + j;
                    if (ti >= 0 && ti < t)
                        acc += (double)w[(co * c_in + ci) * k + j] * x[ti * c_in + ci];
                }
            y[o * c_out + co] = (float)acc;
        }
}

Test(ops, conv1d_matches_its_definition)
{
    /* The subsampler's shape: kernel 5, stride 2, padding 2; odd and even lengths. */
    for (int64_t t = 9; t <= 10; t++) {
        const int64_t c_in = 6, c_out = 4, k = 5, stride = 2, pad = 2;
        int64_t t_out = (t + 2 * pad - k) / stride + 1;
        float *x = random_values((size_t)(t * c_in), 1);
        float *w = random_values((size_t)(c_out * c_in * k), 2);
        float *b = random_values((size_t)c_out, 3);
        float *y = ops->alloc(ops, (size_t)(t_out * c_out));
        float *want = malloc((size_t)(t_out * c_out) * sizeof(float));
        ops->conv1d(ops, x, t, c_in, w, b, c_out, k, stride, pad, y);
        naive_conv1d(x, t, c_in, w, b, c_out, k, stride, pad, want);
        cr_expect_eq(t_out, (t - 1) / 2 + 1, "length rule floor((L-1)/2)+1");
        cr_expect_leq(max_abs_diff(y, want, (size_t)(t_out * c_out)), 1e-5);
        ops->free(ops, x), ops->free(ops, w), ops->free(ops, b), ops->free(ops, y);
        free(want);
    }
}

Test(ops, depthwise_conv1d_keeps_length)
{
    const int64_t t = 12, c = 3, k = 5, pad = 2;
    float *x = random_values((size_t)(t * c), 4);
    float *w = random_values((size_t)(c * k), 5);
    float *y = ops->alloc(ops, (size_t)(t * c));
    ops->depthwise_conv1d(ops, x, t, c, w, k, pad, y);
    for (int64_t o = 0; o < t; o++)
        for (int64_t ch = 0; ch < c; ch++) {
            double acc = 0;
            for (int64_t j = 0; j < k; j++) {
                int64_t ti = o - pad + j;
                if (ti >= 0 && ti < t)
                    acc += (double)w[ch * k + j] * x[ti * c + ch];
            }
            cr_expect_float_eq(y[o * c + ch], acc, 1e-5, "t %ld c %ld", (long)o, (long)ch);
        }
    ops->free(ops, x), ops->free(ops, w), ops->free(ops, y);
}

Test(ops, embed_scales_rows)
{
    const float table[] = {0, 0, 1, 2, 3, 4};
    const int32_t ids[] = {2, 1};
    float y[4];
    ops->embed(ops, table, 2, ids, 2, 0.5f, y);
    cr_expect(y[0] == 1.5f && y[1] == 2.0f && y[2] == 0.5f && y[3] == 1.0f);
}

Test(ops, rope_rotates_interleaved_pairs)
{
    /* dim 4: pair 0 at frequency 1, pair 1 at theta^(-1/2) = 0.01 for theta 10000. */
    float x[] = {1, 0, 0, 1, 9, 1, 0, 0, 1, 9};
    const float positions[] = {2.0f, 0.0f};
    ops->rope(ops, x, 2, 5, 4, positions, 10000.0f);
    cr_expect_float_eq(x[0], cosf(2), 1e-6);
    cr_expect_float_eq(x[1], sinf(2), 1e-6);
    cr_expect_float_eq(x[2], -sinf(0.02f), 1e-6);
    cr_expect_float_eq(x[3], cosf(0.02f), 1e-6);
    cr_expect_float_eq(x[4], 9, 0); /* beyond dim: untouched */
    cr_expect_float_eq(x[5], 1, 0); /* position 0: unchanged */
    cr_expect_float_eq(x[8], 1, 0);
}

Test(ops, elementwise_helpers)
{
    float y[] = {1, 2, 3, 4};
    const float x[] = {1, 1, 1, 1}, bias[] = {10, 20};
    ops->axpy(ops, 2.0f, x, y, 4);
    ops->scale(ops, y, 0.5f, 4);
    ops->add_bias(ops, y, bias, 2, 2);
    cr_expect(y[0] == 11.5f && y[1] == 22.0f && y[2] == 12.5f && y[3] == 23.0f);
    float *buf = ops->alloc(ops, 4);
    ops->fill(ops, buf, 7.0f, 4);
    float host[4];
    ops->download(ops, host, buf, 4);
    cr_expect(host[0] == 7.0f && host[3] == 7.0f);
    ops->free(ops, buf);
}

/* ---- decoder ops */

/* The definition written out: softmax over the keys of every block, in double. */
static void naive_decode_attention(int64_t batch, int64_t heads, int64_t kv_heads, int64_t dk,
                                   int64_t dv, float scale, const float *q,
                                   const mtla_kv_block *blocks, int nblocks, float *o)
{
    for (int64_t b = 0; b < batch; b++)
        for (int64_t h = 0; h < heads; h++) {
            int64_t g = h / (heads / kv_heads);
            double scores[512], max = -INFINITY, sum = 0;
            const float *vrows[512];
            int n = 0;
            for (int i = 0; i < nblocks; i++)
                for (int64_t j = 0; j < blocks[i].n; j++) {
                    const mtla_kv_block *k = &blocks[i];
                    int64_t off = b * k->batch_stride + g * k->head_stride + j * k->row_stride;
                    double d = 0;
                    for (int64_t e = 0; e < dk; e++)
                        d += (double)q[(b * heads + h) * dk + e] * k->k[off + e];
                    scores[n] = d * scale;
                    vrows[n++] = k->v + off;
                    max = scores[n - 1] > max ? scores[n - 1] : max;
                }
            for (int j = 0; j < n; j++)
                sum += exp(scores[j] - max);
            for (int64_t e = 0; e < dv; e++) {
                double acc = 0;
                for (int j = 0; j < n; j++)
                    acc += exp(scores[j] - max) / sum * vrows[j][e];
                o[(b * heads + h) * dv + e] = (float)acc;
            }
        }
}

Test(ops, decode_attention_latent_layout_shared_and_own_blocks)
{
    /* MLA/MTLA: one kv head, key = [slot (r) | rope (dr)], value = slot. */
    const int64_t B = 3, H = 4, r = 6, dr = 2, K = r + dr, n_shared = 5, cap = 4, n_own = 3;
    float *q = random_values((size_t)(B * H * K), 1);
    float *shared = random_values((size_t)(n_shared * K), 2);
    float *own = random_values((size_t)(B * cap * K), 3);
    mtla_kv_block blocks[2] = {{shared, shared, n_shared, K, 0, 0},
                               {own, own, n_own, K, 0, cap * K}};
    float o[3 * 4 * 6], want[3 * 4 * 6];
    ops->decode_attention(ops, B, H, 1, K, r, 0.7f, q, blocks, 2, o);
    naive_decode_attention(B, H, 1, K, r, 0.7f, q, blocks, 2, want);
    cr_expect_leq(max_abs_diff(o, want, sizeof o / sizeof o[0]), 1e-5);
    /* an empty block changes nothing */
    mtla_kv_block three[3] = {blocks[0], {own, own, 0, K, 0, cap * K}, blocks[1]};
    ops->decode_attention(ops, B, H, 1, K, r, 0.7f, q, three, 3, o);
    cr_expect_leq(max_abs_diff(o, want, sizeof o / sizeof o[0]), 1e-5);
    ops->free(ops, q);
    ops->free(ops, shared);
    ops->free(ops, own);
}

Test(ops, decode_attention_grouped_heads)
{
    /* GQA: 6 query heads over 2 kv heads; shared K/V [Hkv, S, dh], own [B, Hkv, cap, dh]. */
    const int64_t B = 2, H = 6, Hkv = 2, dh = 4, S = 7, cap = 3, n_own = 2;
    float *q = random_values((size_t)(B * H * dh), 4);
    float *sk = random_values((size_t)(Hkv * S * dh), 5), *sv = random_values((size_t)(Hkv * S * dh), 6);
    float *ok = random_values((size_t)(B * Hkv * cap * dh), 7);
    float *ov = random_values((size_t)(B * Hkv * cap * dh), 8);
    mtla_kv_block blocks[2] = {{sk, sv, S, dh, S * dh, 0},
                               {ok, ov, n_own, dh, cap * dh, Hkv * cap * dh}};
    float o[2 * 6 * 4], want[2 * 6 * 4];
    ops->decode_attention(ops, B, H, Hkv, dh, dh, 0.5f, q, blocks, 2, o);
    naive_decode_attention(B, H, Hkv, dh, dh, 0.5f, q, blocks, 2, want);
    cr_expect_leq(max_abs_diff(o, want, sizeof o / sizeof o[0]), 1e-5);
    float *all[] = {q, sk, sv, ok, ov};
    for (size_t i = 0; i < 5; i++)
        ops->free(ops, all[i]);
}

Test(ops, decode_attention_one_query_head_per_kv_head)
{
    /* MHA: kv_heads = heads (groups of one). */
    const int64_t B = 3, H = 4, dh = 4, S = 5, cap = 3, n_own = 2;
    float *q = random_values((size_t)(B * H * dh), 9);
    float *sk = random_values((size_t)(H * S * dh), 10), *sv = random_values((size_t)(H * S * dh), 11);
    float *ok = random_values((size_t)(B * H * cap * dh), 12);
    float *ov = random_values((size_t)(B * H * cap * dh), 13);
    mtla_kv_block blocks[2] = {{sk, sv, S, dh, S * dh, 0},
                               {ok, ov, n_own, dh, cap * dh, H * cap * dh}};
    float o[3 * 4 * 4], want[3 * 4 * 4];
    ops->decode_attention(ops, B, H, H, dh, dh, 0.5f, q, blocks, 2, o);
    naive_decode_attention(B, H, H, dh, dh, 0.5f, q, blocks, 2, want);
    cr_expect_leq(max_abs_diff(o, want, sizeof o / sizeof o[0]), 1e-5);
    float *all[] = {q, sk, sv, ok, ov};
    for (size_t i = 0; i < 5; i++)
        ops->free(ops, all[i]);
}

Test(ops, strided_copies_gathers_and_row_scaling)
{
    float src[6] = {1, 2, 3, 4, 5, 6}; /* 3 rows of 2 */
    float dst[9] = {0};                /* 3 rows of 3 */
    ops->copy2d(ops, dst, 3, src, 2, 3, 2, 0);
    ops->copy2d(ops, dst, 3, src, 2, 3, 2, 1);
    const float want[9] = {2, 4, 0, 6, 8, 0, 10, 12, 0};
    cr_expect_arr_eq(dst, want, sizeof want);

    int32_t index[3] = {2, 0, 2};
    float g[6];
    ops->gather_rows(ops, g, 2, src, 2, index, 3, 2);
    const float gwant[6] = {5, 6, 1, 2, 5, 6};
    cr_expect_arr_eq(g, gwant, sizeof gwant);

    float w[3] = {2, 0, -1};
    ops->scale_rows(ops, dst, 3, 2, 3, w);
    const float swant[9] = {4, 8, 0, 0, 0, 0, -10, -12, 0};
    cr_expect_arr_eq(dst, swant, sizeof swant);

    /* sigmoid(a . b): rows (1,2).(3,4) = 11 and (5,6).(3,4) = 39 with ldb 0 */
    float a[4] = {1, 2, 5, 6}, b[2] = {3, 4}, out[2];
    ops->row_dot_sigmoid(ops, a, 2, b, 0, 2, 2, out);
    cr_expect_float_eq(out[0], 1.0f / (1.0f + expf(-11.0f)), 1e-7);
    cr_expect_float_eq(out[1], 1.0f / (1.0f + expf(-39.0f)), 1e-7);
}

Test(ops, rel_shift_reads_relative_position_i_minus_j)
{
    /* bd row i holds relative positions t-1 .. -(t-1); entry (i, j) must get i - j. */
    const int64_t t = 4;
    float bd[4 * 7], scores[16] = {0};
    for (int64_t i = 0; i < t; i++)
        for (int64_t k = 0; k < 2 * t - 1; k++)
            bd[i * 7 + k] = (float)(100 * i + (t - 1 - k)); /* 100 i + relative position */
    ops->rel_shift_add(ops, scores, t, bd, 7);
    for (int64_t i = 0; i < t; i++)
        for (int64_t j = 0; j < t; j++)
            cr_expect_float_eq(scores[i * t + j], (float)(100 * i + (i - j)), 1e-6, "(%ld, %ld)",
                               (long)i, (long)j);
}
