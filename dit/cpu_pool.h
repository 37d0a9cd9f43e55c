/* The CPU backend's worker threads: a parallel for over [0, n) in chunks. The calling thread
 * works too (as worker 0), so a pool of one thread runs everything inline. One parallel for at
 * a time per pool: the backend is used by one caller thread at a time. */
#ifndef REEL_CPU_POOL_H
#define REEL_CPU_POOL_H

#include <stdint.h>

typedef struct cpu_pool cpu_pool;

/* Called on [begin, end) by worker `worker` (0 .. threads-1). Must not fail: ops check their
 * arguments before they split the work. */
typedef void (*cpu_task_fn)(void *ctx, int64_t begin, int64_t end, int worker);

/* threads >= 1; REEL_E_NOMEM / REEL_E_UNSUPPORTED (thread creation) on failure. */
int cpu_pool_create(int threads, cpu_pool **out);
void cpu_pool_free(cpu_pool *p);
int cpu_pool_threads(const cpu_pool *p);

/* Runs fn over [0, n) in chunks of at least `grain` items and returns when all are done. */
void cpu_pool_for(cpu_pool *p, int64_t n, int64_t grain, cpu_task_fn fn, void *ctx);

#endif
