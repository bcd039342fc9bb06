/* The encoder and projector (encoder/encoder.h) against the PyTorch oracle: for each golden
 * model under tests/golden/models/ (tools/golden/make_golden.py, which runs
 * tools/reference/encoder.py), real fbank features -> CMVN as the model says -> encoder ->
 * projector on the CPU backend, compared with fixtures/encoder_out.npy and prompt.npy.
 * MTLA_GOLDEN_MODELS may name another directory of golden models (e.g. freshly generated). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "encoder/encoder.h"
#include "golden.h"
#include "test_support.h"

#define TOLERANCE 1e-4

/* An encoder over a golden model, on the single-threaded CPU backend. */
typedef struct golden {
    char path[4096];
    mtla_model_dir *dir;
    mtla_ops *cpu;
    const mtla_ops *ops; /* cpu, or a copy of its table posing as a device backend */
    mtla_ops device_like;
    mtla_weights *weights;
    mtla_encoder *enc;
} golden;

/* device_like: the CPU table with host_memory = 0, so that weights, derived weights and
 * position tables take the upload path that a device backend takes. */
static void golden_open_as(golden *g, const char *name, int device_like)
{
    const char *root = getenv("MTLA_GOLDEN_MODELS");
    snprintf(g->path, sizeof g->path, "%s/%s", root ? root : fixture("tests/golden/models"), name);
    mtla_error err = {0};
    cr_assert_eq(mtla_model_dir_open(g->path, &g->dir, &err), MTLA_OK, "%s: %s", g->path,
                 err.message);
    g->cpu = mtla_ops_cpu_create(1);
    cr_assert(g->cpu);
    g->device_like = *g->cpu;
    g->device_like.host_memory = 0;
    g->ops = device_like ? &g->device_like : g->cpu;
    cr_assert_eq(mtla_weights_create(g->ops, g->dir, &g->weights, &err), MTLA_OK, "%s",
                 err.message);
    cr_assert_eq(mtla_encoder_create(g->ops, g->weights, &g->dir->config, &g->enc, &err), MTLA_OK,
                 "%s: %s", name, err.message);
}

static void golden_open(golden *g, const char *name)
{
    golden_open_as(g, name, 0);
}

static void golden_close(golden *g)
{
    mtla_encoder_free(g->enc);
    mtla_weights_free(g->weights);
    mtla_ops_cpu_free(g->cpu);
    mtla_model_dir_close(g->dir);
}

static float *to_backend(const mtla_ops *ops, const float *host, size_t count)
{
    float *x = ops->alloc(ops, count);
    cr_assert(x);
    ops->upload(ops, x, host, count);
    return x;
}

/* The whole check for one model: encoder output and prompt within TOLERANCE. */
static void check_golden(const char *name)
{
    golden g;
    golden_open(&g, name);
    const mtla_ops *ops = g.ops;
    cJSON *meta = golden_json(g.path, "meta.json");
    npy_array feats = golden_features(g.dir, meta);
    npy_array want_enc = golden_npy(g.path, "encoder_out.npy");
    npy_array want_prompt = golden_npy(g.path, "prompt.npy");

    int64_t s_enc = mtla_encoder_output_frames(g.enc, (int64_t)feats.rows);
    cr_assert_eq(s_enc, (int64_t)want_enc.rows, "%s: %lld encoder frames, oracle %zu", name,
                 (long long)s_enc, want_enc.rows);
    cr_assert_eq((size_t)mtla_encoder_dim(g.enc), want_enc.cols);

    float *x = to_backend(ops, feats.data, feats.rows * feats.cols);
    float *enc_out = ops->alloc(ops, want_enc.rows * want_enc.cols);
    float *prompt = ops->alloc(ops, want_prompt.rows * want_prompt.cols);
    cr_assert(enc_out && prompt);
    mtla_error err = {0};
    cr_assert_eq(mtla_encoder_forward(g.enc, x, (int64_t)feats.rows, enc_out, &err), MTLA_OK,
                 "%s: %s", name, err.message);
    int64_t s = 0;
    cr_assert_eq(mtla_encoder_project(g.enc, enc_out, s_enc, prompt, &s, &err), MTLA_OK, "%s: %s",
                 name, err.message);
    cr_assert_eq(s, (int64_t)want_prompt.rows);
    cr_assert_eq(mtla_encoder_prompt_frames(g.enc, s_enc), s);

    float *got_enc = malloc(want_enc.rows * want_enc.cols * sizeof(float));
    float *got_prompt = malloc(want_prompt.rows * want_prompt.cols * sizeof(float));
    cr_assert(got_enc && got_prompt);
    ops->download(ops, got_enc, enc_out, want_enc.rows * want_enc.cols);
    ops->download(ops, got_prompt, prompt, want_prompt.rows * want_prompt.cols);
    double d_enc = max_abs_diff(got_enc, want_enc.data, want_enc.rows * want_enc.cols);
    double d_prompt =
        max_abs_diff(got_prompt, want_prompt.data, want_prompt.rows * want_prompt.cols);
    cr_log_info("%s: encoder_out max abs diff %.3g, prompt %.3g", name, d_enc, d_prompt);
    cr_expect_leq(d_enc, TOLERANCE, "%s: encoder_out differs from the oracle by %g", name, d_enc);
    cr_expect_leq(d_prompt, TOLERANCE, "%s: prompt differs from the oracle by %g", name, d_prompt);

    free(got_enc);
    free(got_prompt);
    ops->free(ops, x);
    ops->free(ops, enc_out);
    ops->free(ops, prompt);
    npy_free(&feats);
    npy_free(&want_enc);
    npy_free(&want_prompt);
    cJSON_Delete(meta);
    golden_close(&g);
}

/* ---------------------------------------------------------------- parity, one per model */

Test(encoder, transformer_mtla_s2)
{
    check_golden("transformer_mtla_s2");
}
Test(encoder, transformer_mtla_s2_even)
{
    check_golden("transformer_mtla_s2_even");
}
Test(encoder, conformer_relpos_mtla_s3)
{
    check_golden("conformer_relpos_mtla_s3");
}
Test(encoder, transformer_mtla_s1)
{
    check_golden("transformer_mtla_s1");
}
Test(encoder, transformer_mla)
{
    check_golden("transformer_mla");
}
Test(encoder, transformer_mha)
{
    check_golden("transformer_mha");
}
Test(encoder, conformer_abs_gqa)
{
    check_golden("conformer_abs_gqa");
}

Test(encoder, whisper_mtla_s2)
{
    check_golden("whisper_mtla_s2");
}

/* ---------------------------------------------------------------- lengths and errors */

Test(encoder, output_frames_follow_the_subsampler)
{
    golden g;
    golden_open(&g, "transformer_mtla_s2"); /* two stride-2 layers */
    const int64_t in[] = {-3, 0, 1, 2, 3, 4, 5, 298, 299};
    const int64_t want[] = {0, 0, 1, 1, 1, 1, 2, 75, 75};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        cr_expect_eq(mtla_encoder_output_frames(g.enc, in[i]), want[i], "L = %lld",
                     (long long)in[i]);
    golden_close(&g);
}

Test(encoder, empty_input_is_an_error)
{
    golden g;
    golden_open(&g, "transformer_mtla_s2");
    float *x = g.ops->alloc(g.ops, 80);
    float *out = g.ops->alloc(g.ops, 48);
    cr_assert(x && out);
    mtla_error err = {0};
    cr_expect_eq(mtla_encoder_forward(g.enc, x, 0, out, &err), MTLA_ERR_EMPTY);
    cr_expect(strstr(err.message, "at least one feature frame"), "message: %s", err.message);
    cr_expect_eq(mtla_encoder_forward(g.enc, x, -1, out, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect_eq(mtla_encoder_forward(g.enc, NULL, 1, out, &err), MTLA_ERR_INVALID_ARGUMENT);
    g.ops->free(g.ops, x);
    g.ops->free(g.ops, out);
    golden_close(&g);
}

Test(encoder, one_frame_gives_one_output_frame)
{
    golden g;
    golden_open(&g, "conformer_relpos_mtla_s3");
    float *x = g.ops->alloc(g.ops, 80);
    float *out = g.ops->alloc(g.ops, 32);
    cr_assert(x && out);
    g.ops->fill(g.ops, x, 0.5f, 80);
    mtla_error err = {0};
    cr_assert_eq(mtla_encoder_forward(g.enc, x, 1, out, &err), MTLA_OK, "%s", err.message);
    for (int i = 0; i < 32; i++)
        cr_expect(isfinite(out[i]), "non-finite output %g", out[i]);
    g.ops->free(g.ops, x);
    g.ops->free(g.ops, out);
    golden_close(&g);
}

Test(encoder, fewer_encoder_frames_than_the_projector_stack_is_an_error)
{
    golden g;
    golden_open(&g, "conformer_relpos_mtla_s3"); /* projector_stack 2 */
    cr_assert_eq(g.dir->config.decoder.projector_stack, 2);
    float *enc_out = g.ops->alloc(g.ops, 3 * 32);
    float *prompt = g.ops->alloc(g.ops, 32);
    cr_assert(enc_out && prompt);
    g.ops->fill(g.ops, enc_out, 0.25f, 3 * 32);
    mtla_error err = {0};
    int64_t s = -1;
    cr_expect_eq(mtla_encoder_project(g.enc, enc_out, 1, prompt, &s, &err), MTLA_ERR_EMPTY);
    cr_expect_eq(s, 0);
    cr_expect(strstr(err.message, "stacks 2 encoder frames"), "message: %s", err.message);
    cr_expect_eq(mtla_encoder_project(g.enc, enc_out, 0, prompt, &s, &err), MTLA_ERR_EMPTY);
    /* 3 frames: one prompt row, the third frame dropped */
    cr_expect_eq(mtla_encoder_project(g.enc, enc_out, 3, prompt, &s, &err), MTLA_OK, "%s",
                 err.message);
    cr_expect_eq(s, 1);
    g.ops->free(g.ops, enc_out);
    g.ops->free(g.ops, prompt);
    golden_close(&g);
}

/* The workspace grows and is reused: a long input after a short one (and the short one
 * again) gives the same values as a fresh encoder. */
Test(encoder, workspace_reuse_does_not_change_results)
{
    golden g;
    golden_open(&g, "conformer_relpos_mtla_s3");
    const mtla_ops *ops = g.ops;
    npy_array f = npy_load(fixture("tests/golden/frontend/clip_16000_s16.npy"));
    mtla_cmvn_utterance(f.data, f.rows, (int32_t)f.cols);
    const int64_t lengths[] = {37, (int64_t)f.rows, 37};
    float *x = to_backend(ops, f.data, f.rows * f.cols);
    float *first[3];
    mtla_error err = {0};
    for (int i = 0; i < 3; i++) {
        int64_t s = mtla_encoder_output_frames(g.enc, lengths[i]);
        first[i] = ops->alloc(ops, (size_t)s * 32);
        cr_assert(first[i]);
        cr_assert_eq(mtla_encoder_forward(g.enc, x, lengths[i], first[i], &err), MTLA_OK, "%s",
                     err.message);
    }
    size_t short_count = (size_t)mtla_encoder_output_frames(g.enc, 37) * 32;
    cr_expect(memcmp(first[0], first[2], short_count * sizeof(float)) == 0);

    mtla_encoder *fresh;
    cr_assert_eq(mtla_encoder_create(ops, g.weights, &g.dir->config, &fresh, &err), MTLA_OK);
    int64_t s = mtla_encoder_output_frames(fresh, lengths[1]);
    float *again = ops->alloc(ops, (size_t)s * 32);
    cr_assert(again);
    cr_assert_eq(mtla_encoder_forward(fresh, x, lengths[1], again, &err), MTLA_OK);
    cr_expect(memcmp(first[1], again, (size_t)s * 32 * sizeof(float)) == 0);

    mtla_encoder_free(fresh);
    ops->free(ops, again);
    for (int i = 0; i < 3; i++)
        ops->free(ops, first[i]);
    ops->free(ops, x);
    npy_free(&f);
    golden_close(&g);
}

/* A backend whose memory is not the host's gets the same numbers, bit for bit: folded
 * BatchNorm weights and position tables reach it through ops->upload. */
static float *encode_clip(const char *name, int device_like, size_t *count)
{
    golden g;
    golden_open_as(&g, name, device_like);
    npy_array f = npy_load(fixture("tests/golden/frontend/clip_16000_s16.npy"));
    mtla_cmvn_utterance(f.data, f.rows, (int32_t)f.cols);
    float *x = to_backend(g.ops, f.data, f.rows * f.cols);
    *count = (size_t)mtla_encoder_output_frames(g.enc, (int64_t)f.rows) *
             (size_t)mtla_encoder_dim(g.enc);
    float *out = g.ops->alloc(g.ops, *count);
    float *host = malloc(*count * sizeof(float));
    cr_assert(out && host);
    mtla_error err = {0};
    cr_assert_eq(mtla_encoder_forward(g.enc, x, (int64_t)f.rows, out, &err), MTLA_OK, "%s",
                 err.message);
    g.ops->download(g.ops, host, out, *count);
    g.ops->free(g.ops, out);
    g.ops->free(g.ops, x);
    npy_free(&f);
    golden_close(&g);
    return host;
}

Test(encoder, device_memory_path_matches_host_path)
{
    const char *models[] = {"transformer_mtla_s2", "conformer_relpos_mtla_s3", "conformer_abs_gqa"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        size_t n_host, n_device;
        float *host = encode_clip(models[i], 0, &n_host);
        float *device = encode_clip(models[i], 1, &n_device);
        cr_assert_eq(n_host, n_device);
        cr_expect(memcmp(host, device, n_host * sizeof(float)) == 0, "%s", models[i]);
        free(host);
        free(device);
    }
}
