#include "npy.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The header is padded with spaces so that the data starts at a multiple of 64 bytes. */
static size_t npy_header(char *out, size_t size, size_t rows, size_t cols)
{
    char dict[128];
    int n = snprintf(dict, sizeof dict,
                     "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", rows, cols);
    size_t unpadded = 10 + (size_t)n + 1; /* magic+version+length, dict, newline */
    size_t total = (unpadded + 63) / 64 * 64;
    if (total > size)
        return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    uint16_t len = (uint16_t)(total - 10);
    out[8] = (char)(len & 0xFF);
    out[9] = (char)(len >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - unpadded);
    out[total - 1] = '\n';
    return total;
}

static int write_all(FILE *f, const char *header, size_t header_len, const float *data,
                     size_t count)
{
    if (fwrite(header, 1, header_len, f) != header_len)
        return -1;
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy_write_f32 writes native floats; add byte swapping for big-endian hosts"
#endif
    if (count && fwrite(data, sizeof(float), count, f) != count)
        return -1;
    return fflush(f) == 0 ? 0 : -1;
}

int npy_write_f32(const char *path, const float *data, size_t rows, size_t cols, char *message,
                  size_t message_size)
{
    char header[256];
    size_t header_len = npy_header(header, sizeof header, rows, cols);
    if (strcmp(path, "-") == 0) {
        if (write_all(stdout, header, header_len, data, rows * cols) != 0) {
            snprintf(message, message_size, "cannot write to standard output: %s", strerror(errno));
            return -1;
        }
        return 0;
    }

    size_t tmp_size = strlen(path) + 16;
    char *tmp = malloc(tmp_size);
    if (!tmp) {
        snprintf(message, message_size, "out of memory");
        return -1;
    }
    snprintf(tmp, tmp_size, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        snprintf(message, message_size, "cannot create '%s': %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    FILE *f = fdopen(fd, "wb");
    int failed =
        !f || write_all(f, header, header_len, data, rows * cols) != 0 || fsync(fileno(f)) != 0;
    int saved = errno;
    if (f ? fclose(f) != 0 : close(fd) != 0) {
        if (!failed)
            saved = errno;
        failed = 1;
    }
    if (!failed) {
        /* mkstemp creates 0600; give the file the usual permissions. */
        mode_t mask = umask(0);
        umask(mask);
        if (chmod(tmp, 0666 & ~mask) != 0 || rename(tmp, path) != 0) {
            saved = errno;
            failed = 1;
        }
    }
    if (failed) {
        unlink(tmp);
        snprintf(message, message_size, "cannot write '%s': %s", path, strerror(saved));
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int npy_read_f32(const char *path, float **data, size_t *rows, size_t *cols, char *message,
                 size_t message_size)
{
    *data = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(message, message_size, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    unsigned char head[10];
    char dict[4096];
    int ok = fread(head, 1, 10, f) == 10 && memcmp(head, "\x93NUMPY", 6) == 0 && head[6] == 1;
    size_t len = ok ? (size_t)head[8] | (size_t)head[9] << 8 : 0;
    ok = ok && len < sizeof dict && fread(dict, 1, len, f) == len;
    if (!ok) {
        snprintf(message, message_size, "'%s' is not a NumPy .npy file (version 1.0)", path);
        fclose(f);
        return -1;
    }
    dict[len] = '\0';
    unsigned long long r = 0, c = 0;
    const char *shape = strstr(dict, "'shape': (");
    if (!strstr(dict, "'descr': '<f4'") || !strstr(dict, "'fortran_order': False") || !shape ||
        sscanf(shape, "'shape': (%llu, %llu)", &r, &c) != 2 || c == 0 || c > 4096 ||
        r > (1ull << 32)) {
        snprintf(message, message_size,
                 "'%s' must hold a 2-D little-endian float32 array in C order (frames, bins)",
                 path);
        fclose(f);
        return -1;
    }
    size_t n = (size_t)r * (size_t)c;
    /* The shape is checked against the file's size before anything is allocated: a header
     * of a few bytes must not make the reader ask for terabytes. */
    struct stat st;
    long data_start = ftell(f);
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && data_start >= 0 &&
        ((uint64_t)st.st_size < (uint64_t)data_start ||
         (uint64_t)st.st_size - (uint64_t)data_start < (uint64_t)n * sizeof(float))) {
        snprintf(message, message_size, "'%s' is truncated", path);
        fclose(f);
        return -1;
    }
    float *buf = malloc((n ? n : 1) * sizeof *buf);
    if (!buf || fread(buf, sizeof *buf, n, f) != n) {
        snprintf(message, message_size, buf ? "'%s' is truncated" : "out of memory reading '%s'",
                 path);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *data = buf;
    *rows = (size_t)r;
    *cols = (size_t)c;
    return 0;
}
