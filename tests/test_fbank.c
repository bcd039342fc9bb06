/* Kaldi fbank: parity with torchaudio (golden fixtures from tools/make_frontend_fixtures.py),
 * chunking invariance, framing edge cases, parameter validation. */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_support.h"

/* The parity inputs: every rate the issue names, several containers and sample formats. */
static const char *const PARITY[][2] = {
    {"tests/data/frontend/clip_8000_s16.wav", "tests/golden/frontend/clip_8000_s16.npy"},
    {"tests/data/frontend/clip_16000_s16.wav", "tests/golden/frontend/clip_16000_s16.npy"},
    {"tests/data/frontend/clip_22050_stereo.flac", "tests/golden/frontend/clip_22050_stereo.npy"},
    {"tests/data/frontend/clip_44100_f32_extensible.wav",
     "tests/golden/frontend/clip_44100_f32_extensible.npy"},
    {"tests/data/frontend/clip_48000_s24_stereo.flac",
     "tests/golden/frontend/clip_48000_s24_stereo.npy"},
};

static float *features(const float *samples, size_t count, size_t *frames)
{
    mtla_fbank_params p = mtla_fbank_default_params();
    float *out = NULL;
    mtla_error err;
    cr_assert_eq(mtla_fbank_compute(&p, samples, count, &out, frames, &err), MTLA_OK, "%s",
                 err.message);
    return out;
}

Test(fbank, matches_torchaudio_at_every_rate)
{
    for (size_t c = 0; c < sizeof PARITY / sizeof PARITY[0]; c++) {
        size_t count, frames;
        float *samples = load_audio(fixture(PARITY[c][0]), &count);
        float *ours = features(samples, count, &frames);
        npy_array golden = npy_load(fixture(PARITY[c][1]));
        cr_assert_eq(golden.cols, 80);
        cr_assert_eq(frames, golden.rows, "%s: %zu frames, torchaudio has %zu", PARITY[c][0],
                     frames, golden.rows);
        double diff = max_abs_diff(ours, golden.data, frames * 80);
        cr_expect_leq(diff, 1e-3, "%s: max |ours - torchaudio| = %g", PARITY[c][0], diff);
        npy_free(&golden);
        free(ours);
        free(samples);
    }
}

/* Feeds `samples` in chunks of the given sizes (cycled) and returns every frame. */
static float *features_chunked(const float *samples, size_t count, const size_t *sizes,
                               size_t num_sizes, size_t *frames)
{
    mtla_fbank *f;
    mtla_error err;
    cr_assert_eq(mtla_fbank_create(NULL, &f, &err), MTLA_OK);
    float *out = malloc((count / 160 + 2) * 80 * sizeof(float));
    size_t n = 0, pos = 0, k = 0;
    while (pos < count) {
        size_t chunk = sizes[k++ % num_sizes];
        if (chunk > count - pos)
            chunk = count - pos;
        cr_assert_eq(mtla_fbank_accept(f, samples + pos, chunk, &err), MTLA_OK);
        pos += chunk;
        /* Take frames at irregular moments too. */
        if (k % 3 == 0)
            n += mtla_fbank_take(f, out + n * 80, mtla_fbank_frames_ready(f));
    }
    n += mtla_fbank_take(f, out + n * 80, mtla_fbank_frames_ready(f));
    mtla_fbank_free(f);
    *frames = n;
    return out;
}

Test(fbank, chunked_input_gives_identical_frames)
{
    size_t count, whole_frames;
    float *samples =
        load_audio(fixture("tests/data/frontend/clip_44100_f32_extensible.wav"), &count);
    float *whole = features(samples, count, &whole_frames);
    static const size_t patterns[][5] = {{1},   {7},   {159}, {160},  {161},
                                         {399}, {400}, {401}, {4096}, {3, 1000, 1, 577, 160}};
    static const size_t lengths[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 5};
    for (size_t p = 0; p < sizeof lengths / sizeof lengths[0]; p++) {
        size_t frames;
        float *chunked = features_chunked(samples, count, patterns[p], lengths[p], &frames);
        cr_assert_eq(frames, whole_frames, "pattern %zu: %zu frames vs %zu", p, frames,
                     whole_frames);
        cr_assert(memcmp(chunked, whole, frames * 80 * sizeof(float)) == 0,
                  "pattern %zu: frames differ from whole-input frames", p);
        free(chunked);
    }
    /* Pseudo-random chunk sizes. */
    size_t sizes[64];
    unsigned state = 12345;
    for (size_t i = 0; i < 64; i++) {
        state = state * 1103515245u + 12345u;
        sizes[i] = 1 + (state >> 16) % 2000;
    }
    size_t frames;
    float *chunked = features_chunked(samples, count, sizes, 64, &frames);
    cr_assert_eq(frames, whole_frames);
    cr_assert(memcmp(chunked, whole, frames * 80 * sizeof(float)) == 0);
    free(chunked);
    free(whole);
    free(samples);
}

Test(fbank, frame_count_follows_snip_edges)
{
    /* frames = 1 + (N - 400) / 160 for N >= 400, else 0. */
    static const size_t lengths[] = {0, 1, 399, 400, 559, 560, 16000};
    static const size_t expected[] = {0, 0, 0, 1, 1, 2, 98};
    float *noise = malloc(16000 * sizeof(float));
    for (size_t i = 0; i < 16000; i++)
        noise[i] = (float)sin((double)i * 0.37) * 0.1f;
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        size_t frames;
        float *out = features(noise, lengths[i], &frames);
        cr_expect_eq(frames, expected[i], "%zu samples: %zu frames", lengths[i], frames);
        free(out);
    }
    free(noise);
}

Test(fbank, digital_silence_hits_the_energy_floor)
{
    float zeros[1200] = {0};
    size_t frames;
    float *out = features(zeros, 1200, &frames);
    cr_assert_eq(frames, 6);
    for (size_t i = 0; i < frames * 80; i++)
        cr_assert_float_eq(out[i], logf(FLT_EPSILON), 1e-6);
    free(out);
}

Test(fbank, reset_starts_a_new_utterance)
{
    size_t count, frames;
    float *samples = load_audio(fixture("tests/data/frontend/clip_16000_s16.wav"), &count);
    float *whole = features(samples, count, &frames);
    mtla_fbank *f;
    cr_assert_eq(mtla_fbank_create(NULL, &f, NULL), MTLA_OK);
    cr_assert_eq(mtla_fbank_accept(f, samples + 1234, 5000, NULL), MTLA_OK);
    mtla_fbank_reset(f);
    cr_assert_eq(mtla_fbank_frames_ready(f), 0);
    cr_assert_eq(mtla_fbank_accept(f, samples, count, NULL), MTLA_OK);
    float *again = malloc(frames * 80 * sizeof(float));
    cr_assert_eq(mtla_fbank_take(f, again, frames + 10), frames);
    cr_assert(memcmp(again, whole, frames * 80 * sizeof(float)) == 0);
    mtla_fbank_free(f);
    free(again);
    free(whole);
    free(samples);
}

Test(fbank, invalid_parameters_are_named)
{
    mtla_fbank_params p;
    mtla_fbank *f = NULL;
    mtla_error err;

    p = mtla_fbank_default_params();
    p.sample_rate = 0;
    cr_expect_eq(mtla_fbank_create(&p, &f, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "sample_rate"), "%s", err.message);

    p = mtla_fbank_default_params();
    p.frame_shift_ms = 0.0f;
    cr_expect_eq(mtla_fbank_create(&p, &f, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "frame_shift_ms"), "%s", err.message);

    p = mtla_fbank_default_params();
    p.high_freq = 9000.0f;
    cr_expect_eq(mtla_fbank_create(&p, &f, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "Nyquist"), "%s", err.message);

    p = mtla_fbank_default_params();
    p.num_mel_bins = 300;
    cr_expect_eq(mtla_fbank_create(&p, &f, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "mel bins"), "%s", err.message);

    p = mtla_fbank_default_params();
    p.input_scale = NAN;
    cr_expect_eq(mtla_fbank_create(&p, &f, &err), MTLA_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(err.message, "input_scale"), "%s", err.message);
    cr_expect_null(f);
}
