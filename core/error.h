/* Error reporting inside the library: every failing call fills an mtla_error (if given) with
 * a status and a one-line message naming the problem, and returns the status. */
#ifndef MTLA_CORE_ERROR_H
#define MTLA_CORE_ERROR_H

#include "mtla-st.h"

#if defined(__GNUC__)
#define MTLA_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define MTLA_PRINTF(fmt_index, first_arg)
#endif

/* Fills `err` (may be NULL) and returns `status`, so callers can write
 * `return mtla_fail(err, MTLA_ERR_IO, "cannot open '%s': %s", path, strerror(errno));` */
mtla_status mtla_fail(mtla_error *err, mtla_status status, const char *fmt, ...) MTLA_PRINTF(3, 4);

/* Clears `err` (may be NULL) to MTLA_OK with an empty message. */
void mtla_error_clear(mtla_error *err);

#endif
