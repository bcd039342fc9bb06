/* --files-from lists (cli/inputs.c inputs_add_from): lines, comments, CR/LF, NULs, "-", then
 * every line added as a file or walked as a directory. The lines name paths inside a small
 * sandbox (audio files, a subdirectory, a link back to the sandbox's root: a loop), the current
 * directory; inputs that could leave it (a '/' at the start of a line, "..") are skipped, so
 * that no run walks the whole file system. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/inputs.h"
#include "fuzz_common.h"

static char list_path[1024];
static char sandbox[1024];
static int home = -1; /* the directory libFuzzer runs in, for its corpus paths */

static int escapes_sandbox(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        int line_start = i == 0 || data[i - 1] == '\n' || data[i - 1] == '\r';
        if (line_start && data[i] == '/')
            return 1;
        if (data[i] == '.' && i + 1 < size && data[i + 1] == '.')
            return 1;
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    snprintf(sandbox, sizeof sandbox, "%s", fuzz_fresh_dir("sandbox"));
    home = open(".", O_RDONLY | O_DIRECTORY);
    if (home < 0 || chdir(sandbox) != 0 || mkdir("sub", 0700) != 0 ||
        mkdir("sub/deeper", 0700) != 0 || symlink("..", "sub/deeper/loop") != 0 ||
        symlink("sub", "link") != 0) {
        perror("fuzz_files_from: sandbox");
        abort();
    }
    static const char *const files[] = {"a.wav",       "b.FLAC",    "notes.txt",
                                        ".hidden.wav", "sub/c.mp3", "sub/deeper/d.opus",
                                        "sub/x.ogg"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        free(fuzz_write_file(".", files[i], "RIFF", 4));
    snprintf(list_path, sizeof list_path, "%s/list.txt", fuzz_scratch_dir());
    if (fchdir(home) != 0)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (escapes_sandbox(data, size))
        return 0;
    free(fuzz_write_file(fuzz_scratch_dir(), "list.txt", data, size));
    input_list list = {0};
    char message[512];
    const char *skip = size > 0 && (data[0] & 1) ? "sub" : NULL;
    if (chdir(sandbox) != 0)
        abort();
    if (inputs_add_from(&list, list_path, skip, message, sizeof message) == 0) {
        for (size_t i = 0; i < list.count; i++)
            if (!list.items[i].path || !list.items[i].relative)
                abort();
        inputs_shard(&list, 1 + (int)(size % 3), 3);
    }
    inputs_free(&list);
    if (fchdir(home) != 0)
        abort();
    return 0;
}
