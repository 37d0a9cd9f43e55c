/* One DiT forward through reel's public model calls for the DiT tests (CPU and GPU), with the
 * output and every activation buffer poisoned with NaN first, so a value reel forgets to write
 * shows up as a failure rather than as a plausible number. */
#include "wan_tiny.h"

#include "check.h"
#include "attention/attn.h"
#include "dit/error.h"
#include "dit/wan_dit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void wan_tiny_inputs(wan_tiny_in *in, const wan_config *c, int F, int H, int W, int Lc, int nt)
{
    memset(in, 0, sizeof *in);
    in->F = F, in->H = H, in->W = W, in->Lc = Lc, in->nt = nt;
    in->latent = malloc(sizeof(float) * c->in_dim * F * H * W);
    in->context = malloc(sizeof(float) * (Lc ? Lc : 1) * c->text_dim);
    check_fill_normal(in->latent, (size_t)c->in_dim * F * H * W, 1.0f);
    check_fill_normal(in->context, (size_t)Lc * c->text_dim, 0.5f);
    for (int i = 0; i < nt; i++)
        in->t[i] = (float)check_rand_uniform(0, 1000);
}

void wan_tiny_inputs_free(wan_tiny_in *in)
{
    free(in->latent);
    free(in->context);
}

static int poison_arena(arena *S)
{
    tensor all = tensor_1d(S->base, DT_F32, S->be->dev, (int64_t)(S->cap / sizeof(float)));
    return S->be->ops->fill(S->be, &all, NAN);
}

int wan_tiny_run(const char *path, backend *be, const wan_tiny_in *in, float *out, const char *attn)
{
    wan_dit *m;
    TRY(wan_dit_load(path, be, &m));
    arena S;
    int st = arena_init(&S, be, wan_dit_scratch_bytes(m, in->F, in->H, in->W) + (64u << 20), "test");
    int64_t ls[4] = {m->cfg.in_dim, in->F, in->H, in->W}, os[4] = {m->cfg.out_dim, in->F, in->H, in->W};
    tensor lat_h = tensor_make(in->latent, DT_F32, DEV_CPU, 4, ls), lat, o;
    tensor ctx = tensor_2d(in->context, DT_F32, DEV_CPU, in->Lc, m->cfg.text_dim);
    wan_context wc = {0};
    attn_instance *self = NULL, *cross = NULL;
    reel_attn_config ac = wan_dit_attn_config(m, in->F, in->H, in->W, 1);
    if (st >= 0)
        st = poison_arena(&S);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, ls, &lat);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, os, &o);
    if (st >= 0)
        st = be->ops->copy(be, &lat_h, &lat);
    if (st >= 0)
        st = wan_context_prepare(m, &ctx, &S, &wc);
    if (st >= 0)
        st = attn_instance_create(attn, &ac, &self);
    if (st >= 0)
        st = attn_instance_create("dense", &ac, &cross);
    if (st >= 0) {
        wan_forward_args a = {&lat, in->t, in->nt, &wc, self, cross, 0, &o, NULL};
        st = wan_dit_forward(m, &a, &S);
    }
    tensor oh = tensor_make(out, DT_F32, DEV_CPU, 4, os);
    if (st >= 0)
        st = be->ops->copy(be, &o, &oh);
    if (st >= 0)
        st = be->ops->sync(be);
    attn_instance_free(self);
    attn_instance_free(cross);
    wan_context_free(m, &wc);
    arena_release(&S);
    wan_dit_free(m);
    return st;
}
