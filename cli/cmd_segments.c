/* mtla-st segments: where the speech is. One line per utterance found by the streaming VAD,
 * "start<TAB>end" in seconds, printed as soon as the utterance has ended. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void segments_usage(FILE *out)
{
    mtla_vad_params d = mtla_vad_default_params();
    fprintf(out,
            "Usage: mtla-st segments [OPTIONS] INPUT\n"
            "\n"
            "Prints one line per speech segment of INPUT (any audio file, or '-' for standard\n"
            "input, read as it arrives): start and end in seconds, tab-separated. Each line is\n"
            "printed as soon as its utterance has ended.\n"
            "\n"
            "Voice activity detection:\n"
            "  --onset-db DB          speech starts this far above the noise floor (default %g)\n"
            "  --offset-db DB         and lasts while this far above it (default %g)\n"
            "  --min-speech-ms MS     ignore shorter bursts (default %d)\n"
            "  --min-silence-ms MS    a pause this long ends an utterance (default %d)\n"
            "  --padding-ms MS        kept before and after each utterance (default %d)\n"
            "  --max-segment-s S      cut longer utterances at their quietest point (default %d)\n"
            "  -h, --help             show this help\n"
            "\n"
            "%s",
            d.onset_db, d.offset_db, (int)d.min_speech_ms, (int)d.min_silence_ms, (int)d.padding_ms,
            (int)(d.max_segment_ms / 1000), CLI_INPUT_HELP);
}

static int vad_option(mtla_vad_params *p, int id, const char *arg)
{
    double x;
    long v;
    switch (id) {
    case OPT_ONSET_DB:
        if (!cli_parse_float(arg, "--onset-db", 0, 60, &x))
            return -1;
        p->onset_db = (float)x;
        return 1;
    case OPT_OFFSET_DB:
        if (!cli_parse_float(arg, "--offset-db", 0, 60, &x))
            return -1;
        p->offset_db = (float)x;
        return 1;
    case OPT_MIN_SPEECH:
        if (!cli_parse_int(arg, "--min-speech-ms", 0, 10000, &v))
            return -1;
        p->min_speech_ms = (int32_t)v;
        return 1;
    case OPT_MIN_SILENCE:
        if (!cli_parse_int(arg, "--min-silence-ms", 10, 60000, &v))
            return -1;
        p->min_silence_ms = (int32_t)v;
        return 1;
    case OPT_PADDING:
        if (!cli_parse_int(arg, "--padding-ms", 0, 10000, &v))
            return -1;
        p->padding_ms = (int32_t)v;
        return 1;
    case OPT_MAX_SEGMENT:
        if (!cli_parse_float(arg, "--max-segment-s", 1, 3600, &x))
            return -1;
        p->max_segment_ms = (int32_t)(x * 1000.0);
        return 1;
    default: return 0;
    }
}

/* Prints every ready segment; returns 0 if stdout failed. */
static int print_ready(mtla_vad *vad, double rate)
{
    mtla_segment seg;
    while (mtla_vad_take(vad, &seg)) {
        printf("%.3f\t%.3f\n", (double)seg.start / rate, (double)seg.end / rate);
        if (fflush(stdout) != 0)
            return 0;
    }
    return 1;
}

int cmd_segments(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"onset-db", required_argument, NULL, OPT_ONSET_DB},
        {"offset-db", required_argument, NULL, OPT_OFFSET_DB},
        {"min-speech-ms", required_argument, NULL, OPT_MIN_SPEECH},
        {"min-silence-ms", required_argument, NULL, OPT_MIN_SILENCE},
        {"padding-ms", required_argument, NULL, OPT_PADDING},
        {"max-segment-s", required_argument, NULL, OPT_MAX_SEGMENT},
        {"help", no_argument, NULL, 'h'},
        CLI_INPUT_LONG_OPTIONS,
        {NULL, 0, NULL, 0}};
    cli_input_options io;
    cli_input_options_init(&io);
    mtla_vad_params params = mtla_vad_default_params();
    int c;
    optind = 1;
    argv[0] = "mtla-st segments"; /* getopt's own messages then name the command */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        int used = cli_input_option(&io, c, optarg);
        if (used == 0)
            used = vad_option(&params, c, optarg);
        if (used < 0)
            return EXIT_USAGE;
        if (used)
            continue;
        if (c == 'h') {
            segments_usage(stdout);
            return EXIT_OK;
        }
        fprintf(stderr, "Try 'mtla-st segments --help'.\n");
        return EXIT_USAGE;
    }
    if (optind != argc - 1) {
        cli_error(optind >= argc ? "segments: no INPUT given"
                                 : "segments: exactly one INPUT is expected");
        fprintf(stderr, "Try 'mtla-st segments --help'.\n");
        return EXIT_USAGE;
    }

    mtla_error err;
    mtla_vad *vad;
    if (mtla_vad_create(&params, &vad, &err) != MTLA_OK) {
        cli_error("%s", err.message);
        return EXIT_USAGE;
    }
    mtla_audio *audio = cli_open_audio(argv[optind], &io, params.sample_rate);
    if (!audio) {
        mtla_vad_free(vad);
        return EXIT_INPUT;
    }
    int status = EXIT_OK;
    float chunk[4096];
    for (;;) {
        size_t got = 0;
        if (mtla_audio_read(audio, chunk, sizeof chunk / sizeof chunk[0], &got, &err) != MTLA_OK) {
            /* Segments found so far are printed below before the error counts. */
            cli_error("%s", err.message);
            status = EXIT_INPUT;
            break;
        }
        if (got == 0)
            break;
        if (mtla_vad_accept(vad, chunk, got, &err) != MTLA_OK) {
            cli_error("%s", err.message);
            status = EXIT_INPUT;
            break;
        }
        if (!print_ready(vad, params.sample_rate)) {
            cli_error("cannot write to standard output");
            status = EXIT_OUTPUT;
            break;
        }
    }
    if (status != EXIT_OUTPUT) {
        mtla_vad_finish(vad);
        if (!print_ready(vad, params.sample_rate)) {
            cli_error("cannot write to standard output");
            status = EXIT_OUTPUT;
        }
    }
    mtla_audio_close(audio);
    mtla_vad_free(vad);
    return status;
}
