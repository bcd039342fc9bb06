/* mtla-st: the command line. Dispatches to a command; see `mtla-st --help`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

void usage_all(FILE *out)
{
    translate_usage(out);
    fprintf(out,
            "\n"
            "Other commands (mtla-st COMMAND --help for their options):\n"
            "  mtla-st features INPUT -o OUT.npy   write the model's input features (Kaldi fbank;\n"
            "                                      or, with --model DIR, that model's)\n"
            "  mtla-st segments INPUT              print the speech segments the VAD finds\n"
            "  mtla-st serve                       an HTTP service with the OpenAI audio API\n"
            "                                      and a WebSocket for live audio\n"
            "  mtla-st --version                   version and build information\n"
            "\n"
            "INPUT is any audio file libsndfile reads (WAV, FLAC, Ogg/Vorbis, Opus, MP3, ...) at\n"
            "any rate and channel count, or '-' for standard input (raw PCM or a WAV stream).\n"
            "\n"
            "Exit status: 0 success, 1 an input could not be processed, 2 bad command line or\n"
            "model, 3 results could not be written.\n");
}

static void version(void)
{
    char cuda[1024];
    mtla_cuda_device_count(cuda, sizeof cuda);
    printf("mtla-st %s\n%s\n", mtla_version(), cuda);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_all(stderr);
        return EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "features") == 0)
        return cmd_features(argc - 1, argv + 1);
    if (strcmp(command, "segments") == 0)
        return cmd_segments(argc - 1, argv + 1);
    if (strcmp(command, "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(command, "-h") == 0 || strcmp(command, "--help") == 0) {
        usage_all(stdout);
        return EXIT_OK;
    }
    if (strcmp(command, "-V") == 0 || strcmp(command, "--version") == 0) {
        version();
        return EXIT_OK;
    }
    return cmd_translate(argc, argv);
}
