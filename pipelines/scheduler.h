/* Flow-matching samplers of the Wan reference (wan/utils/fm_solvers_unipc.py, fm_solvers.py):
 * UniPC (bh2, order 2, predictor-corrector, Wan's default), DPM-Solver++ (2M, midpoint) and
 * Euler, on the shifted sigma schedule. Spec: shared/specs/wan_dit_detail.md §4.
 *
 * The network predicts the velocity v = noise - x0 at sigma; every sampler works on the data
 * prediction m = x - sigma * v. The timestep the network sees is int(1000 * sigma) (truncated,
 * as the reference's int64 cast) while the solver uses the exact sigma.
 *
 * Latents are f32 tensors on a backend's device, and so is the sampler's history (the last data
 * predictions, UniPC's last predictor input): a step queues work on that backend and copies
 * nothing to the host. Scalar coefficients are computed on the host in double from the fp32
 * sigmas the reference keeps; each per-element update is one backend lincomb over the tensors
 * it combines, accumulated in double and rounded to f32 once, identically on every backend.
 *
 * Classifier-free guidance is folded into the step: v = u + g (c - u) = g c + (1 - g) u, and
 * m = x - sigma g c - sigma (1 - g) u is one lincomb. The reference forms v in fp32 first,
 * rounding c - u, g (c - u) and the sum, then m = x - sigma v with two more fp32 roundings;
 * here m is rounded once, so it may differ from the reference's by a few fp32 ulps of
 * sigma g |c - u| and of |x| (rounding noise, not a bias). */
#ifndef REEL_SCHEDULER_H
#define REEL_SCHEDULER_H

#include "../dit/backend.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum sched_kind { SCHED_UNIPC, SCHED_DPMPP, SCHED_EULER };

typedef struct scheduler scheduler;

/* name: "unipc", "dpm++" or "euler" (REEL_E_INVALID naming the choices otherwise). */
int sched_kind_from_name(const char *name, enum sched_kind *out);
const char *sched_kind_name(enum sched_kind k);

/* steps >= 1, shift > 0; n = number of latent values the steps will update. The history lives
 * on be (which must outlive the sampler). */
int sched_create(enum sched_kind kind, int steps, double shift, backend *be, int64_t n,
                 scheduler **out);
void sched_free(scheduler *s);

int sched_steps(const scheduler *s);
/* sigma_k for k = 0..steps (sigma_steps = 0). */
double sched_sigma(const scheduler *s, int k);
/* The timestep value given to the network at step k. */
float sched_timestep(const scheduler *s, int k);

/* One step (k = 0, 1, ... in order): cond is the velocity the network predicted at x for step k
 * with the prompt, uncond the one with the negative prompt, or NULL for no guidance (guidance is
 * then ignored); the step uses v = uncond + guidance (cond - uncond). x is replaced by the
 * sample for step k + 1 (after the last step: the clean latent). All three are contiguous f32
 * views of n values on the sampler's backend, of any shape: cond and uncond may be two slices
 * of one batched [2, C, F, H, W] prediction. Work is queued on the backend's stream. */
int sched_step(scheduler *s, int k, const tensor *cond, const tensor *uncond, double guidance,
               tensor *x);

/* The shifted sigma schedules, exposed for tests: UniPC/Euler start at the training grid's
 * sigma_max = fp32(0.999), DPM++ at exactly 1. out has steps + 1 entries (last 0), each rounded
 * to fp32 as the reference stores them; t_out (may be NULL) gets the network timesteps. */
void sched_sigmas_unipc(int steps, double shift, double *out, float *t_out);
void sched_sigmas_dpmpp(int steps, double shift, double *out, float *t_out);

#ifdef __cplusplus
}
#endif
#endif
