/* Inside the Wan VAE: the network as a list of layers read from the checkpoint (vae_load.c),
 * the chunked forward pass that walks it (vae_forward.c), and the executor interface that the
 * CPU reference (vae_cpu.c) and the CUDA code (vae_cuda.cu) implement.
 *
 * The forward pass owns the order of operations and the frame caches; an executor only knows
 * how to run one convolution, norm, attention or resampling step on its device, in its layout
 * (CPU: f32 [c][t][h][w]; CUDA: bf16 [t][h][w][c] with c padded to a multiple of 8). */
#ifndef REEL_VAE_INTERNAL_H
#define REEL_VAE_INTERNAL_H

#include "vae_wan.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VAE_Z 16         /* latent channels the published mean/std constants are for */
#define VAE_MAX_LAYERS 64

/* One convolution of the network. Temporal padding is causal and comes from the frame cache:
 * the kernel runs over [cache_frames earlier input frames, this chunk's frames], and after the
 * run the cache keeps the last cache_frames frames of that sequence. A fresh cache is zeros,
 * which is what the reference's front padding supplies on the first chunk. */
typedef struct vae_conv {
    char name[96]; /* key prefix in the original layout, for messages */
    int cin, cout, kt, kh, kw;
    int st, sh, sw;
    int pad_top, pad_bottom, pad_left, pad_right;
    int cache_frames;
    float *w;  /* host f32 [cout][cin][kt][kh][kw]; NULL on CUDA once uploaded */
    float *b;  /* host f32 [cout] */
    void *dev; /* the executor's copy (device weights, chosen algorithms) */
} vae_conv;

/* RMS_norm: x / max(||x||_2 over channels, 1e-12) * sqrt(c) * gamma. */
typedef struct vae_norm {
    int c;
    float *g;  /* host f32 [c] */
    void *dev; /* device f32 [c_padded] */
} vae_norm;

enum vae_kind {
    VK_CONV,   /* c[0] */
    VK_HEAD,   /* n1, SiLU, c[0] */
    VK_RES,    /* n1, SiLU, c[0], n2, SiLU, c[1], + x or c[2](x) (shortcut) */
    VK_ATTN,   /* per frame: n1 (images=True), c[0] = to_qkv, single-head attention, c[1] = proj, + x */
    VK_UP2D,   /* nearest 2x, c[0] (3x3, channels halve) */
    VK_UP3D,   /* c[1] time_conv (c -> 2c, two frames per frame) except on frame 0, then as UP2D */
    VK_DOWN2D, /* c[0] (3x3 stride 2, zero pad right and bottom) */
    VK_DOWN3D  /* as DOWN2D, then c[1] time_conv (stride 2 over [last frame, chunk]) except on frame 0 */
};

typedef struct vae_layer {
    enum vae_kind kind;
    char name[96];
    int cin, cout;
    vae_norm n1, n2;
    vae_conv c[3];
    int nconv;
} vae_layer;

typedef struct vae_net {
    vae_layer l[VAE_MAX_LAYERS];
    int n;
} vae_net;

/* A chunk's activation on the executor's device, in the executor's layout. */
typedef struct vae_act {
    void *data;
    int c, t, h, w;
} vae_act;

typedef struct vae_exec vae_exec;

struct vae_exec_ops {
    /* Takes the host weights of v (each conv's w/b, each norm's g) to the device. */
    int (*prepare)(vae_exec *ex, wan_vae *v);
    void (*destroy)(vae_exec *ex);

    int (*alloc)(vae_exec *ex, int c, int t, int h, int w, vae_act *a);
    void (*release)(vae_exec *ex, vae_act *a);
    int (*zero)(vae_exec *ex, vae_act *a);

    /* host f32 [a->c][a->t][a->h][a->w] -> a */
    int (*upload)(vae_exec *ex, const float *host, vae_act *a);
    /* a -> host staging slot (0 or 1) as f32 [c][t][h][w], clamped to [-1, 1] when clamp; may
     * run asynchronously: fetch waits for the slot and returns its host pointer. */
    int (*download)(vae_exec *ex, const vae_act *a, int slot, int clamp);
    int (*fetch)(vae_exec *ex, int slot, const float **host);

    /* out = conv(cat(cache, pre(x))) + bias [+ residual]; pre = RMS norm with gain pre->g then
     * SiLU when pre is not NULL. cache (NULL when L->cache_frames == 0) is updated. out is
     * allocated by the caller with the shape vae_conv_out gives. */
    int (*conv)(vae_exec *ex, const vae_conv *L, vae_act *cache, const vae_act *x,
                const vae_norm *pre, const vae_act *residual, vae_act *out);
    /* out = x + proj(attention(norm(x))) frame by frame (VK_ATTN). */
    int (*attention)(vae_exec *ex, const vae_layer *L, const vae_act *x, vae_act *out);
    /* Nearest 2x in h and w. interleave: x has 2c channels per frame, channels [0, c) become
     * frame 2i and [c, 2c) frame 2i+1 (the reshape after Resample's time_conv). */
    int (*upsample)(vae_exec *ex, const vae_act *x, int interleave, vae_act *out);
    /* cache = the last cache->t frames of x. */
    int (*keep_last)(vae_exec *ex, const vae_act *x, vae_act *cache);

    /* Device bytes: high-water mark since the last reset, and weights. */
    void (*memory)(vae_exec *ex, size_t *peak, size_t *weights);
    void (*reset_peak)(vae_exec *ex);
};

struct vae_exec {
    const struct vae_exec_ops *ops;
    backend *be;
    void *impl;
};

int vae_exec_cpu_create(backend *be, vae_exec **out);
/* REEL_E_UNSUPPORTED when reel was built without CUDA. */
int vae_exec_cuda_create(backend *be, vae_exec **out);

struct wan_vae {
    backend *be;
    vae_exec *ex;
    int dim, z;
    int has_encoder;
    vae_net enc, dec;
    vae_conv quant;      /* "conv1": 2z -> 2z, 1x1x1, after the encoder */
    vae_conv post_quant; /* "conv2": z -> z, 1x1x1, before the decoder */
    int time_down;       /* video frames per latent frame after the first (4) */
    int space_down;      /* pixels per latent pixel (8) */
    float mean[VAE_Z], std[VAE_Z];
    char desc[256];
};

/* Output frames and size of L on t_in frames (cache included) of h x w. */
static inline void vae_conv_out(const vae_conv *L, int t_in, int h, int w, int *to, int *ho,
                                int *wo)
{
    *to = (t_in - L->kt) / L->st + 1;
    *ho = (h + L->pad_top + L->pad_bottom - L->kh) / L->sh + 1;
    *wo = (w + L->pad_left + L->pad_right - L->kw) / L->sw + 1;
}

/* Builds v's layers and reads their weights from the file (vae_load.c). */
int vae_load_weights(const char *path, wan_vae *v);
void vae_net_free_host(wan_vae *v);

/* out = L(cat(cache, pre(x))) + bias [+ res]: allocates out (and a zero cache on first use). */
int vae_run_conv(vae_exec *ex, const vae_conv *L, vae_act *cache, const vae_act *x,
                 const vae_norm *pre, const vae_act *res, vae_act *out);

/* Runs one chunk through a network (vae_forward.c); state persists across chunks. */
typedef struct vae_stream vae_stream;
int vae_stream_create(const vae_net *net, vae_stream **out);
void vae_stream_free(vae_exec *ex, vae_stream *s);
int vae_stream_run(vae_exec *ex, const vae_net *net, vae_stream *s, vae_act *x);

#ifdef __cplusplus
}
#endif
#endif
