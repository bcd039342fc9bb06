/* The CUDA backend as a plugin: cuda/ is built into its own shared object,
 * libmtla-st-cuda.so, which links cudart and cuBLAS; the library and the `mtla-st` binary do
 * not. core/cuda_backend.c loads it with dlopen() the first time a CUDA device is asked for,
 * so a CPU run never maps the CUDA libraries (docs/cuda.md, "The plugin").
 *
 * The plugin exports one symbol, MTLA_CUDA_PLUGIN_ENTRY, a function returning the table below.
 * The name carries the interface version; the table repeats it with the size of mtla_ops and
 * the library version the plugin was built with, and the loader refuses a plugin whose three
 * values differ from its own (core/ops.h has no stable ABI across versions). */
#ifndef MTLA_CORE_CUDA_BACKEND_H
#define MTLA_CORE_CUDA_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MTLA_CUDA_PLUGIN_FILE "libmtla-st-cuda.so"
#define MTLA_CUDA_PLUGIN_ENTRY "mtla_cuda_backend_v1"
#define MTLA_CUDA_PLUGIN_ENV "MTLA_ST_CUDA_PLUGIN"
#define MTLA_CUDA_BACKEND_ABI 1

/* What the plugin provides; the functions are those of cuda/ops_cuda.h. */
typedef struct mtla_cuda_backend {
    uint32_t abi;        /* MTLA_CUDA_BACKEND_ABI */
    uint32_t ops_size;   /* sizeof(mtla_ops) */
    const char *version; /* mtla_version() of the build, e.g. "0.1.0" */
    mtla_ops *(*create)(int device, char *message, size_t message_size);
    int (*check)(const mtla_ops *ops, char *message, size_t size);
    void (*free)(mtla_ops *ops);
    int32_t (*device_count)(char *detail, size_t detail_size);
} mtla_cuda_backend;

typedef const mtla_cuda_backend *(*mtla_cuda_backend_entry)(void);

/* The plugin's table, loaded once per process and never unloaded (the CUDA runtime does not
 * survive dlclose). The plugin is looked for, in order:
 *   1. the file named by $MTLA_ST_CUDA_PLUGIN, when that is set (and nowhere else);
 *   2. MTLA_CUDA_PLUGIN_FILE in the directory of the object holding this code (dladdr: the
 *      shared library, or the executable a static library is linked into);
 *   3. the same in the directory of the running executable (/proc/self/exe), then in the
 *      libdir seen from it (../lib: an install moved to another prefix);
 *   4. the same in the install libdir (MTLA_ST_INSTALL_LIBDIR).
 * Returns NULL with the reason in message[message_size]: not built, not found at the paths
 * tried, dlopen's error (a missing libcublas), no entry point, or a version mismatch. Which
 * devices work is the table's business (create, device_count). Thread-safe; a failure is
 * remembered as well, with its message. */
const mtla_cuda_backend *mtla_cuda_backend_load(char *message, size_t message_size);

#ifdef __cplusplus
}
#endif

#endif
