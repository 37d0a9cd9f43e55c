/* The sampler state shared by the three methods, and the per-method step functions. */
#include "scheduler.h"

#include "sched_impl.h"

#include "../dit/error.h"

#include <stdlib.h>
#include <string.h>

int sched_kind_from_name(const char *name, enum sched_kind *out)
{
    if (!strcmp(name, "unipc"))
        *out = SCHED_UNIPC;
    else if (!strcmp(name, "dpm++") || !strcmp(name, "dpmpp"))
        *out = SCHED_DPMPP;
    else if (!strcmp(name, "euler"))
        *out = SCHED_EULER;
    else
        return err_set(REEL_E_INVALID, "unknown sampler '%s' (expected unipc, dpm++ or euler)", name);
    return REEL_OK;
}

const char *sched_kind_name(enum sched_kind k)
{
    return k == SCHED_UNIPC ? "unipc" : k == SCHED_DPMPP ? "dpm++" : "euler";
}

int sched_create(enum sched_kind kind, int steps, double shift, size_t n, scheduler **out)
{
    *out = NULL;
    if (steps < 1 || steps > 10000)
        return err_set(REEL_E_INVALID, "steps %d out of range (1..10000)", steps);
    if (!(shift > 0 && shift < 1e6))
        return err_set(REEL_E_INVALID, "shift %g out of range (> 0)", shift);
    scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(REEL_E_NOMEM, "sampler: out of host memory");
    s->kind = kind;
    s->steps = steps;
    s->n = n;
    s->sigma = malloc(sizeof(double) * (size_t)(steps + 1));
    s->t = malloc(sizeof(float) * (size_t)(steps + 1));
    /* data predictions of the last two steps, and UniPC's previous predictor input */
    s->m_prev = malloc(n * sizeof(float));
    s->m_prev2 = malloc(n * sizeof(float));
    s->x_last = kind == SCHED_UNIPC ? malloc(n * sizeof(float)) : NULL;
    s->m_cur = malloc(n * sizeof(float));
    if (!s->sigma || !s->t || !s->m_prev || !s->m_prev2 || !s->m_cur ||
        (kind == SCHED_UNIPC && !s->x_last)) {
        sched_free(s);
        return err_set(REEL_E_NOMEM, "sampler state for %zu values", n);
    }
    if (kind == SCHED_DPMPP)
        sched_sigmas_dpmpp(steps, shift, s->sigma, s->t);
    else
        sched_sigmas_unipc(steps, shift, s->sigma, s->t);
    *out = s;
    return REEL_OK;
}

void sched_free(scheduler *s)
{
    if (!s)
        return;
    free(s->sigma);
    free(s->t);
    free(s->m_prev);
    free(s->m_prev2);
    free(s->x_last);
    free(s->m_cur);
    free(s);
}

int sched_steps(const scheduler *s) { return s->steps; }
double sched_sigma(const scheduler *s, int k) { return s->sigma[k]; }
float sched_timestep(const scheduler *s, int k) { return s->t[k]; }

int sched_step(scheduler *s, int k, const float *v, float *x)
{
    if (k != s->next)
        return err_set(REEL_E_INVALID, "sampler step %d out of order (expected %d)", k, s->next);
    /* m_k = x_k - sigma_k v_k: the data prediction every method works from */
    const float sg = (float)s->sigma[k];
    for (size_t i = 0; i < s->n; i++)
        s->m_cur[i] = x[i] - sg * v[i];
    if (s->kind == SCHED_UNIPC)
        sched_unipc_step(s, k, x);
    else if (s->kind == SCHED_DPMPP)
        sched_dpmpp_step(s, k, x);
    else
        sched_euler_step(s, k, v, x);
    /* keep the last two data predictions for the multistep methods */
    float *old = s->m_prev2;
    s->m_prev2 = s->m_prev;
    s->m_prev = s->m_cur;
    s->m_cur = old;
    s->next = k + 1;
    return REEL_OK;
}
