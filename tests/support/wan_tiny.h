/* Tiny random-weight Wan DiT models for tests: generated in memory under the original
 * (canonical) tensor names, written to disk in any published layout, and run through an
 * independent double-precision reference forward written from the spec (not from reel's ops). */
#ifndef REEL_TEST_WAN_TINY_H
#define REEL_TEST_WAN_TINY_H

#include "dit/model_detect.h"
#include "dit/wan_config.h"

#include <stdint.h>

typedef struct wan_tiny_tensor {
    char name[96]; /* canonical (original Wan) name */
    int ndim;
    int64_t shape[5];
    float *data;   /* values already rounded to bf16 so every dtype stores them exactly */
} wan_tiny_tensor;

typedef struct wan_tiny {
    wan_config cfg;
    int n;
    wan_tiny_tensor *t;
} wan_tiny;

/* A small config: dim 256 (2 heads of 128), 2 layers, ffn 384, text_dim 64. */
void wan_tiny_config(wan_config *c);
int wan_tiny_make(const wan_config *cfg, uint64_t seed, wan_tiny *out);
void wan_tiny_free(wan_tiny *m);
const float *wan_tiny_get(const wan_tiny *m, const char *canonical);

/* Writes the model:
 *   LAYOUT_WAN_ORIGINAL: dir/diffusion_pytorch_model.safetensors + dir/config.json
 *                        (shards > 1: sharded files + index)
 *   LAYOUT_DIFFUSERS:    dir/transformer/diffusion_pytorch_model*.safetensors + config.json
 *   LAYOUT_COMFYUI:      dir/wan_tiny.safetensors, keys under "model.diffusion_model."
 *   LAYOUT_SELF_FORCING: dir/self_forcing.pt, a torch zip {generator_ema: {model.<key>: ...}}
 * dt is the stored dtype (f32, bf16 or f16). path_out (may be NULL) receives what to load. */
int wan_tiny_write(const wan_tiny *m, enum model_layout layout, enum dtype dt, int shards,
                   const char *dir, char *path_out, size_t path_n);

/* Reference forward in double: latent [C, F, H, W], nt timesteps (1 or one per latent frame),
 * context [Lc, text_dim]; out [out_dim, F, H, W]. */
void wan_ref_forward(const wan_tiny *m, const float *latent, int F, int H, int W, const float *t,
                     int nt, const float *context, int Lc, double *out);

#endif
