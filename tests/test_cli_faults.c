/* Long sessions and faults of the `mtla-st` command line (issue 14): a directory run of many
 * files, some bad, killed with SIGKILL at random moments and resumed until it is done; output to
 * a pipe whose reader has gone; a full disk on standard output and in an output directory; a
 * read-only output directory; and hours of --partial streaming with flat memory.
 *
 * Tests that need mounts (a small tmpfs, a read-only bind mount) make them in a mount namespace
 * of their own (Criterion runs every test in its own process), so nothing outlives the test;
 * where that is not permitted they are skipped with the reason. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_support.h"

#define ARGS(...) ((const char *const[]){"mtla-st", __VA_ARGS__, NULL})
#define SPEECH "tests/data/vad/speech_with_pauses.wav"    /* 4 sentences, 20.8 s, 16 kHz s16 */
#define CONTINUOUS "tests/data/vad/continuous_speech.wav" /* 16.4 s, pauses of 0.3 s only */
#define CLIP "samples/audio/sense_and_sensibility_01_austen_64kb-0870.wav"
/* A random model is as unsure as a trained one on noise: its hypotheses need the guards off. */
#define NO_GUARDS "--logprob-threshold", "-1000", "--repeat-limit", "0"

static const char *model(void)
{
    return fixture("tests/golden/models/transformer_mtla_s2");
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* A seeded generator (xorshift64*), so that a failing run can be repeated. */
static uint64_t next_random(uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ull;
}

static void make_parents(const char *path)
{
    char *dir = strdup(path);
    for (char *s = dir + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(dir, 0777);
            *s = '/';
        }
    free(dir);
}

static void write_bytes(const char *path, const void *data, size_t size)
{
    make_parents(path);
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot create %s: %s", path, strerror(errno));
    cr_assert_eq(fwrite(data, 1, size, f), size);
    cr_assert_eq(fclose(f), 0);
}

/* 16 kHz mono s16 samples, as a canonical 44-byte-header WAV. */
static void write_wav(const char *path, const int16_t *pcm, size_t n)
{
    unsigned char *wav = malloc(44 + 2 * n);
    uint32_t data = (uint32_t)(2 * n), riff = 36 + data, rate = 16000, bytes_per_s = 32000;
    memcpy(wav, "RIFF", 4);
    memcpy(wav + 4, &riff, 4);
    memcpy(wav + 8, "WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00", 16);
    memcpy(wav + 24, &rate, 4);
    memcpy(wav + 28, &bytes_per_s, 4);
    memcpy(wav + 32, "\x02\x00\x10\x00" "data", 8);
    memcpy(wav + 40, &data, 4);
    memcpy(wav + 44, pcm, 2 * n);
    write_bytes(path, wav, 44 + 2 * n);
    free(wav);
}

static void write_flac(const char *path, const int16_t *pcm, size_t n)
{
    make_parents(path);
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    cr_assert(f, "cannot write %s: %s", path, sf_strerror(NULL));
    cr_assert_eq(sf_write_short(f, pcm, (sf_count_t)n), (sf_count_t)n);
    cr_assert_eq(sf_close(f), 0);
}

/* The samples of a canonical 16 kHz mono s16 WAV fixture. */
static int16_t *fixture_pcm(const char *relative, size_t *n)
{
    size_t size;
    unsigned char *wav = read_file(fixture(relative), &size);
    cr_assert_gt(size, 44);
    *n = (size - 44) / 2;
    int16_t *pcm = malloc(*n * sizeof *pcm);
    memcpy(pcm, wav + 44, *n * sizeof *pcm);
    free(wav);
    return pcm;
}

static void remove_tree(const char *path)
{
    char command[4200];
    snprintf(command, sizeof command, "rm -rf '%s'", path);
    cr_assert_eq(system(command), 0);
}

/* Regular files below `dir`: `outputs` counts names ending in ".txt", `temporaries` names
 * holding ".tmp." (a temporary output left behind). */
static void count_files(const char *dir, size_t *outputs, size_t *temporaries)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            count_files(path, outputs, temporaries);
        } else if (strstr(e->d_name, ".tmp.")) {
            if (temporaries)
                (*temporaries)++;
        } else if (outputs) {
            size_t len = strlen(e->d_name);
            *outputs += len > 4 && strcmp(e->d_name + len - 4, ".txt") == 0;
        }
    }
    closedir(d);
}

static size_t count_temporaries(const char *dir)
{
    size_t n = 0;
    count_files(dir, NULL, &n);
    return n;
}

/* How many times `needle` occurs in `text`. */
static int occurrences(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The counts of the summary line "N translated, N skipped (output exists), N failed of N
 * files"; 0 when there is none. */
static int summary(const char *err, size_t *translated, size_t *skipped, size_t *failed,
                   size_t *total)
{
    const char *p = strstr(err, " translated, ");
    if (!p)
        return 0;
    while (p > err && p[-1] != ' ')
        p--;
    return sscanf(p, "%zu translated, %zu skipped (output exists), %zu failed of %zu files",
                  translated, skipped, failed, total) == 4;
}

/* ------------------------------------------------------------------ killed and resumed */

typedef struct corpus {
    size_t count;
    char **inputs;  /* path of each input */
    char **outputs; /* its output under OUT ("d03/f0312.txt") */
    int *bad;       /* 1: an input that must fail */
} corpus;

/* `count` files in `in`/dNN/, one in ten bad: empty, a truncated header, random bytes, text
 * with an audio extension, a WAV with no samples. The good ones are 0.3 to 1.2 s slices of real
 * speech, one in three FLAC. */
static corpus make_corpus(const char *in, size_t count, uint64_t *rng)
{
    size_t speech_n;
    int16_t *speech = fixture_pcm(SPEECH, &speech_n);
    corpus c = {.count = count};
    c.inputs = calloc(count, sizeof *c.inputs);
    c.outputs = calloc(count, sizeof *c.outputs);
    c.bad = calloc(count, sizeof *c.bad);
    unsigned char junk[4096];
    for (size_t i = 0; i < count; i++) {
        char rel[64], out[64];
        int bad = i % 10 == 3, kind = (int)(i / 10 % 5);
        const char *ext = bad ? (kind == 2 ? "flac" : kind == 3 ? "mp3" : "wav")
                              : (i % 3 == 0 ? "flac" : "wav");
        snprintf(rel, sizeof rel, "d%02zu/f%04zu.%s", i / 100, i, ext);
        snprintf(out, sizeof out, "d%02zu/f%04zu.txt", i / 100, i);
        c.inputs[i] = path_join(in, rel);
        c.outputs[i] = strdup(out);
        c.bad[i] = bad;
        size_t n = 4800 + (size_t)(next_random(rng) % 14400);
        size_t at = (size_t)(next_random(rng) % (speech_n - n));
        if (!bad && i % 3 == 0) {
            write_flac(c.inputs[i], speech + at, n);
        } else if (!bad) {
            write_wav(c.inputs[i], speech + at, n);
        } else if (kind == 0) {
            write_bytes(c.inputs[i], "", 0);
        } else if (kind == 1) {
            write_wav(c.inputs[i], speech + at, n);
            cr_assert_eq(truncate(c.inputs[i], 20), 0);
        } else if (kind == 2) {
            for (size_t j = 0; j < sizeof junk; j++)
                junk[j] = (unsigned char)next_random(rng);
            write_bytes(c.inputs[i], junk, sizeof junk);
        } else if (kind == 3) {
            const char *text = "This is a text file, not an MP3 recording.\n";
            write_bytes(c.inputs[i], text, strlen(text));
        } else {
            write_wav(c.inputs[i], speech, 0);
        }
    }
    free(speech);
    return c;
}

static void corpus_free(corpus *c)
{
    for (size_t i = 0; i < c->count; i++) {
        free(c->inputs[i]);
        free(c->outputs[i]);
    }
    free(c->inputs);
    free(c->outputs);
    free(c->bad);
}

/* Outputs that exist now; waits until `target` exist or the child has exited. */
static size_t wait_for_outputs(const char *out, size_t target, int pid, double deadline)
{
    for (;;) {
        size_t n = 0;
        count_files(out, &n, NULL);
        siginfo_t info = {0};
        if (n >= target || now_seconds() > deadline ||
            (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid))
            return n;
        usleep(500);
    }
}

/* The inode of every output that exists (0: none). */
static void snapshot(const corpus *c, const char *out, ino_t *inodes, const char *context)
{
    for (size_t i = 0; i < c->count; i++) {
        char *p = path_join(out, c->outputs[i]);
        struct stat st;
        if (stat(p, &st) == 0) {
            cr_assert(!c->bad[i], "%s: a bad input has an output, %s", context, p);
            cr_assert_gt(st.st_size, 0, "%s: an empty output, %s", context, p);
            cr_assert(!inodes[i] || inodes[i] == st.st_ino,
                      "%s: %s was written a second time", context, p);
            inodes[i] = st.st_ino;
        } else {
            cr_assert(!inodes[i], "%s: %s disappeared", context, p);
        }
        free(p);
    }
}

/* The scenario: a directory run (1,000 files, ~10% bad) killed by SIGKILL at five random
 * moments and resumed each time. Every good file gets exactly one output, written once, equal to
 * an uninterrupted run's; bad files are reported and get none; nothing partial, empty or
 * temporary is left; the last run exits 1 (inputs failed). MTLA_TEST_RESUME_FILES changes the
 * count (the sanitizer run uses fewer); MTLA_TEST_RESUME_SEED repeats a run. */
Test(resume, a_directory_run_killed_five_times_ends_as_an_uninterrupted_one, .timeout = 600)
{
    size_t count = getenv("MTLA_TEST_RESUME_FILES") ? strtoul(getenv("MTLA_TEST_RESUME_FILES"), 0, 10)
                                                    : 1000;
    uint64_t seed = getenv("MTLA_TEST_RESUME_SEED")
                        ? strtoull(getenv("MTLA_TEST_RESUME_SEED"), 0, 10)
                        : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    if (seed == 0)
        seed = 1;
    cr_log_info("resume test: %zu files, MTLA_TEST_RESUME_SEED=%llu", count,
                (unsigned long long)seed);
    cr_assert_geq(count, 20);
    uint64_t rng = seed;
    /* In memory where it can be: on a slow disk the fsync of every output dominates. */
    char *dir = strdup("/dev/shm/mtla-test-XXXXXX");
    if (!mkdtemp(dir)) {
        free(dir);
        dir = make_temp_dir();
    }
    char *in = path_join(dir, "in"), *ref = path_join(dir, "ref"), *out = path_join(dir, "out");
    corpus c = make_corpus(in, count, &rng);
    size_t good = 0;
    for (size_t i = 0; i < count; i++)
        good += !c.bad[i];

    double t0 = now_seconds();
    cli_result r = run_cli(ARGS("--model", model(), "-t", "1", in, "-o", ref), NULL, 0);
    double reference_s = now_seconds() - t0;
    size_t translated = 0, skipped = 0, failed = 0, total = 0;
    cr_assert_eq(r.status, 1, "bad inputs: exit 1, got %d: %.2000s", r.status, r.err);
    cr_assert(summary(r.err, &translated, &skipped, &failed, &total), "%.2000s", r.err);
    cr_assert(translated == good && failed == count - good && total == count,
              "reference run: %zu translated, %zu failed of %zu", translated, failed, total);
    cli_result_free(&r);

    ino_t *inodes = calloc(count, sizeof *inodes);
    size_t left_behind = 0;
    for (int k = 0; k < 5; k++) {
        size_t done = 0;
        count_files(out, &done, NULL);
        size_t spread = (good - done) / (size_t)(6 - k);
        size_t target = done + 1 + (size_t)(next_random(&rng) % (spread ? spread : 1));
        useconds_t extra = (useconds_t)(next_random(&rng) % 3000);
        cli_child ch = cli_spawn(ARGS("--model", model(), "-t", "1", in, "-o", out), 0);
        close(ch.in);
        ch.in = -1;
        size_t reached = wait_for_outputs(out, target, ch.pid, now_seconds() + 120);
        usleep(extra);
        kill(ch.pid, SIGKILL);
        int status;
        char *err;
        free(cli_child_finish(&ch, &status, &err));
        cr_assert_eq(status, 128 + SIGKILL,
                     "seed %llu, kill %d: the run ended (status %d) before the kill, at %zu of "
                     "%zu outputs: %.2000s",
                     (unsigned long long)seed, k + 1, status, reached, target, err);
        free(err);
        left_behind += count_temporaries(out);
        char context[96];
        snprintf(context, sizeof context, "seed %llu, after kill %d", (unsigned long long)seed,
                 k + 1);
        snapshot(&c, out, inodes, context);
        cr_log_info("kill %d at %zu outputs (+%u us)", k + 1, reached, (unsigned)extra);
    }

    r = run_cli(ARGS("--model", model(), "-t", "1", in, "-o", out), NULL, 0);
    cr_assert_eq(r.status, 1, "seed %llu: the resumed run exits 1 (bad inputs), got %d: %.2000s",
                 (unsigned long long)seed, r.status, r.err);
    cr_assert(summary(r.err, &translated, &skipped, &failed, &total), "%.2000s", r.err);
    cr_expect(translated + skipped == good && failed == count - good && total == count,
              "seed %llu: %zu translated + %zu skipped, %zu failed of %zu",
              (unsigned long long)seed, translated, skipped, failed, total);
    snapshot(&c, out, inodes, "after the last run");
    size_t left = count_temporaries(out);
    cr_expect_eq(left, 0, "seed %llu: temporary files left", (unsigned long long)seed);
    for (size_t i = 0; i < count; i++) {
        if (c.bad[i]) {
            cr_expect(strstr(r.err, c.inputs[i]), "seed %llu: %s is not reported",
                      (unsigned long long)seed, c.inputs[i]);
            continue;
        }
        char *a = path_join(ref, c.outputs[i]), *b = path_join(out, c.outputs[i]);
        size_t na, nb;
        unsigned char *x = read_file(a, &na), *y = read_file(b, &nb);
        cr_expect(na == nb && memcmp(x, y, na) == 0,
                  "seed %llu: %s differs from the uninterrupted run's", (unsigned long long)seed,
                  c.outputs[i]);
        free(x), free(y), free(a), free(b);
    }
    cr_log_info("reference run %.1f s; %zu temporary files found after the kills, %zu left at "
                "the end; last run: %zu translated, %zu skipped, %zu failed",
                reference_s, left_behind, left, translated, skipped, failed);
    cli_result_free(&r);
    free(inodes);
    corpus_free(&c);
    free(in), free(ref), free(out);
    remove_tree(dir);
    free(dir);
}

/* Temporary files whose writer is alive (it holds their lock: another shard writing to the same
 * directory) are left alone, and so are files that only look alike. */
Test(resume, only_the_temporary_files_of_dead_writers_are_removed)
{
    char *dir = make_temp_dir(), *out = path_join(dir, "out");
    char *stale = path_join(out, "a.txt.mtla-st.tmp.Ab12Cd");
    char *busy = path_join(out, "b.txt.mtla-st.tmp.Ef34Gh");
    char *mine = path_join(out, "notes.tmp.backup"), *other = path_join(out, "c.mtla-st.tmp.x");
    write_bytes(stale, "half a li", 9);
    write_bytes(busy, "being written", 13);
    write_bytes(mine, "keep", 4);
    write_bytes(other, "keep", 4);
    int fd = open(busy, O_RDONLY);
    cr_assert(fd >= 0 && flock(fd, LOCK_EX) == 0);
    cli_result r = run_cli(ARGS("--model", model(), fixture(CLIP), "-o", out), NULL, 0);
    cr_expect_eq(r.status, 0, "%s", r.err);
    cr_expect(strstr(r.err, "removed 1 temporary file left by an interrupted run"), "%s", r.err);
    cr_expect_neq(access(stale, F_OK), 0, "a dead writer's temporary file is removed");
    cr_expect_eq(access(busy, F_OK), 0, "a live writer's temporary file is kept");
    cr_expect_eq(access(mine, F_OK), 0);
    cr_expect_eq(access(other, F_OK), 0);
    char *output = path_join(out, "sense_and_sensibility_01_austen_64kb-0870.txt");
    cr_expect_eq(access(output, F_OK), 0);
    close(fd);
    cli_result_free(&r);
    free(output), free(stale), free(busy), free(mine), free(other), free(out);
    remove_tree(dir);
    free(dir);
}

/* ------------------------------------------------------------------ closed pipes */

/* Waits up to `seconds` for the child to exit on its own (then reaps it); kills it if it does
 * not. Returns its status, -1 when it had to be killed. */
static int finish_within(cli_child *ch, double seconds, char **err)
{
    double deadline = now_seconds() + seconds;
    siginfo_t info;
    for (;;) {
        memset(&info, 0, sizeof info);
        if (waitid(P_PID, (id_t)ch->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid)
            break;
        if (now_seconds() > deadline) {
            kill(ch->pid, SIGKILL);
            int status;
            free(cli_child_finish(ch, &status, err));
            return -1;
        }
        usleep(10000);
    }
    int status;
    free(cli_child_finish(ch, &status, err));
    return status;
}

/* Reads one line from the child's stdout, then closes it, as `head -1` does. */
static void read_one_line_and_close(cli_child *ch)
{
    char byte;
    ssize_t got;
    size_t n = 0;
    while ((got = read(ch->out, &byte, 1)) == 1 && byte != '\n')
        n++;
    cr_assert_eq(got, 1, "no line came (%zu bytes)", n);
    close(ch->out);
    ch->out = open("/dev/null", O_RDONLY); /* cli_child_finish reads it: at once at its end */
}

/* `mtla-st FILES... | head -1`: after the first line the reader is gone, and mtla-st ends at
 * once and quietly, by SIGPIPE like cat or grep; with SIGPIPE ignored, with one clear message
 * and exit 3. */
Test(pipe, files_to_a_closed_pipe_end_quietly_or_exit_3_when_sigpipe_is_ignored, .timeout = 120)
{
    char *m = strdup(model()), *speech = strdup(fixture(SPEECH)), *clip = strdup(fixture(CLIP));
    for (int ignore = 0; ignore < 2; ignore++) {
        cli_child ch = cli_spawn(ARGS("--model", m, "-t", "1", clip, speech, clip, speech,
                                      clip, speech, clip, speech),
                                 ignore ? CLI_SPAWN_IGNORE_SIGPIPE : 0);
        read_one_line_and_close(&ch);
        char *err;
        int status = finish_within(&ch, 30, &err);
        if (!ignore) {
            cr_expect_eq(status, 128 + SIGPIPE, "killed by SIGPIPE, got %d: %s", status, err);
            cr_expect_str_eq(err, "", "quietly");
        } else {
            cr_expect_eq(status, 3, "%s", err);
            cr_expect_eq(occurrences(err, "Broken pipe"), 1, "one message: %s", err);
            cr_expect(strstr(err, "mtla-st: cannot write to standard output: Broken pipe"), "%s",
                      err);
        }
        free(err);
    }
    free(m), free(speech), free(clip);
}

/* `mtla-st - | head -1` with the speaker silent afterwards (standard input open, nothing
 * coming): mtla-st notices that its reader has gone while it waits for audio and ends within
 * a second, instead of waiting for the next utterance, plain and with --partial. */
Test(pipe, live_input_ends_when_the_reader_of_its_output_goes, .timeout = 120)
{
    size_t size;
    unsigned char *wav = read_file(fixture(SPEECH), &size);
    size_t first = 44 + (size_t)(4.3 * 16000) * 2; /* sentence 1 and 1 s of its pause */
    for (int partial = 0; partial < 2; partial++)
        for (int ignore = 0; ignore < 2; ignore++) {
            cli_child ch =
                partial ? cli_spawn(ARGS("--model", model(), "-t", "1", "--partial", NO_GUARDS, "-"),
                                    ignore ? CLI_SPAWN_IGNORE_SIGPIPE : 0)
                        : cli_spawn(ARGS("--model", model(), "-t", "1", "-"),
                                    ignore ? CLI_SPAWN_IGNORE_SIGPIPE : 0);
            cr_assert_eq(write(ch.in, wav, first), (ssize_t)first);
            read_one_line_and_close(&ch);
            double t0 = now_seconds();
            char *err;
            int status = finish_within(&ch, 5, &err);
            double took = now_seconds() - t0;
            const char *what = partial ? "--partial" : "plain";
            cr_expect_neq(status, -1, "%s: still running 5 s after its reader went: %s", what,
                          err);
            cr_expect_lt(took, 1.5, "%s: ended %.2f s after its reader went", what, took);
            if (!ignore) {
                cr_expect_eq(status, 128 + SIGPIPE, "%s: status %d: %s", what, status, err);
                cr_expect_str_eq(err, "", "%s: quietly", what);
            } else {
                cr_expect_eq(status, 3, "%s: %s", what, err);
                cr_expect(strstr(err, "mtla-st: cannot write to standard output: Broken pipe"),
                          "%s: %s", what, err);
            }
            free(err);
            close(ch.in);
        }
    free(wav);
}

/* ------------------------------------------------------------------ full disks */

/* Runs mtla-st with standard output on `path` (e.g. /dev/full) and standard input from `input`
 * (NULL: empty); returns its status, stderr in *err. */
static int run_to(const char *path, const char *const *argv, const char *input, char **err)
{
    char *dir = make_temp_dir(), *err_path = path_join(dir, "err");
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int out = open(path, O_WRONLY), e = open(err_path, O_WRONLY | O_CREAT, 0600);
        int in = open(input ? input : "/dev/null", O_RDONLY);
        if (out < 0 || e < 0 || in < 0)
            _exit(126);
        dup2(in, 0), dup2(out, 1), dup2(e, 2);
        exec_cli(argv);
    }
    int raw;
    while (waitpid(pid, &raw, 0) < 0)
        cr_assert_eq(errno, EINTR);
    size_t size;
    unsigned char *text = read_file(err_path, &size);
    *err = realloc(text, size + 1);
    (*err)[size] = '\0';
    unlink(err_path);
    free(err_path);
    rmdir(dir);
    free(dir);
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

/* Standard output on a full disk (/dev/full): one message naming the problem, exit 3, for a
 * file, a segmented file, features, tokens and live standard input. */
Test(full, standard_output_on_a_full_disk_exits_3_with_one_message, .timeout = 120)
{
    if (access("/dev/full", W_OK) != 0)
        cr_skip_test("no writable /dev/full");
    char *m = strdup(model()), *speech = strdup(fixture(SPEECH)), *clip = strdup(fixture(CLIP));
    const char *const *cases[] = {
        ARGS("--model", m, "-t", "1", clip),
        ARGS("--model", m, "-t", "1", "-s", "-f", "jsonl", speech, clip),
        ARGS("--model", m, "-t", "1", "--print-tokens", clip),
        ARGS("--model", m, "-t", "1", "--partial", "--no-realtime", NO_GUARDS, speech),
        ARGS("--model", m, "-t", "1", "-"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *err;
        int status = run_to("/dev/full", cases[i], i == 4 ? speech : NULL, &err);
        cr_expect_eq(status, 3, "case %zu: status %d, %s", i, status, err);
        cr_expect_eq(occurrences(err, "No space left on device"), 1, "case %zu: one message: %s",
                     i, err);
        cr_expect(strstr(err, "mtla-st: cannot write to standard output: No space left on device"),
                  "case %zu: %s", i, err);
        free(err);
    }
    free(m), free(speech), free(clip);
}

/* A mount namespace of this test's own, where mounts made now vanish with it. */
static void private_mounts_or_skip(void)
{
    if (unshare(CLONE_NEWNS) != 0)
        cr_skip_test("cannot make a mount namespace (%s): needs CAP_SYS_ADMIN", strerror(errno));
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        cr_skip_test("cannot make mounts private: %s", strerror(errno));
}

/* An output directory that fills up in the middle of a line (a small tmpfs): the file being
 * written is reported by name with the reason, nothing of it stays (neither the final name nor
 * a temporary file), the outputs before it are kept whole, the run stops, exit 3. */
Test(full, a_full_output_directory_keeps_earlier_outputs_and_nothing_partial, .timeout = 180)
{
    private_mounts_or_skip();
    char *dir = make_temp_dir(), *in = path_join(dir, "in"), *ref = path_join(dir, "ref"),
         *out = path_join(dir, "out");
    size_t speech_n, clip_n;
    int16_t *speech = fixture_pcm(SPEECH, &speech_n);
    int16_t *clip = fixture_pcm(CLIP, &clip_n);
    /* 2_long: the speech 8 times, 32 utterances, a jsonl output of several pages */
    int16_t *longer = malloc(8 * speech_n * sizeof *longer);
    for (int i = 0; i < 8; i++)
        memcpy(longer + i * speech_n, speech, speech_n * sizeof *speech);
    char *p;
    write_wav(p = path_join(in, "1_short.wav"), clip, clip_n), free(p);
    write_wav(p = path_join(in, "2_long.wav"), longer, 8 * speech_n), free(p);
    write_wav(p = path_join(in, "3_after.wav"), clip, clip_n), free(p);
    free(longer), free(speech), free(clip);
    cli_result r = run_cli(ARGS("--model", model(), "-t", "1", "-s", "-f", "jsonl", "-q", in,
                                "-o", ref),
                           NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cli_result_free(&r);
    size_t short_size, long_size;
    unsigned char *short_ref = read_file(p = path_join(ref, "1_short.jsonl"), &short_size);
    free(p);
    free(read_file(p = path_join(ref, "2_long.jsonl"), &long_size));
    free(p);

    cr_assert_eq(mkdir(out, 0777), 0);
    if (mount("tmpfs", out, "tmpfs", 0, "size=64k") != 0)
        cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
    struct statvfs vfs;
    cr_assert_eq(statvfs(out, &vfs), 0);
    size_t block = vfs.f_frsize;
    cr_assert_gt(long_size, block, "the long output must span pages to fail mid-line");
    /* Fill the disk but for room for 1_short and the first page of 2_long. */
    size_t short_blocks = (short_size + block - 1) / block;
    cr_assert_gt(vfs.f_bavail, short_blocks + 1);
    size_t fill = (vfs.f_bavail - short_blocks - 1) * block;
    char *filler = path_join(out, "filler.bin");
    unsigned char *zeros = calloc(1, fill);
    write_bytes(filler, zeros, fill);
    free(zeros);

    r = run_cli(ARGS("--model", model(), "-t", "1", "-s", "-f", "jsonl", "-q", in, "-o", out), NULL,
                0);
    char *long_out = path_join(out, "2_long.jsonl");
    char expected[4400];
    snprintf(expected, sizeof expected, "mtla-st: cannot write '%s': No space left on device",
             long_out);
    cr_expect_eq(r.status, 3, "%s", r.err);
    cr_expect(strstr(r.err, expected), "wanted '%s', got: %s", expected, r.err);
    cr_expect_eq(occurrences(r.err, "No space left on device"), 1, "one message: %s", r.err);
    size_t size;
    unsigned char *again = read_file(p = path_join(out, "1_short.jsonl"), &size);
    free(p);
    cr_expect(size == short_size && memcmp(again, short_ref, size) == 0, "earlier output intact");
    cr_expect_neq(access(long_out, F_OK), 0, "no half-written output");
    cr_expect_neq(access(p = path_join(out, "3_after.jsonl"), F_OK), 0, "the run stopped");
    free(p);
    cr_expect_eq(count_temporaries(out), 0, "no temporary file left");
    cli_result_free(&r);
    free(again), free(short_ref), free(filler), free(long_out);
    cr_assert_eq(umount(out), 0);
    free(in), free(ref), free(out);
    remove_tree(dir);
    free(dir);
}

/* ------------------------------------------------------------------ read-only outputs */

/* An output directory on a read-only mount (root ignores permission bits, so a read-only bind
 * mount stands for `chmod 555` here): a message naming the output and the reason, exit 3;
 * outputs already there stay, and a run with nothing left to write succeeds. */
Test(readonly, a_read_only_output_directory_exits_3_with_a_clear_message, .timeout = 120)
{
    private_mounts_or_skip();
    char *dir = make_temp_dir(), *in = path_join(dir, "in"), *out = path_join(dir, "out");
    size_t clip_n;
    int16_t *clip = fixture_pcm(CLIP, &clip_n);
    char *p;
    write_wav(p = path_join(in, "a.wav"), clip, clip_n), free(p);
    write_wav(p = path_join(in, "b.wav"), clip, clip_n / 2), free(p);
    free(clip);
    cli_result r = run_cli(ARGS("--model", model(), "-t", "1", "-q", in, "-o", out), NULL, 0);
    cr_assert_eq(r.status, 0, "%s", r.err);
    cli_result_free(&r);
    char *b_out = path_join(out, "b.txt");
    cr_assert_eq(unlink(b_out), 0);
    size_t a_size;
    unsigned char *a_before = read_file(p = path_join(out, "a.txt"), &a_size);
    free(p);
    if (mount(out, out, NULL, MS_BIND, NULL) != 0 ||
        mount(NULL, out, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) != 0)
        cr_skip_test("cannot make a read-only bind mount: %s", strerror(errno));

    r = run_cli(ARGS("--model", model(), "-t", "1", in, "-o", out), NULL, 0);
    char expected[4400];
    snprintf(expected, sizeof expected, "mtla-st: cannot create '%s': Read-only file system",
             b_out);
    cr_expect_eq(r.status, 3, "%s", r.err);
    cr_expect(strstr(r.err, expected), "wanted '%s', got: %s", expected, r.err);
    cr_expect(strstr(r.err, "0 translated, 1 skipped"), "a.txt exists: %s", r.err);
    size_t size;
    unsigned char *a_after = read_file(p = path_join(out, "a.txt"), &size);
    free(p);
    cr_expect(size == a_size && memcmp(a_before, a_after, size) == 0);
    cli_result_free(&r);
    /* a subdirectory that would have to be created there */
    char *deeper = path_join(out, "sub/deeper");
    r = run_cli(ARGS("--model", model(), "-t", "1", "-q", in, "-o", deeper), NULL, 0);
    cr_expect_eq(r.status, 3, "%s", r.err);
    cr_expect(strstr(r.err, "sub/deeper/a.txt': Read-only file system"), "%s", r.err);
    cli_result_free(&r);
    free(a_before), free(a_after), free(deeper), free(b_out);
    cr_assert_eq(umount(out), 0);
    free(in), free(out);
    remove_tree(dir);
    free(dir);
}

/* ------------------------------------------------------------------ hours of --partial */

/* Counts jsonl events in output read in pieces: a type marker cut between two pieces is
 * found again in the carried bytes, which are too short to hold a whole one. */
typedef struct event_count {
    char carry[8];
    size_t carried;
    int partials, finals;
} event_count;

static void count_events(event_count *c, const char *data, size_t n)
{
    static const char marker[] = "\"type\":\""; /* then 'p'artial or 'f'inal */
    size_t m = sizeof marker - 1, size = c->carried + n;
    char *text = malloc(size + 1);
    memcpy(text, c->carry, c->carried);
    memcpy(text + c->carried, data, n);
    text[size] = '\0';
    for (char *p = text; (p = strstr(p, marker)) && p + m < text + size; p += m) {
        c->partials += p[m] == 'p';
        c->finals += p[m] == 'f';
    }
    c->carried = size < m ? size : m;
    memcpy(c->carry, text + size - c->carried, c->carried);
    free(text);
}

/* Audio through `--partial -` (speech with pauses, 2 s of silence, continuous speech, 1 s of
 * noise, repeated), each second sent once the one before has been taken from the pipe, so that
 * partial translations are made throughout: memory must stay flat after the first 10 minutes.
 * Half an hour by default (about a minute); MTLA_TEST_PARTIAL_HOURS=2 is the two-hour soak of
 * issue 14 (about 3 minutes on 2 loaded cores), and the sanitizer run uses less. */
Test(partial_soak, hours_of_partial_streaming_keep_memory_flat, .timeout = 3600)
{
    double hours =
        getenv("MTLA_TEST_PARTIAL_HOURS") ? atof(getenv("MTLA_TEST_PARTIAL_HOURS")) : 0.5;
    size_t speech_n, continuous_n;
    int16_t *speech = fixture_pcm(SPEECH, &speech_n);
    int16_t *continuous = fixture_pcm(CONTINUOUS, &continuous_n);
    size_t cycle_n = speech_n + 32000 + continuous_n + 16000;
    int16_t *cycle = calloc(cycle_n, sizeof *cycle);
    memcpy(cycle, speech, speech_n * sizeof *cycle);
    memcpy(cycle + speech_n + 32000, continuous, continuous_n * sizeof *cycle);
    uint64_t rng = 7;
    for (size_t i = cycle_n - 16000; i < cycle_n; i++)
        cycle[i] = (int16_t)((int64_t)(next_random(&rng) % 3001) - 1500);
    free(speech), free(continuous);

    /* Under AddressSanitizer freed memory waits in a quarantine (256 MB by default) that goes on
     * filling for longer than the first 10 minutes and reads as growth: the child gets a small
     * one. Without the sanitizer the variable means nothing. */
    const char *asan = getenv("ASAN_OPTIONS");
    char options[2048];
    snprintf(options, sizeof options, "%s%squarantine_size_mb=16", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", options, 1);
    cli_child ch = cli_spawn(
        ARGS("--model", model(), "-t", "1", "--partial", "-f", "jsonl", "--raw", NO_GUARDS, "-"),
        0);
    fcntl(ch.out, F_SETFL, O_NONBLOCK);
    int64_t total = (int64_t)(hours * 3600 * 16000), sent = 0, next_sample = 0;
    long start_rss = -1, first_rss = -1, max_rss = 0, last_rss = 0;
    event_count events = {0};
    double started = now_seconds();
    char sink[65536];
    while (sent < total) {
        size_t at = (size_t)(sent % (int64_t)cycle_n), n = 16000;
        if (n > cycle_n - at)
            n = cycle_n - at;
        if ((int64_t)n > total - sent)
            n = (size_t)(total - sent);
        cr_assert_eq(write(ch.in, cycle + at, 2 * n), (ssize_t)(2 * n), "the child stopped reading");
        sent += (int64_t)n;
        /* wait until it has taken this second, keeping its output drained */
        for (int queued = 1; queued > 0;) {
            ssize_t got;
            while ((got = read(ch.out, sink, sizeof sink)) > 0)
                count_events(&events, sink, (size_t)got);
            if (ioctl(ch.in, FIONREAD, &queued) != 0)
                queued = 0;
            if (queued > 0)
                usleep(1000);
        }
        if (sent >= next_sample) {
            long rss = process_rss_kib(ch.pid);
            if (start_rss < 0)
                start_rss = rss;
            if (first_rss < 0 && sent > (int64_t)600 * 16000)
                first_rss = rss; /* after 10 minutes: buffers have reached their size */
            if (rss > max_rss)
                max_rss = rss;
            last_rss = rss;
            next_sample += 60 * 16000;
        }
    }
    fcntl(ch.out, F_SETFL, 0);
    int status;
    char *err, *out = cli_child_finish(&ch, &status, &err);
    count_events(&events, out, strlen(out));
    int partials = events.partials, finals = events.finals;
    double audio_s = (double)sent / 16000, wall = now_seconds() - started;
    int cycles = (int)(sent / (int64_t)cycle_n);
    cr_log_info("--partial: %.2f h of audio in %.0f s; RSS after 1 s %ld KiB, after 10 min %ld KiB, "
                "at the end %ld KiB, peak %ld KiB; %d partial and %d final events",
                audio_s / 3600, wall, start_rss, first_rss, last_rss, max_rss, partials, finals);
    cr_expect_eq(status, 0, "%s", err);
    cr_expect_geq(finals, 4 * cycles, "four utterances or more per repetition (%d repetitions)",
                  cycles);
    cr_expect_geq(partials, 10 * cycles, "partial translations throughout (%d repetitions)",
                  cycles);
    if (first_rss > 0)
        cr_expect_leq(max_rss, first_rss + 16 * 1024, "RSS grew from %ld KiB to %ld KiB over %.2f h",
                      first_rss, max_rss, audio_s / 3600);
    free(out), free(err), free(cycle);
}
