/* CUDA services for the attention plugins (see attn_cuda.h). */
#include "attn_cuda.h"

#include "../dit/cuda_check.h"

#include <stdio.h>
#include <stdlib.h>

extern "C" {

int attn_cuda_use_device(int device)
{
    int count = 0;
    CUDA_TRY(cudaGetDeviceCount(&count));
    if (device < 0 || device >= count)
        return err_set(REEL_E_INVALID, "attention: CUDA device %d does not exist (%d present)",
                       device, count);
    CUDA_TRY(cudaSetDevice(device));
    return REEL_OK;
}

int attn_cuda_alloc(size_t bytes, void **dev)
{
    *dev = NULL;
    cudaError_t e = cudaMalloc(dev, bytes);
    if (e != cudaSuccess) {
        *dev = NULL;
        return err_set(REEL_E_DEVICE, "attention: cudaMalloc of %zu bytes: %s", bytes,
                       cudaGetErrorString(e));
    }
    return REEL_OK;
}

int attn_cuda_write(void *dev, const void *host, size_t bytes)
{
    cudaError_t e = cudaMemcpy(dev, host, bytes, cudaMemcpyHostToDevice);
    if (e != cudaSuccess)
        return err_set(REEL_E_DEVICE, "attention: upload of %zu bytes: %s", bytes,
                       cudaGetErrorString(e));
    return REEL_OK;
}

int attn_cuda_upload(const void *host, size_t bytes, void **dev)
{
    TRY(attn_cuda_alloc(bytes, dev));
    int st = attn_cuda_write(*dev, host, bytes);
    if (st < 0) {
        cudaFree(*dev);
        *dev = NULL;
    }
    return st;
}

int attn_cuda_device_name(char *buf, size_t n)
{
    int dev;
    cudaDeviceProp prop;
    CUDA_TRY(cudaGetDevice(&dev));
    CUDA_TRY(cudaGetDeviceProperties(&prop, dev));
    snprintf(buf, n, "%s", prop.name);
    return REEL_OK;
}

int attn_cuda_sync(void)
{
    CUDA_TRY(cudaDeviceSynchronize());
    return REEL_OK;
}

void attn_cuda_free(void *dev)
{
    if (dev)
        cudaFree(dev);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int attn_cuda_time(int (*fn)(void *ctx), void *ctx, void *stream, int reps, float *ms)
{
    enum { MAX_REPS = 64 };
    if (reps < 1 || reps > MAX_REPS)
        return err_set(REEL_E_INVALID, "attention timing: %d repetitions (1..%d)", reps, MAX_REPS);
    cudaStream_t s = (cudaStream_t)stream;
    TRY(fn(ctx)); /* warm-up: first-use costs (plans, module load) stay out of the numbers */
    cudaEvent_t ev[MAX_REPS + 1];
    int made = 0, st = REEL_OK;
    for (; made <= reps; made++)
        if (cudaEventCreate(&ev[made]) != cudaSuccess)
            break;
    if (made <= reps) {
        st = err_set(REEL_E_DEVICE, "attention timing: cudaEventCreate failed");
    } else {
        float t[MAX_REPS];
        cudaEventRecord(ev[0], s);
        for (int r = 0; r < reps && st == REEL_OK; r++) {
            st = fn(ctx);
            cudaEventRecord(ev[r + 1], s);
        }
        cudaError_t e = cudaEventSynchronize(ev[reps]);
        if (st == REEL_OK && e != cudaSuccess)
            st = err_set(REEL_E_DEVICE, "attention timing: %s", cudaGetErrorString(e));
        for (int r = 0; r < reps && st == REEL_OK; r++)
            cudaEventElapsedTime(&t[r], ev[r], ev[r + 1]);
        if (st == REEL_OK) {
            qsort(t, (size_t)reps, sizeof t[0], cmp_float);
            *ms = t[reps / 2];
        }
    }
    for (int i = 0; i < made; i++)
        cudaEventDestroy(ev[i]);
    return st;
}

} /* extern "C" */
