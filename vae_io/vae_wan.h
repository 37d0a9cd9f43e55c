/* The Wan2.1 video VAE (Wan-Video/Wan2.1 wan/modules/vae.py): a causal 3D convolutional
 * autoencoder that maps video [3, 1+4k, 8h, 8w] in [-1, 1] to latents [16, 1+k, h, w] and back.
 *
 * Time is causal: every 3D convolution sees only the current and earlier frames, so a video is
 * decoded chunk by chunk (latent frame 0 alone, then one latent frame = four video frames at a
 * time) with each convolution keeping the last two frames of its input between chunks. Chunked
 * decoding equals decoding everything at once; decode streams each chunk to a callback.
 *
 * Latents are in the normalised space the DiT works in: decode applies z * std + mean with the
 * 16 published per-channel constants first, encode returns (mu - mean) / std.
 *
 * Weights load from the original Wan2.1_VAE.pth (PyTorch zip), the diffusers vae/ folder
 * (AutoencoderKLWan safetensors) or ComfyUI's wan_2.1_vae.safetensors (original names). Channel
 * widths come from the weight shapes. On CUDA, activations are bf16 with fp32 math inside each
 * kernel; on the CPU everything is fp32 (the reference). */
#ifndef REEL_VAE_WAN_H
#define REEL_VAE_WAN_H

#include "dit/backend.h"
#include "dit/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wan_vae wan_vae;

/* path: Wan2.1_VAE.pth, a .safetensors file (ComfyUI or diffusers) or a diffusers vae/ folder.
 * Weights are kept on be's device. REEL_E_UNSUPPORTED for a VAE of another latent width. */
int wan_vae_load(const char *path, backend *be, wan_vae **out);
void wan_vae_free(wan_vae *v);

/* Frames of one decoded chunk: [3, n, H, W] f32 on the host, valid during the call. A nonzero
 * return stops decoding and is returned by wan_vae_decode. */
typedef int (*vae_frames_cb)(void *user, const float *frames, int n);

/* Spatial tiling, in latent pixels: tiles of tile_h x tile_w latents overlapping by
 * tile_overlap, decoded one after another and blended linearly across the overlap, so the
 * device memory depends on the tile size, not the frame size. All zero: no tiling. With tiling,
 * the callback runs after the last tile (still in chunks of 1 then 4 frames). */
typedef struct vae_decode_opts {
    int tile_h, tile_w, tile_overlap;
} vae_decode_opts;

/* latents [16, T, h, w] (normalised space, f32 host) -> video [3, 1+4(T-1), 8h, 8w] in [-1, 1].
 * cb (may be NULL) gets each decoded chunk (1 frame first, then 4 per latent frame);
 * video_out (may be NULL when streaming only) must be a contiguous f32 host tensor of that
 * shape. o may be NULL (no tiling). */
int wan_vae_decode(wan_vae *v, const tensor *latents, const vae_decode_opts *o, vae_frames_cb cb,
                   void *user, tensor *video_out);

/* video [3, 1+4k, H, W] f32 host in [-1, 1], H and W multiples of 8 -> latents_out
 * [16, 1+k, H/8, W/8] f32 host: the mean of the posterior, normalised. */
int wan_vae_encode(wan_vae *v, const tensor *video, tensor *latents_out);

/* One line: "Wan VAE (diffusers layout), dim 96, z 16, dim_mult [1,2,4,4], 2 res blocks". */
const char *wan_vae_describe(const wan_vae *v);

/* Device memory high-water mark of the last decode/encode (activations, caches, workspaces)
 * and of the weights, in bytes; 0 on the CPU. */
void wan_vae_memory(const wan_vae *v, size_t *activations_peak, size_t *weights);

#ifdef __cplusplus
}
#endif
#endif
