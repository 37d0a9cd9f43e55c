/* Flow-matching samplers of the Wan reference (wan/utils/fm_solvers_unipc.py, fm_solvers.py):
 * UniPC (bh2, order 2, predictor-corrector, Wan's default), DPM-Solver++ (2M, midpoint) and
 * Euler, on the shifted sigma schedule. Spec: shared/specs/wan_dit_detail.md §4.
 *
 * The network predicts the velocity v = noise - x0 at sigma; every sampler works on the data
 * prediction m = x - sigma * v. The timestep the network sees is int(1000 * sigma) (truncated,
 * as the reference's int64 cast) while the solver uses the exact sigma. Latents are fp32 host
 * arrays; scalar coefficients are computed in double from the fp32 sigmas the reference keeps. */
#ifndef REEL_SCHEDULER_H
#define REEL_SCHEDULER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sched_kind { SCHED_UNIPC, SCHED_DPMPP, SCHED_EULER };

typedef struct scheduler scheduler;

/* name: "unipc", "dpm++" or "euler" (REEL_E_INVALID naming the choices otherwise). */
int sched_kind_from_name(const char *name, enum sched_kind *out);
const char *sched_kind_name(enum sched_kind k);

/* steps >= 1, shift > 0; n = number of latent values the steps will update. */
int sched_create(enum sched_kind kind, int steps, double shift, size_t n, scheduler **out);
void sched_free(scheduler *s);

int sched_steps(const scheduler *s);
/* sigma_k for k = 0..steps (sigma_steps = 0). */
double sched_sigma(const scheduler *s, int k);
/* The timestep value given to the network at step k. */
float sched_timestep(const scheduler *s, int k);

/* One step: v is the (guided) velocity predicted at x for step k (k = 0, 1, ... in order);
 * x is replaced by the sample for step k + 1 (after the last step: the clean latent). */
int sched_step(scheduler *s, int k, const float *v, float *x);

/* The shifted sigma schedules, exposed for tests: UniPC/Euler start at the training grid's
 * sigma_max = fp32(0.999), DPM++ at exactly 1. out has steps + 1 entries (last 0), each rounded
 * to fp32 as the reference stores them; t_out (may be NULL) gets the network timesteps. */
void sched_sigmas_unipc(int steps, double shift, double *out, float *t_out);
void sched_sigmas_dpmpp(int steps, double shift, double *out, float *t_out);

#ifdef __cplusplus
}
#endif
#endif
