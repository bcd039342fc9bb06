/* mtla-st serve: an HTTP translation service that OpenAI-style audio clients can call
 * (docs/serve.md). This file reads the options, loads the model once, and wires the worker
 * pool (serve_jobs.h) to the HTTP layer (serve_http.h); SIGINT or SIGTERM stop accepting,
 * let what runs finish and be answered, and exit 0. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "serve_http.h"
#include "serve_jobs.h"

enum {
    OPT_HOST = 3000,
    OPT_PORT,
    OPT_WORKERS,
    OPT_QUEUE,
    OPT_MAX_UPLOAD,
    OPT_API_KEY,
    OPT_TIMEOUT,
    OPT_SERVE_DEVICE
};

static void serve_usage(FILE *out)
{
    fprintf(out,
            "Usage: mtla-st serve [OPTIONS]\n"
            "\n"
            "An HTTP service with the OpenAI audio API: English speech in, text in the model's\n"
            "language out (docs/serve.md).\n"
            "  POST /v1/audio/translations, /v1/audio/transcriptions  multipart/form-data: file,\n"
            "        model (any name), response_format json|text|srt|vtt|verbose_json\n"
            "  GET  /v1/models, /health\n"
            "  GET  /v1/audio/stream  WebSocket: 16 kHz s16le audio in binary messages, the text\n"
            "        message 'end' when done; --partial's jsonl events out, then {\"type\":\"done\"}\n"
            "  curl http://127.0.0.1:8080/v1/audio/translations -F file=@speech.wav\n"
            "\n"
            "  --host ADDR           address to listen on (default 127.0.0.1: this machine only)\n"
            "  --port N              TCP port (default 8080)\n"
            "  -m, --model DIR       model directory (default: $MTLA_ST_MODEL, else the bundled one)\n"
            "  --workers N           translators, one thread each (default 2)\n"
            "  -t, --threads N       CPU threads per translator (default: cores / workers)\n"
            "  --device D            cpu (default) or cuda[:N]\n"
            "  --queue N             requests that may wait for a worker; beyond, 503 with\n"
            "                        Retry-After (default 16)\n"
            "  --max-upload-mb N     largest request body, in MiB (default 25); larger: 413\n"
            "  --timeout S           a request must arrive whole within S seconds (else 408),\n"
            "                        a stream that sends nothing for S seconds is ended\n"
            "                        (default 30)\n"
            "  --api-key KEY         require 'Authorization: Bearer KEY' (default:\n"
            "                        $MTLA_ST_API_KEY; none when unset); else 401\n"
            "  -h, --help            show this help\n");
}

typedef struct serve_options {
    const char *host, *model, *api_key;
    long port, workers, queue, max_upload_mb, threads, timeout;
    int device;
} serve_options;

static int parse_options(int argc, char **argv, serve_options *o)
{
    static const struct option longopts[] = {{"host", required_argument, NULL, OPT_HOST},
                                             {"port", required_argument, NULL, OPT_PORT},
                                             {"model", required_argument, NULL, 'm'},
                                             {"workers", required_argument, NULL, OPT_WORKERS},
                                             {"threads", required_argument, NULL, 't'},
                                             {"device", required_argument, NULL, OPT_SERVE_DEVICE},
                                             {"queue", required_argument, NULL, OPT_QUEUE},
                                             {"max-upload-mb", required_argument, NULL,
                                              OPT_MAX_UPLOAD},
                                             {"timeout", required_argument, NULL, OPT_TIMEOUT},
                                             {"api-key", required_argument, NULL, OPT_API_KEY},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    argv[0] = "mtla-st serve";
    while ((c = getopt_long(argc, argv, "hm:t:", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_HOST: o->host = optarg; break;
        case OPT_PORT:
            if (!cli_parse_int(optarg, "--port", 1, 65535, &o->port))
                return EXIT_USAGE;
            break;
        case 'm': o->model = optarg; break;
        case OPT_WORKERS:
            if (!cli_parse_int(optarg, "--workers", 1, 256, &o->workers))
                return EXIT_USAGE;
            break;
        case 't':
            if (!cli_parse_int(optarg, "--threads", 1, 1024, &o->threads))
                return EXIT_USAGE;
            break;
        case OPT_SERVE_DEVICE:
            if (!cli_parse_device(optarg, &o->device))
                return EXIT_USAGE;
            break;
        case OPT_QUEUE:
            if (!cli_parse_int(optarg, "--queue", 0, 100000, &o->queue))
                return EXIT_USAGE;
            break;
        case OPT_MAX_UPLOAD:
            if (!cli_parse_int(optarg, "--max-upload-mb", 1, 4096, &o->max_upload_mb))
                return EXIT_USAGE;
            break;
        case OPT_TIMEOUT:
            if (!cli_parse_int(optarg, "--timeout", 1, 3600, &o->timeout))
                return EXIT_USAGE;
            break;
        case OPT_API_KEY: o->api_key = optarg; break;
        case 'h': serve_usage(stdout); return -1;
        default: fprintf(stderr, "Try 'mtla-st serve --help'.\n"); return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        cli_error("serve takes no INPUT ('%s'): clients send audio over HTTP", argv[optind]);
        return EXIT_USAGE;
    }
    if (o->api_key && !*o->api_key)
        o->api_key = NULL;
    return EXIT_OK;
}

/* SIGINT and SIGTERM may reach any thread (OpenBLAS starts its own before main), so the
 * handler only writes a byte to a pipe, and a thread reading it tells the event loop with a
 * thread-safe call. A 'q' from main ends that thread. */
static int signal_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    int saved = errno;
    char c = (char)sig;
    ssize_t n = write(signal_pipe[1], &c, 1);
    (void)n;
    errno = saved;
}

static void *watch_signals(void *server)
{
    char c;
    while (read(signal_pipe[0], &c, 1) == 1 && c != 'q')
        serve_http_stop(server);
    return NULL;
}

/* "mtla-st-en-es": what GET /v1/models lists (requests may name any model). */
static void model_id(const mtla_model *model, char *buf, size_t size)
{
    snprintf(buf, size, "mtla-st-%s-%s", mtla_model_source_language(model),
             mtla_model_target_language(model));
}

int cmd_serve(int argc, char **argv)
{
    serve_options o = {.host = "127.0.0.1",
                       .port = 8080,
                       .workers = 2,
                       .queue = 16,
                       .max_upload_mb = 25,
                       .timeout = 30,
                       .device = -1};
    o.api_key = getenv("MTLA_ST_API_KEY");
    int status = parse_options(argc, argv, &o);
    if (status != EXIT_OK)
        return status < 0 ? EXIT_OK : status;

    char bundled[PATH_MAX];
    const char *model_dir = cli_find_model(o.model, bundled, sizeof bundled);
    if (!model_dir) {
        cli_error("no model: pass --model DIR or set MTLA_ST_MODEL");
        return EXIT_USAGE;
    }
    mtla_error err;
    mtla_model *model;
    if (mtla_model_open(model_dir, &model, &err) != MTLA_OK) {
        cli_error("model %s: %s", model_dir, err.message);
        return EXIT_USAGE;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o.threads ? (int)o.threads
                            : (int)(cores > o.workers ? cores / o.workers : 1);
    /* Files are cut at pauses no longer than the encoder accepts (Whisper's 30 s), as the
     * translate command does. */
    mtla_vad_params vad = mtla_vad_default_params();
    vad.sample_rate = mtla_model_fbank_params(model).sample_rate;
    int64_t max_input_ms = mtla_model_max_input_ms(model);
    if (max_input_ms > 0 && vad.max_segment_ms > max_input_ms)
        vad.max_segment_ms = (int32_t)max_input_ms;

    char id[64];
    model_id(model, id, sizeof id);
    serve_http_params hp = {.host = o.host,
                            .port = (int)o.port,
                            .api_key = o.api_key,
                            .max_upload = (size_t)o.max_upload_mb << 20,
                            .timeout_s = (int)o.timeout,
                            .model = model,
                            .model_id = id,
                            .stream = mtla_stream_default_params(model),
                            .workers = (int)o.workers,
                            .queue = (int)o.queue};

    signal(SIGPIPE, SIG_IGN);

    char message[512];
    serve_http *server;
    if (serve_http_create(&hp, &server, message, sizeof message) != 0) {
        cli_error("%s", message);
        mtla_model_close(model);
        return EXIT_USAGE;
    }
    serve_pool_params pp = {.model = model,
                            .workers = (int)o.workers,
                            .queue = (int)o.queue,
                            .threads = threads,
                            .device = o.device,
                            .decode = mtla_decode_default_params(model),
                            .vad = vad,
                            .stream = hp.stream,
                            .notify = serve_http_wake,
                            .notify_user = server};
    serve_pool *pool;
    if (serve_pool_create(&pp, &pool, message, sizeof message) != 0) {
        cli_error("%s", message);
        serve_http_destroy(server);
        mtla_model_close(model);
        return EXIT_USAGE;
    }
    fprintf(stderr, "mtla-st serve: model %s: %s, %s -> %s, %d threads per worker%s\n",
            model_dir, mtla_model_description(model), mtla_model_source_language(model),
            mtla_model_target_language(model), threads, o.api_key ? ", API key required" : "");
    pthread_t watcher;
    int watching = pipe(signal_pipe) == 0 &&
                   pthread_create(&watcher, NULL, watch_signals, server) == 0;
    if (watching) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    } else {
        cli_error("cannot watch for signals: SIGTERM will stop the server at once");
    }

    serve_http_run(server, pool);

    if (watching) {
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        char q = 'q';
        if (write(signal_pipe[1], &q, 1) == 1)
            pthread_join(watcher, NULL);
        close(signal_pipe[0]);
        close(signal_pipe[1]);
    }
    serve_pool_destroy(pool);
    serve_http_destroy(server);
    mtla_model_close(model);
    fprintf(stderr, "mtla-st serve: stopped\n");
    return EXIT_OK;
}
