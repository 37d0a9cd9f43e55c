/* The Radial Attention plugin (attn_radial_mask.h has the mask): the static block mask is
 * built once at create from the token grid, and every sparse call runs the flash kernel over
 * its tiles. Steps before dense_steps and layers before dense_layers run dense, as the
 * reference's Wan processor does (numeral_timestep < dense_timestep or layer < dense_block).
 * On the CPU the same block mask is applied to the reference loop, element for element what
 * the CUDA kernel computes, so CPU and CUDA runs of a model agree. */
#include "attn_cuda.h"
#include "attn_dense_gpu.h"
#include "attn_options.h"
#include "attn_plugins.h"
#include "attn_radial_mask.h"
#include "attn_ref.h"

#include <stdlib.h>
#include <string.h>

static const reel_attn_option radial_options[] = {
    {"dense_steps", "auto",
     "first denoising steps run dense (auto: 12 of 50 as the Wan scripts, scaled to the run's "
     "step count)"},
    {"dense_layers", "1", "first attention layers run dense (Wan scripts: 1)"},
    {"decay_factor", "0.2",
     "scales the window of frames 2+ apart (Wan scripts: 0.2; the reference code's default: 1)"},
    {"kernel", "auto", "CUDA kernel for the dense steps and layers: auto, flash, cudnn"},
    {"threads", "0", "CPU worker threads (0: one per core)"},
    {NULL, NULL, NULL},
};

typedef struct radial_state {
    reel_attn_config cfg;
    int64_t tokens;
    long dense_steps, dense_layers;
    int threads;
    attn_block_mask mask;
    int32_t *dev_row_start, *dev_cols; /* CUDA copies of the mask lists */
    attn_dense_gpu *gpu;
} radial_state;

static void radial_destroy(void *state)
{
    radial_state *s = state;
    if (!s)
        return;
    attn_cuda_free(s->dev_row_start);
    attn_cuda_free(s->dev_cols);
    attn_dense_gpu_free(s->gpu);
    attn_block_mask_release(&s->mask);
    free(s);
}

static int radial_parse(const reel_attn_config *cfg, const char *options, radial_state *s,
                        double *decay, int *kernel, char *err, size_t err_size)
{
    attn_opts o;
    long threads;
    int st;
    if ((st = attn_opts_parse(options, radial_options, &o, err, err_size)) < 0 ||
        (st = attn_opts_int(&o, radial_options, "dense_layers", 0, 1 << 20, &s->dense_layers, err,
                            err_size)) < 0 ||
        (st = attn_opts_double(&o, radial_options, "decay_factor", 1e-6, 1e6, decay, err,
                               err_size)) < 0 ||
        (st = attn_opts_int(&o, radial_options, "threads", 0, 1024, &threads, err, err_size)) < 0)
        return st;
    s->threads = (int)threads;
    if (!strcmp(attn_opts_value(&o, radial_options, "dense_steps"), "auto"))
        s->dense_steps = (cfg->num_steps * 12L + 25) / 50;
    else if ((st = attn_opts_int(&o, radial_options, "dense_steps", 0, 1 << 20, &s->dense_steps,
                                 err, err_size)) < 0)
        return st;
    const char *kname = attn_opts_value(&o, radial_options, "kernel");
    if ((*kernel = attn_dense_kernel_parse(kname)) < 0) {
        snprintf(err, err_size, "option kernel=%s: expected auto, flash or cudnn", kname);
        return REEL_E_INVALID;
    }
    return REEL_OK;
}

static int radial_create(const reel_attn_config *cfg, const char *options, void **state,
                         char *err, size_t err_size)
{
    if (cfg->chunk_frames > 0) {
        snprintf(err, err_size, "autoregressive chunks (chunk_frames %d) are not supported: the "
                 "radial mask is for bidirectional attention over the whole video",
                 cfg->chunk_frames);
        return REEL_E_UNSUPPORTED;
    }
    if (cfg->grid_f <= 0 || cfg->grid_h <= 0 || cfg->grid_w <= 0) {
        snprintf(err, err_size, "needs the token grid, got %dx%dx%d", cfg->grid_f, cfg->grid_h,
                 cfg->grid_w);
        return REEL_E_INVALID;
    }
    radial_state *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, err_size, "out of memory");
        return REEL_E_NOMEM;
    }
    s->cfg = *cfg;
    double decay;
    int kernel, st = radial_parse(cfg, options, s, &decay, &kernel, err, err_size);
    if (st < 0) {
        free(s);
        return st;
    }
    attn_radial_geom g = {.frames = cfg->grid_f,
                          .frame_tokens = (int64_t)cfg->grid_h * cfg->grid_w,
                          .extra_tokens = cfg->text_len,
                          .decay_factor = decay};
    s->tokens = g.frames * g.frame_tokens + g.extra_tokens;
    st = attn_radial_block_mask(&g, &s->mask);
    if (st == REEL_OK && cfg->device == REEL_ATTN_CUDA) {
        st = attn_dense_gpu_create(cfg->cuda_device, (enum attn_dense_kernel)kernel, &s->gpu);
        if (st == REEL_OK)
            st = attn_cuda_upload(s->mask.row_start,
                                  sizeof(int32_t) * ((size_t)s->mask.q_blocks + 1),
                                  (void **)&s->dev_row_start);
        if (st == REEL_OK)
            st = attn_cuda_upload(s->mask.cols, sizeof(int32_t) * (size_t)(s->mask.nnz ? s->mask.nnz : 1),
                                  (void **)&s->dev_cols);
    }
    if (st < 0) {
        attn_plugin_fail(st, err, err_size);
        radial_destroy(s);
        return st;
    }
    *state = s;
    return REEL_OK;
}

static int radial_forward(void *state, const reel_attn_args *a, char *err, size_t err_size)
{
    radial_state *s = state;
    if (a->q_tokens != s->tokens || a->kv_tokens != s->tokens || a->q_first || a->kv_first) {
        snprintf(err, err_size,
                 "expects self-attention over all %lld tokens of the %dx%dx%d grid (+%d text), "
                 "got q_tokens %lld, kv_tokens %lld from %lld/%lld",
                 (long long)s->tokens, s->cfg.grid_f, s->cfg.grid_h, s->cfg.grid_w,
                 s->cfg.text_len, (long long)a->q_tokens, (long long)a->kv_tokens,
                 (long long)a->q_first, (long long)a->kv_first);
        return REEL_E_INVALID;
    }
    int dense = a->step < s->dense_steps || a->layer < s->dense_layers;
    int st;
    if (s->gpu) {
        attn_flash_args f = attn_flash_args_of(a, &s->cfg);
        if (dense) {
            st = attn_dense_gpu_forward(s->gpu, &f);
        } else {
            f.row_start = s->dev_row_start;
            f.cols = s->dev_cols;
            st = attn_flash_forward(&f);
        }
    } else {
        attn_ref_args r = attn_ref_args_of(a, &s->cfg, s->threads);
        r.mask = dense ? NULL : &s->mask;
        st = attn_ref_forward(&r);
    }
    return st < 0 ? attn_plugin_fail(st, err, err_size) : REEL_OK;
}

const reel_attn_plugin attn_radial_plugin = {
    .abi_version = REEL_ATTN_ABI_VERSION,
    .struct_size = sizeof(reel_attn_plugin),
    .name = "radial",
    .description = "Radial Attention (Li et al. 2025): static mask, spatial window shrinking with "
                   "temporal distance, first frame as attention sink; dense early steps/layers",
    .options = radial_options,
    .create = radial_create,
    .forward = radial_forward,
    .end_step = NULL,
    .destroy = radial_destroy,
};
