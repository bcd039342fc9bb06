#include "fuzz_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[512];

static void die(const char *what, const char *path)
{
    fprintf(stderr, "fuzz harness: %s '%s': %s\n", what, path, strerror(errno));
    abort();
}

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        fuzz_empty_dir(path);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void fuzz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[1024];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < (int)sizeof path)
            remove_tree(path);
    }
    closedir(d);
}

static void remove_scratch(void)
{
    if (scratch[0])
        remove_tree(scratch);
}

const char *fuzz_scratch_dir(void)
{
    if (scratch[0])
        return scratch;
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/mtla-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(scratch))
        die("cannot make", scratch);
    atexit(remove_scratch);
    return scratch;
}

const char *fuzz_fresh_dir(const char *name)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", fuzz_scratch_dir(), name);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        die("cannot make", path);
    fuzz_empty_dir(path);
    return path;
}

char *fuzz_write_file(const char *dir, const char *name, const void *data, size_t size)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    if (!path)
        abort();
    snprintf(path, n, "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die("cannot create", path);
    const char *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("cannot write", path);
        p += w;
        size -= (size_t)w;
    }
    if (close(fd) != 0)
        die("cannot close", path);
    return path;
}

size_t fuzz_split(const uint8_t *data, size_t size, const char *sep, fuzz_part *parts, size_t max)
{
    size_t sep_len = strlen(sep), count = 0, start = 0;
    for (size_t i = 0; count + 1 < max && i + sep_len <= size;) {
        if (memcmp(data + i, sep, sep_len) == 0) {
            parts[count].data = data + start;
            parts[count].size = i - start;
            count++;
            i += sep_len;
            start = i;
        } else {
            i++;
        }
    }
    parts[count].data = data + start;
    parts[count].size = size - start;
    return count + 1;
}
