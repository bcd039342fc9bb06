/* The CUDA backend of the ops interface (core/ops.h): the same table as the CPU reference
 * (core/ops_cpu.c), fp32 throughout, on one device and one stream. Matrix products go through
 * cuBLAS; every other op is a kernel of its own file under cuda/ (docs/cuda.md lists them).
 *
 * Buffers are device memory (host_memory = 0): model tensors are uploaded once through
 * core/weights.h, activations live in ops->alloc buffers. Host arrays that ops take (token ids,
 * gather indices, rope positions) are copied to a device scratch by the op itself.
 *
 * Ops do not fail (core/ops.h). A CUDA or cuBLAS error inside one (a failed launch, an
 * exhausted scratch, a device fault surfacing at a synchronisation) is recorded in the backend
 * and kept: mtla_ops_cuda_check reports the first one. Once it reports an error, results of the
 * ops run since are undefined; after a device fault the whole CUDA context is lost and the
 * backend should be freed. A failed download fills the host buffer with NaN, so that a caller
 * which forgets to check sees no plausible numbers.
 *
 * A table serves one host thread at a time (it owns scratch buffers), as the CPU one does.
 *
 * These functions are inside the plugin libmtla-st-cuda.so and not exported from it: the
 * library reaches them through the table of core/cuda_backend.h (cuda/plugin.cu). */
#ifndef MTLA_CUDA_OPS_CUDA_H
#define MTLA_CUDA_OPS_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "core/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The backend on CUDA device `device` (0 for the first). Returns NULL, with the reason in
 * message[message_size], when there is no such device, its compute capability is below 8.0,
 * or the stream, the cuBLAS handle or a first test kernel cannot be set up. */
mtla_ops *mtla_ops_cuda_create(int device, char *message, size_t message_size);

/* Waits for the backend's stream, then returns 0 when no error has been recorded, or -1 with
 * the first recorded error ("op: CUDA message") in message[size] (either may be NULL / 0).
 * The error is kept: later calls report it again. */
int mtla_ops_cuda_check(const mtla_ops *ops, char *message, size_t size);

/* Waits for outstanding work, then releases the stream, the cuBLAS handle, the scratch and the
 * table. Buffers from ops->alloc must have been freed before. NULL is ignored. */
void mtla_ops_cuda_free(mtla_ops *ops);

/* Number of usable devices, and a one-line description ("CUDA runtime 13.0; 1 device(s),
 * first: ...", or why there is none) in detail[detail_size] (may be NULL / 0). */
int32_t mtla_ops_cuda_device_count(char *detail, size_t detail_size);

#ifdef __cplusplus
}
#endif

#endif
