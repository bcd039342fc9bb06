#include "atomic_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *volatile atomic_file_pending = NULL;

/* mkdir -p of the directory part of `path`. */
static int make_parents(const char *path)
{
    char *dir = strdup(path);
    if (!dir)
        return -1;
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
            int saved = errno;
            free(dir);
            errno = saved;
            return -1;
        }
        *p = '/';
    }
    free(dir);
    return 0;
}

int atomic_file_open(atomic_file *a, const char *path, char *message, size_t size)
{
    memset(a, 0, sizeof *a);
    size_t tmp_size = strlen(path) + 16;
    a->path = strdup(path);
    a->tmp = malloc(tmp_size);
    if (!a->path || !a->tmp) {
        snprintf(message, size, "out of memory");
        atomic_file_abort(a);
        return -1;
    }
    snprintf(a->tmp, tmp_size, "%s.tmp.XXXXXX", path);
    int fd = make_parents(path) == 0 ? mkstemp(a->tmp) : -1;
    if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
        snprintf(message, size, "cannot create '%s': %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(a->tmp);
        }
        free(a->tmp);
        a->tmp = NULL;
        atomic_file_abort(a);
        return -1;
    }
    atomic_file_pending = a->tmp;
    return 0;
}

int atomic_file_commit(atomic_file *a, char *message, size_t size)
{
    int failed = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int saved = errno;
    if (fclose(a->f) != 0 && !failed) {
        saved = errno;
        failed = 1;
    }
    a->f = NULL;
    if (!failed) {
        /* mkstemp creates 0600; give the file the usual permissions. */
        mode_t mask = umask(0);
        umask(mask);
        if (chmod(a->tmp, 0666 & ~mask) != 0 || rename(a->tmp, a->path) != 0) {
            saved = errno;
            failed = 1;
        }
    }
    if (failed)
        snprintf(message, size, "cannot write '%s': %s", a->path, strerror(saved));
    atomic_file_abort(a);
    return failed ? -1 : 0;
}

void atomic_file_abort(atomic_file *a)
{
    atomic_file_pending = NULL;
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp); /* after a successful rename this finds nothing */
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}
