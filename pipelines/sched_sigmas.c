#include "scheduler.h"

/* sigma' = shift * sigma / (1 + (shift - 1) * sigma), the "sample_shift" of Wan */
static double shifted(double s, double shift) { return shift * s / (1.0 + (shift - 1.0) * s); }

/* linspace(hi, lo, steps + 1)[:steps] shifted, then a final zero; sigmas rounded to fp32 (the
 * reference casts its schedule to float32), timesteps truncated from the unrounded values. */
static void schedule(int steps, double shift, double hi, double *out, float *t_out)
{
    double step = (0.0 - hi) / (double)steps; /* numpy.linspace: start + k * step */
    for (int k = 0; k < steps; k++) {
        double lin = (double)k * step + hi;
        double s = shifted(lin, shift);
        out[k] = (double)(float)s;
        if (t_out)
            t_out[k] = (float)(long long)(s * 1000.0);
    }
    out[steps] = 0.0;
    if (t_out)
        t_out[steps] = 0.0f;
}

void sched_sigmas_unipc(int steps, double shift, double *out, float *t_out)
{
    /* the training grid 1 - linspace(1, 1/1000, 1000) reversed, stored in fp32: its first
     * entry 0.999 becomes 0.99900001287... and is the schedule's start */
    schedule(steps, shift, (double)(float)0.999, out, t_out);
}

void sched_sigmas_dpmpp(int steps, double shift, double *out, float *t_out)
{
    schedule(steps, shift, 1.0, out, t_out);
}
