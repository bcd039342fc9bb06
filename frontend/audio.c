/* mtla_audio: any input (a file libsndfile reads, or a PCM/WAV stream) as mono float samples
 * at the model's rate. Channels are averaged; rates are converted with libsoxr (SOXR_HQ, the
 * quality the parity fixtures in tests/golden/frontend were made with). */
#include <errno.h>
#include <math.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "frontend/pcm_stream.h"
#include "mtla-st.h"

enum { BLOCK_FRAMES = 4096 };

struct mtla_audio {
    SNDFILE *file; /* file input, or NULL for a stream */
    pcm_stream *stream;
    char name[256];
    int32_t input_rate;
    int32_t channels;
    int32_t output_rate;
    double duration;

    soxr_t resampler; /* NULL when input_rate == output_rate */
    int input_ended;
    int finished;         /* resampler flushed; nothing more to deliver */
    mtla_status deferred; /* error met after the samples now pending */
    char deferred_message[sizeof(((mtla_error *)0)->message)];

    float *interleaved; /* BLOCK_FRAMES x channels */
    float *mono;        /* BLOCK_FRAMES */
    float *pending;     /* converted samples not yet delivered */
    size_t pending_capacity;
    size_t pending_start;
    size_t pending_end;
};

mtla_stream_format mtla_stream_format_default(void)
{
    mtla_stream_format f = {16000, 1, MTLA_PCM_S16LE, 1};
    return f;
}

static mtla_status audio_alloc(mtla_audio **out, const char *name, int32_t output_rate,
                               mtla_error *err)
{
    if (output_rate < 1000 || output_rate > 768000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "output sample rate %d Hz is out of range",
                         (int)output_rate);
    mtla_audio *a = calloc(1, sizeof *a);
    if (!a)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening %s", name);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->output_rate = output_rate;
    a->duration = -1.0;
    *out = a;
    return MTLA_OK;
}

/* Called once the input's rate and channel count are known. */
static mtla_status audio_prepare(mtla_audio *a, mtla_error *err)
{
    a->interleaved = malloc(sizeof(float) * BLOCK_FRAMES * (size_t)a->channels);
    a->mono = malloc(sizeof(float) * BLOCK_FRAMES);
    /* Room for one block's worth of output at the highest upsampling ratio, plus filter tail. */
    double ratio = (double)a->output_rate / (double)a->input_rate;
    a->pending_capacity = (size_t)ceil(BLOCK_FRAMES * ratio) + 1024;
    a->pending = malloc(sizeof(float) * a->pending_capacity);
    if (!a->interleaved || !a->mono || !a->pending)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening %s", a->name);
    if (a->input_rate != a->output_rate) {
        soxr_error_t e = NULL;
        soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
        soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
        a->resampler = soxr_create(a->input_rate, a->output_rate, 1, &e, &io, &q, NULL);
        if (!a->resampler || e)
            return mtla_fail(err, MTLA_ERR_INTERNAL, "cannot resample %s from %d Hz: %s", a->name,
                             (int)a->input_rate, e ? e : "soxr_create failed");
    }
    return MTLA_OK;
}

mtla_status mtla_audio_open_file(const char *path, int32_t output_rate, mtla_audio **out,
                                 mtla_error *err)
{
    *out = NULL;
    if (!path)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "no audio path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': it is a directory", path);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return mtla_fail(err, MTLA_ERR_EMPTY, "'%s' is an empty file", path);
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    fclose(probe);

    mtla_audio *a = NULL;
    mtla_status status = audio_alloc(&a, path, output_rate, err);
    if (status != MTLA_OK)
        return status;
    SF_INFO info;
    memset(&info, 0, sizeof info);
    a->file = sf_open(path, SFM_READ, &info);
    if (!a->file) {
        status = mtla_fail(err, MTLA_ERR_FORMAT, "cannot read '%s' as audio: %s", path,
                           sf_strerror(NULL));
        mtla_audio_close(a);
        return status;
    }
    if (info.channels < 1 || info.channels > 64 || info.samplerate < 1000 ||
        info.samplerate > 768000) {
        status = mtla_fail(err, MTLA_ERR_FORMAT, "'%s' claims %d channels at %d Hz", path,
                           info.channels, info.samplerate);
        mtla_audio_close(a);
        return status;
    }
    if (info.frames == 0) {
        status = mtla_fail(err, MTLA_ERR_EMPTY, "'%s' contains no audio samples", path);
        mtla_audio_close(a);
        return status;
    }
    a->input_rate = info.samplerate;
    a->channels = info.channels;
    /* libsndfile reports a huge frame count when it does not know the length. */
    if (info.frames > 0 && info.frames < INT64_MAX / 2)
        a->duration = (double)info.frames / info.samplerate;
    status = audio_prepare(a, err);
    if (status != MTLA_OK) {
        mtla_audio_close(a);
        return status;
    }
    *out = a;
    return MTLA_OK;
}

mtla_status mtla_audio_open_fd(int fd, const char *name, const mtla_stream_format *format,
                               int32_t output_rate, mtla_audio **out, mtla_error *err)
{
    *out = NULL;
    mtla_stream_format defaults = mtla_stream_format_default();
    if (!format)
        format = &defaults;
    if (!name)
        name = "stream";
    mtla_audio *a = NULL;
    mtla_status status = audio_alloc(&a, name, output_rate, err);
    if (status != MTLA_OK)
        return status;
    a->stream = malloc(sizeof *a->stream);
    if (!a->stream) {
        mtla_audio_close(a);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory opening %s", name);
    }
    status = pcm_stream_open(a->stream, fd, name, format, err);
    if (status == MTLA_OK) {
        a->input_rate = a->stream->sample_rate;
        a->channels = a->stream->channels;
        status = audio_prepare(a, err);
    }
    if (status != MTLA_OK) {
        mtla_audio_close(a);
        return status;
    }
    *out = a;
    return MTLA_OK;
}

/* Reads the next block of input frames into a->interleaved; 0 frames at end of input. */
static mtla_status read_input(mtla_audio *a, size_t *frames, mtla_error *err)
{
    if (a->stream)
        return pcm_stream_read(a->stream, a->interleaved, BLOCK_FRAMES, frames, err);
    sf_count_t got = sf_readf_float(a->file, a->interleaved, BLOCK_FRAMES);
    if (got < 0)
        got = 0;
    *frames = (size_t)got;
    if (got == 0 && sf_error(a->file) != SF_ERR_NO_ERROR)
        return mtla_fail(err, MTLA_ERR_FORMAT, "cannot decode '%s': %s", a->name,
                         sf_strerror(a->file));
    size_t values = (size_t)got * (size_t)a->channels;
    for (size_t i = 0; i < values; i++)
        if (!(fabsf(a->interleaved[i]) <= PCM_MAX_MAGNITUDE))
            return mtla_fail(err, MTLA_ERR_FORMAT,
                             "'%s' carries a non-finite or out-of-range sample (|x| > 1e8)",
                             a->name);
    return MTLA_OK;
}

/* Converts `frames` mono samples in a->mono (a flush when frames is 0: the input ended) into
 * the pending buffer, which the caller has emptied. */
static mtla_status convert(mtla_audio *a, size_t frames, mtla_error *err)
{
    a->pending_start = a->pending_end = 0;
    if (!a->resampler) {
        memcpy(a->pending, a->mono, frames * sizeof(float));
        a->pending_end = frames;
        if (frames == 0)
            a->finished = 1;
        return MTLA_OK;
    }
    size_t consumed = 0;
    do {
        if (a->pending_capacity - a->pending_end < 256) {
            float *grown = realloc(a->pending, 2 * a->pending_capacity * sizeof(float));
            if (!grown)
                return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory resampling %s", a->name);
            a->pending = grown;
            a->pending_capacity *= 2;
        }
        size_t in_done = 0, out_done = 0;
        soxr_error_t e = soxr_process(a->resampler, frames ? a->mono + consumed : NULL,
                                      frames - consumed, &in_done, a->pending + a->pending_end,
                                      a->pending_capacity - a->pending_end, &out_done);
        if (e)
            return mtla_fail(err, MTLA_ERR_INTERNAL, "resampling %s failed: %s", a->name, e);
        consumed += in_done;
        a->pending_end += out_done;
        if (frames == 0 && out_done == 0) {
            a->finished = 1;
            break;
        }
        if (frames == 0)
            break; /* flush: called again while it still yields samples */
    } while (consumed < frames || a->pending_end == a->pending_capacity);
    return MTLA_OK;
}

static mtla_status deliver_deferred(mtla_audio *a, mtla_error *err)
{
    mtla_status st = a->deferred;
    a->deferred = MTLA_OK;
    if (err) {
        err->status = st;
        memcpy(err->message, a->deferred_message, sizeof err->message);
    }
    return st;
}

int mtla_audio_ready(const mtla_audio *a)
{
    if (!a)
        return 0;
    if (a->pending_start != a->pending_end)
        return 1;
    return a->stream && !a->input_ended && pcm_stream_ready(a->stream);
}

mtla_status mtla_audio_read(mtla_audio *a, float *samples, size_t capacity, size_t *count,
                            mtla_error *err)
{
    *count = 0;
    if (!a)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "no audio handle");
    while (a->pending_start == a->pending_end) {
        if (a->finished)
            return a->deferred != MTLA_OK ? deliver_deferred(a, err) : MTLA_OK;
        size_t frames = 0;
        if (!a->input_ended) {
            mtla_error read_err;
            mtla_status st = read_input(a, &frames, &read_err);
            if (st != MTLA_OK) {
                /* Flush what the resampler holds before reporting the error. */
                a->deferred = st;
                memcpy(a->deferred_message, read_err.message, sizeof a->deferred_message);
                frames = 0;
            }
            if (frames == 0)
                a->input_ended = 1;
        }
        for (size_t i = 0; i < frames; i++) {
            const float *frame = a->interleaved + i * (size_t)a->channels;
            float sum = 0.0f;
            for (int32_t c = 0; c < a->channels; c++)
                sum += frame[c];
            a->mono[i] = a->channels == 1 ? sum : sum / (float)a->channels;
        }
        mtla_status st = convert(a, frames, err);
        if (st != MTLA_OK)
            return st;
    }
    size_t n = a->pending_end - a->pending_start;
    if (n > capacity)
        n = capacity;
    memcpy(samples, a->pending + a->pending_start, n * sizeof(float));
    a->pending_start += n;
    *count = n;
    return MTLA_OK;
}

int32_t mtla_audio_input_rate(const mtla_audio *a)
{
    return a ? a->input_rate : 0;
}
int32_t mtla_audio_input_channels(const mtla_audio *a)
{
    return a ? a->channels : 0;
}
double mtla_audio_duration(const mtla_audio *a)
{
    return a ? a->duration : -1.0;
}

void mtla_audio_close(mtla_audio *a)
{
    if (!a)
        return;
    if (a->file)
        sf_close(a->file);
    if (a->resampler)
        soxr_delete(a->resampler);
    free(a->stream);
    free(a->interleaved);
    free(a->mono);
    free(a->pending);
    free(a);
}

mtla_status mtla_audio_load(const char *path, const mtla_stream_format *stdin_format,
                            int32_t output_rate, float **samples, size_t *count, mtla_error *err)
{
    *samples = NULL;
    *count = 0;
    mtla_audio *a = NULL;
    mtla_status st = strcmp(path, "-") == 0 ? mtla_audio_open_fd(0, "standard input", stdin_format,
                                                                 output_rate, &a, err)
                                            : mtla_audio_open_file(path, output_rate, &a, err);
    if (st != MTLA_OK)
        return st;
    size_t capacity = 1 << 16, n = 0;
    float *buf = malloc(capacity * sizeof(float));
    if (!buf) {
        mtla_audio_close(a);
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading %s", path);
    }
    for (;;) {
        if (capacity - n < BLOCK_FRAMES) {
            float *grown = realloc(buf, 2 * capacity * sizeof(float));
            if (!grown) {
                st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading %s", path);
                break;
            }
            buf = grown;
            capacity *= 2;
        }
        size_t got = 0;
        st = mtla_audio_read(a, buf + n, capacity - n, &got, err);
        n += got;
        if (st != MTLA_OK || got == 0)
            break;
    }
    mtla_audio_close(a);
    if (st != MTLA_OK) {
        free(buf);
        return st;
    }
    if (n == 0) {
        free(buf);
        return mtla_fail(err, MTLA_ERR_EMPTY, "%s contains no audio samples", path);
    }
    *samples = buf;
    *count = n;
    return MTLA_OK;
}
