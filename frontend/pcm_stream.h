/* Incremental reader of PCM audio from a file descriptor: raw samples, or a RIFF/WAVE (or
 * RF64) stream whose header is parsed as it arrives. Reads never wait for end of file: each
 * call returns as soon as at least one complete sample frame is available. */
#ifndef MTLA_FRONTEND_PCM_STREAM_H
#define MTLA_FRONTEND_PCM_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "mtla-st.h"

typedef enum pcm_sample_kind {
    PCM_U8,
    PCM_S16,
    PCM_S24,
    PCM_S32,
    PCM_F32,
    PCM_F64
} pcm_sample_kind;

enum { PCM_STREAM_BUFFER_BYTES = 1 << 16 };

/* The largest sample magnitude read from a float file or stream (nominal range [-1, 1]): room
 * for float files written at integer scale (+-32768), while every later stage stays finite.
 * Beyond it, mixing channels and resampling turn huge finite values into inf and NaN (found
 * by tests/fuzz/fuzz_pcm_stream), and the fbank's power spectrum overflows past about 1e13.
 * Such samples are refused like non-finite ones. */
#define PCM_MAX_MAGNITUDE 1e8f

typedef struct pcm_stream {
    int fd;
    char name[128]; /* for messages, e.g. "standard input" */
    int32_t sample_rate;
    int32_t channels;
    pcm_sample_kind kind;
    int32_t bytes_per_sample;
    int is_wav;
    int64_t data_remaining; /* bytes of the WAV data chunk still to come; -1: until EOF */
    int eof;                /* no more bytes will be read from fd */
    int done;               /* everything delivered (or the final error reported) */
    int bad_sample;         /* a non-finite sample was met: report it on the next read */
    size_t buffer_start;    /* first unconsumed byte of buffer */
    size_t buffer_end;
    unsigned char buffer[PCM_STREAM_BUFFER_BYTES];
} pcm_stream;

/* Reads the stream's header (if `format->detect_wav` and it starts with RIFF/RF64) and fills
 * the stream's rate, channels and sample kind. An empty stream is MTLA_ERR_EMPTY. */
mtla_status pcm_stream_open(pcm_stream *stream, int fd, const char *name,
                            const mtla_stream_format *format, mtla_error *err);

/* Decodes up to `max_frames` complete sample frames into `out` (interleaved, channels floats
 * per frame, nominal range [-1, 1]). *frames = 0 with MTLA_OK means end of stream. A stream
 * that ends inside a frame yields MTLA_ERR_TRUNCATED after all complete frames. */
mtla_status pcm_stream_read(pcm_stream *stream, float *out, size_t max_frames, size_t *frames,
                            mtla_error *err);

/* 1 when pcm_stream_read would deliver a frame without reading the descriptor. */
int pcm_stream_ready(const pcm_stream *stream);

#endif
