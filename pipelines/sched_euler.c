/* Euler on the flow ODE: x_{k+1} = x_k + (sigma_{k+1} - sigma_k) v_k (Self-Forcing's
 * FlowMatchScheduler.step; equal to an order-1 UniPC/DPM step). The last step lands on
 * x - sigma v = m, the data prediction. The step size is rounded to fp32 as the reference's
 * fp32 arithmetic has it; the guided velocity enters the same lincomb as x. */
#include "sched_impl.h"

int sched_euler_step(scheduler *s, int k, const sched_velocity *v, tensor *x)
{
    const double d = (float)(s->sigma[k + 1] - s->sigma[k]);
    return sched_add_velocity(s, x, 1.0, d, v, x);
}
