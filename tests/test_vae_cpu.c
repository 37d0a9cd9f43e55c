/* Wan VAE on the CPU: a tiny random-weight VAE in the published layout (dim 8 instead of 96,
 * z 16, dim_mult [1,2,4,4], 2 residual blocks, temporal down/upsampling in the last two
 * stages) written as Wan2.1_VAE.pth, as a diffusers vae/ folder and as a prefixed ComfyUI-style
 * safetensors, and checked against a plain reference written here that runs every layer over
 * the whole sequence at once (zero front padding instead of frame caches). So the chunked,
 * cached decode of the library must equal the one-shot computation. Also: encode, streaming
 * chunk sizes, tiled vs untiled, and error paths. */
#include "check.h"
#include "support/model_writer.h"

#include "dit/error.h"
#include "dit/weights.h"
#include "vae_io/vae_wan.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define Z 16
#define DIM 8
#define MAXT 400

/* ---- the tiny model's tensors, by original name ----------------------------------------- */

typedef struct wt {
    char name[96];
    int ndim;
    int64_t shape[5];
    float *data;
    int64_t n;
} wt;

static wt model[MAXT];
static int nmodel;

static void add(const char *name, int ndim, const int64_t *shape, float stddev, float mean)
{
    if (nmodel == MAXT) {
        fprintf(stderr, "test bug: more than %d tensors\n", MAXT);
        exit(2);
    }
    wt *t = &model[nmodel++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->n = 1;
    for (int i = 0; i < ndim; i++)
        t->n *= (t->shape[i] = shape[i]);
    t->data = malloc((size_t)t->n * sizeof(float));
    check_fill_normal(t->data, (size_t)t->n, stddev);
    for (int64_t i = 0; i < t->n; i++)
        t->data[i] += mean;
}

static const float *W(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const float *W(const char *fmt, ...)
{
    char name[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    for (int i = 0; i < nmodel; i++)
        if (!strcmp(model[i].name, name))
            return model[i].data;
    fprintf(stderr, "test bug: no tensor %s\n", name);
    exit(2);
}

static const wt *find(const char *name)
{
    for (int i = 0; i < nmodel; i++)
        if (!strcmp(model[i].name, name))
            return &model[i];
    return NULL;
}

/* Weight scale of the next convolutions: the decoder head is kept small so that the video stays
 * inside (-1, 1) and the final clamp (which tiling moves after the blend) never acts. */
static float conv_gain = 1.0f;

static void add_conv(const char *block, int cout, int cin, int kt, int kh, int kw)
{
    char n[96];
    int64_t s5[5] = {cout, cin, kt, kh, kw}, s4[4] = {cout, cin, kh, kw};
    float sd = conv_gain / sqrtf((float)(cin * (kt ? kt : 1) * kh * kw));
    snprintf(n, sizeof n, "%s.weight", block);
    if (kt)
        add(n, 5, s5, sd, 0);
    else
        add(n, 4, s4, sd, 0);
    snprintf(n, sizeof n, "%s.bias", block);
    add(n, 1, s5, 0.1f, 0);
}

static void add_gamma(const char *key, int c, int images)
{
    int64_t s[4] = {c, 1, 1, 1};
    add(key, images ? 3 : 4, s, 0.2f, 1.0f);
}

static void add_res(const char *b, int cin, int cout)
{
    char n[96];
    snprintf(n, sizeof n, "%s.residual.0.gamma", b);
    add_gamma(n, cin, 0);
    snprintf(n, sizeof n, "%s.residual.2", b);
    add_conv(n, cout, cin, 3, 3, 3);
    snprintf(n, sizeof n, "%s.residual.3.gamma", b);
    add_gamma(n, cout, 0);
    snprintf(n, sizeof n, "%s.residual.6", b);
    add_conv(n, cout, cout, 3, 3, 3);
    if (cin != cout) {
        snprintf(n, sizeof n, "%s.shortcut", b);
        add_conv(n, cout, cin, 1, 1, 1);
    }
}

static void add_attn(const char *b, int c)
{
    char n[96];
    snprintf(n, sizeof n, "%s.norm.gamma", b);
    add_gamma(n, c, 1);
    snprintf(n, sizeof n, "%s.to_qkv", b);
    add_conv(n, 3 * c, c, 0, 1, 1);
    snprintf(n, sizeof n, "%s.proj", b);
    add_conv(n, c, c, 0, 1, 1);
}

/* Mirrors WanVAE_(dim, z_dim=16, dim_mult=[1,2,4,4], num_res_blocks=2, attn_scales=[],
 * temperal_downsample=[False, True, True]). */
static void build_model(int z, float head_gain)
{
    static const int mult[4] = {1, 2, 4, 4};
    static const int tdown[3] = {0, 1, 1};
    char b[96];
    nmodel = 0;
    /* encoder: dims = dim * [1, 1, 2, 4, 4] */
    int ed[5] = {DIM, DIM * mult[0], DIM * mult[1], DIM * mult[2], DIM * mult[3]};
    add_conv("encoder.conv1", ed[0], 3, 3, 3, 3);
    int idx = 0, c = ed[0];
    for (int i = 0; i < 4; i++) {
        for (int r = 0; r < 2; r++, idx++) {
            snprintf(b, sizeof b, "encoder.downsamples.%d", idx);
            add_res(b, c, ed[i + 1]);
            c = ed[i + 1];
        }
        if (i < 3) {
            snprintf(b, sizeof b, "encoder.downsamples.%d.resample.1", idx);
            add_conv(b, c, c, 0, 3, 3);
            if (tdown[i]) {
                snprintf(b, sizeof b, "encoder.downsamples.%d.time_conv", idx);
                add_conv(b, c, c, 3, 1, 1);
            }
            idx++;
        }
    }
    add_res("encoder.middle.0", c, c);
    add_attn("encoder.middle.1", c);
    add_res("encoder.middle.2", c, c);
    add_gamma("encoder.head.0.gamma", c, 0);
    add_conv("encoder.head.2", 2 * z, c, 3, 3, 3);
    add_conv("conv1", 2 * z, 2 * z, 1, 1, 1);
    add_conv("conv2", z, z, 1, 1, 1);
    /* decoder: dims = dim * [4, 4, 4, 2, 1], temperal_upsample = [True, True, False] */
    int dd[5] = {DIM * 4, DIM * 4, DIM * 4, DIM * 2, DIM};
    add_conv("decoder.conv1", dd[0], z, 3, 3, 3);
    add_res("decoder.middle.0", dd[0], dd[0]);
    add_attn("decoder.middle.1", dd[0]);
    add_res("decoder.middle.2", dd[0], dd[0]);
    idx = 0;
    for (int i = 0; i < 4; i++) {
        c = i > 0 ? dd[i] / 2 : dd[i];
        for (int r = 0; r < 3; r++, idx++) {
            snprintf(b, sizeof b, "decoder.upsamples.%d", idx);
            add_res(b, c, dd[i + 1]);
            c = dd[i + 1];
        }
        if (i < 3) {
            snprintf(b, sizeof b, "decoder.upsamples.%d.resample.1", idx);
            add_conv(b, c / 2, c, 0, 3, 3);
            if (i < 2) {
                snprintf(b, sizeof b, "decoder.upsamples.%d.time_conv", idx);
                add_conv(b, 2 * c, c, 3, 1, 1);
            }
            idx++;
        }
    }
    add_gamma("decoder.head.0.gamma", DIM, 0);
    conv_gain = head_gain;
    add_conv("decoder.head.2", 3, DIM, 3, 3, 3);
    conv_gain = 1.0f;
}

/* diffusers name of an original key (scripts/convert_wan_to_diffusers.py convert_vae). */
static void diffusers_name(const char *k, char *out, size_t cap)
{
    static const char *res_map[][2] = {{"residual.0.gamma", "norm1.gamma"},
                                       {"residual.2.", "conv1."},
                                       {"residual.3.gamma", "norm2.gamma"},
                                       {"residual.6.", "conv2."},
                                       {"shortcut.", "conv_shortcut."}};
    char side[16], rest[96];
    int n;
    if (!strcmp(k, "conv1.weight") || !strcmp(k, "conv1.bias")) {
        snprintf(out, cap, "quant_conv.%s", k + 6);
        return;
    }
    if (!strcmp(k, "conv2.weight") || !strcmp(k, "conv2.bias")) {
        snprintf(out, cap, "post_quant_conv.%s", k + 6);
        return;
    }
    const char *dot = strchr(k, '.');
    snprintf(side, sizeof side, "%.*s", (int)(dot - k), k);
    const char *tail = dot + 1, *suffix = NULL;
    char block[64];
    if (!strncmp(tail, "conv1.", 6)) {
        snprintf(out, cap, "%s.conv_in.%s", side, tail + 6);
        return;
    }
    if (!strncmp(tail, "head.0.", 7)) {
        snprintf(out, cap, "%s.norm_out.%s", side, tail + 7);
        return;
    }
    if (!strncmp(tail, "head.2.", 7)) {
        snprintf(out, cap, "%s.conv_out.%s", side, tail + 7);
        return;
    }
    if (sscanf(tail, "middle.%d.%95s", &n, rest) == 2) {
        if (n == 1)
            snprintf(block, sizeof block, "%s.mid_block.attentions.0", side);
        else
            snprintf(block, sizeof block, "%s.mid_block.resnets.%d", side, n / 2);
        suffix = rest;
    } else if (sscanf(tail, "downsamples.%d.%95s", &n, rest) == 2) {
        snprintf(block, sizeof block, "%s.down_blocks.%d", side, n);
        suffix = rest;
    } else if (sscanf(tail, "upsamples.%d.%95s", &n, rest) == 2) {
        if (n % 4 == 3)
            snprintf(block, sizeof block, "%s.up_blocks.%d.upsamplers.0", side, n / 4);
        else
            snprintf(block, sizeof block, "%s.up_blocks.%d.resnets.%d", side, n / 4, n % 4);
        suffix = rest;
    } else {
        fprintf(stderr, "test bug: no diffusers name for %s\n", k);
        exit(2);
    }
    for (size_t i = 0; i < sizeof res_map / sizeof res_map[0]; i++) {
        size_t l = strlen(res_map[i][0]);
        if (!strncmp(suffix, res_map[i][0], l)) {
            snprintf(out, cap, "%s.%s%s", block, res_map[i][1], suffix + l);
            return;
        }
    }
    snprintf(out, cap, "%s.%s", block, suffix);
}

static int write_model(const char *path, int diffusers, const char *prefix, int as_pth)
{
    tw_tensor *t = calloc((size_t)nmodel, sizeof *t);
    char (*names)[256] = calloc((size_t)nmodel, sizeof *names);
    for (int i = 0; i < nmodel; i++) {
        char d[192];
        if (diffusers)
            diffusers_name(model[i].name, d, sizeof d);
        else
            snprintf(d, sizeof d, "%s", model[i].name);
        snprintf(names[i], sizeof names[i], "%s%s", prefix, d);
        t[i].name = names[i];
        t[i].dtype = DT_F32;
        t[i].ndim = model[i].ndim;
        memcpy(t[i].shape, model[i].shape, sizeof t[i].shape);
        t[i].data = model[i].data;
    }
    int st = as_pth ? tw_write_pth(path, t, nmodel, NULL) : tw_write_safetensors(path, t, nmodel, NULL);
    free(t);
    free(names);
    return st;
}

/* ---- the plain one-shot reference ------------------------------------------------------- */

typedef struct ten {
    int c, t, h, w;
    float *d; /* [c][t][h][w] */
} ten;

static ten mk(int c, int t, int h, int w)
{
    ten x = {c, t, h, w, calloc((size_t)c * t * h * w, sizeof(float))};
    return x;
}

static float *at(const ten *x, int c, int t, int y, int xx)
{
    return x->d + (((size_t)c * x->t + t) * x->h + y) * x->w + xx;
}

/* Conv3d over the whole sequence with `front` zero frames in front (causal padding), stride
 * (st, s, s), spatial padding top/left p0 and bottom/right p1. kt == 0 marks a 2D weight. */
static ten conv(const ten *x, const char *block, int cout, int kt, int k, int st, int s, int front,
                int p0, int p1)
{
    const float *w = W("%s.weight", block), *b = W("%s.bias", block);
    int kT = kt ? kt : 1;
    int tin = x->t + front;
    int to = (tin - kT) / st + 1, ho = (x->h + p0 + p1 - k) / s + 1, wo = (x->w + p0 + p1 - k) / s + 1;
    ten y = mk(cout, to, ho, wo);
    size_t ovol = (size_t)to * ho * wo;
    double *acc = malloc(ovol * sizeof(double));
    for (int co = 0; co < cout; co++) {
        for (size_t i = 0; i < ovol; i++)
            acc[i] = b[co];
        for (int ci = 0; ci < x->c; ci++)
            for (int a = 0; a < kT; a++)
                for (int u = 0; u < k; u++)
                    for (int v = 0; v < k; v++) {
                        double wv = w[(((size_t)co * x->c + ci) * kT + a) * k * k + u * k + v];
                        for (int t = 0; t < to; t++) {
                            int ti = t * st + a - front; /* frames before 0 are the zero padding */
                            if (ti < 0)
                                continue;
                            for (int i = 0; i < ho; i++) {
                                int yi = i * s + u - p0;
                                if (yi < 0 || yi >= x->h)
                                    continue;
                                for (int j = 0; j < wo; j++) {
                                    int xi = j * s + v - p0;
                                    if (xi >= 0 && xi < x->w)
                                        acc[((size_t)t * ho + i) * wo + j] += wv * *at(x, ci, ti, yi, xi);
                                }
                            }
                        }
                    }
        for (size_t i = 0; i < ovol; i++)
            y.d[(size_t)co * ovol + i] = (float)acc[i];
    }
    free(acc);
    return y;
}

static ten norm(const ten *x, const float *g, int silu)
{
    ten y = mk(x->c, x->t, x->h, x->w);
    size_t vox = (size_t)x->t * x->h * x->w;
    for (size_t p = 0; p < vox; p++) {
        double ss = 0;
        for (int c = 0; c < x->c; c++)
            ss += (double)x->d[c * vox + p] * x->d[c * vox + p];
        double sc = sqrt((double)x->c) / fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < x->c; c++) {
            double v = x->d[c * vox + p] * sc * g[c];
            y.d[c * vox + p] = (float)(silu ? v / (1 + exp(-v)) : v);
        }
    }
    return y;
}

static void add_to(ten *y, const ten *r)
{
    for (size_t i = 0; i < (size_t)y->c * y->t * y->h * y->w; i++)
        y->d[i] += r->d[i];
}

static ten res_block(ten x, const char *b)
{
    char n[128];
    snprintf(n, sizeof n, "%s.residual.0.gamma", b);
    ten h = norm(&x, W("%s", n), 1);
    snprintf(n, sizeof n, "%s.residual.2.weight", b);
    int cout = (int)find(n)->shape[0];
    snprintf(n, sizeof n, "%s.residual.2", b);
    ten a = conv(&h, n, cout, 3, 3, 1, 1, 2, 1, 1);
    free(h.d);
    snprintf(n, sizeof n, "%s.residual.3.gamma", b);
    h = norm(&a, W("%s", n), 1);
    free(a.d);
    snprintf(n, sizeof n, "%s.residual.6", b);
    ten y = conv(&h, n, cout, 3, 3, 1, 1, 2, 1, 1);
    free(h.d);
    snprintf(n, sizeof n, "%s.shortcut.weight", b);
    if (find(n)) {
        snprintf(n, sizeof n, "%s.shortcut", b);
        ten s = conv(&x, n, cout, 1, 1, 1, 1, 0, 0, 0);
        add_to(&y, &s);
        free(s.d);
    } else {
        add_to(&y, &x);
    }
    free(x.d);
    return y;
}

static ten attn_block(ten x, const char *b)
{
    char n[128];
    int c = x.c;
    snprintf(n, sizeof n, "%s.norm.gamma", b);
    ten xn = norm(&x, W("%s", n), 0);
    snprintf(n, sizeof n, "%s.to_qkv", b);
    ten qkv = conv(&xn, n, 3 * c, 0, 1, 1, 1, 0, 0, 0);
    ten o = mk(c, x.t, x.h, x.w);
    int L = x.h * x.w;
    double *s = malloc((size_t)L * sizeof(double));
    for (int t = 0; t < x.t; t++)
        for (int i = 0; i < L; i++) {
            double mx = -1e300, sum = 0;
            for (int j = 0; j < L; j++) {
                double d = 0;
                for (int ch = 0; ch < c; ch++)
                    d += (double)*at(&qkv, ch, t, i / x.w, i % x.w) * *at(&qkv, c + ch, t, j / x.w, j % x.w);
                s[j] = d / sqrt((double)c);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < L; j++)
                sum += (s[j] = exp(s[j] - mx));
            for (int ch = 0; ch < c; ch++) {
                double acc = 0;
                for (int j = 0; j < L; j++)
                    acc += s[j] * *at(&qkv, 2 * c + ch, t, j / x.w, j % x.w);
                *at(&o, ch, t, i / x.w, i % x.w) = (float)(acc / sum);
            }
        }
    free(s);
    snprintf(n, sizeof n, "%s.proj", b);
    ten y = conv(&o, n, c, 0, 1, 1, 1, 0, 0, 0);
    add_to(&y, &x);
    free(xn.d);
    free(qkv.d);
    free(o.d);
    free(x.d);
    return y;
}

/* Resample upsample: frame 0 is only upsampled; frames 1.. go through time_conv (zero front
 * padding, no frame 0) and become two frames each. */
static ten up_block(ten x, const char *b, int three_d)
{
    char n[128];
    int c = x.c;
    ten u;
    if (three_d && x.t > 1) {
        ten rest = mk(c, x.t - 1, x.h, x.w);
        for (int ch = 0; ch < c; ch++)
            for (int t = 1; t < x.t; t++)
                memcpy(at(&rest, ch, t - 1, 0, 0), at(&x, ch, t, 0, 0), (size_t)x.h * x.w * sizeof(float));
        snprintf(n, sizeof n, "%s.time_conv", b);
        ten tc = conv(&rest, n, 2 * c, 3, 1, 1, 1, 2, 0, 0);
        u = mk(c, 1 + 2 * (x.t - 1), 2 * x.h, 2 * x.w);
        for (int ch = 0; ch < c; ch++)
            for (int t = 0; t < u.t; t++)
                for (int i = 0; i < u.h; i++)
                    for (int j = 0; j < u.w; j++)
                        *at(&u, ch, t, i, j) = t == 0 ? *at(&x, ch, 0, i / 2, j / 2)
                                                      : *at(&tc, ((t - 1) & 1) * c + ch, (t - 1) / 2, i / 2, j / 2);
        free(rest.d);
        free(tc.d);
    } else {
        u = mk(c, x.t, 2 * x.h, 2 * x.w);
        for (int ch = 0; ch < c; ch++)
            for (int t = 0; t < u.t; t++)
                for (int i = 0; i < u.h; i++)
                    for (int j = 0; j < u.w; j++)
                        *at(&u, ch, t, i, j) = *at(&x, ch, t, i / 2, j / 2);
    }
    free(x.d);
    snprintf(n, sizeof n, "%s.resample.1", b);
    ten y = conv(&u, n, c / 2, 0, 3, 1, 1, 0, 1, 1);
    free(u.d);
    return y;
}

/* Resample downsample: zero pad right/bottom, 3x3 stride 2; then frame 0 stays and the
 * stride-2 time_conv runs over the whole sequence without padding. */
static ten down_block(ten x, const char *b, int three_d)
{
    char n[128];
    snprintf(n, sizeof n, "%s.resample.1", b);
    ten y = conv(&x, n, x.c, 0, 3, 1, 2, 0, 0, 1);
    free(x.d);
    if (!three_d || y.t == 1)
        return y;
    snprintf(n, sizeof n, "%s.time_conv", b);
    ten tc = conv(&y, n, y.c, 3, 1, 2, 1, 0, 0, 0);
    ten o = mk(y.c, 1 + tc.t, y.h, y.w);
    for (int ch = 0; ch < y.c; ch++) {
        memcpy(at(&o, ch, 0, 0, 0), at(&y, ch, 0, 0, 0), (size_t)y.h * y.w * sizeof(float));
        memcpy(at(&o, ch, 1, 0, 0), at(&tc, ch, 0, 0, 0), (size_t)tc.t * y.h * y.w * sizeof(float));
    }
    free(y.d);
    free(tc.d);
    return o;
}

static const float mean_[Z] = {-0.7571f, -0.7089f, -0.9113f, 0.1075f,  -0.1745f, 0.9653f,
                               -0.1517f, 1.5508f,  0.4134f,  -0.0715f, 0.5517f,  -0.3632f,
                               -0.1922f, -0.9497f, 0.2503f,  -0.2921f};
static const float std_[Z] = {2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f,
                              2.6052f, 2.0743f, 3.2687f, 2.1526f, 2.8652f, 1.5579f,
                              1.6382f, 1.1253f, 2.8251f, 1.9160f};

static ten ref_decode(const float *lat, int T, int h, int w)
{
    ten z = mk(Z, T, h, w);
    size_t vol = (size_t)T * h * w;
    for (int c = 0; c < Z; c++)
        for (size_t i = 0; i < vol; i++)
            z.d[c * vol + i] = lat[c * vol + i] / (1.0f / std_[c]) + mean_[c];
    ten x = conv(&z, "conv2", Z, 1, 1, 1, 1, 0, 0, 0);
    free(z.d);
    ten y = conv(&x, "decoder.conv1", DIM * 4, 3, 3, 1, 1, 2, 1, 1);
    free(x.d);
    y = res_block(y, "decoder.middle.0");
    y = attn_block(y, "decoder.middle.1");
    y = res_block(y, "decoder.middle.2");
    char b[64];
    for (int i = 0; i < 15; i++) {
        snprintf(b, sizeof b, "decoder.upsamples.%d", i);
        if (i % 4 == 3)
            y = up_block(y, b, i < 8);
        else
            y = res_block(y, b);
    }
    ten hn = norm(&y, W("decoder.head.0.gamma"), 1);
    free(y.d);
    ten out = conv(&hn, "decoder.head.2", 3, 3, 3, 1, 1, 2, 1, 1);
    free(hn.d);
    for (size_t i = 0; i < (size_t)3 * out.t * out.h * out.w; i++)
        out.d[i] = fminf(fmaxf(out.d[i], -1.0f), 1.0f);
    return out;
}

static ten ref_encode(const ten *video)
{
    ten y = conv(video, "encoder.conv1", DIM, 3, 3, 1, 1, 2, 1, 1);
    char b[64];
    for (int i = 0; i < 11; i++) {
        snprintf(b, sizeof b, "encoder.downsamples.%d", i);
        if (i % 3 == 2)
            y = down_block(y, b, i > 2);
        else
            y = res_block(y, b);
    }
    y = res_block(y, "encoder.middle.0");
    y = attn_block(y, "encoder.middle.1");
    y = res_block(y, "encoder.middle.2");
    ten hn = norm(&y, W("encoder.head.0.gamma"), 1);
    free(y.d);
    ten e = conv(&hn, "encoder.head.2", 2 * Z, 3, 3, 1, 1, 2, 1, 1);
    free(hn.d);
    ten mu = conv(&e, "conv1", 2 * Z, 1, 1, 1, 1, 0, 0, 0);
    free(e.d);
    ten out = mk(Z, mu.t, mu.h, mu.w);
    size_t vol = (size_t)mu.t * mu.h * mu.w;
    for (int c = 0; c < Z; c++)
        for (size_t i = 0; i < vol; i++)
            out.d[c * vol + i] = (mu.d[c * vol + i] - mean_[c]) * (1.0f / std_[c]);
    free(mu.d);
    return out;
}

/* ---- the checks -------------------------------------------------------------------------- */

typedef struct stream_rec {
    int calls, frames, sizes[64];
    float *video; /* [3, F, H, W] gathered from the chunks */
    int F, plane;
} stream_rec;

static int on_frames(void *user, const float *frames, int n)
{
    stream_rec *r = user;
    if (r->calls < 64)
        r->sizes[r->calls] = n;
    for (int c = 0; c < 3; c++)
        if (r->frames + n <= r->F)
            memcpy(r->video + ((size_t)c * r->F + r->frames) * r->plane,
                   frames + (size_t)c * n * r->plane, (size_t)n * r->plane * sizeof(float));
    r->calls++;
    r->frames += n;
    return 0;
}

static int stop_after_one(void *user, const float *frames, int n) { return 1; }

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static void test_decode(backend *be, wan_vae *pth, wan_vae *diff, wan_vae *comfy)
{
    const int T = 3, h = 4, w = 6, F = 9, H = 32, Wd = 48;
    size_t lat_n = (size_t)Z * T * h * w, vid_n = (size_t)3 * F * H * Wd;
    float *lat = malloc(lat_n * sizeof(float));
    check_fill_normal(lat, lat_n, 1.0f);
    int64_t ls[4] = {Z, T, h, w}, vs[4] = {3, F, H, Wd};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    float *v1 = malloc(vid_n * sizeof(float)), *v2 = malloc(vid_n * sizeof(float));
    float *v3 = malloc(vid_n * sizeof(float));
    tensor o1 = tensor_make(v1, DT_F32, DEV_CPU, 4, vs), o2 = tensor_make(v2, DT_F32, DEV_CPU, 4, vs);
    tensor o3 = tensor_make(v3, DT_F32, DEV_CPU, 4, vs);
    for (size_t i = 0; i < vid_n; i++)
        v1[i] = v2[i] = v3[i] = NAN;

    stream_rec rec = {0};
    rec.video = calloc(vid_n, sizeof(float));
    rec.F = F;
    rec.plane = H * Wd;
    CHECK_OK(wan_vae_decode(pth, &lt, NULL, on_frames, &rec, &o1));
    ten ref = ref_decode(lat, T, h, w);
    CHECK(ref.t == F && ref.h == H && ref.w == Wd, "reference shape %d %d %d", ref.t, ref.h, ref.w);
    double e = check_rel_l2(v1, ref.d, vid_n);
    printf("decode (chunked, cached) vs one-shot reference: rel_l2 %.3g (tolerance 1e-5)\n", e);
    CHECK(e < 1e-5, "chunked decode differs from the one-shot reference: %g", e);
    double lo = 1, hi = -1;
    for (size_t i = 0; i < vid_n; i++)
        lo = fmin(lo, v1[i]), hi = fmax(hi, v1[i]);
    CHECK(lo > -1 && hi < 1 && hi - lo > 0.1, "output range [%g, %g]", lo, hi);
    CHECK(rec.calls == T && rec.frames == F, "%d callbacks, %d frames", rec.calls, rec.frames);
    CHECK(rec.sizes[0] == 1 && rec.sizes[1] == 4 && rec.sizes[2] == 4, "chunks %d %d %d",
          rec.sizes[0], rec.sizes[1], rec.sizes[2]);
    CHECK(max_abs_diff(rec.video, v1, vid_n) == 0, "streamed frames differ from video_out");

    /* the same weights in the diffusers and ComfyUI layouts give the same video */
    CHECK_OK(wan_vae_decode(diff, &lt, NULL, NULL, NULL, &o2));
    CHECK(max_abs_diff(v1, v2, vid_n) == 0, "diffusers layout decodes differently: %g",
          max_abs_diff(v1, v2, vid_n));
    CHECK_OK(wan_vae_decode(comfy, &lt, NULL, NULL, NULL, &o3));
    CHECK(max_abs_diff(v1, v3, vid_n) == 0, "prefixed safetensors decode differently");

    /* a callback that stops: status returned, no crash */
    int st = wan_vae_decode(pth, &lt, NULL, stop_after_one, NULL, NULL);
    CHECK(st == REEL_E_CANCELLED, "stopping callback -> %d", st);

    /* one tile covering everything = no tiling */
    vae_decode_opts big = {16, 16, 2};
    CHECK_OK(wan_vae_decode(pth, &lt, &big, NULL, NULL, &o2));
    CHECK(max_abs_diff(v1, v2, vid_n) == 0, "a tile covering the frame changes the output");

    free(ref.d);
    free(rec.video);
    free(lat);
    free(v1);
    free(v2);
    free(v3);
}

/* Tiled decoding, checked two ways. Exactly: each tile decoded on its own (untiled, from the
 * cropped latents) and blended here with linear ramps over the overlap must give the tiled
 * output. Approximately: tiles see less context than the whole frame (3x3 convolutions at
 * every scale and the middle attention, which is global over a frame), so tiled differs from
 * untiled; on this random model with tiles of 4x6 latents the relative L2 difference is 0.08 to
 * 0.3 depending on the draw (misplaced tiles give about 1), and must shrink as the overlap
 * grows. Tolerance 0.5. */
static void crop_blend(wan_vae *v, const float *lat, int T, int h, int w, int th, int tw, int ov,
                       float *out)
{
    const int s = 8, F = 1 + 4 * (T - 1), H = h * s, Wd = w * s;
    size_t plane = (size_t)H * Wd, n = 3 * (size_t)F * plane;
    float *wsum = calloc(plane, sizeof(float)), *tile = malloc(3 * (size_t)F * th * tw * s * s * sizeof(float));
    float *crop = malloc((size_t)Z * T * th * tw * sizeof(float));
    memset(out, 0, n * sizeof(float));
    int ys[64], xs[64], ny = 0, nx = 0;
    for (int p = 0;; p += th - ov) {
        ys[ny++] = p + th >= h ? h - th : p;
        if (p + th >= h)
            break;
    }
    for (int p = 0;; p += tw - ov) {
        xs[nx++] = p + tw >= w ? w - tw : p;
        if (p + tw >= w)
            break;
    }
    for (int a = 0; a < ny; a++)
        for (int b = 0; b < nx; b++) {
            for (int c = 0; c < Z; c++)
                for (int t = 0; t < T; t++)
                    for (int y = 0; y < th; y++)
                        memcpy(crop + (((size_t)c * T + t) * th + y) * tw,
                               lat + (((size_t)c * T + t) * h + ys[a] + y) * w + xs[b], tw * sizeof(float));
            int64_t cs[4] = {Z, T, th, tw}, os[4] = {3, F, th * s, tw * s};
            tensor ct = tensor_make(crop, DT_F32, DEV_CPU, 4, cs), ot = tensor_make(tile, DT_F32, DEV_CPU, 4, os);
            CHECK_OK(wan_vae_decode(v, &ct, NULL, NULL, NULL, &ot));
            int r = ov * s, ph = th * s, pw = tw * s;
            for (int y = 0; y < ph; y++)
                for (int x = 0; x < pw; x++) {
                    double wy = 1, wx = 1;
                    if (ys[a] > 0 && y < r)
                        wy = (y + 0.5) / r;
                    if (ys[a] + th < h && y >= ph - r)
                        wy = fmin(wy, (ph - y - 0.5) / r);
                    if (xs[b] > 0 && x < r)
                        wx = (x + 0.5) / r;
                    if (xs[b] + tw < w && x >= pw - r)
                        wx = fmin(wx, (pw - x - 0.5) / r);
                    size_t p = (size_t)(ys[a] * s + y) * Wd + xs[b] * s + x;
                    wsum[p] += (float)(wy * wx);
                    for (int c = 0; c < 3; c++)
                        for (int f = 0; f < F; f++)
                            out[((size_t)c * F + f) * plane + p] +=
                                (float)(wy * wx) * tile[(((size_t)c * F + f) * ph + y) * pw + x];
                }
        }
    for (size_t i = 0; i < n; i++)
        out[i] /= wsum[i % plane];
    free(wsum);
    free(tile);
    free(crop);
}

static void test_tiling(wan_vae *v)
{
    const int T = 2, h = 6, w = 8, F = 5, H = 48, Wd = 64;
    size_t lat_n = (size_t)Z * T * h * w, vid_n = (size_t)3 * F * H * Wd;
    float *lat = malloc(lat_n * sizeof(float));
    check_fill_normal(lat, lat_n, 1.0f);
    int64_t ls[4] = {Z, T, h, w}, vs[4] = {3, F, H, Wd};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    float *full = malloc(vid_n * sizeof(float)), *tiled = malloc(vid_n * sizeof(float));
    float *blend = malloc(vid_n * sizeof(float));
    tensor of = tensor_make(full, DT_F32, DEV_CPU, 4, vs), ot = tensor_make(tiled, DT_F32, DEV_CPU, 4, vs);
    CHECK_OK(wan_vae_decode(v, &lt, NULL, NULL, NULL, &of));
    double peak = 0;
    for (size_t i = 0; i < vid_n; i++)
        peak = fmax(peak, fabs(full[i]));
    CHECK(peak < 1.0 && peak > 0.05, "test model output peak %g: the clamp would act", peak);

    stream_rec rec = {0};
    rec.video = calloc(vid_n, sizeof(float));
    rec.F = F;
    rec.plane = H * Wd;
    vae_decode_opts small = {4, 6, 1}, wide = {4, 6, 3};
    CHECK_OK(wan_vae_decode(v, &lt, &small, on_frames, &rec, &ot));
    CHECK(rec.calls == T && rec.sizes[0] == 1 && rec.sizes[1] == 4, "tiled chunks %d: %d %d",
          rec.calls, rec.sizes[0], rec.sizes[1]);
    CHECK(max_abs_diff(rec.video, tiled, vid_n) == 0, "tiled stream differs from video_out");
    crop_blend(v, lat, T, h, w, 4, 6, 1, blend);
    double eb = check_rel_l2(tiled, blend, vid_n);
    double e2 = check_rel_l2(tiled, full, vid_n);
    CHECK_OK(wan_vae_decode(v, &lt, &wide, NULL, NULL, &ot));
    double e4 = check_rel_l2(tiled, full, vid_n);
    printf("tiled (4x6 latents) vs tiles decoded alone and blended: rel_l2 %.3g (tolerance 1e-6)\n", eb);
    printf("tiled vs untiled: rel_l2 %.3g with overlap 1, %.3g with overlap 3 (tolerance 0.5)\n", e2, e4);
    CHECK(eb < 1e-6, "tiled decode is not the blend of its tiles: %g", eb);
    CHECK(e2 < 0.5 && e4 < 0.5, "tiled decode too far from untiled: %g, %g", e2, e4);
    CHECK(e4 < e2, "more overlap should bring tiles closer to untiled: %g >= %g", e4, e2);
    vae_decode_opts bad = {4, 4, 4};
    CHECK(wan_vae_decode(v, &lt, &bad, NULL, NULL, &ot) == REEL_E_INVALID, "overlap >= tile accepted");
    free(rec.video);
    free(lat);
    free(full);
    free(tiled);
    free(blend);
}

static void test_encode(wan_vae *v)
{
    const int F = 5, H = 32, Wd = 16, T = 2, h = 4, w = 2;
    size_t vid_n = (size_t)3 * F * H * Wd, lat_n = (size_t)Z * T * h * w;
    ten video = mk(3, F, H, Wd);
    check_fill_uniform(video.d, vid_n, -1, 1);
    int64_t vs[4] = {3, F, H, Wd}, ls[4] = {Z, T, h, w};
    tensor vt = tensor_make(video.d, DT_F32, DEV_CPU, 4, vs);
    float *lat = malloc(lat_n * sizeof(float));
    for (size_t i = 0; i < lat_n; i++)
        lat[i] = NAN;
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls);
    CHECK_OK(wan_vae_encode(v, &vt, &lt));
    ten ref = ref_encode(&video);
    CHECK(ref.c == Z && ref.t == T && ref.h == h && ref.w == w, "reference latents [%d,%d,%d,%d]",
          ref.c, ref.t, ref.h, ref.w);
    double e = check_rel_l2(lat, ref.d, lat_n);
    printf("encode (1 frame, then 4 per chunk) vs one-shot reference: rel_l2 %.3g (tolerance 1e-5)\n", e);
    CHECK(e < 1e-5, "encode differs from the reference: %g", e);

    /* frames not 1 + 4k, sizes not multiples of 8, wrong output shape: refused */
    int64_t bad_f[4] = {3, 4, H, Wd}, bad_h[4] = {3, F, 20, Wd}, bad_l[4] = {Z, T + 1, h, w};
    tensor b1 = tensor_make(video.d, DT_F32, DEV_CPU, 4, bad_f);
    tensor b2 = tensor_make(video.d, DT_F32, DEV_CPU, 4, bad_h);
    tensor b3 = tensor_make(lat, DT_F32, DEV_CPU, 4, bad_l);
    CHECK(wan_vae_encode(v, &b1, &lt) == REEL_E_INVALID, "4 frames accepted");
    CHECK(wan_vae_encode(v, &b2, &lt) == REEL_E_INVALID, "height 20 accepted");
    CHECK(wan_vae_encode(v, &vt, &b3) == REEL_E_INVALID, "wrong latent shape accepted");
    free(video.d);
    free(ref.d);
    free(lat);
}

/* reel vae decode / encode through the CLI ($REEL_BIN) give what the API gives. */
static void test_cli(wan_vae *v, const char *model_path)
{
    char model[1100];
    snprintf(model, sizeof model, "%s", model_path); /* check_path's buffer is reused below */
    const char *bin = getenv("REEL_BIN");
    if (!bin) {
        printf("REEL_BIN not set: reel vae CLI not checked\n");
        return;
    }
    const int T = 2, h = 2, w = 3;
    size_t lat_n = (size_t)Z * T * h * w, vid_n = (size_t)3 * 5 * 16 * 24;
    float *lat = malloc(lat_n * sizeof(float)), *vid = malloc(vid_n * sizeof(float));
    check_fill_normal(lat, lat_n, 1.0f);
    int64_t ls[4] = {Z, T, h, w}, vs[4] = {3, 5, 16, 24};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls), vt = tensor_make(vid, DT_F32, DEV_CPU, 4, vs);
    CHECK_OK(wan_vae_decode(v, &lt, NULL, NULL, NULL, &vt));
    tw_tensor in = {"latents", DT_F32, 4, {Z, T, h, w}, lat};
    char lat_path[1100], vid_path[1100], enc_path[1100], cmd[4096];
    snprintf(lat_path, sizeof lat_path, "%s", check_path("cli_latents.safetensors"));
    snprintf(vid_path, sizeof vid_path, "%s", check_path("cli_video.safetensors"));
    snprintf(enc_path, sizeof enc_path, "%s", check_path("cli_enc.safetensors"));
    CHECK_OK(tw_write_safetensors(lat_path, &in, 1, NULL));
    snprintf(cmd, sizeof cmd, "'%s' vae decode --backend cpu --model '%s' -i '%s' -o '%s' 2>/dev/null", bin,
             model, lat_path, vid_path);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    snprintf(cmd, sizeof cmd, "'%s' vae encode --backend cpu --model '%s' -i '%s' -o '%s' 2>/dev/null", bin,
             model, vid_path, enc_path);
    CHECK(system(cmd) == 0, "%s failed", cmd);
    weights *ws = NULL;
    CHECK_OK(weights_open(vid_path, &ws));
    const weight_entry *e = ws ? weights_find(ws, "video") : NULL;
    CHECK(e && e->t.ndim == 4 && e->t.shape[1] == 5 && e->t.shape[3] == 24, "CLI output tensor 'video'");
    if (e && tensor_numel(&e->t) == (int64_t)vid_n) {
        float *got = malloc(vid_n * sizeof(float));
        CHECK_OK(weights_read_f32(e, got));
        CHECK(max_abs_diff(got, vid, vid_n) == 0, "reel vae decode differs from wan_vae_decode");
        free(got);
    }
    weights_close(ws);
    ws = NULL;
    float *enc = malloc(lat_n * sizeof(float)), *got = malloc(lat_n * sizeof(float));
    tensor et = tensor_make(enc, DT_F32, DEV_CPU, 4, ls);
    CHECK_OK(wan_vae_encode(v, &vt, &et));
    CHECK_OK(weights_open(enc_path, &ws));
    e = ws ? weights_find(ws, "latents") : NULL;
    CHECK(e && tensor_numel(&e->t) == (int64_t)lat_n, "CLI output tensor 'latents'");
    if (e && tensor_numel(&e->t) == (int64_t)lat_n) {
        CHECK_OK(weights_read_f32(e, got));
        CHECK(max_abs_diff(got, enc, lat_n) == 0, "reel vae encode differs from wan_vae_encode");
    }
    weights_close(ws);
    /* an input without the expected tensor: exit status 1 */
    snprintf(cmd, sizeof cmd, "'%s' vae encode --backend cpu --model '%s' -i '%s' -o '%s.x' 2>/dev/null",
             bin, model, lat_path, enc_path);
    int rc = system(cmd);
    CHECK(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "encode of a latents file -> %d", rc);
    free(lat), free(vid), free(enc), free(got);
}

/* A model with a strong head drives the video into the clamp to [-1, 1]. */
static void test_clamp(backend *be)
{
    const int T = 2, h = 2, w = 3;
    size_t lat_n = (size_t)Z * T * h * w, vid_n = (size_t)3 * 5 * 16 * 24;
    for (int i = 0; i < nmodel; i++)
        free(model[i].data);
    build_model(Z, 20.0f);
    wan_vae *v = NULL;
    CHECK_OK(write_model(check_path("loud.safetensors"), 0, "", 0));
    CHECK_OK(wan_vae_load(check_path("loud.safetensors"), be, &v));
    float *lat = malloc(lat_n * sizeof(float)), *vid = malloc(vid_n * sizeof(float));
    check_fill_normal(lat, lat_n, 1.0f);
    int64_t ls[4] = {Z, T, h, w}, vs[4] = {3, 5, 16, 24};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls), vt = tensor_make(vid, DT_F32, DEV_CPU, 4, vs);
    if (v) {
        CHECK_OK(wan_vae_decode(v, &lt, NULL, NULL, NULL, &vt));
        ten ref = ref_decode(lat, T, h, w);
        int at_one = 0, outside = 0;
        for (size_t i = 0; i < vid_n; i++) {
            at_one += fabsf(vid[i]) == 1.0f;
            outside += !(fabsf(vid[i]) <= 1.0f);
        }
        CHECK(at_one > 0 && outside == 0, "clamp: %d values at +-1, %d outside or NaN", at_one, outside);
        CHECK(check_rel_l2(vid, ref.d, vid_n) < 1e-5, "clamped decode differs from the reference: %g",
              check_rel_l2(vid, ref.d, vid_n));
        free(ref.d);
    }
    wan_vae_free(v);
    free(lat);
    free(vid);
}

static void test_errors(backend *be, wan_vae *v)
{
    float buf[15 * 2 * 2 * 2];
    int64_t s15[4] = {15, 2, 2, 2}, s3[3] = {Z, 2, 2};
    tensor t15 = tensor_make(buf, DT_F32, DEV_CPU, 4, s15), t3 = tensor_make(buf, DT_F32, DEV_CPU, 3, s3);
    int st = wan_vae_decode(v, &t15, NULL, NULL, NULL, NULL);
    CHECK(st == REEL_E_INVALID && strstr(err_msg(), "latents"), "15 latent channels -> %d: %s", st,
          err_msg());
    CHECK(wan_vae_decode(v, &t3, NULL, NULL, NULL, NULL) == REEL_E_INVALID, "3-d latents accepted");
    float lat[Z * 2 * 2 * 2] = {0}, small[3];
    int64_t ls[4] = {Z, 2, 2, 2}, wrong[4] = {3, 5, 16, 8};
    tensor lt = tensor_make(lat, DT_F32, DEV_CPU, 4, ls), ot = tensor_make(small, DT_F32, DEV_CPU, 4, wrong);
    CHECK(wan_vae_decode(v, &lt, NULL, NULL, NULL, &ot) == REEL_E_INVALID, "wrong video shape accepted");

    /* a VAE with 8 latent channels (not the published 16): unsupported, says why */
    wan_vae *bad = NULL;
    for (int i = 0; i < nmodel; i++)
        free(model[i].data);
    build_model(8, 0.1f);
    CHECK_OK(write_model(check_path("z8.safetensors"), 0, "", 0));
    st = wan_vae_load(check_path("z8.safetensors"), be, &bad);
    CHECK(st == REEL_E_UNSUPPORTED && strstr(err_msg(), "16"), "z 8 -> %d: %s", st, err_msg());
    /* a tensor missing: named */
    for (int i = 0; i < nmodel; i++)
        free(model[i].data);
    build_model(Z, 0.1f);
    for (int i = 0; i < nmodel; i++)
        if (!strcmp(model[i].name, "decoder.upsamples.4.shortcut.bias")) {
            free(model[i].data);
            model[i] = model[--nmodel];
        }
    CHECK_OK(write_model(check_path("missing.safetensors"), 0, "", 0));
    st = wan_vae_load(check_path("missing.safetensors"), be, &bad);
    CHECK(st == REEL_E_NOT_FOUND && strstr(err_msg(), "decoder.upsamples.4.shortcut.bias"),
          "missing bias -> %d: %s", st, err_msg());
    CHECK(bad == NULL, "failed load returned a model");
    st = wan_vae_load(check_path("nonexistent.pth"), be, &bad);
    CHECK(st < 0 && strstr(err_msg(), "nonexistent.pth"), "missing file -> %d: %s", st, err_msg());
}

int main(void)
{
    check_seed("test_vae_cpu");
    backend *be = NULL;
    CHECK_OK(backend_cpu_create(2, &be));
    if (!be)
        return check_done();
    build_model(Z, 0.1f);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", check_path("vae"));
    mkdir(dir, 0755);
    char diff_path[1100];
    snprintf(diff_path, sizeof diff_path, "%s/diffusion_pytorch_model.safetensors", dir);
    CHECK_OK(write_model(check_path("Wan2.1_VAE.pth"), 0, "", 1));
    CHECK_OK(write_model(diff_path, 1, "", 0));
    CHECK_OK(write_model(check_path("comfy.safetensors"), 0, "first_stage_model.", 0));
    wan_vae *pth = NULL, *diff = NULL, *comfy = NULL;
    CHECK_OK(wan_vae_load(check_path("Wan2.1_VAE.pth"), be, &pth));
    CHECK_OK(wan_vae_load(dir, be, &diff));
    CHECK_OK(wan_vae_load(check_path("comfy.safetensors"), be, &comfy));
    if (pth && diff && comfy) {
        printf("%s\n", wan_vae_describe(pth));
        CHECK(strstr(wan_vae_describe(diff), "diffusers") != NULL, "%s", wan_vae_describe(diff));
        test_decode(be, pth, diff, comfy);
        test_tiling(pth);
        test_encode(diff);
        test_cli(pth, check_path("Wan2.1_VAE.pth"));
        test_clamp(be);
        test_errors(be, pth);
    }
    wan_vae_free(pth);
    wan_vae_free(diff);
    wan_vae_free(comfy);
    for (int i = 0; i < nmodel; i++)
        free(model[i].data);
    backend_free(be);
    return check_done();
}
