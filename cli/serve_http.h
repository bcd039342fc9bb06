/* The HTTP side of mtla-st serve, on libwebsockets (docs/serve.md): one event-loop thread
 * parses requests, stores uploads, answers, and feeds live WebSocket audio to the worker pool
 * (serve_jobs.h), which wakes it with serve_http_wake.
 *
 *   GET  /health                     200 {"status": "ok", ...}, no key needed
 *   GET  /v1/models                  the model
 *   POST /v1/audio/translations      multipart/form-data: file, model, response_format, ...
 *   POST /v1/audio/transcriptions    the same (the model translates; its target language)
 *   GET  /v1/audio/stream            WebSocket: s16le 16 kHz audio in, --partial's jsonl out
 *
 * Every request is logged on one line on stderr: peer, method, path, status, seconds of audio,
 * milliseconds. */
#ifndef MTLA_CLI_SERVE_HTTP_H
#define MTLA_CLI_SERVE_HTTP_H

#include <stddef.h>

#include "mtla-st.h"
#include "serve_jobs.h"

typedef struct serve_http serve_http;

typedef struct serve_http_params {
    const char *host;     /* address to listen on, e.g. 127.0.0.1 */
    int port;
    const char *api_key;  /* NULL: no key asked for */
    size_t max_upload;    /* bytes of request body */
    int timeout_s;        /* a request must have arrived whole within this; a stream that
                             sends nothing for this long is ended */
    const mtla_model *model;
    const char *model_id; /* GET /v1/models */
    mtla_stream_params stream; /* live streams' defaults */
    int workers, queue;   /* for /health */
} serve_http_params;

/* Listens; on failure fills `message`. */
int serve_http_create(const serve_http_params *params, serve_http **out, char *message,
                      size_t size);
/* Serves until serve_http_stop, then stops accepting, lets what runs finish and its answers
 * go out, and returns. */
void serve_http_run(serve_http *server, serve_pool *pool);
/* Thread-safe: asks serve_http_run to stop. */
void serve_http_stop(serve_http *server);
/* Thread-safe: a job has news (serve_pool_params.notify). */
void serve_http_wake(void *server);
void serve_http_destroy(serve_http *server);

#endif
