/* Stand-ins for a reel built without CUDA: the plugins' CUDA paths report it. */
#include "attn_cuda.h"
#include "attn_flash.h"

#include "../dit/error.h"

#define NO_CUDA "attention on CUDA: this reel was built without CUDA (REEL_CUDA=OFF)"

int attn_cuda_use_device(int device) { return err_set(REEL_E_UNSUPPORTED, NO_CUDA); }

int attn_cuda_alloc(size_t bytes, void **dev)
{
    *dev = NULL;
    return err_set(REEL_E_UNSUPPORTED, NO_CUDA);
}

int attn_cuda_device_name(char *buf, size_t n) { return err_set(REEL_E_UNSUPPORTED, NO_CUDA); }

int attn_cuda_sync(void) { return err_set(REEL_E_UNSUPPORTED, NO_CUDA); }

int attn_cuda_write(void *dev, const void *host, size_t bytes)
{
    return err_set(REEL_E_UNSUPPORTED, NO_CUDA);
}

int attn_cuda_upload(const void *host, size_t bytes, void **dev)
{
    *dev = NULL;
    return err_set(REEL_E_UNSUPPORTED, NO_CUDA);
}

void attn_cuda_free(void *dev) { (void)dev; }

int attn_cuda_time(int (*fn)(void *ctx), void *ctx, void *stream, int reps, float *ms)
{
    return err_set(REEL_E_UNSUPPORTED, NO_CUDA);
}

int attn_flash_forward(const attn_flash_args *a) { return err_set(REEL_E_UNSUPPORTED, NO_CUDA); }

int attn_flash_has_wgmma(int head_dim, int *yes)
{
    (void)head_dim;
    *yes = 0;
    return REEL_OK;
}
