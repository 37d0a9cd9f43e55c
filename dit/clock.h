/* Wall-clock timing for profiles, progress and benchmarks: a monotonic clock in milliseconds,
 * and the comparator that sorts repeated timings for their median. */
#ifndef REEL_CLOCK_H
#define REEL_CLOCK_H

#include <time.h>

static inline double clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static inline double clock_s(void) { return clock_ms() / 1e3; }

/* qsort comparator for doubles (ascending) */
static inline int clock_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#endif
