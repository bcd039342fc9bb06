/* The CUDA backend (cuda/ops_cuda.h, reached through its plugin) against the CPU reference
 * (core/ops_cpu.c): every op of core/ops.h on random inputs of awkward sizes (odd, not
 * multiples of 32, row strides wider than the rows, empty key blocks, grouped heads), then the
 * encoder and the decoder of the golden models on the GPU against the oracle's fixtures, as
 * tests/test_encoder.c and tests/test_decoder.c hold the CPU engine to them.
 *
 * Tolerances: max |cuda - cpu| <= 1e-5 times max(1, max |cpu|) (1e-4 for the ops that are
 * matrix products: cuBLAS and OpenBLAS sum in different orders); 1e-4 against the oracle,
 * as for the CPU engine.
 *
 * The backend is loaded as the library loads it, by dlopen() of libmtla-st-cuda.so
 * (core/cuda_backend.h), rather than linked: so the suite also covers the plugin's entry point,
 * its version check and its hidden symbols, and runs what `--device cuda` runs. The plugin must
 * load (this suite is built only beside it); without a usable CUDA device every test that needs
 * one then calls cr_skip_test("no CUDA device: ..."), and tests/CMakeLists.txt makes ctest
 * report the suite as skipped. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cuda_backend.h"
#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "decoder/beam.h"
#include "decoder/decoder.h"
#include "encoder/encoder.h"
#include "golden.h"
#include "test_support.h"

#define OP_TOLERANCE 1e-5
#define GEMM_TOLERANCE 1e-4
#define GOLDEN_TOLERANCE 1e-4

/* ---------------------------------------------------------------- helpers */

/* The plugin this build made (tests/CMakeLists.txt names it), unless MTLA_ST_CUDA_PLUGIN
 * already names another. */
static const mtla_cuda_backend *cuda(void)
{
    setenv(MTLA_CUDA_PLUGIN_ENV, MTLA_CUDA_PLUGIN_PATH, 0);
    char message[1024];
    const mtla_cuda_backend *backend = mtla_cuda_backend_load(message, sizeof message);
    cr_assert(backend, "the CUDA plugin did not load: %s", message);
    return backend;
}

/* The CUDA backend on device 0, or the test is skipped. */
static mtla_ops *cuda_or_skip(void)
{
    char message[512];
    mtla_ops *gpu = cuda()->create(0, message, sizeof message);
    if (!gpu)
        cr_skip_test("no CUDA device: %s", message);
    return gpu;
}

typedef struct backends {
    mtla_ops *cpu;
    mtla_ops *gpu;
} backends;

static backends backends_open(void)
{
    backends b;
    b.gpu = cuda_or_skip();
    b.cpu = mtla_ops_cpu_create(1);
    cr_assert(b.cpu);
    return b;
}

/* Every op test ends here: no error may have been recorded along the way. */
static void backends_close(backends *b)
{
    char message[512];
    cr_expect_eq(cuda()->check(b->gpu, message, sizeof message), 0, "CUDA error: %s", message);
    cuda()->free(b->gpu);
    mtla_ops_cpu_free(b->cpu);
}

/* n host floats uniform in [-scale, scale) from a fixed seed (malloc'd). */
static float *host_random(size_t n, unsigned seed, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = scale * ((float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f);
    }
    return x;
}

static float *host_copy(const float *x, size_t n)
{
    float *y = malloc((n ? n : 1) * sizeof *y);
    cr_assert(y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static float *to_gpu(const mtla_ops *gpu, const float *host, size_t n)
{
    float *d = gpu->alloc(gpu, n);
    cr_assert(d, "device allocation of %zu floats", n);
    gpu->upload(gpu, d, host, n);
    return d;
}

static float *from_gpu(const mtla_ops *gpu, const float *device, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    cr_assert(h);
    gpu->download(gpu, h, device, n);
    return h;
}

/* max |got - want| <= tolerance * max(1, max |want|) */
static void expect_close(const float *got, const float *want, size_t n, double tolerance,
                         const char *what)
{
    double magnitude = 1.0;
    for (size_t i = 0; i < n; i++)
        magnitude = fabs(want[i]) > magnitude ? fabs(want[i]) : magnitude;
    double d = max_abs_diff(got, want, n);
    cr_log_info("%s: max |cuda - cpu| = %.3g (magnitude %.3g)", what, d, magnitude);
    cr_expect_leq(d, tolerance * magnitude, "%s: CUDA differs from the CPU by %g (allowed %g)",
                  what, d, tolerance * magnitude);
}

/* Downloads the device buffer and compares it with the CPU's host buffer. */
static void expect_gpu_close(const mtla_ops *gpu, const float *device, const float *want, size_t n,
                             double tolerance, const char *what)
{
    float *got = from_gpu(gpu, device, n);
    expect_close(got, want, n, tolerance, what);
    free(got);
}

/* ---------------------------------------------------------------- backend itself */

/* Runs without a device: the entry point's table is this build's, complete. */
Test(cuda_backend, the_plugin_is_this_builds)
{
    const mtla_cuda_backend *backend = cuda();
    cr_expect_eq(backend->abi, MTLA_CUDA_BACKEND_ABI);
    cr_expect_eq(backend->ops_size, sizeof(mtla_ops));
    cr_expect_str_eq(backend->version, mtla_version());
    cr_expect(backend->create && backend->check && backend->free && backend->device_count);
    char detail[256] = "";
    int32_t count = backend->device_count(detail, sizeof detail);
    cr_expect(count >= 0 && strstr(detail, "CUDA runtime"), "%d: %s", (int)count, detail);
    cr_expect_eq(mtla_cuda_device_count(NULL, 0), count);
}

Test(cuda_backend, create_names_a_missing_device)
{
    char message[256] = "unchanged";
    mtla_ops *ops = cuda()->create(4096, message, sizeof message);
    cr_expect_null(ops);
    cr_expect(message[0] != '\0' && strcmp(message, "unchanged") != 0, "message: '%s'", message);
    cuda()->free(ops);
    ops = cuda()->create(-1, message, sizeof message);
    cr_expect_null(ops);
    cuda()->free(ops);
}

Test(cuda_backend, errors_are_recorded_and_kept)
{
    mtla_ops *gpu = cuda_or_skip();
    char message[256];
    cr_expect_str_eq(gpu->name, "cuda");
    cr_expect_eq(gpu->host_memory, 0);
    cr_expect_eq(cuda()->check(gpu, message, sizeof message), 0, "%s", message);

    /* five non-empty key blocks: more than the kernel argument holds */
    float *kv = gpu->alloc(gpu, 64), *q = gpu->alloc(gpu, 8), *o = gpu->alloc(gpu, 8);
    cr_assert(kv && q && o);
    gpu->fill(gpu, kv, 0.5f, 64);
    gpu->fill(gpu, q, 0.5f, 8);
    mtla_kv_block blocks[5];
    for (int i = 0; i < 5; i++)
        blocks[i] = (mtla_kv_block){kv, kv, 1, 8, 0, 0};
    gpu->decode_attention(gpu, 1, 1, 1, 8, 8, 1.0f, q, blocks, 5, o);
    cr_expect_eq(cuda()->check(gpu, message, sizeof message), -1);
    cr_expect(strstr(message, "decode_attention"), "message: %s", message);
    /* kept, and downloads no longer return plausible numbers */
    float host[8];
    gpu->download(gpu, host, o, 8);
    cr_expect(isnan(host[0]) && isnan(host[7]));
    cr_expect_eq(cuda()->check(gpu, NULL, 0), -1);
    gpu->free(gpu, kv);
    gpu->free(gpu, q);
    gpu->free(gpu, o);
    cuda()->free(gpu);
}

Test(cuda_ops, memory_fill_copy_upload_download)
{
    backends b = backends_open();
    const size_t n = 1001;
    float *x = host_random(n, 1, 3.0f);
    float *d = to_gpu(b.gpu, x, n);
    float *back = from_gpu(b.gpu, d, n);
    cr_expect(memcmp(back, x, n * sizeof *x) == 0, "upload then download is exact");
    free(back);

    float *e = b.gpu->alloc(b.gpu, n);
    cr_assert(e);
    b.gpu->copy(b.gpu, e, d, n);
    back = from_gpu(b.gpu, e, n);
    cr_expect(memcmp(back, x, n * sizeof *x) == 0, "copy is exact");
    free(back);

    /* overlapping ranges behave as memmove, both directions */
    float *want = host_copy(x, n);
    memmove(want + 7, want, (n - 7) * sizeof *want);
    b.gpu->copy(b.gpu, d + 7, d, n - 7);
    back = from_gpu(b.gpu, d, n);
    cr_expect(memcmp(back, want, n * sizeof *want) == 0, "overlapping copy forward");
    free(back);
    memmove(want, want + 5, (n - 5) * sizeof *want);
    b.gpu->copy(b.gpu, d, d + 5, n - 5);
    back = from_gpu(b.gpu, d, n);
    cr_expect(memcmp(back, want, n * sizeof *want) == 0, "overlapping copy backward");
    free(back);

    b.gpu->fill(b.gpu, e, -2.25f, n);
    back = from_gpu(b.gpu, e, n);
    for (size_t i = 0; i < n; i++)
        cr_expect(back[i] == -2.25f, "fill at %zu", i);
    free(back);

    b.gpu->free(b.gpu, d);
    b.gpu->free(b.gpu, e);
    free(x);
    free(want);
    backends_close(&b);
}

/* ---------------------------------------------------------------- matrix products */

Test(cuda_ops, gemm_every_transpose_with_padded_leading_dimensions)
{
    backends b = backends_open();
    const int64_t m = 37, n = 45, k = 29;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
            size_t na = (size_t)((ta ? k : m) * lda), nb = (size_t)((tb ? n : k) * ldb);
            size_t nc = (size_t)(m * ldc);
            float *a = host_random(na, 10 + ta, 1.0f), *bm = host_random(nb, 20 + tb, 1.0f);
            float *c = host_random(nc, 30, 1.0f);
            float *da = to_gpu(b.gpu, a, na), *db = to_gpu(b.gpu, bm, nb);
            float *dc = to_gpu(b.gpu, c, nc);
            b.cpu->gemm(b.cpu, ta, tb, m, n, k, 0.75f, a, lda, bm, ldb, -0.5f, c, ldc);
            b.gpu->gemm(b.gpu, ta, tb, m, n, k, 0.75f, da, lda, db, ldb, -0.5f, dc, ldc);
            char what[64];
            snprintf(what, sizeof what, "gemm trans_a %d trans_b %d", ta, tb);
            expect_gpu_close(b.gpu, dc, c, nc, GEMM_TOLERANCE, what); /* padding included */
            b.gpu->free(b.gpu, da), b.gpu->free(b.gpu, db), b.gpu->free(b.gpu, dc);
            free(a), free(bm), free(c);
        }
    backends_close(&b);
}

Test(cuda_ops, linear_with_and_without_bias)
{
    backends b = backends_open();
    const int64_t rows = 33, in = 70, out = 51;
    float *x = host_random((size_t)(rows * in), 1, 1.0f);
    float *w = host_random((size_t)(out * in), 2, 0.5f);
    float *bias = host_random((size_t)out, 3, 1.0f);
    float *y = malloc((size_t)(rows * out) * sizeof *y);
    float *dx = to_gpu(b.gpu, x, (size_t)(rows * in)), *dw = to_gpu(b.gpu, w, (size_t)(out * in));
    float *dbias = to_gpu(b.gpu, bias, (size_t)out),
          *dy = b.gpu->alloc(b.gpu, (size_t)(rows * out));
    cr_assert(y && dy);
    mtla_matrix wm = mtla_matrix_f32(w, out, in), dwm = mtla_matrix_f32(dw, out, in);
    b.cpu->linear(b.cpu, x, rows, in, &wm, bias, out, y);
    b.gpu->linear(b.gpu, dx, rows, in, &dwm, dbias, out, dy);
    expect_gpu_close(b.gpu, dy, y, (size_t)(rows * out), GEMM_TOLERANCE, "linear + bias");
    b.cpu->linear(b.cpu, x, rows, in, &wm, NULL, out, y);
    b.gpu->linear(b.gpu, dx, rows, in, &dwm, NULL, out, dy);
    expect_gpu_close(b.gpu, dy, y, (size_t)(rows * out), GEMM_TOLERANCE, "linear");
    b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dw), b.gpu->free(b.gpu, dbias);
    b.gpu->free(b.gpu, dy);
    free(x), free(w), free(bias), free(y);
    backends_close(&b);
}

/* ---------------------------------------------------------------- row-wise */

Test(cuda_ops, layer_norm_odd_and_long_rows)
{
    backends b = backends_open();
    const int64_t shapes[][2] = {{7, 333}, {3, 1}, {2, 1000}, {65, 48}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t rows = shapes[i][0], dim = shapes[i][1];
        size_t n = (size_t)(rows * dim);
        float *x = host_random(n, 4 + (unsigned)i, 2.0f);
        for (size_t j = 0; j < n; j++)
            x[j] += 3.0f; /* a mean well away from 0 */
        float *gamma = host_random((size_t)dim, 5, 1.5f), *beta = host_random((size_t)dim, 6, 1.0f);
        float *y = malloc(n * sizeof *y);
        float *dx = to_gpu(b.gpu, x, n), *dg = to_gpu(b.gpu, gamma, (size_t)dim);
        float *db = to_gpu(b.gpu, beta, (size_t)dim), *dy = b.gpu->alloc(b.gpu, n);
        cr_assert(y && dy);
        b.cpu->layer_norm(b.cpu, x, rows, dim, gamma, beta, 1e-5f, y);
        b.gpu->layer_norm(b.gpu, dx, rows, dim, dg, db, 1e-5f, dy);
        char what[64];
        snprintf(what, sizeof what, "layer_norm %ld x %ld", (long)rows, (long)dim);
        expect_gpu_close(b.gpu, dy, y, n, OP_TOLERANCE, what);
        b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dg), b.gpu->free(b.gpu, db);
        b.gpu->free(b.gpu, dy);
        free(x), free(gamma), free(beta), free(y);
    }
    backends_close(&b);
}

Test(cuda_ops, softmax_with_row_stride_and_log_softmax)
{
    backends b = backends_open();
    const int64_t shapes[][3] = {{5, 1001, 1030}, {4, 1, 3}, {9, 77, 77}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int64_t rows = shapes[i][0], cols = shapes[i][1], ld = shapes[i][2];
        size_t n = (size_t)(rows * ld);
        float *x = host_random(n, 7 + (unsigned)i, 8.0f);
        float *dx = to_gpu(b.gpu, x, n);
        b.cpu->softmax(b.cpu, x, rows, cols, ld);
        b.gpu->softmax(b.gpu, dx, rows, cols, ld);
        char what[64];
        snprintf(what, sizeof what, "softmax %ld x %ld, ld %ld", (long)rows, (long)cols, (long)ld);
        expect_gpu_close(b.gpu, dx, x, n, OP_TOLERANCE, what); /* the padding stays */
        b.gpu->free(b.gpu, dx);
        free(x);
    }
    const int64_t rows = 3, cols = 10007;
    float *x = host_random((size_t)(rows * cols), 9, 20.0f);
    float *dx = to_gpu(b.gpu, x, (size_t)(rows * cols));
    b.cpu->log_softmax(b.cpu, x, rows, cols);
    b.gpu->log_softmax(b.gpu, dx, rows, cols);
    expect_gpu_close(b.gpu, dx, x, (size_t)(rows * cols), OP_TOLERANCE, "log_softmax");
    b.gpu->free(b.gpu, dx);
    free(x);
    backends_close(&b);
}

Test(cuda_ops, glu)
{
    backends b = backends_open();
    const int64_t rows = 13, half = 37;
    float *x = host_random((size_t)(rows * 2 * half), 11, 4.0f);
    float *y = malloc((size_t)(rows * half) * sizeof *y);
    float *dx = to_gpu(b.gpu, x, (size_t)(rows * 2 * half));
    float *dy = b.gpu->alloc(b.gpu, (size_t)(rows * half));
    cr_assert(y && dy);
    b.cpu->glu(b.cpu, x, rows, half, y);
    b.gpu->glu(b.gpu, dx, rows, half, dy);
    expect_gpu_close(b.gpu, dy, y, (size_t)(rows * half), OP_TOLERANCE, "glu");
    b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dy);
    free(x), free(y);
    backends_close(&b);
}

/* ---------------------------------------------------------------- element-wise */

Test(cuda_ops, relu_silu_gelu_scale_axpy)
{
    backends b = backends_open();
    const size_t n = 10007;
    float *x = host_random(n, 12, 6.0f), *y = host_random(n, 13, 6.0f);
    float *dx = to_gpu(b.gpu, x, n), *dy = to_gpu(b.gpu, y, n);
    b.cpu->relu(b.cpu, x, n);
    b.gpu->relu(b.gpu, dx, n);
    expect_gpu_close(b.gpu, dx, x, n, 0.0, "relu");
    b.cpu->silu(b.cpu, y, n);
    b.gpu->silu(b.gpu, dy, n);
    expect_gpu_close(b.gpu, dy, y, n, OP_TOLERANCE, "silu");
    b.cpu->gelu(b.cpu, y, n);
    b.gpu->gelu(b.gpu, dy, n);
    expect_gpu_close(b.gpu, dy, y, n, OP_TOLERANCE, "gelu");
    b.cpu->scale(b.cpu, y, -0.37f, n);
    b.gpu->scale(b.gpu, dy, -0.37f, n);
    expect_gpu_close(b.gpu, dy, y, n, OP_TOLERANCE, "scale");
    b.cpu->axpy(b.cpu, 1.75f, x, y, n);
    b.gpu->axpy(b.gpu, 1.75f, dx, dy, n);
    expect_gpu_close(b.gpu, dy, y, n, OP_TOLERANCE, "axpy");
    b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dy);
    free(x), free(y);
    backends_close(&b);
}

Test(cuda_ops, add_bias_and_scale_rows)
{
    backends b = backends_open();
    const int64_t rows = 9, cols = 131;
    float *x = host_random((size_t)(rows * cols), 14, 1.0f);
    float *bias = host_random((size_t)cols, 15, 1.0f);
    float *dx = to_gpu(b.gpu, x, (size_t)(rows * cols)), *dbias = to_gpu(b.gpu, bias, (size_t)cols);
    b.cpu->add_bias(b.cpu, x, bias, rows, cols);
    b.gpu->add_bias(b.gpu, dx, dbias, rows, cols);
    expect_gpu_close(b.gpu, dx, x, (size_t)(rows * cols), OP_TOLERANCE, "add_bias");
    b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dbias);
    free(x), free(bias);

    const int64_t r2 = 11, c2 = 29, ld = 40;
    float *z = host_random((size_t)(r2 * ld), 16, 2.0f), *w = host_random((size_t)r2, 17, 1.0f);
    float *dz = to_gpu(b.gpu, z, (size_t)(r2 * ld)), *dw = to_gpu(b.gpu, w, (size_t)r2);
    b.cpu->scale_rows(b.cpu, z, r2, c2, ld, w);
    b.gpu->scale_rows(b.gpu, dz, r2, c2, ld, dw);
    expect_gpu_close(b.gpu, dz, z, (size_t)(r2 * ld), OP_TOLERANCE, "scale_rows");
    b.gpu->free(b.gpu, dz), b.gpu->free(b.gpu, dw);
    free(z), free(w);
    backends_close(&b);
}

/* ---------------------------------------------------------------- convolutions */

Test(cuda_ops, conv1d_strides_padding_and_a_single_frame)
{
    backends b = backends_open();
    /* t, c_in, c_out, k, stride, pad, bias */
    const int64_t cases[][7] = {{101, 13, 17, 5, 2, 2, 1},
                                {1, 80, 33, 5, 2, 2, 1},
                                {50, 7, 9, 3, 1, 0, 0},
                                {64, 32, 64, 5, 2, 2, 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = cases[i][0], c_in = cases[i][1], c_out = cases[i][2], k = cases[i][3];
        int64_t stride = cases[i][4], pad = cases[i][5];
        int64_t t_out = (t + 2 * pad - k) / stride + 1;
        float *x = host_random((size_t)(t * c_in), 18 + (unsigned)i, 1.0f);
        float *w = host_random((size_t)(c_out * c_in * k), 19, 0.3f);
        float *bias = cases[i][6] ? host_random((size_t)c_out, 20, 1.0f) : NULL;
        float *y = malloc((size_t)(t_out * c_out) * sizeof *y);
        float *dx = to_gpu(b.gpu, x, (size_t)(t * c_in));
        float *dw = to_gpu(b.gpu, w, (size_t)(c_out * c_in * k));
        float *dbias = bias ? to_gpu(b.gpu, bias, (size_t)c_out) : NULL;
        float *dy = b.gpu->alloc(b.gpu, (size_t)(t_out * c_out));
        cr_assert(y && dy);
        b.cpu->conv1d(b.cpu, x, t, c_in, w, bias, c_out, k, stride, pad, y);
        b.gpu->conv1d(b.gpu, dx, t, c_in, dw, dbias, c_out, k, stride, pad, dy);
        char what[96];
        snprintf(what, sizeof what, "conv1d t %ld c_in %ld c_out %ld k %ld stride %ld pad %ld",
                 (long)t, (long)c_in, (long)c_out, (long)k, (long)stride, (long)pad);
        expect_gpu_close(b.gpu, dy, y, (size_t)(t_out * c_out), GEMM_TOLERANCE, what);
        b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dw), b.gpu->free(b.gpu, dy);
        if (dbias)
            b.gpu->free(b.gpu, dbias);
        free(x), free(w), free(bias), free(y);
    }
    backends_close(&b);
}

Test(cuda_ops, depthwise_conv1d_long_and_short_inputs)
{
    backends b = backends_open();
    const int64_t cases[][4] = {{77, 45, 15, 7}, {3, 5, 31, 15}, {200, 256, 31, 15}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t t = cases[i][0], c = cases[i][1], k = cases[i][2], pad = cases[i][3];
        float *x = host_random((size_t)(t * c), 21 + (unsigned)i, 1.0f);
        float *w = host_random((size_t)(c * k), 22, 0.5f);
        float *y = malloc((size_t)(t * c) * sizeof *y);
        float *dx = to_gpu(b.gpu, x, (size_t)(t * c)), *dw = to_gpu(b.gpu, w, (size_t)(c * k));
        float *dy = b.gpu->alloc(b.gpu, (size_t)(t * c));
        cr_assert(y && dy);
        b.cpu->depthwise_conv1d(b.cpu, x, t, c, w, k, pad, y);
        b.gpu->depthwise_conv1d(b.gpu, dx, t, c, dw, k, pad, dy);
        char what[64];
        snprintf(what, sizeof what, "depthwise t %ld c %ld k %ld", (long)t, (long)c, (long)k);
        expect_gpu_close(b.gpu, dy, y, (size_t)(t * c), OP_TOLERANCE, what);
        b.gpu->free(b.gpu, dx), b.gpu->free(b.gpu, dw), b.gpu->free(b.gpu, dy);
        free(x), free(w), free(y);
    }
    backends_close(&b);
}

/* ---------------------------------------------------------------- rows (decoder caches) */

Test(cuda_ops, copy2d_overwrite_accumulate_and_broadcast)
{
    backends b = backends_open();
    const int64_t rows = 19, cols = 33, ld_src = 40, ld_dst = 37;
    size_t ns = (size_t)(rows * ld_src), nd = (size_t)(rows * ld_dst);
    float *src = host_random(ns, 23, 1.0f), *dst = host_random(nd, 24, 1.0f);
    float *ds = to_gpu(b.gpu, src, ns), *dd = to_gpu(b.gpu, dst, nd);
    b.cpu->copy2d(b.cpu, dst, ld_dst, src, ld_src, rows, cols, 0);
    b.gpu->copy2d(b.gpu, dd, ld_dst, ds, ld_src, rows, cols, 0);
    expect_gpu_close(b.gpu, dd, dst, nd, 0.0, "copy2d");
    b.cpu->copy2d(b.cpu, dst, ld_dst, src, ld_src, rows, cols, 1);
    b.gpu->copy2d(b.gpu, dd, ld_dst, ds, ld_src, rows, cols, 1);
    expect_gpu_close(b.gpu, dd, dst, nd, 0.0, "copy2d accumulate");
    b.cpu->copy2d(b.cpu, dst, ld_dst, src, 0, rows, cols, 1); /* one source row for all */
    b.gpu->copy2d(b.gpu, dd, ld_dst, ds, 0, rows, cols, 1);
    expect_gpu_close(b.gpu, dd, dst, nd, 0.0, "copy2d ld_src 0");
    b.gpu->free(b.gpu, ds), b.gpu->free(b.gpu, dd);
    free(src), free(dst);
    backends_close(&b);
}

Test(cuda_ops, gather_rows_repeats_and_reuses_the_host_index)
{
    backends b = backends_open();
    const int64_t rows = 7, cols = 100, ld_src = 103, ld_dst = 101;
    size_t ns = (size_t)(rows * ld_src), nd = (size_t)(rows * ld_dst);
    float *src = host_random(ns, 25, 1.0f), *dst = host_random(nd, 26, 1.0f);
    float *ds = to_gpu(b.gpu, src, ns), *dd = to_gpu(b.gpu, dst, nd);
    float *dd2 = to_gpu(b.gpu, dst, nd);
    float *dst2 = host_copy(dst, nd);
    int32_t index[7] = {3, 3, 0, 6, 1, 2, 3};
    b.cpu->gather_rows(b.cpu, dst, ld_dst, src, ld_src, index, rows, cols);
    b.gpu->gather_rows(b.gpu, dd, ld_dst, ds, ld_src, index, rows, cols);
    /* the caller may change its index array as soon as the op returns */
    int32_t again[7] = {6, 5, 4, 3, 2, 1, 0};
    memcpy(index, again, sizeof again);
    b.cpu->gather_rows(b.cpu, dst2, ld_dst, src, ld_src, index, rows, cols);
    b.gpu->gather_rows(b.gpu, dd2, ld_dst, ds, ld_src, index, rows, cols);
    memset(index, 0xff, sizeof index);
    expect_gpu_close(b.gpu, dd, dst, nd, 0.0, "gather_rows");
    expect_gpu_close(b.gpu, dd2, dst2, nd, 0.0, "gather_rows, index reused");
    b.gpu->free(b.gpu, ds), b.gpu->free(b.gpu, dd), b.gpu->free(b.gpu, dd2);
    free(src), free(dst), free(dst2);
    backends_close(&b);
}

Test(cuda_ops, row_dot_sigmoid_shared_and_per_row_b)
{
    backends b = backends_open();
    const int64_t rows = 23, dim = 37, lda = 40, ldb = 41;
    float *a = host_random((size_t)(rows * lda), 27, 1.0f);
    float *bv = host_random((size_t)(rows * ldb), 28, 1.0f);
    float out[23];
    float *da = to_gpu(b.gpu, a, (size_t)(rows * lda)),
          *db = to_gpu(b.gpu, bv, (size_t)(rows * ldb));
    float *dout = b.gpu->alloc(b.gpu, (size_t)rows);
    cr_assert(dout);
    b.cpu->row_dot_sigmoid(b.cpu, a, lda, bv, 0, rows, dim, out);
    b.gpu->row_dot_sigmoid(b.gpu, da, lda, db, 0, rows, dim, dout);
    expect_gpu_close(b.gpu, dout, out, (size_t)rows, OP_TOLERANCE, "row_dot_sigmoid ldb 0");
    b.cpu->row_dot_sigmoid(b.cpu, a, lda, bv, ldb, rows, dim, out);
    b.gpu->row_dot_sigmoid(b.gpu, da, lda, db, ldb, rows, dim, dout);
    expect_gpu_close(b.gpu, dout, out, (size_t)rows, OP_TOLERANCE, "row_dot_sigmoid");
    b.gpu->free(b.gpu, da), b.gpu->free(b.gpu, db), b.gpu->free(b.gpu, dout);
    free(a), free(bv);
    backends_close(&b);
}

/* ---------------------------------------------------------------- attention */

/* One decode_attention case on both backends. The blocks' k/v are offsets into one host
 * buffer `kv` of kv_count floats (k_offset/v_offset per block), mirrored on the device. */
typedef struct attention_case {
    const char *what;
    int64_t batch, heads, kv_heads, dk, dv;
    float scale;
    size_t kv_count;
    int nblocks;
    int64_t k_offset[5], v_offset[5];
    mtla_kv_block shape[5]; /* n and strides; k, v filled in */
} attention_case;

static void check_attention(backends *b, const attention_case *c)
{
    size_t nq = (size_t)(c->batch * c->heads * c->dk), no = (size_t)(c->batch * c->heads * c->dv);
    float *q = host_random(nq, 29, 1.0f), *kv = host_random(c->kv_count, 30, 1.0f);
    float *o = malloc(no * sizeof *o);
    float *dq = to_gpu(b->gpu, q, nq), *dkv = to_gpu(b->gpu, kv, c->kv_count);
    float *dout = b->gpu->alloc(b->gpu, no);
    cr_assert(o && dout);
    mtla_kv_block host_blocks[5], device_blocks[5];
    for (int i = 0; i < c->nblocks; i++) {
        host_blocks[i] = device_blocks[i] = c->shape[i];
        host_blocks[i].k = kv + c->k_offset[i];
        host_blocks[i].v = kv + c->v_offset[i];
        device_blocks[i].k = dkv + c->k_offset[i];
        device_blocks[i].v = dkv + c->v_offset[i];
    }
    b->cpu->decode_attention(b->cpu, c->batch, c->heads, c->kv_heads, c->dk, c->dv, c->scale, q,
                             host_blocks, c->nblocks, o);
    b->gpu->decode_attention(b->gpu, c->batch, c->heads, c->kv_heads, c->dk, c->dv, c->scale, dq,
                             device_blocks, c->nblocks, dout);
    expect_gpu_close(b->gpu, dout, o, no, OP_TOLERANCE, c->what);
    b->gpu->free(b->gpu, dq), b->gpu->free(b->gpu, dkv), b->gpu->free(b->gpu, dout);
    free(q), free(kv), free(o);
}

/* MLA/MTLA layout: one kv head, rows [slot (r) | rope key (dr)], value = the slot; a shared
 * block of n_shared rows, then (optionally an empty block, then) per-hypothesis own blocks of
 * capacity cap with n_own rows filled. */
static attention_case latent_case(const char *what, int64_t batch, int64_t heads, int64_t r,
                                  int64_t dr, int64_t n_shared, int64_t cap, int64_t n_own,
                                  int empty_between)
{
    int64_t K = r + dr;
    attention_case c = {.what = what,
                        .batch = batch,
                        .heads = heads,
                        .kv_heads = 1,
                        .dk = K,
                        .dv = r,
                        .scale = 1.0f / sqrtf((float)K)};
    int64_t own = n_shared * K; /* own blocks follow the shared rows in the buffer */
    c.kv_count = (size_t)(own + batch * cap * K);
    int i = 0;
    c.shape[i] = (mtla_kv_block){NULL, NULL, n_shared, K, 0, 0};
    c.k_offset[i] = c.v_offset[i] = 0;
    i++;
    if (empty_between) {
        c.shape[i] = (mtla_kv_block){NULL, NULL, 0, K, 0, cap * K};
        c.k_offset[i] = c.v_offset[i] = own;
        i++;
    }
    c.shape[i] = (mtla_kv_block){NULL, NULL, n_own, K, 0, cap * K};
    c.k_offset[i] = c.v_offset[i] = own;
    i++;
    c.nblocks = i;
    return c;
}

/* MHA/GQA layout: shared K then V [Hkv, S, dh]; own K then V [batch, Hkv, cap, dh]. */
static attention_case rotary_case(const char *what, int64_t batch, int64_t heads, int64_t kv_heads,
                                  int64_t dh, int64_t s, int64_t cap, int64_t n_own)
{
    attention_case c = {.what = what,
                        .batch = batch,
                        .heads = heads,
                        .kv_heads = kv_heads,
                        .dk = dh,
                        .dv = dh,
                        .scale = 1.0f,
                        .nblocks = 2};
    int64_t shared = kv_heads * s * dh, own = batch * kv_heads * cap * dh;
    c.kv_count = (size_t)(2 * shared + 2 * own);
    c.shape[0] = (mtla_kv_block){NULL, NULL, s, dh, s * dh, 0};
    c.k_offset[0] = 0;
    c.v_offset[0] = shared;
    c.shape[1] = (mtla_kv_block){NULL, NULL, n_own, dh, cap * dh, kv_heads * cap * dh};
    c.k_offset[1] = 2 * shared;
    c.v_offset[1] = 2 * shared + own;
    return c;
}

Test(cuda_ops, decode_attention_latent_blocks)
{
    backends b = backends_open();
    attention_case c = latent_case("latent, empty block between", 5, 3, 63, 8, 130, 9, 3, 1);
    check_attention(&b, &c);
    c = latent_case("latent, one tile", 2, 4, 32, 8, 37, 4, 1, 0);
    check_attention(&b, &c);
    c = latent_case("latent, own block only, dv 300", 3, 2, 300, 8, 0, 6, 5, 1);
    check_attention(&b, &c);
    c = latent_case("latent, dv 600", 2, 2, 600, 16, 70, 3, 2, 0);
    check_attention(&b, &c);
    c = latent_case("latent, dv MTLA_OPS_MAX_HEAD_DIM", 1, 2, MTLA_OPS_MAX_HEAD_DIM, 64, 40, 2, 1,
                    0);
    check_attention(&b, &c);
    backends_close(&b);
}

Test(cuda_ops, decode_attention_grouped_and_plain_heads)
{
    backends b = backends_open();
    attention_case c = rotary_case("gqa 6 heads over 2", 3, 6, 2, 37, 77, 9, 5);
    check_attention(&b, &c);
    c = rotary_case("mha", 4, 4, 4, 16, 129, 3, 3);
    check_attention(&b, &c);
    c = rotary_case("mqa 8 heads over 1", 2, 8, 1, 64, 200, 5, 1);
    check_attention(&b, &c);
    backends_close(&b);
}

Test(cuda_ops, rel_shift_add)
{
    backends b = backends_open();
    const int64_t t = 37, ld = 80;
    float *scores = host_random((size_t)(t * t), 31, 1.0f),
          *bd = host_random((size_t)(t * ld), 32, 1.0f);
    float *ds = to_gpu(b.gpu, scores, (size_t)(t * t)), *dbd = to_gpu(b.gpu, bd, (size_t)(t * ld));
    b.cpu->rel_shift_add(b.cpu, scores, t, bd, ld);
    b.gpu->rel_shift_add(b.gpu, ds, t, dbd, ld);
    expect_gpu_close(b.gpu, ds, scores, (size_t)(t * t), 0.0, "rel_shift_add");
    b.gpu->free(b.gpu, ds), b.gpu->free(b.gpu, dbd);
    free(scores), free(bd);
    backends_close(&b);
}

/* ---------------------------------------------------------------- lookups and positions */

Test(cuda_ops, embed_repeated_ids)
{
    backends b = backends_open();
    const int64_t vocab = 50, dim = 77, n = 9;
    float *table = host_random((size_t)(vocab * dim), 33, 1.0f);
    int32_t ids[9] = {2, 49, 0, 2, 17, 17, 3, 48, 2};
    float *y = malloc((size_t)(n * dim) * sizeof *y);
    float *dt = to_gpu(b.gpu, table, (size_t)(vocab * dim)),
          *dy = b.gpu->alloc(b.gpu, (size_t)(n * dim));
    cr_assert(y && dy);
    float scale = sqrtf((float)dim);
    b.cpu->embed(b.cpu, table, dim, ids, n, scale, y);
    b.gpu->embed(b.gpu, dt, dim, ids, n, scale, dy);
    memset(ids, 0xff, sizeof ids); /* the op has taken its copy */
    expect_gpu_close(b.gpu, dy, y, (size_t)(n * dim), 0.0, "embed");
    b.gpu->free(b.gpu, dt), b.gpu->free(b.gpu, dy);
    free(table), free(y);
    backends_close(&b);
}

Test(cuda_ops, rope_strided_rows_and_large_positions)
{
    backends b = backends_open();
    /* rows, ld, dim, first value offset in the row (a rope slice inside a wider row) */
    const int64_t cases[][4] = {{17, 40, 32, 0}, {24, 16, 8, 8}, {5, 6, 6, 0}, {300, 64, 64, 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t rows = cases[i][0], ld = cases[i][1], dim = cases[i][2], off = cases[i][3];
        size_t n = (size_t)(rows * ld);
        float *x = host_random(n, 34 + (unsigned)i, 2.0f);
        float *positions = malloc((size_t)rows * sizeof *positions);
        cr_assert(positions);
        for (int64_t r = 0; r < rows; r++)
            positions[r] = (float)((r * 61) % 1024); /* up to 1023: large angles */
        float *dx = to_gpu(b.gpu, x, n);
        b.cpu->rope(b.cpu, x + off, rows, ld, dim, positions, 10000.0f);
        b.gpu->rope(b.gpu, dx + off, rows, ld, dim, positions, 10000.0f);
        for (int64_t r = 0; r < rows; r++)
            positions[r] = -1.0f; /* the op has taken its copy */
        char what[64];
        snprintf(what, sizeof what, "rope rows %ld ld %ld dim %ld", (long)rows, (long)ld,
                 (long)dim);
        expect_gpu_close(b.gpu, dx, x, n, OP_TOLERANCE, what);
        b.gpu->free(b.gpu, dx);
        free(x), free(positions);
    }
    backends_close(&b);
}

/* ---------------------------------------------------------------- golden models on the GPU */

typedef struct golden {
    char path[4096];
    mtla_model_dir *dir;
    mtla_ops *gpu;
    mtla_weights *weights;
} golden;

static golden golden_open(const char *name)
{
    golden g;
    memset(&g, 0, sizeof g);
    g.gpu = cuda_or_skip();
    snprintf(g.path, sizeof g.path, "%s/%s", fixture("tests/golden/models"), name);
    mtla_error err = {0};
    cr_assert_eq(mtla_model_dir_open(g.path, &g.dir, &err), MTLA_OK, "%s: %s", g.path, err.message);
    cr_assert_eq(mtla_weights_create(g.gpu, g.dir, &g.weights, &err), MTLA_OK, "%s", err.message);
    return g;
}

static void golden_close(golden *g)
{
    char message[512];
    cr_expect_eq(cuda()->check(g->gpu, message, sizeof message), 0, "CUDA error: %s", message);
    mtla_weights_free(g->weights);
    cuda()->free(g->gpu);
    mtla_model_dir_close(g->dir);
}

/* Features -> encoder -> projector on the GPU; returns the prompt in device memory and checks
 * encoder_out and the prompt against the oracle. */
static float *encode_on_gpu(golden *g, const char *name, int64_t *prompt_rows)
{
    const mtla_ops *gpu = g->gpu;
    cJSON *meta = golden_json(g->path, "meta.json");
    npy_array feats = golden_features(g->dir, meta);
    npy_array want_enc = golden_npy(g->path, "encoder_out.npy");
    npy_array want_prompt = golden_npy(g->path, "prompt.npy");
    mtla_encoder *enc;
    mtla_error err = {0};
    cr_assert_eq(mtla_encoder_create(gpu, g->weights, &g->dir->config, &enc, &err), MTLA_OK,
                 "%s: %s", name, err.message);
    int64_t s_enc = mtla_encoder_output_frames(enc, (int64_t)feats.rows);
    cr_assert_eq(s_enc, (int64_t)want_enc.rows);
    size_t n_enc = want_enc.rows * want_enc.cols, n_prompt = want_prompt.rows * want_prompt.cols;
    float *x = to_gpu(gpu, feats.data, feats.rows * feats.cols);
    float *enc_out = gpu->alloc(gpu, n_enc), *prompt = gpu->alloc(gpu, n_prompt);
    cr_assert(enc_out && prompt);
    cr_assert_eq(mtla_encoder_forward(enc, x, (int64_t)feats.rows, enc_out, &err), MTLA_OK,
                 "%s: %s", name, err.message);
    int64_t s = 0;
    cr_assert_eq(mtla_encoder_project(enc, enc_out, s_enc, prompt, &s, &err), MTLA_OK, "%s: %s",
                 name, err.message);
    cr_assert_eq(s, (int64_t)want_prompt.rows);

    float *got_enc = from_gpu(gpu, enc_out, n_enc), *got_prompt = from_gpu(gpu, prompt, n_prompt);
    double d_enc = max_abs_diff(got_enc, want_enc.data, n_enc);
    double d_prompt = max_abs_diff(got_prompt, want_prompt.data, n_prompt);
    cr_log_info("%s on CUDA: encoder_out max abs diff %.3g, prompt %.3g", name, d_enc, d_prompt);
    cr_expect_leq(d_enc, GOLDEN_TOLERANCE, "%s: encoder_out differs from the oracle by %g", name,
                  d_enc);
    cr_expect_leq(d_prompt, GOLDEN_TOLERANCE, "%s: prompt differs from the oracle by %g", name,
                  d_prompt);

    free(got_enc), free(got_prompt);
    gpu->free(gpu, x);
    gpu->free(gpu, enc_out);
    mtla_encoder_free(enc);
    npy_free(&feats), npy_free(&want_enc), npy_free(&want_prompt);
    cJSON_Delete(meta);
    *prompt_rows = s;
    return prompt;
}

static void check_encoder(const char *name)
{
    golden g = golden_open(name);
    int64_t rows;
    float *prompt = encode_on_gpu(&g, name, &rows);
    g.gpu->free(g.gpu, prompt);
    golden_close(&g);
}

/* Forced decoding from the oracle's prompt: log-probs at every step (steplogprobs.npy). */
static void check_forced(const char *name)
{
    golden g = golden_open(name);
    mtla_error err = {0};
    mtla_decoder *dec;
    mtla_decoder_state *state;
    cr_assert_eq(mtla_decoder_create(g.gpu, g.weights, &g.dir->config, &dec, &err), MTLA_OK, "%s",
                 err.message);
    cr_assert_eq(mtla_decoder_state_create(dec, &state, &err), MTLA_OK);
    npy_array prompt = golden_npy(g.path, "prompt.npy");
    npy_array want = golden_npy(g.path, "steplogprobs.npy");
    cJSON *meta = golden_json(g.path, "meta.json");
    cJSON *inputs = cJSON_GetObjectItem(meta, "decoder_inputs");
    int n = cJSON_GetArraySize(inputs);
    int32_t V = g.dir->config.vocab.size;
    cr_assert_eq(want.rows, (size_t)n);
    cr_assert_eq(want.cols, (size_t)V);

    float *dprompt = to_gpu(g.gpu, prompt.data, prompt.rows * prompt.cols);
    float *lp = malloc((size_t)V * sizeof *lp);
    cr_assert(lp);
    cr_assert_eq(mtla_decoder_start(state, dprompt, (int64_t)prompt.rows, 1, n, lp, &err), MTLA_OK,
                 "%s", err.message);
    double worst = max_abs_diff(lp, want.data, (size_t)V);
    cr_expect_leq(worst, GOLDEN_TOLERANCE, "%s: start log-probs differ by %g", name, worst);
    for (int j = 1; j < n; j++) {
        int32_t token = (int32_t)cJSON_GetArrayItem(inputs, j)->valuedouble;
        cr_assert_eq(mtla_decoder_step(state, &token, lp, &err), MTLA_OK, "%s", err.message);
        double d = max_abs_diff(lp, want.data + (size_t)j * V, (size_t)V);
        cr_expect_leq(d, GOLDEN_TOLERANCE, "%s: step %d log-probs differ by %g", name, j, d);
        worst = d > worst ? d : worst;
    }
    cr_log_info("%s forced decoding on CUDA: max |ours - oracle| = %.2e", name, worst);

    free(lp);
    g.gpu->free(g.gpu, dprompt);
    mtla_decoder_state_free(state);
    mtla_decoder_free(dec);
    npy_free(&prompt), npy_free(&want);
    cJSON_Delete(meta);
    golden_close(&g);
}

/* Beam search on the GPU: from the oracle's prompt, or (from_features) from the prompt the
 * GPU encoder makes of the features; every finalised hypothesis against beam.json. */
static void check_beam(const char *name, int beam, int from_features)
{
    golden g = golden_open(name);
    cJSON *beams = golden_json(g.path, "beam.json");
    char key[16];
    snprintf(key, sizeof key, "%d", beam);
    cJSON *want = cJSON_GetObjectItem(cJSON_GetObjectItem(beams, "beams"), key);
    cr_assert(want, "%s: beam.json has no beam %d", name, beam);
    mtla_beam_params p = {
        .beam = beam,
        .max_len = (int32_t)cJSON_GetObjectItem(beams, "max_len")->valuedouble,
        .min_len = (int32_t)cJSON_GetObjectItem(beams, "min_len")->valuedouble,
        .lenpen = (float)cJSON_GetObjectItem(beams, "lenpen")->valuedouble,
    };

    int64_t rows;
    float *dprompt;
    if (from_features) {
        dprompt = encode_on_gpu(&g, name, &rows);
    } else {
        npy_array prompt = golden_npy(g.path, "prompt.npy");
        dprompt = to_gpu(g.gpu, prompt.data, prompt.rows * prompt.cols);
        rows = (int64_t)prompt.rows;
        npy_free(&prompt);
    }
    mtla_error err = {0};
    mtla_decoder *dec;
    mtla_decoder_state *state;
    cr_assert_eq(mtla_decoder_create(g.gpu, g.weights, &g.dir->config, &dec, &err), MTLA_OK, "%s",
                 err.message);
    cr_assert_eq(mtla_decoder_state_create(dec, &state, &err), MTLA_OK);
    mtla_beam_result res;
    cr_assert_eq(mtla_beam_search(state, dprompt, rows, &p, &res, &err), MTLA_OK, "%s",
                 err.message);

    char what[128];
    snprintf(what, sizeof what, "%s beam %d%s", name, beam, from_features ? " from features" : "");
    cJSON *finalized = cJSON_GetObjectItem(want, "finalized");
    cr_assert_eq(res.count, cJSON_GetArraySize(finalized), "%s: %d finalised, oracle %d", what,
                 (int)res.count, cJSON_GetArraySize(finalized));
    golden_expect_tokens(what, cJSON_GetObjectItem(want, "tokens"), res.hyps[0].tokens,
                  res.hyps[0].length);
    double score = cJSON_GetObjectItem(want, "score")->valuedouble;
    cr_expect_leq(fabs(res.hyps[0].score - score), GOLDEN_TOLERANCE, "%s: score %.6f, oracle %.6f",
                  what, res.hyps[0].score, score);
    for (int32_t i = 0; i < res.count; i++) {
        cJSON *h = cJSON_GetArrayItem(finalized, i);
        char hyp[160];
        snprintf(hyp, sizeof hyp, "%s finalised #%d", what, (int)i);
        golden_expect_tokens(hyp, cJSON_GetObjectItem(h, "tokens"), res.hyps[i].tokens,
                      res.hyps[i].length);
        double s = cJSON_GetObjectItem(h, "score")->valuedouble;
        cr_expect_leq(fabs(res.hyps[i].score - s), GOLDEN_TOLERANCE, "%s: score %.6f, oracle %.6f",
                      hyp, res.hyps[i].score, s);
    }
    cr_log_info("%s on CUDA: %d tokens, score %.5f (oracle %.5f)", what, (int)res.hyps[0].length,
                res.hyps[0].score, score);

    mtla_beam_result_free(&res);
    mtla_decoder_state_free(state);
    mtla_decoder_free(dec);
    g.gpu->free(g.gpu, dprompt);
    cJSON_Delete(beams);
    golden_close(&g);
}

#define GOLDEN_MODEL(name)                                                                         \
    Test(cuda_golden, name##_encoder)                                                              \
    {                                                                                              \
        check_encoder(#name);                                                                      \
    }                                                                                              \
    Test(cuda_golden, name##_forced_log_probs)                                                     \
    {                                                                                              \
        check_forced(#name);                                                                       \
    }                                                                                              \
    Test(cuda_golden, name##_beam_1)                                                               \
    {                                                                                              \
        check_beam(#name, 1, 0);                                                                   \
    }                                                                                              \
    Test(cuda_golden, name##_beam_5)                                                               \
    {                                                                                              \
        check_beam(#name, 5, 0);                                                                   \
    }                                                                                              \
    Test(cuda_golden, name##_beam_50)                                                              \
    {                                                                                              \
        check_beam(#name, 50, 0);                                                                  \
    }                                                                                              \
    Test(cuda_golden, name##_features_to_beam_5)                                                   \
    {                                                                                              \
        check_beam(#name, 5, 1);                                                                   \
    }

GOLDEN_MODEL(transformer_mtla_s2)
GOLDEN_MODEL(conformer_relpos_mtla_s3)
GOLDEN_MODEL(transformer_mtla_s2_even)
GOLDEN_MODEL(transformer_mtla_s1)
GOLDEN_MODEL(transformer_mla)
GOLDEN_MODEL(transformer_mha)
GOLDEN_MODEL(conformer_abs_gqa)
GOLDEN_MODEL(whisper_mtla_s2)
