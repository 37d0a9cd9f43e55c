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

#ifdef __cplusplus
}
#endif
#endif
