#include "attn_dense_gpu.h"

#include "attn_cuda.h"
#ifdef REEL_HAVE_CUDNN
#include "attn_cudnn.h"
#endif

#include "../dit/error.h"

#include <stdlib.h>
#include <string.h>

#define PICK_CACHE 16
#define PICK_REPS 3

typedef struct pick_entry {
    int64_t q_tokens, kv_tokens, q_stride, kv_stride;
    int heads, head_dim, lse;
    int use_cudnn;
} pick_entry;

struct attn_dense_gpu {
    enum attn_dense_kernel kernel;
#ifdef REEL_HAVE_CUDNN
    attn_cudnn *cudnn;
#endif
    pick_entry cache[PICK_CACHE];
    int cached, next; /* next: slot to overwrite once full (round robin) */
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

#ifdef REEL_HAVE_CUDNN
static int run_flash(void *ctx) { return attn_flash_forward(ctx); }

typedef struct cudnn_call {
    attn_cudnn *c;
    const attn_flash_args *a;
} cudnn_call;

static int run_cudnn(void *ctx)
{
    cudnn_call *call = ctx;
    return attn_cudnn_forward(call->c, call->a);
}

/* Times both kernels at this shape; returns 1 when cuDNN is faster. */
static int pick(attn_dense_gpu *g, const attn_flash_args *a)
{
    float t_flash = -1, t_cudnn = -1;
    if (attn_cuda_time(run_flash, (void *)a, a->stream, PICK_REPS, &t_flash) < 0)
        t_flash = -1;
    cudnn_call call = {g->cudnn, a};
    if (attn_cuda_time(run_cudnn, &call, a->stream, PICK_REPS, &t_cudnn) < 0)
        t_cudnn = -1;
    err_clear(); /* a kernel that cannot take the shape is simply not picked */
    if (t_cudnn < 0)
        return 0;
    return t_flash < 0 || t_cudnn < t_flash;
}
#endif

int attn_dense_gpu_forward(attn_dense_gpu *g, const attn_flash_args *a)
{
    if (a->row_start || a->cols)
        return err_set(REEL_E_INVALID, "dense attention: a block mask was passed");
    int use_cudnn = g->kernel == ATTN_DENSE_CUDNN;
#ifdef REEL_HAVE_CUDNN
    if (g->kernel == ATTN_DENSE_AUTO && g->cudnn) {
        pick_entry key = {a->q_tokens, a->kv_tokens, a->q_stride, a->kv_stride,
                          a->heads,    a->head_dim,  a->lse != NULL, 0};
        int found = -1;
        for (int i = 0; i < g->cached && found < 0; i++) {
            pick_entry *e = &g->cache[i];
            if (e->q_tokens == key.q_tokens && e->kv_tokens == key.kv_tokens &&
                e->q_stride == key.q_stride && e->kv_stride == key.kv_stride &&
                e->heads == key.heads && e->head_dim == key.head_dim && e->lse == key.lse)
                found = i;
        }
        if (found < 0) {
            key.use_cudnn = pick(g, a);
            if (g->cached < PICK_CACHE) {
                found = g->cached++;
            } else {
                found = g->next;
                g->next = (g->next + 1) % PICK_CACHE;
            }
            g->cache[found] = key;
        }
        use_cudnn = g->cache[found].use_cudnn;
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
