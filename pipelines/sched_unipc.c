/* UniPC for flow matching, as configured by Wan: data prediction, order 2, B(h) = expm1(-h)
 * ("bh2"), lower order at the first and last steps, corrector after every step but the first.
 * Step k: correct x_k using m_k (UniC), then predict x_{k+1} from the corrected sample (UniP).
 * With s the previous sigma and t the current one, alpha = 1 - sigma, lambda = log(alpha/sigma),
 * h = lambda_t - lambda_s:  x_hat = (sigma_t/sigma_s) x_s - alpha_t expm1(-h) m_s, plus the
 * higher-order terms written out below (wan/utils/fm_solvers_unipc.py).
 *
 * Each update is linear in the sample and the data predictions, so it runs as one lincomb whose
 * coefficients are the formula's terms gathered per tensor (the differences D1 = (m_a - m_b) / r
 * expanded into +1/r and -1/r on m_a and m_b). The corrected x_k is written straight into x_last:
 * the predictor reads it there and so does the next corrector, and x only receives x_{k+1}. */
#include "sched_impl.h"

#include "../dit/error.h"

/* UniC: the corrected x_k over x_last (which holds x_{k-1}, the last predictor's input), from
 * m_k, m_{k-1}, m_{k-2}; order p in {1, 2}. */
static int correct(scheduler *s, int k, int p)
{
    const double st = s->sigma[k], ss = s->sigma[k - 1];
    const double h = sched_lambda(st) - sched_lambda(ss), hh = -h;
    const double phi1 = expm1(hh), B = phi1, at = 1.0 - st, ratio = st / ss;
    backend *be = s->be;
    /* base = ratio x_last - at phi1 m1, then the correction terms */
    if (p == 1) {
        /* base - at B 0.5 (m - m1) */
        const tensor *in[3] = {&s->x_last, &s->m_prev, &s->m_cur};
        const double c[3] = {ratio, -at * phi1 + at * B * 0.5, -at * B * 0.5};
        return be->ops->lincomb(be, 3, in, c, &s->x_last);
    }
    /* order 2: rho solves [[1, 1], [r, 1]] rho = [b1, b2] */
    const double r = (sched_lambda(s->sigma[k - 2]) - sched_lambda(ss)) / h;
    const double g1 = phi1 / hh - 1.0, b1 = g1 / B;
    const double g2 = g1 / hh - 0.5, b2 = 2.0 * g2 / B;
    const double rho0 = (b1 - b2) / (1.0 - r), rho1 = b1 - rho0;
    /* base - at B (rho0 d1 + rho1 (m - m1)), d1 = (m2 - m1) / r */
    const double e0 = at * B * rho0 / r, e1 = at * B * rho1;
    const tensor *in[4] = {&s->x_last, &s->m_prev, &s->m_cur, &s->m_prev2};
    const double c[4] = {ratio, -at * phi1 + e0 + e1, -e1, -e0};
    return be->ops->lincomb(be, 4, in, c, &s->x_last);
}

/* UniP: x becomes x_{k+1}, from the corrected x_k in x_last; order p in {1, 2}. */
static int predict(scheduler *s, int k, int p, tensor *x)
{
    backend *be = s->be;
    const double st = s->sigma[k + 1], ss = s->sigma[k];
    if (st == 0.0) {
        /* sigma 0: lambda = +inf, expm1(-inf) = -1, ratio 0: the sample is the prediction */
        return be->ops->copy(be, &s->m_cur, x);
    }
    const double h = sched_lambda(st) - sched_lambda(ss), hh = -h;
    const double phi1 = expm1(hh), B = phi1, at = 1.0 - st, ratio = st / ss;
    if (p == 1) {
        const tensor *in[2] = {&s->x_last, &s->m_cur};
        const double c[2] = {ratio, -at * phi1};
        return be->ops->lincomb(be, 2, in, c, x);
    }
    /* order 2 uses the fixed rho = 1/2 of the reference (no linear solve):
     * ratio x - at phi1 m - at B 0.5 d1, d1 = (m1 - m) / r */
    const double r = (sched_lambda(s->sigma[k - 1]) - sched_lambda(ss)) / h;
    const double e = at * B * 0.5 / r;
    const tensor *in[3] = {&s->x_last, &s->m_cur, &s->m_prev};
    const double c[3] = {ratio, -at * phi1 + e, -e};
    return be->ops->lincomb(be, 3, in, c, x);
}

int sched_unipc_step(scheduler *s, int k, tensor *x)
{
    if (k > 0)
        TRY(correct(s, k, s->order_prev));
    else /* nothing to correct: the first predictor starts from x_0 itself */
        TRY(s->be->ops->copy(s->be, x, &s->x_last));
    int p = s->steps - k < 2 ? s->steps - k : 2;
    if (p > s->lower_order_nums + 1)
        p = s->lower_order_nums + 1;
    s->order_prev = p;
    TRY(predict(s, k, p, x));
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
    return REEL_OK;
}
