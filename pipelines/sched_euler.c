/* Euler on the flow ODE: x_{k+1} = x_k + (sigma_{k+1} - sigma_k) v_k (Self-Forcing's
 * FlowMatchScheduler.step; equal to an order-1 UniPC/DPM step). The last step lands on
 * x - sigma v = m, the data prediction. */
#include "sched_impl.h"

void sched_euler_step(scheduler *s, int k, const float *v, float *x)
{
    const float d = (float)(s->sigma[k + 1] - s->sigma[k]);
    for (size_t i = 0; i < s->n; i++)
        x[i] += d * v[i];
}
