/* The Whisper path: the log-mel frontend (frontend/whisper_mel.c) against openai-whisper's
 * whisper.audio.log_mel_spectrogram, the Whisper encoder (encoder/whisper.c) against
 * CTranslate2's Whisper.encode on a random-weight CTranslate2 model converted by
 * tools/convert_ctranslate2_whisper.py, the config rules of frontend/encoder "whisper", and
 * the CLI on audio files. Fixtures: tools/golden/make_whisper_golden.py (tests/golden/
 * whisper_frontend, tests/golden/models/whisper_mtla_s2). */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/model_dir.h"
#include "core/ops.h"
#include "core/weights.h"
#include "encoder/encoder.h"
#include "golden.h"
#include "test_support.h"

#define FRONTEND_TOLERANCE 1e-4 /* log-mel units; float32 whisper vs our double */
#define CT2_TOLERANCE 1e-3      /* encoder output vs CTranslate2 */
#define MODEL "tests/golden/models/whisper_mtla_s2"

#define ARGS(...) ((const char *const[]){"mtla-st", __VA_ARGS__, NULL})

/* ---------------------------------------------------------------- frontend */

static void check_clip(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/whisper_frontend/%s.wav", name);
    size_t count = 0;
    float *samples = load_audio(fixture(rel), &count);
    snprintf(rel, sizeof rel, "tests/golden/whisper_frontend/%s.npy", name);
    npy_array want = npy_load(fixture(rel));
    cr_assert_eq(want.cols, 80);
    cr_assert_eq(mtla_whisper_mel_frames(count), want.rows, "%s: %zu frames, whisper %zu", name,
                 mtla_whisper_mel_frames(count), want.rows);

    mtla_whisper_mel *mel;
    mtla_error err = {0};
    cr_assert_eq(mtla_whisper_mel_create(80, &mel, &err), MTLA_OK, "%s", err.message);
    float *got = malloc(want.rows * want.cols * sizeof(float));
    cr_assert(got);
    mtla_whisper_mel_compute(mel, samples, count, got);
    double d = max_abs_diff(got, want.data, want.rows * want.cols);
    cr_log_info("%s: %zu samples, %zu frames, max abs diff %.3g", name, count, want.rows, d);
    cr_expect_leq(d, FRONTEND_TOLERANCE, "%s: log-mel differs from whisper by %g", name, d);

    /* the same context again gives the same values (no state carried between inputs) */
    mtla_whisper_mel_compute(mel, samples, count, got);
    cr_expect_leq(max_abs_diff(got, want.data, want.rows * want.cols), d);
    mtla_whisper_mel_free(mel);
    free(got);
    free(samples);
    npy_free(&want);
}

Test(whisper_mel, speech_clips_match_whisper)
{
    check_clip("clip_0870_1s5");
    check_clip("clip_0920_2s5");
}

Test(whisper_mel, a_clip_shorter_than_one_window_matches_whisper)
{
    check_clip("synthetic_300");
}

Test(whisper_mel, bins_and_short_inputs)
{
    mtla_whisper_mel *mel = NULL;
    mtla_error err = {0};
    cr_expect_neq(mtla_whisper_mel_create(81, &mel, &err), MTLA_OK);
    cr_expect(strstr(err.message, "80 or 128"), "%s", err.message);
    cr_assert_eq(mtla_whisper_mel_create(128, &mel, &err), MTLA_OK, "%s", err.message);
    cr_expect_eq(mtla_whisper_mel_num_bins(mel), 128);
    cr_expect_eq(mtla_whisper_mel_frames(159), 0);
    cr_expect_eq(mtla_whisper_mel_frames(160), 1);
    /* 160 samples: one frame, read through zero extension and reflection */
    float x[160], y[128];
    for (int i = 0; i < 160; i++)
        x[i] = (float)((i % 7) - 3) * 0.01f;
    mtla_whisper_mel_compute(mel, x, 160, y);
    for (int i = 0; i < 128; i++)
        cr_expect(y[i] >= -1.0f && y[i] <= 2.0f, "bin %d = %g", i, y[i]);
    mtla_whisper_mel_free(mel);
}

/* ---------------------------------------------------------------- encoder */

typedef struct whisper_golden {
    mtla_model_dir *dir;
    mtla_ops *cpu;
    mtla_weights *weights;
    mtla_encoder *enc;
} whisper_golden;

static whisper_golden open_golden(void)
{
    whisper_golden g;
    mtla_error err = {0};
    cr_assert_eq(mtla_model_dir_open(fixture(MODEL), &g.dir, &err), MTLA_OK, "%s", err.message);
    g.cpu = mtla_ops_cpu_create(1);
    cr_assert(g.cpu);
    cr_assert_eq(mtla_weights_create(g.cpu, g.dir, &g.weights, &err), MTLA_OK, "%s", err.message);
    cr_assert_eq(mtla_encoder_create(g.cpu, g.weights, &g.dir->config, &g.enc, &err), MTLA_OK, "%s",
                 err.message);
    return g;
}

static void close_golden(whisper_golden *g)
{
    mtla_encoder_free(g->enc);
    mtla_weights_free(g->weights);
    mtla_ops_cpu_free(g->cpu);
    mtla_model_dir_close(g->dir);
}

Test(whisper_encoder, matches_ctranslate2)
{
    whisper_golden g = open_golden();
    cJSON *meta = golden_json(fixture(MODEL), "meta.json");
    npy_array feats = golden_features(g.dir, meta);
    npy_array want = golden_npy(fixture(MODEL), "encoder_out_ctranslate2.npy");
    int64_t s = mtla_encoder_output_frames(g.enc, (int64_t)feats.rows);
    cr_assert_eq(s, (int64_t)want.rows);
    cr_assert_eq((size_t)mtla_encoder_dim(g.enc), want.cols);
    float *out = malloc(want.rows * want.cols * sizeof(float));
    cr_assert(out);
    mtla_error err = {0};
    cr_assert_eq(mtla_encoder_forward(g.enc, feats.data, (int64_t)feats.rows, out, &err), MTLA_OK,
                 "%s", err.message);
    double d = max_abs_diff(out, want.data, want.rows * want.cols);
    cr_log_info("whisper encoder vs CTranslate2: %zu frames, max abs diff %.3g", want.rows, d);
    cr_expect_leq(d, CT2_TOLERANCE, "encoder output differs from CTranslate2 by %g", d);
    free(out);
    npy_free(&want);
    npy_free(&feats);
    cJSON_Delete(meta);
    close_golden(&g);
}

Test(whisper_encoder, output_frames_and_the_position_limit)
{
    whisper_golden g = open_golden();
    int32_t p = g.dir->config.encoder.max_positions;
    cr_expect_eq(mtla_encoder_output_frames(g.enc, 1), 1);
    cr_expect_eq(mtla_encoder_output_frames(g.enc, 2), 1);
    cr_expect_eq(mtla_encoder_output_frames(g.enc, 3), 2);
    cr_expect_eq(mtla_encoder_output_frames(g.enc, 2 * (int64_t)p), p);
    cr_expect_eq(mtla_model_config_max_frames(&g.dir->config), 2 * (int64_t)p);

    size_t frames = 2 * (size_t)p + 1, bins = 80;
    float *x = calloc(frames * bins, sizeof(float));
    float *out = malloc(((size_t)p + 1) * (size_t)mtla_encoder_dim(g.enc) * sizeof(float));
    cr_assert(x && out);
    mtla_error err = {0};
    cr_expect_eq(mtla_encoder_forward(g.enc, x, (int64_t)frames - 1, out, &err), MTLA_OK, "%s",
                 err.message);
    cr_expect_eq(mtla_encoder_forward(g.enc, x, (int64_t)frames, out, &err),
                 MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "positions"), "%s", err.message);
    free(x);
    free(out);
    close_golden(&g);
}

/* ---------------------------------------------------------------- config */

/* The golden model's config.json with `edit` applied, parsed; returns the status. */
static mtla_status parse_edited(void (*edit)(cJSON *root), mtla_error *err)
{
    size_t size;
    char rel[256];
    snprintf(rel, sizeof rel, "%s/config.json", MODEL);
    unsigned char *text = read_file(fixture(rel), &size);
    cJSON *root = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    cr_assert(root);
    edit(root);
    char *out = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    mtla_model_config c;
    mtla_status st = mtla_model_config_parse(out, strlen(out), &c, err);
    free(out);
    return st;
}

static cJSON *section(cJSON *root, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(root, name);
}

static void no_edit(cJSON *r)
{
    (void)r;
}
static void kaldi_key(cJSON *r)
{
    cJSON_AddNumberToObject(section(r, "frontend"), "preemphasis", 0.97);
}
static void bins_81(cJSON *r)
{
    cJSON_ReplaceItemInObject(section(r, "frontend"), "num_mel_bins", cJSON_CreateNumber(81));
}
static void hop_200(cJSON *r)
{
    cJSON_ReplaceItemInObject(section(r, "frontend"), "hop_length", cJSON_CreateNumber(200));
}
static void cmvn_utterance(cJSON *r)
{
    cJSON_ReplaceItemInObject(section(r, "frontend"), "cmvn", cJSON_CreateString("utterance"));
}
static void subsampler_key(cJSON *r)
{
    cJSON_AddObjectToObject(section(r, "encoder"), "subsampler");
}
static void no_positions(cJSON *r)
{
    cJSON_DeleteItemFromObject(section(r, "encoder"), "max_positions");
}
static void zero_positions(cJSON *r)
{
    cJSON_ReplaceItemInObject(section(r, "encoder"), "max_positions", cJSON_CreateNumber(0));
}
static void bad_type(cJSON *r)
{
    cJSON_ReplaceItemInObject(section(r, "frontend"), "type", cJSON_CreateString("mfcc"));
}

Test(whisper_config, every_rule_names_its_field)
{
    mtla_error err = {0};
    cr_assert_eq(parse_edited(no_edit, &err), MTLA_OK, "%s", err.message);
    struct {
        void (*edit)(cJSON *);
        const char *field;
    } cases[] = {
        {kaldi_key, "frontend.preemphasis does not apply to type \"whisper\""},
        {bins_81, "frontend.num_mel_bins must be 80 or 128"},
        {hop_200, "frontend.hop_length must be 160"},
        {cmvn_utterance, "frontend.cmvn must be \"none\""},
        {subsampler_key, "encoder.subsampler does not apply to type \"whisper\""},
        {no_positions, "encoder.max_positions is missing"},
        {zero_positions, "encoder.max_positions must be an integer"},
        {bad_type, "frontend.type must be one of"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_expect_eq(parse_edited(cases[i].edit, &err), MTLA_ERR_FORMAT, "case %zu", i);
        cr_expect(strstr(err.message, cases[i].field), "case %zu: %s", i, err.message);
    }
}

/* A Kaldi frontend in front of a Whisper encoder is refused; the Kaldi keys are back. */
static void kaldi_frontend(cJSON *r)
{
    cJSON *fe = cJSON_Parse("{\"sample_rate\": 16000, \"num_mel_bins\": 80, "
                            "\"frame_length_ms\": 25.0, \"frame_shift_ms\": 10.0, \"dither\": 0.0, "
                            "\"preemphasis\": 0.97, \"remove_dc_offset\": true, \"window\": "
                            "\"povey\", \"snip_edges\": true, \"low_freq\": 20.0, \"high_freq\": "
                            "0.0, \"input_scale\": 32768.0, \"cmvn\": \"none\"}");
    cJSON_ReplaceItemInObject(r, "frontend", fe);
}

Test(whisper_config, the_whisper_encoder_needs_the_whisper_frontend)
{
    mtla_error err = {0};
    cr_expect_eq(parse_edited(kaldi_frontend, &err), MTLA_ERR_FORMAT);
    cr_expect(strstr(err.message, "needs frontend.type \"whisper\""), "%s", err.message);
}

/* ---------------------------------------------------------------- CLI */

static char *oracle_tokens(int beam)
{
    cJSON *b = golden_json(fixture(MODEL), "beam.json");
    char key[8];
    snprintf(key, sizeof key, "%d", beam);
    cJSON *best = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "beams"), key);
    cr_assert(best);
    char *line = calloc(1, 8192);
    cr_assert(line);
    size_t n = 0;
    cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItem(best, "tokens")) n +=
        (size_t)snprintf(line + n, 8192 - n, n ? " %d" : "%d", (int)t->valuedouble);
    snprintf(line + n, 8192 - n, "\n");
    cJSON_Delete(b);
    return line;
}

Test(whisper_cli, an_audio_file_gives_the_oracle_tokens)
{
    char *want = oracle_tokens(5);
    cli_result r = run_cli(ARGS("--model", fixture(MODEL), "--print-tokens",
                                fixture("tests/golden/whisper_frontend/clip_0920_2s5.wav")),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq((char *)r.out, want);
    cli_result_free(&r);
    free(want);
}

Test(whisper_cli, features_are_the_whisper_log_mel)
{
    char *dir = make_temp_dir();
    char *out = path_join(dir, "f.npy");
    cli_result r =
        run_cli(ARGS("features", "--model", fixture(MODEL),
                     fixture("tests/golden/whisper_frontend/clip_0870_1s5.wav"), "-o", out),
                NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    npy_array got = npy_load(out);
    npy_array want = npy_load(fixture("tests/golden/whisper_frontend/clip_0870_1s5.npy"));
    cr_assert_eq(got.rows, want.rows);
    cr_assert_eq(got.cols, want.cols);
    cr_expect_leq(max_abs_diff(got.data, want.data, got.rows * got.cols), FRONTEND_TOLERANCE);
    npy_free(&got);
    npy_free(&want);
    cli_result_free(&r);
    remove(out);
    remove(dir);
    free(out);
    free(dir);
}

/* The golden encoder has 320 positions (6.4 s); the 7.1 s file is cut at a pause instead of
 * reaching the encoder whole, and every piece is translated. */
Test(whisper_cli, inputs_longer_than_the_encoder_accepts_are_cut)
{
    const char *wav = fixture("samples/audio/sense_and_sensibility_01_austen_64kb-0870.wav");
    cli_result r = run_cli(ARGS("--model", fixture(MODEL), "--segment", "--verbose", wav), NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "longer than") == NULL, "%s", r.err);
    cli_result_free(&r);
    r = run_cli(ARGS("--model", fixture(MODEL), wav), NULL, 0);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cli_result_free(&r);
    /* --print-tokens translates whole inputs: refused by the encoder's limit, with a message */
    r = run_cli(ARGS("--model", fixture(MODEL), "--print-tokens", wav), NULL, 0);
    cr_expect_neq(r.status, 0);
    cr_expect(strstr(r.err, "longer than"), "%s", r.err);
    cli_result_free(&r);
}
