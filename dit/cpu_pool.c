#include "cpu_pool.h"

#include "error.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct cpu_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    /* the current job, published under mu with a new generation number */
    unsigned generation;
    int busy; /* workers that have not finished the current generation */
    int quit;
    cpu_task_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_llong next; /* first item of the next unclaimed chunk */
};

/* Claims chunks until none is left: dynamic, so uneven chunks (edge tiles) even out. */
static void run_chunks(cpu_pool *p, int worker)
{
    for (;;) {
        int64_t begin = atomic_fetch_add(&p->next, p->chunk);
        if (begin >= p->n)
            return;
        int64_t end = begin + p->chunk < p->n ? begin + p->chunk : p->n;
        p->fn(p->ctx, begin, end, worker);
    }
}

typedef struct worker_arg {
    cpu_pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    cpu_pool *p = wa.pool;
    unsigned seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->generation == seen && !p->quit)
            pthread_cond_wait(&p->start, &p->mu);
        if (p->quit)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p, wa.index);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int cpu_pool_create(int threads, cpu_pool **out)
{
    *out = NULL;
    if (threads < 1)
        return err_set(REEL_E_INVALID, "cpu pool: %d threads requested", threads);
    cpu_pool *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(REEL_E_NOMEM, "cpu pool: out of memory");
    p->threads = threads;
    p->tids = calloc((size_t)threads, sizeof *p->tids);
    if (!p->tids) {
        free(p);
        return err_set(REEL_E_NOMEM, "cpu pool: out of memory for %d threads", threads);
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (wa) {
            wa->pool = p;
            wa->index = i;
        }
        int rc = wa ? pthread_create(&p->tids[i], NULL, worker_main, wa) : -1;
        if (rc != 0) {
            free(wa);
            p->threads = i; /* free joins the ones already started */
            cpu_pool_free(p);
            return err_set(REEL_E_UNSUPPORTED, "cpu pool: could not start worker thread %d of %d: %s",
                           i, threads, rc > 0 ? strerror(rc) : "out of memory");
        }
    }
    *out = p;
    return REEL_OK;
}

void cpu_pool_free(cpu_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->threads; i++)
        pthread_join(p->tids[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
}

int cpu_pool_threads(const cpu_pool *p) { return p->threads; }

void cpu_pool_for(cpu_pool *p, int64_t n, int64_t grain, cpu_task_fn fn, void *ctx)
{
    if (n <= 0)
        return;
    if (grain < 1)
        grain = 1;
    /* about four chunks per thread balance uneven work without much claiming traffic */
    int64_t chunk = (n + 4 * p->threads - 1) / (4 * p->threads);
    if (chunk < grain)
        chunk = grain;
    if (p->threads == 1 || chunk >= n) {
        fn(ctx, 0, n, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->chunk = chunk;
    atomic_store(&p->next, 0);
    p->busy = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
