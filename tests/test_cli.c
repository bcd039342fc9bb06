/* The mtla-st executable end to end: `features` and `segments` on files and standard input,
 * usage errors, bad input and unwritable output, with exit statuses and messages. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_support.h"

#define ARGS(...) ((const char *const[]){"mtla-st", __VA_ARGS__, NULL})

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    cr_assert(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

Test(cli, features_of_a_file_match_torchaudio)
{
    char *dir = make_temp_dir(), *out = path_join(dir, "feats.npy");
    cli_result r = run_cli(
        ARGS("features", fixture("tests/data/frontend/clip_48000_s24_stereo.flac"), "-o", out),
        NULL, 0);
    cr_assert_eq(r.status, 0, "stderr: %s", r.err);
    cr_expect_eq(r.out_size, 0, "stdout must stay empty");
    npy_array ours = npy_load(out);
    npy_array golden = npy_load(fixture("tests/golden/frontend/clip_48000_s24_stereo.npy"));
    cr_assert_eq(ours.rows, golden.rows);
    cr_assert_eq(ours.cols, 80);
    cr_expect_leq(max_abs_diff(ours.data, golden.data, ours.rows * 80), 1e-3);
    cr_expect_eq(count_entries(dir), 1, "no temporary file may be left behind");
    npy_free(&ours);
    npy_free(&golden);
    cli_result_free(&r);
    unlink(out);
    rmdir(dir);
    free(out);
    free(dir);
}

Test(cli, features_from_standard_input_equal_features_from_the_file)
{
    const char *wav_path = fixture("tests/data/frontend/clip_16000_s16.wav");
    size_t size;
    unsigned char *wav = read_file(wav_path, &size);
    cli_result file = run_cli(ARGS("features", wav_path, "-o", "-"), NULL, 0);
    cli_result as_wav = run_cli(ARGS("features", "-", "-o", "-"), wav, size);
    cli_result as_raw = run_cli(ARGS("features", "--raw", "-", "-o", "-"), wav + 44, size - 44);
    cr_assert_eq(file.status, 0, "%s", file.err);
    cr_assert_eq(as_wav.status, 0, "%s", as_wav.err);
    cr_assert_eq(as_raw.status, 0, "%s", as_raw.err);
    npy_array f = npy_parse(file.out, file.out_size);
    cr_expect_eq(f.rows, 298);
    cr_expect(file.out_size == as_wav.out_size && memcmp(file.out, as_wav.out, file.out_size) == 0,
              "WAV on standard input differs from the file");
    cr_expect(file.out_size == as_raw.out_size && memcmp(file.out, as_raw.out, file.out_size) == 0,
              "raw PCM on standard input differs from the file");
    npy_free(&f);
    cli_result_free(&file);
    cli_result_free(&as_wav);
    cli_result_free(&as_raw);
    free(wav);
}

Test(cli, raw_input_options_describe_the_stream)
{
    const char *wav_path = fixture("tests/data/frontend/clip_8000_s16.wav");
    size_t size;
    unsigned char *wav = read_file(wav_path, &size);
    cli_result file = run_cli(ARGS("features", wav_path, "-o", "-"), NULL, 0);
    cli_result raw = run_cli(
        ARGS("features", "--rate", "8000", "--encoding", "s16", "--channels", "1", "-", "-o", "-"),
        wav + 44, size - 44);
    cr_assert_eq(raw.status, 0, "%s", raw.err);
    npy_array a = npy_parse(file.out, file.out_size), b = npy_parse(raw.out, raw.out_size);
    cr_assert_eq(a.rows, b.rows);
    cr_expect_leq(max_abs_diff(a.data, b.data, a.rows * 80), 1e-4);
    npy_free(&a);
    npy_free(&b);
    cli_result_free(&file);
    cli_result_free(&raw);
    free(wav);
}

Test(cli, utterance_cmvn_centres_every_dimension)
{
    cli_result r = run_cli(ARGS("features", "--cmvn", "utterance",
                                fixture("tests/data/frontend/clip_16000_s16.wav"), "-o", "-"),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    npy_array f = npy_parse(r.out, r.out_size);
    for (size_t d = 0; d < 80; d++) {
        double sum = 0;
        for (size_t t = 0; t < f.rows; t++)
            sum += f.data[t * 80 + d];
        cr_expect(sum / f.rows < 1e-4 && sum / f.rows > -1e-4, "dim %zu mean %g", d, sum / f.rows);
    }
    npy_free(&f);
    cli_result_free(&r);
}

Test(cli, segments_prints_tab_separated_seconds)
{
    cli_result r =
        run_cli(ARGS("segments", fixture("tests/data/vad/speech_with_pauses.wav")), NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    char *text = strndup((const char *)r.out, r.out_size);
    int lines = 0;
    double previous_end = -1.0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        double start, end;
        char tail;
        cr_assert_eq(sscanf(line, "%lf\t%lf%c", &start, &end, &tail), 2, "bad line '%s'", line);
        cr_expect(strchr(line, '\t'), "'%s' is not tab-separated", line);
        cr_expect(start < end && start >= previous_end, "'%s'", line);
        previous_end = end;
        lines++;
    }
    cr_expect_eq(lines, 4, "4 sentences, got %d segments:\n%.*s", lines, (int)r.out_size,
                 (char *)r.out);
    free(text);
    cli_result_free(&r);
}

/* The segment of the first sentence must appear while standard input is still open. */
Test(cli, segments_are_printed_while_the_stream_is_open, .timeout = 60)
{
    size_t size;
    unsigned char *wav = read_file(fixture("tests/data/vad/speech_with_pauses.wav"), &size);
    int in[2], out[2];
    cr_assert(pipe(in) == 0 && pipe(out) == 0);
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl(MTLA_CLI_PATH, "mtla-st", "segments", "-", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    /* Send the WAV header and the first 4.2 s (sentence 1 ends at 3.29 s), keep it open. */
    size_t first = 44 + (size_t)(4.2 * 16000) * 2;
    cr_assert_eq(write(in[1], wav, first), (ssize_t)first);
    struct pollfd p = {out[0], POLLIN, 0};
    int ready = poll(&p, 1, 20000);
    cr_expect_eq(ready, 1, "no segment printed within 20 s while the stream was open");
    char line[128] = {0};
    if (ready == 1) {
        ssize_t n = read(out[0], line, sizeof line - 1);
        cr_expect(n > 0 && strchr(line, '\n'), "partial output '%s'", line);
    }
    /* Then the rest; all four segments in total. */
    cr_assert_eq(write(in[1], wav + first, size - first), (ssize_t)(size - first));
    close(in[1]);
    char rest[1024];
    size_t total = 0;
    ssize_t n;
    while ((n = read(out[0], rest + total, sizeof rest - 1 - total)) > 0)
        total += (size_t)n;
    rest[total] = '\0';
    close(out[0]);
    int status;
    waitpid(pid, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int lines = 0;
    for (char *c = rest; *c; c++)
        lines += *c == '\n';
    cr_expect_eq(lines, 3, "three more segments after the first, got:\n%s", rest);
    free(wav);
}

Test(cli, truncated_stream_keeps_segments_and_fails)
{
    size_t size;
    unsigned char *wav = read_file(fixture("tests/data/vad/speech_with_pauses.wav"), &size);
    /* Raw PCM of the first 8 s plus one stray byte. */
    size_t bytes = (size_t)8 * 16000 * 2 + 1;
    cli_result r = run_cli(ARGS("segments", "--raw", "-"), wav + 44, bytes);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "standard input ended in the middle of a sample"), "%s", r.err);
    int lines = 0;
    for (size_t i = 0; i < r.out_size; i++)
        lines += r.out[i] == '\n';
    cr_expect_eq(lines, 2, "the segments before the damage must be printed");
    cli_result_free(&r);
    free(wav);
}

typedef struct bad_case {
    const char *const *argv;
    const void *input;
    size_t input_size;
    int status;
    const char *message;
} bad_case;

Test(cli, bad_input_and_usage_errors)
{
    static const char odd_stream[] = {1, 2, 3};
    static const char flac_stream[] = "fLaC\0\0\0\x22 and the rest of a FLAC stream";
    char *dir = make_temp_dir();
    char *text = path_join(dir, "notes.wav"), *out = path_join(dir, "out.npy");
    FILE *f = fopen(text, "w");
    fputs("not audio\n", f);
    fclose(f);
    const char *clip = fixture("tests/data/frontend/clip_16000_s16.wav");
    bad_case cases[] = {
        {ARGS("features", "/no/such/talk.wav", "-o", out), NULL, 0, 1,
         "cannot open '/no/such/talk.wav': No such file or directory"},
        {ARGS("features", text, "-o", out), NULL, 0, 1, "as audio"},
        {ARGS("features", dir, "-o", out), NULL, 0, 1, "is a directory"},
        {ARGS("features", "-", "-o", out), NULL, 0, 1, "standard input is empty"},
        {ARGS("features", "-", "-o", out), odd_stream, 3, 1, "middle of a sample"},
        {ARGS("segments", "-"), flac_stream, sizeof flac_stream, 1,
         "standard input carries FLAC; streams must be raw PCM or WAV"},
        {ARGS("segments", "/no/such/talk.wav"), NULL, 0, 1, "No such file"},
        {ARGS("segments", "--bogus", clip), NULL, 0, 2, "unrecognized option '--bogus'"},
        {ARGS("features", clip), NULL, 0, 2, "no output file given"},
        {ARGS("features", "-o", out), NULL, 0, 2, "no INPUT given"},
        {ARGS("features", "--cmvn", "global", clip, "-o", out), NULL, 0, 2, "--cmvn"},
        {ARGS("features", "--rate", "12x", "-", "-o", out), NULL, 0, 2, "--rate"},
        {ARGS("segments", "--min-silence-ms", "5", clip), NULL, 0, 2, "--min-silence-ms"},
        {ARGS("segments", clip, clip), NULL, 0, 2, "exactly one INPUT"},
        {ARGS("--model", "/no/such/model", clip), NULL, 0, 2, "/no/such/model"},
        {ARGS("features", clip, "-o", "/no/such/dir/out.npy"), NULL, 0, 3, "cannot create"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cli_result r = run_cli(cases[i].argv, cases[i].input, cases[i].input_size);
        cr_expect_eq(r.status, cases[i].status, "case %zu: exit %d, stderr: %s", i, r.status,
                     r.err);
        cr_expect(strstr(r.err, cases[i].message), "case %zu: stderr lacks '%s': %s", i,
                  cases[i].message, r.err);
        cr_expect(strncmp(r.err, "mtla-st", 7) == 0, "case %zu: unprefixed message %s", i, r.err);
        cr_expect_eq(r.out_size, 0, "case %zu: stdout must stay empty", i);
        cli_result_free(&r);
    }
    cr_expect_eq(access(out, F_OK), -1, "no output may be written for a failed input");
    unlink(text);
    rmdir(dir);
    free(text);
    free(out);
    free(dir);
}

Test(cli, full_disk_leaves_the_previous_output_intact)
{
    char *dir = make_temp_dir(), *out = path_join(dir, "feats.npy");
    const char *clip = fixture("tests/data/frontend/clip_16000_s16.wav");
    FILE *f = fopen(out, "w");
    fputs("previous results\n", f);
    fclose(f);
    /* 298 frames x 80 floats need 95 KB; allow 20 KB. */
    cli_result r = run_cli_limited(ARGS("features", clip, "-o", out), NULL, 0, 20000);
    cr_expect_eq(r.status, 3, "exit %d: %s", r.status, r.err);
    cr_expect(strstr(r.err, "cannot write") && strstr(r.err, out), "%s", r.err);
    size_t size;
    unsigned char *kept = read_file(out, &size);
    cr_expect(size == 17 && memcmp(kept, "previous results\n", 17) == 0,
              "the previous file was damaged");
    cr_expect_eq(count_entries(dir), 1, "a temporary file was left behind");
    free(kept);
    cli_result_free(&r);

    /* Standard output that cannot take the data. */
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        close(full);
        char command[4096];
        snprintf(command, sizeof command, "'%s' features '%s' -o - > /dev/full 2>/dev/null",
                 MTLA_CLI_PATH, clip);
        int status = system(command);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 3, "exit status %d", status);
    }
    unlink(out);
    rmdir(dir);
    free(out);
    free(dir);
}

Test(cli, help_and_version)
{
    cli_result r = run_cli(ARGS("--help"), NULL, 0);
    cr_expect_eq(r.status, 0);
    cr_expect(strstr((char *)r.out, "features") && strstr((char *)r.out, "segments") &&
                  strstr((char *)r.out, "Exit status"),
              "incomplete help");
    cli_result_free(&r);
    r = run_cli(ARGS("features", "--help"), NULL, 0);
    cr_expect_eq(r.status, 0);
    cr_expect(strstr((char *)r.out, "--cmvn") && strstr((char *)r.out, "--rate"));
    cli_result_free(&r);
    r = run_cli(ARGS("--version"), NULL, 0);
    cr_expect_eq(r.status, 0);
    cr_expect(r.out_size > 8 && memcmp(r.out, "mtla-st ", 8) == 0);
    cli_result_free(&r);
    r = run_cli((const char *const[]){"mtla-st", NULL}, NULL, 0);
    cr_expect_eq(r.status, 2);
    cli_result_free(&r);
}
