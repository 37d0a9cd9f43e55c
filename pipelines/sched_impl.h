/* Sampler internals shared by scheduler.c and the per-method files. */
#ifndef REEL_SCHED_IMPL_H
#define REEL_SCHED_IMPL_H

#include "scheduler.h"

#include <math.h>
#include <stdbool.h>

struct scheduler {
    enum sched_kind kind;
    int steps, next;
    size_t n;
    double *sigma;  /* steps + 1, fp32-rounded values */
    float *t;
    float *m_cur;   /* m_k of the step in progress */
    float *m_prev;  /* m_{k-1} */
    float *m_prev2; /* m_{k-2} */
    float *x_last;  /* UniPC: the (corrected) sample the last predictor started from */
    int order_prev; /* UniPC: order used by the last predictor (the next corrector's order) */
    int lower_order_nums;
};

/* lambda = log(alpha) - log(sigma), alpha = 1 - sigma: -inf at sigma 1, +inf at sigma 0 */
static inline double sched_lambda(double sigma) { return log(1.0 - sigma) - log(sigma); }

void sched_unipc_step(scheduler *s, int k, float *x);
void sched_dpmpp_step(scheduler *s, int k, float *x);
void sched_euler_step(scheduler *s, int k, const float *v, float *x);

#endif
