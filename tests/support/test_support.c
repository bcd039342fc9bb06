#include "test_support.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

const char *fixture(const char *relative)
{
    static char slots[8][4096];
    static int next;
    char *buf = slots[next++ % 8];
    snprintf(buf, sizeof slots[0], "%s/%s", MTLA_SOURCE_DIR, relative);
    return buf;
}

unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert(f, "cannot open %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    cr_assert(buf);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            cr_assert(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    cr_assert(!ferror(f), "cannot read %s", path);
    fclose(f);
    *size = n;
    return buf;
}

npy_array npy_parse(const unsigned char *b, size_t size)
{
    npy_array a = {0};
    cr_assert(size >= 10 && memcmp(b, "\x93NUMPY", 6) == 0, "not a .npy image");
    cr_assert(b[6] == 1 && b[7] == 0, "unexpected .npy version %d.%d", b[6], b[7]);
    size_t header_len = (size_t)b[8] | (size_t)b[9] << 8;
    cr_assert(10 + header_len <= size, ".npy header runs past the data");
    cr_assert((10 + header_len) % 64 == 0, ".npy data is not 64-byte aligned");
    char header[1024];
    cr_assert(header_len < sizeof header);
    memcpy(header, b + 10, header_len);
    header[header_len] = '\0';
    cr_assert(strstr(header, "'descr': '<f4'"), "not little-endian float32: %s", header);
    cr_assert(strstr(header, "'fortran_order': False"), "not C order: %s", header);
    const char *shape = strstr(header, "'shape': (");
    cr_assert(shape, "no shape: %s", header);
    cr_assert(sscanf(shape, "'shape': (%zu, %zu)", &a.rows, &a.cols) == 2, "bad shape: %s", header);
    size_t bytes = a.rows * a.cols * sizeof(float);
    cr_assert_eq(size - 10 - header_len, bytes, ".npy data size %zu, expected %zu",
                 size - 10 - header_len, bytes);
    a.data = malloc(bytes + sizeof(float));
    cr_assert(a.data);
    memcpy(a.data, b + 10 + header_len, bytes);
    return a;
}

npy_array npy_load(const char *path)
{
    size_t size;
    unsigned char *bytes = read_file(path, &size);
    npy_array a = npy_parse(bytes, size);
    free(bytes);
    return a;
}

void npy_free(npy_array *a)
{
    free(a->data);
    a->data = NULL;
}

float *load_audio(const char *path, size_t *count)
{
    float *samples = NULL;
    mtla_error err;
    mtla_status st = mtla_audio_load(path, NULL, 16000, &samples, count, &err);
    cr_assert_eq(st, MTLA_OK, "loading %s: %s", path, err.message);
    return samples;
}

double max_abs_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > worst || isnan(d))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* Appends whatever `fd` has to *buf; returns 0 at end of file. */
static int drain(int fd, unsigned char **buf, size_t *size, size_t *cap)
{
    if (*cap - *size < 4096) {
        *cap = *cap * 2 + 4096;
        *buf = realloc(*buf, *cap + 1);
        cr_assert(*buf);
    }
    ssize_t got = read(fd, *buf + *size, *cap - *size);
    if (got < 0 && errno == EINTR)
        return 1;
    cr_assert(got >= 0, "read from child: %s", strerror(errno));
    *size += (size_t)got;
    return got > 0;
}

void exec_cli(const char *const *argv)
{
    size_t n = 0;
    while (argv[n])
        n++;
    char **args = calloc(n + 1, sizeof *args);
    args[0] = (char *)MTLA_CLI_PATH;
    for (size_t i = 1; i < n; i++)
        args[i] = (char *)argv[i];
    execv(MTLA_CLI_PATH, args);
    _exit(127);
}

cli_child cli_spawn(const char *const *argv, int flags)
{
    int in[2], out[2], err[2];
    cr_assert(pipe(in) == 0 && pipe(out) == 0 && pipe(err) == 0);
    signal(SIGPIPE, SIG_IGN);
    cli_child c;
    c.pid = fork();
    cr_assert(c.pid >= 0);
    if (c.pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        signal(SIGPIPE, flags & CLI_SPAWN_IGNORE_SIGPIPE ? SIG_IGN : SIG_DFL);
        exec_cli(argv);
    }
    close(in[0]), close(out[1]), close(err[1]);
    c.in = in[1];
    c.out = out[0];
    c.err = err[0];
    return c;
}

char *cli_child_finish(cli_child *c, int *status, char **err)
{
    if (c->in >= 0)
        close(c->in);
    c->in = -1;
    unsigned char *out_buf = NULL, *err_buf = NULL;
    size_t out_size = 0, out_cap = 0, err_size = 0, err_cap = 0;
    int out_open = 1, err_open = 1;
    while (out_open || err_open) {
        struct pollfd fds[2] = {{out_open ? c->out : -1, POLLIN, 0},
                                {err_open ? c->err : -1, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            cr_assert(errno == EINTR, "poll: %s", strerror(errno));
            continue;
        }
        if (fds[0].revents)
            out_open = drain(c->out, &out_buf, &out_size, &out_cap);
        if (fds[1].revents)
            err_open = drain(c->err, &err_buf, &err_size, &err_cap);
    }
    close(c->out), close(c->err);
    int raw;
    while (waitpid(c->pid, &raw, 0) < 0)
        cr_assert(errno == EINTR);
    *status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    if (!out_buf)
        out_buf = calloc(1, 1);
    out_buf[out_size] = '\0';
    if (!err_buf)
        err_buf = calloc(1, 1);
    err_buf[err_size] = '\0';
    if (err)
        *err = (char *)err_buf;
    else
        free(err_buf);
    return (char *)out_buf;
}

long process_rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

cli_result run_cli(const char *const *argv, const void *input, size_t input_size)
{
    return run_cli_limited(argv, input, input_size, 0);
}

cli_result run_cli_limited(const char *const *argv, const void *input, size_t input_size,
                           long file_size_limit)
{
    int in[2], out[2], err[2];
    cr_assert(pipe(in) == 0 && pipe(out) == 0 && pipe(err) == 0);
    signal(SIGPIPE, SIG_IGN);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        signal(SIGPIPE, SIG_DFL);
        if (file_size_limit > 0) {
            struct rlimit limit = {(rlim_t)file_size_limit, (rlim_t)file_size_limit};
            setrlimit(RLIMIT_FSIZE, &limit);
            signal(SIGXFSZ, SIG_IGN); /* writes past the limit fail with EFBIG instead */
        }
        exec_cli(argv);
    }
    close(in[0]), close(out[1]), close(err[1]);

    cli_result r = {0};
    size_t out_cap = 0, err_cap = 0, err_size = 0, written = 0;
    unsigned char *err_buf = NULL;
    int in_open = 1, out_open = 1, err_open = 1;
    if (input_size == 0) {
        close(in[1]);
        in_open = 0;
    }
    while (out_open || err_open) {
        struct pollfd fds[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {in[1], POLLOUT, 0}};
        if (!out_open)
            fds[0].fd = -1;
        if (!err_open)
            fds[1].fd = -1;
        if (!in_open)
            fds[2].fd = -1;
        if (poll(fds, 3, -1) < 0) {
            cr_assert(errno == EINTR, "poll: %s", strerror(errno));
            continue;
        }
        if (fds[0].revents)
            out_open = drain(out[0], &r.out, &r.out_size, &out_cap);
        if (fds[1].revents)
            err_open = drain(err[0], &err_buf, &err_size, &err_cap);
        if (in_open && fds[2].revents) {
            ssize_t w = write(in[1], (const char *)input + written, input_size - written);
            if (w > 0)
                written += (size_t)w;
            if (w < 0 || written == input_size) {
                close(in[1]);
                in_open = 0;
            }
        }
    }
    if (in_open)
        close(in[1]);
    close(out[0]), close(err[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        cr_assert(errno == EINTR);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    /* Both captures are NUL-terminated so tests can search them as text. */
    if (!err_buf)
        err_buf = calloc(1, 1);
    err_buf[err_size] = '\0';
    if (!r.out)
        r.out = calloc(1, 1);
    r.out[r.out_size] = '\0';
    r.err = (char *)err_buf;
    return r;
}

void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
    r->out = NULL;
    r->err = NULL;
}

char *make_temp_dir(void)
{
    char *dir = strdup("/tmp/mtla-test-XXXXXX");
    cr_assert(dir && mkdtemp(dir), "cannot create a temporary directory");
    return dir;
}

char *path_join(const char *dir, const char *name)
{
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    cr_assert(p);
    sprintf(p, "%s/%s", dir, name);
    return p;
}
