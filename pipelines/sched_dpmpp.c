/* DPM-Solver++(2M), midpoint form, as Wan's `dpm++` (wan/utils/fm_solvers.py): first order at
 * the first step and at the last (the final sigma is zero), second order in between:
 *   x_{k+1} = (s_{k+1}/s_k) x_k - a_{k+1}(e^{-h} - 1) m_k - 0.5 a_{k+1}(e^{-h} - 1) D1,
 *   D1 = (m_k - m_{k-1}) / r0,  r0 = (lambda_k - lambda_{k-1}) / h.
 * The schedule starts at sigma 1 exactly (lambda = -inf), where IEEE arithmetic gives the
 * reference's limits: the first step is x_1 = s_1 x_0 + a_1 m_0 and D1 vanishes at k = 1. */
#include "sched_impl.h"

#include <string.h>

void sched_dpmpp_step(scheduler *s, int k, float *x)
{
    const float *m = s->m_cur, *m1 = s->m_prev;
    const double st = s->sigma[k + 1], ss = s->sigma[k];
    if (st == 0.0) {
        memcpy(x, m, s->n * sizeof *x);
    } else {
        const double h = sched_lambda(st) - sched_lambda(ss);
        const double c = (1.0 - st) * (exp(-h) - 1.0), ratio = st / ss;
        bool first = k == 0 || s->lower_order_nums < 1;
        const double r0 = first ? 0 : (sched_lambda(ss) - sched_lambda(s->sigma[k - 1])) / h;
        const double inv_r0 = first || isinf(r0) ? 0.0 : 1.0 / r0;
        for (size_t i = 0; i < s->n; i++) {
            double d1 = ((double)m[i] - m1[i]) * inv_r0;
            x[i] = (float)(ratio * x[i] - c * m[i] - 0.5 * c * d1);
        }
    }
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
}
