#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

char *mtla_path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *path = malloc(a + b + 2);
    if (!path)
        return NULL;
    memcpy(path, dir, a);
    path[a] = '/';
    memcpy(path + a + 1, name, b + 1);
    return path;
}

mtla_status mtla_dir_read_file(const char *dir, const char *name, size_t max_size, char **data,
                               size_t *size, mtla_error *err)
{
    *data = NULL;
    *size = 0;
    char *path = mtla_path_join(dir, name);
    if (!path)
        return mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading %s", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    free(path);
    if (fd < 0) {
        if (errno == ENOENT)
            return mtla_fail(err, MTLA_ERR_IO, "model directory '%s': %s not found", dir, name);
        return mtla_fail(err, MTLA_ERR_IO, "model directory '%s': cannot open %s: %s", dir, name,
                         strerror(errno));
    }
    mtla_status st = MTLA_OK;
    struct stat info;
    char *buf = NULL;
    if (fstat(fd, &info) != 0) {
        st = mtla_fail(err, MTLA_ERR_IO, "model directory '%s': cannot stat %s: %s", dir, name,
                       strerror(errno));
        goto done;
    }
    if (!S_ISREG(info.st_mode)) {
        st = mtla_fail(err, MTLA_ERR_IO, "model directory '%s': %s is not a regular file", dir,
                       name);
        goto done;
    }
    if ((uintmax_t)info.st_size > (uintmax_t)max_size) {
        st = mtla_fail(err, MTLA_ERR_FORMAT,
                       "%s is %jd bytes, more than the %zu this reader accepts", name,
                       (intmax_t)info.st_size, max_size);
        goto done;
    }
    size_t capacity = (size_t)info.st_size;
    buf = malloc(capacity + 1);
    if (!buf) {
        st = mtla_fail(err, MTLA_ERR_NO_MEMORY, "out of memory reading %s", name);
        goto done;
    }
    /* Read to end of file rather than trusting st_size: the file may shrink meanwhile. */
    size_t have = 0;
    while (have < capacity) {
        ssize_t got = read(fd, buf + have, capacity - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            st = mtla_fail(err, MTLA_ERR_IO, "model directory '%s': cannot read %s: %s", dir, name,
                           strerror(errno));
            goto done;
        }
        if (got == 0)
            break;
        have += (size_t)got;
    }
    buf[have] = '\0';
    *data = buf;
    *size = have;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return st;
}

int mtla_utf8_valid(const char *bytes, size_t size, size_t *bad_at)
{
    const unsigned char *s = (const unsigned char *)bytes;
    size_t i = 0;
    while (i < size) {
        unsigned c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (size - i < len)
            goto bad;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += len;
    }
    return 1;
bad:
    if (bad_at)
        *bad_at = i;
    return 0;
}

const char *mtla_printable(const char *s, char *buf, size_t size)
{
    if (size == 0)
        return "";
    size_t n = strlen(s), shown = n > 80 ? 80 : n;
    snprintf(buf, size, "%.*s%s", (int)shown, s, n > shown ? "..." : "");
    for (char *c = buf; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return buf;
}
