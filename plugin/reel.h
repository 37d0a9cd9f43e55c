/* reel: a runtime for Wan2.1-class video diffusion transformers with pluggable sparse attention.
 * Public C API. Every call returns REEL_OK (0) or a negative reel_status; reel_last_error()
 * then names the file, key or value at fault. */
#ifndef REEL_H
#define REEL_H

#include "reel_attention.h"
#include "reel_status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define REEL_VERSION_MAJOR 0
#define REEL_VERSION_MINOR 1
#define REEL_VERSION_PATCH 0

const char *reel_version(void);

/* Optional parts of this build: each is 1 when compiled in and usable. */
typedef struct reel_features {
    int cuda;   /* CUDA backend compiled in (a device may still be absent) */
    int cudnn;  /* cuDNN attention available to the CUDA backend */
    int png;    /* PNG frame output through libpng */
    int ffmpeg; /* MP4/MKV/MOV output through FFmpeg */
    int stb;    /* image input through stb_image */
} reel_features;

reel_features reel_get_features(void);

/* ---- text to video ---------------------------------------------------------------------- */

typedef struct reel_model reel_model;

typedef struct reel_open_params {
    unsigned struct_size;      /* sizeof(reel_open_params): set by reel_open_params_default */
    const char *model_dir;     /* a folder in the original Wan, diffusers or ComfyUI layout */
    const char *dit;           /* each part may be given on its own (overrides the folder) */
    const char *text_encoder;
    const char *tokenizer;
    const char *vae;
    const char *backend;       /* "cuda", "cuda:N" or "cpu"; NULL: CUDA when present */
    const char *attn;          /* default self-attention plugin "name[:key=value,...]"; NULL dense */
    const char *attn_plugin;   /* a plugin library to load first (reel_attn_load), or NULL */
    int free_text_encoder;     /* 1 drop it after encoding, -1 keep it, 0 drop when memory is short */
} reel_open_params;

void reel_open_params_default(reel_open_params *p);
int reel_open(const reel_open_params *p, reel_model **out);
void reel_close(reel_model *m);

/* One decoded frame, valid during the callback only. */
typedef struct reel_frame {
    int index;          /* 0-based frame number */
    int width, height;
    const unsigned char *rgb; /* height rows of width * 3 bytes (8-bit RGB) */
    long long stride;   /* bytes between rows */
} reel_frame;

/* Return 0 to continue; anything else cancels the generation (reel_generate then returns
 * REEL_E_CANCELLED). */
typedef int (*reel_frame_fn)(void *user, const reel_frame *frame);
/* stage: "load", "encode", "denoise", "decode"; done of total steps or frames. */
typedef int (*reel_progress_fn)(void *user, const char *stage, int done, int total);

typedef struct reel_gen_params {
    unsigned struct_size;      /* sizeof(reel_gen_params): set by reel_gen_params_default */
    const char *prompt;
    const char *negative_prompt; /* NULL: Wan's default negative prompt */
    int width, height;         /* multiples of 16; default 832 x 480 */
    int frames;                /* 4k + 1; default 81 (5 s at 16 fps) */
    int steps;                 /* default 50 */
    float guidance;            /* classifier-free guidance scale, default 5 */
    float shift;               /* sigma shift, default 5 */
    long long seed;            /* -1: a random seed, reported in seed_used */
    const char *sampler;       /* "unipc" (default), "dpm++", "euler" */
    const char *attn;          /* NULL: the model's default plugin */
    reel_frame_fn on_frame;
    reel_progress_fn on_progress;
    void *user;
    long long seed_used;       /* out */
    int forwards_per_step;     /* out: DiT forwards per step, 1 when guidance's two passes ran
                                  batched (or there is no guidance), 2 when memory was short */
} reel_gen_params;

void reel_gen_params_default(reel_gen_params *p);
/* Frames reach on_frame in order as the VAE decodes them (the whole video is never held). */
int reel_generate(reel_model *m, reel_gen_params *p);
/* Peak device memory of the last generation and the device's total, in bytes (0 on the CPU). */
void reel_memory(const reel_model *m, unsigned long long *peak, unsigned long long *total);

#ifdef __cplusplus
}
#endif
#endif
