#include "serve_jobs.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "segmenter.h"

/* A stream stops being read from its client while this much audio waits: 30 s of s16le. */
#define STREAM_BACKLOG_BYTES (16000 * 2 * 30)

typedef enum job_kind { JOB_FILE, JOB_STREAM } job_kind;
typedef enum job_state { JOB_NEW, JOB_QUEUED, JOB_RUNNING, JOB_DONE } job_state;

typedef struct message {
    struct message *next;
    size_t size;
    char text[];
} message;

typedef struct byte_buffer {
    unsigned char *data;
    size_t size, capacity;
} byte_buffer;

struct serve_job {
    job_kind kind;
    job_state state;
    int refs; /* the pool's and the connection's */
    serve_pool *pool;
    serve_job *next;                /* in the queue */
    volatile sig_atomic_t cancelled; /* the connection has gone: stop early */
    /* a file */
    int fd;
    char filename[256];
    serve_format format;
    const char *task;
    serve_result result;
    /* a stream; everything below is guarded by the pool's mutex */
    mtla_stream_params stream;
    pthread_cond_t arrived; /* audio, or the end, has arrived */
    byte_buffer audio;
    int ended;     /* the client has sent everything (or gone) */
    int throttled; /* feed asked the client to wait */
    int resume;    /* ... and the backlog has drained since */
    message *out_head, *out_tail;
    double stream_seconds;
};

typedef struct worker {
    serve_pool *pool;
    pthread_t thread;
    mtla_translator *translator;
    translate_ctx ctx;
    char error[512];
} worker;

struct serve_pool {
    serve_pool_params p;
    pthread_mutex_t mutex;
    pthread_cond_t work;
    serve_job *head, *tail;
    int queued, running;
    int stopping;
    serve_job *streams[256]; /* running streams, for serve_pool_finish_streams */
    worker *workers;
    int started;
};

static void job_free(serve_job *job)
{
    if (job->fd >= 0)
        close(job->fd);
    free(job->result.body);
    free(job->audio.data);
    for (message *m = job->out_head, *next; m; m = next) {
        next = m->next;
        free(m);
    }
    if (job->kind == JOB_STREAM)
        pthread_cond_destroy(&job->arrived);
    free(job);
}

/* Drops one owner's reference; the caller holds the mutex. */
static void job_unref_locked(serve_job *job)
{
    if (--job->refs == 0)
        job_free(job);
}

static serve_job *job_new(job_kind kind)
{
    serve_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->kind = kind;
    job->refs = 1;
    job->fd = -1;
    return job;
}

serve_job *serve_job_file(int fd, const char *filename, serve_format format, const char *task)
{
    serve_job *job = job_new(JOB_FILE);
    if (!job)
        return NULL;
    job->fd = fd;
    snprintf(job->filename, sizeof job->filename, "%s", filename);
    job->format = format;
    job->task = task;
    return job;
}

serve_job *serve_job_stream(const mtla_stream_params *params)
{
    serve_job *job = job_new(JOB_STREAM);
    if (!job)
        return NULL;
    if (pthread_cond_init(&job->arrived, NULL) != 0) {
        free(job);
        return NULL;
    }
    job->stream = *params;
    return job;
}

/* ---------------------------------------------------------------- the pool */

static int admits_locked(const serve_pool *pool)
{
    return !pool->stopping && pool->running + pool->queued < pool->p.workers + pool->p.queue;
}

void serve_pool_load(serve_pool *pool, int *running, int *queued)
{
    pthread_mutex_lock(&pool->mutex);
    *running = pool->running;
    *queued = pool->queued;
    pthread_mutex_unlock(&pool->mutex);
}

int serve_pool_can_admit(serve_pool *pool)
{
    pthread_mutex_lock(&pool->mutex);
    int ok = admits_locked(pool);
    pthread_mutex_unlock(&pool->mutex);
    return ok;
}

int serve_pool_submit(serve_pool *pool, serve_job *job)
{
    pthread_mutex_lock(&pool->mutex);
    int ok = admits_locked(pool);
    if (ok) {
        job->pool = pool;
        job->refs++;
        job->state = JOB_QUEUED;
        job->next = NULL;
        if (pool->tail)
            pool->tail->next = job;
        else
            pool->head = job;
        pool->tail = job;
        pool->queued++;
        pthread_cond_signal(&pool->work);
    }
    pthread_mutex_unlock(&pool->mutex);
    return ok ? 0 : -1;
}

/* Takes `job` out of the queue; the caller holds the mutex. */
static void withdraw_locked(serve_pool *pool, serve_job *job)
{
    serve_job **p = &pool->head, *prev = NULL;
    while (*p && *p != job) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p)
        return;
    *p = job->next;
    if (pool->tail == job)
        pool->tail = prev;
    pool->queued--;
    job->state = JOB_DONE;
    job_unref_locked(job); /* the pool's reference */
}

void serve_job_release(serve_pool *pool, serve_job *job)
{
    if (!job)
        return;
    /* job->pool is set by serve_pool_submit, on the caller's thread: unset, no worker knows it */
    if (!pool || !job->pool) {
        job_free(job);
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    job->cancelled = 1;
    if (job->state == JOB_QUEUED)
        withdraw_locked(pool, job);
    if (job->kind == JOB_STREAM) {
        job->ended = 1;
        pthread_cond_signal(&job->arrived);
    }
    job_unref_locked(job);
    pthread_mutex_unlock(&pool->mutex);
}

void serve_pool_finish_streams(serve_pool *pool)
{
    pthread_mutex_lock(&pool->mutex);
    for (size_t i = 0; i < sizeof pool->streams / sizeof pool->streams[0]; i++)
        if (pool->streams[i]) {
            pool->streams[i]->ended = 1;
            pthread_cond_signal(&pool->streams[i]->arrived);
        }
    for (serve_job *job = pool->head; job; job = job->next)
        if (job->kind == JOB_STREAM)
            job->ended = 1; /* it will start, finish at once and say so */
    pthread_mutex_unlock(&pool->mutex);
}

void serve_job_news_get(serve_pool *pool, serve_job *job, serve_job_news *news)
{
    pthread_mutex_lock(&pool->mutex);
    news->done = job->state == JOB_DONE;
    news->messages = job->out_head != NULL;
    news->resume = job->resume;
    job->resume = 0;
    pthread_mutex_unlock(&pool->mutex);
}

const serve_result *serve_job_result(const serve_job *job)
{
    return &job->result;
}

/* ---------------------------------------------------------------- files */

/* `message` with every occurrence of `path` replaced by `name`: the client knows its upload
 * by the name it gave, not by the descriptor it is read through. */
static void rename_path(char *text, size_t size, const char *path, const char *name)
{
    char out[512];
    size_t n = 0, plen = strlen(path);
    for (const char *p = text; *p && n + 1 < sizeof out;) {
        if (strncmp(p, path, plen) == 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%s", name);
            if (n >= sizeof out)
                n = sizeof out - 1;
            p += plen;
        } else {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    snprintf(text, size, "%s", out);
}

static void fail_job(serve_job *job, int status, const char *message)
{
    serve_result *r = &job->result;
    r->status = status;
    snprintf(r->error, sizeof r->error, "%s", message);
    r->content_type = "application/json";
    r->body = serve_format_error(r->error,
                                 status == 400 ? "invalid_request_error" : "server_error",
                                 &r->body_size);
}

static void run_file(worker *w, serve_job *job)
{
    serve_pool *pool = w->pool;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", job->fd);
    mtla_error err;
    mtla_audio *audio;
    if (mtla_audio_open_file(path, w->ctx.fbank.sample_rate, &audio, &err) != MTLA_OK) {
        rename_path(err.message, sizeof err.message, path, job->filename);
        fail_job(job, err.status == MTLA_ERR_NO_MEMORY || err.status == MTLA_ERR_INTERNAL ? 500
                                                                                          : 400,
                 err.message);
        return;
    }
    serve_records records = {0};
    output_writer writer;
    output_begin_sink(&writer, serve_records_add, &records);
    w->error[0] = '\0';
    w->ctx.stop = &job->cancelled;
    w->ctx.audio_seconds = 0;
    segment_mode mode = serve_format_segmented(job->format) ? SEGMENTS_EACH : SEGMENTS_WHOLE;
    int status = translate_audio(&w->ctx, audio, -1, job->filename, mode, &writer);
    double duration = mtla_audio_duration(audio);
    mtla_audio_close(audio);
    job->result.audio_seconds = w->ctx.audio_seconds;
    if (duration < 0)
        duration = w->ctx.audio_seconds;
    if (status == EXIT_OK) {
        serve_result *r = &job->result;
        r->body = serve_format_result(job->format, &records, job->task,
                                      mtla_model_target_language(pool->p.model), duration,
                                      &r->body_size);
        r->status = 200;
        r->content_type = serve_format_content_type(job->format);
        if (!r->body)
            fail_job(job, 500, "out of memory formatting the result");
    } else if (status == EXIT_INPUT) {
        fail_job(job, 400, w->error[0] ? w->error : "the audio could not be translated");
    } else {
        fail_job(job, 500, "out of memory collecting the result");
    }
    serve_records_free(&records);
}

/* ---------------------------------------------------------------- streams */

static void push_message(serve_job *job, const char *text, size_t size)
{
    message *m = malloc(sizeof *m + size + 1);
    if (!m)
        return; /* an event lost to a full memory; the stream goes on */
    m->next = NULL;
    m->size = size;
    memcpy(m->text, text, size);
    m->text[size] = '\0';
    serve_pool *pool = job->pool;
    pthread_mutex_lock(&pool->mutex);
    if (job->out_tail)
        job->out_tail->next = m;
    else
        job->out_head = m;
    job->out_tail = m;
    pthread_mutex_unlock(&pool->mutex);
    pool->p.notify(pool->p.notify_user);
}

static void on_stream_event(const mtla_stream_event *e, void *user)
{
    serve_job *job = user;
    if (job->cancelled)
        return;
    char *line = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&line, &size);
    if (!f)
        return;
    output_stream_event(f, e, job->stream.vad.sample_rate);
    if (fclose(f) == 0 && size > 0)
        push_message(job, line, size - 1); /* without the newline: one event per message */
    free(line);
}

static void push_status(serve_job *job, const char *type, const char *error, double seconds)
{
    char text[768];
    int n;
    if (error) {
        size_t size = 0;
        char *body = serve_format_error(error, "invalid_request_error", &size);
        n = snprintf(text, sizeof text, "{\"type\":\"%s\",\"error\":%s}", type,
                     body ? body : "null");
        free(body);
    } else {
        n = snprintf(text, sizeof text, "{\"type\":\"%s\",\"audio_seconds\":%.3f}", type, seconds);
    }
    if (n > 0)
        push_message(job, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* Waits for audio or the end, and takes everything that has arrived (steps coalesce, as in
 * `mtla-st --partial -`). Returns 1 when the client has ended. */
static int stream_take_audio(serve_pool *pool, serve_job *job, byte_buffer *spare)
{
    pthread_mutex_lock(&pool->mutex);
    while (job->audio.size < 2 && !job->ended)
        pthread_cond_wait(&job->arrived, &pool->mutex);
    byte_buffer taken = job->audio;
    job->audio = *spare;
    job->audio.size = 0;
    /* an odd byte, half a sample, waits for the rest */
    if (taken.size % 2) {
        job->audio.data[0] = taken.data[taken.size - 1];
        job->audio.size = 1;
        taken.size--;
    }
    *spare = taken;
    int ended = job->ended && job->audio.size < 2;
    int wake = 0;
    if (job->throttled) {
        job->throttled = 0;
        job->resume = 1;
        wake = 1;
    }
    pthread_mutex_unlock(&pool->mutex);
    if (wake)
        pool->p.notify(pool->p.notify_user);
    return ended;
}

static void run_stream(worker *w, serve_job *job)
{
    serve_pool *pool = w->pool;
    mtla_stream_params sp = job->stream;
    sp.on_event = on_stream_event;
    sp.user = job;
    mtla_error err;
    mtla_stream *s;
    if (sp.vad.sample_rate != 16000) {
        push_status(job, "error", "this model does not take 16 kHz audio", 0);
        return;
    }
    if (mtla_stream_create(w->translator, &sp, &s, &err) != MTLA_OK) {
        push_status(job, "error", err.message, 0);
        return;
    }
    /* The spare buffer starts with room for the odd byte swapped in. */
    byte_buffer spare = {malloc(STREAM_BACKLOG_BYTES), 0, STREAM_BACKLOG_BYTES};
    float *samples = NULL;
    size_t samples_capacity = 0;
    int failed = spare.data == NULL;
    int64_t fed = 0;
    while (!failed && !job->cancelled) {
        int ended = stream_take_audio(pool, job, &spare);
        size_t n = spare.size / 2;
        if (n > samples_capacity) {
            float *grown = realloc(samples, n * sizeof *grown);
            if (!grown) {
                push_status(job, "error", "out of memory", 0);
                failed = 1;
                break;
            }
            samples = grown;
            samples_capacity = n;
        }
        for (size_t i = 0; i < n; i++) {
            int16_t v = (int16_t)(uint16_t)(spare.data[2 * i] | spare.data[2 * i + 1] << 8);
            samples[i] = (float)v / 32768.0f;
        }
        if (n && mtla_stream_accept(s, samples, n, &err) != MTLA_OK) {
            push_status(job, "error", err.message, 0);
            failed = 1;
        }
        fed += (int64_t)n;
        if (ended)
            break;
    }
    if (!failed && !job->cancelled) {
        if (mtla_stream_finish(s, &err) != MTLA_OK)
            push_status(job, "error", err.message, 0);
        else
            push_status(job, "done", NULL, (double)fed / sp.vad.sample_rate);
    }
    pthread_mutex_lock(&pool->mutex);
    job->stream_seconds = (double)fed / sp.vad.sample_rate;
    pthread_mutex_unlock(&pool->mutex);
    mtla_stream_free(s);
    free(samples);
    free(spare.data);
}

int serve_stream_feed(serve_pool *pool, serve_job *job, const void *bytes, size_t size)
{
    pthread_mutex_lock(&pool->mutex);
    byte_buffer *b = &job->audio;
    int ok = 1;
    if (b->size + size > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 65536;
        while (capacity < b->size + size)
            capacity *= 2;
        unsigned char *grown = realloc(b->data, capacity);
        if (grown) {
            b->data = grown;
            b->capacity = capacity;
        } else {
            ok = 0;
        }
    }
    if (ok) {
        memcpy(b->data + b->size, bytes, size);
        b->size += size;
        pthread_cond_signal(&job->arrived);
    }
    int pause = !ok || b->size >= STREAM_BACKLOG_BYTES;
    if (pause)
        job->throttled = 1;
    pthread_mutex_unlock(&pool->mutex);
    return pause;
}

void serve_stream_end(serve_pool *pool, serve_job *job)
{
    pthread_mutex_lock(&pool->mutex);
    job->ended = 1;
    pthread_cond_signal(&job->arrived);
    pthread_mutex_unlock(&pool->mutex);
}

char *serve_stream_take(serve_pool *pool, serve_job *job, size_t *size)
{
    pthread_mutex_lock(&pool->mutex);
    message *m = job->out_head;
    if (m) {
        job->out_head = m->next;
        if (!job->out_head)
            job->out_tail = NULL;
    }
    pthread_mutex_unlock(&pool->mutex);
    if (!m)
        return NULL;
    /* The message block becomes the string: its text moves to the front. */
    *size = m->size;
    memmove(m, m->text, m->size + 1);
    return (char *)m;
}

double serve_stream_seconds(serve_pool *pool, serve_job *job)
{
    pthread_mutex_lock(&pool->mutex);
    double seconds = job->stream_seconds;
    pthread_mutex_unlock(&pool->mutex);
    return seconds;
}

/* ---------------------------------------------------------------- workers */

static void register_stream(serve_pool *pool, serve_job *job, serve_job *value)
{
    for (size_t i = 0; i < sizeof pool->streams / sizeof pool->streams[0]; i++)
        if (pool->streams[i] == job) {
            pool->streams[i] = value;
            return;
        }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    serve_pool *pool = w->pool;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->work, &pool->mutex);
        if (!pool->head)
            break; /* stopping, and nothing left to do */
        serve_job *job = pool->head;
        pool->head = job->next;
        if (!pool->head)
            pool->tail = NULL;
        pool->queued--;
        pool->running++;
        job->state = JOB_RUNNING;
        if (job->kind == JOB_STREAM)
            register_stream(pool, NULL, job);
        pthread_mutex_unlock(&pool->mutex);

        if (job->kind == JOB_FILE)
            run_file(w, job);
        else
            run_stream(w, job);

        pthread_mutex_lock(&pool->mutex);
        if (job->kind == JOB_STREAM)
            register_stream(pool, job, NULL);
        job->state = JOB_DONE;
        pool->running--;
        job_unref_locked(job);
        pthread_mutex_unlock(&pool->mutex);
        pool->p.notify(pool->p.notify_user);
        pthread_mutex_lock(&pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

int serve_pool_create(const serve_pool_params *params, serve_pool **out, char *message,
                      size_t size)
{
    *out = NULL;
    if ((size_t)params->workers > sizeof ((serve_pool *)0)->streams / sizeof(serve_job *)) {
        snprintf(message, size, "at most 256 workers");
        return -1;
    }
    serve_pool *pool = calloc(1, sizeof *pool);
    worker *workers = calloc((size_t)params->workers, sizeof *workers);
    if (!pool || !workers) {
        free(pool);
        free(workers);
        snprintf(message, size, "out of memory");
        return -1;
    }
    pool->p = *params;
    pool->workers = workers;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->work, NULL);
    mtla_translator_params tp = mtla_translator_default_params();
    tp.threads = params->threads;
    tp.device = params->device;
    for (int i = 0; i < params->workers; i++) {
        worker *w = &workers[i];
        mtla_error err;
        w->pool = pool;
        if (mtla_translator_create(params->model, &tp, &w->translator, &err) != MTLA_OK) {
            snprintf(message, size, "%s", err.message);
            serve_pool_destroy(pool);
            return -1;
        }
        w->ctx.model = params->model;
        w->ctx.translator = w->translator;
        w->ctx.decode = params->decode;
        w->ctx.fbank = mtla_model_fbank_params(params->model);
        w->ctx.vad = params->vad;
        w->ctx.error = w->error;
        w->ctx.error_size = sizeof w->error;
        int e = pthread_create(&w->thread, NULL, worker_main, w);
        if (e != 0) {
            mtla_translator_free(w->translator);
            w->translator = NULL;
            snprintf(message, size, "cannot start a worker thread: %s", strerror(e));
            serve_pool_destroy(pool);
            return -1;
        }
        pool->started++;
    }
    *out = pool;
    return 0;
}

void serve_pool_destroy(serve_pool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->mutex);
    for (int i = 0; i < pool->started; i++)
        pthread_join(pool->workers[i].thread, NULL);
    for (int i = 0; i < pool->p.workers; i++)
        mtla_translator_free(pool->workers[i].translator);
    pthread_cond_destroy(&pool->work);
    pthread_mutex_destroy(&pool->mutex);
    free(pool->workers);
    free(pool);
}
