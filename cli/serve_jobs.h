/* The translation side of mtla-st serve: one model, one translator per worker thread and a
 * bounded queue (docs/serve.md).
 *
 * A job is an uploaded file to translate, or a live stream that holds its worker until it
 * ends. The HTTP layer (serve_http.c), which runs on one thread, submits jobs and never waits
 * for them: a worker calls the pool's `notify` when a job has news (finished, or a stream has
 * events to send), and the HTTP thread then asks each of its jobs with serve_job_news.
 *
 * Admission is bounded: at most `workers` jobs run and `queue` more wait; beyond that
 * serve_pool_submit refuses, and the client is told to come back (503), so a burst never
 * turns into a growing backlog.
 *
 * A job has two owners, the pool and the connection, and is freed when both have let go:
 * a connection that closes early releases its job, which is then withdrawn from the queue or,
 * when running, told to stop. */
#ifndef MTLA_CLI_SERVE_JOBS_H
#define MTLA_CLI_SERVE_JOBS_H

#include <stddef.h>

#include "mtla-st.h"
#include "serve_format.h"

typedef struct serve_pool serve_pool;
typedef struct serve_job serve_job;

typedef struct serve_pool_params {
    const mtla_model *model;
    int workers;             /* translators, one thread each */
    int queue;               /* jobs that may wait for a worker */
    int threads;             /* CPU threads of each translator */
    int device;              /* -1: CPU; N: CUDA device N */
    mtla_decode_params decode;
    mtla_vad_params vad;     /* files: cut at pauses (capped at the model's longest input) */
    mtla_stream_params stream; /* live streams' defaults; on_event and user are the pool's */
    void (*notify)(void *user); /* called from a worker thread; must be thread-safe */
    void *notify_user;
} serve_pool_params;

/* Creates the translators and starts the workers; on failure fills `message`. */
int serve_pool_create(const serve_pool_params *params, serve_pool **out, char *message,
                      size_t size);
/* Finishes the queued and running jobs, then joins the workers and frees the translators. */
void serve_pool_destroy(serve_pool *pool);

/* Jobs running and waiting. */
void serve_pool_load(serve_pool *pool, int *running, int *queued);
/* 1 when serve_pool_submit would accept a job now. */
int serve_pool_can_admit(serve_pool *pool);
/* Queues `job`: 0, or -1 when the pool is full (the job stays the caller's to release). */
int serve_pool_submit(serve_pool *pool, serve_job *job);
/* Asks every live stream to finish (SIGTERM): their final events are still sent. */
void serve_pool_finish_streams(serve_pool *pool);

/* A job translating the uploaded file open on `fd` (the job closes it), named `filename` in
 * messages; `task` is "translate" or "transcribe". NULL when memory runs out. */
serve_job *serve_job_file(int fd, const char *filename, serve_format format, const char *task);
/* A job translating a live stream of 16 kHz s16le samples with these session settings
 * (on_event and user are replaced). */
serve_job *serve_job_stream(const mtla_stream_params *params);
/* The connection lets go of its job (see above). */
void serve_job_release(serve_pool *pool, serve_job *job);

typedef struct serve_job_news {
    int done;     /* finished: a file's result is ready, a stream has ended */
    int messages; /* a stream's messages are waiting (serve_stream_take) */
    int resume;   /* a stream's buffered audio has drained: read from the client again */
} serve_job_news;

void serve_job_news_get(serve_pool *pool, serve_job *job, serve_job_news *news);

/* A file job's answer, valid once done. */
typedef struct serve_result {
    int status;               /* HTTP status: 200, 400 (bad audio), 500 */
    const char *content_type;
    char *body;               /* owned by the job */
    size_t body_size;
    double audio_seconds;     /* of input translated */
    char error[512];          /* why, when status is not 200 */
} serve_result;

const serve_result *serve_job_result(const serve_job *job);

/* Live streams. serve_stream_feed appends audio bytes and returns 1 when the caller should
 * stop reading from the client until news says `resume` (more than 30 s of audio waits);
 * serve_stream_end says the client has sent everything. */
int serve_stream_feed(serve_pool *pool, serve_job *job, const void *bytes, size_t size);
void serve_stream_end(serve_pool *pool, serve_job *job);
/* Takes the oldest message to send (a JSON line without its newline; malloc'ed, the caller
 * frees it), or NULL when none waits. */
char *serve_stream_take(serve_pool *pool, serve_job *job, size_t *size);
/* Seconds of audio the stream has translated. */
double serve_stream_seconds(serve_pool *pool, serve_job *job);

#endif
