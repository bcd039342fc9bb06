/* The command line (cli/main.c dispatch, the option parsers of cli/cmd_*.c and cli/options.c):
 * the input split at NUL bytes into argv[1..], run as `mtla-st ARGS` in a sandbox directory
 * holding a short WAV file, a subdirectory and a --files-from list, with standard input
 * /dev/null, standard output discarded and MTLA_ST_MODEL naming a missing directory (so no run
 * loads a model). Arguments that could name paths outside the sandbox (any '/' or "..") are
 * skipped, so that no run walks or writes the file system at large. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

int mtla_cli_main(int argc, char **argv); /* cli/main.c's main, renamed for this harness */

enum { MAX_ARGS = 64 };

static char sandbox[1024];
static int home = -1; /* the directory libFuzzer runs in, for its corpus paths */

static void put_le(unsigned char *p, uint32_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* 0.25 s of a 440 Hz tone at 16 kHz, 16-bit mono. */
static void write_wav(const char *name)
{
    enum { FRAMES = 4000 };
    static unsigned char wav[44 + 2 * FRAMES];
    memcpy(wav, "RIFF", 4);
    put_le(wav + 4, 36 + 2 * FRAMES, 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le(wav + 16, 16, 4);
    put_le(wav + 20, 1, 2);
    put_le(wav + 22, 1, 2);
    put_le(wav + 24, 16000, 4);
    put_le(wav + 28, 32000, 4);
    put_le(wav + 32, 2, 2);
    put_le(wav + 34, 16, 2);
    memcpy(wav + 36, "data", 4);
    put_le(wav + 40, 2 * FRAMES, 4);
    for (int i = 0; i < FRAMES; i++)
        put_le(wav + 44 + 2 * i, (uint32_t)(int16_t)(8000 * sin(2 * M_PI * 440 * i / 16000.0)), 2);
    free(fuzz_write_file(".", name, wav, sizeof wav));
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(sandbox, sizeof sandbox, "%s", fuzz_fresh_dir("sandbox"));
    home = open(".", O_RDONLY | O_DIRECTORY);
    int null = open("/dev/null", O_RDWR);
    if (home < 0 || chdir(sandbox) != 0 || mkdir("sub", 0700) != 0 || null < 0 ||
        dup2(null, 0) < 0 || dup2(null, 1) < 0) {
        perror("fuzz_cli: sandbox");
        abort();
    }
    close(null);
    write_wav("a.wav");
    write_wav("sub/b.wav");
    free(fuzz_write_file(".", "list", "a.wav\n# comment\nsub\n", 20));
    setenv("MTLA_ST_MODEL", "no-model", 1);
    if (fchdir(home) != 0)
        abort();
    return 0;
}

/* Removes what a run wrote into the sandbox (features -o FILE), so runs stay independent. */
static void tidy_sandbox(void)
{
    DIR *d = opendir(".");
    if (!d)
        abort();
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "a.wav") && strcmp(n, "sub") &&
            strcmp(n, "list") && unlink(n) != 0)
            rmdir(n);
    }
    closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *args[MAX_ARGS + 2];
    int argc = 0;
    args[argc++] = "mtla-st";
    for (char *p = copy; p < copy + size && argc <= MAX_ARGS; p += strlen(p) + 1) {
        if (strchr(p, '/') || strstr(p, "..")) {
            free(copy);
            return 0;
        }
        args[argc++] = p;
    }
    args[argc] = NULL;

    /* glibc's getopt keeps a pointer into the previous argv between calls unless reset with
     * optind = 0; the CLI parses once per process, so only the harness needs this. */
    char *reset[] = {"reset", NULL};
    optind = 0;
    getopt(1, reset, "");
    if (chdir(sandbox) != 0)
        abort();
    mtla_cli_main(argc, args);
    tidy_sandbox();
    if (fchdir(home) != 0)
        abort();
    free(copy);
    return 0;
}
