/* UniPC for flow matching, as configured by Wan: data prediction, order 2, B(h) = expm1(-h)
 * ("bh2"), lower order at the first and last steps, corrector after every step but the first.
 * Step k: correct x_k using m_k (UniC), then predict x_{k+1} from the corrected sample (UniP).
 * With s the previous sigma and t the current one, alpha = 1 - sigma, lambda = log(alpha/sigma),
 * h = lambda_t - lambda_s:  x_hat = (sigma_t/sigma_s) x_s - alpha_t expm1(-h) m_s, plus the
 * higher-order terms written out below (wan/utils/fm_solvers_unipc.py). */
#include "sched_impl.h"

#include <string.h>

/* UniC: replaces x (= x_k) by the corrected sample, order p in {1, 2}. */
static void correct(scheduler *s, int k, int p, float *x)
{
    const double st = s->sigma[k], ss = s->sigma[k - 1];
    const double h = sched_lambda(st) - sched_lambda(ss), hh = -h;
    const double phi1 = expm1(hh), B = phi1, at = 1.0 - st, ratio = st / ss;
    const float *m = s->m_cur, *m1 = s->m_prev, *m2 = s->m_prev2;
    const float *xl = s->x_last;
    if (p == 1) {
        for (size_t i = 0; i < s->n; i++) {
            double base = ratio * xl[i] - at * phi1 * m1[i];
            x[i] = (float)(base - at * B * 0.5 * ((double)m[i] - m1[i]));
        }
        return;
    }
    /* order 2: rho solves [[1, 1], [r, 1]] rho = [b1, b2] */
    const double r = (sched_lambda(s->sigma[k - 2]) - sched_lambda(ss)) / h;
    const double g1 = phi1 / hh - 1.0, b1 = g1 / B;
    const double g2 = g1 / hh - 0.5, b2 = 2.0 * g2 / B;
    const double rho0 = (b1 - b2) / (1.0 - r), rho1 = b1 - rho0;
    for (size_t i = 0; i < s->n; i++) {
        double base = ratio * xl[i] - at * phi1 * m1[i];
        double d1 = ((double)m2[i] - m1[i]) / r;
        x[i] = (float)(base - at * B * (rho0 * d1 + rho1 * ((double)m[i] - m1[i])));
    }
}

/* UniP: x (= corrected x_k) becomes x_{k+1}, order p in {1, 2}. */
static void predict(scheduler *s, int k, int p, float *x)
{
    const float *m = s->m_cur, *m1 = s->m_prev;
    const double st = s->sigma[k + 1], ss = s->sigma[k];
    if (st == 0.0) {
        /* sigma 0: lambda = +inf, expm1(-inf) = -1, ratio 0: the sample is the prediction */
        memcpy(x, m, s->n * sizeof *x);
        return;
    }
    const double h = sched_lambda(st) - sched_lambda(ss), hh = -h;
    const double phi1 = expm1(hh), B = phi1, at = 1.0 - st, ratio = st / ss;
    if (p == 1) {
        for (size_t i = 0; i < s->n; i++)
            x[i] = (float)(ratio * x[i] - at * phi1 * m[i]);
        return;
    }
    /* order 2 uses the fixed rho = 1/2 of the reference (no linear solve) */
    const double r = (sched_lambda(s->sigma[k - 1]) - sched_lambda(ss)) / h;
    for (size_t i = 0; i < s->n; i++) {
        double d1 = ((double)m1[i] - m[i]) / r;
        x[i] = (float)(ratio * x[i] - at * phi1 * m[i] - at * B * 0.5 * d1);
    }
}

void sched_unipc_step(scheduler *s, int k, float *x)
{
    if (k > 0)
        correct(s, k, s->order_prev, x);
    int p = s->steps - k < 2 ? s->steps - k : 2;
    if (p > s->lower_order_nums + 1)
        p = s->lower_order_nums + 1;
    s->order_prev = p;
    memcpy(s->x_last, x, s->n * sizeof *x);
    predict(s, k, p, x);
    if (s->lower_order_nums < 2)
        s->lower_order_nums++;
}
