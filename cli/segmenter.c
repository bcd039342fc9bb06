#include "segmenter.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Samples [base, base + count) of the input, the oldest ones dropped once no utterance can
 * need them. */
typedef struct sample_window {
    float *data;
    size_t count, capacity;
    int64_t base;
} sample_window;

static int window_append(sample_window *w, const float *x, size_t n)
{
    if (w->count + n > w->capacity) {
        size_t capacity = w->capacity ? w->capacity : 16000 * 4;
        while (capacity < w->count + n)
            capacity *= 2;
        float *grown = realloc(w->data, capacity * sizeof *grown);
        if (!grown)
            return -1;
        w->data = grown;
        w->capacity = capacity;
    }
    memcpy(w->data + w->count, x, n * sizeof *x);
    w->count += n;
    return 0;
}

/* Forgets samples before `keep_from` (absolute index). */
static void window_trim(sample_window *w, int64_t keep_from)
{
    if (keep_from <= w->base)
        return;
    size_t drop = (size_t)(keep_from - w->base);
    if (drop > w->count)
        drop = w->count;
    memmove(w->data, w->data + drop, (w->count - drop) * sizeof *w->data);
    w->count -= drop;
    w->base += (int64_t)drop;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct text_buffer {
    char *text;
    size_t length;
    double score_sum;
    int pieces;
} text_buffer;

static int text_append(text_buffer *t, const char *piece, float score)
{
    size_t n = strlen(piece);
    char *grown = realloc(t->text, t->length + n + 2);
    if (!grown)
        return -1;
    t->text = grown;
    if (t->length && n)
        t->text[t->length++] = ' ';
    memcpy(t->text + t->length, piece, n + 1);
    t->length += n;
    t->score_sum += score;
    t->pieces++;
    return 0;
}

typedef struct run {
    translate_ctx *ctx;
    const char *name;
    segment_mode mode;
    output_writer *w;
    sample_window window;
    text_buffer joined;
    int32_t rate;
    int64_t samples; /* read so far */
    int status;      /* EXIT_OK until something fails */
} run;

/* Reports a problem with the input: on stderr, or kept in ctx->error (the first one) for a
 * caller that reports it itself. */
static void input_error(translate_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void input_error(translate_ctx *ctx, const char *fmt, ...)
{
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    if (!ctx->error)
        cli_error("%s", message);
    else if (!ctx->error[0])
        snprintf(ctx->error, ctx->error_size, "%s", message);
}

/* Translates samples [start, end) (absolute indices, inside the window). */
static void translate_span(run *r, int64_t start, int64_t end, int whole)
{
    if (r->status == EXIT_OUTPUT)
        return;
    translate_ctx *ctx = r->ctx;
    const float *x = r->window.data + (start - r->window.base);
    double t0 = now_seconds();
    mtla_translation tr;
    mtla_error err;
    mtla_status st =
        mtla_translate_samples(ctx->translator, x, (size_t)(end - start), &ctx->decode, &tr, &err);
    ctx->compute_seconds += now_seconds() - t0;
    double s0 = (double)start / r->rate, s1 = (double)end / r->rate;
    if (st != MTLA_OK) {
        /* An utterance too short for the model is skipped; anything else is an error. */
        if (!whole && (st == MTLA_ERR_EMPTY || st == MTLA_ERR_INVALID_ARGUMENT)) {
            if (ctx->verbose)
                cli_error("%s: %.2f-%.2f s skipped: %s", r->name, s0, s1, err.message);
            return;
        }
        input_error(ctx, "%s: %.2f-%.2f s: %s", r->name, s0, s1, err.message);
        r->status = EXIT_INPUT;
        return;
    }
    if (ctx->verbose)
        cli_error("%s: %.2f-%.2f s: %d tokens, score %.3f", r->name, s0, s1, (int)tr.token_count,
                  tr.score);
    if (r->mode == SEGMENTS_WHOLE && !whole) {
        if (text_append(&r->joined, tr.text, tr.score) != 0) {
            input_error(ctx, "out of memory");
            r->status = EXIT_INPUT;
        }
    } else if (output_record(r->w, s0, s1, tr.text, tr.score) != 0) {
        ctx->output_errno = errno ? errno : EIO;
        r->status = EXIT_OUTPUT;
    }
    mtla_translation_free(&tr);
}

/* Waits until `fd` is readable: 1; 0 when a stop was requested meanwhile; -1 when the reader
 * of a watched standard output went away (nobody would see what is translated next). */
static int wait_readable(const translate_ctx *ctx, int fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = ctx->watch_stdout ? STDOUT_FILENO : -1, .events = 0}};
    while (!*ctx->stop) {
        int n = poll(p, 2, -1);
        if (n > 0 && (p[1].revents & (POLLERR | POLLHUP)))
            return -1;
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return 1; /* let the read report it */
    }
    return 0;
}

int translate_audio(translate_ctx *ctx, mtla_audio *audio, int fd, const char *name,
                    segment_mode mode, output_writer *w)
{
    run r = {.ctx = ctx, .name = name, .mode = mode, .w = w, .rate = ctx->vad.sample_rate};
    r.status = EXIT_OK;
    mtla_error err;
    mtla_vad *vad;
    if (mtla_vad_create(&ctx->vad, &vad, &err) != MTLA_OK) {
        input_error(ctx, "%s", err.message);
        return EXIT_INPUT;
    }
    /* An utterance starts at most max_segment + padding before the VAD's position. */
    int64_t lookback = ((int64_t)ctx->vad.max_segment_ms + 2 * ctx->vad.padding_ms +
                        ctx->vad.min_silence_ms + 1000) *
                       r.rate / 1000;
    int64_t whole_limit = (int64_t)(WHOLE_LIMIT_SECONDS * r.rate);
    int64_t segment_limit = (int64_t)ctx->vad.max_segment_ms * r.rate / 1000;
    if (whole_limit > segment_limit)
        whole_limit = segment_limit; /* a model with a short maximum input (Whisper's 30 s) */
    /* Whole mode defers translating until the input proves longer than the limit. */
    int deferring = mode == SEGMENTS_WHOLE;
    mtla_segment pending[64];
    int npending = 0;
    float chunk[4096];

    while (r.status == EXIT_OK) {
        int ready = fd >= 0 ? wait_readable(ctx, fd)
                            : ctx->watch_stdout && output_closed(STDOUT_FILENO) ? -1 : 1;
        if (ready < 0) {
            ctx->output_errno = EPIPE;
            r.status = EXIT_OUTPUT;
            break;
        }
        if (ready == 0)
            break; /* SIGINT/SIGTERM: finish what was heard */
        size_t got = 0;
        if (mtla_audio_read(audio, chunk, sizeof chunk / sizeof chunk[0], &got, &err) != MTLA_OK) {
            input_error(ctx, "%s", err.message);
            r.status = EXIT_INPUT;
            break; /* what was heard before the problem is still translated below */
        }
        if (got == 0)
            break;
        ctx->audio_seconds += (double)got / r.rate;
        r.samples += (int64_t)got;
        if (window_append(&r.window, chunk, got) != 0 ||
            mtla_vad_accept(vad, chunk, got, &err) != MTLA_OK) {
            input_error(ctx, r.window.data ? "%s" : "out of memory", err.message);
            r.status = EXIT_INPUT;
            break;
        }
        int64_t position = mtla_vad_position(vad);
        if (deferring && position > whole_limit)
            deferring = 0;
        mtla_segment seg;
        while (mtla_vad_take(vad, &seg)) {
            if (deferring && npending < (int)(sizeof pending / sizeof pending[0]))
                pending[npending++] = seg;
            else {
                for (int i = 0; i < npending; i++)
                    translate_span(&r, pending[i].start, pending[i].end, 0);
                npending = 0;
                translate_span(&r, seg.start, seg.end, 0);
            }
        }
        if (!deferring) {
            for (int i = 0; i < npending; i++)
                translate_span(&r, pending[i].start, pending[i].end, 0);
            npending = 0;
            window_trim(&r.window, position - lookback);
        }
        if (*ctx->stop)
            break;
    }

    if (r.status != EXIT_OUTPUT) {
        int input_failed = r.status == EXIT_INPUT;
        if (deferring && !input_failed && r.window.count > 0) {
            /* A short input: one piece, as the model was trained. */
            translate_span(&r, r.window.base, r.window.base + (int64_t)r.window.count, 1);
        } else {
            mtla_vad_finish(vad);
            mtla_segment seg;
            for (int i = 0; i < npending; i++)
                translate_span(&r, pending[i].start, pending[i].end, 0);
            while (mtla_vad_take(vad, &seg))
                translate_span(&r, seg.start, seg.end, 0);
            if (mode == SEGMENTS_WHOLE && r.status != EXIT_OUTPUT && r.joined.pieces > 0) {
                double end = (double)(r.window.base + (int64_t)r.window.count) / r.rate;
                if (output_record(w, 0.0, end, r.joined.text,
                                  (float)(r.joined.score_sum / r.joined.pieces)) != 0) {
                    ctx->output_errno = errno ? errno : EIO;
                    r.status = EXIT_OUTPUT;
                }
            }
        }
        if (input_failed && r.status == EXIT_OK)
            r.status = EXIT_INPUT;
        if (r.status == EXIT_OK && r.samples == 0) {
            input_error(ctx, "%s: no audio", name);
            r.status = EXIT_INPUT;
        }
    }
    free(r.window.data);
    free(r.joined.text);
    mtla_vad_free(vad);
    return r.status;
}
