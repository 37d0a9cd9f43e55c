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

/* Inputs of one forward: latent [16, F, H, W] N(0,1), context [Lc, text_dim] N(0, 0.5^2), nt
 * timesteps uniform in [0, 1000). */
typedef struct wan_tiny_in {
    int F, H, W, Lc, nt;
    float t[8];
    float *latent, *context;
} wan_tiny_in;

void wan_tiny_inputs(wan_tiny_in *in, const wan_config *c, int F, int H, int W, int Lc, int nt);
void wan_tiny_inputs_free(wan_tiny_in *in);

/* Loads the model at path on be and runs one forward with the self-attention plugin attn (the
 * output and the activation arena poisoned with NaN first); out [out_dim, F, H, W] on the host. */
typedef struct backend backend;
int wan_tiny_run(const char *path, backend *be, const wan_tiny_in *in, float *out, const char *attn);
/* As wan_tiny_run with in's latent and timesteps but n text contexts (contexts[i] of lc[i] rows,
 * in->context unused) in one batched forward; out [n, out_dim, F, H, W]. n = 1 passes the output
 * in the single-prediction form [out_dim, F, H, W]. */
int wan_tiny_run_batch(const char *path, backend *be, const wan_tiny_in *in, int n,
                       const float *const *contexts, const int *lc, float *out, const char *attn);

/* Runs the n contexts batched and then each alone (wan_tiny_run_batch, wan_tiny_run) and says
 * how far apart they are. c: the model's configuration (for the output size). */
typedef struct wan_tiny_batch_diff {
    double worst;  /* largest rel L2 of a batched prediction from its single forward */
    double apart;  /* smallest rel L2 between batched prediction 0 and another: how much the
                      context changes the output, i.e. what a context mix-up would show */
    int bit_equal; /* every batched prediction equals its single forward bit for bit */
} wan_tiny_batch_diff;
int wan_tiny_batch_check(const char *path, backend *be, const wan_config *c, const wan_tiny_in *in,
                         int n, const float *const *contexts, const int *lc, const char *attn,
                         wan_tiny_batch_diff *d);

#endif
