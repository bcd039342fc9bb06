/* The three ways people use `mtla-st` end to end, with a golden model on real speech:
 * live standard input (lines while the stream is open, EOF and SIGINT flush the open
 * utterance, bounded memory over hours), batch directories (mirrored atomic outputs, resume,
 * shards, failures, summary), output formats checked by real parsers, and bad input. */
#include <cjson/cJSON.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#define ARGS(...) ((const char *const[]){"mtla-st", __VA_ARGS__, NULL})
#define SPEECH "tests/data/vad/speech_with_pauses.wav" /* 4 sentences, 20.8 s, 16 kHz s16 */
#define CLIP "samples/audio/sense_and_sensibility_01_austen_64kb-0870.wav"

static const char *model(void)
{
    return fixture("tests/golden/models/transformer_mtla_s2");
}

static void copy_file(const char *from, const char *to)
{
    size_t size;
    unsigned char *data = read_file(from, &size);
    char *dir = strdup(to);
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(dir, 0777);
            *s = '/';
        }
    free(dir);
    FILE *f = fopen(to, "wb");
    cr_assert(f, "cannot create %s", to);
    cr_assert_eq(fwrite(data, 1, size, f), size);
    fclose(f);
    free(data);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
}

static void remove_tree(const char *path)
{
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", path);
    cr_assert_eq(system(command), 0);
}

/* Files under `dir` whose name contains ".tmp." (left-over temporary outputs). */
static int count_temporaries(const char *dir)
{
    char command[512];
    snprintf(command, sizeof command, "find '%s' -name '*.tmp.*' | wc -l", dir);
    FILE *p = popen(command, "r");
    int n = -1;
    cr_assert(p && fscanf(p, "%d", &n) == 1);
    pclose(p);
    return n;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* ------------------------------------------------------------------ live standard input */

Test(stream, a_translation_appears_while_standard_input_is_open, .timeout = 120)
{
    size_t size;
    unsigned char *wav = read_file(fixture(SPEECH), &size);
    cli_child c = cli_spawn(ARGS("--model", model(), "-"), 0);
    /* The header and the first 4.3 s: sentence 1 ends at 3.3 s, then 1 s of pause. */
    size_t first = 44 + (size_t)(4.3 * 16000) * 2;
    cr_assert_eq(write(c.in, wav, first), (ssize_t)first);
    struct pollfd p = {c.out, POLLIN, 0};
    cr_expect_eq(poll(&p, 1, 30000), 1, "no translation within 30 s while the stream was open");
    char line[4096] = {0};
    ssize_t n = read(c.out, line, sizeof line - 1);
    cr_expect(n > 1 && line[n - 1] == '\n', "one whole line, got '%s'", line);
    cr_assert_eq(write(c.in, wav + first, size - first), (ssize_t)(size - first));
    close(c.in);
    int status;
    char *rest = cli_child_finish(&c, &status, NULL);
    cr_expect_eq(status, 0);
    cr_expect_eq(count_lines(rest), 3, "three more utterances, got:\n%s", rest);
    free(rest);
    free(wav);
}

/* Half of sentence 1 (no pause after it), then `end`: EOF or SIGINT. The open utterance must
 * still be translated and printed. */
static void check_open_utterance_is_flushed(int signal_number)
{
    size_t size;
    unsigned char *wav = read_file(fixture(SPEECH), &size);
    cli_child c = cli_spawn(ARGS("--model", model(), "-"), 0);
    size_t part = 44 + (size_t)(2.5 * 16000) * 2;
    cr_assert_eq(write(c.in, wav, part), (ssize_t)part);
    if (signal_number) {
        usleep(300 * 1000); /* let it read what was sent */
        kill(c.pid, signal_number);
    } else {
        close(c.in);
    }
    int status;
    char *out = cli_child_finish(&c, &status, NULL);
    if (signal_number)
        close(c.in);
    cr_expect_eq(count_lines(out), 1, "the open utterance, got '%s'", out);
    cr_expect_eq(status, signal_number ? 128 + signal_number : 0);
    free(out);
    free(wav);
}

Test(stream, end_of_input_translates_the_open_utterance, .timeout = 60)
{
    check_open_utterance_is_flushed(0);
}

Test(stream, sigint_translates_the_open_utterance_and_exits_130, .timeout = 60)
{
    check_open_utterance_is_flushed(SIGINT);
}

Test(stream, sigterm_translates_the_open_utterance, .timeout = 60)
{
    check_open_utterance_is_flushed(SIGTERM);
}

/* Hours of audio (speech and pauses, repeated) through a pipe as fast as it is taken: memory
 * must stay flat. MTLA_TEST_STREAM_HOURS overrides the 2 hours (the sanitizer run uses less). */
Test(stream, hours_of_audio_keep_memory_flat, .timeout = 1800)
{
    double hours = getenv("MTLA_TEST_STREAM_HOURS") ? atof(getenv("MTLA_TEST_STREAM_HOURS")) : 2.0;
    size_t size;
    unsigned char *wav = read_file(fixture(SPEECH), &size);
    const unsigned char *pcm = wav + 44;
    size_t pcm_bytes = size - 44;
    cli_child c = cli_spawn(ARGS("--model", model(), "--raw", "-b", "1", "-"), 0);
    int64_t total = (int64_t)(hours * 3600 * 16000 * 2), sent = 0;
    long first_rss = -1, max_rss = 0;
    time_t started = time(NULL);
    int64_t next_sample = 0;
    int drained_lines = 0;
    while (sent < total) {
        size_t n = pcm_bytes;
        if ((int64_t)n > total - sent)
            n = (size_t)(total - sent) & ~(size_t)1;
        if (n == 0)
            break;
        /* keep stdout drained so the child never blocks on it */
        char sink[65536];
        struct pollfd p = {c.out, POLLIN, 0};
        ssize_t got;
        while (poll(&p, 1, 0) == 1 && (got = read(c.out, sink, sizeof sink)) > 0)
            for (ssize_t i = 0; i < got; i++)
                drained_lines += sink[i] == '\n';
        cr_assert_eq(write(c.in, pcm, n), (ssize_t)n, "the child stopped reading");
        sent += (int64_t)n;
        if (sent >= next_sample) {
            long rss = process_rss_kib(c.pid);
            if (first_rss < 0 && sent > (int64_t)(600 * 16000 * 2))
                first_rss = rss; /* after 10 minutes: buffers have reached their size */
            if (rss > max_rss)
                max_rss = rss;
            next_sample += 60 * 16000 * 2;
        }
    }
    close(c.in);
    int status;
    char *out = cli_child_finish(&c, &status, NULL);
    double audio_s = (double)sent / 32000.0, wall = difftime(time(NULL), started);
    int lines = drained_lines + count_lines(out);
    int repeats = (int)(sent / (int64_t)pcm_bytes);
    cr_expect_eq(status, 0);
    cr_expect_geq(lines, 4 * repeats, "four utterances per repetition (%d repetitions)", repeats);
    cr_log_info("%.2f h of audio in %.0f s; RSS after 10 min %ld KiB, peak %ld KiB, %d lines",
                audio_s / 3600, wall, first_rss, max_rss, lines);
    cr_expect_lt(wall, audio_s, "faster than real time");
    if (first_rss > 0)
        cr_expect_leq(max_rss, first_rss + 16 * 1024,
                      "RSS grew from %ld KiB to %ld KiB over %.2f h", first_rss, max_rss,
                      audio_s / 3600);
    free(out);
    free(wav);
}

Test(stream, truncated_input_keeps_what_was_translated)
{
    size_t size;
    unsigned char *wav = read_file(fixture(SPEECH), &size);
    /* raw s16 cut in the middle of a sample after sentence 2 and its pause */
    size_t cut = (size_t)(7.9 * 16000) * 2 + 1;
    cli_result r = run_cli(ARGS("--model", model(), "--raw", "-"), wav + 44, cut);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect(strstr(r.err, "standard input"), "%s", r.err);
    cr_expect_eq(count_lines((char *)r.out), 2, "the two utterances before the cut: %s", r.out);
    cli_result_free(&r);
    /* a WAV header that promises more data than arrives */
    r = run_cli(ARGS("--model", model(), "-"), wav, size / 2 + 1);
    cr_expect_neq(r.status, 0);
    cr_expect_neq(r.err[0], '\0');
    cr_expect_geq(count_lines((char *)r.out), 2, "%s", r.out);
    cli_result_free(&r);
    free(wav);
}

/* ------------------------------------------------------------------ batch directories */

/* in/a.wav, in/sub/b.flac? (copies of real speech), in/sub/deeper/c.wav, in/notes.txt,
 * in/bad/corrupt.wav (not audio). */
static char *make_tree(void)
{
    char *dir = make_temp_dir();
    char *p;
    copy_file(fixture(CLIP), p = path_join(dir, "in/a.wav")), free(p);
    copy_file(fixture("tests/data/frontend/clip_48000_s24_stereo.flac"),
              p = path_join(dir, "in/sub/b.flac")),
        free(p);
    copy_file(fixture(SPEECH), p = path_join(dir, "in/sub/deeper/c.wav")), free(p);
    write_text(p = path_join(dir, "in/notes.txt"), "not audio\n"), free(p);
    copy_file(fixture(CLIP), p = path_join(dir, "in/bad/corrupt.wav")), free(p);
    p = path_join(dir, "in/bad/corrupt.wav");
    write_text(p, "RIFF\x24\x00\x00\x00WAVEjunkjunkjunk"); /* a lying, broken header */
    free(p);
    return dir;
}

static int exists(const char *dir, const char *rel)
{
    char *p = path_join(dir, rel);
    struct stat st;
    int ok = stat(p, &st) == 0 && st.st_size > 0;
    free(p);
    return ok;
}

Test(batch, a_directory_is_mirrored_resumed_and_failures_are_reported, .timeout = 120)
{
    char *dir = make_tree(), *in = path_join(dir, "in"), *out = path_join(dir, "out");
    cli_result r = run_cli(ARGS("--model", model(), in, "-o", out), NULL, 0);
    cr_expect_eq(r.status, 1, "one file failed: %s", r.err);
    cr_expect(strstr(r.err, "corrupt.wav"), "the failure names the file: %s", r.err);
    cr_expect(strstr(r.err, "3 translated") && strstr(r.err, "1 failed"), "summary: %s", r.err);
    cr_expect_eq(r.out_size, 0, "results go to files, not stdout");
    cr_expect(exists(out, "a.txt") && exists(out, "sub/b.txt") && exists(out, "sub/deeper/c.txt"));
    cr_expect(!exists(out, "notes.txt") && !exists(out, "bad/corrupt.txt"));
    cr_expect_eq(count_temporaries(out), 0);
    cli_result_free(&r);

    /* Resume: existing outputs are skipped; --overwrite translates again. */
    char *a = path_join(out, "a.txt");
    write_text(a, "kept\n");
    r = run_cli(ARGS("--model", model(), in, "-o", out), NULL, 0);
    cr_expect(strstr(r.err, "0 translated, 3 skipped"), "%s", r.err);
    size_t size;
    unsigned char *kept = read_file(a, &size);
    cr_expect(size == 5 && memcmp(kept, "kept\n", 5) == 0, "a skipped output is left alone");
    free(kept);
    cli_result_free(&r);
    r = run_cli(ARGS("--model", model(), "--overwrite", "-q", in, "-o", out), NULL, 0);
    cr_expect_eq(r.status, 1);
    kept = read_file(a, &size);
    cr_expect(size > 5, "--overwrite translated a.wav again");
    free(kept);
    cli_result_free(&r);
    free(a);
    free(in);
    free(out);
    remove_tree(dir);
    free(dir);
}

Test(batch, shards_partition_the_files)
{
    char *dir = make_tree(), *in = path_join(dir, "in");
    char *outs[3];
    int total = 0;
    for (int k = 1; k <= 3; k++) {
        char shard[8], name[16];
        snprintf(shard, sizeof shard, "%d/3", k);
        snprintf(name, sizeof name, "out%d", k);
        outs[k - 1] = path_join(dir, name);
        cli_result r = run_cli(
            ARGS("--model", model(), "--shard", shard, "-q", in, "-o", outs[k - 1]), NULL, 0);
        cli_result_free(&r);
        total += exists(outs[k - 1], "a.txt") + exists(outs[k - 1], "sub/b.txt") +
                 exists(outs[k - 1], "sub/deeper/c.txt");
    }
    cr_expect_eq(total, 3, "every good file in exactly one shard");
    cli_result r = run_cli(ARGS("--model", model(), "--shard", "4/3", in, "-o", outs[0]), NULL, 0);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "--shard"), "%s", r.err);
    cli_result_free(&r);
    for (int k = 0; k < 3; k++)
        free(outs[k]);
    free(in);
    remove_tree(dir);
    free(dir);
}

Test(batch, files_from_a_list)
{
    char *dir = make_temp_dir(), *list = path_join(dir, "list.txt");
    char text[1024];
    snprintf(text, sizeof text, "# two files\n%s\n\n%s\n", fixture(CLIP), fixture(SPEECH));
    write_text(list, text);
    cli_result r = run_cli(ARGS("--model", model(), "--files-from", list), NULL, 0);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(count_lines((char *)r.out), 2, "one line per file: %s", r.out);
    cli_result_free(&r);
    /* the list on standard input */
    snprintf(text, sizeof text, "%s\n", fixture(CLIP));
    r = run_cli(ARGS("--model", model(), "--files-from", "-"), text, strlen(text));
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect_eq(count_lines((char *)r.out), 1);
    cli_result_free(&r);
    unlink(list);
    free(list);
    remove_tree(dir);
    free(dir);
}

/* Links are followed, but a link back into its own ancestors (`ln -s .. in/sub/up`, or a link to
 * itself) is reported and not entered; everything else is translated, and the run exits 1. */
Test(batch, directory_link_loops_are_reported_and_the_rest_translated, .timeout = 120)
{
    char *dir = make_tree(), *in = path_join(dir, "in"), *out = path_join(dir, "out");
    char *up = path_join(in, "sub/up"), *self = path_join(in, "sub/deeper/self");
    char *side = path_join(in, "side");
    cr_assert_eq(symlink("..", up), 0);
    cr_assert_eq(symlink(".", self), 0);
    cr_assert_eq(symlink("sub/deeper", side), 0); /* not a loop: translated under side/ too */
    cli_result r = run_cli(ARGS("--model", model(), in, "-o", out), NULL, 0);
    cr_expect_eq(r.status, 1, "%s", r.err);
    cr_expect(!strstr(r.err, "nested too deeply"), "%s", r.err);
    cr_expect(strstr(r.err, "sub/up' leads back to") && strstr(r.err, "directory loop"), "%s",
              r.err);
    cr_expect(strstr(r.err, "deeper/self' leads back to"), "%s", r.err);
    cr_expect(exists(out, "a.txt") && exists(out, "sub/b.txt") && exists(out, "sub/deeper/c.txt"));
    cr_expect(exists(out, "side/c.txt"), "a link that is not a loop is followed");
    cr_expect(!exists(out, "sub/up/a.txt") && !exists(out, "sub/deeper/self/c.txt"));
    cr_expect(strstr(r.err, "4 translated") && strstr(r.err, "1 failed"), "summary: %s", r.err);
    cli_result_free(&r);
    free(up);
    free(self);
    free(side);
    free(in);
    free(out);
    remove_tree(dir);
    free(dir);
}

Test(batch, unusable_inputs_and_outputs)
{
    char *dir = make_temp_dir(), *empty = path_join(dir, "empty");
    mkdir(empty, 0777);
    cli_result r = run_cli(ARGS("--model", model(), empty, "-o", dir), NULL, 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "no audio files"), "%s", r.err);
    cli_result_free(&r);

    r = run_cli(ARGS("--model", model(), fixture("tests/data/vad"), "-o", "/etc/passwd/x"), NULL,
                0);
    cr_expect_eq(r.status, 3, "an output directory that cannot exist: %s", r.err);
    cr_expect(strstr(r.err, "/etc/passwd/x"), "%s", r.err);
    cli_result_free(&r);

    r = run_cli(ARGS("--model", model(), fixture("tests/data/vad")), NULL, 0);
    cr_expect_eq(r.status, 2, "a directory without -o");
    cr_expect(strstr(r.err, "-o"), "%s", r.err);
    cli_result_free(&r);

    const char *missing = "/nonexistent/file.wav";
    r = run_cli(ARGS("--model", model(), missing), NULL, 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, missing), "%s", r.err);
    cli_result_free(&r);

    char *not_audio = path_join(dir, "text.wav");
    write_text(not_audio, "hello, this is not audio\n");
    r = run_cli(ARGS("--model", model(), not_audio), NULL, 0);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "text.wav"), "%s", r.err);
    cli_result_free(&r);
    free(not_audio);
    free(empty);
    remove_tree(dir);
    free(dir);
}

/* A full disk (RLIMIT_FSIZE): the output that does not fit fails with exit 3, nothing
 * half-written stays, earlier outputs are intact. */
Test(batch, a_full_disk_stops_the_run_and_keeps_earlier_outputs)
{
    char *dir = make_temp_dir(), *in = path_join(dir, "in"), *out = path_join(dir, "out");
    char *p;
    copy_file(fixture(CLIP), p = path_join(dir, "in/1_short.wav")), free(p);
    copy_file(fixture(SPEECH), p = path_join(dir, "in/2_long.wav")), free(p);
    /* sizes of the two outputs without a limit */
    cli_result r =
        run_cli(ARGS("--model", model(), "-s", "-f", "jsonl", "-q", in, "-o", out), NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cli_result_free(&r);
    size_t short_size, long_size;
    unsigned char *short_out = read_file(p = path_join(out, "1_short.jsonl"), &short_size);
    free(p);
    free(read_file(p = path_join(out, "2_long.jsonl"), &long_size));
    free(p);
    cr_assert_lt(short_size, long_size);
    remove_tree(out);

    r = run_cli_limited(ARGS("--model", model(), "-s", "-f", "jsonl", "-q", in, "-o", out), NULL, 0,
                        (long)short_size);
    cr_expect_eq(r.status, 3, "%s", r.err);
    cr_expect(strstr(r.err, "2_long"), "%s", r.err);
    size_t size;
    unsigned char *again = read_file(p = path_join(out, "1_short.jsonl"), &size);
    free(p);
    cr_expect(size == short_size && memcmp(again, short_out, size) == 0, "earlier output intact");
    cr_expect(!exists(out, "2_long.jsonl"), "no half-written output");
    cr_expect_eq(count_temporaries(out), 0);
    free(again);
    free(short_out);
    cli_result_free(&r);
    free(in);
    free(out);
    remove_tree(dir);
    free(dir);
}

/* ------------------------------------------------------------------ formats */

Test(format, jsonl_has_one_object_per_segment)
{
    cli_result r = run_cli(ARGS("--model", model(), "-s", "-f", "jsonl", fixture(SPEECH)), NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    int objects = 0;
    double previous_end = 0;
    for (char *line = strtok((char *)r.out, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        cr_assert(o, "not JSON: %s", line);
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(o, "file")));
        cr_expect(cJSON_IsString(cJSON_GetObjectItem(o, "text")));
        cr_expect(cJSON_IsNumber(cJSON_GetObjectItem(o, "score")));
        double start = cJSON_GetObjectItem(o, "start")->valuedouble;
        double end = cJSON_GetObjectItem(o, "end")->valuedouble;
        cr_expect(start >= previous_end && end > start, "%s", line);
        previous_end = end;
        objects++;
        cJSON_Delete(o);
    }
    cr_expect_eq(objects, 4, "four utterances");
    cli_result_free(&r);
}

static void check_subtitles(const char *format)
{
    char *dir = make_temp_dir(), *out = path_join(dir, "out");
    cli_result r = run_cli(
        ARGS("--model", model(), "-s", "-f", format, fixture(SPEECH), fixture(CLIP), "-o", out),
        NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cli_result_free(&r);
    const char *names[] = {"speech_with_pauses", "sense_and_sensibility_01_austen_64kb-0870"};
    for (int i = 0; i < 2; i++) {
        char command[1024];
        snprintf(command, sizeof command, "/usr/bin/python3 '%s' '%s/%s.%s'",
                 fixture("tests/check_subtitles.py"), out, names[i], format);
        FILE *p = popen(command, "r");
        int cues = -1;
        cr_assert(p);
        int parsed = fscanf(p, "%d", &cues);
        int status = pclose(p);
        cr_expect(parsed == 1 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s does not parse as %s", names[i], format);
        cr_expect_geq(cues, 1, "%s: cues", names[i]);
        if (i == 0)
            cr_expect_eq(cues, 4, "four utterances");
    }
    free(out);
    remove_tree(dir);
    free(dir);
}

Test(format, srt_parses_with_a_real_parser)
{
    check_subtitles("srt");
}

Test(format, vtt_parses_with_a_real_parser)
{
    check_subtitles("vtt");
}

Test(format, subtitles_of_several_inputs_need_an_output_directory)
{
    cli_result r =
        run_cli(ARGS("--model", model(), "-f", "srt", fixture(CLIP), fixture(SPEECH)), NULL, 0);
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "-o"), "%s", r.err);
    cli_result_free(&r);
}

/* ------------------------------------------------------------------ --partial */

#define CONTINUOUS "tests/data/vad/continuous_speech.wav" /* 16.4 s, pauses of 0.3 s only */
/* A random model is as unsure as a trained one on noise: its hypotheses need the guards off. */
#define NO_GUARDS "--logprob-threshold", "-1000", "--repeat-limit", "0"

typedef struct partial_run {
    int finals, partials;
    double first_commit; /* audio_end of the first partial with committed text, -1 if none */
    double last_end;     /* end of the last final */
    char *last_final;
} partial_run;

/* Parses jsonl events and checks what every run must hold: utterances in order, each its
 * partials then one final; committed text only grows; the final starts with it; times grow. */
static partial_run check_events(const char *text)
{
    partial_run r = {.first_commit = -1};
    char *copy = strdup(text), *save = NULL;
    int utterance = -1, open = 0;
    char *committed = strdup("");
    double audio_end = 0;
    for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *e = cJSON_Parse(line);
        cr_assert(e, "not JSON: %s", line);
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(e, "type"));
        int u = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(e, "utterance"));
        double start = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "start"));
        cr_assert(type, "no type: %s", line);
        if (!open) {
            cr_assert_eq(u, utterance + 1, "utterance %d after %d", u, utterance);
            cr_expect_geq(start, r.last_end, "starts after the utterance before");
            utterance = u;
            open = 1;
            free(committed);
            committed = strdup("");
            audio_end = 0;
        }
        cr_assert_eq(u, utterance, "%s", line);
        if (strcmp(type, "partial") == 0) {
            const char *c = cJSON_GetStringValue(cJSON_GetObjectItem(e, "committed"));
            double end = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "audio_end"));
            cr_assert(c && cJSON_GetStringValue(cJSON_GetObjectItem(e, "tentative")), "%s", line);
            cr_expect(strncmp(c, committed, strlen(committed)) == 0, "committed '%s' retracts '%s'",
                      c, committed);
            cr_expect_geq(end, audio_end);
            cr_expect_gt(end, start);
            audio_end = end;
            if (*c && r.first_commit < 0)
                r.first_commit = end;
            free(committed);
            committed = strdup(c);
            r.partials++;
        } else {
            cr_assert_str_eq(type, "final");
            const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(e, "text"));
            cr_assert(t, "%s", line);
            cr_expect(strncmp(t, committed, strlen(committed)) == 0,
                      "final '%s' does not start with the committed '%s'", t, committed);
            r.last_end = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "end"));
            cr_expect_gt(r.last_end, start);
            free(r.last_final);
            r.last_final = strdup(t);
            r.finals++;
            open = 0;
        }
        cJSON_Delete(e);
    }
    cr_expect(!open, "every utterance has its final event");
    free(committed);
    free(copy);
    return r;
}

Test(partial, a_long_utterance_commits_text_before_it_ends, .timeout = 120)
{
    cli_result r = run_cli(ARGS("--model", model(), "--partial", "--no-realtime", "-f", "jsonl",
                                NO_GUARDS, fixture(CONTINUOUS)),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    partial_run p = check_events((const char *)r.out);
    cr_expect_eq(p.finals, 1, "one 16 s utterance without a 500 ms pause");
    cr_expect_geq(p.partials, 10, "a partial per second");
    cr_expect_gt(p.last_end, 15.0);
    cr_assert_geq(p.first_commit, 0, "committed text before the end:\n%s", r.out);
    cr_expect_lt(p.first_commit, p.last_end - 5.0, "first commit at %.1f s of %.1f", p.first_commit,
                 p.last_end);
    free(p.last_final);
    cli_result_free(&r);
}

/* With the default guards and the bundled (trained) model, an utterance whose words were
 * committed is finished: the final goes on past the committed text (the log-prob threshold
 * once cut it back to the committed prefix). */
Test(partial, a_committed_utterance_is_finished_with_the_bundled_model, .timeout = 120)
{
    const char *bundled = fixture("samples/model");
    char config[4096];
    snprintf(config, sizeof config, "%s/config.json", bundled);
    if (access(config, R_OK) != 0)
        cr_skip_test("no bundled model in samples/model");
    cli_result r = run_cli(ARGS("--model", bundled, "--partial", "--no-realtime", "-f", "jsonl",
                                "--threads", "1", fixture("samples/audio/"
                                                          "sense_and_sensibility_01_austen_64kb-"
                                                          "0870.wav")),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    partial_run p = check_events((const char *)r.out);
    cr_assert_eq(p.finals, 1, "%s", r.out);
    cr_assert_geq(p.first_commit, 0, "the trained model commits words:\n%s", r.out);
    const char *last = strrchr((const char *)r.out, '\n');
    const char *prev = last;
    while (prev > (const char *)r.out && prev[-1] != '\n')
        prev--;
    /* the partial event before the final holds the last committed text */
    const char *line_end = prev > (const char *)r.out ? prev - 1 : prev;
    const char *line = line_end;
    while (line > (const char *)r.out && line[-1] != '\n')
        line--;
    char *partial = strndup(line, (size_t)(line_end - line));
    cJSON *e = cJSON_Parse(partial);
    cr_assert(e, "%s", partial);
    const char *committed = cJSON_GetStringValue(cJSON_GetObjectItem(e, "committed"));
    cr_assert(committed, "%s", partial);
    cr_expect_gt(strlen(p.last_final), strlen(committed) + 5,
                 "final '%s' stops at the committed '%s'", p.last_final, committed);
    cJSON_Delete(e);
    free(partial);
    free(p.last_final);
    cli_result_free(&r);
}

Test(partial, pauses_end_utterances_and_txt_in_a_pipe_prints_the_finals, .timeout = 120)
{
    cli_result j = run_cli(ARGS("--model", model(), "--partial", "--no-realtime", "-f", "jsonl",
                                "--partial-step", "500", NO_GUARDS, fixture(SPEECH)),
                           NULL, 0);
    cr_assert_eq(j.status, 0, "%s", j.err);
    partial_run p = check_events((const char *)j.out);
    cr_expect_eq(p.finals, 4, "four sentences");
    cli_result t = run_cli(ARGS("--model", model(), "--partial", "--no-realtime", "--partial-step",
                                "500", NO_GUARDS, fixture(SPEECH)),
                           NULL, 0);
    cr_assert_eq(t.status, 0, "%s", t.err);
    cr_expect_eq(count_lines((const char *)t.out), 4, "%s", t.out);
    cr_expect_null(strchr((const char *)t.out, '\033'), "no escape sequences in a pipe");
    /* The appended words of the last line make its final text. */
    char *last = strrchr((char *)t.out, '\n');
    *last = '\0';
    last = strrchr((char *)t.out, '\n');
    cr_expect_str_eq(last ? last + 1 : (char *)t.out, p.last_final);
    free(p.last_final);
    cli_result_free(&j);
    cli_result_free(&t);
}

Test(partial, offline_gives_finals_only_and_wait_k_commits, .timeout = 120)
{
    cli_result r = run_cli(ARGS("--model", model(), "--partial", "--no-realtime", "-f", "jsonl",
                                "--policy", "offline", NO_GUARDS, fixture(SPEECH)),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    partial_run p = check_events((const char *)r.out);
    cr_expect_eq(p.finals, 4);
    cr_expect_eq(p.partials, 0);
    free(p.last_final);
    cli_result_free(&r);
    r = run_cli(ARGS("--model", model(), "--partial", "--no-realtime", "-f", "jsonl", "--policy",
                     "wait-k", "--wait-k", "2", NO_GUARDS, fixture(CONTINUOUS)),
                NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    p = check_events((const char *)r.out);
    cr_expect_eq(p.finals, 1);
    cr_expect_geq(p.first_commit, 2.0, "nothing before k = 2 steps");
    cr_expect_lt(p.first_commit, 10.0);
    free(p.last_final);
    cli_result_free(&r);
}

Test(partial, a_file_is_paced_as_if_live_unless_no_realtime, .timeout = 60)
{
    const char *clip = fixture("samples/audio/sense_and_sensibility_01_austen_64kb-0880.wav");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cli_result r =
        run_cli(ARGS("--model", model(), "--partial", "-f", "jsonl", NO_GUARDS, clip), NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_eq(r.status, 0, "%s", r.err);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    cr_expect_geq(wall, 2.7, "2.99 s of audio took %.2f s", wall);
    partial_run p = check_events((const char *)r.out);
    cr_expect_geq(p.finals, 1);
    free(p.last_final);
    cli_result_free(&r);
}

/* Half of sentence 1 on standard input, then EOF or a signal: a final event for it. */
static void check_partial_flush(int signal_number)
{
    size_t size;
    unsigned char *wav = read_file(fixture(SPEECH), &size);
    cli_child c = cli_spawn(ARGS("--model", model(), "--partial", "-f", "jsonl", NO_GUARDS, "-"), 0);
    size_t part = 44 + (size_t)(2.5 * 16000) * 2;
    cr_assert_eq(write(c.in, wav, part), (ssize_t)part);
    if (signal_number) {
        usleep(300 * 1000);
        kill(c.pid, signal_number);
    } else {
        close(c.in);
    }
    int status;
    char *out = cli_child_finish(&c, &status, NULL);
    if (signal_number)
        close(c.in);
    cr_expect_eq(status, signal_number ? 128 + signal_number : 0);
    partial_run p = check_events(out);
    cr_expect_eq(p.finals, 1, "the open utterance is finished, got:\n%s", out);
    cr_expect_geq(p.last_end, 2.45, "all 2.5 s that were sent were heard");
    free(p.last_final);
    free(out);
    free(wav);
}

Test(partial, end_of_input_finishes_the_open_utterance, .timeout = 60)
{
    check_partial_flush(0);
}

Test(partial, sigint_finishes_the_open_utterance, .timeout = 60)
{
    check_partial_flush(SIGINT);
}

Test(partial, sigterm_finishes_the_open_utterance, .timeout = 60)
{
    check_partial_flush(SIGTERM);
}

Test(partial, silence_and_noise_give_no_events, .timeout = 60)
{
    size_t n = 16000 * 8;
    int16_t *pcm = malloc(n * sizeof *pcm);
    uint32_t state = 7;
    for (int kind = 0; kind < 2; kind++) {
        for (size_t i = 0; i < n; i++) {
            state = state * 1664525u + 1013904223u;
            pcm[i] = kind ? (int16_t)((int32_t)(state >> 16) % 3000 - 1500) : 0;
        }
        cli_result r = run_cli(ARGS("--model", model(), "--partial", "-f", "jsonl", "--raw", "-"),
                               pcm, n * sizeof *pcm);
        cr_expect_eq(r.status, 0, "%s", r.err);
        cr_expect_eq(r.out_size, 0, "%s: %s", kind ? "noise" : "silence", r.out);
        cli_result_free(&r);
    }
    free(pcm);
}

Test(partial, bad_partial_options_exit_2)
{
    const char *clip = fixture(CLIP);
    const char *const *bad[] = {
        ARGS("--model", model(), "--partial", clip, clip),
        ARGS("--model", model(), "--partial", "-f", "srt", clip),
        ARGS("--model", model(), "--partial", "--segment", clip),
        ARGS("--model", model(), "--partial", "--policy", "greedy", clip),
        ARGS("--model", model(), "--partial", "--partial-step", "10", clip),
        ARGS("--model", model(), "--partial", "--wait-k", "0", clip),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cli_result r = run_cli(bad[i], NULL, 0);
        cr_expect_eq(r.status, 2, "case %zu: status %d, %s", i, r.status, r.err);
        cr_expect(strstr(r.err, "mtla-st: "), "case %zu: %s", i, r.err);
        cli_result_free(&r);
    }
}

Test(partial, help_and_man_page_document_the_options)
{
    cli_result r = run_cli(ARGS("--help"), NULL, 0);
    cr_assert_eq(r.status, 0);
    size_t size;
    char *man = (char *)read_file(fixture("docs/mtla-st.1"), &size);
    man = realloc(man, size + 1);
    man[size] = '\0';
    const char *help[] = {"--partial",           "--partial-step", "--policy",        "--wait-k",
                          "--realtime",          "--no-realtime",  "local-agreement", "offline",
                          "--logprob-threshold", "--repeat-limit"};
    const char *roff[] = {"\\-\\-partial\\fR",    "\\-\\-partial\\-step",
                          "\\-\\-policy",         "\\-\\-wait\\-k",
                          "\\-\\-no\\-realtime",  "\\-\\-logprob\\-threshold",
                          "\\-\\-repeat\\-limit", "local-agreement|wait-k|offline"};
    for (size_t i = 0; i < sizeof help / sizeof help[0]; i++)
        cr_expect(strstr((char *)r.out, help[i]), "--help lacks %s", help[i]);
    for (size_t i = 0; i < sizeof roff / sizeof roff[0]; i++)
        cr_expect(strstr(man, roff[i]), "docs/mtla-st.1 lacks %s", roff[i]);
    free(man);
    cli_result_free(&r);
}
