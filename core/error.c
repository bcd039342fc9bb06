#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

mtla_status mtla_fail(mtla_error *err, mtla_status status, const char *fmt, ...)
{
    if (err) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, args);
        va_end(args);
        err->status = status;
    }
    return status;
}

void mtla_error_clear(mtla_error *err)
{
    if (err) {
        err->status = MTLA_OK;
        err->message[0] = '\0';
    }
}

const char *mtla_status_string(mtla_status status)
{
    switch (status) {
    case MTLA_OK: return "success";
    case MTLA_ERR_INVALID_ARGUMENT: return "invalid argument";
    case MTLA_ERR_IO: return "input/output error";
    case MTLA_ERR_FORMAT: return "malformed data";
    case MTLA_ERR_UNSUPPORTED: return "unsupported data";
    case MTLA_ERR_TRUNCATED: return "truncated input";
    case MTLA_ERR_EMPTY: return "empty input";
    case MTLA_ERR_NO_MEMORY: return "out of memory";
    case MTLA_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
