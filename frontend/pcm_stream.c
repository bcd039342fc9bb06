#include "frontend/pcm_stream.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"

/* Bytes a WAV header may hold before its data chunk (metadata chunks included). A stream
 * whose data chunk does not begin within this is rejected rather than read forever. */
enum { WAV_HEADER_LIMIT = 4 << 20 };

static const char WAV_GUID_TAIL[14] = {0x00, 0x00, 0x00,       0x00, 0x10, 0x00,       (char)0x80,
                                       0x00, 0x00, (char)0xAA, 0x00, 0x38, (char)0x9B, 0x71};

static uint16_t read_u16le(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t read_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t buffered(const pcm_stream *s)
{
    return s->buffer_end - s->buffer_start;
}

/* One read() into the free end of the buffer (compacting it first). Sets eof at end of file. */
static mtla_status read_some(pcm_stream *s, mtla_error *err)
{
    if (s->buffer_start > 0) {
        memmove(s->buffer, s->buffer + s->buffer_start, buffered(s));
        s->buffer_end -= s->buffer_start;
        s->buffer_start = 0;
    }
    size_t space = sizeof s->buffer - s->buffer_end;
    if (space == 0)
        return MTLA_OK;
    for (;;) {
        ssize_t got = read(s->fd, s->buffer + s->buffer_end, space);
        if (got > 0) {
            s->buffer_end += (size_t)got;
            return MTLA_OK;
        }
        if (got == 0) {
            s->eof = 1;
            return MTLA_OK;
        }
        if (errno != EINTR)
            return mtla_fail(err, MTLA_ERR_IO, "cannot read %s: %s", s->name, strerror(errno));
    }
}

/* Reads until at least `need` bytes are buffered or the stream ends. */
static mtla_status fill(pcm_stream *s, size_t need, mtla_error *err)
{
    while (buffered(s) < need && !s->eof) {
        mtla_status st = read_some(s, err);
        if (st != MTLA_OK)
            return st;
    }
    return MTLA_OK;
}

static mtla_status set_kind(pcm_stream *s, int is_float, int bits, mtla_error *err)
{
    if (is_float && bits == 32)
        s->kind = PCM_F32;
    else if (is_float && bits == 64)
        s->kind = PCM_F64;
    else if (!is_float && bits == 8)
        s->kind = PCM_U8;
    else if (!is_float && bits == 16)
        s->kind = PCM_S16;
    else if (!is_float && bits == 24)
        s->kind = PCM_S24;
    else if (!is_float && bits == 32)
        s->kind = PCM_S32;
    else
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED, "%s: unsupported WAV sample format (%d-bit %s)",
                         s->name, bits, is_float ? "float" : "integer");
    s->bytes_per_sample = bits / 8;
    return MTLA_OK;
}

static mtla_status parse_fmt_chunk(pcm_stream *s, const unsigned char *p, uint32_t size,
                                   mtla_error *err)
{
    if (size < 16)
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: WAV fmt chunk too short (%u bytes)", s->name,
                         size);
    unsigned tag = read_u16le(p);
    unsigned channels = read_u16le(p + 2);
    uint32_t rate = read_u32le(p + 4);
    unsigned block_align = read_u16le(p + 12);
    unsigned bits = read_u16le(p + 14);
    if (tag == 0xFFFE) { /* WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID */
        if (size < 40 || memcmp(p + 26, WAV_GUID_TAIL, sizeof WAV_GUID_TAIL) != 0)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s: malformed WAVE_FORMAT_EXTENSIBLE header",
                             s->name);
        tag = read_u16le(p + 24);
    }
    if (tag != 1 && tag != 3)
        return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                         "%s: WAV encoding 0x%04x is not PCM or IEEE float; decode it to a file "
                         "and pass the file instead",
                         s->name, tag);
    if (channels < 1 || channels > 64)
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: WAV header claims %u channels", s->name,
                         channels);
    if (rate < 1000 || rate > 768000)
        return mtla_fail(err, MTLA_ERR_FORMAT, "%s: WAV header claims a sample rate of %u Hz",
                         s->name, rate);
    mtla_status st = set_kind(s, tag == 3, (int)bits, err);
    if (st != MTLA_OK)
        return st;
    if (block_align != channels * (unsigned)s->bytes_per_sample)
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s: WAV header is inconsistent (block align %u for %u channels of %u "
                         "bits)",
                         s->name, block_align, channels, bits);
    s->channels = (int32_t)channels;
    s->sample_rate = (int32_t)rate;
    return MTLA_OK;
}

/* Walks the chunks after "RIFF....WAVE" up to the start of the data chunk. */
static mtla_status parse_wav_header(pcm_stream *s, mtla_error *err)
{
    size_t header_bytes = 12;
    int have_fmt = 0;
    s->buffer_start += 12;
    for (;;) {
        mtla_status st = fill(s, 8, err);
        if (st != MTLA_OK)
            return st;
        if (buffered(s) < 8)
            return mtla_fail(err, MTLA_ERR_TRUNCATED, "%s: WAV header ends before its data chunk",
                             s->name);
        const unsigned char *chunk = s->buffer + s->buffer_start;
        uint32_t size = read_u32le(chunk + 4);
        if (memcmp(chunk, "data", 4) == 0) {
            if (!have_fmt)
                return mtla_fail(err, MTLA_ERR_FORMAT, "%s: WAV data chunk before its fmt chunk",
                                 s->name);
            /* Streaming writers put 0 or 0xFFFFFFFF here when the length is unknown. */
            s->data_remaining = (size == 0 || size == 0xFFFFFFFFu) ? -1 : (int64_t)size;
            s->buffer_start += 8;
            return MTLA_OK;
        }
        uint64_t padded = (uint64_t)size + (size & 1u);
        header_bytes += 8 + padded;
        if (header_bytes > WAV_HEADER_LIMIT)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s: no WAV data chunk within the first %d MiB",
                             s->name, WAV_HEADER_LIMIT >> 20);
        s->buffer_start += 8;
        if (memcmp(chunk, "fmt ", 4) == 0) {
            if (padded > sizeof s->buffer / 2)
                return mtla_fail(err, MTLA_ERR_FORMAT, "%s: WAV fmt chunk of %u bytes", s->name,
                                 size);
            st = fill(s, (size_t)padded, err);
            if (st != MTLA_OK)
                return st;
            if (buffered(s) < padded)
                return mtla_fail(err, MTLA_ERR_TRUNCATED,
                                 "%s: WAV header ends inside its fmt chunk", s->name);
            st = parse_fmt_chunk(s, s->buffer + s->buffer_start, size, err);
            if (st != MTLA_OK)
                return st;
            have_fmt = 1;
            s->buffer_start += (size_t)padded;
            continue;
        }
        /* Any other chunk (LIST, fact, ds64, ...) is skipped. */
        while (padded > 0) {
            if (buffered(s) == 0) {
                st = fill(s, 1, err);
                if (st != MTLA_OK)
                    return st;
                if (buffered(s) == 0)
                    return mtla_fail(err, MTLA_ERR_TRUNCATED,
                                     "%s: WAV header ends before its data chunk", s->name);
            }
            size_t skip = buffered(s) < padded ? buffered(s) : (size_t)padded;
            s->buffer_start += skip;
            padded -= skip;
        }
    }
}

/* Names a compressed or non-WAV container recognised by its magic bytes, or NULL. Raw PCM
 * starting with these exact bytes is practically impossible; --raw skips the check anyway. */
static const char *compressed_container(const unsigned char *head, size_t size)
{
    static const struct {
        const char *magic;
        const char *name;
    } known[] = {{"fLaC", "FLAC"}, {"OggS", "Ogg (Vorbis or Opus)"}, {"ID3", "MP3 (ID3 tag)"},
                 {"FORM", "AIFF"}, {".snd", "Sun/NeXT audio"},       {"caff", "Core Audio"}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        size_t n = strlen(known[i].magic);
        if (size >= n && memcmp(head, known[i].magic, n) == 0)
            return known[i].name;
    }
    return NULL;
}

mtla_status pcm_stream_open(pcm_stream *s, int fd, const char *name,
                            const mtla_stream_format *format, mtla_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = fd;
    snprintf(s->name, sizeof s->name, "%s", name ? name : "stream");
    s->data_remaining = -1;

    mtla_status st = fill(s, 12, err);
    if (st != MTLA_OK)
        return st;
    if (buffered(s) == 0)
        return mtla_fail(err, MTLA_ERR_EMPTY, "%s is empty: no audio arrived", s->name);

    const unsigned char *head = s->buffer;
    if (format->detect_wav) {
        const char *container = compressed_container(head, buffered(s));
        if (container)
            return mtla_fail(err, MTLA_ERR_UNSUPPORTED,
                             "%s carries %s; streams must be raw PCM or WAV: pass the file by "
                             "name, or decode it first (e.g. sox IN -t wav - | mtla-st ... -)",
                             s->name, container);
    }
    int riff = buffered(s) >= 4 && (memcmp(head, "RIFF", 4) == 0 || memcmp(head, "RF64", 4) == 0);
    if (format->detect_wav && riff) {
        if (buffered(s) < 12 || memcmp(head + 8, "WAVE", 4) != 0)
            return mtla_fail(err, MTLA_ERR_FORMAT, "%s starts with RIFF but is not a WAVE stream",
                             s->name);
        s->is_wav = 1;
        return parse_wav_header(s, err);
    }

    if (format->sample_rate < 1000 || format->sample_rate > 768000)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "sample rate %d Hz is out of range",
                         (int)format->sample_rate);
    if (format->channels < 1 || format->channels > 64)
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "channel count %d is out of range",
                         (int)format->channels);
    s->sample_rate = format->sample_rate;
    s->channels = format->channels;
    switch (format->encoding) {
    case MTLA_PCM_S16LE:
        s->kind = PCM_S16;
        s->bytes_per_sample = 2;
        break;
    case MTLA_PCM_F32LE:
        s->kind = PCM_F32;
        s->bytes_per_sample = 4;
        break;
    default:
        return mtla_fail(err, MTLA_ERR_INVALID_ARGUMENT, "unknown PCM encoding %d",
                         (int)format->encoding);
    }
    return MTLA_OK;
}

static float decode_sample(pcm_sample_kind kind, const unsigned char *p)
{
    switch (kind) {
    case PCM_U8: return ((float)p[0] - 128.0f) / 128.0f;
    case PCM_S16: return (float)(int16_t)read_u16le(p) / 32768.0f;
    case PCM_S24: {
        int32_t v = (int32_t)((uint32_t)p[0] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 24);
        return (float)(v >> 8) / 8388608.0f;
    }
    case PCM_S32: return (float)((double)(int32_t)read_u32le(p) / 2147483648.0);
    case PCM_F32: {
        uint32_t bits = read_u32le(p);
        float v;
        memcpy(&v, &bits, sizeof v);
        return v;
    }
    case PCM_F64: {
        uint64_t bits = (uint64_t)read_u32le(p) | (uint64_t)read_u32le(p + 4) << 32;
        double v;
        memcpy(&v, &bits, sizeof v);
        return (float)v;
    }
    }
    return 0.0f;
}

int pcm_stream_ready(const pcm_stream *s)
{
    size_t usable = buffered(s);
    if (s->data_remaining >= 0 && (uint64_t)usable > (uint64_t)s->data_remaining)
        usable = (size_t)s->data_remaining;
    return !s->done && usable >= (size_t)s->channels * (size_t)s->bytes_per_sample;
}

mtla_status pcm_stream_read(pcm_stream *s, float *out, size_t max_frames, size_t *frames,
                            mtla_error *err)
{
    *frames = 0;
    if (s->bad_sample) {
        s->bad_sample = 0;
        s->done = 1;
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s carries a non-finite or out-of-range float sample (|x| > 1e8)",
                         s->name);
    }
    if (s->done || max_frames == 0)
        return MTLA_OK;
    size_t frame_bytes = (size_t)s->channels * (size_t)s->bytes_per_sample;

    /* Bytes of this stream's audio currently buffered (a WAV data chunk may end early). */
    size_t usable = buffered(s);
    if (s->data_remaining >= 0 && (uint64_t)usable > (uint64_t)s->data_remaining)
        usable = (size_t)s->data_remaining;
    while (usable < frame_bytes && !s->eof && s->data_remaining != 0) {
        mtla_status st = read_some(s, err);
        if (st != MTLA_OK)
            return st;
        usable = buffered(s);
        if (s->data_remaining >= 0 && (uint64_t)usable > (uint64_t)s->data_remaining)
            usable = (size_t)s->data_remaining;
    }

    size_t n = usable / frame_bytes;
    if (n > max_frames)
        n = max_frames;
    if (n == 0) {
        s->done = 1;
        /* A WAV header that promised more than arrived is handled as a live stream that ended. */
        if (usable > 0)
            return mtla_fail(err, MTLA_ERR_TRUNCATED,
                             "%s ended in the middle of a sample frame (%zu stray byte%s)", s->name,
                             usable, usable == 1 ? "" : "s");
        return MTLA_OK;
    }

    const unsigned char *p = s->buffer + s->buffer_start;
    size_t values = n * (size_t)s->channels;
    for (size_t i = 0; i < values; i++) {
        float v = decode_sample(s->kind, p + i * (size_t)s->bytes_per_sample);
        if (!(fabsf(v) <= PCM_MAX_MAGNITUDE)) { /* NaN, infinities, absurd magnitudes */
            /* Deliver the frames before the bad one; the next call reports it. */
            s->bad_sample = 1;
            n = i / (size_t)s->channels;
            break;
        }
        out[i] = v;
    }
    if (n == 0) {
        s->bad_sample = 0;
        s->done = 1;
        return mtla_fail(err, MTLA_ERR_FORMAT,
                         "%s carries a non-finite or out-of-range float sample (|x| > 1e8)",
                         s->name);
    }
    s->buffer_start += n * frame_bytes;
    if (s->data_remaining >= 0)
        s->data_remaining -= (int64_t)(n * frame_bytes);
    *frames = n;
    return MTLA_OK;
}
