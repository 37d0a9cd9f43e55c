/* Small CUDA services for the attention plugins, which are C files (attn_cuda.cu; without
 * CUDA, attn_cuda_nocuda.c reports REEL_E_UNSUPPORTED). */
#ifndef REEL_ATTN_CUDA_H
#define REEL_ATTN_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Makes device the current one for this thread. */
int attn_cuda_use_device(int device);
/* cudaMalloc of bytes (> 0), contents undefined. */
int attn_cuda_alloc(size_t bytes, void **dev);
/* Copies bytes from the host into device memory at dev. */
int attn_cuda_write(void *dev, const void *host, size_t bytes);
/* attn_cuda_alloc + attn_cuda_write. */
int attn_cuda_upload(const void *host, size_t bytes, void **dev);
void attn_cuda_free(void *dev);

/* Name of the current device ("NVIDIA H100 80GB HBM3") into buf. */
int attn_cuda_device_name(char *buf, size_t n);
int attn_cuda_sync(void);

/* Runs fn once to warm up, then reps times between events on stream; *ms = the median. */
int attn_cuda_time(int (*fn)(void *ctx), void *ctx, void *stream, int reps, float *ms);

#ifdef __cplusplus
}
#endif
#endif
