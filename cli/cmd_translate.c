/* mtla-st [OPTIONS] INPUT...: translate files, directories and live streams.
 *
 *   FILE...        one record per file on stdout (or per utterance with --segment)
 *   -              standard input, read as it arrives: one line per utterance, flushed
 *   DIR -o OUTDIR  every audio file below DIR, one output file each under OUTDIR (resumable)
 *   --partial IN   simultaneous translation of one stream or file (cli/partial.h)
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomic_file.h"
#include "cli.h"
#include "inputs.h"
#include "npy.h"
#include "output.h"
#include "partial.h"
#include "segmenter.h"

enum {
    OPT_LENPEN = 2000,
    OPT_MAX_LEN_A,
    OPT_MAX_LEN_B,
    OPT_PRINT_TOKENS,
    OPT_INPUT_FEATURES,
    OPT_FORMAT,
    OPT_SEGMENT,
    OPT_FILES_FROM,
    OPT_SHARD,
    OPT_OVERWRITE,
    OPT_DEVICE,
    OPT_PARTIAL,
    OPT_PARTIAL_STEP,
    OPT_POLICY,
    OPT_WAIT_K,
    OPT_REALTIME,
    OPT_NO_REALTIME,
    OPT_LOGPROB_THRESHOLD,
    OPT_REPEAT_LIMIT,
    OPT_DTYPE
};

void translate_usage(FILE *out)
{
    fprintf(
        out,
        "Usage: mtla-st [OPTIONS] INPUT...\n"
        "\n"
        "Translates English speech. INPUT is an audio file (anything libsndfile reads), a\n"
        "directory (every audio file below it; needs -o), or '-' for standard input, read as\n"
        "it arrives and translated utterance by utterance:\n"
        "  arecord -f S16_LE -r 16000 -c 1 -t raw | mtla-st -\n"
        "\n"
        "Model:\n"
        "  -m, --model DIR       model directory (default: $MTLA_ST_MODEL, else the model\n"
        "                        bundled with mtla-st)\n"
        "  -t, --threads N       CPU threads (default 0: all cores)\n"
        "  --device D            cpu (default) or cuda[:N], CUDA device N (0); the CUDA\n"
        "                        backend has not been validated on a GPU yet\n"
        "  --dtype T             weights of the linear layers on the CPU: fp32 (default, the\n"
        "                        reference), bf16 or int8 (faster; see docs/engine.md)\n"
        "\n"
        "Decoding (defaults from the model's config.json):\n"
        "  -b, --beam N          beam size; 1 is greedy decoding\n"
        "  --lenpen X            length penalty: score = log-prob / length^X\n"
        "  --max-len-a X         at most X * frames + B tokens (frames: 10 ms fbank frames)\n"
        "  --max-len-b B\n"
        "\n"
        "Output:\n"
        "  -f, --format F        txt (default), jsonl (file, start, end, text, score per\n"
        "                        segment), srt or vtt (subtitles)\n"
        "  -s, --segment         one record per utterance the voice activity detector finds,\n"
        "                        with its times (files up to %.0f s are otherwise translated\n"
        "                        whole, longer ones segment by segment into one line)\n"
        "  -o, --output DIR      one output file per input under DIR, mirroring directory\n"
        "                        inputs; written atomically; existing outputs are skipped\n"
        "  --overwrite           translate again even where an output exists\n"
        "  --print-tokens        print model ids (space-separated) instead of text, one line\n"
        "                        per input, each translated whole (for parity checks)\n"
        "  -q, --quiet           no progress, summary or warnings on stderr\n"
        "  -v, --verbose         report every utterance on stderr\n"
        "\n"
        "Inputs:\n"
        "  --files-from LIST     also translate the files and directories listed in LIST,\n"
        "                        one per line ('-': standard input)\n"
        "  --shard K/N           translate only share K of N (1 <= K <= N), chosen by name:\n"
        "                        N machines with K = 1..N split a corpus with no coordination\n"
        "  --input-features      INPUTs are .npy fbank features (frames x bins, before CMVN),\n"
        "                        as 'mtla-st features' writes them\n"
        "  -h, --help            show this help\n"
        "\n"
        "Simultaneous translation (docs/streaming.md):\n"
        "  --partial             text while the speaker is still talking, for one INPUT:\n"
        "                        '-' (live) or a FILE, paced as if live; committed text is\n"
        "                        never retracted. txt on a terminal: one line per utterance,\n"
        "                        tentative text dimmed; txt in a pipe: committed words as they\n"
        "                        come; --format jsonl: partial and final events\n"
        "  --partial-step MS     translate the open utterance again every MS of new audio\n"
        "                        (default 1000, at least 100)\n"
        "  --policy P            local-agreement (default: commit what the last two\n"
        "                        translations agree on), wait-k or offline (finals only)\n"
        "  --wait-k K            wait-k: commit c - K + 1 tokens after c steps (default 3)\n"
        "  --realtime            pace a FILE at the speed of speech (default)\n"
        "  --no-realtime         feed a FILE as fast as possible, with the same steps\n"
        "  --logprob-threshold X refuse hypotheses whose mean token log-prob is below X\n"
        "                        (default -1; -1000 turns the guard off)\n"
        "  --repeat-limit N      refuse hypotheses repeating an n-gram (n <= 4) more than N\n"
        "                        times in a row (default 3; 0: off)\n"
        "\n"
        "%s",
        WHOLE_LIMIT_SECONDS, CLI_INPUT_HELP);
}

typedef struct translate_options {
    const char *model;
    const char *output_dir;
    const char *files_from;
    int threads;
    int device; /* -1: CPU */
    mtla_compute_dtype dtype;
    int print_tokens, input_features, segment, overwrite, quiet, verbose;
    int shard_k, shard_n;
    output_format format;
    long beam, max_len_b;
    double lenpen, max_len_a;
    int have_beam, have_lenpen, have_a, have_b;
    /* --partial */
    int partial, no_realtime, wait_k, repeat_limit;
    long partial_step;
    double logprob_threshold;
    mtla_stream_policy policy;
} translate_options;

static volatile sig_atomic_t stop_requested = 0;

static void on_signal(int sig)
{
    stop_requested = sig;
}

/* Ctrl-C and kill finish the utterance being heard and exit; no SA_RESTART, so a blocked
 * wait for input returns at once. */
static void install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

static int parse_shard(const char *arg, translate_options *o)
{
    int k, n;
    char tail;
    if (sscanf(arg, "%d/%d%c", &k, &n, &tail) != 2 || n < 1 || k < 1 || k > n) {
        cli_error("--shard must be K/N with 1 <= K <= N, e.g. 3/8, not '%s'", arg);
        return 0;
    }
    o->shard_k = k;
    o->shard_n = n;
    return 1;
}

static int parse_options(int argc, char **argv, translate_options *o, cli_input_options *io)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"dtype", required_argument, NULL, OPT_DTYPE},
        {"beam", required_argument, NULL, 'b'},
        {"lenpen", required_argument, NULL, OPT_LENPEN},
        {"max-len-a", required_argument, NULL, OPT_MAX_LEN_A},
        {"max-len-b", required_argument, NULL, OPT_MAX_LEN_B},
        {"format", required_argument, NULL, 'f'},
        {"segment", no_argument, NULL, 's'},
        {"output", required_argument, NULL, 'o'},
        {"overwrite", no_argument, NULL, OPT_OVERWRITE},
        {"print-tokens", no_argument, NULL, OPT_PRINT_TOKENS},
        {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},
        {"files-from", required_argument, NULL, OPT_FILES_FROM},
        {"shard", required_argument, NULL, OPT_SHARD},
        {"input-features", no_argument, NULL, OPT_INPUT_FEATURES},
        {"help", no_argument, NULL, 'h'},
        {"partial", no_argument, NULL, OPT_PARTIAL},
        {"partial-step", required_argument, NULL, OPT_PARTIAL_STEP},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"wait-k", required_argument, NULL, OPT_WAIT_K},
        {"realtime", no_argument, NULL, OPT_REALTIME},
        {"no-realtime", no_argument, NULL, OPT_NO_REALTIME},
        {"logprob-threshold", required_argument, NULL, OPT_LOGPROB_THRESHOLD},
        {"repeat-limit", required_argument, NULL, OPT_REPEAT_LIMIT},
        CLI_INPUT_LONG_OPTIONS,
        {NULL, 0, NULL, 0}};
    long v;
    int c, f;
    optind = 1;
    argv[0] = "mtla-st";
    while ((c = getopt_long(argc, argv, "hm:t:b:f:so:qv", longopts, NULL)) != -1) {
        int used = cli_input_option(io, c, optarg);
        if (used < 0)
            return EXIT_USAGE;
        if (used)
            continue;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 't':
            if (!cli_parse_int(optarg, "--threads", 0, 1024, &v))
                return EXIT_USAGE;
            o->threads = (int)v;
            break;
        case OPT_DEVICE:
            if (!cli_parse_device(optarg, &o->device))
                return EXIT_USAGE;
            break;
        case OPT_DTYPE:
            if (!cli_parse_dtype(optarg, &o->dtype))
                return EXIT_USAGE;
            break;
        case 'b':
            if (!cli_parse_int(optarg, "--beam", 1, 4096, &o->beam))
                return EXIT_USAGE;
            o->have_beam = 1;
            break;
        case OPT_LENPEN:
            if (!cli_parse_float(optarg, "--lenpen", -100, 100, &o->lenpen))
                return EXIT_USAGE;
            o->have_lenpen = 1;
            break;
        case OPT_MAX_LEN_A:
            if (!cli_parse_float(optarg, "--max-len-a", 0, 1000, &o->max_len_a))
                return EXIT_USAGE;
            o->have_a = 1;
            break;
        case OPT_MAX_LEN_B:
            if (!cli_parse_int(optarg, "--max-len-b", 1, 1023, &o->max_len_b))
                return EXIT_USAGE;
            o->have_b = 1;
            break;
        case 'f':
            if ((f = output_format_parse(optarg)) < 0) {
                cli_error("--format must be txt, jsonl, srt or vtt, not '%s'", optarg);
                return EXIT_USAGE;
            }
            o->format = (output_format)f;
            break;
        case 's': o->segment = 1; break;
        case 'o': o->output_dir = optarg; break;
        case OPT_OVERWRITE: o->overwrite = 1; break;
        case OPT_PRINT_TOKENS: o->print_tokens = 1; break;
        case 'q': o->quiet = 1; break;
        case 'v': o->verbose = 1; break;
        case OPT_FILES_FROM: o->files_from = optarg; break;
        case OPT_SHARD:
            if (!parse_shard(optarg, o))
                return EXIT_USAGE;
            break;
        case OPT_INPUT_FEATURES: o->input_features = 1; break;
        case OPT_PARTIAL: o->partial = 1; break;
        case OPT_PARTIAL_STEP:
            if (!cli_parse_int(optarg, "--partial-step", 100, 60000, &o->partial_step))
                return EXIT_USAGE;
            break;
        case OPT_POLICY:
            if (strcmp(optarg, "local-agreement") == 0) {
                o->policy = MTLA_POLICY_LOCAL_AGREEMENT;
            } else if (strcmp(optarg, "wait-k") == 0) {
                o->policy = MTLA_POLICY_WAIT_K;
            } else if (strcmp(optarg, "offline") == 0) {
                o->policy = MTLA_POLICY_OFFLINE;
            } else {
                cli_error("--policy must be local-agreement, wait-k or offline, not '%s'", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_WAIT_K:
            if (!cli_parse_int(optarg, "--wait-k", 1, 1000, &v))
                return EXIT_USAGE;
            o->wait_k = (int)v;
            break;
        case OPT_REALTIME: o->no_realtime = 0; break;
        case OPT_NO_REALTIME: o->no_realtime = 1; break;
        case OPT_LOGPROB_THRESHOLD:
            if (!cli_parse_float(optarg, "--logprob-threshold", -1000, 0, &o->logprob_threshold))
                return EXIT_USAGE;
            break;
        case OPT_REPEAT_LIMIT:
            if (!cli_parse_int(optarg, "--repeat-limit", 0, 1000, &v))
                return EXIT_USAGE;
            o->repeat_limit = (int)v;
            break;
        case 'h': usage_all(stdout); return -1;
        default: fprintf(stderr, "Try 'mtla-st --help'.\n"); return EXIT_USAGE;
        }
    }
    if (optind >= argc && !o->files_from) {
        cli_error("no INPUT given");
        fprintf(stderr, "Try 'mtla-st --help'.\n");
        return EXIT_USAGE;
    }
    if (o->print_tokens && o->format != FORMAT_TXT) {
        cli_error("--print-tokens prints plain lines; it cannot be combined with --format");
        return EXIT_USAGE;
    }
    if (o->partial) {
        const char *problem = NULL;
        if (o->files_from || argc - optind != 1)
            problem = "--partial translates one INPUT ('-' or a file)";
        else if (o->output_dir || o->segment || o->print_tokens || o->input_features)
            problem = "--partial writes its events to standard output; it cannot be combined "
                      "with -o, --segment, --print-tokens or --input-features";
        else if (o->format != FORMAT_TXT && o->format != FORMAT_JSONL)
            problem = "--partial writes txt or jsonl";
        if (problem) {
            cli_error("%s", problem);
            return EXIT_USAGE;
        }
    }
    if (o->input_features && o->segment) {
        cli_error("--segment needs audio; --input-features inputs are translated whole");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct batch {
    translate_ctx ctx;
    translate_options *o;
    cli_input_options *io;
    partial_options partial; /* --partial */
    int progress;            /* a progress line on stderr */
    size_t done, skipped, failed, total;
    int64_t bytes_done, bytes_total;
    double started;
} batch;

static void progress_line(batch *b, const char *current)
{
    if (!b->progress)
        return;
    double elapsed = now_seconds() - b->started;
    char eta[32] = "--";
    if (b->bytes_done > 0 && b->bytes_total > b->bytes_done) {
        double left = elapsed * (double)(b->bytes_total - b->bytes_done) / (double)b->bytes_done;
        snprintf(eta, sizeof eta, "%dm%02ds", (int)(left / 60), (int)fmod(left, 60));
    }
    fprintf(stderr, "\r\033[K[%zu/%zu files] %.2f h audio, %zu failed, ETA %s  %.40s",
            b->done + b->skipped, b->total, b->ctx.audio_seconds / 3600.0, b->failed, eta,
            current ? current : "");
    fflush(stderr);
}

/* Reads a .npy of fbank features with the model's number of bins. */
static int load_npy_features(const batch *b, const char *path, float **frames, size_t *rows)
{
    char message[512];
    size_t cols;
    if (npy_read_f32(path, frames, rows, &cols, message, sizeof message) != 0) {
        cli_error("%s", message);
        return EXIT_INPUT;
    }
    if ((int32_t)cols != b->ctx.fbank.num_mel_bins) {
        cli_error("%s: features have %zu bins, the model needs %d", path, cols,
                  (int)b->ctx.fbank.num_mel_bins);
        free(*frames);
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* Translates fbank features from a .npy file as one record. */
static int translate_features_file(batch *b, const char *path, output_writer *w)
{
    float *frames;
    size_t rows;
    if (load_npy_features(b, path, &frames, &rows) != EXIT_OK)
        return EXIT_INPUT;
    mtla_translation tr;
    mtla_error err;
    double t0 = now_seconds();
    mtla_status st = mtla_translate_features(b->ctx.translator, frames, (int64_t)rows,
                                             &b->ctx.decode, &tr, &err);
    free(frames);
    b->ctx.compute_seconds += now_seconds() - t0;
    if (st != MTLA_OK) {
        cli_error("%s: %s", path, err.message);
        return EXIT_INPUT;
    }
    double seconds = (double)rows * b->ctx.fbank.frame_shift_ms / 1000.0;
    b->ctx.audio_seconds += seconds;
    int bad = output_record(w, 0.0, seconds, tr.text, tr.score) != 0;
    if (bad)
        b->ctx.output_errno = errno ? errno : EIO;
    mtla_translation_free(&tr);
    return bad ? EXIT_OUTPUT : EXIT_OK;
}

/* --print-tokens: the writer prints ids instead of text (a debugging aid, whole inputs). */
static int translate_tokens(batch *b, const char *path, FILE *out)
{
    float *frames = NULL;
    size_t count = 0;
    mtla_error err;
    if (b->o->input_features) {
        if (load_npy_features(b, path, &frames, &count) != EXIT_OK)
            return EXIT_INPUT;
    } else {
        float *samples = NULL;
        size_t n = 0;
        if (mtla_audio_load(path, &b->io->stream, b->ctx.fbank.sample_rate, &samples, &n, &err) !=
            MTLA_OK) {
            cli_error("%s", err.message);
            return EXIT_INPUT;
        }
        mtla_status st = mtla_model_features(b->ctx.model, samples, n, &frames, &count, &err);
        free(samples);
        if (st != MTLA_OK || count == 0) {
            cli_error("%s: %s", path, st != MTLA_OK ? err.message : "no audio");
            free(frames);
            return EXIT_INPUT;
        }
    }
    mtla_translation tr;
    mtla_status st = mtla_translate_features(b->ctx.translator, frames, (int64_t)count,
                                             &b->ctx.decode, &tr, &err);
    free(frames);
    if (st != MTLA_OK) {
        cli_error("%s: %s", path, err.message);
        return EXIT_INPUT;
    }
    int bad = 0;
    for (int32_t i = 0; i < tr.token_count; i++)
        bad |= fprintf(out, i ? " %d" : "%d", (int)tr.tokens[i]) < 0;
    bad |= fputc('\n', out) == EOF || fflush(out) != 0;
    if (bad)
        b->ctx.output_errno = errno ? errno : EIO;
    mtla_translation_free(&tr);
    return bad ? EXIT_OUTPUT : EXIT_OK;
}

/* One input to `out` (already begun by the caller). */
static int translate_one(batch *b, const input_item *it, FILE *out)
{
    if (b->o->print_tokens)
        return translate_tokens(b, it->path, out);
    output_writer w;
    int timestamps = b->o->segment;
    const char *name = strcmp(it->path, "-") == 0 ? "standard input" : it->path;
    if (output_begin(&w, out, b->o->format, timestamps, strcmp(it->path, "-") ? it->path : "-") !=
        0) {
        b->ctx.output_errno = errno ? errno : EIO;
        return EXIT_OUTPUT;
    }
    if (b->o->input_features)
        return translate_features_file(b, it->path, &w);
    mtla_audio *audio = cli_open_audio(it->path, b->io, b->ctx.fbank.sample_rate);
    if (!audio)
        return EXIT_INPUT;
    int is_stream = strcmp(it->path, "-") == 0;
    if (b->o->partial) {
        int status = translate_partial(&b->ctx, &b->partial, audio, is_stream ? 0 : -1, name, out);
        mtla_audio_close(audio);
        return status;
    }
    segment_mode mode = b->o->segment || is_stream ? SEGMENTS_EACH : SEGMENTS_WHOLE;
    int status = translate_audio(&b->ctx, audio, is_stream ? 0 : -1, name, mode, &w);
    mtla_audio_close(audio);
    return status;
}

/* OUTDIR/relative with the extension replaced by the format's. */
static int output_path(const batch *b, const input_item *it, char *buf, size_t size)
{
    const char *ext = b->o->print_tokens ? "tokens" : output_format_extension(b->o->format);
    const char *dot = strrchr(it->relative, '.');
    const char *slash = strrchr(it->relative, '/');
    int stem =
        dot && (!slash || dot > slash) ? (int)(dot - it->relative) : (int)strlen(it->relative);
    int n = snprintf(buf, size, "%s/%.*s.%s", b->o->output_dir, stem, it->relative, ext);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

static int run_to_directory(batch *b, const input_item *it)
{
    char path[PATH_MAX], message[512];
    if (output_path(b, it, path, sizeof path) != 0) {
        cli_error("%s: output name too long", it->path);
        return EXIT_INPUT;
    }
    struct stat st;
    if (!b->o->overwrite && stat(path, &st) == 0) {
        b->skipped++;
        if (b->o->verbose)
            cli_error("%s: skipped, '%s' exists (--overwrite translates again)", it->path, path);
        return EXIT_OK;
    }
    atomic_file out;
    if (atomic_file_open(&out, path, message, sizeof message) != 0) {
        cli_error("%s", message);
        return EXIT_OUTPUT;
    }
    int status = translate_one(b, it, out.f);
    if (stop_requested) {
        atomic_file_abort(&out); /* an interrupted file is translated again next time */
        return status;
    }
    if (status == EXIT_OK && atomic_file_commit(&out, message, sizeof message) != 0) {
        cli_error("%s", message);
        return EXIT_OUTPUT;
    }
    if (status != EXIT_OK) {
        if (status == EXIT_OUTPUT)
            cli_error("cannot write '%s': %s", path, strerror(b->ctx.output_errno));
        atomic_file_abort(&out);
    }
    return status;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A run killed by SIGKILL or a crash leaves the temporary file it was writing. Before
 * translating, every directory this run writes to loses the temporary files of writers that
 * are dead (atomic_file.h), so that a resumed run leaves nothing behind. */
static void remove_stale_temporaries(const batch *b, const input_list *inputs)
{
    char **dirs = calloc(inputs->count ? inputs->count : 1, sizeof *dirs);
    size_t n = 0, removed = 0;
    char path[PATH_MAX], message[PATH_MAX + 256];
    if (!dirs) {
        cli_error("out of memory");
        return;
    }
    for (size_t i = 0; i < inputs->count; i++) {
        if (output_path(b, &inputs->items[i], path, sizeof path) != 0)
            continue;
        *strrchr(path, '/') = '\0'; /* output_path puts OUTDIR/ first */
        if ((n == 0 || strcmp(dirs[n - 1], path) != 0) && (dirs[n] = strdup(path)))
            n++;
    }
    if (n > 0)
        qsort(dirs, n, sizeof *dirs, by_string);
    for (size_t i = 0; i < n; i++)
        if ((i == 0 || strcmp(dirs[i], dirs[i - 1]) != 0) &&
            atomic_file_remove_stale(dirs[i], &removed, message, sizeof message) != 0 &&
            !b->o->quiet)
            cli_error("%s", message);
    for (size_t i = 0; i < n; i++)
        free(dirs[i]);
    free(dirs);
    if (removed && !b->o->quiet)
        cli_error("removed %zu temporary file%s left by an interrupted run", removed,
                  removed == 1 ? "" : "s");
}

/* Standard output refused a write, or its reader went away (EPIPE). A closed pipe ends the run
 * as it ends cat or grep: by SIGPIPE, quietly (status 141 in a shell), unless SIGPIPE is
 * ignored, when it is reported like any other failure (exit 3). */
static void standard_output_failed(int error)
{
    struct sigaction sa;
    if (error == EPIPE && sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        fflush(stderr);
        raise(SIGPIPE);
    }
    cli_error("cannot write to standard output: %s", strerror(error));
}

int cmd_translate(int argc, char **argv)
{
    translate_options o = {.device = -1,
                           .partial_step = 1000,
                           .wait_k = 3,
                           .repeat_limit = 3,
                           .logprob_threshold = -1.0,
                           .policy = MTLA_POLICY_LOCAL_AGREEMENT};
    cli_input_options io;
    cli_input_options_init(&io);
    int status = parse_options(argc, argv, &o, &io);
    if (status != EXIT_OK)
        return status < 0 ? EXIT_OK : status;

    char message[512];
    input_list inputs = {0};
    for (int i = optind; i < argc && status == EXIT_OK; i++)
        if (inputs_add(&inputs, argv[i], o.output_dir, message, sizeof message) != 0) {
            cli_error("%s", message);
            status = EXIT_INPUT;
        }
    if (status == EXIT_OK && o.files_from &&
        inputs_add_from(&inputs, o.files_from, o.output_dir, message, sizeof message) != 0) {
        cli_error("%s", message);
        status = EXIT_INPUT;
    }
    size_t stdin_uses = 0;
    for (size_t i = 0; i < inputs.count; i++)
        stdin_uses += strcmp(inputs.items[i].path, "-") == 0;
    if (status == EXIT_OK) {
        const char *problem = NULL;
        if (inputs.directories && !o.output_dir)
            problem = "a directory INPUT needs -o OUTDIR for its outputs";
        else if (stdin_uses > 1 || (stdin_uses && o.files_from && !strcmp(o.files_from, "-")))
            problem = "standard input can be read once only";
        else if (stdin_uses && o.output_dir)
            problem = "standard input is translated to standard output; drop -o";
        else if (!o.output_dir && inputs.count > 1 &&
                 (o.format == FORMAT_SRT || o.format == FORMAT_VTT))
            problem = "subtitles of several inputs need -o OUTDIR (one file each)";
        if (problem) {
            cli_error("%s", problem);
            status = EXIT_USAGE;
        }
    }
    /* Walk warnings (directory link loops, not followed) fail the run like a bad file would,
     * once everything else is translated: `find -L` does the same. */
    for (size_t i = 0; i < inputs.note_count; i++)
        cli_error("%s", inputs.notes[i]);
    int walk_problems = inputs.note_count > 0;
    if (status == EXIT_OK && o.shard_n)
        inputs_shard(&inputs, o.shard_k, o.shard_n);
    if (status != EXIT_OK) {
        inputs_free(&inputs);
        return status;
    }

    char bundled[PATH_MAX];
    const char *model_dir = cli_find_model(o.model, bundled, sizeof bundled);
    if (!model_dir) {
        cli_error("no model: pass --model DIR or set MTLA_ST_MODEL");
        inputs_free(&inputs);
        return EXIT_USAGE;
    }
    mtla_error err;
    mtla_model *model;
    if (mtla_model_open(model_dir, &model, &err) != MTLA_OK) {
        cli_error("model %s: %s", model_dir, err.message);
        inputs_free(&inputs);
        return EXIT_USAGE;
    }
    batch b = {.o = &o, .io = &io, .total = inputs.count, .started = now_seconds()};
    b.ctx.stop = &stop_requested;
    b.ctx.verbose = o.verbose;
    b.ctx.watch_stdout = !o.output_dir;
    b.ctx.fbank = mtla_model_fbank_params(model);
    b.ctx.vad = mtla_vad_default_params();
    b.ctx.vad.sample_rate = b.ctx.fbank.sample_rate;
    b.ctx.model = model;
    /* No utterance may exceed what the encoder accepts (a Whisper encoder: 30 s). */
    int64_t max_input_ms = mtla_model_max_input_ms(model);
    if (max_input_ms > 0 && b.ctx.vad.max_segment_ms > max_input_ms)
        b.ctx.vad.max_segment_ms = (int32_t)max_input_ms;
    b.ctx.decode = mtla_decode_default_params(model);
    if (o.have_beam)
        b.ctx.decode.beam = (int32_t)o.beam;
    if (o.have_lenpen)
        b.ctx.decode.lenpen = (float)o.lenpen;
    if (o.have_a)
        b.ctx.decode.max_len_a = o.max_len_a;
    if (o.have_b)
        b.ctx.decode.max_len_b = (int32_t)o.max_len_b;
    mtla_translator_params tp = mtla_translator_default_params();
    tp.threads = o.threads;
    tp.device = o.device;
    tp.dtype = o.dtype;
    if (mtla_translator_create(model, &tp, &b.ctx.translator, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        mtla_model_close(model);
        inputs_free(&inputs);
        return EXIT_USAGE;
    }
    b.partial.stream = mtla_stream_default_params(model);
    b.partial.stream.policy = o.policy;
    b.partial.stream.partial_step_ms = (int32_t)o.partial_step;
    b.partial.stream.wait_k = o.wait_k;
    b.partial.stream.logprob_threshold =
        o.logprob_threshold <= -1000 ? -INFINITY : (float)o.logprob_threshold;
    b.partial.stream.repeat_limit = o.repeat_limit;
    b.partial.stream.vad = b.ctx.vad;
    b.partial.stream.decode = b.ctx.decode;
    b.partial.realtime = !o.no_realtime;
    b.partial.format = o.format;
    b.partial.terminal = o.format == FORMAT_TXT && isatty(STDOUT_FILENO);
    install_signal_handlers();
    b.progress = o.output_dir && !o.quiet && isatty(STDERR_FILENO);
    for (size_t i = 0; i < inputs.count; i++)
        b.bytes_total += inputs.items[i].bytes > 0 ? inputs.items[i].bytes : 0;

    if (o.output_dir)
        remove_stale_temporaries(&b, &inputs);
    int output_failed = 0;
    for (size_t i = 0; i < inputs.count && !output_failed && !stop_requested; i++) {
        const input_item *it = &inputs.items[i];
        progress_line(&b, it->relative);
        size_t skipped = b.skipped;
        int st;
        if (o.output_dir) {
            st = run_to_directory(&b, it);
        } else if (output_closed(STDOUT_FILENO)) {
            b.ctx.output_errno = EPIPE;
            st = EXIT_OUTPUT;
        } else {
            st = translate_one(&b, it, stdout);
        }
        b.bytes_done += it->bytes > 0 ? it->bytes : 0;
        if (st == EXIT_OUTPUT) {
            output_failed = 1; /* a full disk or a closed pipe: stop, earlier outputs stand */
            if (!o.output_dir)
                standard_output_failed(b.ctx.output_errno ? b.ctx.output_errno : EIO);
        } else if (st != EXIT_OK) {
            b.failed++;
        } else if (!stop_requested && b.skipped == skipped) {
            b.done++;
        }
    }
    if (b.progress)
        fputs("\r\033[K", stderr);
    double elapsed = now_seconds() - b.started;
    if (!o.quiet && (o.output_dir || inputs.count > 1))
        fprintf(stderr,
                "mtla-st: %zu translated, %zu skipped (output exists), %zu failed of %zu "
                "files; %.3f h of audio in %.1f s, real-time factor %.3f\n",
                b.done, b.skipped, b.failed, inputs.count, b.ctx.audio_seconds / 3600.0, elapsed,
                b.ctx.audio_seconds > 0 ? b.ctx.compute_seconds / b.ctx.audio_seconds : 0.0);
    mtla_translator_free(b.ctx.translator);
    mtla_model_close(model);
    inputs_free(&inputs);
    if (output_failed)
        return EXIT_OUTPUT;
    if (stop_requested)
        return 128 + (int)stop_requested;
    return b.failed || walk_problems ? EXIT_INPUT : EXIT_OK;
}
