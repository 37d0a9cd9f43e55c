/* Builds the Wan VAE's layer list from a checkpoint's key names and shapes, for the three
 * layouts the model is published in:
 *   original (Wan2.1_VAE.pth) and ComfyUI (wan_2.1_vae.safetensors, same names, maybe a prefix):
 *     encoder.conv1, encoder.downsamples.N.{residual.0.gamma, residual.2, residual.3.gamma,
 *     residual.6, shortcut | resample.1, time_conv}, encoder.middle.{0,1,2}, encoder.head.{0,2},
 *     conv1, conv2, decoder.conv1, decoder.middle.*, decoder.upsamples.N.*, decoder.head.*
 *   diffusers (AutoencoderKLWan, vae/diffusion_pytorch_model.safetensors):
 *     encoder.conv_in, encoder.down_blocks.N.{norm1.gamma, conv1, norm2.gamma, conv2,
 *     conv_shortcut | resample.1, time_conv}, encoder.mid_block.{resnets.0, attentions.0,
 *     resnets.1}, encoder.norm_out, encoder.conv_out, quant_conv, post_quant_conv,
 *     decoder.conv_in, decoder.mid_block.*, decoder.up_blocks.I.{resnets.J, upsamplers.0}, ...
 * Each block's type comes from which keys exist, its widths from the weight shapes, so the
 * reduced-width test models and the published one load through the same code. */
#include "vae_internal.h"

#include "dit/error.h"
#include "dit/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum vae_layout { VL_ORIGINAL, VL_DIFFUSERS };

typedef struct vae_loader {
    weights *ws;
    const char *path;
    enum vae_layout layout;
    char prefix[128];
} vae_loader;

/* The published normalisation constants (WanVAE in wan/modules/vae.py). */
static const float vae_mean[VAE_Z] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                                      -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                                      -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
static const float vae_std[VAE_Z] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                                     2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                                     1.6382f, 1.1253f, 2.8251f, 1.9160f};

static const weight_entry *ld_find(const vae_loader *ld, const char *key)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", ld->prefix, key);
    return weights_find(ld->ws, full);
}

static int ld_has(const vae_loader *ld, const char *block, const char *suffix)
{
    char key[256];
    snprintf(key, sizeof key, "%s.%s", block, suffix);
    return ld_find(ld, key) != NULL;
}

/* Reads key (numel values expected) into a fresh host buffer. */
static int ld_read(const vae_loader *ld, const char *key, int64_t numel, float **out)
{
    const weight_entry *e = ld_find(ld, key);
    if (!e)
        return err_set(REEL_E_NOT_FOUND, "%s: missing tensor %s%s", ld->path, ld->prefix, key);
    if (tensor_numel(&e->t) != numel) {
        char s[96];
        return err_set(REEL_E_FORMAT, "%s: %s%s has shape %s, expected %lld values", ld->path,
                       ld->prefix, key, tensor_shape_str(&e->t, s, sizeof s), (long long)numel);
    }
    float *buf = malloc((size_t)numel * sizeof(float));
    if (!buf)
        return err_set(REEL_E_NOMEM, "%s: %s: %lld floats", ld->path, key, (long long)numel);
    int st = weights_read_f32(e, buf);
    if (st < 0) {
        free(buf);
        return err_wrap(st, "%s: %s%s", ld->path, ld->prefix, key);
    }
    *out = buf;
    return REEL_OK;
}

/* A convolution stored at <block>.weight / <block>.bias with kernel (kt, kh, kw); a 2D kernel
 * is stored as [cout, cin, kh, kw] (kt = 1). cin < 0 takes the input width from the shape. */
static int ld_conv(const vae_loader *ld, const char *block, const char *canon, int cin, int kt,
                   int kh, int kw, vae_conv *c)
{
    char key[256], s[96];
    snprintf(key, sizeof key, "%s.weight", block);
    const weight_entry *e = ld_find(ld, key);
    if (!e)
        return err_set(REEL_E_NOT_FOUND, "%s: missing tensor %s%s", ld->path, ld->prefix, key);
    const tensor *t = &e->t;
    int ok = (t->ndim == 5 && t->shape[2] == kt && t->shape[3] == kh && t->shape[4] == kw) ||
             (t->ndim == 4 && kt == 1 && t->shape[2] == kh && t->shape[3] == kw);
    if (!ok || t->shape[0] < 1 || t->shape[0] > 65536 || t->shape[1] < 1 || t->shape[1] > 65536 ||
        (cin >= 0 && t->shape[1] != cin))
        return err_set(REEL_E_FORMAT,
                       "%s: %s%s has shape %s, expected [out, %d, %s%d, %d]", ld->path,
                       ld->prefix, key, tensor_shape_str(t, s, sizeof s), cin,
                       kt > 1 ? "3, " : "", kh, kw);
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", canon);
    c->cout = (int)t->shape[0];
    c->cin = (int)t->shape[1];
    c->kt = kt, c->kh = kh, c->kw = kw;
    c->st = c->sh = c->sw = 1;
    c->pad_top = c->pad_bottom = (kh - 1) / 2;
    c->pad_left = c->pad_right = (kw - 1) / 2;
    c->cache_frames = kt - 1;
    int64_t n = (int64_t)c->cout * c->cin * kt * kh * kw;
    TRY(ld_read(ld, key, n, &c->w));
    snprintf(key, sizeof key, "%s.bias", block);
    return ld_read(ld, key, c->cout, &c->b);
}

static int ld_norm(const vae_loader *ld, const char *key, int c, vae_norm *n)
{
    n->c = c;
    return ld_read(ld, key, c, &n->g);
}

/* Residual block: names differ between layouts, structure does not. */
static int ld_res(const vae_loader *ld, const char *block, const char *canon, int cin,
                  vae_layer *L)
{
    int orig = ld->layout == VL_ORIGINAL;
    char key[256], name[96];
    L->kind = VK_RES;
    snprintf(key, sizeof key, "%s.%s", block, orig ? "residual.2" : "conv1");
    snprintf(name, sizeof name, "%s.residual.2", canon);
    TRY(ld_conv(ld, key, name, cin, 3, 3, 3, &L->c[0]));
    int cout = L->c[0].cout;
    snprintf(key, sizeof key, "%s.%s", block, orig ? "residual.6" : "conv2");
    snprintf(name, sizeof name, "%s.residual.6", canon);
    TRY(ld_conv(ld, key, name, cout, 3, 3, 3, &L->c[1]));
    if (L->c[1].cout != cout)
        return err_set(REEL_E_FORMAT, "%s: %s: second convolution has %d outputs, first %d",
                       ld->path, canon, L->c[1].cout, cout);
    snprintf(key, sizeof key, "%s.%s", block, orig ? "residual.0.gamma" : "norm1.gamma");
    TRY(ld_norm(ld, key, cin, &L->n1));
    snprintf(key, sizeof key, "%s.%s", block, orig ? "residual.3.gamma" : "norm2.gamma");
    TRY(ld_norm(ld, key, cout, &L->n2));
    L->nconv = 2;
    if (cin != cout) {
        snprintf(key, sizeof key, "%s.%s", block, orig ? "shortcut" : "conv_shortcut");
        snprintf(name, sizeof name, "%s.shortcut", canon);
        TRY(ld_conv(ld, key, name, cin, 1, 1, 1, &L->c[2]));
        if (L->c[2].cout != cout)
            return err_set(REEL_E_FORMAT, "%s: %s: shortcut has %d outputs, block %d", ld->path,
                           canon, L->c[2].cout, cout);
        L->nconv = 3;
    }
    L->cin = cin, L->cout = cout;
    return REEL_OK;
}

static int ld_attn(const vae_loader *ld, const char *block, const char *canon, int c,
                   vae_layer *L)
{
    char key[256], name[96];
    L->kind = VK_ATTN;
    snprintf(key, sizeof key, "%s.norm.gamma", block);
    TRY(ld_norm(ld, key, c, &L->n1));
    snprintf(key, sizeof key, "%s.to_qkv", block);
    snprintf(name, sizeof name, "%s.to_qkv", canon);
    TRY(ld_conv(ld, key, name, c, 1, 1, 1, &L->c[0]));
    snprintf(key, sizeof key, "%s.proj", block);
    snprintf(name, sizeof name, "%s.proj", canon);
    TRY(ld_conv(ld, key, name, c, 1, 1, 1, &L->c[1]));
    if (L->c[0].cout != 3 * c || L->c[1].cout != c)
        return err_set(REEL_E_FORMAT, "%s: %s: to_qkv has %d outputs and proj %d for %d channels",
                       ld->path, canon, L->c[0].cout, L->c[1].cout, c);
    L->nconv = 2;
    L->cin = L->cout = c;
    return REEL_OK;
}

/* Resample: up (decoder) or down (encoder); 3D when a time_conv is present. */
static int ld_resample(const vae_loader *ld, const char *block, const char *canon, int c, int up,
                       vae_layer *L)
{
    char key[256], name[96];
    int has_time = ld_has(ld, block, "time_conv.weight");
    snprintf(key, sizeof key, "%s.resample.1", block);
    snprintf(name, sizeof name, "%s.resample.1", canon);
    TRY(ld_conv(ld, key, name, c, 1, 3, 3, &L->c[0]));
    L->nconv = 1;
    if (up) {
        L->kind = has_time ? VK_UP3D : VK_UP2D;
    } else {
        L->kind = has_time ? VK_DOWN3D : VK_DOWN2D;
        vae_conv *r = &L->c[0];
        r->sh = r->sw = 2;
        r->pad_top = r->pad_left = 0; /* ZeroPad2d((0, 1, 0, 1)) */
        r->pad_bottom = r->pad_right = 1;
        if (r->cout != c)
            return err_set(REEL_E_FORMAT, "%s: %s: downsampling changes %d channels to %d",
                           ld->path, name, c, r->cout);
    }
    if (has_time) {
        snprintf(key, sizeof key, "%s.time_conv", block);
        snprintf(name, sizeof name, "%s.time_conv", canon);
        TRY(ld_conv(ld, key, name, c, 3, 1, 1, &L->c[1]));
        vae_conv *tc = &L->c[1];
        if (tc->cout != (up ? 2 * c : c))
            return err_set(REEL_E_FORMAT, "%s: %s has %d outputs for %d channels", ld->path,
                           name, tc->cout, c);
        if (!up) {
            tc->st = 2;          /* stride (2, 1, 1) over [last frame of the previous chunk, chunk] */
            tc->cache_frames = 1;
        }
        L->nconv = 2;
    }
    L->cin = c;
    L->cout = L->c[0].cout;
    return REEL_OK;
}

/* Classifies <block> by its keys and loads it; *done = 1 when the block does not exist. */
static int ld_block(const vae_loader *ld, const char *block, const char *canon, int c, int up,
                    vae_layer *L, int *done)
{
    int orig = ld->layout == VL_ORIGINAL;
    *done = 0;
    snprintf(L->name, sizeof L->name, "%s", canon);
    if (ld_has(ld, block, orig ? "residual.0.gamma" : "norm1.gamma"))
        return ld_res(ld, block, canon, c, L);
    if (ld_has(ld, block, "to_qkv.weight"))
        return ld_attn(ld, block, canon, c, L);
    if (ld_has(ld, block, "resample.1.weight"))
        return ld_resample(ld, block, canon, c, up, L);
    *done = 1;
    return REEL_OK;
}

static int net_push(const vae_loader *ld, vae_net *net, vae_layer **L)
{
    if (net->n >= VAE_MAX_LAYERS)
        return err_set(REEL_E_UNSUPPORTED, "%s: more than %d VAE blocks", ld->path,
                       VAE_MAX_LAYERS);
    *L = &net->l[net->n++];
    memset(*L, 0, sizeof **L);
    return REEL_OK;
}

/* conv_in / conv1 of encoder or decoder. */
static int ld_first_conv(const vae_loader *ld, vae_net *net, const char *side, int cin, int *c)
{
    int orig = ld->layout == VL_ORIGINAL;
    char key[128], canon[96];
    vae_layer *L = NULL;
    TRY(net_push(ld, net, &L));
    snprintf(key, sizeof key, "%s.%s", side, orig ? "conv1" : "conv_in");
    snprintf(canon, sizeof canon, "%s.conv1", side);
    snprintf(L->name, sizeof L->name, "%s", canon);
    L->kind = VK_CONV;
    TRY(ld_conv(ld, key, canon, cin, 3, 3, 3, &L->c[0]));
    L->nconv = 1;
    L->cin = cin;
    *c = L->cout = L->c[0].cout;
    return REEL_OK;
}

static int ld_middle(const vae_loader *ld, vae_net *net, const char *side, int *c)
{
    static const char *orig_names[3] = {"middle.0", "middle.1", "middle.2"};
    static const char *diff_names[3] = {"mid_block.resnets.0", "mid_block.attentions.0",
                                        "mid_block.resnets.1"};
    for (int i = 0; i < 3; i++) {
        char block[128], canon[96];
        int done;
        vae_layer *L = NULL;
        snprintf(block, sizeof block, "%s.%s", side,
                 ld->layout == VL_ORIGINAL ? orig_names[i] : diff_names[i]);
        snprintf(canon, sizeof canon, "%s.%s", side, orig_names[i]);
        TRY(net_push(ld, net, &L));
        TRY(ld_block(ld, block, canon, *c, 0, L, &done));
        if (done || L->kind != (i == 1 ? VK_ATTN : VK_RES))
            return err_set(REEL_E_FORMAT, "%s: %s%s: expected a %s block", ld->path, ld->prefix,
                           block, i == 1 ? "attention" : "residual");
        *c = L->cout;
    }
    return REEL_OK;
}

static int ld_head(const vae_loader *ld, vae_net *net, const char *side, int *c)
{
    int orig = ld->layout == VL_ORIGINAL;
    char key[128], canon[96];
    vae_layer *L = NULL;
    TRY(net_push(ld, net, &L));
    snprintf(canon, sizeof canon, "%s.head.2", side);
    snprintf(L->name, sizeof L->name, "%s.head", side);
    L->kind = VK_HEAD;
    snprintf(key, sizeof key, "%s.%s", side, orig ? "head.0.gamma" : "norm_out.gamma");
    TRY(ld_norm(ld, key, *c, &L->n1));
    snprintf(key, sizeof key, "%s.%s", side, orig ? "head.2" : "conv_out");
    TRY(ld_conv(ld, key, canon, *c, 3, 3, 3, &L->c[0]));
    L->nconv = 1;
    L->cin = *c;
    *c = L->cout = L->c[0].cout;
    return REEL_OK;
}

/* Loads <block> as the next layer when it exists (*done = 1 when it does not). */
static int ld_next(const vae_loader *ld, vae_net *net, const char *block, const char *canon,
                   int up, int *c, int *done)
{
    vae_layer *L = NULL;
    TRY(net_push(ld, net, &L));
    TRY(ld_block(ld, block, canon, *c, up, L, done));
    if (*done)
        net->n--;
    else
        *c = L->cout;
    return REEL_OK;
}

static int ld_encoder(const vae_loader *ld, wan_vae *v)
{
    vae_net *net = &v->enc;
    int c, done = 0;
    TRY(ld_first_conv(ld, net, "encoder", 3, &c));
    for (int i = 0; !done; i++) {
        char block[128], canon[96];
        snprintf(block, sizeof block, "encoder.%s.%d",
                 ld->layout == VL_ORIGINAL ? "downsamples" : "down_blocks", i);
        snprintf(canon, sizeof canon, "encoder.downsamples.%d", i);
        TRY(ld_next(ld, net, block, canon, 0, &c, &done));
    }
    TRY(ld_middle(ld, net, "encoder", &c));
    TRY(ld_head(ld, net, "encoder", &c));
    if (c != 2 * v->z)
        return err_set(REEL_E_FORMAT, "%s: the encoder ends in %d channels, expected 2 x %d",
                       ld->path, c, v->z);
    const char *qkey = ld->layout == VL_ORIGINAL ? "conv1" : "quant_conv";
    TRY(ld_conv(ld, qkey, "conv1", c, 1, 1, 1, &v->quant));
    if (v->quant.cout != c)
        return err_set(REEL_E_FORMAT, "%s: %s has %d outputs for %d channels", ld->path, qkey,
                       v->quant.cout, c);
    return REEL_OK;
}

static int ld_decoder(const vae_loader *ld, wan_vae *v)
{
    vae_net *net = &v->dec;
    char block[128], canon[96];
    int c, done = 0, flat = 0;
    TRY(ld_first_conv(ld, net, "decoder", v->z, &c));
    TRY(ld_middle(ld, net, "decoder", &c));
    if (ld->layout == VL_ORIGINAL) {
        for (; !done; flat++) {
            snprintf(block, sizeof block, "decoder.upsamples.%d", flat);
            TRY(ld_next(ld, net, block, block, 1, &c, &done));
        }
    } else {
        /* up_blocks.I.{resnets.J, upsamplers.0}, flattened in the original's order */
        for (int i = 0;; i++) {
            int before = net->n;
            for (int j = 0;; j++, flat++) {
                snprintf(block, sizeof block, "decoder.up_blocks.%d.resnets.%d", i, j);
                snprintf(canon, sizeof canon, "decoder.upsamples.%d", flat);
                TRY(ld_next(ld, net, block, canon, 1, &c, &done));
                if (done)
                    break;
            }
            snprintf(block, sizeof block, "decoder.up_blocks.%d.upsamplers.0", i);
            snprintf(canon, sizeof canon, "decoder.upsamples.%d", flat);
            TRY(ld_next(ld, net, block, canon, 1, &c, &done));
            flat += !done;
            if (net->n == before)
                break;
        }
    }
    TRY(ld_head(ld, net, "decoder", &c));
    if (c != 3)
        return err_set(REEL_E_FORMAT, "%s: the decoder ends in %d channels, expected 3 (RGB)",
                       ld->path, c);
    return REEL_OK;
}

/* Finds the layout and the key prefix (ComfyUI files may nest the VAE under one). */
static int ld_detect(vae_loader *ld)
{
    static const struct {
        const char *suffix;
        enum vae_layout layout;
    } marks[] = {{"decoder.conv1.weight", VL_ORIGINAL}, {"decoder.conv_in.weight", VL_DIFFUSERS}};
    int n = weights_count(ld->ws);
    for (int i = 0; i < n; i++) {
        const char *name = weights_at(ld->ws, i)->name;
        size_t len = strlen(name);
        for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
            size_t sl = strlen(marks[m].suffix);
            if (len < sl || strcmp(name + len - sl, marks[m].suffix) != 0)
                continue;
            size_t pl = len - sl;
            if (pl && name[pl - 1] != '.')
                continue;
            if (pl >= sizeof ld->prefix)
                continue;
            memcpy(ld->prefix, name, pl);
            ld->prefix[pl] = 0;
            ld->layout = marks[m].layout;
            return REEL_OK;
        }
    }
    return err_set(REEL_E_FORMAT,
                   "%s: not a Wan VAE checkpoint (no decoder.conv1.weight or "
                   "decoder.conv_in.weight among its %d tensors)",
                   ld->path, n);
}

static void describe(const vae_loader *ld, wan_vae *v)
{
    int n3d = 0, n2d = 0;
    for (int i = 0; i < v->dec.n; i++) {
        n3d += v->dec.l[i].kind == VK_UP3D;
        n2d += v->dec.l[i].kind == VK_UP2D;
    }
    int len = snprintf(v->desc, sizeof v->desc, "Wan VAE (%s layout%s%s), dim %d, z %d, widths",
                       ld->layout == VL_ORIGINAL ? "original" : "diffusers",
                       ld->prefix[0] ? ", prefix " : "", ld->prefix, v->dim, v->z);
    int last = -1;
    for (int i = 0; i < v->dec.n && len < (int)sizeof v->desc; i++) {
        const vae_layer *L = &v->dec.l[i];
        if (L->kind == VK_RES && L->cout != last) {
            len += snprintf(v->desc + len, sizeof v->desc - (size_t)len, " %d", L->cout);
            last = L->cout;
        }
    }
    if (len < (int)sizeof v->desc)
        snprintf(v->desc + len, sizeof v->desc - (size_t)len,
                 ", %d+%d upsamplings (time x%d, space x%d)%s", n3d, n2d, v->time_down,
                 v->space_down, v->has_encoder ? "" : ", no encoder");
}

/* Both halves must agree on how much time and space shrink. */
static int check_factors(const vae_loader *ld, wan_vae *v)
{
    int t = 1, s = 1;
    for (int i = 0; i < v->dec.n; i++) {
        enum vae_kind k = v->dec.l[i].kind;
        if (k == VK_UP3D)
            t *= 2;
        if (k == VK_UP2D || k == VK_UP3D)
            s *= 2;
    }
    v->time_down = t;
    v->space_down = s;
    if (!v->has_encoder)
        return REEL_OK;
    int te = 1, se = 1;
    for (int i = 0; i < v->enc.n; i++) {
        enum vae_kind k = v->enc.l[i].kind;
        if (k == VK_DOWN3D)
            te *= 2;
        if (k == VK_DOWN2D || k == VK_DOWN3D)
            se *= 2;
    }
    if (te != t || se != s)
        return err_set(REEL_E_FORMAT,
                       "%s: the encoder reduces time x%d and space x%d, the decoder expands "
                       "x%d and x%d",
                       ld->path, te, se, t, s);
    return REEL_OK;
}

int vae_load_weights(const char *path, wan_vae *v)
{
    vae_loader ld;
    memset(&ld, 0, sizeof ld);
    ld.path = path;
    TRY(weights_open(path, &ld.ws));
    int st = ld_detect(&ld);
    if (st < 0)
        goto done;
    /* z from post_quant_conv (conv2): [z, z, 1, 1, 1]. */
    const weight_entry *pq = ld_find(&ld, ld.layout == VL_ORIGINAL ? "conv2.weight"
                                                                   : "post_quant_conv.weight");
    if (!pq) {
        st = err_set(REEL_E_NOT_FOUND, "%s: missing tensor %s%s", path, ld.prefix,
                     ld.layout == VL_ORIGINAL ? "conv2.weight" : "post_quant_conv.weight");
        goto done;
    }
    v->z = (int)pq->t.shape[0];
    if (pq->t.ndim != 5 || v->z != VAE_Z) {
        char s[96];
        st = err_set(REEL_E_UNSUPPORTED,
                     "%s: %s%s has shape %s; only the 16-channel Wan2.1 VAE is supported "
                     "(its latent mean/std constants are for 16 channels)",
                     path, ld.prefix, pq->name + strlen(ld.prefix),
                     tensor_shape_str(&pq->t, s, sizeof s));
        goto done;
    }
    st = ld_conv(&ld, ld.layout == VL_ORIGINAL ? "conv2" : "post_quant_conv", "conv2", v->z, 1, 1,
                 1, &v->post_quant);
    if (st < 0)
        goto done;
    if (v->post_quant.cout != v->z) {
        st = err_set(REEL_E_FORMAT, "%s: conv2 has %d outputs, expected %d", path,
                     v->post_quant.cout, v->z);
        goto done;
    }
    if ((st = ld_decoder(&ld, v)) < 0)
        goto done;
    v->has_encoder = ld_find(&ld, ld.layout == VL_ORIGINAL ? "encoder.conv1.weight"
                                                           : "encoder.conv_in.weight") != NULL;
    if (v->has_encoder && (st = ld_encoder(&ld, v)) < 0)
        goto done;
    v->dim = v->dec.l[v->dec.n - 1].cin;
    if ((st = check_factors(&ld, v)) < 0)
        goto done;
    memcpy(v->mean, vae_mean, sizeof vae_mean);
    memcpy(v->std, vae_std, sizeof vae_std);
    describe(&ld, v);
done:
    weights_close(ld.ws);
    return st;
}

static void conv_free_host(vae_conv *c)
{
    free(c->w);
    free(c->b);
    c->w = c->b = NULL;
}

void vae_net_free_host(wan_vae *v)
{
    vae_net *nets[2] = {&v->enc, &v->dec};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nets[k]->n; i++) {
            vae_layer *L = &nets[k]->l[i];
            for (int j = 0; j < 3; j++)
                conv_free_host(&L->c[j]);
            free(L->n1.g);
            free(L->n2.g);
            L->n1.g = L->n2.g = NULL;
        }
    conv_free_host(&v->quant);
    conv_free_host(&v->post_quant);
}
