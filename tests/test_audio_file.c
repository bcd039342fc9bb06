/* Audio files through libsndfile: containers, sample formats, rates, channel mixing, and bad
 * files of every kind getting a clear status and message. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

static void expect_properties(const char *relative, int32_t rate, int32_t channels, double seconds)
{
    mtla_audio *a;
    mtla_error err;
    cr_assert_eq(mtla_audio_open_file(fixture(relative), 16000, &a, &err), MTLA_OK, "%s: %s",
                 relative, err.message);
    cr_expect_eq(mtla_audio_input_rate(a), rate, "%s", relative);
    cr_expect_eq(mtla_audio_input_channels(a), channels, "%s", relative);
    cr_expect(fabs(mtla_audio_duration(a) - seconds) < 0.01, "%s: duration %g", relative,
              mtla_audio_duration(a));
    mtla_audio_close(a);
}

Test(audio_file, reports_rate_channels_and_duration)
{
    expect_properties("tests/data/frontend/clip_8000_s16.wav", 8000, 1, 3.0);
    expect_properties("tests/data/frontend/clip_22050_stereo.flac", 22050, 2, 2.0);
    expect_properties("tests/data/frontend/clip_44100_f32_extensible.wav", 44100, 1, 2.0);
    expect_properties("tests/data/frontend/clip_48000_s24_stereo.flac", 48000, 2, 2.0);
}

Test(audio_file, resamples_to_the_requested_rate)
{
    /* 23920 samples at 8 kHz (2.99 s) and 96000 at 48 kHz (2 s). */
    size_t n8, n48;
    float *a = load_audio(fixture("tests/data/frontend/clip_8000_s16.wav"), &n8);
    float *b = load_audio(fixture("tests/data/frontend/clip_48000_s24_stereo.flac"), &n48);
    cr_expect_eq(n8, 47840, "2.99 s at 8 kHz gave %zu samples at 16 kHz", n8);
    cr_expect_eq(n48, 32000, "2 s at 48 kHz gave %zu samples at 16 kHz", n48);
    free(a);
    free(b);
}

/* Mean of log-mel energy per frame: a loudness envelope that survives lossy coding. */
static double *envelope(const char *relative, size_t *frames)
{
    size_t count;
    float *samples = load_audio(fixture(relative), &count);
    float *feats;
    mtla_fbank_params p = mtla_fbank_default_params();
    cr_assert_eq(mtla_fbank_compute(&p, samples, count, &feats, frames, NULL), MTLA_OK);
    double *env = malloc(*frames * sizeof(double));
    for (size_t t = 0; t < *frames; t++) {
        double sum = 0.0;
        for (int d = 0; d < 80; d++)
            sum += feats[t * 80 + (size_t)d];
        env[t] = sum / 80.0;
    }
    free(feats);
    free(samples);
    return env;
}

/* Best correlation of two envelopes over lags of up to +-10 frames (codec delays). */
static double best_correlation(const double *a, size_t na, const double *b, size_t nb)
{
    double best = -1.0;
    for (int lag = -10; lag <= 10; lag++) {
        double sa = 0, sb = 0, sab = 0, saa = 0, sbb = 0;
        size_t n = 0;
        for (size_t i = 0; i < na; i++) {
            long j = (long)i + lag;
            if (j < 0 || (size_t)j >= nb)
                continue;
            sa += a[i], sb += b[j], sab += a[i] * b[j], saa += a[i] * a[i], sbb += b[j] * b[j];
            n++;
        }
        double cov = sab - sa * sb / n, va = saa - sa * sa / n, vb = sbb - sb * sb / n;
        double r = cov / sqrt(va * vb);
        if (r > best)
            best = r;
    }
    return best;
}

Test(audio_file, decodes_lossless_sample_formats_exactly)
{
    /* The reference is 16-bit; each file holds the same signal in another sample format, so
     * they may differ by the coarser format's quantisation step. */
    static const struct {
        const char *file;
        double step;
    } cases[] = {
        {"tests/data/frontend/clip_u8.wav", 1.0 / 128.0},
        {"tests/data/frontend/clip_f64.wav", 1.0 / 32768.0},
    };
    size_t ref_count;
    float *ref = load_audio(fixture("tests/data/frontend/clip_reference_16000.wav"), &ref_count);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t count;
        float *x = load_audio(fixture(cases[i].file), &count);
        cr_assert_eq(count, ref_count, "%s", cases[i].file);
        double diff = max_abs_diff(x, ref, count);
        cr_expect_leq(diff, cases[i].step, "%s: differs by %g", cases[i].file, diff);
        free(x);
    }
    free(ref);
}

Test(audio_file, decodes_lossy_formats)
{
    static const char *const files[] = {"tests/data/frontend/clip.ogg",
                                        "tests/data/frontend/clip.opus",
                                        "tests/data/frontend/clip.mp3"};
    size_t ref_frames;
    double *ref = envelope("tests/data/frontend/clip_reference_16000.wav", &ref_frames);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t frames;
        double *env = envelope(files[i], &frames);
        /* Codecs pad the stream a little; the speech must be the same. */
        cr_expect(labs((long)frames - (long)ref_frames) <= 10, "%s: %zu frames vs %zu", files[i],
                  frames, ref_frames);
        double r = best_correlation(ref, ref_frames, env, frames);
        cr_expect_geq(r, 0.98, "%s: loudness envelope correlation %g", files[i], r);
        free(env);
    }
    free(ref);
}

static mtla_status open_status(const char *path, char *message)
{
    mtla_audio *a = NULL;
    mtla_error err;
    mtla_status st = mtla_audio_open_file(path, 16000, &a, &err);
    if (st == MTLA_OK) {
        /* Some damage only shows while decoding. */
        float buf[4096];
        size_t got;
        do
            st = mtla_audio_read(a, buf, 4096, &got, &err);
        while (st == MTLA_OK && got > 0);
        mtla_audio_close(a);
    } else {
        cr_assert_null(a);
    }
    strcpy(message, st == MTLA_OK ? "" : err.message);
    return st;
}

static char *temp_file(const void *bytes, size_t size)
{
    char *path = strdup("/tmp/mtla-test-XXXXXX");
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, bytes, size), (ssize_t)size);
    close(fd);
    return path;
}

Test(audio_file, missing_file_is_named)
{
    char msg[512];
    cr_expect_eq(open_status("/nonexistent/talk.wav", msg), MTLA_ERR_IO);
    cr_expect(strstr(msg, "/nonexistent/talk.wav") && strstr(msg, "No such file"), "%s", msg);
}

Test(audio_file, directory_is_refused)
{
    char msg[512];
    cr_expect_eq(open_status(fixture("tests"), msg), MTLA_ERR_IO);
    cr_expect(strstr(msg, "directory"), "%s", msg);
}

Test(audio_file, empty_file_is_empty)
{
    char *path = temp_file("", 0);
    char msg[512];
    cr_expect_eq(open_status(path, msg), MTLA_ERR_EMPTY);
    cr_expect(strstr(msg, "empty"), "%s", msg);
    unlink(path);
    free(path);
}

Test(audio_file, text_is_not_audio)
{
    static const char text[] = "This is a text file, not a recording.\n";
    char *path = temp_file(text, sizeof text - 1);
    char msg[512];
    cr_expect_eq(open_status(path, msg), MTLA_ERR_FORMAT);
    cr_expect(strstr(msg, "cannot read") && strstr(msg, path), "%s", msg);
    unlink(path);
    free(path);
}

Test(audio_file, header_without_samples_is_empty)
{
    size_t size;
    unsigned char *wav = read_file(fixture("tests/data/frontend/clip_16000_s16.wav"), &size);
    /* Keep the 44-byte header and set the data chunk to 0 bytes. */
    memset(wav + 40, 0, 4);
    char *path = temp_file(wav, 44);
    char msg[512];
    cr_expect_eq(open_status(path, msg), MTLA_ERR_EMPTY, "%s", msg);
    unlink(path);
    free(path);
    free(wav);
}

Test(audio_file, damaged_files_fail_cleanly)
{
    size_t size;
    unsigned char *flac = read_file(fixture("tests/data/frontend/clip_22050_stereo.flac"), &size);
    /* Garbage in the middle of the FLAC frames, and a truncated copy. */
    unsigned char *garbled = malloc(size);
    memcpy(garbled, flac, size);
    for (size_t i = size / 2; i < size / 2 + 2000 && i < size; i++)
        garbled[i] = (unsigned char)(i * 131u);
    char *paths[2] = {temp_file(garbled, size), temp_file(flac, size / 3)};
    for (int i = 0; i < 2; i++) {
        char msg[512];
        mtla_status st = open_status(paths[i], msg);
        /* Decoders may recover from damage; if they do not, the error names the file. */
        cr_expect(st == MTLA_OK || ((st == MTLA_ERR_FORMAT || st == MTLA_ERR_TRUNCATED) &&
                                    strstr(msg, paths[i])),
                  "status %d: %s", st, msg);
        unlink(paths[i]);
        free(paths[i]);
    }
    /* A WAV header claiming absurd properties. */
    unsigned char *wav = read_file(fixture("tests/data/frontend/clip_16000_s16.wav"), &size);
    wav[22] = 0; /* channels = 0 */
    wav[23] = 0;
    char *path = temp_file(wav, size);
    char msg[512];
    cr_expect_neq(open_status(path, msg), MTLA_OK);
    cr_expect(strstr(msg, path), "%s", msg);
    unlink(path);
    free(path);
    free(wav);
    free(garbled);
    free(flac);
}

static void put_le(unsigned char *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* A float WAV file of samples far outside [-1, 1] (|x| = 3e38): refused by name rather than
 * mixed and resampled into inf and NaN (found through a stream by tests/fuzz/fuzz_pcm_stream;
 * files take the same check). */
Test(audio_file, huge_float_samples_are_refused)
{
    enum { FRAMES = 2000 };
    static unsigned char wav[44 + 4 * FRAMES];
    memcpy(wav, "RIFF", 4);
    put_le(wav + 4, 36 + 4 * FRAMES, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le(wav + 16, 16, 4);
    put_le(wav + 20, 3, 2); /* IEEE float */
    put_le(wav + 22, 1, 2); /* mono */
    put_le(wav + 24, 44100, 4);
    put_le(wav + 28, 4 * 44100, 4);
    put_le(wav + 32, 4, 2);
    put_le(wav + 34, 32, 2);
    memcpy(wav + 36, "data", 4);
    put_le(wav + 40, 4 * FRAMES, 4);
    for (int i = 0; i < FRAMES; i++) {
        float v = i & 1 ? -3e38f : 3e38f;
        memcpy(wav + 44 + 4 * i, &v, 4);
    }
    char *path = temp_file(wav, sizeof wav);
    char msg[512];
    cr_expect_eq(open_status(path, msg), MTLA_ERR_FORMAT, "%s", msg);
    cr_expect(strstr(msg, "out-of-range") && strstr(msg, path), "%s", msg);
    unlink(path);
    free(path);
}

Test(audio_file, load_reads_standard_input_format_from_a_file_path)
{
    mtla_error err;
    float *samples;
    size_t count;
    cr_expect_eq(mtla_audio_load("/nonexistent.flac", NULL, 16000, &samples, &count, &err),
                 MTLA_ERR_IO);
    cr_expect_null(samples);
    cr_expect_eq(count, 0);
}
