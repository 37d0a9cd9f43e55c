/* The public text-to-video API: a thin layer over pipelines/t2v that converts decoded chunks
 * to 8-bit frames for the caller. */
#include "reel.h"

#include "../dit/error.h"
#include "../pipelines/t2v.h"
#include "../vae_io/frames.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct reel_model {
    t2v_pipeline *p;
};

void reel_open_params_default(reel_open_params *p)
{
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
}

int reel_open(const reel_open_params *p, reel_model **out)
{
    *out = NULL;
    if (!p || p->struct_size != sizeof *p)
        return err_set(REEL_E_ABI, "reel_open: params not initialised by reel_open_params_default "
                       "of this version");
    if (p->attn_plugin) {
        const char *name;
        TRY(reel_attn_load(p->attn_plugin, &name));
    }
    model_set ms;
    TRY(model_set_resolve(p->model_dir, p->dit, p->text_encoder, p->tokenizer, p->vae, &ms));
    t2v_options opt = {p->backend, p->attn, p->free_text_encoder};
    reel_model *m = calloc(1, sizeof *m);
    int st = m ? t2v_open(&ms, &opt, &m->p) : err_set(REEL_E_NOMEM, "out of host memory");
    model_set_free(&ms);
    if (st < 0) {
        free(m);
        return st;
    }
    *out = m;
    return REEL_OK;
}

void reel_close(reel_model *m)
{
    if (!m)
        return;
    t2v_close(m->p);
    free(m);
}

void reel_gen_params_default(reel_gen_params *p)
{
    t2v_params d;
    t2v_params_default(&d);
    memset(p, 0, sizeof *p);
    p->struct_size = sizeof *p;
    p->width = d.width;
    p->height = d.height;
    p->frames = d.frames;
    p->steps = d.steps;
    p->guidance = d.guidance;
    p->shift = d.shift;
    p->seed = -1;
    p->sampler = "unipc";
}

typedef struct frame_relay {
    reel_gen_params *gp;
    unsigned char *rgb;
} frame_relay;

static int on_frames(void *user, const tensor *frames, int first)
{
    frame_relay *r = user;
    if (!r->gp->on_frame)
        return 0;
    const int H = (int)frames->shape[2], W = (int)frames->shape[3];
    for (int64_t f = 0; f < frames->shape[1]; f++) {
        TRY(frames_to_rgb8(frames, f, r->rgb, (int64_t)W * 3));
        reel_frame fr = {first + (int)f, W, H, r->rgb, (long long)W * 3};
        if (r->gp->on_frame(r->gp->user, &fr))
            return err_set(REEL_E_CANCELLED, "cancelled by the frame callback at frame %d", fr.index);
    }
    return 0;
}

static int on_progress(void *user, const t2v_progress *pr)
{
    frame_relay *r = user;
    return r->gp->on_progress ? r->gp->on_progress(r->gp->user, pr->stage, pr->step, pr->total) : 0;
}

int reel_generate(reel_model *m, reel_gen_params *gp)
{
    if (!m || !gp || gp->struct_size != sizeof *gp)
        return err_set(REEL_E_ABI, "reel_generate: params not initialised by reel_gen_params_default "
                       "of this version");
    t2v_params par;
    t2v_params_default(&par);
    par.prompt = gp->prompt;
    par.negative = gp->negative_prompt;
    par.width = gp->width;
    par.height = gp->height;
    par.frames = gp->frames;
    par.steps = gp->steps;
    par.guidance = gp->guidance;
    par.shift = gp->shift;
    par.attn = gp->attn;
    if (gp->sampler)
        TRY(sched_kind_from_name(gp->sampler, &par.sampler));
    if (gp->seed < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        gp->seed_used = (long long)(((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                                     ((uint64_t)getpid() << 40)) & 0x7fffffffffffffffull);
    } else {
        gp->seed_used = gp->seed;
    }
    par.seed = (uint64_t)gp->seed_used;
    TRY(t2v_check_params(&par));
    frame_relay r = {gp, malloc((size_t)par.width * par.height * 3)};
    if (!r.rgb)
        return err_set(REEL_E_NOMEM, "frame buffer");
    par.on_frames = on_frames;
    par.on_progress = on_progress;
    par.user = &r;
    int st = t2v_generate(m->p, &par);
    gp->forwards_per_step = t2v_forwards_per_step(m->p);
    free(r.rgb);
    return st;
}

void reel_memory(const reel_model *m, unsigned long long *peak, unsigned long long *total)
{
    size_t p = 0, t = 0;
    if (m)
        t2v_memory(m->p, &p, &t);
    *peak = p;
    *total = t;
}
