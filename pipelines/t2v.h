/* Text to video (wan/text2video.py): prompt -> umT5 context (and the negative prompt's), seeded
 * noise -> the sampler loop with classifier-free guidance over the DiT -> Wan VAE decode, frames
 * streamed to the caller chunk by chunk as they are decoded. */
#ifndef REEL_T2V_H
#define REEL_T2V_H

#include "model_set.h"
#include "scheduler.h"

#include "../dit/tensor.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Wan's default negative prompt (wan/configs/shared_config.py sample_neg_prompt). */
extern const char t2v_default_negative[];

typedef struct t2v_pipeline t2v_pipeline;

typedef struct t2v_progress {
    const char *stage; /* "load", "encode", "denoise", "decode" */
    int step, total;   /* steps (denoise) or frames (decode) done so far, of total */
} t2v_progress;

typedef struct t2v_params {
    const char *prompt;
    const char *negative;   /* NULL: Wan's default negative prompt; "" an empty one */
    int width, height;      /* multiples of 16 */
    int frames;             /* 4k + 1 */
    int steps;
    float guidance;         /* classifier-free guidance scale; 1 runs the conditional pass only */
    float shift;
    uint64_t seed;
    enum sched_kind sampler;
    const char *attn;       /* self-attention plugin spec; NULL: the pipeline's default */
    /* frames [3, n, H, W] f32 in [-1, 1] on the host, first = index of the first frame */
    int (*on_frames)(void *user, const tensor *frames, int first);
    /* nonzero return cancels (REEL_E_CANCELLED) */
    int (*on_progress)(void *user, const t2v_progress *p);
    void *user;
} t2v_params;

void t2v_params_default(t2v_params *p); /* 832x480, 81 frames, 50 steps, cfg 5, shift 5, unipc */

typedef struct t2v_options {
    const char *backend;      /* "cuda", "cpu", "cuda:N", NULL: CUDA when present */
    const char *attn;         /* default self-attention plugin spec ("dense") */
    int free_text_encoder;    /* 1: drop the encoder after encoding, -1: keep, 0: when memory is short */
} t2v_options;

int t2v_open(const model_set *models, const t2v_options *opt, t2v_pipeline **out);
void t2v_close(t2v_pipeline *p);
int t2v_generate(t2v_pipeline *p, const t2v_params *par);

/* Checks sizes before any work: multiples of 16, 4k+1 frames, steps and scales in range. */
int t2v_check_params(const t2v_params *par);

/* Peak device memory of the last generation and the device total, in bytes (0 on the CPU). */
void t2v_memory(const t2v_pipeline *p, size_t *peak, size_t *total);
/* DiT forwards per denoising step of the last generation: 1 when there is no guidance or its two
 * passes ran batched, 2 when memory was too short to batch them; 0 before any denoising. */
int t2v_forwards_per_step(const t2v_pipeline *p);
const char *t2v_backend_name(const t2v_pipeline *p);

/* Standard normal noise from a seed: the same values on every machine. */
void t2v_noise(uint64_t seed, float *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif
