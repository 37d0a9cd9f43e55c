/* Synthetic Wan2.1 VAE checkpoints: the published structure (dim_mult [1,2,4,4], 2 residual
 * blocks per stage, temporal down/upsampling in the last two stages, z 16) at any base width,
 * with seeded random weights, written in the original layout (Wan2.1_VAE.pth key names) as
 * safetensors. `reel bench vae` times the real widths (dim 96) on them and the GPU tests
 * compare devices on small ones; no download is needed. */
#ifndef REEL_VAE_SYNTH_H
#define REEL_VAE_SYNTH_H

#include "dit/tensor.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vae_synth_opts {
    int dim;         /* base width: 96 in Wan2.1 */
    int z;           /* latent channels: 16 */
    enum dtype dtype; /* DT_F32 or DT_BF16 */
    uint64_t seed;
    float head_gain; /* scale of the decoder's last convolution (small keeps the video in range) */
} vae_synth_opts;

/* dim 96, z 16, bf16, seed 1, head gain 0.1 */
vae_synth_opts vae_synth_default(void);

/* Writes the checkpoint (overwriting path). */
int vae_synth_write(const char *path, const vae_synth_opts *o);

/* Multiply-adds of one decode of T latent frames of h x w with the synthetic structure, for
 * throughput figures. */
double vae_synth_decode_macs(int dim, int z, int T, int h, int w);

#ifdef __cplusplus
}
#endif
#endif
