/* mtla-st features: the model's input features of an audio input, as a .npy file. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "npy.h"

static void features_usage(FILE *out)
{
    fprintf(out,
            "Usage: mtla-st features [--model DIR] [--cmvn none|utterance] INPUT -o OUT.npy\n"
            "\n"
            "Writes the 80-bin Kaldi log-mel filterbank features of INPUT (any audio file, or '-'\n"
            "for standard input), resampled to 16 kHz mono, as a little-endian float32 NumPy\n"
            "array of shape (frames, 80). With --model, the features that model reads instead:\n"
            "its fbank settings, or Whisper's log-mel (frames, num_mel_bins) for a \"whisper\"\n"
            "frontend, clamped over the whole input as one utterance. OUT '-' writes to\n"
            "standard output.\n"
            "\n"
            "  -o, --output OUT     output .npy file (required)\n"
            "  -m, --model DIR      the model whose features to compute\n"
            "  --cmvn none|utterance  normalisation (default none: raw log-mel)\n"
            "  -h, --help           show this help\n"
            "\n"
            "%s",
            CLI_INPUT_HELP);
}

/* The model's features of the whole of INPUT (Whisper's clamp needs all of it at once). */
static int extract_for_model(const char *input, const cli_input_options *io,
                             const mtla_model *model, float **frames, size_t *count)
{
    float *samples = NULL;
    size_t n = 0;
    mtla_error err;
    mtla_fbank_params params = mtla_model_fbank_params(model);
    if (mtla_audio_load(input, &io->stream, params.sample_rate, &samples, &n, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        return EXIT_INPUT;
    }
    mtla_status st = mtla_model_features(model, samples, n, frames, count, &err);
    free(samples);
    if (st != MTLA_OK) {
        cli_error("%s: %s", input, err.message);
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

/* Streams INPUT through the fbank; fills *frames (malloc'ed) and *count. */
static int extract(const char *input, const cli_input_options *io,
                   const mtla_fbank_params *settings, float **frames, size_t *count)
{
    mtla_fbank_params params = *settings;
    mtla_audio *audio = cli_open_audio(input, io, params.sample_rate);
    if (!audio)
        return EXIT_INPUT;
    mtla_error err;
    mtla_fbank *fbank;
    if (mtla_fbank_create(&params, &fbank, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        mtla_audio_close(audio);
        return EXIT_INPUT;
    }
    const size_t bins = (size_t)params.num_mel_bins;
    size_t capacity = 1024, n = 0;
    float *out = malloc(capacity * bins * sizeof(float));
    float chunk[8192];
    int status = out ? EXIT_OK : EXIT_INPUT;
    if (!out)
        cli_error("out of memory");
    while (status == EXIT_OK) {
        size_t got = 0;
        if (mtla_audio_read(audio, chunk, sizeof chunk / sizeof chunk[0], &got, &err) != MTLA_OK ||
            mtla_fbank_accept(fbank, chunk, got, &err) != MTLA_OK) {
            cli_error("%s", err.message);
            status = EXIT_INPUT;
            break;
        }
        size_t ready = mtla_fbank_frames_ready(fbank);
        if (n + ready > capacity) {
            while (n + ready > capacity)
                capacity *= 2;
            float *grown = realloc(out, capacity * bins * sizeof(float));
            if (!grown) {
                cli_error("out of memory");
                status = EXIT_INPUT;
                break;
            }
            out = grown;
        }
        n += mtla_fbank_take(fbank, out + n * bins, ready);
        if (got == 0)
            break;
    }
    mtla_fbank_free(fbank);
    mtla_audio_close(audio);
    if (status != EXIT_OK) {
        free(out);
        return status;
    }
    *frames = out;
    *count = n;
    return EXIT_OK;
}

int cmd_features(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"model", required_argument, NULL, 'm'},
                                             {"cmvn", required_argument, NULL, OPT_CMVN},
                                             {"help", no_argument, NULL, 'h'},
                                             CLI_INPUT_LONG_OPTIONS,
                                             {NULL, 0, NULL, 0}};
    cli_input_options io;
    cli_input_options_init(&io);
    const char *output = NULL, *model_dir = NULL;
    int utterance_cmvn = 0;
    int c;
    optind = 1;
    argv[0] = "mtla-st features"; /* getopt's own messages then name the command */
    while ((c = getopt_long(argc, argv, "ho:m:", longopts, NULL)) != -1) {
        int used = cli_input_option(&io, c, optarg);
        if (used < 0)
            return EXIT_USAGE;
        if (used)
            continue;
        switch (c) {
        case 'o': output = optarg; break;
        case 'm': model_dir = optarg; break;
        case OPT_CMVN:
            if (strcmp(optarg, "utterance") == 0) {
                utterance_cmvn = 1;
            } else if (strcmp(optarg, "none") == 0) {
                utterance_cmvn = 0;
            } else {
                cli_error("--cmvn must be none or utterance, not '%s' (global CMVN comes with "
                          "a model)",
                          optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': features_usage(stdout); return EXIT_OK;
        default: fprintf(stderr, "Try 'mtla-st features --help'.\n"); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || !output) {
        cli_error(optind >= argc ? "features: no INPUT given"
                  : !output      ? "features: no output file given (-o OUT.npy)"
                                 : "features: exactly one INPUT is expected");
        fprintf(stderr, "Try 'mtla-st features --help'.\n");
        return EXIT_USAGE;
    }

    if (strcmp(output, "-") == 0 && isatty(STDOUT_FILENO)) {
        cli_error("features: refusing to write binary .npy data to a terminal; use -o FILE or "
                  "redirect standard output");
        return EXIT_USAGE;
    }
    mtla_model *model = NULL;
    mtla_error err;
    if (model_dir && mtla_model_open(model_dir, &model, &err) != MTLA_OK) {
        cli_error("model %s: %s", model_dir, err.message);
        return EXIT_USAGE;
    }
    mtla_fbank_params fbank = model ? mtla_model_fbank_params(model) : mtla_fbank_default_params();
    int whisper = model && strcmp(mtla_model_frontend_type(model), "whisper") == 0;
    float *frames = NULL;
    size_t count = 0;
    int status = whisper ? extract_for_model(argv[optind], &io, model, &frames, &count)
                         : extract(argv[optind], &io, &fbank, &frames, &count);
    mtla_model_close(model);
    if (status != EXIT_OK)
        return status;
    if (utterance_cmvn)
        mtla_cmvn_utterance(frames, count, fbank.num_mel_bins);
    char message[512];
    if (npy_write_f32(output, frames, count, (size_t)fbank.num_mel_bins, message, sizeof message) !=
        0) {
        cli_error("%s", message);
        status = EXIT_OUTPUT;
    }
    free(frames);
    return status;
}
