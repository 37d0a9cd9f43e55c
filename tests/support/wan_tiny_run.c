/* One DiT forward (single, or batched over several text contexts) through reel's public model
 * calls for the DiT tests (CPU and GPU), with the output and every activation buffer poisoned
 * with NaN first, so a value reel forgets to write shows up as a failure rather than as a
 * plausible number. */
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

int wan_tiny_run_batch(const char *path, backend *be, const wan_tiny_in *in, int n,
                       const float *const *contexts, const int *lc, float *out, const char *attn)
{
    wan_dit *m;
    TRY(wan_dit_load(path, be, &m));
    arena S;
    int st = arena_init(&S, be, wan_dit_scratch_bytes(m, in->F, in->H, in->W, n) + (64u << 20),
                        "test");
    /* one prediction in the single form [C_out, F, H, W], several as [n, C_out, F, H, W] */
    int64_t ls[4] = {m->cfg.in_dim, in->F, in->H, in->W};
    int64_t os[5] = {n, m->cfg.out_dim, in->F, in->H, in->W};
    const int ond = n == 1 ? 4 : 5;
    const int64_t *oshape = n == 1 ? os + 1 : os;
    tensor lat_h = tensor_make(in->latent, DT_F32, DEV_CPU, 4, ls), lat, o;
    wan_context *wc = calloc((size_t)n, sizeof *wc);
    const wan_context **wcp = calloc((size_t)n, sizeof *wcp);
    attn_instance *self = NULL, *cross = NULL;
    reel_attn_config ac = wan_dit_attn_config(m, in->F, in->H, in->W, 1);
    if (st >= 0 && (!wc || !wcp))
        st = err_set(REEL_E_NOMEM, "%d contexts", n);
    if (st >= 0)
        st = poison_arena(&S);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, 4, ls, &lat);
    if (st >= 0)
        st = arena_tensor(&S, DT_F32, ond, oshape, &o);
    if (st >= 0)
        st = be->ops->copy(be, &lat_h, &lat);
    for (int i = 0; st >= 0 && i < n; i++) {
        tensor ctx = tensor_2d((float *)contexts[i], DT_F32, DEV_CPU, lc[i], m->cfg.text_dim);
        st = wan_context_prepare(m, &ctx, &S, &wc[i]);
        wcp[i] = &wc[i];
    }
    if (st >= 0)
        st = attn_instance_create(attn, &ac, &self);
    if (st >= 0)
        st = attn_instance_create("dense", &ac, &cross);
    if (st >= 0) {
        wan_forward_args a = {&lat, in->t, in->nt, wcp, n, self, cross, 0, &o, NULL};
        st = wan_dit_forward(m, &a, &S);
    }
    tensor oh = tensor_make(out, DT_F32, DEV_CPU, ond, oshape);
    if (st >= 0)
        st = be->ops->copy(be, &o, &oh);
    if (st >= 0)
        st = be->ops->sync(be);
    attn_instance_free(self);
    attn_instance_free(cross);
    for (int i = 0; wc && i < n; i++)
        wan_context_free(m, &wc[i]);
    free(wc);
    free(wcp);
    arena_release(&S);
    wan_dit_free(m);
    return st;
}

int wan_tiny_run(const char *path, backend *be, const wan_tiny_in *in, float *out, const char *attn)
{
    const float *ctx = in->context;
    return wan_tiny_run_batch(path, be, in, 1, &ctx, &in->Lc, out, attn);
}

int wan_tiny_batch_check(const char *path, backend *be, const wan_config *c, const wan_tiny_in *in,
                         int n, const float *const *contexts, const int *lc, const char *attn,
                         wan_tiny_batch_diff *d)
{
    size_t m = (size_t)c->out_dim * in->F * in->H * in->W;
    float *batch = malloc((size_t)n * m * sizeof *batch), *single = malloc(m * sizeof *single);
    int st = batch && single ? REEL_OK : err_set(REEL_E_NOMEM, "batch check outputs");
    d->worst = 0, d->apart = INFINITY, d->bit_equal = 1;
    if (st >= 0)
        st = wan_tiny_run_batch(path, be, in, n, contexts, lc, batch, attn);
    for (int i = 0; st >= 0 && i < n; i++) {
        wan_tiny_in one = *in;
        one.context = (float *)contexts[i];
        one.Lc = lc[i];
        st = wan_tiny_run(path, be, &one, single, attn);
        if (st < 0)
            break;
        double e = check_rel_l2(batch + i * m, single, m);
        d->worst = e > d->worst ? e : d->worst;
        /* e == 0 also rules out NaN (poison left unwritten in both gives e = inf) */
        d->bit_equal &= e == 0 && !memcmp(batch + i * m, single, m * sizeof *single);
        if (i > 0) {
            double a = check_rel_l2(batch + i * m, batch, m);
            d->apart = a < d->apart ? a : d->apart;
        }
    }
    free(batch);
    free(single);
    return st;
}
