/* The Wan2.1 text-to-video diffusion transformer (1.3B, 14B and any width/depth a checkpoint
 * declares) on any backend. Spec: shared/specs/wan_dit.md; the official wan/modules/model.py is
 * the final word.
 *
 * Precision follows the reference's autocast map: the residual stream, norms, modulation, the
 * time MLP and the output head in fp32; the patch embedding, text embedding, attention and the
 * block linears in the backend's compute dtype (bf16 on CUDA, f32 on the CPU). */
#ifndef REEL_WAN_DIT_H
#define REEL_WAN_DIT_H

#include "arena.h"
#include "backend.h"
#include "wan_config.h"

#include "../plugin/reel_attention.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_instance attn_instance;

typedef struct wan_block_weights {
    tensor modulation;          /* [6, D] f32 */
    tensor qkv_w, qkv_b;        /* [3D, D] (q, k, v rows fused), [3D] */
    tensor o_w, o_b;            /* [D, D], [D] */
    tensor norm_q, norm_k;      /* [D] f32 RMSNorm gains */
    tensor norm3_w, norm3_b;    /* [D] f32, LayerNorm before cross-attention */
    tensor cq_w, cq_b;          /* cross-attention q [D, D] */
    tensor ckv_w, ckv_b;        /* cross-attention k, v fused [2D, D] */
    tensor co_w, co_b;
    tensor cnorm_q, cnorm_k;    /* [D] f32 */
    tensor ffn1_w, ffn1_b;      /* [F, D], [F] */
    tensor ffn2_w, ffn2_b;      /* [D, F], [D] */
} wan_block_weights;

typedef struct wan_dit {
    wan_config cfg;
    backend *be;
    enum dtype wdt;             /* dtype of the large matrices on this backend */
    tensor patch_w, patch_b;    /* [D, C, pt, ph, pw], [D] */
    tensor text1_w, text1_b;    /* [D, text_dim] */
    tensor text2_w, text2_b;    /* [D, D] */
    tensor time1_w, time1_b;    /* [D, freq_dim] f32 */
    tensor time2_w, time2_b;    /* [D, D] f32 */
    tensor proj_w, proj_b;      /* [6D, D] f32 */
    tensor head_w, head_b;      /* [out*pt*ph*pw, D] f32 */
    tensor head_mod;            /* [2, D] f32 */
    wan_block_weights *blocks;
    void *weight_mem;           /* one allocation holding every tensor above */
    size_t weight_bytes;
} wan_dit;

/* Text context prepared once per prompt: every block's cross-attention K and V (they depend on
 * the prompt only, so all denoising steps share them). The reference pads the context with zero
 * rows to text_len and attends to all of them; the padded rows embed to one and the same row,
 * so K and V keep the prompt's rows and one padding row that counts for all the padding
 * (attention weights it by last_copies): the same softmax over 512 rows, at the prompt's cost. */
typedef struct wan_context {
    tensor ckv;                 /* [layers, rows, 2D] compute dtype: K (RMS-normed) | V */
    int64_t rows;               /* prompt rows (trailing zero rows dropped) + 1 padding row,
                                   or text_len when nothing is padded */
    int64_t last_copies;        /* padding rows the last row stands for; 1 when none */
    void *mem;
} wan_context;

/* Where forward time went, filled when a profile is passed (CUDA: events around each phase). */
typedef struct wan_profile {
    double gemm_ms, self_attn_ms, cross_attn_ms, other_ms, total_ms;
} wan_profile;

/* One forward predicts the velocity of one latent at one timestep under n_contexts text
 * contexts (classifier-free guidance passes the prompt's and the negative prompt's: n = 2).
 * The time and patch embeddings are computed once and the tokens repeated, so every GEMM, norm
 * and modulation runs once over n x tokens rows; attention runs per context (each element
 * attends over its own tokens, and cross-attends to its own context). Prediction i equals what
 * a forward with contexts[i] alone gives, up to the GEMMs' summation order on CUDA (bit-equal
 * on the CPU). The self-attention plugin is called n times per layer, in context order. */
typedef struct wan_forward_args {
    const tensor *latent;      /* [C, F, H, W] f32 on the backend's device */
    const float *timesteps;    /* n_timesteps values: 1 (whole video) or F (one per frame) */
    int n_timesteps;
    const wan_context *const *contexts; /* n_contexts prepared contexts, one per prediction */
    int n_contexts;            /* >= 1 */
    attn_instance *self_attn;  /* plugin instance created for this grid */
    attn_instance *cross_attn; /* dense instance */
    int step;                  /* denoising step index, passed to the plugin */
    tensor *out;               /* [n_contexts, C_out, F, H, W] f32 on the device: the flow
                                  velocity under each context; [C_out, F, H, W] also accepted
                                  when n_contexts is 1 */
    wan_profile *profile;      /* NULL: no timing */
} wan_forward_args;

/* path: checkpoint file or folder in the original, diffusers or ComfyUI layout. */
int wan_dit_load(const char *path, backend *be, wan_dit **out);
/* Builds a model of the given configuration with random weights directly on the backend (no
 * file): benchmarks at real shapes without real checkpoints. */
int wan_dit_create_random(const wan_config *cfg, backend *be, uint64_t seed, wan_dit **out);
void wan_dit_free(wan_dit *m);

/* context: [Lc, text_dim] f32 host tensor with Lc <= text_len rows; padded with zero rows. */
int wan_context_prepare(wan_dit *m, const tensor *context, arena *scratch, wan_context *out);
void wan_context_free(wan_dit *m, wan_context *c);

/* Activation bytes one forward with n_contexts contexts needs for a latent of F x H x W (for
 * sizing the arena; the latent and the output are the caller's). */
size_t wan_dit_scratch_bytes(const wan_dit *m, int F, int H, int W, int n_contexts);

int wan_dit_forward(wan_dit *m, const wan_forward_args *args, arena *scratch);

/* Attention configuration for this model and latent size (for creating plugin instances). */
reel_attn_config wan_dit_attn_config(const wan_dit *m, int F, int H, int W, int num_steps);

#ifdef __cplusplus
}
#endif
#endif
