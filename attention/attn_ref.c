#include "attn_ref.h"

#include "../dit/error.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct ref_job {
    const attn_ref_args *a;
    int64_t first, last; /* work items [first, last): item = h * q_tokens + i */
    double *scores;      /* [kv_tokens] */
    double *acc;         /* [head_dim] */
} ref_job;

static int key_kept(const attn_ref_args *a, int64_t i, int64_t j)
{
    if (a->mask && !a->mask->keep[(size_t)(i / ATTN_BLOCK) * a->mask->kv_blocks + j / ATTN_BLOCK])
        return 0;
    return !a->keep || a->keep(a->keep_ctx, i, j);
}

static void ref_row(const ref_job *job, int h, int64_t i)
{
    const attn_ref_args *a = job->a;
    const int d = a->head_dim;
    const float *q = a->q + i * a->q_stride + (int64_t)h * d;
    double *s = job->scores, m = -INFINITY;
    for (int64_t j = 0; j < a->kv_tokens; j++) {
        s[j] = -INFINITY;
        if (!key_kept(a, i, j))
            continue;
        const float *k = a->k + j * a->kv_stride + (int64_t)h * d;
        double dot = 0;
        for (int c = 0; c < d; c++)
            dot += (double)q[c] * k[c];
        s[j] = dot * a->scale;
        if (s[j] > m)
            m = s[j];
    }
    float *o = a->out + (i * a->heads + h) * d;
    if (m == -INFINITY) { /* nothing kept */
        memset(o, 0, sizeof(float) * d);
        if (a->lse)
            a->lse[(int64_t)h * a->q_tokens + i] = -INFINITY;
        return;
    }
    double sum = 0, *acc = job->acc;
    memset(acc, 0, sizeof(double) * d);
    for (int64_t j = 0; j < a->kv_tokens; j++) {
        if (s[j] == -INFINITY)
            continue;
        double p = exp(s[j] - m);
        if (j == a->kv_tokens - 1 && a->last_key_copies > 1)
            p *= (double)a->last_key_copies;
        sum += p;
        const float *v = a->v + j * a->kv_stride + (int64_t)h * d;
        for (int c = 0; c < d; c++)
            acc[c] += p * v[c];
    }
    for (int c = 0; c < d; c++)
        o[c] = (float)(acc[c] / sum);
    if (a->lse)
        a->lse[(int64_t)h * a->q_tokens + i] = (float)(m + log(sum));
}

static void *ref_worker(void *arg)
{
    ref_job *job = arg;
    for (int64_t it = job->first; it < job->last; it++)
        ref_row(job, (int)(it / job->a->q_tokens), it % job->a->q_tokens);
    return NULL;
}

int attn_ref_forward(const attn_ref_args *a)
{
    if (!a->q || !a->k || !a->v || !a->out || a->q_tokens <= 0 || a->kv_tokens <= 0 ||
        a->heads <= 0 || a->head_dim <= 0)
        return err_set(REEL_E_INVALID, "reference attention: missing tensor or empty shape "
                                       "(q_tokens %lld, kv_tokens %lld, heads %d, head_dim %d)",
                       (long long)a->q_tokens, (long long)a->kv_tokens, a->heads, a->head_dim);
    if (a->mask && (a->mask->q_blocks != attn_blocks(a->q_tokens) ||
                    a->mask->kv_blocks != attn_blocks(a->kv_tokens)))
        return err_set(REEL_E_INVALID,
                       "reference attention: block mask %dx%d does not fit %lld x %lld tokens",
                       a->mask->q_blocks, a->mask->kv_blocks, (long long)a->q_tokens,
                       (long long)a->kv_tokens);
    int64_t items = a->q_tokens * a->heads;
    int threads = a->threads > 0 ? a->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1)
        threads = 1;
    if (threads > 64)
        threads = 64;
    if (items < threads * 4)
        threads = 1;

    ref_job jobs[64];
    pthread_t tid[64];
    int started = 0, st = REEL_OK;
    for (int t = 0; t < threads; t++) {
        jobs[t].a = a;
        jobs[t].first = items * t / threads;
        jobs[t].last = items * (t + 1) / threads;
        jobs[t].scores = malloc(sizeof(double) * (size_t)a->kv_tokens);
        jobs[t].acc = malloc(sizeof(double) * (size_t)a->head_dim);
        if (!jobs[t].scores || !jobs[t].acc) {
            free(jobs[t].scores);
            free(jobs[t].acc);
            st = err_set(REEL_E_NOMEM, "reference attention: %lld scores: out of memory",
                         (long long)a->kv_tokens);
            break;
        }
        started = t + 1;
    }
    if (st == REEL_OK) {
        int spawned = 0;
        for (int t = 1; t < threads; t++) {
            if (pthread_create(&tid[t], NULL, ref_worker, &jobs[t]) != 0)
                break;
            spawned = t;
        }
        /* Rows a thread could not take run here, so a refused pthread_create only costs time. */
        for (int t = spawned + 1; t < threads; t++)
            ref_worker(&jobs[t]);
        ref_worker(&jobs[0]);
        for (int t = 1; t <= spawned; t++)
            pthread_join(tid[t], NULL);
    }
    for (int t = 0; t < started; t++) {
        free(jobs[t].scores);
        free(jobs[t].acc);
    }
    return st;
}
