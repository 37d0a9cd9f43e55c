/* Sampler internals shared by scheduler.c and the per-method files. */
#ifndef REEL_SCHED_IMPL_H
#define REEL_SCHED_IMPL_H

#include "scheduler.h"

#include <math.h>
#include <stdbool.h>

struct scheduler {
    enum sched_kind kind;
    backend *be;
    int steps, next;
    int64_t n;
    double *sigma;  /* steps + 1, fp32-rounded values */
    float *t;
    /* [n] f32 on be; each method allocates only what it reads (Euler none, DPM++ no m_prev2
     * nor x_last), the others have data NULL */
    tensor m_cur;   /* m_k of the step in progress */
    tensor m_prev;  /* m_{k-1} */
    tensor m_prev2; /* m_{k-2} */
    tensor x_last;  /* UniPC: the (corrected) sample the last predictor started from */
    int order_prev; /* UniPC: order used by the last predictor (the next corrector's order) */
    int lower_order_nums;
};

/* The guided velocity of one step as lincomb terms: v = w[0] t[0] + ... + w[n-1] t[n-1]. */
typedef struct sched_velocity {
    const tensor *t[2];
    double w[2];
    int n;
} sched_velocity;

/* lambda = log(alpha) - log(sigma), alpha = 1 - sigma: -inf at sigma 1, +inf at sigma 0 */
static inline double sched_lambda(double sigma) { return log(1.0 - sigma) - log(sigma); }

/* out = a x + b v in one lincomb (out may be x). */
int sched_add_velocity(scheduler *s, const tensor *x, double a, double b, const sched_velocity *v,
                       tensor *out);

int sched_unipc_step(scheduler *s, int k, tensor *x);
int sched_dpmpp_step(scheduler *s, int k, tensor *x);
int sched_euler_step(scheduler *s, int k, const sched_velocity *v, tensor *x);

#endif
