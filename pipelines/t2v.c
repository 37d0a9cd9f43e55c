#include "t2v.h"

#include "../attention/attn.h"
#include "../dit/error.h"
#include "../dit/t5_encoder.h"
#include "../dit/tokenizer.h"
#include "../dit/wan_dit.h"
#include "../vae_io/vae_wan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char t2v_default_negative[] =
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走";

struct t2v_pipeline {
    model_set models;
    t2v_options opt;
    char *attn_default;
    backend *be;
    tokenizer *tok;
    t5_encoder *t5;
    wan_dit *dit;
    wan_vae *vae;
    size_t mem_total, mem_min_free;
    int forwards_per_step; /* of the last generation */
};

void t2v_params_default(t2v_params *p)
{
    memset(p, 0, sizeof *p);
    p->width = 832;
    p->height = 480;
    p->frames = 81;
    p->steps = 50;
    p->guidance = 5.0f;
    p->shift = 5.0f;
    p->sampler = SCHED_UNIPC;
}

int t2v_check_params(const t2v_params *p)
{
    if (!p->prompt)
        return err_set(REEL_E_INVALID, "no prompt given");
    if (p->width < 16 || p->height < 16 || p->width % 16 || p->height % 16 || p->width > 8192 ||
        p->height > 8192)
        return err_set(REEL_E_INVALID, "size %dx%d: width and height must be multiples of 16 "
                       "(16..8192)", p->width, p->height);
    if (p->frames < 1 || (p->frames - 1) % 4 || p->frames > 4097)
        return err_set(REEL_E_INVALID, "%d frames: the count must be 4k+1 (1, 5, ..., 81, ...)",
                       p->frames);
    if (p->steps < 1 || p->steps > 1000)
        return err_set(REEL_E_INVALID, "%d steps: expected 1..1000", p->steps);
    if (!(p->guidance >= 0 && p->guidance <= 100))
        return err_set(REEL_E_INVALID, "guidance %g: expected 0..100", (double)p->guidance);
    if (!(p->shift > 0 && p->shift <= 100))
        return err_set(REEL_E_INVALID, "shift %g: expected > 0 and <= 100", (double)p->shift);
    return REEL_OK;
}

/* splitmix64 + Box-Muller in double: reproducible everywhere (PyTorch's Philox stream is not
 * reproduced; compare with the reference by importing its noise instead). */
void t2v_noise(uint64_t seed, float *out, size_t n)
{
    uint64_t s = seed;
    for (size_t i = 0; i < n; i += 2) {
        uint64_t a = (s += 0x9e3779b97f4a7c15ull), b = (s += 0x9e3779b97f4a7c15ull);
        a = (a ^ (a >> 30)) * 0xbf58476d1ce4e5b9ull, a = (a ^ (a >> 27)) * 0x94d049bb133111ebull, a ^= a >> 31;
        b = (b ^ (b >> 30)) * 0xbf58476d1ce4e5b9ull, b = (b ^ (b >> 27)) * 0x94d049bb133111ebull, b ^= b >> 31;
        double u1 = ((double)(a >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(b >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        out[i] = (float)(r * cos(6.283185307179586 * u2));
        if (i + 1 < n)
            out[i + 1] = (float)(r * sin(6.283185307179586 * u2));
    }
}

static void sample_memory(t2v_pipeline *p)
{
    size_t fr, tot;
    if (p->be->ops->mem_info && p->be->ops->mem_info(p->be, &fr, &tot) >= 0) {
        p->mem_total = tot;
        if (fr < p->mem_min_free)
            p->mem_min_free = fr;
    }
}

void t2v_memory(const t2v_pipeline *p, size_t *peak, size_t *total)
{
    *total = p->mem_total;
    *peak = p->mem_total ? p->mem_total - p->mem_min_free : 0;
}

int t2v_forwards_per_step(const t2v_pipeline *p) { return p->forwards_per_step; }

const char *t2v_backend_name(const t2v_pipeline *p) { return p->be->ops->name; }

int t2v_open(const model_set *m, const t2v_options *opt, t2v_pipeline **out)
{
    *out = NULL;
    t2v_pipeline *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(REEL_E_NOMEM, "out of host memory");
    p->opt = *opt;
    p->models.dit = strdup(m->dit);
    p->models.text_encoder = strdup(m->text_encoder);
    p->models.tokenizer = strdup(m->tokenizer);
    p->models.vae = strdup(m->vae);
    p->models.layout = m->layout;
    p->attn_default = strdup(opt->attn ? opt->attn : "dense");
    p->mem_min_free = (size_t)-1;
    int st = p->models.dit && p->models.text_encoder && p->models.tokenizer && p->models.vae &&
                     p->attn_default
                 ? REEL_OK
                 : err_set(REEL_E_NOMEM, "out of host memory");
    if (st >= 0) {
        if (opt->backend)
            st = backend_create_by_name(opt->backend, &p->be);
        else if (backend_cuda_create(0, &p->be) < 0)
            st = backend_cpu_create(0, &p->be);
    }
    /* The tokenizer is small and checks the folder early; the large parts load when needed. */
    if (st >= 0)
        st = tok_load(p->models.tokenizer, &p->tok);
    if (st < 0) {
        t2v_close(p);
        return st;
    }
    *out = p;
    return REEL_OK;
}

void t2v_close(t2v_pipeline *p)
{
    if (!p)
        return;
    t5_free(p->t5);
    wan_dit_free(p->dit);
    wan_vae_free(p->vae);
    tok_free(p->tok);
    backend_free(p->be);
    model_set_free(&p->models);
    free(p->attn_default);
    free(p);
}

static int progress(const t2v_params *par, const char *stage, int step, int total)
{
    if (!par->on_progress)
        return REEL_OK;
    t2v_progress pr = {stage, step, total};
    if (par->on_progress(par->user, &pr))
        return err_set(REEL_E_CANCELLED, "cancelled during %s", stage);
    return REEL_OK;
}

/* Cleaned, tokenised and encoded prompt: f32 host [n, dim]. */
static int encode_prompt(t2v_pipeline *p, const char *text, float **ctx, int *rows)
{
    char *clean = NULL;
    int32_t ids[T5_MAX_TOKENS];
    int n = 0;
    TRY(tok_clean_prompt(text, &clean));
    int st = tok_encode(p->tok, clean, 1, T5_MAX_TOKENS, ids, &n);
    free(clean);
    TRY(st);
    *ctx = malloc(sizeof(float) * (size_t)n * (size_t)t5_dim(p->t5));
    if (!*ctx)
        return err_set(REEL_E_NOMEM, "text context");
    st = t5_encode(p->t5, ids, n, *ctx);
    if (st < 0) {
        free(*ctx);
        *ctx = NULL;
        return st;
    }
    *rows = n;
    return REEL_OK;
}

/* VAE chunks -> the caller, with running frame indices */
typedef struct decode_relay {
    const t2v_params *par;
    int H, W, done, total;
} decode_relay;

static int relay_frames(void *user, const float *frames, int n)
{
    decode_relay *r = user;
    int64_t shape[4] = {3, n, r->H, r->W};
    tensor t = tensor_make((void *)frames, DT_F32, DEV_CPU, 4, shape);
    if (r->par->on_frames) {
        int st = r->par->on_frames(r->par->user, &t, r->done);
        if (st)
            return st < 0 ? st : err_set(REEL_E_CANCELLED, "cancelled by the frame callback");
    }
    r->done += n;
    return progress(r->par, "decode", r->done, r->total);
}

/* The whole loop stays on the backend's device: the latent, the two velocity predictions (in
 * the arena, below the DiT's mark) and the sampler's history; the host holds the latent only
 * for the noise upload before the loop and the VAE after it. */
typedef struct denoise_state {
    wan_context cond, uncond;
    arena S;
    attn_instance *self, *cross;
    tensor lat, v, v_cond, v_uncond; /* v: [passes, C, F, H, W]; v_cond, v_uncond: its slices */
    int batched;                      /* both guidance passes in one forward */
    float *x;
    scheduler *sched;
} denoise_state;

static void denoise_free(t2v_pipeline *p, denoise_state *d)
{
    if (p->dit) {
        wan_context_free(p->dit, &d->cond);
        wan_context_free(p->dit, &d->uncond);
    }
    arena_release(&d->S);
    attn_instance_free(d->self);
    attn_instance_free(d->cross);
    free(d->x);
    sched_free(d->sched);
}

static int run_dit(t2v_pipeline *p, denoise_state *d, const wan_context *const *ctx, int n,
                   float t, int step, tensor *v)
{
    wan_forward_args a = {.latent = &d->lat, .timesteps = &t, .n_timesteps = 1, .contexts = ctx,
                          .n_contexts = n, .self_attn = d->self, .cross_attn = d->cross,
                          .step = step, .out = v};
    return wan_dit_forward(p->dit, &a, &d->S);
}

/* Both guidance passes in one forward when the device has room for twice the activations
 * (with a quarter of the memory left over); the CPU always batches (rows are independent
 * there, so the result is the same bits either way). */
static int batch_passes(t2v_pipeline *p, int T, int h, int w, size_t fixed)
{
    backend *be = p->be;
    size_t fr = 0, tot = 0;
    if (be->dev != DEV_CUDA || !be->ops->mem_info || be->ops->mem_info(be, &fr, &tot) < 0)
        return be->dev != DEV_CUDA;
    size_t need = wan_dit_scratch_bytes(p->dit, T, h, w, 2) + fixed;
    return need < fr && fr - need > tot / 4;
}

static int generate(t2v_pipeline *p, const t2v_params *par, denoise_state *d)
{
    backend *be = p->be;
    const int T = (par->frames - 1) / 4 + 1, h = par->height / 8, w = par->width / 8;
    const int guided = par->guidance != 1.0f;
    sample_memory(p);

    /* text: the encoder loads, encodes both prompts, and leaves when memory is short */
    TRY(progress(par, "encode", 0, guided ? 2 : 1));
    if (!p->t5)
        TRY(t5_load(p->models.text_encoder, be, &p->t5));
    sample_memory(p);
    float *c_cond = NULL, *c_uncond = NULL;
    int n_cond = 0, n_uncond = 0;
    int st = encode_prompt(p, par->prompt, &c_cond, &n_cond);
    if (st >= 0 && guided)
        st = encode_prompt(p, par->negative ? par->negative : t2v_default_negative, &c_uncond, &n_uncond);
    int dim = t5_dim(p->t5);
    int drop = p->opt.free_text_encoder > 0;
    if (p->opt.free_text_encoder == 0 && be->dev == DEV_CUDA) {
        size_t fr = 0, tot = 0;
        /* keep the encoder only when the DiT and its activations fit beside it with room to spare */
        if (be->ops->mem_info && be->ops->mem_info(be, &fr, &tot) >= 0)
            drop = fr < tot / 2;
    }
    if (drop) {
        t5_free(p->t5);
        p->t5 = NULL;
    }
    if (st >= 0)
        st = progress(par, "encode", guided ? 2 : 1, guided ? 2 : 1);

    /* DiT, contexts, noise, sampler */
    if (st >= 0 && !p->dit) {
        st = progress(par, "load", 0, 1);
        if (st >= 0)
            st = wan_dit_load(p->models.dit, be, &p->dit);
    }
    if (st >= 0 && dim != p->dit->cfg.text_dim)
        st = err_set(REEL_E_INVALID, "text encoder width %d does not match the DiT's text_dim %d",
                     dim, p->dit->cfg.text_dim);
    const wan_config *c = p->dit ? &p->dit->cfg : NULL;
    const size_t n_lat = c ? (size_t)c->in_dim * T * h * w : 0;
    const size_t n_out = c ? (size_t)c->out_dim * T * h * w : 0;
    /* the latent and one prediction per pass live below the DiT's own activations */
    const size_t loop_bytes = (n_lat + (guided ? 2 : 1) * n_out) * sizeof(float) + ((size_t)64 << 20);
    if (st >= 0) {
        d->batched = guided && batch_passes(p, T, h, w, loop_bytes);
        st = arena_init(&d->S, be,
                        wan_dit_scratch_bytes(p->dit, T, h, w, d->batched ? 2 : 1) + loop_bytes,
                        "DiT activations");
    }
    if (st >= 0) {
        tensor ct = tensor_2d(c_cond, DT_F32, DEV_CPU, n_cond, dim);
        st = wan_context_prepare(p->dit, &ct, &d->S, &d->cond);
    }
    if (st >= 0 && guided) {
        tensor ct = tensor_2d(c_uncond, DT_F32, DEV_CPU, n_uncond, dim);
        st = wan_context_prepare(p->dit, &ct, &d->S, &d->uncond);
    }
    free(c_cond);
    free(c_uncond);
    TRY(st);
    int64_t ls[4] = {c->in_dim, T, h, w}, os[4] = {c->out_dim, T, h, w};
    int64_t vs[5] = {guided ? 2 : 1, c->out_dim, T, h, w};
    TRY(arena_tensor(&d->S, DT_F32, 4, ls, &d->lat));
    TRY(arena_tensor(&d->S, DT_F32, 5, vs, &d->v));
    d->v_cond = tensor_make(d->v.data, DT_F32, be->dev, 4, os);
    if (guided)
        d->v_uncond = tensor_make((float *)d->v.data + n_out, DT_F32, be->dev, 4, os);
    d->x = malloc(n_lat * sizeof(float));
    if (!d->x)
        return err_set(REEL_E_NOMEM, "latents of %zu values", n_lat);
    t2v_noise(par->seed, d->x, n_lat);
    tensor xh = tensor_make(d->x, DT_F32, DEV_CPU, 4, ls);
    TRY(be->ops->copy(be, &xh, &d->lat));
    TRY(sched_create(par->sampler, par->steps, par->shift, be, (int64_t)n_lat, &d->sched));
    reel_attn_config ac = wan_dit_attn_config(p->dit, T, h, w, par->steps);
    TRY(attn_instance_create(par->attn ? par->attn : p->attn_default, &ac, &d->self));
    TRY(attn_instance_create("dense", &ac, &d->cross));
    sample_memory(p);

    p->forwards_per_step = guided && !d->batched ? 2 : 1;
    TRY(progress(par, "denoise", 0, par->steps));
    for (int k = 0; k < par->steps; k++) {
        float t = sched_timestep(d->sched, k);
        /* conditional first, then unconditional (one batched forward or two); the sampler forms
         * v = u + g (c - u), as the reference, inside its step */
        const wan_context *ctx[2] = {&d->cond, &d->uncond};
        if (d->batched) {
            TRY(run_dit(p, d, ctx, 2, t, k, &d->v));
        } else {
            TRY(run_dit(p, d, ctx, 1, t, k, &d->v_cond));
            if (guided)
                TRY(run_dit(p, d, ctx + 1, 1, t, k, &d->v_uncond));
        }
        TRY(sched_step(d->sched, k, &d->v_cond, guided ? &d->v_uncond : NULL, par->guidance,
                       &d->lat));
        TRY(attn_instance_end_step(d->self, k));
        /* the step's work is done (or has failed) before it is reported or cancelled */
        TRY(be->ops->sync(be));
        if (k == 0)
            sample_memory(p);
        TRY(progress(par, "denoise", k + 1, par->steps));
    }
    /* the clean latent to the host; the DiT's activations and the sampler's history go before
     * the VAE needs room */
    TRY(be->ops->copy(be, &d->lat, &xh));
    TRY(be->ops->sync(be));
    sched_free(d->sched);
    d->sched = NULL;
    wan_context_free(p->dit, &d->cond);
    wan_context_free(p->dit, &d->uncond);
    arena_release(&d->S);

    if (!p->vae)
        TRY(wan_vae_load(p->models.vae, be, &p->vae));
    decode_relay relay = {par, par->height, par->width, 0, par->frames};
    TRY(progress(par, "decode", 0, par->frames));
    st = wan_vae_decode(p->vae, &xh, NULL, relay_frames, &relay, NULL);
    sample_memory(p);
    TRY(st);
    if (relay.done != par->frames)
        return err_set(REEL_E_INVALID, "VAE produced %d frames, expected %d", relay.done, par->frames);
    return REEL_OK;
}

int t2v_generate(t2v_pipeline *p, const t2v_params *par)
{
    TRY(t2v_check_params(par));
    denoise_state d;
    memset(&d, 0, sizeof d);
    p->mem_min_free = (size_t)-1;
    p->forwards_per_step = 0; /* until this generation reaches its denoising loop */
    int st = generate(p, par, &d);
    denoise_free(p, &d);
    return st;
}
