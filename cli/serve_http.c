#include "serve_http.h"

#include <libwebsockets.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "serve_format.h"

/* Request bodies are answered in pieces of this size, one per writeable callback. */
#define SEND_CHUNK 16384

typedef enum route {
    ROUTE_UNKNOWN,
    ROUTE_HEALTH,
    ROUTE_MODELS,
    ROUTE_TRANSLATIONS,
    ROUTE_TRANSCRIPTIONS,
    ROUTE_STREAM
} route;

/* Form fields read besides the file (the rest, e.g. temperature or prompt, are ignored). */
enum { PARAM_MODEL, PARAM_RESPONSE_FORMAT, PARAM_COUNT };
static const char *const form_params[PARAM_COUNT] = {"model", "response_format"};

/* One request (an HTTP transaction, or a WebSocket for its lifetime): libwebsockets' per-session
 * data, zeroed by it when a transaction starts. */
typedef struct conn {
    int active; /* set up by conn_start, torn down by conn_end */
    serve_http *server;
    struct lws *wsi;
    struct conn *prev, *next; /* server->waiting: those with a job */
    int listed;
    route route;
    const char *method;
    char path[128];
    char peer[64];
    double started;
    /* A request must have arrived whole by this deadline; a stream is ended when it has sent
     * nothing for as long. (libwebsockets 4.1's own wsi timer cannot be cancelled.) */
    lws_sorted_usec_list_t deadline;
    /* the upload */
    struct lws_spa *spa;
    int fd; /* the file part, in an unlinked temporary file; -1 before it */
    size_t file_bytes;
    int in_file, file_seen, file_complete;
    char filename[200];
    int body_status; /* the first problem with the body: its status and message */
    char body_problem[300];
    int answered;  /* the answer is decided: the rest of the body is read and dropped */
    int body_done; /* the whole body has arrived (or there is none) */
    int sent_all;  /* the whole answer has gone out, waiting for the body to end */
    /* the answer */
    serve_job *job;
    int status;
    const char *content_type;
    unsigned char *body; /* LWS_PRE bytes of headroom, then body_size bytes */
    size_t body_size, sent;
    int responding, headers_sent, retry_after, auth_challenge, close_after;
    double audio_seconds;
    /* a WebSocket */
    int ws;
    mtla_stream_params stream;
    char text[64]; /* a text message being received */
    size_t text_size;
    int paused; /* reading from the client is paused until the backlog drains */
    int ended;  /* end of audio passed on */
} conn;

struct serve_http {
    serve_http_params p;
    struct lws_context *context;
    serve_pool *pool;
    atomic_int stop;
    int draining;
    conn *waiting;
    int busy; /* requests begun and not yet answered in full */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

static route route_of(const char *path)
{
    static const struct {
        const char *path;
        route route;
    } routes[] = {{"/health", ROUTE_HEALTH},
                  {"/v1/models", ROUTE_MODELS},
                  {"/v1/audio/translations", ROUTE_TRANSLATIONS},
                  {"/v1/audio/transcriptions", ROUTE_TRANSCRIPTIONS},
                  {"/v1/audio/stream", ROUTE_STREAM}};
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(path, routes[i].path) == 0)
            return routes[i].route;
    return ROUTE_UNKNOWN;
}

static const char *method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes token;
        const char *name;
    } methods[] = {{WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},
                   {WSI_TOKEN_OPTIONS_URI, "OPTIONS"}, {WSI_TOKEN_PUT_URI, "PUT"},
                   {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_DELETE_URI, "DELETE"},
                   {WSI_TOKEN_HEAD_URI, "HEAD"}};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].token) > 0)
            return methods[i].name;
    return "?";
}

static void conn_list(conn *c)
{
    serve_http *s = c->server;
    if (c->listed)
        return;
    c->prev = NULL;
    c->next = s->waiting;
    if (s->waiting)
        s->waiting->prev = c;
    s->waiting = c;
    c->listed = 1;
}

static void conn_unlist(conn *c)
{
    if (!c->listed)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->server->waiting = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->listed = 0;
}

static void conn_start(conn *c, struct lws *wsi, const char *path)
{
    memset(c, 0, sizeof *c);
    c->active = 1;
    c->server = lws_context_user(lws_get_context(wsi));
    c->wsi = wsi;
    c->fd = -1;
    c->method = method_of(wsi);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->route = route_of(c->path);
    c->started = now_ms();
    /* libwebsockets waits for a body after POST, PUT and PATCH (100 MB without a length) */
    int body = strcmp(c->method, "POST") == 0 || strcmp(c->method, "PUT") == 0 ||
               strcmp(c->method, "PATCH") == 0;
    c->body_done = !body;
    c->close_after = body && strcmp(c->method, "POST") != 0;
    if (lws_get_peer_simple(wsi, c->peer, sizeof c->peer) == NULL)
        snprintf(c->peer, sizeof c->peer, "-");
    c->server->busy++;
}

/* The request's one log line. 499: the client went away before its answer was sent. */
static void conn_log(conn *c, int status)
{
    fprintf(stderr, "mtla-st serve: %s \"%s %s\" %d %.2f s audio %.0f ms\n", c->peer, c->method,
            c->path, status, c->audio_seconds, now_ms() - c->started);
}

static void on_deadline(lws_sorted_usec_list_t *sul);

/* (Re)starts the request's deadline, timeout seconds from now. */
static void arm_deadline(conn *c)
{
    lws_sul_schedule(lws_get_context(c->wsi), 0, &c->deadline, on_deadline,
                     (lws_usec_t)c->server->p.timeout_s * LWS_US_PER_SEC);
}

/* Everything a request holds, at its end however it ends. */
static void conn_end(conn *c)
{
    if (!c->active)
        return;
    serve_http *s = c->server;
    if (c->ws || !c->sent_all)
        conn_log(c, c->ws ? 101 : 499);
    c->active = 0;
    lws_sul_cancel(&c->deadline);
    conn_unlist(c);
    if (c->job) {
        serve_job_release(s->pool, c->job);
        c->job = NULL;
    }
    if (c->spa)
        lws_spa_destroy(c->spa);
    c->spa = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->body);
    c->body = NULL;
    s->busy--;
}

/* Decides the answer and asks to be called when the connection can take it. The body is
 * copied. */
static void respond(conn *c, int status, const char *content_type, const char *body, size_t size)
{
    free(c->body);
    c->body = malloc(LWS_PRE + size + 1);
    c->status = status;
    c->content_type = content_type;
    c->body_size = c->body ? size : 0;
    if (c->body && size)
        memcpy(c->body + LWS_PRE, body, size);
    if (!c->body)
        c->status = 500;
    c->responding = 1;
    lws_callback_on_writable(c->wsi);
}

static void respond_error(conn *c, int status, const char *message)
{
    const char *type = status == 401   ? "authentication_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    size_t size = 0;
    char *body = serve_format_error(message, type, &size);
    respond(c, body ? status : 500, "application/json", body ? body : "", body ? size : 0);
    free(body);
    c->retry_after = status == 503;
    c->auth_challenge = status == 401;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

static int write_headers(conn *c)
{
    unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    struct lws *wsi = c->wsi;
    if (lws_add_http_common_headers(wsi, (unsigned)c->status, c->content_type, c->body_size, &p,
                                    end) ||
        (c->retry_after && add_header(wsi, "retry-after:", "1", &p, end)) ||
        (c->auth_challenge && add_header(wsi, "www-authenticate:", "Bearer", &p, end)) ||
        (c->close_after && add_header(wsi, "connection:", "close", &p, end)) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    c->headers_sent = 1;
    return 0;
}

/* The answer has gone out and the body is in: the next request may come, or the connection
 * closes. Returns what the callback returns. */
static int finish_transaction(conn *c)
{
    struct lws *wsi = c->wsi;
    int close_after = c->close_after;
    conn_log(c, c->status);
    conn_end(c); /* c is freed by libwebsockets when the transaction completes */
    if (close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* One writeable callback's worth of the answer. Returns what the callback returns. */
static int write_response(conn *c)
{
    struct lws *wsi = c->wsi;
    if (!c->responding)
        return 0;
    if (!c->headers_sent) {
        if (write_headers(c) != 0)
            return -1;
        if (c->body_size) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    if (c->sent < c->body_size) {
        size_t n = c->body_size - c->sent < SEND_CHUNK ? c->body_size - c->sent : SEND_CHUNK;
        int final = c->sent + n == c->body_size;
        if (lws_write(wsi, c->body + LWS_PRE + c->sent, n,
                      final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
            return -1;
        c->sent += n;
        if (!final) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    c->sent_all = 1;
    if (!c->body_done && !c->close_after)
        return 0; /* the rest of the body is dropped first (finish_transaction) */
    return finish_transaction(c);
}

/* Writes an answer at once, while a WebSocket upgrade is being considered (the connection is
 * still plain HTTP and is closed after it). The status line is written here: libwebsockets
 * does not know the request's HTTP version yet, and would say 1.0, which WebSocket clients
 * refuse. */
static void answer_upgrade(conn *c, int status, const char *message)
{
    static const struct {
        int status;
        const char *reason;
    } reasons[] = {{400, "Bad Request"}, {401, "Unauthorized"}, {404, "Not Found"},
                   {503, "Service Unavailable"}};
    const char *reason = "Error";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].status == status)
            reason = reasons[i].reason;
    respond_error(c, status, message);
    c->responding = 0;
    size_t size = 0;
    char *text = NULL;
    FILE *f = open_memstream(&text, &size);
    if (f) {
        fprintf(f, "HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n%s%s"
                "connection: close\r\n\r\n",
                c->status, reason, c->body_size, c->retry_after ? "retry-after: 1\r\n" : "",
                c->auth_challenge ? "www-authenticate: Bearer\r\n" : "");
        fwrite(c->body + LWS_PRE, 1, c->body_size, f);
    }
    if (f && fclose(f) == 0) {
        unsigned char *buf = malloc(LWS_PRE + size);
        if (buf) {
            memcpy(buf + LWS_PRE, text, size);
            lws_write(c->wsi, buf + LWS_PRE, size, LWS_WRITE_HTTP_HEADERS);
            free(buf);
        }
    }
    free(text);
    c->sent_all = 1;
    conn_log(c, c->status);
    conn_end(c);
}

/* ---------------------------------------------------------------- requests */

static int authorized(conn *c, int allow_query)
{
    const char *key = c->server->p.api_key;
    if (!key)
        return 1;
    char given[512] = "";
    const char *token = NULL;
    if (lws_hdr_copy(c->wsi, given, sizeof given, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        strncmp(given, "Bearer ", 7) == 0)
        token = given + 7;
    else if (allow_query)
        token = lws_get_urlarg_by_name(c->wsi, "api_key=", given, sizeof given);
    if (!token)
        return 0;
    /* compared in time independent of where they differ */
    size_t n = strlen(key), m = strlen(token);
    unsigned char diff = n != m;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(key[i] ^ (i < m ? token[i] : 0));
    return diff == 0;
}

static void answer_health(conn *c)
{
    serve_http *s = c->server;
    int running, queued;
    serve_pool_load(s->pool, &running, &queued);
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"status\":\"%s\",\"workers\":%d,\"queue\":%d,\"running\":%d,"
                     "\"queued\":%d}",
                     s->draining ? "stopping" : "ok", s->p.workers, s->p.queue, running, queued);
    respond(c, s->draining ? 503 : 200, "application/json", body, (size_t)n);
}

static void answer_models(conn *c)
{
    size_t size = 0;
    char *body = serve_format_models(c->server->p.model_id, c->server->p.model, &size);
    if (body)
        respond(c, 200, "application/json", body, size);
    else
        respond_error(c, 500, "out of memory");
    free(body);
}

static int on_upload(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states state);

/* A POST to translate: the headers have arrived; the body follows. */
static void begin_upload(conn *c)
{
    serve_http *s = c->server;
    struct lws *wsi = c->wsi;
    char value[256];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0 ||
        lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0) {
        respond_error(c, 411, "send the upload with a Content-Length (chunked bodies are not "
                              "read)");
        /* where the body ends is unknown: it is dropped until the deadline closes the
         * connection, so that a client which sends it all before reading hears why */
        return;
    }
    char *end;
    unsigned long long length = strtoull(value, &end, 10);
    if (*end || length > s->p.max_upload) {
        char message[160];
        snprintf(message, sizeof message, "the upload is larger than the limit of %zu MB "
                 "(--max-upload-mb)", s->p.max_upload >> 20);
        respond_error(c, 413, message);
        return;
    }
    if (lws_hdr_copy(wsi, value, sizeof value, WSI_TOKEN_HTTP_CONTENT_TYPE) <= 0 ||
        strncmp(value, "multipart/form-data", 19) != 0 || !strstr(value, "boundary=")) {
        respond_error(c, 400, "send the audio as multipart/form-data with a 'file' part");
        return;
    }
    lws_spa_create_info_t info;
    memset(&info, 0, sizeof info);
    info.param_names = form_params;
    info.count_params = PARAM_COUNT;
    info.max_storage = 1024;
    info.opt_cb = on_upload;
    info.opt_data = c;
    c->spa = lws_spa_create_via_info(wsi, &info);
    if (!c->spa) {
        respond_error(c, 500, "out of memory");
        return;
    }
    /* The whole body must arrive within the timeout: a trickle does not hold a request open. */
    arm_deadline(c);
}

static void body_problem(conn *c, int status, const char *message)
{
    if (c->body_status)
        return;
    c->body_status = status;
    snprintf(c->body_problem, sizeof c->body_problem, "%s", message);
}

static int on_upload(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states state)
{
    conn *c = data;
    if (state == LWS_UFS_CLOSE)
        return 0;
    if (state == LWS_UFS_OPEN) {
        c->in_file = strcmp(name, "file") == 0 && !c->file_seen;
        if (!c->in_file)
            return 0; /* another file part: ignored */
        c->file_seen = 1;
        snprintf(c->filename, sizeof c->filename, "%s", *filename ? filename : "upload");
        const char *dir = getenv("TMPDIR");
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/mtla-st-upload-XXXXXX", dir && *dir ? dir : "/tmp");
        c->fd = mkstemp(path);
        if (c->fd < 0) {
            body_problem(c, 500, "cannot store the upload in a temporary file");
            return 0;
        }
        unlink(path); /* gone with the descriptor, however the server ends */
        return 0;
    }
    if (!c->in_file)
        return 0;
    if (len > 0 && c->fd >= 0 && !c->body_status) {
        for (const char *p = buf; p < buf + len;) {
            ssize_t n = write(c->fd, p, (size_t)(buf + len - p));
            if (n < 0) {
                body_problem(c, 500, "cannot store the upload in a temporary file");
                break;
            }
            p += n;
        }
        c->file_bytes += (size_t)len;
    }
    if (state == LWS_UFS_FINAL_CONTENT) {
        c->file_complete = 1;
        c->in_file = 0;
    }
    return 0;
}

static void receive_body(conn *c, const char *in, size_t len)
{
    if (c->answered || !c->spa || !len)
        return;
    if (!c->body_status && lws_spa_process(c->spa, in, (int)len) < 0)
        body_problem(c, 400, "malformed multipart/form-data body");
}

/* The body has arrived: check the form and hand the file to a worker. */
static void check_upload(conn *c)
{
    serve_http *s = c->server;
    lws_spa_finalize(c->spa);
    if (c->body_status) {
        respond_error(c, c->body_status, c->body_problem);
        return;
    }
    if (!c->file_seen) {
        respond_error(c, 400, "the form has no 'file' part (a file upload named 'file')");
        return;
    }
    if (!c->file_complete) {
        respond_error(c, 400, "the form ended inside its 'file' part: the upload is truncated");
        return;
    }
    if (c->file_bytes == 0) {
        char message[300];
        snprintf(message, sizeof message, "'%s' is empty", c->filename);
        respond_error(c, 400, message);
        return;
    }
    const char *name = lws_spa_get_string(c->spa, PARAM_RESPONSE_FORMAT);
    int format = name && *name ? serve_format_parse(name) : SERVE_JSON;
    if (format < 0) {
        respond_error(c, 400, "response_format must be json, text, srt, vtt or verbose_json");
        return;
    }
    /* An upload begun before a stop is translated: it is part of what is running. */
    const char *task = c->route == ROUTE_TRANSCRIPTIONS ? "transcribe" : "translate";
    serve_job *job = serve_job_file(c->fd, c->filename, (serve_format)format, task);
    if (!job) {
        respond_error(c, 500, "out of memory");
        return;
    }
    c->fd = -1; /* the job's now */
    if (serve_pool_submit(s->pool, job) != 0) {
        serve_job_release(s->pool, job);
        int running, queued;
        serve_pool_load(s->pool, &running, &queued);
        char message[200];
        snprintf(message, sizeof message,
                 "busy: %d translations running and %d waiting, the most this server queues; "
                 "retry later",
                 running, queued);
        respond_error(c, 503, message);
        return;
    }
    c->job = job;
    conn_list(c);
}

/* LWS_CALLBACK_HTTP_BODY_COMPLETION. Returns what the callback returns. */
static int end_upload(conn *c)
{
    c->body_done = 1;
    if (c->sent_all)
        return finish_transaction(c); /* answered early; the dropped body is over */
    if (c->answered)
        return 0;
    lws_sul_cancel(&c->deadline);
    c->answered = 1;
    check_upload(c);
    return 0;
}

/* A worker has finished this request's job. */
static void finish_upload(conn *c)
{
    const serve_result *r = serve_job_result(c->job);
    c->audio_seconds = r->audio_seconds;
    respond(c, r->status, r->content_type, r->body, r->body_size);
    conn_unlist(c);
    serve_job_release(c->server->pool, c->job);
    c->job = NULL;
}

/* LWS_CALLBACK_HTTP: a request's headers have arrived. */
static int begin_request(conn *c)
{
    serve_http *s = c->server;
    int get = strcmp(c->method, "GET") == 0, post = strcmp(c->method, "POST") == 0;
    if (c->route == ROUTE_UNKNOWN) {
        char message[200];
        snprintf(message, sizeof message, "no such endpoint: %s", c->path);
        respond_error(c, 404, message);
    } else if (c->route == ROUTE_HEALTH) {
        if (get)
            answer_health(c);
        else
            respond_error(c, 405, "use GET");
    } else if (s->draining) {
        respond_error(c, 503, "the server is shutting down");
        c->close_after = 1;
    } else if (!authorized(c, 0)) {
        respond_error(c, 401, "a valid API key is needed: Authorization: Bearer KEY");
    } else if (c->route == ROUTE_MODELS) {
        if (get)
            answer_models(c);
        else
            respond_error(c, 405, "use GET");
    } else if (c->route == ROUTE_STREAM) {
        respond_error(c, 426, "this endpoint is a WebSocket: connect with Upgrade: websocket");
    } else if (!post) {
        respond_error(c, 405, "use POST with multipart/form-data");
    } else {
        begin_upload(c);
    }
    /* A POST answered before its body: the body is read and dropped (keeping the connection
     * usable), within the request timeout. */
    if (c->responding && post) {
        c->answered = 1;
        arm_deadline(c);
    }
    return 0;
}

/* The body did not arrive in time. Returns -1 when the connection is to be closed now. */
static int request_timeout(conn *c)
{
    if (c->responding) {
        /* answered, and the body being dropped still trickles in: close after the answer */
        c->close_after = 1;
        return c->sent_all ? finish_transaction(c) : 0;
    }
    char message[160];
    snprintf(message, sizeof message, "the request did not arrive within %d s",
             c->server->p.timeout_s);
    c->answered = 1;
    respond_error(c, 408, message);
    c->close_after = 1;
    return 0;
}

static void end_stream(conn *c);

static void on_deadline(lws_sorted_usec_list_t *sul)
{
    conn *c = lws_container_of(sul, conn, deadline);
    if (!c->active)
        return;
    if (c->ws)
        end_stream(c); /* nothing heard for the timeout: what was sent is finished */
    else if (request_timeout(c) < 0)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* ---------------------------------------------------------------- WebSocket streams */

static int parse_stream_options(conn *c, char *message, size_t size)
{
    struct lws *wsi = c->wsi;
    char value[64];
    c->stream = c->server->p.stream;
    if (lws_get_urlarg_by_name(wsi, "policy=", value, sizeof value)) {
        const char *v = lws_get_urlarg_by_name(wsi, "policy=", value, sizeof value);
        if (strcmp(v, "local-agreement") == 0)
            c->stream.policy = MTLA_POLICY_LOCAL_AGREEMENT;
        else if (strcmp(v, "wait-k") == 0)
            c->stream.policy = MTLA_POLICY_WAIT_K;
        else if (strcmp(v, "offline") == 0)
            c->stream.policy = MTLA_POLICY_OFFLINE;
        else {
            snprintf(message, size, "policy must be local-agreement, wait-k or offline");
            return -1;
        }
    }
    /* the --partial options of the command line, by the same names */
    static const struct {
        const char *arg;
        long min, max;
    } numbers[] = {{"partial_step=", 100, 60000},
                   {"wait_k=", 1, 1000},
                   {"repeat_limit=", 0, 1000},
                   {"logprob_threshold=", -1000, 0}};
    for (int i = 0; i < 4; i++) {
        const char *v = lws_get_urlarg_by_name(wsi, numbers[i].arg, value, sizeof value);
        if (!v)
            continue;
        char *end;
        long n = strtol(v, &end, 10);
        if (end == v || *end || n < numbers[i].min || n > numbers[i].max) {
            snprintf(message, size, "%.*s must be a whole number from %ld to %ld",
                     (int)strlen(numbers[i].arg) - 1, numbers[i].arg, numbers[i].min,
                     numbers[i].max);
            return -1;
        }
        if (i == 0)
            c->stream.partial_step_ms = (int32_t)n;
        else if (i == 1)
            c->stream.wait_k = (int32_t)n;
        else if (i == 2)
            c->stream.repeat_limit = (int32_t)n;
        else /* -1000 turns the guard off, as --logprob-threshold -1000 */
            c->stream.logprob_threshold = n <= -1000 ? -INFINITY : (float)n;
    }
    return 0;
}

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: nonzero refuses the upgrade (after answering). */
static int filter_upgrade(conn *c, struct lws *wsi)
{
    char path[128] = "";
    lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI);
    conn_start(c, wsi, path);
    serve_http *s = c->server;
    char message[200];
    if (c->route != ROUTE_STREAM) {
        snprintf(message, sizeof message, "no WebSocket endpoint at %s (it is /v1/audio/stream)",
                 c->path);
        answer_upgrade(c, 404, message);
    } else if (!authorized(c, 1)) {
        answer_upgrade(c, 401, "a valid API key is needed: Authorization: Bearer KEY, or "
                               "?api_key=KEY");
    } else if (s->draining) {
        answer_upgrade(c, 503, "the server is shutting down");
    } else if (!serve_pool_can_admit(s->pool)) {
        answer_upgrade(c, 503, "busy: every worker and queue place is taken; retry later");
    } else if (parse_stream_options(c, message, sizeof message) != 0) {
        answer_upgrade(c, 400, message);
    } else {
        return 0;
    }
    return 1;
}

static int close_stream(struct lws *wsi, enum lws_close_status status, const char *reason)
{
    lws_close_reason(wsi, status, (unsigned char *)reason, strlen(reason));
    return -1;
}

static int open_stream(conn *c)
{
    serve_http *s = c->server;
    c->ws = 1;
    c->job = serve_job_stream(&c->stream);
    if (!c->job)
        return close_stream(c->wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
    if (serve_pool_submit(s->pool, c->job) != 0) {
        serve_job_release(s->pool, c->job);
        c->job = NULL;
        /* 1013, "try again later" (RFC 6455's registry; this libwebsockets has no name) */
        return close_stream(c->wsi, (enum lws_close_status)1013, "busy");
    }
    conn_list(c);
    arm_deadline(c);
    return 0;
}

static void end_stream(conn *c)
{
    if (c->ended || !c->job)
        return;
    c->ended = 1;
    serve_stream_end(c->server->pool, c->job);
}

static int receive_stream(conn *c, const void *in, size_t len)
{
    serve_http *s = c->server;
    struct lws *wsi = c->wsi;
    if (c->ended)
        return 0;
    arm_deadline(c);
    if (lws_frame_is_binary(wsi)) {
        c->audio_seconds += (double)len / (2 * 16000);
        if (len && serve_stream_feed(s->pool, c->job, in, len)) {
            lws_rx_flow_control(wsi, 0);
            c->paused = 1;
        }
        return 0;
    }
    /* A text message: "end" says the audio is over. */
    if (c->text_size + len >= sizeof c->text)
        return close_stream(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                            "text messages are 'end' only; audio goes in binary messages");
    memcpy(c->text + c->text_size, in, len);
    c->text_size += len;
    if (!lws_is_final_fragment(wsi))
        return 0;
    c->text[c->text_size] = '\0';
    c->text_size = 0;
    if (strcmp(c->text, "end") != 0)
        return close_stream(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                            "text messages are 'end' only; audio goes in binary messages");
    end_stream(c);
    return 0;
}

static int write_stream(conn *c)
{
    serve_http *s = c->server;
    if (!c->job)
        return 0;
    size_t size;
    char *text = serve_stream_take(s->pool, c->job, &size);
    if (text) {
        unsigned char *buf = malloc(LWS_PRE + size);
        int n = -1;
        if (buf) {
            memcpy(buf + LWS_PRE, text, size);
            n = lws_write(c->wsi, buf + LWS_PRE, size, LWS_WRITE_TEXT);
        }
        free(buf);
        free(text);
        if (n < (int)size)
            return -1;
        lws_callback_on_writable(c->wsi); /* more may wait, or the end */
        return 0;
    }
    serve_job_news news;
    serve_job_news_get(s->pool, c->job, &news);
    if (news.done && !news.messages)
        return close_stream(c->wsi, LWS_CLOSE_STATUS_NORMAL, "");
    return 0;
}

/* ---------------------------------------------------------------- the event loop */

/* Woken by a worker: look at every request waiting on a job. */
static void collect_news(serve_http *s)
{
    for (conn *c = s->waiting, *next; c; c = next) {
        next = c->next;
        serve_job_news news;
        serve_job_news_get(s->pool, c->job, &news);
        if (!c->ws) {
            if (news.done)
                finish_upload(c);
            continue;
        }
        if (news.resume && c->paused) {
            c->paused = 0;
            lws_rx_flow_control(c->wsi, 1);
        }
        if (news.messages || news.done)
            lws_callback_on_writable(c->wsi);
    }
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        conn_start(c, wsi, in ? (const char *)in : "");
        return begin_request(c);
    case LWS_CALLBACK_HTTP_BODY:
        receive_body(c, in, len);
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return end_upload(c);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return c && c->active ? write_response(c) : 0;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter_upgrade(c, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        return open_stream(c);
    case LWS_CALLBACK_RECEIVE:
        return receive_stream(c, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return write_stream(c);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        collect_news(lws_context_user(lws_get_context(wsi)));
        return 0;
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            conn_end(c);
        return 0;
    default: return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"mtla-st", callback, sizeof(conn), 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}};

static void log_lws(int level, const char *line)
{
    (void)level;
    fprintf(stderr, "mtla-st serve: libwebsockets: %s", line);
}

int serve_http_create(const serve_http_params *params, serve_http **out, char *message,
                      size_t size)
{
    *out = NULL;
    serve_http *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(message, size, "out of memory");
        return -1;
    }
    s->p = *params;
    atomic_init(&s->stop, 0);
    lws_set_log_level(LLL_ERR, log_lws);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = params->port;
    info.iface = params->host;
    info.protocols = protocols;
    info.user = s;
    /* headers must arrive within the timeout, and a body may pause no longer */
    info.timeout_secs = (unsigned)params->timeout_s;
    info.timeout_secs_ah_idle = (unsigned)params->timeout_s;
    info.keepalive_timeout = 5;
    info.server_string = "mtla-st";
    if (!strchr(params->host, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    s->context = lws_create_context(&info);
    if (!s->context) {
        snprintf(message, size, "cannot listen on %s port %d (in use, or not an address here?)",
                 params->host, params->port);
        free(s);
        return -1;
    }
    *out = s;
    return 0;
}

void serve_http_run(serve_http *s, serve_pool *pool)
{
    s->pool = pool;
    fprintf(stderr, "mtla-st serve: listening on http://%s:%d (workers %d, queue %d)\n",
            s->p.host, s->p.port, s->p.workers, s->p.queue);
    for (;;) {
        lws_service(s->context, 0);
        if (atomic_load(&s->stop) && !s->draining) {
            /* Stop taking work: new requests are answered 503 and their connections closed;
             * what is running finishes and is answered. (The listening socket stays open:
             * libwebsockets 4.1's lws_context_deprecate reads the listener it has just freed.) */
            s->draining = 1;
            int running, queued;
            serve_pool_load(pool, &running, &queued);
            fprintf(stderr, "mtla-st serve: stopping: %d running, %d queued\n", running, queued);
            serve_pool_finish_streams(pool);
        }
        if (s->draining && s->busy == 0)
            break;
    }
}

void serve_http_stop(serve_http *s)
{
    atomic_store(&s->stop, 1);
    lws_cancel_service(s->context);
}

void serve_http_wake(void *server)
{
    serve_http *s = server;
    lws_cancel_service(s->context);
}

void serve_http_destroy(serve_http *s)
{
    if (!s)
        return;
    lws_context_destroy(s->context);
    free(s);
}
