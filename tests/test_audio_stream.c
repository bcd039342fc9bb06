/* Audio streams (standard input, pipes): raw PCM and WAV streams read incrementally, and every
 * way a stream can be broken. A writer thread feeds a pipe so that timing is real. */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

typedef struct feeder {
    int fd;
    const unsigned char *bytes;
    size_t size;
    size_t piece;       /* bytes per write() */
    size_t pause_after; /* after this many bytes, wait until `released` (0: never) */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int released;
    int timed_out;
} feeder;

static void *feed(void *arg)
{
    feeder *f = arg;
    size_t pos = 0;
    int paused = 0;
    while (pos < f->size) {
        if (f->pause_after && !paused && pos >= f->pause_after) {
            paused = 1;
            struct timespec deadline;
            clock_gettime(CLOCK_REALTIME, &deadline);
            deadline.tv_sec += 10;
            pthread_mutex_lock(&f->lock);
            while (!f->released && !f->timed_out)
                if (pthread_cond_timedwait(&f->cond, &f->lock, &deadline) == ETIMEDOUT)
                    f->timed_out = 1;
            pthread_mutex_unlock(&f->lock);
        }
        size_t n = f->size - pos < f->piece ? f->size - pos : f->piece;
        ssize_t w = write(f->fd, f->bytes + pos, n);
        if (w <= 0)
            break;
        pos += (size_t)w;
    }
    close(f->fd);
    return NULL;
}

typedef struct stream_run {
    float *samples;
    size_t count;
    mtla_status open_status;
    mtla_status read_status;
    char message[512];
} stream_run;

/* Streams `bytes` through a pipe in `piece`-byte writes and reads it all back. */
static stream_run run_stream(const void *bytes, size_t size, size_t piece,
                             const mtla_stream_format *format)
{
    int fds[2];
    cr_assert(pipe(fds) == 0);
    feeder f = {.fd = fds[1], .bytes = bytes, .size = size, .piece = piece};
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, feed, &f);

    stream_run r = {0};
    mtla_error err = {0};
    mtla_audio *a = NULL;
    r.open_status = mtla_audio_open_fd(fds[0], "test stream", format, 16000, &a, &err);
    size_t cap = 1 << 16;
    r.samples = malloc(cap * sizeof(float));
    if (r.open_status == MTLA_OK) {
        for (;;) {
            if (cap - r.count < 4096) {
                cap *= 2;
                r.samples = realloc(r.samples, cap * sizeof(float));
            }
            size_t got = 0;
            r.read_status = mtla_audio_read(a, r.samples + r.count, 4096, &got, &err);
            r.count += got;
            if (r.read_status != MTLA_OK || got == 0)
                break;
        }
        mtla_audio_close(a);
    }
    strcpy(r.message, err.message);
    /* Let the writer finish even if the reader stopped early. */
    char sink[4096];
    while (read(fds[0], sink, sizeof sink) > 0) {
    }
    pthread_join(thread, NULL);
    close(fds[0]);
    return r;
}

/* The data chunk of a canonical 44-byte-header WAV file. */
static unsigned char *wav_file(const char *relative, size_t *size)
{
    return read_file(fixture(relative), size);
}

static void expect_same_samples(const stream_run *r, const float *ref, size_t ref_count)
{
    cr_assert_eq(r->open_status, MTLA_OK, "%s", r->message);
    cr_assert_eq(r->read_status, MTLA_OK, "%s", r->message);
    cr_assert_eq(r->count, ref_count, "%zu samples vs %zu", r->count, ref_count);
    cr_assert(memcmp(r->samples, ref, ref_count * sizeof(float)) == 0,
              "stream samples differ from file samples");
}

Test(audio_stream, raw_s16_in_odd_pieces_equals_the_file)
{
    size_t size, ref_count;
    unsigned char *wav = wav_file("tests/data/frontend/clip_16000_s16.wav", &size);
    float *ref = load_audio(fixture("tests/data/frontend/clip_16000_s16.wav"), &ref_count);
    mtla_stream_format fmt = mtla_stream_format_default();
    static const size_t pieces[] = {1, 3, 333, 65536};
    for (size_t i = 0; i < 4; i++) {
        stream_run r = run_stream(wav + 44, size - 44, pieces[i], &fmt);
        expect_same_samples(&r, ref, ref_count);
        free(r.samples);
    }
    free(ref);
    free(wav);
}

Test(audio_stream, wav_streams_are_detected)
{
    static const char *const files[] = {
        "tests/data/frontend/clip_16000_s16.wav", "tests/data/frontend/clip_8000_s16.wav",
        "tests/data/frontend/clip_44100_f32_extensible.wav", "tests/data/frontend/clip_u8.wav",
        "tests/data/frontend/clip_f64.wav"};
    mtla_stream_format fmt = mtla_stream_format_default();
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t size, ref_count;
        unsigned char *wav = wav_file(files[i], &size);
        float *ref = load_audio(fixture(files[i]), &ref_count);
        stream_run r = run_stream(wav, size, 1000, &fmt);
        cr_assert_eq(r.open_status, MTLA_OK, "%s: %s", files[i], r.message);
        cr_assert_eq(r.count, ref_count, "%s: %zu samples vs %zu", files[i], r.count, ref_count);
        /* Resampling may see different block boundaries; libsoxr is exact regardless. */
        double diff = max_abs_diff(r.samples, ref, ref_count);
        cr_expect_leq(diff, 1e-6, "%s: stream differs from file by %g", files[i], diff);
        free(r.samples);
        free(ref);
        free(wav);
    }
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = v & 0xFF, p[1] = (v >> 8) & 0xFF, p[2] = (v >> 16) & 0xFF, p[3] = v >> 24;
}

Test(audio_stream, unknown_and_lying_lengths_are_handled)
{
    size_t size, ref_count;
    unsigned char *wav = wav_file("tests/data/frontend/clip_16000_s16.wav", &size);
    float *ref = load_audio(fixture("tests/data/frontend/clip_16000_s16.wav"), &ref_count);
    mtla_stream_format fmt = mtla_stream_format_default();

    /* Unknown length (0xFFFFFFFF, as streaming writers put): read to end of stream. */
    put_u32(wav + 40, 0xFFFFFFFFu);
    stream_run r = run_stream(wav, size, 4096, &fmt);
    expect_same_samples(&r, ref, ref_count);
    free(r.samples);

    /* A header promising more than arrives: everything that arrived is delivered. */
    put_u32(wav + 40, 100000000u);
    r = run_stream(wav, size, 4096, &fmt);
    expect_same_samples(&r, ref, ref_count);
    free(r.samples);

    /* A header promising less: trailing bytes (another chunk) are not audio. */
    put_u32(wav + 40, 32000);
    r = run_stream(wav, size, 4096, &fmt);
    cr_assert_eq(r.read_status, MTLA_OK);
    cr_expect_eq(r.count, 16000);
    cr_expect(memcmp(r.samples, ref, 16000 * sizeof(float)) == 0);
    free(r.samples);
    free(ref);
    free(wav);
}

Test(audio_stream, truncated_final_sample_is_reported_after_the_audio)
{
    size_t size, ref_count;
    unsigned char *wav = wav_file("tests/data/frontend/clip_16000_s16.wav", &size);
    float *ref = load_audio(fixture("tests/data/frontend/clip_16000_s16.wav"), &ref_count);
    mtla_stream_format fmt = mtla_stream_format_default();
    /* Raw s16 with one stray byte at the end. */
    stream_run r = run_stream(wav + 44, 2001, 500, &fmt);
    cr_expect_eq(r.open_status, MTLA_OK);
    cr_expect_eq(r.read_status, MTLA_ERR_TRUNCATED);
    cr_expect(strstr(r.message, "test stream") && strstr(r.message, "middle of a sample"), "%s",
              r.message);
    cr_expect_eq(r.count, 1000, "the 1000 complete samples must be delivered");
    cr_expect(memcmp(r.samples, ref, 1000 * sizeof(float)) == 0);
    free(r.samples);
    free(ref);
    free(wav);
}

Test(audio_stream, empty_stream_is_empty)
{
    mtla_stream_format fmt = mtla_stream_format_default();
    stream_run r = run_stream("", 0, 1, &fmt);
    cr_expect_eq(r.open_status, MTLA_ERR_EMPTY);
    cr_expect(strstr(r.message, "test stream is empty"), "%s", r.message);
    free(r.samples);
}

Test(audio_stream, broken_headers_are_named)
{
    size_t size;
    unsigned char *good = wav_file("tests/data/frontend/clip_16000_s16.wav", &size);
    unsigned char wav[44];
    mtla_stream_format fmt = mtla_stream_format_default();
    struct {
        size_t offset;
        unsigned char value[4];
        size_t len;
        mtla_status status;
        const char *words;
    } cases[] = {
        {22, {0, 0}, 2, MTLA_ERR_FORMAT, "channels"},
        {24, {0, 0, 0, 0}, 4, MTLA_ERR_FORMAT, "sample rate"},
        {20, {0x55, 0}, 2, MTLA_ERR_UNSUPPORTED, "not PCM"},
        {34, {12, 0}, 2, MTLA_ERR_UNSUPPORTED, "12-bit"},
        {32, {3, 0}, 2, MTLA_ERR_FORMAT, "inconsistent"},
        {8, {'A', 'V', 'I', ' '}, 4, MTLA_ERR_FORMAT, "not a WAVE stream"},
        {36, {'d', 'a', 't', 'x'}, 4, MTLA_ERR_TRUNCATED, "before its data chunk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(wav, good, 44);
        memcpy(wav + cases[i].offset, cases[i].value, cases[i].len);
        /* The "datx" case: an unknown chunk swallowing the rest, then nothing. */
        if (cases[i].status == MTLA_ERR_TRUNCATED)
            put_u32(wav + 40, 1000);
        stream_run r = run_stream(wav, 44, 7, &fmt);
        cr_expect_eq(r.open_status, cases[i].status, "case %zu: status %d (%s)", i, r.open_status,
                     r.message);
        cr_expect(strstr(r.message, cases[i].words), "case %zu: %s", i, r.message);
        free(r.samples);
    }
    /* A header cut short. */
    stream_run r = run_stream(good, 30, 7, &fmt);
    cr_expect_eq(r.open_status, MTLA_ERR_TRUNCATED, "%s", r.message);
    free(r.samples);
    free(good);
}

Test(audio_stream, raw_stereo_and_float_formats)
{
    /* Stereo s16: left = x, right = 0 -> mono 0.5 x. */
    int16_t stereo[2000];
    float f32[1000];
    for (int i = 0; i < 1000; i++) {
        stereo[2 * i] = (int16_t)(i * 30 - 15000);
        stereo[2 * i + 1] = 0;
        f32[i] = (float)(i * 30 - 15000) / 32768.0f;
    }
    mtla_stream_format fmt = mtla_stream_format_default();
    fmt.channels = 2;
    stream_run r = run_stream(stereo, sizeof stereo, 101, &fmt);
    cr_assert_eq(r.read_status, MTLA_OK);
    cr_assert_eq(r.count, 1000);
    for (int i = 0; i < 1000; i++)
        cr_assert_float_eq(r.samples[i], 0.5f * f32[i], 1e-7, "sample %d", i);
    free(r.samples);

    fmt = mtla_stream_format_default();
    fmt.encoding = MTLA_PCM_F32LE;
    r = run_stream(f32, sizeof f32, 13, &fmt);
    cr_assert_eq(r.read_status, MTLA_OK);
    cr_assert_eq(r.count, 1000);
    cr_expect(memcmp(r.samples, f32, sizeof f32) == 0);
    free(r.samples);

    /* A NaN is refused, after the samples before it. */
    f32[500] = NAN;
    r = run_stream(f32, sizeof f32, 4000, &fmt);
    cr_expect_eq(r.read_status, MTLA_ERR_FORMAT);
    cr_expect(strstr(r.message, "non-finite"), "%s", r.message);
    cr_expect_eq(r.count, 500);
    free(r.samples);

    /* So is a finite sample far outside [-1, 1]. */
    f32[500] = 3e38f;
    r = run_stream(f32, sizeof f32, 4000, &fmt);
    cr_expect_eq(r.read_status, MTLA_ERR_FORMAT);
    cr_expect(strstr(r.message, "out-of-range"), "%s", r.message);
    cr_expect_eq(r.count, 500);
    free(r.samples);
}

/* Found by tests/fuzz/fuzz_pcm_stream: huge finite float samples, mixed to mono and resampled,
 * came out as inf and NaN. They are refused; what is delivered before is finite. */
Test(audio_stream, huge_float_samples_never_become_nan)
{
    float f32[4000];
    for (int i = 0; i < 4000; i++)
        f32[i] = i < 1000 ? 0.25f * (float)sin(i * 0.1) : (i & 1 ? -3.4e38f : 3.4e38f);
    mtla_stream_format fmt = mtla_stream_format_default();
    fmt.encoding = MTLA_PCM_F32LE;
    fmt.sample_rate = 44100;
    fmt.channels = 2;
    stream_run r = run_stream(f32, sizeof f32, 333, &fmt);
    cr_expect_eq(r.read_status, MTLA_ERR_FORMAT, "%s", r.message);
    cr_expect(strstr(r.message, "out-of-range"), "%s", r.message);
    for (size_t i = 0; i < r.count; i++)
        cr_assert(isfinite(r.samples[i]), "sample %zu is %g", i, r.samples[i]);
    free(r.samples);
}

Test(audio_stream, raw_8k_stream_is_resampled_like_the_file)
{
    size_t size, ref_count;
    unsigned char *wav = wav_file("tests/data/frontend/clip_8000_s16.wav", &size);
    float *ref = load_audio(fixture("tests/data/frontend/clip_8000_s16.wav"), &ref_count);
    mtla_stream_format fmt = mtla_stream_format_default();
    fmt.sample_rate = 8000;
    fmt.detect_wav = 0;
    stream_run r = run_stream(wav + 44, size - 44, 777, &fmt);
    cr_assert_eq(r.read_status, MTLA_OK, "%s", r.message);
    cr_assert_eq(r.count, ref_count);
    double diff = max_abs_diff(r.samples, ref, ref_count);
    cr_expect_leq(diff, 1e-6, "stream differs from file by %g", diff);
    free(r.samples);
    free(ref);
    free(wav);
}

Test(audio_stream, samples_arrive_before_the_stream_ends)
{
    size_t size;
    unsigned char *wav = wav_file("tests/data/frontend/clip_16000_s16.wav", &size);
    int fds[2];
    cr_assert(pipe(fds) == 0);
    /* The writer sends half a second, then waits until the reader has seen audio. */
    feeder f = {
        .fd = fds[1], .bytes = wav + 44, .size = size - 44, .piece = 3200, .pause_after = 16000};
    pthread_mutex_init(&f.lock, NULL);
    pthread_cond_init(&f.cond, NULL);
    pthread_t thread;
    pthread_create(&thread, NULL, feed, &f);

    mtla_audio *a;
    mtla_error err;
    mtla_stream_format fmt = mtla_stream_format_default();
    cr_assert_eq(mtla_audio_open_fd(fds[0], "pipe", &fmt, 16000, &a, &err), MTLA_OK);
    float buf[1 << 14];
    size_t got = 0, total = 0;
    cr_assert_eq(mtla_audio_read(a, buf, sizeof buf / sizeof buf[0], &got, &err), MTLA_OK);
    total += got;
    pthread_mutex_lock(&f.lock);
    int timed_out = f.timed_out;
    f.released = 1;
    pthread_cond_signal(&f.cond);
    pthread_mutex_unlock(&f.lock);
    cr_expect(got > 0 && !timed_out, "the first read waited for the writer to finish");
    do {
        cr_assert_eq(mtla_audio_read(a, buf, sizeof buf / sizeof buf[0], &got, &err), MTLA_OK);
        total += got;
    } while (got > 0);
    cr_expect_eq(total, (size - 44) / 2);
    mtla_audio_close(a);
    pthread_join(thread, NULL);
    close(fds[0]);
    free(wav);
}

Test(audio_stream, audio_read_from_the_descriptor_but_not_delivered_is_ready)
{
    /* 2 s of raw s16 in the pipe before the first read: one read() takes up to 64 KiB. */
    int fds[2];
    cr_assert(pipe(fds) == 0);
    size_t n = 32000;
    int16_t *pcm = calloc(n, sizeof *pcm);
    for (size_t i = 0; i < n; i++)
        pcm[i] = (int16_t)(i % 200 * 50);
    size_t bytes = n * sizeof *pcm;
    cr_assert_eq(write(fds[1], pcm, bytes), (ssize_t)bytes);
    mtla_audio *a;
    mtla_error err;
    mtla_stream_format fmt = mtla_stream_format_default();
    fmt.detect_wav = 0;
    cr_assert_eq(mtla_audio_open_fd(fds[0], "pipe", &fmt, 16000, &a, &err), MTLA_OK);
    float buf[1000];
    size_t got = 0, total = 0;
    cr_assert_eq(mtla_audio_read(a, buf, 1000, &got, &err), MTLA_OK);
    total += got;
    struct pollfd p = {.fd = fds[0], .events = POLLIN};
    cr_expect_eq(poll(&p, 1, 0), 0, "the pipe is drained");
    cr_expect_eq(mtla_audio_ready(a), 1, "but the audio holds more");
    while (mtla_audio_ready(a)) {
        cr_assert_eq(mtla_audio_read(a, buf, 1000, &got, &err), MTLA_OK);
        cr_assert_gt(got, 0);
        total += got;
    }
    cr_expect_eq(total, n, "every sample without waiting");
    mtla_audio_close(a);
    close(fds[1]);
    close(fds[0]);
    free(pcm);
}
