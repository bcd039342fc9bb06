#include "atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const char *volatile atomic_file_pending = NULL;

/* NAME + TMP_MARK + six characters of mkstemp. */
#define TMP_MARK ".mtla-st.tmp."

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

static int same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* A new temporary file `tmp` (its template rewritten), locked. A sweeper may remove the name
 * between mkstemp and flock (the file is not locked yet, so it looks stale): then the name no
 * longer leads to our file, and another is made. Returns the descriptor, or -1 (errno). */
static int create_locked(char *tmp, size_t template_at)
{
    for (int attempt = 0; attempt < 16; attempt++) {
        memcpy(tmp + template_at, "XXXXXX", 6);
        int fd = mkstemp(tmp);
        if (fd < 0)
            return -1;
        /* A filesystem without locks: write unlocked; sweepers cannot lock it either, so they
         * leave it alone. */
        if (flock(fd, LOCK_EX) != 0 && errno != ENOLCK && errno != EOPNOTSUPP && errno != EINVAL) {
            int saved = errno;
            unlink(tmp);
            close(fd);
            errno = saved;
            return -1;
        }
        struct stat mine, named;
        if (fstat(fd, &mine) == 0 && stat(tmp, &named) == 0 && same_file(&mine, &named))
            return fd;
        close(fd);
    }
    errno = EAGAIN;
    return -1;
}

int atomic_file_open(atomic_file *a, const char *path, char *message, size_t size)
{
    memset(a, 0, sizeof *a);
    size_t tmp_size = strlen(path) + sizeof TMP_MARK + 7;
    a->path = strdup(path);
    a->tmp = malloc(tmp_size);
    if (!a->path || !a->tmp) {
        snprintf(message, size, "out of memory");
        atomic_file_abort(a);
        return -1;
    }
    snprintf(a->tmp, tmp_size, "%s" TMP_MARK "XXXXXX", path);
    int fd = make_parents(path) == 0 ? create_locked(a->tmp, strlen(a->tmp) - 6) : -1;
    if (fd < 0 || !(a->f = fdopen(fd, "wb"))) {
        snprintf(message, size, "cannot create '%s': %s", path, strerror(errno));
        if (fd >= 0) {
            unlink(a->tmp);
            close(fd);
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
    if (!failed) {
        /* mkstemp creates 0600; give the file the usual permissions. Renamed while still
         * locked, so that no sweeper takes it for a dead writer's file. */
        mode_t mask = umask(0);
        umask(mask);
        if (fchmod(fileno(a->f), 0666 & ~mask) != 0 || rename(a->tmp, a->path) != 0) {
            saved = errno;
            failed = 1;
        }
    }
    /* After a successful fsync the data is on disk: closing only releases the lock, and its
     * result changes nothing. */
    (void)fclose(a->f);
    a->f = NULL;
    if (failed)
        snprintf(message, size, "cannot write '%s': %s", a->path, strerror(saved));
    atomic_file_abort(a);
    return failed ? -1 : 0;
}

void atomic_file_abort(atomic_file *a)
{
    atomic_file_pending = NULL;
    if (a->tmp)
        unlink(a->tmp); /* after a successful rename this finds nothing */
    if (a->f)
        fclose(a->f); /* the lock goes once the name is gone */
    free(a->tmp);
    free(a->path);
    memset(a, 0, sizeof *a);
}

/* NAME.mtla-st.tmp.XXXXXX, as atomic_file_open names them. */
static int is_temporary_name(const char *name)
{
    size_t n = strlen(name), mark = strlen(TMP_MARK);
    return n > mark + 6 && memcmp(name + n - 6 - mark, TMP_MARK, mark) == 0;
}

/* Removes `name` in `dirfd` if it is a regular file whose lock is free: its writer is dead.
 * Returns 1 when removed, 0 when left alone, -1 when the removal failed (errno). */
static int remove_if_stale(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0; /* gone meanwhile (renamed into place), or not ours to open */
    int removed = 0;
    struct stat held, named;
    /* Locked while unlinking: a writer that made this name but has not locked it yet finds its
     * name gone once it gets the lock, and makes another. */
    if (fstat(fd, &held) == 0 && S_ISREG(held.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0 &&
        fstatat(dirfd, name, &named, AT_SYMLINK_NOFOLLOW) == 0 && same_file(&held, &named))
        removed = unlinkat(dirfd, name, 0) == 0 ? 1 : -1;
    int saved = errno;
    close(fd);
    errno = saved;
    return removed;
}

int atomic_file_remove_stale(const char *dir, size_t *removed, char *message, size_t size)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(message, size, "cannot read directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    int status = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!is_temporary_name(e->d_name))
            continue;
        int r = remove_if_stale(dirfd(d), e->d_name);
        if (r > 0) {
            (*removed)++;
        } else if (r < 0 && status == 0) {
            snprintf(message, size, "cannot remove '%s/%s', a temporary file left by an "
                     "interrupted run: %s", dir, e->d_name, strerror(errno));
            status = -1;
        }
    }
    closedir(d);
    return status;
}
