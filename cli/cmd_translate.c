/* mtla-st [--model DIR] INPUT...: translate each input, one line per input on stdout. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "npy.h"

enum {
    OPT_MODEL = 2000,
    OPT_BEAM,
    OPT_LENPEN,
    OPT_MAX_LEN_A,
    OPT_MAX_LEN_B,
    OPT_THREADS,
    OPT_PRINT_TOKENS,
    OPT_INPUT_FEATURES
};

void translate_usage(FILE *out)
{
    fprintf(out,
            "Usage: mtla-st [OPTIONS] INPUT...\n"
            "\n"
            "Translates each INPUT (an audio file libsndfile reads, or '-' for standard input) and\n"
            "prints one line per input: the translation, or its model ids with --print-tokens.\n"
            "\n"
            "Model:\n"
            "  -m, --model DIR      model directory (default: $MTLA_ST_MODEL)\n"
            "  -t, --threads N      CPU threads (default 0: all cores)\n"
            "\n"
            "Decoding (defaults from the model's config.json):\n"
            "  -b, --beam N         beam size; 1 is greedy decoding\n"
            "  --lenpen X           length penalty: score = log-prob / length^X\n"
            "  --max-len-a X        at most X * frames + B tokens (frames: 10 ms fbank frames)\n"
            "  --max-len-b B\n"
            "\n"
            "Output and input:\n"
            "  --print-tokens       print model ids (space-separated) instead of text\n"
            "  --input-features     INPUTs are .npy fbank features (frames x bins, before CMVN),\n"
            "                       as 'mtla-st features' writes them\n"
            "  -h, --help           show this help\n"
            "\n"
            "%s",
            CLI_INPUT_HELP);
}


typedef struct translate_options {
    const char *model;
    int threads;
    int print_tokens;
    int input_features;
    long beam, max_len_b;
    double lenpen, max_len_a;
    int have_beam, have_lenpen, have_a, have_b;
} translate_options;

/* Loads INPUT as features (frames x bins) through the model's frontend or from a .npy file. */
static int load_features(const char *input, const cli_input_options *io,
                         const translate_options *o, const mtla_fbank_params *fp,
                         float **frames, size_t *count)
{
    mtla_error err;
    char message[512];
    int32_t bins = fp->num_mel_bins;
    if (o->input_features) {
        size_t cols;
        if (npy_read_f32(input, frames, count, &cols, message, sizeof message) != 0) {
            cli_error("%s", message);
            return EXIT_INPUT;
        }
        if (cols != (size_t)bins) {
            cli_error("%s: features have %zu bins, the model needs %d", input, cols, (int)bins);
            free(*frames);
            return EXIT_INPUT;
        }
        return EXIT_OK;
    }
    float *samples = NULL;
    size_t n = 0;
    if (mtla_audio_load(input, &io->stream, fp->sample_rate, &samples, &n, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        return EXIT_INPUT;
    }
    mtla_status st = mtla_fbank_compute(fp, samples, n, frames, count, &err);
    free(samples);
    if (st != MTLA_OK) {
        cli_error("%s: %s", input, err.message);
        return EXIT_INPUT;
    }
    if (*count == 0) {
        free(*frames);
        cli_error("%s: no audio (shorter than one 25 ms frame)", strcmp(input, "-") ? input
                                                                                 : "standard input");
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* Prints one result line and flushes it; EXIT_OUTPUT when stdout refuses. */
static int print_result(const mtla_translation *tr, int print_tokens)
{
    int bad = 0;
    if (print_tokens) {
        for (int32_t i = 0; i < tr->token_count; i++)
            bad |= printf(i ? " %d" : "%d", (int)tr->tokens[i]) < 0;
        bad |= putchar('\n') == EOF;
    } else {
        bad |= printf("%s\n", tr->text) < 0;
    }
    bad |= fflush(stdout) != 0;
    if (bad) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return EXIT_OUTPUT;
    }
    return EXIT_OK;
}

static int parse_options(int argc, char **argv, translate_options *o, cli_input_options *io)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 't'},
        {"beam", required_argument, NULL, 'b'},
        {"lenpen", required_argument, NULL, OPT_LENPEN},
        {"max-len-a", required_argument, NULL, OPT_MAX_LEN_A},
        {"max-len-b", required_argument, NULL, OPT_MAX_LEN_B},
        {"print-tokens", no_argument, NULL, OPT_PRINT_TOKENS},
        {"input-features", no_argument, NULL, OPT_INPUT_FEATURES},
        {"help", no_argument, NULL, 'h'},
        CLI_INPUT_LONG_OPTIONS,
        {NULL, 0, NULL, 0}};
    long v;
    int c;
    optind = 1;
    argv[0] = "mtla-st";
    while ((c = getopt_long(argc, argv, "hm:t:b:", longopts, NULL)) != -1) {
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
        case OPT_PRINT_TOKENS: o->print_tokens = 1; break;
        case OPT_INPUT_FEATURES: o->input_features = 1; break;
        case 'h': usage_all(stdout); return -1;
        default: fprintf(stderr, "Try 'mtla-st --help'.\n"); return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        cli_error("no INPUT given");
        fprintf(stderr, "Try 'mtla-st --help'.\n");
        return EXIT_USAGE;
    }
    if (!o->model)
        o->model = getenv("MTLA_ST_MODEL");
    if (!o->model || !*o->model) {
        cli_error("no model: pass --model DIR or set MTLA_ST_MODEL");
        return EXIT_USAGE;
    }
    return EXIT_OK;
}

int cmd_translate(int argc, char **argv)
{
    translate_options o = {0};
    cli_input_options io;
    cli_input_options_init(&io);
    int status = parse_options(argc, argv, &o, &io);
    if (status != EXIT_OK)
        return status < 0 ? EXIT_OK : status;

    mtla_error err;
    mtla_model *model;
    if (mtla_model_open(o.model, &model, &err) != MTLA_OK) {
        cli_error("--model %s: %s", o.model, err.message);
        return EXIT_USAGE;
    }
    mtla_translator_params tp = mtla_translator_default_params();
    tp.threads = o.threads;
    mtla_translator *translator;
    if (mtla_translator_create(model, &tp, &translator, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        mtla_model_close(model);
        return EXIT_INPUT;
    }
    mtla_decode_params dp = mtla_decode_default_params(model);
    if (o.have_beam)
        dp.beam = (int32_t)o.beam;
    if (o.have_lenpen)
        dp.lenpen = (float)o.lenpen;
    if (o.have_a)
        dp.max_len_a = o.max_len_a;
    if (o.have_b)
        dp.max_len_b = (int32_t)o.max_len_b;
    mtla_fbank_params fbank = mtla_model_fbank_params(model);

    int failed = 0;
    for (int i = optind; i < argc && status == EXIT_OK; i++) {
        float *frames = NULL;
        size_t count = 0;
        if (load_features(argv[i], &io, &o, &fbank, &frames, &count) != EXIT_OK) {
            failed = 1;
            continue;
        }
        mtla_translation tr;
        mtla_status st = mtla_translate_features(translator, frames, (int64_t)count, &dp, &tr,
                                                 &err);
        free(frames);
        if (st != MTLA_OK) {
            cli_error("%s: %s", argv[i], err.message);
            failed = 1;
            continue;
        }
        status = print_result(&tr, o.print_tokens);
        mtla_translation_free(&tr);
    }
    mtla_translator_free(translator);
    mtla_model_close(model);
    if (status != EXIT_OK)
        return status;
    return failed ? EXIT_INPUT : EXIT_OK;
}
