#include "partial.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

/* Turns the session's events into the chosen output. */
typedef struct printer {
    const partial_options *o;
    FILE *out;
    int32_t rate;
    size_t printed; /* txt to a pipe: bytes of the open utterance's text already written */
    int failed;     /* the output refused a write (errno: `error`) or its reader went away */
    int error;
} printer;

static void on_event(const mtla_stream_event *e, void *user)
{
    printer *p = user;
    FILE *f = p->out;
    if (p->failed)
        return;
    int final = e->type == MTLA_STREAM_FINAL;
    if (p->o->format == FORMAT_JSONL) {
        output_stream_event(f, e, p->rate);
    } else if (p->o->terminal) {
        /* The utterance's line again: committed text, then the tentative text dimmed. */
        fputs("\r\033[K", f);
        fputs(e->committed, f);
        if (!final && *e->tentative)
            fprintf(f, "%s\033[2m%s\033[0m", *e->committed ? " " : "", e->tentative);
        if (final && *e->committed)
            fputc('\n', f);
    } else {
        /* Only ever appended: committed text grows, and the final text starts with it. */
        size_t n = strlen(e->committed);
        if (n > p->printed) {
            fputs(e->committed + p->printed, f);
            p->printed = n;
        }
        if (final) {
            if (p->printed)
                fputc('\n', f);
            p->printed = 0;
        }
    }
    if (ferror(f) || fflush(f) != 0) {
        p->failed = 1;
        p->error = errno ? errno : EIO;
    }
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_until(double when)
{
    double wait = when - now_seconds();
    if (wait <= 0)
        return;
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL); /* a signal ends it early: the caller checks the stop flag */
}

/* 1 when `fd` has data (or an end or error to report) now, or within `ms` (-1: until a
 * signal or data); 0 otherwise, or when a stop was requested; -1 when the reader of a watched
 * standard output has gone away (output_closed). */
static int readable(int fd, int ms, const translate_ctx *ctx)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLIN},
                          {.fd = ctx->watch_stdout ? STDOUT_FILENO : -1, .events = 0}};
    while (!*ctx->stop) {
        int n = poll(p, 2, ms);
        if (n > 0 && (p[1].revents & (POLLERR | POLLHUP)))
            return -1;
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return 1; /* let the read report it */
    }
    return 0;
}

/* The output's reader went away: what is translated next would be lost. */
static void reader_gone(printer *pr)
{
    pr->failed = 1;
    pr->error = EPIPE;
}

/* Reads until buf holds `want` samples or the input ends (*eof). */
static int read_samples(mtla_audio *audio, float *buf, size_t want, size_t *n, int *eof,
                        const char *name)
{
    mtla_error err;
    while (*n < want) {
        size_t got = 0;
        if (mtla_audio_read(audio, buf + *n, want - *n, &got, &err) != MTLA_OK) {
            cli_error("%s: %s", name, err.message);
            *eof = 1;
            return EXIT_INPUT;
        }
        if (got == 0) {
            *eof = 1;
            break;
        }
        *n += got;
    }
    return EXIT_OK;
}

int translate_partial(translate_ctx *ctx, const partial_options *o, mtla_audio *audio, int fd,
                      const char *name, FILE *out)
{
    int32_t rate = o->stream.vad.sample_rate;
    printer pr = {.o = o, .out = out, .rate = rate};
    mtla_stream_params sp = o->stream;
    sp.on_event = on_event;
    sp.user = &pr;
    mtla_error err;
    mtla_stream *s;
    if (mtla_stream_create(ctx->translator, &sp, &s, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        return EXIT_INPUT;
    }
    size_t chunk = (size_t)rate / 10;    /* files: 100 ms per accept */
    size_t capacity = (size_t)rate * 30; /* at most 30 s of backlog in one accept */
    float *buf = malloc(capacity * sizeof *buf);
    if (!buf) {
        mtla_stream_free(s);
        cli_error("out of memory");
        return EXIT_INPUT;
    }
    int status = EXIT_OK, eof = 0;
    int64_t fed = 0;
    double started = now_seconds();
    while (!eof && !pr.failed && !*ctx->stop && status == EXIT_OK) {
        size_t n = 0;
        if (fd >= 0) {
            /* A live stream: wait for audio, then take everything that has arrived. */
            int ready = mtla_audio_ready(audio) ? 1 : readable(fd, -1, ctx);
            if (ready < 0)
                reader_gone(&pr);
            if (ready <= 0)
                break;
            do {
                size_t got = 0;
                if (mtla_audio_read(audio, buf + n, chunk * 4, &got, &err) != MTLA_OK) {
                    cli_error("%s: %s", name, err.message);
                    status = EXIT_INPUT;
                }
                eof = got == 0;
                n += got;
            } while (status == EXIT_OK && !eof && n + chunk * 4 <= capacity &&
                     (mtla_audio_ready(audio) || readable(fd, 0, ctx) > 0));
        } else if (ctx->watch_stdout && output_closed(STDOUT_FILENO)) {
            reader_gone(&pr);
            break;
        } else if (o->realtime) {
            /* A file as if live: the audio due by now, at least 100 ms more than fed. */
            double next = started + (double)(fed + (int64_t)chunk) / rate;
            if (now_seconds() < next) {
                sleep_until(next);
                continue;
            }
            int64_t due = (int64_t)((now_seconds() - started) * rate) - fed;
            size_t want = due > (int64_t)capacity ? capacity : (size_t)due;
            status = read_samples(audio, buf, want, &n, &eof, name);
        } else {
            status = read_samples(audio, buf, chunk, &n, &eof, name);
        }
        if (n == 0)
            continue;
        double t0 = now_seconds();
        if (mtla_stream_accept(s, buf, n, &err) != MTLA_OK) {
            cli_error("%s: %s", name, err.message);
            status = EXIT_INPUT;
        }
        ctx->compute_seconds += now_seconds() - t0;
        ctx->audio_seconds += (double)n / rate;
        fed += (int64_t)n;
    }
    /* A signal: the audio already read from the descriptor was heard too. */
    while (fd >= 0 && *ctx->stop && status == EXIT_OK && !pr.failed && mtla_audio_ready(audio)) {
        size_t got = 0;
        if (mtla_audio_read(audio, buf, capacity, &got, &err) != MTLA_OK || got == 0)
            break;
        if (mtla_stream_accept(s, buf, got, &err) != MTLA_OK) {
            cli_error("%s: %s", name, err.message);
            status = EXIT_INPUT;
        }
        fed += (int64_t)got;
        ctx->audio_seconds += (double)got / rate;
    }
    /* End of input, a signal or an input error: what was heard is finished. */
    if (!pr.failed && mtla_stream_finish(s, &err) != MTLA_OK) {
        cli_error("%s: %s", name, err.message);
        status = EXIT_INPUT;
    }
    if (ctx->verbose) {
        int64_t steps, skipped;
        mtla_stream_counts(s, &steps, &skipped);
        cli_error("%s: %.2f s of audio, %lld partial translations, %lld steps skipped", name,
                  (double)fed / rate, (long long)steps, (long long)skipped);
    }
    mtla_stream_free(s);
    free(buf);
    if (pr.failed) {
        ctx->output_errno = pr.error;
        return EXIT_OUTPUT;
    }
    if (status == EXIT_OK && fed == 0) {
        cli_error("%s: no audio", name);
        status = EXIT_INPUT;
    }
    return status;
}
