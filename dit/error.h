/* Failure reporting inside reel: a status code travels up the call chain, and the first
 * place that knows what went wrong writes one message naming the file, key or value at fault.
 * Callers that add context prefix it with err_wrap. */
#ifndef REEL_ERROR_H
#define REEL_ERROR_H

#include "../plugin/reel_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ERR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ERR_PRINTF(a, b)
#endif

/* Records the message for this thread and returns status, so that a failure reads
 *   return err_set(REEL_E_FORMAT, "%s: header length %llu exceeds the file", path, n); */
int err_set(int status, const char *fmt, ...) ERR_PRINTF(2, 3);

/* Prefixes the current message with context ("loading blocks.3: " + old message) and returns
 * status unchanged. */
int err_wrap(int status, const char *fmt, ...) ERR_PRINTF(2, 3);

const char *err_msg(void);
void err_clear(void);

/* Propagates a negative status from a call whose message is already set. */
#define TRY(expr)                  \
    do {                           \
        int try_status_ = (expr);  \
        if (try_status_ < 0)       \
            return try_status_;    \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif
