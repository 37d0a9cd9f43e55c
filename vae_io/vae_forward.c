/* The chunked forward pass of the Wan VAE, shared by every executor: the order of operations
 * and the frame caches follow wan/modules/vae.py (ResidualBlock, AttentionBlock, Resample,
 * Encoder3d, Decoder3d) exactly, so that decoding chunk by chunk equals decoding at once.
 *
 * Frame caches: each causal 3x3x3 convolution keeps the last two frames of its (normalised)
 * input; a fresh cache is zeros, which is the reference's front padding. Resample's time_conv
 * is special on the very first chunk: upsampling skips it (the reference marks the cache 'Rep'
 * and later treats it as zeros, so frame 0 never enters it), downsampling keeps the chunk's
 * last frame and runs the stride-2 time_conv only from the second chunk on. */
#include "vae_internal.h"

#include "dit/error.h"

#include <stdlib.h>
#include <string.h>

typedef struct vae_lstate {
    vae_act cache[3]; /* one per convolution slot of the layer */
    int started;
} vae_lstate;

struct vae_stream {
    int n;
    vae_lstate st[VAE_MAX_LAYERS];
};

int vae_stream_create(const vae_net *net, vae_stream **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out)
        return err_set(REEL_E_NOMEM, "vae: stream state");
    (*out)->n = net->n;
    return REEL_OK;
}

void vae_stream_free(vae_exec *ex, vae_stream *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->n; i++)
        for (int j = 0; j < 3; j++)
            ex->ops->release(ex, &s->st[i].cache[j]);
    free(s);
}

static int act_alloc(vae_exec *ex, int c, int t, int h, int w, vae_act *a)
{
    if (t < 1 || h < 1 || w < 1)
        return err_set(REEL_E_INVALID, "vae: empty activation [%d, %d, %d, %d]", c, t, h, w);
    return ex->ops->alloc(ex, c, t, h, w, a);
}

/* Allocates L's cache for inputs of x's size on first use (zeros). */
static int ensure_cache(vae_exec *ex, const vae_conv *L, vae_act *cache, const vae_act *x)
{
    if (cache->data)
        return REEL_OK;
    TRY(act_alloc(ex, L->cin, L->cache_frames, x->h, x->w, cache));
    return ex->ops->zero(ex, cache);
}

int vae_run_conv(vae_exec *ex, const vae_conv *L, vae_act *cache, const vae_act *x,
                 const vae_norm *pre, const vae_act *res, vae_act *out)
{
    int to, ho, wo;
    if (x->c != L->cin)
        return err_set(REEL_E_INVALID, "vae: %s expects %d channels, got %d", L->name, L->cin,
                       x->c);
    if (L->cache_frames)
        TRY(ensure_cache(ex, L, cache, x));
    vae_conv_out(L, x->t + L->cache_frames, x->h, x->w, &to, &ho, &wo);
    TRY(act_alloc(ex, L->cout, to, ho, wo, out));
    int st = ex->ops->conv(ex, L, L->cache_frames ? cache : NULL, x, pre, res, out);
    if (st < 0)
        ex->ops->release(ex, out);
    return st;
}

static int run_upsample(vae_exec *ex, const vae_act *x, int interleave, vae_act *out)
{
    int c = interleave ? x->c / 2 : x->c, t = interleave ? 2 * x->t : x->t;
    TRY(act_alloc(ex, c, t, 2 * x->h, 2 * x->w, out));
    int st = ex->ops->upsample(ex, x, interleave, out);
    if (st < 0)
        ex->ops->release(ex, out);
    return st;
}

/* One layer on one chunk: consumes *x, leaves the layer's output in *x. */
static int layer_run(vae_exec *ex, const vae_layer *L, vae_lstate *s, vae_act *x)
{
    vae_act y = {0}, h = {0}, sc = {0};
    int st = REEL_OK;
    switch (L->kind) {
    case VK_CONV:
        st = vae_run_conv(ex, &L->c[0], &s->cache[0], x, NULL, NULL, &y);
        break;
    case VK_HEAD:
        st = vae_run_conv(ex, &L->c[0], &s->cache[0], x, &L->n1, NULL, &y);
        break;
    case VK_RES:
        /* h = shortcut(x); x = conv1(SiLU(norm1(x))); x = conv2(SiLU(norm2(x))) + h */
        if (L->nconv == 3)
            st = vae_run_conv(ex, &L->c[2], NULL, x, NULL, NULL, &sc);
        if (st >= 0)
            st = vae_run_conv(ex, &L->c[0], &s->cache[0], x, &L->n1, NULL, &h);
        if (st >= 0)
            st = vae_run_conv(ex, &L->c[1], &s->cache[1], &h, &L->n2, L->nconv == 3 ? &sc : x, &y);
        break;
    case VK_ATTN:
        st = act_alloc(ex, x->c, x->t, x->h, x->w, &y);
        if (st >= 0 && (st = ex->ops->attention(ex, L, x, &y)) < 0)
            ex->ops->release(ex, &y);
        break;
    case VK_UP2D:
        st = run_upsample(ex, x, 0, &h);
        if (st >= 0)
            st = vae_run_conv(ex, &L->c[0], NULL, &h, NULL, NULL, &y);
        break;
    case VK_UP3D:
        if (s->started) {
            st = vae_run_conv(ex, &L->c[1], &s->cache[1], x, NULL, NULL, &sc);
            if (st >= 0)
                st = run_upsample(ex, &sc, 1, &h);
        } else {
            st = run_upsample(ex, x, 0, &h);
        }
        s->started = 1;
        if (st >= 0)
            st = vae_run_conv(ex, &L->c[0], NULL, &h, NULL, NULL, &y);
        break;
    case VK_DOWN2D:
        st = vae_run_conv(ex, &L->c[0], NULL, x, NULL, NULL, &y);
        break;
    case VK_DOWN3D:
        st = vae_run_conv(ex, &L->c[0], NULL, x, NULL, NULL, &h);
        if (st < 0)
            break;
        if (s->started) {
            st = vae_run_conv(ex, &L->c[1], &s->cache[1], &h, NULL, NULL, &y);
        } else {
            st = ensure_cache(ex, &L->c[1], &s->cache[1], &h);
            if (st >= 0)
                st = ex->ops->keep_last(ex, &h, &s->cache[1]);
            y = h;
            h.data = NULL;
            s->started = 1;
        }
        break;
    }
    ex->ops->release(ex, &h);
    ex->ops->release(ex, &sc);
    ex->ops->release(ex, x);
    if (st < 0) {
        ex->ops->release(ex, &y);
        return err_wrap(st, "vae: %s", L->name);
    }
    *x = y;
    return REEL_OK;
}

int vae_stream_run(vae_exec *ex, const vae_net *net, vae_stream *s, vae_act *x)
{
    for (int i = 0; i < net->n; i++)
        TRY(layer_run(ex, &net->l[i], &s->st[i], x));
    return REEL_OK;
}
