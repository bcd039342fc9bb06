/* Loading the CUDA plugin (core/cuda_backend.h) and the build information that depends on it
 * (mtla_cuda_device_count of include/mtla-st.h). Nothing here links or includes CUDA. */
#define _GNU_SOURCE /* dladdr */
#include "core/cuda_backend.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mtla-st.h"

#ifndef MTLA_ST_INSTALL_LIBDIR
#define MTLA_ST_INSTALL_LIBDIR "/usr/local/lib" /* CMAKE_INSTALL_FULL_LIBDIR */
#endif
#ifndef MTLA_ST_INSTALL_LIBDIR_FROM_BINDIR
#define MTLA_ST_INSTALL_LIBDIR_FROM_BINDIR "../lib" /* CMAKE_INSTALL_LIBDIR seen from bin/ */
#endif

/* dlopen() is process-wide and the plugin is never closed, so its one load is too: the table
 * or, when loading failed, the reason, kept for every later caller. */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const mtla_cuda_backend *load_table;
static char load_message[1024];

static void append(char *buf, size_t size, const char *format, ...)
{
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, format);
    vsnprintf(buf + used, size - used, format, ap);
    va_end(ap);
}

/* 1: loaded into load_table; 0: no file at `path`; -1: a file that is not a usable plugin,
 * with the reason in load_message. */
static int load_file(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 0;
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        /* e.g. "libcublas.so.13: cannot open shared object file: No such file or directory" */
        const char *why = dlerror();
        snprintf(load_message, sizeof load_message, "cannot load %s: %s", path,
                 why ? why : "unknown dlopen error");
        return -1;
    }
    dlerror();
    mtla_cuda_backend_entry entry;
    /* POSIX's way to turn dlsym's object pointer into a function pointer */
    *(void **)&entry = dlsym(handle, MTLA_CUDA_PLUGIN_ENTRY);
    if (!entry) {
        snprintf(load_message, sizeof load_message, "%s has no %s(): not an mtla-st CUDA plugin",
                 path, MTLA_CUDA_PLUGIN_ENTRY);
        return -1; /* left open: closing a library that may have started CUDA is not safe */
    }
    const mtla_cuda_backend *table = entry();
    if (!table || table->abi != MTLA_CUDA_BACKEND_ABI || table->ops_size != sizeof(mtla_ops) ||
        !table->version || strcmp(table->version, mtla_version()) != 0) {
        snprintf(load_message, sizeof load_message,
                 "%s was built for mtla-st %s (interface %u, ops table %u bytes); this library is "
                 "%s (interface %d, %zu bytes): use the plugin of the same build",
                 path, table && table->version ? table->version : "?", table ? table->abi : 0u,
                 table ? table->ops_size : 0u, mtla_version(), MTLA_CUDA_BACKEND_ABI,
                 sizeof(mtla_ops));
        return -1;
    }
    load_table = table;
    return 1;
}

/* The directory part of `path` in dir[size] ("" when it has none). */
static void directory_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= size)
        n = 0;
    memcpy(dir, path, n);
    dir[n] = '\0';
}

static void load(void)
{
    const char *env = getenv(MTLA_CUDA_PLUGIN_ENV);
    if (env && *env) {
        if (load_file(env) == 0)
            snprintf(load_message, sizeof load_message, "%s=%s: no such file", MTLA_CUDA_PLUGIN_ENV,
                     env);
        return;
    }

    char dirs[4][PATH_MAX];
    int count = 0;
    Dl_info info;
    char resolved[PATH_MAX];
    /* dli_fname of an executable is its argv[0], which may be a bare name found on PATH */
    if (dladdr(&load_once, &info) && info.dli_fname && strchr(info.dli_fname, '/') &&
        realpath(info.dli_fname, resolved))
        directory_of(resolved, dirs[count++], sizeof dirs[0]);
    ssize_t n = readlink("/proc/self/exe", resolved, sizeof resolved - 1);
    if (n > 0) {
        resolved[n] = '\0';
        directory_of(resolved, dirs[count++], sizeof dirs[0]);
        /* an install moved to another prefix: PREFIX/bin/mtla-st, PREFIX/lib/the plugin */
        if (snprintf(dirs[count], sizeof dirs[0], "%s/%s", dirs[count - 1],
                     MTLA_ST_INSTALL_LIBDIR_FROM_BINDIR) < (int)sizeof dirs[0] &&
            realpath(dirs[count], resolved))
            snprintf(dirs[count++], sizeof dirs[0], "%s", resolved);
    }
    snprintf(dirs[count++], sizeof dirs[0], "%s", MTLA_ST_INSTALL_LIBDIR);

    char tried[768] = "";
    for (int i = 0; i < count; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= strcmp(dirs[i], dirs[j]) == 0;
        if (seen || !dirs[i][0])
            continue;
        char path[PATH_MAX + sizeof MTLA_CUDA_PLUGIN_FILE + 1];
        int len = snprintf(path, sizeof path, "%s/%s", dirs[i], MTLA_CUDA_PLUGIN_FILE);
        int st = len > 0 && (size_t)len < sizeof path ? load_file(path) : 0;
        if (st != 0)
            return;
        append(tried, sizeof tried, "%s%s", tried[0] ? ", " : "", dirs[i]);
    }
#ifdef MTLA_ST_CUDA_PLUGIN_BUILT
    snprintf(load_message, sizeof load_message, "%s not found in %s (set %s to its path)",
             MTLA_CUDA_PLUGIN_FILE, tried, MTLA_CUDA_PLUGIN_ENV);
#else
    snprintf(load_message, sizeof load_message,
             "this build has no CUDA backend (configured without nvcc or with "
             "-DMTLA_ST_CUDA=OFF), and no %s was found in %s",
             MTLA_CUDA_PLUGIN_FILE, tried);
#endif
}

const mtla_cuda_backend *mtla_cuda_backend_load(char *message, size_t message_size)
{
    pthread_once(&load_once, load);
    if (!load_table && message && message_size > 0)
        snprintf(message, message_size, "%s", load_message);
    return load_table;
}

int32_t mtla_cuda_device_count(char *detail, size_t detail_size)
{
    char why[sizeof load_message];
    const mtla_cuda_backend *cuda = mtla_cuda_backend_load(why, sizeof why);
    if (cuda)
        return cuda->device_count(detail, detail_size);
    if (detail && detail_size > 0)
        snprintf(detail, detail_size, "no CUDA backend: %s", why);
    return 0;
}
