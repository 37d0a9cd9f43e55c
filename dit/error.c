#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: worker threads of the CPU backend and the caller's thread each
 * keep their own, so a failure in one never garbles another's report. */
static _Thread_local char err_buf[1024];

int err_set(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_buf, sizeof err_buf, fmt, ap);
    va_end(ap);
    return status;
}

int err_wrap(int status, const char *fmt, ...)
{
    char prefix[512], old[sizeof err_buf];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err_buf, sizeof old);
    snprintf(err_buf, sizeof err_buf, "%.400s: %.600s", prefix, old);
    return status;
}

const char *err_msg(void) { return err_buf; }

void err_clear(void) { err_buf[0] = 0; }

const char *reel_last_error(void) { return err_buf; }

const char *reel_status_name(int status)
{
    switch (status) {
    case REEL_OK: return "ok";
    case REEL_E_INVALID: return "invalid argument";
    case REEL_E_IO: return "input/output error";
    case REEL_E_FORMAT: return "malformed file";
    case REEL_E_UNSUPPORTED: return "unsupported";
    case REEL_E_NOMEM: return "out of host memory";
    case REEL_E_DEVICE: return "device error";
    case REEL_E_NOT_FOUND: return "not found";
    case REEL_E_CANCELLED: return "cancelled";
    case REEL_E_EXISTS: return "output exists";
    case REEL_E_ABI: return "plugin ABI mismatch";
    default: return "unknown status";
    }
}
