/* The sampler state shared by the three methods (its history as tensors on the backend), the
 * guided data prediction every step starts from, and the dispatch to the per-method steps. */
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

/* An [n] f32 tensor of sampler history on the backend. */
static int history(scheduler *s, tensor *t)
{
    int st = backend_tensor_alloc(s->be, DT_F32, 1, &s->n, t);
    return st < 0 ? err_wrap(st, "sampler state for %lld values", (long long)s->n) : REEL_OK;
}

int sched_create(enum sched_kind kind, int steps, double shift, backend *be, int64_t n,
                 scheduler **out)
{
    *out = NULL;
    if (steps < 1 || steps > 10000)
        return err_set(REEL_E_INVALID, "steps %d out of range (1..10000)", steps);
    if (!(shift > 0 && shift < 1e6))
        return err_set(REEL_E_INVALID, "shift %g out of range (> 0)", shift);
    if (n < 0)
        return err_set(REEL_E_INVALID, "sampler for %lld values", (long long)n);
    scheduler *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(REEL_E_NOMEM, "sampler: out of host memory");
    s->kind = kind;
    s->be = be;
    s->steps = steps;
    s->n = n;
    s->sigma = malloc(sizeof(double) * (size_t)(steps + 1));
    s->t = malloc(sizeof(float) * (size_t)(steps + 1));
    int st = s->sigma && s->t ? REEL_OK : err_set(REEL_E_NOMEM, "sampler: out of host memory");
    /* the data prediction of this step and the last one, UniPC's of two steps back and its
     * previous predictor input; Euler reads none */
    if (st >= 0 && kind != SCHED_EULER)
        st = history(s, &s->m_cur);
    if (st >= 0 && kind != SCHED_EULER)
        st = history(s, &s->m_prev);
    if (st >= 0 && kind == SCHED_UNIPC)
        st = history(s, &s->m_prev2);
    if (st >= 0 && kind == SCHED_UNIPC)
        st = history(s, &s->x_last);
    if (st < 0) {
        sched_free(s);
        return st;
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
    backend_tensor_free(s->be, &s->m_cur);
    backend_tensor_free(s->be, &s->m_prev);
    backend_tensor_free(s->be, &s->m_prev2);
    backend_tensor_free(s->be, &s->x_last);
    free(s);
}

int sched_steps(const scheduler *s) { return s->steps; }
double sched_sigma(const scheduler *s, int k) { return s->sigma[k]; }
float sched_timestep(const scheduler *s, int k) { return s->t[k]; }

int sched_add_velocity(scheduler *s, const tensor *x, double a, double b, const sched_velocity *v,
                       tensor *out)
{
    const tensor *in[3] = {x, v->t[0], v->t[1]};
    double c[3] = {a, b * v->w[0], b * v->w[1]};
    return s->be->ops->lincomb(s->be, 1 + v->n, in, c, out);
}

/* The step's tensors must hold the n values the sampler was made for (lincomb would refuse
 * them too, naming its own arguments; this names the sampler's). */
static int check_len(const scheduler *s, const char *what, const tensor *t)
{
    char shape[96];
    if (tensor_numel(t) != s->n)
        return err_set(REEL_E_INVALID, "sampler step: %s %s has %lld values, expected %lld", what,
                       tensor_shape_str(t, shape, sizeof shape), (long long)tensor_numel(t),
                       (long long)s->n);
    return REEL_OK;
}

int sched_step(scheduler *s, int k, const tensor *cond, const tensor *uncond, double guidance,
               tensor *x)
{
    if (k != s->next)
        return err_set(REEL_E_INVALID, "sampler step %d out of order (expected %d)", k, s->next);
    TRY(check_len(s, "x", x));
    TRY(check_len(s, "cond", cond));
    if (uncond)
        TRY(check_len(s, "uncond", uncond));
    /* v = u + g (c - u) = g c + (1 - g) u, as lincomb terms */
    sched_velocity v = {{cond, uncond}, {uncond ? guidance : 1.0, 1.0 - guidance}, uncond ? 2 : 1};
    if (s->kind == SCHED_EULER) {
        TRY(sched_euler_step(s, k, &v, x));
    } else {
        /* m_k = x_k - sigma_k v_k: the data prediction the multistep methods work from */
        TRY(sched_add_velocity(s, x, 1.0, -s->sigma[k], &v, &s->m_cur));
        TRY(s->kind == SCHED_UNIPC ? sched_unipc_step(s, k, x) : sched_dpmpp_step(s, k, x));
        /* keep the data predictions the method reads next: UniPC the last two, DPM++ one */
        bool two = s->kind == SCHED_UNIPC;
        tensor old = two ? s->m_prev2 : s->m_prev;
        if (two)
            s->m_prev2 = s->m_prev;
        s->m_prev = s->m_cur;
        s->m_cur = old;
    }
    s->next = k + 1;
    return REEL_OK;
}
