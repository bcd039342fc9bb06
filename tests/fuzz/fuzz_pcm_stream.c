/* Standard-input audio (frontend/pcm_stream.c through mtla_audio_open_fd, resampled to 16 kHz
 * by libsoxr as mtla-st does): raw PCM or a WAV/RF64 stream arriving in pieces.
 *
 * Input layout: byte 0 selects the stream format (bit 0 detect_wav, bit 1 f32 rather than s16,
 * bits 2-4 one of 8 raw rates, bits 5-7 channels - 1); byte 1 is the number K of piece sizes
 * that follow as K little-endian 16-bit values (0: one piece); the rest is the stream. The
 * stream is sent through a SOCK_SEQPACKET socket, one packet per piece (cycling through the
 * sizes), so each read() of the reader returns exactly one piece, whatever the timing. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mtla-st.h"

typedef struct sender {
    int fd;
    const uint8_t *data;
    size_t size;
    const uint16_t *pieces;
    size_t piece_count;
} sender;

static void *send_all(void *arg)
{
    sender *s = arg;
    size_t at = 0;
    for (size_t k = 0; at < s->size; k++) {
        size_t n = s->piece_count ? s->pieces[k % s->piece_count] : s->size;
        if (n == 0)
            n = 1; /* an empty packet would read as end of file */
        if (n > s->size - at)
            n = s->size - at;
        if (send(s->fd, s->data + at, n, MSG_NOSIGNAL) != (ssize_t)n)
            break; /* the reader gave up and closed its end */
        at += n;
    }
    close(s->fd);
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int32_t rates[8] = {16000, 8000, 44100, 48000, 1000, 22050, 768000, 11025};
    if (size < 2)
        return 0;
    uint8_t control = data[0];
    size_t piece_count = data[1];
    if (size < 2 + 2 * piece_count)
        return 0;
    uint16_t pieces[255];
    for (size_t k = 0; k < piece_count; k++)
        pieces[k] = (uint16_t)(data[2 + 2 * k] | data[3 + 2 * k] << 8);
    size_t head = 2 + 2 * piece_count;

    mtla_stream_format format = mtla_stream_format_default();
    format.detect_wav = control & 1;
    format.encoding = control & 2 ? MTLA_PCM_F32LE : MTLA_PCM_S16LE;
    format.sample_rate = rates[(control >> 2) & 7];
    format.channels = 1 + (control >> 5);

    int fds[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) != 0)
        abort();
    sender s = {fds[1], data + head, size - head, pieces, piece_count};
    pthread_t thread;
    if (pthread_create(&thread, NULL, send_all, &s) != 0)
        abort();

    mtla_audio *audio = NULL;
    mtla_error err;
    if (mtla_audio_open_fd(fds[0], "standard input", &format, 16000, &audio, &err) == MTLA_OK) {
        float samples[4096];
        size_t count;
        while (mtla_audio_read(audio, samples, 4096, &count, &err) == MTLA_OK && count > 0) {
            for (size_t i = 0; i < count; i++)
                if (!(samples[i] == samples[i]))
                    abort(); /* a NaN reached the frontend */
        }
        mtla_audio_close(audio);
    }
    close(fds[0]);
    pthread_join(thread, NULL);
    return 0;
}
