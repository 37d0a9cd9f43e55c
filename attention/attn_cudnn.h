/* cuDNN's fused flash attention (the cuDNN 9 graph API's SDPA operation), driven from C:
 * attn_sdpa_cudnn.cu. One execution plan per shape and layout, built on first use and kept.
 * Only in builds with cuDNN (REEL_HAVE_CUDNN). */
#ifndef REEL_ATTN_CUDNN_H
#define REEL_ATTN_CUDNN_H

#include "attn_flash.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_cudnn attn_cudnn;

/* For the current CUDA device. */
int attn_cudnn_create(attn_cudnn **out);
/* Dense attention with the same arguments as attn_flash_forward (row_start/cols must be NULL).
 * REEL_E_UNSUPPORTED when cuDNN has no engine for the shape. */
int attn_cudnn_forward(attn_cudnn *c, const attn_flash_args *a);
void attn_cudnn_free(attn_cudnn *c);

#ifdef __cplusplus
}
#endif
#endif
