/* Shared pieces of the mtla-st command line. The CLI uses only the public header. */
#ifndef MTLA_CLI_H
#define MTLA_CLI_H

#include <getopt.h>
#include <stdio.h>

#include "mtla-st.h"

/* Exit statuses, documented in `mtla-st --help` and the README. */
enum {
    EXIT_OK = 0,
    EXIT_INPUT = 1, /* an input could not be processed (missing, corrupt, truncated audio) */
    EXIT_USAGE = 2, /* bad command line */
    EXIT_OUTPUT = 3 /* results could not be written (permissions, full disk) */
};

/* Prints "mtla-st: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Options describing standard-input audio, shared by every command that reads audio. */
typedef struct cli_input_options {
    mtla_stream_format stream;
} cli_input_options;

/* The getopt_long entries of the standard-input options, for a command's option table. */
#define CLI_INPUT_LONG_OPTIONS                                                                     \
    {"rate", required_argument, NULL, OPT_RATE},                                                   \
        {"channels", required_argument, NULL, OPT_CHANNELS},                                       \
        {"encoding", required_argument, NULL, OPT_ENCODING},                                       \
    {                                                                                              \
        "raw", no_argument, NULL, OPT_RAW                                                          \
    }

void cli_input_options_init(cli_input_options *o);
/* Handles one of --rate/--channels/--encoding/--raw (by getopt long-option id and optarg).
 * Returns 1 if consumed, 0 if not an input option, -1 after printing a usage error. */
int cli_input_option(cli_input_options *o, int id, const char *arg);
extern const char CLI_INPUT_HELP[];

/* Long-option ids for the shared options (beyond any short-option character). */
enum {
    OPT_RATE = 1000,
    OPT_CHANNELS,
    OPT_ENCODING,
    OPT_RAW,
    OPT_CMVN,
    OPT_ONSET_DB,
    OPT_OFFSET_DB,
    OPT_MIN_SPEECH,
    OPT_MIN_SILENCE,
    OPT_PADDING,
    OPT_MAX_SEGMENT
};

/* Parses a whole number in [min, max]; prints a usage error naming `what` on failure. */
int cli_parse_int(const char *arg, const char *what, long min, long max, long *out);
int cli_parse_float(const char *arg, const char *what, double min, double max, double *out);
/* --device cpu|cuda|cuda:N: -1 for the CPU, else the CUDA device number; 0 with a message
 * when `arg` is none of them. */
int cli_parse_device(const char *arg, int *out);
/* --dtype fp32|bf16|int8; 0 with a message when `arg` is none of them. */
int cli_parse_dtype(const char *arg, mtla_compute_dtype *out);

/* The model directory: `model` (--model) when given, else $MTLA_ST_MODEL, else the bundled
 * model next to the executable: installed (PREFIX/share/mtla-st/model) or in the source tree
 * (build/../samples/model), written into buf. NULL when there is none. */
const char *cli_find_model(const char *model, char *buf, size_t size);

/* Opens INPUT ("-" is standard input) as 16 kHz mono audio; prints the error on failure. */
mtla_audio *cli_open_audio(const char *input, const cli_input_options *o, int32_t rate);

int cmd_features(int argc, char **argv);
int cmd_segments(int argc, char **argv);
int cmd_translate(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* The translation options (mtla-st --help starts with them). */
void translate_usage(FILE *out);
/* The whole --help text. */
void usage_all(FILE *out);

#endif
