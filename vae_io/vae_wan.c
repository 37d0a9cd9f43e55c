/* The Wan VAE's public calls: loading onto a backend, decode (streamed chunk by chunk, with
 * optional spatial tiling) and encode (1 frame, then 4 at a time, as WanVAE_.encode). */
#include "vae_internal.h"

#include "dit/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int wan_vae_load(const char *path, backend *be, wan_vae **out)
{
    *out = NULL;
    wan_vae *v = calloc(1, sizeof *v);
    if (!v)
        return err_set(REEL_E_NOMEM, "vae: model struct");
    v->be = be;
    int st = vae_load_weights(path, v);
    if (st >= 0)
        st = be->dev == DEV_CUDA ? vae_exec_cuda_create(be, &v->ex) : vae_exec_cpu_create(be, &v->ex);
    if (st >= 0 && (st = v->ex->ops->prepare(v->ex, v)) < 0)
        err_wrap(st, "%s", path);
    if (st < 0) {
        wan_vae_free(v);
        return st;
    }
    *out = v;
    return REEL_OK;
}

void wan_vae_free(wan_vae *v)
{
    if (!v)
        return;
    if (v->ex)
        v->ex->ops->destroy(v->ex);
    vae_net_free_host(v);
    free(v);
}

const char *wan_vae_describe(const wan_vae *v) { return v->desc; }

void wan_vae_memory(const wan_vae *v, size_t *activations_peak, size_t *weights)
{
    v->ex->ops->memory(v->ex, activations_peak, weights);
}

static int host_f32(const tensor *t, const char *what)
{
    char s[96];
    if (t->dtype != DT_F32 || t->dev != DEV_CPU || !tensor_is_contiguous(t) || !t->data)
        return err_set(REEL_E_INVALID, "vae: %s must be a contiguous f32 host tensor, got %s %s%s",
                       what, dtype_name(t->dtype), t->dev == DEV_CPU ? "host " : "device ",
                       tensor_shape_str(t, s, sizeof s));
    return REEL_OK;
}

/* ---- decode ------------------------------------------------------------------------------ */

/* Where decoded chunks go: straight to the caller, or blended into a frame buffer per tile. */
typedef struct dec_sink {
    wan_vae *v;
    int F, H, W;          /* the whole video */
    int py, px, ph, pw;   /* this region, in pixels */
    vae_frames_cb cb;
    void *user;
    float *video;         /* [3, F, H, W] or NULL */
    const float *weight;  /* tiling: [ph, pw] blend weights; NULL when untiled */
} dec_sink;

static int sink_frames(dec_sink *k, const float *frames, int f0, int n)
{
    size_t plane = (size_t)k->H * k->W, rplane = (size_t)k->ph * k->pw;
    if (!k->weight) {
        if (k->video)
            for (int c = 0; c < 3; c++)
                memcpy(k->video + ((size_t)c * k->F + f0) * plane, frames + (size_t)c * n * plane,
                       (size_t)n * plane * sizeof(float));
        if (k->cb) {
            int r = k->cb(k->user, frames, n);
            if (r)
                return r < 0 ? r : err_set(REEL_E_CANCELLED, "vae: decoding stopped by the callback");
        }
        return REEL_OK;
    }
    for (int c = 0; c < 3; c++)
        for (int f = 0; f < n; f++) {
            const float *src = frames + ((size_t)c * n + f) * rplane;
            float *dst = k->video + ((size_t)c * k->F + f0 + f) * plane;
            for (int y = 0; y < k->ph; y++) {
                float *d = dst + (size_t)(k->py + y) * k->W + k->px;
                const float *s = src + (size_t)y * k->pw, *wt = k->weight + (size_t)y * k->pw;
                for (int x = 0; x < k->pw; x++)
                    d[x] += wt[x] * s[x];
            }
        }
    return REEL_OK;
}

/* Decodes latents[:, :, ly:ly+lh, lx:lx+lw] chunk by chunk into k. Each chunk's frames are
 * fetched while the device already works on the next one. */
static int decode_region(wan_vae *v, const tensor *lat, int ly, int lx, int lh, int lw,
                         dec_sink *k)
{
    vae_exec *ex = v->ex;
    int T = (int)lat->shape[1], h = (int)lat->shape[2], w = (int)lat->shape[3];
    const float *z = lat->data;
    vae_stream *s = NULL;
    float *box = malloc((size_t)VAE_Z * lh * lw * sizeof(float));
    if (!box)
        return err_set(REEL_E_NOMEM, "vae: latent chunk buffer");
    int st = vae_stream_create(&v->dec, &s);
    int pending = -1, pending_f0 = 0, pending_n = 0;
    for (int t0 = 0; st >= 0 && t0 < T; t0++) {
        /* WanVAE_.decode: z / (1 / std) + mean, then conv2, then one latent frame per call */
        for (int c = 0; c < VAE_Z; c++) {
            float inv = 1.0f / v->std[c];
            for (int y = 0; y < lh; y++)
                for (int x = 0; x < lw; x++)
                    box[((size_t)c * lh + y) * lw + x] =
                        z[(((size_t)c * T + t0) * h + ly + y) * w + lx + x] / inv + v->mean[c];
        }
        vae_act a = {0}, b = {0};
        st = ex->ops->alloc(ex, VAE_Z, 1, lh, lw, &a);
        if (st >= 0)
            st = ex->ops->upload(ex, box, &a);
        if (st >= 0)
            st = vae_run_conv(ex, &v->post_quant, NULL, &a, NULL, NULL, &b);
        ex->ops->release(ex, &a);
        if (st >= 0)
            st = vae_stream_run(ex, &v->dec, s, &b);
        int n = t0 == 0 ? 1 : v->time_down, f0 = t0 == 0 ? 0 : 1 + (t0 - 1) * v->time_down;
        if (st >= 0 && (b.c != 3 || b.t != n || b.h != k->ph || b.w != k->pw))
            st = err_set(REEL_E_INVALID, "vae: decoder chunk came out [%d, %d, %d, %d], expected "
                         "[3, %d, %d, %d]", b.c, b.t, b.h, b.w, n, k->ph, k->pw);
        if (st >= 0)
            st = ex->ops->download(ex, &b, t0 & 1, !k->weight);
        ex->ops->release(ex, &b);
        if (st >= 0 && pending >= 0) {
            const float *frames;
            st = ex->ops->fetch(ex, pending, &frames);
            if (st >= 0)
                st = sink_frames(k, frames, pending_f0, pending_n);
        }
        pending = t0 & 1, pending_f0 = f0, pending_n = n;
    }
    if (st >= 0 && pending >= 0) {
        const float *frames;
        st = ex->ops->fetch(ex, pending, &frames);
        if (st >= 0)
            st = sink_frames(k, frames, pending_f0, pending_n);
    }
    vae_stream_free(ex, s);
    free(box);
    return st;
}

/* Starts of tiles of length t covering [0, n), neighbours overlapping by at least ov; the last
 * tile ends at n. Returns the count (at most n). */
static int tile_starts(int n, int t, int ov, int *starts)
{
    int k = 0;
    for (int s = 0;; s += t - ov) {
        if (s + t >= n) {
            starts[k++] = n - t;
            return k;
        }
        starts[k++] = s;
    }
}

/* Blend weight along one axis: ramps of r pixels, (i + 0.5) / r, where a neighbour overlaps,
 * so two overlapping ramps sum to one. */
static float ramp(int i, int len, int r, int before, int after)
{
    float wgt = 1.0f;
    if (before && i < r)
        wgt = ((float)i + 0.5f) / (float)r;
    if (after && i >= len - r) {
        float e = ((float)(len - i) - 0.5f) / (float)r;
        wgt = e < wgt ? e : wgt;
    }
    return wgt;
}

/* Tile after tile, each through all frames with its own caches, blended into video; then the
 * finished frames go to the callback in the usual chunks. */
static int decode_tiled(wan_vae *v, const tensor *lat, const vae_decode_opts *o, dec_sink *k)
{
    int h = (int)lat->shape[2], w = (int)lat->shape[3], T = (int)lat->shape[1], s = v->space_down;
    int th = o->tile_h < h ? o->tile_h : h, tw = o->tile_w < w ? o->tile_w : w;
    size_t plane = (size_t)k->H * k->W, total = 3 * (size_t)k->F * plane;
    float *own = NULL, *wsum = calloc(plane, sizeof(float));
    float *wt = malloc((size_t)th * tw * s * s * sizeof(float));
    int *ys = malloc((size_t)h * sizeof(int)), *xs = malloc((size_t)w * sizeof(int));
    float *chunk = malloc(3 * (size_t)v->time_down * plane * sizeof(float));
    if (!k->video)
        k->video = own = malloc(total * sizeof(float));
    int st = REEL_OK;
    if (!wsum || !wt || !ys || !xs || !chunk || !k->video) {
        st = err_set(REEL_E_NOMEM, "vae: tiled decoding buffers for %d frames of %dx%d", k->F,
                     k->H, k->W);
        goto done;
    }
    memset(k->video, 0, total * sizeof(float));
    int ny = tile_starts(h, th, o->tile_overlap, ys), nx = tile_starts(w, tw, o->tile_overlap, xs);
    int r = o->tile_overlap * s;
    k->ph = th * s, k->pw = tw * s;
    k->weight = wt;
    for (int i = 0; st >= 0 && i < ny; i++)
        for (int j = 0; st >= 0 && j < nx; j++) {
            k->py = ys[i] * s, k->px = xs[j] * s;
            for (int y = 0; y < k->ph; y++) {
                float wy = ramp(y, k->ph, r, ys[i] > 0, ys[i] + th < h);
                for (int x = 0; x < k->pw; x++) {
                    float wx = ramp(x, k->pw, r, xs[j] > 0, xs[j] + tw < w);
                    wt[(size_t)y * k->pw + x] = wy * wx;
                    wsum[(size_t)(k->py + y) * k->W + k->px + x] += wy * wx;
                }
            }
            st = decode_region(v, lat, ys[i], xs[j], th, tw, k);
            if (st < 0)
                err_wrap(st, "vae: tile at latent (%d, %d)", ys[i], xs[j]);
        }
    for (size_t i = 0; st >= 0 && i < total; i++) {
        float x = k->video[i] / wsum[i % plane];
        k->video[i] = x < -1.0f ? -1.0f : x > 1.0f ? 1.0f : x;
    }
    for (int t0 = 0; st >= 0 && k->cb && t0 < T; t0++) {
        int n = t0 == 0 ? 1 : v->time_down, f0 = t0 == 0 ? 0 : 1 + (t0 - 1) * v->time_down;
        for (int c = 0; c < 3; c++)
            memcpy(chunk + (size_t)c * n * plane, k->video + ((size_t)c * k->F + f0) * plane,
                   (size_t)n * plane * sizeof(float));
        int rc = k->cb(k->user, chunk, n);
        if (rc)
            st = rc < 0 ? rc : err_set(REEL_E_CANCELLED, "vae: decoding stopped by the callback");
    }
done:
    free(own);
    free(wsum);
    free(wt);
    free(ys);
    free(xs);
    free(chunk);
    return st;
}

int wan_vae_decode(wan_vae *v, const tensor *latents, const vae_decode_opts *o, vae_frames_cb cb,
                   void *user, tensor *video_out)
{
    const int64_t want[4] = {VAE_Z, -1, -1, -1};
    TRY(host_f32(latents, "latents"));
    TRY(tensor_expect(latents, "vae decode: latents", DT_F32, 4, want));
    int64_t T = latents->shape[1], h = latents->shape[2], w = latents->shape[3];
    if (T < 1 || h < 1 || w < 1 || T > 100000 || h > 4096 || w > 4096)
        return err_set(REEL_E_INVALID, "vae decode: latents [16, %lld, %lld, %lld] out of range",
                       (long long)T, (long long)h, (long long)w);
    int F = 1 + v->time_down * (int)(T - 1), H = v->space_down * (int)h, W = v->space_down * (int)w;
    if (video_out) {
        const int64_t vshape[4] = {3, F, H, W};
        TRY(host_f32(video_out, "video"));
        TRY(tensor_expect(video_out, "vae decode: video", DT_F32, 4, vshape));
    }
    int tiled = o && (o->tile_h || o->tile_w || o->tile_overlap);
    if (tiled && (o->tile_h < 1 || o->tile_w < 1 || o->tile_overlap < 0 ||
                  (o->tile_h < h && o->tile_overlap >= o->tile_h) ||
                  (o->tile_w < w && o->tile_overlap >= o->tile_w)))
        return err_set(REEL_E_INVALID,
                       "vae decode: tiles of %dx%d latents overlapping by %d: sizes must be "
                       "positive and the overlap smaller than a tile",
                       o->tile_h, o->tile_w, o->tile_overlap);
    if (tiled && o->tile_h >= h && o->tile_w >= w)
        tiled = 0;
    dec_sink k = {v, F, H, W, 0, 0, H, W, cb, user, video_out ? video_out->data : NULL, NULL};
    v->ex->ops->reset_peak(v->ex);
    if (tiled)
        return decode_tiled(v, latents, o, &k);
    return decode_region(v, latents, 0, 0, (int)h, (int)w, &k);
}

/* ---- encode ------------------------------------------------------------------------------ */

int wan_vae_encode(wan_vae *v, const tensor *video, tensor *latents_out)
{
    const int64_t want[4] = {3, -1, -1, -1};
    if (!v->has_encoder)
        return err_set(REEL_E_UNSUPPORTED, "vae encode: this checkpoint has no encoder weights");
    TRY(host_f32(video, "video"));
    TRY(tensor_expect(video, "vae encode: video", DT_F32, 4, want));
    int64_t F = video->shape[1], H = video->shape[2], W = video->shape[3];
    int td = v->time_down, sd = v->space_down;
    if (F < 1 || (F - 1) % td || H < sd || W < sd || H % sd || W % sd || H > 32768 || W > 32768)
        return err_set(REEL_E_INVALID,
                       "vae encode: video [3, %lld, %lld, %lld]: frames must be 1 + %d k and "
                       "height and width multiples of %d",
                       (long long)F, (long long)H, (long long)W, td, sd);
    int T = 1 + (int)(F - 1) / td, h = (int)H / sd, w = (int)W / sd;
    const int64_t lshape[4] = {VAE_Z, T, h, w};
    TRY(host_f32(latents_out, "latents"));
    TRY(tensor_expect(latents_out, "vae encode: latents", DT_F32, 4, lshape));

    vae_exec *ex = v->ex;
    vae_stream *s = NULL;
    size_t plane = (size_t)H * W, lplane = (size_t)h * w;
    float *box = malloc(3 * (size_t)td * plane * sizeof(float));
    if (!box)
        return err_set(REEL_E_NOMEM, "vae encode: chunk buffer of %d frames", td);
    ex->ops->reset_peak(ex);
    int st = vae_stream_create(&v->enc, &s);
    const float *src = video->data;
    float *dst = latents_out->data;
    for (int t = 0; st >= 0 && t < T; t++) {
        int f0 = t == 0 ? 0 : 1 + (t - 1) * td, n = t == 0 ? 1 : td;
        for (int c = 0; c < 3; c++)
            memcpy(box + (size_t)c * n * plane, src + ((size_t)c * F + f0) * plane,
                   (size_t)n * plane * sizeof(float));
        vae_act a = {0}, b = {0};
        const float *mu;
        st = ex->ops->alloc(ex, 3, n, (int)H, (int)W, &a);
        if (st >= 0)
            st = ex->ops->upload(ex, box, &a);
        if (st >= 0)
            st = vae_stream_run(ex, &v->enc, s, &a);
        if (st >= 0 && (a.c != 2 * VAE_Z || a.t != 1 || a.h != h || a.w != w))
            st = err_set(REEL_E_INVALID, "vae encode: chunk came out [%d, %d, %d, %d], expected "
                         "[%d, 1, %d, %d]", a.c, a.t, a.h, a.w, 2 * VAE_Z, h, w);
        if (st >= 0)
            st = vae_run_conv(ex, &v->quant, NULL, &a, NULL, NULL, &b);
        if (st >= 0)
            st = ex->ops->download(ex, &b, 0, 0);
        if (st >= 0)
            st = ex->ops->fetch(ex, 0, &mu);
        ex->ops->release(ex, &a);
        ex->ops->release(ex, &b);
        /* mu = the first z channels; (mu - mean) * (1 / std) as WanVAE_.encode */
        for (int c = 0; st >= 0 && c < VAE_Z; c++) {
            float inv = 1.0f / v->std[c];
            for (size_t i = 0; i < lplane; i++)
                dst[((size_t)c * T + t) * lplane + i] = (mu[(size_t)c * lplane + i] - v->mean[c]) * inv;
        }
    }
    vae_stream_free(ex, s);
    free(box);
    return st;
}
