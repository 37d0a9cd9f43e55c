/* The dense plugin: plain softmax attention over every key. On the CPU it is the reference
 * loop (attn_ref.c); on CUDA reel's flash kernel or cuDNN by a fixed rule (attn_dense_gpu.h). It also serves cross-attention, where kv_tokens differs from q_tokens. */
#include "attn_dense_gpu.h"
#include "attn_options.h"
#include "attn_plugins.h"
#include "attn_ref.h"

#include <stdlib.h>

static const reel_attn_option dense_options[] = {
    {"kernel", "auto",
     "CUDA kernel: auto (flash on Hopper with head_dim 128, else cuDNN), flash, cudnn"},
    {"threads", "0", "CPU worker threads (0: one per core)"},
    {NULL, NULL, NULL},
};

typedef struct dense_state {
    reel_attn_config cfg;
    int threads;
    attn_dense_gpu *gpu;
} dense_state;

static int dense_create(const reel_attn_config *cfg, const char *options, void **state, char *err,
                        size_t err_size)
{
    attn_opts o;
    long threads;
    int st = attn_opts_parse(options, dense_options, &o, err, err_size);
    if (st < 0)
        return st;
    if ((st = attn_opts_int(&o, dense_options, "threads", 0, 1024, &threads, err, err_size)) < 0)
        return st;
    const char *kname = attn_opts_value(&o, dense_options, "kernel");
    int kernel = attn_dense_kernel_parse(kname);
    if (kernel < 0) {
        snprintf(err, err_size, "option kernel=%s: expected auto, flash or cudnn", kname);
        return REEL_E_INVALID;
    }
    dense_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return REEL_E_NOMEM;
    }
    s->cfg = *cfg;
    s->threads = (int)threads;
    if (cfg->device == REEL_ATTN_CUDA) {
        st = attn_dense_gpu_create(cfg->cuda_device, (enum attn_dense_kernel)kernel, &s->gpu);
        if (st < 0) {
            free(s);
            return attn_plugin_fail(st, err, err_size);
        }
    }
    *state = s;
    return REEL_OK;
}

static int dense_forward(void *state, const reel_attn_args *a, char *err, size_t err_size)
{
    dense_state *s = state;
    int st;
    if (s->gpu) {
        attn_flash_args f = attn_flash_args_of(a, &s->cfg);
        st = attn_dense_gpu_forward(s->gpu, &f);
    } else {
        attn_ref_args r = attn_ref_args_of(a, &s->cfg, s->threads);
        st = attn_ref_forward(&r);
    }
    return st < 0 ? attn_plugin_fail(st, err, err_size) : REEL_OK;
}

static void dense_destroy(void *state)
{
    dense_state *s = state;
    if (!s)
        return;
    attn_dense_gpu_free(s->gpu);
    free(s);
}

const reel_attn_plugin attn_dense_plugin = {
    .abi_version = REEL_ATTN_ABI_VERSION,
    .struct_size = sizeof(reel_attn_plugin),
    .name = "dense",
    .description = "full softmax attention (CPU: the reference loop; CUDA: reel's flash kernel on "
                   "Hopper, cuDNN elsewhere)",
    .options = dense_options,
    .create = dense_create,
    .forward = dense_forward,
    .end_step = NULL,
    .destroy = dense_destroy,
};
