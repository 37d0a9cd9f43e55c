#include "attn_dense_gpu.h"

#include "attn_cuda.h"
#ifdef REEL_HAVE_CUDNN
#include "attn_cudnn.h"
#endif

#include "../dit/error.h"

#include <stdlib.h>
#include <string.h>

struct attn_dense_gpu {
    enum attn_dense_kernel kernel;
#ifdef REEL_HAVE_CUDNN
    attn_cudnn *cudnn;
#endif
    const char *last;
};

int attn_dense_kernel_parse(const char *s)
{
    if (!strcmp(s, "auto"))
        return ATTN_DENSE_AUTO;
    if (!strcmp(s, "flash"))
        return ATTN_DENSE_FLASH;
    if (!strcmp(s, "cudnn"))
        return ATTN_DENSE_CUDNN;
    return -1;
}

int attn_dense_gpu_create(int device, enum attn_dense_kernel kernel, attn_dense_gpu **out)
{
    *out = NULL;
#ifndef REEL_HAVE_CUDNN
    if (kernel == ATTN_DENSE_CUDNN)
        return err_set(REEL_E_UNSUPPORTED, "dense kernel 'cudnn': this reel was built without cuDNN");
#endif
    TRY(attn_cuda_use_device(device));
    attn_dense_gpu *g = calloc(1, sizeof *g);
    if (!g)
        return err_set(REEL_E_NOMEM, "dense attention: out of memory");
    g->kernel = kernel;
    g->last = "none";
#ifdef REEL_HAVE_CUDNN
    if (kernel != ATTN_DENSE_FLASH) {
        int st = attn_cudnn_create(&g->cudnn);
        if (st < 0 && kernel == ATTN_DENSE_CUDNN) {
            free(g);
            return st;
        }
        /* auto without a usable cuDNN simply always picks the flash kernel */
    }
#endif
    *out = g;
    return REEL_OK;
}

int attn_dense_gpu_forward(attn_dense_gpu *g, const attn_flash_args *a)
{
    if (a->row_start || a->cols)
        return err_set(REEL_E_INVALID, "dense attention: a block mask was passed");
    /* cuDNN has no weight for a repeated last key (a compacted text context): flash, always */
    const int cudnn_can = a->last_key_copies <= 1;
    int use_cudnn = g->kernel == ATTN_DENSE_CUDNN && cudnn_can;
#ifdef REEL_HAVE_CUDNN
    if (g->kernel == ATTN_DENSE_AUTO && g->cudnn && cudnn_can) {
        int wgmma = 0;
        TRY(attn_flash_has_wgmma(a->head_dim, &wgmma));
        use_cudnn = !wgmma;
    }
    if (use_cudnn) {
        g->last = "cudnn";
        return attn_cudnn_forward(g->cudnn, a);
    }
#else
    (void)use_cudnn;
#endif
    g->last = "flash";
    return attn_flash_forward(a);
}

const char *attn_dense_gpu_last(const attn_dense_gpu *g) { return g->last; }

void attn_dense_gpu_free(attn_dense_gpu *g)
{
    if (!g)
        return;
#ifdef REEL_HAVE_CUDNN
    attn_cudnn_free(g->cudnn);
#endif
    free(g);
}
