#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

void cli_error(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("mtla-st: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
}

const char CLI_INPUT_HELP[] =
    "Standard input (INPUT '-'): raw PCM unless it starts with a WAV header\n"
    "  --rate HZ            sample rate of raw input (default 16000)\n"
    "  --channels N         interleaved channels of raw input, averaged to mono (default 1)\n"
    "  --encoding s16|f32   raw sample encoding, little-endian (default s16)\n"
    "  --raw                never look for a WAV header\n";

void cli_input_options_init(cli_input_options *o)
{
    o->stream = mtla_stream_format_default();
}

int cli_parse_int(const char *arg, const char *what, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end != '\0' || v < min || v > max) {
        cli_error("%s must be a whole number from %ld to %ld, not '%s'", what, min, max, arg);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_float(const char *arg, const char *what, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end != '\0' || !(v >= min && v <= max)) {
        cli_error("%s must be a number from %g to %g, not '%s'", what, min, max, arg);
        return 0;
    }
    *out = v;
    return 1;
}

int cli_parse_device(const char *arg, int *out)
{
    long v;
    if (strcmp(arg, "cpu") == 0) {
        *out = -1;
    } else if (strcmp(arg, "cuda") == 0) {
        *out = 0;
    } else if (strncmp(arg, "cuda:", 5) == 0) {
        if (!cli_parse_int(arg + 5, "--device cuda:N", 0, 1023, &v))
            return 0;
        *out = (int)v;
    } else {
        cli_error("--device must be cpu, cuda or cuda:N, not '%s'", arg);
        return 0;
    }
    return 1;
}

int cli_parse_dtype(const char *arg, mtla_compute_dtype *out)
{
    const mtla_compute_dtype all[] = {MTLA_COMPUTE_FP32, MTLA_COMPUTE_BF16, MTLA_COMPUTE_INT8};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(arg, mtla_compute_dtype_name(all[i])) == 0) {
            *out = all[i];
            return 1;
        }
    cli_error("--dtype must be fp32, bf16 or int8, not '%s'", arg);
    return 0;
}

int cli_input_option(cli_input_options *o, int id, const char *arg)
{
    long v;
    switch (id) {
    case OPT_RATE:
        if (!cli_parse_int(arg, "--rate", 1000, 768000, &v))
            return -1;
        o->stream.sample_rate = (int32_t)v;
        return 1;
    case OPT_CHANNELS:
        if (!cli_parse_int(arg, "--channels", 1, 64, &v))
            return -1;
        o->stream.channels = (int32_t)v;
        return 1;
    case OPT_ENCODING:
        if (strcmp(arg, "s16") == 0 || strcmp(arg, "s16le") == 0) {
            o->stream.encoding = MTLA_PCM_S16LE;
        } else if (strcmp(arg, "f32") == 0 || strcmp(arg, "f32le") == 0) {
            o->stream.encoding = MTLA_PCM_F32LE;
        } else {
            cli_error("--encoding must be s16 or f32, not '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_RAW: o->stream.detect_wav = 0; return 1;
    default: return 0;
    }
}

mtla_audio *cli_open_audio(const char *input, const cli_input_options *o, int32_t rate)
{
    mtla_audio *audio = NULL;
    mtla_error err;
    mtla_status st = strcmp(input, "-") == 0
                         ? mtla_audio_open_fd(0, "standard input", &o->stream, rate, &audio, &err)
                         : mtla_audio_open_file(input, rate, &audio, &err);
    if (st != MTLA_OK) {
        cli_error("%s", err.message);
        return NULL;
    }
    return audio;
}

const char *cli_find_model(const char *model, char *buf, size_t size)
{
    if (model)
        return model;
    const char *env = getenv("MTLA_ST_MODEL");
    if (env && *env)
        return env;
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return NULL;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (!slash)
        return NULL;
    *slash = '\0';
    static const char *const candidates[] = {"../share/mtla-st/model", "../samples/model",
                                             "../../samples/model"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++) {
        struct stat st;
        int n1 = snprintf(buf, size, "%s/%s/config.json", exe, candidates[i]);
        if (n1 > 0 && (size_t)n1 < size && stat(buf, &st) == 0) {
            buf[n1 - (int)strlen("/config.json")] = '\0';
            return buf;
        }
    }
    return NULL;
}
