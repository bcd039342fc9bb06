/* `mtla-st --model DIR INPUT...` end to end against the PyTorch oracle: from the oracle's own
 * input features (--input-features) every golden model prints the oracle's beam result token
 * for token and its text; from the audio files themselves (our frontend, our resampler) the
 * tokens are the same. Plus the command line's errors. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_support.h"

#define ARGS(...) ((const char *const[]){"mtla-st", __VA_ARGS__, NULL})

static char model_path[512];

static const char *model(const char *name)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/models/%s", name);
    snprintf(model_path, sizeof model_path, "%s", fixture(rel));
    return model_path;
}

static cJSON *fixture_json(const char *name, const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/models/%s/fixtures/%s", name, file);
    size_t size;
    unsigned char *text = read_file(fixture(rel), &size);
    cJSON *json = cJSON_ParseWithLength((const char *)text, size);
    free(text);
    cr_assert(json);
    return json;
}

/* The oracle's best hypothesis for `beam` as "id id id\n", and its text. */
static char *oracle_line(const char *name, int beam, int text)
{
    cJSON *b = fixture_json(name, "beam.json");
    char key[8];
    snprintf(key, sizeof key, "%d", beam);
    cJSON *best = cJSON_GetObjectItem(cJSON_GetObjectItem(b, "beams"), key);
    cr_assert(best);
    char *line = calloc(1, 8192);
    if (text) {
        snprintf(line, 8192, "%s\n", cJSON_GetObjectItem(best, "text")->valuestring);
    } else {
        cJSON *t;
        size_t n = 0;
        cJSON_ArrayForEach(t, cJSON_GetObjectItem(best, "tokens")) n +=
            (size_t)snprintf(line + n, 8192 - n, n ? " %d" : "%d", (int)t->valuedouble);
        snprintf(line + n, 8192 - n, "\n");
    }
    cJSON_Delete(b);
    return line;
}

static const char *input_features(const char *name)
{
    cJSON *meta = fixture_json(name, "meta.json");
    static char path[512];
    snprintf(path, sizeof path, "%s", fixture(cJSON_GetObjectItem(meta, "input")->valuestring));
    cJSON_Delete(meta);
    return path;
}

static void check_features(const char *name, int beam)
{
    char beam_arg[8];
    snprintf(beam_arg, sizeof beam_arg, "%d", beam);
    char *want = oracle_line(name, beam, 0);
    cli_result r = run_cli(ARGS("--model", model(name), "--beam", beam_arg, "--print-tokens",
                                "--input-features", input_features(name)),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s: %s", name, r.err);
    cr_expect_str_eq((char *)r.out, want, "%s beam %d", name, beam);
    cli_result_free(&r);
    free(want);

    want = oracle_line(name, beam, 1);
    r = run_cli(
        ARGS("--model", model(name), "-b", beam_arg, "--input-features", input_features(name)),
        NULL, 0);
    cr_assert_eq(r.status, 0, "%s: %s", name, r.err);
    cr_expect_str_eq((char *)r.out, want, "%s beam %d text", name, beam);
    cli_result_free(&r);
    free(want);
}

#define GOLDEN(name)                                                                               \
    Test(translate, name##_matches_the_oracle)                                                     \
    {                                                                                              \
        check_features(#name, 1);                                                                  \
        check_features(#name, 5);                                                                  \
        check_features(#name, 50);                                                                 \
    }

GOLDEN(transformer_mtla_s2)
GOLDEN(transformer_mtla_s2_even)
GOLDEN(conformer_relpos_mtla_s3)
GOLDEN(transformer_mtla_s1)
GOLDEN(transformer_mla)
GOLDEN(transformer_mha)
GOLDEN(conformer_abs_gqa)
GOLDEN(whisper_mtla_s2)

/* The golden inputs are torchaudio features of these clips; ours differ by ~1e-4, which must
 * not change a decision. Several inputs: one line each, in order. */
Test(translate, audio_files_give_the_oracle_tokens)
{
    const char *name = "transformer_mtla_s2";
    char *want16 = oracle_line(name, 5, 0);
    char *want48 = oracle_line("transformer_mtla_s2_even", 5, 0);
    cli_result r = run_cli(ARGS("--model", model(name), "--print-tokens",
                                fixture("tests/data/frontend/clip_16000_s16.wav")),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq((char *)r.out, want16);
    cli_result_free(&r);

    r = run_cli(ARGS("--model", model("transformer_mtla_s2_even"), "--print-tokens",
                     fixture("tests/data/frontend/clip_48000_s24_stereo.flac"),
                     fixture("tests/data/frontend/clip_48000_s24_stereo.flac")),
                NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char both[16384];
    snprintf(both, sizeof both, "%s%s", want48, want48);
    cr_expect_str_eq((char *)r.out, both);
    cli_result_free(&r);
    free(want16);
    free(want48);
}

Test(translate, standard_input_is_translated)
{
    size_t size;
    unsigned char *wav = read_file(fixture("tests/data/frontend/clip_16000_s16.wav"), &size);
    char *want = oracle_line("transformer_mtla_s2", 5, 0);
    cli_result r =
        run_cli(ARGS("--model", model("transformer_mtla_s2"), "--print-tokens", "-"), wav, size);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq((char *)r.out, want);
    cli_result_free(&r);
    free(want);
    free(wav);
}

Test(translate, model_from_the_environment)
{
    setenv("MTLA_ST_MODEL", model("transformer_mha"), 1);
    cli_result r = run_cli(
        ARGS("--print-tokens", "--input-features", input_features("transformer_mha")), NULL, 0);
    unsetenv("MTLA_ST_MODEL");
    char *want = oracle_line("transformer_mha", 5, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq((char *)r.out, want);
    cli_result_free(&r);
    free(want);
}

Test(translate, a_failing_input_is_named_and_the_others_are_still_translated)
{
    char *want = oracle_line("transformer_mtla_s2", 5, 0);
    cli_result r =
        run_cli(ARGS("--model", model("transformer_mtla_s2"), "--print-tokens",
                     "/nonexistent/a.wav", fixture("tests/data/frontend/clip_16000_s16.wav"),
                     fixture("tests/data/frontend/clip_16000_s16.wav") /* twice */),
                NULL, 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "/nonexistent/a.wav"), "%s", r.err);
    char both[16384];
    snprintf(both, sizeof both, "%s%s", want, want);
    cr_expect_str_eq((char *)r.out, both);
    cli_result_free(&r);
    free(want);
}

/* A 16 kHz mono s16 WAV file of `n` zero samples in a temporary path. */
static char *silent_wav(size_t n)
{
    char *path = strdup("/tmp/mtla-translate-XXXXXX.wav");
    int fd = mkstemps(path, 4);
    cr_assert(fd >= 0);
    uint32_t data = (uint32_t)(2 * n), riff = 36 + data, fmt_size = 16, rate = 16000,
             byte_rate = 32000;
    uint16_t pcm = 1, channels = 1, align = 2, bits = 16;
    unsigned char h[44];
    memcpy(h, "RIFF", 4);
    memcpy(h + 4, &riff, 4);
    memcpy(h + 8, "WAVEfmt ", 8);
    memcpy(h + 16, &fmt_size, 4);
    memcpy(h + 20, &pcm, 2);
    memcpy(h + 22, &channels, 2);
    memcpy(h + 24, &rate, 4);
    memcpy(h + 28, &byte_rate, 4);
    memcpy(h + 32, &align, 2);
    memcpy(h + 34, &bits, 2);
    memcpy(h + 36, "data", 4);
    memcpy(h + 40, &data, 4);
    cr_assert_eq(write(fd, h, 44), 44);
    short *zeros = calloc(n ? n : 1, sizeof *zeros);
    cr_assert_eq(write(fd, zeros, 2 * n), (ssize_t)(2 * n));
    free(zeros);
    close(fd);
    return path;
}

Test(translate, empty_and_tiny_files_are_errors)
{
    const char *sizes_names[] = {"empty", "10 ms"};
    size_t sizes[] = {0, 160};
    for (int i = 0; i < 2; i++) {
        char *path = silent_wav(sizes[i]);
        cli_result r = run_cli(ARGS("--model", model("transformer_mtla_s2"), path), NULL, 0);
        cr_expect_eq(r.status, 1, "%s file: %s", sizes_names[i], r.err);
        cr_expect(strstr(r.err, path), "%s file: message names it: %s", sizes_names[i], r.err);
        cr_expect_eq(r.out_size, 0);
        cli_result_free(&r);
        unlink(path);
        free(path);
    }
    cli_result r = run_cli(ARGS("--model", model("transformer_mtla_s2"), "--raw", "-"), NULL, 0);
    cr_expect_eq(r.status, 1, "an empty standard input is an error");
    cr_expect(strstr(r.err, "standard input"), "%s", r.err);
    cli_result_free(&r);
}

Test(translate, silence_on_standard_input_prints_nothing)
{
    /* A live stream with no speech has no utterance to translate: no line, success. */
    size_t n = 16000 * 2;
    short *zeros = calloc(n, sizeof *zeros);
    cli_result r = run_cli(ARGS("--model", model("transformer_mtla_s2"), "--raw", "-"), zeros,
                           n * sizeof *zeros);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(r.out_size, 0);
    cli_result_free(&r);
    free(zeros);
}

Test(translate, bad_models_and_options_exit_2_with_a_message)
{
    const char *wav = fixture("tests/data/frontend/clip_16000_s16.wav");
    cli_result r = run_cli(ARGS("--model", "/nonexistent/model", wav), NULL, 0);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "/nonexistent/model"), "%s", r.err);
    cli_result_free(&r);

    /* No --model and no $MTLA_ST_MODEL: the bundled model when the binary finds one (a build
     * folder inside the source tree sees samples/model), else a message pointing at --model. */
    unsetenv("MTLA_ST_MODEL");
    r = run_cli(ARGS(wav), NULL, 0);
    char bundled[4096];
    snprintf(bundled, sizeof bundled, "%s", MTLA_CLI_PATH);
    char *slash = strrchr(bundled, '/');
    snprintf(slash ? slash : bundled, sizeof bundled - (size_t)(slash ? slash - bundled : 0),
             "/../samples/model/config.json");
    if (access(bundled, R_OK) == 0) {
        cr_expect_eq(r.status, 0, "the bundled model is the default: %s", r.err);
        cr_expect(r.out_size > 1 && r.out[r.out_size - 1] == '\n', "one line of text");
    } else {
        cr_expect_eq(r.status, 2);
        cr_expect(strstr(r.err, "--model"), "%s", r.err);
    }
    cli_result_free(&r);

    /* a directory that is not a model: the frontend fixtures */
    r = run_cli(ARGS("--model", fixture("tests/data/frontend"), wav), NULL, 0);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "config.json"), "%s", r.err);
    cli_result_free(&r);

    const char *bad[][2] = {{"--beam", "0"},       {"--beam", "x"},     {"--max-len-b", "0"},
                            {"--max-len-a", "-1"}, {"--threads", "-2"}, {"--lenpen", "nan"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = run_cli(ARGS("--model", model("transformer_mtla_s2"), bad[i][0], bad[i][1], wav), NULL,
                    0);
        cr_expect_eq(r.status, 2, "%s %s", bad[i][0], bad[i][1]);
        cr_expect(strstr(r.err, bad[i][0]), "%s %s: %s", bad[i][0], bad[i][1], r.err);
        cr_expect_eq(r.out_size, 0);
        cli_result_free(&r);
    }
}

Test(translate, help_lists_the_translation_options)
{
    cli_result r = run_cli(ARGS("--help"), NULL, 0);
    cr_assert_eq(r.status, 0);
    const char *want[] = {"--model",   "--beam",         "--lenpen", "--max-len-a", "--max-len-b",
                          "--threads", "--print-tokens", "features", "segments"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr((char *)r.out, want[i]), "--help lacks %s", want[i]);
    cli_result_free(&r);
}

/* A temporary .npy file of float32 data whose header claims `shape` (a Python tuple, e.g.
 * "(4, 3)"), followed by `count` zeros whatever the shape says. The caller unlinks and frees. */
static char *write_npy(const char *shape, size_t count)
{
    char *path = strdup("/tmp/mtla-translate-XXXXXX.npy");
    int fd = mkstemps(path, 4);
    cr_assert(fd >= 0);
    char header[128];
    int n = snprintf(header, sizeof header,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    int pad = 64 - (10 + n + 1) % 64;
    unsigned char magic[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n + pad + 1),
                               0};
    cr_assert_eq(write(fd, magic, 10), 10);
    cr_assert_eq(write(fd, header, (size_t)n), n);
    for (int i = 0; i < pad; i++)
        cr_assert_eq(write(fd, " ", 1), 1);
    cr_assert_eq(write(fd, "\n", 1), 1);
    float zero = 0.0f;
    for (size_t i = 0; i < count; i++)
        cr_assert_eq(write(fd, &zero, sizeof zero), (ssize_t)sizeof zero);
    close(fd);
    return path;
}

Test(translate, features_with_the_wrong_number_of_bins_are_refused)
{
    char *path = write_npy("(4, 3)", 12); /* a valid .npy of shape (4, 3) */
    cli_result r =
        run_cli(ARGS("--model", model("transformer_mtla_s2"), "--input-features", path), NULL, 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "3 bins"), "%s", r.err);
    cli_result_free(&r);
    unlink(path);
    free(path);
}

/* Found while writing tests/fuzz/fuzz_npy: a header of a few bytes claiming 2^32 x 4096
 * floats (64 TiB) is reported as truncated, checked against the file's size before anything
 * is allocated. */
Test(translate, features_larger_than_their_file_are_truncated)
{
    char *path = write_npy("(4294967296, 4096)", 16);
    cli_result r =
        run_cli(ARGS("--model", model("transformer_mtla_s2"), "--input-features", path), NULL, 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "is truncated"), "%s", r.err);
    cli_result_free(&r);
    unlink(path);
    free(path);
}

/* On a machine with a CUDA device the GPU must print the CPU's tokens; without one, asking for
 * it is a clear usage error. */
Test(translate, device_cuda_matches_the_cpu_or_is_refused)
{
#ifdef MTLA_CUDA_PLUGIN_PATH
    /* this process and the CLI load the plugin this build made (the CLI would find it anyway) */
    setenv("MTLA_ST_CUDA_PLUGIN", MTLA_CUDA_PLUGIN_PATH, 0);
#endif
    char detail[256];
    int32_t devices = mtla_cuda_device_count(detail, sizeof detail);
    const char *name = "transformer_mtla_s2";
    cli_result r = run_cli(ARGS("--model", model(name), "--device", "cuda:0", "--print-tokens",
                                "--input-features", input_features(name)),
                           NULL, 0);
    if (devices == 0) {
        cr_expect_eq(r.status, 2, "%s", r.err);
        cr_expect(strstr(r.err, "CUDA"), "%s", r.err);
        cr_expect_eq(r.out_size, 0);
    } else {
        char *want = oracle_line(name, 5, 0);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect_str_eq((char *)r.out, want);
        free(want);
    }
    cli_result_free(&r);
}

/* The CUDA backend is a plugin loaded only for --device cuda: one that cannot be loaded is a
 * usage error (exit 2) naming what was tried, and the CPU runs as before without it. */
Test(translate, device_cuda_without_its_plugin_names_the_path)
{
    const char *name = "transformer_mtla_s2";
    const char *missing = "/nonexistent/mtla-st-plugin-dir/libmtla-st-cuda.so";
    setenv("MTLA_ST_CUDA_PLUGIN", missing, 1);
    cli_result r = run_cli(ARGS("--model", model(name), "--device", "cuda", "--print-tokens",
                                "--input-features", input_features(name)),
                           NULL, 0);
    cr_expect_eq(r.status, 2, "%s", r.err);
    cr_expect(strstr(r.err, "CUDA device 0"), "%s", r.err);
    cr_expect(strstr(r.err, missing), "%s", r.err);
    cr_expect_eq(r.out_size, 0);
    cli_result_free(&r);

    r = run_cli(ARGS("--model", model(name), "--device", "cpu", "--print-tokens",
                     "--input-features", input_features(name)),
                NULL, 0);
    char *want = oracle_line(name, 5, 0);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_str_eq((char *)r.out, want);
    free(want);
    cli_result_free(&r);
    unsetenv("MTLA_ST_CUDA_PLUGIN");
}
