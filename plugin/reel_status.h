/* reel status codes: every library call returns REEL_OK (0) or one of these negative codes.
 * The message that names the file, key or value at fault is kept per thread (reel_last_error). */
#ifndef REEL_STATUS_H
#define REEL_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum reel_status {
    REEL_OK = 0,
    REEL_E_INVALID = -1,     /* an argument, shape or option is not acceptable */
    REEL_E_IO = -2,          /* a file could not be opened, read or written */
    REEL_E_FORMAT = -3,      /* a file is malformed */
    REEL_E_UNSUPPORTED = -4, /* well formed, but reel cannot handle it (dtype, layout, feature off) */
    REEL_E_NOMEM = -5,       /* host memory exhausted */
    REEL_E_DEVICE = -6,      /* a CUDA/cuBLAS/cuDNN call failed, device memory exhausted */
    REEL_E_NOT_FOUND = -7,   /* a tensor, file, plugin or option that was asked for is missing */
    REEL_E_CANCELLED = -8,   /* the caller asked to stop */
    REEL_E_EXISTS = -9,      /* an output exists and overwriting was not allowed */
    REEL_E_ABI = -10         /* a plugin was built for another ABI version */
} reel_status;

/* Short fixed name of a status code ("invalid argument", ...). */
const char *reel_status_name(int status);

/* Message of the last failure on this thread ("" when none). Valid until the next failure. */
const char *reel_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
