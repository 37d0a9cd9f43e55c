/* DPM-Solver++(2M), midpoint form, as Wan's `dpm++` (wan/utils/fm_solvers.py): first order at
 * the first step and at the last (the final sigma is zero), second order in between:
 *   x_{k+1} = (s_{k+1}/s_k) x_k - a_{k+1}(e^{-h} - 1) m_k - 0.5 a_{k+1}(e^{-h} - 1) D1,
 *   D1 = (m_k - m_{k-1}) / r0,  r0 = (lambda_k - lambda_{k-1}) / h.
 * The schedule starts at sigma 1 exactly (lambda = -inf), where IEEE arithmetic gives the
 * reference's limits: the first step is x_1 = s_1 x_0 + a_1 m_0 and D1 vanishes at k = 1.
 * One lincomb per step, D1 expanded into its +1/r0 and -1/r0 terms on m_k and m_{k-1}; where D1
 * vanishes m_{k-1} is left out (at k = 0 it holds no value yet). */
#include "sched_impl.h"

#include "../dit/error.h"

int sched_dpmpp_step(scheduler *s, int k, tensor *x)
{
    backend *be = s->be;
    const double st = s->sigma[k + 1], ss = s->sigma[k];
    if (st == 0.0) {
        TRY(be->ops->copy(be, &s->m_cur, x));
    } else {
        const double h = sched_lambda(st) - sched_lambda(ss);
        const double c = (1.0 - st) * (exp(-h) - 1.0), ratio = st / ss;
        bool first = k == 0 || s->lower_order_nums < 1;
        const double r0 = first ? 0 : (sched_lambda(ss) - sched_lambda(s->sigma[k - 1])) / h;
        const double inv_r0 = first || isinf(r0) ? 0.0 : 1.0 / r0;
        const double e = 0.5 * c * inv_r0;
        const tensor *in[3] = {x, &s->m_cur, &s->m_prev};
        const double coef[3] = {ratio, -c - e, e};
        TRY(be->ops->lincomb(be, inv_r0 != 0.0 ? 3 : 2, in, coef, x));
    }
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
    return REEL_OK;
}
