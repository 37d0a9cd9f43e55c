/* Dense attention on CUDA through reel's flash kernel or cuDNN SDPA. auto is a fixed rule, not
 * a timing race (a race can pick differently from run to run, and the two differ in their last
 * bits, so the same seed would not give the same video): reel's wgmma kernel where it runs
 * (sm_90, head_dim 128: faster than cuDNN inside the DiT, bench/RESULTS.md), else cuDNN when
 * the build has it, else the mma.sync kernel; a call whose last key stands for several
 * (last_key_copies, a compacted text context) always takes a flash kernel. Used by the dense
 * plugin and by plugins that run some layers or steps dense. */
#ifndef REEL_ATTN_DENSE_GPU_H
#define REEL_ATTN_DENSE_GPU_H

#include "attn_flash.h"

#ifdef __cplusplus
extern "C" {
#endif

enum attn_dense_kernel { ATTN_DENSE_AUTO, ATTN_DENSE_FLASH, ATTN_DENSE_CUDNN };

typedef struct attn_dense_gpu attn_dense_gpu;

/* kernel: auto, flash or cudnn; cudnn without cuDNN in the build is REEL_E_UNSUPPORTED. */
int attn_dense_gpu_create(int device, enum attn_dense_kernel kernel, attn_dense_gpu **out);
int attn_dense_gpu_forward(attn_dense_gpu *g, const attn_flash_args *a);
/* The kernel the last forward used ("flash" or "cudnn"). */
const char *attn_dense_gpu_last(const attn_dense_gpu *g);
void attn_dense_gpu_free(attn_dense_gpu *g);

/* "auto"/"flash"/"cudnn" -> enum; -1 for anything else. */
int attn_dense_kernel_parse(const char *s);

#ifdef __cplusplus
}
#endif
#endif
